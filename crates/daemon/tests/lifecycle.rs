//! The daemon as a service: the systemd unit, readiness, PipeWire restarts,
//! signals, single instance, safe files, the stats file and debugging aids.
//! Every test runs the real daemon on its own private PipeWire (the test bed).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use pvm_ipc::layout::header_flags;
use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;
use testbed::{AppSpec, Daemon, FakeApp, TestBed};

/// Generous deadline for anything that involves PipeWire.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The requirement: connected again within 2 s of PipeWire being back.
const RECONNECT_LIMIT: Duration = Duration::from_secs(2);

const UNIT: &str = "pipewire-volume-mixer.service";
const SHIPPED_EXEC: &str = "/usr/local/bin/pipewire-volume-mixer-daemon";

// ---- helpers ---------------------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn daemon_binary() -> PathBuf {
    testbed::workspace_binary("pipewire-volume-mixer-daemon", "PVM_DAEMON_BIN").unwrap()
}

fn pvmctl_binary() -> PathBuf {
    testbed::workspace_binary("pvmctl", "PVM_PVMCTL_BIN").unwrap()
}

/// Runs `command` to completion, killing it after `timeout`.
fn run(mut command: Command, timeout: Duration) -> Output {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output());
    let deadline = Instant::now() + timeout;
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the pid of our own, not yet reaped child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{command:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    waiter.join().unwrap().unwrap()
}

/// A daemon started by hand (not through the bed): SIGTERMed and reaped on drop.
struct HandStarted(Child);

