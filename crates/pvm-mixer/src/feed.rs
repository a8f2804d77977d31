//! The snapshot watcher: a thread that sends the mixer a new state whenever
//! the daemon publishes, starts or goes away, and sleeps in the kernel
//! otherwise.
//!
//! * While a daemon runs: a futex wait on the snapshot's generation, woken by
//!   every publish; a daemon that dies without publishing wakes it too,
//!   through a thread asleep on the daemon's pidfd ([`watch_exit`]), which
//!   also marks the daemon dead (a dead daemon that nobody has reaped yet
//!   still answers `kill(pid, 0)`).
//! * While no daemon runs: an inotify watch on the snapshot's directory
//!   (a daemon that creates or replaces the file), together with the futex
//!   (a daemon that reuses the file in place). The watch exists only then, so
//!   other files coming and going in `/dev/shm` never wake a mixer whose
//!   daemon runs.
//! * Only while a daemon initialises a *new* file (its first few
//!   milliseconds; the file exists but cannot be mapped as a snapshot yet)
//!   does it look again after [`INIT_RETRY`], as there is nothing to sleep
//!   on yet.

use std::ffi::OsString;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pvm_ipc::reader::{ShmError, SnapshotReader};
use pvm_ipc::status::Status;
use rustix::fs::inotify;

use crate::app::Link;

/// How long to wait before opening a file again that a daemon is still
/// initialising (see the module docs).
const INIT_RETRY: Duration = Duration::from_millis(50);

/// How many times a file that is not (yet) a snapshot is looked at again
/// before the watcher waits for the directory only: 2 s in all, far more
/// than a daemon needs to initialise it.
const INIT_RETRIES: u32 = 40;

/// When the snapshot's directory cannot be watched (it does not exist yet,
/// or inotify is unavailable): how often to look for the file. Only while
/// no daemon runs.
const NO_WATCH_RETRY: Duration = Duration::from_secs(2);

/// What the watcher tells the mixer.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    /// What was found.
    pub link: Link,
    /// The state read, when there is one.
    pub status: Option<Status>,
    /// Each app's number of streams, in the order of `status.apps`.
    pub stream_counts: Vec<u32>,
}

/// Starts the watcher thread for the snapshot at `path`; it calls `send`
/// with every new state and stops when `send` returns `false`.
pub fn spawn(path: PathBuf, send: impl FnMut(Update) -> bool + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new().name("snapshot".into()).spawn(move || Watcher::new(path, send).run())?;
    Ok(())
}

