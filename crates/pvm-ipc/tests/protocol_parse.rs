//! The request and response grammar of the control socket, case by case.

use pvm_ipc::protocol::{
    parse_request, parse_response, parse_volume, quote, MuteAction, ProtocolError, Request, Response, MAX_LINE,
};

fn parse(line: &str) -> Result<Request, ProtocolError> {
    parse_request(line.as_bytes())
}

fn ok(line: &str) -> Request {
    parse(line).unwrap_or_else(|e| panic!("{line:?} was rejected: {e}"))
}

/// The message the daemon would send after `ERROR `.
fn error(line: &str) -> String {
    match parse(line) {
        Ok(r) => panic!("{line:?} was accepted as {r:?}"),
        Err(e) => e.to_string(),
    }
}

fn route(app: &str, sink: &str, create_pending: bool) -> Request {
    Request::Route { app: app.into(), sink: sink.into(), create_pending }
}

// ---- every command -------------------------------------------------------

#[test]
fn commands_without_arguments() {
    assert_eq!(ok("PING"), Request::Ping);
    assert_eq!(ok("VERSION"), Request::Version);
    assert_eq!(ok("STATUS"), Request::Status);
    assert_eq!(ok("SUBSCRIBE"), Request::Subscribe);
    assert_eq!(ok("RELOAD_CONFIG"), Request::ReloadConfig);
    assert_eq!(ok("TRACE"), Request::Trace);
}

#[test]
fn route_and_unroute() {
    assert_eq!(ok("ROUTE firefox game"), route("firefox", "game", false));
    assert_eq!(ok("ROUTE firefox game CREATE_PENDING"), route("firefox", "game", true));
    assert_eq!(ok("ROUTE firefox game create_pending"), route("firefox", "game", true));
    assert_eq!(ok("UNROUTE firefox"), Request::Unroute { app: "firefox".into() });
}

#[test]
fn sink_volume_mute_and_default() {
    assert_eq!(ok("SET_VOLUME game 0.5"), Request::SetVolume { sink: "game".into(), volume: 0.5 });
    assert_eq!(ok("MUTE game true"), Request::Mute { sink: "game".into(), mute: MuteAction::On });
    assert_eq!(ok("MUTE game false"), Request::Mute { sink: "game".into(), mute: MuteAction::Off });
    assert_eq!(ok("MUTE game toggle"), Request::Mute { sink: "game".into(), mute: MuteAction::Toggle });
    assert_eq!(ok("SET_DEFAULT chat"), Request::SetDefault { sink: "chat".into() });
}

#[test]
fn app_volume_and_mute() {
    assert_eq!(ok("SET_APP_VOLUME firefox 1"), Request::SetAppVolume { app: "firefox".into(), volume: 1.0 });
    assert_eq!(ok("MUTE_APP firefox on"), Request::MuteApp { app: "firefox".into(), mute: MuteAction::On });
}

#[test]
fn mute_words_and_their_case() {
    let word = |w: &str| match ok(&format!("MUTE s {w}")) {
        Request::Mute { mute, .. } => mute,
        other => panic!("{other:?}"),
    };
    for w in ["true", "TRUE", "on", "On", "1", "yes", "YES"] {
        assert_eq!(word(w), MuteAction::On, "{w}");
    }
    for w in ["false", "False", "off", "OFF", "0", "no", "No"] {
        assert_eq!(word(w), MuteAction::Off, "{w}");
    }
    for w in ["toggle", "TOGGLE", "Toggle"] {
        assert_eq!(word(w), MuteAction::Toggle, "{w}");
    }
}

// ---- case, blanks, line ends ---------------------------------------------

#[test]
fn command_word_is_case_insensitive_names_are_not() {
    assert_eq!(ok("ping"), Request::Ping);
    assert_eq!(ok("Reload_Config"), Request::ReloadConfig);
    assert_eq!(ok("route Firefox Game"), route("Firefox", "Game", false));
    assert_eq!(ok("set_volume GAME .25"), Request::SetVolume { sink: "GAME".into(), volume: 0.25 });
}

#[test]
fn runs_of_blanks_are_one_separator() {
    assert_eq!(ok("  ROUTE \t firefox\t\tgame   "), route("firefox", "game", false));
    assert_eq!(ok("\tPING\t"), Request::Ping);
}

#[test]
fn line_ends_are_ignored() {
    assert_eq!(ok("PING\n"), Request::Ping);
    assert_eq!(ok("PING\r\n"), Request::Ping);
    assert_eq!(ok("ROUTE a b\r\n"), route("a", "b", false));
    assert_eq!(ok("ROUTE \"a b\" c \r\n"), route("a b", "c", false));
}

