//! The mixer's picture of the PipeWire graph: sinks, application streams,
//! the links between them and the default sink.
//!
//! Plain data fed with [`GraphEvent`]s by the PipeWire edge; nothing here
//! knows PipeWire types, so all of it is tested by replaying events.

pub mod intern;
pub mod props;
pub mod volume;

use std::collections::{BTreeMap, HashMap};

pub use props::NodeProps;
pub use volume::Channels;

/// Something PipeWire told us, translated into plain data.
#[derive(Clone, Debug, PartialEq)]
pub enum GraphEvent {
    /// A node global appeared (registry `global`; partial properties).
    NodeAdded {
        /// Node id.
        id: u32,
        /// Properties from the global.
        props: NodeProps,
    },
    /// A node's `info` event.
    NodeInfo {
        /// Node id.
        id: u32,
        /// Full properties, when they changed.
        props: Option<NodeProps>,
        /// Whether the node is running, when the state changed.
        running: Option<bool>,
    },
    /// A node's `Props` param: its own volume and mute.
    NodeVolume {
        /// Node id.
        id: u32,
        /// `channelVolumes` (linear), if present.
        channels: Option<Channels>,
        /// `mute`, if present.
        muted: Option<bool>,
    },
    /// A device's `Route` param (volume of device-backed sinks).
    DeviceRoute {
        /// Device id.
        device: u32,
        /// Route `index`.
        index: i32,
        /// Route `device` (matches the node's `card.profile.device`).
        route_device: i32,
        /// `channelVolumes` (linear), if present.
        channels: Option<Channels>,
        /// `mute`, if present.
        muted: Option<bool>,
    },
    /// A link global appeared.
    LinkAdded {
        /// Link id.
        id: u32,
        /// `link.output.node`.
        output_node: u32,
        /// `link.input.node`.
        input_node: u32,
        /// `link.output.port`, if announced.
        output_port: Option<u32>,
        /// `link.input.port`, if announced.
        input_port: Option<u32>,
    },
    /// A port global appeared.
    PortAdded {
        /// Port id.
        id: u32,
        /// `node.id` of its node.
        node: u32,
        /// Whether it is an output port (`port.direction` = `out`).
        output: bool,
        /// Whether it is a sink's monitor port (`port.monitor`).
        monitor: bool,
        /// `audio.channel`, e.g. `FL`.
        channel: Option<intern::IStr>,
    },
    /// Any global went away.
    Removed {
        /// Global id.
        id: u32,
    },
    /// The default sink named in the `default` metadata changed.
    DefaultSink {
        /// `node.name` of the default sink, if any.
        name: Option<String>,
    },
}

impl GraphEvent {
    /// A link between two nodes whose ports are not known (tests).
    pub fn link(id: u32, output_node: u32, input_node: u32) -> GraphEvent {
        GraphEvent::LinkAdded { id, output_node, input_node, output_port: None, input_port: None }
    }

    /// The id of the object the event is about (0 for the default sink).
    pub fn subject(&self) -> u32 {
        match self {
            GraphEvent::NodeAdded { id, .. }
            | GraphEvent::NodeInfo { id, .. }
            | GraphEvent::NodeVolume { id, .. }
            | GraphEvent::LinkAdded { id, .. }
            | GraphEvent::PortAdded { id, .. }
            | GraphEvent::Removed { id } => *id,
            GraphEvent::DeviceRoute { device, .. } => *device,
            GraphEvent::DefaultSink { .. } => 0,
        }
    }
}

/// A sink.
#[derive(Clone, Debug, Default)]
pub struct Sink {
    /// Node id.
    pub id: u32,
    /// Properties.
    pub props: NodeProps,
    /// Linear channel volumes.
    pub channels: Channels,
    /// Mute.
    pub muted: bool,
    /// Whether volume and mute come from a device route.
    pub device_backed: bool,
    /// The device route backing this sink: `(route index, route device)`.
    pub route: Option<(i32, i32)>,
    /// Whether the node is running (state `running`).
    pub running: bool,
}

