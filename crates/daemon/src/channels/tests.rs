use super::*;
use crate::model::{GraphEvent, NodeProps};

fn spec(name: &str, output: OutputChoice) -> ChannelSpec {
    ChannelSpec { name: name.into(), description: name.to_uppercase(), output }
}

fn sink(m: &mut Mixer, id: u32, name: &str, channel: bool, priority: i32) {
    let priority = priority.to_string();
    let mut pairs = vec![("media.class", "Audio/Sink"), ("node.name", name), ("priority.session", &priority)];
    if channel {
        pairs.push((MARKER_KEY, "true"));
    }
    let serial = (id + 1000).to_string();
    pairs.push(("object.serial", &serial));
    m.apply(GraphEvent::NodeAdded { id, props: NodeProps::from_pairs(pairs) });
}

/// Stereo ports of sink `node`: playback FL/FR at `first`, `first + 1`,
/// monitor FL/FR at `first + 2`, `first + 3`.
fn ports(m: &mut Mixer, node: u32, first: u32) {
    for (i, (output, monitor, channel)) in
        [(false, false, "FL"), (false, false, "FR"), (true, true, "FL"), (true, true, "FR")].into_iter().enumerate()
    {
        m.apply(GraphEvent::PortAdded {
            id: first + i as u32,
            node,
            output,
            monitor,
            channel: Some(crate::model::intern::intern(channel)),
        });
    }
}

fn link(m: &mut Mixer, id: u32, from: (u32, u32), to: (u32, u32)) {
    m.apply(GraphEvent::LinkAdded {
        id,
        output_node: from.0,
        output_port: Some(from.1),
        input_node: to.0,
        input_port: Some(to.1),
    });
}

fn default(m: &mut Mixer, name: &str) {
    m.apply(GraphEvent::DefaultSink { name: Some(name.into()) });
}

/// headphones (id 10, ports 100..) priority 1000, speakers (11, 110..) 900,
/// channel game (20, ports 200..).
fn bed() -> Mixer {
    let mut m = Mixer::new();
    sink(&mut m, 10, "headphones", false, 1000);
    ports(&mut m, 10, 100);
    sink(&mut m, 11, "speakers", false, 900);
    ports(&mut m, 11, 110);
    sink(&mut m, 20, "game", true, -1);
    ports(&mut m, 20, 200);
    m
}

fn none(_: &str) -> Option<OutputChoice> {
    None
}

fn links_to(actions: &[ChannelAction]) -> Vec<(u32, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            ChannelAction::Link { output_port, input_port, .. } => Some((*output_port, *input_port)),
            _ => None,
        })
        .collect()
}

