//! The daemon's state and behaviour, without PipeWire: graph events and
//! control requests come in, PipeWire actions and snapshots go out.

use std::path::PathBuf;
use std::time::Instant;

use pvm_ipc::layout::Snapshot;
use pvm_ipc::protocol::{MuteAction, Request, Response};
use pvm_ipc::status::Status;

use crate::config::{self, Config};
use crate::model::{volume, GraphEvent, Mixer};
use crate::route_store::RouteStore;
use crate::router::{Policy, RouteAction, Router};
use crate::stats::{EventKind, Stats};
use crate::trace::Trace;

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
    config: Config,
    routes: RouteStore,
    files: Files,
    connected: bool,
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
            config,
            routes,
            files,
            connected: false,
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
        self.mixer.clear();
        self.router.clear();
        self.connected = false;
        self.mark_dirty(Instant::now());
    }

    /// The graph is enumerated (first round trips after connecting done).
    pub fn on_synced(&mut self) {
        self.connected = true;
        self.mark_dirty(Instant::now());
    }

    /// Connection lost: the graph is void until we are back.
    pub fn on_disconnected(&mut self) {
        self.mixer.clear();
        self.router.clear();
        self.connected = false;
        self.mark_dirty(Instant::now());
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
        let changed = self.mixer.apply(event);
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
            if let Some(a) = self.router.decide(&self.mixer, &policy, stream) {
                self.push_routes(vec![a]);
            }
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
        self.router.observe_metadata(subject, key, value);
        if subject == 0 && key.is_none_or(|k| k == "default.audio.sink") {
            let name = value.and_then(default_sink_name);
            self.on_graph_event(GraphEvent::DefaultSink { name });
        } else {
            self.stats.count_event(EventKind::Metadata);
        }
    }

    fn push_routes(&mut self, actions: Vec<RouteAction>) {
        for a in actions {
            self.stats.route_writes += 1;
            self.actions.push(Action::Route(a));
        }
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
                tracing::info!(path = %self.files.config.display(), rules = cfg.rules.len(), "config loaded");
                self.config = cfg;
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
        crate::snapshot::fill(&mut self.staging, &self.mixer, &self.router, self.connected, self.apps_dirty);
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
            crate::snapshot::fill(&mut self.staging, &self.mixer, &self.router, self.connected, self.apps_dirty);
            self.apps_dirty = false;
        }
        let status = Status::from(&*self.staging);
        serde_json::to_string(&status).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Executes one control request. `SUBSCRIBE` is handled by the server.
    pub fn handle(&mut self, request: Request) -> Response {
        self.stats.requests += 1;
        match self.execute(request) {
            Ok(payload) => Response::Ok(payload),
            Err(message) => {
                self.stats.request_errors += 1;
                Response::Error(message)
            }
        }
    }

    fn execute(&mut self, request: Request) -> Result<Option<String>, String> {
        match request {
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
            Request::Route { app, sink, create_pending } => self.route(app, sink, create_pending),
            Request::Unroute { app } => self.unroute(&app),
            Request::SetVolume { sink, volume } => {
                self.need_connection()?;
                let sink = self.find_sink(&sink)?;
                let channels = volume::scaled_channels(&sink.channels, volume, 2);
                let action = self.sink_action(sink.id, Some(channels), None);
                self.actions.push(action);
                Ok(None)
            }
            Request::Mute { sink, mute } => {
                self.need_connection()?;
                let sink = self.find_sink(&sink)?;
                let muted = resolve_mute(mute, sink.muted);
                let action = self.sink_action(sink.id, None, Some(muted));
                self.actions.push(action);
                Ok(None)
            }
            Request::SetAppVolume { app, volume } => {
                self.need_connection()?;
                let streams = self.app_streams(&app)?;
                for id in streams {
                    let current = self.mixer.stream(id).map(|s| s.channels.clone()).unwrap_or_default();
                    let channels = volume::scaled_channels(&current, volume, 2);
                    self.actions.push(Action::NodeVolume { node: id, channels: Some(channels), muted: None });
                }
                Ok(None)
            }
            Request::MuteApp { app, mute } => {
                self.need_connection()?;
                let streams = self.app_streams(&app)?;
                let all_muted = streams.iter().all(|&id| self.mixer.stream(id).is_some_and(|s| s.muted));
                let muted = resolve_mute(mute, all_muted);
                for id in streams {
                    self.actions.push(Action::NodeVolume { node: id, channels: None, muted: Some(muted) });
                }
                Ok(None)
            }
            Request::SetDefault { sink } => {
                self.need_connection()?;
                let name = self.find_sink(&sink)?.name().to_owned();
                self.actions.push(Action::DefaultSink { name });
                Ok(None)
            }
        }
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

    fn route(&mut self, app: String, sink: String, create_pending: bool) -> Result<Option<String>, String> {
        let exists = self.mixer.sink_by_name(&sink).is_some();
        if !exists && !create_pending {
            self.find_sink(&sink)?;
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
                return Err(format!("cannot save routes: {e}"));
            }
        }
        self.reroute_app(&app);
        Ok(if exists {
            None
        } else {
            Some(format!("pending: sink {} does not exist yet", pvm_ipc::protocol::quote(&sink)))
        })
    }

    fn unroute(&mut self, app: &str) -> Result<Option<String>, String> {
        let Some(previous) = self.routes.get(app).map(str::to_owned) else {
            return Ok(Some("not routed".into()));
        };
        self.routes.remove(app);
        if let Err(e) = self.routes.save() {
            self.routes.set(app.to_owned(), previous);
            self.stats.errors += 1;
            return Err(format!("cannot save routes: {e}"));
        }
        self.reroute_app(app);
        Ok(None)
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
}

fn resolve_mute(action: MuteAction, current: bool) -> bool {
    match action {
        MuteAction::On => true,
        MuteAction::Off => false,
        MuteAction::Toggle => !current,
    }
}

/// The sink name in a `default.audio.sink` value: `{"name":"speakers"}`.
fn default_sink_name(value: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct V {
        name: String,
    }
    serde_json::from_str::<V>(value).ok().map(|v| v.name)
}

#[cfg(test)]
mod tests;