impl Drop for HandStarted {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child, which we reap below.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn open_reader(path: &Path) -> SnapshotReader {
    testbed::open_snapshot(path, TIMEOUT).unwrap()
}

fn status_of(reader: &SnapshotReader) -> Status {
    Status::from(&*reader.read().unwrap())
}

/// Waits (on the snapshot's futex, no polling) until `condition` holds.
fn wait_snapshot(reader: &SnapshotReader, what: &str, condition: impl Fn(&Status) -> bool) -> Status {
    testbed::wait_status(reader, TIMEOUT, what, condition).unwrap_or_else(|e| panic!("{e}"))
}

/// Sends one protocol line and returns the response line (without newline).
fn request(socket: &Path, line: &str) -> String {
    let mut stream = UnixStream::connect(socket).unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut response = String::new();
    BufReader::new(stream).read_line(&mut response).unwrap();
    response.trim_end_matches('\n').to_owned()
}

fn pvmctl_ok(bed: &TestBed, daemon: &Daemon, args: &[&str]) -> String {
    let out = bed.pvmctl(daemon, args).unwrap();
    assert!(out.status.success(), "pvmctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn log_of(daemon: &Daemon) -> String {
    fs::read_to_string(&daemon.log).unwrap_or_default()
}

fn is_connected(status: &Status) -> bool {
    status.running && status.connected
}

fn app_plays_to(status: &Status, app: &str, sink: &str, source: &str) -> bool {
    status.app(app).is_some_and(|a| {
        a.sink.as_deref() == Some(sink) && a.target.as_deref() == Some(sink) && a.target_source == source
    })
}

fn write_config(path: &Path, rules: &[(&str, &str, &str)]) {
    let mut text = String::new();
    for (key, pattern, sink) in rules {
        text.push_str(&format!("[[rule]]\nmatch = {{ \"{key}\" = \"{pattern}\" }}\nsink = \"{sink}\"\n\n"));
    }
    fs::write(path, text).unwrap();
}

fn wait_linked(bed: &TestBed, app: &mut FakeApp, sink: &str) {
    let streams = app.wait_for_streams(TIMEOUT).unwrap();
    for stream in streams {
        bed.wait_until(TIMEOUT, &format!("stream {stream} linked to {sink}"), || {
            bed.sink_names_linked_to(stream) == [sink]
        })
        .unwrap();
    }
}

// ---- systemd unit ----------------------------------------------------------

/// The shipped unit, with ExecStart= pointing at `binary`.
fn unit_for(binary: &Path) -> String {
    let shipped = fs::read_to_string(repo_root().join("contrib/systemd").join(UNIT)).unwrap();
    assert_eq!(shipped.matches(SHIPPED_EXEC).count(), 1, "one ExecStart= with the shipped path");
    shipped.replace(SHIPPED_EXEC, &binary.to_string_lossy())
}

/// Runs `systemd-analyze verify --user` on `unit` in a private home and
/// runtime dir, with pvmctl's man page on MANPATH (the unit's Documentation=).
fn verify_unit(unit: &str) -> (bool, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (home, run_dir, man1) = (tmp.path().join("home"), tmp.path().join("run"), tmp.path().join("man/man1"));
    for dir in [&home, &run_dir, &man1] {
        fs::create_dir_all(dir).unwrap();
    }
    fs::set_permissions(&run_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let man = run(
        {
            let mut c = Command::new(pvmctl_binary());
            c.arg("man");
            c
        },
        TIMEOUT,
    );
    assert!(man.status.success());
    fs::write(man1.join("pvmctl.1"), man.stdout).unwrap();
    let path = tmp.path().join(UNIT);
    fs::write(&path, unit).unwrap();

    let mut command = Command::new("systemd-analyze");
    command
        .args(["verify", "--user"])
        .arg(&path)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &run_dir)
        .env("MANPATH", tmp.path().join("man"));
    let out = run(command, Duration::from_secs(60));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Lines about other units (e.g. a distribution's pipewire.service) are not ours to fix.
    let ours: Vec<&str> = text.lines().filter(|l| l.contains("pipewire-volume-mixer")).collect();
    (out.status.success() && ours.is_empty(), text)
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let (ok, output) = verify_unit(&unit_for(&daemon_binary()));
    assert!(ok, "systemd-analyze verify --user complained:\n{output}");

    // verify really looks at the unit: a missing executable is an error.
    let (ok, output) = verify_unit(&unit_for(Path::new("/nonexistent/pipewire-volume-mixer-daemon")));
    assert!(!ok, "a unit with a missing ExecStart binary passed verify:\n{output}");
}

#[test]
fn unit_is_a_user_service_that_starts_on_a_desktop() {
    let unit = fs::read_to_string(repo_root().join("contrib/systemd").join(UNIT)).unwrap();
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect();
    let values = |key: &str| -> Vec<&str> { settings.iter().filter(|(k, _)| *k == key).map(|(_, v)| *v).collect() };

    assert_eq!(values("Type"), ["notify"]);
    assert_eq!(values("Restart"), ["on-failure"]);
    assert_eq!(values("WantedBy"), ["default.target"]);
    assert!(values("After").iter().any(|v| v.split_whitespace().any(|u| u == "pipewire.service")));
    assert!(values("Wants").iter().any(|v| v.split_whitespace().any(|u| u == "pipewire.service")));
    // We survive PipeWire restarts: no hard dependency that would stop us with it.
    for key in ["Requires", "BindsTo", "PartOf", "Requisite"] {
        assert!(values(key).is_empty(), "{key}= must not be set");
    }
    // Invalid or privileged settings that make a user unit fail to start.
    for key in ["User", "Group", "Nice", "IOSchedulingClass", "IOSchedulingPriority", "CPUSchedulingPolicy"] {
        assert!(values(key).is_empty(), "{key}= does not work in a user unit");
    }
    // Write access: the runtime dir (socket, stats), /dev/shm and the state dir.
    assert_eq!(values("ProtectSystem"), ["strict"]);
    assert_eq!(values("RuntimeDirectory"), ["pipewire-volume-mixer"]);
    assert_eq!(values("StateDirectory"), ["pipewire-volume-mixer"]);
    assert_eq!(values("ReadWritePaths"), ["/dev/shm"]);
    let exec = values("ExecStart");
    assert_eq!(exec.len(), 1);
    assert!(exec[0].contains("--state %S/pipewire-volume-mixer/routes.toml"), "{}", exec[0]);
}

// ---- readiness -------------------------------------------------------------

#[test]
fn sends_ready_after_the_first_snapshot() {
    let bed = TestBed::start(&["speakers", "game"]).unwrap();
    let notify_path = bed.dir().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(TIMEOUT)).unwrap();

    let log = fs::File::create(bed.dir().join("ready-daemon.log")).unwrap();
    let mut command = bed.daemon_command(&[]).unwrap();
    command.env("NOTIFY_SOCKET", &notify_path).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
    let daemon = HandStarted(command.spawn().unwrap());

    let mut buf = [0u8; 4096];
    let n = notify.recv(&mut buf).expect("no notification from the daemon within 10 s");
    let message = String::from_utf8_lossy(&buf[..n]);
    assert!(message.lines().any(|l| l == "READY=1"), "{message:?}");

    // READY=1 comes after the first sync and publish: the snapshot is complete.
    let status = status_of(&open_reader(&bed.daemon_paths().shm));
    assert!(is_connected(&status), "{}", status.to_json());
    let mut sinks: Vec<&str> = status.sinks.iter().map(|s| s.name.as_str()).collect();
    sinks.sort_unstable();
    assert_eq!(sinks, ["game", "speakers"]);
    assert_eq!(request(&bed.daemon_paths().socket, "PING"), "OK PONG");
    drop(daemon);
}

// ---- PipeWire restarts -----------------------------------------------------

#[test]
fn survives_a_pipewire_restart_and_routes_again() {
    let mut bed = TestBed::start(&["speakers", "game", "chat"]).unwrap();
    write_config(&bed.daemon_paths().config, &[("application.process.binary", "voice-chat", "chat")]);
    let mut daemon = bed.spawn_daemon(&[]).unwrap();
    let reader = open_reader(&daemon.shm);
    wait_snapshot(&reader, "connected", is_connected);
    pvmctl_ok(&bed, &daemon, &["route", "Music Player", "game"]);

    let music = AppSpec::new("Music Player").binary("music-player").role("Music");
    let voice = AppSpec::new("Voice").binary("voice-chat").streams(2);
    let routed =
        |s: &Status| app_plays_to(s, "Music Player", "game", "route") && app_plays_to(s, "Voice", "chat", "rule");
    let mut apps = [bed.spawn_app(&music).unwrap(), bed.spawn_app(&voice).unwrap()];
    wait_linked(&bed, &mut apps[0], "game");
    wait_linked(&bed, &mut apps[1], "chat");
    wait_snapshot(&reader, "both apps routed", routed);

    // PipeWire and WirePlumber go away (a crash, an upgrade). The apps die with them.
    bed.stop_pipewire();
    for app in &mut apps {
        app.stop();
    }
    let down = wait_snapshot(&reader, "the snapshot to show `disconnected`", |s| s.running && !s.connected);
    assert!(
        down.apps.is_empty() && down.sinks.is_empty(),
        "a disconnected snapshot shows no graph: {}",
        down.to_json()
    );
    assert!(daemon.is_running(), "the daemon exited with PipeWire:\n{}", daemon.log_tail(30));
    // The control socket keeps answering; commands that need PipeWire say why they fail.
    assert_eq!(request(&daemon.socket, "PING"), "OK PONG");
    assert_eq!(request(&daemon.socket, "SET_VOLUME game 0.5"), "ERROR not connected to PipeWire");
    // Let the reconnect backoff grow to its cap, as in a real outage.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(daemon.is_running());

    let starting = Instant::now();
    bed.start_pipewire().unwrap();
    let back_at = Instant::now();
    let up = wait_snapshot(&reader, "the snapshot to show `connected` again", is_connected);
    let reconnect = back_at.elapsed();
    println!(
        "reconnected {reconnect:?} after start_pipewire returned, {:?} after PipeWire was launched (limit {RECONNECT_LIMIT:?})",
        back_at.duration_since(starting) + reconnect
    );
    assert!(reconnect < RECONNECT_LIMIT, "reconnected only after {reconnect:?}");
    assert!(up.sinks.iter().any(|s| s.name == "chat"), "{}", up.to_json());

    // Apps started on the new PipeWire go where they went before.
    let mut apps = [bed.spawn_app(&music).unwrap(), bed.spawn_app(&voice).unwrap()];
    wait_linked(&bed, &mut apps[0], "game");
    wait_linked(&bed, &mut apps[1], "chat");
    wait_snapshot(&reader, "both apps routed again", routed);
    assert!(daemon.is_running());
    assert_eq!(request(&daemon.socket, "PING"), "OK PONG");
}

// ---- signals ---------------------------------------------------------------

#[test]
fn sigterm_exits_cleanly_and_keeps_the_routes() {
    let bed = TestBed::start(&["speakers", "game"]).unwrap();
    let mut daemon = bed.spawn_daemon(&[]).unwrap();
    let reader = open_reader(&daemon.shm);
    wait_snapshot(&reader, "connected", is_connected);
    pvmctl_ok(&bed, &daemon, &["route", "Music Player", "game"]);
    let routes = fs::read_to_string(&daemon.state).unwrap();
    assert!(routes.contains("Music Player") && routes.contains("game"), "{routes}");

    daemon.kill(libc::SIGTERM).unwrap();
    let status = daemon.wait_exit(TIMEOUT).expect("the daemon did not exit on SIGTERM");
    assert!(status.success(), "exit status {status}:\n{}", daemon.log_tail(30));
    assert!(!daemon.socket.exists(), "the socket file was left behind");
    let last = reader.read().unwrap();
    assert_eq!(last.header.flags & (header_flags::RUNNING | header_flags::CONNECTED), 0, "still flagged running");
    assert_eq!(fs::read_to_string(&daemon.state).unwrap(), routes, "the routes changed on shutdown");
}

#[test]
fn sighup_reloads_the_config() {
    let bed = TestBed::start(&["speakers", "chat"]).unwrap();
    // The config is a symlink into another directory (as dotfile managers
    // do), so the daemon's directory watch cannot see the edit: only SIGHUP
    // makes it reload.
    let dotfiles = bed.dir().join("dotfiles");
    fs::create_dir(&dotfiles).unwrap();
    let real_config = dotfiles.join("config.toml");
    write_config(&real_config, &[]);
    std::os::unix::fs::symlink(&real_config, bed.daemon_paths().config).unwrap();

    let mut daemon = bed.spawn_daemon(&[]).unwrap();
    let reader = open_reader(&daemon.shm);
    let mut app = bed.spawn_app(&AppSpec::new("Voice").binary("voice-chat")).unwrap();
    wait_linked(&bed, &mut app, "speakers");
    wait_snapshot(&reader, "Voice on the default sink", |s| {
        s.app("Voice").is_some_and(|a| a.sink.as_deref() == Some("speakers") && a.target.is_none())
    });

    let staged = dotfiles.join("config.toml.new");
    write_config(&staged, &[("application.process.binary", "voice-chat", "chat")]);
    fs::rename(&staged, &real_config).unwrap();
    daemon.kill(libc::SIGHUP).unwrap();

    wait_linked(&bed, &mut app, "chat");
    wait_snapshot(&reader, "Voice routed by the new rule", |s| app_plays_to(s, "Voice", "chat", "rule"));
    assert!(log_of(&daemon).contains("SIGHUP"), "{}", daemon.log_tail(30));
    assert!(daemon.is_running());
}

// ---- one daemon per user, safe files ---------------------------------------

#[test]
fn a_second_daemon_for_the_same_user_exits_naming_the_first() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let daemon = bed.spawn_daemon(&[]).unwrap();
    wait_snapshot(&open_reader(&daemon.shm), "connected", is_connected);

    let out = run(bed.daemon_command(&[]).unwrap(), TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second daemon started:\n{stderr}");
    assert!(stderr.contains("already running"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", daemon.pid)), "the message does not name pid {}: {stderr}", daemon.pid);
    // The first one is unharmed.
    assert!(daemon.socket.exists());
    assert_eq!(request(&daemon.socket, "PING"), "OK PONG");
}

#[test]
fn files_left_by_a_crashed_daemon_are_reclaimed() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let mut crashed = bed.spawn_daemon(&[]).unwrap();
    let reader = open_reader(&crashed.shm);
    wait_snapshot(&reader, "connected", is_connected);
    crashed.kill(libc::SIGKILL).unwrap();
    crashed.wait_exit(TIMEOUT).expect("SIGKILL did not end the daemon");
    // The crash left both files, and a snapshot still flagged running.
    assert!(crashed.socket.exists() && crashed.shm.exists());
    let stale = reader.read().unwrap();
    assert_ne!(stale.header.flags & header_flags::RUNNING, 0);
    assert!(!reader.daemon_alive(&stale));
    let stale_generation = stale.header.generation;

    let daemon = bed.spawn_daemon(&[]).unwrap();
    bed.wait_until(TIMEOUT, "the new daemon to answer", || {
        UnixStream::connect(&daemon.socket).is_ok() && request(&daemon.socket, "PING") == "OK PONG"
    })
    .unwrap();
    let status = wait_snapshot(&reader, "the new daemon's snapshot", is_connected);
    let snapshot = reader.read().unwrap();
    assert_eq!(snapshot.header.daemon_pid, daemon.pid);
    assert!(reader.daemon_alive(&snapshot));
    assert!(status.generation > stale_generation, "the generation went backwards");
}

/// What a refused start left: exit status and stderr.
fn refused_start(bed: &TestBed) -> String {
    let out = run(bed.daemon_command(&[]).unwrap(), TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the daemon accepted an unsafe path:\n{stderr}");
    stderr
}

fn file_identity(path: &Path) -> (u32, u32, Vec<u8>, Option<SystemTime>) {
    let meta = fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.mode(), fs::read(path).unwrap_or_default(), meta.modified().ok())
}

#[test]
fn symlinked_or_foreign_socket_and_shm_paths_are_refused() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let paths = bed.daemon_paths();
    let target = bed.dir().join("precious");
    let reset = || {
        for p in [&paths.shm, &paths.socket, &target] {
            let _ = fs::remove_file(p);
        }
        fs::write(&target, "keep me").unwrap();
    };

    // The socket path is a symlink.
    reset();
    fs::create_dir_all(paths.socket.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, &paths.socket).unwrap();
    let before = file_identity(&target);
    let stderr = refused_start(&bed);
    assert!(stderr.contains("symlink") && stderr.contains(&*paths.socket.to_string_lossy()), "{stderr}");
    assert_eq!(file_identity(&target), before);
    assert!(fs::symlink_metadata(&paths.socket).unwrap().file_type().is_symlink());
    // The snapshot it had created says it is not running.
    let snapshot = SnapshotReader::open(&paths.shm).unwrap().read().unwrap();
    assert_eq!(snapshot.header.flags & header_flags::RUNNING, 0, "a failed start left RUNNING set");

    // The shm path is a symlink.
    reset();
    std::os::unix::fs::symlink(&target, &paths.shm).unwrap();
    let before = file_identity(&target);
    let stderr = refused_start(&bed);
    assert!(stderr.contains("symlink") && stderr.contains(&*paths.shm.to_string_lossy()), "{stderr}");
    assert_eq!(file_identity(&target), before);

    // The socket belongs to another user.
    reset();
    drop(UnixListener::bind(&paths.socket).unwrap());
    std::os::unix::fs::chown(&paths.socket, Some(65534), Some(65534)).unwrap();
    let before = file_identity(&paths.socket);
    let stderr = refused_start(&bed);
    assert!(stderr.contains("owned by uid 65534") && stderr.contains(&*paths.socket.to_string_lossy()), "{stderr}");
    assert_eq!(file_identity(&paths.socket), before);

    // The shm file belongs to another user.
    reset();
    fs::write(&paths.shm, "someone else's").unwrap();
    fs::set_permissions(&paths.shm, fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&paths.shm, Some(65534), Some(65534)).unwrap();
    let before = file_identity(&paths.shm);
    let stderr = refused_start(&bed);
    assert!(stderr.contains("owned by uid 65534") && stderr.contains(&*paths.shm.to_string_lossy()), "{stderr}");
    assert_eq!(file_identity(&paths.shm), before);
    assert!(!paths.socket.exists(), "the refused daemon created its socket");
}

// ---- stats -----------------------------------------------------------------

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: String,
    value: f64,
}

/// Parses the Prometheus text exposition format strictly enough to catch
/// mistakes: every sample is `name{labels} value` with a float value and
/// belongs to a family declared by an earlier `# TYPE` line; no series twice.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let valid_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut series = BTreeSet::new();
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", number + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if words.first() == Some(&"TYPE") {
                assert_eq!(words.len(), 3, "{at}");
                assert!(valid_name(words[1]), "{at}");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&words[2]),
                    "unknown type, {at}"
                );
                assert!(types.insert(words[1].to_owned(), words[2].to_owned()).is_none(), "TYPE twice, {at}");
            }
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let close = line.find('}').unwrap_or_else(|| panic!("unclosed labels, {at}"));
                (&line[..open], &line[open + 1..close], &line[close + 1..])
            }
            None => {
                let (name, rest) = line.split_once(' ').unwrap_or_else(|| panic!("no value, {at}"));
                (name, "", rest)
            }
        };
        assert!(valid_name(name), "bad metric name, {at}");
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("bad label, {at}"));
            assert!(valid_name(key) && value.len() >= 2 && value.starts_with('"') && value.ends_with('"'), "{at}");
        }
        let mut fields = rest.split_whitespace();
        let value: f64 = fields.next().unwrap_or_else(|| panic!("no value, {at}")).parse().unwrap_or_else(|e| {
            panic!("value is not a float ({e}), {at}");
        });
        if let Some(timestamp) = fields.next() {
            timestamp.parse::<i64>().unwrap_or_else(|e| panic!("bad timestamp ({e}), {at}"));
        }
        assert!(fields.next().is_none(), "trailing text, {at}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                matches!(types.get(base).map(String::as_str), Some("histogram" | "summary")).then_some(base)
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no # TYPE before the sample, {at}");
        assert!(series.insert(format!("{name}{{{labels}}}")), "series twice, {at}");
        samples.push(Sample { name: name.to_owned(), labels: labels.to_owned(), value });
    }
    samples
}

