//! One connection to PipeWire: the registry listener, the proxies we bind
//! (sinks, application streams, audio devices, the `default` metadata), and
//! the few calls we make (metadata writes, `Props` and `Route` params).
//!
//! Everything PipeWire tells us is translated into plain values and handed to
//! a [`SessionEvents`] implementation; nothing here decides anything.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::rc::{Rc, Weak};
use std::time::Instant;

use anyhow::{Context as _, Result};
use pipewire as pw;
use pw::device::{Device, DeviceListener};
use pw::metadata::{Metadata, MetadataListener};
use pw::node::{Node, NodeChangeMask, NodeListener, NodeState};
use pw::proxy::ProxyT;
use pw::registry::GlobalObject;
use pw::spa::param::ParamType;
use pw::spa::pod::Pod;
use pw::spa::utils::dict::DictRef;
use pw::types::ObjectType;

use super::params;
use crate::metadata_view::{Echoes, MetadataView, DEFAULT_SINK_KEY};
use crate::model::{GraphEvent, NodeProps};

/// Receives what PipeWire reports. Implemented by the runtime.
pub trait SessionEvents {
    /// A graph change.
    fn graph(&self, event: GraphEvent);
    /// A property of the `default` metadata changed (`key` `None`: all cleared).
    fn metadata(&self, subject: u32, key: Option<&str>, value: Option<&str>);
    /// The `default` metadata was bound (`true`) or went away.
    fn default_metadata(&self, bound: bool);
    /// PipeWire reported an error for one of our proxies (`proxy` is its
    /// local id, as returned by the calls that write; `res` a negative errno).
    fn proxy_error(&self, proxy: u32, res: i32, message: &str);
    /// A `sync` round trip completed.
    fn synced(&self, seq: i32);
    /// The connection failed or was closed.
    fn disconnected(&self, why: &str);
    /// A client connected to PipeWire (`true`) or left. A client that binds
    /// the `default` metadata holds its events back from us meanwhile (see
    /// [`crate::metadata_view`]), and most tools bind it right after
    /// connecting and leave once done.
    fn client_seen(&self, connected: bool);
}

// Fields drop in declaration order: every listener is declared before the
// proxy it listens to, so it is unhooked while the proxy is still alive
// (dropping the proxy first frees the hook list the listener unlinks from).

struct BoundNode {
    _listener: NodeListener,
    proxy: Node,
}

struct BoundDevice {
    _listener: DeviceListener,
    proxy: Device,
}

struct BoundMetadata {
    id: u32,
    /// Which binding this is: events of a binding that was replaced are
    /// dropped (see [`Objects::heard`]).
    generation: u64,
    global: GlobalObject<pw::properties::PropertiesBox>,
    _listener: MetadataListener,
    proxy: Metadata,
}

/// A second binding of the `default` metadata, collecting the full copy a
/// fresh bind receives, until the round trip `seq` says it is complete.
struct Resync {
    bound: BoundMetadata,
    fresh: MetadataView,
    seq: i32,
}

/// An object we made through a factory (a channel's sink, a link): its
/// proxy is kept until PipeWire says the object is gone.
struct Made {
    _listener: pw::proxy::ProxyListener,
    _proxy: Box<dyn Any>,
}

#[derive(Default)]
struct Objects {
    nodes: HashMap<u32, BoundNode>,
    devices: HashMap<u32, BoundDevice>,
    metadata: Option<BoundMetadata>,
    /// What we heard from `metadata`.
    view: MetadataView,
    /// Our writes to it whose echo has not come back.
    echoes: Echoes,
    /// A fresh binding in progress (see [`Session::resync_metadata`]).
    resync: Option<Resync>,
    /// Generation of the next metadata binding.
    generations: u64,
    /// Global ids of PipeWire's clients.
    clients: std::collections::HashSet<u32>,
    /// Objects we made, by proxy id.
    made: HashMap<u32, Made>,
    /// Proxies removed inside a PipeWire callback, freed later from the loop.
    graveyard: Vec<Box<dyn Any>>,
}

