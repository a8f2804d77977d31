//! The benchmark's own PipeWire client: the test bed's [`GraphWatcher`],
//! watching the sinks' volumes with the daemon's own `Props` parser and
//! setting them with its own pod builder.
//!
//! It is both the "bare listener" floor and the tool that makes changes:
//! it records when each sink volume change arrives and when it sent each
//! one, and every node and link global with the time it arrived, so stream
//! appearances and link reactions can be timed. All times are `Instant`s of
//! this process, comparable with the snapshot reader's.

use std::path::Path;

use anyhow::Result;
use pipewire::spa::pod::Pod;
use pipewire_volume_mixer_daemon::pw::params;
use testbed::{GraphWatcher, WatchOptions};

/// The first channel's linear volume in a sink's `Props`.
fn first_channel(pod: &Pod) -> Option<f32> {
    params::parse_props(pod)?.channels?.first().copied()
}

/// Connects to the PipeWire socket at `socket` and returns once the graph
/// and the sinks' volumes are recorded.
pub fn start(socket: &Path) -> Result<GraphWatcher> {
    let probe = GraphWatcher::start_with(socket, WatchOptions::default().sink_volumes(first_channel))?;
    probe.sync()?;
    Ok(probe)
}

/// Sets the volume of sink node `node` (linear amplitude on both channels)
/// and returns the request number under which its send time is recorded
/// ([`testbed::WatchLog::sent`]).
pub fn set_volume(probe: &GraphWatcher, node: u32, linear: f32) -> Result<usize> {
    Ok(probe.set_props(node, params::build_props(Some(&[linear, linear]), None))?)
}
