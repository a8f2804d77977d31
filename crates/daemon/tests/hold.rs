//! Exact routing with the routing hold (WirePlumber 0.5 and the hook of
//! `contrib/wireplumber/`, which every test bed installs), and without it.
//! The beds here choose their stack themselves (PipeWire 1.4 + WirePlumber
//! 0.5, or WirePlumber 0.4 where a test says so), whatever `PVM_TEST_STACK` is.
//!
//! A [`GraphWatcher`] records every link each playback stream ever gets,
//! straight from PipeWire's registry, so a link to another sink is caught
//! however short it lived.

use std::fs;
use std::time::{Duration, Instant};

use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;
use testbed::{AppSpec, Daemon, FakeApp, GraphWatcher, Stack, TestBed, WatchLog, WatchOptions, WirePlumber};

const TIMEOUT: Duration = Duration::from_secs(15);
const SINKS: [&str; 4] = ["speakers", "game", "chat", "music"];
const GAME_RULE: &str = "[[rule]]\nmatch = { \"application.name\" = \"Game*\" }\nsink = \"game\"\n";

struct Rig {
    watcher: GraphWatcher,
    daemon: Daemon,
    reader: SnapshotReader,
    bed: TestBed,
}

impl Rig {
    fn start(bed: TestBed) -> Rig {
        fs::write(bed.daemon_paths().config, GAME_RULE).unwrap();
        let watcher = GraphWatcher::start_with(&bed.pipewire_socket(), WatchOptions::default().metadata()).unwrap();
        let (daemon, reader) = bed.spawn_daemon_in_sync(&[]).unwrap();
        Rig { watcher, daemon, reader, bed }
    }

    fn with_hook() -> Rig {
        let rig = Rig::start(TestBed::builder().stack(Stack::Pw14Wp05).sinks(&SINKS).start().unwrap());
        rig.wait_status("the hold announced", |s| s.hold_active);
        rig
    }

    fn without_hook() -> Rig {
        Rig::start(TestBed::builder().stack(Stack::Pw14Wp05).sinks(&SINKS).hold_hook(false).start().unwrap())
    }

    fn wait_status(&self, what: &str, condition: impl Fn(&Status) -> bool) -> Status {
        testbed::wait_status(&self.reader, TIMEOUT, what, condition)
            .unwrap_or_else(|e| panic!("{e}\ndaemon log:\n{}", self.daemon.log_tail(30)))
    }

