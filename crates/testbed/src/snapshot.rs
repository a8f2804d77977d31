//! Waiting on the daemon's snapshot: on its futex, never by polling.

use std::path::Path;
use std::time::{Duration, Instant};

use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;

use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::TestBed;

/// Waits until `condition` holds for the snapshot (re-checked after every
/// publish) and returns that status. The timeout error carries the last
/// status as JSON.
pub fn wait_status(
    reader: &SnapshotReader,
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut(&Status) -> bool,
) -> Result<Status> {
    let deadline = Instant::now() + timeout;
    loop {
        let snapshot = reader
            .read()
            .map_err(|e| Error::io(format!("reading {}", reader.path().display()), std::io::Error::other(e)))?;
        let status = Status::from(&*snapshot);
        if condition(&status) {
            return Ok(status);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout {
                what: what.to_owned(),
                timeout,
                details: format!("last snapshot: {}", status.to_json()),
            });
        }
        reader
            .wait_for_change(status.generation, Some(left))
            .map_err(|e| Error::io(format!("waiting on {}", reader.path().display()), std::io::Error::other(e)))?;
    }
}

/// Opens the snapshot at `path`, waiting up to `timeout` for the file.
pub fn open_snapshot(path: &Path, timeout: Duration) -> Result<SnapshotReader> {
    crate::wait::wait_for(timeout, "a readable snapshot", || SnapshotReader::open(path).ok())
}

impl TestBed {
    /// [`TestBed::spawn_daemon`], then waits until the daemon's snapshot shows
    /// it running, connected and in sync with every sink of the bed (the
    /// first [`pvm_ipc::layout::MAX_SINKS`]), and returns it with a reader.
    pub fn spawn_daemon_in_sync(&self, args: &[&str]) -> Result<(Daemon, SnapshotReader)> {
        let daemon = self.spawn_daemon(args)?;
        let timeout = self.ready_timeout;
        let reader = open_snapshot(&daemon.shm, timeout)?;
        let sinks: Vec<&String> = self.sinks().iter().take(pvm_ipc::layout::MAX_SINKS).collect();
        wait_status(&reader, timeout, "the daemon in sync with every sink", |s| {
            s.running && s.connected && sinks.iter().all(|name| s.sink(name).is_some())
        })?;
        Ok((daemon, reader))
    }
}