/// `application.name` of the daemon's PipeWire client: while a client of
/// that name is connected, the routing hold waits for its decisions.
pub const DAEMON_CLIENT_NAME: &str = "pipewire-volume-mixer-daemon";

impl Objects {
    /// Forgets the object with this global id, setting its proxy aside for
    /// [`Session::bury`]. Returns whether it was the `default` metadata.
    fn remove(&mut self, id: u32) -> bool {
        if let Some(node) = self.nodes.remove(&id) {
            self.graveyard.push(Box::new(node));
        }
        if let Some(dev) = self.devices.remove(&id) {
            self.graveyard.push(Box::new(dev));
        }
        self.echoes.forget(id);
        let metadata_gone = self.metadata.as_ref().is_some_and(|m| m.id == id);
        if metadata_gone {
            let m = self.metadata.take();
            self.graveyard.push(Box::new(m));
            if let Some(r) = self.resync.take() {
                self.graveyard.push(Box::new(r.bound));
            }
            self.view = MetadataView::new();
            self.echoes.clear();
        }
        metadata_gone
    }

    /// A new `default` metadata object was bound: it starts empty, and its
    /// properties arrive as events.
    fn metadata_bound(&mut self, bound: BoundMetadata) {
        if let Some(old) = self.metadata.replace(bound) {
            self.graveyard.push(Box::new(old));
        }
        if let Some(r) = self.resync.take() {
            self.graveyard.push(Box::new(r.bound));
        }
        self.view = MetadataView::new();
        self.echoes.clear();
    }

    fn next_generation(&mut self) -> u64 {
        self.generations += 1;
        self.generations
    }

    /// A property event from the binding `generation`; returns whether to
    /// pass it on. Events of the current binding update the view; those of a
    /// fresh binding in progress fill its copy (passed on, if they differ,
    /// when it is complete); those of a replaced binding are dropped.
    fn heard(&mut self, generation: u64, subject: u32, key: Option<&str>, value: Option<&str>) -> bool {
        if self.metadata.as_ref().is_some_and(|m| m.generation == generation) {
            if self.view.asks_for_another_default(subject, key, value) {
                self.echoes.expect_change(0, DEFAULT_SINK_KEY, Instant::now());
            }
            self.view.apply(subject, key, value);
            self.echoes.heard(subject, key, value);
            return true;
        }
        if let Some(r) = self.resync.as_mut().filter(|r| r.bound.generation == generation) {
            r.fresh.apply(subject, key, value);
        }
        false
    }

    /// Round trip `seq` completed: if it completes a fresh binding, that
    /// binding replaces the old one and the events the old one missed are
    /// returned, to pass on.
    fn synced(&mut self, seq: i32) -> Option<Vec<crate::metadata_view::PropertyEvent>> {
        if self.resync.as_ref().is_none_or(|r| r.seq != seq) {
            return None;
        }
        let r = self.resync.take()?;
        let missed = self.view.diff(&r.fresh);
        if let Some(old) = self.metadata.replace(r.bound) {
            self.graveyard.push(Box::new(old));
        }
        self.view = r.fresh;
        self.echoes.clear();
        Some(missed)
    }
}

/// A live connection.
pub struct Session {
    objects: Rc<RefCell<Objects>>,
    _registry_listener: pw::registry::Listener,
    _core_listener: pw::core::Listener,
    registry: pw::registry::RegistryRc,
    core: pw::core::CoreRc,
    _context: pw::context::ContextRc,
    events: Weak<dyn SessionEvents>,
}

