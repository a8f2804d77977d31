//! Long-running children, each the leader of its own process group.
//!
//! Every process the bed starts (dbus-daemon, pipewire, wireplumber, fake
//! applications, the daemon under test) is spawned here:
//!
//! * in a new process group, so that a terminal's Ctrl-C does not reach it and
//!   killing the group also kills anything it forked;
//! * with `PR_SET_PDEATHSIG = SIGTERM`, so that it goes away even when the test
//!   process is killed and no destructor runs. The kernel sends that signal
//!   when the *thread* that forked the child exits, so all forks happen on one
//!   spawner thread that lives as long as the process;
//! * with an empty signal mask, whatever the caller had blocked.
//!
//! [`GroupChild`] terminates and reaps its group when dropped.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a process group gets between SIGTERM and SIGKILL by default.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// How often exits are polled while waiting.
const POLL: Duration = Duration::from_millis(5);

/// A request to the spawner thread.
struct SpawnRequest {
    command: Command,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// The channel to the process-wide spawner thread, started on first use.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("testbed-spawner".into())
            .spawn(move || {
                for mut request in requests {
                    // The receiver only goes away if the caller gave up; then the
                    // child is dropped without being waited for, like any Child.
                    let _ = request.reply.send(request.command.spawn());
                }
            })
            .expect("starting the test bed's spawner thread");
        Mutex::new(sender)
    })
}

/// How a child is separated from the test process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// Its own process group.
    Group,
    /// Its own session (and so its own process group), with its standard
    /// input, a terminal, as its controlling terminal: for programs that run
    /// in a pseudo-terminal.
    SessionOnStdin,
}

/// Prepares `command` to run as described in the module docs.
fn isolate(command: &mut Command, isolation: Isolation) {
    let parent = std::process::id() as libc::pid_t;
    let session = isolation == Isolation::SessionOnStdin;
    if !session {
        command.process_group(0);
    }
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe functions may be called. It calls setsid, ioctl,
    // prctl, getppid, sigemptyset and pthread_sigmask, which are, builds an
    // io::Error from an errno value (no allocation) and touches no locks or
    // shared state.
    unsafe {
        command.pre_exec(move || {
            if session {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// A running child that leads its own process group.
#[derive(Debug)]
pub(crate) struct GroupChild {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl GroupChild {
    /// Spawns `command` isolated as described in the module docs. `name`
    /// is used in messages.
    pub(crate) fn spawn(name: &str, command: Command) -> Result<GroupChild> {
        GroupChild::spawn_isolated(name, command, Isolation::Group)
    }

    /// [`GroupChild::spawn`] with another [`Isolation`].
    pub(crate) fn spawn_isolated(name: &str, mut command: Command, isolation: Isolation) -> Result<GroupChild> {
        isolate(&mut command, isolation);
        let (reply, answer) = mpsc::channel();
        let request = SpawnRequest { command, reply };
        let sent = spawner().lock().unwrap_or_else(|poisoned| poisoned.into_inner()).send(request);
        let spawned = match sent {
            Ok(()) => answer.recv().unwrap_or_else(|_| Err(io::Error::other("the test bed's spawner thread is gone"))),
            Err(_) => Err(io::Error::other("the test bed's spawner thread is gone")),
        };
        let child = spawned.map_err(|source| Error::Spawn { program: name.to_owned(), source })?;
        tracing::debug!(name, pid = child.id(), "started");
        Ok(GroupChild { name: name.to_owned(), child, status: None })
    }

    /// The child's pid, which is also its process group id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn time.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the child has exited (reaping it), without blocking.
    pub(crate) fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for the child to exit on its own.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL);
        }
    }

    /// Sends `signal` to the child process only.
    pub(crate) fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        if self.status.is_some() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // SAFETY: kill has no memory-safety preconditions. The pid is our
        // unreaped child (status is None), so it cannot have been reused.
        if unsafe { libc::kill(self.pid() as libc::pid_t, signal) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Sends `signal` to the whole process group while the leader is unreaped
    /// (so the group id cannot have been reused).
    fn signal_group(&self, signal: libc::c_int) {
        if self.status.is_none() {
            // SAFETY: killpg has no memory-safety preconditions; see above for
            // why the group id is still ours.
            unsafe { libc::killpg(self.pid() as libc::pid_t, signal) };
        }
    }

    /// Terminates the group (SIGTERM, then SIGKILL after `grace`) and reaps the leader.
    pub(crate) fn terminate(&mut self, grace: Duration) -> ExitStatus {
        terminate_all(std::slice::from_mut(self), grace);
        self.status.expect("terminate_all reaps every child")
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        self.terminate(DEFAULT_GRACE);
    }
}

/// Terminates several groups at once: SIGTERM to all, up to `grace` for them
/// to exit, SIGKILL to the rest, then reaps every leader.
pub(crate) fn terminate_all(children: &mut [GroupChild], grace: Duration) {
    for child in children.iter_mut() {
        // Signal even a leader that already exited (a zombie), for its group.
        child.signal_group(libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while children.iter_mut().any(|c| c.try_status().is_none()) && Instant::now() < deadline {
        thread::sleep(POLL);
    }
    for child in children.iter_mut() {
        if child.try_status().is_none() {
            tracing::warn!(name = child.name, pid = child.pid(), "did not stop on SIGTERM; killing");
            child.signal_group(libc::SIGKILL);
            child.status = Some(child.child.wait().unwrap_or_else(|_| {
                // wait only fails for a child that is not ours; treat as killed.
                std::os::unix::process::ExitStatusExt::from_raw(libc::SIGKILL)
            }));
        }
    }
}
