//! `pvm-mixer` end to end: the real binary in a pseudo-terminal, its screen
//! read by a VT100 emulator's parser, against a real daemon on a real
//! PipeWire (the test bed with the sinks `speakers` (default), `game`,
//! `chat` and `music`). Every key's effect is checked in PipeWire itself
//! (`pw-dump`) and on the screen.

use std::path::Path;
use std::time::Duration;

use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;
use testbed::{AppSpec, Daemon, FakeApp, TestBed, Tui, TuiScreen};

/// Generous deadline for anything that involves PipeWire, the daemon or the terminal.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The bed every test runs on; the first sink is the default.
const SINKS: [&str; 4] = ["speakers", "game", "chat", "music"];

const UP: &[u8] = b"\x1b[A";
const DOWN: &[u8] = b"\x1b[B";
const LEFT: &[u8] = b"\x1b[D";
const TAB: &[u8] = b"\t";
const ENTER: &[u8] = b"\r";

fn mixer_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pvm-mixer"))
}

/// The mixer's arguments for a daemon's files.
fn mixer_args(shm: &Path, socket: &Path) -> Vec<String> {
    vec!["--shm".into(), shm.display().to_string(), "--socket".into(), socket.display().to_string()]
}

/// Starts the mixer in an 100x30 terminal.
fn spawn_mixer(bed: &TestBed, shm: &Path, socket: &Path) -> Tui {
    let args = mixer_args(shm, socket);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bed.spawn_tui(mixer_binary(), &args, &[], 100, 30).unwrap()
}

/// Dropped in field order: the mixer, the apps, the daemon, then the bed.
struct Rig {
    mixer: Tui,
    _apps: Vec<FakeApp>,
    daemon: Daemon,
    reader: SnapshotReader,
    bed: TestBed,
}

impl Rig {
    /// A bed, a daemon in sync, the apps `Racer` and `Talker` playing, and the mixer.
    fn start() -> Rig {
        let bed = TestBed::start(&SINKS).unwrap();
        let (daemon, reader) = bed.spawn_daemon_in_sync(&[]).unwrap();
        let mut apps = Vec::new();
        for name in ["Racer", "Talker"] {
            let mut app = bed.spawn_app(&AppSpec::new(name).binary(&name.to_lowercase())).unwrap();
            app.wait_for_streams(TIMEOUT).unwrap();
            apps.push(app);
        }
        testbed::wait_status(&reader, TIMEOUT, "both apps linked", |s| {
            ["Racer", "Talker"].iter().all(|n| s.app(n).is_some_and(|a| a.sink.is_some()))
        })
        .unwrap();
        let mixer = spawn_mixer(&bed, &daemon.shm, &daemon.socket);
        Rig { mixer, _apps: apps, daemon, reader, bed }
    }

    fn status(&self) -> Status {
        Status::from(&*self.reader.read().unwrap())
    }

    fn keys(&mut self, keys: &[u8]) {
        self.mixer.send(keys).unwrap();
    }

    /// Waits until `condition` holds for the screen.
    fn screen(&self, what: &str, condition: impl FnMut(&TuiScreen) -> bool) -> TuiScreen {
        self.mixer.wait_for(TIMEOUT, what, condition).unwrap_or_else(|e| {
            panic!("{e}\nsnapshot: {}\ndaemon log:\n{}", self.status().to_json(), self.daemon.log_tail(20))
        })
    }

    /// Waits until the row of the sink described `description` satisfies `condition`.
    fn sink_row(&self, description: &str, what: &str, mut condition: impl FnMut(&str) -> bool) -> String {
        let screen = self.screen(&format!("the {description} row {what}"), |s| {
            sink_line(s, description).is_some_and(|l| condition(&l))
        });
        sink_line(&screen, description).unwrap()
    }

    /// Waits until the row of app `name` satisfies `condition`.
    fn app_row(&self, name: &str, what: &str, mut condition: impl FnMut(&str) -> bool) -> String {
        let screen =
            self.screen(&format!("the {name} row {what}"), |s| s.line_with(name).is_some_and(|l| condition(&l)));
        screen.line_with(name).unwrap()
    }

