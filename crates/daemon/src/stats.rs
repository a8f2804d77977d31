//! Counters and the event-to-snapshot latency histogram, rendered in the
//! Prometheus text format for the stats file.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::model::GraphEvent;

/// Kinds of events, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// A sink or stream appeared.
    NodeAdded,
    /// A node's info (properties, state).
    NodeInfo,
    /// A node's volume or mute.
    NodeVolume,
    /// A device route's volume or mute.
    DeviceRoute,
    /// A link appeared.
    LinkAdded,
    /// A port of a sink appeared.
    PortAdded,
    /// A global went away.
    Removed,
    /// The default sink changed.
    DefaultSink,
    /// Another `default` metadata property.
    Metadata,
}

impl EventKind {
    const ALL: [EventKind; 9] = [
        EventKind::NodeAdded,
        EventKind::NodeInfo,
        EventKind::NodeVolume,
        EventKind::DeviceRoute,
        EventKind::LinkAdded,
        EventKind::PortAdded,
        EventKind::Removed,
        EventKind::DefaultSink,
        EventKind::Metadata,
    ];

    /// The kind of a graph event.
    pub fn of(event: &GraphEvent) -> Self {
        match event {
            GraphEvent::NodeAdded { .. } => EventKind::NodeAdded,
            GraphEvent::NodeInfo { .. } => EventKind::NodeInfo,
            GraphEvent::NodeVolume { .. } => EventKind::NodeVolume,
            GraphEvent::DeviceRoute { .. } => EventKind::DeviceRoute,
            GraphEvent::LinkAdded { .. } => EventKind::LinkAdded,
            GraphEvent::PortAdded { .. } => EventKind::PortAdded,
            GraphEvent::Removed { .. } => EventKind::Removed,
            GraphEvent::DefaultSink { .. } => EventKind::DefaultSink,
        }
    }

    /// The label used in the stats file and the trace.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::NodeAdded => "node_added",
            EventKind::NodeInfo => "node_info",
            EventKind::NodeVolume => "node_volume",
            EventKind::DeviceRoute => "device_route",
            EventKind::LinkAdded => "link_added",
            EventKind::PortAdded => "port_added",
            EventKind::Removed => "removed",
            EventKind::DefaultSink => "default_sink",
            EventKind::Metadata => "metadata",
        }
    }
}

/// Latency histogram with 1 µs buckets below 1 ms and 1 ms buckets up to 1 s.
pub struct Histogram {
    micros: Box<[u64; 1000]>,
    millis: Box<[u64; 1000]>,
    over: u64,
    count: u64,
    sum_ns: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { micros: Box::new([0; 1000]), millis: Box::new([0; 1000]), over: 0, count: 0, sum_ns: 0 }
    }
}

