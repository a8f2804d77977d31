//! Channels against a real PipeWire + WirePlumber (the test bed): the daemon
//! makes the `[[channel]]` sinks, links them to their output, follows output
//! changes, adopts its channels after a restart and removes the ones the
//! config drops.

use std::time::Duration;

use pvm_ipc::client::Client;
use pvm_ipc::protocol::{OutputChoice, Request, Response};
use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;
use testbed::{AppSpec, Daemon, TestBed};

/// Generous deadline for anything that involves PipeWire.
const TIMEOUT: Duration = Duration::from_secs(10);

const CHANNELS: &str = r#"
[[channel]]
name = "game"
description = "Game"
output = "headphones"

[[channel]]
name = "chat"
description = "Chat"
output = "default"
"#;

struct Rig {
    daemon: Daemon,
    reader: SnapshotReader,
    bed: TestBed,
}

fn daemon_binary() -> std::path::PathBuf {
    testbed::workspace_binary("pipewire-volume-mixer-daemon", "PVM_DAEMON_BIN").unwrap()
}

impl Rig {
    /// A bed with the stand-in devices `headphones` (the default) and
    /// `speakers`, and a daemon with `config`.
    fn start(config: &str) -> Rig {
        let bed = TestBed::start(&["headphones", "speakers"]).unwrap();
        std::fs::write(bed.daemon_paths().config, config).unwrap();
        let daemon = bed.spawn_daemon(&[]).unwrap();
        let reader = testbed::open_snapshot(&daemon.shm, TIMEOUT).unwrap();
        Rig { daemon, reader, bed }
    }

    fn wait(&self, what: &str, condition: impl Fn(&Status) -> bool) -> Status {
        testbed::wait_status(&self.reader, TIMEOUT, what, condition)
            .unwrap_or_else(|e| panic!("{e}\ndaemon log:\n{}", self.daemon.log_tail(40)))
    }

    /// SIGKILLs the daemon (no cleanup of any kind) and starts another.
    fn crash_and_restart(&mut self) {
        self.daemon.kill(libc::SIGKILL).unwrap();
        self.daemon.wait_exit(TIMEOUT).expect("the daemon dies on SIGKILL");
        self.daemon = self.bed.spawn_daemon(&[]).unwrap();
        let shm = self.daemon.shm.clone();
        self.bed
            .wait_until(TIMEOUT, "the new daemon's snapshot", || {
                SnapshotReader::open(&shm).is_ok_and(|r| r.read().is_ok_and(|s| s.header.daemon_pid == self.daemon.pid))
            })
            .unwrap();
        self.reader = SnapshotReader::open(&shm).unwrap();
    }

    fn write_config(&self, config: &str) {
        std::fs::write(&self.daemon.config, config).unwrap();
    }

    fn request(&self, request: Request) -> Response {
        let mut client = Client::connect(&self.daemon.socket).unwrap();
        client.request(&request).unwrap()
    }

    /// The sinks a node's output ports are linked to, by name, in PipeWire.
    fn linked_sinks(&self, node: &str) -> Vec<String> {
        let graph = self.bed.dump().unwrap();
        let id = graph.node_named(node).unwrap_or_else(|| panic!("no node {node}")).id;
        let mut names: Vec<String> = graph
            .links
            .iter()
            .filter(|l| l.output_node == id)
            .filter_map(|l| graph.node(l.input_node).and_then(|n| n.name()))
            .collect();
        names.sort();
        names
    }

    /// How many nodes are called `name` in PipeWire.
    fn nodes_named(&self, name: &str) -> usize {
        self.bed.dump().unwrap().nodes.iter().filter(|n| n.name().as_deref() == Some(name)).count()
    }

    /// Fails if the default sink is one of our channels.
    fn assert_default_is_a_device(&self, when: &str) {
        let default = self.bed.default_sink_name();
        assert!(
            matches!(default.as_deref(), Some("headphones" | "speakers")),
            "{when}: the default sink is {default:?}"
        );
    }
}

fn output_of(status: &Status, channel: &str) -> Option<String> {
    status.sink(channel).and_then(|s| s.output.clone())
}

