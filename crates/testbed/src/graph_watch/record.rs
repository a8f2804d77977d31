//! What a [`GraphWatcher`](super::GraphWatcher) records: plain data, filled
//! by its PipeWire thread and read by the test or the benchmark. All times
//! are `Instant`s of this process, taken when PipeWire's event arrived.

use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

use crate::graph::STREAM_OUTPUT_AUDIO;

/// A node global as the watcher saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSeen {
    /// The global id (ids are reused after a node goes away).
    pub id: u32,
    /// `node.name` (empty if it has none).
    pub name: String,
    /// `application.name`, if any.
    pub app_name: Option<String>,
    /// `media.class` (empty if it has none).
    pub media_class: String,
    /// `object.serial`, if any.
    pub serial: Option<String>,
    /// When the global was announced.
    pub appeared: Instant,
    /// When it was removed; `None` while it exists.
    pub removed: Option<Instant>,
}

/// A link global as the watcher saw it (one per port pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkSeen {
    /// The global id.
    pub id: u32,
    /// `link.output.node`.
    pub output_node: u32,
    /// `link.input.node`.
    pub input_node: u32,
    /// When the global was announced.
    pub appeared: Instant,
    /// When it was removed; `None` while it exists.
    pub removed: Option<Instant>,
}

/// A sink's volume as it arrived in a `Props` param
/// ([`WatchOptions::sink_volumes`](super::WatchOptions::sink_volumes)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VolumeSeen {
    /// The sink's node id.
    pub node: u32,
    /// The first channel's volume, linear.
    pub linear: f32,
    /// When the param arrived.
    pub at: Instant,
}

/// Something that happened to a playback stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// A link from the stream appeared.
    Linked {
        /// `node.name` of the link's input node (`#<id>` if the watcher did
        /// not know that node).
        sink: String,
        /// When.
        at: Instant,
    },
    /// A `default` metadata property about the stream
    /// ([`WatchOptions::metadata`](super::WatchOptions::metadata)).
    Metadata {
        /// The key, e.g. `target.object`.
        key: String,
        /// The value; `None` when the key was cleared.
        value: Option<String>,
        /// When.
        at: Instant,
    },
}

/// The life of one playback stream node (`media.class` `Stream/Output/Audio`).
///
/// PipeWire announces every new global to every registry listener before it
/// can be destroyed, so a link that existed at all is here, however short it
/// lived.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamHistory {
    /// The node's global id.
    pub node: u32,
    /// Its `application.name`, from the registry global.
    pub app_name: Option<String>,
    /// When the stream appeared.
    pub appeared: Instant,
    /// When it was removed; `None` while it exists.
    pub removed: Option<Instant>,
    /// Its links and metadata events, in the order they came.
    pub events: Vec<StreamEvent>,
}

impl StreamHistory {
    /// Whether the stream is still in the graph.
    pub fn is_alive(&self) -> bool {
        self.removed.is_none()
    }

    /// The sink of every link the stream ever had, in order of appearance
    /// (one entry per link object, so usually one per channel).
    pub fn links(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.events.iter().filter_map(|e| match e {
            StreamEvent::Linked { sink, .. } => Some(sink.as_str()),
            StreamEvent::Metadata { .. } => None,
        })
    }

    /// The distinct sinks it was ever linked to, sorted.
    pub fn sinks_ever_linked(&self) -> Vec<String> {
        let mut sinks: Vec<String> = self.links().map(str::to_owned).collect();
        sinks.sort();
        sinks.dedup();
        sinks
    }

    /// Every `default` metadata property event about it, in order: key and
    /// value (`None` when the key was cleared).
    pub fn metadata(&self) -> impl DoubleEndedIterator<Item = (&str, Option<&str>)> {
        self.events.iter().filter_map(|e| match e {
            StreamEvent::Metadata { key, value, .. } => Some((key.as_str(), value.as_deref())),
            StreamEvent::Linked { .. } => None,
        })
    }

    /// The values `target.object` was set to (clears left out), in order.
    pub fn target_object_writes(&self) -> Vec<String> {
        self.metadata().filter(|(k, _)| *k == "target.object").filter_map(|(_, v)| v.map(str::to_owned)).collect()
    }

    /// One line per event, with the time since the stream appeared, and its
    /// removal: for failure messages.
    pub fn timeline(&self) -> Vec<String> {
        let line = |at: Instant, what: String| {
            let ms = at.saturating_duration_since(self.appeared).as_secs_f64() * 1e3;
            format!("{ms:>8.3} ms  {what}")
        };
        let mut lines: Vec<String> = self
            .events
            .iter()
            .map(|e| match e {
                StreamEvent::Linked { sink, at } => line(*at, format!("link to {sink}")),
                StreamEvent::Metadata { key, value, at } => line(*at, format!("metadata {key} = {value:?}")),
            })
            .collect();
        if let Some(at) = self.removed {
            lines.push(line(at, "removed".into()));
        }
        lines
    }
}

