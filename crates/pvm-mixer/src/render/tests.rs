//! Rendering tests on ratatui's `TestBackend`: what is on the screen, at
//! 80x24 and other sizes, for awkward names and full snapshots.

use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;

use super::*;
use crate::app::tests::{app as app_status, bed_status, live_app, sink, status};
use crate::app::{Action, App};

/// Draws `app` on a `width` x `height` test terminal; returns its lines.
fn screen(app: &mut App, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| draw(frame, app)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            let mut line = String::new();
            let mut skip = 0;
            for x in 0..width {
                // The cell after a double-width character only pads it.
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let symbol = buffer[(x, y)].symbol();
                skip = unicode_width::UnicodeWidthStr::width(symbol).saturating_sub(1);
                line.push_str(symbol);
            }
            line
        })
        .collect()
}

fn text(lines: &[String]) -> String {
    lines.join("\n")
}

/// The line that contains `needle`; panics with the screen otherwise.
fn line_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not on the screen:\n{}", text(lines)))
}

#[test]
fn the_bed_at_80x24_shows_every_sink_app_and_the_daemon_state() {
    let mut app = live_app(bed_status());
    let lines = screen(&mut app, 80, 24);
    let all = text(&lines);
    for needle in ["daemon: running", "PipeWire: connected", "routing hold: active", "Sinks (4)", "Apps (2)"] {
        assert!(all.contains(needle), "{needle:?} missing:\n{all}");
    }
    let speakers = line_with(&lines, "Speakers");
    assert!(speakers.contains('*') && speakers.contains("speakers") && speakers.contains("100%"), "{speakers}");
    let game = line_with(&lines, "Game ");
    assert!(game.contains("50%") && !game.contains('*'), "{game}");
    assert!(game.contains("██████████░░░░░░░░░░"), "half a 20-cell bar: {game}");
    assert!(line_with(&lines, "Music").contains("30%"));
    let game_app = line_with(&lines, "game (rule)");
    assert!(game_app.contains("Game") && game_app.contains("active") && game_app.contains("100%"), "{game_app}");
    let chat_app = line_with(&lines, "(session manager)");
    assert!(chat_app.contains("Chat") && chat_app.contains("chat"), "{chat_app}");
    assert!(all.contains("?: help"), "key hints:\n{all}");
}

#[test]
fn mute_default_and_idle_and_unmovable_are_visible() {
    let mut s = bed_status();
    s.sinks[2].muted = true;
    s.apps[1].muted = true;
    s.apps[1].active = false;
    s.apps[1].movable = false;
    s.apps[1].streams = vec![80, 81, 82];
    s.apps[1].target = Some("music".into());
    s.apps[1].target_source = "other-tool".into();
    let mut app = live_app(s);
    let lines = screen(&mut app, 100, 24);
    assert!(line_with(&lines, "Chat  ").contains("muted"), "{}", text(&lines));
    let chat_app = line_with(&lines, "music (other tool)");
    for needle in ["muted", "idle", "no", " 3 "] {
        assert!(chat_app.contains(needle), "{needle:?} missing from {chat_app:?}");
    }
    assert!(line_with(&lines, "Speakers").contains('*'));
}

#[test]
fn awkward_names_stay_on_their_row() {
    let long = "x".repeat(200);
    let names = ["Google Chrome", "say \"hi\"", long.as_str(), "Kopfhörer-App", "音楽プレーヤー", "tab\there"];
    let apps = names.iter().map(|n| app_status(n, "game")).collect();
    let mut s = status(vec![sink("game", 0.5)], apps);
    s.sinks[0].description = "Spiel \"laut\" – 🎮".into();
    let mut app = live_app(s);
    let lines = screen(&mut app, 80, 24);
    // A wide name is cut on a character boundary, with a mark.
    for name in ["Google Chrome", "say \"hi\"", "Kopfhörer-App", "音楽プレーヤ…", "Spiel \"laut\" – 🎮"] {
        let line = line_with(&lines, name);
        assert!(line.contains("100%") || line.contains("50%"), "{name}: the row lost its volume: {line}");
    }
    // 200 characters are cut to the column, marked; the row keeps its other columns.
    let long_row = line_with(&lines, "xxxxxxxx");
    assert!(long_row.contains("100%") && long_row.contains("active"), "{long_row}");
    assert!(long_row.contains("xxx… "), "{long_row}");
    assert!(!text(&lines).contains(&"x".repeat(60)), "the long name was not cut");
    // A control character never reaches the terminal.
    assert!(line_with(&lines, "here").contains("tab\u{fffd}here"));
    assert_eq!(clean("a\nb\x1b[2J"), "a\u{fffd}b\u{fffd}[2J");
    assert_eq!(fit_text("Kopfhörer", 5), "Kopf…");
    assert_eq!(fit_text("音楽プレーヤー", 6), "音楽…", "wide characters count twice");
    assert_eq!(fit_text("game", 4), "game");
    assert_eq!(fit_text("game", 0), "");
}

