//! `status`, `watch` and the getters read the snapshot file only.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use common::{code, stderr, stdout, two_sinks_one_app, Place};

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

#[test]
fn status_json_has_the_snapshot_fields() {
    let place = Place::new();
    let (_daemon, generation) = place.publish(&two_sinks_one_app());
    // No socket exists: status must not need one.
    let output = place.run(&["status", "--json"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 1);
    let status = json(&output);
    assert_eq!(status["generation"], generation);
    assert_eq!(status["running"], true);
    assert_eq!(status["connected"], true);
    assert_eq!(status["overflow"], false);
    assert_eq!(status["default_sink"], "game");
    assert_eq!(status["total_sinks"], 2);
    assert_eq!(status["total_apps"], 1);

    let sinks = status["sinks"].as_array().unwrap();
    assert_eq!(sinks.len(), 2);
    assert_eq!(sinks[0]["name"], "game");
    assert_eq!(sinks[0]["description"], "Game");
    assert_eq!(sinks[0]["volume"], 0.5);
    assert_eq!(sinks[0]["default"], true);
    assert_eq!(sinks[0]["muted"], false);
    assert_eq!(sinks[0]["id"], 40);
    assert_eq!(sinks[0]["channels"], 2);
    assert_eq!(sinks[1]["name"], "chat");
    assert_eq!(sinks[1]["muted"], true);
    assert_eq!(sinks[1]["default"], false);

    let apps = status["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["name"], "Google Chrome");
    assert_eq!(apps[0]["sink"], "game");
    assert_eq!(apps[0]["target"], "game");
    assert_eq!(apps[0]["target_source"], "rule");
    assert_eq!(apps[0]["streams"], serde_json::json!([71]));
    assert_eq!(apps[0]["active"], true);
    assert_eq!(apps[0]["movable"], true);
    assert_eq!(apps[0]["volume"], 0.8);
}

#[test]
fn status_human_lists_sinks_and_apps() {
    let place = Place::new();
    let (_daemon, generation) = place.publish(&two_sinks_one_app());
    let output = place.run(&["status"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "\
daemon: running, connected to PipeWire (generation {generation})

Sinks:
     NAME  DESCRIPTION  VOLUME  MUTE   KIND    OUTPUT
  *  game  Game            50%  -      device  -
     chat  Voice chat     100%  muted  device  -

Apps:
  NAME           PLAYS TO  TARGET  FROM  VOLUME  MUTE  MOVABLE  STREAMS  STATE
  Google Chrome  game      game    rule     80%  -     yes      71       active
"
        )
    );
}

#[test]
fn status_says_how_to_get_the_routing_hold_when_it_is_not_active() {
    let place = Place::new();
    let mut snapshot = two_sinks_one_app();
    snapshot.header.flags &= !pvm_ipc::layout::header_flags::HOLD_ACTIVE;
    let _daemon = place.publish(&snapshot);
    let text = stdout(&place.run(&["status"]));
    assert!(text.ends_with("`pvmctl setup wireplumber` installs the routing hold (WirePlumber 0.5).\n"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&place.run(&["status", "--json"]))).unwrap();
    assert_eq!(json["hold_active"], false);
}

#[test]
fn status_without_snapshot_exits_3_with_how_to_start() {
    let place = Place::new();
    let output = place.run(&["status"]);
    assert_eq!(code(&output), 3);
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(err.contains("the daemon is not running"), "{err}");
    assert!(err.contains(&place.shm().display().to_string()), "{err}");
    assert!(err.contains("systemctl --user start pipewire-volume-mixer"), "{err}");
    assert!(err.contains("pipewire-volume-mixer-daemon"), "{err}");
}

#[test]
fn status_of_a_dead_daemon_shows_the_last_state_and_exits_3() {
    let place = Place::new();
    // The flag still says running, but the process is gone.
    place.write_crashed_snapshot(&two_sinks_one_app());

    let output = place.run(&["status", "--json"]);
    assert_eq!(code(&output), 3);
    assert_eq!(json(&output)["running"], false);
    assert!(stderr(&output).contains("stopped daemon"), "{}", stderr(&output));

    let output = place.run(&["status"]);
    assert_eq!(code(&output), 3);
    assert!(stdout(&output).starts_with("daemon: not running"), "{}", stdout(&output));
}

#[test]
fn status_of_a_cleanly_stopped_daemon() {
    let place = Place::new();
    let (mut daemon, _) = place.publish(&two_sinks_one_app());
    daemon.mark_stopped();
    let output = place.run(&["status", "--json"]);
    assert_eq!(code(&output), 3);
    assert_eq!(json(&output)["running"], false);
}

#[test]
fn getters_print_current_values() {
    let place = Place::new();
    let _daemon = place.publish(&two_sinks_one_app());
    for (args, expected) in [
        (&["volume", "game"][..], "50%\n"),
        (&["volume", "chat"][..], "100%\n"),
        (&["mute", "game"][..], "off\n"),
        (&["mute", "chat"][..], "on\n"),
        (&["app-volume", "Google Chrome"][..], "80%\n"),
        (&["app-mute", "Google Chrome"][..], "off\n"),
    ] {
        let output = place.run(args);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), expected, "{args:?}");
    }
    let output = place.run(&["app-mute", "nobody"]);
    assert_eq!(code(&output), 1);
    assert_eq!(stderr(&output), "pvmctl: unknown app nobody\n");
}

