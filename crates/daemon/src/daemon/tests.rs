use super::*;
use crate::model::NodeProps;
use crate::rules::RuleSet;

fn daemon() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let files = Files { config: dir.path().join("config.toml"), state: dir.path().join("routes.toml") };
    let routes = RouteStore::load(&files.state).unwrap();
    let d = Daemon::new(files, Config { rules: RuleSet::default(), channels: Vec::new() }, routes);
    (dir, d)
}

fn add_sink(d: &mut Daemon, id: u32, name: &str) {
    let serial = (id + 1000).to_string();
    let props =
        NodeProps::from_pairs([("media.class", "Audio/Sink"), ("node.name", name), ("object.serial", serial.as_str())]);
    d.on_graph_event(GraphEvent::NodeAdded { id, props });
    d.on_graph_event(GraphEvent::NodeVolume {
        id,
        channels: Some([1.0, 1.0].into_iter().collect()),
        muted: Some(false),
    });
}

fn add_stream(d: &mut Daemon, id: u32, app: &str) {
    let props = NodeProps::from_pairs([("media.class", "Stream/Output/Audio"), ("application.name", app)]);
    d.on_graph_event(GraphEvent::NodeAdded { id, props });
    d.on_graph_event(GraphEvent::NodeInfo { id, props: Some(NodeProps::default()), running: Some(true) });
}

/// The payload of an answer given now, or of the `OK` a waiting request
/// gets once its result shows.
fn ok(r: Outcome) -> Option<String> {
    match r {
        Outcome::Done(Response::Ok(p)) | Outcome::Wait { payload: p, .. } => p,
        Outcome::Done(Response::Error(e)) => panic!("unexpected ERROR {e}"),
    }
}

