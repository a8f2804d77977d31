//! The daemon under valgrind's memcheck, and what memcheck's log says.
//!
//! [`TestBed::spawn_daemon_under_memcheck`] starts the daemon through the
//! bed's usual daemon spawn path with `valgrind --tool=memcheck` in front of
//! it; [`MemcheckDaemon::finish`] stops it with SIGTERM, waits for valgrind's
//! leak check and parses the log into a [`MemcheckReport`]. Every memcheck
//! error counts: invalid reads and writes, uses of uninitialised values,
//! invalid frees, and "definitely lost" blocks (made errors with
//! `--errors-for-leak-kinds=definite`).
//!
//! Everything runs 20 to 50 times slower under valgrind: the waits here are
//! long, and callers should wait for conditions, never for fixed times.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::bed::TestBed;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::locate::{self, DAEMON};

/// The variable naming the daemon binary to run under memcheck; when unset,
/// the workspace's daemon is used (or `$PVM_DAEMON_BIN`). It lets the same
/// check run on another build, e.g. an older commit's, without touching the
/// binary every other test uses.
pub const MEMCHECK_DAEMON_ENV: &str = "PVM_MEMCHECK_DAEMON";

/// valgrind's exit code when it found errors (`--error-exitcode`); the
/// daemon itself never exits with it.
pub const MEMCHECK_ERROR_EXIT_CODE: i32 = 97;

/// How long the daemon may take under valgrind to create its socket and shm file.
pub const MEMCHECK_START_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the daemon may take under valgrind to exit after SIGTERM,
/// valgrind's leak check included.
pub const MEMCHECK_EXIT_TIMEOUT: Duration = Duration::from_secs(120);

/// How many error blocks [`MemcheckReport`] keeps for messages.
const KEPT_ERROR_BLOCKS: usize = 3;

/// How many frames of each stack of an error block are kept.
const KEPT_FRAMES: usize = 12;

/// How valgrind is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memcheck {
    /// `--track-origins=yes`: where an uninitialised value came from (about
    /// twice as slow again, but the error is then actionable).
    pub track_origins: bool,
    /// `--num-callers`: stack frames per error.
    pub num_callers: u32,
    /// `--suppressions` files (none by default: every error is ours to explain).
    pub suppressions: Vec<PathBuf>,
}

impl Default for Memcheck {
    fn default() -> Self {
        Memcheck { track_origins: true, num_callers: 30, suppressions: Vec::new() }
    }
}

impl Memcheck {
    /// valgrind's command line up to (not including) the program, logging to `log`.
    pub fn valgrind_args(&self, log: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "valgrind",
            "--tool=memcheck",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        args.push(format!("--track-origins={}", if self.track_origins { "yes" } else { "no" }).into());
        args.push(format!("--num-callers={}", self.num_callers).into());
        args.push(format!("--error-exitcode={MEMCHECK_ERROR_EXIT_CODE}").into());
        for file in &self.suppressions {
            let mut arg = OsString::from("--suppressions=");
            arg.push(file);
            args.push(arg);
        }
        let mut arg = OsString::from("--log-file=");
        arg.push(log);
        args.push(arg);
        args
    }
}

/// The daemon binary to check: `$PVM_MEMCHECK_DAEMON` if set, else the
/// workspace's (or `$PVM_DAEMON_BIN`).
pub fn memcheck_daemon_binary() -> Result<PathBuf> {
    let env_var = if std::env::var_os(MEMCHECK_DAEMON_ENV).is_some() { MEMCHECK_DAEMON_ENV } else { DAEMON.1 };
    let path = locate::workspace_binary(DAEMON.0, env_var)?;
    // Absolute: the bed runs its processes from its own directory.
    std::fs::canonicalize(&path).map_err(|e| Error::io(format!("resolving {}", path.display()), e))
}

