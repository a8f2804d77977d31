//! The mixer's state and what each action does to it. Pure: no terminal, no
//! socket, no threads. Actions that need the daemon come back as [`Job`]s
//! for the command worker; its answers come back through [`App::on_reply`].

use std::collections::HashMap;

use pvm_ipc::protocol::{MuteAction, OutputChoice, Request};
use pvm_ipc::status::{AppStatus, SinkStatus, Status};
use ratatui::layout::Rect;
use ratatui::widgets::TableState;

/// Volume step of `←`/`→`, `h`/`l` and the mouse wheel (cubic scale).
pub const STEP: f64 = 0.05;
/// Volume step with Shift.
pub const FINE_STEP: f64 = 0.01;

/// Which list has the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    /// The sinks.
    Sinks,
    /// The apps.
    Apps,
}

/// What the snapshot watcher last found.
#[derive(Clone, Debug, PartialEq)]
pub enum Link {
    /// Nothing read yet.
    Waiting,
    /// No snapshot file: no daemon has run since boot (or it was removed).
    NoSnapshot {
        /// Where it was looked for.
        path: String,
    },
    /// A daemon is initialising the snapshot file.
    Starting,
    /// The snapshot could not be read; the message says why.
    Unreadable(String),
    /// The snapshot was read: `status.running` says whether the daemon lives.
    Read,
}

/// A pop-up over the lists.
#[derive(Clone, Debug, PartialEq)]
pub enum Popup {
    /// The key help.
    Help,
    /// The sinks to route `app` to; `selected` indexes the status's sinks.
    RouteTo {
        /// The app to route.
        app: String,
        /// The highlighted sink.
        selected: usize,
    },
    /// Where to send `channel`'s audio; `selected` indexes
    /// [`App::output_choices`].
    OutputTo {
        /// The channel's `node.name`.
        channel: String,
        /// The highlighted choice.
        selected: usize,
    },
}

/// What an action does in a pop-up list.
enum Pick {
    /// Highlight this row.
    Move(usize),
    /// Act on this row.
    Choose(usize),
    /// Close the list.
    Close,
    /// Nothing.
    Stay,
}

/// One entry of the output list of a channel.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputEntry {
    /// What `OUTPUT` is sent.
    pub choice: OutputChoice,
    /// What the list shows.
    pub label: String,
}

/// Something the user asked for, from a key or the mouse (see `keys.rs`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Leave the mixer.
    Quit,
    /// Select the previous row.
    Up,
    /// Select the next row.
    Down,
    /// Select the first row.
    First,
    /// Select the last row.
    Last,
    /// Switch between the sinks and the apps.
    SwitchPane,
    /// Change the selected item's volume by this much.
    Volume(f64),
    /// Toggle the selected item's mute.
    Mute,
    /// On an app: open the sink list; on a channel: open its output list;
    /// in a list: route there, or send the channel there.
    Enter,
    /// Forget the selected app's route.
    Unroute,
    /// Make the selected sink the default.
    SetDefault,
    /// Re-read the daemon's config.
    Reload,
    /// Show the key help.
    Help,
    /// Close the pop-up.
    Close,
    /// A click at this cell (column, row).
    Click(u16, u16),
    /// The wheel at this cell: change the volume of the row under it.
    Wheel(u16, u16, f64),
}

/// A request for the daemon, with the words that describe it on the status line.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The request.
    pub request: Request,
    /// What it does, e.g. `game: volume 45%`.
    pub label: String,
}

/// The daemon's answer to a [`Job`], or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `OK` with its payload, if any.
    Done(Option<String>),
    /// `ERROR <message>`.
    Refused(String),
    /// No daemon listens on the socket.
    NotRunning,
    /// Anything else (timeout, connection closed ...).
    Failed(String),
}

/// A line at the bottom of the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// An error (shown as such).
    pub error: bool,
}

/// Where the lists were drawn, for mouse clicks: filled in by the renderer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    /// The sink rows (without borders and header).
    pub sinks: Option<Rect>,
    /// The app rows.
    pub apps: Option<Rect>,
    /// The rows of the sink list of the route pop-up.
    pub picker: Option<Rect>,
    /// Index of the first row shown in the route pop-up.
    pub picker_offset: usize,
}

