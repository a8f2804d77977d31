//! The one event loop and everything on it.
//!
//! PipeWire's main loop is the only thread. On it: the PipeWire connection,
//! the control socket's epoll fd, the config file's inotify fd, signals, the
//! publish event, and two one-shot timers (reconnect, stats file). Nothing is
//! armed while nothing happens, so an idle daemon does not wake up.
//!
//! Coalescing: the first change of a loop pass signals the publish event;
//! every event already read in that pass is applied before the loop gets to
//! it, so they share one publish. A lone event is published at once.

use std::cell::{Cell, OnceCell, RefCell};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::Duration;

use anyhow::Result;
use pipewire as pw;
use pvm_ipc::writer::SnapshotWriter;
use pw::loop_::{EventSource, IoSource, Signal, SignalSource, TimerSource};

use crate::control::ControlServer;
use crate::daemon::{Action, Daemon};
use crate::model::GraphEvent;
use crate::pw::params;
use crate::pw::session::{Session, SessionEvents};
use crate::router::RouteAction;

/// Reconnect delays: first retry, and the cap of the doubling backoff.
const RECONNECT_FIRST: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_millis(1000);
/// The stats file is written at most this often.
const STATS_PERIOD: Duration = Duration::from_secs(1);

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not connected; a reconnect is scheduled.
    Disconnected,
    /// Connected, waiting for the first sync (registry enumerated).
    Enumerating(i32),
    /// Waiting for the second sync (bound objects' info and params).
    Binding(i32),
    /// Up to date.
    Live,
}

/// A raw fd wrapper for `add_io`, which wants to own something `AsRawFd`.
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Everything on the loop.
pub struct Runtime {
    main_loop: &'static pw::main_loop::MainLoopRc,
    daemon: RefCell<Daemon>,
    writer: RefCell<SnapshotWriter>,
    control: RefCell<ControlServer>,
    session: RefCell<Option<Session>>,
    phase: Cell<Phase>,
    backoff: Cell<Duration>,
    ever_connected: Cell<bool>,
    ready_sent: Cell<bool>,
    publish_pending: Cell<bool>,
    stats_armed: Cell<bool>,
    stats_path: PathBuf,
    config_watch: Option<ConfigWatch>,
    publish: OnceCell<EventSource<'static>>,
    reconnect: OnceCell<TimerSource<'static>>,
    stats_timer: OnceCell<TimerSource<'static>>,
}

/// The inotify watch on the config file's directory.
pub struct ConfigWatch {
    fd: OwnedFd,
    file_name: std::ffi::OsString,
}

impl ConfigWatch {
    /// Watches the directory of `config` (editors replace files by renaming).
    pub fn new(config: &std::path::Path) -> Option<ConfigWatch> {
        use rustix::fs::inotify;
        let dir = config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let file_name = config.file_name()?.to_owned();
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()?;
        let mask = inotify::WatchFlags::CLOSE_WRITE
            | inotify::WatchFlags::MOVED_TO
            | inotify::WatchFlags::CREATE
            | inotify::WatchFlags::DELETE;
        match inotify::add_watch(&fd, dir, mask) {
            Ok(_) => Some(ConfigWatch { fd, file_name }),
            Err(e) => {
                tracing::info!(dir = %dir.display(), "not watching the config directory: {e}");
                None
            }
        }
    }

    /// Drains pending events; true if one concerned the config file.
    fn config_touched(&self) -> bool {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = rustix::fs::inotify::Reader::new(&self.fd, &mut buf);
        let mut touched = false;
        while let Ok(ev) = reader.next() {
            if ev.file_name().is_some_and(|n| n.to_bytes() == self.file_name.as_encoded_bytes()) {
                touched = true;
            }
        }
        touched
    }
}

/// Options the runtime needs besides the daemon.
pub struct RuntimeFiles {
    /// The stats file.
    pub stats: PathBuf,
}

impl Runtime {
    /// Builds the runtime and registers its sources on the loop.
    pub fn new(
        main_loop: &'static pw::main_loop::MainLoopRc,
        daemon: Daemon,
        writer: SnapshotWriter,
        control: ControlServer,
        files: RuntimeFiles,
        config_watch: Option<ConfigWatch>,
    ) -> Rc<Runtime> {
        Rc::new(Runtime {
            main_loop,
            daemon: RefCell::new(daemon),
            writer: RefCell::new(writer),
            control: RefCell::new(control),
            session: RefCell::new(None),
            phase: Cell::new(Phase::Disconnected),
            backoff: Cell::new(RECONNECT_FIRST),
            ever_connected: Cell::new(false),
            ready_sent: Cell::new(false),
            publish_pending: Cell::new(false),
            stats_armed: Cell::new(false),
            stats_path: files.stats,
            config_watch,
            publish: OnceCell::new(),
            reconnect: OnceCell::new(),
            stats_timer: OnceCell::new(),
        })
    }

