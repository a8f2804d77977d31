//! The command worker: a thread that sends the mixer's requests to the
//! daemon, one at a time and in order, so the UI never waits on the socket.
//! A volume request that a newer one for the same sink or app has already
//! replaced while it waited is not sent at all (a held-down arrow key sends
//! the newest value, not every step in between).

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use pvm_ipc::client::{Client, ClientError};
use pvm_ipc::protocol::{Request, Response};

use crate::app::{Job, Outcome};

/// The daemon answers every request within 1 s; past this it is stuck.
const TIMEOUT: Duration = Duration::from_secs(3);

/// What the worker reports back.
#[derive(Debug)]
pub enum Report {
    /// The daemon's answer to a job.
    Answered(Job, Outcome),
    /// A job that a newer one made pointless; not sent.
    Superseded,
}

/// Starts the worker on `socket`; it runs until `jobs` is closed or `report` fails.
pub fn spawn(
    socket: PathBuf,
    jobs: Receiver<Job>,
    mut report: impl FnMut(Report) -> bool + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("commands".into()).spawn(move || {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            batch.extend(jobs.try_iter());
            for (job, superseded) in mark_superseded(batch) {
                let sent = if superseded {
                    {
                        drop(job);
                        report(Report::Superseded)
                    }
                } else {
                    let outcome = send(&socket, &job.request);
                    report(Report::Answered(job, outcome))
                };
                if !sent {
                    return;
                }
            }
        }
    })?;
    Ok(())
}

/// Flags the volume requests followed by another one for the same sink or app.
fn mark_superseded(batch: Vec<Job>) -> Vec<(Job, bool)> {
    let key = |r: &Request| match r {
        Request::SetVolume { sink, .. } => Some((0, sink.clone())),
        Request::SetAppVolume { app, .. } => Some((1, app.clone())),
        _ => None,
    };
    let keys: Vec<_> = batch.iter().map(|j| key(&j.request)).collect();
    batch
        .into_iter()
        .enumerate()
        .map(|(i, job)| {
            let later = keys[i].is_some() && keys[i + 1..].contains(&keys[i]);
            (job, later)
        })
        .collect()
}

/// Sends one request on a fresh connection.
fn send(socket: &std::path::Path, request: &Request) -> Outcome {
    let answer = Client::connect(socket).and_then(|mut client| {
        client.set_timeout(Some(TIMEOUT))?;
        client.request(request)
    });
    match answer {
        Ok(Response::Ok(payload)) => Outcome::Done(payload),
        Ok(Response::Error(message)) => Outcome::Refused(message),
        Err(ClientError::NotRunning { .. }) => Outcome::NotRunning,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvm_ipc::protocol::MuteAction;

    fn job(request: Request) -> Job {
        Job { request, label: String::new() }
    }

    #[test]
    fn only_the_newest_volume_of_an_item_is_sent() {
        let volume = |sink: &str, v: f32| job(Request::SetVolume { sink: sink.into(), volume: v });
        let batch = vec![
            volume("game", 0.45),
            job(Request::Mute { sink: "game".into(), mute: MuteAction::Toggle }),
            volume("chat", 0.5),
            volume("game", 0.40),
            job(Request::SetAppVolume { app: "game".into(), volume: 0.3 }),
        ];
        let flags: Vec<bool> = mark_superseded(batch).into_iter().map(|(_, s)| s).collect();
        assert_eq!(flags, [true, false, false, false, false]);
    }

    #[test]
    fn no_daemon_is_not_running() {
        let dir = std::env::temp_dir().join(format!("pvm-mixer-worker-{}", std::process::id()));
        assert_eq!(send(&dir.join("socket"), &Request::Ping), Outcome::NotRunning);
    }
}
