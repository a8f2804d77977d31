//! The connection's state machine: connect, enumerate, bind, live; on loss,
//! reconnect with a doubling backoff.

use std::rc::Weak;
use std::time::Duration;

use anyhow::Result;
use pipewire as pw;

use super::session::{Session, SessionEvents};

/// Reconnect delays: first retry, and the cap of the doubling backoff.
const RECONNECT_FIRST: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_millis(1000);

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not connected; a reconnect is scheduled.
    Disconnected,
    /// Connected, waiting for the first sync (registry enumerated).
    Enumerating(i32),
    /// Waiting for the second sync (bound objects' info and params).
    Binding(i32),
    /// Up to date.
    Live,
}

/// What a completed round trip meant for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synced {
    /// Not one of the connection's own round trips.
    Other,
    /// Globals are known; one more round trip brings their info and params.
    Enumerated,
    /// The graph is complete: the connection is live.
    Live,
    /// The round trip could not be continued; the connection is lost.
    Failed,
}

/// The connection to PipeWire, if any, and its phase.
pub struct Connection {
    session: Option<Session>,
    phase: Phase,
    backoff: Duration,
    ever_connected: bool,
}

impl Default for Connection {
    fn default() -> Self {
        Connection { session: None, phase: Phase::Disconnected, backoff: RECONNECT_FIRST, ever_connected: false }
    }
}

impl Connection {
    /// Not connected.
    pub fn new() -> Self {
        Self::default()
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the graph is being enumerated (requests wait for it).
    pub fn is_syncing(&self) -> bool {
        matches!(self.phase, Phase::Enumerating(_) | Phase::Binding(_))
    }

    /// The live session, if connected.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Drops a dead session. Call outside PipeWire callbacks.
    pub fn drop_session(&mut self) {
        self.session = None;
    }

    /// Connects and starts enumerating. Returns whether this is a reconnect.
    pub fn connect(&mut self, main_loop: &pw::main_loop::MainLoopRc, events: Weak<dyn SessionEvents>) -> Result<bool> {
        self.session = None;
        let session = Session::connect(main_loop, events)?;
        let seq = session.sync()?;
        self.session = Some(session);
        self.phase = Phase::Enumerating(seq);
        Ok(std::mem::replace(&mut self.ever_connected, true))
    }

    /// A round trip completed.
    pub fn synced(&mut self, seq: i32) -> Synced {
        match self.phase {
            Phase::Enumerating(s) if s == seq => match self.session.as_ref().map(Session::sync) {
                Some(Ok(next)) => {
                    self.phase = Phase::Binding(next);
                    Synced::Enumerated
                }
                _ => Synced::Failed,
            },
            Phase::Binding(s) if s == seq => {
                self.phase = Phase::Live;
                self.backoff = RECONNECT_FIRST;
                Synced::Live
            }
            _ => Synced::Other,
        }
    }

    /// Asks for a round trip on the live session.
    pub fn sync(&self) -> Option<i32> {
        self.session.as_ref().and_then(|s| s.sync().ok())
    }

    /// The connection is lost (or could not be made): returns the delay
    /// before the next try, or `None` if it was already marked lost.
    pub fn lost(&mut self) -> Option<Duration> {
        if self.phase == Phase::Disconnected && self.session.is_some() {
            return None;
        }
        let first_loss = self.phase != Phase::Disconnected;
        self.phase = Phase::Disconnected;
        if first_loss {
            self.backoff = RECONNECT_FIRST;
        }
        let delay = self.backoff;
        self.backoff = (delay * 2).min(RECONNECT_MAX);
        Some(delay)
    }
}
