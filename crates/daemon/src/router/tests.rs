use super::*;
use crate::model::GraphEvent;
use crate::rules::{Matcher, Rule};

fn rules(list: &[(MatchKey, &str, &str)]) -> RuleSet {
    RuleSet::new(
        list.iter().map(|(k, pat, sink)| Rule::new(vec![Matcher::new(*k, *pat).unwrap()], *sink).unwrap()).collect(),
    )
}

fn store() -> (tempfile::TempDir, RouteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RouteStore::load(dir.path().join("routes.toml")).unwrap();
    (dir, store)
}

fn sink(m: &mut Mixer, id: u32, name: &str, serial: u64) {
    let serial = serial.to_string();
    let props =
        NodeProps::from_pairs([("media.class", "Audio/Sink"), ("node.name", name), ("object.serial", serial.as_str())]);
    m.apply(GraphEvent::NodeAdded { id, props });
}

fn stream(m: &mut Mixer, id: u32, pairs: &[(&str, &str)]) {
    let mut props = NodeProps::from_pairs(pairs.iter().copied());
    props.media_class = Some("Stream/Output/Audio".into());
    m.apply(GraphEvent::NodeAdded { id, props });
}

fn info(m: &mut Mixer, id: u32, pairs: &[(&str, &str)]) {
    m.apply(GraphEvent::NodeInfo {
        id,
        props: Some(NodeProps::from_pairs(pairs.iter().copied())),
        running: Some(true),
    });
}

#[test]
fn rule_on_application_name_pins_at_global() {
    let mut m = Mixer::new();
    sink(&mut m, 30, "speakers", 100);
    sink(&mut m, 31, "game", 101);
    stream(&mut m, 40, &[("application.name", "Game Of Life")]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, routes) = store();
    let policy = Policy { rules: &rules, routes: &routes };
    let mut r = Router::new();
    assert_eq!(r.decide(&m, &policy, 40), Some(RouteAction::Pin { stream: 40, sink_serial: 101, sink_id: 31 }));
    assert_eq!(r.target(40).unwrap().source, TargetSource::Rule);
    // The info arriving later does not cause a second write.
    info(&mut m, 40, &[("application.process.binary", "gol")]);
    assert_eq!(r.decide(&m, &policy, 40), None);
}

#[test]
fn rule_needing_binary_waits_for_info() {
    let mut m = Mixer::new();
    sink(&mut m, 32, "chat", 102);
    stream(&mut m, 40, &[("application.name", "Discord"), ("media.role", "Communication")]);
    let rules = rules(&[(MatchKey::ProcessBinary, "discord", "chat")]);
    let (_d, routes) = store();
    let policy = Policy { rules: &rules, routes: &routes };
    let mut r = Router::new();
    assert_eq!(r.decide(&m, &policy, 40), None, "cannot decide before the binary is known");
    info(&mut m, 40, &[("application.process.binary", "discord")]);
    assert_eq!(r.decide(&m, &policy, 40), Some(RouteAction::Pin { stream: 40, sink_serial: 102, sink_id: 32 }));
}

#[test]
fn unmatched_apps_are_left_to_the_session_manager() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    stream(&mut m, 40, &[("application.name", "Firefox")]);
    info(&mut m, 40, &[]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, routes) = store();
    let mut r = Router::new();
    assert_eq!(r.decide(&m, &Policy { rules: &rules, routes: &routes }, 40), None);
    assert!(r.target(40).is_none());
}

#[test]
fn persisted_route_beats_rule_and_unroute_clears_pin() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    sink(&mut m, 32, "chat", 102);
    stream(&mut m, 40, &[("application.name", "Game X")]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, mut routes) = store();
    routes.set("Game X".into(), "chat".into());
    let mut r = Router::new();
    let a = r.decide(&m, &Policy { rules: &rules, routes: &routes }, 40);
    assert_eq!(a, Some(RouteAction::Pin { stream: 40, sink_serial: 102, sink_id: 32 }));
    assert_eq!(r.target(40).unwrap().source, TargetSource::Route);
    routes.remove("Game X");
    // Back to the rule: a new pin, not an unpin.
    let a = r.decide(&m, &Policy { rules: &rules, routes: &routes }, 40);
    assert_eq!(a, Some(RouteAction::Pin { stream: 40, sink_serial: 101, sink_id: 31 }));
    // Without any rule: the pin is taken back.
    let none = RuleSet::default();
    assert_eq!(r.decide(&m, &Policy { rules: &none, routes: &routes }, 40), Some(RouteAction::Unpin { stream: 40 }));
    assert_eq!(r.decide(&m, &Policy { rules: &none, routes: &routes }, 40), None);
}

