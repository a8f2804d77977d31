//! Routing decisions: which sink each stream should play to, and the
//! metadata writes that get it there.
//!
//! We never link anything ourselves: we pin a stream by writing
//! `target.object` (the sink's `object.serial`) and `target.node` (its id) to
//! the `default` metadata, and the session manager links it. A decision costs
//! one write per stream; the same decision is never written twice, and values
//! already present in the metadata (WirePlumber's restored targets) are not
//! written again.

use std::collections::{HashMap, VecDeque};

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
    /// Publish our decision for `stream` for the routing hold (in our own
    /// metadata object: `pvm.decision` = the stream's `object.serial`).
    Decide {
        /// Stream node id.
        stream: u32,
        /// The stream's `object.serial`.
        serial: u64,
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

/// A stream's target set by someone else after its first link: a user's move
/// in another tool, respected for that stream and never persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Override {
    /// The `target.object` value that was written (a serial or a name;
    /// empty when the target was cleared: the session manager decides).
    value: String,
}

/// Per-stream routing state.
#[derive(Debug, Default)]
pub struct Router {
    /// The decided target of each stream (`None` = session manager).
    targets: HashMap<u32, Option<Target>>,
    /// What we want in the metadata per stream (written, or to be written
    /// once the metadata is back: see [`Router::repin_all`]).
    pins: HashMap<u32, Pin>,
    /// `target.object` values seen in the metadata, per subject.
    seen: HashMap<u32, String>,
    /// Our `target.object` writes per stream whose echo has not come back
    /// yet, oldest first (`None`: a clear).
    inflight: HashMap<u32, VecDeque<Option<String>>>,
    /// Streams moved by someone else after their first link.
    overrides: HashMap<u32, Override>,
    /// Streams whose decision was published for the hold, by `object.serial`.
    decided: HashMap<u32, u64>,
    /// Decisions to publish (after the pins of the same pass).
    new_decisions: Vec<RouteAction>,
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

    /// The `target.object` value someone else gave a stream after its first
    /// link (empty if they cleared it), if that is where it plays now (see
    /// [`Router::observe_metadata`]).
    pub fn override_value(&self, stream: u32) -> Option<&str> {
        self.overrides.get(&stream).map(|o| o.value.as_str())
    }

    /// Records a `default` metadata property change. A `target.object`
    /// written by someone else for a stream we pinned is answered here: before
    /// the stream's first link it is the session manager restoring a
    /// remembered target, and our pin is written back once (the routing hold
    /// keeps the stream unlinked until then); after it, it is a user's move in
    /// another tool, which we respect for that stream.
    pub fn observe_metadata(
        &mut self,
        mixer: &Mixer,
        subject: u32,
        key: Option<&str>,
        value: Option<&str>,
    ) -> Option<RouteAction> {
        match key {
            // Every key of this subject was removed (PipeWire does this when
            // the subject's global goes away); other subjects keep theirs.
            None => {
                self.seen.remove(&subject);
                self.inflight.remove(&subject);
                None
            }
            Some("target.object") => self.observe_target(mixer, subject, value),
            Some(_) => None,
        }
    }

    fn observe_target(&mut self, mixer: &Mixer, subject: u32, value: Option<&str>) -> Option<RouteAction> {
        match value {
            Some(v) => self.seen.insert(subject, v.to_owned()),
            None => self.seen.remove(&subject),
        };
        if let Some(queue) = self.inflight.get_mut(&subject) {
            if queue.front().is_some_and(|ours| ours.as_deref() == value) {
                queue.pop_front();
                if queue.is_empty() {
                    self.inflight.remove(&subject);
                }
                return None;
            }
        }
        // Someone else wrote it.
        let pin = *self.pins.get(&subject)?;
        if value == Some(pin.sink_serial.to_string().as_str()) {
            return None;
        }
        let stream = mixer.stream(subject)?;
        if !stream.linked_once {
            // The session manager restoring what it remembers: ours again.
            let sink = mixer.sinks().find(|s| s.props.serial == Some(pin.sink_serial))?;
            tracing::debug!(stream = subject, restored = ?value, "target restored by someone else before the first link; pinning again");
            return Some(self.pin_action(subject, pin.sink_serial, sink.id));
        }
        // A user's move: theirs for this stream, until the stream goes away
        // or a ROUTE for its app says otherwise.
        self.pins.remove(&subject);
        tracing::info!(stream = subject, target = ?value, "stream moved in another tool; respecting it");
        self.overrides.insert(subject, Override { value: value.unwrap_or_default().to_owned() });
        None
    }

