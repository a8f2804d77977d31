//! The control socket of a real daemon on a real PipeWire (the test bed with
//! the sinks `speakers` (default), `game`, `chat` and `music`).
//!
//! Every command's effect is checked where it matters, in PipeWire itself
//! (`pw-dump`: a node's `channelVolumes` and `mute`, the `default` metadata),
//! and not only in the daemon's snapshot. Then the grammar of
//! `docs/protocol.md` (case, blanks, CRLF, pipelining, every kind of bad
//! request) and clients that misbehave: a 1 MiB line, a client trickling one
//! byte at a time, 500 and 1025 connections, hang-ups mid-line, clients that
//! never read, and a client of another user.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use testbed::{AppSpec, Daemon, TestBed};

/// Generous deadline for anything that involves PipeWire or the daemon.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The bed every test runs on; the first sink is the default.
const SINKS: [&str; 4] = ["speakers", "game", "chat", "music"];

/// How much the daemon's resident memory may grow while a hostile client does its worst.
const RSS_SLACK_KIB: u64 = 8 * 1024;

/// The documented refusal of a volume word, for `SET_VOLUME`.
fn volume_error(word: &str) -> String {
    format!("ERROR volume must be a number from 0.0 to 1.0, got {word}; usage: SET_VOLUME <sink> <0.0-1.0>")
}

// ---- setup -------------------------------------------------------------------

/// A bed and a daemon in sync with it. Dropped in field order: the daemon first.
struct Rig {
    daemon: Daemon,
    reader: SnapshotReader,
    bed: TestBed,
}

impl Rig {
    fn start() -> Rig {
        let bed = TestBed::start(&SINKS).unwrap();
        let (daemon, reader) = bed.spawn_daemon_in_sync(&[]).unwrap();
        Rig { daemon, reader, bed }
    }

    fn connect(&self) -> Conn {
        Conn::open(&self.daemon.socket)
    }

    /// Sends one request line on a fresh connection and returns the answer.
    fn ask(&self, line: &str) -> String {
        self.connect().ask(line)
    }

    /// Waits (on the snapshot's futex) until `condition` holds for the status.
    fn wait_status(&self, what: &str, condition: impl Fn(&Status) -> bool) -> Status {
        testbed::wait_status(&self.reader, TIMEOUT, what, condition)
            .unwrap_or_else(|e| panic!("{e}\ndaemon log:\n{}", self.daemon.log_tail(30)))
    }

    /// A sink's channel volumes (linear) and mute flag, as PipeWire reports them now.
    fn pw_sink(&self, name: &str) -> (Vec<f32>, bool) {
        self.bed.node_volume(name).unwrap()
    }

    /// A stream node's channel volumes and mute flag, as PipeWire reports them now.
    fn pw_node(&self, id: u32) -> Option<(Vec<f32>, bool)> {
        self.bed.dump().ok()?.node(id)?.volume()
    }

    /// Waits until PipeWire reports every channel of the sink `name` at
    /// `linear` (within 1e-4) and its mute flag at `muted`.
    fn wait_pw_sink(&self, name: &str, linear: f32, muted: bool) {
        self.wait_pw(&format!("sink {name}"), || self.bed.node_volume(name).ok(), linear, muted);
    }

    /// [`Rig::wait_pw_sink`] for the stream node `id`.
    fn wait_pw_stream(&self, id: u32, linear: f32, muted: bool) {
        self.wait_pw(&format!("stream {id}"), || self.pw_node(id), linear, muted);
    }

    fn wait_pw(&self, what: &str, mut probe: impl FnMut() -> Option<(Vec<f32>, bool)>, linear: f32, muted: bool) {
        let mut last = None;
        let result =
            self.bed.wait_until(TIMEOUT, &format!("PipeWire to show {what} at {linear}, muted {muted}"), || {
                last = probe();
                last.as_ref().is_some_and(|(channels, m)| is_at(channels, linear) && *m == muted)
            });
        if let Err(e) = result {
            panic!("{e}; PipeWire last reported {last:?}\ndaemon log:\n{}", self.daemon.log_tail(30));
        }
    }

    /// PipeWire's state of every sink now: volumes, mutes and the default sink.
    fn pw_sinks(&self) -> (Vec<(Vec<f32>, bool)>, Option<String>) {
        (SINKS.iter().map(|name| self.pw_sink(name)).collect(), self.bed.default_sink_name())
    }

    /// Sets `music` to 0.5 and waits until PipeWire shows it. The daemon
    /// applies requests in order, so whatever an earlier request did to
    /// PipeWire has been done by then.
    fn sentinel(&self) {
        assert_eq!(self.ask("SET_VOLUME music 0.5"), "OK");
        self.wait_pw_sink("music", 0.125, false);
    }

    /// The daemon's resident set size in KiB (`VmRSS`).
    fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.daemon.pid())).unwrap();
        let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS in /proc/PID/status");
        line.trim().trim_end_matches("kB").trim().parse().unwrap()
    }

    fn assert_rss_bounded(&self, before: u64, after_what: &str) {
        let after = self.rss_kib();
        eprintln!("daemon RSS {before} KiB before, {after} KiB after {after_what}");
        assert!(after < before + RSS_SLACK_KIB, "the daemon grew from {before} KiB to {after} KiB after {after_what}");
    }

    /// How many fds the daemon has open.
    fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.daemon.pid())).unwrap().count()
    }

    /// Waits until the daemon holds no more fds than `baseline`: it has
    /// closed every connection opened since.
    fn wait_fds_back_to(&self, baseline: usize, what: &str) {
        let mut now = 0;
        let result = self.bed.wait_until(TIMEOUT, what, || {
            now = self.open_fds();
            now <= baseline
        });
        if let Err(e) = result {
            panic!("{e}: the daemon holds {now} fds, {baseline} before");
        }
    }

    /// The daemon still runs and a new client gets `OK PONG`.
    fn assert_serving(&mut self) {
        assert!(self.daemon.is_running(), "the daemon died:\n{}", self.daemon.log_tail(30));
        assert_eq!(self.ask("PING"), "OK PONG");
    }

    /// Starts an app and waits until the daemon lists it with all its streams.
    fn spawn_app(&self, spec: &AppSpec) -> (testbed::FakeApp, Vec<u32>) {
        let mut app = self.bed.spawn_app(spec).unwrap();
        let streams = app.wait_for_streams(TIMEOUT).unwrap();
        let name = spec.name.clone();
        self.wait_status(&format!("{name} listed with {} streams", streams.len()), |s| {
            s.app(&name).is_some_and(|a| a.streams.len() == streams.len())
        });
        (app, streams)
    }
}

