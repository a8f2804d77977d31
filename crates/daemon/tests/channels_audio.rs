//! Channels, listened to: a sine played by a fake app into a channel is
//! recorded at the output device's monitor (the test bed's stand-in
//! `headphones` and `speakers`), so volume, mute, output changes and
//! daemon crashes are checked on the real signal, not on the graph alone.

use std::time::{Duration, Instant};

use pvm_ipc::client::Client;
use pvm_ipc::protocol::{MuteAction, Request, Response};
use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;
use testbed::{AppSpec, Daemon, FakeApp, Recorder, TestBed};

/// Generous deadline for anything that involves PipeWire.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The level is measured over this window.
const WINDOW: Duration = Duration::from_millis(300);
/// RMS of the app's sine: amplitude 0.5.
const FULL: f32 = 0.5 / std::f32::consts::SQRT_2;
/// Below this a buffer is silence.
const SILENCE: f32 = 1e-4;

fn near(level: f32, want: f32) -> bool {
    (level - want).abs() <= want * 0.02
}

fn config(output: &str) -> String {
    format!(
        "[[channel]]\nname = \"game\"\ndescription = \"Game\"\noutput = \"{output}\"\n\n\
         [[rule]]\nmatch = {{ \"application.name\" = \"Sine*\" }}\nsink = \"game\"\n"
    )
}

struct Rig {
    daemon: Daemon,
    reader: SnapshotReader,
    _app: FakeApp,
    bed: TestBed,
}

impl Rig {
    /// Devices `headphones` (priority 1000, the default) and `speakers`
    /// (900), a daemon with channel `game` playing to `output`, and a sine
    /// app routed to `game` by a rule.
    fn start(output: &str) -> Rig {
        let bed = TestBed::builder().device_sink("headphones", 1000).device_sink("speakers", 900).start().unwrap();
        std::fs::write(bed.daemon_paths().config, config(output)).unwrap();
        let daemon = bed.spawn_daemon(&[]).unwrap();
        let reader = testbed::open_snapshot(&daemon.shm, TIMEOUT).unwrap();
        testbed::wait_status(&reader, TIMEOUT, "game wired", |s| s.sink("game").is_some_and(|g| g.output.is_some()))
            .unwrap();
        let mut app = bed.spawn_app(&AppSpec::new("Sine Game").sine(440.0)).unwrap();
        app.wait_for_streams(TIMEOUT).unwrap();
        let rig = Rig { daemon, reader, _app: app, bed };
        rig.wait("the app on game", |s| s.app("Sine Game").and_then(|a| a.sink.as_deref()) == Some("game"));
        rig
    }

    fn wait(&self, what: &str, condition: impl Fn(&Status) -> bool) -> Status {
        testbed::wait_status(&self.reader, TIMEOUT, what, condition)
            .unwrap_or_else(|e| panic!("{e}\ndaemon log:\n{}", self.daemon.log_tail(40)))
    }

    fn request(&self, request: Request) -> Response {
        Client::connect(&self.daemon.socket).unwrap().request(&request).unwrap()
    }

    fn record(&self, sink: &str) -> Recorder {
        let recorder = self.bed.record(sink).unwrap();
        recorder.wait_connected(TIMEOUT).unwrap();
        recorder
    }
}

fn wait_level(recorder: &Recorder, what: &str, pred: impl Fn(f32) -> bool) -> f32 {
    recorder.wait_level(what, TIMEOUT, WINDOW, pred).unwrap_or_else(|e| panic!("{e}"))
}

/// The longest silence heard at `recorder` between `from` and now, once a
/// little more has been recorded after now (see `Recorder::longest_gap_between`).
fn gap_since(recorder: &Recorder, from: Instant) -> testbed::Gap {
    let to = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    recorder.longest_gap_between(from, to, SILENCE)
}

#[test]
fn the_channel_plays_at_the_output_with_its_own_volume_and_mute() {
    let rig = Rig::start("headphones");
    let headphones = rig.record("headphones");
    let level = wait_level(&headphones, "the sine at full level", |l| near(l, FULL));
    eprintln!("headphones: RMS {level:.5} (sine RMS {FULL:.5})");

    assert_eq!(rig.request(Request::SetVolume { sink: "game".into(), volume: 0.5 }), Response::Ok(None));
    let half = wait_level(&headphones, "the sine at 0.125 of it (cubic 0.5)", |l| near(l, FULL * 0.125));
    eprintln!("game at 0.5: RMS {half:.5}, ratio {:.4}", half / level);

    assert_eq!(rig.request(Request::Mute { sink: "game".into(), mute: MuteAction::On }), Response::Ok(None));
    wait_level(&headphones, "silence", |l| l < SILENCE);
    assert_eq!(rig.request(Request::Mute { sink: "game".into(), mute: MuteAction::Off }), Response::Ok(None));
    wait_level(&headphones, "sound again", |l| near(l, FULL * 0.125));
}

