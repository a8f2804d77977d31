//! Keys and mouse events to [`Action`]s. Pure: the whole key map is here,
//! and the help screen is generated from [`HELP`].

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind};

use crate::app::{Action, FINE_STEP, STEP};

/// Every key, as the help screen lists it.
pub const HELP: &[(&str, &str)] = &[
    ("↑ ↓  k j", "select"),
    ("Home End  g G", "first, last"),
    ("Tab", "switch between sinks and apps"),
    ("← →  h l", "volume -5 % / +5 %"),
    ("Shift+← →  H L", "volume -1 % / +1 %"),
    ("m", "mute or unmute"),
    ("Enter", "on an app: route it to a sink; on a channel: choose its output"),
    ("u", "on an app: unroute (rules decide again)"),
    ("d", "on a sink: make it the default"),
    ("r", "reload the daemon's config"),
    ("?", "this help (any key closes it)"),
    ("q  Esc  Ctrl-C", "quit (Esc closes a pop-up first)"),
    ("mouse", "click selects, wheel changes the volume"),
];

/// The action for a terminal event, if it means one. `None` for events
/// that change nothing (key releases, mouse moves); resizes are handled by
/// the caller.
pub fn action_for(event: &Event) -> Option<Action> {
    match event {
        Event::Key(key) => action_for_key(key),
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click(mouse.column, mouse.row)),
            MouseEventKind::ScrollUp => Some(Action::Wheel(mouse.column, mouse.row, STEP)),
            MouseEventKind::ScrollDown => Some(Action::Wheel(mouse.column, mouse.row, -STEP)),
            _ => None,
        },
        _ => None,
    }
}

/// The action for a key press.
pub fn action_for_key(key: &KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let shift = key.modifiers.contains(KeyModifiers::SHIFT);
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl {
        return matches!(key.code, KeyCode::Char('c' | 'C')).then_some(Action::Quit);
    }
    let step = |sign: f64| Action::Volume(sign * if shift { FINE_STEP } else { STEP });
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Esc => Action::Close,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Home | KeyCode::Char('g') => Action::First,
        KeyCode::End | KeyCode::Char('G') => Action::Last,
        KeyCode::Tab | KeyCode::BackTab => Action::SwitchPane,
        KeyCode::Left | KeyCode::Char('h') => step(-1.0),
        KeyCode::Right | KeyCode::Char('l') => step(1.0),
        KeyCode::Char('H') => Action::Volume(-FINE_STEP),
        KeyCode::Char('L') => Action::Volume(FINE_STEP),
        KeyCode::Char('m') => Action::Mute,
        KeyCode::Enter => Action::Enter,
        KeyCode::Char('u') => Action::Unroute,
        KeyCode::Char('d') => Action::SetDefault,
        KeyCode::Char('r') => Action::Reload,
        KeyCode::Char('?') => Action::Help,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyEventState, MouseEvent};

    fn key(code: KeyCode, modifiers: KeyModifiers) -> Option<Action> {
        action_for(&Event::Key(KeyEvent { code, modifiers, kind: KeyEventKind::Press, state: KeyEventState::NONE }))
    }

    fn plain(code: KeyCode) -> Option<Action> {
        key(code, KeyModifiers::NONE)
    }

    #[test]
    fn arrows_and_vi_keys_select() {
        assert_eq!(plain(KeyCode::Up), Some(Action::Up));
        assert_eq!(plain(KeyCode::Char('k')), Some(Action::Up));
        assert_eq!(plain(KeyCode::Down), Some(Action::Down));
        assert_eq!(plain(KeyCode::Char('j')), Some(Action::Down));
        assert_eq!(plain(KeyCode::Tab), Some(Action::SwitchPane));
        assert_eq!(key(KeyCode::BackTab, KeyModifiers::SHIFT), Some(Action::SwitchPane));
    }

    #[test]
    fn volume_steps_are_5_and_1_percent_with_shift() {
        assert_eq!(plain(KeyCode::Left), Some(Action::Volume(-0.05)));
        assert_eq!(plain(KeyCode::Char('h')), Some(Action::Volume(-0.05)));
        assert_eq!(plain(KeyCode::Right), Some(Action::Volume(0.05)));
        assert_eq!(plain(KeyCode::Char('l')), Some(Action::Volume(0.05)));
        assert_eq!(key(KeyCode::Left, KeyModifiers::SHIFT), Some(Action::Volume(-0.01)));
        assert_eq!(key(KeyCode::Right, KeyModifiers::SHIFT), Some(Action::Volume(0.01)));
        assert_eq!(key(KeyCode::Char('H'), KeyModifiers::SHIFT), Some(Action::Volume(-0.01)));
        assert_eq!(key(KeyCode::Char('L'), KeyModifiers::SHIFT), Some(Action::Volume(0.01)));
    }

    #[test]
    fn command_keys() {
        assert_eq!(plain(KeyCode::Char('m')), Some(Action::Mute));
        assert_eq!(plain(KeyCode::Enter), Some(Action::Enter));
        assert_eq!(plain(KeyCode::Char('u')), Some(Action::Unroute));
        assert_eq!(plain(KeyCode::Char('d')), Some(Action::SetDefault));
        assert_eq!(plain(KeyCode::Char('r')), Some(Action::Reload));
        assert_eq!(plain(KeyCode::Char('?')), Some(Action::Help));
        assert_eq!(plain(KeyCode::Char('x')), None);
    }

    #[test]
    fn quitting() {
        assert_eq!(plain(KeyCode::Char('q')), Some(Action::Quit));
        assert_eq!(plain(KeyCode::Esc), Some(Action::Close));
        assert_eq!(key(KeyCode::Char('c'), KeyModifiers::CONTROL), Some(Action::Quit));
        // Ctrl with anything else is not a command (Ctrl-M is not m).
        assert_eq!(key(KeyCode::Char('m'), KeyModifiers::CONTROL), None);
    }

    #[test]
    fn releases_are_ignored() {
        let release = KeyEvent {
            code: KeyCode::Char('m'),
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Release,
            state: KeyEventState::NONE,
        };
        assert_eq!(action_for(&Event::Key(release)), None);
    }

    #[test]
    fn mouse_clicks_and_wheel() {
        let mouse =
            |kind| action_for(&Event::Mouse(MouseEvent { kind, column: 7, row: 3, modifiers: KeyModifiers::NONE }));
        assert_eq!(mouse(MouseEventKind::Down(MouseButton::Left)), Some(Action::Click(7, 3)));
        assert_eq!(mouse(MouseEventKind::ScrollUp), Some(Action::Wheel(7, 3, 0.05)));
        assert_eq!(mouse(MouseEventKind::ScrollDown), Some(Action::Wheel(7, 3, -0.05)));
        assert_eq!(mouse(MouseEventKind::Moved), None);
        assert_eq!(mouse(MouseEventKind::Down(MouseButton::Right)), None);
    }

    #[test]
    fn help_names_every_command_key() {
        let keys: String = HELP.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(" ");
        for k in ["k", "j", "Tab", "h", "l", "H", "L", "m", "Enter", "u", "d", "r", "?", "q", "Esc", "g", "G"] {
            assert!(keys.split(' ').any(|w| w == k), "{k} missing from the help");
        }
    }
}
