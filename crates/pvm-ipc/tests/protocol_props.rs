//! Property tests of the request parser: it never panics, and what
//! `Request::to_line` writes parses back to the same request.

use proptest::prelude::*;
use pvm_ipc::protocol::{
    parse_request, parse_response, MuteAction, OutputChoice, ProtocolError, Request, Response, MAX_LINE,
};

/// Names the protocol can carry: any non-empty text without control
/// characters other than tab, biased towards the characters that need quoting.
fn name() -> impl Strategy<Value = String> {
    let tricky = prop_oneof![Just(' '), Just('\t'), Just('"'), Just('\\'), Just('é'), Just('🎧'), Just('\u{a0}'),];
    let any_printable = any::<char>().prop_filter("no control characters", |c| !c.is_control());
    proptest::collection::vec(prop_oneof![3 => any_printable, 2 => tricky], 1..24)
        .prop_map(|chars| chars.into_iter().collect())
}

fn volume() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(0.0f32),
        Just(1.0f32),
        (0u32..=1_000_000).prop_map(|n| n as f32 / 1_000_000.0),
        // Every f32 bit pattern between 0.0 and 1.0.
        (0u32..=1.0f32.to_bits()).prop_map(f32::from_bits),
    ]
}

fn mute() -> impl Strategy<Value = MuteAction> {
    prop_oneof![Just(MuteAction::On), Just(MuteAction::Off), Just(MuteAction::Toggle)]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Ping),
        Just(Request::Version),
        Just(Request::Status),
        Just(Request::Subscribe),
        Just(Request::ReloadConfig),
        Just(Request::Trace),
        (name(), name(), any::<bool>()).prop_map(|(app, sink, create_pending)| Request::Route {
            app,
            sink,
            create_pending
        }),
        name().prop_map(|app| Request::Unroute { app }),
        (name(), volume()).prop_map(|(sink, volume)| Request::SetVolume { sink, volume }),
        (name(), mute()).prop_map(|(sink, mute)| Request::Mute { sink, mute }),
        (name(), volume()).prop_map(|(app, volume)| Request::SetAppVolume { app, volume }),
        (name(), mute()).prop_map(|(app, mute)| Request::MuteApp { app, mute }),
        name().prop_map(|sink| Request::SetDefault { sink }),
        (name(), name())
            .prop_map(|(channel, output)| Request::Output { channel, output: OutputChoice::parse(&output) }),
        name().prop_map(|channel| Request::Output { channel, output: OutputChoice::Default }),
        name().prop_map(|channel| Request::Output { channel, output: OutputChoice::None }),
    ]
}

/// Bytes that look like requests often enough to reach deep into the parser.
fn request_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"ROUTE ".to_vec()),
        Just(b"SET_VOLUME ".to_vec()),
        Just(b"mute ".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"0.5".to_vec()),
        Just(b"toggle".to_vec()),
        Just(b"\xc3\xa9".to_vec()),
        Just(b"\xc3".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_request(&bytes);
    }

    #[test]
    fn parse_never_panics_on_request_like_bytes(bytes in request_like_bytes()) {
        let result = parse_request(&bytes);
        // Whatever it accepts, it can write back and read again.
        if let Ok(request) = result {
            prop_assert_eq!(parse_request(request.to_line().as_bytes()), Ok(request));
        }
    }

    #[test]
    fn to_line_round_trips(request in request()) {
        let line = request.to_line();
        prop_assert!(!line.contains('\n'));
        prop_assert_eq!(parse_request(line.as_bytes()), Ok(request.clone()));
        let crlf = format!("{line}\r\n");
        prop_assert_eq!(parse_request(crlf.as_bytes()), Ok(request));
    }

    #[test]
    fn over_long_lines_are_refused_whatever_they_hold(
        bytes in proptest::collection::vec(any::<u8>(), MAX_LINE + 1..MAX_LINE + 64)
    ) {
        // Unless the tail is a line end that brings it back under the limit.
        let trimmed = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        prop_assume!(trimmed.len() > MAX_LINE);
        prop_assert_eq!(parse_request(&bytes), Err(ProtocolError::LineTooLong));
    }

    #[test]
    fn error_messages_are_one_short_line(bytes in request_like_bytes()) {
        if let Err(e) = parse_request(&bytes) {
            let message = e.to_string();
            prop_assert!(!message.contains('\n') && !message.contains('\r'));
            prop_assert!(message.len() < 400, "{}", message);
        }
    }

    #[test]
    fn responses_round_trip(payload in ".*", is_error in any::<bool>()) {
        let response = if is_error {
            Response::Error(payload.clone())
        } else {
            Response::Ok(Some(payload.clone()))
        };
        let line = response.to_line();
        prop_assert!(!line.contains('\n') && !line.contains('\r'));
        let back = parse_response(&line).unwrap();
        let expected = payload.replace(['\r', '\n'], " ");
        match back {
            Response::Ok(None) => prop_assert!(!is_error && expected.is_empty()),
            Response::Ok(Some(p)) => prop_assert!(!is_error && p == expected),
            Response::Error(m) => prop_assert!(is_error && m == expected),
        }
    }
}
