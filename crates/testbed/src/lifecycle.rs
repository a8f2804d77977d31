//! A scripted run of the daemon through every object lifecycle it sees, for
//! the memory check: the test suite runs a short [`LifecyclePlan`], the
//! benchmark a long one, both with [`run_under_memcheck`].
//!
//! What it goes through, waiting for each step to show (in the snapshot, the
//! graph or the daemon's log) before the next:
//!
//! * every request kind of the protocol, malformed ones included, pipelined
//!   and one per connection, a subscriber that reads and one that never does;
//! * rounds of fake applications started and stopped (single-stream apps
//!   routed by a config rule, a multi-stream app, a process that plays as
//!   several apps): stream nodes and their links added and removed;
//! * routing moves (`ROUTE`, `UNROUTE`, rule changes): links removed and
//!   created, `default` metadata writes;
//! * sink volume and mute, app volume and mute, the default sink;
//! * a sink created (with a route waiting for it) and destroyed;
//! * config reloads: a good file and a bad one, through `RELOAD_CONFIG`,
//!   SIGHUP and the file watch; SIGUSR1;
//! * WirePlumber restarted (the `default` metadata destroyed and recreated)
//!   and PipeWire restarted (every proxy dropped at once, reconnect), each
//!   while an application plays, with a round after the PipeWire restart.
//!
//! Not covered: a change of an output device's `Route` param (its volume on a
//! sound card). The bed has no sound card and no way to make a device with
//! `Route` params (WirePlumber's ALSA monitor is off, and no SPA plugin
//! installed here makes one without hardware), so the daemon's device
//! proxies are never created here.

use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pvm_ipc::protocol::quote;
use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;

use crate::app::{AppSpec, FakeApp};
use crate::bed::TestBed;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::memcheck::{Memcheck, MemcheckOutcome, MEMCHECK_EXIT_TIMEOUT};
use crate::snapshot::{open_snapshot, wait_status};

/// The sinks of the bed; the first is the default.
pub const LIFECYCLE_SINKS: [&str; 3] = ["speakers", "game", "chat"];

/// How long one request may take to be answered under valgrind.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one attempt to set the default sink waits for the snapshot to
/// show it, before the request is sent again (see `set_default_until_shown`).
const DEFAULT_SINK_ATTEMPT: Duration = Duration::from_secs(5);

/// How many lines of the daemon's log a failed step quotes.
const LOG_TAIL_LINES: usize = 30;

/// How long a run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePlan {
    /// Rounds of applications started, moved and stopped before the
    /// PipeWire restart; one more round follows it.
    pub rounds: usize,
    /// Single-stream applications per round, routed by the config rule.
    pub ruled_apps: usize,
    /// Streams of each round's multi-stream application.
    pub multi_streams: usize,
    /// Applications played by each round's one process of distinct apps.
    pub distinct_apps: usize,
    /// Volume requests per round, pipelined on one connection (a burst of
    /// `Props` writes and param events).
    pub volume_burst: usize,
    /// How long each awaited condition may take.
    pub timeout: Duration,
}

impl LifecyclePlan {
    /// The test suite's form: two rounds (the restart of WirePlumber between
    /// them), then the PipeWire restart and a third.
    pub fn short() -> LifecyclePlan {
        LifecyclePlan {
            rounds: 2,
            ruled_apps: 2,
            multi_streams: 3,
            distinct_apps: 2,
            volume_burst: 40,
            timeout: Duration::from_secs(60),
        }
    }

    /// The benchmark's form: more rounds, more applications.
    pub fn long() -> LifecyclePlan {
        LifecyclePlan {
            rounds: 4,
            ruled_apps: 4,
            multi_streams: 4,
            distinct_apps: 6,
            volume_burst: 400,
            timeout: Duration::from_secs(90),
        }
    }
}

/// What a run did, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleCounts {
    /// Request lines sent (malformed ones included).
    pub requests: usize,
    /// Fake application processes started.
    pub app_processes: usize,
    /// Playback streams they opened.
    pub streams: usize,
    /// `ROUTE` and `UNROUTE` requests that moved or released an app.
    pub routing_moves: usize,
    /// Sinks created and destroyed again.
    pub sinks_created: usize,
    /// Config reloads asked for (request, SIGHUP), good and bad files.
    pub reloads: usize,
    /// Channels made, re-wired to other outputs and removed again.
    pub channels: usize,
    /// WirePlumber restarts.
    pub wireplumber_restarts: usize,
    /// PipeWire restarts.
    pub pipewire_restarts: usize,
    /// Times the daemon read the `default` metadata again and replayed
    /// events held back from it (while other clients bound the metadata).
    pub metadata_replays: usize,
}