    /// Registers every source, connects, and runs until SIGTERM/SIGINT.
    pub fn run(self: &Rc<Self>) -> Result<()> {
        let lp: &'static pw::loop_::Loop = self.main_loop.loop_();
        let weak = Rc::downgrade(self);

        let w = weak.clone();
        let publish = lp.add_event(move || {
            if let Some(rt) = w.upgrade() {
                rt.publish_now();
            }
        });
        let _ = self.publish.set(publish);

        let w = weak.clone();
        let reconnect = lp.add_timer(move |_| {
            if let Some(rt) = w.upgrade() {
                rt.connect();
            }
        });
        let _ = self.reconnect.set(reconnect);

        let w = weak.clone();
        let stats_timer = lp.add_timer(move |_| {
            if let Some(rt) = w.upgrade() {
                rt.stats_armed.set(false);
                rt.write_stats();
            }
        });
        let _ = self.stats_timer.set(stats_timer);

        let w = weak.clone();
        let _control_io: IoSource<'static, Fd> =
            lp.add_io(Fd(self.control.borrow().raw_fd()), pw::spa::support::system::IoFlags::IN, move |_| {
                if let Some(rt) = w.upgrade() {
                    rt.serve_control();
                }
            });

        let _config_io = self.config_watch.as_ref().map(|cw| {
            let w = weak.clone();
            lp.add_io(Fd(cw.fd.as_raw_fd()), pw::spa::support::system::IoFlags::IN, move |_| {
                if let Some(rt) = w.upgrade() {
                    if rt.config_watch.as_ref().is_some_and(ConfigWatch::config_touched) {
                        tracing::info!("config file changed; reloading");
                        let _ = rt.daemon.borrow_mut().reload_config();
                        rt.after_change();
                    }
                }
            })
        });

        let signals: Vec<SignalSource<'static>> = [
            (Signal::TERM, SignalAction::Quit),
            (Signal::INT, SignalAction::Quit),
            (Signal::HUP, SignalAction::Reload),
            (Signal::USR1, SignalAction::DumpTrace),
        ]
        .into_iter()
        .map(|(sig, action)| {
            let w = weak.clone();
            lp.add_signal_local(sig, move || {
                if let Some(rt) = w.upgrade() {
                    rt.on_signal(action);
                }
            })
        })
        .collect();

        self.connect();
        self.main_loop.run();

        drop(signals);
        self.shutdown();
        Ok(())
    }

    fn on_signal(&self, action: SignalAction) {
        match action {
            SignalAction::Quit => {
                tracing::info!("shutting down");
                self.main_loop.quit();
            }
            SignalAction::Reload => {
                tracing::info!("SIGHUP: reloading the config");
                let _ = self.daemon.borrow_mut().reload_config();
                self.after_change();
            }
            SignalAction::DumpTrace => {
                let text = self.daemon.borrow().trace.to_text();
                tracing::warn!("last events (SIGUSR1):\n{text}");
            }
        }
    }

    fn shutdown(&self) {
        *self.session.borrow_mut() = None;
        self.control.borrow().remove_socket();
        self.write_stats();
        self.writer.borrow_mut().mark_stopped();
    }

    /// Tries to connect; on failure schedules another try.
    fn connect(self: &Rc<Self>) {
        // Drop a dead session first (outside any PipeWire callback).
        *self.session.borrow_mut() = None;
        let events: Weak<dyn SessionEvents> = Rc::downgrade(self) as Weak<dyn SessionEvents>;
        match Session::connect(self.main_loop, events) {
            Ok(session) => {
                let seq = session.sync();
                *self.session.borrow_mut() = Some(session);
                match seq {
                    Ok(seq) => {
                        self.phase.set(Phase::Enumerating(seq));
                        if self.ever_connected.replace(true) {
                            self.daemon.borrow_mut().stats.reconnects += 1;
                        }
                        self.daemon.borrow_mut().on_connected();
                        tracing::info!("connected to PipeWire");
                    }
                    Err(e) => self.disconnected(&format!("{e:#}")),
                }
            }
            Err(e) => {
                tracing::debug!("cannot connect to PipeWire: {e:#}");
                self.schedule_reconnect();
                // Not being able to reach PipeWire is a state, not a failure:
                // publish it and tell systemd we are up.
                self.request_publish();
                self.notify_ready();
            }
        }
    }

    fn schedule_reconnect(&self) {
        self.phase.set(Phase::Disconnected);
        let delay = self.backoff.get();
        self.backoff.set((delay * 2).min(RECONNECT_MAX));
        if let Some(t) = self.reconnect.get() {
            let _ = t.update_timer(Some(delay), None);
        }
    }

    fn disconnected(&self, why: &str) {
        if self.phase.get() == Phase::Disconnected {
            return;
        }
        tracing::warn!("lost the connection to PipeWire: {why}");
        self.daemon.borrow_mut().on_disconnected();
        self.backoff.set(RECONNECT_FIRST);
        self.schedule_reconnect();
        self.request_publish();
    }

    fn notify_ready(&self) {
        if self.ready_sent.replace(true) {
            return;
        }
        crate::notify::ready();
    }

    /// Performs queued actions and schedules a publish if needed.
    fn after_change(&self) {
        let actions = self.daemon.borrow_mut().take_actions();
        if !actions.is_empty() {
            let session = self.session.borrow();
            match session.as_ref() {
                Some(s) => {
                    for a in actions {
                        if let Err(e) = perform(s, &a) {
                            tracing::warn!("cannot perform {a:?}: {e:#}");
                            self.daemon.borrow_mut().stats.errors += 1;
                        }
                    }
                }
                None => tracing::debug!("dropping {} actions: not connected", actions.len()),
            }
        }
        if self.daemon.borrow().is_dirty() {
            self.request_publish();
        }
    }

    fn request_publish(&self) {
        if !self.publish_pending.replace(true) {
            if let Some(p) = self.publish.get() {
                let _ = p.signal();
            }
        }
    }

    fn publish_now(&self) {
        self.publish_pending.set(false);
        if let Some(s) = self.session.borrow().as_ref() {
            s.bury();
        }
        // Before the first sync the graph is incomplete: publishing it would
        // show a half-enumerated state (the initial flags are published once).
        let live = matches!(self.phase.get(), Phase::Live | Phase::Disconnected);
        if !live {
            return;
        }
        let mut daemon = self.daemon.borrow_mut();
        if !daemon.is_dirty() {
            return;
        }
        let snapshot = daemon.snapshot_for_publish();
        let generation = self.writer.borrow_mut().publish(snapshot);
        daemon.published(generation);
        let mut control = self.control.borrow_mut();
        if control.has_subscribers() {
            let json = daemon.status_json();
            control.broadcast(&json);
        }
        drop(control);
        drop(daemon);
        self.arm_stats();
    }

    fn arm_stats(&self) {
        if self.stats_armed.replace(true) {
            return;
        }
        if let Some(t) = self.stats_timer.get() {
            let _ = t.update_timer(Some(STATS_PERIOD), None);
        }
    }

    fn write_stats(&self) {
        let mut daemon = self.daemon.borrow_mut();
        if !daemon.stats.changed {
            return;
        }
        daemon.stats.changed = false;
        let text = daemon.stats.render(crate::stats::rss());
        drop(daemon);
        if let Err(e) = crate::atomic_file::write(&self.stats_path, text.as_bytes(), 0o600) {
            tracing::warn!(path = %self.stats_path.display(), "cannot write the stats file: {e}");
        }
    }

    fn serve_control(&self) {
        let mut control = self.control.borrow_mut();
        control.dispatch(&mut |request| self.daemon.borrow_mut().handle(request));
        drop(control);
        self.after_change();
    }
}

