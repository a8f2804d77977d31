//! Running the daemon under test (`pipewire-volume-mixer-daemon`) and `pvmctl` against a bed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::bed::TestBed;
use crate::dirs::{create_private_dir, tail_of};
use crate::error::{Error, Result};
use crate::locate::{self, DAEMON, PVMCTL};
use crate::process::GroupChild;
use crate::tool::{self, TOOL_TIMEOUT};

/// How long [`TestBed::spawn_daemon`] waits for the socket and the shm file.
pub const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a dropped daemon gets between SIGTERM and SIGKILL.
const DAEMON_GRACE: Duration = Duration::from_secs(3);

/// How many log lines are quoted.
const LOG_TAIL_LINES: usize = 30;

/// Numbers the daemons' log files (`daemon-1.log`, ...) within this process.
static DAEMONS_STARTED: AtomicUsize = AtomicUsize::new(0);

/// The files a daemon started by the bed uses, all inside the bed's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonPaths {
    /// `--shm`: the shared-memory snapshot, `<dir>/shm`.
    pub shm: PathBuf,
    /// `--socket`: the control socket, `<dir>/run/socket`.
    pub socket: PathBuf,
    /// `--stats`: the stats file, `<dir>/run/stats`.
    pub stats: PathBuf,
    /// `--config`: the config file, `<dir>/config.toml` (write it before spawning).
    pub config: PathBuf,
    /// `--state`: the persisted routes, `<dir>/routes.toml`.
    pub state: PathBuf,
}

impl DaemonPaths {
    fn in_dir(dir: &Path) -> DaemonPaths {
        DaemonPaths {
            shm: dir.join("shm"),
            socket: dir.join("run/socket"),
            stats: dir.join("run/stats"),
            config: dir.join("config.toml"),
            state: dir.join("routes.toml"),
        }
    }

    /// The daemon's path flags: `--shm .. --socket .. --stats .. --config .. --state ..`.
    pub fn daemon_args(&self) -> Vec<OsString> {
        [
            ("--shm", &self.shm),
            ("--socket", &self.socket),
            ("--stats", &self.stats),
            ("--config", &self.config),
            ("--state", &self.state),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [OsString::from(flag), path.clone().into_os_string()])
        .collect()
    }

    /// `pvmctl`'s path flags: `--socket .. --shm .. --stats ..`.
    pub fn pvmctl_args(&self) -> Vec<OsString> {
        [("--socket", &self.socket), ("--shm", &self.shm), ("--stats", &self.stats)]
            .into_iter()
            .flat_map(|(flag, path)| [OsString::from(flag), path.clone().into_os_string()])
            .collect()
    }

    /// The same paths as environment variables (`PVM_SHM`, `PVM_SOCKET`,
    /// `PVM_STATS`, `PVM_CONFIG`, `PVM_STATE`), for a shell or a client.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("PVM_SHM", &self.shm),
            ("PVM_SOCKET", &self.socket),
            ("PVM_STATS", &self.stats),
            ("PVM_CONFIG", &self.config),
            ("PVM_STATE", &self.state),
        ]
        .into_iter()
        .map(|(name, path)| (name.to_owned(), path.to_string_lossy().into_owned()))
        .collect()
    }
}

/// A running daemon. Dropping it sends SIGTERM to its process group, waits up
/// to 3 s, then SIGKILLs, and reaps it. If it had exited by itself before that
/// (and nobody asked with [`Daemon::wait_exit`]), the end of its log is printed
/// to stderr, where the test harness shows it for failed tests.
#[derive(Debug)]
pub struct Daemon {
    /// The daemon's pid (also its process group id).
    pub pid: u32,
    /// Its shared-memory snapshot.
    pub shm: PathBuf,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its stats file.
    pub stats: PathBuf,
    /// Its config file.
    pub config: PathBuf,
    /// Its persisted routes.
    pub state: PathBuf,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: GroupChild,
    /// Set once the test has seen or caused the exit, so it is not "unexpected".
    exit_expected: bool,
}

impl TestBed {
    /// Where a daemon started by this bed keeps its files.
    pub fn daemon_paths(&self) -> DaemonPaths {
        DaemonPaths::in_dir(self.dir())
    }

    /// A command that runs `binary` with the bed's environment, the path flags
    /// of [`TestBed::daemon_paths`] and then `args`. Creates `<dir>/run` (0700).
    pub fn daemon_command_from(&self, binary: &Path, args: &[&str]) -> Result<Command> {
        self.daemon_command_via(&[], binary, args)
    }

    /// [`TestBed::daemon_command_from`] run through `launcher` (a program and
    /// its arguments, e.g. `valgrind --tool=memcheck`), which gets the daemon's
    /// command line after its own arguments. An empty `launcher` runs the
    /// daemon directly.
    pub(crate) fn daemon_command_via(&self, launcher: &[OsString], binary: &Path, args: &[&str]) -> Result<Command> {
        let paths = self.daemon_paths();
        if let Some(run_dir) = paths.socket.parent() {
            create_private_dir(run_dir)?;
        }
        let mut command = match launcher.split_first() {
            Some((program, launcher_args)) => {
                let mut command = self.command(program);
                command.args(launcher_args).arg(binary);
                command
            }
            None => self.command(binary),
        };
        command.args(paths.daemon_args()).args(args);
        Ok(command)
    }

    /// [`TestBed::daemon_command_from`] with the workspace's
    /// `pipewire-volume-mixer-daemon` (or `$PVM_DAEMON_BIN`): for tests that
    /// want to run it by hand, e.g. to see it refuse to start.
    pub fn daemon_command(&self, args: &[&str]) -> Result<Command> {
        let binary = locate::workspace_binary(DAEMON.0, DAEMON.1)?;
        self.daemon_command_from(&binary, args)
    }

