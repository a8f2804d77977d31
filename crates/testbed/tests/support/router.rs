//! A stand-in for the daemon's side of the hold, as the contract describes
//! it: a client named like the daemon (`application.name` =
//! `pipewire-volume-mixer-daemon`) that, for every new playback stream,
//! writes the routing pin into `default` (`target.object` = the sink's
//! serial, `target.node` = its id), then, once a round trip has confirmed
//! the pin, the decision (subject = the stream's node id, `pvm.decision`,
//! `Spa:Int`, the stream's `object.serial`), also into `default`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use pipewire as pw;
use pw::types::ObjectType;
use testbed::hook::{DAEMON_CLIENT_NAME, DECISION_KEY, HOLD_KEY};
use testbed::{AUDIO_SINK, STREAM_OUTPUT_AUDIO};

/// What the router does with a new playback stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decide {
    /// Pin it to the sink with this `node.name`, then decide, `delay` after
    /// its global arrived (a slow daemon).
    Route {
        /// The sink's `node.name`.
        sink: String,
        /// How long to wait first.
        delay: Duration,
    },
    /// Nothing: no pin, no decision (a daemon that is stuck).
    Nothing,
}

enum Command {
    /// Change what the router does, then answer after a round trip.
    Set(Decide, mpsc::Sender<()>),
    /// Remove `pvm.hold` from the router's metadata, then answer after a
    /// round trip (PipeWire has processed the removal).
    ClearHold(mpsc::Sender<()>),
    /// Pin and decide for a stream now (after a delay).
    Decide { node_id: u32, serial: String },
    /// Disconnect.
    Stop,
}

impl Decide {
    /// Pin to `sink` and decide at once.
    pub fn route(sink: &str) -> Decide {
        Decide::Route { sink: sink.to_owned(), delay: Duration::ZERO }
    }
}

/// The router's client, on its own thread.
pub struct StandInRouter {
    commands: pw::channel::Sender<Command>,
    thread: Option<JoinHandle<()>>,
    decisions: Arc<AtomicUsize>,
}

impl StandInRouter {
    /// Connects to the PipeWire socket at `socket` and returns once the
    /// `default` metadata is bound.
    pub fn start(socket: &Path, decide: Decide) -> StandInRouter {
        let (commands, receiver) = pw::channel::channel::<Command>();
        let (ready, is_ready) = mpsc::channel::<()>();
        let decisions = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&decisions);
        let socket = socket.to_string_lossy().into_owned();
        let thread = std::thread::Builder::new()
            .name("stand-in-router".into())
            .spawn({
                let commands = commands.clone();
                move || route(&socket, decide, &counter, receiver, &commands, &ready)
            })
            .expect("starting the router thread");
        is_ready.recv_timeout(Duration::from_secs(10)).expect("the stand-in router did not get ready");
        StandInRouter { commands, thread: Some(thread), decisions }
    }

    /// How many decisions it has written.
    pub fn decisions(&self) -> usize {
        self.decisions.load(Ordering::SeqCst)
    }

    /// Changes what it does with the next new streams.
    pub fn set(&self, decide: Decide) {
        self.call(|reply| Command::Set(decide, reply));
    }

    /// Removes the hook's `pvm.hold` announcement from `default`.
    pub fn clear_hold(&self) {
        self.call(Command::ClearHold);
    }

    fn call(&self, command: impl FnOnce(mpsc::Sender<()>) -> Command) {
        let (reply, answer) = mpsc::channel();
        assert!(self.commands.send(command(reply)).is_ok(), "the router thread is gone");
        answer.recv_timeout(Duration::from_secs(10)).expect("the router did not answer");
    }

    /// Closes its connection: the hook sees the daemon's client go.
    pub fn disconnect(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the router thread panicked");
        }
    }
}

impl Drop for StandInRouter {
    fn drop(&mut self) {
        self.stop();
    }
}

type Seq = pw::spa::utils::result::AsyncSeq;

/// Something to do when a round trip on the main connection completes.
enum AfterSync {
    /// Answer a command.
    Reply(mpsc::Sender<()>),
    /// Write the decision for a stream whose pin PipeWire has now processed.
    Decide { node_id: u32, serial: String },
}

/// What the router thread knows and holds.
struct State {
    decide: Decide,
    /// Sinks by `node.name`: node id and `object.serial`.
    sinks: HashMap<String, (u32, String)>,
    /// The `default` metadata, once bound.
    default: Option<pw::metadata::Metadata>,
    /// The connection.
    core: pw::core::CoreRc,
    /// What to do when a round trip completes: sync sequence, what.
    pending: Vec<(Seq, AfterSync)>,
}

