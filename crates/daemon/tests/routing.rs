//! The routing engine against a real PipeWire + WirePlumber (the test bed
//! with the sinks `speakers` (default), `game`, `chat` and `music`).
//!
//! A [`GraphWatcher`] records every link each playback stream ever gets and
//! every `default` metadata write about it, straight from PipeWire's registry
//! and metadata events, so a link to the wrong sink is caught however short
//! it lived, and the daemon's writes can be counted exactly.

use std::fs;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use pvm_ipc::client::Client;
use pvm_ipc::protocol::{MuteAction, Request, Response};
use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::{AppStatus, Status};
use testbed::{AppSpec, Daemon, FakeApp, GraphWatcher, StreamEvent, StreamHistory, TestBed, WatchLog, WatchOptions};

/// Generous deadline for anything that involves PipeWire.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The bed every test runs on; the first sink is the default.
const SINKS: [&str; 4] = ["speakers", "game", "chat", "music"];

/// The rule of the issue: every "Game..." application plays on `game`.
const GAME_RULE: &str = "[[rule]]\nmatch = { \"application.name\" = \"Game*\" }\nsink = \"game\"\n";

const GAME_APP: &str = "Game Of Life";

// ---- setup -------------------------------------------------------------------

/// A bed, a watcher on it, and a daemon started with `config` (written to
/// its config path first; `None` leaves the file missing) and in sync.
struct Rig {
    watcher: GraphWatcher,
    daemon: Daemon,
    reader: SnapshotReader,
    bed: TestBed,
    _turn: Turn,
}

/// Beds of this file run side by side, except the one of the zero-misroute
/// test, which runs alone (see that test).
static BEDS: RwLock<()> = RwLock::new(());

