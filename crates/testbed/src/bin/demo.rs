//! `pvm-demo`: pipewire-volume-mixer at work on a private, headless PipeWire.
//!
//! Starts a test bed with two stand-in output devices, headphones (default)
//! and speakers, writes a config with three channels (game, chat, music) and
//! routing rules, starts the daemon (which makes the channels and feeds them
//! to their outputs) and four fake applications, then shows `pvmctl status`,
//! changes a volume, mutes a channel, moves an application, sends a channel
//! to another output, changes the default device and shows the status again. Everything it started is stopped
//! at the end, or on Ctrl-C. With `--keep` it stays up until Ctrl-C and
//! prints the variables to export to use it from another shell, with
//! `pvmctl` or the terminal mixer `pvm-mixer`.
//!
//! Exits 0 when every step worked, 1 when one failed (the others still run),
//! 130 when interrupted.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use testbed::{AppSpec, Daemon, FakeApp, TestBed};

/// The stand-in output devices: `(node.name, priority.session)`; the higher
/// priority is the default.
const DEVICES: &[(&str, i32)] = &[("headphones", 1000), ("speakers", 900)];

/// The channels and rules the demo daemon runs with.
const CONFIG: &str = r#"# pipewire-volume-mixer demo: three channels and the rules that feed them
[[channel]]
name = "game"
description = "Game"
output = "headphones"

[[channel]]
name = "chat"
description = "Chat"
output = "default"

[[channel]]
name = "music"
description = "Music"
output = "default"

[[rule]]
match = { "application.name" = "Game*" }
sink = "game"

[[rule]]
match = { "application.process.binary" = "discord" }
sink = "chat"

[[rule]]
match = { "media.role" = "Music" }
sink = "music"
"#;

/// How long the demo waits for something to show in the graph.
const SETTLE: Duration = Duration::from_secs(5);

/// Runs pipewire-volume-mixer against a private, headless PipeWire and shows what it does.
#[derive(Debug, Parser)]
#[command(name = "pvm-demo", version)]
struct Args {
    /// Keep everything running after the demo until Ctrl-C, and print how to reach it.
    #[arg(long)]
    keep: bool,
}

/// Set by SIGINT, SIGTERM or SIGHUP.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes Ctrl-C (and SIGTERM, SIGHUP) set [`INTERRUPTED`] instead of killing
/// the demo, so it can stop what it started.
fn catch_interrupts() -> anyhow::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; the sigaction struct is fully initialised
        // (zeroed, then handler and an empty mask set) before use.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("installing a signal handler");
        }
    }
    Ok(())
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Returns an error if Ctrl-C was pressed, to unwind and clean up.
fn check_interrupt() -> anyhow::Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Prints a narration line.
fn narrate(text: &str) {
    println!("\n==> {text}");
}

/// The demo's state and what went wrong. Fields drop in this order: the
/// applications, then the daemon, then PipeWire.
struct Demo {
    apps: Vec<FakeApp>,
    daemon: Daemon,
    bed: TestBed,
    failures: Vec<String>,
}

impl Demo {
    fn fail(&mut self, what: String) {
        println!("    FAILED: {what}");
        self.failures.push(what);
    }

    /// Runs `pvmctl args`, prints its output, records a failure.
    fn pvmctl(&mut self, args: &[&str]) -> bool {
        println!("$ pvmctl {}", args.join(" "));
        match self.bed.pvmctl(&self.daemon, args) {
            Ok(output) => {
                print!("{}", String::from_utf8_lossy(&output.stdout));
                if output.status.success() {
                    return true;
                }
                eprint!("{}", String::from_utf8_lossy(&output.stderr));
                self.fail(format!("pvmctl {} ({})", args.join(" "), output.status));
            }
            Err(e) => self.fail(format!("pvmctl {}: {e}", args.join(" "))),
        }
        false
    }

    /// Waits until the streams of `app` are linked to `sink` only; records a failure if not.
    fn expect_route(&mut self, app: &str, sink: &str) {
        let bed = &self.bed;
        let routed = bed.wait_until(SETTLE, &format!("{app} on {sink}"), || {
            let streams = bed.streams_of_app(app);
            !streams.is_empty() && streams.iter().all(|&id| bed.sink_names_linked_to(id) == [sink])
        });
        let now: Vec<Vec<String>> =
            bed.streams_of_app(app).into_iter().map(|id| bed.sink_names_linked_to(id)).collect();
        match routed {
            Ok(()) => println!("    {app:<14} -> {sink}"),
            Err(_) => self.fail(format!("{app} should play on {sink}, plays on {now:?}")),
        }
    }

