//! Records every link each playback stream ever gets.
//!
//! PipeWire announces every new global to every registry listener before it
//! can be destroyed, so a link that exists at all is recorded, however short
//! its life; polling `pw-dump` could miss it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipewire as pw;
use pw::types::ObjectType;
use testbed::STREAM_OUTPUT_AUDIO;

/// One playback stream node, as the watcher saw it.
#[derive(Clone, Debug)]
pub struct Stream {
    /// Its node id (ids are reused once a node is gone).
    pub id: u32,
    /// Its `application.name`.
    pub app: Option<String>,
    /// When its global arrived.
    pub appeared: Instant,
    /// The `node.name` of the input node of every link it ever had, with
    /// when the link's global arrived (one entry per port link).
    pub links: Vec<(String, Instant)>,
    /// Still in the graph.
    pub alive: bool,
}

impl Stream {
    /// The distinct sinks it was ever linked to, sorted.
    pub fn sinks(&self) -> Vec<String> {
        let mut sinks: Vec<String> = self.links.iter().map(|(sink, _)| sink.clone()).collect();
        sinks.sort();
        sinks.dedup();
        sinks
    }

    /// The sink of its first link.
    pub fn first_sink(&self) -> Option<&str> {
        self.links.first().map(|(sink, _)| sink.as_str())
    }

    /// How long after it appeared its first link appeared.
    pub fn first_link_after(&self) -> Option<Duration> {
        self.links.first().map(|(_, at)| at.saturating_duration_since(self.appeared))
    }
}

#[derive(Default)]
struct Record {
    streams: Vec<Stream>,
    /// `node.name` of every node in the graph, by id.
    names: HashMap<u32, String>,
}

type Shared = Arc<(Mutex<Record>, Condvar)>;

fn update(shared: &Shared, f: impl FnOnce(&mut Record)) {
    f(&mut shared.0.lock().unwrap_or_else(|e| e.into_inner()));
    shared.1.notify_all();
}

/// Watches one PipeWire instance from [`LinkWatcher::start`] on.
pub struct LinkWatcher {
    shared: Shared,
    stop: pw::channel::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl LinkWatcher {
    /// Connects to the PipeWire socket at `socket`; returns once the graph
    /// as it is has been enumerated.
    pub fn start(socket: &Path) -> LinkWatcher {
        let shared: Shared = Default::default();
        let (stop, stop_receiver) = pw::channel::channel::<()>();
        let (ready, is_ready) = mpsc::channel::<()>();
        let socket = socket.to_string_lossy().into_owned();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("link-watcher".into())
            .spawn(move || watch(&socket, &thread_shared, stop_receiver, &ready))
            .expect("starting the link watcher thread");
        is_ready.recv_timeout(Duration::from_secs(10)).expect("the link watcher did not connect");
        LinkWatcher { shared, stop, thread: Some(thread) }
    }

    /// The streams seen so far, in order of appearance.
    pub fn streams(&self) -> Vec<Stream> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).streams.clone()
    }

    /// Waits until `condition` holds (checked after every change) and returns
    /// the streams then; panics after `timeout`, naming `what`.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&[Stream]) -> bool,
    ) -> Vec<Stream> {
        let deadline = Instant::now() + timeout;
        let mut record = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if condition(&record.streams) {
                return record.streams.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out after {timeout:?} waiting for {what}; streams: {:#?}", record.streams);
            record = self.shared.1.wait_timeout(record, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Drop for LinkWatcher {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(socket: &str, shared: &Shared, stop: pw::channel::Receiver<()>, ready: &mpsc::Sender<()>) {
    pw::init();
    let main_loop = pw::main_loop::MainLoopRc::new(None).expect("main loop");
    let context = pw::context::ContextRc::new(&main_loop, None).expect("context");
    let core = context
        .connect_rc(Some(pw::properties::properties! { *pw::keys::REMOTE_NAME => socket }))
        .expect("connecting the link watcher");
    let registry = core.get_registry_rc().expect("registry");

    let on_global = Arc::clone(shared);
    let on_remove = Arc::clone(shared);
    let _registry_listener = registry
        .add_listener_local()
        .global(move |global| {
            let Some(props) = global.props else { return };
            match global.type_ {
                ObjectType::Node => {
                    let name = props.get("node.name").unwrap_or_default().to_owned();
                    let stream = (props.get("media.class") == Some(STREAM_OUTPUT_AUDIO)).then(|| Stream {
                        id: global.id,
                        app: props.get("application.name").map(str::to_owned),
                        appeared: Instant::now(),
                        links: Vec::new(),
                        alive: true,
                    });
                    update(&on_global, |record| {
                        record.names.insert(global.id, name);
                        record.streams.extend(stream);
                    });
                }
                ObjectType::Link => {
                    let node = |key| props.get(key).and_then(|v| v.parse::<u32>().ok());
                    let (Some(output), Some(input)) = (node("link.output.node"), node("link.input.node")) else {
                        return;
                    };
                    update(&on_global, |record| {
                        let sink = record.names.get(&input).cloned().unwrap_or_else(|| format!("#{input}"));
                        if let Some(stream) = record.streams.iter_mut().rev().find(|s| s.id == output && s.alive) {
                            stream.links.push((sink, Instant::now()));
                        }
                    });
                }
                _ => {}
            }
        })
        .global_remove(move |id| {
            update(&on_remove, |record| {
                record.names.remove(&id);
                if let Some(stream) = record.streams.iter_mut().rev().find(|s| s.id == id && s.alive) {
                    stream.alive = false;
                }
            });
        })
        .register();

    let pending = core.sync(0).expect("sync");
    let ready = ready.clone();
    let _core_listener = core
        .add_listener_local()
        .done(move |id, seq| {
            if id == pw::core::PW_ID_CORE && seq == pending {
                let _ = ready.send(());
            }
        })
        .register();
    let quit = main_loop.clone();
    let _stop = stop.attach(main_loop.loop_(), move |()| quit.quit());
    main_loop.run();
}