/// A test's hold on [`BEDS`].
#[allow(dead_code)] // held for its drop only
enum Turn {
    Shared(RwLockReadGuard<'static, ()>),
    Alone(RwLockWriteGuard<'static, ()>),
}

impl Rig {
    fn start(config: Option<&str>) -> Rig {
        Rig::start_with(config, Turn::Shared(BEDS.read().unwrap_or_else(|e| e.into_inner())))
    }

    /// A rig with no other bed of this file running beside it.
    fn start_alone(config: Option<&str>) -> Rig {
        Rig::start_with(config, Turn::Alone(BEDS.write().unwrap_or_else(|e| e.into_inner())))
    }

    fn start_with(config: Option<&str>, turn: Turn) -> Rig {
        let bed = TestBed::start(&SINKS).unwrap();
        let watcher = GraphWatcher::start_with(&bed.pipewire_socket(), WatchOptions::default().metadata()).unwrap();
        if let Some(text) = config {
            fs::write(bed.daemon_paths().config, text).unwrap();
        }
        let (daemon, reader) = spawn_in_sync(&bed);
        Rig { watcher, daemon, reader, bed, _turn: turn }
    }

    /// Stops the daemon (SIGTERM, as a drop would) and starts a new one with
    /// the same files.
    fn restart_daemon(&mut self) {
        self.daemon.kill(libc::SIGTERM).unwrap();
        assert!(self.daemon.wait_exit(TIMEOUT).is_some_and(|s| s.success()), "the daemon exits on SIGTERM");
        let (daemon, reader) = spawn_in_sync(&self.bed);
        self.daemon = daemon;
        self.reader = reader;
    }

    fn client(&self) -> Client {
        Client::connect(&self.daemon.socket).unwrap()
    }

    /// Sends one request on a fresh connection and returns the answer.
    fn request(&self, request: Request) -> Response {
        self.client().request(&request).unwrap()
    }

    /// Waits (on the snapshot's futex) until `condition` holds for the status.
    fn wait_status(&self, what: &str, condition: impl Fn(&Status) -> bool) -> Status {
        wait_snapshot(&self.reader, what, condition)
    }

    fn spawn_app(&self, spec: &AppSpec) -> (FakeApp, Vec<u32>) {
        let mut app = self.bed.spawn_app(spec).unwrap();
        let streams = app.wait_for_streams(TIMEOUT).unwrap();
        (app, streams)
    }

    /// Waits until every one of `streams` is linked to `sink` and nothing else
    /// (as `pw-dump` shows the graph now).
    fn wait_linked_only_to(&self, streams: &[u32], sink: &str) {
        for &stream in streams {
            let waited = self.bed.wait_until(TIMEOUT, &format!("stream {stream} linked to {sink} only"), || {
                self.bed.sink_names_linked_to(stream) == [sink]
            });
            if let Err(e) = waited {
                panic!(
                    "{e}\nlinked now to: {:?}\nwatcher: {:#?}\ndaemon log:\n{}",
                    self.bed.sink_names_linked_to(stream),
                    self.watcher.log().stream(stream),
                    self.daemon.log_tail(30)
                );
            }
        }
    }

    /// Waits until `condition` holds for the watcher's record and returns a copy of it.
    fn wait_watched(&self, what: &str, condition: impl FnMut(&WatchLog) -> bool) -> WatchLog {
        self.watcher
            .wait_until(TIMEOUT, what, condition)
            .unwrap_or_else(|e| panic!("{e}\ndaemon log:\n{}", self.daemon.log_tail(40)))
    }

    /// A round trip with PipeWire: the watcher has heard everything sent before.
    fn sync_watcher(&self) {
        self.watcher.sync().unwrap_or_else(|e| panic!("{e}"));
    }

    /// The watcher's history of the live stream `node`.
    fn history(&self, node: u32) -> StreamHistory {
        self.watcher.log().stream(node).cloned().unwrap_or_else(|| panic!("the watcher never saw stream {node}"))
    }

    /// `pvmctl status --json`, parsed.
    fn pvmctl_status(&self) -> Status {
        let out = self.bed.pvmctl(&self.daemon, &["status", "--json"]).unwrap();
        assert!(out.status.success(), "pvmctl status --json: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// Spawns the daemon and waits until its snapshot says it is connected and
/// knows every sink of the bed (it publishes only once in sync).
fn spawn_in_sync(bed: &TestBed) -> (Daemon, SnapshotReader) {
    bed.spawn_daemon_in_sync(&[]).unwrap()
}

fn wait_snapshot(reader: &SnapshotReader, what: &str, condition: impl Fn(&Status) -> bool) -> Status {
    testbed::wait_status(reader, TIMEOUT, what, condition).unwrap_or_else(|e| panic!("{e}"))
}

fn route(app: &str, sink: &str) -> Request {
    Request::Route { app: app.into(), sink: sink.into(), create_pending: false }
}

fn app_has_target(status: &Status, app: &str, target: Option<&str>, source: &str) -> bool {
    status.app(app).is_some_and(|a| a.target.as_deref() == target && a.target_source == source)
}

/// The value of a counter in the daemon's stats file, if the file is there.
fn stat(daemon: &Daemon, name: &str) -> Option<f64> {
    let text = fs::read_to_string(&daemon.stats).ok()?;
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Asserts that every `target.object` write the watcher saw for a stream is
/// one of `expected`, in order, none twice (so a re-write or a wrong write
/// fails). The watcher may miss writes: PipeWire forwards a metadata event
/// about an object only to clients it considers up to date with that object,
/// and a test-side client is not always. The tests assert the daemon's own
/// count of writes and PipeWire's final value beside this.
fn assert_writes_seen(history: &StreamHistory, expected: &[String], what: &str) {
    let seen = history.target_object_writes();
    let mut rest = expected.iter();
    let in_order = seen.iter().all(|w| rest.any(|e| e == w));
    assert!(in_order, "{what}: expected (a part of) {expected:?} in order, saw {seen:?}: {history:#?}");
}

/// `target.object` of `stream` in the `default` metadata, as `pw-dump` shows it now.
fn pinned_in_pipewire(bed: &TestBed, stream: u32) -> Option<String> {
    let graph = bed.dump().unwrap();
    graph.metadata_value("default", stream, "target.object").map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A misrouted stream: linked at some time to a sink other than `sink`.
fn misrouted(history: &StreamHistory, sink: &str) -> bool {
    history.links().next().is_none() || history.links().any(|s| s != sink)
}

// ---- rules -------------------------------------------------------------------

/// Twenty "Game Of Life" streams, one after the other, each recorded from its
/// first to its last link.
///
/// What the daemon controls is asserted strictly: every stream gets its pin
/// (one `target.object` write, the `game` serial) before any link of it exists,
/// and every stream ends up on `game`. Whether WirePlumber reads the pin before
/// it picks a target is a race inside PipeWire and WirePlumber: the pin goes
/// daemon -> PipeWire -> WirePlumber while WirePlumber makes its own round trip
/// for the stream's info, and on this 2-core machine it loses about one
/// stream in 50-100 (each then on the default sink for 2-8 ms before
/// WirePlumber moves it). The test counts those and fails above 2 of 20 (4 on
/// WirePlumber 0.4, which has no hold: see the end of the test), which
/// a daemon that pinned late (on the node's info instead of its global, or at
/// a normal priority) exceeds; the count is printed on every run.
///
/// Each run's app has its own name ("Game Of Life 0", "Game Of Life 1", ...,
/// all matching `Game*`): WirePlumber remembers the last target of a stream by
/// its `application.name` and restores it itself, so with one name for all
/// runs, every run after the first would be routed by WirePlumber's memory
/// instead of by the daemon, and the count would hide the daemon's misses.
///
/// It runs with no other bed of this file beside it: with nine more PipeWire +
/// WirePlumber + daemon sets competing for 2 cores (a load no desktop has),
/// the race above is lost far more often.
#[test]
fn rule_routed_streams_are_pinned_before_any_link_and_end_on_their_sink_20_runs() {
    const RUNS: usize = 20;
    let rig = Rig::start_alone(Some(GAME_RULE));
    for run in 0..RUNS {
        // Waits on the watcher, not on `pw-dump`: a dump every few
        // milliseconds would load PipeWire just when the stream appears.
        let name = format!("{GAME_APP} {run}");
        let mut app = rig.bed.spawn_app(&AppSpec::new(&name).binary("game-of-life")).unwrap();
        rig.wait_watched(&format!("run {run}: the stream linked to game"), |log| {
            log.streams_of(&name).first().is_some_and(|h| h.links().any(|s| s == "game"))
        });
        app.stop();
        rig.wait_watched(&format!("run {run}: the stream gone"), |log| {
            log.streams_of(&name).first().is_some_and(|h| !h.is_alive())
        });
    }
    rig.sync_watcher();
    let log = rig.watcher.log();
    let histories: Vec<&StreamHistory> =
        log.streams.iter().filter(|s| s.app_name.as_deref().is_some_and(|n| n.starts_with(GAME_APP))).collect();
    assert_eq!(histories.len(), RUNS, "one stream per run: {histories:#?}");
    let game_serial = log.serial_of("game").expect("the game sink's serial").to_owned();
    let mut pins_seen = 0;
    for h in &histories {
        let name = h.app_name.as_deref().unwrap_or("?");
        assert_writes_seen(h, std::slice::from_ref(&game_serial), &format!("{name}: one pin, to game"));
        let pinned =
            h.events.iter().position(|e| matches!(e, StreamEvent::Metadata { key, .. } if key == "target.object"));
        let linked = h.events.iter().position(|e| matches!(e, StreamEvent::Linked { .. }));
        if pinned.is_some() {
            pins_seen += 1;
            assert!(pinned < linked, "{name}: pinned before its first link: {h:#?}");
        }
        assert_eq!(h.links().last(), Some("game"), "{name}: ends on game: {h:#?}");
    }
    // One decision per stream, by the daemon's own count (the watcher may
    // miss a pin written before it acknowledged the stream, see
    // `assert_writes_seen`; the count cannot).
    rig.bed
        .wait_until(TIMEOUT, "the stats file to count 20 decisions", || {
            stat(&rig.daemon, "pvm_metadata_writes_total") == Some(RUNS as f64)
        })
        .unwrap_or_else(|e| panic!("{e}: {:?}", stat(&rig.daemon, "pvm_metadata_writes_total")));
    eprintln!("rule routing: the watcher saw {pins_seen} of {RUNS} pins before any link");
    let misroutes: Vec<&&StreamHistory> = histories.iter().filter(|h| misrouted(h, "game")).collect();
    eprintln!("rule routing: {} of {RUNS} streams misrouted", misroutes.len());
    let timelines: Vec<String> = misroutes
        .iter()
        .map(|h| {
            format!(
                "{:?} (node {}):\n    {}",
                h.app_name.as_deref().unwrap_or("?"),
                h.node,
                h.timeline().join("\n    ")
            )
        })
        .collect();
    // WirePlumber 0.4 runs without the hold, and on PipeWire 0.3.65 it wins
    // the race more often: the benchmark measured 2 of 200 (PipeWire 1.4) and
    // 12 of 200 (0.3.65) streams started one at a time linked elsewhere
    // first, so above 2 of 20 happens there about once in ten runs by chance.
    let allowed = if rig.bed.stack().has_wireplumber_05() { 2 } else { 4 };
    assert!(
        misroutes.len() <= allowed,
        "{} of {RUNS} streams were linked to another sink first (at most {allowed} on {}):\n{}",
        misroutes.len(),
        rig.bed.stack(),
        timelines.join("\n")
    );
}

/// The nice level of process `pid` (field 19 of `/proc/PID/stat`).
fn nice_of(pid: u32) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may hold spaces: count from its closing parenthesis.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(16).unwrap().parse().unwrap()
}

/// WirePlumber renices itself to -11; a daemon that is not at least as
/// favoured loses the CPU when a stream appears, and WirePlumber links the
/// stream before the pin arrives (the misroutes the test above counts).
#[test]
fn daemon_runs_ahead_of_the_session_manager() {
    let rig = Rig::start(None);
    let wireplumber = rig.bed.pids()[2];
    let wireplumber_nice = nice_of(wireplumber);
    assert!(wireplumber_nice < 0, "WirePlumber reniced itself: {wireplumber_nice}");
    let daemon_nice = nice_of(rig.daemon.pid());
    assert_eq!(daemon_nice, -15, "the daemon asked for nice -15");
    assert!(
        daemon_nice < wireplumber_nice,
        "the daemon ({daemon_nice}) is favoured over WirePlumber ({wireplumber_nice})"
    );
}

// ---- ROUTE / UNROUTE -----------------------------------------------------------

#[test]
fn route_moves_live_and_later_streams_survives_a_restart_and_unroute_returns_to_default() {
    const APP: &str = "Music Player";
    let mut rig = Rig::start(None);
    let spec = AppSpec::new(APP).binary("music-player").role("Music");
    let (_two, first_streams) = rig.spawn_app(&spec.clone().streams(2));
    assert_eq!(first_streams.len(), 2);
    rig.wait_linked_only_to(&first_streams, "speakers");

    assert_eq!(rig.request(route(APP, "chat")), Response::Ok(None));
    rig.wait_linked_only_to(&first_streams, "chat");
    rig.wait_status("Music Player routed to chat", |s| app_has_target(s, APP, Some("chat"), "route"));

    let (_third, third_streams) = rig.spawn_app(&spec);
    rig.wait_linked_only_to(&third_streams, "chat");

    rig.restart_daemon();
    let status = rig.wait_status("the restarted daemon to know the route", |s| {
        app_has_target(s, APP, Some("chat"), "route") && s.app(APP).is_some_and(|a| a.streams.len() == 3)
    });
    assert_eq!(status.app(APP).unwrap().sink.as_deref(), Some("chat"));
    let all: Vec<u32> = first_streams.iter().chain(&third_streams).copied().collect();
    rig.wait_linked_only_to(&all, "chat");
    let (_fourth, fourth_streams) = rig.spawn_app(&spec);
    rig.wait_linked_only_to(&fourth_streams, "chat");

    assert_eq!(rig.request(Request::Unroute { app: APP.into() }), Response::Ok(None));
    rig.wait_status("Music Player handed back to the session manager", |s| {
        app_has_target(s, APP, None, "session-manager")
    });
    let (_fifth, fifth_streams) = rig.spawn_app(&spec);
    rig.wait_linked_only_to(&fifth_streams, "speakers");
    assert_eq!(rig.history(fifth_streams[0]).sinks_ever_linked(), ["speakers"], "a stream started after UNROUTE");
    assert!(rig.history(fifth_streams[0]).target_object_writes().is_empty(), "no pin after UNROUTE");
    let graph = rig.bed.dump().unwrap();
    assert_eq!(graph.metadata_value("default", fifth_streams[0], "target.object"), None, "no pin in PipeWire either");
}

#[test]
fn rapid_switching_200_routes_all_answer_ok_and_end_on_the_last_sink() {
    const APP: &str = "Switcher";
    const ROUTES: usize = 200;
    // Ends on `chat`, not on the default sink, so the end state proves something.
    const ORDER: [&str; 4] = ["game", "music", "speakers", "chat"];
    let rig = Rig::start(None);
    let (_app, streams) = rig.spawn_app(&AppSpec::new(APP).binary("switcher"));
    rig.wait_linked_only_to(&streams, "speakers");

    let mut client = rig.client();
    let mut answers = Vec::with_capacity(ROUTES);
    for i in 0..ROUTES {
        answers.push(client.request(&route(APP, ORDER[i % ORDER.len()])).unwrap());
    }
    let refused: Vec<(usize, &Response)> =
        answers.iter().enumerate().filter(|(_, r)| **r != Response::Ok(None)).collect();
    assert!(refused.is_empty(), "answers other than OK: {refused:?}");
    let last = ORDER[(ROUTES - 1) % ORDER.len()];
    assert_eq!(last, "chat");

    rig.wait_status("the app targeted at the last sink", |s| app_has_target(s, APP, Some(last), "route"));
    rig.wait_linked_only_to(&streams, last);
    // Everything PipeWire had to say has arrived; the graph holds no other link.
    rig.sync_watcher();
    assert_eq!(rig.bed.sink_names_linked_to(streams[0]), [last], "links after the last ROUTE");
    let graph = rig.bed.dump().unwrap();
    let chat_serial = graph.node_named(last).unwrap().prop("object.serial").unwrap();
    let pinned = graph.metadata_value("default", streams[0], "target.object").map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    assert_eq!(pinned, Some(chat_serial), "target.object after the switching");
    let history = rig.history(streams[0]);
    eprintln!(
        "rapid switching: {ROUTES} ROUTEs all OK; {} target.object writes; {} link objects over time; final links {:?}",
        history.target_object_writes().len(),
        history.links().count(),
        rig.bed.sink_names_linked_to(streams[0]),
    );
}

// ---- sinks coming and going ------------------------------------------------------

#[test]
fn removed_target_sink_falls_back_to_default_and_the_app_returns_when_it_is_back() {
    let mut rig = Rig::start(Some(GAME_RULE));
    let (_app, streams) = rig.spawn_app(&AppSpec::new(GAME_APP).binary("game-of-life"));
    rig.wait_linked_only_to(&streams, "game");

    rig.bed.remove_sink("game").unwrap();
    rig.wait_linked_only_to(&streams, "speakers");
    rig.wait_status("the daemon to see game gone", |s| s.sink("game").is_none());

    rig.bed.create_sink("game").unwrap();
    rig.wait_linked_only_to(&streams, "game");
    let status =
        rig.wait_status("the app back on game", |s| s.app(GAME_APP).is_some_and(|a| a.sink.as_deref() == Some("game")));
    assert!(app_has_target(&status, GAME_APP, Some("game"), "rule"), "{}", status.to_json());
}

// ---- metadata writes ------------------------------------------------------------

/// Makes the daemon see events about the app's stream and its sink that must
/// not lead to another metadata write, and waits until it has seen them:
/// a stream volume and mute change, a sink volume change, and another app
/// coming and going.
fn stir_without_deciding(rig: &Rig, app: &str, sink: &str, round: u32) {
    let volume = 0.3 + 0.1 * round as f32;
    let mut client = rig.client();
    let ok = Response::Ok(None);
    assert_eq!(client.request(&Request::SetAppVolume { app: app.into(), volume }).unwrap(), ok);
    assert_eq!(client.request(&Request::MuteApp { app: app.into(), mute: MuteAction::Toggle }).unwrap(), ok);
    assert_eq!(client.request(&Request::SetVolume { sink: sink.into(), volume }).unwrap(), ok);
    let expected = f64::from(volume);
    rig.wait_status("the app's and the sink's new volume and mute", |s| {
        let app_ok =
            s.app(app).is_some_and(|a: &AppStatus| (a.volume - expected).abs() < 1e-3 && a.muted == (round % 2 == 0));
        let sink_ok = s.sink(sink).is_some_and(|k| (k.volume - expected).abs() < 1e-3);
        app_ok && sink_ok
    });
    let bystander = format!("Bystander {round}");
    let (mut other, _) = rig.spawn_app(&AppSpec::new(&bystander));
    rig.wait_status("the bystander", |s| s.app(&bystander).is_some());
    other.stop();
    rig.wait_status("the bystander gone", |s| s.app(&bystander).is_none());
    rig.sync_watcher();
}

#[test]
fn one_metadata_write_per_decision_and_none_in_steady_state() {
    let rig = Rig::start(Some(GAME_RULE));
    let (_app, streams) = rig.spawn_app(&AppSpec::new(GAME_APP).binary("game-of-life"));
    let stream = streams[0];
    rig.wait_linked_only_to(&streams, "game");
    rig.wait_status("the game stream playing", |s| s.app(GAME_APP).is_some_and(|a| a.active));
    let log = rig.watcher.log();
    let (game, chat) = (log.serial_of("game").unwrap().to_owned(), log.serial_of("chat").unwrap().to_owned());

    stir_without_deciding(&rig, GAME_APP, "game", 0);
    stir_without_deciding(&rig, GAME_APP, "game", 1);
    let writes = wait_counted(&rig, 6);
    let history = rig.history(stream);
    assert_writes_seen(
        &history,
        std::slice::from_ref(&game),
        &format!("one write for the rule's decision (the daemon counts {writes})"),
    );
    assert_eq!(writes, 1.0, "decisions the daemon counted");
    assert_eq!(pinned_in_pipewire(&rig.bed, stream), Some(game.clone()), "PipeWire holds the rule's pin");

    assert_eq!(rig.request(route(GAME_APP, "chat")), Response::Ok(None));
    rig.wait_linked_only_to(&streams, "chat");
    stir_without_deciding(&rig, GAME_APP, "chat", 2);
    stir_without_deciding(&rig, GAME_APP, "chat", 3);
    let history = rig.history(stream);
    assert_writes_seen(&history, &[game.clone(), chat.clone()], "one more write for the ROUTE");
    assert_eq!(pinned_in_pipewire(&rig.bed, stream), Some(chat), "PipeWire holds the ROUTE's pin");

    // The daemon's own count agrees: two decisions in all (the bystanders
    // match no rule, so nothing is decided for them).
    assert_eq!(wait_counted(&rig, 13), 2.0, "decisions the daemon counted");
}

/// Waits until the stats file counts at least `requests` control requests
/// (it is rewritten at most once a second) and returns its count of
/// metadata writes (decisions).
fn wait_counted(rig: &Rig, requests: u32) -> f64 {
    rig.bed
        .wait_until(TIMEOUT, &format!("the stats file to count {requests} requests"), || {
            stat(&rig.daemon, "pvm_requests_total").is_some_and(|n| n >= f64::from(requests))
        })
        .unwrap();
    stat(&rig.daemon, "pvm_metadata_writes_total").expect("pvm_metadata_writes_total in the stats file")
}

// ---- config reloads ---------------------------------------------------------------

#[test]
fn broken_configs_are_refused_with_their_line_and_the_old_rules_stay() {
    let rig = Rig::start(Some(GAME_RULE));
    let config = rig.daemon.config.clone();
    let path = config.display().to_string();
    let broken: [(&str, &str, &str); 4] = [
        (
            "bad TOML",
            "[[rule]]\nmatch = { \"application.name\" = \"Game*\" }\nsink = \"chat\n",
            ":3:",
        ),
        (
            "unknown key",
            "[[rule]]\nmatch = { \"application.name\" = \"Game*\" }\nsink = \"chat\"\nvolume = 0.5\n",
            ":4:1: unknown field `volume`",
        ),
        (
            "bad glob",
            "# calls\n[[rule]]\nmatch = { \"application.name\" = \"[Game\" }\nsink = \"chat\"\n",
            ":3:32: bad glob pattern \"[Game\"",
        ),
        (
            "rule naming no sink",
            "[[rule]]\nmatch = { \"application.name\" = \"Game*\" }\nsink = \"chat\"\n\n[[rule]]\nmatch = { \"media.role\" = \"Game\" }\n",
            ":5:1: rule 2 has no `sink`",
        ),
    ];
    for (what, text, expected) in broken {
        fs::write(&config, text).unwrap();
        match rig.request(Request::ReloadConfig) {
            Response::Error(message) => {
                assert!(message.starts_with(&format!("{path}:")), "{what}: {message}");
                assert!(message.contains(expected), "{what}: expected {expected:?} in {message:?}");
            }
            ok => panic!("{what}: RELOAD_CONFIG answered {ok:?}"),
        }
    }
    // The first rules still decide, for a stream started now too.
    let (_first, first_streams) = rig.spawn_app(&AppSpec::new(GAME_APP));
    rig.wait_linked_only_to(&first_streams, "game");

    // A good config by RELOAD_CONFIG: the playing stream moves, a new one follows.
    fs::write(&config, GAME_RULE.replace("\"game\"", "\"chat\"")).unwrap();
    assert_eq!(rig.request(Request::ReloadConfig), Response::Ok(None));
    rig.wait_linked_only_to(&first_streams, "chat");
    let (_second, second_streams) = rig.spawn_app(&AppSpec::new(GAME_APP));
    rig.wait_linked_only_to(&second_streams, "chat");

    // Saving the file is enough (inotify); no RELOAD_CONFIG is sent.
    let replacement = config.with_extension("toml.new");
    fs::write(&replacement, GAME_RULE.replace("\"game\"", "\"music\"")).unwrap();
    fs::rename(&replacement, &config).unwrap();
    rig.wait_linked_only_to(&first_streams, "music");
    rig.wait_linked_only_to(&second_streams, "music");
    fs::write(&config, GAME_RULE.replace("\"game\"", "\"speakers\"")).unwrap();
    rig.wait_linked_only_to(&first_streams, "speakers");
    let (_third, third_streams) = rig.spawn_app(&AppSpec::new(GAME_APP));
    rig.wait_linked_only_to(&third_streams, "speakers");
    rig.wait_status("the rule's target", |s| app_has_target(s, GAME_APP, Some("speakers"), "rule"));
}

#[test]
fn sighup_reloads_a_config_the_file_watch_cannot_see() {
    // The config path is a symlink into another directory: writing the target
    // file makes no inotify event in the watched directory, so only SIGHUP
    // can make the daemon see the change.
    let bed = TestBed::start(&SINKS).unwrap();
    let real_dir = bed.dir().join("real-config");
    fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("config.toml");
    fs::write(&real, GAME_RULE).unwrap();
    std::os::unix::fs::symlink(&real, bed.daemon_paths().config).unwrap();
    let (mut daemon, reader) = spawn_in_sync(&bed);
    let mut app = bed.spawn_app(&AppSpec::new(GAME_APP)).unwrap();
    let streams = app.wait_for_streams(TIMEOUT).unwrap();
    let linked_only_to = |sink: &str| {
        bed.wait_until(TIMEOUT, &format!("linked to {sink} only"), || bed.sink_names_linked_to(streams[0]) == [sink])
            .unwrap()
    };
    linked_only_to("game");

    fs::write(&real, GAME_RULE.replace("\"game\"", "\"music\"")).unwrap();
    daemon.kill(libc::SIGHUP).unwrap();
    linked_only_to("music");
    wait_snapshot(&reader, "the new rule's target", |s| app_has_target(s, GAME_APP, Some("music"), "rule"));
    assert!(fs::read_to_string(&daemon.log).unwrap().contains("SIGHUP"), "the reload came from SIGHUP");
}

// ---- what status reports ------------------------------------------------------------

#[test]
fn dont_move_stream_matching_a_rule_is_not_movable_and_not_pinned() {
    let rig = Rig::start(Some(GAME_RULE));
    let (_app, streams) = rig.spawn_app(&AppSpec::new(GAME_APP).prop("node.dont-move", "true"));
    rig.wait_linked_only_to(&streams, "speakers");
    rig.wait_status("the stream known", |s| s.app(GAME_APP).is_some_and(|a| !a.movable));
    let status = rig.pvmctl_status();
    let app = status.app(GAME_APP).unwrap();
    assert!(!app.movable, "{}", status.to_json());
    assert_eq!(app.sink.as_deref(), Some("speakers"));
    // Not pinned: `node.dont-move` only comes with the node's info, so a pin
    // written at the global may exist for a moment, but it is taken back.
    // Checked in PipeWire's metadata itself: on WirePlumber 0.4 the watcher
    // can miss the event of the withdrawal (see `WatchOptions::metadata`).
    let pins = || {
        let dump = rig.bed.dump().unwrap();
        ["target.object", "target.node", "pvm.target"]
            .map(|key| dump.metadata_value("default", streams[0], key).cloned())
    };
    let waited = rig.bed.wait_until(TIMEOUT, "no pin left on the stream", || pins().iter().all(Option::is_none));
    if let Err(e) = waited {
        panic!("{e}: {:?}\ndaemon log:\n{}", pins(), rig.daemon.log_tail(30));
    }
    rig.sync_watcher();
    let history = rig.history(streams[0]);
    if rig.bed.stack().has_wireplumber_05() {
        assert_eq!(history.sinks_ever_linked(), ["speakers"], "{history:#?}");
    } else {
        // Without the hold, WirePlumber 0.4.13 sometimes links the stream
        // inside the ~2 ms between the pin and its withdrawal (9 runs in 60
        // with two runs side by side on 2 cores): it may touch `game` first,
        // but must end on `speakers`.
        let ever = history.sinks_ever_linked();
        assert!(ever.iter().all(|s| s == "speakers" || s == "game") && ever.contains(&"speakers".to_owned()));
        assert_eq!(history.links().last(), Some("speakers"), "{history:#?}");
        eprintln!("WirePlumber 0.4: the dont-move stream was linked to {ever:?}");
    }
    rig.wait_status("the stream still not movable", |s| s.app(GAME_APP).is_some_and(|a| !a.movable));
    assert_eq!(rig.pvmctl_status().app(GAME_APP).unwrap().target_source, "rule", "the rule's target is still shown");
}

#[test]
fn status_json_gives_each_app_its_target_and_why() {
    let rig = Rig::start(Some(GAME_RULE));
    let (_game, game_streams) = rig.spawn_app(&AppSpec::new(GAME_APP));
    let (_music, music_streams) = rig.spawn_app(&AppSpec::new("Music Player"));
    let (_other, other_streams) = rig.spawn_app(&AppSpec::new("Bystander"));
    assert_eq!(rig.request(route("Music Player", "chat")), Response::Ok(None));
    rig.wait_linked_only_to(&game_streams, "game");
    rig.wait_linked_only_to(&music_streams, "chat");
    rig.wait_linked_only_to(&other_streams, "speakers");
    rig.wait_status("all three apps with their sinks", |s| {
        ["Game Of Life", "Music Player", "Bystander"].iter().all(|a| s.app(a).is_some_and(|a| a.sink.is_some()))
    });

    let status = rig.pvmctl_status();
    let expect = [
        (GAME_APP, Some("game"), "rule", "game"),
        ("Music Player", Some("chat"), "route", "chat"),
        ("Bystander", None, "session-manager", "speakers"),
    ];
    for (name, target, source, sink) in expect {
        let app = status.app(name).unwrap_or_else(|| panic!("{name} missing: {}", status.to_json()));
        assert_eq!(app.target.as_deref(), target, "{name}");
        assert_eq!(app.target_source, source, "{name}");
        assert_eq!(app.sink.as_deref(), Some(sink), "{name}");
        assert!(app.movable, "{name}");
    }
    // The raw JSON spells the fields as documented.
    let out = rig.bed.pvmctl(&rig.daemon, &["status", "--json"]).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bystander = json["apps"].as_array().unwrap().iter().find(|a| a["name"] == "Bystander").unwrap();
    assert_eq!(bystander["target"], serde_json::Value::Null);
    assert_eq!(bystander["target_source"], "session-manager");
}

// ---- what depends on the stack ----------------------------------------------

/// The text `pvmctl status` prints.
fn pvmctl_status_text(rig: &Rig) -> String {
    let out = rig.bed.pvmctl(&rig.daemon, &["status"]).unwrap();
    assert!(out.status.success(), "pvmctl status: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// WirePlumber 0.5 runs the hook every bed installs: the daemon sees the hold
/// announced, says so in the snapshot, and `pvmctl status` gives no hint.
#[test]
fn wp05_the_hold_is_active_and_status_gives_no_hint() {
    testbed::require_wireplumber_05();
    let rig = Rig::start(Some(GAME_RULE));
    rig.wait_status("the hold announced", |s| s.hold_active);
    assert!(!pvmctl_status_text(&rig).contains("setup wireplumber"));
    let (_app, streams) = rig.spawn_app(&AppSpec::new(GAME_APP).binary("game-of-life"));
    rig.wait_linked_only_to(&streams, "game");
}

/// WirePlumber 0.4 cannot run the hook: the daemon says it holds nothing (the
/// snapshot's `hold_active` is false, `pvmctl status` and the log say why)
/// and still routes by its pin alone.
#[test]
fn wp04_no_hold_is_shown_and_rules_route_by_the_pin_alone() {
    let stack = testbed::require_wireplumber_04();
    let rig = Rig::start(Some(GAME_RULE));
    assert_eq!(rig.bed.stack(), stack);
    let status = rig.wait_status("in sync", |s| s.connected);
    assert!(!status.hold_active, "no hold on {stack}");
    assert!(pvmctl_status_text(&rig).contains("pvmctl setup wireplumber"), "status hints at the hold");
    rig.bed
        .wait_until(TIMEOUT, "the daemon to log that there is no hold", || {
            rig.daemon.log_tail(50).contains("no routing hold")
        })
        .unwrap();
    let (_app, streams) = rig.spawn_app(&AppSpec::new(GAME_APP).binary("game-of-life"));
    rig.wait_linked_only_to(&streams, "game");
    assert!(!rig.wait_status("still in sync", |s| s.connected).hold_active);
}