    /// A stream went away.
    pub fn forget(&mut self, stream: u32) {
        self.targets.remove(&stream);
        self.pins.remove(&stream);
        self.seen.remove(&stream);
        self.inflight.remove(&stream);
        self.overrides.remove(&stream);
        self.decided.remove(&stream);
    }

    /// Drops a user's move in another tool (a ROUTE for the app came after it).
    pub fn clear_override(&mut self, stream: u32) {
        self.overrides.remove(&stream);
    }

    /// Whether the stream has a pin of ours.
    pub fn is_pinned(&self, stream: u32) -> bool {
        self.pins.contains_key(&stream)
    }

    /// The `default` metadata is (again) available: every pin we hold is
    /// written again, since writes made while it was missing were lost and a
    /// new metadata object starts empty.
    pub fn repin_all(&mut self, mixer: &Mixer, out: &mut Vec<RouteAction>) {
        self.seen.clear();
        self.inflight.clear();
        let pins: Vec<(u32, u64)> = self.pins.iter().map(|(&s, p)| (s, p.sink_serial)).collect();
        for (stream, serial) in pins {
            if let Some(sink) = mixer.sinks().find(|s| s.props.serial == Some(serial)) {
                out.push(self.pin_action(stream, serial, sink.id));
            }
        }
    }

    /// Every decision published so far, to publish again (our own metadata
    /// object was re-created after a reconnect).
    pub fn redecide_all(&mut self, out: &mut Vec<RouteAction>) {
        out.extend(self.decided.iter().map(|(&stream, &serial)| RouteAction::Decide { stream, serial }));
    }

    /// Decisions made since the last call, to write after the pins.
    pub fn take_decisions(&mut self) -> Vec<RouteAction> {
        std::mem::take(&mut self.new_decisions)
    }

    /// Re-decides one stream; returns the write to perform, if any.
    pub fn decide(&mut self, mixer: &Mixer, policy: &Policy<'_>, stream_id: u32) -> Option<RouteAction> {
        let stream = mixer.stream(stream_id)?;
        let target = policy.target_for(&stream.props, stream.info_seen)?;
        self.targets.insert(stream_id, target.clone());
        let action = self.act(mixer, stream, target.as_ref());
        // The hold waits for a decision on every movable stream, including
        // those the session manager places.
        if stream.movable() && !self.decided.contains_key(&stream_id) {
            if let Some(serial) = stream.props.serial {
                self.decided.insert(stream_id, serial);
                self.new_decisions.push(RouteAction::Decide { stream: stream_id, serial });
            }
        }
        action
    }

    /// Re-decides every stream (rules reloaded, a route changed, sinks came or went).
    pub fn decide_all(&mut self, mixer: &Mixer, policy: &Policy<'_>, out: &mut Vec<RouteAction>) {
        for stream in mixer.streams() {
            if let Some(a) = self.decide(mixer, policy, stream.id) {
                out.push(a);
            }
        }
    }

    fn pin_action(&mut self, stream: u32, sink_serial: u64, sink_id: u32) -> RouteAction {
        self.inflight.entry(stream).or_default().push_back(Some(sink_serial.to_string()));
        RouteAction::Pin { stream, sink_serial, sink_id }
    }

    fn unpin_action(&mut self, stream: u32) -> RouteAction {
        self.seen.remove(&stream);
        self.inflight.entry(stream).or_default().push_back(None);
        RouteAction::Unpin { stream }
    }

    fn act(&mut self, mixer: &Mixer, stream: &Stream, target: Option<&Target>) -> Option<RouteAction> {
        if !stream.movable() {
            // `node.dont-move` / `node.dont-reconnect` often arrive only with
            // the info, after a pin written at the global: take that pin back,
            // and never write one.
            return self.pins.remove(&stream.id).map(|_| self.unpin_action(stream.id));
        }
        if self.overrides.contains_key(&stream.id) {
            // Moved by the user in another tool: not ours to change.
            return None;
        }
        let Some(target) = target else {
            // The session manager decides: take back a pin of ours, if any.
            return self.pins.remove(&stream.id).map(|_| self.unpin_action(stream.id));
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
        Some(self.pin_action(stream.id, serial, sink.id))
    }
}

#[cfg(test)]
mod tests;