#[test]
fn no_apps_says_none() {
    let mut app = live_app(status(vec![sink("game", 0.5)], vec![]));
    let lines = screen(&mut app, 80, 24);
    assert!(text(&lines).contains("Apps (0)"));
    assert!(text(&lines).contains("(none)"));
    app.act(Action::SwitchPane);
    assert!(app.act(Action::Mute).is_none(), "nothing selected, nothing sent");
}

#[test]
fn a_full_snapshot_of_128_apps_scrolls_to_the_selection() {
    let apps: Vec<_> = (0..128).map(|i| app_status(&format!("App {i:03}"), "game")).collect();
    let mut app = live_app(status(vec![sink("game", 0.5)], apps));
    let lines = screen(&mut app, 80, 24);
    assert!(text(&lines).contains("Apps (128)"));
    assert!(text(&lines).contains("App 000"));
    assert!(!text(&lines).contains("App 127"));
    app.act(Action::SwitchPane);
    app.act(Action::Last);
    let lines = screen(&mut app, 80, 24);
    assert!(line_with(&lines, "App 127").contains("▶"), "the selection is shown and marked");
    assert!(!text(&lines).contains("App 000"));
    // A click lands on the row under it, whatever the scroll position.
    let rows = app.hits.apps.unwrap();
    app.act(Action::Click(rows.x + 3, rows.y));
    let first_shown = app.selected_app().unwrap().name.clone();
    assert!(line_with(&screen(&mut app, 80, 24), &first_shown).contains("▶"));
}

#[test]
fn eight_sinks_fit_in_80x24() {
    let sinks: Vec<_> = (0..8).map(|i| sink(&format!("sink{i}"), f64::from(i) / 8.0)).collect();
    let mut app = live_app(status(sinks, vec![app_status("Game", "sink0")]));
    let lines = screen(&mut app, 80, 24);
    for i in 0..8 {
        assert!(text(&lines).contains(&format!("Sink{i}")), "Sink{i} missing:\n{}", text(&lines));
    }
    assert!(text(&lines).contains("Game"), "the apps still have room");
}

#[test]
fn overflow_and_truncation_are_flagged() {
    let sinks: Vec<_> = (0..8).map(|i| sink(&format!("sink{i}"), 0.5)).collect();
    let apps: Vec<_> = (0..128).map(|i| app_status(&format!("App {i}"), "sink0")).collect();
    let mut s = status(sinks, apps);
    s.overflow = true;
    s.truncated = true;
    s.total_sinks = 10;
    s.total_apps = 130;
    let mut app = live_app(s);
    let all = text(&screen(&mut app, 120, 30));
    for needle in ["OVERFLOW", "names shortened", "Sinks (8 of 10 shown", "Apps (128 of 130 shown"] {
        assert!(all.contains(needle), "{needle:?} missing:\n{all}");
    }
    let mut plain = live_app(bed_status());
    let all = text(&screen(&mut plain, 120, 30));
    assert!(!all.contains("OVERFLOW") && !all.contains("shortened"));
}

#[test]
fn without_a_daemon_it_says_how_to_start_one() {
    let mut app = App::new(true);
    app.on_link(Link::NoSnapshot { path: "/dev/shm/pipewire-volume-mixer-1000".into() }, None);
    let all = text(&screen(&mut app, 80, 24));
    for needle in ["daemon: not running", "/dev/shm/pipewire-volume-mixer-1000", HOW_TO_START] {
        assert!(all.contains(needle), "{needle:?} missing:\n{all}");
    }
    let mut stopped = bed_status();
    stopped.running = false;
    app.on_link(Link::Read, Some(stopped));
    let all = text(&screen(&mut app, 80, 24));
    assert!(all.contains("last state of a stopped daemon") && all.contains("Speakers"), "{all}");
    app.on_link(Link::Starting, None);
    assert!(text(&screen(&mut app, 80, 24)).contains("daemon: starting"));
}

#[test]
fn disconnected_and_no_hold_are_shown() {
    let mut s = bed_status();
    s.connected = false;
    s.hold_active = false;
    let mut app = live_app(s);
    let all = text(&screen(&mut app, 100, 24));
    assert!(all.contains("PipeWire: not connected") && all.contains("routing hold: off"), "{all}");
}