/// Every channel within 1e-4 of `linear`.
fn is_at(channels: &[f32], linear: f32) -> bool {
    !channels.is_empty() && channels.iter().all(|c| (c - linear).abs() < 1e-4)
}

/// One connection to the control socket, with 15 s read and write timeouts.
struct Conn {
    reader: BufReader<UnixStream>,
}

impl Conn {
    fn open(socket: &Path) -> Conn {
        let stream = UnixStream::connect(socket).unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        Conn { reader: BufReader::new(stream) }
    }

    fn stream(&self) -> &UnixStream {
        self.reader.get_ref()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// The next response line without its `\n`; `None` once the daemon has
    /// closed the connection (end of stream or reset).
    fn line(&mut self) -> Option<String> {
        let mut bytes = Vec::new();
        match self.reader.read_until(b'\n', &mut bytes) {
            Ok(0) => None,
            Ok(_) => {
                assert_eq!(bytes.pop(), Some(b'\n'), "a line cut short: {:?}", String::from_utf8_lossy(&bytes));
                Some(String::from_utf8(bytes).expect("responses are UTF-8"))
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset && bytes.is_empty() => None,
            Err(e) => panic!("reading a response: {e}"),
        }
    }

    /// Sends `bytes` (one or more complete request lines) and reads one answer.
    fn ask_bytes(&mut self, bytes: &[u8]) -> String {
        self.send(bytes);
        self.line().unwrap_or_else(|| panic!("the daemon closed the connection instead of answering {bytes:?}"))
    }

    /// Sends `line` and `\n` and reads the answer.
    fn ask(&mut self, line: &str) -> String {
        self.ask_bytes(format!("{line}\n").as_bytes())
    }
}

/// Connects, sends `PING` (ignoring a refused write) and returns the first
/// line the daemon sends, if any.
fn try_ping(socket: &Path) -> Option<String> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = stream.write_all(b"PING\n");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    Some(line.trim_end_matches('\n').to_owned())
}

/// Raises this process's soft limit of open files to at least `want` (up to
/// the hard limit), for the tests that open hundreds of connections.
fn raise_fd_limit(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < want) {
        limit.current = Some(limit.maximum.map_or(want, |max| max.min(want)));
        setrlimit(Resource::Nofile, limit).unwrap();
    }
    let now = getrlimit(Resource::Nofile);
    assert!(now.current.is_none_or(|c| c >= want), "RLIMIT_NOFILE is {now:?}; the test needs {want} fds");
}

/// Whether the peer has closed the connection (even with unread data left).
fn peer_hung_up(stream: &UnixStream) -> bool {
    let mut fds = [PollFd::new(stream, PollFlags::RDHUP)];
    poll(&mut fds, Some(&Timespec::default())).unwrap();
    fds[0].revents().intersects(PollFlags::HUP | PollFlags::RDHUP)
}

/// Bytes written on `stream` that the peer has not read yet (`SIOCOUTQ`; it
/// counts the kernel's overhead too, so it is never less than that).
fn unread_by_peer(stream: &UnixStream) -> usize {
    let mut bytes: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (alias TIOCOUTQ) stores one int through the valid pointer.
    let done = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut bytes) };
    assert_eq!(done, 0, "SIOCOUTQ: {}", io::Error::last_os_error());
    bytes as usize
}

/// Whether `stream` becomes writable within `timeout`.
fn writable_within(stream: &UnixStream, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(stream, PollFlags::OUT)];
    let timeout = Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: 0 };
    poll(&mut fds, Some(&timeout)).unwrap() > 0
}

// ---- another user --------------------------------------------------------------

/// What a client running as `uid` gets from the socket at `path`: `Err(errno)`
/// if it cannot connect, else every byte the daemon sent after the client
/// wrote `request`, until the daemon closed the connection (or 10 s passed).
///
/// The client is a forked child of the test process that drops root's groups
/// and ids before it connects, so `SO_PEERCRED` shows `uid`.
fn as_other_user(uid: u32, path: &Path, request: &'static [u8]) -> Result<Vec<u8>, i32> {
    // Everything the child needs is prepared here: after fork() in a threaded
    // process the child may only make async-signal-safe calls (no allocation).
    // SAFETY: sockaddr_un is plain old data, for which all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "socket path too long: {}", path.display());
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let mut pipe = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two-element array with two new fds.
    let piped = unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(piped, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: both fds were just created by pipe2 and belong to nothing else.
    let (from_child, to_parent) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    // SAFETY: the child runs only `other_user_child`, which makes raw system
    // calls on data prepared above and leaves with _exit, never returning
    // into code that could take a lock held by another thread.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        other_user_child(uid, &addr, request, to_parent.as_raw_fd());
    }
    drop(to_parent);
    let mut report = Vec::new();
    File::from(from_child).read_to_end(&mut report).unwrap();
    let mut status = 0;
    // SAFETY: reaps our own child, once.
    let reaped = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(reaped, pid, "waitpid: {}", io::Error::last_os_error());
    match report.split_first() {
        Some((b'D', data)) => Ok(data.to_vec()),
        Some((b'C', errno)) => Err(i32::from_ne_bytes(errno.try_into().expect("four bytes of errno"))),
        _ => panic!("the client of uid {uid} failed (could it drop root's ids?): {report:?}, wait status {status}"),
    }
}

