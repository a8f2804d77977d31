//! Routing decisions: which sink each stream should play to, and the
//! metadata writes that get it there.
//!
//! We never link anything ourselves: we pin a stream by writing
//! `target.object` (the sink's `object.serial`) and `target.node` (its id) to
//! the `default` metadata, and the session manager links it. A decision costs
//! one write per stream; the same decision is never written twice, and values
//! already present in the metadata (WirePlumber's restored targets) are not
//! written again.

use std::collections::HashMap;

use pvm_ipc::layout::TargetSource;

use crate::model::{Mixer, NodeProps, Stream};
use crate::route_store::RouteStore;
use crate::rules::{AppProps, MatchKey, RuleSet};

/// Where a stream should go, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `node.name` of the sink.
    pub sink: String,
    /// Rule or ROUTE.
    pub source: TargetSource,
}

/// A metadata change for the edge to perform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteAction {
    /// Set `target.object` = `sink_serial` and `target.node` = `sink_id` on `stream`.
    Pin {
        /// Stream node id (the metadata subject).
        stream: u32,
        /// The sink's `object.serial`.
        sink_serial: u64,
        /// The sink's node id.
        sink_id: u32,
    },
    /// Clear both keys on `stream`.
    Unpin {
        /// Stream node id.
        stream: u32,
    },
}

/// The inputs of a decision: persisted routes first, then config rules.
pub struct Policy<'a> {
    /// Config rules.
    pub rules: &'a RuleSet,
    /// Persisted ROUTE decisions.
    pub routes: &'a RouteStore,
}

/// Properties the registry `global` event carries for a node; rules that use
/// only these can be decided before the node's `info` arrives.
const GLOBAL_KEYS: [MatchKey; 2] = [MatchKey::ApplicationName, MatchKey::MediaRole];

impl AppProps for NodeProps {
    fn get(&self, key: MatchKey) -> Option<&str> {
        match key {
            MatchKey::ApplicationName => self.app_name.as_deref(),
            MatchKey::ProcessBinary => self.binary.as_deref(),
            MatchKey::ApplicationId => self.app_id.as_deref(),
            MatchKey::MediaRole => self.role.as_deref(),
            MatchKey::MediaName => self.media_name.as_deref(),
        }
    }
}

impl Policy<'_> {
    /// The target of a stream with these properties. `None` inside `Some`
    /// means "the session manager decides"; an outer `None` means the answer
    /// needs properties that have not arrived yet.
    pub fn target_for(&self, props: &NodeProps, complete: bool) -> Option<Option<Target>> {
        if let Some(sink) = self.routes.get(props.app_identity()) {
            return Some(Some(Target { sink: sink.to_owned(), source: TargetSource::Route }));
        }
        if !complete {
            // Identity can still change with the info (binary fallback), and a
            // rule may depend on properties only the info carries.
            props.app_name.as_ref()?;
            for rule in self.rules.iter() {
                if rule.keys().any(|k| !GLOBAL_KEYS.contains(&k)) {
                    return None;
                }
                if rule.matches(props) {
                    return Some(Some(Target { sink: rule.sink().to_owned(), source: TargetSource::Rule }));
                }
            }
            return Some(None);
        }
        Some(self.rules.target_for(props).map(|m| Target { sink: m.sink.to_owned(), source: TargetSource::Rule }))
    }
}

/// What we wrote for a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pin {
    sink_serial: u64,
}

/// Per-stream routing state.
#[derive(Debug, Default)]
pub struct Router {
    /// The decided target of each stream (`None` = session manager).
    targets: HashMap<u32, Option<Target>>,
    /// What we last wrote per stream.
    pins: HashMap<u32, Pin>,
    /// `target.object` values seen in the metadata, per subject.
    seen: HashMap<u32, String>,
}

impl Router {
    /// Nothing decided.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (PipeWire went away: ids and serials are void).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The decided target of a stream.
    pub fn target(&self, stream: u32) -> Option<&Target> {
        self.targets.get(&stream).and_then(Option::as_ref)
    }

    /// Records a `default` metadata property change.
    pub fn observe_metadata(&mut self, subject: u32, key: Option<&str>, value: Option<&str>) {
        match (key, value) {
            // Every key of this subject was removed (PipeWire does this when
            // the subject's global goes away); other subjects keep theirs.
            (None, _) => {
                self.seen.remove(&subject);
            }
            (Some("target.object"), Some(v)) => {
                self.seen.insert(subject, v.to_owned());
            }
            (Some("target.object"), None) => {
                self.seen.remove(&subject);
            }
            _ => {}
        }
    }

    /// A stream went away.
    pub fn forget(&mut self, stream: u32) {
        self.targets.remove(&stream);
        self.pins.remove(&stream);
        self.seen.remove(&stream);
    }

    /// Whether the stream has a pin of ours.
    pub fn is_pinned(&self, stream: u32) -> bool {
        self.pins.contains_key(&stream)
    }

    /// Re-decides one stream; returns the write to perform, if any.
    pub fn decide(&mut self, mixer: &Mixer, policy: &Policy<'_>, stream_id: u32) -> Option<RouteAction> {
        let stream = mixer.stream(stream_id)?;
        let target = policy.target_for(&stream.props, stream.info_seen)?;
        self.targets.insert(stream_id, target.clone());
        self.act(mixer, stream, target.as_ref())
    }

    /// Re-decides every stream (rules reloaded, a route changed, sinks came or went).
    pub fn decide_all(&mut self, mixer: &Mixer, policy: &Policy<'_>, out: &mut Vec<RouteAction>) {
        for stream in mixer.streams() {
            if let Some(a) = self.decide(mixer, policy, stream.id) {
                out.push(a);
            }
        }
    }

    fn act(&mut self, mixer: &Mixer, stream: &Stream, target: Option<&Target>) -> Option<RouteAction> {
        if !stream.movable() {
            // `node.dont-move` / `node.dont-reconnect` often arrive only with
            // the info, after a pin written at the global: take that pin back,
            // and never write one.
            return self.pins.remove(&stream.id).map(|_| {
                self.seen.remove(&stream.id);
                RouteAction::Unpin { stream: stream.id }
            });
        }
        let Some(target) = target else {
            // The session manager decides: take back a pin of ours, if any.
            return self.pins.remove(&stream.id).map(|_| {
                self.seen.remove(&stream.id);
                RouteAction::Unpin { stream: stream.id }
            });
        };
        // A target sink that does not exist (yet): leave the stream where the
        // session manager put it; the pin is written when the sink appears.
        let sink = mixer.sink_by_name(&target.sink)?;
        let serial = sink.props.serial?;
        let pin = Pin { sink_serial: serial };
        if self.pins.get(&stream.id) == Some(&pin) {
            return None;
        }
        let first = self.pins.insert(stream.id, pin).is_none();
        // Already there (restored by the session manager): nothing to write.
        // Only for a stream we never wrote to: once our own writes are in
        // flight, what the metadata last reported may be the echo of an older
        // write of ours, not the value it holds now.
        if first && self.seen.get(&stream.id).map(String::as_str) == Some(serial.to_string().as_str()) {
            return None;
        }
        Some(RouteAction::Pin { stream: stream.id, sink_serial: serial, sink_id: sink.id })
    }
}

#[cfg(test)]
mod tests;