    /// Moves the selection of the focused list to row `index` (from the top).
    fn select_row(&mut self, index: usize) {
        self.keys(b"g");
        for _ in 0..index {
            self.keys(DOWN);
        }
    }

    fn wait_pw(&self, what: &str, mut condition: impl FnMut() -> bool) {
        self.bed.wait_until(TIMEOUT, what, &mut condition).unwrap_or_else(|e| {
            panic!("{e}\ndaemon log:\n{}\nscreen:\n{}", self.daemon.log_tail(20), self.mixer.screen().text())
        });
    }
}

/// The screen row of a sink: it holds the description and the `node.name`.
fn sink_line(screen: &TuiScreen, description: &str) -> Option<String> {
    let name = description.to_lowercase();
    let (_, cols) = screen.screen.size();
    screen
        .screen
        .rows(0, cols)
        .find(|row| row.contains(&format!(" {description} ")) && row.contains(&format!(" {name} ")))
}

/// The selected row is marked with `▶`.
fn selected(row: &str) -> bool {
    row.contains('▶')
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-4
}

#[test]
fn the_mixer_shows_the_bed_and_its_keys_change_pipewire() {
    let mut rig = Rig::start();
    let status = rig.status();
    let first = rig.screen("every sink and app and a running daemon", |s| {
        let text = s.text();
        ["Speakers", "Game", "Chat", "Music", "Racer", "Talker", "daemon: running", "PipeWire: connected"]
            .iter()
            .all(|n| text.contains(n))
    });
    assert!(first.screen.alternate_screen(), "the mixer draws on the alternate screen");
    assert!(sink_line(&first, "Speakers").unwrap().contains('*'), "speakers is the default:\n{}", first.text());
    let row_of = |name: &str| status.sinks.iter().position(|s| s.name == name).unwrap();

    // Volume down on game: 100% -> 95% on the cubic scale, 0.857375 linear.
    rig.select_row(row_of("game"));
    rig.sink_row("Game", "selected", selected);
    rig.keys(LEFT);
    rig.wait_pw("PipeWire's game at 95%", || {
        rig.bed.node_volume("game").is_ok_and(|(ch, _)| !ch.is_empty() && ch.iter().all(|v| close(*v, 0.857_375)))
    });
    rig.sink_row("Game", "at 95%", |l| l.contains(" 95%"));
    assert_eq!(rig.bed.node_volume("music").unwrap(), (vec![1.0, 1.0], false), "other sinks untouched");

    // Mute chat.
    rig.select_row(row_of("chat"));
    rig.sink_row("Chat", "selected", selected);
    rig.keys(b"m");
    rig.wait_pw("PipeWire's chat muted", || rig.bed.node_volume("chat").is_ok_and(|(_, muted)| muted));
    rig.sink_row("Chat", "muted", |l| l.contains("muted"));

    // Make music the default.
    rig.select_row(row_of("music"));
    rig.sink_row("Music", "selected", selected);
    rig.keys(b"d");
    rig.wait_pw("PipeWire's default sink to be music", || rig.bed.default_sink_name().as_deref() == Some("music"));
    rig.sink_row("Music", "the default", |l| l.contains('*'));
    rig.sink_row("Speakers", "no longer the default", |l| !l.contains('*'));

    // Route Racer to music through the sink list.
    rig.keys(TAB);
    let racer = status.apps.iter().position(|a| a.name == "Racer").unwrap();
    rig.select_row(racer);
    rig.app_row("Racer", "selected", selected);
    rig.keys(ENTER);
    rig.screen("the sink list", |s| s.text().contains("Route Racer to"));
    rig.keys(b"g");
    for _ in 0..row_of("music") {
        rig.keys(DOWN);
    }
    rig.screen("Music highlighted in the sink list", |s| {
        s.line_with("Route Racer").is_some() && s.line_with("Music  music").is_some_and(|l| l.contains('▶'))
    });
    rig.keys(ENTER);
    let streams = rig.bed.streams_of_app("Racer");
    assert!(!streams.is_empty());
    rig.wait_pw("Racer's streams linked to music only", || {
        streams.iter().all(|&s| rig.bed.sink_names_linked_to(s) == ["music"])
    });
    rig.app_row("Racer", "routed to music", |l| l.contains("music (route)"));
    assert!(!rig.mixer.screen().text().contains("Route Racer to"), "the sink list closed");

    // Unroute it again.
    rig.keys(b"u");
    rig.app_row("Racer", "unrouted", |l| !l.contains("(route)"));

    // A change made elsewhere appears without a key press.
    let typed = rig.mixer.bytes_written();
    let out = rig.bed.pvmctl(&rig.daemon, &["volume", "game", "40%"]).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    rig.sink_row("Game", "at 40% after pvmctl", |l| l.contains(" 40%"));
    assert!(rig.mixer.bytes_written() > typed);

    // Help, then quit: the terminal is restored.
    rig.keys(b"?");
    rig.screen("the help", |s| s.text().contains("Keys (any key closes)"));
    rig.keys(b"x");
    rig.screen("the help closed", |s| !s.text().contains("Keys (any key closes)"));
    rig.keys(b"q");
    let status = rig.mixer.wait_exit(TIMEOUT).expect("the mixer exits on q");
    assert!(status.success(), "{status}");
    assert!(rig.mixer.wait_closed(TIMEOUT));
    let last = rig.mixer.screen();
    assert!(!last.screen.alternate_screen(), "left the alternate screen");
    assert!(!last.screen.hide_cursor(), "the cursor is shown again");
}

