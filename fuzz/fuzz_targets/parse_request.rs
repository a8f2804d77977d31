//! Feeds arbitrary bytes to the request parser. It must never panic, and
//! every request it accepts must survive `to_line` and a second parse.
//! Run with `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_request` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pvm_ipc::protocol::{parse_request, parse_response};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = parse_request(data) {
        let line = request.to_line();
        assert_eq!(parse_request(line.as_bytes()), Ok(request), "{line:?}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        // One trip through to_line normalises a response (line breaks in a
        // payload become spaces); after that it is stable.
        if let Ok(response) = parse_response(text) {
            let line = response.to_line();
            let again = parse_response(&line).map(|r| r.to_line());
            assert_eq!(again, Ok(line));
        }
    }
});