/// The forked child of [`as_other_user`]. Reports on `out`: `S` if it could
/// not become `uid`, `C` and the errno if `connect` failed, else `D` and the
/// daemon's bytes.
fn other_user_child(uid: u32, addr: &libc::sockaddr_un, request: &[u8], out: libc::c_int) -> ! {
    let tell = |bytes: &[u8]| {
        // SAFETY: writes from a valid buffer to the pipe's fd, which stays open.
        unsafe { libc::write(out, bytes.as_ptr().cast(), bytes.len()) };
    };
    // SAFETY: raw system calls on fds this child owns and on `addr` and
    // `request`, valid for the whole block; no allocation, no locks.
    unsafe {
        // Other tests' connections must not stay open in here: close every
        // inherited fd but stdio and the pipe.
        if out > 3 {
            libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, (out - 1) as libc::c_uint, 0 as libc::c_uint);
        }
        libc::syscall(libc::SYS_close_range, (out + 1) as libc::c_uint, libc::c_uint::MAX, 0 as libc::c_uint);
        if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(uid) != 0 || libc::setuid(uid) != 0 {
            tell(b"S");
            libc::_exit(1);
        }
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        if libc::connect(fd, (addr as *const libc::sockaddr_un).cast(), len) != 0 {
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0).to_ne_bytes();
            tell(&[b'C', errno[0], errno[1], errno[2], errno[3]]);
            libc::_exit(0);
        }
        let timeout = libc::timeval { tv_sec: 10, tv_usec: 0 };
        let size = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&timeout as *const libc::timeval).cast(), size);
        libc::send(fd, request.as_ptr().cast(), request.len(), libc::MSG_NOSIGNAL);
        tell(b"D");
        let mut buf = [0u8; 512];
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            tell(&buf[..n as usize]);
        }
        libc::_exit(0)
    }
}

// ---- commands and their effect in PipeWire -------------------------------------

/// `SET_VOLUME game 0.5` puts 0.5³ = 0.125 on every channel of `game` in
/// PipeWire and 0.5 in the snapshot, and leaves the other sinks alone; `1`,
/// `.25` and `0` work the same way.
#[test]
fn set_volume_puts_the_cube_on_every_channel_in_pipewire() {
    let rig = Rig::start();
    let untouched = (vec![1.0, 1.0], false);
    assert_eq!(rig.pw_sink("game"), untouched, "the bed's sinks start at full volume");

    assert_eq!(rig.ask("SET_VOLUME game 0.5"), "OK");
    rig.wait_pw_sink("game", 0.125, false);
    assert_eq!(rig.pw_sink("game").0.len(), 2, "both channels");
    rig.wait_status("game at 0.5 in the snapshot", |s| s.sink("game").is_some_and(|g| g.volume == 0.5));
    for other in ["speakers", "chat", "music"] {
        assert_eq!(rig.pw_sink(other), untouched, "{other} untouched");
    }

    for (word, cubic) in [("1", 1.0f32), (".25", 0.25), ("0", 0.0), ("0.5", 0.5)] {
        assert_eq!(rig.ask(&format!("SET_VOLUME game {word}")), "OK", "{word}");
        rig.wait_pw_sink("game", cubic.powi(3), false);
        rig.wait_status(&format!("game at {cubic} in the snapshot"), |s| {
            s.sink("game").is_some_and(|g| g.volume == f64::from(cubic))
        });
    }
}

/// `MUTE game true|false|toggle` sets, clears and flips PipeWire's mute flag
/// of the sink without touching its volume; `on`/`off`, `1`/`0`, `yes`/`no`
/// work in any case, as documented.
#[test]
fn mute_sets_clears_and_toggles_pipewires_mute_flag() {
    let rig = Rig::start();
    assert_eq!(rig.ask("SET_VOLUME game 0.5"), "OK");
    rig.wait_pw_sink("game", 0.125, false);
    let steps = [
        ("true", true),
        ("false", false),
        ("toggle", true),
        ("toggle", false),
        ("ON", true),
        ("off", false),
        ("1", true),
        ("0", false),
        ("Yes", true),
        ("no", false),
    ];
    for (word, muted) in steps {
        assert_eq!(rig.ask(&format!("MUTE game {word}")), "OK", "{word}");
        rig.wait_pw_sink("game", 0.125, muted);
        // A toggle flips what the daemon knows: wait until it knows this step.
        rig.wait_status(&format!("game muted {muted} in the snapshot"), |s| {
            s.sink("game").is_some_and(|g| g.muted == muted)
        });
    }
    assert_eq!(rig.pw_sink("chat"), (vec![1.0, 1.0], false), "other sinks untouched");
}

