//! Channels: the sinks the daemon makes (`game`, `chat`, `music`) and the
//! links that feed each one's audio to its output device.
//!
//! A channel is a null-audio sink made in the PipeWire server (adapter
//! factory, `object.linger`), so no process of ours is in the audio path and
//! the audio keeps playing when the daemon dies. Its monitor ports are linked
//! to the output's playback ports by lingering links the daemon makes; the
//! daemon re-links them when the output changes (the default device changes,
//! a named output comes or goes, `OUTPUT`). See `docs/architecture.md`.
//!
//! This module is plain logic: [`Wiring::reconcile`] compares the wanted
//! state (the config's channels, the outputs chosen with `OUTPUT`) with the
//! graph and says what to create or destroy. It is idempotent: run after any
//! change of sinks, ports, links or the default sink, it asks only for what
//! is missing, never twice for the same thing while a request is in flight,
//! and removes old links only once the new ones exist (no gap).

use std::collections::{BTreeMap, HashMap, HashSet};

use pvm_ipc::protocol::OutputChoice;

use crate::model::{Mixer, Port, Sink};

/// Node property that marks a sink as one of our channels. A channel made by
/// an earlier run of the daemon is adopted by it (and its `node.name`).
pub const MARKER_KEY: &str = "pvm.channel";

/// How many times the same object is asked for, without it ever showing
/// up, before we give up on it (until the config or an output changes).
const MAX_ATTEMPTS: u32 = 3;

/// One `[[channel]]` of the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSpec {
    /// `node.name` of the sink.
    pub name: String,
    /// `node.description` of the sink.
    pub description: String,
    /// Where its audio goes, unless `OUTPUT` chose otherwise.
    pub output: OutputChoice,
}

/// Something to do in PipeWire for the channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelAction {
    /// Create the channel's sink.
    Create {
        /// `node.name`.
        name: String,
        /// `node.description`.
        description: String,
    },
    /// Link a channel's monitor port to an output's playback port.
    Link {
        /// The channel's node.
        output_node: u32,
        /// Its monitor port.
        output_port: u32,
        /// The output sink's node.
        input_node: u32,
        /// Its playback port.
        input_port: u32,
    },
    /// Destroy a global (a channel no longer configured, a duplicate, or a
    /// link to an old output).
    Destroy {
        /// Global id.
        id: u32,
        /// Why, for the log.
        why: &'static str,
    },
}

/// A request in flight, by what it asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Request {
    Create(String),
    Link(u32, u32),
    Destroy(u32),
}

/// The reconciler's memory: what it asked for and has not seen yet.
#[derive(Debug, Default)]
pub struct Wiring {
    /// Asked for since the last settled round trip.
    inflight: HashSet<Request>,
    /// Times each thing was asked for without showing up.
    attempts: HashMap<Request, u32>,
    /// Channel names taken by a sink we did not make (warned once).
    taken: HashSet<String>,
    /// Actions were issued since the last round trip was sent.
    unsettled: bool,
}

impl Wiring {
    /// A reconciler that has asked for nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets requests in flight (the connection is gone).
    pub fn clear(&mut self) {
        *self = Wiring::default();
    }

    /// Gives everything another try (the config or an output changed).
    pub fn retry(&mut self) {
        self.attempts.clear();
        self.taken.clear();
    }

    /// Whether actions were issued since the last call: a round trip must
    /// be sent after them, and [`Wiring::settled`] called when it completes.
    pub fn take_unsettled(&mut self) -> bool {
        std::mem::take(&mut self.unsettled)
    }

    /// A round trip sent after the last actions completed: PipeWire has
    /// announced whatever they created or destroyed. What is still missing
    /// is asked for again by the next [`Wiring::reconcile`].
    pub fn settled(&mut self) {
        self.inflight.clear();
    }

    /// Compares the wanted channels with the graph; returns what to do.
    /// `output_of(name)` is the output chosen with `OUTPUT`, if any.
    pub fn reconcile(
        &mut self,
        mixer: &Mixer,
        specs: &[ChannelSpec],
        output_of: impl Fn(&str) -> Option<OutputChoice>,
    ) -> Vec<ChannelAction> {
        let mut out = Vec::new();
        let mut ours: BTreeMap<&str, Vec<&Sink>> = BTreeMap::new();
        for sink in mixer.sinks().filter(|s| s.props.channel) {
            ours.entry(sink.name()).or_default().push(sink);
        }
        // Ours, but no longer configured; or made twice.
        for (name, sinks) in &ours {
            let configured = specs.iter().any(|s| s.name == *name);
            for (i, sink) in sinks.iter().enumerate() {
                if !configured {
                    self.ask(Request::Destroy(sink.id), &mut out, || ChannelAction::Destroy {
                        id: sink.id,
                        why: "channel removed from the config",
                    });
                } else if i > 0 {
                    self.ask(Request::Destroy(sink.id), &mut out, || ChannelAction::Destroy {
                        id: sink.id,
                        why: "duplicate channel",
                    });
                }
            }
        }
        for spec in specs {
            match ours.get(spec.name.as_str()).and_then(|s| s.first()) {
                Some(channel) => {
                    self.attempts.remove(&Request::Create(spec.name.clone()));
                    let choice = output_of(&spec.name).unwrap_or_else(|| spec.output.clone());
                    let target = resolve_output(mixer, &choice, channel.id);
                    self.wire(mixer, channel.id, target, &mut out);
                }
                // Our own sink, announced before its properties say it is ours.
                None if self.inflight.contains(&Request::Create(spec.name.clone())) => {}
                None if mixer.sink_by_name(&spec.name).is_some() => {
                    if self.taken.insert(spec.name.clone()) {
                        tracing::warn!(
                            channel = spec.name,
                            "a sink with this node.name exists and was not made by pipewire-volume-mixer; \
                             the channel is not created (rules and routes naming it use that sink)"
                        );
                    }
                }
                None => self.ask(Request::Create(spec.name.clone()), &mut out, || ChannelAction::Create {
                    name: spec.name.clone(),
                    description: spec.description.clone(),
                }),
            }
        }
        out
    }

