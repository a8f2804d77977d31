//! Requests answered later: those waiting for PipeWire to process their
//! writes and show the result, and those that came before the first sync.
//!
//! Plain bookkeeping, driven by the runtime: it records each waiting request
//! with the `sync` that follows its writes, marks round trips as they
//! complete, attributes PipeWire's errors to the request whose proxy they
//! name, and hands back the answers that are due. Every request has a
//! deadline ([`ANSWER_LIMIT`]); nothing waits longer.

use std::time::{Duration, Instant};

use pvm_ipc::protocol::{Request, Response};

use crate::control::server::Token;
use crate::expect::{Check, Expect};
use crate::model::{Channels, Mixer};

/// The longest a request waits for its answer (documented in
/// docs/protocol.md).
pub const ANSWER_LIMIT: Duration = Duration::from_secs(1);

/// How long a request shown by the `default` metadata waits before the
/// metadata is read again, in case its events were held back from us (see
/// [`crate::metadata_view`]).
pub const RECHECK_AFTER: Duration = Duration::from_millis(250);

/// Round trips after a request's writes before a change PipeWire has not
/// shown is taken as "accepted, shown later" (see [`Check::Pending`]).
const SETTLE_ROUNDS: u8 = 2;

/// A request waiting for its result to show.
#[derive(Debug)]
struct Waiting {
    token: Token,
    expect: Expect,
    payload: Option<String>,
    /// Proxies its writes went through.
    proxies: Vec<u32>,
    /// The round trip in flight for it, if any.
    sync: Option<i32>,
    /// Round trips completed since its writes.
    rounds: u8,
    /// What PipeWire reported against one of its writes.
    error: Option<String>,
    /// When to read the metadata again if it is still not shown.
    recheck: Option<Instant>,
    deadline: Instant,
}

/// A request that came before the graph was enumerated.
#[derive(Debug)]
struct Early {
    token: Token,
    request: Request,
    deadline: Instant,
}

/// What the runtime must do for a settled-but-invisible sink volume.
#[derive(Debug, PartialEq)]
pub struct Deferral {
    /// Sink node id.
    pub sink: u32,
    /// Channel volumes asked for.
    pub channels: Option<Channels>,
    /// Mute asked for.
    pub muted: Option<bool>,
}

/// All requests answered later.
#[derive(Debug, Default)]
pub struct Requests {
    waiting: Vec<Waiting>,
    early: Vec<Early>,
}