#[test]
fn channels_are_made_and_linked_to_their_outputs() {
    let rig = Rig::start(CHANNELS);
    let status = rig.wait("both channels wired", |s| {
        output_of(s, "game").as_deref() == Some("headphones") && output_of(s, "chat").as_deref() == Some("headphones")
    });
    assert_eq!(status.sink("game").unwrap().kind, "channel");
    assert_eq!(status.sink("game").unwrap().description, "Game");
    assert_eq!(status.sink("headphones").unwrap().kind, "device");
    assert_eq!(status.sink("headphones").unwrap().output, None);
    assert_eq!(rig.linked_sinks("game"), ["headphones", "headphones"], "FL and FR");
    assert_eq!(rig.bed.default_sink_name().as_deref(), Some("headphones"), "a channel never becomes the default");

    let answer = rig.request(Request::Output { channel: "game".into(), output: OutputChoice::Sink("speakers".into()) });
    assert_eq!(answer, Response::Ok(None));
    assert_eq!(output_of(&Status::from(&*rig.reader.read().unwrap()), "game").as_deref(), Some("speakers"));
    assert_eq!(rig.linked_sinks("game"), ["speakers", "speakers"], "old links removed once the new ones exist");
}

#[test]
fn output_default_follows_the_default_sink_and_a_named_output_stays() {
    let rig = Rig::start(CHANNELS);
    rig.wait("wired to headphones", |s| {
        output_of(s, "game").as_deref() == Some("headphones") && output_of(s, "chat").as_deref() == Some("headphones")
    });
    assert_eq!(rig.request(Request::SetDefault { sink: "speakers".into() }), Response::Ok(None));
    rig.wait("chat follows the default to speakers", |s| output_of(s, "chat").as_deref() == Some("speakers"));
    assert_eq!(rig.linked_sinks("chat"), ["speakers", "speakers"]);
    assert_eq!(rig.linked_sinks("game"), ["headphones", "headphones"], "a named output does not follow the default");
}

#[test]
fn a_named_output_that_goes_away_falls_back_to_the_default_and_comes_back() {
    let mut rig = Rig::start(CHANNELS);
    rig.wait("game on headphones", |s| output_of(s, "game").as_deref() == Some("headphones"));
    rig.bed.remove_sink("headphones").unwrap();
    rig.wait("game on the default output", |s| output_of(s, "game").as_deref() == Some("speakers"));
    assert_eq!(rig.linked_sinks("game"), ["speakers", "speakers"]);
    rig.bed.create_sink("headphones").unwrap();
    rig.wait("game back on headphones", |s| output_of(s, "game").as_deref() == Some("headphones"));
    assert_eq!(rig.linked_sinks("game"), ["headphones", "headphones"], "and no longer on speakers");
}

#[test]
fn a_restarted_daemon_adopts_its_channels_without_duplicates() {
    let mut rig = Rig::start(CHANNELS);
    rig.wait("wired", |s| output_of(s, "game").is_some() && output_of(s, "chat").is_some());
    rig.crash_and_restart();
    // The channels and their links outlive the daemon...
    assert_eq!(rig.nodes_named("game"), 1);
    assert_eq!(rig.linked_sinks("game"), ["headphones", "headphones"]);
    // ...and the new one adopts them.
    let status = rig.wait("wired again", |s| {
        output_of(s, "game").as_deref() == Some("headphones") && output_of(s, "chat").as_deref() == Some("headphones")
    });
    assert_eq!(status.sinks.iter().filter(|s| s.kind == "channel").count(), 2);
    assert_eq!((rig.nodes_named("game"), rig.nodes_named("chat")), (1, 1), "no duplicate node");
    assert_eq!(rig.linked_sinks("game"), ["headphones", "headphones"], "no duplicate link");
    assert_eq!(rig.linked_sinks("chat"), ["headphones", "headphones"], "no duplicate link");
    // It follows the next device change.
    assert_eq!(rig.request(Request::SetDefault { sink: "speakers".into() }), Response::Ok(None));
    rig.wait("chat follows", |s| output_of(s, "chat").as_deref() == Some("speakers"));
    assert_eq!(rig.linked_sinks("chat"), ["speakers", "speakers"]);
}