/// Device and inode: a daemon that made a new file is noticed by these.
fn identity(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

struct Watcher<F> {
    path: PathBuf,
    send: F,
    last: Option<Update>,
    dir: Option<DirWatch>,
    /// Looks at a file that is not a snapshot yet, since the last good read
    /// or directory event.
    init_retries: u32,
    /// The daemon whose exit wakes the current reader's waiters, and
    /// whether it has exited.
    exit_watched: Option<(u32, Arc<AtomicBool>)>,
}

/// Stop: the mixer is gone.
struct Stop;

impl<F: FnMut(Update) -> bool> Watcher<F> {
    fn new(path: PathBuf, send: F) -> Self {
        let dir = DirWatch::start(&path).map_err(|e| tracing::warn!("cannot watch the snapshot's directory: {e}")).ok();
        Watcher { path, send, last: None, dir, init_retries: 0, exit_watched: None }
    }

    fn tell(&mut self, update: Update) -> Result<(), Stop> {
        if self.last.as_ref() == Some(&update) {
            return Ok(());
        }
        self.last = Some(update.clone());
        if (self.send)(update) {
            Ok(())
        } else {
            Err(Stop)
        }
    }

    fn run(mut self) {
        let _ = self.run_until_stopped();
    }

    fn run_until_stopped(&mut self) -> Result<(), Stop> {
        loop {
            // Watch the directory before looking, so a file created right
            // after the look is not missed.
            self.arm(true);
            let identity = identity(&self.path);
            match SnapshotReader::open(&self.path) {
                Ok(reader) => {
                    self.init_retries = 0;
                    self.follow(Arc::new(reader), identity)?;
                }
                Err(e) if e.is_not_found() => {
                    let path = self.path.display().to_string();
                    self.init_retries = 0;
                    self.tell(Update { link: Link::NoSnapshot { path }, status: None, stream_counts: Vec::new() })?;
                    self.wait_for_directory(None);
                }
                // A file being initialised: version 0, or (just created) still
                // short or without its magic number. Nothing to sleep on yet.
                Err(ShmError::NotReady { .. } | ShmError::TooSmall { .. } | ShmError::BadMagic { .. })
                    if self.init_retries < INIT_RETRIES =>
                {
                    self.init_retries += 1;
                    self.tell(Update { link: Link::Starting, status: None, stream_counts: Vec::new() })?;
                    if self.wait_for_directory(Some(INIT_RETRY)) {
                        self.init_retries = 0;
                    }
                }
                Err(e) => {
                    self.init_retries = 0;
                    self.tell(Update {
                        link: Link::Unreadable(e.to_string()),
                        status: None,
                        stream_counts: Vec::new(),
                    })?;
                    self.wait_for_directory(None);
                }
            }
        }
    }

    /// Watches the directory (`on`) or stops watching it.
    fn arm(&mut self, on: bool) {
        if let Some(dir) = &mut self.dir {
            if let Err(e) = dir.arm(on) {
                tracing::warn!("cannot watch {}: {e}", dir.dir.display());
            }
        }
    }

    /// Sleeps until something happens in the snapshot's directory, or
    /// `timeout`; returns whether something happened.
    fn wait_for_directory(&mut self, timeout: Option<Duration>) -> bool {
        match &self.dir {
            Some(dir) if dir.armed => dir.wait(timeout),
            // Nothing to sleep on: the directory is missing or not watchable.
            _ => {
                std::thread::sleep(timeout.unwrap_or(NO_WATCH_RETRY));
                false
            }
        }
    }

    /// Reads the snapshot after every publish until its file is replaced or
    /// removed while no daemon runs on it.
    fn follow(&mut self, reader: Arc<SnapshotReader>, identity: Option<(u64, u64)>) -> Result<(), Stop> {
        self.exit_watched = None;
        loop {
            let generation = match reader.read() {
                Ok(snapshot) => {
                    let mut status = Status::from(&*snapshot);
                    let pid = snapshot.header.daemon_pid;
                    let exited = self.exit_watched.as_ref().is_some_and(|(p, e)| *p == pid && e.load(Ordering::SeqCst));
                    status.running = status.running && !exited && reader.daemon_alive(&snapshot);
                    let generation = status.generation;
                    let running = status.running;
                    let stream_counts = snapshot.apps().iter().map(|a| a.stream_count).collect();
                    self.tell(Update { link: Link::Read, status: Some(status), stream_counts })?;
                    if running {
                        // A live daemon: only the futex (and its exit) can wake us.
                        self.arm(false);
                        let watched = self.exit_watched.as_ref().is_some_and(|(p, _)| *p == pid);
                        if !watched {
                            match watch_exit(&reader, pid) {
                                Ok(exited) => self.exit_watched = Some((pid, exited)),
                                Err(e) => tracing::warn!("cannot watch the daemon's exit: {e}"),
                            }
                        }
                        let watched = self.exit_watched.as_ref().is_some_and(|(p, _)| *p == pid);
                        let timeout = if watched { None } else { Some(NO_WATCH_RETRY) };
                        let _ = reader.wait_once(generation, timeout);
                        continue;
                    }
                    generation
                }
                // A daemon re-initialises the file, or died in the middle of a
                // publish: the next publish wakes the futex.
                Err(ShmError::NotReady { .. } | ShmError::Busy { .. }) => {
                    self.tell(Update { link: Link::Starting, status: None, stream_counts: Vec::new() })?;
                    reader.generation()
                }
                Err(e) => {
                    self.tell(Update {
                        link: Link::Unreadable(e.to_string()),
                        status: None,
                        stream_counts: Vec::new(),
                    })?;
                    reader.generation()
                }
            };
            // No daemon: wait for one to publish on this file, or for the
            // file to be replaced or removed (the directory watch wakes the
            // futex then).
            self.arm(true);
            if let Some(dir) = &self.dir {
                dir.wake_on_change(Some(Arc::clone(&reader)));
            }
            if crate::feed::identity(&self.path) != identity {
                return self.stop_waking();
            }
            let _ = reader.wait_once(generation, if self.dir_armed() { None } else { Some(NO_WATCH_RETRY) });
            if let Some(dir) = &self.dir {
                // The futex was woken for these; the file is checked below.
                dir.drain();
            }
            if crate::feed::identity(&self.path) != identity {
                return self.stop_waking();
            }
        }
    }

    fn dir_armed(&self) -> bool {
        self.dir.as_ref().is_some_and(|d| d.armed)
    }

    fn stop_waking(&mut self) -> Result<(), Stop> {
        if let Some(dir) = &self.dir {
            dir.wake_on_change(None);
            dir.drain();
        }
        Ok(())
    }
}

/// Starts a thread that sleeps on the pidfd of process `pid` (the daemon)
/// until it exits, then sets the returned flag and wakes the waiters of
/// `reader`'s futex.
fn watch_exit(reader: &Arc<SnapshotReader>, pid: u32) -> std::io::Result<Arc<AtomicBool>> {
    use rustix::event::{poll, PollFd, PollFlags};
    let pid = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw);
    let pid = pid.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    let exited = Arc::new(AtomicBool::new(false));
    let (flag, reader) = (Arc::clone(&exited), Arc::clone(reader));
    std::thread::Builder::new().name("daemon-exit".into()).spawn(move || {
        loop {
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            match poll(&mut fds, None) {
                Err(rustix::io::Errno::INTR) => continue,
                _ => break,
            }
        }
        flag.store(true, Ordering::SeqCst);
        reader.wake_waiters();
    })?;
    Ok(exited)
}