/// The sum of every sample named `name`.
fn total(samples: &[Sample], name: &str) -> f64 {
    samples.iter().filter(|s| s.name == name).map(|s| s.value).sum()
}

fn read_stats(daemon: &Daemon) -> Option<Vec<Sample>> {
    fs::read_to_string(&daemon.stats).ok().map(|t| parse_prometheus(&t))
}

#[test]
fn stats_file_is_prometheus_text_that_moves_with_events_and_rests_when_idle() {
    let bed = TestBed::start(&["speakers", "game"]).unwrap();
    let daemon = bed.spawn_daemon(&[]).unwrap();
    wait_snapshot(&open_reader(&daemon.shm), "connected", is_connected);

    let first = testbed::wait_for(TIMEOUT, "the stats file", || {
        read_stats(&daemon).filter(|s| total(s, "pvm_publishes_total") >= 1.0)
    })
    .unwrap();
    for name in ["pvm_events_total", "pvm_publishes_total", "pvm_metadata_writes_total", "pvm_rss_bytes"] {
        assert!(first.iter().any(|s| s.name == name), "no {name} in the stats file");
    }
    assert!(first.iter().any(|s| s.name == "pvm_events_total" && s.labels.contains("kind=")));
    let mode = fs::metadata(&daemon.stats).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A volume change is an event and a publish.
    let (events, publishes) = (total(&first, "pvm_events_total"), total(&first, "pvm_publishes_total"));
    pvmctl_ok(&bed, &daemon, &["volume", "game", "0.3"]);
    let after = testbed::wait_for(TIMEOUT, "the counters to move", || {
        read_stats(&daemon)
            .filter(|s| total(s, "pvm_events_total") > events && total(s, "pvm_publishes_total") > publishes)
    })
    .unwrap();
    assert!(after.iter().any(|s| s.name == "pvm_events_total" && s.labels.contains("node_volume") && s.value >= 1.0));

    // `pvmctl stats` shows every series of the file.
    let shown = pvmctl_ok(&bed, &daemon, &["stats"]);
    let file = parse_prometheus(&fs::read_to_string(&daemon.stats).unwrap());
    for sample in &file {
        let series = if sample.labels.is_empty() {
            sample.name.clone()
        } else {
            format!("{}{{{}}}", sample.name, sample.labels)
        };
        assert!(
            shown.lines().any(|l| l.split_whitespace().next() == Some(series.as_str())),
            "{series} missing:\n{shown}"
        );
    }

    // Idle: nothing happens, so the file is not rewritten. The session manager
    // may still be settling right after start, so one of a few 3 s windows
    // must be quiet; a daemon that rewrites the file on a timer fails them all.
    let observe = || {
        let meta = fs::metadata(&daemon.stats).unwrap();
        (meta.modified().unwrap(), meta.ino(), fs::read(&daemon.stats).unwrap())
    };
    let quiet = (0..4).any(|_| {
        let before = observe();
        std::thread::sleep(Duration::from_secs(3));
        before == observe()
    });
    assert!(quiet, "the stats file was rewritten in every 3 s window of an idle daemon");
}