#[test]
fn a_channel_removed_from_the_config_is_removed_and_its_apps_go_to_the_default() {
    let config = format!("{CHANNELS}\n[[rule]]\nmatch = {{ \"application.name\" = \"Voice*\" }}\nsink = \"chat\"\n");
    let rig = Rig::start(&config);
    rig.wait("chat wired", |s| output_of(s, "chat").is_some());
    let mut app = rig.bed.spawn_app(&AppSpec::new("Voice Call")).unwrap();
    let streams = app.wait_for_streams(TIMEOUT).unwrap();
    rig.wait("the call on chat", |s| s.app("Voice Call").and_then(|a| a.sink.as_deref()) == Some("chat"));

    rig.write_config(CHANNELS.split("[[channel]]\nname = \"chat\"").next().unwrap());
    assert_eq!(rig.request(Request::ReloadConfig), Response::Ok(None));
    rig.bed.wait_until(TIMEOUT, "chat gone from PipeWire", || rig.nodes_named("chat") == 0).unwrap();
    rig.wait("the call on the default sink", |s| {
        s.sink("chat").is_none() && s.app("Voice Call").and_then(|a| a.sink.as_deref()) == Some("headphones")
    });
    assert_eq!(rig.bed.sink_names_linked_to(streams[0]), ["headphones"]);
    assert_eq!(rig.nodes_named("game"), 1, "the other channel stays");
}

#[test]
fn output_requests_are_checked_and_none_unlinks() {
    let rig = Rig::start(CHANNELS);
    rig.wait("wired", |s| output_of(s, "game").is_some());
    let output = |channel: &str, to: &str| {
        rig.request(Request::Output { channel: channel.into(), output: OutputChoice::parse(to) })
    };
    let error = |r: Response| match r {
        Response::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(error(output("headphones", "speakers")), "unknown channel headphones (channels: game, chat)");
    assert!(error(output("game", "game")).contains("cannot be its own output"));
    assert!(error(output("game", "chat")).contains("a channel's output must be a device"));
    assert!(error(output("game", "nowhere")).starts_with("unknown sink nowhere"));
    assert_eq!(rig.linked_sinks("game"), ["headphones", "headphones"], "errors change nothing");

    assert_eq!(output("game", "none"), Response::Ok(None));
    assert_eq!(output_of(&Status::from(&*rig.reader.read().unwrap()), "game"), None);
    assert!(rig.linked_sinks("game").is_empty());
    // Remembered: the next daemon keeps it.
    let routes = std::fs::read_to_string(&rig.daemon.state).unwrap();
    assert!(routes.contains("[outputs]\ngame = \"none\""), "{routes}");
    assert_eq!(output("game", "headphones"), Response::Ok(None), "back to the config's choice");
    assert!(!std::fs::read_to_string(&rig.daemon.state).unwrap().contains("[outputs]"), "nothing left to remember");
    assert_eq!(rig.linked_sinks("game"), ["headphones", "headphones"]);
}

#[test]
fn channels_never_become_the_default_sink_over_20_cycles() {
    let mut rig = Rig::start(CHANNELS);
    for cycle in 0..20 {
        rig.wait("wired", |s| output_of(s, "game").is_some() && output_of(s, "chat").is_some());
        rig.assert_default_is_a_device(&format!("cycle {cycle}, channels made"));
        rig.write_config("");
        assert_eq!(rig.request(Request::ReloadConfig), Response::Ok(None));
        rig.bed
            .wait_until(TIMEOUT, "channels removed", || rig.nodes_named("game") + rig.nodes_named("chat") == 0)
            .unwrap();
        rig.assert_default_is_a_device(&format!("cycle {cycle}, channels removed"));
        rig.write_config(CHANNELS);
        rig.crash_and_restart();
    }
}

#[test]
fn remove_all_takes_every_channel_away_once_the_daemon_is_stopped() {
    let mut rig = Rig::start(CHANNELS);
    rig.wait("wired", |s| output_of(s, "game").is_some() && output_of(s, "chat").is_some());
    let remove = || {
        let mut command = rig.bed.daemon_command_from(&daemon_binary(), &["--remove-channels"]).unwrap();
        command.output().unwrap()
    };
    let refused = remove();
    assert!(!refused.status.success(), "refused while the daemon runs");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("a daemon is running"));
    assert_eq!(rig.nodes_named("game"), 1);

    rig.daemon.kill(libc::SIGTERM).unwrap();
    rig.daemon.wait_exit(TIMEOUT).expect("the daemon stops");
    assert_eq!(rig.nodes_named("game"), 1, "channels outlive the daemon");
    // Through pvmctl, which runs the daemon binary beside it.
    let done = rig.bed.pvmctl(&rig.daemon, &["channels", "--remove-all"]).unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert_eq!(String::from_utf8_lossy(&done.stdout), "removed 2 channel(s): game, chat\n");
    assert_eq!((rig.nodes_named("game"), rig.nodes_named("chat")), (0, 0));
    let graph = rig.bed.dump().unwrap();
    let headphones = graph.node_named("headphones").unwrap().id;
    assert!(graph.links.iter().all(|l| l.input_node != headphones), "their links went with them");
}
