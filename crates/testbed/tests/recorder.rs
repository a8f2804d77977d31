//! Listening to the real signal: a sine app, a device sink, the recorder on its monitor.

use std::thread;
use std::time::{Duration, Instant};

use testbed::{AppSpec, FakeApp, Recorder, TestBed};

const TIMEOUT: Duration = Duration::from_secs(20);
/// The window levels are measured over.
const WINDOW: Duration = Duration::from_millis(300);
/// Below this a buffer counts as silent.
const SILENCE: f32 = 0.01;
/// A sine of amplitude 0.5 has this RMS.
const TONE_RMS: f32 = 0.5 / std::f32::consts::SQRT_2;

fn tone() -> AppSpec {
    AppSpec::new("Tone").sine(440.0).amplitude(0.5).prop("target.object", "headphones")
}

fn start_tone(bed: &TestBed) -> FakeApp {
    let mut app = bed.spawn_app(&tone()).unwrap();
    let streams = app.wait_for_streams(TIMEOUT).unwrap();
    bed.wait_until(TIMEOUT, "the tone linked to headphones", || bed.sink_names_linked_to(streams[0]) == ["headphones"])
        .unwrap();
    app
}

fn wait_for_tone(recorder: &Recorder) -> f32 {
    recorder.wait_level("the tone on headphones", TIMEOUT, WINDOW, |l| l > TONE_RMS * 0.9).unwrap()
}

#[test]
fn recorder_hears_the_tone_its_silence_and_the_gap_between() {
    let bed = TestBed::builder().device_sink("headphones", 1000).start().unwrap();
    assert_eq!(bed.default_sink_name().as_deref(), Some("headphones"));
    let recorder = bed.record("headphones").unwrap();
    recorder.wait_connected(TIMEOUT).unwrap();
    // Nothing plays yet: the monitor carries silence.
    let quiet = recorder.wait_level("silence before the tone", TIMEOUT, WINDOW, |l| l < 1e-4).unwrap();
    eprintln!("level before the tone: {quiet}");

    let mut app = start_tone(&bed);
    wait_for_tone(&recorder);

    // A steady second of tone.
    thread::sleep(Duration::from_millis(200));
    let from = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let to = Instant::now();
    // Let buffers arrive after the window, so its end is known.
    thread::sleep(Duration::from_millis(200));
    let rms = recorder.rms_between(from, to).unwrap();
    let records = recorder.records();
    let peak = records.iter().filter(|r| r.at >= from && r.at <= to).map(|r| r.peak).fold(0.0, f32::max);
    let steady = recorder.longest_gap_between(from, to, SILENCE);
    eprintln!("steady tone: rms {rms:.5} (expected {TONE_RMS:.5}), peak {peak:.5}, gap {steady:?}");
    assert!((rms - TONE_RMS).abs() <= TONE_RMS * 0.02, "rms {rms}, expected {TONE_RMS} ± 2 %");
    assert!((peak - 0.5).abs() < 0.01, "peak {peak}");
    assert_eq!(steady.frames, 0, "{steady:?}");
    assert!(steady.quantum > 0, "{steady:?}");

    // The app goes away: silence; then it comes back.
    let killed = Instant::now();
    app.stop();
    let silent = recorder.wait_level("silence after the tone stopped", TIMEOUT, WINDOW, |l| l < 1e-3).unwrap();
    eprintln!("level after the tone stopped: {silent}");
    let _app = start_tone(&bed);
    let back = wait_for_tone(&recorder);
    let back_at = Instant::now();
    thread::sleep(Duration::from_millis(200));
    let gap = recorder.longest_gap_between(killed, back_at, SILENCE);
    eprintln!("tone back at {back:.5}; gap while the app was away: {gap:?} ({:?})", gap.duration());
    // The silence lasted at least the window that read it as silent.
    assert!(gap.duration() >= WINDOW, "{gap:?}");
    assert!(gap.buffers > 0, "{gap:?}");
    assert!(gap.duration() < back_at - killed, "{gap:?} longer than the whole window");

    // After it: steady again.
    let from = Instant::now();
    thread::sleep(Duration::from_millis(500));
    let to = Instant::now();
    thread::sleep(Duration::from_millis(200));
    assert_eq!(recorder.longest_gap_between(from, to, SILENCE).frames, 0);
    let rms = recorder.rms_between(from, to).unwrap();
    assert!((rms - TONE_RMS).abs() <= TONE_RMS * 0.02, "rms after the restart {rms}");
    recorder.stop();
}