    fn ask(&self, args: &[&str]) -> String {
        let out = self.bed.pvmctl(&self.daemon, args).unwrap();
        assert!(out.status.success(), "pvmctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until every stream of each app is linked, and only to `sink`;
    /// returns the record.
    fn wait_all_on(&self, apps: &[String], streams_each: usize, sink: &str) -> WatchLog {
        self.watcher
            .wait_until(TIMEOUT, &format!("{apps:?} on {sink}"), |log| {
                let Some(sink_id) = log.node_named(sink).map(|n| n.id) else { return false };
                apps.iter().all(|app| {
                    let live: Vec<_> = log.streams_of(app).into_iter().filter(|s| s.is_alive()).collect();
                    live.len() == streams_each
                        && live.iter().all(|s| {
                            let links = log.live_links_from(s.node);
                            !links.is_empty() && links.iter().all(|l| l.input_node == sink_id)
                        })
                })
            })
            .unwrap_or_else(|e| panic!("{e}\ndaemon log:\n{}", self.daemon.log_tail(30)))
    }
}

/// Streams of `apps` ever linked to anything but `sink`, with their timelines.
fn misrouted(log: &WatchLog, apps: &[String], sink: &str) -> Vec<String> {
    apps.iter()
        .flat_map(|app| log.streams_of(app))
        .filter(|s| s.sinks_ever_linked().iter().any(|l| l != sink))
        .map(|s| format!("{:?} (node {}):\n  {}", s.app_name, s.node, s.timeline().join("\n  ")))
        .collect()
}

fn stop_all(apps: &mut Vec<FakeApp>) {
    for mut app in apps.drain(..) {
        app.stop();
    }
}

#[test]
fn with_the_hold_200_new_streams_are_only_ever_linked_to_their_rules_sink() {
    let rig = Rig::with_hook();
    let mut total = 0;
    let mut bad = Vec::new();
    for round in 0..5 {
        // Ten apps started at the same instant, four streams each.
        let names: Vec<String> = (0..10).map(|i| format!("Game {round}-{i}")).collect();
        let mut apps: Vec<FakeApp> =
            names.iter().map(|n| rig.bed.spawn_app(&AppSpec::new(n).role("Game").streams(4)).unwrap()).collect();
        let log = rig.wait_all_on(&names, 4, "game");
        total += names.len() * 4;
        bad.extend(misrouted(&log, &names, "game"));
        stop_all(&mut apps);
    }
    eprintln!("{total} new streams with the hold: {} ever linked to another sink", bad.len());
    assert_eq!(total, 200);
    assert!(bad.is_empty(), "{} streams were linked elsewhere first:\n{}", bad.len(), bad.join("\n"));
}

/// WirePlumber remembers a target per restore key (`media.role`, else the
/// app's name) and restores it for the next stream. A stream routed to `chat`
/// once, then unrouted, must still start on its rule's sink.
fn a_rule_beats_wireplumbers_memory(rig: &Rig, hold: bool) -> (usize, usize) {
    const APP: &str = "Game Memory";
    let spec = AppSpec::new(APP).role("Memory");
    rig.ask(&["route", APP, "chat"]);
    let mut app = rig.bed.spawn_app(&spec).unwrap();
    rig.wait_all_on(&[APP.to_owned()], 1, "chat");
    app.stop();
    rig.ask(&["unroute", APP]);

    let mut first_elsewhere = 0;
    for run in 0..20 {
        let mut app = rig.bed.spawn_app(&spec).unwrap();
        let log = rig.wait_all_on(&[APP.to_owned()], 1, "game");
        let newest = log.streams_of(APP).into_iter().last().expect("the new stream");
        if newest.sinks_ever_linked() != ["game"] {
            first_elsewhere += 1;
            eprintln!("run {run} (hold {hold}): {}", newest.timeline().join(" | "));
        }
        app.stop();
    }
    (first_elsewhere, 20)
}

#[test]
fn a_rule_beats_wireplumbers_memory_with_the_hold_20_of_20() {
    let rig = Rig::with_hook();
    let (elsewhere, runs) = a_rule_beats_wireplumbers_memory(&rig, true);
    eprintln!("with the hold: {elsewhere} of {runs} streams were first linked elsewhere");
    assert_eq!(elsewhere, 0, "with the hold no stream is ever linked to the remembered sink");
}

#[test]
fn a_rule_beats_wireplumbers_memory_without_the_hold_too() {
    let rig = Rig::without_hook();
    assert!(!rig.wait_status("in sync", |s| s.connected).hold_active);
    let (elsewhere, runs) = a_rule_beats_wireplumbers_memory(&rig, false);
    // Every run ended on `game` (a_rule_beats_wireplumbers_memory waits for
    // it); a brief first link elsewhere is possible without the hold and is
    // measured by the benchmark.
    eprintln!("without the hold: {elsewhere} of {runs} streams were first linked elsewhere, all ended on game");
}

#[test]
fn a_move_in_another_tool_is_respected_and_shown() {
    let rig = Rig::with_hook();
    const APP: &str = "Game Moved";
    let mut app = rig.bed.spawn_app(&AppSpec::new(APP).role("Moved")).unwrap();
    let stream = app.wait_for_streams(TIMEOUT).unwrap()[0];
    rig.wait_all_on(&[APP.to_owned()], 1, "game");

    // The user moves it with pw-metadata, as pavucontrol would.
    let chat_serial = rig.watcher.log().serial_of("chat").expect("chat's serial").to_owned();
    let out = rig
        .bed
        .command("pw-metadata")
        .args(["-n", "default", &stream.to_string(), "target.object", &chat_serial, "Spa:Id"])
        .output()
        .unwrap();
    assert!(out.status.success(), "pw-metadata: {}", String::from_utf8_lossy(&out.stderr));
    rig.wait_all_on(&[APP.to_owned()], 1, "chat");
    // The target (a metadata event) and the new link (registry events) reach
    // the daemon separately: wait for both.
    rig.wait_status("the move shown", |s| {
        s.app(APP).is_some_and(|a| {
            a.target_source == "other-tool" && a.target.as_deref() == Some("chat") && a.sink.as_deref() == Some("chat")
        })
    });

    // Not undone: a second later it is still there, and nobody wrote
    // target.object again after the user.
    std::thread::sleep(Duration::from_secs(1));
    let log = rig.watcher.log();
    let history = log.stream(stream).unwrap();
    assert_eq!(history.target_object_writes().last(), Some(&chat_serial), "{:?}", history.timeline());
    let chat = log.node_named("chat").unwrap().id;
    let links = log.live_links_from(stream);
    assert!(!links.is_empty() && links.iter().all(|l| l.input_node == chat), "still on chat: {links:?}");
    // And not persisted: the route file has no entry for the app.
    let routes = fs::read_to_string(rig.bed.daemon_paths().state).unwrap_or_default();
    assert!(!routes.contains(APP), "a move in another tool is not persisted: {routes}");
    app.stop();
}

#[test]
fn held_streams_play_when_the_daemon_freezes_or_dies() {
    let mut rig = Rig::with_hook();
    // Frozen: the hook's time limit (200 ms) releases new streams to the
    // default sink; once the daemon runs again it routes them.
    rig.daemon.kill(libc::SIGSTOP).unwrap();
    let mut frozen = rig.bed.spawn_app(&AppSpec::new("Game Frozen").role("Frozen")).unwrap();
    let log = rig.wait_all_on(&["Game Frozen".to_owned()], 1, "speakers");
    let stream = log.streams_of("Game Frozen")[0];
    let first_link = log.live_links_from(stream.node).iter().map(|l| l.appeared).min().unwrap();
    eprintln!(
        "daemon stopped: the new stream played on the default sink {:?} after it appeared (limit 200 ms)",
        first_link.saturating_duration_since(stream.appeared)
    );
    rig.daemon.kill(libc::SIGCONT).unwrap();
    rig.wait_all_on(&["Game Frozen".to_owned()], 1, "game");
    frozen.stop();

    // Killed while a stream is held: held streams are released at once.
    let mut rig = rig;
    let long =
        TestBed::builder().stack(Stack::Pw14Wp05).sinks(&SINKS).hold_timeout(Duration::from_secs(60)).start().unwrap();
    drop(std::mem::replace(&mut rig, Rig::start(long)));
    rig.wait_status("the hold announced", |s| s.hold_active);
    rig.daemon.kill(libc::SIGSTOP).unwrap();
    let mut held = rig.bed.spawn_app(&AppSpec::new("Game Held").role("Held")).unwrap();
    // Nothing binds anything of the stopped daemon's: pw-dump still works.
    assert!(rig.bed.dump().is_ok());
    rig.watcher.wait_until(TIMEOUT, "the held stream", |log| !log.streams_of("Game Held").is_empty()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rig.watcher.log().streams_of("Game Held").iter().all(|s| s.links().next().is_none()),
        "held while the daemon is stopped (limit 60 s)"
    );
    rig.daemon.kill(libc::SIGKILL).unwrap();
    let killed = Instant::now();
    rig.wait_all_on(&["Game Held".to_owned()], 1, "speakers");
    eprintln!("daemon killed: the held stream played {:?} later", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(30), "released long before the 60 s limit");
    let _ = rig.daemon.wait_exit(TIMEOUT);
    held.stop();
}

#[test]
fn hold_active_and_the_status_hint() {
    let with = Rig::with_hook();
    assert!(!with.ask(&["status"]).contains("setup wireplumber"));
    let without = Rig::without_hook();
    let status = without.wait_status("in sync", |s| s.connected);
    assert!(!status.hold_active);
    assert!(without.ask(&["status"]).contains("pvmctl setup wireplumber"));
    without
        .bed
        .wait_until(TIMEOUT, "the daemon to say there is no hold", || {
            without.daemon.log_tail(50).contains("no routing hold")
        })
        .unwrap();
    assert!(!with.daemon.log_tail(50).contains("no routing hold"), "with the hold it says nothing of the kind");
}

#[test]
fn wireplumber_0_4_rules_win_and_the_daemon_says_it_holds_nothing() {
    let bed = TestBed::builder().stack(Stack::Pw14Wp04).sinks(&SINKS).start().unwrap();
    assert_eq!(bed.wireplumber(), WirePlumber::V0_4);
    let rig = Rig::start(bed);
    assert!(!rig.wait_status("in sync", |s| s.connected).hold_active);
    let (elsewhere, runs) = a_rule_beats_wireplumbers_memory(&rig, false);
    eprintln!("WirePlumber 0.4: {elsewhere} of {runs} streams first linked elsewhere; all ended on game");
}
