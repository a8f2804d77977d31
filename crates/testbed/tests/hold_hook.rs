//! pipewire-volume-mixer's WirePlumber hook (`contrib/wireplumber/`) in a
//! real bed, against a stand-in for the daemon's side (`support::router`):
//! streams wait for the decision and are linked once, to the pinned sink;
//! a router that does not decide delays them by the time limit at most; a
//! router that goes away releases them at once.

mod support;

use std::time::Duration;

use serde_json::json;
use support::links::{LinkWatcher, Stream};
use support::router::{Decide, StandInRouter};
use testbed::hook::HOLD_KEY;
use testbed::{AppSpec, Stack, TestBed, WirePlumber};

/// Generous: the machine may be busy; nothing here is a timing assertion.
const LONG: Duration = Duration::from_secs(20);

/// How many new streams the routing test starts (rounds of `BURST`).
const STREAMS: usize = 40;
const BURST: usize = 5;

fn bed(hook: bool) -> TestBed {
    TestBed::builder()
        .stack(Stack::Pw14Wp05)
        .sinks(&["speakers", "game"])
        .hold_hook(hook)
        .start()
        .expect("starting the bed")
}

/// The hook's announcement on the router's metadata, from pw-dump.
fn announcement(bed: &TestBed) -> Option<serde_json::Value> {
    bed.dump().ok()?.metadata_value("default", 0, HOLD_KEY).cloned()
}

/// Starts `STREAMS` streams in rounds of `BURST` (one process each, its
/// streams started at once) and waits for each to be linked to `sink`;
/// returns their records.
fn start_streams(bed: &TestBed, watcher: &LinkWatcher, label: &str, sink: &str) -> Vec<Stream> {
    let mut ids = Vec::new();
    for round in 0..STREAMS / BURST {
        let name = format!("{label} {round}");
        let mut app = bed.spawn_app(&AppSpec::new(&name).distinct(BURST)).expect("starting a fake app");
        let prefix = format!("{name} ");
        let streams = watcher.wait_until(LONG, &format!("the streams of {name:?} to be linked to {sink}"), |streams| {
            let mine: Vec<&Stream> =
                streams.iter().filter(|s| s.app.as_deref().is_some_and(|a| a.starts_with(&prefix))).collect();
            mine.len() == BURST && mine.iter().all(|s| s.links.iter().any(|(to, _)| to == sink))
        });
        ids.extend(streams.iter().filter(|s| s.app.as_deref().is_some_and(|a| a.starts_with(&prefix))).map(|s| s.id));
        app.stop();
    }
    // Every link the streams ever got has been recorded by now (they are gone).
    let streams = watcher.streams();
    ids.iter().map(|id| streams.iter().rev().find(|s| s.id == *id).expect("recorded").clone()).collect()
}

/// `(streams first linked elsewhere, streams ever linked elsewhere)`.
fn misroutes(streams: &[Stream], sink: &str) -> (usize, usize) {
    let first = streams.iter().filter(|s| s.first_sink() != Some(sink)).count();
    let ever = streams.iter().filter(|s| s.sinks() != [sink]).count();
    (first, ever)
}

fn median_first_link_ms(streams: &[Stream]) -> f64 {
    let mut ms: Vec<f64> = streams.iter().filter_map(Stream::first_link_after).map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN)
}

/// How long the slow router waits before pinning: long enough for
/// WirePlumber to link a stream that nothing holds.
const SLOW: Duration = Duration::from_millis(20);

/// Starts the streams of [`start_streams`] against a router that pins to
/// `game` at once, then against one that pins `SLOW`ly; returns
/// `(label, streams)` for each.
fn route_streams(bed: &TestBed, label: &str) -> Vec<(String, Vec<Stream>)> {
    let socket = bed.runtime_dir().join("pipewire-0");
    let watcher = LinkWatcher::start(&socket);
    let mut results = Vec::new();
    for delay in [Duration::ZERO, SLOW] {
        let router = StandInRouter::start(&socket, Decide::Route { sink: "game".into(), delay });
        if bed.hold_hook() {
            bed.wait_until(LONG, "the hook to announce itself on the router's metadata", || {
                announcement(bed) == Some(json!({ "version": 1, "timeout_ms": 200 }))
            })
            .unwrap();
        }
        let name = format!("{label} {}ms", delay.as_millis());
        let streams = start_streams(bed, &watcher, &name, "game");
        assert!(router.decisions() >= streams.len(), "the router decided {} times", router.decisions());
        let (first, ever) = misroutes(&streams, "game");
        eprintln!(
            "{name}: {first}/{n} streams first linked elsewhere, {ever}/{n} ever; median first link {:.1} ms",
            median_first_link_ms(&streams),
            n = streams.len(),
        );
        results.push((name, streams));
    }
    results
}

