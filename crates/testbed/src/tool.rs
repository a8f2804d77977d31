//! Running short-lived tools (`pw-dump`, `pw-cli`, `wpctl`, `pvmctl`) with a time limit.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::error::{Error, Result};

/// How long a tool may run before it is killed, unless the caller says otherwise.
pub(crate) const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// A printable form of `command`, for messages.
pub(crate) fn describe(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `command` to completion, capturing stdout and stderr, killing it
/// after `timeout`. A non-zero exit is *not* an error here; see [`run_ok`].
pub(crate) fn run(mut command: Command, timeout: Duration) -> Result<Output> {
    let line = describe(&command);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn { program: command.get_program().to_string_lossy().into_owned(), source })?;
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(timeout) {
        Ok(output) => {
            let _ = waiter.join();
            output.map_err(|e| Error::io(format!("waiting for `{line}`"), e))
        }
        Err(_) => {
            // SAFETY: kill has no memory-safety preconditions. The waiter has not
            // reported, so the child was not reaped before the timeout; should it
            // exit in this very instant, the pid cannot be reused that fast.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = waiter.join();
            Err(Error::CommandTimedOut { command: line, timeout })
        }
    }
}

/// Like [`run`], but a non-zero exit status is an [`Error::CommandFailed`].
pub(crate) fn run_ok(command: Command, timeout: Duration) -> Result<Output> {
    let line = describe(&command);
    let output = run(command, timeout)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error::CommandFailed {
            command: line,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}
