//! Programs with a terminal UI in a pseudo-terminal: [`TestBed::spawn_tui`]
//! runs one with the bed's environment, a thread feeds everything it writes
//! to a VT100 emulator's parser (the `vt100` crate), and [`Tui::wait_for`]
//! sleeps until the screen satisfies a condition (woken by each write of the
//! program, not by polling).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};

use crate::bed::TestBed;
use crate::error::{Error, Result};
use crate::process::{GroupChild, Isolation};

/// What the reader thread shares with the test.
struct Shared {
    parser: vt100::Parser,
    /// When the parser last took output of the program.
    updated: Instant,
    /// Bytes read so far.
    bytes: usize,
    /// The program closed the terminal (it exited).
    closed: bool,
}

/// A program running in a pseudo-terminal; the whole session is terminated
/// (SIGTERM, then SIGKILL) and reaped on drop.
pub struct Tui {
    child: GroupChild,
    master: File,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    name: String,
}

/// A copy of the screen at one moment.
#[derive(Clone)]
pub struct TuiScreen {
    /// The emulator's screen.
    pub screen: vt100::Screen,
    /// When the program's output that made it arrived.
    pub at: Instant,
}

impl std::fmt::Debug for TuiScreen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TuiScreen").field("size", &self.screen.size()).field("text", &self.text()).finish()
    }
}

impl TuiScreen {
    /// The text of the screen, one line per row, trailing blanks trimmed.
    pub fn text(&self) -> String {
        self.screen.contents()
    }

    /// The row that contains `needle`, if any.
    pub fn line_with(&self, needle: &str) -> Option<String> {
        let (_, cols) = self.screen.size();
        self.screen.rows(0, cols).find(|row| row.contains(needle))
    }
}

fn io(context: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(context.to_owned(), e)
}

fn errno(context: &str) -> impl FnOnce(rustix::io::Errno) -> Error + '_ {
    move |e| Error::io(context.to_owned(), e.into())
}

fn size(cols: u16, rows: u16) -> Winsize {
    Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }
}

impl TestBed {
    /// Runs `program args` in a new `cols` x `rows` pseudo-terminal, with the
    /// bed's environment plus `TERM=xterm-256color` and `env`, as the leader
    /// of its own session with the terminal as its controlling terminal.
    pub fn spawn_tui(&self, program: &Path, args: &[&str], env: &[(&str, &str)], cols: u16, rows: u16) -> Result<Tui> {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(errno("opening a pseudo-terminal"))?;
        grantpt(&master).map_err(errno("grantpt"))?;
        unlockpt(&master).map_err(errno("unlockpt"))?;
        let name = ptsname(&master, Vec::new()).map_err(errno("ptsname"))?;
        let name = name.to_string_lossy().into_owned();
        tcsetwinsize(&master, size(cols, rows)).map_err(errno("setting the terminal size"))?;
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&name)
            .map_err(io("opening the pseudo-terminal's slave"))?;
        let mut command = self.command(program);
        command.args(args).env("TERM", "xterm-256color").envs(env.iter().copied());
        let stdin = slave.try_clone().map_err(io("duplicating the slave"))?;
        let stdout = slave.try_clone().map_err(io("duplicating the slave"))?;
        command.stdin(Stdio::from(stdin)).stdout(Stdio::from(stdout)).stderr(Stdio::from(slave));
        let program_name = program.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // The command (and with it the slave's descriptors) is dropped once
        // spawned: only the program holds the slave, so a read of the master
        // ends when it exits.
        let child = GroupChild::spawn_isolated(&program_name, command, Isolation::SessionOnStdin)?;
        let master = File::from(master);
        let shared = Arc::new((
            Mutex::new(Shared {
                parser: vt100::Parser::new(rows, cols, 0),
                updated: Instant::now(),
                bytes: 0,
                closed: false,
            }),
            Condvar::new(),
        ));
        let mut reader = master.try_clone().map_err(io("duplicating the master"))?;
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("pty-{program_name}"))
            .spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    let n = match reader.read(&mut buf) {
                        Ok(0) | Err(_) => 0,
                        Ok(n) => n,
                    };
                    let (lock, changed) = &*thread_shared;
                    let mut shared = lock.lock().unwrap_or_else(|p| p.into_inner());
                    if n == 0 {
                        // EIO: the program exited and the slave is closed.
                        shared.closed = true;
                        changed.notify_all();
                        return;
                    }
                    shared.parser.process(&buf[..n]);
                    shared.updated = Instant::now();
                    shared.bytes += n;
                    changed.notify_all();
                }
            })
            .map_err(io("starting the pseudo-terminal reader"))?;
        Ok(Tui { child, master, shared, name: program_name })
    }
}

impl Tui {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The program's pid (also its session and process group id).
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Types `bytes` (keys are escape sequences: `\x1b[A` is Up).
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.master.write_all(bytes).map_err(io("writing to the pseudo-terminal"))?;
        self.master.flush().map_err(io("writing to the pseudo-terminal"))
    }

    /// The screen now.
    pub fn screen(&self) -> TuiScreen {
        let shared = self.lock();
        TuiScreen { screen: shared.parser.screen().clone(), at: shared.updated }
    }

    /// How many bytes the program has written so far.
    pub fn bytes_written(&self) -> usize {
        self.lock().bytes
    }

    /// Changes the terminal's size (the program gets SIGWINCH).
    pub fn resize(&mut self, cols: u16, rows: u16) -> Result<()> {
        let mut shared = self.lock();
        tcsetwinsize(&self.master, size(cols, rows)).map_err(errno("setting the terminal size"))?;
        shared.parser.set_size(rows, cols);
        Ok(())
    }

    /// Waits until `condition` holds for the screen, re-checking after each
    /// output of the program, and returns that screen. The error after
    /// `timeout` names `what` and shows the last screen.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&TuiScreen) -> bool,
    ) -> Result<TuiScreen> {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.shared;
        let mut shared = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let screen = TuiScreen { screen: shared.parser.screen().clone(), at: shared.updated };
            if condition(&screen) {
                return Ok(screen);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || shared.closed {
                let why = if shared.closed { " (it exited)" } else { "" };
                return Err(Error::Timeout {
                    what: format!("{what} on the screen of {}{why}", self.name),
                    timeout,
                    details: format!("\nthe screen:\n{}", screen.text()),
                });
            }
            shared = changed.wait_timeout(shared, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// [`Tui::wait_for`] the text `needle` anywhere on the screen.
    pub fn wait_for_text(&self, timeout: Duration, needle: &str) -> Result<TuiScreen> {
        self.wait_for(timeout, &format!("{needle:?}"), |s| s.text().contains(needle))
    }

    /// Waits up to `timeout` for the program to exit, and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.wait_timeout(timeout)
    }

    /// Waits until the program has closed the terminal and the reader has
    /// passed everything it wrote to the parser.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.shared;
        let mut shared = lock.lock().unwrap_or_else(|p| p.into_inner());
        while !shared.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            shared = changed.wait_timeout(shared, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        true
    }

    /// Sends `signal` to the program.
    pub fn kill(&self, signal: libc::c_int) -> Result<()> {
        self.child.signal(signal).map_err(io("signalling the program"))
    }
}
