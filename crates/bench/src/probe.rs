//! The benchmark's own PipeWire client, on a thread with its own main loop.
//!
//! It is both the "bare listener" floor and the tool that makes changes:
//! it binds every sink, subscribes to their `Props`, and records when each
//! volume change arrives; it sets a sink's volume on request and records
//! when it sent it; and it records every node and link global with the time
//! it arrived, so stream appearances and link reactions can be timed. All
//! times are `Instant`s of this process, comparable with the snapshot
//! reader's.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use pipewire as pw;
use pipewire_volume_mixer_daemon::pw::params;
use pw::node::{Node, NodeListener};
use pw::spa::param::ParamType;
use pw::spa::pod::Pod;
use pw::types::ObjectType;

/// A node global as the probe saw it.
#[derive(Clone, Debug)]
pub struct NodeSeen {
    pub id: u32,
    pub name: String,
    pub app_name: Option<String>,
    pub media_class: String,
    pub appeared: Instant,
    pub removed: Option<Instant>,
}

/// A link global as the probe saw it.
#[derive(Clone, Copy, Debug)]
pub struct LinkSeen {
    pub id: u32,
    pub output_node: u32,
    pub input_node: u32,
    pub appeared: Instant,
    pub removed: Option<Instant>,
}

/// A `Props` param of a sink as it arrived.
#[derive(Clone, Copy, Debug)]
pub struct VolumeSeen {
    pub node: u32,
    /// First channel, linear.
    pub linear: f32,
    pub at: Instant,
}

/// Everything the probe recorded.
#[derive(Debug, Default)]
pub struct Record {
    pub nodes: Vec<NodeSeen>,
    pub links: Vec<LinkSeen>,
    pub volumes: Vec<VolumeSeen>,
    /// When each volume request was handed to PipeWire, by request number.
    pub sent: Vec<Instant>,
    /// The probe thread's kernel thread id, for its CPU time.
    pub tid: u32,
    syncs_done: u64,
}

impl Record {
    /// The live node named `name`.
    pub fn node_named(&self, name: &str) -> Option<&NodeSeen> {
        self.nodes.iter().rev().find(|n| n.name == name && n.removed.is_none())
    }

    /// Playback streams of app `name`, oldest first.
    pub fn streams_of(&self, app: &str) -> Vec<&NodeSeen> {
        self.nodes
            .iter()
            .filter(|n| n.media_class == "Stream/Output/Audio" && n.app_name.as_deref() == Some(app))
            .collect()
    }

    /// Links from `output` to `input` that appeared at or after `since`.
    pub fn first_link_after(&self, output: u32, input: u32, since: Instant) -> Option<&LinkSeen> {
        self.links.iter().find(|l| l.output_node == output && l.input_node == input && l.appeared >= since)
    }

    /// Live links from `output`.
    pub fn live_links_from(&self, output: u32) -> Vec<&LinkSeen> {
        self.links.iter().filter(|l| l.output_node == output && l.removed.is_none()).collect()
    }
}

enum Command {
    SetVolume { node: u32, linear: f32 },
    Sync,
    Stop,
}

struct Shared {
    record: Mutex<Record>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Record)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running probe.
pub struct Probe {
    shared: Arc<Shared>,
    commands: pw::channel::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Probe {
    /// Connects to the PipeWire socket at `socket` and returns once the
    /// existing graph is enumerated and the sinks' volumes are known.
    pub fn start(socket: &Path) -> Result<Probe> {
        let shared = Arc::new(Shared { record: Mutex::new(Record::default()), changed: Condvar::new() });
        let (commands, receiver) = pw::channel::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let socket = socket.to_string_lossy().into_owned();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("bench-probe".into())
            .spawn(move || run(&socket, &thread_shared, receiver, &ready_tx))?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("probe: {e}"),
            Err(_) => bail!("probe: PipeWire did not answer in 10 s"),
        }
        let probe = Probe { shared, commands, thread: Some(thread) };
        probe.sync()?;
        Ok(probe)
    }

    /// Sets the volume of sink node `node` (linear amplitude on every channel)
    /// and returns the request number under which its send time is recorded.
    pub fn set_volume(&self, node: u32, linear: f32) -> Result<usize> {
        let n = self.shared.lock().sent.len();
        self.commands.send(Command::SetVolume { node, linear }).map_err(|_| anyhow!("probe thread gone"))?;
        Ok(n)
    }

    /// A round trip: afterwards the record holds everything PipeWire sent before.
    pub fn sync(&self) -> Result<()> {
        let target = self.shared.lock().syncs_done + 1;
        self.commands.send(Command::Sync).map_err(|_| anyhow!("probe thread gone"))?;
        self.wait_until(Duration::from_secs(10), "a round trip", |r| r.syncs_done >= target).map(|_| ())
    }

