//! Commands that talk to the daemon's socket, against a fake daemon that
//! checks the exact request line.

mod common;

use common::{code, exchange, stderr, stdout, Place};

/// Runs `args`, answers `OK`, and returns the request line sent.
fn sent(args: &[&str]) -> String {
    let (line, output) = exchange(args, "OK\n");
    assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
    assert_eq!(stdout(&output), "", "{args:?}");
    line
}

#[test]
fn route_and_unroute() {
    assert_eq!(sent(&["route", "firefox", "game"]), "ROUTE firefox game\n");
    assert_eq!(
        sent(&["route", "Google Chrome", "game", "--create-pending"]),
        "ROUTE \"Google Chrome\" game CREATE_PENDING\n"
    );
    assert_eq!(sent(&["route", "say \"hi\"", "back\\slash"]), "ROUTE \"say \\\"hi\\\"\" back\\slash\n");
    assert_eq!(sent(&["unroute", "Google Chrome"]), "UNROUTE \"Google Chrome\"\n");
}

#[test]
fn absolute_volumes() {
    assert_eq!(sent(&["volume", "game", "0.5"]), "SET_VOLUME game 0.5\n");
    assert_eq!(sent(&["volume", "game", "50%"]), "SET_VOLUME game 0.5\n");
    assert_eq!(sent(&["volume", "game", "100%"]), "SET_VOLUME game 1\n");
    assert_eq!(sent(&["volume", "game", "0"]), "SET_VOLUME game 0\n");
    assert_eq!(sent(&["app-volume", "Google Chrome", ".25"]), "SET_APP_VOLUME \"Google Chrome\" 0.25\n");
}

#[test]
fn mute_words_become_wire_words() {
    assert_eq!(sent(&["mute", "game", "on"]), "MUTE game true\n");
    assert_eq!(sent(&["mute", "game", "off"]), "MUTE game false\n");
    assert_eq!(sent(&["mute", "game", "toggle"]), "MUTE game toggle\n");
    assert_eq!(sent(&["app-mute", "mpv", "toggle"]), "MUTE_APP mpv toggle\n");
}

#[test]
fn default_reload() {
    assert_eq!(sent(&["default", "chat"]), "SET_DEFAULT chat\n");
    assert_eq!(sent(&["reload"]), "RELOAD_CONFIG\n");
}

#[test]
fn ping_prints_the_payload() {
    let (line, output) = exchange(&["ping"], "OK PONG\n");
    assert_eq!(line, "PING\n");
    assert_eq!(code(&output), 0);
    assert_eq!(stdout(&output), "PONG\n");
}

#[test]
fn route_prints_a_pending_note() {
    let (_, output) =
        exchange(&["route", "a", "later", "--create-pending"], "OK pending: sink later does not exist yet\n");
    assert_eq!(code(&output), 0);
    assert_eq!(stdout(&output), "pending: sink later does not exist yet\n");
}

#[test]
fn daemon_error_exits_1_with_the_message() {
    let (line, output) = exchange(&["volume", "nope", "0.5"], "ERROR unknown sink nope (known: game, chat)\n");
    assert_eq!(line, "SET_VOLUME nope 0.5\n");
    assert_eq!(code(&output), 1);
    assert_eq!(stdout(&output), "");
    assert_eq!(stderr(&output), "pvmctl: unknown sink nope (known: game, chat)\n");
}

#[test]
fn trace_is_pretty_printed() {
    let (line, output) = exchange(&["trace"], "OK {\"events\":[{\"kind\":\"node_added\",\"id\":7}]}\n");
    assert_eq!(line, "TRACE\n");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "{\n  \"events\": [\n    {\n      \"id\": 7,\n      \"kind\": \"node_added\"\n    }\n  ]\n}\n"
    );
}

#[test]
fn garbage_answer_is_an_error() {
    let (_, output) = exchange(&["ping"], "HELLO\n");
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("malformed response"), "{}", stderr(&output));
}

#[test]
fn socket_flag_beats_environment() {
    let place = Place::new();
    let server = place.serve_one("OK PONG\n");
    let output = place
        .pvmctl()
        .env("PVM_SOCKET", "/nonexistent/socket")
        .args(["ping", "--socket"])
        .arg(place.socket())
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(server.join().unwrap(), "PING\n");
}

#[test]
fn relative_volume_starts_from_the_snapshot() {
    let place = Place::new();
    let _daemon = place.publish(&common::two_sinks_one_app());
    for (args, expected) in [
        (["volume", "game", "+5%"], "SET_VOLUME game 0.55\n"),
        (["volume", "game", "-10%"], "SET_VOLUME game 0.4\n"),
        (["volume", "chat", "+5%"], "SET_VOLUME chat 1\n"),
        (["volume", "game", "-0.75"], "SET_VOLUME game 0\n"),
        (["app-volume", "Google Chrome", "+0.1"], "SET_APP_VOLUME \"Google Chrome\" 0.9\n"),
    ] {
        let server = place.serve_one("OK\n");
        let output = place.run(&args);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
        assert_eq!(server.join().unwrap(), expected, "{args:?}");
        std::fs::remove_file(place.socket()).unwrap();
    }
}

#[test]
fn relative_volume_of_an_unknown_sink_sends_nothing() {
    let place = Place::new();
    let _daemon = place.publish(&common::two_sinks_one_app());
    // No server: a request would fail with exit 3, not 1.
    let output = place.run(&["volume", "nope", "+5%"]);
    assert_eq!(code(&output), 1);
    assert_eq!(stderr(&output), "pvmctl: unknown sink nope (known: game, chat)\n");
}
