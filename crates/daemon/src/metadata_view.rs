//! What this client knows of the `default` metadata, and a way to catch up
//! on events it missed.
//!
//! PipeWire holds back the property events of a client-exported metadata
//! (WirePlumber's `default`) from every client already bound to it while
//! another client binds it: from that bind until the exporter answers
//! PipeWire's ping. A tool that runs `pw-dump` or `wpctl` at the wrong moment
//! can thus hide a default-sink change or the echo of our own write. The
//! daemon keeps a [`MetadataView`] of what it heard and the writes whose echo
//! it still expects ([`Echoes`]); when an echo is late, or a request waits
//! for the metadata longer than it should, the edge binds the metadata again
//! (a fresh bind receives every property) and [`MetadataView::diff`] says
//! which events were missed, to replay them in order.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How long an echo of our own write may take before we assume it was
/// held back and read the metadata again. WirePlumber echoes in well under
/// a millisecond when nothing binds the metadata.
pub const ECHO_GRACE: Duration = Duration::from_millis(250);

/// The default sink the session manager chose (subject 0).
pub const DEFAULT_SINK_KEY: &str = "default.audio.sink";
/// The default sink a user or tool asked for (subject 0); the session manager
/// answers a change of it with [`DEFAULT_SINK_KEY`].
pub const CONFIGURED_SINK_KEY: &str = "default.configured.audio.sink";

/// The sink name in a `default.audio.sink` value: `{"name":"speakers"}`.
pub fn default_sink_name(value: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct V {
        name: String,
    }
    serde_json::from_str::<V>(value).ok().map(|v| v.name)
}

/// A property event: subject, key (`None`: every key of the subject), value
/// (`None`: removed).
pub type PropertyEvent = (u32, Option<String>, Option<String>);

/// The properties heard, per subject and key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataView {
    // Ordered, so a replay is in a stable order (subject 0 first).
    props: BTreeMap<(u32, String), String>,
}

impl MetadataView {
    /// Nothing heard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one property event as PipeWire sends it.
    pub fn apply(&mut self, subject: u32, key: Option<&str>, value: Option<&str>) {
        match (key, value) {
            (None, _) => self.props.retain(|(s, _), _| *s != subject),
            (Some(k), None) => {
                self.props.remove(&(subject, k.to_owned()));
            }
            (Some(k), Some(v)) => {
                self.props.insert((subject, k.to_owned()), v.to_owned());
            }
        }
    }

    /// The value heard for `key` of `subject`.
    pub fn get(&self, subject: u32, key: &str) -> Option<&str> {
        self.props.get(&(subject, key.to_owned())).map(String::as_str)
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.props.len()
    }

    /// Whether this event asks the session manager for another default sink
    /// than the one it shows: its answer, a change of `default.audio.sink`,
    /// is then to be expected (see [`Echoes::expect_change`]).
    pub fn asks_for_another_default(&self, subject: u32, key: Option<&str>, value: Option<&str>) -> bool {
        if subject != 0 || key != Some(CONFIGURED_SINK_KEY) {
            return false;
        }
        let asked = value.and_then(default_sink_name);
        let shown = self.get(0, DEFAULT_SINK_KEY).and_then(default_sink_name);
        asked.is_some() && asked != shown
    }

    /// Whether no property is known.
    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }

    /// The events that turn `self` into `fresh`: removals first, then the
    /// values that are new or changed, each in (subject, key) order.
    pub fn diff(&self, fresh: &MetadataView) -> Vec<PropertyEvent> {
        let removed =
            self.props.keys().filter(|k| !fresh.props.contains_key(*k)).map(|(s, k)| (*s, Some(k.clone()), None));
        let changed = fresh
            .props
            .iter()
            .filter(|(k, v)| self.props.get(*k) != Some(*v))
            .map(|((s, k), v)| (*s, Some(k.clone()), Some(v.clone())));
        removed.chain(changed).collect()
    }
}

/// What an awaited event must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Awaited {
    /// This value (`None`: removed): the echo of our write.
    Value(Option<String>),
    /// Any change: the session manager's answer to a request.
    Change,
}

/// Events we are owed: the echoes of our writes, and the session manager's
/// answers to a change of the configured default.
#[derive(Debug, Default)]
pub struct Echoes {
    expected: HashMap<(u32, String), (Awaited, Instant)>,
}

impl Echoes {
    /// Nothing expected.
    pub fn new() -> Self {
        Self::default()
    }

    /// We wrote `value` for `key` of `subject` at `now`; `view` is what we
    /// know. A write of the value already there may not be echoed at all,
    /// so none is expected then.
    pub fn wrote(&mut self, view: &MetadataView, subject: u32, key: &str, value: Option<&str>, now: Instant) {
        if view.get(subject, key) == value {
            self.expected.remove(&(subject, key.to_owned()));
        } else {
            self.expected.insert((subject, key.to_owned()), (Awaited::Value(value.map(str::to_owned)), now));
        }
    }

    /// Some change of `key` of `subject` is owed from `now` on.
    pub fn expect_change(&mut self, subject: u32, key: &str, now: Instant) {
        self.expected.entry((subject, key.to_owned())).or_insert((Awaited::Change, now));
    }

    /// A property event arrived: it may be the echo we wait for.
    pub fn heard(&mut self, subject: u32, key: Option<&str>, value: Option<&str>) {
        match key {
            None => self.forget(subject),
            Some(k) => {
                let id = (subject, k.to_owned());
                let owed = self.expected.get(&id).is_some_and(|(want, _)| match want {
                    Awaited::Value(v) => v.as_deref() == value,
                    Awaited::Change => true,
                });
                if owed {
                    self.expected.remove(&id);
                }
            }
        }
    }

