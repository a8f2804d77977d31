//! Fake applications against a real bed.

use std::collections::BTreeSet;
use std::time::Duration;

use testbed::{AppSpec, TestBed, STREAM_OUTPUT_AUDIO};

const TIMEOUT: Duration = Duration::from_secs(20);

/// Whether a process exists.
fn exists(pid: u32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks for existence.
    let rc = unsafe { libc::kill(pid as i32, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[test]
fn two_streams_are_linked_to_the_default_sink_with_the_apps_properties() {
    let bed = TestBed::start(&["speakers", "game", "chat", "music"]).unwrap();
    let spec = AppSpec::new("Firefox").binary("firefox").role("Music").media_name("Video").streams(2);
    let mut app = bed.spawn_app(&spec).unwrap();

    let streams = app.wait_for_streams(TIMEOUT).unwrap();
    assert_eq!(streams.len(), 2);
    assert_eq!(bed.streams_of_app("Firefox"), streams);
    bed.wait_until(TIMEOUT, "both Firefox streams linked to speakers", || {
        streams.iter().all(|&id| bed.sink_names_linked_to(id) == ["speakers"])
    })
    .unwrap();

    let graph = bed.dump().unwrap();
    for &id in &streams {
        let node = graph.node(id).unwrap();
        assert_eq!(node.media_class().as_deref(), Some(STREAM_OUTPUT_AUDIO));
        assert_eq!(node.prop("application.name").as_deref(), Some("Firefox"));
        assert_eq!(node.prop("application.process.binary").as_deref(), Some("firefox"));
        assert_eq!(node.prop("media.role").as_deref(), Some("Music"));
        assert_eq!(node.prop("media.name").as_deref(), Some("Video"));
        assert_eq!(node.prop("application.process.id"), Some(app.pid().to_string()));
    }
}

#[test]
fn distinct_makes_one_app_name_per_stream() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let mut app = bed.spawn_app(&AppSpec::new("Bulk").distinct(5)).unwrap();
    let streams = app.wait_for_streams(TIMEOUT).unwrap();
    assert_eq!(streams.len(), 5);

    let graph = bed.dump().unwrap();
    let names: BTreeSet<String> =
        streams.iter().map(|&id| graph.node(id).unwrap().prop("application.name").unwrap()).collect();
    let expected: BTreeSet<String> = (1..=5).map(|i| format!("Bulk {i}")).collect();
    assert_eq!(names, expected);
    assert_eq!(graph.streams_of_app("Bulk 3").len(), 1);
}

#[test]
fn extra_properties_reach_the_stream() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let mut app = bed.spawn_app(&AppSpec::new("Pinned").prop("node.dont-move", "true")).unwrap();
    let streams = app.wait_for_streams(TIMEOUT).unwrap();
    let node = bed.dump().unwrap().node(streams[0]).cloned().unwrap();
    assert_eq!(node.prop("node.dont-move").as_deref(), Some("true"));
}

#[test]
fn dropping_a_fake_app_ends_the_process_and_its_streams() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let mut app = bed.spawn_app(&AppSpec::new("Short Lived")).unwrap();
    app.wait_for_streams(TIMEOUT).unwrap();
    let pid = app.pid();
    assert!(exists(pid));

    drop(app);

    assert!(!exists(pid), "fake app {pid} survived its drop");
    bed.wait_until(TIMEOUT, "the stream of Short Lived to go away", || bed.streams_of_app("Short Lived").is_empty())
        .unwrap();
}

#[test]
fn a_fake_app_exits_when_pipewire_goes_away() {
    let mut bed = TestBed::start(&["speakers"]).unwrap();
    let mut app = bed.spawn_app(&AppSpec::new("Orphan")).unwrap();
    app.wait_for_streams(TIMEOUT).unwrap();
    bed.stop_pipewire();
    bed.wait_until(TIMEOUT, "the fake app to exit", || !app.is_running()).unwrap();
}
