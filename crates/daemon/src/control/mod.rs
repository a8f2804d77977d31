//! The control socket: safe creation and the non-blocking server.

pub mod server;
pub mod socket_path;

pub use server::ControlServer;
