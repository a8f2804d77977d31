//! PipeWire clients for the hook tests: a link watcher and a stand-in for the
//! daemon's routing.

pub mod links;
pub mod router;
