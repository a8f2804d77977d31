//! Drawing the [`App`] with ratatui. Everything on the screen comes from
//! here; the terminal backend is the caller's (crossterm in the binary,
//! `TestBackend` in the tests).
//!
//! The lists are tables whose columns have a priority: when the terminal is
//! narrow, the least important columns go first (the volume bar, then the
//! details), never the name, the percentage or the mute state. The sink
//! columns are defined in one place, [`SINK_COLUMNS`], so a column (a sink's
//! kind, its output) is one more entry there.

use pvm_ipc::protocol::OutputChoice;
use pvm_ipc::status::{AppStatus, SinkStatus, Status};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, List, ListItem, ListState, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use crate::app::{percent, App, Hits, Link, Pane, Popup};
use crate::keys::HELP;

/// Below this the mixer only says that the terminal is too small.
pub const MIN_WIDTH: u16 = 24;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 5;
/// From this height on, the lists have borders with titles and the key hints line is shown.
const ROOMY_HEIGHT: u16 = 12;
/// From this height on, the lists have column headers.
const HEADERS_HEIGHT: u16 = 18;
/// Columns are separated by one blank.
const SPACING: u16 = 1;
/// The selected row is marked by this (and by reverse video).
const HIGHLIGHT: &str = "▶ ";
/// The shortcut of the command to start the daemon, on screen when it is not running.
pub const HOW_TO_START: &str = "systemctl --user start pipewire-volume-mixer";

/// Styles, with or without colours (`NO_COLOR`).
#[derive(Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }
    fn good(self) -> Style {
        self.fg(Color::Green)
    }
    fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    fn warn(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }
    fn bar(self, muted: bool) -> Style {
        if muted {
            self.dim()
        } else {
            self.fg(Color::Cyan)
        }
    }
    fn focus(self) -> Style {
        if self.color {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        }
    }
}

/// How wide a column is.
#[derive(Clone, Copy)]
enum Width {
    /// Exactly this many cells.
    Fixed(u16),
    /// At least `min`, sharing what is left by `weight`.
    Flex { min: u16, weight: u16 },
}

/// One column of a list.
struct Column<T> {
    title: &'static str,
    width: Width,
    /// 0 is always shown; higher numbers are dropped first when space is short.
    priority: u8,
    /// The cell for an item; the `u16` is the column's width (for the bar).
    cell: fn(&T, Theme, u16) -> Cell<'static>,
}

/// The sink list, left to right.
const SINK_COLUMNS: &[Column<SinkStatus>] = &[
    Column { title: "", width: Width::Fixed(1), priority: 0, cell: |s, t, _| default_mark(s.default, t) },
    Column {
        title: "SINK",
        width: Width::Flex { min: 8, weight: 4 },
        priority: 0,
        cell: |s, _, w| text(&s.description, w),
    },
    Column {
        title: "NAME",
        width: Width::Flex { min: 6, weight: 2 },
        priority: 2,
        cell: |s, t, w| text(&s.name, w).style(t.dim()),
    },
    Column { title: "OUTPUT", width: Width::Flex { min: 8, weight: 2 }, priority: 1, cell: output_cell },
    Column { title: "VOLUME", width: Width::Fixed(20), priority: 3, cell: |s, t, w| bar(s.volume, s.muted, w, t) },
    Column {
        title: "",
        width: Width::Fixed(4),
        priority: 0,
        cell: |s, _, _| Cell::from(Line::from(percent(s.volume)).alignment(Alignment::Right)),
    },
    Column { title: "MUTE", width: Width::Fixed(5), priority: 0, cell: |s, t, _| mute_mark(s.muted, t) },
];

/// An app and its number of streams (the status lists at most 8 stream ids).
struct AppRow {
    app: AppStatus,
    streams: u32,
}

