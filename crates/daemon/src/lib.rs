//! The daemon of pipewire-volume-mixer as a library: the binary
//! `pipewire-volume-mixer-daemon` is a thin `main` over [`runtime`].
//!
//! Data flow (docs/architecture.md): PipeWire callbacks ([`pw`]) become
//! [`model::GraphEvent`]s, the [`daemon::Daemon`] applies them to the
//! [`model::Mixer`], lets the [`router`] decide, and the [`runtime`]
//! performs the resulting actions and publishes one snapshot per loop pass.
//! Everything except [`pw`] and [`runtime`] is plain Rust, tested without
//! PipeWire.

pub mod alloc_count;
pub mod atomic_file;
pub mod channels;
pub mod config;
pub mod control;
pub mod daemon;
pub mod expect;
pub mod metadata_view;
pub mod model;
pub mod notify;
pub mod pw;
pub mod requests;
pub mod route_store;
pub mod router;
pub mod rules;
pub mod runtime;
pub mod snapshot;
pub mod stats;
pub mod trace;