#[test]
fn app_keys_reach_every_stream_and_errors_stay_on_the_status_line() {
    let mut rig = Rig::start();
    rig.screen("the apps", |s| s.text().contains("Racer") && s.text().contains("Talker"));
    let status = rig.status();
    let talker = status.apps.iter().position(|a| a.name == "Talker").unwrap();
    let streams = rig.bed.streams_of_app("Talker");
    rig.keys(TAB);
    rig.select_row(talker);
    rig.app_row("Talker", "selected", selected);
    // Shift+Left: 1 % down.
    rig.keys(b"\x1b[1;2D");
    rig.wait_pw("Talker's stream at 99%", || {
        streams.iter().all(|&id| {
            rig.bed
                .dump()
                .ok()
                .and_then(|g| g.node(id).and_then(|n| n.volume()))
                .is_some_and(|(ch, _)| !ch.is_empty() && ch.iter().all(|v| close(*v, 0.970_299)))
        })
    });
    rig.app_row("Talker", "at 99%", |l| l.contains(" 99%"));
    rig.keys(b"m");
    rig.wait_pw("Talker's stream muted", || {
        streams
            .iter()
            .all(|&id| rig.bed.dump().ok().and_then(|g| g.node(id).and_then(|n| n.volume())).is_some_and(|(_, m)| m))
    });
    rig.app_row("Talker", "muted", |l| l.contains("muted"));

    // The mouse: a click on the music row selects it (and the sinks), the
    // wheel turns it down by 5 %. SGR mouse reports, 1-based columns and rows.
    let screen = rig.mixer.screen();
    let (_, cols) = screen.screen.size();
    let music_row = screen.screen.rows(0, cols).position(|r| r.contains(" Music ") && r.contains(" music ")).unwrap();
    let (x, y) = (10, music_row + 1);
    rig.keys(format!("\x1b[<0;{x};{y}M\x1b[<0;{x};{y}m").as_bytes());
    rig.sink_row("Music", "selected by the click", selected);
    rig.keys(format!("\x1b[<65;{x};{y}M").as_bytes());
    rig.wait_pw("PipeWire's music at 95%", || {
        rig.bed.node_volume("music").is_ok_and(|(ch, _)| !ch.is_empty() && ch.iter().all(|v| close(*v, 0.857_375)))
    });
    rig.sink_row("Music", "at 95%", |l| l.contains(" 95%"));
    rig.keys(TAB);
    rig.app_row("Talker", "selected again", selected);

    // The daemon refuses a config that does not parse: the message is shown, the mixer goes on.
    std::fs::write(&rig.daemon.config, "[[rule]\n").unwrap();
    rig.keys(b"r");
    rig.screen("the daemon's error on the status line", |s| {
        s.line_with("reload the config: error:").is_some_and(|l| l.contains("config.toml"))
    });
    rig.keys(UP);
    rig.app_row("Talker", "still there", |_| true);
}