impl Sink {
    /// `node.name`, or an empty string.
    pub fn name(&self) -> &str {
        self.props.node_name.as_deref().unwrap_or("")
    }
}

/// An application's playback stream.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// Node id.
    pub id: u32,
    /// Properties.
    pub props: NodeProps,
    /// Whether the full properties (node `info`) have arrived.
    pub info_seen: bool,
    /// Whether the node is running.
    pub running: bool,
    /// Linear channel volumes.
    pub channels: Channels,
    /// Mute.
    pub muted: bool,
    /// `(link id, sink id)` of each link from this stream to a sink.
    pub links: Vec<(u32, u32)>,
    /// Whether the stream has ever been linked to a sink.
    pub linked_once: bool,
}

impl Stream {
    /// The sink the stream plays to (its first link's), if any.
    pub fn sink_id(&self) -> Option<u32> {
        self.links.first().map(|&(_, sink)| sink)
    }

    /// Whether the stream may be moved.
    pub fn movable(&self) -> bool {
        !self.props.pinned_by_app
    }
}

/// An application: every stream with the same identity.
#[derive(Clone, Debug)]
pub struct App {
    /// The identity (see [`NodeProps::app_identity`]).
    pub name: intern::IStr,
    /// Stream ids, in order of appearance.
    pub streams: Vec<u32>,
}

/// A port of a sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Port id.
    pub id: u32,
    /// Its node.
    pub node: u32,
    /// An output port (a sink's monitor ports are its outputs).
    pub output: bool,
    /// A monitor port.
    pub monitor: bool,
    /// `audio.channel`.
    pub channel: Option<intern::IStr>,
}

/// A link, as its global announced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Link id.
    pub id: u32,
    /// `link.output.node`.
    pub output_node: u32,
    /// `link.input.node`.
    pub input_node: u32,
    /// `link.output.port`.
    pub output_port: Option<u32>,
    /// `link.input.port`.
    pub input_port: Option<u32>,
}

/// What an event changed, so the caller knows what to re-decide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    /// Anything visible in the snapshot changed.
    pub visible: bool,
    /// A stream whose routing must be (re)considered.
    pub stream: Option<u32>,
    /// The set of sinks changed (a sink came or went, or was renamed).
    pub sinks: bool,
    /// What channels are wired to may have changed: a sink's port or a link
    /// between sinks came or went, or the default sink changed.
    pub wiring: bool,
}

/// The graph.
#[derive(Debug, Default)]
pub struct Mixer {
    sinks: BTreeMap<u32, Sink>,
    streams: BTreeMap<u32, Stream>,
    /// Every link, by id.
    links: HashMap<u32, Link>,
    /// The ports of sinks, by id.
    ports: HashMap<u32, Port>,
    apps: Vec<App>,
    default_sink: Option<String>,
    /// Device id -> the sinks it backs.
    devices: HashMap<u32, Vec<u32>>,
}

impl Mixer {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (PipeWire went away).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Applies one event.
    pub fn apply(&mut self, event: GraphEvent) -> Changed {
        match event {
            GraphEvent::NodeAdded { id, props } => self.node_added(id, props),
            GraphEvent::NodeInfo { id, props, running } => self.node_info(id, props, running),
            GraphEvent::NodeVolume { id, channels, muted } => self.node_volume(id, channels, muted),
            GraphEvent::DeviceRoute { device, index, route_device, channels, muted } => {
                self.device_route(device, index, route_device, channels, muted)
            }
            GraphEvent::LinkAdded { id, output_node, input_node, output_port, input_port } => {
                self.link_added(Link { id, output_node, input_node, output_port, input_port })
            }
            GraphEvent::PortAdded { id, node, output, monitor, channel } => {
                self.port_added(Port { id, node, output, monitor, channel })
            }
            GraphEvent::Removed { id } => self.removed(id),
            GraphEvent::DefaultSink { name } => {
                let visible = self.default_sink != name;
                self.default_sink = name;
                Changed { visible, wiring: visible, ..Changed::default() }
            }
        }
    }

