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
use std::time::{Duration, Instant};

use anyhow::Result;
use pipewire as pw;
use pvm_ipc::protocol::{Request, Response};
use pvm_ipc::writer::SnapshotWriter;
use pw::loop_::{EventSource, IoSource, Signal, SignalSource, TimerSource};

use crate::control::server::{Reply, Token};
use crate::control::ControlServer;
use crate::daemon::{Daemon, Outcome};
use crate::metadata_view::ECHO_GRACE;
use crate::model::GraphEvent;
use crate::pw::actions::{perform, HOLD_KEY};
use crate::pw::connection::{Connection, Phase, Synced};
use crate::pw::session::SessionEvents;
use crate::requests::Requests;

/// The stats file is written at most this often.
const STATS_PERIOD: Duration = Duration::from_secs(1);
/// How long after connecting (or after the session manager restarted) the
/// routing hold has to announce itself before we say it is missing.
const HOLD_GRACE: Duration = Duration::from_secs(2);

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
    connection: RefCell<Connection>,
    requests: RefCell<Requests>,
    ready_sent: Cell<bool>,
    /// The round trip that settles the channel actions sent so far.
    wiring_sync: Cell<Option<i32>>,
    publish_pending: Cell<bool>,
    stats_armed: Cell<bool>,
    stats_path: PathBuf,
    config_watch: Option<ConfigWatch>,
    publish: OnceCell<EventSource<'static>>,
    reconnect: OnceCell<TimerSource<'static>>,
    stats_timer: OnceCell<TimerSource<'static>>,
    answer_timer: OnceCell<TimerSource<'static>>,
    echo_timer: OnceCell<TimerSource<'static>>,
    config_timer: OnceCell<TimerSource<'static>>,
    client_timer: OnceCell<TimerSource<'static>>,
    /// When `client_timer` fires, if armed.
    client_recheck_at: Cell<Option<Instant>>,
    /// When `client_timer` last read the metadata again.
    client_recheck_done: Cell<Option<Instant>>,
    hold_check: OnceCell<TimerSource<'static>>,
}

/// When to read the `default` metadata again after a PipeWire client
/// connected (most tools bind the metadata at once) or left (see
/// [`crate::metadata_view`]). Several clients within the delay give one read.
const RECHECK_AFTER_CLIENT_CONNECTED: Duration = Duration::from_millis(500);
const RECHECK_AFTER_CLIENT_LEFT: Duration = Duration::from_millis(20);
/// The shortest time between two of those reads.
const CLIENT_RECHECK_SPACING: Duration = Duration::from_millis(100);