/// The app list, left to right.
const APP_COLUMNS: &[Column<AppRow>] = &[
    Column {
        title: "APP",
        width: Width::Flex { min: 10, weight: 3 },
        priority: 0,
        cell: |r, _, w| text(&r.app.name, w),
    },
    Column {
        title: "PLAYS TO",
        width: Width::Flex { min: 6, weight: 2 },
        priority: 1,
        cell: |r, t, w| plays_to(&r.app, w, t),
    },
    Column {
        title: "TARGET (FROM)",
        width: Width::Flex { min: 10, weight: 5 },
        priority: 3,
        cell: |r, t, w| target(&r.app, w, t),
    },
    Column {
        title: "VOLUME",
        width: Width::Fixed(7),
        priority: 5,
        cell: |r, t, w| bar(r.app.volume, r.app.muted, w, t),
    },
    Column {
        title: "",
        width: Width::Fixed(4),
        priority: 0,
        cell: |r, _, _| Cell::from(Line::from(percent(r.app.volume)).alignment(Alignment::Right)),
    },
    Column { title: "MUTE", width: Width::Fixed(5), priority: 0, cell: |r, t, _| mute_mark(r.app.muted, t) },
    Column {
        title: "MOVE",
        width: Width::Fixed(4),
        priority: 4,
        cell: |r, t, _| if r.app.movable { Cell::from("yes") } else { Cell::from("no").style(t.warn()) },
    },
    Column {
        title: "STR",
        width: Width::Fixed(3),
        priority: 6,
        cell: |r, _, _| Cell::from(Line::from(r.streams.to_string()).alignment(Alignment::Right)),
    },
    Column {
        title: "STATE",
        width: Width::Fixed(6),
        priority: 2,
        cell: |r, t, _| {
            if r.app.active {
                Cell::from("active").style(t.good())
            } else {
                Cell::from("idle").style(t.dim())
            }
        },
    },
];

/// Draws the whole screen and records where the lists are (for the mouse).
pub fn draw(frame: &mut Frame, app: &mut App) {
    let theme = Theme { color: !app.no_color };
    let area = frame.area();
    app.hits = Hits::default();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!("Too small: {}x{}; pvm-mixer needs {MIN_WIDTH}x{MIN_HEIGHT}", area.width, area.height);
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let roomy = area.height >= ROOMY_HEIGHT;
    let [header, body, status_line, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(u16::from(roomy)),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header_line(app, theme)), header);
    match (&app.status, &app.link) {
        (Some(_), _) => draw_lists(frame, app, body, theme),
        (None, link) => draw_absent(frame, link, body, theme),
    }
    frame.render_widget(Paragraph::new(status_text(app, theme)), status_line);
    if roomy {
        let hint = "?: help  Tab: sinks/apps  ←→: volume  m: mute  Enter: route  d: default  q: quit";
        frame.render_widget(Paragraph::new(Line::from(Span::styled(hint, theme.dim()))), hints);
    }
    match app.popup.clone() {
        Some(Popup::Help) => draw_help(frame, area, theme),
        Some(Popup::RouteTo { app: name, selected }) => draw_route_to(frame, app, &name, selected, area, theme),
        Some(Popup::OutputTo { channel, selected }) => draw_output_to(frame, app, &channel, selected, area, theme),
        None => {}
    }
}

/// The first line: the daemon's state and the snapshot's flags.
fn header_line(app: &App, theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::styled("pvm-mixer", Style::new().add_modifier(Modifier::BOLD)), Span::raw("  ")];
    let sep = || Span::styled(" · ", theme.dim());
    match (&app.link, &app.status) {
        (Link::Read, Some(status)) if status.running => {
            spans.push(Span::raw("daemon: "));
            spans.push(Span::styled("running", theme.good()));
            spans.push(sep());
            spans.push(Span::raw("PipeWire: "));
            spans.push(if status.connected {
                Span::styled("connected", theme.good())
            } else {
                Span::styled("not connected", theme.bad())
            });
            spans.push(sep());
            spans.push(Span::raw("routing hold: "));
            spans.push(if status.hold_active {
                Span::styled("active", theme.good())
            } else {
                Span::styled("off", theme.warn())
            });
            flags(&mut spans, status, theme);
        }
        (Link::Starting, _) => spans.push(Span::styled("daemon: starting", theme.warn())),
        (Link::Waiting, _) => spans.push(Span::raw("reading the snapshot ...")),
        (_, status) => {
            spans.push(Span::raw("daemon: "));
            spans.push(Span::styled("not running", theme.bad()));
            if let Some(status) = status {
                flags(&mut spans, status, theme);
            }
        }
    }
    Line::from(spans)
}