impl fmt::Display for LifecycleCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests, {} app processes with {} streams, {} routing moves, {} sinks created and removed, \
             {} config reloads, {} channels made, re-wired and removed, {} WirePlumber and {} PipeWire restarts, \
             {} metadata replays",
            self.requests,
            self.app_processes,
            self.streams,
            self.routing_moves,
            self.sinks_created,
            self.reloads,
            self.channels,
            self.wireplumber_restarts,
            self.pipewire_restarts,
            self.metadata_replays
        )
    }
}

/// A finished run under memcheck.
#[derive(Debug, Clone)]
pub struct MemcheckRun {
    /// What valgrind said.
    pub outcome: MemcheckOutcome,
    /// What the run did.
    pub counts: LifecycleCounts,
    /// From the bed's start to valgrind's exit.
    pub elapsed: Duration,
}

/// The config the daemon starts with (and goes back to): apps named
/// `Ruled*` play to `sink`.
pub fn rule_config(sink: &str) -> String {
    format!("[[rule]]\nmatch = {{ \"application.name\" = \"Ruled*\" }}\nsink = \"{sink}\"\n")
}

/// Starts a bed with [`LIFECYCLE_SINKS`], the daemon `binary` on it under
/// memcheck, runs the lifecycle of `plan`, stops the daemon with SIGTERM and
/// returns what memcheck saw. A failed step is an error that also carries
/// memcheck's findings (a memory error is often why a step fails).
pub fn run_under_memcheck(binary: &Path, plan: &LifecyclePlan, memcheck: &Memcheck) -> Result<MemcheckRun> {
    let started = Instant::now();
    let mut bed = TestBed::start(&LIFECYCLE_SINKS)?;
    write_atomically(&bed.daemon_paths().config, &rule_config("game"))?;
    let mut daemon = bed.spawn_daemon_under_memcheck(binary, &[], memcheck)?;
    let mut lifecycle = Lifecycle::new(plan.clone(), daemon.daemon())?;
    let ran = lifecycle.run(&mut bed, daemon.daemon_mut());
    // Stop the daemon whatever happened: with clients still connected.
    let finished = daemon.finish(MEMCHECK_EXIT_TIMEOUT);
    let counts = lifecycle.counts.clone();
    drop(lifecycle);
    match (ran, finished) {
        (Ok(()), Ok(outcome)) => Ok(MemcheckRun { outcome, counts, elapsed: started.elapsed() }),
        (Ok(()), Err(e)) => Err(e),
        (Err(e), Ok(outcome)) => Err(Error::Unexpected {
            step: "the lifecycle under memcheck".into(),
            problem: format!(
                "{e}\n\n{}",
                outcome.problems().unwrap_or_else(|| format!("memcheck: {}", outcome.report))
            ),
        }),
        (Err(e), Err(finish)) => Err(Error::Unexpected {
            step: "the lifecycle under memcheck".into(),
            problem: format!("{e}\n\nthen stopping the daemon: {finish}"),
        }),
    }
}

/// The scripted run against one daemon.
pub struct Lifecycle {
    plan: LifecyclePlan,
    socket: PathBuf,
    config: PathBuf,
    log: PathBuf,
    reader: SnapshotReader,
    /// Connections kept open until the run's owner drops it: they are still
    /// there when the daemon shuts down.
    lingering: Vec<UnixStream>,
    counts: LifecycleCounts,
}

