//! Human-readable forms of a [`Status`].

use pvm_ipc::layout::{MAX_APPS, MAX_SINKS};
use pvm_ipc::status::{AppStatus, SinkStatus, Status};

use crate::level::percent;

/// The daemon's state in a few words.
fn daemon_state(status: &Status) -> &'static str {
    match (status.running, status.connected) {
        (false, _) => "not running (showing the last state it published)",
        (true, false) => "running, not connected to PipeWire",
        (true, true) => "running, connected to PipeWire",
    }
}

/// The full `pvmctl status` text.
pub fn status_text(status: &Status) -> String {
    let mut out = format!("daemon: {} (generation {})\n", daemon_state(status), status.generation);

    out.push_str("\nSinks:\n");
    if status.sinks.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let mut rows = vec![row(["", "NAME", "DESCRIPTION", "VOLUME", "MUTE", "KIND", "OUTPUT"])];
        rows.extend(status.sinks.iter().map(sink_row));
        out.push_str(&table(&rows, &[3]));
    }

    out.push_str("\nApps:\n");
    if status.apps.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let mut rows =
            vec![row(["NAME", "PLAYS TO", "TARGET", "FROM", "VOLUME", "MUTE", "MOVABLE", "STREAMS", "STATE"])];
        rows.extend(status.apps.iter().map(app_row));
        out.push_str(&table(&rows, &[4]));
    }

    let shown_sinks = status.sinks.len() as u32;
    let shown_apps = status.apps.len() as u32;
    if status.overflow || status.total_sinks > shown_sinks || status.total_apps > shown_apps {
        out.push_str(&format!(
            "\nnote: the daemon knows {} sinks and {} apps; the snapshot holds at most {MAX_SINKS} sinks and {MAX_APPS} apps.\n",
            status.total_sinks, status.total_apps
        ));
    }
    if status.truncated {
        out.push_str("\nnote: some names were shortened to fit the snapshot.\n");
    }
    if status.running && status.connected && !status.hold_active {
        out.push_str(
            "\nhint: new streams may start on another sink for a moment; `pvmctl setup wireplumber` installs the routing hold (WirePlumber 0.5).\n",
        );
    }
    out
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// The MUTE column.
fn mute_mark(muted: bool) -> &'static str {
    if muted {
        "muted"
    } else {
        "-"
    }
}

fn sink_row(sink: &SinkStatus) -> Vec<String> {
    vec![
        if sink.default { "*" } else { "" }.to_owned(),
        sink.name.clone(),
        sink.description.clone(),
        percent(sink.volume),
        mute_mark(sink.muted).to_owned(),
        sink.kind.clone(),
        if sink.kind == "channel" { sink.output.clone().unwrap_or_else(|| "none".into()) } else { "-".into() },
    ]
}

fn app_row(app: &AppStatus) -> Vec<String> {
    let streams: Vec<String> = app.streams.iter().map(u32::to_string).collect();
    vec![
        app.name.clone(),
        app.sink.clone().unwrap_or_else(|| "-".into()),
        app.target.clone().unwrap_or_else(|| "-".into()),
        app.target_source.clone(),
        percent(app.volume),
        mute_mark(app.muted).to_owned(),
        if app.movable { "yes" } else { "no" }.to_owned(),
        if streams.is_empty() { "-".to_owned() } else { streams.join(",") },
        if app.active { "active" } else { "idle" }.to_owned(),
    ]
}

/// Left-aligned columns (right-aligned for the indices in `right`), two
/// spaces apart, indented by two.
fn table(rows: &[Vec<String>], right: &[usize]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c] - cell.chars().count();
            if right.contains(&c) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One line for `pvmctl watch`: sinks with volume, then where each app plays.