impl fmt::Debug for StreamHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamHistory")
            .field("node", &self.node)
            .field("app_name", &self.app_name)
            .field("alive", &self.is_alive())
            .field("timeline", &self.timeline())
            .finish()
    }
}

/// Everything a [`GraphWatcher`](super::GraphWatcher) recorded, from the
/// moment it connected.
#[derive(Clone, Debug, Default)]
pub struct WatchLog {
    /// Every node global, in order of appearance.
    pub nodes: Vec<NodeSeen>,
    /// Every link global, in order of appearance.
    pub links: Vec<LinkSeen>,
    /// Every playback stream, in order of appearance.
    pub streams: Vec<StreamHistory>,
    /// Sink volumes as they arrived ([`WatchOptions::sink_volumes`](super::WatchOptions::sink_volumes)).
    pub volumes: Vec<VolumeSeen>,
    /// When each [`GraphWatcher::set_props`](super::GraphWatcher::set_props)
    /// request was handed to PipeWire, by request number.
    pub sent: Vec<Instant>,
    /// The kernel thread id of the watcher's PipeWire thread (for its CPU time).
    pub thread_id: u32,
    /// Round trips answered ([`GraphWatcher::sync`](super::GraphWatcher::sync)).
    pub(super) syncs_done: u64,
    /// Index in `nodes` of each node that exists now, by id.
    live_nodes: HashMap<u32, usize>,
    /// Index in `links` of each link that exists now, by id.
    live_links: HashMap<u32, usize>,
    /// Index in `streams` of each stream that exists now, by node id.
    live_streams: HashMap<u32, usize>,
}

impl WatchLog {
    /// The node named `name` that exists now (the newest, if several do).
    pub fn node_named(&self, name: &str) -> Option<&NodeSeen> {
        self.nodes.iter().rev().find(|n| n.name == name && n.removed.is_none())
    }

    /// The `object.serial` of the node named `name`, while it exists.
    pub fn serial_of(&self, name: &str) -> Option<&str> {
        self.node_named(name).and_then(|n| n.serial.as_deref())
    }

    /// The playback streams of the app `name` (`application.name`), oldest first.
    pub fn streams_of(&self, name: &str) -> Vec<&StreamHistory> {
        self.streams.iter().filter(|s| s.app_name.as_deref() == Some(name)).collect()
    }

    /// The newest playback stream with node id `node`.
    pub fn stream(&self, node: u32) -> Option<&StreamHistory> {
        self.streams.iter().rev().find(|s| s.node == node)
    }

    /// The first link from `output` to `input` that appeared at or after `since`.
    pub fn first_link_after(&self, output: u32, input: u32, since: Instant) -> Option<&LinkSeen> {
        self.links.iter().find(|l| l.output_node == output && l.input_node == input && l.appeared >= since)
    }

    /// The links from `output` that exist now.
    pub fn live_links_from(&self, output: u32) -> Vec<&LinkSeen> {
        self.links.iter().filter(|l| l.output_node == output && l.removed.is_none()).collect()
    }

    /// A node global arrived.
    pub(super) fn node_added(&mut self, node: NodeSeen) {
        if node.media_class == STREAM_OUTPUT_AUDIO {
            self.live_streams.insert(node.id, self.streams.len());
            self.streams.push(StreamHistory {
                node: node.id,
                app_name: node.app_name.clone(),
                appeared: node.appeared,
                removed: None,
                events: Vec::new(),
            });
        }
        self.live_nodes.insert(node.id, self.nodes.len());
        self.nodes.push(node);
    }

    /// A link global arrived.
    pub(super) fn link_added(&mut self, link: LinkSeen) {
        if let Some(&i) = self.live_streams.get(&link.output_node) {
            let sink = match self.live_nodes.get(&link.input_node) {
                Some(&n) => self.nodes[n].name.clone(),
                None => format!("#{}", link.input_node),
            };
            self.streams[i].events.push(StreamEvent::Linked { sink, at: link.appeared });
        }
        self.live_links.insert(link.id, self.links.len());
        self.links.push(link);
    }

    /// A `default` metadata property event about object `subject` arrived.
    pub(super) fn metadata_changed(&mut self, subject: u32, key: String, value: Option<String>, at: Instant) {
        if let Some(&i) = self.live_streams.get(&subject) {
            self.streams[i].events.push(StreamEvent::Metadata { key, value, at });
        }
    }

