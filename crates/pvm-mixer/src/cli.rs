//! The command line: one definition for parsing, `--help`, completions and
//! the man page.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::keys::HELP;

/// A live terminal mixer for pipewire-volume-mixer.
///
/// Shows the sinks and the apps of the daemon's shared-memory snapshot, and
/// redraws the moment it changes. Keys change volumes, mutes, routes and the
/// default sink through the daemon's control socket. It starts without a
/// running daemon and comes alive when one starts.
///
/// NO_COLOR (set and not empty) draws without colours.
#[derive(Debug, Parser)]
#[command(name = "pvm-mixer", version)]
pub struct Cli {
    /// Control socket [default: $XDG_RUNTIME_DIR/pipewire-volume-mixer/socket]
    #[arg(long, global = true, env = "PVM_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Shared-memory snapshot [default: /dev/shm/pipewire-volume-mixer-<uid>]
    #[arg(long, global = true, env = "PVM_SHM", value_name = "PATH")]
    pub shm: Option<PathBuf>,
    /// Append logs to this file (the terminal is the mixer's); RUST_LOG sets the filter.
    #[arg(long, env = "PVM_MIXER_LOG", value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Instead of the mixer: print a completion script or the man page.
    #[command(subcommand)]
    pub command: Option<Tool>,
}

/// What else the binary does.
#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output.
    Man,
}

/// The keys, for `--help` and the man page.
pub fn keys_text() -> String {
    let width = HELP.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut text = String::from("Keys:\n");
    for (key, what) in HELP {
        let pad = width - key.chars().count();
        text.push_str(&format!("  {key}{}  {what}\n", " ".repeat(pad)));
    }
    text.push_str(
        "\nExit status: 0 when quit, 1 on an error (no terminal), 128+N when stopped by signal N (SIGTERM, SIGHUP, SIGINT).",
    );
    text
}

/// The clap command with the keys appended to the long help.
pub fn command() -> clap::Command {
    Cli::command().after_long_help(keys_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    #[test]
    fn definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn long_help_lists_the_keys() {
        let help = command().render_long_help().to_string();
        for needle in ["Enter", "route", "NO_COLOR", "Shift"] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
    }

    #[test]
    fn paths_and_tools_parse() {
        let matches = command().try_get_matches_from(["pvm-mixer", "--shm", "/tmp/s", "--socket", "/tmp/k"]).unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        assert_eq!(cli.shm.as_deref(), Some(std::path::Path::new("/tmp/s")));
        assert!(cli.command.is_none());
        let matches = command().try_get_matches_from(["pvm-mixer", "completions", "zsh"]).unwrap();
        assert!(matches!(Cli::from_arg_matches(&matches).unwrap().command, Some(Tool::Completions { .. })));
    }
}