#[test]
fn narrow_terminals_drop_the_bars_first() {
    let mut app = live_app(bed_status());
    let lines = screen(&mut app, 50, 24);
    let game = line_with(&lines, "Game ");
    assert!(game.contains("50%") && !game.contains('█'), "{game}");
    let lines = screen(&mut app, 30, 12);
    assert!(line_with(&lines, "Speak").contains("100%"), "{}", text(&lines));
}

#[test]
fn every_size_draws_without_panicking_and_tiny_ones_say_so() {
    let mut app = live_app(bed_status());
    app.act(Action::SwitchPane);
    app.act(Action::Enter);
    for width in (1..=90).step_by(3) {
        for height in 1..=26 {
            let lines = screen(&mut app, width, height);
            if width < MIN_WIDTH || height < MIN_HEIGHT {
                let start = &"Too"[..usize::from(width.min(3))];
                assert!(lines[0].starts_with(start), "{width}x{height}: {lines:?}");
            }
        }
    }
    let all = text(&screen(&mut app, 30, 5));
    assert!(!all.contains("Too small"), "30x5 is usable:\n{all}");
    assert!(text(&screen(&mut app, 20, 4)).starts_with("Too small: 20x4;"));
}

#[test]
fn no_color_draws_without_colours() {
    let colours = |no_color: bool| {
        let mut app = App::new(no_color);
        app.on_link(Link::Read, Some(bed_status()));
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|frame| draw(frame, &mut app)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        buffer.content.iter().filter(|c| c.fg != Color::Reset || c.bg != Color::Reset).count()
    };
    assert_eq!(colours(true), 0);
    assert!(colours(false) > 0);
}

#[test]
fn help_lists_every_key() {
    let mut app = live_app(bed_status());
    app.act(Action::Help);
    let all = text(&screen(&mut app, 80, 24));
    for (key, what) in HELP {
        assert!(all.contains(key) && all.contains(what), "{key}: {what} missing:\n{all}");
    }
}

#[test]
fn the_route_list_shows_the_sinks_and_takes_clicks() {
    let mut app = live_app(bed_status());
    app.act(Action::SwitchPane);
    app.act(Action::Enter);
    let lines = screen(&mut app, 80, 24);
    assert!(text(&lines).contains("Route Game to"));
    assert!(line_with(&lines, "● Game").contains("game"), "the current sink is marked");
    let rows = app.hits.picker.unwrap();
    let music_row = lines.iter().position(|l| l.contains("Music  music")).unwrap() as u16;
    let job = app.act(Action::Click(rows.x + 2, music_row)).unwrap();
    assert_eq!(
        job.request,
        pvm_ipc::protocol::Request::Route { app: "Game".into(), sink: "music".into(), create_pending: false }
    );
}

#[test]
fn messages_and_errors_show_on_the_status_line() {
    let mut app = live_app(bed_status());
    let job = app.act(Action::Mute).unwrap();
    assert!(text(&screen(&mut app, 80, 24)).contains("speakers: mute ..."));
    app.on_reply(&job, crate::app::Outcome::Refused("timeout: PipeWire did not show it in time".into()));
    let lines = screen(&mut app, 80, 24);
    assert!(lines[22].contains("error: timeout: PipeWire did not show it in time"), "{}", text(&lines));
}

#[test]
fn a_channel_shows_where_it_plays_and_a_device_says_so() {
    let mut s = bed_status();
    s.sinks[1].kind = "channel".into();
    s.sinks[1].output = Some("speakers".into());
    s.sinks[2].kind = "channel".into();
    s.sinks[2].output = None;
    let mut app = live_app(s);
    let lines = screen(&mut app, 100, 24);
    assert!(line_with(&lines, "Game ").contains("→ speakers"), "{}", text(&lines));
    assert!(line_with(&lines, "Chat  ").contains("→ none"), "{}", text(&lines));
    assert!(line_with(&lines, "Speakers").contains("device"), "{}", text(&lines));
}

#[test]
fn the_output_list_of_a_channel_marks_its_current_output() {
    let mut s = bed_status();
    s.sinks[1].kind = "channel".into();
    s.sinks[1].output = Some("speakers".into());
    let mut app = live_app(s);
    app.act(Action::Down);
    app.act(Action::Enter);
    let lines = screen(&mut app, 80, 24);
    assert!(text(&lines).contains("Send game to"), "{}", text(&lines));
    assert!(line_with(&lines, "the default device").contains("default"));
    assert!(line_with(&lines, "Speakers  speakers").contains('●'), "{}", text(&lines));
    assert!(line_with(&lines, "nowhere (silent)").contains("none"));
}