fn flags(spans: &mut Vec<Span<'static>>, status: &Status, theme: Theme) {
    if status.overflow || overflowing(status) {
        spans.push(Span::styled(" · ", theme.dim()));
        spans.push(Span::styled("OVERFLOW", theme.warn()));
    }
    if status.truncated {
        spans.push(Span::styled(" · ", theme.dim()));
        spans.push(Span::styled("names shortened", theme.warn()));
    }
}

fn overflowing(status: &Status) -> bool {
    status.total_sinks as usize > status.sinks.len() || status.total_apps as usize > status.apps.len()
}

/// The body when there is no state to show.
fn draw_absent(frame: &mut Frame, link: &Link, area: Rect, theme: Theme) {
    let lines: Vec<Line> = match link {
        Link::Waiting => vec![Line::from("Reading the snapshot ...")],
        Link::Starting => vec![Line::from("The daemon is starting ...")],
        Link::NoSnapshot { path } => vec![
            Line::from(Span::styled("The daemon is not running.", theme.bad())),
            Line::from(format!("(no snapshot at {path})")),
            Line::from(""),
            Line::from(format!("Start it with `{HOW_TO_START}`")),
            Line::from("or run `pipewire-volume-mixer-daemon`; the mixer comes alive when it starts."),
        ],
        Link::Unreadable(why) => {
            vec![Line::from(Span::styled("The snapshot cannot be read:", theme.bad())), Line::from(clean(why))]
        }
        Link::Read => Vec::new(),
    };
    let block = block_for(area.height >= ROOMY_HEIGHT, theme.dim());
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

fn block_for(borders: bool, style: Style) -> Block<'static> {
    if borders {
        Block::new().borders(Borders::ALL).border_style(style)
    } else {
        Block::new()
    }
}

/// The sink list above the app list.
fn draw_lists(frame: &mut Frame, app: &mut App, area: Rect, theme: Theme) {
    let Some(status) = app.status.clone() else { return };
    let borders = area.height + 3 >= ROOMY_HEIGHT;
    let headers = area.height + 3 >= HEADERS_HEIGHT;
    // Borders and headers cost rows: 2 for the borders, 1 for the header.
    let chrome = if borders { 2 } else { 1 } + u16::from(headers);
    // The sinks (8 at most) get their rows if the apps keep a few.
    let wanted_sinks = status.sinks.len().max(1) as u16 + chrome;
    let apps_minimum = chrome + 3;
    let sinks_height = wanted_sinks.min(area.height.saturating_sub(apps_minimum)).max(chrome + 1).min(area.height);
    let [sinks_area, apps_area] = Layout::vertical([Constraint::Length(sinks_height), Constraint::Fill(1)]).areas(area);

    let stale = if status.running { "" } else { " (last state of a stopped daemon)" };
    let sinks_title =
        format!("Sinks {}{stale}", count(status.sinks.len(), status.total_sinks, pvm_ipc::layout::MAX_SINKS));
    let apps_title = format!("Apps {}", count(status.apps.len(), status.total_apps, pvm_ipc::layout::MAX_APPS));
    let focus = app.pane;
    app.hits.sinks = draw_table(
        frame,
        sinks_area,
        &sinks_title,
        focus == Pane::Sinks,
        SINK_COLUMNS,
        &status.sinks,
        &mut app.sinks_table,
        (borders, headers),
        theme,
    );
    let app_rows: Vec<AppRow> = status
        .apps
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let listed = a.streams.len() as u32;
            AppRow { app: a.clone(), streams: app.stream_counts.get(i).copied().unwrap_or(listed).max(listed) }
        })
        .collect();
    app.hits.apps = draw_table(
        frame,
        apps_area,
        &apps_title,
        focus == Pane::Apps,
        APP_COLUMNS,
        &app_rows,
        &mut app.apps_table,
        (borders, headers),
        theme,
    );
}

