//! Scenario 10: channels. CPU of PipeWire and of the daemon with 4 channels
//! idle and with one playing, beside the same app playing straight to the
//! device; the latency a channel adds; how long the audio takes to follow a
//! device change.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use pvm_ipc::client::Client;
use pvm_ipc::protocol::{OutputChoice, Request, Response};
use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;
use testbed::{AppSpec, BufferRecord, Recorder, TestBed, RECORD_RATE};

use super::{Config, TIMEOUT};
use crate::measure::{CpuMark, Summary};
use crate::report::{num, Report};

/// Four channels, all on the default output device; `Sine*` apps play to `game`.
const CONFIG: &str = r#"
[[channel]]
name = "game"
[[channel]]
name = "chat"
[[channel]]
name = "music"
[[channel]]
name = "media"

[[rule]]
match = { "application.name" = "Sine*" }
sink = "game"
"#;

/// A buffer louder than this carries the sine (amplitude 0.5, RMS 0.35).
const SOUND: f32 = 0.05;
/// WirePlumber suspends an idle sink after 5 s by default.
const SUSPEND: Duration = Duration::from_secs(7);

pub fn run(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section(
        "10. Channels (4 channels, server-side null sinks linked to a device; nothing of ours in the audio path)",
    );
    let window = Duration::from_secs(cfg.pick(20, 3));
    let bed = TestBed::builder()
        .device_sink("headphones", 1000)
        .device_sink("speakers", 900)
        .suspend_idle_sinks(true)
        .start()?;
    let pipewire = bed.pids()[1];

    // Without the daemon: nothing playing, then the app straight to the device.
    std::thread::sleep(SUSPEND);
    let (pw_idle, _) = cpu_over(pipewire, window);
    let mut app = bed.spawn_app(&AppSpec::new("Direct").sine(440.0).prop("target.object", "headphones"))?;
    app.wait_for_streams(TIMEOUT)?;
    std::thread::sleep(Duration::from_secs(1));
    let app_mark = CpuMark::now(app.pid());
    let (pw_direct, _) = cpu_over(pipewire, window);
    let (app_direct, _) = app_mark.since(app.pid());
    app.stop();

    // The daemon and its channels.
    std::fs::write(bed.daemon_paths().config, CONFIG)?;
    let (daemon, reader) = bed.spawn_daemon_in_sync(&[])?;
    wait_status(&reader, "4 channels wired", |s| s.sinks.iter().filter(|c| c.output.is_some()).count() == 4)?;
    std::thread::sleep(SUSPEND);
    let daemon_mark = CpuMark::now(daemon.pid());
    let (pw_channels_idle, _) = cpu_over(pipewire, window);
    let (daemon_idle, daemon_idle_switches) = daemon_mark.since(daemon.pid());

    let mut app = bed.spawn_app(&AppSpec::new("Sine Game").sine(440.0))?;
    app.wait_for_streams(TIMEOUT)?;
    wait_status(&reader, "the app on game", |s| s.app("Sine Game").and_then(|a| a.sink.as_deref()) == Some("game"))?;
    std::thread::sleep(Duration::from_secs(1));
    let daemon_mark = CpuMark::now(daemon.pid());
    let app_mark = CpuMark::now(app.pid());
    let (pw_channel_playing, _) = cpu_over(pipewire, window);
    let (daemon_playing, _) = daemon_mark.since(daemon.pid());
    let (app_channel, _) = app_mark.since(app.pid());

    let columns = ["PipeWire %", "daemon %", "the app %"];
    report.grid(&columns, "devices only, nothing playing", vec![num(pw_idle), "-".into(), "-".into()]);
    report.grid(
        &columns,
        "4 channels, nothing playing (sinks suspended)",
        vec![num(pw_channels_idle), num(daemon_idle), "-".into()],
    );
    report.grid(&columns, "a sine app straight to the device", vec![num(pw_direct), "-".into(), num(app_direct)]);
    report.grid(
        &columns,
        "the same app into a channel, the channel to the device",
        vec![num(pw_channel_playing), num(daemon_playing), num(app_channel)],
    );
    report.value(
        "PipeWire's extra CPU for a playing channel",
        format!("{} % of one core", num(pw_channel_playing - pw_direct)),
        &format!("CPU in % of one core over {} s each, from /proc/PID/stat", window.as_secs()),
    );
    report.value(
        "daemon wake-ups with 4 channels idle",
        format!("{daemon_idle_switches} in {} s", window.as_secs()),
        "context switches",
    );

    // Added latency: the sine's onset at the channel's monitor and at the device's.
    let game = bed.record("game")?;
    let game2 = bed.record("game")?;
    let headphones = bed.record("headphones")?;
    game.wait_connected(TIMEOUT)?;
    game2.wait_connected(TIMEOUT)?;
    headphones.wait_connected(TIMEOUT)?;
    app.stop();
    let mut added = Vec::new();
    let mut same = Vec::new();
    let mut quantum = 0;
    for _ in 0..cfg.pick(10, 3) {
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let mut app = bed.spawn_app(&AppSpec::new("Sine Game").sine(440.0))?;
        app.wait_for_streams(TIMEOUT)?;
        let at_game = first_sound(&game, started)?;
        let at_game2 = first_sound(&game2, started)?;
        let at_headphones = first_sound(&headphones, started)?;
        quantum = at_headphones.frames;
        added.push(cycles_apart(&at_game, &at_headphones) * f64::from(quantum));
        same.push(cycles_apart(&at_game, &at_game2) * f64::from(quantum));
        app.stop();
    }
    report.dist(
        "onset at the device's monitor after the channel's, the device driving the graph",
        "frames",
        Summary::of(&added),
        &format!(
            "{} onsets, resolution one cycle ({quantum} frames). A follower reads the driver's monitor one cycle late \
             (it runs last in a cycle); two null sinks linked by hand show the same offset",
            added.len()
        ),
    );
    report.dist(
        "method check: the onset at two recorders of the channel's monitor",
        "frames",
        Summary::of(&same),
        "the same measurement between two readers of one port: 0 when the method is sound",
    );
    drop(game2);
    drop(headphones);
    // The same with an output that does not drive the graph (the channel
    // does): what the channel adds before the device's input.
    let mut bed = bed;
    bed.create_device_sink("follower", -10)?;
    expect_ok(
        &daemon.socket,
        Request::Output { channel: "game".into(), output: OutputChoice::Sink("follower".into()) },
    )?;
    let follower = bed.record("follower")?;
    follower.wait_connected(TIMEOUT)?;
    let mut added = Vec::new();
    for _ in 0..cfg.pick(10, 3) {
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let mut app = bed.spawn_app(&AppSpec::new("Sine Game").sine(440.0))?;
        app.wait_for_streams(TIMEOUT)?;
        let at_game = first_sound(&game, started)?;
        let at_output = first_sound(&follower, started)?;
        added.push(cycles_apart(&at_game, &at_output) * f64::from(quantum));
        app.stop();
    }
    report.dist(
        "added latency: onset at the output's monitor after the channel's, the output following",
        "frames",
        Summary::of(&added),
        &format!("{} onsets, resolution one cycle ({quantum} frames): 0 = the same cycle", added.len()),
    );
    drop(follower);
    drop(game);
    expect_ok(&daemon.socket, Request::Output { channel: "game".into(), output: OutputChoice::Default })?;
    bed.remove_sink("follower")?;
    let headphones = bed.record("headphones")?;
    headphones.wait_connected(TIMEOUT)?;

    // Following a device change, heard at the new device.
    let mut app = bed.spawn_app(&AppSpec::new("Sine Game").sine(440.0))?;
    app.wait_for_streams(TIMEOUT)?;
    let speakers = bed.record("speakers")?;
    speakers.wait_connected(TIMEOUT)?;
    first_sound(&headphones, Instant::now() - Duration::from_secs(1))?;
    let mut follow = Vec::new();
    for i in 0..cfg.pick(10, 3) {
        let (to, recorder) = if i % 2 == 0 { ("speakers", &speakers) } else { ("headphones", &headphones) };
        std::thread::sleep(Duration::from_millis(300));
        let sent = Instant::now();
        expect_ok(&daemon.socket, Request::SetDefault { sink: to.into() })?;
        let heard = first_sound(recorder, sent)?;
        follow.push(heard.at.saturating_duration_since(sent));
    }
    report.dist(
        "default device changed: SET_DEFAULT sent -> the sine heard at the new device",
        "ms",
        Summary::of_ms(&follow),
        "output = \"default\"; the daemon re-links when WirePlumber's default changes",
    );

    // A named output unplugged: heard at the default device.
    expect_ok(
        &daemon.socket,
        Request::Output { channel: "game".into(), output: OutputChoice::Sink("headphones".into()) },
    )?;
    expect_ok(&daemon.socket, Request::SetDefault { sink: "speakers".into() })?;
    drop(headphones);
    let mut unplug = Vec::new();
    let mut replug = Vec::new();
    for _ in 0..cfg.pick(5, 2) {
        std::thread::sleep(Duration::from_millis(300));
        let removed = Instant::now();
        bed.remove_sink("headphones")?;
        let heard = first_sound(&speakers, removed)?;
        unplug.push(heard.at.saturating_duration_since(removed));
        let added = Instant::now();
        bed.create_device_sink("headphones", 1000)?;
        wait_status(&reader, "game back on headphones", |s| {
            s.sink("game").and_then(|g| g.output.as_deref()) == Some("headphones")
        })?;
        replug.push(added.elapsed());
    }
    report.dist(
        "named output unplugged: removal started -> the sine heard at the default device",
        "ms",
        Summary::of_ms(&unplug),
        "includes `pw-cli destroy` (a process start)",
    );
    report.dist(
        "named output back: creation started -> the snapshot shows the channel on it",
        "ms",
        Summary::of_ms(&replug),
        "includes `pw-cli create-node` and the bed's wait for the node",
    );
    drop(daemon);
    Ok(())
}

