//! Programs in a pseudo-terminal: input, output through the emulator,
//! resizes, the controlling terminal, exit and clean-up.

use std::path::Path;
use std::time::Duration;

use testbed::TestBed;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Whether a process exists.
fn exists(pid: u32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks for existence.
    let rc = unsafe { libc::kill(pid as i32, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

const SCRIPT: &str = r#"
stty size
printf 'session leader: %s\n' "$(ps -o sid= -p $$ | tr -d ' ')"
read line
stty size
printf 'got %s\n' "$line"
exit 3
"#;

#[test]
fn a_program_reads_keys_draws_follows_resizes_and_exits() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let mut tui = bed.spawn_tui(Path::new("/bin/sh"), &["-c", SCRIPT], &[("GREETING", "x")], 80, 24).unwrap();
    let pid = tui.pid();
    tui.wait_for_text(TIMEOUT, "24 80").unwrap();
    // Its own session, with the terminal as its controlling terminal (stty works).
    tui.wait_for_text(TIMEOUT, &format!("session leader: {pid}")).unwrap();
    tui.resize(100, 30).unwrap();
    tui.send(b"hello\r").unwrap();
    let screen = tui.wait_for_text(TIMEOUT, "got hello").unwrap();
    assert!(screen.text().contains("30 100"), "the new size:\n{}", screen.text());
    assert_eq!(screen.screen.size(), (30, 100));
    assert!(screen.line_with("got hello").is_some_and(|l| l.starts_with("got hello")));
    let status = tui.wait_exit(TIMEOUT).expect("the program exits");
    assert_eq!(status.code(), Some(3));
    assert!(tui.wait_closed(TIMEOUT));
    assert!(tui.bytes_written() > 0);
    let err = tui.wait_for_text(Duration::from_millis(100), "never printed").unwrap_err();
    assert!(err.to_string().contains("never printed") && err.to_string().contains("exited"), "{err}");
    drop(tui);
    assert!(!exists(pid));
}

#[test]
fn dropping_it_kills_the_whole_session() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let tui = bed.spawn_tui(Path::new("/bin/sh"), &["-c", "sleep 300 & echo child $!; wait"], &[], 80, 24).unwrap();
    let screen = tui.wait_for_text(TIMEOUT, "child ").unwrap();
    let line = screen.line_with("child ").unwrap();
    let child: u32 = line.trim().trim_start_matches("child ").parse().unwrap();
    let pid = tui.pid();
    assert!(exists(child) && exists(pid));
    drop(tui);
    bed.wait_until(TIMEOUT, "the program and its child gone", || !exists(pid) && !exists(child)).unwrap();
}