    /// Waits until PipeWire shows `sink` with every channel at `volume`
    /// (cubic, as pvmctl and wpctl show it) and with `mute`; records a failure if not.
    /// Checks in PipeWire that every link out of `channel` goes to `output`.
    fn expect_output(&mut self, channel: &str, output: &str) {
        let bed = &self.bed;
        let outputs = || -> Vec<String> {
            let Ok(graph) = bed.dump() else { return Vec::new() };
            let Some(id) = graph.node_named(channel).map(|n| n.id) else { return Vec::new() };
            graph
                .links
                .iter()
                .filter(|l| l.output_node == id)
                .filter_map(|l| graph.node(l.input_node).and_then(|n| n.name()))
                .collect()
        };
        let wired = bed.wait_until(SETTLE, &format!("{channel} on {output}"), || {
            let now = outputs();
            !now.is_empty() && now.iter().all(|o| o == output)
        });
        match wired {
            Ok(()) => println!("    PipeWire: {channel} -> {output} ({} links)", outputs().len()),
            Err(_) => self.fail(format!("channel {channel} should play to {output}, plays to {:?}", outputs())),
        }
    }

    fn expect_sink(&mut self, sink: &str, volume: f32, mute: bool) {
        let linear = volume.powi(3);
        let bed = &self.bed;
        let reached = bed.wait_until(SETTLE, &format!("{sink} at {volume}"), || {
            bed.node_volume(sink)
                .is_ok_and(|(volumes, muted)| muted == mute && volumes.iter().all(|v| (v - linear).abs() < 1e-3))
        });
        let now = bed.node_volume(sink);
        match (reached, now) {
            (Ok(()), Ok((volumes, muted))) => {
                println!("    PipeWire: {sink} channelVolumes {volumes:?} (= {volume} cubic), mute {muted}")
            }
            (_, now) => {
                self.fail(format!("{sink} should be at {volume} (linear {linear}), mute {mute}; PipeWire says {now:?}"))
            }
        }
    }
}

fn start() -> anyhow::Result<Demo> {
    let names: Vec<&str> = DEVICES.iter().map(|(name, _)| *name).collect();
    narrate(&format!(
        "Starting a private PipeWire + WirePlumber with two stand-in output devices, {} ({} is the default)",
        names.join(" and "),
        names[0]
    ));
    let started = Instant::now();
    let bed = DEVICES
        .iter()
        .fold(TestBed::builder(), |builder, (name, priority)| builder.device_sink(name, *priority))
        .start()
        .context("starting the test bed")?;
    println!("    ready in {} ms, everything lives in {}", started.elapsed().as_millis(), bed.dir().display());
    if bed.hold_hook() {
        println!("    WirePlumber runs pipewire-volume-mixer's hook (as after `pvmctl setup wireplumber`)");
    }
    check_interrupt()?;

    let paths = bed.daemon_paths();
    narrate(&format!("Writing the channels and rules to {}", paths.config.display()));
    std::fs::write(&paths.config, CONFIG).with_context(|| format!("writing {}", paths.config.display()))?;
    for line in CONFIG.lines() {
        if line.is_empty() {
            println!();
        } else {
            println!("    {line}");
        }
    }

    narrate("Starting pipewire-volume-mixer-daemon");
    let daemon = bed.spawn_daemon(&[]).context("starting the daemon")?;
    println!("    pid {}, socket {}, shm {}", daemon.pid, daemon.socket.display(), daemon.shm.display());
    check_interrupt()?;

    narrate("Starting four applications");
    let specs = [
        AppSpec::new("Game Of Life").binary("game-of-life").role("Game"),
        AppSpec::new("Discord").binary("discord").role("Communication"),
        AppSpec::new("Music Player").binary("music-player").role("Music").streams(2),
        AppSpec::new("Firefox").binary("firefox"),
    ];
    let mut apps = Vec::new();
    for spec in &specs {
        apps.push(bed.spawn_app(spec).with_context(|| format!("starting {}", spec.name))?);
    }
    for app in &mut apps {
        let streams =
            app.wait_for_streams(SETTLE).with_context(|| format!("waiting for the streams of {}", app.spec().name))?;
        println!("    {:<14} pid {:<7} stream nodes {streams:?}", app.spec().name, app.pid());
    }
    Ok(Demo { bed, daemon, apps, failures: Vec::new() })
}

