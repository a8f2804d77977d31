//! [`GraphWatcher`]: a PipeWire client that records the graph as it
//! changes. `record` holds what it records (plain data), `client` its
//! PipeWire thread.

mod client;
mod record;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipewire as pw;
use pw::spa::pod::Pod;

pub use record::{LinkSeen, NodeSeen, StreamEvent, StreamHistory, VolumeSeen, WatchLog};

use crate::error::{Error, Result};

/// How long [`GraphWatcher::start`] waits for PipeWire to list the graph,
/// and [`GraphWatcher::sync`] for a round trip.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a [`GraphWatcher`] records besides nodes, links and the links of
/// each stream. The default records nothing more, and the watcher only
/// listens (it sends PipeWire nothing but the round trips asked for).
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchOptions {
    metadata: bool,
    sink_volume: Option<fn(&Pod) -> Option<f32>>,
}

impl WatchOptions {
    /// Also binds the `default` metadata and records every property event
    /// about a playback stream ([`StreamEvent::Metadata`]).
    ///
    /// PipeWire forwards a metadata property about an object only to clients
    /// that have acknowledged the object's global, so the watcher then sends
    /// PipeWire a round trip on every new stream global, at once; even so, a
    /// write made right after the stream appeared may not reach it.
    ///
    /// With WirePlumber 0.4, whose `default` metadata lives in WirePlumber
    /// and is exported to PipeWire, PipeWire also holds back every property
    /// event from the clients already bound while another client binds that
    /// metadata (from the bind until WirePlumber answers PipeWire's ping;
    /// `pw-dump` binds it each time it runs). An event missing from the record
    /// is therefore no proof that the write did not happen: check the state
    /// itself with [`TestBed::dump`](crate::TestBed::dump).
    pub fn metadata(mut self) -> Self {
        self.metadata = true;
        self
    }

    /// Also binds every `Audio/Sink` node, subscribes to its `Props` param
    /// and records, for each one that arrives, the first channel's linear
    /// volume as `parse` reads it ([`WatchLog::volumes`]); and lets
    /// [`GraphWatcher::set_props`] change the sinks' `Props`.
    pub fn sink_volumes(mut self, parse: fn(&Pod) -> Option<f32>) -> Self {
        self.sink_volume = Some(parse);
        self
    }
}

/// What the caller asks of the watcher thread.
enum Command {
    /// Set the `Props` param of a bound sink to this pod.
    SetProps { node: u32, pod: Vec<u8> },
    /// Do a round trip with PipeWire and count it in `syncs_done`.
    Sync,
    /// Quit the loop.
    Stop,
}

/// The record and the signal that it changed, shared with the thread.
struct Shared {
    log: Mutex<WatchLog>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut WatchLog)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, WatchLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A PipeWire client that records the graph as it changes: every node and
/// link global with the time it came and went, every link each playback
/// stream ever gets, and optionally every `default` metadata write about a
/// stream and every `Props` change of a sink.
///
/// Polling `pw-dump` can miss a link that lives for a few milliseconds. The
/// watcher listens to the registry instead: PipeWire announces every
/// new global (links included, with `link.output.node` / `link.input.node`
/// in their global properties) to every registry listener before it can be
/// destroyed, so a link that existed at all is recorded, however short-lived.
///
/// The client runs its own PipeWire main loop on a thread, connected to the
/// bed's socket by path ([`TestBed::pipewire_socket`](crate::TestBed::pipewire_socket));
/// the caller reads the [`WatchLog`] through a mutex, and waits for
/// conditions on it without polling (the thread signals every change).
///
/// ```no_run
/// use std::time::Duration;
/// use testbed::{AppSpec, GraphWatcher, TestBed, WatchOptions};
///
/// # fn main() -> testbed::Result<()> {
/// let bed = TestBed::start(&["speakers", "game"])?;
/// let watcher = GraphWatcher::start_with(&bed.pipewire_socket(), WatchOptions::default().metadata())?;
/// let _app = bed.spawn_app(&AppSpec::new("Firefox"))?;
/// let log = watcher.wait_until(Duration::from_secs(10), "Firefox linked", |log| {
///     log.streams_of("Firefox").first().is_some_and(|s| s.links().next().is_some())
/// })?;
/// assert_eq!(log.streams_of("Firefox")[0].sinks_ever_linked(), ["speakers"]);
/// # Ok(())
/// # }
/// ```
///
/// It records from the moment [`start`](Self::start) returns. Dropping it
/// stops its thread and disconnects.
pub struct GraphWatcher {
    shared: Arc<Shared>,
    commands: pw::channel::Sender<Command>,
    /// [`set_props`](Self::set_props) requests sent so far.
    props_requests: AtomicUsize,
    thread: Option<JoinHandle<()>>,
}

