//! A real, private, headless PipeWire for integration tests, the demo and the benchmark.
//!
//! [`TestBed::start`] runs a D-Bus session bus, `pipewire` with null-audio
//! sinks, `wireplumber` and optionally `pipewire-pulse`, all inside a fresh
//! temporary directory and with a cleared environment, so nothing touches the
//! user's real session and many beds run side by side. Dropping the bed stops
//! everything.
//!
//! On top of that:
//!
//! * graph queries through `pw-dump` ([`TestBed::dump`] returns a [`Graph`];
//!   [`TestBed::node_id`], [`TestBed::sink_names_linked_to`],
//!   [`TestBed::node_volume`], ... answer the usual questions directly);
//! * fake applications ([`TestBed::spawn_app`] with an [`AppSpec`]): the
//!   `pvm-fake-app` binary of this crate, playing silence (or a sine) on playback streams
//!   that carry the properties a desktop application sets;
//! * the daemon under test ([`TestBed::spawn_daemon`]) and `pvmctl`
//!   ([`TestBed::pvmctl`]), with their files inside the bed's directory;
//! * the session going away: [`TestBed::restart_pipewire`],
//!   [`TestBed::restart_wireplumber`] (the `default` metadata destroyed and
//!   recreated), [`TestBed::create_sink`] / [`TestBed::remove_sink`];
//! * the daemon under valgrind's memcheck ([`memcheck`]) and a scripted run
//!   through every object lifecycle it sees ([`lifecycle`]): the memory
//!   check of the test suite and of the benchmark;
//! * pipewire-volume-mixer's WirePlumber hook, installed in every bed by
//!   default ([`TestBedBuilder::hold_hook`], the names in [`hook`]);
//! * three PipeWire + WirePlumber stacks ([`Stack`]): the installed
//!   PipeWire 1.4 + WirePlumber 0.5, and Debian 12's WirePlumber 0.4.13
//!   (with the installed PipeWire or with Debian 12's PipeWire 0.3.65) from
//!   a private prefix; `PVM_TEST_STACK=pw14-wp05|pw14-wp04|pw03-wp04` sets
//!   the stack of every bed of a test run ([`Stack::from_env`]);
//! * [`GraphWatcher`]: a PipeWire client that records every node, link and
//!   (optionally) `default` metadata write and sink volume as they happen,
//!   so a link that lived for a millisecond is still seen;
//! * [`Recorder`] ([`TestBed::record`]): listens to what a sink plays
//!   through its monitor and measures levels and gaps; with
//!   [`AppSpec::sine`] and [`TestBed::create_device_sink`], tests hear
//!   the real signal;
//! * [`TestBed::spawn_tui`]: a program with a terminal UI (`pvm-mixer`) in a
//!   pseudo-terminal, its screen read by a terminal emulator's parser
//!   ([`Tui`]);
//! * [`wait_until`] / [`wait_for`] to poll for a condition with a deadline.
//!
//! ```no_run
//! use std::time::Duration;
//! use testbed::{AppSpec, TestBed};
//!
//! # fn main() -> testbed::Result<()> {
//! let bed = TestBed::start(&["speakers", "game"])?;
//! let mut app = bed.spawn_app(&AppSpec::new("Firefox").binary("firefox"))?;
//! let streams = app.wait_for_streams(Duration::from_secs(10))?;
//! bed.wait_until(Duration::from_secs(10), "Firefox linked to speakers", || {
//!     bed.sink_names_linked_to(streams[0]) == ["speakers"]
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! The workspace binaries (`pvm-fake-app`, `pipewire-volume-mixer-daemon`,
//! `pvmctl`) are looked for next to the running executable (tests run from
//! `target/<profile>/deps/`, so `target/<profile>/` is searched too); build
//! them with `cargo build --workspace --bins`, or point `PVM_FAKE_APP`,
//! `PVM_DAEMON_BIN`, `PVM_PVMCTL_BIN` at them (and `PVM_MEMCHECK_DAEMON` at
//! the daemon to run under memcheck, when it is another build).
//!
//! Needs PipeWire and WirePlumber installed (`pipewire`, `wireplumber`,
//! `pw-dump`, `pw-cli`, `dbus-daemon` on `PATH`; `pipewire-pulse` for
//! [`TestBedBuilder::pulse`], `valgrind` for [`memcheck`]); `scripts/setup.sh`
//! installs them. The installed ones are the [`Stack::Pw14Wp05`] stack
//! (PipeWire >= 1.0, WirePlumber 0.5); where the installed ones are Debian
//! 12's own 0.3.65 + 0.4.13, use `PVM_TEST_STACK=pw03-wp04`.
#![deny(missing_docs)]

mod app;
mod bed;
mod daemon;
mod dirs;
mod error;
mod graph;
mod graph_watch;
pub mod hook;
pub mod lifecycle;
mod locate;
pub mod memcheck;
mod prefix;
mod process;
mod pty;
mod recorder;
mod sinks;
mod snapshot;
mod stack;
mod tool;
mod wait;

pub use app::{AppSpec, FakeApp};
pub use bed::{TestBed, TestBedBuilder, WirePlumber, DEFAULT_READY_TIMEOUT};
pub use daemon::{Daemon, DaemonPaths, DAEMON_START_TIMEOUT};
pub use error::{Error, Result};
pub use graph::{Client, Graph, Link, MetadataEntry, Node, AUDIO_SINK, STREAM_OUTPUT_AUDIO};
pub use graph_watch::{
    GraphWatcher, LinkSeen, NodeSeen, StreamEvent, StreamHistory, VolumeSeen, WatchLog, WatchOptions,
};
pub use locate::workspace_binary;
pub use pty::{Tui, TuiScreen};
pub use recorder::{longest_gap, rms_between, rms_of, BufferRecord, Gap, Recorder, RECORD_RATE};
pub use snapshot::{open_snapshot, wait_status};
pub use stack::{require_wireplumber_04, require_wireplumber_05, Stack, STACK_ENV};
pub use wait::{wait_for, wait_until, POLL_INTERVAL};