fn show(demo: &mut Demo) -> anyhow::Result<()> {
    narrate("The daemon made its channels in PipeWire and feeds them to their outputs");
    for channel in ["game", "chat", "music"] {
        demo.expect_output(channel, "headphones");
    }
    demo.pvmctl(&["channels"]);
    check_interrupt()?;

    narrate("It routes each application by the rules (Firefox matches none: the default device)");
    for (app, sink) in
        [("Game Of Life", "game"), ("Discord", "chat"), ("Music Player", "music"), ("Firefox", "headphones")]
    {
        demo.expect_route(app, sink);
    }
    check_interrupt()?;

    narrate("What the daemon publishes");
    demo.pvmctl(&["status"]);
    check_interrupt()?;

    narrate("Turning the game channel down to 50%");
    if demo.pvmctl(&["volume", "game", "50%"]) {
        demo.expect_sink("game", 0.5, false);
    }
    check_interrupt()?;

    narrate("Muting the chat channel");
    if demo.pvmctl(&["mute", "chat", "on"]) {
        demo.expect_sink("chat", 1.0, true);
    }
    check_interrupt()?;

    narrate("Moving Firefox to the music channel");
    if demo.pvmctl(&["route", "Firefox", "music"]) {
        demo.expect_route("Firefox", "music");
    }
    check_interrupt()?;

    narrate("Sending the music channel to the speakers (new links first, then the old ones go)");
    if demo.pvmctl(&["output", "music", "speakers"]) {
        demo.expect_output("music", "speakers");
    }
    check_interrupt()?;

    narrate("Making the speakers the default: chat (output = \"default\") follows, game stays on headphones");
    if demo.pvmctl(&["default", "speakers"]) {
        demo.expect_output("chat", "speakers");
        demo.expect_output("game", "headphones");
    }
    check_interrupt()?;

    narrate("The status after these changes");
    demo.pvmctl(&["status"]);
    Ok(())
}

/// Prints how to reach the demo from another shell and waits for Ctrl-C.
fn keep_running(demo: &mut Demo) -> anyhow::Result<()> {
    narrate("Running until Ctrl-C. To use it from another shell:");
    let runtime = demo.bed.runtime_dir();
    println!("    export XDG_RUNTIME_DIR={}", shell_quote(&runtime));
    for (name, value) in demo.daemon.paths().env() {
        println!("    export {name}={}", shell_quote(Path::new(&value)));
    }
    if let Ok(pvmctl) = testbed::workspace_binary("pvmctl", "PVM_PVMCTL_BIN") {
        if let Some(dir) = pvmctl.parent() {
            println!("    export PATH={}:\"$PATH\"", shell_quote(dir));
        }
    }
    println!("    pvmctl status; wpctl status");
    println!(
        "    pvm-mixer          # the terminal mixer: arrows select, ←/→ volume, m mute, Enter route, ? help, q quit"
    );
    while !interrupted() {
        if !demo.daemon.is_running() {
            let tail = demo.daemon.log_tail(20);
            demo.fail(format!("the daemon exited\n{tail}"));
            return Ok(());
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// `path` quoted for a POSIX shell.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = catch_interrupts() {
        eprintln!("pvm-demo: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = start().and_then(|mut demo| {
        show(&mut demo)?;
        if args.keep {
            keep_running(&mut demo)?;
        }
        narrate(&format!("Stopping the {} applications, the daemon and PipeWire", demo.apps.len()));
        let failures = std::mem::take(&mut demo.failures);
        drop(demo);
        Ok(failures)
    });
    match result {
        Ok(failures) if failures.is_empty() => {
            println!("\nDemo finished: every step worked.");
            ExitCode::SUCCESS
        }
        Ok(failures) => {
            eprintln!("\npvm-demo: {} step(s) failed:", failures.len());
            for failure in failures {
                eprintln!("  - {failure}");
            }
            ExitCode::FAILURE
        }
        Err(_) if interrupted() => {
            eprintln!("\npvm-demo: interrupted; everything it started has been stopped.");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("\npvm-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}