#[test]
fn dont_move_streams_are_not_pinned() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    stream(&mut m, 40, &[("application.name", "Game X"), ("node.dont-move", "true")]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, routes) = store();
    let mut r = Router::new();
    assert_eq!(r.decide(&m, &Policy { rules: &rules, routes: &routes }, 40), None);
    assert_eq!(r.target(40).unwrap().sink, "game", "the target is still reported");
}

#[test]
fn dont_move_learned_from_the_info_takes_back_the_global_time_pin() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    stream(&mut m, 40, &[("application.name", "Game X")]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, routes) = store();
    let policy = Policy { rules: &rules, routes: &routes };
    let mut r = Router::new();
    assert!(matches!(r.decide(&m, &policy, 40), Some(RouteAction::Pin { .. })), "pinned at the global");
    info(&mut m, 40, &[("application.name", "Game X"), ("node.dont-move", "true")]);
    assert_eq!(r.decide(&m, &policy, 40), Some(RouteAction::Unpin { stream: 40 }));
    assert!(!r.is_pinned(40));
    assert_eq!(r.decide(&m, &policy, 40), None, "never pinned again");
}

#[test]
fn clearing_one_subject_keeps_what_was_seen_of_the_others() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    stream(&mut m, 40, &[("application.name", "Game X")]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, routes) = store();
    let mut r = Router::new();
    r.observe_metadata(&m, 40, Some("target.object"), Some("101"));
    r.observe_metadata(&m, 77, None, None);
    assert_eq!(r.decide(&m, &Policy { rules: &rules, routes: &routes }, 40), None, "101 is still known for 40");
}

#[test]
fn late_echo_of_an_older_write_does_not_suppress_switching_back() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    sink(&mut m, 32, "chat", 102);
    stream(&mut m, 40, &[("application.name", "Switcher")]);
    let (_d, mut routes) = store();
    let none = RuleSet::default();
    let mut r = Router::new();
    routes.set("Switcher".into(), "game".into());
    assert!(r.decide(&m, &Policy { rules: &none, routes: &routes }, 40).is_some());
    routes.set("Switcher".into(), "chat".into());
    assert!(r.decide(&m, &Policy { rules: &none, routes: &routes }, 40).is_some());
    // The echo of the first write (game) arrives only now; the metadata holds chat.
    r.observe_metadata(&m, 40, Some("target.object"), Some("101"));
    routes.set("Switcher".into(), "game".into());
    assert_eq!(
        r.decide(&m, &Policy { rules: &none, routes: &routes }, 40),
        Some(RouteAction::Pin { stream: 40, sink_serial: 101, sink_id: 31 })
    );
}

#[test]
fn missing_sink_waits_and_reappearing_sink_is_pinned_again() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    stream(&mut m, 40, &[("application.name", "Game X")]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, routes) = store();
    let policy = Policy { rules: &rules, routes: &routes };
    let mut r = Router::new();
    assert!(r.decide(&m, &policy, 40).is_some());
    m.apply(GraphEvent::Removed { id: 31 });
    assert_eq!(r.decide(&m, &policy, 40), None, "no sink: nothing to write");
    sink(&mut m, 35, "game", 140);
    let mut out = Vec::new();
    r.decide_all(&m, &policy, &mut out);
    assert_eq!(out, vec![RouteAction::Pin { stream: 40, sink_serial: 140, sink_id: 35 }]);
}

#[test]
fn a_target_already_in_the_metadata_is_not_written_again() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    stream(&mut m, 40, &[("application.name", "Game X")]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, routes) = store();
    let mut r = Router::new();
    r.observe_metadata(&m, 40, Some("target.object"), Some("101"));
    assert_eq!(r.decide(&m, &Policy { rules: &rules, routes: &routes }, 40), None);
    assert!(r.is_pinned(40));
}