    fn node_added(&mut self, id: u32, props: NodeProps) -> Changed {
        // An id is unique while its global lives; a repeated one means we
        // missed the removal.
        let mut changed = if self.sinks.contains_key(&id) || self.streams.contains_key(&id) {
            self.removed(id)
        } else {
            Changed::default()
        };
        let added = self.node_added_fresh(id, props);
        changed.visible |= added.visible;
        changed.sinks |= added.sinks;
        changed.wiring |= added.wiring;
        changed.stream = added.stream;
        changed
    }

    fn node_added_fresh(&mut self, id: u32, props: NodeProps) -> Changed {
        if props.is_sink() {
            if let Some(dev) = props.device_id {
                self.devices.entry(dev).or_default().push(id);
            }
            self.sinks.insert(id, Sink { id, props, ..Sink::default() });
            // Streams may have been linked to this id before we knew it was a sink.
            self.relink_pending(id);
            Changed { visible: true, sinks: true, wiring: true, ..Changed::default() }
        } else if props.is_output_stream() {
            let app = intern::intern(props.app_identity());
            self.streams.insert(id, Stream { id, props, ..Stream::default() });
            self.add_to_app(app, id);
            Changed { visible: true, stream: Some(id), ..Changed::default() }
        } else {
            Changed::default()
        }
    }

    fn node_info(&mut self, id: u32, props: Option<NodeProps>, running: Option<bool>) -> Changed {
        if let Some(sink) = self.sinks.get_mut(&id) {
            let mut changed = Changed::default();
            if let Some(r) = running {
                sink.running = r;
            }
            if let Some(p) = props {
                let before = sink.props.clone();
                let old_dev = sink.props.device_id;
                sink.props.merge(p);
                if sink.props.device_id != old_dev {
                    if let Some(dev) = sink.props.device_id {
                        self.devices.entry(dev).or_default().push(id);
                    }
                }
                changed.visible = before != sink.props;
                changed.sinks = before.node_name != sink.props.node_name;
                changed.wiring =
                    changed.sinks || before.channel != sink.props.channel || before.priority != sink.props.priority;
            }
            return changed;
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return Changed::default();
        };
        let mut changed = Changed::default();
        if let Some(r) = running {
            changed.visible |= stream.running != r;
            stream.running = r;
        }
        if let Some(p) = props {
            let old_app = intern::intern(stream.props.app_identity());
            let before = stream.props.clone();
            stream.props.merge(p);
            let first_info = !stream.info_seen;
            stream.info_seen = true;
            let new_app = intern::intern(stream.props.app_identity());
            if before != stream.props || first_info {
                changed.visible = true;
                changed.stream = Some(id);
            }
            if old_app != new_app {
                self.remove_from_app(&old_app, id);
                self.add_to_app(new_app, id);
            }
        }
        changed
    }

    fn node_volume(&mut self, id: u32, channels: Option<Channels>, muted: Option<bool>) -> Changed {
        let (ch, mu) = if let Some(sink) = self.sinks.get_mut(&id) {
            if sink.device_backed {
                // The device route is the source of truth for this sink.
                return Changed::default();
            }
            (&mut sink.channels, &mut sink.muted)
        } else if let Some(stream) = self.streams.get_mut(&id) {
            (&mut stream.channels, &mut stream.muted)
        } else {
            return Changed::default();
        };
        let mut visible = false;
        if let Some(c) = channels {
            visible |= *ch != c;
            *ch = c;
        }
        if let Some(m) = muted {
            visible |= *mu != m;
            *mu = m;
        }
        Changed { visible, ..Changed::default() }
    }