#[derive(Clone, Copy)]
enum SignalAction {
    Quit,
    Reload,
    DumpTrace,
}

fn perform(session: &Session, action: &Action) -> Result<()> {
    match action {
        Action::Route(RouteAction::Pin { stream, sink_serial, sink_id }) => {
            session.set_metadata(*stream, "target.object", Some("Spa:Id"), Some(&sink_serial.to_string()))?;
            session.set_metadata(*stream, "target.node", Some("Spa:Id"), Some(&sink_id.to_string()))
        }
        Action::Route(RouteAction::Unpin { stream }) => {
            session.set_metadata(*stream, "target.object", None, None)?;
            session.set_metadata(*stream, "target.node", None, None)
        }
        Action::NodeVolume { node, channels, muted } => {
            session.set_node_props(*node, &params::build_props(channels.as_deref(), *muted))
        }
        Action::RouteVolume { device, index, route_device, channels, muted } => {
            session.set_device_route(*device, &params::build_route(*index, *route_device, channels.as_deref(), *muted))
        }
        Action::DefaultSink { name } => {
            let value = serde_json::json!({ "name": name }).to_string();
            session.set_metadata(0, "default.configured.audio.sink", Some("Spa:String:JSON"), Some(&value))
        }
    }
}

impl SessionEvents for Runtime {
    fn graph(&self, event: GraphEvent) {
        self.daemon.borrow_mut().on_graph_event(event);
        self.after_change();
    }

    fn metadata(&self, subject: u32, key: Option<&str>, value: Option<&str>) {
        self.daemon.borrow_mut().on_metadata(subject, key, value);
        self.after_change();
    }

    fn synced(&self, seq: i32) {
        match self.phase.get() {
            Phase::Enumerating(s) if s == seq => {
                // Globals are known and bound; one more round trip brings
                // their info and params.
                let next = self.session.borrow().as_ref().map(Session::sync);
                match next {
                    Some(Ok(n)) => self.phase.set(Phase::Binding(n)),
                    _ => self.disconnected("sync failed"),
                }
            }
            Phase::Binding(s) if s == seq => {
                self.phase.set(Phase::Live);
                self.daemon.borrow_mut().on_synced();
                self.backoff.set(RECONNECT_FIRST);
                tracing::info!(
                    sinks = self.daemon.borrow().mixer().sink_count(),
                    apps = self.daemon.borrow().mixer().apps().len(),
                    "in sync with PipeWire"
                );
                self.request_publish();
                self.publish_now();
                self.notify_ready();
            }
            _ => {}
        }
    }

    fn disconnected(&self, why: &str) {
        Runtime::disconnected(self, why);
    }
}
