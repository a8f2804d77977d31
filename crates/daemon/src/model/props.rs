//! The node properties the mixer cares about, picked out of PipeWire's
//! property dictionaries by the edge. Strings are interned.

use super::intern::{intern, IStr};

/// Properties of a node. Every field is optional because the registry's
/// `global` event carries only a subset; the node's `info` brings the rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeProps {
    /// `media.class`, e.g. `Audio/Sink`, `Stream/Output/Audio`.
    pub media_class: Option<IStr>,
    /// `node.name`.
    pub node_name: Option<IStr>,
    /// `node.description`.
    pub description: Option<IStr>,
    /// `object.serial`.
    pub serial: Option<u64>,
    /// `application.name`.
    pub app_name: Option<IStr>,
    /// `application.process.binary`.
    pub binary: Option<IStr>,
    /// `application.id`, or the flatpak id from `pipewire.access.portal.app_id`.
    pub app_id: Option<IStr>,
    /// `media.role`.
    pub role: Option<IStr>,
    /// `media.name`.
    pub media_name: Option<IStr>,
    /// `node.dont-move` or `node.dont-reconnect` is true.
    pub pinned_by_app: bool,
    /// `device.id`.
    pub device_id: Option<u32>,
    /// `card.profile.device`.
    pub profile_device: Option<i32>,
    /// `priority.session`: how the session manager ranks sinks for default.
    pub priority: Option<i32>,
    /// `pvm.channel` is true: a channel this daemon (or an earlier run of it)
    /// made.
    pub channel: bool,
}

impl NodeProps {
    /// Builds the set from `(key, value)` pairs; unknown keys are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut p = NodeProps::default();
        for (k, v) in pairs {
            p.set(k, v);
        }
        p
    }

    /// Sets one property; unknown keys are ignored.
    pub fn set(&mut self, key: &str, value: &str) {
        let s = || Some(intern(value));
        match key {
            "media.class" => self.media_class = s(),
            "node.name" => self.node_name = s(),
            "node.description" => self.description = s(),
            "object.serial" => self.serial = value.parse().ok(),
            "application.name" => self.app_name = s(),
            "application.process.binary" => self.binary = s(),
            "application.id" => self.app_id = s(),
            "pipewire.access.portal.app_id" if self.app_id.is_none() => self.app_id = s(),
            "media.role" => self.role = s(),
            "media.name" => self.media_name = s(),
            "node.dont-move" | "node.dont-reconnect" => self.pinned_by_app |= is_true(value),
            "device.id" => self.device_id = value.parse().ok(),
            "card.profile.device" => self.profile_device = value.parse().ok(),
            "priority.session" => self.priority = value.parse().ok(),
            crate::channels::MARKER_KEY => self.channel = is_true(value),
            _ => {}
        }
    }

    /// Fills in every field `newer` knows, keeping the ones it does not.
    pub fn merge(&mut self, newer: NodeProps) {
        fn take<T>(dst: &mut Option<T>, src: Option<T>) {
            if src.is_some() {
                *dst = src;
            }
        }
        take(&mut self.media_class, newer.media_class);
        take(&mut self.node_name, newer.node_name);
        take(&mut self.description, newer.description);
        take(&mut self.serial, newer.serial);
        take(&mut self.app_name, newer.app_name);
        take(&mut self.binary, newer.binary);
        take(&mut self.app_id, newer.app_id);
        take(&mut self.role, newer.role);
        take(&mut self.media_name, newer.media_name);
        take(&mut self.device_id, newer.device_id);
        take(&mut self.profile_device, newer.profile_device);
        take(&mut self.priority, newer.priority);
        self.pinned_by_app |= newer.pinned_by_app;
        self.channel |= newer.channel;
    }

    /// The app a stream belongs to: `application.name`, else
    /// `application.process.binary`, else `node.name` (decisions.md, "App identity").
    pub fn app_identity(&self) -> &str {
        self.app_name.as_deref().or(self.binary.as_deref()).or(self.node_name.as_deref()).unwrap_or("unknown")
    }

    /// Whether the node is an `Audio/Sink`.
    pub fn is_sink(&self) -> bool {
        self.media_class.as_deref() == Some("Audio/Sink")
    }

    /// Whether the node is an application's playback stream.
    pub fn is_output_stream(&self) -> bool {
        self.media_class.as_deref() == Some("Stream/Output/Audio")
    }
}

fn is_true(v: &str) -> bool {
    v.eq_ignore_ascii_case("true") || v == "1"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_falls_back() {
        let mut p = NodeProps::from_pairs([("node.name", "pw-cat")]);
        assert_eq!(p.app_identity(), "pw-cat");
        p.set("application.process.binary", "firefox");
        assert_eq!(p.app_identity(), "firefox");
        p.set("application.name", "Firefox");
        assert_eq!(p.app_identity(), "Firefox");
    }

    #[test]
    fn merge_keeps_known_fields() {
        let mut p = NodeProps::from_pairs([("application.name", "A"), ("object.serial", "42")]);
        p.merge(NodeProps::from_pairs([("application.process.binary", "a"), ("node.dont-move", "true")]));
        assert_eq!(p.app_name.as_deref(), Some("A"));
        assert_eq!(p.serial, Some(42));
        assert_eq!(p.binary.as_deref(), Some("a"));
        assert!(p.pinned_by_app);
    }

    #[test]
    fn flatpak_id_is_app_id_unless_set() {
        let p = NodeProps::from_pairs([("pipewire.access.portal.app_id", "com.spotify.Client")]);
        assert_eq!(p.app_id.as_deref(), Some("com.spotify.Client"));
        let p = NodeProps::from_pairs([("application.id", "x"), ("pipewire.access.portal.app_id", "y")]);
        assert_eq!(p.app_id.as_deref(), Some("x"));
    }
}