/// How long the config file must be left alone after a change before it is
/// read again: a burst of writes (an editor, a script writing twice) gives
/// one reload, of the final text.
const CONFIG_SETTLE: Duration = Duration::from_millis(100);

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
        // MODIFY too: a write in progress pushes the reload back (see
        // CONFIG_SETTLE), so a file being rewritten in place is never read
        // half written (an empty file is a valid config: no rules).
        let mask = inotify::WatchFlags::CLOSE_WRITE
            | inotify::WatchFlags::MODIFY
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
            connection: RefCell::new(Connection::new()),
            requests: RefCell::new(Requests::new()),
            ready_sent: Cell::new(false),
            wiring_sync: Cell::new(None),
            publish_pending: Cell::new(false),
            stats_armed: Cell::new(false),
            stats_path: files.stats,
            config_watch,
            publish: OnceCell::new(),
            reconnect: OnceCell::new(),
            stats_timer: OnceCell::new(),
            answer_timer: OnceCell::new(),
            echo_timer: OnceCell::new(),
            config_timer: OnceCell::new(),
            client_timer: OnceCell::new(),
            client_recheck_at: Cell::new(None),
            client_recheck_done: Cell::new(None),
            hold_check: OnceCell::new(),
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
        let answer_timer = lp.add_timer(move |_| {
            if let Some(rt) = w.upgrade() {
                rt.answer_due();
            }
        });
        let _ = self.answer_timer.set(answer_timer);

        let w = weak.clone();
        let echo_timer = lp.add_timer(move |_| {
            if let Some(rt) = w.upgrade() {
                rt.check_echoes();
            }
        });
        let _ = self.echo_timer.set(echo_timer);

        let w = weak.clone();
        let config_timer = lp.add_timer(move |_| {
            if let Some(rt) = w.upgrade() {
                tracing::info!("config file changed; reloading");
                let _ = rt.daemon.borrow_mut().reload_config();
                rt.after_change();
            }
        });
        let _ = self.config_timer.set(config_timer);

        let w = weak.clone();
        let client_timer = lp.add_timer(move |_| {
            if let Some(rt) = w.upgrade() {
                rt.client_recheck_due();
            }
        });
        let _ = self.client_timer.set(client_timer);

        let w = weak.clone();
        let hold_check = lp.add_timer(move |_| {
            if let Some(rt) = w.upgrade() {
                rt.check_hold();
            }
        });
        let _ = self.hold_check.set(hold_check);

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
                        if let Some(t) = rt.config_timer.get() {
                            let _ = t.update_timer(Some(CONFIG_SETTLE), None);
                        }
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
        self.connection.borrow_mut().drop_session();
        self.control.borrow().remove_socket();
        self.write_stats();
        self.writer.borrow_mut().mark_stopped();
    }

    /// Tries to connect; on failure schedules another try.
    fn connect(self: &Rc<Self>) {
        let events: Weak<dyn SessionEvents> = Rc::downgrade(self) as Weak<dyn SessionEvents>;
        let result = self.connection.borrow_mut().connect(self.main_loop, events);
        match result {
            Ok(reconnect) => {
                if reconnect {
                    self.daemon.borrow_mut().stats.reconnects += 1;
                }
                self.daemon.borrow_mut().on_connected();
                tracing::info!("connected to PipeWire");
            }
            Err(e) => {
                tracing::debug!("cannot connect to PipeWire: {e:#}");
                self.schedule_reconnect();
                // Not being able to reach PipeWire is a state, not a failure:
                // publish it and tell systemd we are up.
                self.answer_early();
                self.request_publish();
                self.notify_ready();
            }
        }
    }

    fn schedule_reconnect(&self) {
        let delay = self.connection.borrow_mut().lost();
        if let (Some(delay), Some(t)) = (delay, self.reconnect.get()) {
            let _ = t.update_timer(Some(delay), None);
        }
    }

    fn disconnected(&self, why: &str) {
        if self.connection.borrow().phase() == Phase::Disconnected {
            return;
        }
        tracing::warn!("lost the connection to PipeWire: {why}");
        self.wiring_sync.set(None);
        self.daemon.borrow_mut().on_disconnected();
        self.requests.borrow_mut().connection_lost();
        self.schedule_reconnect();
        self.answer_early();
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
            let connection = self.connection.borrow();
            match connection.session() {
                Some(s) => {
                    for a in &actions {
                        match perform(s, a) {
                            Ok(_) => {}
                            // Kept by the router and written again when the
                            // metadata is back (see Daemon::on_default_metadata).
                            Err(e) if matches!(a, crate::daemon::Action::Route(_)) => {
                                tracing::debug!("routing write kept for later: {e:#}");
                            }
                            Err(e) => {
                                tracing::warn!("cannot perform {a:?}: {e:#}");
                                self.daemon.borrow_mut().stats.errors += 1;
                            }
                        }
                    }
                }
                None => tracing::debug!("not connected: {} actions are re-derived after the reconnect", actions.len()),
            }
        }
        self.sync_wiring();
        self.arm_echo_check();
        if self.daemon.borrow().is_dirty() {
            self.request_publish();
        }
    }

    /// Wakes when the oldest metadata write still waiting for its echo
    /// becomes overdue (see [`crate::metadata_view`]).
    fn arm_echo_check(&self) {
        let Some(t) = self.echo_timer.get() else { return };
        let oldest = self.connection.borrow().session().and_then(|s| s.oldest_unechoed_write());
        let delay =
            oldest.map(|at| (at + ECHO_GRACE).saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
        let _ = t.update_timer(delay, None);
    }

    fn check_echoes(&self) {
        let overdue = {
            let connection = self.connection.borrow();
            connection.session().and_then(|s| s.oldest_unechoed_write()).is_some_and(|at| at.elapsed() >= ECHO_GRACE)
        };
        if overdue {
            tracing::debug!("a metadata write of ours was not echoed in time");
            self.resync_metadata();
        } else {
            self.arm_echo_check();
        }
    }

    fn arm_client_recheck(&self, at: Instant) {
        if self.client_recheck_at.get().is_some_and(|armed| armed <= at) {
            return;
        }
        self.client_recheck_at.set(Some(at));
        if let Some(t) = self.client_timer.get() {
            let delay = at.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            let _ = t.update_timer(Some(delay), None);
        }
    }

    /// The re-read after clients came or went, at most one per
    /// [`CLIENT_RECHECK_SPACING`] however fast tools come and go.
    fn client_recheck_due(&self) {
        self.client_recheck_at.set(None);
        let now = Instant::now();
        if let Some(next) = self.client_recheck_done.get().map(|done| done + CLIENT_RECHECK_SPACING) {
            if next > now {
                self.arm_client_recheck(next);
                return;
            }
        }
        self.client_recheck_done.set(Some(now));
        self.resync_metadata();
    }

    /// Reads the `default` metadata again, in case events were held back
    /// from us; what was missed arrives as events.
    fn resync_metadata(&self) {
        let connection = self.connection.borrow();
        let Some(session) = connection.session() else { return };
        match session.resync_metadata() {
            Ok(true) => self.daemon.borrow_mut().stats.metadata_resyncs += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot read the default metadata again: {e:#}"),
        }
    }

    /// Channel actions were sent: one round trip after them tells what they
    /// made (a newer one supersedes an older one: round trips complete in
    /// order).
    fn sync_wiring(&self) {
        if !self.daemon.borrow_mut().take_wiring_unsettled() {
            return;
        }
        if let Some(seq) = self.connection.borrow().sync() {
            self.wiring_sync.set(Some(seq));
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
        if let Some(s) = self.connection.borrow().session() {
            s.bury();
        }
        // Before the first sync the graph is incomplete: publishing it would
        // show a half-enumerated state (the initial flags are published once).
        if self.connection.borrow().is_syncing() {
            return;
        }
        let mut daemon = self.daemon.borrow_mut();
        if daemon.is_dirty() {
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
        } else {
            drop(daemon);
        }
        // The snapshot now shows everything the graph does: answer the
        // requests whose result it shows.
        self.resolve_requests();
    }

    /// Answers waiting requests that are due, given the published graph.
    fn resolve_requests(&self) {
        if self.requests.borrow().is_empty() {
            return;
        }
        let (answers, deferrals) = {
            let daemon = self.daemon.borrow();
            self.requests.borrow_mut().resolve(daemon.mixer(), Instant::now())
        };
        for d in deferrals {
            self.daemon.borrow_mut().defer_until_running(d.sink, d.channels, d.muted);
        }
        if !answers.is_empty() {
            let mut control = self.control.borrow_mut();
            for (token, response) in &answers {
                if matches!(response, Response::Error(_)) {
                    self.daemon.borrow_mut().count_request_error();
                }
                control.complete(*token, response);
            }
            drop(control);
            // Their clients' next requests.
            self.serve_control();
        }
        self.arm_answer_timer();
    }

    /// Says once, a little after connecting or after the session manager
    /// restarted, when no routing hold has announced itself.
    fn arm_hold_check(&self) {
        if let Some(t) = self.hold_check.get() {
            let _ = t.update_timer(Some(HOLD_GRACE), None);
        }
    }

    fn check_hold(&self) {
        let daemon = self.daemon.borrow();
        if daemon.is_connected() && !daemon.hold_active() {
            tracing::warn!(
                "no routing hold announced by the session manager: new streams are pinned as they appear and may \
                 start on another sink for a moment (WirePlumber 0.5: `pvmctl setup wireplumber` installs the hold)"
            );
        }
    }

    /// The earliest deadline of a waiting request passed.
    fn answer_due(&self) {
        if self.requests.borrow_mut().take_recheck(Instant::now()) {
            tracing::debug!("a request shown by the metadata is late: reading the metadata again");
            self.resync_metadata();
        }
        self.resolve_requests();
    }

    fn arm_answer_timer(&self) {
        let Some(t) = self.answer_timer.get() else { return };
        let next = self.requests.borrow().next_deadline();
        let delay = next.map(|d| d.saturating_duration_since(Instant::now()).max(Duration::from_micros(100)));
        let _ = t.update_timer(delay, None);
    }

    /// Sends one round trip for every waiting request that needs one.
    fn sync_requests(&self) {
        if !self.requests.borrow().needs_sync() {
            return;
        }
        match self.connection.borrow().sync() {
            Some(seq) => self.requests.borrow_mut().sync_sent(seq),
            None => self.requests.borrow_mut().connection_lost(),
        }
    }

    /// Runs the requests that waited for the first sync (or answers them,
    /// if the connection could not be made).
    fn answer_early(&self) {
        let early = self.requests.borrow_mut().take_early();
        if early.is_empty() {
            return;
        }
        let mut control = self.control.borrow_mut();
        for (token, request) in early {
            if let Some(response) = self.handle_request(token, request) {
                control.complete(token, &response);
            }
        }
        drop(control);
        self.after_change();
        self.sync_requests();
        self.request_publish();
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
        control.dispatch(&mut |token, request| match self.handle_request(token, request) {
            Some(response) => Reply::Now(response),
            None => Reply::Later,
        });
        drop(control);
        self.after_change();
        self.sync_requests();
        self.arm_answer_timer();
    }

    /// Runs one request. `None`: it is answered later (see [`Requests`]).
    fn handle_request(&self, token: Token, request: Request) -> Option<Response> {
        let needs_graph = !matches!(request, Request::Ping | Request::Version | Request::Trace);
        if needs_graph && self.connection.borrow().is_syncing() {
            // The graph is being enumerated: a sink named in the request may
            // simply not have been announced yet. Same answer as after it.
            self.requests.borrow_mut().wait_for_sync(token, request, Instant::now());
            return None;
        }
        let outcome = self.daemon.borrow_mut().handle(request);
        let (expect, payload) = match outcome {
            Outcome::Done(response) => return Some(response),
            Outcome::Wait { expect, payload } => (expect, payload),
        };
        // Perform this request's writes now, to know which proxies carry
        // them and whether they could be made.
        let actions = self.daemon.borrow_mut().take_actions();
        let mut proxies = Vec::new();
        {
            let connection = self.connection.borrow();
            let Some(session) = connection.session() else {
                return Some(Response::Error("not connected to PipeWire".into()));
            };
            for a in &actions {
                match perform(session, a) {
                    Ok(ids) => proxies.extend(ids),
                    Err(e) if matches!(a, crate::daemon::Action::Route(_)) => {
                        // Kept by the router; written when the metadata is back.
                        tracing::debug!("routing write kept for later: {e:#}");
                    }
                    Err(e) => return Some(Response::Error(format!("{e:#}"))),
                }
            }
        }
        self.requests.borrow_mut().wait(token, expect, payload, proxies, Instant::now());
        self.arm_echo_check();
        None
    }
}

#[derive(Clone, Copy)]
enum SignalAction {
    Quit,
    Reload,
    DumpTrace,
}

impl SessionEvents for Runtime {
    fn graph(&self, event: GraphEvent) {
        self.daemon.borrow_mut().on_graph_event(event);
        self.after_change();
    }

    fn metadata(&self, subject: u32, key: Option<&str>, value: Option<&str>) {
        if subject == 0 && key.is_none_or(|k| k == HOLD_KEY) {
            self.daemon.borrow_mut().set_hold_active(value.is_some() && key.is_some());
        }
        self.daemon.borrow_mut().on_metadata(subject, key, value);
        self.after_change();
    }

    fn default_metadata(&self, bound: bool) {
        self.daemon.borrow_mut().on_default_metadata(bound);
        if !bound {
            // The hold goes with the session manager; a restarted one says so again.
            self.arm_hold_check();
        }
        self.after_change();
    }

    fn client_seen(&self, connected: bool) {
        // The clients listed while we enumerate were there before us: our
        // own first binding of the metadata reads its current state.
        if connected && self.connection.borrow().is_syncing() {
            return;
        }
        // Read the metadata again once the client has had time to bind it,
        // or right after it left (its bind, if any, is over).
        let delay = if connected { RECHECK_AFTER_CLIENT_CONNECTED } else { RECHECK_AFTER_CLIENT_LEFT };
        self.arm_client_recheck(Instant::now() + delay);
    }

    fn proxy_error(&self, proxy: u32, res: i32, message: &str) {
        // A write about an object that went away meanwhile (a stream that
        // ended while we pinned it): not the request's failure; what it waits
        // for says what became of that object.
        if res != -libc::ENOENT {
            self.requests.borrow_mut().proxy_error(proxy, message);
        }
        self.daemon.borrow_mut().stats.errors += 1;
    }

    fn synced(&self, seq: i32) {
        let step = self.connection.borrow_mut().synced(seq);
        tracing::debug!(seq, ?step, "round trip done");
        match step {
            Synced::Enumerated => {}
            Synced::Failed => self.disconnected("sync failed"),
            Synced::Live => {
                self.daemon.borrow_mut().on_synced();
                tracing::info!(
                    sinks = self.daemon.borrow().mixer().sink_count(),
                    apps = self.daemon.borrow().mixer().apps().len(),
                    "in sync with PipeWire"
                );
                self.arm_hold_check();
                // Channels to make (queued by on_synced).
                self.after_change();
                self.request_publish();
                self.publish_now();
                self.notify_ready();
                self.answer_early();
            }
            Synced::Other => {
                if self.wiring_sync.get() == Some(seq) {
                    self.wiring_sync.set(None);
                    self.daemon.borrow_mut().on_wiring_synced();
                    self.after_change();
                }
                self.requests.borrow_mut().synced(seq);
                self.sync_requests();
                self.request_publish();
            }
        }
    }

    fn disconnected(&self, why: &str) {
        Runtime::disconnected(self, why);
    }
}