/// `(4)`, or `(8 of 10 shown: the snapshot holds 8)` when some do not fit.
fn count(shown: usize, total: u32, slots: usize) -> String {
    if total as usize > shown {
        format!("({shown} of {total} shown: the snapshot holds {slots})")
    } else {
        format!("({shown})")
    }
}

/// One list as a table; returns the area of its rows.
#[allow(clippy::too_many_arguments)]
fn draw_table<T>(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    focused: bool,
    columns: &[Column<T>],
    items: &[T],
    state: &mut ratatui::widgets::TableState,
    (borders, headers): (bool, bool),
    theme: Theme,
) -> Option<Rect> {
    if area.height == 0 {
        return None;
    }
    let title_style = if focused { theme.focus() } else { Style::new().add_modifier(Modifier::BOLD) };
    let marker = if focused { "▶ " } else { "  " };
    let symbol = if focused { HIGHLIGHT } else { "  " };
    let block = if borders {
        Block::new()
            .borders(Borders::ALL)
            .border_style(if focused { theme.focus() } else { theme.dim() })
            .title(Span::styled(format!(" {title} "), title_style))
    } else {
        // No room for borders: the title takes the first row.
        Block::new().title(Span::styled(format!("{marker}{title}"), title_style))
    };
    let inner = block.inner(area);
    let usable = inner.width.saturating_sub(HIGHLIGHT.chars().count() as u16);
    let (shown, widths) = fit(columns, usable);
    let rows: Vec<Row> =
        items.iter().map(|item| Row::new(shown.iter().zip(&widths).map(|(c, w)| (c.cell)(item, theme, *w)))).collect();
    let mut table = Table::new(rows, widths.iter().map(|w| Constraint::Length(*w)))
        .column_spacing(SPACING)
        .block(block)
        .highlight_symbol(symbol)
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always)
        .row_highlight_style(if focused {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        });
    if headers {
        table = table.header(Row::new(shown.iter().map(|c| Cell::from(c.title))).style(theme.dim()));
    }
    if items.is_empty() {
        frame.render_widget(table, area);
        let note =
            Rect { y: inner.y + u16::from(headers), height: inner.height.saturating_sub(u16::from(headers)), ..inner };
        if note.height > 0 {
            frame.render_widget(Paragraph::new(Span::styled("  (none)", theme.dim())), note);
        }
        return None;
    }
    frame.render_stateful_widget(table, area, state);
    let rows_area =
        Rect { y: inner.y + u16::from(headers), height: inner.height.saturating_sub(u16::from(headers)), ..inner };
    (rows_area.height > 0).then_some(rows_area)
}

/// The columns that fit in `width`, in their order, with their widths.
fn fit<T>(columns: &[Column<T>], width: u16) -> (Vec<&Column<T>>, Vec<u16>) {
    let min = |c: &Column<T>| match c.width {
        Width::Fixed(n) => n,
        Width::Flex { min, .. } => min,
    };
    let needed = |set: &[bool]| -> u16 {
        let chosen: Vec<&Column<T>> = columns.iter().zip(set).filter(|(_, on)| **on).map(|(c, _)| c).collect();
        chosen.iter().map(|c| min(c)).sum::<u16>() + SPACING * (chosen.len() as u16).saturating_sub(1)
    };
    let mut on: Vec<bool> = columns.iter().map(|c| c.priority == 0).collect();
    let mut by_priority: Vec<usize> = (0..columns.len()).filter(|&i| columns[i].priority > 0).collect();
    by_priority.sort_by_key(|&i| columns[i].priority);
    for i in by_priority {
        on[i] = true;
        if needed(&on) > width {
            on[i] = false;
        }
    }
    let shown: Vec<&Column<T>> = columns.iter().zip(&on).filter(|(_, on)| **on).map(|(c, _)| c).collect();
    // Share what is left among the flexible columns, by weight.
    let spare = width.saturating_sub(needed(&on));
    let weights: u16 =
        shown.iter().map(|c| if let Width::Flex { weight, .. } = c.width { weight } else { 0 }).sum::<u16>().max(1);
    let mut widths: Vec<u16> = shown
        .iter()
        .map(|c| match c.width {
            Width::Fixed(n) => n,
            Width::Flex { min, weight } => min + spare * weight / weights,
        })
        .collect();
    // Rounding leftovers go to the flexible column of the largest weight.
    let used: u16 = widths.iter().sum::<u16>() + SPACING * (widths.len() as u16).saturating_sub(1);
    let weight = |c: &Column<T>| if let Width::Flex { weight, .. } = c.width { weight } else { 0 };
    let heaviest =
        (0..shown.len()).filter(|&i| weight(shown[i]) > 0).max_by_key(|&i| (weight(shown[i]), usize::MAX - i));
    if let Some(i) = heaviest {
        widths[i] += width.saturating_sub(used);
    }
    (shown, widths)
}