impl Requests {
    /// Nothing waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.early.is_empty()
    }

    /// A request whose writes went through `proxies` (failures to write are
    /// answered before this). Its round trip is asked for by
    /// [`Requests::needs_sync`] / [`Requests::sync_sent`].
    pub fn wait(&mut self, token: Token, expect: Expect, payload: Option<String>, proxies: Vec<u32>, now: Instant) {
        self.waiting.push(Waiting {
            token,
            payload,
            proxies,
            sync: None,
            rounds: 0,
            error: None,
            recheck: expect.shown_by_metadata().then(|| now + RECHECK_AFTER),
            deadline: now + ANSWER_LIMIT,
            expect,
        });
    }

    /// A request to run once the graph is enumerated.
    pub fn wait_for_sync(&mut self, token: Token, request: Request, now: Instant) {
        self.early.push(Early { token, request, deadline: now + ANSWER_LIMIT });
    }

    /// The requests that came before the first sync, to run now.
    pub fn take_early(&mut self) -> Vec<(Token, Request)> {
        self.early.drain(..).map(|e| (e.token, e.request)).collect()
    }

    /// Whether a request needs a round trip that has not been asked for.
    pub fn needs_sync(&self) -> bool {
        self.waiting.iter().any(|w| w.sync.is_none() && w.rounds < SETTLE_ROUNDS)
    }

    /// A round trip `seq` was sent for every request that needed one.
    pub fn sync_sent(&mut self, seq: i32) {
        for w in self.waiting.iter_mut().filter(|w| w.sync.is_none() && w.rounds < SETTLE_ROUNDS) {
            w.sync = Some(seq);
        }
    }

    /// Round trip `seq` completed.
    pub fn synced(&mut self, seq: i32) {
        for w in self.waiting.iter_mut().filter(|w| w.sync == Some(seq)) {
            w.sync = None;
            w.rounds += 1;
        }
    }

    /// PipeWire reported an error through `proxy`: it belongs to the
    /// requests whose writes went through it and are not yet processed.
    pub fn proxy_error(&mut self, proxy: u32, message: &str) {
        for w in self.waiting.iter_mut().filter(|w| w.rounds == 0 && w.proxies.contains(&proxy)) {
            w.error.get_or_insert_with(|| message.to_owned());
        }
    }

    /// Answers due now, given the graph as just published. Volumes that
    /// PipeWire accepted but shows only later are returned as deferrals.
    pub fn resolve(&mut self, mixer: &Mixer, now: Instant) -> (Vec<(Token, Response)>, Vec<Deferral>) {
        let mut answers = Vec::new();
        let mut deferrals = Vec::new();
        for e in extract(&mut self.early, |e| now >= e.deadline) {
            answers.push((e.token, Response::Error("timeout: not in sync with PipeWire yet".into())));
        }
        for w in extract(&mut self.waiting, |_| true) {
            let settled = w.rounds >= SETTLE_ROUNDS;
            let answer = if let Some(e) = &w.error {
                Some(Response::Error(e.clone()))
            } else {
                match w.expect.check(mixer, settled) {
                    // Met before PipeWire has even processed the writes can
                    // only mean nothing changes: still wait for the round
                    // trip, so a later request sees its effect.
                    Check::Met if w.rounds > 0 => Some(Response::Ok(w.payload.clone())),
                    Check::Met | Check::NotYet if now >= w.deadline => Some(w.expect.on_timeout(mixer)),
                    Check::Met | Check::NotYet => None,
                    Check::Pending(why) => {
                        if let Expect::Sink { id, channels, muted, .. } = &w.expect {
                            deferrals.push(Deferral { sink: *id, channels: channels.clone(), muted: *muted });
                        }
                        Some(Response::Ok(Some(format!("pending: {why}"))))
                    }
                    Check::Failed(why) => Some(Response::Error(why)),
                }
            };
            match answer {
                Some(r) => answers.push((w.token, r)),
                None => self.waiting.push(w),
            }
        }
        (answers, deferrals)
    }

    /// The connection to PipeWire was lost: round trips in flight will
    /// never complete; what waited for them is answered at its deadline or
    /// when the graph shows it after the reconnect.
    pub fn connection_lost(&mut self) {
        for w in &mut self.waiting {
            w.sync = None;
            w.rounds = SETTLE_ROUNDS;
        }
    }

    /// Whether a request still waiting reached its time to read the
    /// metadata again (each one asks once).
    pub fn take_recheck(&mut self, now: Instant) -> bool {
        let mut due = false;
        for w in &mut self.waiting {
            if w.recheck.is_some_and(|at| now >= at) {
                w.recheck = None;
                due = true;
            }
        }
        due
    }

    /// The earliest deadline or recheck, for the runtime's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        let waiting = self.waiting.iter().flat_map(|w| [Some(w.deadline), w.recheck]).flatten();
        waiting.chain(self.early.iter().map(|e| e.deadline)).min()
    }
}