#[test]
fn streams_pinned_to_another_sink_are_only_ever_linked_to_it() {
    let bed = bed(true);
    for (name, streams) in route_streams(&bed, "hook, router delay") {
        assert_eq!(streams.len(), STREAMS);
        let wrong: Vec<&Stream> = streams.iter().filter(|s| s.sinks() != ["game"]).collect();
        assert!(wrong.is_empty(), "{name}: streams linked to another sink than `game`: {wrong:#?}");
    }
}

#[test]
fn without_the_hook_pinned_streams_still_end_on_their_sink() {
    // The comparison figures for the test above. What is asserted is what the
    // pin alone guarantees: every stream ends up on `game` (start_streams
    // waits for that) and stays there.
    let bed = bed(false);
    assert!(!bed.hold_hook());
    for (name, streams) in route_streams(&bed, "no hook, router delay") {
        assert!(announcement(&bed).is_none(), "no hook, so no announcement");
        let last_not_game: Vec<&Stream> =
            streams.iter().filter(|s| s.links.last().map(|(sink, _)| sink.as_str()) != Some("game")).collect();
        assert!(last_not_game.is_empty(), "{name}: streams whose last link is not to `game`: {last_not_game:#?}");
    }
}

#[test]
fn a_router_that_stops_deciding_delays_new_streams_by_the_time_limit_only() {
    let bed = bed(true);
    let watcher = LinkWatcher::start(&bed.runtime_dir().join("pipewire-0"));
    let router = StandInRouter::start(&bed.runtime_dir().join("pipewire-0"), Decide::route("game"));
    bed.wait_until(LONG, "the hook to announce itself", || announcement(&bed).is_some()).unwrap();

    let _decided = bed.spawn_app(&AppSpec::new("Decided")).unwrap();
    let streams = watcher.wait_until(LONG, "the decided stream to be linked", |streams| {
        streams.iter().any(|s| s.app.as_deref() == Some("Decided") && !s.links.is_empty())
    });
    let decided = streams.iter().find(|s| s.app.as_deref() == Some("Decided")).unwrap();
    assert_eq!(decided.sinks(), ["game"]);

    // Stuck: no pin, no decision. The stream is linked by WirePlumber alone,
    // to the default sink, once the 200 ms limit has passed.
    router.set(Decide::Nothing);
    let decisions = router.decisions();
    let _undecided = bed.spawn_app(&AppSpec::new("Undecided")).unwrap();
    let streams =
        watcher.wait_until(Duration::from_millis(200) + LONG, "the undecided stream to be linked", |streams| {
            streams.iter().any(|s| s.app.as_deref() == Some("Undecided") && !s.links.is_empty())
        });
    let undecided = streams.iter().find(|s| s.app.as_deref() == Some("Undecided")).unwrap();
    eprintln!("undecided stream linked {:?} after it appeared", undecided.first_link_after().unwrap());
    assert_eq!(undecided.sinks(), ["speakers"]);
    assert_eq!(router.decisions(), decisions, "the router wrote no decision for it");
}

#[test]
fn held_streams_are_released_at_once_when_the_router_goes_away() {
    // A time limit far beyond the test's waits: whatever links here was
    // released by the router's metadata going away, not by the limit.
    let bed = TestBed::builder()
        .stack(Stack::Pw14Wp05)
        .sinks(&["speakers", "game"])
        .hold_timeout(Duration::from_secs(60))
        .start()
        .expect("starting the bed");
    let watcher = LinkWatcher::start(&bed.runtime_dir().join("pipewire-0"));
    let router = StandInRouter::start(&bed.runtime_dir().join("pipewire-0"), Decide::Nothing);
    bed.wait_until(LONG, "the hook to announce itself with the 60 s limit", || {
        announcement(&bed) == Some(json!({ "version": 1, "timeout_ms": 60000 }))
    })
    .unwrap();

    let mut app = bed.spawn_app(&AppSpec::new("Held").distinct(3)).unwrap();
    app.wait_for_streams(LONG).unwrap();
    // Held: a second later none of them is linked.
    std::thread::sleep(Duration::from_secs(1));
    let held = watcher.streams();
    assert_eq!(held.len(), 3);
    assert!(held.iter().all(|s| s.links.is_empty()), "held streams were linked: {held:#?}");

    router.disconnect();
    let released = watcher.wait_until(LONG, "the held streams to be linked", |streams| {
        streams.len() == 3 && streams.iter().all(|s| !s.links.is_empty())
    });
    assert!(released.iter().all(|s| s.sinks() == ["speakers"]), "{released:#?}");
    eprintln!(
        "released streams linked {:?} after they appeared (time limit 60 s)",
        released.iter().filter_map(Stream::first_link_after).max().unwrap()
    );
}