    /// Runs `f` on the record as it is now.
    pub fn with<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.shared.lock())
    }

    /// Waits until `condition` holds (re-checked on every change), then runs it once more under the lock.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&Record) -> bool,
    ) -> Result<MutexGuard<'_, Record>> {
        let deadline = Instant::now() + timeout;
        let mut record = self.shared.lock();
        loop {
            if condition(&record) {
                return Ok(record);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            record = self.shared.changed.wait_timeout(record, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Drops what was recorded of volumes and sends (keeps the graph).
    pub fn clear_volumes(&self) {
        let mut r = self.shared.lock();
        r.volumes.clear();
        r.volumes.shrink_to_fit();
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Bound = Rc<RefCell<HashMap<u32, (Node, NodeListener)>>>;

fn run(
    socket: &str,
    shared: &Arc<Shared>,
    commands: pw::channel::Receiver<Command>,
    ready: &mpsc::Sender<Result<(), String>>,
) {
    pw::init();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    shared.update(|r| r.tid = tid);
    let connected = (|| -> Result<_, pw::Error> {
        let main_loop = pw::main_loop::MainLoopRc::new(None)?;
        let context = pw::context::ContextRc::new(&main_loop, None)?;
        let core = context.connect_rc(Some(pw::properties::properties! { *pw::keys::REMOTE_NAME => socket }))?;
        let registry = core.get_registry_rc()?;
        Ok((main_loop, context, core, registry))
    })();
    let (main_loop, _context, core, registry) = match connected {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot connect to {socket}: {e}")));
            return;
        }
    };
    let sinks: Bound = Rc::default();

    let on_global = Arc::clone(shared);
    let on_remove = Arc::clone(shared);
    let weak_registry = registry.downgrade();
    let bind_sinks = Rc::clone(&sinks);
    let drop_sinks = Rc::clone(&sinks);
    let _registry_listener = registry
        .add_listener_local()
        .global(move |global| {
            let now = Instant::now();
            let Some(props) = global.props else { return };
            match global.type_ {
                ObjectType::Node => {
                    let media_class = props.get("media.class").unwrap_or_default().to_owned();
                    let seen = NodeSeen {
                        id: global.id,
                        name: props.get("node.name").unwrap_or_default().to_owned(),
                        app_name: props.get("application.name").map(str::to_owned),
                        media_class: media_class.clone(),
                        appeared: now,
                        removed: None,
                    };
                    on_global.update(|r| r.nodes.push(seen));
                    if media_class == "Audio/Sink" {
                        let Some(registry) = weak_registry.upgrade() else { return };
                        if let Ok(node) = registry.bind::<Node, _>(global) {
                            let id = global.id;
                            let on_param = Arc::clone(&on_global);
                            let listener = node
                                .add_listener_local()
                                .param(move |_seq, kind, _index, _next, pod: Option<&Pod>| {
                                    let at = Instant::now();
                                    if kind != ParamType::Props {
                                        return;
                                    }
                                    let Some(v) = pod.and_then(params::parse_props) else { return };
                                    if let Some(first) = v.channels.as_ref().and_then(|c| c.first().copied()) {
                                        on_param.update(|r| r.volumes.push(VolumeSeen { node: id, linear: first, at }));
                                    }
                                })
                                .register();
                            node.subscribe_params(&[ParamType::Props]);
                            bind_sinks.borrow_mut().insert(id, (node, listener));
                        }
                    }
                }
                ObjectType::Link => {
                    let num = |k| props.get(k).and_then(|v| v.parse::<u32>().ok());
                    if let (Some(output_node), Some(input_node)) = (num("link.output.node"), num("link.input.node")) {
                        let id = global.id;
                        on_global.update(|r| {
                            r.links.push(LinkSeen { id, output_node, input_node, appeared: now, removed: None })
                        });
                    }
                }
                _ => {}
            }
        })
        .global_remove(move |id| {
            let now = Instant::now();
            drop_sinks.borrow_mut().remove(&id);
            on_remove.update(|r| {
                if let Some(n) = r.nodes.iter_mut().rev().find(|n| n.id == id && n.removed.is_none()) {
                    n.removed = Some(now);
                }
                if let Some(l) = r.links.iter_mut().rev().find(|l| l.id == id && l.removed.is_none()) {
                    l.removed = Some(now);
                }
            });
        })
        .register();

    let asked: Rc<RefCell<Vec<pw::spa::utils::result::AsyncSeq>>> = Rc::default();
    let on_done = Arc::clone(shared);
    let answered = Rc::clone(&asked);
    // Two round trips before "ready": the first brings the globals, the
    // second the sinks' params.
    let first = core.sync(0).ok();
    let second: Rc<RefCell<Option<pw::spa::utils::result::AsyncSeq>>> = Rc::default();
    let second_set = Rc::clone(&second);
    let ready_once = ready.clone();
    let done_core = core.clone();
    let _core_listener = core
        .add_listener_local()
        .done(move |id, seq| {
            if id != pw::core::PW_ID_CORE {
                return;
            }
            if Some(seq) == first {
                *second_set.borrow_mut() = done_core.sync(0).ok();
                return;
            }
            if Some(seq) == *second_set.borrow() {
                let _ = ready_once.send(Ok(()));
                return;
            }
            let mut asked = answered.borrow_mut();
            if let Some(i) = asked.iter().position(|s| *s == seq) {
                asked.remove(i);
                on_done.update(|r| r.syncs_done += 1);
            }
        })
        .register();

    let quit = main_loop.clone();
    let command_core = core.clone();
    let command_sinks = Rc::clone(&sinks);
    let on_command = Arc::clone(shared);
    let _commands = commands.attach(main_loop.loop_(), move |command| match command {
        Command::SetVolume { node, linear } => {
            let pod_bytes = params::build_props(Some(&[linear, linear]), None);
            let sinks = command_sinks.borrow();
            let sent = Instant::now();
            if let (Some((proxy, _)), Some(pod)) = (sinks.get(&node), Pod::from_bytes(&pod_bytes)) {
                proxy.set_param(ParamType::Props, 0, pod);
            }
            on_command.update(|r| r.sent.push(sent));
        }
        Command::Sync => {
            if let Ok(seq) = command_core.sync(0) {
                asked.borrow_mut().push(seq);
            }
        }
        Command::Stop => quit.quit(),
    });
    main_loop.run();
    sinks.borrow_mut().clear();
}