    /// The subject went away: nothing about it will be echoed.
    pub fn forget(&mut self, subject: u32) {
        self.expected.retain(|(s, _), _| *s != subject);
    }

    /// Forgets everything (the metadata was read again, or went away).
    pub fn clear(&mut self) {
        self.expected.clear();
    }

    /// The oldest write still waiting for its echo.
    pub fn oldest(&self) -> Option<Instant> {
        self.expected.values().map(|(_, at)| *at).min()
    }

    /// Whether an echo is overdue at `now`.
    pub fn overdue(&self, now: Instant) -> bool {
        self.oldest().is_some_and(|at| now.saturating_duration_since(at) >= ECHO_GRACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(items: &[(u32, &str, &str)]) -> MetadataView {
        let mut v = MetadataView::new();
        for (s, k, val) in items {
            v.apply(*s, Some(k), Some(val));
        }
        v
    }

    fn ev(s: u32, k: &str, v: Option<&str>) -> PropertyEvent {
        (s, Some(k.to_owned()), v.map(str::to_owned))
    }

    #[test]
    fn events_set_remove_and_clear_a_subject() {
        let mut v = view(&[(0, "default.audio.sink", "a"), (40, "target.object", "33"), (40, "target.node", "33")]);
        v.apply(40, Some("target.node"), None);
        assert_eq!(v.get(40, "target.node"), None);
        assert_eq!(v.get(40, "target.object"), Some("33"));
        v.apply(40, None, None);
        assert_eq!(v.get(40, "target.object"), None);
        assert_eq!(v.get(0, "default.audio.sink"), Some("a"), "other subjects keep theirs");
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn the_diff_replays_what_was_missed_removals_first() {
        let old = view(&[(0, "default.audio.sink", "speakers"), (40, "target.object", "33"), (41, "x", "1")]);
        let fresh = view(&[(0, "default.audio.sink", "game"), (41, "x", "1"), (42, "target.object", "35")]);
        assert_eq!(
            old.diff(&fresh),
            [
                ev(40, "target.object", None),
                ev(0, "default.audio.sink", Some("game")),
                ev(42, "target.object", Some("35"))
            ]
        );
        let mut replayed = old.clone();
        for (s, k, v) in old.diff(&fresh) {
            replayed.apply(s, k.as_deref(), v.as_deref());
        }
        assert_eq!(replayed, fresh);
        assert!(fresh.diff(&fresh).is_empty(), "nothing missed, nothing replayed");
    }

    #[test]
    fn an_echo_is_expected_until_heard_and_overdue_after_the_grace() {
        let t0 = Instant::now();
        let known = view(&[(0, "default.configured.audio.sink", "{\"name\":\"a\"}")]);
        let mut e = Echoes::new();
        e.wrote(&known, 50, "target.object", Some("33"), t0);
        assert!(!e.overdue(t0 + ECHO_GRACE / 2));
        assert!(e.overdue(t0 + ECHO_GRACE));
        e.heard(50, Some("target.object"), Some("34"));
        assert!(e.overdue(t0 + ECHO_GRACE), "another value is not our echo");
        e.heard(50, Some("target.object"), Some("33"));
        assert_eq!(e.oldest(), None);
    }

    #[test]
    fn a_new_configured_default_owes_a_change_of_the_default() {
        let t0 = Instant::now();
        let known = view(&[(0, DEFAULT_SINK_KEY, "{\"name\":\"speakers\"}")]);
        let ask = |v: &str| known.asks_for_another_default(0, Some(CONFIGURED_SINK_KEY), Some(v));
        assert!(ask("{\"name\":\"game\"}"));
        assert!(ask("{ \"name\": \"game\" }"), "any JSON spacing");
        assert!(!ask("{\"name\":\"speakers\"}"), "already the default: nothing owed");
        assert!(!ask("not json"));
        assert!(!known.asks_for_another_default(0, Some(DEFAULT_SINK_KEY), Some("{\"name\":\"game\"}")));
        assert!(!known.asks_for_another_default(5, Some(CONFIGURED_SINK_KEY), Some("{\"name\":\"game\"}")));

        let mut e = Echoes::new();
        e.expect_change(0, DEFAULT_SINK_KEY, t0);
        e.heard(0, Some(CONFIGURED_SINK_KEY), Some("x"));
        assert!(e.overdue(t0 + ECHO_GRACE));
        e.heard(0, Some(DEFAULT_SINK_KEY), Some("{\"name\":\"game\"}"));
        assert_eq!(e.oldest(), None, "any value answers");
    }

    #[test]
    fn no_echo_is_expected_for_an_unchanged_value_or_a_subject_gone() {
        let t0 = Instant::now();
        let known = view(&[(0, "k", "v")]);
        let mut e = Echoes::new();
        e.wrote(&known, 0, "k", Some("v"), t0);
        assert_eq!(e.oldest(), None, "the same value may not be echoed");
        e.wrote(&known, 60, "target.object", None, t0);
        assert_eq!(e.oldest(), None, "clearing what is not there either");
        e.wrote(&known, 60, "target.object", Some("33"), t0);
        e.wrote(&known, 60, "target.node", Some("33"), t0);
        e.heard(60, None, None);
        assert_eq!(e.oldest(), None, "the stream went away");
        e.wrote(&known, 61, "target.object", Some("33"), t0);
        e.forget(61);
        assert!(!e.overdue(t0 + ECHO_GRACE));
    }
}