    /// Starts the workspace's daemon (or `$PVM_DAEMON_BIN`) on this bed, with
    /// the paths of [`TestBed::daemon_paths`] and then `args`, and waits (up to
    /// 10 s) until its socket and its shm file exist.
    pub fn spawn_daemon(&self, args: &[&str]) -> Result<Daemon> {
        let binary = locate::workspace_binary(DAEMON.0, DAEMON.1)?;
        self.spawn_daemon_from(&binary, args)
    }

    /// [`TestBed::spawn_daemon`] through `launcher`, a program and its
    /// arguments that exec the daemon in their own process (e.g. `prlimit
    /// --nofile=64:64`): the daemon's command line follows them.
    pub fn spawn_daemon_through(&self, launcher: &[&str], args: &[&str]) -> Result<Daemon> {
        let binary = locate::workspace_binary(DAEMON.0, DAEMON.1)?;
        let launcher: Vec<OsString> = launcher.iter().map(OsString::from).collect();
        self.spawn_daemon_via(&launcher, &binary, args, DAEMON_START_TIMEOUT)
    }

    /// [`TestBed::spawn_daemon`] with another binary.
    pub fn spawn_daemon_from(&self, binary: &Path, args: &[&str]) -> Result<Daemon> {
        self.spawn_daemon_via(&[], binary, args, DAEMON_START_TIMEOUT)
    }

    /// [`TestBed::spawn_daemon_from`] through `launcher` (see
    /// [`TestBed::daemon_command_via`]), waiting up to `start_timeout` for the
    /// socket and the shm file. The daemon's pid is the launcher's, so the
    /// launcher must exec the daemon in its own process (valgrind does).
    pub(crate) fn spawn_daemon_via(
        &self,
        launcher: &[OsString],
        binary: &Path,
        args: &[&str],
        start_timeout: Duration,
    ) -> Result<Daemon> {
        let number = DAEMONS_STARTED.fetch_add(1, Ordering::Relaxed) + 1;
        let log_name = format!("daemon-{number}");
        let log = self.dirs().open_log(&log_name)?;
        let log_err = log.try_clone().map_err(|e| Error::io("duplicating a log file handle", e))?;
        let mut command = self.daemon_command_via(launcher, binary, args)?;
        command.stdin(Stdio::null()).stdout(log).stderr(log_err);
        let name = binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| DAEMON.0.to_owned());
        let child = GroupChild::spawn(&name, command)?;
        let paths = self.daemon_paths();
        let mut daemon = Daemon {
            pid: child.pid(),
            shm: paths.shm,
            socket: paths.socket,
            stats: paths.stats,
            config: paths.config,
            state: paths.state,
            log: self.dirs().log(&log_name),
            child,
            exit_expected: false,
        };
        daemon.wait_started(start_timeout)?;
        Ok(daemon)
    }

    /// A `pvmctl` command (the workspace's, or `$PVM_PVMCTL_BIN`) with the
    /// bed's environment, `daemon`'s `--socket`, `--shm` and `--stats`, then `args`.
    pub fn pvmctl_command(&self, daemon: &Daemon, args: &[&str]) -> Result<Command> {
        let binary = locate::workspace_binary(PVMCTL.0, PVMCTL.1)?;
        let mut command = self.command(binary);
        command.args(daemon.paths().pvmctl_args()).args(args);
        Ok(command)
    }

    /// Runs `pvmctl` against `daemon` (see [`TestBed::pvmctl_command`]) and
    /// returns its output, whatever its exit status; killed after 20 s.
    pub fn pvmctl(&self, daemon: &Daemon, args: &[&str]) -> Result<Output> {
        tool::run(self.pvmctl_command(daemon, args)?, TOOL_TIMEOUT)
    }
}

impl Daemon {
    /// The paths it was started with.
    pub fn paths(&self) -> DaemonPaths {
        DaemonPaths {
            shm: self.shm.clone(),
            socket: self.socket.clone(),
            stats: self.stats.clone(),
            config: self.config.clone(),
            state: self.state.clone(),
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`) to the daemon process.
    pub fn kill(&mut self, signal: libc::c_int) -> Result<()> {
        if matches!(signal, libc::SIGTERM | libc::SIGINT | libc::SIGKILL | libc::SIGQUIT) {
            self.exit_expected = true;
        }
        self.child.signal(signal).map_err(|e| Error::io(format!("sending signal {signal} to the daemon"), e))
    }

    /// Waits up to `timeout` for the daemon to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = self.child.wait_timeout(timeout);
        if status.is_some() {
            self.exit_expected = true;
        }
        status
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_status().is_none()
    }

    /// The last `lines` lines of its log (stdout and stderr).
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of(&self.log, lines).unwrap_or_default()
    }

    fn wait_started(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_status() {
                self.exit_expected = true;
                return Err(Error::Exited {
                    process: self.child.name().to_owned(),
                    status: status.to_string(),
                    during: "before creating its socket and shm file".into(),
                    log_tail: self.quoted_log_tail(),
                });
            }
            if self.socket.exists() && self.shm.exists() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the daemon to create {} and {}", self.socket.display(), self.shm.display()),
                    timeout,
                    details: self.quoted_log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn quoted_log_tail(&self) -> String {
        tail_of(&self.log, LOG_TAIL_LINES)
            .map(|t| format!("\n--- last lines of {} ---\n{t}", self.log.display()))
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.exit_expected {
            if let Some(status) = self.child.try_status() {
                eprintln!("the daemon (pid {}) exited unexpectedly ({status}){}", self.pid, self.quoted_log_tail());
            }
        }
        self.child.terminate(DAEMON_GRACE);
    }
}
