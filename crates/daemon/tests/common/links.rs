//! A test-side PipeWire client that records every link and every `default`
//! metadata write a playback stream ever gets.
//!
//! Polling `pw-dump` can miss a link that lives for a few milliseconds. The
//! [`GraphWatcher`] instead listens to the registry: PipeWire announces every
//! new global (links included, with `link.output.node` / `link.input.node` in
//! their global properties) to every registry listener before it can be
//! destroyed, so a link that exists at all is recorded, however short-lived.
//! It also binds the `default` metadata and records each property event about
//! a stream, so the daemon's writes can be counted.
//!
//! The client runs its own PipeWire main loop on a thread, connected to the
//! bed's socket by path; the test thread reads the record through a mutex.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipewire as pw;
use pw::types::ObjectType;

/// `media.class` of an application's playback stream.
const STREAM_OUTPUT_AUDIO: &str = "Stream/Output/Audio";

/// The life of one playback stream node, as the watcher saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamHistory {
    /// The node's global id (ids are reused after a node goes away).
    pub node: u32,
    /// Its `application.name`, from the registry global.
    pub app_name: Option<String>,
    /// The `node.name` of the input node of every link object that ever had
    /// this stream as output, in order of appearance (one entry per port link).
    pub links: Vec<String>,
    /// Every `default` metadata property event about this stream: key and value
    /// (`None` when the key was cleared), in order.
    pub metadata: Vec<(String, Option<String>)>,
    /// Still in the graph.
    pub alive: bool,
    /// Links and metadata events in the order they came, with the time since
    /// the stream appeared, for failure messages.
    pub timeline: Vec<String>,
    /// When the stream appeared.
    pub appeared: Option<Instant>,
}

impl StreamHistory {
    fn note(&mut self, what: String) {
        let at = self.appeared.map(|t| t.elapsed()).unwrap_or_default();
        self.timeline.push(format!("{:>8.3} ms  {what}", at.as_secs_f64() * 1e3));
    }
}

impl StreamHistory {
    /// The distinct sinks it was ever linked to, sorted.
    pub fn sinks_ever_linked(&self) -> Vec<String> {
        let mut sinks = self.links.clone();
        sinks.sort();
        sinks.dedup();
        sinks
    }

    /// The values `target.object` was set to (clears left out), in order.
    pub fn target_object_writes(&self) -> Vec<String> {
        self.metadata.iter().filter(|(k, _)| k == "target.object").filter_map(|(_, v)| v.clone()).collect()
    }
}

/// Everything recorded so far.
#[derive(Clone, Debug, Default)]
pub struct WatchLog {
    /// Every playback stream seen, in order of appearance.
    pub streams: Vec<StreamHistory>,
    /// `node.name` of each node in the graph now, by id.
    live_nodes: HashMap<u32, String>,
    /// `object.serial` of each node in the graph now, by `node.name`.
    serials: HashMap<String, String>,
    /// Round trips completed ([`GraphWatcher::sync`]).
    syncs_done: u64,
}

impl WatchLog {
    /// The streams of the app `name`, oldest first.
    pub fn streams_of(&self, name: &str) -> Vec<&StreamHistory> {
        self.streams.iter().filter(|s| s.app_name.as_deref() == Some(name)).collect()
    }

    /// The most recent stream with node id `node`.
    pub fn stream(&self, node: u32) -> Option<&StreamHistory> {
        self.streams.iter().rev().find(|s| s.node == node)
    }

    /// The `object.serial` of the node named `name`, while it exists.
    pub fn serial_of(&self, name: &str) -> Option<&str> {
        self.serials.get(name).map(String::as_str)
    }

    fn alive_stream_mut(&mut self, node: u32) -> Option<&mut StreamHistory> {
        self.streams.iter_mut().rev().find(|s| s.node == node && s.alive)
    }
}

/// What the test thread asks of the watcher thread.
enum Command {
    /// Do a round trip with PipeWire and count it in `syncs_done`.
    Sync,
    /// Quit the loop.
    Stop,
}

