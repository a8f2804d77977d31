//! What a request that changes PipeWire waits for before it is answered.
//!
//! A request's writes are followed by a `sync` round trip; once PipeWire has
//! processed them, the request is answered `OK` only when the graph (and so
//! the snapshot published just before the answer) shows the result. Plain
//! data checked against the [`Mixer`], so it is tested without PipeWire.

use pvm_ipc::protocol::{quote, Response};

use crate::model::{Channels, Mixer};

/// How close a volume must be to what was asked (PipeWire stores floats; the
/// cubic conversion round-trips within a few ulps).
const VOLUME_TOLERANCE: f32 = 1e-4;

/// The visible result a request waits for.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// Nothing beyond PipeWire having processed the writes.
    Processed,
    /// A sink's volume and/or mute.
    Sink {
        /// Sink node id.
        id: u32,
        /// `node.name`, for messages.
        name: String,
        /// Linear channel volumes asked for.
        channels: Option<Channels>,
        /// Mute asked for.
        muted: Option<bool>,
    },
    /// Streams' own volume and/or mute.
    Streams {
        /// App name, for messages.
        app: String,
        /// `(stream id, channels, mute)` asked for each stream.
        streams: Vec<(u32, Option<Channels>, Option<bool>)>,
    },
    /// The default sink.
    DefaultSink {
        /// `node.name` asked for.
        name: String,
    },
    /// A channel's audio going to one output (or nowhere), and only there.
    ChannelOutput {
        /// The channel's `node.name`.
        channel: String,
        /// `node.name` of the output; `None`: no output.
        output: Option<String>,
    },
    /// Every movable stream of an app linked to one sink, and only to it.
    AppOn {
        /// App name.
        app: String,
        /// `node.name` of the sink.
        sink: String,
    },
}

impl Expect {
    /// Whether PipeWire shows this result through the `default` metadata,
    /// whose events can be held back from us (see [`crate::metadata_view`]).
    pub fn shown_by_metadata(&self) -> bool {
        matches!(self, Expect::DefaultSink { .. })
    }
}

/// Where a request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Done and visible.
    Met,
    /// Not visible yet; keep waiting.
    NotYet,
    /// PipeWire accepted it but will show it only later: answer `OK pending: <why>`.
    Pending(String),
    /// It cannot happen any more: answer `ERROR <why>`.
    Failed(String),
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= VOLUME_TOLERANCE)
}

fn volume_matches(have: (&[f32], bool), want: (&Option<Channels>, Option<bool>)) -> bool {
    want.0.as_ref().is_none_or(|c| close(have.0, c)) && want.1.is_none_or(|m| m == have.1)
}

impl Expect {
    /// Checks the graph. `settled`: PipeWire has processed the writes and
    /// answered every round trip we give a change to show up.
    pub fn check(&self, mixer: &Mixer, settled: bool) -> Check {
        match self {
            Expect::Processed => {
                if settled {
                    Check::Met
                } else {
                    Check::NotYet
                }
            }
            Expect::Sink { id, name, channels, muted } => {
                let Some(sink) = mixer.sink(*id) else {
                    return Check::Failed(format!("sink {} went away", quote(name)));
                };
                if volume_matches((&sink.channels, sink.muted), (channels, *muted)) {
                    Check::Met
                } else if settled && !sink.running {
                    // Measured: a null sink that has never run keeps showing
                    // its old Props until it runs (wpctl and pactl see the same).
                    Check::Pending(format!(
                        "sink {} is not running; PipeWire shows the change when it starts",
                        quote(name)
                    ))
                } else {
                    Check::NotYet
                }
            }
            Expect::Streams { app, streams } => {
                let mut all = true;
                let mut any_left = false;
                for (id, channels, muted) in streams {
                    let Some(s) = mixer.stream(*id) else { continue };
                    any_left = true;
                    all &= volume_matches((&s.channels, s.muted), (channels, *muted));
                }
                if !any_left {
                    Check::Failed(format!("app {} went away", quote(app)))
                } else if all {
                    Check::Met
                } else {
                    Check::NotYet
                }
            }
            Expect::DefaultSink { name } => {
                if mixer.default_sink() == Some(name.as_str()) {
                    Check::Met
                } else {
                    Check::NotYet
                }
            }
            Expect::ChannelOutput { channel, output } => {
                let Some(node) = mixer.sink_by_name(channel).filter(|s| s.props.channel) else {
                    return Check::Failed(format!("channel {} went away", quote(channel)));
                };
                let want = match output {
                    Some(name) => match mixer.sink_by_name(name) {
                        Some(sink) => vec![sink.id],
                        None => return Check::Failed(format!("sink {} went away", quote(name))),
                    },
                    None => Vec::new(),
                };
                if mixer.sink_outputs(node.id) == want {
                    Check::Met
                } else {
                    Check::NotYet
                }
            }
            Expect::AppOn { app, sink } => {
                let Some(target) = mixer.sink_by_name(sink) else {
                    return Check::Pending(format!("sink {} does not exist", quote(sink)));
                };
                let Some(entry) = mixer.app(app) else { return Check::Met };
                let on_target = entry
                    .streams
                    .iter()
                    .filter_map(|&id| mixer.stream(id))
                    .filter(|s| s.movable())
                    .all(|s| !s.links.is_empty() && s.links.iter().all(|&(_, to)| to == target.id));
                if on_target {
                    Check::Met
                } else {
                    Check::NotYet
                }
            }
        }
    }