#[test]
fn getters_need_a_running_daemon() {
    let place = Place::new();
    let output = place.run(&["volume", "game"]);
    assert_eq!(code(&output), 3);
    place.write_crashed_snapshot(&two_sinks_one_app());
    let output = place.run(&["mute", "game"]);
    assert_eq!(code(&output), 3);
    assert_eq!(stdout(&output), "");
}

#[test]
fn complete_names_lists_sinks_and_apps() {
    let place = Place::new();
    let output = place.run(&["complete-names", "sinks"]);
    assert_eq!((code(&output), stdout(&output).as_str()), (0, ""));
    let _daemon = place.publish(&two_sinks_one_app());
    assert_eq!(stdout(&place.run(&["complete-names", "sinks"])), "game\nchat\n");
    assert_eq!(stdout(&place.run(&["complete-names", "apps"])), "Google Chrome\n");
}

/// Kills the child when the test ends, pass or fail.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn watch_json_prints_a_line_per_change() {
    let place = Place::new();
    let mut snap = two_sinks_one_app();
    let (mut daemon, generation) = place.publish(&snap);
    let mut child = Reaper(place.pvmctl().args(["watch", "--json"]).stdout(Stdio::piped()).spawn().unwrap());
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["generation"], generation);
    assert_eq!(first["sinks"][0]["volume"], 0.5);

    snap.sinks[0].volume = 0.25;
    let generation = daemon.publish(&snap);
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["generation"], generation);
    assert_eq!(second["sinks"][0]["volume"], 0.25);
    // The same object as `status --json`.
    let status: serde_json::Value = serde_json::from_str(&stdout(&place.run(&["status", "--json"]))).unwrap();
    assert_eq!(second, status);

    // A daemon that stops says so, and watch prints that too.
    daemon.mark_stopped();
    let third: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(third["running"], false);
    assert_eq!(third["sinks"][0]["volume"], 0.25);
}

#[test]
fn watch_prints_a_human_line_only_when_what_it_shows_changes() {
    let place = Place::new();
    let mut snap = two_sinks_one_app();
    let (mut daemon, _) = place.publish(&snap);
    let mut child = Reaper(place.pvmctl().arg("watch").stdout(Stdio::piped()).spawn().unwrap());
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    assert_eq!(next(), "sinks: *game 50%, chat 100% muted | apps: Google Chrome -> game");

    // A change the line does not show (a stream id) prints nothing; the
    // next visible change is the next line.
    snap.apps[0].stream_ids[0] = 99;
    daemon.publish(&snap);
    snap.sinks[1].flags = 0;
    daemon.publish(&snap);
    assert_eq!(next(), "sinks: *game 50%, chat 100% | apps: Google Chrome -> game");
}

