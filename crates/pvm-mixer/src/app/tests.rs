//! The state and its actions, without a terminal.

use super::*;

pub fn sink(name: &str, volume: f64) -> SinkStatus {
    SinkStatus {
        id: 40,
        name: name.into(),
        description: capitalised(name),
        volume,
        muted: false,
        default: false,
        channels: 2,
        kind: "device".into(),
        output: None,
    }
}

pub fn app(name: &str, sink: &str) -> AppStatus {
    AppStatus {
        name: name.into(),
        sink: Some(sink.into()),
        streams: vec![71],
        active: true,
        volume: 1.0,
        muted: false,
        target: None,
        target_source: "session-manager".into(),
        movable: true,
    }
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

pub fn status(sinks: Vec<SinkStatus>, apps: Vec<AppStatus>) -> Status {
    Status {
        generation: 2,
        running: true,
        connected: true,
        overflow: false,
        truncated: false,
        hold_active: true,
        default_sink: sinks.iter().find(|s| s.default).map(|s| s.name.clone()),
        total_sinks: sinks.len() as u32,
        total_apps: apps.len() as u32,
        sinks,
        apps,
    }
}

pub fn bed_status() -> Status {
    let mut speakers = sink("speakers", 1.0);
    speakers.default = true;
    let mut s = status(
        vec![speakers, sink("game", 0.5), sink("chat", 1.0), sink("music", 0.3)],
        vec![app("Game", "game"), app("Chat", "chat")],
    );
    s.apps[0].target = Some("game".into());
    s.apps[0].target_source = "rule".into();
    s
}

pub fn live_app(status: Status) -> App {
    let mut app = App::new(true);
    app.on_link(Link::Read, Some(status));
    app
}

#[test]
fn first_rows_are_selected_and_selection_follows_names() {
    let mut app = live_app(bed_status());
    assert_eq!(app.selected_sink().unwrap().name, "speakers");
    app.act(Action::Down);
    app.act(Action::Down);
    assert_eq!(app.selected_sink().unwrap().name, "chat");
    // "game" disappears: the selection stays on "chat", now one row up.
    let mut next = bed_status();
    next.sinks.remove(1);
    app.on_link(Link::Read, Some(next));
    assert_eq!(app.selected_sink().unwrap().name, "chat");
    assert_eq!(app.sinks_table.selected(), Some(1));
}

#[test]
fn selection_is_clamped() {
    let mut app = live_app(bed_status());
    app.act(Action::Up);
    assert_eq!(app.sinks_table.selected(), Some(0));
    app.act(Action::Last);
    assert_eq!(app.selected_sink().unwrap().name, "music");
    app.act(Action::Down);
    assert_eq!(app.selected_sink().unwrap().name, "music");
    app.act(Action::First);
    assert_eq!(app.sinks_table.selected(), Some(0));
}

#[test]
fn volume_steps_add_up_while_requests_are_in_flight() {
    let mut app = live_app(bed_status());
    app.act(Action::Down); // game, 50%
    let first = app.act(Action::Volume(-STEP)).unwrap();
    assert_eq!(first.request, Request::SetVolume { sink: "game".into(), volume: 0.45 });
    assert_eq!(first.label, "game: volume 45%");
    let second = app.act(Action::Volume(-FINE_STEP)).unwrap();
    assert_eq!(second.request, Request::SetVolume { sink: "game".into(), volume: 0.44 });
    assert_eq!(app.in_flight, 2);
    // The first answer does not reset the base: the second is still pending.
    app.on_reply(&first, Outcome::Done(None));
    let third = app.act(Action::Volume(STEP)).unwrap();
    assert_eq!(third.request, Request::SetVolume { sink: "game".into(), volume: 0.49 });
    app.on_reply(&second, Outcome::Done(None));
    app.on_reply(&third, Outcome::Done(None));
    assert_eq!(app.in_flight, 0);
    // Everything answered: the next step starts from the snapshot (still 50% here).
    let fourth = app.act(Action::Volume(STEP)).unwrap();
    assert_eq!(fourth.request, Request::SetVolume { sink: "game".into(), volume: 0.55 });
}

#[test]
fn volume_is_clamped_to_0_and_100() {
    let mut app = live_app(bed_status());
    assert!(app.act(Action::Volume(STEP)).is_none(), "speakers already at 100%");
    assert_eq!(app.message.as_ref().unwrap().text, "speakers: volume 100%");
    app.act(Action::Last); // music, 30%
    for _ in 0..6 {
        app.act(Action::Volume(-STEP));
    }
    assert_eq!(app.pending_volume.get(&Target::Sink("music".into())), Some(&0.0));
}

#[test]
fn app_pane_sends_app_requests() {
    let mut app = live_app(bed_status());
    app.act(Action::SwitchPane);
    assert_eq!(app.pane, Pane::Apps);
    assert_eq!(
        app.act(Action::Volume(-STEP)).unwrap().request,
        Request::SetAppVolume { app: "Game".into(), volume: 0.95 }
    );
    app.act(Action::Down);
    assert_eq!(
        app.act(Action::Mute).unwrap().request,
        Request::MuteApp { app: "Chat".into(), mute: MuteAction::Toggle }
    );
    assert_eq!(app.act(Action::Unroute).unwrap().request, Request::Unroute { app: "Chat".into() });
    assert!(app.act(Action::SetDefault).is_none(), "d is for sinks");
}

#[test]
fn sink_pane_sends_sink_requests() {
    let mut app = live_app(bed_status());
    app.act(Action::Down);
    assert_eq!(app.act(Action::Mute).unwrap().request, Request::Mute { sink: "game".into(), mute: MuteAction::Toggle });
    assert_eq!(app.act(Action::SetDefault).unwrap().request, Request::SetDefault { sink: "game".into() });
    assert_eq!(app.act(Action::Reload).unwrap().request, Request::ReloadConfig);
    assert!(app.act(Action::Enter).is_none(), "Enter on a device sink does nothing");
    assert!(app.popup.is_none());
    assert!(app.message.as_ref().unwrap().text.contains("is a device"));
}

#[test]
fn enter_on_a_channel_opens_its_outputs_on_the_current_one_and_sends_output() {
    let mut s = bed_status();
    s.sinks[1].kind = "channel".into();
    s.sinks[1].output = Some("music".into());
    s.sinks[2].kind = "channel".into();
    let mut app = live_app(s);
    app.act(Action::Down);
    app.act(Action::Enter);
    // default, speakers, music (chat and game are channels), none.
    let choices: Vec<OutputChoice> = app.output_choices().into_iter().map(|e| e.choice).collect();
    assert_eq!(
        choices,
        [
            OutputChoice::Default,
            OutputChoice::Sink("speakers".into()),
            OutputChoice::Sink("music".into()),
            OutputChoice::None
        ]
    );
    assert_eq!(app.popup, Some(Popup::OutputTo { channel: "game".into(), selected: 2 }));
    app.act(Action::Up);
    let job = app.act(Action::Enter).unwrap();
    assert_eq!(job.request, Request::Output { channel: "game".into(), output: OutputChoice::Sink("speakers".into()) });
    assert!(app.popup.is_none());
    app.act(Action::Enter);
    app.act(Action::Last);
    let job = app.act(Action::Enter).unwrap();
    assert_eq!(job.request, Request::Output { channel: "game".into(), output: OutputChoice::None });
}

#[test]
fn enter_opens_the_sink_list_on_the_current_target_and_routes() {
    let mut app = live_app(bed_status());
    app.act(Action::SwitchPane);
    app.act(Action::Enter);
    assert_eq!(app.popup, Some(Popup::RouteTo { app: "Game".into(), selected: 1 }));
    app.act(Action::Down);
    app.act(Action::Down);
    let job = app.act(Action::Enter).unwrap();
    assert_eq!(job.request, Request::Route { app: "Game".into(), sink: "music".into(), create_pending: false });
    assert!(app.popup.is_none());
}

#[test]
fn escape_closes_the_sink_list_without_routing() {
    let mut app = live_app(bed_status());
    app.act(Action::SwitchPane);
    app.act(Action::Enter);
    assert!(app.act(Action::Close).is_none());
    assert!(app.popup.is_none());
    assert_eq!(app.in_flight, 0);
}

#[test]
fn unmovable_apps_are_not_routed() {
    let mut s = bed_status();
    s.apps[0].movable = false;
    let mut app = live_app(s);
    app.act(Action::SwitchPane);
    assert!(app.act(Action::Enter).is_none());
    assert!(app.popup.is_none());
    assert!(app.message.as_ref().unwrap().error);
}

#[test]
fn nothing_is_sent_while_the_daemon_is_not_running() {
    let mut s = bed_status();
    s.running = false;
    let mut app = live_app(s);
    assert!(app.act(Action::Mute).is_none());
    let message = app.message.clone().unwrap();
    assert!(message.error && message.text.contains("not running"), "{message:?}");
    app.on_link(Link::NoSnapshot { path: "/dev/shm/x".into() }, None);
    assert!(app.status.is_none());
    assert!(app.act(Action::Reload).is_none());
    assert_eq!(app.sinks_table.selected(), None);
}

#[test]
fn replies_end_up_on_the_status_line() {
    let mut app = live_app(bed_status());
    let job = app.act(Action::SetDefault).unwrap();
    app.on_reply(&job, Outcome::Refused("unknown sink speakers".into()));
    assert_eq!(
        app.message,
        Some(Message { text: "speakers: make default: error: unknown sink speakers".into(), error: true })
    );
    let job = app.act(Action::Reload).unwrap();
    app.on_reply(&job, Outcome::Done(Some("pending: x".into())));
    assert_eq!(app.message.as_ref().unwrap().text, "reload the config: pending: x");
    assert_eq!(app.in_flight, 0);
}

#[test]
fn help_closes_on_any_key() {
    let mut app = live_app(bed_status());
    app.act(Action::Help);
    assert_eq!(app.popup, Some(Popup::Help));
    assert!(app.act(Action::Mute).is_none());
    assert!(app.popup.is_none());
    assert_eq!(app.in_flight, 0);
}

#[test]
fn clicks_select_the_row_under_the_pointer() {
    let mut app = live_app(bed_status());
    app.hits.sinks = Some(Rect::new(1, 2, 70, 4));
    app.hits.apps = Some(Rect::new(1, 8, 70, 2));
    app.act(Action::Click(10, 4));
    assert_eq!((app.pane, app.selected_sink().unwrap().name.as_str()), (Pane::Sinks, "chat"));
    app.act(Action::Click(10, 9));
    assert_eq!((app.pane, app.selected_app().unwrap().name.as_str()), (Pane::Apps, "Chat"));
    let job = app.act(Action::Wheel(10, 3, -STEP)).unwrap();
    assert_eq!(job.request, Request::SetVolume { sink: "game".into(), volume: 0.45 });
    assert_eq!(app.pane, Pane::Sinks);
    // Outside any row: nothing.
    assert!(app.act(Action::Wheel(10, 20, STEP)).is_none());
}

#[test]
fn a_vanished_app_closes_its_sink_list() {
    let mut app = live_app(bed_status());
    app.act(Action::SwitchPane);
    app.act(Action::Enter);
    let mut next = bed_status();
    next.apps.remove(0);
    app.on_link(Link::Read, Some(next));
    assert!(app.popup.is_none());
}

#[test]
fn percent_rounds() {
    assert_eq!(percent(0.456), "46%");
    assert_eq!(percent(1.0), "100%");
    assert_eq!(percent(0.0), "0%");
}
