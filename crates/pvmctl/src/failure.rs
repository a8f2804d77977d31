//! Why pvmctl failed, and the exit status that says so.

use std::fmt;
use std::path::Path;

/// Exit status: the daemon refused the request, or something else failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: the daemon is not running. (Usage errors exit with 2, as
/// clap does.)
pub const EXIT_NOT_RUNNING: u8 = 3;

/// How to start the daemon, printed with every "not running" message.
pub const HOW_TO_START: &str = "start it with `systemctl --user start pipewire-volume-mixer` \
     or run `pipewire-volume-mixer-daemon`";

/// A failed command.
#[derive(Debug)]
pub enum Failure {
    /// The daemon answered `ERROR <message>`.
    Refused(String),
    /// No daemon is running; the text says what was found missing.
    NotRunning(String),
    /// Standard output was closed (e.g. `pvmctl watch | head -1`): stop quietly.
    OutputClosed,
    /// Anything else.
    Other(anyhow::Error),
}

impl Failure {
    /// "not running" because nothing is at `path`.
    pub fn nothing_at(what: &str, path: &Path) -> Failure {
        Failure::NotRunning(format!("no {what} at {}", path.display()))
    }

    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused(_) | Failure::Other(_) => EXIT_FAILURE,
            Failure::NotRunning(_) => EXIT_NOT_RUNNING,
            Failure::OutputClosed => 0,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused(message) => write!(f, "{message}"),
            Failure::NotRunning(detail) => {
                write!(f, "the daemon is not running ({detail});\n{HOW_TO_START}")
            }
            Failure::OutputClosed => write!(f, "standard output closed"),
            Failure::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::OutputClosed
        } else {
            Failure::Other(e.into())
        }
    }
}

/// The result of a command.
pub type Outcome = Result<(), Failure>;
