//! The one error type of the test bed.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while starting or driving a test bed.
///
/// Messages are written for the person reading a failed test: they name the
/// process or condition involved and, where there is one, end with the tail
/// of the relevant log file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation in the bed's directory failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "creating /tmp/pvm-testbed-x/run".
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A program could not be started at all.
    #[error("could not start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why `exec` failed.
        #[source]
        source: io::Error,
    },

    /// A short-lived tool (`pw-cli`, `pw-dump`, `pvmctl`, ...) exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },

    /// A short-lived tool did not finish in time and was killed.
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    CommandTimedOut {
        /// The command line.
        command: String,
        /// How long it was given.
        timeout: Duration,
    },

    /// `pw-dump` printed something that is not the JSON array it should print.
    #[error("could not parse the output of pw-dump: {0}")]
    Dump(#[from] serde_json::Error),

    /// `PVM_TEST_STACK` (or a stack name) is none of the known stacks.
    #[error("unknown test stack `{0}` (PVM_TEST_STACK): use pw14-wp05, pw14-wp04 or pw03-wp04")]
    UnknownStack(String),

    /// A condition did not become true in time.
    #[error("timed out after {timeout:?} waiting for {what}{details}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        timeout: Duration,
        /// Extra context (log tails), empty or starting with a newline.
        details: String,
    },

    /// A long-running process exited when it should not have.
    #[error("`{process}` exited ({status}) {during}{log_tail}")]
    Exited {
        /// The program.
        process: String,
        /// Its exit status.
        status: String,
        /// When it happened, e.g. "during startup".
        during: String,
        /// The end of its log, empty or starting with a newline.
        log_tail: String,
    },

    /// A workspace binary (the fake application, the daemon, `pvmctl`) was not found.
    #[error(
        "`{name}` not found (looked in {searched}); build the workspace first \
         (`cargo build --workspace --bins`, or `--release` for release tests) or set {env_var} \
         to its path"
    )]
    BinaryNotFound {
        /// The binary's name.
        name: String,
        /// The places looked at, comma separated.
        searched: String,
        /// The environment variable that overrides the location.
        env_var: String,
    },

    /// The path named by an override environment variable does not exist.
    #[error("{env_var} points to {path}, which does not exist")]
    BadOverride {
        /// The environment variable.
        env_var: String,
        /// Its value.
        path: PathBuf,
    },

    /// A sink name that PipeWire config syntax or our tools could not carry safely.
    #[error("invalid sink name {0:?}: use 1-64 ASCII letters, digits, '.', '-' or '_'")]
    InvalidSinkName(String),

    /// `create_sink` was asked for a sink that already exists in this bed.
    #[error("the bed already has a sink named {0:?}")]
    SinkExists(String),

    /// No node with this `node.name` is in the graph.
    #[error("no node named {0:?} in the graph")]
    NoSuchNode(String),

    /// The node exists but has no `Props` param with `channelVolumes`.
    #[error("node {0:?} has no Props param with channelVolumes")]
    NoVolume(String),

    /// valgrind's log does not read as a finished memcheck run.
    #[error("valgrind log {path}: {problem}")]
    ValgrindLog {
        /// The log file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// The daemon answered or behaved otherwise than a scripted run expects.
    #[error("{step}: {problem}")]
    Unexpected {
        /// The step of the run, e.g. "ROUTE Multi chat".
        step: String,
        /// What happened instead.
        problem: String,
    },

    /// The graph watcher could not connect to PipeWire, or its thread is gone.
    #[error("graph watcher: {0}")]
    Watcher(String),

    /// The recorder could not connect, its stream failed, or it listens to the wrong sink.
    #[error("recorder: {0}")]
    Recorder(String),

    /// The operation needs PipeWire running, but it was stopped with `stop_pipewire`.
    #[error("PipeWire is not running in this bed (call start_pipewire first)")]
    NotRunning,
}

/// The test bed's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] with a description of what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}
