//! The routing scenario's bed: one [`Setup`], a [`GraphWatcher`], the
//! daemon with the rule if the setup has it, and the ways of starting apps
//! and waiting for their streams to settle.

use anyhow::{bail, Result};
use pvm_ipc::client::Client;
use pvm_ipc::protocol::{Request, Response};
use testbed::{AppSpec, Daemon, FakeApp, GraphWatcher, StreamHistory, TestBed, WatchLog};

use super::{Setup, APPS_PER_ROUND, REMEMBERED_SINK, RULE_SINK, STREAMS_PER_APP};
use crate::scenarios::{GAME_RULE, SINKS, TIMEOUT};

/// Where the record stood: streams and links recorded later are new.
#[derive(Clone, Copy)]
struct Mark {
    streams: usize,
    links: usize,
}

/// A bed of one [`Setup`] with [`SINKS`], its watcher, and the daemon with
/// [`GAME_RULE`] if the setup has it.
pub struct Rig {
    watcher: GraphWatcher,
    daemon: Option<Daemon>,
    /// What the daemon's snapshot said once it was in sync.
    pub hold_active: bool,
    bed: TestBed,
}

impl Rig {
    pub fn start(setup: Setup) -> Result<Rig> {
        let bed = TestBed::builder().stack(setup.stack).sinks(&SINKS).hold_hook(setup.hook).start()?;
        let watcher = GraphWatcher::start(&bed.pipewire_socket())?;
        let (mut daemon, mut hold_active) = (None, false);
        if setup.daemon {
            let path = bed.daemon_paths().config;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, GAME_RULE)?;
            let (started, reader) = bed.spawn_daemon_in_sync(&[])?;
            // The hook announces itself once it sees the daemon's metadata.
            let expected = setup.holds();
            hold_active =
                testbed::wait_status(&reader, TIMEOUT, "hold_active as expected", |s| s.hold_active == expected)?
                    .hold_active;
            daemon = Some(started);
        }
        Ok(Rig { watcher, daemon, hold_active, bed })
    }

    fn mark(&self) -> Mark {
        self.watcher.with(|log| Mark { streams: log.streams.len(), links: log.links.len() })
    }

    /// Starts `count` single-stream apps named "`prefix` i", one at a time,
    /// each once the previous one has settled on `sink` and stopped; returns
    /// their streams' histories.
    pub fn paced(&self, prefix: &str, sink: &str, count: usize) -> Result<Vec<StreamHistory>> {
        let mut streams = Vec::with_capacity(count);
        for i in 0..count {
            let name = format!("{prefix} {i}");
            let mark = self.mark();
            let app = self.bed.spawn_app(&AppSpec::new(&name))?;
            let settled = self.wait_settled(mark, std::slice::from_ref(&name), 1, sink);
            self.stop(mark, vec![app])?;
            streams.extend(settled?);
        }
        Ok(streams)
    }

    /// Starts up to [`APPS_PER_ROUND`] processes with up to
    /// [`STREAMS_PER_APP`] streams each, all at once, at most `left` streams
    /// in all; waits until every stream is linked only to the rule's sink and
    /// returns their histories, after stopping them.
    pub fn round(&self, round: usize, left: usize) -> Result<Vec<StreamHistory>> {
        let mark = self.mark();
        let total = left.min(APPS_PER_ROUND * STREAMS_PER_APP);
        let names: Vec<String> = (0..total.div_ceil(STREAMS_PER_APP)).map(|i| format!("Game R{round}-{i}")).collect();
        let mut apps = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let streams = (total - i * STREAMS_PER_APP).min(STREAMS_PER_APP);
            apps.push(self.bed.spawn_app(&AppSpec::new(name).streams(streams))?);
        }
        let settled = self.wait_settled(mark, &names, total, RULE_SINK);
        self.stop(mark, apps)?;
        settled
    }

    /// WirePlumber made to remember [`REMEMBERED_SINK`] for an app (ROUTE,
    /// a stream, stop, UNROUTE), then `starts` new starts of it: how many
    /// were first linked elsewhere than the rule's sink.
    pub fn memory(&self, starts: usize) -> Result<usize> {
        const APP: &str = "Game Memory";
        let spec = AppSpec::new(APP).role("Memory");
        let Some(daemon) = &self.daemon else { bail!("no daemon in this bed") };
        let mut client = Client::connect(&daemon.socket)?;
        let mut ask = |request: Request| match client.request(&request)? {
            Response::Ok(_) => Ok(()),
            Response::Error(e) => bail!("{request:?}: {e}"),
        };
        ask(Request::Route { app: APP.into(), sink: REMEMBERED_SINK.into(), create_pending: false })?;
        let mark = self.mark();
        let app = self.bed.spawn_app(&spec)?;
        let settled = self.wait_settled(mark, &[APP.to_owned()], 1, REMEMBERED_SINK);
        self.stop(mark, vec![app])?;
        settled?;
        ask(Request::Unroute { app: APP.into() })?;

        let mut elsewhere = 0;
        for _ in 0..starts {
            let mark = self.mark();
            let app = self.bed.spawn_app(&spec)?;
            let settled = self.wait_settled(mark, &[APP.to_owned()], 1, RULE_SINK);
            self.stop(mark, vec![app])?;
            for stream in settled? {
                if stream.links().next() != Some(RULE_SINK) {
                    elsewhere += 1;
                    eprintln!("WP remembers {REMEMBERED_SINK}: {}", stream.timeline().join(" | "));
                }
            }
        }
        Ok(elsewhere)
    }

    /// Waits until `count` streams of `apps` recorded since `mark` are in
    /// the graph, each linked and only to `sink`; returns their histories.
    fn wait_settled(&self, mark: Mark, apps: &[String], count: usize, sink: &str) -> Result<Vec<StreamHistory>> {
        let what = format!("{count} streams of {} app(s) from {:?} on {sink}", apps.len(), apps.first());
        Ok(self.watcher.wait_for(TIMEOUT, &what, |log| settled(log, mark, apps, count, sink))?)
    }

    /// Stops `apps` and waits until every stream recorded since `mark` is gone.
    fn stop(&self, mark: Mark, apps: Vec<FakeApp>) -> Result<()> {
        for mut app in apps {
            app.stop();
        }
        self.watcher
            .wait_until(TIMEOUT, "the streams gone", |log| log.streams[mark.streams..].iter().all(|s| !s.is_alive()))?;
        Ok(())
    }
}

/// The streams of `apps` recorded since `mark`, if there are `count` of
/// them in the graph and each is linked only to `sink`. Looks at what came
/// after `mark` only, so it stays cheap however long the record grows (the
/// watcher's thread waits while it runs).
fn settled(log: &WatchLog, mark: Mark, apps: &[String], count: usize, sink: &str) -> Option<Vec<StreamHistory>> {
    let sink = log.node_named(sink)?.id;
    let ours: Vec<&StreamHistory> = log.streams[mark.streams..]
        .iter()
        .filter(|s| s.is_alive() && s.app_name.as_ref().is_some_and(|name| apps.contains(name)))
        .collect();
    if ours.len() != count {
        return None;
    }
    let live_links = || log.links[mark.links..].iter().filter(|l| l.removed.is_none());
    let only_on_sink = ours.iter().all(|s| {
        let mut links = live_links().filter(|l| l.output_node == s.node).peekable();
        links.peek().is_some() && links.all(|l| l.input_node == sink)
    });
    only_on_sink.then(|| ours.into_iter().cloned().collect())
}