/// Removes and returns the items for which `pred` holds, keeping the order of
/// the rest.
fn extract<T>(items: &mut Vec<T>, mut pred: impl FnMut(&T) -> bool) -> Vec<T> {
    let (out, keep): (Vec<T>, Vec<T>) = items.drain(..).partition(|t| pred(t));
    *items = keep;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GraphEvent, NodeProps};

    fn mixer(running: bool) -> Mixer {
        let mut m = Mixer::new();
        let props =
            NodeProps::from_pairs([("media.class", "Audio/Sink"), ("node.name", "game"), ("object.serial", "9")]);
        m.apply(GraphEvent::NodeAdded { id: 30, props });
        m.apply(GraphEvent::NodeVolume {
            id: 30,
            channels: Some([1.0, 1.0].into_iter().collect()),
            muted: Some(false),
        });
        m.apply(GraphEvent::NodeInfo { id: 30, props: None, running: Some(running) });
        m
    }

    fn mute() -> Expect {
        Expect::Sink { id: 30, name: "game".into(), channels: None, muted: Some(true) }
    }

    #[test]
    fn ok_only_after_the_round_trip_and_the_event() {
        let mut m = mixer(true);
        let mut r = Requests::new();
        let t0 = Instant::now();
        r.wait(7, mute(), None, vec![3], t0);
        assert!(r.needs_sync());
        r.sync_sent(11);
        assert!(!r.needs_sync());
        assert!(r.resolve(&m, t0).0.is_empty(), "not processed yet");
        r.synced(11);
        assert!(r.resolve(&m, t0).0.is_empty(), "processed, not shown yet");
        m.apply(GraphEvent::NodeVolume { id: 30, channels: None, muted: Some(true) });
        assert_eq!(r.resolve(&m, t0).0, vec![(7, Response::Ok(None))]);
        assert!(r.is_empty());
    }

    #[test]
    fn an_unchanged_value_still_waits_for_the_round_trip() {
        let m = mixer(true);
        let mut r = Requests::new();
        let t0 = Instant::now();
        r.wait(1, Expect::Sink { id: 30, name: "game".into(), channels: None, muted: Some(false) }, None, vec![], t0);
        r.sync_sent(2);
        assert!(r.resolve(&m, t0).0.is_empty());
        r.synced(2);
        assert_eq!(r.resolve(&m, t0).0, vec![(1, Response::Ok(None))]);
    }

    #[test]
    fn an_idle_sink_is_pending_after_two_round_trips_and_deferred() {
        let m = mixer(false);
        let mut r = Requests::new();
        let t0 = Instant::now();
        r.wait(1, mute(), None, vec![], t0);
        for seq in [5, 6] {
            assert!(r.needs_sync());
            r.sync_sent(seq);
            r.synced(seq);
            if seq == 5 {
                assert!(r.resolve(&m, t0).0.is_empty());
            }
        }
        let (answers, deferrals) = r.resolve(&m, t0);
        assert!(matches!(&answers[..], [(1, Response::Ok(Some(p)))] if p.starts_with("pending: ")));
        assert_eq!(deferrals, vec![Deferral { sink: 30, channels: None, muted: Some(true) }]);
    }

    #[test]
    fn pipewire_errors_are_the_answer() {
        let m = mixer(true);
        let mut r = Requests::new();
        let t0 = Instant::now();
        r.wait(1, mute(), None, vec![3], t0);
        r.wait(2, mute(), None, vec![4], t0);
        r.sync_sent(9);
        r.proxy_error(3, "Invalid argument");
        r.synced(9);
        assert_eq!(r.resolve(&m, t0).0, vec![(1, Response::Error("Invalid argument".into()))]);
    }

    #[test]
    fn nothing_waits_past_the_limit() {
        let m = mixer(true);
        let mut r = Requests::new();
        let t0 = Instant::now();
        r.wait(1, mute(), None, vec![], t0);
        r.wait_for_sync(2, Request::Ping, t0);
        assert_eq!(r.next_deadline(), Some(t0 + ANSWER_LIMIT));
        let (answers, _) = r.resolve(&m, t0 + ANSWER_LIMIT);
        assert_eq!(answers.len(), 2);
        assert!(answers.iter().all(|(_, a)| matches!(a, Response::Error(e) if e.starts_with("timeout"))));
        assert!(r.is_empty());
    }

    #[test]
    fn a_default_sink_not_shown_in_time_asks_once_to_read_the_metadata_again() {
        let m = mixer(true);
        let mut r = Requests::new();
        let t0 = Instant::now();
        r.wait(1, Expect::DefaultSink { name: "game".into() }, None, vec![], t0);
        r.wait(2, mute(), None, vec![], t0);
        assert_eq!(r.next_deadline(), Some(t0 + RECHECK_AFTER), "the timer wakes for the recheck");
        assert!(!r.take_recheck(t0 + RECHECK_AFTER / 2));
        assert!(r.take_recheck(t0 + RECHECK_AFTER));
        assert!(!r.take_recheck(t0 + RECHECK_AFTER * 2), "once per request");
        assert_eq!(r.next_deadline(), Some(t0 + ANSWER_LIMIT));
        assert!(r.resolve(&m, t0 + RECHECK_AFTER).0.is_empty(), "still waiting after the recheck");
    }

    #[test]
    fn early_requests_are_handed_back_in_order() {
        let mut r = Requests::new();
        let t0 = Instant::now();
        r.wait_for_sync(1, Request::Ping, t0);
        r.wait_for_sync(1, Request::Status, t0);
        assert_eq!(r.take_early(), vec![(1, Request::Ping), (1, Request::Status)]);
        assert!(r.is_empty());
    }
}