    /// The answer when the time limit passes before [`Check::Met`].
    pub fn on_timeout(&self, mixer: &Mixer) -> Response {
        match self {
            Expect::AppOn { app, sink } => {
                // Our part (the pin) is written; linking is the session
                // manager's, and it may come later.
                let waiting = mixer
                    .app(app)
                    .map(|a| {
                        a.streams
                            .iter()
                            .filter_map(|&id| mixer.stream(id))
                            .filter(|s| s.movable() && !s.links.iter().all(|&(_, to)| Some(to) == sink_id(mixer, sink)))
                            .count()
                    })
                    .unwrap_or(0);
                Response::Ok(Some(format!(
                    "pending: the session manager has not linked {waiting} stream(s) of {} to {} yet",
                    quote(app),
                    quote(sink)
                )))
            }
            Expect::ChannelOutput { channel, .. } => Response::Ok(Some(format!(
                "pending: the links of channel {} are not all in place yet; the output is kept and wired when \
                 PipeWire allows",
                quote(channel)
            ))),
            other => Response::Error(format!("timeout: PipeWire did not show {} in time", other.describe())),
        }
    }

    fn describe(&self) -> String {
        match self {
            Expect::Processed => "the change".into(),
            Expect::Sink { name, .. } => format!("the new volume or mute of sink {}", quote(name)),
            Expect::Streams { app, .. } => format!("the new volume or mute of app {}", quote(app)),
            Expect::DefaultSink { name } => format!("{} as the default sink", quote(name)),
            Expect::AppOn { app, sink } => format!("app {} on sink {}", quote(app), quote(sink)),
            Expect::ChannelOutput { channel, output } => format!(
                "channel {} playing to {}",
                quote(channel),
                output.as_deref().map_or_else(|| "nothing".to_owned(), quote)
            ),
        }
    }
}

fn sink_id(mixer: &Mixer, name: &str) -> Option<u32> {
    mixer.sink_by_name(name).map(|s| s.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GraphEvent, NodeProps};

    fn mixer() -> Mixer {
        let mut m = Mixer::new();
        let props =
            NodeProps::from_pairs([("media.class", "Audio/Sink"), ("node.name", "game"), ("object.serial", "9")]);
        m.apply(GraphEvent::NodeAdded { id: 30, props });
        m.apply(GraphEvent::NodeVolume {
            id: 30,
            channels: Some([1.0, 1.0].into_iter().collect()),
            muted: Some(false),
        });
        let props = NodeProps::from_pairs([("media.class", "Stream/Output/Audio"), ("application.name", "A")]);
        m.apply(GraphEvent::NodeAdded { id: 40, props });
        m
    }

    fn sink_half() -> Expect {
        Expect::Sink { id: 30, name: "game".into(), channels: Some([0.125, 0.125].into_iter().collect()), muted: None }
    }

    #[test]
    fn a_volume_is_met_only_once_the_graph_shows_it() {
        let mut m = mixer();
        m.apply(GraphEvent::NodeInfo { id: 30, props: None, running: Some(true) });
        assert_eq!(sink_half().check(&m, true), Check::NotYet, "running sink: wait for the param event");
        m.apply(GraphEvent::NodeVolume { id: 30, channels: Some([0.125, 0.125].into_iter().collect()), muted: None });
        assert_eq!(sink_half().check(&m, false), Check::Met);
    }

    #[test]
    fn an_idle_sink_is_pending_once_settled() {
        let m = mixer();
        assert_eq!(sink_half().check(&m, false), Check::NotYet);
        assert!(matches!(sink_half().check(&m, true), Check::Pending(w) if w.contains("not running")));
    }

    #[test]
    fn a_vanished_sink_fails() {
        let mut m = mixer();
        m.apply(GraphEvent::Removed { id: 30 });
        assert!(matches!(sink_half().check(&m, true), Check::Failed(_)));
        assert!(matches!(sink_half().on_timeout(&m), Response::Error(e) if e.starts_with("timeout")));
    }

    #[test]
    fn an_app_is_on_its_sink_when_every_link_goes_there() {
        let mut m = mixer();
        let on = Expect::AppOn { app: "A".into(), sink: "game".into() };
        assert_eq!(on.check(&m, true), Check::NotYet, "not linked yet");
        let props =
            NodeProps::from_pairs([("media.class", "Audio/Sink"), ("node.name", "chat"), ("object.serial", "8")]);
        m.apply(GraphEvent::NodeAdded { id: 31, props });
        m.apply(GraphEvent::link(50, 40, 31));
        m.apply(GraphEvent::link(51, 40, 30));
        assert_eq!(on.check(&m, true), Check::NotYet, "still linked to chat too");
        m.apply(GraphEvent::Removed { id: 50 });
        assert_eq!(on.check(&m, true), Check::Met);
        assert!(matches!(on.on_timeout(&m), Response::Ok(Some(p)) if p.contains("0 stream(s)")));
    }

    #[test]
    fn default_sink_waits_for_the_metadata() {
        let mut m = mixer();
        let e = Expect::DefaultSink { name: "game".into() };
        assert_eq!(e.check(&m, true), Check::NotYet);
        m.apply(GraphEvent::DefaultSink { name: Some("game".into()) });
        assert_eq!(e.check(&m, false), Check::Met);
    }
}