#[test]
fn output_default_follows_pvmctl_default() {
    let rig = Rig::start("default");
    let headphones = rig.record("headphones");
    let speakers = rig.record("speakers");
    wait_level(&headphones, "the sine on headphones", |l| near(l, FULL));
    let moved = Instant::now();
    let out = rig.bed.pvmctl(&rig.daemon, &["default", "speakers"]).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_level(&speakers, "the sine on speakers", |l| near(l, FULL));
    wait_level(&headphones, "headphones silent", |l| l < SILENCE);
    eprintln!("default changed: silence on speakers until the sine came: {:?}", gap_since(&speakers, moved));
    rig.wait("game's output is speakers", |s| s.sink("game").and_then(|g| g.output.as_deref()) == Some("speakers"));
}

#[test]
fn unplugged_headphones_fall_back_to_the_default_output_and_come_back() {
    let mut rig = Rig::start("headphones");
    let headphones = rig.record("headphones");
    let speakers = rig.record("speakers");
    wait_level(&headphones, "the sine on headphones", |l| near(l, FULL));

    let unplugged = Instant::now();
    drop(headphones);
    rig.bed.remove_sink("headphones").unwrap();
    wait_level(&speakers, "the sine on speakers", |l| near(l, FULL));
    let gap = gap_since(&speakers, unplugged);
    eprintln!("unplugged: {} frames ({:?}) until the sine played on speakers", gap.frames, gap.duration());

    let plugged = Instant::now();
    rig.bed.create_device_sink("headphones", 1000).unwrap();
    let headphones = rig.record("headphones");
    wait_level(&headphones, "the sine back on headphones", |l| near(l, FULL));
    wait_level(&speakers, "speakers silent again", |l| l < SILENCE);
    eprintln!("plugged back: the sine on headphones {:?} after the device appeared", plugged.elapsed());
    rig.wait("game's output is headphones", |s| s.sink("game").and_then(|g| g.output.as_deref()) == Some("headphones"));
}

#[test]
fn killing_the_daemon_while_playing_leaves_no_gap_and_the_next_one_adopts() {
    let mut rig = Rig::start("default");
    let headphones = rig.record("headphones");
    wait_level(&headphones, "the sine on headphones", |l| near(l, FULL));
    let killed = Instant::now();
    rig.daemon.kill(libc::SIGKILL).unwrap();
    rig.daemon.wait_exit(TIMEOUT).expect("the daemon dies on SIGKILL");
    std::thread::sleep(Duration::from_millis(500));
    let gap = gap_since(&headphones, killed - Duration::from_millis(100));
    eprintln!("kill -9 while playing: longest silence {} frames (quantum {})", gap.frames, gap.quantum);
    assert!(gap.frames <= u64::from(gap.quantum), "a gap longer than one quantum: {gap:?}");
    wait_level(&headphones, "still playing", |l| near(l, FULL));

    rig.daemon = rig.bed.spawn_daemon(&[]).unwrap();
    let shm = rig.daemon.shm.clone();
    let pid = rig.daemon.pid;
    rig.bed
        .wait_until(TIMEOUT, "the new daemon's snapshot", || {
            SnapshotReader::open(&shm).is_ok_and(|r| r.read().is_ok_and(|s| s.header.daemon_pid == pid))
        })
        .unwrap();
    rig.reader = SnapshotReader::open(&shm).unwrap();
    rig.wait("game adopted", |s| s.sink("game").and_then(|g| g.output.as_deref()) == Some("headphones"));
    let graph = rig.bed.dump().unwrap();
    assert_eq!(graph.nodes.iter().filter(|n| n.name().as_deref() == Some("game")).count(), 1, "no duplicate node");
    let game = graph.node_named("game").unwrap().id;
    assert_eq!(graph.links.iter().filter(|l| l.output_node == game).count(), 2, "no duplicate link");

    let speakers = rig.record("speakers");
    assert_eq!(rig.request(Request::SetDefault { sink: "speakers".into() }), Response::Ok(None));
    wait_level(&speakers, "the adopted channel follows the next device change", |l| near(l, FULL));
}