/// Everything on the screen.
pub struct App {
    /// What the watcher last found.
    pub link: Link,
    /// The last status read; kept while the daemon is away, to show its last state.
    pub status: Option<Status>,
    /// The pane with the keyboard.
    pub pane: Pane,
    /// Selection and scroll position of the sinks.
    pub sinks_table: TableState,
    /// Selection and scroll position of the apps.
    pub apps_table: TableState,
    /// The open pop-up.
    pub popup: Option<Popup>,
    /// The status line.
    pub message: Option<Message>,
    /// Draw without colours (`NO_COLOR`).
    pub no_color: bool,
    /// Where the lists are on screen.
    pub hits: Hits,
    /// Requests sent and not answered yet.
    pub in_flight: usize,
    /// Each app's number of streams (the status lists at most 8 of their ids).
    pub stream_counts: Vec<u32>,
    /// Volumes asked for and not answered yet, so quick key presses add up.
    pending_volume: HashMap<Target, f64>,
    /// The names selected, to keep the selection on the same item when the list changes.
    selected_sink: Option<String>,
    selected_app: Option<String>,
}

/// What a volume request is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    Sink(String),
    App(String),
}

impl App {
    /// An empty mixer, waiting for the first snapshot.
    pub fn new(no_color: bool) -> App {
        App {
            link: Link::Waiting,
            status: None,
            pane: Pane::Sinks,
            sinks_table: TableState::default(),
            apps_table: TableState::default(),
            popup: None,
            message: None,
            no_color,
            hits: Hits::default(),
            in_flight: 0,
            stream_counts: Vec::new(),
            pending_volume: HashMap::new(),
            selected_sink: None,
            selected_app: None,
        }
    }

    /// The daemon runs and its snapshot is current.
    pub fn live(&self) -> bool {
        self.link == Link::Read && self.status.as_ref().is_some_and(|s| s.running)
    }

    /// The sinks shown (none before the first snapshot).
    pub fn sinks(&self) -> &[SinkStatus] {
        self.status.as_ref().map_or(&[], |s| &s.sinks)
    }

    /// The apps shown.
    pub fn apps(&self) -> &[AppStatus] {
        self.status.as_ref().map_or(&[], |s| &s.apps)
    }

    /// The selected sink.
    pub fn selected_sink(&self) -> Option<&SinkStatus> {
        self.sinks_table.selected().and_then(|i| self.sinks().get(i))
    }

    /// The selected app.
    pub fn selected_app(&self) -> Option<&AppStatus> {
        self.apps_table.selected().and_then(|i| self.apps().get(i))
    }

    /// A new state from the snapshot watcher. Keeps each selection on the
    /// item of the same name when it is still there.
    pub fn on_link(&mut self, link: Link, status: Option<Status>) {
        self.link = link;
        if let Some(status) = status {
            self.status = Some(status);
        } else if !matches!(self.link, Link::Read) {
            // Keep the last state on screen while a daemon starts; forget it
            // when the file is gone or unreadable.
            if !matches!(self.link, Link::Starting) {
                self.status = None;
            }
        }
        self.sinks_table.select(reselect(
            self.sinks().iter().map(|s| s.name.as_str()),
            &self.selected_sink,
            self.sinks_table.selected(),
        ));
        self.apps_table.select(reselect(
            self.apps().iter().map(|a| a.name.as_str()),
            &self.selected_app,
            self.apps_table.selected(),
        ));
        self.remember_selection();
        if let Some(Popup::RouteTo { app, selected }) = &mut self.popup {
            let sinks = self.status.as_ref().map_or(0, |s| s.sinks.len());
            let app_present = self.status.as_ref().is_some_and(|s| s.app(app).is_some());
            if sinks == 0 || !app_present {
                self.popup = None;
            } else {
                *selected = (*selected).min(sinks - 1);
            }
        }
        if let Some(Popup::OutputTo { channel, selected }) = self.popup.clone() {
            let present = self.status.as_ref().and_then(|s| s.sink(&channel)).is_some_and(|s| s.kind == "channel");
            if present {
                let last = self.output_choices().len().saturating_sub(1);
                self.popup = Some(Popup::OutputTo { channel, selected: selected.min(last) });
            } else {
                self.popup = None;
            }
        }
    }

    /// Closes the help if it is open; returns whether it was.
    pub fn close_help(&mut self) -> bool {
        let open = self.popup == Some(Popup::Help);
        if open {
            self.popup = None;
        }
        open
    }