    /// The global `id` was removed.
    pub(super) fn global_removed(&mut self, id: u32, at: Instant) {
        if let Some(i) = self.live_nodes.remove(&id) {
            self.nodes[i].removed = Some(at);
        }
        if let Some(i) = self.live_links.remove(&id) {
            self.links[i].removed = Some(at);
        }
        if let Some(i) = self.live_streams.remove(&id) {
            self.streams[i].removed = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn node(id: u32, name: &str, class: &str, app: Option<&str>, at: Instant) -> NodeSeen {
        NodeSeen {
            id,
            name: name.into(),
            app_name: app.map(str::to_owned),
            media_class: class.into(),
            serial: Some(format!("{}", 1000 + id)),
            appeared: at,
            removed: None,
        }
    }

    fn link(id: u32, output_node: u32, input_node: u32, appeared: Instant) -> LinkSeen {
        LinkSeen { id, output_node, input_node, appeared, removed: None }
    }

    #[test]
    fn a_stream_records_its_links_and_metadata_in_order_until_it_goes() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut log = WatchLog::default();
        log.node_added(node(40, "speakers", "Audio/Sink", None, t0));
        log.node_added(node(41, "game", "Audio/Sink", None, t0));
        log.node_added(node(70, "firefox.0", STREAM_OUTPUT_AUDIO, Some("Firefox"), ms(1)));
        log.metadata_changed(70, "target.object".into(), Some("1041".into()), ms(2));
        log.link_added(link(90, 70, 40, ms(3)));
        log.link_added(link(91, 70, 41, ms(4)));
        log.metadata_changed(41, "ignored".into(), None, ms(4));
        log.link_added(link(92, 70, 77, ms(5)));
        log.global_removed(90, ms(6));
        log.metadata_changed(70, "target.object".into(), None, ms(7));
        log.global_removed(70, ms(8));

        let stream = log.stream(70).unwrap();
        assert_eq!(stream.links().collect::<Vec<_>>(), ["speakers", "game", "#77"]);
        assert_eq!(stream.sinks_ever_linked(), ["#77", "game", "speakers"]);
        assert_eq!(stream.target_object_writes(), ["1041"]);
        assert_eq!(stream.metadata().collect::<Vec<_>>(), [("target.object", Some("1041")), ("target.object", None)]);
        assert!(!stream.is_alive());
        assert_eq!(
            stream.timeline(),
            [
                "   1.000 ms  metadata target.object = Some(\"1041\")",
                "   2.000 ms  link to speakers",
                "   3.000 ms  link to game",
                "   4.000 ms  link to #77",
                "   6.000 ms  metadata target.object = None",
                "   7.000 ms  removed",
            ]
        );
        assert_eq!(log.streams_of("Firefox").len(), 1);
        assert_eq!(log.links[0].removed, Some(ms(6)));
        assert_eq!(log.live_links_from(70).iter().map(|l| l.id).collect::<Vec<_>>(), [91, 92]);
        assert_eq!(log.first_link_after(70, 41, ms(1)).map(|l| l.id), Some(91));
        assert_eq!(log.first_link_after(70, 41, ms(5)), None);
    }

    #[test]
    fn a_reused_id_starts_a_new_history_and_names_follow_the_live_node() {
        let t0 = Instant::now();
        let mut log = WatchLog::default();
        log.node_added(node(40, "game", "Audio/Sink", None, t0));
        log.node_added(node(70, "a", STREAM_OUTPUT_AUDIO, Some("A"), t0));
        log.link_added(link(90, 70, 40, t0));
        log.global_removed(70, t0);
        log.global_removed(40, t0);
        assert_eq!(log.serial_of("game"), None, "gone with its node");
        log.node_added(node(40, "chat", "Audio/Sink", None, t0));
        log.node_added(node(70, "b", STREAM_OUTPUT_AUDIO, Some("B"), t0));
        log.link_added(link(91, 70, 40, t0));
        log.metadata_changed(70, "k".into(), Some("v".into()), t0);

        assert_eq!(log.streams.len(), 2);
        assert_eq!(log.streams[0].links().collect::<Vec<_>>(), ["game"]);
        assert!(log.streams[0].metadata().next().is_none(), "events after removal go to the new stream");
        let newest = log.stream(70).unwrap();
        assert_eq!(newest.app_name.as_deref(), Some("B"));
        assert_eq!(newest.links().collect::<Vec<_>>(), ["chat"]);
        assert!(newest.is_alive());
        assert_eq!(log.serial_of("chat"), Some("1040"));
        assert_eq!(log.node_named("chat").map(|n| n.id), Some(40));
        assert_eq!(log.node_named("game"), None);
    }
}
