//! Reading the shared-memory snapshot: `status`, `watch` and the current
//! values the getters and relative volume steps need. Never touches the
//! socket.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use pvm_ipc::layout::Snapshot as RawSnapshot;
use pvm_ipc::reader::{ShmError, SnapshotReader};
use pvm_ipc::status::Status;

use crate::failure::Failure;

/// While the daemon is down, `watch` looks this often for a new snapshot file
/// (a restarted daemon normally reuses the file and wakes us itself).
const RESTART_CHECK: Duration = Duration::from_secs(1);

/// While the snapshot cannot be read (a daemon is initialising it, or one
/// died in the middle of a publish), `watch` sleeps on its futex at most
/// this long before it looks again. A daemon that finishes initialising
/// wakes it at once.
const UNSETTLED_CHECK: Duration = Duration::from_millis(200);

/// An open snapshot file.
pub struct Snapshot {
    reader: Arc<SnapshotReader>,
    path: PathBuf,
    /// Device and inode of the file, to notice a daemon that made a new one.
    identity: Option<(u64, u64)>,
    /// The daemon whose exit wakes this file's waiters (`watch`).
    exit_watched: Option<u32>,
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Snapshot {
    /// Opens the snapshot at `path`; a missing file means the daemon is not running.
    pub fn open(path: &Path) -> Result<Snapshot, Failure> {
        Snapshot::open_reader(path).map_err(|e| open_failure(path, e))
    }

    /// Like [`open`](Self::open), but waits while a daemon is still
    /// initialising the file instead of failing.
    pub fn open_when_ready(path: &Path) -> Result<Snapshot, Failure> {
        loop {
            match Snapshot::open_reader(path) {
                // No mapping yet, so no futex to sleep on.
                Err(ShmError::NotReady { .. }) => std::thread::sleep(UNSETTLED_CHECK),
                opened => return opened.map_err(|e| open_failure(path, e)),
            }
        }
    }

    fn open_reader(path: &Path) -> Result<Snapshot, ShmError> {
        let identity = identity(path);
        let reader = SnapshotReader::open(path)?;
        Ok(Snapshot { reader: Arc::new(reader), path: path.to_owned(), identity, exit_watched: None })
    }

    /// The current status. `running` is true only if the flag is set and the
    /// daemon process is alive.
    pub fn status(&self) -> Result<Status, Failure> {
        let snapshot = self.reader.read().map_err(|e| self.read_failure(e))?;
        Ok(self.status_of(&snapshot))
    }

    fn status_of(&self, snapshot: &RawSnapshot) -> Status {
        let mut status = Status::from(snapshot);
        status.running = status.running && self.reader.daemon_alive(snapshot);
        status
    }

    fn read_failure(&self, e: ShmError) -> Failure {
        Failure::Other(anyhow!(e).context(format!("cannot read the snapshot {}", self.path.display())))
    }

    /// The current status, or [`Failure::NotRunning`] if the daemon is not running.
    pub fn live_status(&self) -> Result<Status, Failure> {
        let status = self.status()?;
        if status.running {
            Ok(status)
        } else {
            Err(Failure::NotRunning(format!("the snapshot {} is from a stopped daemon", self.path.display())))
        }
    }

    /// Calls `emit` with the status now and after every change, until
    /// `emit` fails. Waits on the snapshot's futex, not by polling. Keeps
    /// going while the daemon is stopped, restarted or still initialising
    /// the file, and goes on with the next daemon that publishes.
    pub fn watch(mut self, mut emit: impl FnMut(&Status) -> Result<(), Failure>) -> Result<(), Failure> {
        let mut last: Option<Status> = None;
        loop {
            let snapshot = match self.reader.read() {
                Ok(snapshot) => snapshot,
                Err(ShmError::NotReady { .. } | ShmError::Busy { .. }) => {
                    self.wait_until_settled()?;
                    continue;
                }
                Err(e) => return Err(self.read_failure(e)),
            };
            let status = self.status_of(&snapshot);
            let changed = match &last {
                None => true,
                Some(last) => !same_but_generation(last, &status),
            };
            if changed {
                emit(&status)?;
            }
            let generation = status.generation;
            let running = status.running;
            last = Some(status);
            if running {
                // Sleep until a publish, or until the daemon process exits
                // (a thread on its pidfd wakes us): no periodic wake-ups.
                let pid = snapshot.header.daemon_pid;
                if self.exit_watched != Some(pid) && self.reader.wake_on_exit(pid).is_ok() {
                    self.exit_watched = Some(pid);
                }
                let timeout = if self.exit_watched == Some(pid) { None } else { Some(RESTART_CHECK * 5) };
                self.wait_opt(generation, timeout)?;
            } else if !self.wait(generation, RESTART_CHECK)? {
                self.reopen_if_replaced();
            }
        }
    }

    /// Waits while the snapshot cannot be read: a starting daemon has not
    /// finished initialising it (version 0; it wakes the futex when it has),
    /// or a daemon died in the middle of a publish (the generation stays odd
    /// until the next daemon publishes). Sleeps on the futex, at most
    /// [`UNSETTLED_CHECK`] at a time, and switches to a new file that
    /// replaced this one.
    fn wait_until_settled(&mut self) -> Result<(), Failure> {
        let stuck = self.reader.generation();
        loop {
            self.wait(stuck, UNSETTLED_CHECK)?;
            if self.reopen_if_replaced() {
                return Ok(());
            }
            let now = self.reader.generation();
            // An odd generation that has not moved: nothing to read until a
            // daemon publishes again, and reading would only spin.
            if now != stuck || now & 1 == 0 {
                return Ok(());
            }
        }
    }

    fn wait(&self, since: u64, timeout: Duration) -> Result<bool, Failure> {
        self.wait_opt(since, Some(timeout))
    }

    fn wait_opt(&self, since: u64, timeout: Option<Duration>) -> Result<bool, Failure> {
        self.reader
            .wait_once(since, timeout)
            .map_err(|e| Failure::Other(anyhow!(e).context("waiting for the next snapshot")))
    }

    /// Switches to a new file at the same path (a restarted daemon may have
    /// made one); keeps the old one if there is none or it is not ready yet.
    /// Returns whether it switched.
    fn reopen_if_replaced(&mut self) -> bool {
        let now = identity(&self.path);
        if now.is_some() && now != self.identity {
            if let Ok(fresh) = Snapshot::open(&self.path) {
                *self = fresh;
                return true;
            }
        }
        false
    }
}

fn open_failure(path: &Path, e: ShmError) -> Failure {
    if e.is_not_found() {
        Failure::nothing_at("snapshot", path)
    } else {
        Failure::Other(anyhow!(e).context(format!("cannot open the snapshot {}", path.display())))
    }
}

/// Equal in everything but the generation: `watch` prints nothing for a
/// publish that changed nothing it shows.
fn same_but_generation(a: &Status, b: &Status) -> bool {
    Status { generation: b.generation, ..a.clone() } == *b
}

/// Reads the status for commands that need the current values.
pub fn live_status(path: &Path) -> Result<Status, Failure> {
    Snapshot::open(path)?.live_status()
}