/// valgrind's version (`valgrind-3.19.0`); an error if it is not installed.
pub fn valgrind_version() -> Result<String> {
    let output = Command::new("valgrind")
        .arg("--version")
        .output()
        .map_err(|source| Error::Spawn { program: "valgrind (scripts/setup.sh installs it)".into(), source })?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A daemon running under memcheck. Dropping it kills it like any
/// [`Daemon`] (valgrind's report is then lost); call [`MemcheckDaemon::finish`].
#[derive(Debug)]
pub struct MemcheckDaemon {
    daemon: Daemon,
    log: PathBuf,
}

impl TestBed {
    /// Starts `binary` (see [`memcheck_daemon_binary`]) with `args` under
    /// valgrind's memcheck, the way [`TestBed::spawn_daemon_from`] starts it,
    /// and waits (up to [`MEMCHECK_START_TIMEOUT`]) for its socket and shm
    /// file. valgrind logs to `valgrind.log` in the bed's directory
    /// (`valgrind-2.log`, ... for later daemons of the same bed).
    pub fn spawn_daemon_under_memcheck(
        &self,
        binary: &Path,
        args: &[&str],
        memcheck: &Memcheck,
    ) -> Result<MemcheckDaemon> {
        valgrind_version()?;
        let log = (1..)
            .map(|n| self.dir().join(if n == 1 { "valgrind.log".to_owned() } else { format!("valgrind-{n}.log") }))
            .find(|path| !path.exists())
            .expect("an unused file name");
        let launcher = memcheck.valgrind_args(&log);
        let daemon = self.spawn_daemon_via(&launcher, binary, args, MEMCHECK_START_TIMEOUT)?;
        Ok(MemcheckDaemon { daemon, log })
    }
}

impl MemcheckDaemon {
    /// The daemon (its pid is valgrind's: valgrind runs it in its own process).
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// The daemon, e.g. to send it a signal.
    pub fn daemon_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// valgrind's log file (inside the bed's directory, deleted with the bed).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Stops the daemon with SIGTERM, waits up to `timeout` for it and for
    /// valgrind's leak check, and parses the log. An error if it does not
    /// exit in time (it is then killed) or the log is incomplete.
    pub fn finish(mut self, timeout: Duration) -> Result<MemcheckOutcome> {
        if self.daemon.is_running() {
            self.daemon.kill(libc::SIGTERM)?;
        }
        let Some(exit) = self.daemon.wait_exit(timeout) else {
            return Err(Error::Timeout {
                what: "the daemon under valgrind to exit after SIGTERM".into(),
                timeout,
                details: format!("\n--- last lines of {} ---\n{}", self.daemon.log.display(), self.daemon.log_tail(30)),
            });
        };
        let text =
            std::fs::read_to_string(&self.log).map_err(|e| Error::io(format!("reading {}", self.log.display()), e))?;
        let report = MemcheckReport::parse(&text).map_err(|problem| Error::ValgrindLog {
            path: self.log.clone(),
            problem: format!("{problem} (daemon exit: {exit}){}", self.daemon.log_tail(30)),
        })?;
        Ok(MemcheckOutcome { exit, report, daemon_log_tail: self.daemon.log_tail(30) })
    }
}

/// How a memcheck run ended.
#[derive(Debug, Clone)]
pub struct MemcheckOutcome {
    /// valgrind's exit status: the daemon's own, or
    /// [`MEMCHECK_ERROR_EXIT_CODE`] when memcheck found errors.
    pub exit: ExitStatus,
    /// What the log says.
    pub report: MemcheckReport,
    /// The end of the daemon's own output, for messages.
    pub daemon_log_tail: String,
}

impl MemcheckOutcome {
    /// `None` for a clean run (no memcheck error, nothing definitely lost,
    /// exit status 0), else a description of what went wrong with the first
    /// error blocks, for a failure message.
    pub fn problems(&self) -> Option<String> {
        if self.report.is_clean() && self.exit.success() {
            return None;
        }
        let mut text = format!("memcheck: {}; valgrind {}", self.report, self.exit);
        if let Some(crash) = &self.report.crash {
            text.push_str("\n\n");
            text.push_str(crash);
        }
        for block in &self.report.first_errors {
            text.push_str("\n\n");
            text.push_str(block);
        }
        if !self.exit.success() && self.report.is_clean() {
            text.push_str(&format!("\n--- the daemon's last lines ---\n{}", self.daemon_log_tail));
        }
        Some(text)
    }
}

/// Bytes and blocks of one leak kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lost {
    /// Bytes lost.
    pub bytes: u64,
    /// Blocks lost.
    pub blocks: u64,
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes in {} blocks", self.bytes, self.blocks)
    }
}

