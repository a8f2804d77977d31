//! Everything a client of `pipewire-volume-mixer` needs, without PipeWire:
//!
//! * [`layout`]: the `#[repr(C)]` layout (version 1) of the shared-memory snapshot;
//! * [`writer`] and [`reader`]: the seqlock that publishes and reads it, with
//!   a futex to wait for the next change;
//! * [`status`]: the JSON form of a snapshot (`pvmctl status --json`, `STATUS`);
//! * [`protocol`]: the line protocol of the control socket;
//! * [`client`]: a small blocking client for that socket;
//! * [`paths`]: where the daemon puts its files by default.
#![deny(missing_docs)]

pub mod client;
pub mod layout;
pub mod paths;
pub mod protocol;
pub mod reader;
pub mod status;
pub mod writer;

mod futex;
mod shmfile;
mod words;
