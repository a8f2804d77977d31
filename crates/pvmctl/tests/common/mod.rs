//! Helpers for running `pvmctl` against fake daemons: a socket that answers
//! canned lines, and snapshot files.

#![allow(dead_code)] // Each test file uses its own subset.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::{self, JoinHandle};

use pvm_ipc::layout::{app_flags, header_flags, sink_flags, write_str, Snapshot, TargetSource, NO_ID};
use pvm_ipc::writer::SnapshotWriter;

/// A private directory with the paths of one fake daemon.
pub struct Place {
    pub dir: tempfile::TempDir,
}

impl Place {
    pub fn new() -> Place {
        Place { dir: tempfile::tempdir().unwrap() }
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("socket")
    }
    pub fn shm(&self) -> PathBuf {
        self.dir.path().join("shm")
    }
    pub fn stats(&self) -> PathBuf {
        self.dir.path().join("stats")
    }

    /// `pvmctl` with its paths pointed here (through the environment, so
    /// the flags stay free for the tests that check them).
    pub fn pvmctl(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pvmctl"));
        cmd.env("PVM_SOCKET", self.socket()).env("PVM_SHM", self.shm()).env("PVM_STATS", self.stats());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.pvmctl().args(args).output().unwrap()
    }

    /// Serves one connection: reads one request line and answers `answer`.
    /// The thread returns the line it received, with its `\n`.
    pub fn serve_one(&self, answer: &'static str) -> JoinHandle<String> {
        let listener = UnixListener::bind(self.socket()).unwrap();
        thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut writer = stream;
            writer.write_all(answer.as_bytes()).unwrap();
            line
        })
    }

    /// Becomes the daemon of this place: creates the snapshot file with the
    /// real writer and publishes `snapshot` (the pid in it is ours, so the
    /// daemon is alive). Returns the writer and the generation published.
    pub fn publish(&self, snapshot: &Snapshot) -> (SnapshotWriter, u64) {
        let mut writer = SnapshotWriter::create(&self.shm()).unwrap();
        let generation = writer.publish(snapshot);
        (writer, generation)
    }

    /// Leaves the file a crashed daemon would: `snapshot` with the RUNNING
    /// flag still set but the pid of a process that is gone.
    pub fn write_crashed_snapshot(&self, snapshot: &Snapshot) {
        let mut snapshot = Box::new(*snapshot);
        snapshot.header.daemon_pid = dead_pid();
        write_snapshot_file(&self.shm(), &snapshot);
    }
}

/// Runs `pvmctl` once against a fake daemon that answers `answer`, and
/// returns the request line it sent with the command's output.
pub fn exchange(args: &[&str], answer: &'static str) -> (String, Output) {
    let place = Place::new();
    let server = place.serve_one(answer);
    let output = place.run(args);
    (server.join().unwrap(), output)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("pvmctl exited by a signal")
}

/// Writes a snapshot file byte for byte, as the layout documents it.
fn write_snapshot_file(path: &Path, snapshot: &Snapshot) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path).unwrap();
    file.write_all(bytemuck::bytes_of(snapshot)).unwrap();
}

/// Two sinks and one app, with the header a running daemon (this test
/// process) writes:
/// `game` (default, 50 %) and `chat` (muted, 100 %); "Google Chrome" plays
/// to `game`, routed there by a rule.
pub fn two_sinks_one_app() -> Box<Snapshot> {
    let mut snap = Snapshot::new_boxed();
    let h = &mut snap.header;
    h.magic = pvm_ipc::layout::MAGIC;
    h.version = pvm_ipc::layout::LAYOUT_VERSION;
    h.generation = 6;
    h.flags = header_flags::RUNNING | header_flags::CONNECTED | header_flags::HOLD_ACTIVE;
    h.sink_count = 2;
    h.app_count = 1;
    h.total_sinks = 2;
    h.total_apps = 1;
    h.daemon_pid = std::process::id();
    h.file_size = pvm_ipc::layout::SNAPSHOT_SIZE as u32;

    let game = &mut snap.sinks[0];
    game.id = 40;
    game.flags = sink_flags::DEFAULT;
    game.volume = 0.5;
    game.channels = 2;
    write_str(&mut game.name, "game");
    write_str(&mut game.description, "Game");

    let chat = &mut snap.sinks[1];
    chat.id = 41;
    chat.flags = sink_flags::MUTED;
    chat.volume = 1.0;
    chat.channels = 2;
    write_str(&mut chat.name, "chat");
    write_str(&mut chat.description, "Voice chat");

    let app = &mut snap.apps[0];
    app.flags = app_flags::ACTIVE | app_flags::MOVABLE;
    app.stream_count = 1;
    app.volume = 0.8;
    app.target_source = TargetSource::Rule as u32;
    app.stream_ids = [NO_ID; 8];
    app.stream_ids[0] = 71;
    write_str(&mut app.name, "Google Chrome");
    write_str(&mut app.sink, "game");
    write_str(&mut app.target, "game");
    snap
}

/// The pid of a process that has exited.
pub fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}
