//! The JSON form of a snapshot: what `STATUS`, `SUBSCRIBE` and
//! `pvmctl status --json` print.
//!
//! ```json
//! {"generation":42,"running":true,"connected":true,"overflow":false,"truncated":false,
//!  "default_sink":"game","total_sinks":2,"total_apps":1,
//!  "sinks":[{"id":40,"name":"game","description":"Game","volume":0.5,"muted":false,"default":false,"channels":2,
//!            "kind":"channel","output":"headphones"}],
//!  "apps":[{"name":"Firefox","sink":"game","streams":[71],"active":true,"volume":1.0,"muted":false,
//!           "target":"game","target_source":"rule","movable":true}]}
//! ```

use serde::{Deserialize, Serialize};

use crate::layout::{app_flags, header_flags, sink_flags, AppSlot, SinkSlot, Snapshot, TargetSource};

/// The whole mixer state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Seqlock generation of the snapshot this was read from.
    pub generation: u64,
    /// A daemon owns the snapshot and is publishing.
    pub running: bool,
    /// The daemon is connected to PipeWire.
    pub connected: bool,
    /// More sinks or apps exist than the snapshot has slots for.
    pub overflow: bool,
    /// At least one name was cut to fit its slot.
    pub truncated: bool,
    /// The session manager's routing hold is active (WirePlumber 0.5 with the
    /// hook `pvmctl setup wireplumber` installs): new streams wait for the
    /// daemon's decision. `false`: streams are pinned as they appear and may
    /// start on another sink for a moment.
    #[serde(default)]
    pub hold_active: bool,
    /// `node.name` of the default sink, if known.
    pub default_sink: Option<String>,
    /// Sinks the daemon knows (may exceed `sinks.len()`).
    pub total_sinks: u32,
    /// Apps the daemon knows (may exceed `apps.len()`).
    pub total_apps: u32,
    /// The sinks in the snapshot.
    pub sinks: Vec<SinkStatus>,
    /// The apps in the snapshot.
    pub apps: Vec<AppStatus>,
}

/// One sink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SinkStatus {
    /// PipeWire node id.
    pub id: u32,
    /// `node.name`.
    pub name: String,
    /// `node.description`.
    pub description: String,
    /// Volume on the cubic scale wpctl shows, rounded to 4 decimals.
    pub volume: f64,
    /// Muted.
    pub muted: bool,
    /// The default sink.
    pub default: bool,
    /// Number of channels.
    pub channels: u32,
    /// `"channel"` (made by the daemon from a `[[channel]]`) or `"device"`
    /// (any other sink).
    pub kind: String,
    /// A channel's current output (`node.name`): where its audio goes.
    /// `None` for a channel without output and for every device.
    pub output: Option<String>,
}

/// One application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    /// App name.
    pub name: String,
    /// `node.name` of the sink it plays to; `None` when not linked.
    pub sink: Option<String>,
    /// Node ids of its streams.
    pub streams: Vec<u32>,
    /// At least one stream is running.
    pub active: bool,
    /// Volume of its first stream, cubic scale, rounded to 4 decimals.
    pub volume: f64,
    /// All its streams are muted.
    pub muted: bool,
    /// The sink we route it to; `None` when the session manager decides.
    pub target: Option<String>,
    /// Where `target` comes from: `"rule"`, `"route"`, `"other-tool"` (moved
    /// by the user in another tool after it started) or `"session-manager"`.
    pub target_source: String,
    /// Its streams may be moved.
    pub movable: bool,
}

/// Rounds a slot's `f32` volume to 4 decimals, so `0.49999997` reads `0.5`.
pub fn round_volume(volume: f32) -> f64 {
    (f64::from(volume) * 10_000.0).round() / 10_000.0
}

fn non_empty(s: std::borrow::Cow<'_, str>) -> Option<String> {
    (!s.is_empty()).then(|| s.into_owned())
}

impl From<&SinkSlot> for SinkStatus {
    fn from(slot: &SinkSlot) -> Self {
        SinkStatus {
            id: slot.id,
            name: slot.name().into_owned(),
            description: slot.description().into_owned(),
            volume: round_volume(slot.volume),
            muted: slot.has(sink_flags::MUTED),
            default: slot.has(sink_flags::DEFAULT),
            channels: slot.channels,
            kind: slot.kind().as_str().to_owned(),
            output: slot.output().map(|o| o.into_owned()),
        }
    }
}