#[test]
fn recorder_of_a_missing_sink_listens_to_nothing_else() {
    let bed = TestBed::builder().sinks(&["speakers"]).start().unwrap();
    let recorder = bed.record("headphones").unwrap();
    let _app = bed.spawn_app(&AppSpec::new("Tone").sine(440.0)).unwrap();
    // It must not fall back to the default sink (speakers, playing the tone).
    let err = recorder.wait_connected(Duration::from_secs(3)).unwrap_err();
    eprintln!("{err}");
    assert_eq!(recorder.level(Duration::from_secs(10)), None);
}

#[test]
fn device_sinks_have_their_priority_through_restarts_and_go_away() {
    let mut bed = TestBed::start(&["speakers"]).unwrap();
    let id = bed.create_device_sink("headphones", 3000).unwrap();
    let graph = bed.dump().unwrap();
    let node = graph.node(id).unwrap();
    assert_eq!(node.name().as_deref(), Some("headphones"));
    assert_eq!(node.prop("node.description").as_deref(), Some("Headphones"));
    assert_eq!(node.prop("priority.session").as_deref(), Some("3000"));
    assert_eq!(node.prop("priority.driver").as_deref(), Some("3000"));
    bed.wait_until(TIMEOUT, "headphones (3000 > 2000) to become the default", || {
        bed.default_sink_name().as_deref() == Some("headphones")
    })
    .unwrap();

    bed.restart_pipewire().unwrap();
    let graph = bed.dump().unwrap();
    let node = graph.node_named("headphones").unwrap();
    assert_eq!(node.prop("priority.session").as_deref(), Some("3000"));
    assert_eq!(graph.node_named("speakers").unwrap().prop("priority.session").as_deref(), Some("2000"));

    bed.remove_sink("headphones").unwrap();
    assert_eq!(bed.sinks(), ["speakers"]);
    bed.restart_pipewire().unwrap();
    assert_eq!(bed.node_id("headphones"), None);
}

#[test]
fn passive_recorder_hears_only_while_something_plays_and_counts_the_time_between() {
    let bed = TestBed::builder().device_sink("headphones", 1000).start().unwrap();
    let recorder = bed.record_passive("headphones").unwrap();
    let mut app = start_tone(&bed);
    recorder.wait_connected(TIMEOUT).unwrap();
    wait_for_tone(&recorder);

    let killed = Instant::now();
    app.stop();
    // Nothing keeps the passive stream running: no buffers at all.
    bed.wait_until(TIMEOUT, "the passive recorder to get no more buffers", || recorder.level(WINDOW).is_none())
        .unwrap();
    let away = Duration::from_millis(500);
    thread::sleep(away);
    let _app = start_tone(&bed);
    wait_for_tone(&recorder);
    let back_at = Instant::now();
    thread::sleep(Duration::from_millis(200));
    let gap = recorder.longest_gap_between(killed, back_at, SILENCE);
    eprintln!("passive: gap while the app was away: {gap:?} ({:?})", gap.duration());
    // At least the time it got nothing (WINDOW) and slept (away), mostly missing time.
    assert!(gap.duration() >= WINDOW + away, "{gap:?}");
    assert!(gap.duration() < back_at - killed, "{gap:?}");
    assert!((gap.buffers as u64) * u64::from(gap.quantum) < gap.frames / 2, "{gap:?}");
}