impl Session {
    /// Connects to the PipeWire daemon (`PIPEWIRE_REMOTE` / the runtime dir
    /// decide which) and starts listening to the registry.
    pub fn connect(main_loop: &pw::main_loop::MainLoopRc, events: Weak<dyn SessionEvents>) -> Result<Session> {
        let context = pw::context::ContextRc::new(main_loop, None).context("creating a PipeWire context")?;
        super::priority::raise(&context);
        // The routing hold (contrib/wireplumber/) knows the daemon by this name.
        let props = pw::properties::properties! { "application.name" => DAEMON_CLIENT_NAME };
        let core = context.connect_rc(Some(props)).context("connecting to PipeWire")?;
        let registry = core.get_registry_rc().context("getting the PipeWire registry")?;
        let objects = Rc::new(RefCell::new(Objects::default()));

        let core_listener = {
            let on_done = events.clone();
            let on_error = events.clone();
            let objs_done = Rc::downgrade(&objects);
            core.add_listener_local()
                .done(move |id, seq| {
                    if id != pw::core::PW_ID_CORE {
                        return;
                    }
                    let missed = objs_done.upgrade().and_then(|o| o.borrow_mut().synced(seq.seq()));
                    let Some(ev) = on_done.upgrade() else { return };
                    if let Some(missed) = missed {
                        if !missed.is_empty() {
                            tracing::info!(
                                events = missed.len(),
                                "read the default metadata again: passing on what was missed"
                            );
                        }
                        for (subject, key, value) in missed {
                            ev.metadata(subject, key.as_deref(), value.as_deref());
                        }
                    }
                    ev.synced(seq.seq());
                })
                .error(move |id, _seq, res, message| {
                    let Some(ev) = on_error.upgrade() else { return };
                    if id == pw::core::PW_ID_CORE && res == -libc::EPIPE {
                        ev.disconnected(message);
                    } else {
                        tracing::warn!(id, res, message, "PipeWire reported an error");
                        ev.proxy_error(id, res, message);
                    }
                })
                .register()
        };

        let registry_listener = {
            let on_global = events.clone();
            let on_remove = events.clone();
            let reg = registry.downgrade();
            let objs = Rc::downgrade(&objects);
            let objs_remove = Rc::downgrade(&objects);
            registry
                .add_listener_local()
                .global(move |global| {
                    let (Some(ev), Some(reg), Some(objs)) = (on_global.upgrade(), reg.upgrade(), objs.upgrade()) else {
                        return;
                    };
                    on_global_object(global, &reg, &objs, &ev, &on_global);
                })
                .global_remove(move |id| {
                    let (metadata_gone, client_gone) = objs_remove.upgrade().map_or((false, false), |objs| {
                        let mut objs = objs.borrow_mut();
                        let client_gone = objs.clients.remove(&id);
                        (objs.remove(id), client_gone)
                    });
                    if let Some(ev) = on_remove.upgrade() {
                        if metadata_gone {
                            ev.default_metadata(false);
                        }
                        if client_gone {
                            ev.client_seen(false);
                        }
                        ev.graph(GraphEvent::Removed { id });
                    }
                })
                .register()
        };

        Ok(Session {
            objects,
            _registry_listener: registry_listener,
            _core_listener: core_listener,
            registry,
            core,
            _context: context,
            events,
        })
    }

    /// Asks for a `done` event once everything sent so far is processed.
    pub fn sync(&self) -> Result<i32> {
        Ok(self.core.sync(0).context("PipeWire sync")?.seq())
    }

    /// Frees proxies removed during callbacks. Call from outside PipeWire callbacks.
    pub fn bury(&self) {
        let dead = std::mem::take(&mut self.objects.borrow_mut().graveyard);
        drop(dead);
    }

    /// Whether the `default` metadata is bound.
    pub fn has_metadata(&self) -> bool {
        self.objects.borrow().metadata.is_some()
    }

    /// Sets (or with `value` `None`, clears) a key of the `default`
    /// metadata. Returns the proxy's id (errors PipeWire reports for the
    /// write carry it).
    pub fn set_metadata(&self, subject: u32, key: &str, type_: Option<&str>, value: Option<&str>) -> Result<u32> {
        let mut objs = self.objects.borrow_mut();
        let objs = &mut *objs;
        let meta = objs.metadata.as_ref().context("the default metadata is not available")?;
        let id = set_property(&meta.proxy, subject, key, type_, value)?;
        objs.echoes.wrote(&objs.view, subject, key, value, Instant::now());
        Ok(id)
    }