    fn device_route(
        &mut self,
        device: u32,
        index: i32,
        route_device: i32,
        channels: Option<Channels>,
        muted: Option<bool>,
    ) -> Changed {
        let Some(sink_ids) = self.devices.get(&device) else {
            return Changed::default();
        };
        let mut visible = false;
        for sid in sink_ids {
            let Some(sink) = self.sinks.get_mut(sid) else { continue };
            if sink.props.profile_device != Some(route_device) {
                continue;
            }
            sink.device_backed = true;
            sink.route = Some((index, route_device));
            if let Some(c) = &channels {
                visible |= sink.channels != *c;
                sink.channels.clone_from(c);
            }
            if let Some(m) = muted {
                visible |= sink.muted != m;
                sink.muted = m;
            }
        }
        Changed { visible, ..Changed::default() }
    }

    fn port_added(&mut self, port: Port) -> Changed {
        let mut changed = if self.ports.contains_key(&port.id) { self.removed(port.id) } else { Changed::default() };
        if self.sinks.contains_key(&port.node) {
            self.ports.insert(port.id, port);
            changed.wiring = true;
        }
        changed
    }

    fn link_added(&mut self, link: Link) -> Changed {
        let Link { id, output_node, input_node, .. } = link;
        let mut changed = if self.links.contains_key(&id) { self.removed(id) } else { Changed::default() };
        self.links.insert(id, link);
        if !self.sinks.contains_key(&input_node) {
            return changed;
        }
        if self.sinks.contains_key(&output_node) {
            // A sink's monitor feeding another sink: a channel's output.
            changed.wiring = true;
            changed.visible = true;
            return changed;
        }
        let Some(stream) = self.streams.get_mut(&output_node) else {
            return changed;
        };
        let before = stream.sink_id();
        stream.links.push((id, input_node));
        stream.linked_once = true;
        changed.visible |= before != stream.sink_id();
        changed
    }

    fn relink_pending(&mut self, sink_id: u32) {
        for (&link, &Link { output_node: out, input_node: inp, .. }) in &self.links {
            if inp != sink_id {
                continue;
            }
            if let Some(stream) = self.streams.get_mut(&out) {
                if !stream.links.iter().any(|&(l, _)| l == link) {
                    stream.links.push((link, sink_id));
                    stream.linked_once = true;
                }
            }
        }
    }

    fn removed(&mut self, id: u32) -> Changed {
        if self.ports.remove(&id).is_some() {
            return Changed { wiring: true, ..Changed::default() };
        }
        if let Some(Link { output_node: out, input_node: inp, .. }) = self.links.remove(&id) {
            if self.sinks.contains_key(&out) && self.sinks.contains_key(&inp) {
                return Changed { visible: true, wiring: true, ..Changed::default() };
            }
            if let Some(stream) = self.streams.get_mut(&out) {
                let before = stream.sink_id();
                stream.links.retain(|&(l, _)| l != id);
                return Changed { visible: before != stream.sink_id(), ..Changed::default() };
            }
            return Changed::default();
        }
        if let Some(sink) = self.sinks.remove(&id) {
            if let Some(dev) = sink.props.device_id {
                if let Some(v) = self.devices.get_mut(&dev) {
                    v.retain(|&s| s != id);
                    if v.is_empty() {
                        self.devices.remove(&dev);
                    }
                }
            }
            for stream in self.streams.values_mut() {
                stream.links.retain(|&(_, s)| s != id);
            }
            self.ports.retain(|_, p| p.node != id);
            return Changed { visible: true, sinks: true, wiring: true, ..Changed::default() };
        }
        if let Some(stream) = self.streams.remove(&id) {
            self.remove_from_app(stream.props.app_identity(), id);
            return Changed { visible: true, ..Changed::default() };
        }
        Changed::default()
    }

    fn add_to_app(&mut self, name: intern::IStr, stream: u32) {
        match self.apps.iter_mut().find(|a| a.name == name) {
            Some(app) => app.streams.push(stream),
            None => self.apps.push(App { name, streams: vec![stream] }),
        }
    }

