//! Channels against a real PipeWire + WirePlumber (the test bed): the daemon
//! makes the `[[channel]]` sinks, links them to their output, follows output
//! changes, adopts its channels after a restart and removes the ones the
//! config drops.

use std::time::Duration;

use pvm_ipc::client::Client;
use pvm_ipc::protocol::{OutputChoice, Request, Response};
use pvm_ipc::reader::SnapshotReader;
use pvm_ipc::status::Status;
use testbed::{Daemon, TestBed};

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
