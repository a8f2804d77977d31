//! Scenario 10: `pvm-mixer`, the terminal mixer, in a pseudo-terminal: a key
//! press to the changed value on its screen (the request goes through the
//! daemon to PipeWire, and the new value comes back through the snapshot),
//! its CPU and wake-ups while nothing changes, and its memory beside
//! `pvmctl watch`, the other reader of the snapshot that stays running.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use testbed::{AppSpec, Tui, TuiScreen};

use super::{wait_snapshot, Config, Rig, TIMEOUT};
use crate::measure::{context_switches, status_kb, CpuMark, Summary};
use crate::report::{num, Report};

/// The mixer's terminal.
const COLS: u16 = 100;
const ROWS: u16 = 30;

/// The screen row of the sink described `description` (it also shows the
/// sink's `node.name`, so the status line never matches).
fn sink_row(screen: &TuiScreen, description: &str) -> Option<String> {
    let name = description.to_lowercase();
    let (_, cols) = screen.screen.size();
    screen.screen.rows(0, cols).find(|r| r.contains(&format!(" {description} ")) && r.contains(&format!(" {name} ")))
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn run(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section("11. pvm-mixer: key press to screen, idle, memory");
    let rig = Rig::start(false, None)?;
    let _apps = rig.bed.spawn_app(&AppSpec::new("Mixer App").distinct(10))?;
    wait_snapshot(&rig.reader, "10 apps", |s| s.apps().len() >= 10)?;
    let binary = testbed::workspace_binary("pvm-mixer", "PVM_MIXER_BIN")?;
    let (shm, socket) = (rig.daemon.shm.display().to_string(), rig.daemon.socket.display().to_string());
    let mut mixer = rig.bed.spawn_tui(&binary, &["--shm", &shm, "--socket", &socket], &[], COLS, ROWS)?;
    mixer.wait_for(TIMEOUT, "the sinks and apps", |s| {
        let text = s.text();
        text.contains("daemon: running") && text.contains("Mixer App 10") && sink_row(s, "Game").is_some()
    })?;
    let pid = mixer.pid();

    key_to_screen(report, cfg, &rig, &mut mixer)?;
    idle(report, cfg, &rig, &mixer, pid)?;
    drop(mixer);
    wiremix(report, cfg, &rig)
}

/// wiremix, if a binary was given: the same bed, terminal and minute.
fn wiremix(report: &mut Report, cfg: &Config, rig: &Rig) -> Result<()> {
    let Some(binary) = &cfg.wiremix else {
        report.value("wiremix RSS", "not measured".into(), "give a wiremix binary with --wiremix or PVM_WIREMIX_BIN");
        return Ok(());
    };
    let wiremix = rig.bed.spawn_tui(binary, &[], &[], COLS, ROWS)?;
    wiremix
        .wait_for(TIMEOUT, "wiremix showing the apps", |s| s.text().contains("Mixer App"))
        .context("wiremix did not show the bed's apps")?;
    let pid = wiremix.pid();
    std::thread::sleep(Duration::from_secs(2));
    let duration = Duration::from_secs(cfg.pick(60, 3));
    let bytes = wiremix.bytes_written();
    let mark = CpuMark::now(pid);
    std::thread::sleep(duration);
    let (cpu, switches) = mark.since(pid);
    let drawn = wiremix.bytes_written() - bytes;
    let seconds = duration.as_secs();
    report.value("wiremix CPU idle", format!("{} % of one core", num(cpu)), &format!("{seconds} s, the same bed"));
    report.value(
        "wiremix wake-ups idle (context switches, all threads)",
        switches.to_string(),
        &format!("{seconds} s"),
    );
    report.value("wiremix bytes written to the terminal idle", drawn.to_string(), "");
    report.value("wiremix RSS", mib(status_kb(pid, "VmRSS").unwrap_or(0)), &format!("VmRSS; {}", binary.display()));
    Ok(())
}

/// Left and Right on the sink `game`, alternately (100 % and 95 %): from the
/// key's bytes written to the terminal to the output that shows the new
/// percentage in the game row.
fn key_to_screen(report: &mut Report, cfg: &Config, rig: &Rig, mixer: &mut Tui) -> Result<()> {
    let snapshot = rig.reader.read()?;
    let Some(row) = snapshot.sinks().iter().position(|s| s.name() == "game") else { bail!("no game sink") };
    mixer.send(b"g")?;
    for _ in 0..row {
        mixer.send(b"\x1b[B")?;
    }
    mixer.wait_for(TIMEOUT, "the game row selected", |s| sink_row(s, "Game").is_some_and(|r| r.contains('▶')))?;
    let presses = cfg.pick(200, 20);
    let mut samples = Vec::with_capacity(presses);
    for i in 0..presses {
        let (key, expected): (&[u8], &str) = if i % 2 == 0 { (b"\x1b[D", " 95%") } else { (b"\x1b[C", " 100%") };
        let sent = Instant::now();
        mixer.send(key)?;
        let screen = mixer.wait_for(TIMEOUT, &format!("game at{expected}"), |s| {
            sink_row(s, "Game").is_some_and(|r| r.contains(expected))
        })?;
        samples.push(screen.at.saturating_duration_since(sent));
        // Let the daemon's answer reach the status line before the next key.
        let answered = format!("game: volume{expected}: done");
        mixer.wait_for(TIMEOUT, "the answer", |s| s.text().contains(&answered))?;
    }
    let linear = rig.bed.node_volume("game")?.0;
    let expected = if presses % 2 == 0 { 1.0 } else { 0.857_375 };
    if linear.iter().any(|v| (v - expected).abs() > 1e-4) {
        bail!("PipeWire shows game at {linear:?}, not {expected} after the key presses");
    }
    report.dist(
        "key press -> new value on the mixer's screen",
        "ms",
        Summary::of_ms(&samples),
        "←/→ on the game sink in a 100x30 pseudo-terminal; through the daemon, PipeWire and the snapshot",
    );
    Ok(())
}

/// Nothing changes for a minute: CPU time, context switches of all of the
/// mixer's threads, and bytes it writes to the terminal; then its RSS,
/// beside a `pvmctl watch` measured over the same minute.
fn idle(report: &mut Report, cfg: &Config, rig: &Rig, mixer: &Tui, pid: u32) -> Result<()> {
    let mut watch = rig
        .bed
        .pvmctl_command(&rig.daemon, &["watch"])?
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting pvmctl watch")?;
    let watch_pid = watch.id();
    // Let the last answer, the status line and the stats file settle.
    std::thread::sleep(Duration::from_secs(2));
    let duration = Duration::from_secs(cfg.pick(60, 3));
    let bytes = mixer.bytes_written();
    let watch_switches = context_switches(watch_pid);
    let mark = CpuMark::now(pid);
    std::thread::sleep(duration);
    let (cpu, switches) = mark.since(pid);
    let watch_switches = context_switches(watch_pid).saturating_sub(watch_switches);
    let drawn = mixer.bytes_written() - bytes;
    let seconds = duration.as_secs();
    report.value(
        "pvm-mixer CPU idle",
        format!("{} % of one core", num(cpu)),
        &format!("{seconds} s, 10 apps playing; /proc counts CPU in 10 ms ticks"),
    );
    report.value(
        "pvm-mixer wake-ups idle (context switches, all threads)",
        switches.to_string(),
        &format!("{seconds} s; voluntary + nonvoluntary of every task in /proc/PID/task"),
    );
    report.value("pvm-mixer bytes written to the terminal idle", drawn.to_string(), "it redraws only on a change");
    report.value(
        "pvmctl watch wake-ups idle (context switches, all threads)",
        watch_switches.to_string(),
        &format!("{seconds} s, the same minute"),
    );
    let rss = status_kb(pid, "VmRSS").unwrap_or(0);
    let watch_rss = status_kb(watch_pid, "VmRSS").unwrap_or(0);
    let _ = watch.kill();
    let _ = watch.wait();
    report.value("pvm-mixer RSS", mib(rss), "VmRSS, 4 sinks and 10 apps on screen");
    report.value("pvmctl watch RSS", mib(watch_rss), "VmRSS, the same snapshot");
    Ok(())
}
