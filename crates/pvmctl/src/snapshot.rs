//! Reading the shared-memory snapshot: `status`, `watch` and the current
//! values the getters and relative volume steps need. Never touches the
//! socket.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;

use crate::failure::Failure;

/// While the daemon is down, `watch` looks this often for a new snapshot file
/// (a restarted daemon normally reuses the file and wakes us itself).
const RESTART_CHECK: Duration = Duration::from_secs(1);

/// An open snapshot file.
pub struct Snapshot {
    reader: Arc<SnapshotReader>,
    path: PathBuf,
    /// Device and inode of the file, to notice a daemon that made a new one.
    identity: Option<(u64, u64)>,
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Snapshot {
    /// Opens the snapshot at `path`; a missing file means the daemon is not running.
    pub fn open(path: &Path) -> Result<Snapshot, Failure> {
        let identity = identity(path);
        match SnapshotReader::open(path) {
            Ok(reader) => Ok(Snapshot { reader: Arc::new(reader), path: path.to_owned(), identity }),
            Err(e) if e.is_not_found() => Err(Failure::nothing_at("snapshot", path)),
            Err(e) => Err(Failure::Other(anyhow!(e).context(format!("cannot open the snapshot {}", path.display())))),
        }
    }

    /// The current status. `running` is true only if the flag is set and the
    /// daemon process is alive.
    pub fn status(&self) -> Result<Status, Failure> {
        let snapshot = self.reader.read().map_err(|e| {
            Failure::Other(anyhow!(e).context(format!("cannot read the snapshot {}", self.path.display())))
        })?;
        let mut status = Status::from(&*snapshot);
        status.running = status.running && self.reader.daemon_alive(&snapshot);
        Ok(status)
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
    /// `emit` fails. Waits on the snapshot's futex, not by polling.
    pub fn watch(mut self, mut emit: impl FnMut(&Status) -> Result<(), Failure>) -> Result<(), Failure> {
        let mut last: Option<Status> = None;
        let mut exit_watched = None;
        loop {
            let status = self.status()?;
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
                let pid = self.reader.read().map(|s| s.header.daemon_pid).unwrap_or(0);
                if exit_watched != Some(pid) && self.reader.wake_on_exit(pid).is_ok() {
                    exit_watched = Some(pid);
                }
                let timeout = if exit_watched == Some(pid) { None } else { Some(RESTART_CHECK * 5) };
                self.wait_opt(generation, timeout)?;
            } else if !self.wait(generation, RESTART_CHECK)? {
                self.reopen_if_replaced();
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
    /// made one); keeps the old one if there is none.
    fn reopen_if_replaced(&mut self) {
        let now = identity(&self.path);
        if now.is_some() && now != self.identity {
            if let Ok(fresh) = Snapshot::open(&self.path) {
                *self = fresh;
            }
        }
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
