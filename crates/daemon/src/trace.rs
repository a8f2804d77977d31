//! A ring buffer of the last events, for `pvmctl trace` and SIGUSR1.
//! Entries are small `Copy` records, so tracing costs no allocation.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::stats::EventKind;

#[derive(Clone, Copy)]
struct Entry {
    at: Instant,
    kind: EventKind,
    subject: u32,
    took: Duration,
}

/// The last `capacity` events.
pub struct Trace {
    entries: Vec<Entry>,
    next: usize,
    capacity: usize,
    /// `Instant` and wall-clock time at creation, to print wall-clock timestamps.
    origin: (Instant, SystemTime),
}

impl Trace {
    /// An empty ring of `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Trace { entries: Vec::with_capacity(capacity), next: 0, capacity, origin: (Instant::now(), SystemTime::now()) }
    }

    /// Records one processed event.
    pub fn record(&mut self, at: Instant, kind: EventKind, subject: u32, took: Duration) {
        let e = Entry { at, kind, subject, took };
        if self.entries.len() < self.capacity {
            self.entries.push(e);
        } else {
            self.entries[self.next] = e;
        }
        self.next = (self.next + 1) % self.capacity;
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn ordered(&self) -> impl Iterator<Item = &Entry> {
        let (a, b) = if self.entries.len() < self.capacity {
            (&self.entries[..], &self.entries[..0])
        } else {
            (&self.entries[self.next..], &self.entries[..self.next])
        };
        a.iter().chain(b)
    }

    fn unix_secs(&self, at: Instant) -> f64 {
        let wall = self.origin.1 + at.saturating_duration_since(self.origin.0);
        wall.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
    }

    /// The entries, oldest first, as a JSON array on one line.
    pub fn to_json(&self) -> String {
        let mut o = String::from("[");
        for (i, e) in self.ordered().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "{{\"time\":{:.6},\"kind\":\"{}\",\"id\":{},\"processing_us\":{:.3}}}",
                self.unix_secs(e.at),
                e.kind.as_str(),
                e.subject,
                e.took.as_secs_f64() * 1e6
            );
        }
        o.push(']');
        o
    }

    /// The entries, oldest first, one per line (for the log on SIGUSR1).
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        for e in self.ordered() {
            let _ = writeln!(
                o,
                "{:.6} {:<13} id={:<6} {:.1}us",
                self.unix_secs(e.at),
                e.kind.as_str(),
                e.subject,
                e.took.as_secs_f64() * 1e6
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_entries_in_order() {
        let mut t = Trace::new(3);
        let now = Instant::now();
        for id in 1..=5 {
            t.record(now, EventKind::NodeInfo, id, Duration::from_micros(2));
        }
        assert_eq!(t.len(), 3);
        let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        let ids: Vec<u64> = json.as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, vec![3, 4, 5]);
        assert_eq!(t.to_text().lines().count(), 3);
    }
}
