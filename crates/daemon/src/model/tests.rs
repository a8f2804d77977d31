use super::*;
use proptest::prelude::*;
use smallvec::smallvec;

fn sink(name: &str, serial: u64) -> NodeProps {
    NodeProps::from_pairs([("media.class", "Audio/Sink"), ("node.name", name), ("object.serial", &serial.to_string())])
}

fn stream(app: &str) -> NodeProps {
    NodeProps::from_pairs([("media.class", "Stream/Output/Audio"), ("application.name", app)])
}

fn added(id: u32, props: NodeProps) -> GraphEvent {
    GraphEvent::NodeAdded { id, props }
}

#[test]
fn streams_group_into_apps_and_follow_links() {
    let mut m = Mixer::new();
    m.apply(added(30, sink("speakers", 100)));
    m.apply(added(31, sink("game", 101)));
    let c = m.apply(added(40, stream("Game Of Life")));
    assert_eq!(c.stream, Some(40));
    m.apply(added(41, stream("Game Of Life")));
    m.apply(added(42, stream("Music")));
    assert_eq!(m.apps().len(), 2);
    assert_eq!(m.app("Game Of Life").unwrap().streams, vec![40, 41]);

    let c = m.apply(GraphEvent::link(50, 40, 31));
    assert!(c.visible);
    // The second port's link does not change the sink.
    let c = m.apply(GraphEvent::link(51, 40, 31));
    assert!(!c.visible);
    assert_eq!(m.stream(40).unwrap().sink_id(), Some(31));
    m.verify_invariants().unwrap();

    m.apply(GraphEvent::Removed { id: 50 });
    m.apply(GraphEvent::Removed { id: 51 });
    assert_eq!(m.stream(40).unwrap().sink_id(), None);

    m.apply(GraphEvent::Removed { id: 42 });
    assert!(m.app("Music").is_none());
    m.verify_invariants().unwrap();
}

#[test]
fn info_can_regroup_a_stream() {
    let mut m = Mixer::new();
    let mut p = stream("x");
    p.app_name = None;
    p.node_name = Some("node-x".into());
    m.apply(added(40, p));
    assert!(m.app("node-x").is_some());
    let c = m.apply(GraphEvent::NodeInfo {
        id: 40,
        props: Some(NodeProps::from_pairs([("application.process.binary", "firefox")])),
        running: Some(true),
    });
    assert_eq!(c.stream, Some(40));
    assert!(m.app("node-x").is_none());
    assert_eq!(m.app("firefox").unwrap().streams, vec![40]);
    assert!(m.stream(40).unwrap().running);
    m.verify_invariants().unwrap();
}

#[test]
fn volumes_and_default() {
    let mut m = Mixer::new();
    m.apply(added(30, sink("speakers", 100)));
    let c = m.apply(GraphEvent::NodeVolume { id: 30, channels: Some(smallvec![0.125, 0.125]), muted: Some(true) });
    assert!(c.visible);
    let c = m.apply(GraphEvent::NodeVolume { id: 30, channels: Some(smallvec![0.125, 0.125]), muted: Some(true) });
    assert!(!c.visible, "same values are not a change");
    assert!(m.sink(30).unwrap().muted);
    m.apply(GraphEvent::DefaultSink { name: Some("speakers".into()) });
    assert_eq!(m.default_sink(), Some("speakers"));
}

#[test]
fn device_route_drives_device_backed_sink() {
    let mut m = Mixer::new();
    let mut p = sink("alsa_output.pci", 100);
    p.device_id = Some(7);
    m.apply(added(30, p));
    m.apply(GraphEvent::NodeInfo {
        id: 30,
        props: Some(NodeProps::from_pairs([("card.profile.device", "3")])),
        running: None,
    });
    // A route for another device index is ignored.
    m.apply(GraphEvent::DeviceRoute {
        device: 7,
        index: 1,
        route_device: 4,
        channels: Some(smallvec![1.0]),
        muted: Some(true),
    });
    assert!(!m.sink(30).unwrap().device_backed);
    let c = m.apply(GraphEvent::DeviceRoute {
        device: 7,
        index: 2,
        route_device: 3,
        channels: Some(smallvec![0.5, 0.5]),
        muted: Some(false),
    });
    assert!(c.visible);
    let s = m.sink(30).unwrap();
    assert!(s.device_backed);
    assert_eq!(s.route, Some((2, 3)));
    // The node's own Props (soft volume) no longer override the route.
    m.apply(GraphEvent::NodeVolume { id: 30, channels: Some(smallvec![1.0, 1.0]), muted: None });
    assert_eq!(&m.sink(30).unwrap().channels[..], &[0.5, 0.5]);
}

#[test]
fn sink_removal_drops_links() {
    let mut m = Mixer::new();
    m.apply(added(31, sink("game", 101)));
    m.apply(added(40, stream("G")));
    m.apply(GraphEvent::link(50, 40, 31));
    let c = m.apply(GraphEvent::Removed { id: 31 });
    assert!(c.sinks);
    assert_eq!(m.stream(40).unwrap().sink_id(), None);
    m.verify_invariants().unwrap();
}

fn arb_event() -> impl Strategy<Value = GraphEvent> {
    let id = 0u32..12;
    prop_oneof![
        (id.clone(), 0u8..3, prop::sample::select(vec!["a", "b", "c"])).prop_map(|(id, kind, name)| {
            let props = match kind {
                0 => sink(name, id as u64),
                1 => stream(name),
                _ => NodeProps::from_pairs([("media.class", "Video/Source")]),
            };
            GraphEvent::NodeAdded { id, props }
        }),
        (id.clone(), prop::option::of(prop::sample::select(vec!["a", "b", "x"])), any::<Option<bool>>()).prop_map(
            |(id, app, running)| GraphEvent::NodeInfo {
                id,
                props: app.map(|a| NodeProps::from_pairs([("application.name", a)])),
                running,
            }
        ),
        (id.clone(), id.clone(), id.clone()).prop_map(|(id, o, i)| GraphEvent::link(id + 100, o, i)),
        (id.clone(), id.clone(), any::<bool>()).prop_map(|(id, node, output)| GraphEvent::PortAdded {
            id: id + 200,
            node,
            output,
            monitor: output,
            channel: None
        }),
        (0u32..112).prop_map(|id| GraphEvent::Removed { id }),
        (id, any::<bool>()).prop_map(|(id, m)| GraphEvent::NodeVolume {
            id,
            channels: Some(smallvec![0.5]),
            muted: Some(m)
        }),
    ]
}

proptest! {
    #[test]
    fn invariants_hold_after_any_event_sequence(events in prop::collection::vec(arb_event(), 0..80)) {
        let mut m = Mixer::new();
        for e in events {
            m.apply(e);
            if let Err(why) = m.verify_invariants() {
                return Err(TestCaseError::fail(why));
            }
        }
    }
}