/// An inotify watch on the snapshot's directory, read by its own thread:
/// every event about the snapshot's file name is passed on, to a channel
/// and to the futex of the reader that waits for it.
struct DirWatch {
    dir: PathBuf,
    fd: Arc<OwnedFd>,
    watch: Option<i32>,
    armed: bool,
    events: Receiver<()>,
    wake: Arc<Mutex<Option<Arc<SnapshotReader>>>>,
}

impl DirWatch {
    fn start(path: &Path) -> std::io::Result<DirWatch> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let name: OsString = path.file_name().map(OsString::from).unwrap_or_default();
        let fd = Arc::new(inotify::init(inotify::CreateFlags::CLOEXEC)?);
        let (tx, events) = mpsc::channel();
        let wake: Arc<Mutex<Option<Arc<SnapshotReader>>>> = Arc::default();
        let (thread_fd, thread_wake) = (Arc::clone(&fd), Arc::clone(&wake));
        std::thread::Builder::new()
            .name("snapshot-dir".into())
            .spawn(move || read_events(&thread_fd, &name, &tx, &thread_wake))?;
        Ok(DirWatch { dir, fd, watch: None, armed: false, events, wake })
    }

    fn arm(&mut self, on: bool) -> std::io::Result<()> {
        if on == self.armed {
            return Ok(());
        }
        if on {
            let flags = inotify::WatchFlags::CREATE
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::MOVED_FROM
                | inotify::WatchFlags::DELETE
                | inotify::WatchFlags::ATTRIB
                | inotify::WatchFlags::CLOSE_WRITE;
            self.watch = Some(inotify::add_watch(&*self.fd, &self.dir, flags)?);
        } else if let Some(wd) = self.watch.take() {
            let _ = inotify::remove_watch(&*self.fd, wd);
        }
        self.armed = on;
        Ok(())
    }

    fn wait(&self, timeout: Option<Duration>) -> bool {
        let got = match timeout {
            Some(t) => !matches!(self.events.recv_timeout(t), Err(RecvTimeoutError::Timeout)),
            None => self.events.recv().is_ok(),
        };
        if got {
            self.drain();
        }
        got
    }

    fn drain(&self) {
        while self.events.try_recv().is_ok() {}
    }

    /// Which reader's futex to wake on the next event (`None`: none).
    fn wake_on_change(&self, reader: Option<Arc<SnapshotReader>>) {
        *self.wake.lock().unwrap_or_else(|p| p.into_inner()) = reader;
    }
}