    /// When the oldest of our metadata writes still waiting for its echo was
    /// made (see [`crate::metadata_view`]).
    pub fn oldest_unechoed_write(&self) -> Option<Instant> {
        self.objects.borrow().echoes.oldest()
    }

    /// Binds the `default` metadata again to read all of it: once the fresh
    /// copy is complete, it replaces the old binding and every event the old
    /// one missed is passed on (see [`crate::metadata_view`]). Returns whether
    /// a new read started (not while one is in progress, nor without the
    /// metadata).
    pub fn resync_metadata(&self) -> Result<bool> {
        let global = {
            let objs = self.objects.borrow();
            match (&objs.metadata, &objs.resync) {
                (Some(m), None) => m.global.to_owned(),
                _ => return Ok(false),
            }
        };
        let generation = self.objects.borrow_mut().next_generation();
        let bound = bind_metadata(&global, generation, &self.registry, &self.objects, &self.events)?;
        let seq = self.core.sync(0).context("PipeWire sync")?.seq();
        self.objects.borrow_mut().resync = Some(Resync { bound, fresh: MetadataView::new(), seq });
        Ok(true)
    }

    /// Sets a node's `Props` param. Returns the proxy's id.
    pub fn set_node_props(&self, node: u32, pod: &[u8]) -> Result<u32> {
        let objs = self.objects.borrow();
        let bound = objs.nodes.get(&node).with_context(|| format!("node {node} is not bound"))?;
        bound.proxy.set_param(ParamType::Props, 0, Pod::from_bytes(pod).context("invalid pod")?);
        Ok(bound.proxy.upcast_ref().id())
    }

    /// Sets a device's `Route` param. Returns the proxy's id.
    pub fn set_device_route(&self, device: u32, pod: &[u8]) -> Result<u32> {
        let objs = self.objects.borrow();
        let dev = objs.devices.get(&device).with_context(|| format!("device {device} is not bound"))?;
        dev.proxy.set_param(ParamType::Route, 0, Pod::from_bytes(pod).context("invalid pod")?);
        Ok(dev.proxy.upcast_ref().id())
    }

    /// Creates a channel: a lingering null-audio sink in the server, marked
    /// as ours. Returns the proxy's id.
    pub fn create_channel(&self, name: &str, description: &str) -> Result<u32> {
        let mut props = pw::properties::PropertiesBox::new();
        props.insert("factory.name", "support.null-audio-sink");
        props.insert("node.name", name);
        props.insert("node.description", description);
        props.insert("media.class", "Audio/Sink");
        props.insert("audio.position", "[ FL FR ]");
        // Survives the daemon: no gap when it restarts or crashes.
        props.insert("object.linger", "true");
        // Volume and mute apply to what the monitor ports carry (the audio
        // we feed to the output); without it they would be inaudible.
        props.insert("monitor.channel-volumes", "true");
        // Its links to the output do not keep the graph running: no CPU
        // while nothing plays.
        props.insert("node.passive", "out");
        // Never the session manager's pick for the default sink.
        props.insert("priority.session", "-1");
        props.insert(crate::channels::MARKER_KEY, "true");
        let node: Node = self.core.create_object("adapter", &props).context("creating a channel")?;
        Ok(self.keep(node))
    }

    /// Links an output port to an input port with a lingering link.
    /// Returns the proxy's id.
    pub fn create_link(&self, output_node: u32, output_port: u32, input_node: u32, input_port: u32) -> Result<u32> {
        let mut props = pw::properties::PropertiesBox::new();
        props.insert("link.output.node", output_node.to_string().as_str());
        props.insert("link.output.port", output_port.to_string().as_str());
        props.insert("link.input.node", input_node.to_string().as_str());
        props.insert("link.input.port", input_port.to_string().as_str());
        props.insert("object.linger", "true");
        let link: pw::link::Link = self.core.create_object("link-factory", &props).context("creating a link")?;
        Ok(self.keep(link))
    }

