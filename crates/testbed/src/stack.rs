//! Which PipeWire + WirePlumber a bed runs: [`Stack`], chosen per bed or for
//! every bed of a test run with `PVM_TEST_STACK`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The variable that sets the stack of every bed whose builder does not
/// choose one ([`Stack::from_env`]).
pub const STACK_ENV: &str = "PVM_TEST_STACK";

/// A PipeWire server + session manager combination a bed can run.
///
/// The clients of a bed (the daemon, `pvmctl`, `pw-dump`, `pw-cli`, `wpctl`,
/// the fake applications) are always the installed ones; the stack chooses
/// the servers. The older ones are Debian 12's own packages, unpacked into a
/// private prefix under the Cargo target directory on first use (needs
/// `apt-get download` to work: network and apt's package lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Stack {
    /// The installed PipeWire (1.4) and WirePlumber (0.5): Debian 13,
    /// Fedora, Arch, Debian 12 with backports. `pw14-wp05`.
    #[default]
    Pw14Wp05,
    /// The installed PipeWire (1.4) with WirePlumber 0.4.13 from a private
    /// prefix: the session manager of Debian 12 and Ubuntu 24.04. `pw14-wp04`.
    Pw14Wp04,
    /// PipeWire 0.3.65 and WirePlumber 0.4.13, both from a private prefix:
    /// Debian 12 as shipped. `pw03-wp04`.
    Pw03Wp04,
}

impl Stack {
    /// Every stack, newest first.
    pub const ALL: [Stack; 3] = [Stack::Pw14Wp05, Stack::Pw14Wp04, Stack::Pw03Wp04];

    /// The stack's name, as `PVM_TEST_STACK` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Pw14Wp05 => "pw14-wp05",
            Stack::Pw14Wp04 => "pw14-wp04",
            Stack::Pw03Wp04 => "pw03-wp04",
        }
    }

    /// The stack `PVM_TEST_STACK` names, [`Stack::Pw14Wp05`] when it is
    /// unset or empty; an error for any other value.
    pub fn from_env() -> Result<Stack> {
        match std::env::var(STACK_ENV) {
            Ok(value) if !value.is_empty() => value.parse(),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Stack::default()),
            Err(std::env::VarError::NotUnicode(value)) => {
                Err(Error::UnknownStack(value.to_string_lossy().into_owned()))
            }
        }
    }

    /// Whether the stack runs WirePlumber 0.5, which alone can run the hook
    /// that holds new streams until the daemon has decided.
    pub fn has_wireplumber_05(self) -> bool {
        self == Stack::Pw14Wp05
    }

    /// Whether the stack runs the installed PipeWire (1.4).
    pub fn has_pipewire_14(self) -> bool {
        self != Stack::Pw03Wp04
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stack {
    type Err = Error;

    fn from_str(s: &str) -> Result<Stack> {
        Stack::ALL.into_iter().find(|stack| stack.name() == s).ok_or_else(|| Error::UnknownStack(s.to_owned()))
    }
}

/// Panics unless the stack of this test run (`PVM_TEST_STACK`) runs
/// WirePlumber 0.5; returns the stack. For tests of what only WirePlumber 0.5
/// does (the hold): name them `wp05_...`, and the runner (scripts/test.sh)
/// selects them on `pw14-wp05` only; should one run on another stack, it
/// fails instead of passing without testing anything.
pub fn require_wireplumber_05() -> Stack {
    require("WirePlumber 0.5", Stack::has_wireplumber_05)
}

/// Panics unless the stack of this test run runs WirePlumber 0.4; returns the
/// stack. For tests of how things go without the hold: name them `wp04_...`
/// (selected on `pw14-wp04` and `pw03-wp04`).
pub fn require_wireplumber_04() -> Stack {
    require("WirePlumber 0.4", |stack| !stack.has_wireplumber_05())
}

fn require(what: &str, applies: impl Fn(Stack) -> bool) -> Stack {
    let stack = Stack::from_env().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        applies(stack),
        "this test needs {what}, and {STACK_ENV} is {stack}: it must not be selected on this stack"
    );
    stack
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for stack in Stack::ALL {
            assert_eq!(stack.name().parse::<Stack>().unwrap(), stack);
        }
        let err = "pw10-wp04".parse::<Stack>().unwrap_err().to_string();
        assert!(err.contains("pw10-wp04") && err.contains("pw03-wp04"), "{err}");
    }
}