impl fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifecycle")
            .field("plan", &self.plan)
            .field("socket", &self.socket)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Lifecycle {
    /// Prepares a run against `daemon`, which must use the bed's files and
    /// have started with [`rule_config`]`("game")`.
    pub fn new(plan: LifecyclePlan, daemon: &Daemon) -> Result<Lifecycle> {
        let reader = open_snapshot(&daemon.shm, plan.timeout)?;
        Ok(Lifecycle {
            plan,
            socket: daemon.socket.clone(),
            config: daemon.config.clone(),
            log: daemon.log.clone(),
            reader,
            lingering: Vec::new(),
            counts: LifecycleCounts::default(),
        })
    }

    /// What the run has done so far.
    pub fn counts(&self) -> &LifecycleCounts {
        &self.counts
    }

    /// Runs the whole lifecycle (see the module docs).
    pub fn run(&mut self, bed: &mut TestBed, daemon: &mut Daemon) -> Result<()> {
        let sinks = LIFECYCLE_SINKS;
        self.wait("the daemon connected and in sync with every sink", |s| {
            s.running && s.connected && sinks.iter().all(|name| s.sink(name).is_some())
        })?;
        self.protocol_tour()?;
        // A WirePlumber 0.4.13 restarted alone in a bed links no stream
        // (measured): there, WirePlumber restarts after the last round, and
        // PipeWire's restart brings up a fresh one for the final round.
        let wireplumber_restart = if bed.stack().has_wireplumber_05() { 0 } else { self.plan.rounds.saturating_sub(1) };
        for round in 0..self.plan.rounds {
            self.round(bed, daemon, round)?;
            if round == wireplumber_restart {
                self.restart_wireplumber(bed)?;
            }
        }
        self.restart_pipewire(bed)?;
        self.round(bed, daemon, self.plan.rounds)
    }

    // ---- the steps -----------------------------------------------------------

    /// Every request kind, good and bad, and a few ways to use a connection.
    fn protocol_tour(&mut self) -> Result<()> {
        self.expect("PING", |a| a == "OK PONG")?;
        self.expect("VERSION", |a| a.starts_with("OK pipewire-volume-mixer-daemon "))?;
        let status = self.ok("STATUS")?;
        serde_json::from_str::<Status>(status.trim_start_matches("OK ")).map_err(|e| Error::Unexpected {
            step: "STATUS".into(),
            problem: format!("not the status JSON ({e}): {status}"),
        })?;
        self.expect("TRACE", |a| a.starts_with("OK ["))?;
        for (line, answer) in [
            ("", "ERROR empty request"),
            ("FROB", "ERROR unknown command"),
            ("PING extra", "ERROR too many arguments"),
            ("SET_DEFAULT", "ERROR missing"),
            ("SET_VOLUME game 1.5", "ERROR volume must be"),
            ("SET_APP_VOLUME x -0", "ERROR volume must be"),
            ("MUTE game maybe", "ERROR mute must be"),
            ("MUTE_APP x perhaps", "ERROR mute must be"),
            ("ROUTE \"unterminated", "ERROR unterminated quote"),
            ("ROUTE \"a\\x\" game", "ERROR invalid escape"),
            ("ROUTE ab\"c game", "ERROR quote in the middle"),
            ("ROUTE x game EXTRA", "ERROR expected CREATE_PENDING"),
            ("UNROUTE \"\"", "ERROR <app> must not be empty"),
            ("SET_VOLUME no-such-sink 0.5", "ERROR"),
            ("MUTE no-such-sink toggle", "ERROR"),
            ("SET_DEFAULT no-such-sink", "ERROR"),
            ("SET_APP_VOLUME \"No Such App\" 0.5", "ERROR"),
            ("MUTE_APP \"No Such App\" toggle", "ERROR"),
            ("ROUTE x no-such-sink", "ERROR unknown sink"),
            ("UNROUTE \"Never Routed\"", "OK not routed"),
        ] {
            self.expect(line, |a| a.starts_with(answer))?;
        }
        for (bytes, answer) in [
            (&b"\xff\xfe\n"[..], "ERROR request is not valid UTF-8"),
            (b"PI\0NG\n", "ERROR request contains a NUL byte"),
            (b"PING\rX\n", "ERROR request contains a control character"),
        ] {
            let answers = self.exchange(bytes, 1)?;
            check("a malformed request", &answers[0], |a| a.starts_with(answer))?;
        }
        self.expect("ROUTE \"Ruled Later\" later-sink CREATE_PENDING", |a| a.starts_with("OK pending"))?;
        self.expect("UNROUTE \"Ruled Later\"", |a| a == "OK")?;

        // Pipelined: three requests in one write, three answers in order.
        let answers = self.exchange(b"PING\nVERSION\nping\n", 3)?;
        check("pipelined requests", &answers.join(" | "), |_| {
            answers[0] == "OK PONG" && answers[1].starts_with("OK pipewire") && answers[2] == "OK PONG"
        })?;
        // A line far over the limit: answered, then the connection is closed
        // before the daemon has read all of it.
        let mut long = vec![b'P'; 64 * 1024];
        long.push(b'\n');
        let (answer, closed) = self.exchange_then_close(&long)?;
        check("a 64 KiB line", &answer, |a| a == "ERROR line too long" && closed)?;
        // Connections that send nothing, or half a line, then go away.
        for partial in [&b""[..], b"PIN", b"SET_VOLUME game"] {
            let mut stream = self.connect()?;
            stream.write_all(partial).map_err(|e| io_error("writing half a request", e))?;
        }
        // Many connections at once.
        let many: Vec<UnixStream> = (0..32).map(|_| self.connect()).collect::<Result<_>>()?;
        drop(many);
        self.expect("PING", |a| a == "OK PONG")?;

        // A subscriber that reads the first status and one change, then leaves,
        // and one that never reads and stays connected until the daemon stops.
        let mut subscriber = self.subscribe()?;
        let silent = self.subscribe()?.into_inner();
        let idle = self.connect()?;
        self.lingering.extend([silent, idle]);
        let first = read_line(&mut subscriber, "the first status line of SUBSCRIBE")?;
        check("the first status line of SUBSCRIBE", &first, |l| l.starts_with('{'))?;
        self.ok("SET_VOLUME game 0.7")?;
        let deadline = Instant::now() + self.plan.timeout;
        loop {
            let line = read_line(&mut subscriber, "a status line showing game at 0.7")?;
            let status: Option<Status> = serde_json::from_str(&line).ok();
            if status.as_ref().and_then(|s| s.sink("game")).is_some_and(|g| (g.volume - 0.7).abs() < 0.01) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(unexpected("SUBSCRIBE", format!("no status line showed game at 0.7; last: {line}")));
            }
        }
        Ok(())
    }

    /// Applications started, routed, changed and stopped; a sink created and
    /// destroyed; config reloads.
    fn round(&mut self, bed: &mut TestBed, daemon: &mut Daemon, round: usize) -> Result<()> {
        let plan = self.plan.clone();
        let ruled: Vec<String> = (1..=plan.ruled_apps).map(|i| format!("Ruled r{round} {i}")).collect();
        let multi = format!("Multi r{round}");
        let distinct = AppSpec::new(&format!("Many r{round}")).distinct(plan.distinct_apps);
        let mut specs: Vec<AppSpec> = ruled.iter().map(|name| AppSpec::new(name)).collect();
        specs.push(AppSpec::new(&multi).streams(plan.multi_streams));
        specs.push(distinct.clone());
        let mut apps = self.spawn_apps(bed, &specs)?;
        let others: Vec<String> = distinct.app_names();
        self.wait(&format!("round {round}: every app listed and linked, the ruled ones to game"), |s| {
            ruled.iter().all(|a| plays_to(s, a, "game", "rule"))
                && s.app(&multi).is_some_and(|a| a.streams.len() == plan.multi_streams && a.sink.is_some())
                && others.iter().all(|a| s.app(a).is_some_and(|a| a.sink.is_some()))
        })?;

        // Routing moves: every stream of the multi-stream app, then one of the distinct apps.
        for sink in ["chat", "game"] {
            self.route(&multi, sink)?;
            let streams = self.wait(&format!("{multi} routed to {sink}"), |s| plays_to(s, &multi, sink, "route"))?;
            let streams = streams.app(&multi).map(|a| a.streams.clone()).unwrap_or_default();
            bed.wait_until(plan.timeout, &format!("every stream of {multi} linked to {sink} only"), || {
                bed.dump().is_ok_and(|g| streams.iter().all(|id| g.sink_names_linked_to(*id) == [sink]))
            })?;
        }
        self.route(&others[0], "chat")?;
        self.wait(&format!("{} routed to chat", others[0]), |s| plays_to(s, &others[0], "chat", "route"))?;
        for app in [&multi, &others[0]] {
            self.expect(&format!("UNROUTE {}", quote(app)), |a| a == "OK")?;
            self.counts.routing_moves += 1;
            self.wait(&format!("{app} handed back to the session manager"), |s| {
                s.app(app).is_some_and(|a| a.target.is_none() && a.target_source == "session-manager")
            })?;
        }

        // App volume and mute.
        self.ok(&format!("SET_APP_VOLUME {} 0.5", quote(&multi)))?;
        self.wait(&format!("{multi} at 0.5"), |s| s.app(&multi).is_some_and(|a| (a.volume - 0.5).abs() < 0.01))?;
        for (action, muted) in [("toggle", true), ("false", false)] {
            self.ok(&format!("MUTE_APP {} {action}", quote(&multi)))?;
            self.wait(&format!("{multi} muted: {muted}"), |s| s.app(&multi).is_some_and(|a| a.muted == muted))?;
        }

        // A burst of volume requests, then sink volume, mute and the default sink.
        let burst: String = (0..plan.volume_burst)
            .map(|i| {
                let value = 0.2 + (i % 50) as f64 * 0.01;
                match i % 2 {
                    0 => format!("SET_VOLUME game {value:.2}\n"),
                    _ => format!("SET_APP_VOLUME {} {value:.2}\n", quote(&multi)),
                }
            })
            .collect();
        let answers = self.exchange(burst.as_bytes(), plan.volume_burst)?;
        if let Some(refused) = answers.iter().find(|a| !a.starts_with("OK")) {
            return Err(unexpected("a burst of volume requests", format!("unexpected answer: {refused}")));
        }
        let volume = [0.3, 0.6][round % 2];
        self.ok(&format!("SET_VOLUME game {volume}"))?;
        self.wait(&format!("game at {volume}"), |s| s.sink("game").is_some_and(|g| (g.volume - volume).abs() < 0.01))?;
        for (action, muted) in [("true", true), ("toggle", false)] {
            self.ok(&format!("MUTE game {action}"))?;
            self.wait(&format!("game muted: {muted}"), |s| s.sink("game").is_some_and(|g| g.muted == muted))?;
        }
        for sink in ["chat", "speakers"] {
            self.ok(&format!("SET_DEFAULT {sink}"))?;
            self.wait(&format!("{sink} the default sink"), |s| s.default_sink.as_deref() == Some(sink))?;
        }
        self.metadata_storm(bed)?;

        // A sink created while a route waits for it, then destroyed.
        let extra = format!("extra{round}");
        let first = &ruled[0];
        self.expect(&format!("ROUTE {} {extra} CREATE_PENDING", quote(first)), |a| a.starts_with("OK pending"))?;
        self.counts.routing_moves += 1;
        bed.create_sink(&extra)?;
        self.counts.sinks_created += 1;
        self.wait(&format!("{first} on the new sink {extra}"), |s| plays_to(s, first, &extra, "route"))?;
        self.ok(&format!("SET_VOLUME {extra} 0.5"))?;
        self.wait(&format!("{extra} at 0.5"), |s| s.sink(&extra).is_some_and(|x| (x.volume - 0.5).abs() < 0.01))?;
        bed.remove_sink(&extra)?;
        self.wait(&format!("{extra} gone"), |s| {
            s.sink(&extra).is_none() && s.app(first).is_some_and(|a| a.sink.as_deref() != Some(extra.as_str()))
        })?;
        self.expect(&format!("UNROUTE {}", quote(first)), |a| a == "OK")?;
        self.counts.routing_moves += 1;
        self.wait(&format!("{first} back on game by the rule"), |s| plays_to(s, first, "game", "rule"))?;

        self.reload_configs(daemon, &ruled, round)?;
        self.channel_tour(&ruled)?;

        for app in &mut apps {
            app.stop();
        }
        let names: Vec<String> = specs.iter().flat_map(AppSpec::app_names).collect();
        self.wait(&format!("round {round}: every app gone"), |s| names.iter().all(|n| s.app(n).is_none()))?;
        Ok(())
    }

    /// `SET_DEFAULT` while other clients keep binding the `default` metadata
    /// (PipeWire holds its events back from the daemon meanwhile): every
    /// answer is OK and shown, until the daemon has replayed held-back events
    /// at least once (or 200 requests).
    fn metadata_storm(&mut self, bed: &TestBed) -> Result<()> {
        const REPLAYED: &str = "read the default metadata again";
        let before = self.log_count(REPLAYED);
        let result = bed.while_binding_metadata(3, || {
            let mut result = Ok(());
            for sink in ["chat", "speakers"].iter().cycle().take(200) {
                result = self.ok(&format!("SET_DEFAULT {sink}")).and_then(|_| {
                    self.wait(&format!("{sink} the default sink, other clients binding the metadata"), |s| {
                        s.default_sink.as_deref() == Some(*sink)
                    })
                    .map(drop)
                });
                if result.is_err() || (*sink == "speakers" && self.log_count(REPLAYED) > before) {
                    break;
                }
            }
            result
        });
        result?;
        self.counts.metadata_replays += self.log_count(REPLAYED) - before;
        Ok(())
    }

    /// A good config by request, a bad one by request, the first one back by
    /// SIGHUP (and the file watch, which sees every rename); SIGUSR1.
    fn reload_configs(&mut self, daemon: &mut Daemon, ruled: &[String], round: usize) -> Result<()> {
        write_atomically(&self.config, &rule_config("chat"))?;
        self.expect("RELOAD_CONFIG", |a| a == "OK")?;
        self.counts.reloads += 1;
        self.wait("the ruled apps moved to chat by the new rule", |s| {
            ruled.iter().all(|a| plays_to(s, a, "chat", "rule"))
        })?;

        // Not TOML, or TOML with an invalid pattern: both are refused.
        let bad = if round % 2 == 0 {
            "[[rule]]\nmatch = { \"application.name\" = \"Ruled*\" }\nsink =\n".to_owned()
        } else {
            rule_config("game").replace("Ruled*", "[Ruled")
        };
        write_atomically(&self.config, &bad)?;
        self.expect("RELOAD_CONFIG", |a| a.starts_with("ERROR ") && a.contains("config.toml:"))?;
        self.counts.reloads += 1;
        self.expect("STATUS", |a| {
            serde_json::from_str::<Status>(a.trim_start_matches("OK "))
                .is_ok_and(|s| ruled.iter().all(|r| plays_to(&s, r, "chat", "rule")))
        })?;

        let sighups = self.log_count("SIGHUP: reloading");
        write_atomically(&self.config, &rule_config("game"))?;
        daemon.kill(libc::SIGHUP)?;
        self.counts.reloads += 1;
        self.wait("the ruled apps back on game after SIGHUP", |s| {
            ruled.iter().all(|a| plays_to(s, a, "game", "rule"))
        })?;
        self.wait_log("the daemon to log the SIGHUP", "SIGHUP: reloading", sighups + 1)?;

        let dumps = self.log_count("(SIGUSR1)");
        daemon.kill(libc::SIGUSR1)?;
        self.wait_log("the daemon to dump its trace on SIGUSR1", "(SIGUSR1)", dumps + 1)
    }

    /// A channel made by a reload (a sink and two links of ours), played
    /// into by a ruled app, moved between outputs with `OUTPUT`, unlinked,
    /// and removed by the next reload: every object the daemon makes, made
    /// and destroyed.
    fn channel_tour(&mut self, ruled: &[String]) -> Result<()> {
        let with_channel =
            format!("{}\n[[channel]]\nname = \"mc-channel\"\noutput = \"default\"\n", rule_config("mc-channel"));
        let output_is =
            |s: &Status, want: Option<&str>| s.sink("mc-channel").is_some_and(|c| c.output.as_deref() == want);
        write_atomically(&self.config, &with_channel)?;
        self.expect("RELOAD_CONFIG", |a| a == "OK")?;
        self.counts.reloads += 1;
        self.wait("the channel made, wired to the default and played into", |s| {
            output_is(s, Some(LIFECYCLE_SINKS[0])) && ruled.iter().all(|a| plays_to(s, a, "mc-channel", "rule"))
        })?;
        self.expect(&format!("OUTPUT mc-channel {}", LIFECYCLE_SINKS[2]), |a| a == "OK")?;
        self.wait("the channel on its new output", |s| output_is(s, Some(LIFECYCLE_SINKS[2])))?;
        self.expect("OUTPUT mc-channel none", |a| a == "OK")?;
        self.wait("the channel unlinked", |s| output_is(s, None))?;
        self.expect("OUTPUT mc-channel game", |a| a == "OK")?;
        self.expect("OUTPUT mc-channel mc-channel", |a| a.starts_with("ERROR "))?;
        self.expect("OUTPUT mc-channel default", |a| a == "OK")?;
        write_atomically(&self.config, &rule_config("game"))?;
        self.expect("RELOAD_CONFIG", |a| a == "OK")?;
        self.counts.reloads += 1;
        self.counts.channels += 1;
        self.wait("the channel removed and the ruled apps back on game", |s| {
            s.sink("mc-channel").is_none() && ruled.iter().all(|a| plays_to(s, a, "game", "rule"))
        })?;
        Ok(())
    }

    /// WirePlumber stopped and started while an app plays: the `default`
    /// metadata is destroyed and a new one appears.
    fn restart_wireplumber(&mut self, bed: &mut TestBed) -> Result<()> {
        let app = "Survivor wireplumber";
        let _player = self.spawn_apps(bed, &[AppSpec::new(app)])?;
        self.wait(&format!("{app} listed"), |s| s.app(app).is_some_and(|a| a.sink.is_some()))?;
        bed.restart_wireplumber()?;
        self.counts.wireplumber_restarts += 1;
        self.set_default_until_shown("chat")?;
        // On 0.4 (see `run`) the new `default` metadata is exercised by
        // SET_DEFAULT only: the restarted WirePlumber would not link the route.
        if bed.stack().has_wireplumber_05() {
            self.route(app, "game")?;
            self.wait(&format!("{app} routed to game through the new metadata"), |s| {
                plays_to(s, app, "game", "route")
            })?;
        }
        self.set_default_until_shown("speakers")
    }

    /// PipeWire stopped and started while an app plays: the daemon loses every
    /// proxy at once, reconnects and binds everything again.
    fn restart_pipewire(&mut self, bed: &mut TestBed) -> Result<()> {
        let app = "Survivor pipewire";
        let _player = self.spawn_apps(bed, &[AppSpec::new(app).streams(2)])?;
        self.wait(&format!("{app} listed"), |s| s.app(app).is_some_and(|a| a.streams.len() == 2))?;
        bed.restart_pipewire()?;
        self.counts.pipewire_restarts += 1;
        let sinks = LIFECYCLE_SINKS;
        self.wait("the daemon reconnected with every sink, the old app gone", |s| {
            s.connected && sinks.iter().all(|n| s.sink(n).is_some()) && s.app(app).is_none()
        })?;
        self.set_default_until_shown("chat")?;
        self.set_default_until_shown("speakers")
    }

    // ---- helpers -------------------------------------------------------------

    /// Starts fake applications and counts them.
    fn spawn_apps(&mut self, bed: &TestBed, specs: &[AppSpec]) -> Result<Vec<FakeApp>> {
        let apps = specs.iter().map(|spec| bed.spawn_app(spec)).collect::<Result<Vec<_>>>()?;
        self.counts.app_processes += specs.len();
        self.counts.streams += specs.iter().map(|s| s.streams).sum::<usize>();
        Ok(apps)
    }

    /// `ROUTE app sink`, answered `OK`.
    fn route(&mut self, app: &str, sink: &str) -> Result<()> {
        self.expect(&format!("ROUTE {} {sink}", quote(app)), |a| a == "OK")?;
        self.counts.routing_moves += 1;
        Ok(())
    }

    /// `SET_DEFAULT sink` until the snapshot shows it. Right after a
    /// WirePlumber or PipeWire restart the daemon may not have bound the new
    /// `default` metadata yet, and a write made before that is dropped (issue
    /// 11, item 3); once the default changes, the metadata is bound.
    fn set_default_until_shown(&mut self, sink: &str) -> Result<()> {
        let deadline = Instant::now() + self.plan.timeout;
        loop {
            // "not connected" is a fine answer while the daemon reconnects.
            let answer = self.request(format!("SET_DEFAULT {sink}").as_bytes())?;
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = DEFAULT_SINK_ATTEMPT.min(left);
            let what = format!("{sink} the default sink (last answer: {answer})");
            match wait_status(&self.reader, attempt, &what, |s| s.default_sink.as_deref() == Some(sink)) {
                Ok(_) => return Ok(()),
                Err(Error::Timeout { .. }) if Instant::now() < deadline => continue,
                Err(e) => return Err(self.with_log(e)),
            }
        }
    }

    /// Waits until the snapshot satisfies `condition`; returns that status.
    fn wait(&self, what: &str, condition: impl FnMut(&Status) -> bool) -> Result<Status> {
        wait_status(&self.reader, self.plan.timeout, what, condition).map_err(|e| self.with_log(e))
    }

    /// How many lines of the daemon's log contain `needle`.
    fn log_count(&self, needle: &str) -> usize {
        fs::read_to_string(&self.log).map(|text| text.matches(needle).count()).unwrap_or(0)
    }

    /// Waits until `needle` appears `count` times in the daemon's log.
    fn wait_log(&self, what: &str, needle: &str, count: usize) -> Result<()> {
        crate::wait::wait_until(self.plan.timeout, what, || self.log_count(needle) >= count)
            .map_err(|e| self.with_log(e))
    }

    /// Sends `line`, expects an answer starting with `OK`, returns it.
    fn ok(&mut self, line: &str) -> Result<String> {
        self.expect(line, |a| a.starts_with("OK"))
    }

    /// Sends `line` on a new connection; the answer must satisfy `good`.
    fn expect(&mut self, line: &str, good: impl FnOnce(&str) -> bool) -> Result<String> {
        let answer = self.request(format!("{line}\n").as_bytes())?;
        check(line, &answer, good).map_err(|e| self.with_log(e))?;
        Ok(answer)
    }

    /// Sends `bytes` (one request, newline included, or not) on a new
    /// connection and returns the answer line.
    fn request(&mut self, bytes: &[u8]) -> Result<String> {
        let mut bytes = bytes.to_vec();
        if bytes.last() != Some(&b'\n') {
            bytes.push(b'\n');
        }
        Ok(self.exchange(&bytes, 1)?.remove(0))
    }

    /// Writes `bytes` on a new connection and reads `answers` lines.
    fn exchange(&mut self, bytes: &[u8], answers: usize) -> Result<Vec<String>> {
        self.counts.requests += answers;
        let stream = self.connect()?;
        let mut writer = &stream;
        writer.write_all(bytes).map_err(|e| io_error("sending a request", e))?;
        let mut reader = BufReader::new(&stream);
        (0..answers).map(|_| read_line(&mut reader, "an answer")).collect::<Result<_>>().map_err(|e| self.with_log(e))
    }

    /// Writes `bytes`, reads one answer, and tells whether the daemon then
    /// closed the connection (end of file or a reset, never another line).
    fn exchange_then_close(&mut self, bytes: &[u8]) -> Result<(String, bool)> {
        self.counts.requests += 1;
        let stream = self.connect()?;
        // The daemon may hang up before it has everything.
        match (&stream).write_all(bytes) {
            Err(e) if !matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                return Err(io_error("sending a long line", e));
            }
            _ => {}
        }
        let mut reader = BufReader::new(&stream);
        let answer = read_line(&mut reader, "the answer to a long line")?;
        let mut rest = Vec::new();
        let closed = match reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
        };
        Ok((answer, closed))
    }

    /// A connection that has sent `SUBSCRIBE` and read its `OK`.
    fn subscribe(&mut self) -> Result<BufReader<UnixStream>> {
        self.counts.requests += 1;
        let stream = self.connect()?;
        (&stream).write_all(b"SUBSCRIBE\n").map_err(|e| io_error("sending SUBSCRIBE", e))?;
        let mut reader = BufReader::new(stream);
        let answer = read_line(&mut reader, "the answer to SUBSCRIBE")?;
        check("SUBSCRIBE", &answer, |a| a == "OK")?;
        Ok(reader)
    }

    fn connect(&self) -> Result<UnixStream> {
        let stream = UnixStream::connect(&self.socket)
            .map_err(|e| io_error(&format!("connecting to {}", self.socket.display()), e))?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(|e| io_error("setting a read timeout", e))?;
        Ok(stream)
    }

    /// `error` with the end of the daemon's log appended.
    fn with_log(&self, error: Error) -> Error {
        let tail = crate::dirs::tail_of(&self.log, LOG_TAIL_LINES).unwrap_or_default();
        Error::Unexpected { step: error.to_string(), problem: format!("the daemon's last lines:\n{tail}") }
    }
}