    /// Destroys a global (PipeWire reports a refusal as an error on the
    /// registry).
    pub fn destroy(&self, id: u32) -> Result<()> {
        let result = self.registry.destroy_global(id);
        result.into_result().with_context(|| format!("destroying object {id}"))?;
        Ok(())
    }

    /// Keeps a made object's proxy until its global is removed.
    fn keep<P: ProxyT + 'static>(&self, proxy: P) -> u32 {
        let id = proxy.upcast_ref().id();
        let objects = Rc::downgrade(&self.objects);
        let listener = proxy
            .upcast_ref()
            .add_listener_local()
            .removed(move || {
                let Some(objects) = objects.upgrade() else { return };
                let Ok(mut objects) = objects.try_borrow_mut() else { return };
                if let Some(made) = objects.made.remove(&id) {
                    objects.graveyard.push(Box::new(made));
                }
            })
            .register();
        self.objects.borrow_mut().made.insert(id, Made { _listener: listener, _proxy: Box::new(proxy) });
        id
    }

    /// The registry (kept alive with the session).
    pub fn registry(&self) -> &pw::registry::RegistryRc {
        &self.registry
    }
}

fn set_property(meta: &Metadata, subject: u32, key: &str, type_: Option<&str>, value: Option<&str>) -> Result<u32> {
    let key = CString::new(key).context("metadata key contains a NUL byte")?;
    let type_ = type_.map(CString::new).transpose().context("metadata type contains a NUL byte")?;
    let value = value.map(CString::new).transpose().context("metadata value contains a NUL byte")?;
    meta.set_property_cstr(subject, &key, type_.as_deref(), value.as_deref());
    Ok(meta.upcast_ref().id())
}

fn node_props(dict: &DictRef) -> NodeProps {
    NodeProps::from_pairs(dict.iter())
}

fn on_global_object(
    global: &GlobalObject<&DictRef>,
    registry: &pw::registry::RegistryRc,
    objects: &Rc<RefCell<Objects>>,
    events: &Rc<dyn SessionEvents>,
    weak_events: &Weak<dyn SessionEvents>,
) {
    let Some(dict) = global.props else { return };
    match global.type_ {
        ObjectType::Node => {
            let props = node_props(dict);
            if !(props.is_sink() || props.is_output_stream()) {
                return;
            }
            let id = global.id;
            // Tell the logic first: a routing pin written now reaches the
            // session manager before it picks a target for the stream.
            events.graph(GraphEvent::NodeAdded { id, props });
            match bind_node(global, registry, weak_events) {
                Ok(bound) => {
                    objects.borrow_mut().nodes.insert(id, bound);
                }
                Err(e) => tracing::warn!(id, "cannot bind node: {e:#}"),
            }
        }
        ObjectType::Link => {
            let num = |k| dict.get(k).and_then(|v| v.parse::<u32>().ok());
            if let (Some(output_node), Some(input_node)) = (num("link.output.node"), num("link.input.node")) {
                events.graph(GraphEvent::LinkAdded {
                    id: global.id,
                    output_node,
                    input_node,
                    output_port: num("link.output.port"),
                    input_port: num("link.input.port"),
                });
            }
        }
        ObjectType::Port => {
            let Some(node) = dict.get("node.id").and_then(|v| v.parse::<u32>().ok()) else { return };
            events.graph(GraphEvent::PortAdded {
                id: global.id,
                node,
                output: dict.get("port.direction") == Some("out"),
                monitor: dict.get("port.monitor").is_some_and(|v| v == "true" || v == "1"),
                channel: dict.get("audio.channel").map(crate::model::intern::intern),
            });
        }
        ObjectType::Device => {
            if dict.get("media.class") != Some("Audio/Device") {
                return;
            }
            match bind_device(global, registry, weak_events) {
                Ok(bound) => {
                    objects.borrow_mut().devices.insert(global.id, bound);
                }
                Err(e) => tracing::warn!(id = global.id, "cannot bind device: {e:#}"),
            }
        }
        ObjectType::Client => {
            objects.borrow_mut().clients.insert(global.id);
            events.client_seen(true);
        }
        ObjectType::Metadata => {
            if dict.get("metadata.name") != Some("default") {
                return;
            }
            let generation = objects.borrow_mut().next_generation();
            match bind_metadata(&global.to_owned(), generation, registry, objects, weak_events) {
                Ok(bound) => {
                    objects.borrow_mut().metadata_bound(bound);
                    events.default_metadata(true);
                }
                Err(e) => tracing::warn!(id = global.id, "cannot bind the default metadata: {e:#}"),
            }
        }
        _ => {}
    }
}