/// The directory thread: blocks in `read` on the inotify descriptor.
fn read_events(fd: &OwnedFd, name: &OsString, tx: &Sender<()>, wake: &Mutex<Option<Arc<SnapshotReader>>>) {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut reader = inotify::Reader::new(fd, &mut buf);
    loop {
        let event = match reader.next() {
            Ok(event) => event,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::warn!("reading inotify events: {e}");
                return;
            }
        };
        let ours = event.file_name().is_some_and(|n| n.to_bytes() == name.as_bytes());
        let overflow = event.events().contains(inotify::ReadFlags::QUEUE_OVERFLOW);
        if ours || overflow {
            if tx.send(()).is_err() {
                return;
            }
            if let Some(reader) = wake.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                reader.wake_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvm_ipc::layout::{header_flags, write_str, Snapshot};
    use pvm_ipc::writer::SnapshotWriter;

    /// Generous: the watcher reacts at once; a loaded machine may be slow.
    const TIMEOUT: Duration = Duration::from_secs(10);

    /// Receives updates until one satisfies `condition`.
    fn expect(updates: &Receiver<Update>, what: &str, condition: impl Fn(&Update) -> bool) -> Update {
        let deadline = std::time::Instant::now() + TIMEOUT;
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match updates.recv_timeout(left) {
                Ok(update) if condition(&update) => return update,
                Ok(update) => last = Some(update),
                Err(_) => panic!("no update with {what}; the last one: {last:?}"),
            }
        }
    }

    fn running(u: &Update) -> bool {
        u.link == Link::Read && u.status.as_ref().is_some_and(|s| s.running)
    }

    fn one_sink(name: &str) -> Box<Snapshot> {
        let mut snap = Snapshot::new_boxed();
        snap.header.flags = header_flags::RUNNING | header_flags::CONNECTED;
        snap.header.sink_count = 1;
        snap.header.total_sinks = 1;
        write_str(&mut snap.sinks[0].name, name);
        snap
    }

    #[test]
    fn follows_a_daemon_that_comes_publishes_stops_and_makes_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shm");
        let (tx, updates) = mpsc::channel();
        spawn(path.clone(), move |u| tx.send(u).is_ok()).unwrap();
        expect(&updates, "no snapshot", |u| matches!(&u.link, Link::NoSnapshot { path: p } if p.ends_with("shm")));

        // A daemon creates the file: seen through the directory watch.
        let mut writer = SnapshotWriter::create(&path).unwrap();
        expect(&updates, "a running daemon", running);
        writer.publish(&one_sink("game"));
        let update = expect(&updates, "the sink game", |u| u.status.as_ref().is_some_and(|s| s.sink("game").is_some()));
        assert!(running(&update));

        // It stops cleanly: the last state, not running.
        writer.mark_stopped();
        drop(writer);
        let update = expect(&updates, "a stopped daemon", |u| u.status.as_ref().is_some_and(|s| !s.running));
        assert_eq!(update.status.unwrap().sinks[0].name, "game", "the last state stays");

        // A new daemon on the same file wakes the futex.
        let mut writer = SnapshotWriter::create(&path).unwrap();
        writer.publish(&one_sink("chat"));
        expect(&updates, "the restarted daemon", |u| {
            running(u) && u.status.as_ref().is_some_and(|s| s.sink("chat").is_some())
        });
        writer.mark_stopped();
        drop(writer);
        expect(&updates, "stopped again", |u| u.status.as_ref().is_some_and(|s| !s.running));

        // The file goes away, and a daemon makes a new one.
        fs::remove_file(&path).unwrap();
        expect(&updates, "no snapshot again", |u| matches!(u.link, Link::NoSnapshot { .. }));
        let mut writer = SnapshotWriter::create(&path).unwrap();
        writer.publish(&one_sink("music"));
        expect(&updates, "the new file", |u| {
            running(u) && u.status.as_ref().is_some_and(|s| s.sink("music").is_some())
        });
    }

    #[test]
    fn a_file_that_is_no_snapshot_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shm");
        fs::write(&path, vec![0u8; 40_000]).unwrap();
        let (tx, updates) = mpsc::channel();
        spawn(path.clone(), move |u| tx.send(u).is_ok()).unwrap();
        // Looked at again for a while (a daemon may be initialising it), then reported.
        let update = expect(&updates, "an unreadable snapshot", |u| matches!(u.link, Link::Unreadable(_)));
        let Link::Unreadable(why) = update.link else { unreachable!() };
        assert!(why.contains("bad magic"), "{why}");
        // A daemon that takes the file over is still seen.
        fs::remove_file(&path).unwrap();
        let mut writer = SnapshotWriter::create(&path).unwrap();
        writer.publish(&one_sink("game"));
        expect(&updates, "the daemon", |u| running(u) && u.status.as_ref().is_some_and(|s| s.sink("game").is_some()));
    }
}