#[test]
fn the_mixer_waits_for_the_daemon_and_survives_its_restarts() {
    let mut bed = TestBed::start(&SINKS).unwrap();
    let paths = bed.daemon_paths();
    let mut mixer = spawn_mixer(&bed, &paths.shm, &paths.socket);
    mixer.wait_for_text(TIMEOUT, "daemon: not running").unwrap();
    mixer.wait_for_text(TIMEOUT, "systemctl --user start pipewire-volume-mixer").unwrap();
    // Keys do nothing harmful without a daemon.
    mixer.send(b"m").unwrap();

    let mut daemon = bed.spawn_daemon(&[]).unwrap();
    let live = |mixer: &Tui, what: &str| {
        mixer
            .wait_for(TIMEOUT, what, |s| {
                let text = s.text();
                text.contains("daemon: running")
                    && ["Speakers", "Game", "Chat", "Music"].iter().all(|n| text.contains(n))
            })
            .unwrap();
    };
    live(&mixer, "the mixer alive once the daemon started");

    // A clean stop, then a new daemon on the same file.
    daemon.kill(libc::SIGTERM).unwrap();
    daemon.wait_exit(TIMEOUT).expect("the daemon stops on SIGTERM");
    mixer.wait_for_text(TIMEOUT, "daemon: not running").unwrap();
    drop(daemon);
    let mut daemon = bed.spawn_daemon(&[]).unwrap();
    live(&mixer, "the mixer alive with the restarted daemon");

    // A daemon killed outright: noticed without a publish (its pidfd).
    daemon.kill(libc::SIGKILL).unwrap();
    daemon.wait_exit(TIMEOUT).expect("the daemon dies on SIGKILL");
    mixer.wait_for_text(TIMEOUT, "daemon: not running").unwrap();
    drop(daemon);

    // The file removed while no daemon runs, then a daemon that makes a new one.
    std::fs::remove_file(&paths.shm).unwrap();
    mixer.wait_for_text(TIMEOUT, "no snapshot at").unwrap();
    let daemon = bed.spawn_daemon(&[]).unwrap();
    live(&mixer, "the mixer alive on the new file");

    // PipeWire goes away and comes back: the daemon's state says so.
    bed.stop_pipewire();
    mixer.wait_for_text(TIMEOUT, "PipeWire: not connected").unwrap();
    bed.start_pipewire().unwrap();
    live(&mixer, "the mixer with PipeWire back");
    mixer.wait_for_text(TIMEOUT, "PipeWire: connected").unwrap();

    // Resizes are followed; a tiny terminal says so.
    mixer.resize(40, 12).unwrap();
    mixer
        .wait_for(TIMEOUT, "a 40-column layout", |s| {
            s.screen.size() == (12, 40) && s.text().contains("Speakers") && !s.text().contains("VOLUME")
        })
        .unwrap();
    mixer.resize(20, 4).unwrap();
    mixer.wait_for_text(TIMEOUT, "Too small: 20x4;").unwrap();
    mixer.resize(100, 30).unwrap();
    live(&mixer, "the full layout again");

    // SIGTERM: the terminal is restored and the exit status says why.
    mixer.kill(libc::SIGTERM).unwrap();
    let status = mixer.wait_exit(TIMEOUT).expect("the mixer exits on SIGTERM");
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status}");
    assert!(mixer.wait_closed(TIMEOUT));
    let last = mixer.screen();
    assert!(!last.screen.alternate_screen() && !last.screen.hide_cursor(), "terminal restored:\n{}", last.text());
    drop(daemon);
}