    fn remove_from_app(&mut self, name: &str, stream: u32) {
        if let Some(pos) = self.apps.iter().position(|a| &*a.name == name) {
            let app = &mut self.apps[pos];
            app.streams.retain(|&s| s != stream);
            if app.streams.is_empty() {
                self.apps.remove(pos);
            }
        }
    }

    /// Sinks by id.
    pub fn sinks(&self) -> impl Iterator<Item = &Sink> {
        self.sinks.values()
    }

    /// Number of sinks.
    pub fn sink_count(&self) -> usize {
        self.sinks.len()
    }

    /// A sink by id.
    pub fn sink(&self, id: u32) -> Option<&Sink> {
        self.sinks.get(&id)
    }

    /// A sink by `node.name`.
    pub fn sink_by_name(&self, name: &str) -> Option<&Sink> {
        self.sinks.values().find(|s| s.name() == name)
    }

    /// Whether the id is a known device backing a sink.
    pub fn is_sink_device(&self, device: u32) -> bool {
        self.devices.contains_key(&device)
    }

    /// A stream by id.
    pub fn stream(&self, id: u32) -> Option<&Stream> {
        self.streams.get(&id)
    }

    /// All streams by id.
    pub fn streams(&self) -> impl Iterator<Item = &Stream> {
        self.streams.values()
    }

    /// Apps in order of appearance.
    pub fn apps(&self) -> &[App] {
        &self.apps
    }

    /// An app by name.
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| &*a.name == name)
    }

    /// The ports of a node (only sinks' ports are kept).
    pub fn ports_of(&self, node: u32) -> impl Iterator<Item = &Port> + '_ {
        self.ports.values().filter(move |p| p.node == node)
    }

    /// Every link whose output node is `node`.
    pub fn links_from(&self, node: u32) -> impl Iterator<Item = &Link> + '_ {
        self.links.values().filter(move |l| l.output_node == node)
    }

    /// The sinks a sink's monitor feeds (a channel's outputs), newest link
    /// first, each once.
    pub fn sink_outputs(&self, sink: u32) -> Vec<u32> {
        let mut links: Vec<&Link> =
            self.links_from(sink).filter(|l| l.input_node != sink && self.sinks.contains_key(&l.input_node)).collect();
        links.sort_by_key(|l| std::cmp::Reverse(l.id));
        let mut outputs: Vec<u32> = Vec::new();
        for l in links {
            if !outputs.contains(&l.input_node) {
                outputs.push(l.input_node);
            }
        }
        outputs
    }

    /// `node.name` of the default sink, as the `default` metadata says.
    pub fn default_sink(&self) -> Option<&str> {
        self.default_sink.as_deref()
    }

    /// Checks the internal cross-references; used by tests after every step.
    pub fn verify_invariants(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for app in &self.apps {
            if app.streams.is_empty() {
                return Err(format!("app {:?} has no streams", app.name));
            }
            for s in &app.streams {
                let stream = self.streams.get(s).ok_or(format!("app {:?} lists unknown stream {s}", app.name))?;
                if stream.props.app_identity() != &*app.name {
                    return Err(format!(
                        "stream {s} is in app {:?} but is {:?}",
                        app.name,
                        stream.props.app_identity()
                    ));
                }
                if !seen.insert(*s) {
                    return Err(format!("stream {s} is in two apps"));
                }
            }
        }
        if seen.len() != self.streams.len() {
            return Err("a stream belongs to no app".into());
        }
        for stream in self.streams.values() {
            for (link, sink) in &stream.links {
                if !self.sinks.contains_key(sink) {
                    return Err(format!("stream {} linked to unknown sink {sink}", stream.id));
                }
                if self.links.get(link).map(|l| (l.output_node, l.input_node)) != Some((stream.id, *sink)) {
                    return Err(format!("stream {} has stale link {link}", stream.id));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
