//! Volume values on the command line: `0.5`, `50%`, `+5%`, `-5%`, `+0.1`.

use std::str::FromStr;

/// A volume given on the command line, on the cubic scale wpctl shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Level {
    /// Set this volume, `0.0..=1.0`.
    Absolute(f64),
    /// Change the current volume by this much; the result is clamped to `0.0..=1.0`.
    Step(f64),
}

impl Level {
    /// The volume to send, given the current one.
    pub fn resolve(self, current: f64) -> f32 {
        let target = match self {
            Level::Absolute(v) => v,
            Level::Step(delta) => (current + delta).clamp(0.0, 1.0),
        };
        target as f32
    }

    /// Whether [`resolve`](Self::resolve) needs the current volume.
    pub fn is_relative(self) -> bool {
        matches!(self, Level::Step(_))
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(text: &str) -> Result<Level, String> {
        const HELP: &str = "expected 0.0-1.0, 0%-100%, or a step like +5% or -0.1";
        let (sign, rest) = match text.as_bytes().first() {
            Some(b'+') => (1.0, &text[1..]),
            Some(b'-') => (-1.0, &text[1..]),
            _ => (0.0, text),
        };
        let (number, scale) = match rest.strip_suffix('%') {
            Some(number) => (number, 100.0),
            None => (rest, 1.0),
        };
        let value = decimal(number).ok_or(HELP)? / scale;
        if sign != 0.0 {
            return Ok(Level::Step(sign * value));
        }
        if value > 1.0 {
            return Err(format!("{text} is above the maximum (1.0 or 100%)"));
        }
        Ok(Level::Absolute(value))
    }
}

/// `digits [ "." digits ] | "." digits`: no sign, no exponent, no NaN.
fn decimal(text: &str) -> Option<f64> {
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = match text.split_once('.') {
        None => !text.is_empty() && all_digits(text),
        Some((int, frac)) => !frac.is_empty() && all_digits(int) && all_digits(frac),
    };
    well_formed.then(|| text.parse().ok()).flatten()
}

/// `0.5` as `50%`.
pub fn percent(volume: f64) -> String {
    format!("{:.0}%", volume * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(text: &str) -> Level {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn absolute_values() {
        assert_eq!(level("0.5"), Level::Absolute(0.5));
        assert_eq!(level(".25"), Level::Absolute(0.25));
        assert_eq!(level("1"), Level::Absolute(1.0));
        assert_eq!(level("0"), Level::Absolute(0.0));
        assert_eq!(level("50%"), Level::Absolute(0.5));
        assert_eq!(level("12.5%"), Level::Absolute(0.125));
        assert_eq!(level("100%"), Level::Absolute(1.0));
        assert_eq!(level("0%"), Level::Absolute(0.0));
    }

    #[test]
    fn steps() {
        assert_eq!(level("+5%"), Level::Step(0.05));
        assert_eq!(level("-5%"), Level::Step(-0.05));
        assert_eq!(level("+0.1"), Level::Step(0.1));
        assert_eq!(level("-.5"), Level::Step(-0.5));
        assert!(level("+5%").is_relative());
        assert!(!level("5%").is_relative());
    }

    #[test]
    fn rejected() {
        for text in ["", "%", "+", "-", "1.5", "101%", "abc", "NaN", "inf", "1e0", "+-5%", "5%%", "0x1", "50 %", "1."] {
            assert!(text.parse::<Level>().is_err(), "{text:?} was accepted");
        }
        assert_eq!("150%".parse::<Level>(), Err("150% is above the maximum (1.0 or 100%)".to_owned()));
    }

    #[test]
    fn steps_are_clamped() {
        assert_eq!(Level::Step(0.05).resolve(0.5), 0.55);
        assert_eq!(Level::Step(0.1).resolve(0.95), 1.0);
        assert_eq!(Level::Step(-0.1).resolve(0.05), 0.0);
        assert_eq!(Level::Step(-0.05).resolve(0.5), 0.45);
        assert_eq!(Level::Absolute(0.3).resolve(0.9), 0.3);
    }

    #[test]
    fn percent_rounds_to_whole_numbers() {
        assert_eq!(percent(0.5), "50%");
        assert_eq!(percent(0.4999), "50%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.0), "0%");
    }
}
