//! The test bed itself: startup, isolation, volume read-back, sinks, restart, cleanup.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use testbed::{Error, TestBed, AUDIO_SINK};

const SINKS: &[&str] = &["speakers", "game", "chat", "music"];
const TIMEOUT: Duration = Duration::from_secs(20);

/// Whether a process (or, given a negative id, a process group) exists.
fn exists(id: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks for existence.
    let rc = unsafe { libc::kill(id, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

fn sorted_sinks(bed: &TestBed) -> Vec<String> {
    let mut sinks = bed.dump().unwrap().sink_names();
    sinks.sort();
    sinks
}

#[test]
fn starts_with_four_sinks_speakers_default_and_wireplumber_connected() {
    let started = Instant::now();
    let bed = TestBed::start(SINKS).unwrap();
    eprintln!("bed ready in {:?}", started.elapsed());

    let graph = bed.dump().unwrap();
    assert_eq!(sorted_sinks(&bed), ["chat", "game", "music", "speakers"]);
    assert_eq!(bed.default_sink_name().as_deref(), Some("speakers"));
    assert!(graph.has_client("WirePlumber"));
    let game = graph.node_named("game").unwrap();
    assert_eq!(game.media_class().as_deref(), Some(AUDIO_SINK));
    assert_eq!(game.prop("node.description").as_deref(), Some("Game"));
    assert_eq!(bed.node_id("game"), Some(game.id));
    assert_eq!(bed.node_by_props("node.description", "Music").map(|n| n.id), bed.node_id("music"));
    assert_eq!(bed.node_id("no-such-sink"), None);
    assert!(bed.runtime_dir().join("pipewire-0").exists());
    assert!(bed.runtime_dir().starts_with(bed.dir()));
}

#[test]
fn two_beds_side_by_side_do_not_see_each_others_sinks() {
    let mut first = TestBed::start(&["alpha", "common"]).unwrap();
    let second = TestBed::start(&["beta", "common"]).unwrap();

    assert_ne!(first.runtime_dir(), second.runtime_dir());
    assert_eq!(sorted_sinks(&first), ["alpha", "common"]);
    assert_eq!(sorted_sinks(&second), ["beta", "common"]);

    first.create_sink("gamma").unwrap();
    assert_eq!(sorted_sinks(&first), ["alpha", "common", "gamma"]);
    assert_eq!(sorted_sinks(&second), ["beta", "common"]);
    assert_eq!(second.default_sink_name().as_deref(), Some("beta"));
}

#[test]
fn wpctl_volume_reads_back_as_cubic_channel_volumes_and_mute() {
    let bed = TestBed::start(&["speakers", "game"]).unwrap();
    let game = bed.node_id("game").unwrap();
    assert_eq!(bed.node_volume("game").unwrap(), (vec![1.0, 1.0], false));

    let status = bed.command("wpctl").args(["set-volume", &game.to_string(), "0.5"]).status().unwrap();
    assert!(status.success());
    bed.wait_until(TIMEOUT, "game's volume to change", || bed.node_volume("game").unwrap().0 != [1.0, 1.0]).unwrap();
    let (volumes, mute) = bed.node_volume("game").unwrap();
    assert_eq!(volumes.len(), 2);
    for v in volumes {
        assert!((v - 0.125).abs() < 1e-4, "channel volume {v}, expected 0.125");
    }
    assert!(!mute);

    let status = bed.command("wpctl").args(["set-mute", &game.to_string(), "1"]).status().unwrap();
    assert!(status.success());
    bed.wait_until(TIMEOUT, "game to be muted", || bed.node_volume("game").unwrap().1).unwrap();
    // The other sink is untouched.
    assert_eq!(bed.node_volume("speakers").unwrap(), (vec![1.0, 1.0], false));
}

#[test]
fn idle_sinks_keep_running_unless_suspension_is_asked_for() {
    let running = TestBed::start(&["speakers"]).unwrap();
    if running.stack().has_pipewire_14() {
        running
            .wait_until(TIMEOUT, "the idle sink to run", || {
                running.dump().unwrap().node_named("speakers").unwrap().state == "running"
            })
            .unwrap();
    } else {
        // PipeWire 0.3.65 ignores `node.always-process` on a null sink: an
        // idle one is suspended whatever the bed asks.
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(running.dump().unwrap().node_named("speakers").unwrap().state, "suspended");
    }

    let suspending = TestBed::builder().sinks(&["speakers"]).suspend_idle_sinks(true).start().unwrap();
    let graph = suspending.dump().unwrap();
    assert_eq!(graph.node_named("speakers").unwrap().state, "suspended");
}

#[test]
fn dropping_the_bed_stops_every_process_it_started() {
    let bed = TestBed::builder().sinks(SINKS).pulse(true).start().unwrap();
    let pids: Vec<i32> = bed.pids().into_iter().map(|p| p as i32).collect();
    // dbus-daemon, pipewire, wireplumber, pipewire-pulse.
    assert_eq!(pids.len(), 4, "{pids:?}");
    for &pid in &pids {
        assert!(exists(pid), "pid {pid} should be running");
    }
    let dir = bed.dir().to_owned();

    drop(bed);

    for &pid in &pids {
        assert!(!exists(pid), "pid {pid} is still alive after drop");
        assert!(!exists(-pid), "process group {pid} still has members after drop");
    }
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[test]
fn pulse_bed_answers_pactl() {
    let bed = TestBed::builder().sinks(&["speakers", "game"]).pulse(true).start().unwrap();
    let output = bed.command("pactl").args(["list", "short", "sinks"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let listed: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split('\t').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(listed, BTreeSet::from(["game".into(), "speakers".into()]));
}

#[test]
fn created_sinks_appear_and_removed_sinks_go_and_restart_keeps_the_set() {
    let mut bed = TestBed::start(&["speakers", "game", "chat"]).unwrap();
    let id = bed.create_sink("music").unwrap();
    assert_eq!(bed.node_id("music"), Some(id));
    assert!(matches!(bed.create_sink("music"), Err(Error::SinkExists(_))));
    bed.remove_sink("chat").unwrap();
    assert_eq!(sorted_sinks(&bed), ["game", "music", "speakers"]);
    let old_pids = bed.pids();

    bed.restart_pipewire().unwrap();

    assert_eq!(sorted_sinks(&bed), ["game", "music", "speakers"]);
    assert_eq!(bed.default_sink_name().as_deref(), Some("speakers"));
    // dbus-daemon stays; pipewire and wireplumber are new processes.
    let new_pids = bed.pids();
    assert_eq!(new_pids[0], old_pids[0]);
    assert!(new_pids[1..].iter().all(|p| !old_pids.contains(p)));
}

#[test]
fn stopped_pipewire_is_reported_and_comes_back() {
    let mut bed = TestBed::start(&["speakers"]).unwrap();
    bed.stop_pipewire();
    assert!(!bed.is_running());
    assert!(matches!(bed.dump(), Err(Error::NotRunning)));
    assert_eq!(bed.node_id("speakers"), None);
    bed.start_pipewire().unwrap();
    assert!(bed.node_id("speakers").is_some());
}

#[test]
fn processes_get_only_the_beds_environment() {
    let bed = TestBed::start(&[]).unwrap();
    let output = bed.command("env").output().unwrap();
    assert!(output.status.success());
    let seen: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
        .collect();
    let expected: BTreeSet<String> = bed.env().into_iter().map(|(k, _)| k).collect();
    assert_eq!(seen, expected);
    let env = bed.env();
    let runtime = env.iter().find(|(k, _)| k == "XDG_RUNTIME_DIR").unwrap();
    assert_eq!(runtime.1, bed.runtime_dir().to_string_lossy());
    for (key, value) in &env {
        if key.starts_with("XDG_") || key == "HOME" {
            assert!(value.starts_with(&*bed.dir().to_string_lossy()), "{key}={value}");
        }
    }
}

#[test]
fn sink_names_that_config_syntax_cannot_carry_are_refused() {
    assert!(matches!(TestBed::start(&["two words"]), Err(Error::InvalidSinkName(_))));
    assert!(matches!(TestBed::start(&["game", "game"]), Err(Error::SinkExists(_))));
}