/// `SET_APP_VOLUME` and `MUTE_APP` reach both streams of a two-stream app in
/// PipeWire; `toggle` unmutes when all streams are muted and otherwise
/// mutes them all (even when one was muted from outside); sinks stay as they were.
#[test]
fn app_volume_and_mute_reach_every_stream_of_the_app() {
    let rig = Rig::start();
    let (_app, streams) = rig.spawn_app(&AppSpec::new("Music Player").binary("music-player").streams(2));
    assert_eq!(streams.len(), 2);

    assert_eq!(rig.ask("SET_APP_VOLUME \"Music Player\" 0.5"), "OK");
    for &id in &streams {
        rig.wait_pw_stream(id, 0.125, false);
    }
    rig.wait_status("the app at 0.5", |s| s.app("Music Player").is_some_and(|a| a.volume == 0.5 && !a.muted));
    for sink in SINKS {
        assert_eq!(rig.pw_sink(sink), (vec![1.0, 1.0], false), "{sink} untouched");
    }

    assert_eq!(rig.ask("MUTE_APP \"Music Player\" true"), "OK");
    for &id in &streams {
        rig.wait_pw_stream(id, 0.125, true);
    }
    rig.wait_status("the app muted", |s| s.app("Music Player").is_some_and(|a| a.muted));

    assert_eq!(rig.ask("MUTE_APP \"Music Player\" toggle"), "OK");
    for &id in &streams {
        rig.wait_pw_stream(id, 0.125, false);
    }
    let status = rig.wait_status("the app unmuted", |s| s.app("Music Player").is_some_and(|a| !a.muted));

    // Only the first stream muted (from outside); its volume moves too, so
    // the snapshot (which shows the first stream's volume) tells when the
    // daemon has seen both changes.
    let first = status.app("Music Player").unwrap().streams[0];
    let wpctl = |args: &[&str]| {
        let out = rig.bed.command("wpctl").args(args).output().unwrap();
        assert!(out.status.success(), "wpctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    wpctl(&["set-mute", &first.to_string(), "1"]);
    wpctl(&["set-volume", &first.to_string(), "0.4"]);
    rig.wait_status("the daemon to see the first stream at 0.4", |s| {
        s.app("Music Player").is_some_and(|a| (a.volume - 0.4).abs() < 1e-3 && !a.muted)
    });
    assert_eq!(rig.ask("MUTE_APP \"Music Player\" toggle"), "OK");
    rig.wait_pw_stream(first, 0.064, true);
    let second = *streams.iter().find(|&&id| id != first).unwrap();
    rig.wait_pw_stream(second, 0.125, true);
    rig.wait_status("the app muted", |s| s.app("Music Player").is_some_and(|a| a.muted));

    assert_eq!(rig.ask("MUTE_APP \"Music Player\" false"), "OK");
    rig.wait_pw_stream(first, 0.064, false);
    rig.wait_pw_stream(second, 0.125, false);
}

/// `SET_DEFAULT chat` makes `chat` PipeWire's default sink (the
/// `default.audio.sink` WirePlumber publishes), and the snapshot follows.
#[test]
fn set_default_changes_pipewires_default_sink() {
    let rig = Rig::start();
    assert_eq!(rig.bed.default_sink_name().as_deref(), Some("speakers"));
    for sink in ["chat", "game", "speakers"] {
        assert_eq!(rig.ask(&format!("SET_DEFAULT {sink}")), "OK");
        rig.bed
            .wait_until(TIMEOUT, &format!("PipeWire's default sink to become {sink}"), || {
                rig.bed.default_sink_name().as_deref() == Some(sink)
            })
            .unwrap();
        rig.wait_status(&format!("{sink} the default in the snapshot"), |s| {
            s.default_sink.as_deref() == Some(sink) && s.sink(sink).is_some_and(|k| k.default)
        });
    }
}

/// `PING`, `VERSION` and `STATUS` answer as documented; `STATUS` is one line
/// of JSON with the documented fields, agreeing with PipeWire's graph and
/// with the shared-memory snapshot.
#[test]
fn ping_version_and_status_answer_as_documented() {
    let rig = Rig::start();
    let (_app, streams) = rig.spawn_app(&AppSpec::new("Firefox").binary("firefox"));
    rig.wait_status("Firefox on speakers", |s| s.app("Firefox").is_some_and(|a| a.sink.as_deref() == Some("speakers")));
    let mut conn = rig.connect();
    assert_eq!(conn.ask("PING"), "OK PONG");
    assert_eq!(
        conn.ask("VERSION"),
        format!(
            "OK pipewire-volume-mixer-daemon {} protocol 2 shm {}",
            env!("CARGO_PKG_VERSION"),
            pvm_ipc::layout::LAYOUT_VERSION
        )
    );

    let line = conn.ask("STATUS");
    let json = line.strip_prefix("OK ").unwrap_or_else(|| panic!("not OK <json>: {line}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    for key in ["generation", "running", "connected", "overflow", "truncated", "default_sink", "sinks", "apps"] {
        assert!(v.get(key).is_some(), "no {key} in {json}");
    }
    assert!(v["generation"].is_u64(), "{json}");
    assert_eq!(v["connected"], true);
    assert_eq!(v["overflow"], false);
    assert_eq!(v["default_sink"], "speakers");
    let sinks = v["sinks"].as_array().unwrap();
    assert_eq!(sinks.len(), SINKS.len(), "{json}");
    for sink in sinks {
        let name = sink["name"].as_str().unwrap();
        assert!(SINKS.contains(&name), "{name}");
        assert_eq!(sink["id"].as_u64().map(|id| id as u32), rig.bed.node_id(name), "{name}'s id");
        assert_eq!(sink["volume"], 1.0);
        assert_eq!(sink["muted"], false);
    }
    let apps = v["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{json}");
    assert_eq!(apps[0]["name"], "Firefox");
    assert_eq!(apps[0]["sink"], "speakers");
    assert_eq!(apps[0]["streams"], serde_json::json!(streams));

    // The same object as the snapshot's, generation included (asked again if
    // a publish came in between).
    let mut last = None;
    let same = rig.bed.wait_until(TIMEOUT, "STATUS to match the snapshot", || {
        let line = conn.ask("STATUS");
        let from_socket: Status = serde_json::from_str(line.strip_prefix("OK ").unwrap()).unwrap();
        let from_shm = Status::from(&*rig.reader.read().unwrap());
        let matches = from_socket == from_shm;
        last = Some((from_socket, from_shm));
        matches
    });
    assert!(same.is_ok(), "{same:?}: {last:#?}");
}

/// `SUBSCRIBE` answers `OK`, sends the current status at once, then a status
/// line after each change made from another connection, with rising generations.
#[test]
fn subscribe_sends_a_status_line_after_a_change_from_elsewhere() {
    let rig = Rig::start();
    let mut sub = rig.connect();
    assert_eq!(sub.ask("SUBSCRIBE"), "OK");
    let first: Status = serde_json::from_str(&sub.line().unwrap()).unwrap();
    assert_eq!(first.sink("game").unwrap().volume, 1.0);

    let mut last = first.generation;
    let mut expect = |sub: &mut Conn, what: &str, done: &dyn Fn(&Status) -> bool| {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "no status line with {what}");
            let line = sub.line().unwrap_or_else(|| panic!("the subscription ended before {what}"));
            let status: Status = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(status.generation > last, "generations rise: {} after {last}", status.generation);
            last = status.generation;
            if done(&status) {
                return;
            }
        }
    };
    assert_eq!(rig.ask("SET_VOLUME game 0.5"), "OK");
    expect(&mut sub, "game at 0.5", &|s| s.sink("game").is_some_and(|g| g.volume == 0.5));
    assert_eq!(rig.ask("MUTE chat true"), "OK");
    expect(&mut sub, "chat muted", &|s| s.sink("chat").is_some_and(|c| c.muted));
}

// ---- the grammar -----------------------------------------------------------------

/// Command words and keywords are case-insensitive, runs of spaces and tabs
/// separate words, leading and trailing blanks are ignored, CRLF line ends
/// work and names may be quoted; names themselves are compared exactly.
#[test]
fn case_blanks_crlf_and_quotes_are_accepted_as_documented() {
    let rig = Rig::start();
    let mut conn = rig.connect();
    for line in ["ping\n", "Ping\n", "pInG\r\n", "  PING\n", "PING \t \n", "\tping\t\r\n"] {
        assert_eq!(conn.ask_bytes(line.as_bytes()), "OK PONG", "{line:?}");
    }
    assert!(conn.ask_bytes(b"version\r\n").starts_with("OK pipewire-volume-mixer-daemon "));

    assert_eq!(conn.ask_bytes(b"  set_volume \t game    0.5 \r\n"), "OK");
    rig.wait_pw_sink("game", 0.125, false);
    assert_eq!(conn.ask_bytes(b"Mute\tgame\tTRUE\r\n"), "OK");
    rig.wait_pw_sink("game", 0.125, true);
    rig.wait_status("game muted in the snapshot", |s| s.sink("game").is_some_and(|g| g.muted));
    assert_eq!(conn.ask_bytes(b"MUTE \"game\" Toggle\n"), "OK");
    rig.wait_pw_sink("game", 0.125, false);
    assert_eq!(conn.ask_bytes(b"SET_VOLUME \"game\" 1\r\n"), "OK");
    rig.wait_pw_sink("game", 1.0, false);
    assert_eq!(conn.ask("SeT_DeFaUlT chat"), "OK");
    rig.bed.wait_until(TIMEOUT, "chat the default", || rig.bed.default_sink_name().as_deref() == Some("chat")).unwrap();

    let unknown = conn.ask("SET_VOLUME GAME 0.5");
    assert!(unknown.starts_with("ERROR unknown sink GAME (known: "), "{unknown}");
    rig.sentinel();
    assert_eq!(rig.pw_sink("game"), (vec![1.0, 1.0], false), "GAME is not game");
}

/// Several requests sent in one write are answered one line each, in order.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let rig = Rig::start();
    let mut conn = rig.connect();
    conn.send(b"PING\nVERSION\nFROB\nSET_VOLUME game 0.5\nSTATUS\r\nPING\n");
    assert_eq!(conn.line().as_deref(), Some("OK PONG"));
    assert!(conn.line().unwrap().starts_with("OK pipewire-volume-mixer-daemon "));
    assert!(conn.line().unwrap().starts_with("ERROR unknown command FROB "));
    assert_eq!(conn.line().as_deref(), Some("OK"));
    assert!(conn.line().unwrap().starts_with("OK {\"generation\":"));
    assert_eq!(conn.line().as_deref(), Some("OK PONG"));
    rig.wait_pw_sink("game", 0.125, false);
}