/// Whether the app plays to `sink` because of a target of `source` there.
fn plays_to(status: &Status, app: &str, sink: &str, source: &str) -> bool {
    status.app(app).is_some_and(|a| {
        a.sink.as_deref() == Some(sink) && a.target.as_deref() == Some(sink) && a.target_source == source
    })
}

/// An error unless `answer` satisfies `good`.
fn check(step: &str, answer: &str, good: impl FnOnce(&str) -> bool) -> Result<()> {
    if good(answer) {
        Ok(())
    } else {
        Err(unexpected(step, format!("unexpected answer: {answer}")))
    }
}

fn unexpected(step: &str, problem: String) -> Error {
    Error::Unexpected { step: step.to_owned(), problem }
}

fn io_error(context: &str, source: std::io::Error) -> Error {
    Error::io(context, source)
}

/// One line (without its `\n`); an error at end of file.
fn read_line(reader: &mut impl BufRead, what: &str) -> Result<String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Err(unexpected(what, "the daemon closed the connection".into())),
        Ok(_) => Ok(line.trim_end_matches('\n').to_owned()),
        Err(e) => Err(io_error(&format!("reading {what}"), e)),
    }
}

/// Writes `path` through a temporary file and a rename, so the daemon's file
/// watch never reads half a file.
fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let staged = path.with_extension("toml.new");
    crate::dirs::write(&staged, contents)?;
    fs::rename(&staged, path).map_err(|e| io_error(&format!("renaming {} to {}", staged.display(), path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_config_routes_ruled_apps() {
        let text = rule_config("chat");
        assert!(text.contains("\"application.name\" = \"Ruled*\""), "{text}");
        assert!(text.contains("sink = \"chat\""), "{text}");
    }

    #[test]
    fn the_long_plan_does_more_than_the_short_one() {
        let (short, long) = (LifecyclePlan::short(), LifecyclePlan::long());
        assert!(long.rounds > short.rounds && long.ruled_apps >= short.ruled_apps);
        // Two rounds before the PipeWire restart: both bad-config kinds.
        assert!(short.rounds >= 2 && short.multi_streams >= 2 && short.distinct_apps >= 2);
    }

    #[test]
    fn plays_to_needs_sink_target_and_source() {
        let json = r#"{"generation":2,"running":true,"connected":true,"overflow":false,"truncated":false,
            "default_sink":"speakers","total_sinks":1,"total_apps":1,"sinks":[],
            "apps":[{"name":"A","sink":"game","streams":[5],"active":true,"volume":1.0,"muted":false,
                     "target":"game","target_source":"rule","movable":true}]}"#;
        let status: Status = serde_json::from_str(json).unwrap();
        assert!(plays_to(&status, "A", "game", "rule"));
        assert!(!plays_to(&status, "A", "game", "route"));
        assert!(!plays_to(&status, "A", "chat", "rule"));
        assert!(!plays_to(&status, "B", "game", "rule"));
    }
}