#[test]
fn watch_without_snapshot_exits_3() {
    let place = Place::new();
    let output = place.run(&["watch"]);
    assert_eq!(code(&output), 3);
}

/// The voluntary context switches of process `pid`'s main thread: it goes
/// up each time the thread blocks (in `watch`, on the futex).
fn times_blocked(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")).and_then(|n| n.trim().parse().ok())
}

/// Wakes the futex of the snapshot at `path` and waits until `watch` has
/// woken, looked at the file and blocked again, or has exited.
fn wake_and_let_it_look(watch: &mut Child, reader: &pvm_ipc::reader::SnapshotReader) {
    let pid = watch.id();
    let before = times_blocked(pid);
    reader.wake_waiters();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // Polls /proc: the test's own view of another process, not pvmctl's way of waiting.
    while watch.try_wait().unwrap().is_none() && times_blocked(pid) == before {
        assert!(std::time::Instant::now() < deadline, "watch never went back to sleep");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A restarted daemon reuses the file: while it initialises it, the version
/// is 0 ("not ready"), and a daemon that died in the middle of a publish
/// leaves the generation odd ("busy"). `watch` used to exit on both; it now
/// waits and prints what the next daemon publishes.
#[test]
fn watch_waits_through_a_restart_while_the_file_is_not_ready_or_busy() {
    use std::os::unix::fs::FileExt;

    let place = Place::new();
    let mut snap = two_sinks_one_app();
    let (mut daemon, _) = place.publish(&snap);
    let reader = pvm_ipc::reader::SnapshotReader::open(&place.shm()).unwrap();
    let mut child =
        Reaper(place.pvmctl().args(["watch", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    let (line_tx, lines) = std::sync::mpsc::channel();
    let out = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            if line_tx.send(value).is_err() {
                return;
            }
        }
    });
    let next = || lines.recv_timeout(std::time::Duration::from_secs(20)).expect("a line from pvmctl watch --json");
    assert_eq!(next()["running"], true);
    daemon.mark_stopped();
    assert_eq!(next()["running"], false);
    drop(daemon);

    // A new daemon has begun to initialise the file: version 0.
    let file = std::fs::OpenOptions::new().write(true).open(place.shm()).unwrap();
    file.write_all_at(&pvm_ipc::layout::MAGIC.to_le_bytes(), 0).unwrap();
    file.write_all_at(&0u32.to_le_bytes(), 4).unwrap();
    wake_and_let_it_look(&mut child.0, &reader);
    assert!(child.0.try_wait().unwrap().is_none(), "watch is still running while the file is not ready");

    // Or a daemon died in the middle of a publish: the generation stays odd.
    file.write_all_at(&1u32.to_le_bytes(), 4).unwrap();
    let odd = reader.generation() | 1;
    file.write_all_at(&odd.to_le_bytes(), 8).unwrap();
    wake_and_let_it_look(&mut child.0, &reader);
    assert!(child.0.try_wait().unwrap().is_none(), "watch is still running while the generation stays odd");

    // The next daemon reclaims the file and publishes a change.
    let mut daemon = pvm_ipc::writer::SnapshotWriter::create(&place.shm()).unwrap();
    snap.sinks[0].volume = 0.75;
    daemon.publish(&snap);
    loop {
        let line = next();
        if line["running"] == true && line["sinks"][0]["volume"] == 0.75 {
            break;
        }
    }
    assert!(child.0.try_wait().unwrap().is_none(), "watch goes on");
    child.0.kill().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(err, "", "watch printed no error");
}