impl GraphWatcher {
    /// Connects to the PipeWire socket at `socket` and returns once the
    /// graph that exists now is recorded. Records nodes, links and the links
    /// of each stream only.
    pub fn start(socket: &Path) -> Result<GraphWatcher> {
        GraphWatcher::start_with(socket, WatchOptions::default())
    }

    /// [`start`](Self::start), recording what `options` add; with
    /// [`WatchOptions::sink_volumes`] it also waits for the sinks' current
    /// `Props`.
    pub fn start_with(socket: &Path, options: WatchOptions) -> Result<GraphWatcher> {
        let shared = Arc::new(Shared { log: Mutex::new(WatchLog::default()), changed: Condvar::new() });
        let (commands, receiver) = pw::channel::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), String>>();
        let socket = socket.to_string_lossy().into_owned();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("graph-watcher".into())
            .spawn(move || client::run(&socket, options, &thread_shared, receiver, &ready_tx))
            .map_err(|e| Error::io("starting the graph watcher thread", e))?;
        let mut watcher = GraphWatcher { shared, commands, props_requests: AtomicUsize::new(0), thread: Some(thread) };
        match ready_rx.recv_timeout(ROUND_TRIP_TIMEOUT) {
            Ok(Ok(())) => Ok(watcher),
            Ok(Err(e)) => Err(Error::Watcher(e)),
            Err(_) => {
                // The thread may still be connecting: Drop would wait for it.
                watcher.thread.take();
                Err(Error::Timeout {
                    what: "the graph watcher to list the graph".into(),
                    timeout: ROUND_TRIP_TIMEOUT,
                    details: String::new(),
                })
            }
        }
    }

    /// A copy of the record as it is now.
    pub fn log(&self) -> WatchLog {
        self.shared.lock().clone()
    }

    /// Runs `f` on the record as it is now (without copying it). The
    /// watcher's thread waits for the record meanwhile: keep `f` short.
    pub fn with<T>(&self, f: impl FnOnce(&WatchLog) -> T) -> T {
        f(&self.shared.lock())
    }

    /// Makes a round trip with PipeWire: afterwards the record holds every
    /// event PipeWire had sent before the round trip was answered.
    pub fn sync(&self) -> Result<()> {
        let target = self.shared.lock().syncs_done + 1;
        self.send(Command::Sync)?;
        self.wait_for(ROUND_TRIP_TIMEOUT, "a round trip with PipeWire", |log| (log.syncs_done >= target).then_some(()))
    }

    /// Waits until `condition` holds for the record (checked now and after
    /// every change) and returns a copy of it. After `timeout` the error
    /// names `what` and lists the streams seen.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&WatchLog) -> bool,
    ) -> Result<WatchLog> {
        self.wait_for(timeout, what, |log| condition(log).then(|| log.clone()))
    }

    /// Waits until `probe` returns `Some` for the record (checked now and
    /// after every change) and returns that value: like
    /// [`wait_until`](Self::wait_until), without copying the record.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut probe: impl FnMut(&WatchLog) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let mut log = self.shared.lock();
        loop {
            if let Some(found) = probe(&log) {
                return Ok(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    timeout,
                    details: format!("\nstreams seen: {:#?}", log.streams),
                });
            }
            log = self.shared.changed.wait_timeout(log, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Hands the sink `node` the `Props` param `pod` (the bytes of a SPA
    /// pod) and returns the request number, counted from 0:
    /// [`WatchLog::sent`] holds, at that index, when the watcher thread
    /// passed it to PipeWire. Needs [`WatchOptions::sink_volumes`] (the
    /// sinks are bound for it).
    pub fn set_props(&self, node: u32, pod: Vec<u8>) -> Result<usize> {
        self.send(Command::SetProps { node, pod })?;
        // The thread handles requests in order and records one time for each.
        Ok(self.props_requests.fetch_add(1, Ordering::Relaxed))
    }

    /// Forgets the volumes recorded so far (keeps everything else).
    pub fn clear_volumes(&self) {
        let mut log = self.shared.lock();
        log.volumes.clear();
        log.volumes.shrink_to_fit();
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| Error::Watcher("the watcher thread is gone".into()))
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