/// Every kind of bad request gets one line starting `ERROR ` with the
/// documented message, on a connection that keeps serving; afterwards a new
/// client is served and PipeWire's sinks are exactly as before.
#[test]
fn bad_requests_get_documented_errors_and_change_nothing() {
    let mut rig = Rig::start();
    let before = rig.pw_sinks();
    let set_volume_usage = "usage: SET_VOLUME <sink> <0.0-1.0>";
    let long_word = "x".repeat(100);
    let exact: Vec<(Vec<u8>, String)> = vec![
        (b"   \n".to_vec(), "ERROR empty request".into()),
        (b"PING extra\n".to_vec(), "ERROR too many arguments; usage: PING".into()),
        (b"SET_VOLUME game 0.5 0.6\n".to_vec(), format!("ERROR too many arguments; {set_volume_usage}")),
        (b"SET_VOLUME game\n".to_vec(), format!("ERROR missing volume; {set_volume_usage}")),
        (b"SET_VOLUME\n".to_vec(), format!("ERROR missing <sink>; {set_volume_usage}")),
        (b"SET_DEFAULT\n".to_vec(), "ERROR missing <sink>; usage: SET_DEFAULT <sink>".into()),
        (b"UNROUTE \"\"\n".to_vec(), "ERROR <app> must not be empty; usage: UNROUTE <app>".into()),
        (
            b"MUTE game maybe\n".to_vec(),
            "ERROR mute must be true, false or toggle, got maybe; usage: MUTE <sink> <true|false|toggle>".into(),
        ),
        (
            b"ROUTE app game soon\n".to_vec(),
            "ERROR expected CREATE_PENDING, got soon; usage: ROUTE <app> <sink> [CREATE_PENDING]".into(),
        ),
        (b"SET_VOLUME \"game 0.5\n".to_vec(), "ERROR unterminated quote".into()),
        (
            b"SET_VOLUME \"ga\\me\" 0.5\n".to_vec(),
            "ERROR invalid escape \\m in quoted string (only \\\" and \\\\ are allowed)".into(),
        ),
        (b"SET_VOLUME ga\"me 0.5\n".to_vec(), "ERROR quote in the middle of a word".into()),
        (b"SET_VOLUME \"game\"x 0.5\n".to_vec(), "ERROR quote in the middle of a word".into()),
        (b"SET_VOLUME g\xffame 0.5\n".to_vec(), "ERROR request is not valid UTF-8".into()),
        (b"SET_VOLUME game\x00 0.5\n".to_vec(), "ERROR request contains a NUL byte".into()),
        (b"SET_VOLUME game\r0.5\n".to_vec(), "ERROR request contains a control character".into()),
        (b"MUTE game \x1btrue\n".to_vec(), "ERROR request contains a control character".into()),
        (b"SET_APP_VOLUME Nobody 0.5\n".to_vec(), "ERROR unknown app Nobody".into()),
        (b"MUTE_APP \"No Body\" true\n".to_vec(), "ERROR unknown app \"No Body\"".into()),
        (format!("{long_word}\n").into_bytes(), format!("ERROR unknown command {}... (commands: ", &long_word[..40])),
    ];
    // Signs, exponents, NaN, infinities and values above 1 are all refused
    // (docs/protocol.md: "-0" too, although it is zero).
    let volumes = ["1.5", "-0", "+0.5", "-0.5", "NaN", "nan", "inf", "-inf", "1e999", "1e0", "0x1", "1.", "1.00000001"];
    let prefixed = [
        ("FROB\n", "ERROR unknown command FROB (commands: PING VERSION STATUS SUBSCRIBE "),
        ("SET_VOLUME nosuchsink 0.5\n", "ERROR unknown sink nosuchsink (known: "),
        ("MUTE nosuchsink true\n", "ERROR unknown sink nosuchsink (known: "),
        ("SET_DEFAULT nosuchsink\n", "ERROR unknown sink nosuchsink (known: "),
        ("ROUTE app nosuchsink\n", "ERROR unknown sink nosuchsink (known: "),
    ];

    let mut conn = rig.connect();
    let check = |request: &[u8], answer: String, expected: &str, whole: bool| {
        let matches = if whole { answer == expected } else { answer.starts_with(expected) };
        assert!(matches, "{:?} was answered {answer:?}, expected {expected:?}", String::from_utf8_lossy(request));
    };
    for (request, expected) in &exact {
        let answer = conn.ask_bytes(request);
        // Unknown-command errors list every command; compare the start.
        let whole = !expected.ends_with("(commands: ");
        check(request, answer, expected, whole);
    }
    for word in volumes {
        let request = format!("SET_VOLUME game {word}\n");
        check(request.as_bytes(), conn.ask_bytes(request.as_bytes()), &volume_error(word), true);
        let request = format!("SET_APP_VOLUME app {word}\n");
        let expected =
            format!("ERROR volume must be a number from 0.0 to 1.0, got {word}; usage: SET_APP_VOLUME <app> <0.0-1.0>");
        check(request.as_bytes(), conn.ask_bytes(request.as_bytes()), &expected, true);
    }
    for (request, expected) in prefixed {
        let answer = conn.ask(request.trim_end());
        check(request.as_bytes(), answer.clone(), expected, false);
        if expected.contains("known: ") {
            assert!(answer.contains("game") && answer.contains("speakers"), "lists the sinks: {answer}");
        }
    }
    // The same connection still serves, and so does a new one.
    assert_eq!(conn.ask("PING"), "OK PONG");
    rig.assert_serving();

    rig.sentinel();
    let (after_sinks, after_default) = rig.pw_sinks();
    let (mut before_sinks, before_default) = before;
    before_sinks[SINKS.iter().position(|s| *s == "music").unwrap()] = (vec![0.125, 0.125], false);
    assert_eq!(after_sinks, before_sinks, "PipeWire's sinks ({SINKS:?}) changed");
    assert_eq!(after_default, before_default);
}