/// What a finished memcheck log says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemcheckReport {
    /// Errors found (`ERROR SUMMARY: <n> errors`), definite leaks included.
    pub errors: u64,
    /// Distinct places they come from (`from <n> contexts`).
    pub contexts: u64,
    /// Errors hidden by suppressions.
    pub suppressed: u64,
    /// `definitely lost`.
    pub definitely_lost: Lost,
    /// `indirectly lost`.
    pub indirectly_lost: Lost,
    /// `possibly lost` (not an error: interior pointers, e.g. into a
    /// library's own structures, look like this).
    pub possibly_lost: Lost,
    /// The first error blocks of the log (what, where, and for invalid
    /// accesses where the memory was allocated and freed), each as text.
    pub first_errors: Vec<String>,
    /// The block valgrind printed if the program died of a signal.
    pub crash: Option<String>,
}

impl MemcheckReport {
    /// Parses the text of a memcheck log. An error if it has no `ERROR
    /// SUMMARY` (valgrind did not get to the end: it was killed).
    pub fn parse(log: &str) -> std::result::Result<MemcheckReport, String> {
        let lines: Vec<&str> = log.lines().map(strip_pid_prefix).collect();
        let mut report = MemcheckReport::default();
        let summary = lines
            .iter()
            .find_map(|l| l.trim_start().strip_prefix("ERROR SUMMARY: "))
            .ok_or("no ERROR SUMMARY in the log: valgrind did not finish (was it killed?)")?;
        let numbers = numbers_in(summary);
        let [errors, contexts, suppressed, ..] = numbers[..] else {
            return Err(format!("cannot read the ERROR SUMMARY line: {summary:?}"));
        };
        (report.errors, report.contexts, report.suppressed) = (errors, contexts, suppressed);
        for (kind, slot) in [
            ("definitely lost: ", &mut report.definitely_lost),
            ("indirectly lost: ", &mut report.indirectly_lost),
            ("possibly lost: ", &mut report.possibly_lost),
        ] {
            // Absent when no block was left at exit ("no leaks are possible").
            if let Some(rest) = lines.iter().find_map(|l| l.trim_start().strip_prefix(kind)) {
                if let [bytes, blocks, ..] = numbers_in(rest)[..] {
                    *slot = Lost { bytes, blocks };
                }
            }
        }
        for block in lines.split(|l| l.trim().is_empty()) {
            let Some(first) = block.first() else { continue };
            if !block.iter().any(|l| is_stack_frame(l)) {
                continue;
            }
            let text = shorten_stacks(block);
            if first.starts_with("Process terminating") {
                report.crash = Some(text);
            } else if report.first_errors.len() < KEPT_ERROR_BLOCKS {
                report.first_errors.push(text);
            }
        }
        Ok(report)
    }

    /// No memcheck error of any kind and no byte definitely lost.
    pub fn is_clean(&self) -> bool {
        self.errors == 0 && self.definitely_lost.bytes == 0 && self.crash.is_none()
    }
}

impl fmt::Display for MemcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} errors from {} contexts (suppressed: {}); definitely lost {}; indirectly lost {}; possibly lost {}",
            self.errors, self.contexts, self.suppressed, self.definitely_lost, self.indirectly_lost, self.possibly_lost
        )
    }
}

/// `==1234== text` → `text` (valgrind prefixes every line with the pid).
fn strip_pid_prefix(line: &str) -> &str {
    let Some(rest) = line.strip_prefix("==") else { return line };
    match rest.split_once("==") {
        Some((pid, text)) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
            text.strip_prefix(' ').unwrap_or(text)
        }
        _ => line,
    }
}

/// The lines of an error block, each of its stacks (the error's, and for
/// an invalid access where the block was freed and allocated) cut to
/// [`KEPT_FRAMES`] frames.
fn shorten_stacks(block: &[&str]) -> String {
    let mut kept = Vec::new();
    let mut frames = 0;
    for line in block {
        if !is_stack_frame(line) {
            frames = 0;
        } else {
            frames += 1;
            if frames == KEPT_FRAMES + 1 {
                kept.push("   ...");
            }
            if frames > KEPT_FRAMES {
                continue;
            }
        }
        kept.push(line);
    }
    kept.join("\n")
}