#[test]
fn stray_line_breaks_are_control_characters() {
    assert_eq!(error("PING\rPING"), "request contains a control character");
    assert_eq!(error("PING\nPING"), "request contains a control character");
    assert_eq!(error("PING\n\n"), "request contains a control character");
    assert_eq!(error("ROUTE a\u{7}b c"), "request contains a control character");
}

#[test]
fn empty_lines_are_empty_requests() {
    assert_eq!(parse(""), Err(ProtocolError::Empty));
    assert_eq!(parse("   \t \r\n"), Err(ProtocolError::Empty));
    assert_eq!(error("\n"), "empty request");
}

// ---- quoting --------------------------------------------------------------

#[test]
fn quoted_names_with_spaces_quotes_and_backslashes() {
    assert_eq!(ok(r#"ROUTE "Google Chrome" game"#), route("Google Chrome", "game", false));
    assert_eq!(ok(r#"ROUTE "say \"hi\"" "back\\slash""#), route("say \"hi\"", "back\\slash", false));
}

#[test]
fn quoted_and_bare_words_may_mix() {
    assert_eq!(ok(r#"ROUTE "a b"	c"#), route("a b", "c", false));
    // A name may be spelled like a keyword; only its position counts.
    assert_eq!(ok(r#""ROUTE" a "CREATE_PENDING""#), route("a", "CREATE_PENDING", false));
    assert_eq!(ok(r#"ROUTE "x"  "y""#), route("x", "y", false));
}

#[test]
fn backslash_in_a_bare_word_is_literal() {
    assert_eq!(ok(r"ROUTE C:\app sink"), route(r"C:\app", "sink", false));
}

#[test]
fn tab_inside_quotes_is_kept() {
    assert_eq!(ok("ROUTE \"a\tb\" c"), route("a\tb", "c", false));
}

#[test]
fn non_ascii_names() {
    assert_eq!(ok("ROUTE Spiel‐Musik «Kopfhörer»"), route("Spiel‐Musik", "«Kopfhörer»", false));
    assert_eq!(ok("ROUTE \"音楽 プレーヤー\" 🎧"), route("音楽 プレーヤー", "🎧", false));
    // A no-break space is not a blank.
    assert_eq!(ok("UNROUTE a\u{a0}b"), Request::Unroute { app: "a\u{a0}b".into() });
}

#[test]
fn quote_errors() {
    assert_eq!(error(r#"ROUTE "Google Chrome game"#), "unterminated quote");
    assert_eq!(error(r#"ROUTE "ends in escape\"#), "unterminated quote");
    assert_eq!(error(r#"ROUTE "a\nb" c"#), r#"invalid escape \n in quoted string (only \" and \\ are allowed)"#);
    assert_eq!(error(r#"ROUTE ab"c d"#), "quote in the middle of a word");
    assert_eq!(error(r#"ROUTE "ab"c d"#), "quote in the middle of a word");
    assert_eq!(error(r#"ROUTE ab" d"#), "quote in the middle of a word");
}

#[test]
fn quote_only_when_needed() {
    assert_eq!(quote("game"), "game");
    assert_eq!(quote(r"C:\x"), r"C:\x");
    assert_eq!(quote("Kopfhörer"), "Kopfhörer");
    assert_eq!(quote(""), r#""""#);
    assert_eq!(quote("a b"), r#""a b""#);
    assert_eq!(quote("a\tb"), "\"a\tb\"");
    assert_eq!(quote(r#"say "hi""#), r#""say \"hi\"""#);
    assert_eq!(quote(r#"a"b\c d"#), r#""a\"b\\c d""#);
}

// ---- argument errors ------------------------------------------------------

#[test]
fn unknown_command() {
    assert!(error("FROB x").starts_with("unknown command FROB (commands: PING VERSION"));
    assert!(error("SETVOLUME x 1").starts_with("unknown command SETVOLUME"));
    // The echo is bounded.
    let long = "X".repeat(1000);
    assert!(error(&long).len() < 300);
}

#[test]
fn missing_arguments() {
    assert_eq!(error("ROUTE"), "missing <app>; usage: ROUTE <app> <sink> [CREATE_PENDING]");
    assert_eq!(error("ROUTE app"), "missing <sink>; usage: ROUTE <app> <sink> [CREATE_PENDING]");
    assert_eq!(error("UNROUTE"), "missing <app>; usage: UNROUTE <app>");
    assert_eq!(error("SET_VOLUME game"), "missing volume; usage: SET_VOLUME <sink> <0.0-1.0>");
    assert_eq!(error("MUTE game"), "missing mute state; usage: MUTE <sink> <true|false|toggle>");
    assert_eq!(error("SET_APP_VOLUME"), "missing <app>; usage: SET_APP_VOLUME <app> <0.0-1.0>");
    assert_eq!(error("MUTE_APP a"), "missing mute state; usage: MUTE_APP <app> <true|false|toggle>");
    assert_eq!(error("SET_DEFAULT"), "missing <sink>; usage: SET_DEFAULT <sink>");
}

#[test]
fn extra_arguments() {
    assert_eq!(error("PING now"), "too many arguments; usage: PING");
    assert_eq!(error("STATUS --json"), "too many arguments; usage: STATUS");
    assert_eq!(error("UNROUTE a b"), "too many arguments; usage: UNROUTE <app>");
    assert_eq!(error("ROUTE a b CREATE_PENDING x"), "too many arguments; usage: ROUTE <app> <sink> [CREATE_PENDING]");
    assert_eq!(error("SET_VOLUME game 0.5 0.6"), "too many arguments; usage: SET_VOLUME <sink> <0.0-1.0>");
    assert_eq!(error("SET_DEFAULT a b"), "too many arguments; usage: SET_DEFAULT <sink>");
}

#[test]
fn route_third_word_must_be_create_pending() {
    assert_eq!(
        error("ROUTE a b PENDING"),
        "expected CREATE_PENDING, got PENDING; usage: ROUTE <app> <sink> [CREATE_PENDING]"
    );
}

#[test]
fn empty_names_are_refused() {
    assert_eq!(error(r#"ROUTE "" game"#), "<app> must not be empty; usage: ROUTE <app> <sink> [CREATE_PENDING]");
    assert_eq!(error(r#"SET_VOLUME "" 0.5"#), "<sink> must not be empty; usage: SET_VOLUME <sink> <0.0-1.0>");
}

#[test]
fn bad_mute_word() {
    assert_eq!(
        error("MUTE game maybe"),
        "mute must be true, false or toggle, got maybe; usage: MUTE <sink> <true|false|toggle>"
    );
}

// ---- volume grammar --------------------------------------------------------

#[test]
fn volume_accepts_plain_decimals_in_range() {
    for (word, value) in [
        ("0", 0.0),
        ("0.0", 0.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1", 1.0),
        ("1.0", 1.0),
        ("1.000", 1.0),
        ("00.25", 0.25),
        ("0.125", 0.125),
    ] {
        assert_eq!(parse_volume(word), Some(value), "{word}");
    }
}

#[test]
fn volume_rejects_everything_else() {
    for word in [
        "",
        ".",
        "1.",
        "-0",
        "+0.5",
        "-0.5",
        "1.5",
        "2",
        "1.00000001",
        "1e999",
        "1e0",
        "5e-1",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "infinity",
        "0x1",
        "0,5",
        "½",
        "0.5.0",
        " 0.5",
        "٠",
    ] {
        assert_eq!(parse_volume(word), None, "{word:?} was accepted");
    }
}

#[test]
fn volume_errors_name_the_range() {
    let usage = "usage: SET_VOLUME <sink> <0.0-1.0>";
    for word in ["1.5", "-0", "NaN", "1e999", "inf", "+0.5"] {
        assert_eq!(
            error(&format!("SET_VOLUME game {word}")),
            format!("volume must be a number from 0.0 to 1.0, got {word}; {usage}")
        );
    }
    assert_eq!(
        error(r#"SET_APP_VOLUME a """#),
        r#"volume must be a number from 0.0 to 1.0, got ""; usage: SET_APP_VOLUME <app> <0.0-1.0>"#
    );
}

// ---- bytes ----------------------------------------------------------------

#[test]
fn invalid_utf8_is_refused() {
    assert_eq!(parse_request(b"ROUTE \xff\xfe game"), Err(ProtocolError::InvalidUtf8));
    assert_eq!(ProtocolError::InvalidUtf8.to_string(), "request is not valid UTF-8");
    // A UTF-8 sequence cut by the line end.
    assert_eq!(parse_request(b"UNROUTE \xc3\n"), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn nul_byte_is_refused() {
    assert_eq!(parse_request(b"PING\0"), Err(ProtocolError::NulByte));
    assert_eq!(parse_request(b"ROUTE \"a\0b\" game\n"), Err(ProtocolError::NulByte));
    assert_eq!(ProtocolError::NulByte.to_string(), "request contains a NUL byte");
}

#[test]
fn line_length_limit() {
    // Exactly MAX_LINE bytes before the line end: accepted.
    let name = "a".repeat(MAX_LINE - "UNROUTE ".len());
    let line = format!("UNROUTE {name}");
    assert_eq!(line.len(), MAX_LINE);
    assert_eq!(ok(&line), Request::Unroute { app: name.clone() });
    assert_eq!(ok(&format!("{line}\r\n")), Request::Unroute { app: name });

    // One byte more: refused, whatever the content.
    let long = format!("{line}a");
    assert_eq!(parse(&long), Err(ProtocolError::LineTooLong));
    assert_eq!(error(&long), "line too long");
    assert_eq!(parse_request(&vec![0xff; MAX_LINE + 1]), Err(ProtocolError::LineTooLong));
}

// ---- to_line --------------------------------------------------------------

#[test]
fn to_line_writes_canonical_lines() {
    assert_eq!(Request::Ping.to_line(), "PING");
    assert_eq!(Request::ReloadConfig.to_line(), "RELOAD_CONFIG");
    assert_eq!(route("Google Chrome", "game", true).to_line(), r#"ROUTE "Google Chrome" game CREATE_PENDING"#);
    assert_eq!(Request::SetVolume { sink: "game".into(), volume: 0.5 }.to_line(), "SET_VOLUME game 0.5");
    assert_eq!(Request::SetAppVolume { app: "a".into(), volume: 1.0 }.to_line(), "SET_APP_VOLUME a 1");
    assert_eq!(Request::SetVolume { sink: "s".into(), volume: -0.0 }.to_line(), "SET_VOLUME s 0");
    assert_eq!(Request::MuteApp { app: "x".into(), mute: MuteAction::Toggle }.to_line(), "MUTE_APP x toggle");
    assert_eq!(Request::Mute { sink: "x".into(), mute: MuteAction::Off }.to_line(), "MUTE x false");
}

#[test]
fn tiny_volumes_round_trip_without_exponent() {
    for volume in [f32::MIN_POSITIVE, 1e-45, 1e-7, 0.1, 0.3333333, 0.99999994] {
        let request = Request::SetVolume { sink: "s".into(), volume };
        let line = request.to_line();
        assert!(!line.contains('e'), "{line}");
        assert_eq!(ok(&line), request);
    }
}

#[test]
fn usage_lines() {
    assert_eq!(Request::Ping.usage(), "PING");
    assert_eq!(route("a", "b", false).usage(), "ROUTE <app> <sink> [CREATE_PENDING]");
}

// ---- responses ------------------------------------------------------------

#[test]
fn responses_parse() {
    assert_eq!(parse_response("OK"), Ok(Response::Ok(None)));
    assert_eq!(parse_response("OK\r\n"), Ok(Response::Ok(None)));
    assert_eq!(parse_response("OK PONG\n"), Ok(Response::Ok(Some("PONG".into()))));
    assert_eq!(parse_response("OK {\"a\": 1}"), Ok(Response::Ok(Some("{\"a\": 1}".into()))));
    assert_eq!(parse_response("ERROR unknown sink nope"), Ok(Response::Error("unknown sink nope".into())));
    assert_eq!(parse_response("ERROR"), Ok(Response::Error(String::new())));
    for bad in ["", "ok", "OKAY", "OK\tx", "ERR x", "PONG"] {
        assert!(matches!(parse_response(bad), Err(ProtocolError::MalformedResponse(_))), "{bad:?}");
    }
}

#[test]
fn responses_are_one_line() {
    assert_eq!(Response::Ok(None).to_line(), "OK");
    assert_eq!(Response::Ok(Some(String::new())).to_line(), "OK");
    assert_eq!(Response::Ok(Some("PONG".into())).to_line(), "OK PONG");
    assert_eq!(Response::Ok(Some("{\n  \"a\": 1\r\n}".into())).to_line(), "OK {   \"a\": 1  }");
    assert_eq!(Response::Error("two\nlines".into()).to_line(), "ERROR two lines");
    let from_error: Response = ProtocolError::LineTooLong.into();
    assert_eq!(from_error.to_line(), "ERROR line too long");
}

#[test]
fn response_into_result() {
    assert_eq!(Response::Ok(Some("x".into())).into_result(), Ok(Some("x".into())));
    assert_eq!(Response::Error("e".into()).into_result(), Err("e".into()));
}