    fn remember_selection(&mut self) {
        self.selected_sink = self.selected_sink().map(|s| s.name.clone());
        self.selected_app = self.selected_app().map(|a| a.name.clone());
    }

    /// Applies an action; returns the request to send, if any.
    pub fn act(&mut self, action: Action) -> Option<Job> {
        if let Some(popup) = self.popup.clone() {
            return self.act_in_popup(popup, action);
        }
        match action {
            Action::Quit | Action::Close => None,
            Action::Up => self.move_selection(-1),
            Action::Down => self.move_selection(1),
            Action::First => self.move_selection(isize::MIN),
            Action::Last => self.move_selection(isize::MAX),
            Action::SwitchPane => {
                self.pane = match self.pane {
                    Pane::Sinks => Pane::Apps,
                    Pane::Apps => Pane::Sinks,
                };
                None
            }
            Action::Help => {
                self.popup = Some(Popup::Help);
                None
            }
            Action::Volume(delta) => self.change_volume(delta),
            Action::Mute => self.toggle_mute(),
            Action::Enter => self.open_route_list(),
            Action::Unroute => self.unroute(),
            Action::SetDefault => self.set_default(),
            Action::Reload => self.job(Request::ReloadConfig, "reload the config".into()),
            Action::Click(x, y) => {
                self.select_at(x, y);
                None
            }
            Action::Wheel(x, y, delta) => {
                if self.select_at(x, y) {
                    self.change_volume(delta)
                } else {
                    None
                }
            }
        }
    }

    fn act_in_popup(&mut self, popup: Popup, action: Action) -> Option<Job> {
        match popup {
            Popup::Help => {
                // Any key closes the help; a click too.
                self.popup = None;
                None
            }
            Popup::RouteTo { app, selected } => match self.pick(selected, self.sinks().len(), action) {
                Pick::Move(i) => {
                    self.popup = Some(Popup::RouteTo { app, selected: i });
                    None
                }
                Pick::Choose(i) => self.route(&app, i),
                Pick::Close => {
                    self.popup = None;
                    None
                }
                Pick::Stay => None,
            },
            Popup::OutputTo { channel, selected } => match self.pick(selected, self.output_choices().len(), action) {
                Pick::Move(i) => {
                    self.popup = Some(Popup::OutputTo { channel, selected: i });
                    None
                }
                Pick::Choose(i) => self.send_output(&channel, i),
                Pick::Close => {
                    self.popup = None;
                    None
                }
                Pick::Stay => None,
            },
        }
    }

    /// What `action` does in a list of `count` entries whose row `selected`
    /// is highlighted (the sink list of an app, the output list of a channel).
    fn pick(&self, selected: usize, count: usize, action: Action) -> Pick {
        let last = count.saturating_sub(1);
        match action {
            Action::Up => Pick::Move(selected.saturating_sub(1)),
            Action::Wheel(_, _, delta) if delta > 0.0 => Pick::Move(selected.saturating_sub(1)),
            Action::Down | Action::Wheel(..) => Pick::Move((selected + 1).min(last)),
            Action::First => Pick::Move(0),
            Action::Last => Pick::Move(last),
            Action::Enter => Pick::Choose(selected),
            Action::Click(x, y) => match self.picker_row_at(x, y) {
                Some(i) if i < count => Pick::Choose(i),
                Some(_) => Pick::Stay,
                None => Pick::Close,
            },
            Action::Quit | Action::Close => Pick::Close,
            _ => Pick::Stay,
        }
    }

    /// Where a channel can send its audio: the default output device,
    /// every sink that is not a channel, or nowhere.
    pub fn output_choices(&self) -> Vec<OutputEntry> {
        let mut entries = vec![OutputEntry { choice: OutputChoice::Default, label: "the default device".into() }];
        entries.extend(
            self.sinks()
                .iter()
                .filter(|s| s.kind != "channel")
                .map(|s| OutputEntry { choice: OutputChoice::Sink(s.name.clone()), label: s.description.clone() }),
        );
        entries.push(OutputEntry { choice: OutputChoice::None, label: "nowhere (silent)".into() });
        entries
    }

    fn send_output(&mut self, channel: &str, index: usize) -> Option<Job> {
        self.popup = None;
        let entry = self.output_choices().into_iter().nth(index)?;
        let label = format!("{channel}: output {}", entry.choice);
        self.job(Request::Output { channel: channel.to_owned(), output: entry.choice }, label)
    }

