//! What each subcommand does.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use clap::CommandFactory;
use pvm_ipc::layout::{MAX_APPS, MAX_SINKS};
use pvm_ipc::paths;
use pvm_ipc::protocol::{OutputChoice, Request};
use pvm_ipc::status::Status;

use crate::cli::{Cli, Command, NameKind, PathArgs, SetupTarget};
use crate::control::send;
use crate::failure::{Failure, Outcome};
use crate::level::percent;
use crate::render;
use crate::setup;
use crate::snapshot::{live_status, Snapshot};
use crate::stats::format_stats;

/// The daemon's files, with defaults filled in.
struct Files {
    socket: PathBuf,
    shm: PathBuf,
    stats: PathBuf,
}

impl Files {
    fn from_args(args: PathArgs) -> Files {
        Files {
            socket: args.socket.unwrap_or_else(paths::socket_path),
            shm: args.shm.unwrap_or_else(paths::shm_path),
            stats: args.stats.unwrap_or_else(paths::stats_path),
        }
    }
}

/// Runs one command line.
pub fn run(cli: Cli) -> Outcome {
    let files = Files::from_args(cli.paths);
    let socket = files.socket.as_path();
    match cli.command {
        Command::Status { json } => status(&files.shm, json),
        Command::Watch { json } => watch(&files.shm, json),
        Command::Route { app, sink, create_pending } => request(socket, Request::Route { app, sink, create_pending }),
        Command::Unroute { app } => request(socket, Request::Unroute { app }),
        Command::Volume { sink, value: None } => {
            let status = live_status(&files.shm)?;
            print(&percent(find_sink(&status, &sink)?.volume))
        }
        Command::Volume { sink, value: Some(level) } => {
            let current = if level.is_relative() { find_sink(&live_status(&files.shm)?, &sink)?.volume } else { 0.0 };
            let volume = level.resolve(current);
            request(socket, Request::SetVolume { sink, volume })
        }
        Command::Mute { sink, state: None } => {
            let status = live_status(&files.shm)?;
            print(on_off(find_sink(&status, &sink)?.muted))
        }
        Command::Mute { sink, state: Some(mute) } => request(socket, Request::Mute { sink, mute }),
        Command::AppVolume { app, value: None } => {
            let status = live_status(&files.shm)?;
            print(&percent(find_app(&status, &app)?.volume))
        }
        Command::AppVolume { app, value: Some(level) } => {
            let current = if level.is_relative() { find_app(&live_status(&files.shm)?, &app)?.volume } else { 0.0 };
            let volume = level.resolve(current);
            request(socket, Request::SetAppVolume { app, volume })
        }
        Command::AppMute { app, state: None } => {
            let status = live_status(&files.shm)?;
            print(on_off(find_app(&status, &app)?.muted))
        }
        Command::AppMute { app, state: Some(mute) } => request(socket, Request::MuteApp { app, mute }),
        Command::Default { sink } => request(socket, Request::SetDefault { sink }),
        Command::Output { channel, output: None } => {
            let status = live_status(&files.shm)?;
            let sink = find_sink(&status, &channel)?;
            if sink.kind != "channel" {
                return Err(Failure::Other(anyhow!("{} is not a channel", pvm_ipc::protocol::quote(&channel))));
            }
            print(sink.output.as_deref().unwrap_or("none"))
        }
        Command::Output { channel, output: Some(output) } => {
            request(socket, Request::Output { channel, output: OutputChoice::parse(&output) })
        }
        Command::Channels { remove_all: false } => channels(&files.shm),
        Command::Channels { remove_all: true } => remove_channels(socket),
        Command::Reload => request(socket, Request::ReloadConfig),
        Command::Ping => request(socket, Request::Ping),
        Command::Stats => stats(&files.stats),
        Command::Trace => trace(socket),
        Command::Setup { target: SetupTarget::Wireplumber { uninstall } } => setup::wireplumber(uninstall),
        Command::Completions { shell } => {
            let mut out = io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "pvmctl", &mut out);
            Ok(out.flush()?)
        }
        Command::Man => {
            let mut out = io::stdout().lock();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            Ok(out.flush()?)
        }
        Command::CompleteNames { kind } => complete_names(&files.shm, kind),
    }
}

/// Writes one line to standard output.
fn print(line: &str) -> Outcome {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    Ok(out.flush()?)
}

fn on_off(muted: bool) -> &'static str {
    if muted {
        "on"
    } else {
        "off"
    }
}

/// Sends a request and prints the daemon's payload, if any.
fn request(socket: &Path, request: Request) -> Outcome {
    match send(socket, &request)? {
        Some(payload) => print(&payload),
        None => Ok(()),
    }
}