// ---- hostile and broken clients -------------------------------------------------

/// A 1 MiB line without a newline (eight clients at once) is answered
/// `ERROR line too long` and the connection closed, after the daemon has
/// read only part of it; meanwhile other clients are served, and the
/// daemon's memory and open fds come back to where they were.
#[test]
fn a_1_mib_line_is_refused_and_closed_without_being_buffered() {
    let mut rig = Rig::start();
    // Before any connection: no closing one is counted.
    let fds_before = rig.open_fds();
    rig.assert_serving();
    let rss_before = rig.rss_kib();
    let junk = vec![b'x'; 1 << 20];
    let hogs: Vec<_> = (0..8)
        .map(|_| {
            let mut conn = rig.connect();
            let junk = junk.clone();
            thread::spawn(move || {
                // The daemon hangs up after a few KiB, so the writes fail part-way.
                let mut written = 0;
                for chunk in junk.chunks(64 * 1024) {
                    match conn.reader.get_mut().write(chunk) {
                        Ok(n) => written += n,
                        Err(_) => break,
                    }
                }
                (written, conn.line(), conn.line())
            })
        })
        .collect();
    while !hogs.iter().all(|h| h.is_finished()) {
        assert_eq!(rig.ask("PING"), "OK PONG", "another client while the long lines come in");
    }
    for hog in hogs {
        let (written, first, second) = hog.join().unwrap();
        assert_eq!(first.as_deref(), Some("ERROR line too long"));
        assert_eq!(second, None, "the connection is closed after the error");
        assert!(written < junk.len(), "the daemon read the whole 1 MiB line ({written} bytes)");
    }
    rig.assert_serving();
    rig.assert_rss_bounded(rss_before, "eight 1 MiB lines");
    rig.wait_fds_back_to(fds_before, "the daemon to close the long-line connections");
}

/// A client sending `PING` one byte every 100 ms does not hold anybody up:
/// after each byte another client's `PING` is answered, and the trickling
/// client gets its `OK PONG` once its newline arrives.
#[test]
fn a_client_trickling_bytes_does_not_hold_up_others() {
    let rig = Rig::start();
    let mut slow = rig.connect();
    for &byte in b"PING" {
        slow.send(&[byte]);
        thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        assert_eq!(rig.ask("PING"), "OK PONG", "another client, while the slow line is incomplete");
        eprintln!("PING answered in {:?} while a line trickles in", started.elapsed());
    }
    slow.send(b"\n");
    assert_eq!(slow.line().as_deref(), Some("OK PONG"));
    assert_eq!(slow.ask("PING"), "OK PONG", "and it is served normally afterwards");
}

/// 500 clients connected at once, each sending `PING` before any reads, all
/// get `OK PONG`; the daemon holds all 500 connections, still serves a new
/// client, stays within its memory bound and closes them all when they go.
#[test]
fn five_hundred_clients_at_once_are_all_answered() {
    raise_fd_limit(2048);
    let mut rig = Rig::start();
    // Before any connection: no closing one is counted.
    let fds_before = rig.open_fds();
    rig.assert_serving();
    let rss_before = rig.rss_kib();
    let mut clients: Vec<Conn> = (0..500).map(|_| rig.connect()).collect();
    for client in &mut clients {
        client.send(b"PING\n");
    }
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.line().as_deref(), Some("OK PONG"), "client {i}");
    }
    assert!(rig.open_fds() >= fds_before + 500, "the daemon holds the 500 connections");
    rig.assert_serving();
    for client in &mut clients {
        client.send(b"STATUS\n");
    }
    for (i, client) in clients.iter_mut().enumerate() {
        assert!(client.line().unwrap().starts_with("OK {"), "client {i}");
    }
    rig.assert_rss_bounded(rss_before, "500 clients");
    drop(clients);
    rig.wait_fds_back_to(fds_before, "the daemon to close the 500 connections");
    rig.assert_serving();
}