impl Histogram {
    /// Adds one sample.
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros();
        if us < 1000 {
            self.micros[us as usize] += 1;
        } else if us < 1_000_000 {
            self.millis[(us / 1000) as usize] += 1;
        } else {
            self.over += 1;
        }
        self.count += 1;
        self.sum_ns += d.as_nanos();
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1), or `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.micros.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_micros(i as u64 + 1));
            }
        }
        for (i, n) in self.millis.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_millis(i as u64 + 1));
            }
        }
        Some(Duration::from_secs(1))
    }

    /// Samples at or below `limit` (a bucket boundary).
    fn at_most(&self, limit: Duration) -> u64 {
        let us = limit.as_micros() as usize;
        if us <= 1000 {
            self.micros[..us.min(1000)].iter().sum()
        } else {
            let ms = (us / 1000).min(1000);
            self.micros.iter().sum::<u64>() + self.millis[..ms].iter().sum::<u64>()
        }
    }
}

/// Everything the stats file reports.
pub struct Stats {
    started: Instant,
    events: [u64; EventKind::ALL.len()],
    /// Snapshots published.
    pub publishes: u64,
    /// Events folded into a publish that was already pending.
    pub coalesced: u64,
    /// Routing metadata decisions written (each sets `target.object` and `target.node`).
    pub route_writes: u64,
    /// Control requests.
    pub requests: u64,
    /// Control requests answered with ERROR.
    pub request_errors: u64,
    /// Other errors (config, saving routes, PipeWire calls).
    pub errors: u64,
    /// Reconnections to PipeWire.
    pub reconnects: u64,
    /// Times the `default` metadata was read again because events were
    /// held back from us (see [`crate::metadata_view`]).
    pub metadata_resyncs: u64,
    /// Event-to-snapshot latency.
    pub latency: Histogram,
    /// Something changed since the stats file was last written.
    pub changed: bool,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            events: [0; EventKind::ALL.len()],
            publishes: 0,
            coalesced: 0,
            route_writes: 0,
            requests: 0,
            request_errors: 0,
            errors: 0,
            reconnects: 0,
            metadata_resyncs: 0,
            latency: Histogram::default(),
            changed: true,
        }
    }
}

const BUCKETS_US: [u64; 12] = [10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10_000, 100_000, 1_000_000];

impl Stats {
    /// Counts one event.
    pub fn count_event(&mut self, kind: EventKind) {
        self.events[kind as usize] += 1;
        self.changed = true;
    }

    /// Events of one kind so far.
    pub fn events(&self, kind: EventKind) -> u64 {
        self.events[kind as usize]
    }

    /// Records a publish and its event-to-snapshot latency.
    pub fn record_publish(&mut self, latency: Duration) {
        self.publishes += 1;
        self.latency.record(latency);
        self.changed = true;
    }

    /// The stats in Prometheus text format. `rss` is `(current, peak)` in bytes.
    pub fn render(&self, rss: Option<(u64, u64)>) -> String {
        let mut o = String::with_capacity(4096);
        let _ =
            writeln!(o, "# HELP pvm_events_total PipeWire events processed, by kind.\n# TYPE pvm_events_total counter");
        for k in EventKind::ALL {
            let _ = writeln!(o, "pvm_events_total{{kind=\"{}\"}} {}", k.as_str(), self.events(k));
        }
        let (intern_hits, intern_misses) = crate::model::intern::counters();
        let counters: [(&str, &str, u64); 11] = [
            ("publishes_total", "Snapshots published.", self.publishes),
            ("coalesced_events_total", "Events folded into an already pending publish.", self.coalesced),
            ("metadata_writes_total", "Routing decisions written to the default metadata.", self.route_writes),
            ("requests_total", "Control requests served.", self.requests),
            ("request_errors_total", "Control requests answered with ERROR.", self.request_errors),
            ("errors_total", "Errors (config, routes file, PipeWire calls).", self.errors),
            ("reconnects_total", "Reconnections to PipeWire.", self.reconnects),
            (
                "metadata_resyncs_total",
                "Times the default metadata was read again after its events were held back.",
                self.metadata_resyncs,
            ),
            ("latency_samples_total", "Publishes with a measured event-to-snapshot latency.", self.latency.count()),
            ("interning_hits_total", "Property strings found in the intern table (no allocation).", intern_hits),
            ("interning_misses_total", "Property strings added to the intern table.", intern_misses),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(o, "# HELP pvm_{name} {help}\n# TYPE pvm_{name} counter\npvm_{name} {value}");
        }
        let _ = writeln!(
            o,
            "# HELP pvm_event_to_snapshot_seconds Time from the first event of a pass to the publish of its snapshot.\n# TYPE pvm_event_to_snapshot_seconds histogram"
        );
        for us in BUCKETS_US {
            let n = self.latency.at_most(Duration::from_micros(us));
            let _ = writeln!(o, "pvm_event_to_snapshot_seconds_bucket{{le=\"{}\"}} {n}", us as f64 / 1e6);
        }
        let _ = writeln!(o, "pvm_event_to_snapshot_seconds_bucket{{le=\"+Inf\"}} {}", self.latency.count());
        let _ = writeln!(o, "pvm_event_to_snapshot_seconds_sum {}", self.latency.sum_ns as f64 / 1e9);
        let _ = writeln!(o, "pvm_event_to_snapshot_seconds_count {}", self.latency.count());
        for (q, label) in [(0.5, "p50"), (0.99, "p99")] {
            let v = self.latency.quantile(q).map_or(0.0, |d| d.as_secs_f64());
            let _ = writeln!(
                o,
                "# HELP pvm_event_to_snapshot_{label}_seconds {label} of the event-to-snapshot latency (bucket upper bound).\n# TYPE pvm_event_to_snapshot_{label}_seconds gauge\npvm_event_to_snapshot_{label}_seconds {v}"
            );
        }
        if let Some((cur, peak)) = rss {
            let _ =
                writeln!(o, "# HELP pvm_rss_bytes Resident set size.\n# TYPE pvm_rss_bytes gauge\npvm_rss_bytes {cur}");
            let _ = writeln!(
                o,
                "# HELP pvm_rss_peak_bytes Peak resident set size.\n# TYPE pvm_rss_peak_bytes gauge\npvm_rss_peak_bytes {peak}"
            );
        }
        if let Some(n) = crate::alloc_count::allocations() {
            let _ = writeln!(
                o,
                "# HELP pvm_heap_allocations_total Heap allocations so far (feature count-alloc).\n# TYPE pvm_heap_allocations_total counter\npvm_heap_allocations_total {n}"
            );
        }
        let _ = writeln!(
            o,
            "# HELP pvm_uptime_seconds Seconds since the daemon started.\n# TYPE pvm_uptime_seconds gauge\npvm_uptime_seconds {}",
            self.started.elapsed().as_secs()
        );
        o
    }
}

/// Current and peak RSS of this process in bytes, from `/proc/self/status`.
pub fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_buckets() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..98 {
            h.record(Duration::from_micros(20));
        }
        h.record(Duration::from_micros(700));
        h.record(Duration::from_millis(3));
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(21)));
        assert_eq!(h.quantile(0.99), Some(Duration::from_micros(701)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_millis(4)));
        assert_eq!(h.at_most(Duration::from_micros(100)), 98);
        assert_eq!(h.at_most(Duration::from_millis(10)), 100);
    }

    #[test]
    fn render_is_prometheus_text() {
        let mut s = Stats::default();
        s.count_event(EventKind::NodeAdded);
        s.record_publish(Duration::from_micros(30));
        let text = s.render(Some((1000, 2000)));
        assert!(text.contains("pvm_events_total{kind=\"node_added\"} 1\n"));
        assert!(text.contains("pvm_publishes_total 1\n"));
        assert!(text.contains("pvm_event_to_snapshot_seconds_bucket{le=\"0.00005\"} 1\n"));
        assert!(text.contains("pvm_rss_peak_bytes 2000\n"));
        for line in text.lines() {
            assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.starts_with("pvm_"), "{line}");
        }
    }
}