#[test]
fn the_hook_announces_itself_again_when_the_announcement_is_removed_or_the_limit_changes() {
    let bed = bed(true);
    let router = StandInRouter::start(&bed.runtime_dir().join("pipewire-0"), Decide::Nothing);
    bed.wait_until(LONG, "the hook to announce itself", || announcement(&bed).is_some()).unwrap();
    // Once PipeWire has processed the removal, only the hook can bring it back.
    router.clear_hold();
    bed.wait_until(LONG, "the hook to announce itself again", || announcement(&bed).is_some()).unwrap();

    let mut wpctl = bed.command("wpctl");
    wpctl.args(["settings", "pipewire-volume-mixer.hold-timeout-ms", "350"]);
    let output = wpctl.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    bed.wait_until(LONG, "the new limit to be announced", || {
        announcement(&bed) == Some(json!({ "version": 1, "timeout_ms": 350 }))
    })
    .unwrap();
}

#[test]
fn streams_that_are_not_the_daemons_to_decide_are_not_held() {
    // A router that never decides and a 60 s limit: only a stream the hook
    // leaves alone is linked within the test's waits.
    let bed = TestBed::builder()
        .stack(Stack::Pw14Wp05)
        .sinks(&["speakers", "game"])
        .hold_timeout(Duration::from_secs(60))
        .start()
        .expect("starting the bed");
    let watcher = LinkWatcher::start(&bed.runtime_dir().join("pipewire-0"));
    let _router = StandInRouter::start(&bed.runtime_dir().join("pipewire-0"), Decide::Nothing);
    bed.wait_until(LONG, "the hook to announce itself", || announcement(&bed).is_some()).unwrap();

    let _fixed = bed.spawn_app(&AppSpec::new("Fixed").prop("node.dont-move", "true")).unwrap();
    let _grouped = bed.spawn_app(&AppSpec::new("Grouped").prop("node.link-group", "test-group")).unwrap();
    watcher.wait_until(LONG, "the dont-move and link-group streams to be linked", |streams| {
        ["Fixed", "Grouped"]
            .iter()
            .all(|app| streams.iter().any(|s| s.app.as_deref() == Some(*app) && !s.links.is_empty()))
    });
}

/// Starts an app on `bed` and waits until WirePlumber has linked its stream
/// to the default sink, `speakers`.
fn assert_links_to_speakers(bed: &TestBed) {
    let mut app = bed.spawn_app(&AppSpec::new("Old Stack")).unwrap();
    let streams = app.wait_for_streams(LONG).unwrap();
    bed.wait_until(LONG, "the stream to be linked to the default sink", || {
        bed.sink_names_linked_to(streams[0]) == ["speakers"]
    })
    .unwrap();
}

#[test]
fn wireplumber_0_4_bed_runs_the_private_prefix_and_links_a_fake_app() {
    let bed = TestBed::builder()
        .sinks(&["speakers", "game"])
        .stack(Stack::Pw14Wp04)
        .start()
        .expect("starting a bed with WirePlumber 0.4");
    assert_eq!(bed.wireplumber(), WirePlumber::V0_4);
    assert!(!bed.hold_hook(), "the hook is for WirePlumber 0.5 only");
    let pid = bed.pids()[2];
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("wireplumber-0.4/usr/bin/wireplumber"), "WirePlumber runs from {}", exe.display());
    assert_links_to_speakers(&bed);
}

#[test]
fn wireplumber_0_4_with_the_hook_files_installed_starts_and_links_as_usual() {
    // WirePlumber 0.4 reads the same wireplumber.conf.d and loads the script:
    // a user on Ubuntu 24.04 who ran `pvmctl setup wireplumber` must keep a
    // working WirePlumber (an earlier fragment made 0.4 exit at start).
    let bed = TestBed::builder()
        .sinks(&["speakers", "game"])
        .stack(Stack::Pw14Wp04)
        .hold_hook(true)
        .start()
        .expect("starting WirePlumber 0.4 with the hook's files");
    let log = std::fs::read_to_string(bed.log_path("wireplumber")).unwrap();
    assert!(!bed.hold_hook(), "not active on 0.4");
    let _router = StandInRouter::start(&bed.runtime_dir().join("pipewire-0"), Decide::Nothing);
    assert_links_to_speakers(&bed);
    assert!(announcement(&bed).is_none(), "0.4 ran the hook? log:\n{log}");
}
