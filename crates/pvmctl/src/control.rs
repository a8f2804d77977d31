//! Requests over the control socket.

use std::path::Path;

use anyhow::anyhow;
use pvm_ipc::client::{Client, ClientError};
use pvm_ipc::protocol::{Request, Response};

use crate::failure::Failure;

/// Sends one request; returns the `OK` payload, or the daemon's `ERROR`
/// message as [`Failure::Refused`].
pub fn send(socket: &Path, request: &Request) -> Result<Option<String>, Failure> {
    let mut client = Client::connect(socket).map_err(client_failure)?;
    match client.request(request).map_err(client_failure)? {
        Response::Ok(payload) => Ok(payload),
        Response::Error(message) => Err(Failure::Refused(message)),
    }
}

fn client_failure(e: ClientError) -> Failure {
    match e {
        ClientError::NotRunning { path, .. } => Failure::NotRunning(format!("no one listens on {}", path.display())),
        ClientError::Refused(message) => Failure::Refused(message),
        other => Failure::Other(anyhow!(other)),
    }
}
