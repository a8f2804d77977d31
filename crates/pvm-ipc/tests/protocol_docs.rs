//! `docs/protocol.md` stays true: every command has its section headed by
//! its usage line, and every example request in it parses.

use pvm_ipc::protocol::{parse_request, COMMANDS};

const DOC: &str = include_str!("../../../docs/protocol.md");

#[test]
fn every_command_has_a_section_headed_by_its_usage() {
    let headings: Vec<&str> =
        DOC.lines().filter_map(|l| l.strip_prefix("### `")).filter_map(|l| l.strip_suffix('`')).collect();
    let usages: Vec<&str> = COMMANDS.iter().map(|(_, usage)| *usage).collect();
    assert_eq!(headings, usages);
}

#[test]
fn example_requests_parse() {
    let mut in_block = false;
    let mut checked = 0;
    for line in DOC.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        let is_request = COMMANDS.iter().any(|(word, _)| *word == first);
        if in_block && is_request {
            let request = parse_request(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(parse_request(request.to_line().as_bytes()), Ok(request));
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} examples found");
}

#[test]
fn error_table_quotes_the_real_messages() {
    for (line, message) in [
        ("", "empty request"),
        ("FROB", "unknown command FROB (commands: PING VERSION"),
        ("PING x", "too many arguments; usage: PING"),
        ("SET_DEFAULT", "missing <sink>; usage: SET_DEFAULT <sink>"),
        ("UNROUTE \"\"", "<app> must not be empty; usage: UNROUTE <app>"),
        ("ROUTE a b x", "expected CREATE_PENDING, got x; usage: ROUTE <app> <sink> [CREATE_PENDING]"),
        ("ROUTE ab\"c d", "quote in the middle of a word"),
        ("ROUTE \"a\\x\" b", r#"invalid escape \x in quoted string (only \" and \\ are allowed)"#),
        ("ROUTE \"a", "unterminated quote"),
    ] {
        let error = parse_request(line.as_bytes()).expect_err(line).to_string();
        assert!(error.starts_with(message), "{line:?} gave {error:?}");
        let documented = message.split(" (commands").next().unwrap();
        assert!(DOC.contains(documented), "docs/protocol.md lacks {documented:?}");
    }
}