/// A line of a stack trace: `   at 0x4849: free (...)` or `   by 0x...`.
fn is_stack_frame(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("at 0x") || line.starts_with("by 0x")
}

/// The decimal numbers in `text`, thousands separators (`1,234`) allowed.
fn numbers_in(text: &str) -> Vec<u64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == ','))
        .map(|word| word.replace(',', ""))
        .filter(|digits| !digits.is_empty())
        .filter_map(|digits| digits.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of the log of the use-after-free fixed in 0af3c08 (trimmed).
    const DIRTY: &str = "\
==4242== Memcheck, a memory error detector
==4242== Command: pipewire-volume-mixer-daemon --shm /tmp/x/shm
==4242== 
==4242== Invalid write of size 8
==4242==    at 0x1D2F3A: libspa::utils::list::remove (list.rs:40)
==4242==    by 0x1D2E11: libspa::utils::hook::remove (hook.rs:25)
==4242==    by 0x1B0C42: <pipewire::node::NodeListener as core::ops::drop::Drop>::drop (node.rs:66)
==4242==  Address 0x5a1b2c8 is 40 bytes inside a block of size 112 free'd
==4242==    at 0x484317B: free (vg_replace_malloc.c:872)
==4242==    by 0x4A2B3C1: pw_proxy_unref (proxy.c:250)
==4242==  Block was alloc'd at
==4242==    at 0x48455EF: calloc (vg_replace_malloc.c:1340)
==4242== 
==4242== Invalid write of size 8
==4242==    at 0x1D2F45: libspa::utils::list::remove (list.rs:41)
==4242==    by 0x1D2E11: libspa::utils::hook::remove (hook.rs:25)
==4242== 
==4242== 
==4242== HEAP SUMMARY:
==4242==     in use at exit: 34,928 bytes in 5 blocks
==4242==   total heap usage: 1,180 allocs, 1,175 frees, 266,979 bytes allocated
==4242== 
==4242== 48 bytes in 1 blocks are definitely lost in loss record 3 of 9
==4242==    at 0x4840808: malloc (vg_replace_malloc.c:442)
==4242==    by 0x1C0000: main (main.rs:1)
==4242== 
==4242== LEAK SUMMARY:
==4242==    definitely lost: 48 bytes in 1 blocks
==4242==    indirectly lost: 0 bytes in 0 blocks
==4242==      possibly lost: 1,024 bytes in 2 blocks
==4242==    still reachable: 34,880 bytes in 4 blocks
==4242==         suppressed: 0 bytes in 0 blocks
==4242== 
==4242== For lists of detected and suppressed errors, rerun with: -s
==4242== ERROR SUMMARY: 61 errors from 3 contexts (suppressed: 2 from 1)
";

    const CLEAN: &str = "\
==7== Memcheck, a memory error detector
==7== 
==7== HEAP SUMMARY:
==7==     in use at exit: 0 bytes in 0 blocks
==7==   total heap usage: 10 allocs, 10 frees, 1,000 bytes allocated
==7== 
==7== All heap blocks were freed -- no leaks are possible
==7== 
==7== ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)
";

    #[test]
    fn reads_the_counts_and_the_first_error_blocks() {
        let report = MemcheckReport::parse(DIRTY).unwrap();
        assert_eq!((report.errors, report.contexts, report.suppressed), (61, 3, 2));
        assert_eq!(report.definitely_lost, Lost { bytes: 48, blocks: 1 });
        assert_eq!(report.indirectly_lost, Lost::default());
        assert_eq!(report.possibly_lost, Lost { bytes: 1024, blocks: 2 });
        assert_eq!(report.first_errors.len(), KEPT_ERROR_BLOCKS, "{:#?}", report.first_errors);
        let first = &report.first_errors[0];
        assert!(first.starts_with("Invalid write of size 8"), "{first}");
        assert!(first.contains("Block was alloc'd at"), "the whole block is kept: {first}");
        assert!(report.first_errors[2].contains("definitely lost in loss record"));
        assert!(!report.is_clean());
        assert!(report.crash.is_none());
    }

    #[test]
    fn a_log_without_leaks_is_clean() {
        let report = MemcheckReport::parse(CLEAN).unwrap();
        assert_eq!(report, MemcheckReport::default());
        assert!(report.is_clean());
        assert_eq!(
            report.to_string(),
            "0 errors from 0 contexts (suppressed: 0); definitely lost 0 bytes in 0 blocks; \
             indirectly lost 0 bytes in 0 blocks; possibly lost 0 bytes in 0 blocks"
        );
    }

    #[test]
    fn any_error_is_unclean_even_without_leaks() {
        let log = CLEAN.replace("0 errors from 0 contexts", "1 errors from 1 contexts");
        assert!(!MemcheckReport::parse(&log).unwrap().is_clean());
    }

    #[test]
    fn definite_leaks_are_unclean_even_if_not_counted_as_errors() {
        let log = CLEAN.replace(
            "All heap blocks were freed -- no leaks are possible",
            "LEAK SUMMARY:\n==7==    definitely lost: 16 bytes in 1 blocks",
        );
        let report = MemcheckReport::parse(&log).unwrap();
        assert_eq!(report.definitely_lost, Lost { bytes: 16, blocks: 1 });
        assert!(!report.is_clean());
    }

    #[test]
    fn a_crash_is_unclean_and_kept_apart() {
        let log = CLEAN.replace(
            "==7== HEAP SUMMARY:",
            "==7== Process terminating with default action of signal 11 (SIGSEGV)\n\
             ==7==    at 0x1000: main (main.rs:3)\n==7== \n==7== HEAP SUMMARY:",
        );
        let report = MemcheckReport::parse(&log).unwrap();
        assert!(report.crash.as_deref().is_some_and(|c| c.contains("SIGSEGV")));
        assert!(report.first_errors.is_empty());
        assert!(!report.is_clean());
    }

    #[test]
    fn an_unfinished_log_is_an_error() {
        let unfinished = DIRTY.split("HEAP SUMMARY").next().unwrap();
        let err = MemcheckReport::parse(unfinished).unwrap_err();
        assert!(err.contains("did not finish"), "{err}");
    }

    #[test]
    fn valgrind_arguments_fail_on_every_error_and_log_to_the_file() {
        let args = Memcheck::default().valgrind_args(Path::new("/bed/valgrind.log"));
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args[0], "valgrind");
        for expected in [
            "--tool=memcheck",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
            "--track-origins=yes",
            "--error-exitcode=97",
            "--log-file=/bed/valgrind.log",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
        let with_supp = Memcheck { suppressions: vec!["/x.supp".into()], ..Memcheck::default() };
        assert!(with_supp.valgrind_args(Path::new("l")).iter().any(|a| a == "--suppressions=/x.supp"));
    }

    #[test]
    fn long_stacks_are_cut_but_every_part_of_a_block_stays() {
        let mut block = vec!["Invalid read of size 4"];
        let frames: Vec<String> = (0..30).map(|i| format!("   by 0x{i:X}: f{i} (a.rs:{i})")).collect();
        block.extend(frames.iter().map(String::as_str));
        block.push(" Address 0x10 is 0 bytes inside a block of size 8 free'd");
        block.extend(frames.iter().take(3).map(String::as_str));
        let text = shorten_stacks(&block);
        assert_eq!(text.lines().filter(|l| is_stack_frame(l)).count(), KEPT_FRAMES + 3, "{text}");
        assert!(text.contains("   ...\n Address 0x10"), "{text}");
    }

    #[test]
    fn strips_only_the_pid_prefix() {
        assert_eq!(strip_pid_prefix("==12== Invalid read of size 4"), "Invalid read of size 4");
        assert_eq!(strip_pid_prefix("==12==    at 0x1: f"), "   at 0x1: f");
        assert_eq!(strip_pid_prefix("== not a prefix"), "== not a prefix");
        assert_eq!(numbers_in("1,234 bytes in 5 blocks"), [1234, 5]);
    }
}