impl State {
    /// A new stream: pin it and decide, now or after the delay.
    fn on_stream(&mut self, node_id: u32, serial: &str, commands: &pw::channel::Sender<Command>) {
        let Decide::Route { delay, .. } = &self.decide else { return };
        if delay.is_zero() {
            return self.pin(node_id, serial);
        }
        let (delay, commands, serial) = (*delay, commands.clone(), serial.to_owned());
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let _ = commands.send(Command::Decide { node_id, serial });
        });
    }

    /// Pins a stream; its decision follows once the pin is processed.
    fn pin(&mut self, node_id: u32, serial: &str) {
        let Decide::Route { sink, .. } = &self.decide else { return };
        let (Some((sink_id, sink_serial)), Some(default)) = (self.sinks.get(sink), &self.default) else {
            panic!("stand-in router: no sink {sink:?} or no default metadata");
        };
        default.set_property(node_id, "target.object", Some("Spa:Id"), Some(sink_serial));
        default.set_property(node_id, "target.node", Some("Spa:Id"), Some(&sink_id.to_string()));
        self.after_sync(AfterSync::Decide { node_id, serial: serial.to_owned() });
    }

    /// Does `then` once the connection has done a round trip.
    fn after_sync(&mut self, then: AfterSync) {
        let seq = self.core.sync(0).expect("sync");
        self.pending.push((seq, then));
    }

    /// A round trip completed: do what waited for it.
    fn on_done(&mut self, seq: Seq, decisions: &AtomicUsize) {
        let Some(i) = self.pending.iter().position(|(s, _)| *s == seq) else { return };
        match self.pending.remove(i).1 {
            AfterSync::Reply(reply) => {
                let _ = reply.send(());
            }
            AfterSync::Decide { node_id, serial } => {
                let default = self.default.as_ref().expect("the default metadata");
                default.set_property(node_id, DECISION_KEY, Some("Spa:Int"), Some(&serial));
                decisions.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

fn route(
    socket: &str,
    decide: Decide,
    decisions: &Arc<AtomicUsize>,
    commands: pw::channel::Receiver<Command>,
    sender: &pw::channel::Sender<Command>,
    ready: &mpsc::Sender<()>,
) {
    pw::init();
    let main_loop = pw::main_loop::MainLoopRc::new(None).expect("main loop");
    let context = pw::context::ContextRc::new(&main_loop, None).expect("context");
    let core = context
        .connect_rc(Some(pw::properties::properties! {
            *pw::keys::REMOTE_NAME => socket,
            "application.name" => DAEMON_CLIENT_NAME,
        }))
        .expect("connecting the stand-in router");
    let registry = core.get_registry_rc().expect("registry");
    let state = Rc::new(RefCell::new(State {
        decide,
        sinks: HashMap::new(),
        default: None,
        core: core.clone(),
        pending: Vec::new(),
    }));

    let on_global = Rc::clone(&state);
    let weak_registry = registry.downgrade();
    let sender = sender.clone();
    let _registry_listener = registry
        .add_listener_local()
        .global(move |global| {
            let Some(props) = global.props else { return };
            match global.type_ {
                ObjectType::Node => {
                    let serial = props.get("object.serial").unwrap_or_default().to_owned();
                    match props.get("media.class") {
                        Some(AUDIO_SINK) => {
                            let name = props.get("node.name").unwrap_or_default().to_owned();
                            on_global.borrow_mut().sinks.insert(name, (global.id, serial));
                        }
                        Some(STREAM_OUTPUT_AUDIO) => on_global.borrow_mut().on_stream(global.id, &serial, &sender),
                        _ => {}
                    }
                }
                ObjectType::Metadata if props.get("metadata.name") == Some("default") => {
                    let Some(registry) = weak_registry.upgrade() else { return };
                    let metadata: pw::metadata::Metadata = registry.bind(global).expect("binding `default`");
                    on_global.borrow_mut().default = Some(metadata);
                }
                _ => {}
            }
        })
        .register();

    // Ready once a round trip is done: the graph is enumerated and
    // `default` bound.
    let first = core.sync(0).expect("sync");
    let on_done = Rc::clone(&state);
    let ready = ready.clone();
    let counter = Arc::clone(decisions);
    let listener = core
        .add_listener_local()
        .done(move |id, seq| {
            if id != pw::core::PW_ID_CORE {
                return;
            }
            if seq == first {
                let _ = ready.send(());
            } else {
                on_done.borrow_mut().on_done(seq, &counter);
            }
        })
        .register();

    let quit = main_loop.clone();
    let on_command = Rc::clone(&state);
    let _commands = commands.attach(main_loop.loop_(), move |command| {
        let mut state = on_command.borrow_mut();
        match command {
            Command::Set(decide, reply) => {
                state.decide = decide;
                state.after_sync(AfterSync::Reply(reply));
            }
            Command::ClearHold(reply) => {
                state.default.as_ref().expect("the default metadata").set_property(0, HOLD_KEY, None, None);
                state.after_sync(AfterSync::Reply(reply));
            }
            Command::Decide { node_id, serial } => state.pin(node_id, &serial),
            Command::Stop => quit.quit(),
        }
    });
    main_loop.run();
    drop(listener);
}