/// A name as one line of text: control characters would move the cursor.
pub fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// `text` cleaned and cut to `width` cells, with `…` where it was cut.
pub fn fit_text(text: &str, width: u16) -> String {
    let text = clean(text);
    let width = usize::from(width);
    if Line::from(text.as_str()).width() <= width {
        return text;
    }
    let mut out = String::new();
    let mut used = 0;
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let w = Line::from(&*c.encode_utf8(&mut buf)).width();
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

fn text(value: &str, width: u16) -> Cell<'static> {
    Cell::from(fit_text(value, width))
}

/// A channel's output (`→ headphones`, `→ none`); `device` for other sinks.
fn output_cell(sink: &SinkStatus, theme: Theme, width: u16) -> Cell<'static> {
    if sink.kind == "channel" {
        text(&format!("→ {}", sink.output.as_deref().unwrap_or("none")), width)
    } else {
        text(&sink.kind, width).style(theme.dim())
    }
}

fn default_mark(default: bool, theme: Theme) -> Cell<'static> {
    if default {
        Cell::from("*").style(theme.good().add_modifier(Modifier::BOLD))
    } else {
        Cell::from(" ")
    }
}

fn mute_mark(muted: bool, theme: Theme) -> Cell<'static> {
    if muted {
        Cell::from("muted").style(theme.bad())
    } else {
        Cell::from("")
    }
}

/// A volume bar `width` cells wide, filled to the cubic volume.
fn bar(volume: f64, muted: bool, width: u16, theme: Theme) -> Cell<'static> {
    let filled = ((volume.clamp(0.0, 1.0) * f64::from(width)).round() as usize).min(usize::from(width));
    let empty = usize::from(width) - filled;
    Cell::from(Line::from(vec![
        Span::styled("█".repeat(filled), theme.bar(muted)),
        Span::styled("░".repeat(empty), theme.dim()),
    ]))
}

fn plays_to(app: &AppStatus, width: u16, theme: Theme) -> Cell<'static> {
    match &app.sink {
        Some(sink) => text(sink, width),
        None => Cell::from("-").style(theme.dim()),
    }
}

/// The target and where it comes from: `music (route)`, `(session manager)`.
fn target(app: &AppStatus, width: u16, theme: Theme) -> Cell<'static> {
    let from = match app.target_source.as_str() {
        "session-manager" => "session manager",
        "other-tool" => "other tool",
        other => other,
    };
    match &app.target {
        Some(target) => text(&format!("{target} ({from})"), width),
        None => text(&format!("({from})"), width).style(theme.dim()),
    }
}

/// The status line: the last message, or what is going on.
fn status_text(app: &App, theme: Theme) -> Line<'static> {
    let busy = if app.in_flight > 0 { " …" } else { "" };
    match &app.message {
        Some(m) if m.error => Line::from(vec![Span::styled(clean(&m.text), theme.bad()), Span::raw(busy)]),
        Some(m) => Line::from(format!("{}{busy}", clean(&m.text))),
        None if !app.live() && app.status.is_some() => {
            Line::from(Span::styled(format!("The daemon is not running: start it with `{HOW_TO_START}`"), theme.warn()))
        }
        None => Line::from(busy.to_owned()),
    }
}

