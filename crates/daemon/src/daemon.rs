//! The daemon's state and behaviour, without PipeWire: graph events and
//! control requests come in, PipeWire actions and snapshots go out.

use std::path::PathBuf;
use std::time::Instant;

use pvm_ipc::layout::Snapshot;
use pvm_ipc::protocol::{MuteAction, OutputChoice, Request, Response};
use pvm_ipc::status::Status;

use crate::channels::{self, ChannelAction, Wiring};
use crate::config::{self, Config};
use crate::expect::Expect;
use crate::metadata_view::default_sink_name;
use crate::model::{volume, Channels, GraphEvent, Mixer};
use crate::route_store::RouteStore;
use crate::router::{Policy, RouteAction, Router};
use crate::stats::{EventKind, Stats};
use crate::trace::Trace;
use std::collections::HashMap;

/// Something to do in PipeWire.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A routing pin change.
    Route(RouteAction),
    /// Set a node's own `Props` volume and/or mute.
    NodeVolume {
        /// Node id.
        node: u32,
        /// Linear channel volumes.
        channels: Option<Vec<f32>>,
        /// Mute.
        muted: Option<bool>,
    },
    /// Set the volume and/or mute of a device route.
    RouteVolume {
        /// Device id.
        device: u32,
        /// Route index.
        index: i32,
        /// Route device.
        route_device: i32,
        /// Linear channel volumes.
        channels: Option<Vec<f32>>,
        /// Mute.
        muted: Option<bool>,
    },
    /// Make a sink the configured default.
    DefaultSink {
        /// `node.name`.
        name: String,
    },
    /// Make, link or remove a channel.
    Channel(ChannelAction),
}

/// What a request comes to.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Answered now.
    Done(Response),
    /// Its actions (queued) must be processed by PipeWire and their result
    /// shown before the answer: `OK`, or `OK <payload>` when `payload` is set.
    Wait {
        /// What must become visible.
        expect: Expect,
        /// Payload of the `OK`, if any.
        payload: Option<String>,
    },
}

impl Outcome {
    fn now(result: Result<Option<String>, String>) -> Outcome {
        Outcome::Done(match result {
            Ok(p) => Response::Ok(p),
            Err(e) => Response::Error(e),
        })
    }

    fn wait(expect: Expect) -> Outcome {
        Outcome::Wait { expect, payload: None }
    }
}

/// Where the daemon keeps its files.
#[derive(Clone, Debug)]
pub struct Files {
    /// Config file.
    pub config: PathBuf,
    /// Persisted routes.
    pub state: PathBuf,
}

/// The daemon's state; one owner, on the loop thread.
pub struct Daemon {
    mixer: Mixer,
    router: Router,
    /// The channels' sinks and links: what is asked of PipeWire.
    wiring: Wiring,
    config: Config,
    routes: RouteStore,
    files: Files,
    connected: bool,
    /// Whether the `default` metadata (the session manager's) is bound.
    metadata_bound: bool,
    /// Whether the session manager's routing hold has announced itself.
    hold_active: bool,
    /// Sink volumes PipeWire accepted but shows only once the sink runs:
    /// written again when it starts, until the graph shows them.
    deferred: HashMap<u32, (Option<Channels>, Option<bool>)>,
    /// State changed since the last publish.
    dirty: bool,
    /// App slots changed since the last publish (implies `dirty`).
    apps_dirty: bool,
    /// When the oldest unpublished change arrived.
    pending_since: Option<Instant>,
    actions: Vec<Action>,
    staging: Box<Snapshot>,
    /// Statistics.
    pub stats: Stats,
    /// Recent events.
    pub trace: Trace,
}

impl Daemon {
    /// A daemon with the given config and routes, not yet connected.
    pub fn new(files: Files, config: Config, routes: RouteStore) -> Self {
        Daemon {
            mixer: Mixer::new(),
            router: Router::new(),
            wiring: Wiring::new(),
            config,
            routes,
            files,
            connected: false,
            metadata_bound: false,
            hold_active: false,
            deferred: HashMap::new(),
            dirty: true,
            apps_dirty: true,
            pending_since: None,
            actions: Vec::new(),
            staging: Snapshot::new_boxed(),
            stats: Stats::default(),
            trace: Trace::new(1024),
        }
    }