/// With 1024 connections open (the documented maximum), one more is told
/// `ERROR too many connections` and closed; once a connection goes, a new
/// client is served again.
#[test]
fn the_1025th_connection_is_told_too_many_and_closed() {
    raise_fd_limit(4096);
    let mut rig = Rig::start();
    let mut clients: Vec<Conn> = (0..1024).map(|_| rig.connect()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.ask("PING"), "OK PONG", "client {i} of 1024");
    }
    let mut extra = rig.connect();
    assert_eq!(extra.line().as_deref(), Some("ERROR too many connections"));
    assert_eq!(extra.line(), None, "closed after the refusal");

    clients.pop();
    let mut last = None;
    let served = rig.bed.wait_until(TIMEOUT, "a new client served after one left", || {
        last = try_ping(&rig.daemon.socket);
        last.as_deref() == Some("OK PONG")
    });
    assert!(served.is_ok(), "{served:?}; last answer {last:?}");
    assert_eq!(clients[0].ask("PING"), "OK PONG", "the others are still served");
    drop(clients);
    rig.assert_serving();
}

/// Clients that hang up in the middle of a line (`SET_VOL`, or a whole
/// request without its newline) have no effect in PipeWire; a client that
/// half-closes gets the answers to its complete lines, then the end. The
/// daemon closes every one of them and keeps serving.
#[test]
fn clients_hanging_up_mid_line_change_nothing() {
    let mut rig = Rig::start();
    // Before any connection: no closing one is counted.
    let fds_before = rig.open_fds();
    rig.assert_serving();
    let before = rig.pw_sinks();
    for partial in ["SET_VOL", "SET_VOLUME game 0.5", "MUTE game true", "SET_DEFAULT chat", "SET_VOLUME game 0.5\r"] {
        let mut conn = rig.connect();
        conn.send(partial.as_bytes());
        drop(conn);
    }
    let mut half = rig.connect();
    half.send(b"PING\nSET_VOLUME game 0.2");
    half.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(half.line().as_deref(), Some("OK PONG"));
    assert_eq!(half.line(), None, "closed after answering the complete line");
    drop(half);
    rig.wait_fds_back_to(fds_before, "the daemon to close the hung-up connections");

    rig.assert_serving();
    rig.sentinel();
    let (after_sinks, after_default) = rig.pw_sinks();
    let (mut before_sinks, before_default) = before;
    before_sinks[SINKS.iter().position(|s| *s == "music").unwrap()] = (vec![0.125, 0.125], false);
    assert_eq!(after_sinks, before_sinks, "PipeWire's sinks ({SINKS:?}) changed");
    assert_eq!(after_default, before_default);
}

/// A client that pipelines up to 100 000 `STATUS` requests and never reads:
/// once its unread answers pass the bound the daemon stops reading its
/// requests (so its writes block), its memory stays bounded and others are
/// served; when the client finally reads, every request it got through is
/// answered, in order.
#[test]
fn a_client_that_never_reads_is_paused_not_buffered() {
    const REQUESTS: usize = 100_000;
    let mut rig = Rig::start();
    rig.assert_serving();
    let rss_before = rig.rss_kib();
    let hog = UnixStream::connect(&rig.daemon.socket).unwrap();
    hog.set_nonblocking(true).unwrap();
    let request = b"STATUS\n";
    let all = request.repeat(REQUESTS);
    let mut written = 0;
    while written < all.len() {
        match (&hog).write(&all[written..]) {
            Ok(n) => written += n,
            // No room for 3 s: the daemon has stopped reading this client.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if !writable_within(&hog, Duration::from_secs(3)) {
                    break;
                }
            }
            Err(e) => panic!("writing requests: {e}"),
        }
    }
    eprintln!("the daemon took {written} bytes ({} requests) before pushing back", written / request.len());
    assert!(written < all.len(), "the daemon read all {REQUESTS} requests although no answer was read");

    rig.assert_serving();
    rig.assert_rss_bounded(rss_before, "a client that does not read its answers");
    assert_eq!(rig.ask("SET_VOLUME game 0.5"), "OK", "others can still change things");
    rig.wait_pw_sink("game", 0.125, false);

    hog.set_nonblocking(false).unwrap();
    hog.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut reader = BufReader::new(&hog);
    let complete = written / request.len();
    let mut line = String::new();
    // Requests the daemon has taken from the socket but not answered yet.
    let mut most_held = 0;
    for i in 0..complete {
        if i % 256 == 0 {
            let taken = written.saturating_sub(unread_by_peer(&hog));
            most_held = most_held.max(taken.saturating_sub(i * request.len()));
        }
        line.clear();
        reader.read_line(&mut line).unwrap_or_else(|e| panic!("answer {i} of {complete}: {e}"));
        assert!(line.starts_with("OK {\"generation\":") && line.ends_with("}\n"), "answer {i}: {line:?}");
    }
    drop(reader);
    eprintln!("the daemon held at most {most_held} bytes of unanswered requests");
    // One read (4 KiB) beyond a line, and the answers still in flight.
    assert!(most_held <= 16 * 1024, "the daemon buffered {most_held} bytes of this client's requests");
    assert!(rig.daemon.is_running());
}