pub fn watch_line(status: &Status) -> String {
    let mut line = String::new();
    if !status.running {
        line.push_str("[daemon not running] ");
    } else if !status.connected {
        line.push_str("[not connected to PipeWire] ");
    }
    let sinks: Vec<String> = status
        .sinks
        .iter()
        .map(|s| {
            format!(
                "{}{} {}{}",
                if s.default { "*" } else { "" },
                s.name,
                percent(s.volume),
                if s.muted { " muted" } else { "" }
            )
        })
        .collect();
    let apps: Vec<String> =
        status.apps.iter().map(|a| format!("{} -> {}", a.name, a.sink.as_deref().unwrap_or("-"))).collect();
    line.push_str("sinks: ");
    line.push_str(&or_none(&sinks));
    line.push_str(" | apps: ");
    line.push_str(&or_none(&apps));
    line
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            generation: 8,
            running: true,
            connected: true,
            overflow: false,
            truncated: false,
            hold_active: true,
            default_sink: Some("game".into()),
            total_sinks: 2,
            total_apps: 2,
            sinks: vec![
                SinkStatus {
                    id: 40,
                    name: "game".into(),
                    description: "Game".into(),
                    volume: 0.5,
                    muted: false,
                    default: true,
                    channels: 2,
                    kind: "channel".into(),
                    output: Some("headphones".into()),
                },
                SinkStatus {
                    id: 41,
                    name: "chat".into(),
                    description: "Voice chat".into(),
                    volume: 1.0,
                    muted: true,
                    default: false,
                    channels: 2,
                    kind: "device".into(),
                    output: None,
                },
            ],
            apps: vec![
                AppStatus {
                    name: "Google Chrome".into(),
                    sink: Some("game".into()),
                    streams: vec![71, 72],
                    active: true,
                    volume: 0.75,
                    muted: false,
                    target: Some("game".into()),
                    target_source: "rule".into(),
                    movable: true,
                },
                AppStatus {
                    name: "mpv".into(),
                    sink: None,
                    streams: vec![],
                    active: false,
                    volume: 1.0,
                    muted: true,
                    target: None,
                    target_source: "session-manager".into(),
                    movable: false,
                },
            ],
        }
    }

    #[test]
    fn status_text_shows_everything() {
        let text = status_text(&sample());
        let expected = "\
daemon: running, connected to PipeWire (generation 8)

Sinks:
     NAME  DESCRIPTION  VOLUME  MUTE   KIND     OUTPUT
  *  game  Game            50%  -      channel  headphones
     chat  Voice chat     100%  muted  device   -

Apps:
  NAME           PLAYS TO  TARGET  FROM             VOLUME  MUTE   MOVABLE  STREAMS  STATE
  Google Chrome  game      game    rule                75%  -      yes      71,72    active
  mpv            -         -       session-manager    100%  muted  no       -        idle
";
        assert_eq!(text, expected);
    }

    #[test]
    fn status_text_says_when_the_daemon_is_down_or_things_are_missing() {
        let mut status = sample();
        status.running = false;
        status.sinks.clear();
        status.apps.clear();
        status.truncated = true;
        status.overflow = true;
        let text = status_text(&status);
        assert!(text.starts_with("daemon: not running"), "{text}");
        assert!(text.contains("Sinks:\n  (none)\n"), "{text}");
        assert!(text.contains("Apps:\n  (none)\n"), "{text}");
        assert!(text.contains("the daemon knows 2 sinks and 2 apps"), "{text}");
        assert!(text.contains("shortened"), "{text}");

        let mut status = sample();
        status.connected = false;
        assert!(status_text(&status).starts_with("daemon: running, not connected"));

        let mut status = sample();
        assert!(!status_text(&status).contains("setup wireplumber"));
        status.hold_active = false;
        assert!(
            status_text(&status).contains("hint: new streams may start on another sink"),
            "{}",
            status_text(&status)
        );
    }

    #[test]
    fn watch_line_is_one_line() {
        assert_eq!(watch_line(&sample()), "sinks: *game 50%, chat 100% muted | apps: Google Chrome -> game, mpv -> -");
        let mut status = sample();
        status.running = false;
        status.sinks.clear();
        status.apps.clear();
        assert_eq!(watch_line(&status), "[daemon not running] sinks: none | apps: none");
    }
}