    /// Links `channel` to `target` (or to nothing): missing links first;
    /// stale ones are removed once every wanted link exists.
    fn wire(&mut self, mixer: &Mixer, channel: u32, target: Option<u32>, out: &mut Vec<ChannelAction>) {
        // Links from the channel's monitor to sinks: ours to manage. Links to
        // anything else (a recorder, OBS) are left alone.
        let mut existing: Vec<_> = mixer
            .links_from(channel)
            .filter(|l| l.input_node != channel && mixer.sink(l.input_node).is_some())
            .collect();
        existing.sort_by_key(|l| l.id);
        let wanted = match target {
            Some(target) => {
                let pairs = port_pairs(mixer, channel, target);
                if pairs.is_empty() {
                    // Ports not announced yet: change nothing until they are.
                    return;
                }
                pairs
            }
            None => Vec::new(),
        };
        let mut missing = false;
        for &(output_port, input_port) in &wanted {
            let present =
                existing.iter().any(|l| l.output_port == Some(output_port) && l.input_port == Some(input_port));
            if present {
                self.attempts.remove(&Request::Link(output_port, input_port));
            } else {
                missing = true;
                let input_node = target.expect("wanted links have a target");
                self.ask(Request::Link(output_port, input_port), out, || ChannelAction::Link {
                    output_node: channel,
                    output_port,
                    input_node,
                    input_port,
                });
            }
        }
        if missing {
            return;
        }
        let mut kept: HashSet<(u32, u32)> = HashSet::new();
        for link in existing {
            let pair = (link.output_port.unwrap_or(u32::MAX), link.input_port.unwrap_or(u32::MAX));
            let is_wanted = wanted.contains(&pair);
            if is_wanted && kept.insert(pair) {
                continue;
            }
            let why = if is_wanted { "duplicate link" } else { "link to a previous output" };
            self.ask(Request::Destroy(link.id), out, || ChannelAction::Destroy { id: link.id, why });
        }
    }

    fn ask(&mut self, request: Request, out: &mut Vec<ChannelAction>, action: impl FnOnce() -> ChannelAction) {
        if self.inflight.contains(&request) {
            return;
        }
        let attempts = self.attempts.entry(request.clone()).or_default();
        if *attempts >= MAX_ATTEMPTS {
            return;
        }
        *attempts += 1;
        if *attempts == MAX_ATTEMPTS {
            tracing::error!(
                ?request,
                "asked PipeWire {MAX_ATTEMPTS} times without effect; giving up until the config or an output changes"
            );
        }
        self.inflight.insert(request);
        self.unsettled = true;
        out.push(action());
    }
}

/// The sink a channel's audio goes to now, for `choice`. Never a channel.
pub fn resolve_output(mixer: &Mixer, choice: &OutputChoice, channel: u32) -> Option<u32> {
    match choice {
        OutputChoice::None => None,
        OutputChoice::Default => default_device(mixer, channel),
        OutputChoice::Sink(name) => match mixer.sink_by_name(name) {
            Some(sink) if !sink.props.channel && sink.id != channel => Some(sink.id),
            // Unplugged (or never there): the default output until it is back.
            _ => default_device(mixer, channel),
        },
    }
}

/// The default output device: the default sink unless it is a channel (the
/// user may make one the default for untargeted apps); then, and when there
/// is no default, the sink the session manager ranks first
/// (`priority.session`, then the oldest).
pub fn default_device(mixer: &Mixer, channel: u32) -> Option<u32> {
    let device = |s: &&Sink| !s.props.channel && s.id != channel;
    if let Some(sink) = mixer.default_sink().and_then(|name| mixer.sink_by_name(name)).filter(device) {
        return Some(sink.id);
    }
    mixer.sinks().filter(device).max_by_key(|s| (s.props.priority.unwrap_or(0), std::cmp::Reverse(s.id))).map(|s| s.id)
}

/// Which monitor port of `channel` feeds which playback port of `output`:
/// by `audio.channel` (FL to FL); a mono side feeds or is fed by every port
/// of the other; without any common position, in port order.
pub fn port_pairs(mixer: &Mixer, channel: u32, output: u32) -> Vec<(u32, u32)> {
    let mut from: Vec<&Port> = mixer.ports_of(channel).filter(|p| p.output && p.monitor).collect();
    let mut to: Vec<&Port> = mixer.ports_of(output).filter(|p| !p.output).collect();
    from.sort_by_key(|p| p.id);
    to.sort_by_key(|p| p.id);
    if from.is_empty() || to.is_empty() {
        return Vec::new();
    }
    if to.len() == 1 {
        return from.iter().map(|f| (f.id, to[0].id)).collect();
    }
    if from.len() == 1 {
        return to.iter().map(|t| (from[0].id, t.id)).collect();
    }
    let by_position: Vec<(u32, u32)> = from
        .iter()
        .filter_map(|f| {
            let position = f.channel.as_deref()?;
            to.iter().find(|t| t.channel.as_deref() == Some(position)).map(|t| (f.id, t.id))
        })
        .collect();
    if !by_position.is_empty() {
        return by_position;
    }
    from.iter().zip(&to).map(|(f, t)| (f.id, t.id)).collect()
}

#[cfg(test)]
mod tests;