struct Shared {
    log: Mutex<WatchLog>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut WatchLog)) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut log);
        drop(log);
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, WatchLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Records the links and metadata writes of every playback stream of a
/// PipeWire instance, from the moment [`GraphWatcher::start`] returns.
pub struct GraphWatcher {
    shared: Arc<Shared>,
    commands: pw::channel::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl GraphWatcher {
    /// Connects to the PipeWire socket at `socket` and returns once the
    /// existing graph has been enumerated.
    pub fn start(socket: &Path) -> GraphWatcher {
        let shared = Arc::new(Shared { log: Mutex::new(WatchLog::default()), changed: Condvar::new() });
        let (commands, receiver) = pw::channel::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let socket = socket.to_string_lossy().into_owned();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("graph-watcher".into())
            .spawn(move || watch(&socket, &thread_shared, receiver, &ready_tx))
            .expect("spawning the graph watcher thread");
        let ready = ready_rx.recv_timeout(Duration::from_secs(10));
        match ready {
            Ok(Ok(())) => GraphWatcher { shared, commands, thread: Some(thread) },
            Ok(Err(e)) => panic!("graph watcher: {e}"),
            Err(e) => panic!("graph watcher did not enumerate the graph in time: {e}"),
        }
    }

    /// A copy of the record as it is now.
    pub fn log(&self) -> WatchLog {
        self.shared.lock().clone()
    }

    /// Makes a round trip with PipeWire: afterwards the record holds every
    /// event PipeWire had sent before the round trip was answered.
    pub fn sync(&self) {
        let target = self.shared.lock().syncs_done + 1;
        if self.commands.send(Command::Sync).is_err() {
            panic!("the graph watcher thread is gone");
        }
        self.wait_until(Duration::from_secs(10), "a round trip with PipeWire", |log| log.syncs_done >= target);
    }

    /// Waits until `condition` holds for the record (re-checked on every
    /// change) and returns a copy of it; panics after `timeout`, naming `what`.
    pub fn wait_until(&self, timeout: Duration, what: &str, mut condition: impl FnMut(&WatchLog) -> bool) -> WatchLog {
        let deadline = Instant::now() + timeout;
        let mut log = self.shared.lock();
        loop {
            if condition(&log) {
                return log.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {timeout:?} waiting for {what}; streams seen: {:#?}",
                log.streams
            );
            log = self.shared.changed.wait_timeout(log, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Drop for GraphWatcher {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends PipeWire a message at once, so it knows this client has received
/// the globals announced so far.
///
/// PipeWire forwards a metadata property about an object only to clients that
/// have acknowledged the object's global (a client acknowledges with its next
/// message); a client that only listens would miss the daemon's write about a
/// stream that has just appeared. (The answer to this round trip is not
/// counted as a [`GraphWatcher::sync`].)
fn acknowledge_globals(core: &pw::core::CoreRc) {
    if let Err(e) = core.sync(0) {
        panic!("graph watcher: cannot reach PipeWire: {e}");
    }
}

/// The watcher thread: connect, listen, run until [`Command::Stop`].
fn watch(
    socket: &str,
    shared: &Arc<Shared>,
    commands: pw::channel::Receiver<Command>,
    ready: &mpsc::Sender<Result<(), String>>,
) {
    pw::init();
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

    // The bound `default` metadata and its listener, kept for the thread's life.
    let metadata: std::rc::Rc<std::cell::RefCell<Vec<Box<dyn std::any::Any>>>> = Default::default();

    let on_global = Arc::clone(shared);
    let on_remove = Arc::clone(shared);
    let weak_registry = registry.downgrade();
    let keep_metadata = std::rc::Rc::clone(&metadata);
    let acknowledging_core = core.clone();
    let _registry_listener = registry
        .add_listener_local()
        .global(move |global| {
            let Some(props) = global.props else { return };
            match global.type_ {
                ObjectType::Node => {
                    let id = global.id;
                    let name = props.get("node.name").unwrap_or_default().to_owned();
                    let serial = props.get("object.serial").map(str::to_owned);
                    let is_stream = props.get("media.class") == Some(STREAM_OUTPUT_AUDIO);
                    if is_stream {
                        acknowledge_globals(&acknowledging_core);
                    }
                    let app_name = props.get("application.name").map(str::to_owned);
                    on_global.update(|log| {
                        if let Some(serial) = serial {
                            log.serials.insert(name.clone(), serial);
                        }
                        log.live_nodes.insert(id, name);
                        if is_stream {
                            log.streams.push(StreamHistory {
                                node: id,
                                app_name,
                                alive: true,
                                appeared: Some(Instant::now()),
                                ..Default::default()
                            });
                        }
                    });
                }
                ObjectType::Link => {
                    let node = |key| props.get(key).and_then(|v| v.parse::<u32>().ok());
                    let (Some(output), Some(input)) = (node("link.output.node"), node("link.input.node")) else {
                        return;
                    };
                    on_global.update(|log| {
                        let sink = log.live_nodes.get(&input).cloned().unwrap_or_else(|| format!("#{input}"));
                        if let Some(stream) = log.alive_stream_mut(output) {
                            stream.note(format!("link to {sink}"));
                            stream.links.push(sink);
                        }
                    });
                }
                ObjectType::Metadata if props.get("metadata.name") == Some("default") => {
                    let Some(registry) = weak_registry.upgrade() else { return };
                    let proxy: pw::metadata::Metadata = match registry.bind(global) {
                        Ok(proxy) => proxy,
                        Err(e) => panic!("cannot bind the default metadata: {e}"),
                    };
                    let on_property = Arc::clone(&on_global);
                    let listener = proxy
                        .add_listener_local()
                        .property(move |subject, key, _type, value| {
                            let (key, value) = (key.map(str::to_owned), value.map(str::to_owned));
                            on_property.update(|log| {
                                let Some(key) = key else { return };
                                if let Some(stream) = log.alive_stream_mut(subject) {
                                    stream.note(format!("metadata {key} = {value:?}"));
                                    stream.metadata.push((key, value));
                                }
                            });
                            0
                        })
                        .register();
                    keep_metadata.borrow_mut().push(Box::new((proxy, listener)));
                }
                _ => {}
            }
        })
        .global_remove(move |id| {
            on_remove.update(|log| {
                if let Some(name) = log.live_nodes.remove(&id) {
                    if log.serials.contains_key(&name) && !log.live_nodes.values().any(|n| *n == name) {
                        log.serials.remove(&name);
                    }
                }
                if let Some(stream) = log.alive_stream_mut(id) {
                    stream.note("removed".into());
                    stream.alive = false;
                }
            });
        })
        .register();

    // The round trips asked for by `GraphWatcher::sync`, still unanswered.
    let asked: std::rc::Rc<std::cell::RefCell<Vec<pw::spa::utils::result::AsyncSeq>>> = Default::default();
    let on_done = Arc::clone(shared);
    let first_sync = core.sync(0).map_err(|e| e.to_string());
    let first_seq = first_sync.as_ref().ok().copied();
    let ready_once = ready.clone();
    let answered = std::rc::Rc::clone(&asked);
    let _core_listener = core
        .add_listener_local()
        .done(move |id, seq| {
            if id != pw::core::PW_ID_CORE {
                return;
            }
            if Some(seq) == first_seq {
                let _ = ready_once.send(Ok(()));
                return;
            }
            let mut asked = answered.borrow_mut();
            if let Some(i) = asked.iter().position(|s| *s == seq) {
                asked.remove(i);
                on_done.update(|log| log.syncs_done += 1);
            }
        })
        .register();
    if let Err(e) = first_sync {
        let _ = ready.send(Err(format!("sync failed: {e}")));
        return;
    }

    let quit_loop = main_loop.clone();
    let sync_core = core.clone();
    let _commands = commands.attach(main_loop.loop_(), move |command| match command {
        Command::Sync => match sync_core.sync(0) {
            Ok(seq) => asked.borrow_mut().push(seq),
            Err(e) => panic!("graph watcher: sync failed: {e}"),
        },
        Command::Stop => quit_loop.quit(),
    });
    main_loop.run();
    metadata.borrow_mut().clear();
}