fn find_sink<'a>(status: &'a Status, name: &str) -> Result<&'a pvm_ipc::status::SinkStatus, Failure> {
    status.sink(name).ok_or_else(|| {
        let known: Vec<&str> = status.sinks.iter().map(|s| s.name.as_str()).collect();
        let mut message = format!("unknown sink {} (known: {})", pvm_ipc::protocol::quote(name), known.join(", "));
        if status.total_sinks as usize > MAX_SINKS {
            message.push_str(&format!("; the snapshot shows only the first {MAX_SINKS} sinks"));
        }
        Failure::Other(anyhow!(message))
    })
}

fn find_app<'a>(status: &'a Status, name: &str) -> Result<&'a pvm_ipc::status::AppStatus, Failure> {
    status.app(name).ok_or_else(|| {
        let mut message = format!("unknown app {}", pvm_ipc::protocol::quote(name));
        if status.total_apps as usize > MAX_APPS {
            message.push_str(&format!("; the snapshot shows only the first {MAX_APPS} apps"));
        }
        Failure::Other(anyhow!(message))
    })
}

/// `status`: prints the snapshot; exits 3 (after printing) if the daemon is
/// not running.
fn status(shm: &Path, json: bool) -> Outcome {
    let status = Snapshot::open(shm)?.status()?;
    if json {
        print(&status.to_json())?;
    } else {
        let mut out = io::stdout().lock();
        out.write_all(render::status_text(&status).as_bytes())?;
        out.flush()?;
    }
    if status.running {
        Ok(())
    } else {
        Err(Failure::NotRunning(format!("the snapshot {} is from a stopped daemon", shm.display())))
    }
}

/// `watch`: one line per change, until interrupted.
fn watch(shm: &Path, json: bool) -> Outcome {
    let mut last_line = String::new();
    Snapshot::open_when_ready(shm)?.watch(|status| {
        let line = if json { status.to_json() } else { render::watch_line(status) };
        if line != last_line {
            print(&line)?;
            last_line = line;
        }
        Ok(())
    })
}

/// `stats`: the stats file without comments, aligned.
fn stats(path: &Path) -> Outcome {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Failure::nothing_at("stats file", path));
        }
        Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", path.display())).into()),
    };
    let mut out = io::stdout().lock();
    out.write_all(format_stats(&text).as_bytes())?;
    Ok(out.flush()?)
}

/// `trace`: the recent events, pretty-printed.
fn trace(socket: &Path) -> Outcome {
    let payload = send(socket, &Request::Trace)?.unwrap_or_default();
    let pretty = serde_json::from_str::<serde_json::Value>(&payload)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .context("the daemon's trace is not JSON")?;
    print(&pretty)
}

/// `channels`: each channel and its current output, one per line.
fn channels(shm: &Path) -> Outcome {
    let status = live_status(shm)?;
    let mut out = io::stdout().lock();
    for sink in status.sinks.iter().filter(|s| s.kind == "channel") {
        writeln!(out, "{}\t{}", sink.name, sink.output.as_deref().unwrap_or("none"))?;
    }
    Ok(out.flush()?)
}

/// `channels --remove-all`: runs `pipewire-volume-mixer-daemon
/// --remove-channels` (the daemon binary next to this one, else from
/// `PATH`), which talks to PipeWire.
fn remove_channels(socket: &Path) -> Outcome {
    const DAEMON: &str = "pipewire-volume-mixer-daemon";
    let beside = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|d| d.join(DAEMON)));
    let program = beside.filter(|p| p.is_file()).unwrap_or_else(|| PathBuf::from(DAEMON));
    let status = std::process::Command::new(&program)
        .arg("--remove-channels")
        .arg("--socket")
        .arg(socket)
        .status()
        .with_context(|| format!("cannot run {}", program.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::Other(anyhow!("{} --remove-channels failed ({status})", program.display())))
    }
}

/// `complete-names`: names from the snapshot; nothing if there is none.
fn complete_names(shm: &Path, kind: NameKind) -> Outcome {
    let Ok(status) = Snapshot::open(shm).and_then(|s| s.status()) else {
        return Ok(());
    };
    let names: Vec<&str> = match kind {
        NameKind::Sinks => status.sinks.iter().map(|s| s.name.as_str()).collect(),
        NameKind::Apps => status.apps.iter().map(|a| a.name.as_str()).collect(),
    };
    let mut out = io::stdout().lock();
    for name in names {
        writeln!(out, "{name}")?;
    }
    Ok(out.flush()?)
}
