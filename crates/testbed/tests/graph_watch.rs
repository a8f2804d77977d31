//! The graph watcher against a real bed: what it records matches what
//! `pw-dump` shows, and it sees metadata writes and the links they cause.

use std::time::Duration;

use testbed::{AppSpec, GraphWatcher, StreamEvent, TestBed, WatchOptions};

const TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn records_a_streams_links_metadata_and_removal() {
    let bed = TestBed::start(&["speakers", "game"]).unwrap();
    let watcher = GraphWatcher::start_with(&bed.pipewire_socket(), WatchOptions::default().metadata()).unwrap();
    let graph = bed.dump().unwrap();
    let game = graph.node_named("game").unwrap();
    let game_serial = game.prop("object.serial").unwrap();
    watcher.with(|log| {
        assert_eq!(log.node_named("game").map(|n| n.id), Some(game.id), "sinks that existed before it started");
        assert_eq!(log.serial_of("game"), Some(game_serial.as_str()));
    });

    let mut app = bed.spawn_app(&AppSpec::new("Watched")).unwrap();
    let streams = app.wait_for_streams(TIMEOUT).unwrap();
    let stream = streams[0];
    let log = watcher
        .wait_until(TIMEOUT, "the stream linked", |log| log.stream(stream).is_some_and(|h| h.links().count() >= 2))
        .unwrap_or_else(|e| panic!("{e}"));
    let history = log.stream(stream).unwrap();
    assert_eq!(history.app_name.as_deref(), Some("Watched"));
    assert_eq!(history.sinks_ever_linked(), ["speakers"]);
    assert_eq!(log.streams_of("Watched").len(), 1);
    bed.wait_until(TIMEOUT, "pw-dump to show the link", || bed.sink_names_linked_to(stream) == ["speakers"]).unwrap();

    // Pin the stream to game as a client of the default metadata would.
    let mut pin = bed.command("pw-metadata");
    pin.args(["-n", "default", &stream.to_string(), "target.object", &game_serial, "Spa:Id"]);
    let out = pin.output().unwrap();
    assert!(out.status.success(), "pw-metadata: {}", String::from_utf8_lossy(&out.stderr));
    let log = watcher
        .wait_until(TIMEOUT, "the pin and a link to game", |log| {
            log.stream(stream).is_some_and(|h| h.links().any(|s| s == "game"))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let history = log.stream(stream).unwrap();
    assert_eq!(history.target_object_writes(), std::slice::from_ref(&game_serial), "{history:?}");
    let pinned = history.events.iter().position(|e| matches!(e, StreamEvent::Metadata { .. }));
    let moved = history.events.iter().position(|e| matches!(e, StreamEvent::Linked { sink, .. } if sink == "game"));
    assert!(pinned < moved, "the pin came before the link it caused: {history:?}");
    // The links to speakers go: only links to game are left.
    watcher
        .wait_until(TIMEOUT, "only links to game", |log| {
            let live = log.live_links_from(stream);
            !live.is_empty() && live.iter().all(|l| l.input_node == game.id)
        })
        .unwrap_or_else(|e| panic!("{e}"));

    app.stop();
    let log = watcher
        .wait_until(TIMEOUT, "the stream gone", |log| log.stream(stream).is_some_and(|h| !h.is_alive()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(log.live_links_from(stream).is_empty(), "its links went with it");
    watcher.sync().unwrap();
}