    /// The graph.
    pub fn mixer(&self) -> &Mixer {
        &self.mixer
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Whether the state must be published.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether we are connected to PipeWire.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Actions produced since the last call.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    fn mark_dirty(&mut self, at: Instant) {
        self.apps_dirty = true;
        self.mark_sinks_dirty(at);
    }

    /// Like [`Daemon::mark_dirty`] for a change that only sink slots show
    /// (a sink's volume or mute): the next publish keeps the app slots.
    fn mark_sinks_dirty(&mut self, at: Instant) {
        self.dirty = true;
        if self.pending_since.is_none() {
            self.pending_since = Some(at);
        } else {
            self.stats.coalesced += 1;
        }
    }

    /// Connection established (or re-established): start from an empty
    /// graph. Requests that need the graph still answer "not connected" until
    /// [`Daemon::on_synced`]: the graph is being enumerated, and a sink named
    /// in a request may simply not have been announced yet.
    pub fn on_connected(&mut self) {
        self.forget_graph();
        self.mark_dirty(Instant::now());
    }

    /// The graph is enumerated (first round trips after connecting done).
    pub fn on_synced(&mut self) {
        self.connected = true;
        self.mark_dirty(Instant::now());
        // Only now is it known which channels exist (made by an earlier run,
        // adopted) and which must be made.
        self.reconcile_channels();
    }

    /// Connection lost: the graph is void until we are back.
    pub fn on_disconnected(&mut self) {
        self.forget_graph();
        self.mark_dirty(Instant::now());
    }

    fn forget_graph(&mut self) {
        self.mixer.clear();
        self.router.clear();
        self.wiring.clear();
        self.deferred.clear();
        self.connected = false;
        self.metadata_bound = false;
        self.hold_active = false;
    }

    fn fill_staging(&mut self) {
        let view = crate::snapshot::View {
            mixer: &self.mixer,
            router: &self.router,
            connected: self.connected,
            hold_active: self.hold_active,
        };
        crate::snapshot::fill(&mut self.staging, view, self.apps_dirty);
    }

    /// The `default` metadata appeared (`true`: every pin we hold is written
    /// again, since it starts empty and writes made without it were lost) or
    /// went away (the session manager stopped).
    pub fn on_default_metadata(&mut self, bound: bool) {
        self.metadata_bound = bound;
        if bound {
            let mut out = Vec::new();
            self.router.repin_all(&self.mixer, &mut out);
            if !out.is_empty() {
                tracing::info!(pins = out.len(), "the default metadata is back; writing the routing pins again");
            }
            // The hold's decisions live there too.
            self.router.redecide_all(&mut out);
            self.push_routes(out);
        } else {
            self.set_hold_active(false);
        }
    }

    /// Whether the session manager's routing hold has announced itself.
    pub fn hold_active(&self) -> bool {
        self.hold_active
    }

    /// The routing hold announced itself (or its session manager went away).
    pub fn set_hold_active(&mut self, active: bool) {
        if self.hold_active != active {
            self.hold_active = active;
            if active {
                tracing::info!("the session manager's routing hold is active: new streams wait for our decision");
            } else {
                tracing::info!("the session manager's routing hold is gone");
            }
            self.mark_sinks_dirty(Instant::now());
        }
    }

    /// Applies one graph event and decides what it implies.
    pub fn on_graph_event(&mut self, event: GraphEvent) {
        let start = Instant::now();
        let kind = EventKind::of(&event);
        let subject = event.subject();
        let removed = match event {
            GraphEvent::Removed { id } => Some(id),
            _ => None,
        };
        // A sink's volume or mute shows in its slot only.
        let sink_only = match &event {
            GraphEvent::NodeVolume { id, .. } => self.mixer.sink(*id).is_some(),
            GraphEvent::DeviceRoute { .. } => true,
            _ => false,
        };
        let started = match &event {
            GraphEvent::NodeInfo { id, running: Some(true), .. } => Some(*id),
            _ => None,
        };
        let changed = self.mixer.apply(event);
        if changed.wiring {
            self.reconcile_channels();
        }
        if let Some(id) = started {
            self.reapply_deferred(id);
        }
        if let Some(id) = removed {
            if self.mixer.stream(id).is_none() {
                self.router.forget(id);
            }
        }
        if changed.sinks {
            let policy = Policy { rules: &self.config.rules, routes: &self.routes };
            let mut out = Vec::new();
            self.router.decide_all(&self.mixer, &policy, &mut out);
            self.push_routes(out);
        } else if let Some(stream) = changed.stream {
            let policy = Policy { rules: &self.config.rules, routes: &self.routes };
            let action = self.router.decide(&self.mixer, &policy, stream);
            self.push_routes(action.into_iter().collect());
        }
        if changed.visible || changed.stream.is_some() {
            if sink_only && !changed.sinks && changed.stream.is_none() {
                self.mark_sinks_dirty(start);
            } else {
                self.mark_dirty(start);
            }
        }
        self.stats.count_event(kind);
        self.trace.record(start, kind, subject, start.elapsed());
    }

    /// A `default` metadata property changed.
    pub fn on_metadata(&mut self, subject: u32, key: Option<&str>, value: Option<&str>) {
        let overridden = self.router.override_value(subject).is_some();
        let action = self.router.observe_metadata(&self.mixer, subject, key, value);
        if overridden != self.router.override_value(subject).is_some() {
            // A move in another tool shows as the app's target.
            self.mark_dirty(Instant::now());
        }
        self.push_routes(action.into_iter().collect());
        if subject == 0 && key.is_none_or(|k| k == crate::metadata_view::DEFAULT_SINK_KEY) {
            let name = value.and_then(default_sink_name);
            self.on_graph_event(GraphEvent::DefaultSink { name });
        } else {
            self.stats.count_event(EventKind::Metadata);
        }
    }

    /// Queues routing writes, then the hold decisions made with them (a
    /// decision must follow its stream's pin).
    fn push_routes(&mut self, actions: Vec<RouteAction>) {
        let decisions = self.router.take_decisions();
        for a in actions.into_iter().chain(decisions) {
            tracing::debug!(action = ?a, "routing write");
            if !matches!(a, RouteAction::Decide { .. }) {
                self.stats.route_writes += 1;
            }
            self.actions.push(Action::Route(a));
        }
    }

    /// Asks PipeWire for whatever the channels lack (see [`channels`]).
    fn reconcile_channels(&mut self) {
        if !self.connected {
            return;
        }
        let routes = &self.routes;
        let actions = self.wiring.reconcile(&self.mixer, &self.config.channels, |name| routes.output(name));
        for a in actions {
            match &a {
                ChannelAction::Create { name, .. } => tracing::info!(channel = name, "creating channel"),
                ChannelAction::Link { output_node, input_node, .. } => {
                    tracing::debug!(channel = output_node, output = input_node, "linking channel")
                }
                ChannelAction::Destroy { id, why } => tracing::info!(id, why, "removing"),
            }
            self.actions.push(Action::Channel(a));
        }
    }

    /// Whether channel actions were issued since the last call: a round
    /// trip must follow them (see [`Daemon::on_wiring_synced`]).
    pub fn take_wiring_unsettled(&mut self) -> bool {
        self.wiring.take_unsettled()
    }

    /// A round trip sent after channel actions completed: what they made is
    /// announced; whatever is still missing is asked for again.
    pub fn on_wiring_synced(&mut self) {
        self.wiring.settled();
        self.reconcile_channels();
    }

    /// The channels of the config.
    pub fn channel_specs(&self) -> &[channels::ChannelSpec] {
        &self.config.channels
    }

    /// Re-decides every stream (config or routes changed).
    fn reroute_all(&mut self) {
        let mut out = Vec::new();
        let policy = Policy { rules: &self.config.rules, routes: &self.routes };
        self.router.decide_all(&self.mixer, &policy, &mut out);
        self.push_routes(out);
        self.mark_dirty(Instant::now());
    }

    /// Re-reads the config file. On error the previous config stays in force.
    pub fn reload_config(&mut self) -> Result<(), String> {
        match config::load(&self.files.config) {
            Ok(cfg) => {
                tracing::info!(
                    path = %self.files.config.display(),
                    rules = cfg.rules.len(),
                    channels = cfg.channels.len(),
                    "config loaded"
                );
                self.config = cfg;
                self.wiring.retry();
                self.reconcile_channels();
                self.reroute_all();
                Ok(())
            }
            Err(e) => {
                self.stats.errors += 1;
                tracing::error!("{e}");
                Err(e.to_string())
            }
        }
    }

    /// Writes the current state into the staging snapshot and returns it for
    /// the writer. Clears the dirty flag and records the latency.
    pub fn snapshot_for_publish(&mut self) -> &Snapshot {
        self.fill_staging();
        self.dirty = false;
        self.apps_dirty = false;
        if let Some(since) = self.pending_since.take() {
            self.stats.record_publish(since.elapsed());
        }
        &self.staging
    }

    /// Records the generation the writer gave the last publish, so that the
    /// JSON of `STATUS` and `SUBSCRIBE` carries it as the snapshot does.
    pub fn published(&mut self, generation: u64) {
        self.staging.header.generation = generation;
    }

    /// The last filled snapshot as status JSON.
    pub fn status_json(&mut self) -> String {
        if self.dirty {
            self.fill_staging();
            self.apps_dirty = false;
        }
        let status = Status::from(&*self.staging);
        serde_json::to_string(&status).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Executes one control request. `SUBSCRIBE` is handled by the server.
    /// A request that changes PipeWire queues its actions (see
    /// [`Daemon::take_actions`]) and comes back as [`Outcome::Wait`].
    pub fn handle(&mut self, request: Request) -> Outcome {
        self.stats.requests += 1;
        let outcome = self.execute(request);
        if matches!(outcome, Outcome::Done(Response::Error(_))) {
            self.stats.request_errors += 1;
        }
        outcome
    }

    /// Counts a request whose wait ended in an error.
    pub fn count_request_error(&mut self) {
        self.stats.request_errors += 1;
    }

    fn execute(&mut self, request: Request) -> Outcome {
        let result = match request {
            Request::Ping => Ok(Some("PONG".into())),
            Request::Version => Ok(Some(format!(
                "pipewire-volume-mixer-daemon {} protocol {} shm {}",
                env!("CARGO_PKG_VERSION"),
                pvm_ipc::protocol::PROTOCOL_VERSION,
                pvm_ipc::layout::LAYOUT_VERSION
            ))),
            Request::Status => Ok(Some(self.status_json())),
            Request::Subscribe => Ok(None),
            Request::Trace => Ok(Some(self.trace.to_json())),
            Request::ReloadConfig => self.reload_config().map(|()| None),
            Request::Route { app, sink, create_pending } => return self.route(app, sink, create_pending),
            Request::Unroute { app } => return self.unroute(&app),
            Request::SetVolume { sink, volume } => return self.set_sink(&sink, Some(volume), None),
            Request::Mute { sink, mute } => return self.set_sink(&sink, None, Some(mute)),
            Request::SetAppVolume { app, volume } => return self.set_app(&app, Some(volume), None),
            Request::MuteApp { app, mute } => return self.set_app(&app, None, Some(mute)),
            Request::SetDefault { sink } => return self.set_default(&sink),
            Request::Output { channel, output } => return self.set_output(&channel, output),
        };
        Outcome::now(result)
    }

    fn set_sink(&mut self, name: &str, volume: Option<f32>, mute: Option<MuteAction>) -> Outcome {
        if let Err(e) = self.need_connection() {
            return Outcome::now(Err(e));
        }
        let sink = match self.find_sink(name) {
            Ok(s) => s,
            Err(e) => return Outcome::now(Err(e)),
        };
        let channels = volume.map(|v| volume::scaled_channels(&sink.channels, v, 2));
        let muted = mute.map(|m| resolve_mute(m, sink.muted));
        let id = sink.id;
        let action = self.sink_action(id, channels.clone(), muted);
        self.actions.push(action);
        Outcome::wait(Expect::Sink {
            id,
            name: name.to_owned(),
            channels: channels.map(|c| c.into_iter().collect()),
            muted,
        })
    }

    fn set_app(&mut self, app: &str, volume: Option<f32>, mute: Option<MuteAction>) -> Outcome {
        if let Err(e) = self.need_connection() {
            return Outcome::now(Err(e));
        }
        let streams = match self.app_streams(app) {
            Ok(s) => s,
            Err(e) => return Outcome::now(Err(e)),
        };
        let all_muted = streams.iter().all(|&id| self.mixer.stream(id).is_some_and(|s| s.muted));
        let muted = mute.map(|m| resolve_mute(m, all_muted));
        let mut expected = Vec::with_capacity(streams.len());
        for id in streams {
            let channels = volume.map(|v| {
                let current = self.mixer.stream(id).map(|s| s.channels.clone()).unwrap_or_default();
                volume::scaled_channels(&current, v, 2)
            });
            self.actions.push(Action::NodeVolume { node: id, channels: channels.clone(), muted });
            expected.push((id, channels.map(|c| c.into_iter().collect()), muted));
        }
        Outcome::wait(Expect::Streams { app: app.to_owned(), streams: expected })
    }

    fn set_default(&mut self, sink: &str) -> Outcome {
        if let Err(e) = self.need_connection() {
            return Outcome::now(Err(e));
        }
        let name = match self.find_sink(sink) {
            Ok(s) => s.name().to_owned(),
            Err(e) => return Outcome::now(Err(e)),
        };
        if !self.metadata_bound {
            return Outcome::now(Err("the default metadata is not available (is the session manager running?)".into()));
        }
        self.actions.push(Action::DefaultSink { name: name.clone() });
        Outcome::wait(Expect::DefaultSink { name })
    }

    fn set_output(&mut self, channel: &str, output: OutputChoice) -> Outcome {
        let q = pvm_ipc::protocol::quote;
        let Some(spec) = self.config.channels.iter().find(|c| c.name == channel) else {
            let known: Vec<&str> = self.config.channels.iter().map(|c| c.name.as_str()).collect();
            let known = if known.is_empty() { "none configured".to_owned() } else { known.join(", ") };
            return Outcome::now(Err(format!("unknown channel {} (channels: {known})", q(channel))));
        };
        if let OutputChoice::Sink(name) = &output {
            if name == channel {
                return Outcome::now(Err(format!("channel {} cannot be its own output", q(channel))));
            }
            let is_channel = self.config.channels.iter().any(|c| &c.name == name)
                || self.mixer.sink_by_name(name).is_some_and(|s| s.props.channel);
            if is_channel {
                return Outcome::now(Err(format!("{} is a channel; a channel's output must be a device", q(name))));
            }
            if self.connected && self.mixer.sink_by_name(name).is_none() {
                return Outcome::now(self.find_sink(name).map(|_| None));
            }
        }
        // The config's choice needs no entry in the state file.
        let stored = (output != spec.output).then_some(&output);
        let previous = self.routes.output(channel);
        if self.routes.set_output(channel, stored) {
            if let Err(e) = self.routes.save() {
                self.routes.set_output(channel, previous.as_ref());
                self.stats.errors += 1;
                return Outcome::now(Err(format!("cannot save routes: {e}")));
            }
        }
        if !self.connected {
            return Outcome::now(Ok(Some(
                "pending: not connected to PipeWire; the output is kept and wired when it is back".into(),
            )));
        }
        let Some(node) = self.mixer.sink_by_name(channel).filter(|s| s.props.channel) else {
            return Outcome::now(Ok(Some(format!("pending: channel {} does not exist yet", q(channel)))));
        };
        let target = channels::resolve_output(&self.mixer, &output, node.id);
        let target_name = target.and_then(|id| self.mixer.sink(id)).map(|s| s.name().to_owned());
        self.wiring.retry();
        self.reconcile_channels();
        self.mark_sinks_dirty(Instant::now());
        Outcome::wait(Expect::ChannelOutput { channel: channel.to_owned(), output: target_name })
    }

    fn need_connection(&self) -> Result<(), String> {
        if self.connected {
            Ok(())
        } else {
            Err("not connected to PipeWire".into())
        }
    }

    fn find_sink(&self, name: &str) -> Result<&crate::model::Sink, String> {
        self.mixer.sink_by_name(name).ok_or_else(|| {
            let known: Vec<&str> = self.mixer.sinks().map(|s| s.name()).collect();
            format!("unknown sink {} (known: {})", pvm_ipc::protocol::quote(name), known.join(", "))
        })
    }

    fn app_streams(&self, app: &str) -> Result<Vec<u32>, String> {
        self.mixer
            .app(app)
            .map(|a| a.streams.clone())
            .ok_or_else(|| format!("unknown app {}", pvm_ipc::protocol::quote(app)))
    }

    fn sink_action(&self, id: u32, channels: Option<Vec<f32>>, muted: Option<bool>) -> Action {
        let sink = self.mixer.sink(id).expect("sink looked up just before");
        match (sink.device_backed, sink.route, sink.props.device_id) {
            (true, Some((index, route_device)), Some(device)) => {
                Action::RouteVolume { device, index, route_device, channels, muted }
            }
            _ => Action::NodeVolume { node: id, channels, muted },
        }
    }

    fn route(&mut self, app: String, sink: String, create_pending: bool) -> Outcome {
        let exists = self.mixer.sink_by_name(&sink).is_some();
        // Disconnected, the sink list is empty, not wrong: keep the route.
        if !exists && !create_pending && self.connected {
            return Outcome::now(self.find_sink(&sink).map(|_| None));
        }
        let previous = self.routes.get(&app).map(str::to_owned);
        if self.routes.set(app.clone(), sink.clone()) {
            if let Err(e) = self.routes.save() {
                // Keep memory and disk in agreement: undo.
                match previous {
                    Some(p) => self.routes.set(app, p),
                    None => self.routes.remove(&app),
                };
                self.stats.errors += 1;
                return Outcome::now(Err(format!("cannot save routes: {e}")));
            }
        }
        // The user's latest word: a move made in another tool gives way.
        for id in self.mixer.app(&app).map(|a| a.streams.clone()).unwrap_or_default() {
            self.router.clear_override(id);
        }
        self.reroute_app(&app);
        self.route_outcome(app, sink)
    }

    /// How a routing change is answered: wait until the app's streams are
    /// linked to `sink`, unless that cannot happen now (then the route is
    /// kept and applied when it can, and the answer says so).
    fn route_outcome(&self, app: String, sink: String) -> Outcome {
        let q = pvm_ipc::protocol::quote;
        let pending = |why: String| Outcome::now(Ok(Some(format!("pending: {why}"))));
        if !self.connected {
            return pending("not connected to PipeWire; the route is kept and applied when it is back".into());
        }
        if self.mixer.sink_by_name(&sink).is_none() {
            return pending(format!("sink {} does not exist yet", q(&sink)));
        }
        if !self.metadata_bound && self.mixer.app(&app).is_some() {
            return pending(
                "the session manager is not running (no default metadata); the route is kept and applied when it is back"
                    .into(),
            );
        }
        Outcome::wait(Expect::AppOn { app, sink })
    }

    fn unroute(&mut self, app: &str) -> Outcome {
        let Some(previous) = self.routes.get(app).map(str::to_owned) else {
            return Outcome::now(Ok(Some("not routed".into())));
        };
        self.routes.remove(app);
        if let Err(e) = self.routes.save() {
            self.routes.set(app.to_owned(), previous);
            self.stats.errors += 1;
            return Outcome::now(Err(format!("cannot save routes: {e}")));
        }
        self.reroute_app(app);
        // Back to a rule's sink, or to the session manager's choice.
        let rule_sink = self
            .mixer
            .app(app)
            .and_then(|a| a.streams.first())
            .and_then(|&id| self.router.target(id))
            .map(|t| t.sink.clone());
        match rule_sink {
            Some(sink) => self.route_outcome(app.to_owned(), sink),
            None => Outcome::wait(Expect::Processed),
        }
    }

    fn reroute_app(&mut self, app: &str) {
        let streams = self.mixer.app(app).map(|a| a.streams.clone()).unwrap_or_default();
        let mut out = Vec::new();
        let policy = Policy { rules: &self.config.rules, routes: &self.routes };
        for id in streams {
            if let Some(a) = self.router.decide(&self.mixer, &policy, id) {
                out.push(a);
            }
        }
        self.push_routes(out);
        self.mark_dirty(Instant::now());
    }

    /// A sink volume PipeWire accepted but will show only when the sink
    /// runs: written again when it starts, until the graph shows it.
    pub fn defer_until_running(&mut self, sink: u32, channels: Option<Channels>, muted: Option<bool>) {
        let entry = self.deferred.entry(sink).or_default();
        if channels.is_some() {
            entry.0 = channels;
        }
        if muted.is_some() {
            entry.1 = muted;
        }
    }

    fn reapply_deferred(&mut self, sink: u32) {
        let Some((channels, muted)) = self.deferred.remove(&sink) else { return };
        if self.mixer.sink(sink).is_none() {
            return;
        }
        tracing::debug!(sink, "sink started; writing its deferred volume again");
        let action = self.sink_action(sink, channels.map(|c| c.to_vec()), muted);
        self.actions.push(action);
    }
}

fn resolve_mute(action: MuteAction, current: bool) -> bool {
    match action {
        MuteAction::On => true,
        MuteAction::Off => false,
        MuteAction::Toggle => !current,
    }
}

#[cfg(test)]
mod tests;