/// CPU of `pid` over `window`, in % of one core, and its context switches.
fn cpu_over(pid: u32, window: Duration) -> (f64, u64) {
    let mark = CpuMark::now(pid);
    std::thread::sleep(window);
    mark.since(pid)
}

/// How many graph cycles after `a` buffer `b` arrived (rounded).
fn cycles_apart(a: &BufferRecord, b: &BufferRecord) -> f64 {
    let apart = b.at.saturating_duration_since(a.at).as_secs_f64() * f64::from(RECORD_RATE);
    (apart / f64::from(b.frames.max(1))).round()
}

/// The first buffer carrying the sine at `recorder` after `after`.
fn first_sound(recorder: &Recorder, after: Instant) -> Result<BufferRecord> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(r) = recorder.records().into_iter().find(|r| r.at >= after && r.rms() > SOUND) {
            return Ok(r);
        }
        if Instant::now() > deadline {
            bail!("no sound at {} within {TIMEOUT:?}", recorder.sink());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn expect_ok(socket: &std::path::Path, request: Request) -> Result<()> {
    match Client::connect(socket)?.request(&request)? {
        Response::Ok(_) => Ok(()),
        other => bail!("{request}: {other:?}"),
    }
}

fn wait_status(reader: &SnapshotReader, what: &str, condition: impl Fn(&Status) -> bool) -> Result<()> {
    testbed::wait_status(reader, TIMEOUT, what, condition)?;
    Ok(())
}
