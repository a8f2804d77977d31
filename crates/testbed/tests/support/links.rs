//! The streams and links of one PipeWire instance, as the hook tests look at
//! them: a thin view over [`testbed::GraphWatcher`], which records every link
//! each playback stream ever gets, however short its life.

use std::path::Path;
use std::time::{Duration, Instant};

use testbed::{GraphWatcher, StreamEvent, StreamHistory, WatchLog};

/// One playback stream node, as the watcher saw it.
#[derive(Clone, Debug)]
pub struct Stream {
    /// Its node id (ids are reused once a node is gone).
    pub id: u32,
    /// Its `application.name`.
    pub app: Option<String>,
    /// When its global arrived.
    pub appeared: Instant,
    /// The `node.name` of the input node of every link it ever had, with
    /// when the link's global arrived (one entry per port link).
    pub links: Vec<(String, Instant)>,
}

impl Stream {
    fn of(history: &StreamHistory) -> Stream {
        let links = history
            .events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Linked { sink, at } => Some((sink.clone(), *at)),
                StreamEvent::Metadata { .. } => None,
            })
            .collect();
        Stream { id: history.node, app: history.app_name.clone(), appeared: history.appeared, links }
    }

    /// The distinct sinks it was ever linked to, sorted.
    pub fn sinks(&self) -> Vec<String> {
        let mut sinks: Vec<String> = self.links.iter().map(|(sink, _)| sink.clone()).collect();
        sinks.sort();
        sinks.dedup();
        sinks
    }

    /// The sink of its first link.
    pub fn first_sink(&self) -> Option<&str> {
        self.links.first().map(|(sink, _)| sink.as_str())
    }

    /// How long after it appeared its first link appeared.
    pub fn first_link_after(&self) -> Option<Duration> {
        self.links.first().map(|(_, at)| at.saturating_duration_since(self.appeared))
    }
}

fn streams(log: &WatchLog) -> Vec<Stream> {
    log.streams.iter().map(Stream::of).collect()
}

/// Watches one PipeWire instance from [`LinkWatcher::start`] on.
pub struct LinkWatcher(GraphWatcher);

impl LinkWatcher {
    /// Connects to the PipeWire socket at `socket`; returns once the graph
    /// as it is has been enumerated.
    pub fn start(socket: &Path) -> LinkWatcher {
        LinkWatcher(GraphWatcher::start(socket).expect("starting the graph watcher"))
    }

    /// The streams seen so far, in order of appearance.
    pub fn streams(&self) -> Vec<Stream> {
        self.0.with(streams)
    }

    /// Waits until `condition` holds (checked after every change) and returns
    /// the streams then; panics after `timeout`, naming `what`.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&[Stream]) -> bool,
    ) -> Vec<Stream> {
        self.0
            .wait_for(timeout, what, |log| {
                let now = streams(log);
                condition(&now).then_some(now)
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }
}