fn bind_node(
    global: &GlobalObject<&DictRef>,
    registry: &pw::registry::RegistryRc,
    events: &Weak<dyn SessionEvents>,
) -> Result<BoundNode> {
    let id = global.id;
    let proxy: Node = registry.bind(global)?;
    let on_info = events.clone();
    let on_param = events.clone();
    let listener = proxy
        .add_listener_local()
        .info(move |info| {
            let Some(ev) = on_info.upgrade() else { return };
            let mask = info.change_mask();
            let props = if mask.contains(NodeChangeMask::PROPS) { info.props().map(node_props) } else { None };
            let running = mask.contains(NodeChangeMask::STATE).then(|| matches!(info.state(), NodeState::Running));
            if props.is_some() || running.is_some() {
                ev.graph(GraphEvent::NodeInfo { id, props, running });
            }
        })
        .param(move |_seq, kind, _index, _next, pod| {
            if kind != ParamType::Props {
                return;
            }
            let (Some(ev), Some(v)) = (on_param.upgrade(), pod.and_then(params::parse_props)) else {
                return;
            };
            if v.channels.is_some() || v.muted.is_some() {
                ev.graph(GraphEvent::NodeVolume { id, channels: v.channels, muted: v.muted });
            }
        })
        .register();
    proxy.subscribe_params(&[ParamType::Props]);
    Ok(BoundNode { _listener: listener, proxy })
}

fn bind_device(
    global: &GlobalObject<&DictRef>,
    registry: &pw::registry::RegistryRc,
    events: &Weak<dyn SessionEvents>,
) -> Result<BoundDevice> {
    let device = global.id;
    let proxy: Device = registry.bind(global)?;
    let on_param = events.clone();
    let listener = proxy
        .add_listener_local()
        .param(move |_seq, kind, _index, _next, pod| {
            if kind != ParamType::Route {
                return;
            }
            let (Some(ev), Some(r)) = (on_param.upgrade(), pod.and_then(params::parse_route)) else {
                return;
            };
            if r.output {
                ev.graph(GraphEvent::DeviceRoute {
                    device,
                    index: r.index,
                    route_device: r.device,
                    channels: r.volume.channels,
                    muted: r.volume.muted,
                });
            }
        })
        .register();
    proxy.subscribe_params(&[ParamType::Route]);
    Ok(BoundDevice { _listener: listener, proxy })
}

fn bind_metadata(
    global: &GlobalObject<pw::properties::PropertiesBox>,
    generation: u64,
    registry: &pw::registry::RegistryRc,
    objects: &Rc<RefCell<Objects>>,
    events: &Weak<dyn SessionEvents>,
) -> Result<BoundMetadata> {
    let proxy: Metadata = registry.bind(global)?;
    let on_prop = events.clone();
    let objs = Rc::downgrade(objects);
    let listener = proxy
        .add_listener_local()
        .property(move |subject, key, _type, value| {
            let pass_on = objs.upgrade().is_some_and(|o| o.borrow_mut().heard(generation, subject, key, value));
            if let (true, Some(ev)) = (pass_on, on_prop.upgrade()) {
                ev.metadata(subject, key, value);
            }
            0
        })
        .register();
    Ok(BoundMetadata { id: global.id, generation, global: global.to_owned(), _listener: listener, proxy })
}
