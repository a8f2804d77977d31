//! Polling for a condition with a deadline.

use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How often conditions are re-checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `condition` every [`POLL_INTERVAL`] until it returns `true`.
///
/// The condition is checked at least once, and once more at the deadline.
/// After `timeout` the error names `what` was waited for.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) -> Result<()> {
    wait_for(timeout, what, || condition().then_some(()))
}

/// Polls `probe` every [`POLL_INTERVAL`] until it returns `Some`, and returns that value.
///
/// Like [`wait_until`], for conditions that produce something (an id, a node).
pub fn wait_for<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last_chance = Instant::now() >= deadline;
        if let Some(value) = probe() {
            return Ok(value);
        }
        if last_chance {
            return Err(Error::Timeout { what: what.to_owned(), timeout, details: String::new() });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        thread::sleep(POLL_INTERVAL.min(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_the_condition_holds() {
        let mut calls = 0;
        wait_until(Duration::from_secs(10), "three calls", || {
            calls += 1;
            calls == 3
        })
        .unwrap();
        assert_eq!(calls, 3);
    }

    #[test]
    fn error_names_what_was_awaited() {
        let err = wait_until(Duration::ZERO, "the sink `game` to appear", || false).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("the sink `game` to appear"), "message: {message}");
    }

    #[test]
    fn wait_for_returns_the_value() {
        let mut n = 0;
        let got = wait_for(Duration::from_secs(10), "n to reach 2", || {
            n += 1;
            (n >= 2).then_some(n * 10)
        })
        .unwrap();
        assert_eq!(got, 20);
    }
}
