//! The command line: one definition for parsing, `--help`, completions and
//! the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::level::Level;
use pvm_ipc::protocol::MuteAction;

/// Control and inspect pipewire-volume-mixer.
///
/// `status` and `watch` read the shared-memory snapshot and never wake the
/// daemon; the other commands talk to it over its control socket.
///
/// Exit status: 0 success, 1 the daemon refused the request (its message is
/// printed) or another error, 2 usage error, 3 the daemon is not running.
#[derive(Debug, Parser)]
#[command(name = "pvmctl", version, propagate_version = true)]
pub struct Cli {
    /// Where the daemon's files are.
    #[command(flatten)]
    pub paths: PathArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Overrides of the default file locations.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// Control socket [default: $XDG_RUNTIME_DIR/pipewire-volume-mixer/socket]
    #[arg(long, global = true, env = "PVM_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Shared-memory snapshot [default: /dev/shm/pipewire-volume-mixer-<uid>]
    #[arg(long, global = true, env = "PVM_SHM", value_name = "PATH")]
    pub shm: Option<PathBuf>,
    /// Stats file [default: $XDG_RUNTIME_DIR/pipewire-volume-mixer/stats]
    #[arg(long, global = true, env = "PVM_STATS", value_name = "PATH")]
    pub stats: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show sinks and apps (from the snapshot; never wakes the daemon).
    Status {
        /// Print the status as JSON on one line.
        #[arg(long)]
        json: bool,
    },
    /// Print the status again after every change, one line each.
    Watch {
        /// Print each status as JSON on one line (the object of `status --json`).
        #[arg(long)]
        json: bool,
    },
    /// Send an app's audio to a sink, and remember it.
    Route {
        /// App name, as `status` shows it.
        app: String,
        /// Sink name (`node.name`).
        sink: String,
        /// Accept a sink that does not exist yet; the route applies once it appears.
        #[arg(long)]
        create_pending: bool,
    },
    /// Forget an app's route; the session manager decides again.
    Unroute {
        /// App name.
        app: String,
    },
    /// Show or set a sink's volume.
    Volume {
        /// Sink name (`node.name`).
        sink: String,
        /// New volume: 0.0-1.0, a percentage (50%), or a step (+5%, -5%, +0.1).
        /// Without it, print the current volume.
        #[arg(allow_hyphen_values = true)]
        value: Option<Level>,
    },
    /// Show or set a sink's mute.
    Mute {
        /// Sink name (`node.name`).
        sink: String,
        /// on, off or toggle. Without it, print the current state.
        #[arg(value_parser = parse_mute)]
        state: Option<MuteAction>,
    },
    /// Show or set the volume of all of an app's streams.
    AppVolume {
        /// App name.
        app: String,
        /// New volume: 0.0-1.0, a percentage (50%), or a step (+5%, -5%, +0.1).
        /// Without it, print the current volume.
        #[arg(allow_hyphen_values = true)]
        value: Option<Level>,
    },
    /// Show or set the mute of all of an app's streams.
    AppMute {
        /// App name.
        app: String,
        /// on, off or toggle. Without it, print the current state.
        #[arg(value_parser = parse_mute)]
        state: Option<MuteAction>,
    },
    /// Make a sink the default sink.
    Default {
        /// Sink name (`node.name`).
        sink: String,
    },
    /// Show or set where a channel's audio goes.
    Output {
        /// Channel name (`node.name`, as `status` shows it).
        channel: String,
        /// A sink's `node.name`, `default` (the default output device,
        /// followed as it changes) or `none`. Without it, print the current
        /// output. Remembered across restarts.
        output: Option<String>,
    },
    /// List the channels and their outputs.
    Channels {
        /// Remove from PipeWire every channel the daemon made, with its links
        /// (stop the daemon first, or it makes them again).
        #[arg(long)]
        remove_all: bool,
    },
    /// Make the daemon re-read its config file.
    Reload,
    /// Check that the daemon answers.
    Ping,
    /// Show the daemon's statistics.
    Stats,
    /// Show the daemon's recent events.
    Trace,
    /// Install an integration for the current user.
    Setup {
        /// What to install.
        #[command(subcommand)]
        target: SetupTarget,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output.
    Man,
    /// Print the sink or app names of the snapshot, one per line (for shell completion).
    #[command(hide = true)]
    CompleteNames {
        /// Which names.
        kind: NameKind,
    },
}

/// What `setup` installs.
#[derive(Debug, Subcommand)]
pub enum SetupTarget {
    /// Install the WirePlumber 0.5 hook that holds each new stream until the
    /// daemon has decided where it plays, so it starts on the right sink.
    ///
    /// Writes $XDG_DATA_HOME/wireplumber/scripts/pipewire-volume-mixer-hold.lua
    /// and $XDG_CONFIG_HOME/wireplumber/wireplumber.conf.d/90-pipewire-volume-mixer.conf
    /// (defaults ~/.local/share and ~/.config). Running it again changes
    /// nothing. WirePlumber must be restarted afterwards.
    Wireplumber {
        /// Remove exactly these two files instead (the directories stay).
        #[arg(long)]
        uninstall: bool,
    },
}

/// What `complete-names` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NameKind {
    /// Sink names.
    Sinks,
    /// App names.
    Apps,
}

fn parse_mute(word: &str) -> Result<MuteAction, String> {
    MuteAction::parse(word).ok_or_else(|| "expected on, off or toggle".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn negative_steps_are_values_not_flags() {
        let cli = Cli::try_parse_from(["pvmctl", "volume", "game", "-5%"]).unwrap();
        match cli.command {
            Command::Volume { sink, value } => {
                assert_eq!(sink, "game");
                assert_eq!(value, Some(Level::Step(-0.05)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn global_options_may_follow_the_subcommand() {
        let cli = Cli::try_parse_from(["pvmctl", "ping", "--socket", "/tmp/s"]).unwrap();
        assert_eq!(cli.paths.socket.as_deref(), Some(std::path::Path::new("/tmp/s")));
    }

    #[test]
    fn setup_wireplumber_takes_uninstall() {
        let cli = Cli::try_parse_from(["pvmctl", "setup", "wireplumber", "--uninstall"]).unwrap();
        assert!(matches!(cli.command, Command::Setup { target: SetupTarget::Wireplumber { uninstall: true } }));
        assert!(Cli::try_parse_from(["pvmctl", "setup"]).is_err());
    }

    #[test]
    fn output_and_channels() {
        let cli = Cli::try_parse_from(["pvmctl", "output", "game", "speakers"]).unwrap();
        assert!(
            matches!(cli.command, Command::Output { channel, output: Some(o) } if channel == "game" && o == "speakers")
        );
        let cli = Cli::try_parse_from(["pvmctl", "channels", "--remove-all"]).unwrap();
        assert!(matches!(cli.command, Command::Channels { remove_all: true }));
    }

    #[test]
    fn mute_words() {
        for (word, action) in
            [("on", MuteAction::On), ("OFF", MuteAction::Off), ("toggle", MuteAction::Toggle), ("true", MuteAction::On)]
        {
            let cli = Cli::try_parse_from(["pvmctl", "mute", "game", word]).unwrap();
            assert!(matches!(cli.command, Command::Mute { state: Some(a), .. } if a == action), "{word}");
        }
        assert!(Cli::try_parse_from(["pvmctl", "mute", "game", "maybe"]).is_err());
    }
}
