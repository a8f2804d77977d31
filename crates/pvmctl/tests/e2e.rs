//! `pvmctl` end to end: every subcommand against a real daemon on a real
//! PipeWire (the test bed with the sinks `speakers` (default), `game`, `chat`
//! and `music`), checking the exit status, the output and the effect in
//! PipeWire itself (`pw-dump`), not only in the daemon's snapshot.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;
use testbed::{AppSpec, Daemon, FakeApp, TestBed};

/// Generous deadline for anything that involves PipeWire or the daemon.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The bed every test runs on; the first sink is the default.
const SINKS: [&str; 4] = ["speakers", "game", "chat", "music"];

/// SIGTERM (the daemon's normal stop signal).
const SIGTERM: i32 = 15;

/// The part of every "not running" message that says how to start the daemon.
const HOW_TO_START: &str =
    "start it with `systemctl --user start pipewire-volume-mixer` or run `pipewire-volume-mixer-daemon`";

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

    /// Runs `pvmctl args` against the daemon.
    fn run(&self, args: &[&str]) -> Output {
        self.bed.pvmctl(&self.daemon, args).unwrap()
    }

    /// Runs `pvmctl args`, which must exit 0, and returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(code(&out), 0, "pvmctl {args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "pvmctl {args:?} wrote to stderr");
        stdout(&out)
    }

    /// Runs `pvmctl args`, which must exit with `expected`, and returns its standard error.
    fn fails(&self, args: &[&str], expected: i32) -> String {
        let out = self.run(args);
        assert_eq!(code(&out), expected, "pvmctl {args:?}: stdout {:?}, stderr {:?}", stdout(&out), stderr(&out));
        stderr(&out)
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

    /// Waits until PipeWire shows every channel of the sink `name` at
    /// `linear` (within 1e-4) and its mute flag at `muted`.
    fn wait_pw_sink(&self, name: &str, linear: f32, muted: bool) {
        self.wait_pw(&format!("sink {name}"), || self.bed.node_volume(name).ok(), linear, muted);
    }

    /// [`Rig::wait_pw_sink`] for the stream node `id`.
    fn wait_pw_stream(&self, id: u32, linear: f32, muted: bool) {
        let probe = || self.bed.dump().ok()?.node(id)?.volume();
        self.wait_pw(&format!("stream {id}"), probe, linear, muted);
    }

    fn wait_pw(&self, what: &str, mut probe: impl FnMut() -> Option<(Vec<f32>, bool)>, linear: f32, muted: bool) {
        let mut last = None;
        let result =
            self.bed.wait_until(TIMEOUT, &format!("PipeWire to show {what} at {linear}, muted {muted}"), || {
                last = probe();
                last.as_ref().is_some_and(|(channels, m)| {
                    !channels.is_empty() && channels.iter().all(|c| (c - linear).abs() < 1e-4) && *m == muted
                })
            });
        if let Err(e) = result {
            panic!("{e}; PipeWire last reported {last:?}\ndaemon log:\n{}", self.daemon.log_tail(30));
        }
    }

    /// Waits until every one of `streams` is linked to `sink` and nothing else.
    fn wait_linked_only_to(&self, streams: &[u32], sink: &str) {
        for &stream in streams {
            self.bed
                .wait_until(TIMEOUT, &format!("stream {stream} linked to {sink} only"), || {
                    self.bed.sink_names_linked_to(stream) == [sink]
                })
                .unwrap();
        }
    }

    /// Starts an app and waits until the daemon lists it with all its streams.
    fn spawn_app(&self, spec: &AppSpec) -> (FakeApp, Vec<u32>) {
        let mut app = self.bed.spawn_app(spec).unwrap();
        let streams = app.wait_for_streams(TIMEOUT).unwrap();
        let name = spec.name.clone();
        self.wait_status(&format!("{name} listed with {} streams", streams.len()), |s| {
            s.app(&name).is_some_and(|a| a.streams.len() == streams.len())
        });
        (app, streams)
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("pvmctl exited (not killed by a signal)")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

// ---- sinks -----------------------------------------------------------------------

/// `volume SINK VALUE` sets the cubic volume (PipeWire holds its cube on
/// every channel), `volume SINK` prints it as a percentage, and `+5%` /
/// `-0.1` step from the current value: 0.5 + 5% gives 0.55, i.e. 0.166375 linear.
#[test]
fn volume_sets_prints_and_steps_a_sinks_volume() {
    let rig = Rig::start();
    assert_eq!(rig.ok(&["volume", "game", "0.5"]), "");
    rig.wait_pw_sink("game", 0.125, false);
    rig.wait_status("game at 0.5", |s| s.sink("game").is_some_and(|g| g.volume == 0.5));
    assert_eq!(rig.ok(&["volume", "game"]), "50%\n");

    for (args, cubic) in [(["volume", "game", "+5%"], 0.55f32), (["volume", "game", "-0.1"], 0.45)] {
        assert_eq!(rig.ok(&args), "", "{args:?}");
        rig.wait_pw_sink("game", cubic.powi(3), false);
        // The next step starts from the value the snapshot shows.
        rig.wait_status(&format!("game at {cubic}"), |s| {
            s.sink("game").is_some_and(|g| (g.volume - f64::from(cubic)).abs() < 1e-4)
        });
    }
    assert_eq!(rig.ok(&["volume", "game"]), "45%\n");
    assert_eq!(rig.ok(&["volume", "game", "25%"]), "");
    rig.wait_pw_sink("game", 0.015625, false);
    assert_eq!(rig.ok(&["volume", "game", "1"]), "");
    rig.wait_pw_sink("game", 1.0, false);
    for other in ["speakers", "chat", "music"] {
        assert_eq!(rig.pw_sink(other), (vec![1.0, 1.0], false), "{other} untouched");
    }
}

/// `mute SINK on|off|toggle` sets PipeWire's mute flag of the sink, and
/// `mute SINK` prints `on` or `off`.
#[test]
fn mute_sets_toggles_and_prints_a_sinks_mute() {
    let rig = Rig::start();
    for (state, muted) in [("on", true), ("off", false), ("toggle", true), ("toggle", false)] {
        assert_eq!(rig.ok(&["mute", "game", state]), "", "{state}");
        rig.wait_pw_sink("game", 1.0, muted);
        // `toggle` flips what the daemon knows: wait until it knows this step.
        rig.wait_status(&format!("game muted {muted}"), |s| s.sink("game").is_some_and(|g| g.muted == muted));
        assert_eq!(rig.ok(&["mute", "game"]), if muted { "on\n" } else { "off\n" });
    }
    assert_eq!(rig.pw_sink("chat"), (vec![1.0, 1.0], false), "other sinks untouched");
}

/// `default SINK` makes the sink PipeWire's default sink.
#[test]
fn default_changes_pipewires_default_sink() {
    let rig = Rig::start();
    assert_eq!(rig.bed.default_sink_name().as_deref(), Some("speakers"));
    let out = rig.run(&["default", "chat"]);
    assert_eq!((code(&out), stdout(&out), stderr(&out)), (0, String::new(), String::new()));
    rig.bed
        .wait_until(TIMEOUT, "PipeWire's default sink to become chat", || {
            rig.bed.default_sink_name().as_deref() == Some("chat")
        })
        .unwrap();
    rig.wait_status("chat the default in the snapshot", |s| s.default_sink.as_deref() == Some("chat"));
}

// ---- apps --------------------------------------------------------------------------

/// `app-volume` and `app-mute` reach both streams of a two-stream app in
/// PipeWire, print the current value without one, and step like `volume`.
#[test]
fn app_volume_and_app_mute_reach_every_stream() {
    const APP: &str = "Music Player";
    let rig = Rig::start();
    let (_app, streams) = rig.spawn_app(&AppSpec::new(APP).binary("music-player").streams(2));
    assert_eq!(streams.len(), 2);

    assert_eq!(rig.ok(&["app-volume", APP, "0.5"]), "");
    for &id in &streams {
        rig.wait_pw_stream(id, 0.125, false);
    }
    rig.wait_status("the app at 0.5", |s| s.app(APP).is_some_and(|a| a.volume == 0.5));
    assert_eq!(rig.ok(&["app-volume", APP]), "50%\n");
    assert_eq!(rig.ok(&["app-volume", APP, "+10%"]), "");
    for &id in &streams {
        rig.wait_pw_stream(id, 0.216, false);
    }
    rig.wait_status("the app at 0.6", |s| s.app(APP).is_some_and(|a| (a.volume - 0.6).abs() < 1e-4));

    for (state, muted) in [("on", true), ("toggle", false), ("toggle", true), ("off", false)] {
        assert_eq!(rig.ok(&["app-mute", APP, state]), "", "{state}");
        for &id in &streams {
            rig.wait_pw_stream(id, 0.216, muted);
        }
        rig.wait_status(&format!("the app muted {muted}"), |s| s.app(APP).is_some_and(|a| a.muted == muted));
        assert_eq!(rig.ok(&["app-mute", APP]), if muted { "on\n" } else { "off\n" });
    }
    for sink in SINKS {
        assert_eq!(rig.pw_sink(sink), (vec![1.0, 1.0], false), "{sink} untouched");
    }
}

/// `route APP SINK` moves the app's live streams to the sink in PipeWire and
/// remembers the route; `unroute APP` hands the app back to the session
/// manager (a new stream plays on the default sink) and says `not routed`
/// the second time; `--create-pending` accepts a sink that does not exist yet.
#[test]
fn route_and_unroute_move_an_apps_streams() {
    const APP: &str = "Music Player";
    let rig = Rig::start();
    let spec = AppSpec::new(APP).binary("music-player").streams(2);
    let (_first, streams) = rig.spawn_app(&spec);
    rig.wait_linked_only_to(&streams, "speakers");

    assert_eq!(rig.ok(&["route", APP, "chat"]), "");
    rig.wait_linked_only_to(&streams, "chat");
    let status = rig.wait_status("the app routed to chat", |s| {
        s.app(APP).is_some_and(|a| a.target.as_deref() == Some("chat") && a.target_source == "route")
    });
    assert_eq!(status.app(APP).unwrap().sink.as_deref(), Some("chat"));
    let routes = fs::read_to_string(&rig.daemon.state).unwrap();
    assert!(routes.contains(APP) && routes.contains("chat"), "the route is saved: {routes}");

    assert_eq!(rig.ok(&["unroute", APP]), "");
    rig.wait_status("the app handed back to the session manager", |s| {
        s.app(APP).is_some_and(|a| a.target.is_none() && a.target_source == "session-manager")
    });
    let mut second = rig.bed.spawn_app(&AppSpec::new(APP).binary("music-player")).unwrap();
    let later = second.wait_for_streams(TIMEOUT).unwrap();
    rig.wait_linked_only_to(&later, "speakers");
    assert_eq!(rig.ok(&["unroute", APP]), "not routed\n");

    assert_eq!(rig.ok(&["route", "Later", "later", "--create-pending"]), "pending: sink later does not exist yet\n");
}

// ---- the daemon ------------------------------------------------------------------

/// `reload` makes the daemon re-read its config: a rule added to the file
/// moves a playing app in PipeWire; a broken file is refused with exit
/// status 1 and the daemon's `file:line:column: problem` message.
#[test]
fn reload_rereads_the_config() {
    let rig = Rig::start();
    let (_game, streams) = rig.spawn_app(&AppSpec::new("Game Of Life").binary("game-of-life"));
    rig.wait_linked_only_to(&streams, "speakers");

    fs::write(&rig.daemon.config, "[[rule]]\nmatch = { \"application.name\" = \"Game*\" }\nsink = \"game\"\n").unwrap();
    assert_eq!(rig.ok(&["reload"]), "");
    rig.wait_linked_only_to(&streams, "game");
    rig.wait_status("the app routed by the rule", |s| {
        s.app("Game Of Life").is_some_and(|a| a.target.as_deref() == Some("game") && a.target_source == "rule")
    });

    fs::write(&rig.daemon.config, "[[rule]]\nmatch = 42\n").unwrap();
    let err = rig.fails(&["reload"], 1);
    let prefix = format!("pvmctl: {}:", rig.daemon.config.display());
    assert!(err.starts_with(&prefix), "{err}");
    let position: Vec<&str> = err[prefix.len()..].splitn(3, ':').collect();
    assert!(
        position.len() == 3 && position[..2].iter().all(|n| n.parse::<u32>().is_ok()),
        "file:line:column: problem, got {err}"
    );
    // The previous config stays in force.
    rig.wait_status("the rule still in force", |s| {
        s.app("Game Of Life").is_some_and(|a| a.target.as_deref() == Some("game"))
    });
}

/// `ping` prints the daemon's `PONG`.
#[test]
fn ping_prints_pong() {
    let rig = Rig::start();
    assert_eq!(rig.ok(&["ping"]), "PONG\n");
}

/// `stats` prints the daemon's stats file as aligned `pvm_...` series and values.
#[test]
fn stats_prints_the_daemons_metrics() {
    let rig = Rig::start();
    rig.bed.wait_until(TIMEOUT, "the stats file", || rig.daemon.stats.exists()).unwrap();
    let shown = rig.ok(&["stats"]);
    for series in
        ["pvm_publishes_total", "pvm_events_total{kind=\"node_added\"}", "pvm_rss_bytes", "pvm_uptime_seconds"]
    {
        assert!(shown.lines().any(|l| l.split_whitespace().next() == Some(series)), "no {series} in:\n{shown}");
    }
    for line in shown.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(line.starts_with("pvm_") && words.len() == 2, "not `series  value`: {line:?}");
        assert!(words[1].parse::<f64>().is_ok(), "not a number: {line:?}");
    }
}

/// `trace` pretty-prints the daemon's recent events: a JSON array holding,
/// among others, the nodes it saw appear.
#[test]
fn trace_prints_recent_events() {
    let rig = Rig::start();
    let shown = rig.ok(&["trace"]);
    assert!(shown.lines().count() > 1, "pretty-printed: {shown}");
    let events: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let events = events.as_array().expect("an array");
    assert!(events.iter().any(|e| e["kind"] == "node_added"), "{shown}");
    assert!(events.iter().all(|e| e["time"].is_f64() && e["kind"].is_string()), "{shown}");
}

/// `status` prints the sinks and apps as a table, `status --json` the
/// documented object on one line; both agree with the graph.
#[test]
fn status_and_status_json_show_sinks_and_apps() {
    let rig = Rig::start();
    let (_app, streams) = rig.spawn_app(&AppSpec::new("Firefox").binary("firefox"));
    rig.wait_status("Firefox on speakers", |s| s.app("Firefox").is_some_and(|a| a.sink.as_deref() == Some("speakers")));

    let text = rig.ok(&["status"]);
    assert!(text.starts_with("daemon: running, connected to PipeWire (generation "), "{text}");
    for sink in SINKS {
        assert!(text.lines().any(|l| l.split_whitespace().any(|w| w == sink)), "no {sink} in:\n{text}");
    }
    let firefox = text
        .lines()
        .find(|l| l.trim_start().starts_with("Firefox"))
        .unwrap_or_else(|| panic!("no Firefox in:\n{text}"));
    assert!(firefox.contains("speakers") && firefox.contains(&streams[0].to_string()), "{firefox}");

    let json = rig.ok(&["status", "--json"]);
    assert_eq!(json.lines().count(), 1, "one line: {json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in ["generation", "connected", "sinks", "apps", "overflow"] {
        assert!(v.get(key).is_some(), "no {key} in {json}");
    }
    assert_eq!(v["connected"], true);
    assert_eq!(v["overflow"], false);
    for sink in v["sinks"].as_array().unwrap() {
        let name = sink["name"].as_str().unwrap();
        assert_eq!(sink["id"].as_u64().map(|id| id as u32), rig.bed.node_id(name), "{name}'s id");
    }
    let app = &v["apps"][0];
    assert_eq!(app["name"], "Firefox");
    assert_eq!(app["streams"], serde_json::json!(streams));
}

/// A running `pvmctl watch --json`, its lines read on a thread. Dropping it
/// kills and reaps the process, whether the test passed or not.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    fn start(rig: &Rig) -> Watch {
        let mut command = rig.bed.pvmctl_command(&rig.daemon, &["watch", "--json"]).unwrap();
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    return;
                }
            }
        });
        Watch { child, lines }
    }

    /// The next line, parsed.
    fn next(&self) -> Status {
        let line = self.lines.recv_timeout(TIMEOUT).expect("a line from pvmctl watch --json");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Skips lines until one satisfies `condition`, and returns it.
    fn next_where(&self, what: &str, condition: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self.next();
            if condition(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "no line with {what}");
        }
    }

    /// Whether the process is still running.
    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Stops it and returns what it wrote on stderr.
    fn stop(mut self) -> String {
        self.child.kill().unwrap();
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        err
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn volume_of(status: &Status, sink: &str) -> Option<f64> {
    status.sink(sink).map(|s| s.volume)
}

/// `watch --json` prints the status at once and another line after a change.
#[test]
fn watch_json_prints_a_line_after_a_change() {
    let rig = Rig::start();
    let watch = Watch::start(&rig);
    assert_eq!(volume_of(&watch.next(), "game"), Some(1.0));

    assert_eq!(rig.ok(&["volume", "game", "0.5"]), "");
    watch.next_where("game at 0.5", |s| volume_of(s, "game") == Some(0.5));
    assert_eq!(watch.stop(), "", "watch wrote to stderr");
}

/// `watch --json` outlives the daemon: it shows the stopped daemon, waits
/// while a new one (same files) starts and initialises the snapshot, and
/// prints the first change made through the new daemon.
#[test]
fn watch_json_survives_a_daemon_restart() {
    let mut rig = Rig::start();
    let mut watch = Watch::start(&rig);
    let first = watch.next();
    assert!(first.running);
    assert_eq!(volume_of(&first, "game"), Some(1.0));

    rig.daemon.kill(SIGTERM).unwrap();
    assert!(rig.daemon.wait_exit(TIMEOUT).is_some_and(|s| s.success()), "the daemon exits on SIGTERM");
    watch.next_where("the daemon stopped", |s| !s.running);
    assert!(watch.is_running(), "watch goes on after the daemon stopped");

    let (daemon, reader) = rig.bed.spawn_daemon_in_sync(&[]).unwrap();
    rig.daemon = daemon;
    rig.reader = reader;
    assert_eq!(rig.ok(&["volume", "game", "30%"]), "");
    let changed = watch.next_where("game at 30% from the new daemon", |s| {
        s.running && volume_of(s, "game").is_some_and(|v| (v - 0.3).abs() < 1e-4)
    });
    assert_eq!(changed.sinks.len(), SINKS.len(), "{changed:?}");
    assert!(watch.is_running(), "watch is still running");
    assert_eq!(watch.stop(), "", "watch wrote to stderr");
}

/// `completions`, `man` and the hidden `complete-names` (the live sink and
/// app names, for shell completion) work against a running daemon.
#[test]
fn completions_man_and_complete_names() {
    let rig = Rig::start();
    let (_app, _) = rig.spawn_app(&AppSpec::new("Music Player"));
    assert!(rig.ok(&["completions", "bash"]).contains("pvmctl"));
    assert!(rig.ok(&["man"]).contains(".TH pvmctl"));
    let mut sinks: Vec<String> = rig.ok(&["complete-names", "sinks"]).lines().map(str::to_owned).collect();
    sinks.sort();
    let mut expected: Vec<&str> = SINKS.to_vec();
    expected.sort();
    assert_eq!(sinks, expected);
    assert_eq!(rig.ok(&["complete-names", "apps"]), "Music Player\n");
}

// ---- exit statuses -----------------------------------------------------------------

/// A request the daemon refuses exits 1 with the daemon's message on
/// stderr; PipeWire is left as it was.
#[test]
fn refused_requests_exit_1_with_the_daemons_message() {
    let rig = Rig::start();
    let before: Vec<(Vec<f32>, bool)> = SINKS.iter().map(|s| rig.pw_sink(s)).collect();
    for args in [
        &["volume", "nosuchsink", "0.5"][..],
        &["mute", "nosuchsink", "on"][..],
        &["default", "nosuchsink"][..],
        &["route", "Some App", "nosuchsink"][..],
    ] {
        let err = rig.fails(args, 1);
        assert!(err.starts_with("pvmctl: unknown sink nosuchsink (known: "), "{args:?}: {err}");
        assert!(SINKS.iter().all(|s| err.contains(s)), "{args:?} lists the sinks: {err}");
    }
    for args in [&["app-volume", "Nobody", "0.5"][..], &["app-mute", "Nobody", "on"][..]] {
        assert_eq!(rig.fails(args, 1), "pvmctl: unknown app Nobody\n", "{args:?}");
    }
    // The getters read the snapshot and say the same.
    let err = rig.fails(&["volume", "nosuchsink"], 1);
    assert!(err.starts_with("pvmctl: unknown sink nosuchsink (known: "), "{err}");
    assert_eq!(rig.fails(&["app-mute", "Nobody"], 1), "pvmctl: unknown app Nobody\n");

    let after: Vec<(Vec<f32>, bool)> = SINKS.iter().map(|s| rig.pw_sink(s)).collect();
    assert_eq!(after, before);
    assert_eq!(rig.bed.default_sink_name().as_deref(), Some("speakers"));
}

/// Bad usage exits 2 before anything is sent: out-of-range or malformed
/// volumes (`150%`, `1.5`, `1e0`, `NaN`), unknown mute words, missing arguments.
#[test]
fn bad_usage_exits_2_and_sends_nothing() {
    let rig = Rig::start();
    for args in [
        &["volume", "game", "150%"][..],
        &["volume", "game", "1.5"][..],
        &["volume", "game", "1e0"][..],
        &["volume", "game", "NaN"][..],
        &["app-volume", "Music Player", "-"][..],
        &["mute", "game", "maybe"][..],
        &["route", "only-an-app"][..],
        &["volume"][..],
        &["frobnicate"][..],
    ] {
        let err = rig.fails(args, 2);
        assert!(!err.is_empty(), "{args:?} says why");
    }
    let err = rig.fails(&["volume", "game", "150%"], 2);
    assert!(err.contains("150% is above the maximum (1.0 or 100%)"), "{err}");
    // Nothing reached the daemon: after one `ping` it has served one request.
    assert_eq!(rig.ok(&["ping"]), "PONG\n");
    let requests = testbed::wait_for(TIMEOUT, "the stats file to count the ping", || {
        stat(&rig.daemon, "pvm_requests_total").filter(|&n| n >= 1.0)
    })
    .unwrap();
    assert_eq!(requests, 1.0, "requests the daemon served");
    assert_eq!(rig.pw_sink("game"), (vec![1.0, 1.0], false));
}

/// With the daemon stopped, commands exit 3 and say how to start it; `status`
/// still prints the last state it published.
#[test]
fn a_stopped_daemon_exits_3_and_says_how_to_start_it() {
    let mut rig = Rig::start();
    rig.daemon.kill(SIGTERM).unwrap();
    let status = rig.daemon.wait_exit(TIMEOUT).expect("the daemon exits on SIGTERM");
    assert!(status.success(), "{status}");

    for args in [
        &["ping"][..],
        &["volume", "game", "0.5"][..],
        &["volume", "game", "+5%"][..],
        &["volume", "game"][..],
        &["mute", "game", "on"][..],
        &["default", "chat"][..],
        &["route", "a", "chat"][..],
        &["reload"][..],
        &["trace"][..],
    ] {
        let err = rig.fails(args, 3);
        assert!(err.starts_with("pvmctl: the daemon is not running ("), "{args:?}: {err}");
        assert!(err.contains(HOW_TO_START), "{args:?}: {err}");
    }
    let out = rig.run(&["status"]);
    assert_eq!(code(&out), 3);
    assert!(stdout(&out).starts_with("daemon: not running"), "{}", stdout(&out));
    assert!(stderr(&out).contains(HOW_TO_START), "{}", stderr(&out));
}

/// The value of a sample in the daemon's stats file, if the file and the sample are there.
fn stat(daemon: &Daemon, name: &str) -> Option<f64> {
    let text = fs::read_to_string(&daemon.stats).ok()?;
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