/// A rectangle of at most `width` x `height` in the middle of `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

fn draw_help(frame: &mut Frame, area: Rect, theme: Theme) {
    let key_width = HELP.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0) as u16;
    let text_width = HELP.iter().map(|(_, t)| t.chars().count()).max().unwrap_or(0) as u16;
    let popup = centered(area, key_width + text_width + 5, HELP.len() as u16 + 2);
    let rows = HELP.iter().map(|(k, t)| Row::new([Cell::from(*k).style(theme.focus()), Cell::from(*t)]));
    let table = Table::new(rows, [Constraint::Length(key_width), Constraint::Fill(1)])
        .column_spacing(2)
        .block(Block::new().borders(Borders::ALL).title(Span::styled(" Keys (any key closes) ", theme.focus())));
    frame.render_widget(Clear, popup);
    frame.render_widget(table, popup);
}

fn draw_route_to(frame: &mut Frame, app: &mut App, name: &str, selected: usize, area: Rect, theme: Theme) {
    let current = app.status.as_ref().and_then(|s| s.app(name)).and_then(|a| a.sink.clone());
    let rows = app
        .sinks()
        .iter()
        .map(|s| (current.as_deref() == Some(s.name.as_str()), s.description.clone(), s.name.clone()))
        .collect();
    let title = format!(" Route {} to ", clean(name));
    draw_picker(frame, app, Picker { title, rows, selected, keys: " Enter: route  Esc: cancel " }, area, theme);
}

/// The outputs a channel can be sent to, the current one marked.
fn draw_output_to(frame: &mut Frame, app: &mut App, channel: &str, selected: usize, area: Rect, theme: Theme) {
    let current = app.status.as_ref().and_then(|s| s.sink(channel)).and_then(|c| c.output.clone());
    let rows = app
        .output_choices()
        .into_iter()
        .map(|e| {
            let is_current = matches!(&e.choice, OutputChoice::Sink(n) if current.as_deref() == Some(n));
            (is_current, e.label, e.choice.as_word().to_owned())
        })
        .collect();
    let title = format!(" Send {} to ", clean(channel));
    draw_picker(frame, app, Picker { title, rows, selected, keys: " Enter: send  Esc: cancel " }, area, theme);
}

/// A pop-up list to choose from.
struct Picker {
    title: String,
    /// `(current, label, name)`: the current entry is marked `●`, the name dimmed.
    rows: Vec<(bool, String, String)>,
    selected: usize,
    /// The keys, on the bottom border.
    keys: &'static str,
}

fn draw_picker(frame: &mut Frame, app: &mut App, picker: Picker, area: Rect, theme: Theme) {
    let Picker { title, rows, selected, keys } = picker;
    let widest = rows.iter().map(|(_, label, name)| label.chars().count() + name.chars().count() + 8).max();
    let width = (widest.unwrap_or(0).max(title.chars().count() + 4) as u16).saturating_add(4).max(30);
    let popup = centered(area, width, rows.len() as u16 + 2);
    let items: Vec<ListItem> = rows
        .iter()
        .map(|(current, label, name)| {
            ListItem::new(Line::from(vec![
                Span::raw(if *current { "● " } else { "  " }),
                Span::raw(clean(label)),
                Span::styled(format!("  {}", clean(name)), theme.dim()),
            ]))
        })
        .collect();
    let list = List::new(items)
        .block(
            Block::new()
                .borders(Borders::ALL)
                .border_style(theme.focus())
                .title(Span::styled(title, theme.focus()))
                .title_bottom(Span::styled(keys, theme.dim())),
        )
        .highlight_symbol(HIGHLIGHT)
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default().with_selected(Some(selected));
    frame.render_widget(Clear, popup);
    frame.render_stateful_widget(list, popup, &mut state);
    let inner = Block::new().borders(Borders::ALL).inner(popup);
    app.hits.picker = Some(inner);
    app.hits.picker_offset = state.offset();
}

#[cfg(test)]
mod tests;