/// A subscriber that stops reading stays connected: while its socket is
/// full it is owed only the newest status, so its backlog and the daemon's
/// memory stay bounded however many changes happen; when it reads again it
/// gets the newest state last. A subscriber that reads gets every change.
#[test]
fn a_subscriber_that_stops_reading_is_kept_bounded_and_gets_the_newest_state() {
    let mut rig = Rig::start();
    // Many apps make each status line about 10 KiB.
    let mut crowd = rig.bed.spawn_app(&AppSpec::new("Crowd").distinct(60)).unwrap();
    crowd.wait_for_streams(TIMEOUT).unwrap();
    rig.wait_status("the 60 apps", |s| s.apps.len() == 60);
    rig.assert_serving();
    let rss_before = rig.rss_kib();

    // A subscriber that reads everything counts the bytes broadcast.
    let mut good = rig.connect();
    assert_eq!(good.ask("SUBSCRIBE"), "OK");
    let stop_good = good.stream().try_clone().unwrap();
    let (lines_tx, lines) = mpsc::channel::<(usize, f64)>();
    let reader = thread::spawn(move || {
        // Ends when the test shuts the connection down (maybe mid-line).
        let mut line = Vec::new();
        while matches!(good.reader.read_until(b'\n', &mut line), Ok(n) if n > 0 && line.ends_with(b"\n")) {
            let status: Status = serde_json::from_slice(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            let game = status.sink("game").map_or(-1.0, |g| g.volume);
            if lines_tx.send((line.len(), game)).is_err() {
                return;
            }
            line.clear();
        }
    });
    let mut bad = rig.connect();
    assert_eq!(bad.ask("SUBSCRIBE"), "OK");
    // From now on this one reads nothing, while 3 MiB of status lines go out.
    let mut control = rig.connect();
    let mut changes = 0usize;
    let mut broadcast = 0;
    while broadcast < 3 << 20 {
        let volume = if changes % 2 == 0 { 0.3 } else { 0.4 };
        assert_eq!(control.ask(&format!("SET_VOLUME game {volume}")), "OK");
        changes += 1;
        while let Ok((len, _)) = lines.try_recv() {
            broadcast += len;
        }
    }
    assert_eq!(control.ask("SET_VOLUME game 0.7"), "OK");
    loop {
        let (len, game) = lines.recv_timeout(TIMEOUT).expect("the reading subscriber gets every change");
        broadcast += len;
        if game == 0.7 {
            break;
        }
    }
    eprintln!("{changes} changes, {} KiB of status lines broadcast", broadcast / 1024);
    assert!(!peer_hung_up(bad.stream()), "the subscriber that paused was dropped");
    assert!(!peer_hung_up(&stop_good), "the reading subscriber was dropped");
    assert!(unread_by_peer(bad.stream()) < 1 << 20, "the paused subscriber's backlog is bounded");
    rig.assert_rss_bounded(rss_before, "a subscriber that stopped reading");

    // Reading again, it gets a bounded backlog that ends with the newest
    // state: its last line is at least as new as a STATUS asked now.
    let current: Status = serde_json::from_str(control.ask("STATUS").strip_prefix("OK ").unwrap()).unwrap();
    let mut received = 0;
    let mut last: Option<Status> = None;
    loop {
        let quiet = bad.reader.buffer().is_empty() && {
            let mut fds = [PollFd::new(bad.stream(), PollFlags::IN)];
            poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 300_000_000 })).unwrap();
            fds[0].revents().is_empty()
        };
        if quiet && last.as_ref().is_some_and(|l| l.generation >= current.generation) {
            break;
        }
        let line = bad.line().expect("the paused subscriber is still connected");
        last = Some(serde_json::from_str::<Status>(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
        received += 1;
    }
    eprintln!("the paused subscriber read {received} lines for {} changes", changes + 1);
    assert!(received < changes, "read {received} lines: the backlog was not coalesced");
    let last = last.unwrap();
    assert_eq!(last.sink("game").map(|g| g.volume), Some(0.7), "its last line is the newest state");
    rig.assert_serving();
    stop_good.shutdown(Shutdown::Both).unwrap();
    reader.join().unwrap();
}

/// Another user cannot reach the socket (its directory is 0700, the socket
/// 0600); and even when the directories are opened up, the daemon checks the
/// peer's uid and answers `ERROR permission denied: ...` and closes, while
/// it keeps serving its own user.
#[test]
fn a_client_of_another_uid_is_refused() {
    const NOBODY: u32 = 65534;
    let mut rig = Rig::start();
    let socket = rig.daemon.socket.clone();
    let run_dir = socket.parent().unwrap().to_owned();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&run_dir), 0o700, "{}", run_dir.display());
    assert_eq!(mode(&socket), 0o600, "{}", socket.display());

    let blocked = as_other_user(NOBODY, &socket, b"PING\n");
    assert_eq!(blocked, Err(libc::EACCES), "another user reaching the socket");

    // Open the way (as root we may): only the peer check is left.
    let bed_dir = rig.bed.dir().to_owned();
    let chmod = |p: &Path, mode: u32| fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    let (bed_mode, run_mode) = (mode(&bed_dir), mode(&run_dir));
    chmod(&bed_dir, 0o711);
    chmod(&run_dir, 0o711);
    chmod(&socket, 0o666);
    let answer = as_other_user(NOBODY, &socket, b"PING\n");
    chmod(&socket, 0o600);
    chmod(&run_dir, run_mode);
    chmod(&bed_dir, bed_mode);

    let answer = answer.unwrap_or_else(|errno| {
        panic!(
            "uid {NOBODY} still cannot connect ({}); is a parent of the bed closed?",
            io::Error::from_raw_os_error(errno)
        )
    });
    assert_eq!(
        String::from_utf8_lossy(&answer),
        "ERROR permission denied: the daemon serves only its own user\n",
        "what uid {NOBODY} got"
    );
    rig.assert_serving();
    let log = fs::read_to_string(&rig.daemon.log).unwrap();
    assert!(log.contains("refused a control connection from another user"), "not logged:\n{log}");
}

/// Other tools binding the `default` metadata while the default changes:
/// PipeWire holds the metadata's events back from the daemon during each
/// bind (docs/architecture.md), so the daemon reads the metadata again when
/// an answer is late. Every `SET_DEFAULT` still answers OK, and the snapshot
/// ends right.
#[test]
fn set_default_answers_ok_while_other_tools_bind_the_metadata() {
    let rig = Rig::start();
    let failures = rig.bed.while_binding_metadata(3, || {
        let mut failures = Vec::new();
        for (i, sink) in ["chat", "game"].iter().cycle().take(200).enumerate() {
            let answer = rig.ask(&format!("SET_DEFAULT {sink}"));
            if answer != "OK" {
                failures.push(format!("request {i}, {sink}: {answer}"));
            }
        }
        failures
    });
    assert!(failures.is_empty(), "{failures:#?}\ndaemon log:\n{}", rig.daemon.log_tail(30));
    rig.wait_status("game the default in the snapshot", |s| s.default_sink.as_deref() == Some("game"));
    assert_eq!(rig.bed.default_sink_name().as_deref(), Some("game"));
}