    fn open_output_list(&mut self) -> Option<Job> {
        let sink = self.selected_sink()?;
        if sink.kind != "channel" {
            let text = format!("{} is a device; Enter chooses the output of a channel", sink.name);
            self.message = Some(Message { text, error: false });
            return None;
        }
        let channel = sink.name.clone();
        let current = sink.output.clone();
        let selected = current
            .and_then(|name| self.output_choices().iter().position(|e| e.choice == OutputChoice::Sink(name.clone())))
            .unwrap_or(0);
        self.popup = Some(Popup::OutputTo { channel, selected });
        None
    }

    fn route(&mut self, app: &str, index: usize) -> Option<Job> {
        self.popup = None;
        let sink = self.sinks().get(index)?.name.clone();
        let request = Request::Route { app: app.to_owned(), sink: sink.clone(), create_pending: false };
        self.job(request, format!("{app}: route to {sink}"))
    }

    fn move_selection(&mut self, by: isize) -> Option<Job> {
        let (len, table) = match self.pane {
            Pane::Sinks => (self.sinks().len(), &mut self.sinks_table),
            Pane::Apps => (self.apps().len(), &mut self.apps_table),
        };
        if len == 0 {
            table.select(None);
        } else {
            let current = table.selected().unwrap_or(0) as isize;
            let next = current.saturating_add(by).clamp(0, len as isize - 1);
            table.select(Some(next as usize));
        }
        self.remember_selection();
        None
    }

    /// Selects the row at a screen cell (and its pane); `false` if there is none.
    fn select_at(&mut self, x: u16, y: u16) -> bool {
        let inside = |r: Option<Rect>| r.filter(|r| r.contains((x, y).into()));
        let (pane, rows, len) = if let Some(rows) = inside(self.hits.sinks) {
            (Pane::Sinks, rows, self.sinks().len())
        } else if let Some(rows) = inside(self.hits.apps) {
            (Pane::Apps, rows, self.apps().len())
        } else {
            return false;
        };
        let table = match pane {
            Pane::Sinks => &mut self.sinks_table,
            Pane::Apps => &mut self.apps_table,
        };
        let index = table.offset() + usize::from(y - rows.y);
        if index >= len {
            return false;
        }
        self.pane = pane;
        table.select(Some(index));
        self.remember_selection();
        true
    }

    fn picker_row_at(&self, x: u16, y: u16) -> Option<usize> {
        let rows = self.hits.picker.filter(|r| r.contains((x, y).into()))?;
        Some(self.hits.picker_offset + usize::from(y - rows.y))
    }

    /// A job, unless the daemon is not there to do it.
    fn job(&mut self, request: Request, label: String) -> Option<Job> {
        if !self.live() {
            self.message = Some(Message { text: format!("cannot {label}: the daemon is not running"), error: true });
            return None;
        }
        self.in_flight += 1;
        self.message = Some(Message { text: format!("{label} ..."), error: false });
        Some(Job { request, label })
    }

    fn change_volume(&mut self, delta: f64) -> Option<Job> {
        let (target, current, what) = match self.pane {
            Pane::Sinks => {
                let sink = self.selected_sink()?;
                (Target::Sink(sink.name.clone()), sink.volume, sink.name.clone())
            }
            Pane::Apps => {
                let app = self.selected_app()?;
                (Target::App(app.name.clone()), app.volume, app.name.clone())
            }
        };
        let base = self.pending_volume.get(&target).copied().unwrap_or(current);
        // Whole steps on the percentage scale: 47% - 5% is 42%, and 100 + 5 stays 100.
        let volume = ((base + delta) * 100.0).round().clamp(0.0, 100.0) / 100.0;
        if (volume - base).abs() < 1e-9 {
            self.message = Some(Message { text: format!("{what}: volume {}", percent(volume)), error: false });
            return None;
        }
        let label = format!("{what}: volume {}", percent(volume));
        let request = match &target {
            Target::Sink(sink) => Request::SetVolume { sink: sink.clone(), volume: volume as f32 },
            Target::App(app) => Request::SetAppVolume { app: app.clone(), volume: volume as f32 },
        };
        let job = self.job(request, label)?;
        self.pending_volume.insert(target, volume);
        Some(job)
    }