// ---- debugging -------------------------------------------------------------

#[test]
fn debug_logs_trace_and_sigusr1_dump() {
    let bed = TestBed::start(&["speakers", "game"]).unwrap();
    let mut daemon = bed.spawn_daemon(&["--debug"]).unwrap();
    wait_snapshot(&open_reader(&daemon.shm), "connected", is_connected);
    bed.wait_until(TIMEOUT, "debug-level lines in the log", || log_of(&daemon).contains("DEBUG")).unwrap();

    // The ring buffer, as JSON, with wall-clock times and processing times.
    let trace: serde_json::Value = serde_json::from_str(&pvmctl_ok(&bed, &daemon, &["trace"])).unwrap();
    let entries = trace.as_array().expect("the trace is a JSON array");
    assert!(!entries.is_empty());
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
    for entry in entries {
        let time = entry["time"].as_f64().unwrap_or_else(|| panic!("no time: {entry}"));
        assert!(time <= now + 1.0 && time > now - 600.0, "implausible time in {entry}");
        assert!(entry["kind"].as_str().is_some_and(|k| !k.is_empty()), "{entry}");
        assert!(entry["processing_us"].as_f64().is_some_and(|us| us >= 0.0), "{entry}");
        assert!(entry["id"].is_u64(), "{entry}");
    }
    assert!(entries.iter().any(|e| e["kind"] == "node_added"));

    // SIGUSR1 writes the same events to the log.
    daemon.kill(libc::SIGUSR1).unwrap();
    bed.wait_until(TIMEOUT, "the trace in the log", || {
        let log = log_of(&daemon);
        log.contains("SIGUSR1") && log.contains("node_added")
    })
    .unwrap();
    assert!(daemon.is_running(), "SIGUSR1 ended the daemon");
}