impl From<&AppSlot> for AppStatus {
    fn from(slot: &AppSlot) -> Self {
        AppStatus {
            name: slot.name().into_owned(),
            sink: non_empty(slot.sink()),
            streams: slot.stream_ids().collect(),
            active: slot.has(app_flags::ACTIVE),
            volume: round_volume(slot.volume),
            muted: slot.has(app_flags::MUTED),
            target: non_empty(slot.target()),
            target_source: TargetSource::from_u32(slot.target_source).as_str().to_owned(),
            movable: slot.has(app_flags::MOVABLE),
        }
    }
}

impl From<&Snapshot> for Status {
    fn from(snapshot: &Snapshot) -> Self {
        let header = &snapshot.header;
        let flag = |bit: u32| header.flags & bit != 0;
        let sinks: Vec<SinkStatus> = snapshot.sinks().iter().map(SinkStatus::from).collect();
        Status {
            generation: header.generation,
            running: flag(header_flags::RUNNING),
            connected: flag(header_flags::CONNECTED),
            overflow: flag(header_flags::SINKS_OVERFLOW) || flag(header_flags::APPS_OVERFLOW),
            truncated: flag(header_flags::TRUNCATED),
            hold_active: flag(header_flags::HOLD_ACTIVE),
            default_sink: sinks.iter().find(|s| s.default).map(|s| s.name.clone()),
            total_sinks: header.total_sinks,
            total_apps: header.total_apps,
            sinks,
            apps: snapshot.apps().iter().map(AppStatus::from).collect(),
        }
    }
}

impl Status {
    /// The sink named `name`.
    pub fn sink(&self, name: &str) -> Option<&SinkStatus> {
        self.sinks.iter().find(|s| s.name == name)
    }

    /// The app named `name`.
    pub fn app(&self, name: &str) -> Option<&AppStatus> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// The status as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Status always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{write_str, SinkKind, MAX_APPS, NO_ID};

    fn two_sinks_one_app() -> Box<Snapshot> {
        let mut snap = Snapshot::new_boxed();
        snap.header.generation = 42;
        snap.header.flags = header_flags::RUNNING | header_flags::CONNECTED;
        snap.header.sink_count = 2;
        snap.header.app_count = 1;
        snap.header.total_sinks = 2;
        snap.header.total_apps = 1;

        let game = &mut snap.sinks[0];
        game.id = 40;
        game.flags = sink_flags::DEFAULT;
        game.volume = 0.499_999_97;
        game.channels = 2;
        write_str(&mut game.name, "game");
        write_str(&mut game.description, "Game");
        game.kind = SinkKind::Channel as u32;
        game.output_id = 41;
        write_str(&mut game.output, "chat");

        let chat = &mut snap.sinks[1];
        chat.id = 41;
        chat.flags = sink_flags::MUTED;
        chat.volume = 1.0;
        chat.channels = 1;
        write_str(&mut chat.name, "chat");
        write_str(&mut chat.description, "Chat \"voice\"");
        chat.output_id = NO_ID;

        let app = &mut snap.apps[0];
        app.flags = app_flags::ACTIVE | app_flags::MOVABLE;
        app.stream_count = 2;
        app.volume = 0.75;
        app.target_source = TargetSource::Rule as u32;
        app.stream_ids = [NO_ID; 8];
        app.stream_ids[0] = 71;
        app.stream_ids[1] = 72;
        write_str(&mut app.name, "Google Chrome");
        write_str(&mut app.sink, "game");
        write_str(&mut app.target, "game");
        snap
    }

