//! `pipewire-volume-mixer-daemon`: routes applications' audio to the sinks
//! their user chose, sets volume and mute on command, and publishes the mixer
//! state to shared memory.
//! The logic lives in the `pipewire_volume_mixer_daemon` library.

use pipewire_volume_mixer_daemon::{config, control, daemon, pw, route_store, runtime};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser;
use pvm_ipc::paths;

/// Routes each application's audio to the PipeWire sink its user chose and
/// publishes the mixer state to shared memory.
#[derive(Parser, Debug)]
#[command(name = "pipewire-volume-mixer-daemon", version, about)]
struct Args {
    /// Shared-memory snapshot file [default: /dev/shm/pipewire-volume-mixer-<uid>].
    #[arg(long, env = paths::ENV_SHM, value_name = "PATH")]
    shm: Option<PathBuf>,
    /// Control socket [default: $XDG_RUNTIME_DIR/pipewire-volume-mixer/socket].
    #[arg(long, env = paths::ENV_SOCKET, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Stats file, Prometheus text format [default: $XDG_RUNTIME_DIR/pipewire-volume-mixer/stats].
    #[arg(long, env = paths::ENV_STATS, value_name = "PATH")]
    stats: Option<PathBuf>,
    /// Config file [default: $XDG_CONFIG_HOME/pipewire-volume-mixer/config.toml].
    #[arg(long, env = paths::ENV_CONFIG, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Persisted routes [default: $XDG_STATE_HOME/pipewire-volume-mixer/routes.toml].
    #[arg(long, env = paths::ENV_STATE, value_name = "PATH")]
    state: Option<PathBuf>,
    /// Verbose logging (same as RUST_LOG=debug).
    #[arg(long)]
    debug: bool,
    /// Check the config file, print what is wrong, and exit.
    #[arg(long)]
    check_config: bool,
    /// Remove from PipeWire every channel the daemon made (their links go
    /// with them), and exit. Channels outlive the daemon on purpose (no gap
    /// when it restarts); this takes them away for good. Refused while a
    /// daemon is running: it would make them again.
    #[arg(long, conflicts_with = "check_config")]
    remove_channels: bool,
}

fn init_logging(debug: bool) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let default = if debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let filter = if debug { EnvFilter::new("debug") } else { filter };
    let registry = tracing_subscriber::registry().with(filter);
    // Under systemd, stderr is connected to the journal (JOURNAL_STREAM):
    // log there natively, with levels and fields.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            registry.with(journald.with_syslog_identifier("pipewire-volume-mixer".into())).init();
            return;
        }
    }
    registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false)).init();
}

#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOCATOR: pipewire_volume_mixer_daemon::alloc_count::Counting =
    pipewire_volume_mixer_daemon::alloc_count::Counting;

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.debug);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipewire-volume-mixer-daemon: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let resolver = paths::Resolver::from_process();
    let shm = args.shm.unwrap_or_else(|| resolver.shm());
    let socket = args.socket.unwrap_or_else(|| resolver.socket());
    let stats = args.stats.unwrap_or_else(|| resolver.stats());
    let config_path = args.config.unwrap_or_else(|| resolver.config());
    let state = args.state.unwrap_or_else(|| resolver.state());

    if args.check_config {
        let cfg = config::load(&config_path)?;
        println!("{}: OK, {} rules, {} channels", config_path.display(), cfg.rules.len(), cfg.channels.len());
        return Ok(());
    }

    if args.remove_channels {
        if pvm_ipc::client::Client::connect(&socket).is_ok() {
            anyhow::bail!(
                "a daemon is running (socket {}); stop it first (systemctl --user stop pipewire-volume-mixer), \
                 or it makes its channels again",
                socket.display()
            );
        }
        pipewire::init();
        let names = pw::cleanup::remove_channels()?;
        if names.is_empty() {
            println!("no channels to remove");
        } else {
            println!("removed {} channel(s): {}", names.len(), names.join(", "));
        }
        return Ok(());
    }

    // A bad config never stops the daemon: log it and start with no rules.
    let config = config::load(&config_path).unwrap_or_else(|e| {
        tracing::error!("{e}; starting without rules");
        config::Config::default()
    });
    let routes = route_store::RouteStore::load(&state).unwrap_or_else(|e| {
        tracing::error!("{e}; starting without persisted routes");
        route_store::RouteStore::empty(&state)
    });

    // The snapshot file's lock is the one-daemon-per-user guard: take it
    // before touching the socket.
    let mut writer = pvm_ipc::writer::SnapshotWriter::create(&shm).context("cannot create the snapshot")?;
    let control = control::ControlServer::bind(&socket).context("cannot create the control socket");
    let stats_dir = stats.parent().filter(|d| !d.as_os_str().is_empty());
    let stats_dir =
        stats_dir.map_or(Ok(()), control::socket_path::private_dir).context("cannot create the stats directory");
    // On failure, leave no socket behind, and a snapshot that readers do not
    // take for a live daemon's.
    let control = match (control, stats_dir) {
        (Ok(control), Ok(())) => control,
        (Ok(control), Err(e)) => {
            control.remove_socket();
            writer.mark_stopped();
            return Err(e);
        }
        (Err(e), _) => {
            writer.mark_stopped();
            return Err(e);
        }
    };
    raise_fd_limit();

    pipewire::init();
    // The loop outlives everything registered on it: sources can then be
    // stored anywhere ('static). It is freed once the runtime is gone,
    // through the pointer `Box::into_raw` gave (the only one that may free it).
    let main_loop_box =
        Box::into_raw(Box::new(pipewire::main_loop::MainLoopRc::new(None).context("cannot create the main loop")?));
    // SAFETY: `main_loop_box` comes from `Box::into_raw` just above, so it is
    // valid and aligned; nothing frees or mutates it until the end of this
    // function, after every borrower (the runtime) is gone.
    let main_loop: &'static pipewire::main_loop::MainLoopRc = unsafe { &*main_loop_box };

    let config_watch = runtime::ConfigWatch::new(&config_path);
    let daemon = daemon::Daemon::new(daemon::Files { config: config_path, state }, config, routes);
    let result = {
        let rt =
            runtime::Runtime::new(main_loop, daemon, writer, control, runtime::RuntimeFiles { stats }, config_watch);
        tracing::info!(shm = %shm.display(), socket = %socket.display(), "started");
        rt.run()
    };
    // SAFETY: `main_loop_box` is the pointer `Box::into_raw` returned, and
    // this is its only release. The runtime was the only borrower of the
    // shared reference made from it (its sources and callbacks hold it) and
    // was dropped at the end of the block above (its callbacks hold only weak
    // references to it, so no cycle keeps it alive); nothing uses that
    // reference after this line.
    drop(unsafe { Box::from_raw(main_loop_box) });
    result
}

/// Up to [`control::server::MAX_CLIENTS`] connections need as many fds.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if let Some(max) = lim.maximum {
        let want = (control::server::MAX_CLIENTS as u64 + 64).min(max);
        if lim.current.is_some_and(|c| c < want) {
            lim.current = Some(want);
            let _ = setrlimit(Resource::Nofile, lim);
        }
    }
}