fn err(r: Outcome) -> String {
    match r {
        Outcome::Done(Response::Error(e)) => e,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn ping_and_version() {
    let (_d, mut d) = daemon();
    assert_eq!(ok(d.handle(Request::Ping)).as_deref(), Some("PONG"));
    assert!(ok(d.handle(Request::Version)).unwrap().contains("protocol 2"));
}

#[test]
fn commands_needing_pipewire_fail_while_disconnected() {
    let (_d, mut d) = daemon();
    let e = err(d.handle(Request::SetVolume { sink: "game".into(), volume: 0.5 }));
    assert_eq!(e, "not connected to PipeWire");
    assert!(d.take_actions().is_empty());
}

#[test]
fn set_volume_scales_all_channels_on_the_cubic_scale() {
    let (_d, mut d) = daemon();
    d.on_connected();
    d.on_synced();
    add_sink(&mut d, 31, "game");
    ok(d.handle(Request::SetVolume { sink: "game".into(), volume: 0.5 }));
    assert_eq!(
        d.take_actions(),
        vec![Action::NodeVolume { node: 31, channels: Some(vec![0.125, 0.125]), muted: None }]
    );
    let e = err(d.handle(Request::SetVolume { sink: "nope".into(), volume: 0.5 }));
    assert!(e.starts_with("unknown sink nope"), "{e}");
    assert!(e.contains("game"), "lists the known sinks: {e}");
}

#[test]
fn mute_toggle_uses_current_state() {
    let (_d, mut d) = daemon();
    d.on_connected();
    d.on_synced();
    add_sink(&mut d, 31, "game");
    ok(d.handle(Request::Mute { sink: "game".into(), mute: MuteAction::Toggle }));
    assert_eq!(d.take_actions(), vec![Action::NodeVolume { node: 31, channels: None, muted: Some(true) }]);
}

#[test]
fn app_volume_and_mute_touch_every_stream() {
    let (_d, mut d) = daemon();
    d.on_connected();
    d.on_synced();
    add_stream(&mut d, 40, "Music Player");
    add_stream(&mut d, 41, "Music Player");
    ok(d.handle(Request::SetAppVolume { app: "Music Player".into(), volume: 1.0 }));
    let nodes: Vec<u32> = d
        .take_actions()
        .into_iter()
        .map(|a| match a {
            Action::NodeVolume { node, .. } => node,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(nodes, vec![40, 41]);
    ok(d.handle(Request::MuteApp { app: "Music Player".into(), mute: MuteAction::On }));
    assert_eq!(d.take_actions().len(), 2);
    assert!(err(d.handle(Request::MuteApp { app: "Nope".into(), mute: MuteAction::On })).contains("unknown app"));
}

#[test]
fn route_pins_live_streams_persists_and_unroute_unpins() {
    let (dir, mut d) = daemon();
    d.on_connected();
    d.on_synced();
    add_sink(&mut d, 31, "chat");
    add_stream(&mut d, 40, "Music Player");
    add_stream(&mut d, 41, "Music Player");
    ok(d.handle(Request::Route { app: "Music Player".into(), sink: "chat".into(), create_pending: false }));
    let actions = d.take_actions();
    assert_eq!(actions.len(), 2);
    assert!(actions.contains(&Action::Route(RouteAction::Pin { stream: 41, sink_serial: 1031, sink_id: 31 })));
    let saved = std::fs::read_to_string(dir.path().join("routes.toml")).unwrap();
    assert!(saved.contains("Music Player"), "{saved}");
    // Same ROUTE again: nothing to write.
    ok(d.handle(Request::Route { app: "Music Player".into(), sink: "chat".into(), create_pending: false }));
    assert!(d.take_actions().is_empty());
    // A new stream of the app follows the route.
    add_stream(&mut d, 42, "Music Player");
    assert_eq!(d.take_actions(), vec![Action::Route(RouteAction::Pin { stream: 42, sink_serial: 1031, sink_id: 31 })]);
    ok(d.handle(Request::Unroute { app: "Music Player".into() }));
    assert_eq!(d.take_actions().len(), 3);
    assert!(!std::fs::read_to_string(dir.path().join("routes.toml")).unwrap().contains("Music Player"));
}

#[test]
fn route_to_unknown_sink_needs_create_pending() {
    let (_d, mut d) = daemon();
    d.on_connected();
    d.on_synced();
    add_sink(&mut d, 31, "chat");
    let e = err(d.handle(Request::Route { app: "A".into(), sink: "later".into(), create_pending: false }));
    assert!(e.contains("unknown sink"), "{e}");
    let p = ok(d.handle(Request::Route { app: "A".into(), sink: "later".into(), create_pending: true }));
    assert!(p.unwrap().contains("pending"));
    add_stream(&mut d, 40, "A");
    assert!(d.take_actions().is_empty(), "nothing to pin while the sink is missing");
    add_sink(&mut d, 33, "later");
    assert_eq!(d.take_actions(), vec![Action::Route(RouteAction::Pin { stream: 40, sink_serial: 1033, sink_id: 33 })]);
}

#[test]
fn bad_config_keeps_previous_rules() {
    let (dir, mut d) = daemon();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[[rule]]\nmatch = { \"application.name\" = \"Game*\" }\nsink = \"game\"\n").unwrap();
    d.reload_config().unwrap();
    std::fs::write(&cfg, "[[rule]]\nmatch = { \"application.name\" = \"[abc\" }\nsink = \"game\"\n").unwrap();
    let e = d.reload_config().unwrap_err();
    assert!(e.contains("config.toml:2:"), "{e}");
    d.on_connected();
    d.on_synced();
    add_sink(&mut d, 31, "game");
    add_stream(&mut d, 40, "Game Of Life");
    assert_eq!(d.take_actions(), vec![Action::Route(RouteAction::Pin { stream: 40, sink_serial: 1031, sink_id: 31 })]);
}

#[test]
fn status_json_has_the_promised_fields() {
    let (_d, mut d) = daemon();
    d.on_connected();
    d.on_synced();
    add_sink(&mut d, 31, "game");
    d.on_metadata(0, Some("default.audio.sink"), Some("{\"name\":\"game\"}"));
    add_stream(&mut d, 40, "Firefox");
    let v: serde_json::Value = serde_json::from_str(&ok(d.handle(Request::Status)).unwrap()).unwrap();
    for key in ["generation", "connected", "sinks", "apps", "overflow"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["sinks"][0]["name"], "game");
    assert_eq!(v["sinks"][0]["default"], true);
    assert_eq!(v["sinks"][0]["volume"], 1.0);
    assert_eq!(v["apps"][0]["name"], "Firefox");
    assert_eq!(v["apps"][0]["streams"][0], 40);
}

#[test]
fn events_arriving_together_are_published_once() {
    let (_d, mut d) = daemon();
    d.on_connected();
    d.on_synced();
    let _ = d.snapshot_for_publish();
    add_sink(&mut d, 31, "game");
    add_stream(&mut d, 40, "A");
    assert!(d.is_dirty());
    let _ = d.snapshot_for_publish();
    assert!(!d.is_dirty());
    assert_eq!(d.stats.publishes, 2);
    assert!(d.stats.coalesced >= 3, "four events, one publish");
}

#[test]
fn requests_wait_for_the_graph_to_be_enumerated() {
    let (_d, mut d) = daemon();
    d.on_connected();
    add_sink(&mut d, 31, "game");
    let e = err(d.handle(Request::SetVolume { sink: "game".into(), volume: 0.5 }));
    assert_eq!(e, "not connected to PipeWire", "a half-enumerated graph is not used");
    d.on_synced();
    ok(d.handle(Request::SetVolume { sink: "game".into(), volume: 0.5 }));
}