    fn toggle_mute(&mut self) -> Option<Job> {
        match self.pane {
            Pane::Sinks => {
                let sink = self.selected_sink()?;
                let label = format!("{}: {}", sink.name, if sink.muted { "unmute" } else { "mute" });
                self.job(Request::Mute { sink: sink.name.clone(), mute: MuteAction::Toggle }, label)
            }
            Pane::Apps => {
                let app = self.selected_app()?;
                let label = format!("{}: {}", app.name, if app.muted { "unmute" } else { "mute" });
                self.job(Request::MuteApp { app: app.name.clone(), mute: MuteAction::Toggle }, label)
            }
        }
    }

    fn open_route_list(&mut self) -> Option<Job> {
        if self.pane != Pane::Apps {
            return self.open_output_list();
        }
        let app = self.selected_app()?;
        if !app.movable {
            let text = format!("{} cannot be moved (its streams set node.dont-move)", app.name);
            self.message = Some(Message { text, error: true });
            return None;
        }
        if self.sinks().is_empty() {
            self.message = Some(Message { text: "no sink to route to".into(), error: true });
            return None;
        }
        let current = app.target.as_ref().or(app.sink.as_ref());
        let selected = current.and_then(|name| self.sinks().iter().position(|s| &s.name == name)).unwrap_or(0);
        self.popup = Some(Popup::RouteTo { app: app.name.clone(), selected });
        None
    }

    fn unroute(&mut self) -> Option<Job> {
        if self.pane != Pane::Apps {
            self.message = Some(Message { text: "u unroutes an app: Tab to the apps first".into(), error: false });
            return None;
        }
        let app = self.selected_app()?.name.clone();
        self.job(Request::Unroute { app: app.clone() }, format!("{app}: unroute"))
    }

    fn set_default(&mut self) -> Option<Job> {
        if self.pane != Pane::Sinks {
            self.message =
                Some(Message { text: "d sets the default sink: Tab to the sinks first".into(), error: false });
            return None;
        }
        let sink = self.selected_sink()?.name.clone();
        self.job(Request::SetDefault { sink: sink.clone() }, format!("{sink}: make default"))
    }

    /// The daemon answered (or could not be reached).
    pub fn on_reply(&mut self, job: &Job, outcome: Outcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let target = match &job.request {
            Request::SetVolume { sink, .. } => Some(Target::Sink(sink.clone())),
            Request::SetAppVolume { app, .. } => Some(Target::App(app.clone())),
            _ => None,
        };
        if let Some(target) = target {
            let asked = match &job.request {
                Request::SetVolume { volume, .. } | Request::SetAppVolume { volume, .. } => f64::from(*volume),
                _ => f64::NAN,
            };
            // Only the answer to the newest request ends the run of steps.
            if self.pending_volume.get(&target).is_some_and(|v| (v - asked).abs() < 1e-6)
                || !matches!(outcome, Outcome::Done(_))
            {
                self.pending_volume.remove(&target);
            }
        }
        let label = &job.label;
        self.message = Some(match outcome {
            Outcome::Done(None) => Message { text: format!("{label}: done"), error: false },
            Outcome::Done(Some(payload)) => Message { text: format!("{label}: {payload}"), error: false },
            Outcome::Refused(message) => Message { text: format!("{label}: error: {message}"), error: true },
            Outcome::NotRunning => Message { text: format!("{label}: the daemon is not running"), error: true },
            Outcome::Failed(message) => Message { text: format!("{label}: {message}"), error: true },
        });
    }

    /// A job was merged into a newer one for the same item and never sent.
    pub fn on_superseded(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}

/// The index to select in a new list: the item named `name` if present,
/// else the old index clamped to the list.
fn reselect<'a>(
    names: impl ExactSizeIterator<Item = &'a str>,
    name: &Option<String>,
    old: Option<usize>,
) -> Option<usize> {
    let len = names.len();
    if len == 0 {
        return None;
    }
    let mut names = names;
    if let Some(found) = name.as_deref().and_then(|n| names.position(|x| x == n)) {
        return Some(found);
    }
    Some(old.unwrap_or(0).min(len - 1))
}

/// `0.45` as `45%`: the cubic volume as wpctl shows it.
pub fn percent(volume: f64) -> String {
    format!("{:.0}%", (volume * 100.0).round())
}

#[cfg(test)]
pub(crate) mod tests;
