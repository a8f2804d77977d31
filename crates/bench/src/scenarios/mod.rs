//! The benchmark's scenarios, one file each; all start their own test bed.

pub mod channels;
pub mod compare;
pub mod latency;
pub mod leaks;
pub mod load;
pub mod mixer;
pub mod routing;
pub mod startup;
pub mod switching;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use pvm_ipc::layout::Snapshot;
use pvm_ipc::reader::SnapshotReader;
use testbed::{Daemon, GraphWatcher, TestBed};

/// The sinks of every bed; the first is the default.
pub const SINKS: [&str; 4] = ["speakers", "game", "chat", "music"];

/// The daemon config of the scenarios that route by rule: apps named
/// `Game*` go to the sink `game`.
pub const GAME_RULE: &str = "[[rule]]\nmatch = { \"application.name\" = \"Game*\" }\nsink = \"game\"\n";

/// How long anything that involves PipeWire may take before it is a failure.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The knobs of a run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Shortened scenarios (CI smoke test).
    pub quick: bool,
    /// A daemon built with `--features count-alloc`, for allocations per event.
    pub count_alloc_daemon: Option<PathBuf>,
    /// New streams per configuration in the routing scenario (its default
    /// when `None`).
    pub new_streams: Option<usize>,
    /// A wiremix binary, to measure beside pvm-mixer (not measured when `None`).
    pub wiremix: Option<PathBuf>,
    /// The stacks of the per-stack routing scenario.
    pub stacks: Vec<testbed::Stack>,
}

impl Config {
    /// `full` normally, `quick` with `--quick`.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

/// A bed with [`SINKS`], a daemon on it in sync, a probe and a snapshot reader.
pub struct Rig {
    pub probe: GraphWatcher,
    pub reader: SnapshotReader,
    pub daemon: Daemon,
    pub bed: TestBed,
}

impl Rig {
    /// Starts everything; `config` is written as the daemon's config first.
    pub fn start(pulse: bool, config: Option<&str>) -> Result<Rig> {
        let bed = TestBed::builder().sinks(&SINKS).pulse(pulse).start()?;
        if let Some(config) = config {
            let path = bed.daemon_paths().config;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, config)?;
        }
        let (daemon, reader) = bed.spawn_daemon_in_sync(&[])?;
        let probe = crate::probe::start(&bed.pipewire_socket())?;
        Ok(Rig { probe, reader, daemon, bed })
    }

    /// The node id of sink `name`.
    pub fn sink_id(&self, name: &str) -> Result<u32> {
        match self.probe.with(|r| r.node_named(name).map(|n| n.id)) {
            Some(id) => Ok(id),
            None => bail!("no sink named {name}"),
        }
    }
}

/// Waits (on the futex, no polling) until `condition` holds for the snapshot.
pub fn wait_snapshot(reader: &SnapshotReader, what: &str, condition: impl Fn(&Snapshot) -> bool) -> Result<Instant> {
    let mut snap = Snapshot::new_boxed();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let generation = reader.read_into(&mut snap)?;
        if condition(&snap) {
            return Ok(Instant::now());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out waiting for {what} in the snapshot");
        }
        reader.wait_for_change(generation, Some(left))?;
    }
}

/// Whether the snapshot lists app `name`.
pub fn has_app(snap: &Snapshot, name: &str) -> bool {
    snap.apps().iter().any(|a| a.name() == name)
}

/// Sleeps until `at` (returns at once if it has passed).
pub fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}
