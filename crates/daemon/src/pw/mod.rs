//! The PipeWire edge: the connection and the params we read and write.

pub mod actions;
pub mod cleanup;
pub mod connection;
pub mod params;
pub mod priority;
pub mod session;