fn destroyed(actions: &[ChannelAction]) -> Vec<u32> {
    actions
        .iter()
        .filter_map(|a| match a {
            ChannelAction::Destroy { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_missing_channel_is_created_once_per_round_and_given_up_after_three() {
    let mut m = Mixer::new();
    sink(&mut m, 10, "headphones", false, 1000);
    let specs = [spec("game", OutputChoice::Default), spec("chat", OutputChoice::Default)];
    let mut w = Wiring::new();
    let first = w.reconcile(&m, &specs, none);
    assert_eq!(
        first,
        [
            ChannelAction::Create { name: "game".into(), description: "GAME".into() },
            ChannelAction::Create { name: "chat".into(), description: "CHAT".into() },
        ]
    );
    assert!(w.take_unsettled());
    assert!(!w.take_unsettled(), "one round trip per batch");
    assert!(w.reconcile(&m, &specs, none).is_empty(), "in flight: not asked twice");
    for _ in 0..2 {
        w.settled();
        assert_eq!(w.reconcile(&m, &specs, none).len(), 2, "not there after a round trip: asked again");
    }
    w.settled();
    assert!(w.reconcile(&m, &specs, none).is_empty(), "three times without effect: given up");
    w.retry();
    assert_eq!(w.reconcile(&m, &specs, none).len(), 2, "a config change tries again");
}

#[test]
fn an_existing_channel_is_adopted_and_linked_to_the_default_device_by_position() {
    let mut m = bed();
    default(&mut m, "headphones");
    let mut w = Wiring::new();
    let actions = w.reconcile(&m, &[spec("game", OutputChoice::Default)], none);
    assert_eq!(
        actions,
        [
            ChannelAction::Link { output_node: 20, output_port: 202, input_node: 10, input_port: 100 },
            ChannelAction::Link { output_node: 20, output_port: 203, input_node: 10, input_port: 101 },
        ]
    );
    link(&mut m, 300, (20, 202), (10, 100));
    link(&mut m, 301, (20, 203), (10, 101));
    w.settled();
    assert!(w.reconcile(&m, &[spec("game", OutputChoice::Default)], none).is_empty(), "wired: nothing to do");
    assert_eq!(m.sink_outputs(20), [10]);
}

#[test]
fn a_sink_we_did_not_make_is_never_replaced_or_destroyed() {
    let mut m = Mixer::new();
    sink(&mut m, 10, "game", false, 0);
    let mut w = Wiring::new();
    assert!(w.reconcile(&m, &[spec("game", OutputChoice::Default)], none).is_empty());
}

#[test]
fn unconfigured_and_duplicate_channels_are_destroyed() {
    let mut m = bed();
    sink(&mut m, 21, "old", true, -1);
    sink(&mut m, 22, "game", true, -1);
    let mut w = Wiring::new();
    let actions = w.reconcile(&m, &[spec("game", OutputChoice::None)], none);
    let mut gone = destroyed(&actions);
    gone.sort();
    assert_eq!(gone, [21, 22], "the old channel and the newer duplicate of game");
}

#[test]
fn default_output_follows_the_default_sink_but_never_a_channel() {
    let mut m = bed();
    sink(&mut m, 21, "chat", true, -1);
    assert_eq!(default_device(&m, 20), Some(10), "no default: the highest priority device");
    default(&mut m, "speakers");
    assert_eq!(default_device(&m, 20), Some(11));
    default(&mut m, "chat");
    assert_eq!(default_device(&m, 20), Some(10), "a channel made default: the best device instead");
    assert_eq!(resolve_output(&m, &OutputChoice::Sink("chat".into()), 20), Some(10), "never a channel");
    assert_eq!(resolve_output(&m, &OutputChoice::Sink("game".into()), 20), Some(10), "never itself");
    assert_eq!(resolve_output(&m, &OutputChoice::Sink("speakers".into()), 20), Some(11));
    assert_eq!(resolve_output(&m, &OutputChoice::Sink("usb-headset".into()), 20), Some(10), "missing: default");
    assert_eq!(resolve_output(&m, &OutputChoice::None, 20), None);
}

#[test]
fn moving_makes_the_new_links_before_removing_the_old_ones() {
    let mut m = bed();
    default(&mut m, "headphones");
    link(&mut m, 300, (20, 202), (10, 100));
    link(&mut m, 301, (20, 203), (10, 101));
    let mut w = Wiring::new();
    let speakers = |_: &str| Some(OutputChoice::Sink("speakers".into()));
    let specs = [spec("game", OutputChoice::Default)];
    let step1 = w.reconcile(&m, &specs, speakers);
    assert_eq!(links_to(&step1), [(202, 110), (203, 111)]);
    assert!(destroyed(&step1).is_empty(), "the old links stay until the new ones exist");
    link(&mut m, 302, (20, 202), (11, 110));
    let step2 = w.reconcile(&m, &specs, speakers);
    assert!(step2.is_empty(), "one new link still missing (and in flight): {step2:?}");
    link(&mut m, 303, (20, 203), (11, 111));
    let step3 = w.reconcile(&m, &specs, speakers);
    assert_eq!(destroyed(&step3), [300, 301]);
    assert_eq!(m.sink_outputs(20), [11, 10], "both for a moment, the newest first");
}

#[test]
fn a_named_output_that_goes_away_falls_back_to_the_default_and_comes_back() {
    let mut m = bed();
    default(&mut m, "speakers");
    link(&mut m, 300, (20, 202), (10, 100));
    link(&mut m, 301, (20, 203), (10, 101));
    let specs = [spec("game", OutputChoice::Sink("headphones".into()))];
    let mut w = Wiring::new();
    assert!(w.reconcile(&m, &specs, none).is_empty());
    // Unplugged: its node, ports and links go.
    m.apply(GraphEvent::Removed { id: 10 });
    m.apply(GraphEvent::Removed { id: 300 });
    m.apply(GraphEvent::Removed { id: 301 });
    assert_eq!(links_to(&w.reconcile(&m, &specs, none)), [(202, 110), (203, 111)], "to the default: speakers");
    link(&mut m, 302, (20, 202), (11, 110));
    link(&mut m, 303, (20, 203), (11, 111));
    w.settled();
    assert!(w.reconcile(&m, &specs, none).is_empty());
    // Plugged back in (new ids).
    sink(&mut m, 12, "headphones", false, 1000);
    ports(&mut m, 12, 120);
    let back = w.reconcile(&m, &specs, none);
    assert_eq!(links_to(&back), [(202, 120), (203, 121)]);
    link(&mut m, 304, (20, 202), (12, 120));
    link(&mut m, 305, (20, 203), (12, 121));
    assert_eq!(destroyed(&w.reconcile(&m, &specs, none)), [302, 303]);
}

#[test]
fn output_none_unlinks_and_links_to_other_nodes_are_left_alone() {
    let mut m = bed();
    link(&mut m, 300, (20, 202), (10, 100));
    link(&mut m, 301, (20, 203), (10, 101));
    // A recorder (not a sink) on the channel's monitor.
    link(&mut m, 302, (20, 202), (50, 500));
    let mut w = Wiring::new();
    let actions = w.reconcile(&m, &[spec("game", OutputChoice::None)], none);
    assert_eq!(destroyed(&actions), [300, 301]);
    assert!(links_to(&actions).is_empty());
}

#[test]
fn a_duplicate_link_is_removed() {
    let mut m = bed();
    default(&mut m, "headphones");
    link(&mut m, 300, (20, 202), (10, 100));
    link(&mut m, 301, (20, 203), (10, 101));
    link(&mut m, 302, (20, 202), (10, 100));
    let mut w = Wiring::new();
    assert_eq!(destroyed(&w.reconcile(&m, &[spec("game", OutputChoice::Default)], none)), [302]);
}

#[test]
fn nothing_is_changed_before_the_output_ports_are_known() {
    let mut m = Mixer::new();
    sink(&mut m, 10, "headphones", false, 1000);
    sink(&mut m, 20, "game", true, -1);
    ports(&mut m, 20, 200);
    let mut w = Wiring::new();
    assert!(w.reconcile(&m, &[spec("game", OutputChoice::Default)], none).is_empty());
}

#[test]
fn port_pairs_handle_mono_outputs_and_unnamed_positions() {
    let mut m = bed();
    sink(&mut m, 30, "mono", false, 0);
    m.apply(GraphEvent::PortAdded { id: 400, node: 30, output: false, monitor: false, channel: None });
    assert_eq!(port_pairs(&m, 20, 30), [(202, 400), (203, 400)]);
    sink(&mut m, 31, "aux", false, 0);
    for (i, c) in ["AUX0", "AUX1"].into_iter().enumerate() {
        m.apply(GraphEvent::PortAdded {
            id: 410 + i as u32,
            node: 31,
            output: false,
            monitor: false,
            channel: Some(crate::model::intern::intern(c)),
        });
    }
    assert_eq!(port_pairs(&m, 20, 31), [(202, 410), (203, 411)], "no common position: in order");
}