#[test]
fn sighup_ctrl_c_and_esc_restore_the_terminal() {
    let bed = TestBed::start(&SINKS).unwrap();
    let paths = bed.daemon_paths();
    for (how, expected) in [("SIGHUP", 128 + libc::SIGHUP), ("Ctrl-C", 0), ("Esc", 0)] {
        let mut mixer = spawn_mixer(&bed, &paths.shm, &paths.socket);
        let drawn = mixer.wait_for_text(TIMEOUT, "daemon: not running").unwrap();
        assert!(drawn.screen.alternate_screen() && drawn.screen.hide_cursor());
        match how {
            "SIGHUP" => mixer.kill(libc::SIGHUP).unwrap(),
            "Ctrl-C" => mixer.send(b"\x03").unwrap(),
            _ => {
                // The first Esc closes the help, the second quits.
                mixer.send(b"?").unwrap();
                mixer.wait_for_text(TIMEOUT, "Keys (any key closes)").unwrap();
                mixer.send(b"\x1b").unwrap();
                mixer.wait_for(TIMEOUT, "the help closed", |s| !s.text().contains("Keys (any")).unwrap();
                assert!(mixer.wait_exit(Duration::from_millis(200)).is_none(), "Esc closed the help only");
                mixer.send(b"\x1b").unwrap();
            }
        }
        let status = mixer.wait_exit(TIMEOUT).unwrap_or_else(|| panic!("the mixer exits on {how}"));
        assert_eq!(status.code(), Some(expected), "{how}: {status}");
        assert!(mixer.wait_closed(TIMEOUT));
        let last = mixer.screen();
        assert!(!last.screen.alternate_screen() && !last.screen.hide_cursor(), "{how}: terminal not restored");
    }
}

#[test]
fn no_color_is_respected() {
    let bed = TestBed::start(&SINKS).unwrap();
    let (daemon, _reader) = bed.spawn_daemon_in_sync(&[]).unwrap();
    let coloured_cells = |env: &[(&str, &str)]| {
        let args = mixer_args(&daemon.shm, &daemon.socket);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mixer = bed.spawn_tui(mixer_binary(), &args, env, 100, 30).unwrap();
        let screen = mixer.wait_for_text(TIMEOUT, "daemon: running").unwrap();
        let screen =
            mixer.wait_for(TIMEOUT, "every sink", |s| s.text().contains("Music") && s.at >= screen.at).unwrap();
        let (rows, cols) = screen.screen.size();
        (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .filter(|&(r, c)| screen.screen.cell(r, c).is_some_and(|cell| cell.fgcolor() != vt100::Color::Default))
            .count()
    };
    assert!(coloured_cells(&[]) > 0, "colours by default");
    assert_eq!(coloured_cells(&[("NO_COLOR", "1")]), 0, "no colour with NO_COLOR");
}

/// A channel's output chosen in the mixer: `Enter` on the channel, the
/// device in the list, `Enter`; checked in PipeWire (its links) and on the
/// screen.
#[test]
fn a_channel_is_sent_to_another_device_from_its_output_list() {
    let bed = TestBed::builder().device_sink("headphones", 1000).device_sink("speakers", 900).start().unwrap();
    std::fs::write(bed.daemon_paths().config, "[[channel]]\nname = \"game\"\ndescription = \"Game\"\n").unwrap();
    let (daemon, reader) = bed.spawn_daemon_in_sync(&[]).unwrap();
    testbed::wait_status(&reader, TIMEOUT, "game on headphones", |s| {
        s.sink("game").and_then(|g| g.output.as_deref()) == Some("headphones")
    })
    .unwrap();
    let mixer = spawn_mixer(&bed, &daemon.shm, &daemon.socket);
    let mut rig = Rig { mixer, _apps: Vec::new(), daemon, reader, bed };
    rig.sink_row("Game", "shows its output", |l| l.contains("→ headphones"));

    // Channels come first: game is the first row. Its list: default, headphones, speakers, none.
    rig.select_row(0);
    rig.keys(ENTER);
    rig.screen("the output list", |s| s.text().contains("Send game to"));
    rig.keys(DOWN);
    rig.keys(ENTER);
    let linked_to = |bed: &TestBed| {
        let graph = bed.dump().unwrap();
        let game = graph.node_named("game").map(|n| n.id);
        let mut to: Vec<String> = graph
            .links
            .iter()
            .filter(|l| Some(l.output_node) == game)
            .filter_map(|l| graph.node(l.input_node).and_then(|n| n.name()))
            .collect();
        to.sort();
        to
    };
    rig.wait_pw("game linked to speakers only", || linked_to(&rig.bed) == ["speakers", "speakers"]);
    rig.sink_row("Game", "shows the new output", |l| l.contains("→ speakers"));
}