#[test]
fn a_restore_before_the_first_link_is_answered_once_and_a_later_move_is_respected() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    sink(&mut m, 32, "chat", 102);
    stream(&mut m, 40, &[("application.name", "Game X")]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, routes) = store();
    let policy = Policy { rules: &rules, routes: &routes };
    let mut r = Router::new();
    let pin = Some(RouteAction::Pin { stream: 40, sink_serial: 101, sink_id: 31 });
    assert_eq!(r.decide(&m, &policy, 40), pin);
    // The session manager restores a remembered target before linking:
    // exactly one corrective write.
    assert_eq!(r.observe_metadata(&m, 40, Some("target.object"), Some("102")), pin);
    assert_eq!(r.observe_metadata(&m, 40, Some("target.node"), Some("-1")), None);
    // Echoes of our two writes: nothing more.
    assert_eq!(r.observe_metadata(&m, 40, Some("target.object"), Some("101")), None);
    assert_eq!(r.observe_metadata(&m, 40, Some("target.object"), Some("101")), None);
    for _ in 0..3 {
        assert_eq!(r.decide(&m, &policy, 40), None, "the same decision is never written twice");
    }
    // Linked; then the user moves it in another tool: respected, shown.
    m.apply(GraphEvent::link(60, 40, 31));
    assert_eq!(r.observe_metadata(&m, 40, Some("target.object"), Some("102")), None);
    assert_eq!(r.override_value(40), Some("102"));
    assert!(!r.is_pinned(40));
    let mut out = Vec::new();
    r.decide_all(&m, &policy, &mut out);
    assert!(out.is_empty(), "a rule re-evaluation does not undo the user's move: {out:?}");
    r.clear_override(40);
    assert_eq!(r.decide(&m, &policy, 40), pin, "a ROUTE after the move wins again");
    assert_eq!(r.observe_metadata(&m, 40, Some("target.object"), Some("101")), None, "its echo");
    // Clearing the target in another tool is a move too: not pinned again.
    assert_eq!(r.observe_metadata(&m, 40, Some("target.object"), None), None);
    assert_eq!(r.override_value(40), Some(""));
    r.decide_all(&m, &policy, &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn pins_are_written_again_when_the_metadata_comes_back() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    stream(&mut m, 40, &[("application.name", "Game X")]);
    stream(&mut m, 41, &[("application.name", "Other")]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, routes) = store();
    let mut r = Router::new();
    assert!(r.decide(&m, &Policy { rules: &rules, routes: &routes }, 40).is_some());
    assert_eq!(r.decide(&m, &Policy { rules: &rules, routes: &routes }, 41), None);
    let mut out = Vec::new();
    r.repin_all(&m, &mut out);
    assert_eq!(out, vec![RouteAction::Pin { stream: 40, sink_serial: 101, sink_id: 31 }]);
}

#[test]
fn every_movable_stream_gets_one_decision_after_its_pin() {
    let mut m = Mixer::new();
    sink(&mut m, 31, "game", 101);
    stream(&mut m, 40, &[("application.name", "Game X"), ("object.serial", "500")]);
    stream(&mut m, 41, &[("application.name", "Other"), ("object.serial", "501")]);
    stream(&mut m, 42, &[("application.name", "Fixed"), ("object.serial", "502"), ("node.dont-move", "true")]);
    let rules = rules(&[(MatchKey::ApplicationName, "Game*", "game")]);
    let (_d, routes) = store();
    let policy = Policy { rules: &rules, routes: &routes };
    let mut r = Router::new();
    let mut out = Vec::new();
    r.decide_all(&m, &policy, &mut out);
    assert_eq!(out, vec![RouteAction::Pin { stream: 40, sink_serial: 101, sink_id: 31 }]);
    assert_eq!(
        r.take_decisions(),
        vec![RouteAction::Decide { stream: 40, serial: 500 }, RouteAction::Decide { stream: 41, serial: 501 }],
        "routed and unrouted alike; never the dont-move one"
    );
    r.decide_all(&m, &policy, &mut out);
    assert!(r.take_decisions().is_empty(), "decided once");
}
