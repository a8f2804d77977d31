//! The daemon helper, driven with a stand-in daemon written in shell.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testbed::{Daemon, Error, TestBed};

/// Creates the shm file and the socket path it is given, records its
/// arguments in `./daemon-args` (the bed's directory) and waits to be killed.
const WELL_BEHAVED: &str = r#"#!/bin/sh
printf '%s\n' "$@" > daemon-args
while [ $# -gt 0 ]; do
  case "$1" in
    --shm) shm=$2; shift ;;
    --socket) socket=$2; shift ;;
  esac
  shift
done
: > "$shm"
: > "$socket"
exec sleep 600
"#;

/// Fails at once, explaining why on stderr.
const FAILING: &str = "#!/bin/sh\necho 'cannot read config: bad rule' >&2\nexit 3\n";

fn write_script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Spawns, retrying while another thread's fork still holds the freshly
/// written script open for writing (ETXTBSY).
fn spawn(bed: &TestBed, script: &Path, args: &[&str]) -> testbed::Result<Daemon> {
    for _ in 0..50 {
        match bed.spawn_daemon_from(script, args) {
            Err(Error::Spawn { source, .. }) if source.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
    bed.spawn_daemon_from(script, args)
}

#[test]
fn spawned_daemon_gets_the_bed_paths_and_stops_on_sigterm() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let script = write_script(bed.dir(), "fake-daemon", WELL_BEHAVED);

    let mut daemon = spawn(&bed, &script, &["--debug"]).unwrap();

    let paths = bed.daemon_paths();
    assert_eq!(daemon.paths(), paths);
    assert!(daemon.shm.starts_with(bed.dir()) && daemon.shm.exists());
    assert!(daemon.socket.exists());
    let args = fs::read_to_string(bed.dir().join("daemon-args")).unwrap();
    let expected: Vec<String> = paths
        .daemon_args()
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .chain(["--debug".to_owned()])
        .collect();
    assert_eq!(args.lines().collect::<Vec<_>>(), expected);

    assert!(daemon.is_running());
    daemon.kill(libc::SIGTERM).unwrap();
    let status = daemon.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(!status.success());
    assert!(!daemon.is_running());
}

#[test]
fn dropping_the_daemon_reaps_it() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let script = write_script(bed.dir(), "fake-daemon", WELL_BEHAVED);
    let daemon = spawn(&bed, &script, &[]).unwrap();
    let pid = daemon.pid as i32;

    drop(daemon);

    // SAFETY: kill with signal 0 sends nothing; it only checks for existence.
    let rc = unsafe { libc::kill(pid, 0) };
    assert_eq!(rc, -1, "the daemon {pid} survived its drop");
}

#[test]
fn a_daemon_that_exits_at_start_is_reported_with_its_stderr() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let script = write_script(bed.dir(), "failing-daemon", FAILING);

    let error = spawn(&bed, &script, &[]).unwrap_err();

    let message = error.to_string();
    assert!(matches!(error, Error::Exited { .. }), "{message}");
    assert!(message.contains("cannot read config: bad rule"), "{message}");
    assert!(message.contains("exit status: 3"), "{message}");
}