    #[test]
    fn converts_header_sinks_and_apps() {
        let status = Status::from(&*two_sinks_one_app());
        assert_eq!(status.generation, 42);
        assert!(status.running);
        assert!(status.connected);
        assert!(!status.overflow);
        assert!(!status.truncated);
        assert_eq!(status.default_sink.as_deref(), Some("game"));
        assert_eq!((status.total_sinks, status.total_apps), (2, 1));

        assert_eq!(
            status.sinks[0],
            SinkStatus {
                id: 40,
                name: "game".into(),
                description: "Game".into(),
                volume: 0.5,
                muted: false,
                default: true,
                channels: 2,
                kind: "channel".into(),
                output: Some("chat".into()),
            }
        );
        assert_eq!((status.sinks[1].kind.as_str(), status.sinks[1].output.as_deref()), ("device", None));
        assert!(status.sinks[1].muted);
        assert!(!status.sinks[1].default);
        assert_eq!(status.sinks[1].description, "Chat \"voice\"");

        assert_eq!(
            status.apps,
            vec![AppStatus {
                name: "Google Chrome".into(),
                sink: Some("game".into()),
                streams: vec![71, 72],
                active: true,
                volume: 0.75,
                muted: false,
                target: Some("game".into()),
                target_source: "rule".into(),
                movable: true,
            }]
        );
    }

    #[test]
    fn unlinked_app_without_target_has_nulls() {
        let mut snap = two_sinks_one_app();
        let app = &mut snap.apps[0];
        write_str(&mut app.sink, "");
        write_str(&mut app.target, "");
        app.target_source = TargetSource::SessionManager as u32;
        app.flags = 0;
        let status = Status::from(&*snap);
        let app = &status.apps[0];
        assert_eq!(app.sink, None);
        assert_eq!(app.target, None);
        assert_eq!(app.target_source, "session-manager");
        assert!(!app.active && !app.movable && !app.muted);

        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        assert!(json["apps"][0]["sink"].is_null());
        assert!(json["apps"][0]["target"].is_null());
    }

    #[test]
    fn overflow_is_either_overflow_flag() {
        for bit in [header_flags::SINKS_OVERFLOW, header_flags::APPS_OVERFLOW] {
            let mut snap = two_sinks_one_app();
            snap.header.flags |= bit;
            assert!(Status::from(&*snap).overflow);
        }
        let mut snap = two_sinks_one_app();
        snap.header.flags |= header_flags::TRUNCATED;
        let status = Status::from(&*snap);
        assert!(status.truncated && !status.overflow);
    }

    #[test]
    fn stopped_daemon_and_no_default_sink() {
        let mut snap = two_sinks_one_app();
        snap.header.flags = 0;
        snap.sinks[0].flags = 0;
        let status = Status::from(&*snap);
        assert!(!status.running && !status.connected);
        assert_eq!(status.default_sink, None);
    }

    #[test]
    fn counts_beyond_slots_are_clamped() {
        let mut snap = two_sinks_one_app();
        snap.header.app_count = u32::MAX;
        snap.header.total_apps = 500;
        let status = Status::from(&*snap);
        assert_eq!(status.apps.len(), MAX_APPS);
        assert_eq!(status.total_apps, 500);
    }

    #[test]
    fn json_round_trips_and_has_the_documented_keys() {
        let status = Status::from(&*two_sinks_one_app());
        let line = status.to_json();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Status>(&line).unwrap(), status);

        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(&json),
            [
                "apps",
                "connected",
                "default_sink",
                "generation",
                "hold_active",
                "overflow",
                "running",
                "sinks",
                "total_apps",
                "total_sinks",
                "truncated"
            ]
        );
        assert_eq!(
            keys(&json["sinks"][0]),
            ["channels", "default", "description", "id", "kind", "muted", "name", "output", "volume"]
        );
        assert_eq!(
            keys(&json["apps"][0]),
            ["active", "movable", "muted", "name", "sink", "streams", "target", "target_source", "volume"]
        );
        assert_eq!(json["sinks"][0]["volume"], 0.5);
    }

    #[test]
    fn rounding_keeps_four_decimals() {
        assert_eq!(round_volume(0.499_999_97), 0.5);
        assert_eq!(round_volume(0.123_45), 0.1235);
        assert_eq!(round_volume(0.0), 0.0);
        assert_eq!(round_volume(1.0), 1.0);
    }

    #[test]
    fn lookup_by_name() {
        let status = Status::from(&*two_sinks_one_app());
        assert_eq!(status.sink("chat").map(|s| s.id), Some(41));
        assert!(status.sink("nope").is_none());
        assert!(status.app("Google Chrome").is_some());
    }
}
