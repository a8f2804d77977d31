//! Scenario 7: side by side with the tools a user would pick instead, in
//! the same run, as ratios.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use pvm_ipc::client::Client;
use pvm_ipc::layout::Snapshot;
use pvm_ipc::protocol::{Request, Response};
use testbed::AppSpec;

use super::{Config, Rig, GAME_RULE, TIMEOUT};
use crate::measure::{status_kb, Summary};
use crate::report::Report;

pub fn run(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section("7. Side by side (same run; ratio = other tool / ours, > 1 means ours is faster or smaller)");
    let rig = Rig::start(true, Some(GAME_RULE))?;
    set_volume(report, cfg, &rig)?;
    status(report, cfg, &rig)?;
    in_process(report, cfg, &rig)?;
    auto_route(report, cfg, &rig)?;
    let pids = rig.bed.pids();
    let ours = status_kb(rig.daemon.pid(), "VmRSS").unwrap_or(0) as f64 / 1048576.0;
    let wireplumber = status_kb(pids[2], "VmRSS").unwrap_or(0) as f64 / 1048576.0;
    let pipewire = status_kb(pids[1], "VmRSS").unwrap_or(0) as f64 / 1048576.0;
    report.versus("RSS: daemon vs WirePlumber", ours, wireplumber, "MiB");
    report.versus("RSS: daemon vs the PipeWire server", ours, pipewire, "MiB");
    Ok(())
}

/// Runs `command` to completion and returns how long it took.
fn timed(mut command: std::process::Command) -> Result<(Duration, Instant)> {
    command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let start = Instant::now();
    let status = command.status()?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok((start.elapsed(), start))
}

/// `pvmctl volume` vs `wpctl set-volume`: whole process, from exec until the
/// value is visible in PipeWire (delivered to the probe).
fn set_volume(report: &mut Report, cfg: &Config, rig: &Rig) -> Result<()> {
    let runs = cfg.pick(30, 3);
    let game = rig.sink_id("game")?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..runs {
        for tool in 0..2 {
            let cubic = 0.3 + (2 * i + tool) as f32 * 0.005;
            let value = format!("{cubic:.3}");
            let command = if tool == 0 {
                rig.bed.pvmctl_command(&rig.daemon, &["volume", "game", &value])?
            } else {
                let mut c = rig.bed.command("wpctl");
                c.args(["set-volume", &game.to_string(), &value]);
                c
            };
            let start = Instant::now();
            timed(command)?;
            let linear = cubic * cubic * cubic;
            let at = rig.probe.wait_for(TIMEOUT, "the volume in PipeWire", |r| {
                r.volumes
                    .iter()
                    .find(|v| v.node == game && v.at >= start && (v.linear - linear).abs() < 1e-4)
                    .map(|v| v.at)
            })?;
            let took = at.duration_since(start);
            if tool == 0 {
                ours.push(took)
            } else {
                theirs.push(took)
            }
        }
    }
    versus_medians(
        report,
        "set a sink volume: `pvmctl volume` vs `wpctl set-volume` (exec -> in PipeWire)",
        &ours,
        &theirs,
    );
    Ok(())
}

/// `pvmctl status` (shm) vs `wpctl status` vs `pactl list sink-inputs`.
fn status(report: &mut Report, cfg: &Config, rig: &Rig) -> Result<()> {
    let runs = cfg.pick(30, 3);
    let (mut ours, mut wpctl, mut pactl) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(timed(rig.bed.pvmctl_command(&rig.daemon, &["status"])?)?.0);
        let mut c = rig.bed.command("wpctl");
        c.arg("status");
        wpctl.push(timed(c)?.0);
        let mut c = rig.bed.command("pactl");
        c.args(["list", "sink-inputs"]);
        pactl.push(timed(c)?.0);
    }
    versus_medians(report, "status: `pvmctl status` vs `wpctl status` (whole process)", &ours, &wpctl);
    versus_medians(report, "status: `pvmctl status` vs `pactl list sink-inputs` (whole process)", &ours, &pactl);
    Ok(())
}

/// Reading the snapshot in-process vs a STATUS round trip over the socket.
fn in_process(report: &mut Report, cfg: &Config, rig: &Rig) -> Result<()> {
    let mut snap = Snapshot::new_boxed();
    let reads = cfg.pick(100_000, 1_000);
    let mut read = Vec::with_capacity(reads);
    for _ in 0..reads {
        let start = Instant::now();
        rig.reader.read_into(&mut snap)?;
        read.push(start.elapsed());
    }
    let trips = cfg.pick(5_000, 200);
    let mut client = Client::connect(&rig.daemon.socket)?;
    let mut status = Vec::with_capacity(trips);
    for _ in 0..trips {
        let start = Instant::now();
        match client.request(&Request::Status)? {
            Response::Ok(_) => status.push(start.elapsed()),
            Response::Error(e) => bail!("STATUS: {e}"),
        }
    }
    let us = |d: &[Duration]| Summary::of(&d.iter().map(|d| d.as_secs_f64() * 1e6).collect::<Vec<_>>());
    report.dist("snapshot read in-process (consistent copy)", "µs", us(&read), &format!("{reads} reads"));
    report.dist("STATUS round trip over the socket", "µs", us(&status), &format!("{trips} requests"));
    if let (Some(a), Some(b)) = (us(&read), us(&status)) {
        report.versus("state for a client: shm read vs socket STATUS (medians)", a.median, b.median, "µs");
    }
    Ok(())
}

/// A stream appears: linked to its rule's sink (daemon pin + WirePlumber) vs
/// WirePlumber linking an unrouted stream to the default sink.
fn auto_route(report: &mut Report, cfg: &Config, rig: &Rig) -> Result<()> {
    let runs = cfg.pick(30, 3);
    let (game, speakers) = (rig.sink_id("game")?, rig.sink_id("speakers")?);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..runs {
        for (prefix, sink, out) in [("Game React", game, &mut ours), ("Plain React", speakers, &mut theirs)] {
            let name = format!("{prefix} {i}");
            let mut app = rig.bed.spawn_app(&AppSpec::new(&name))?;
            let took = rig.probe.wait_for(TIMEOUT, &name, |r| {
                let stream = r.streams_of(&name).into_iter().next()?;
                let link = r.first_link_after(stream.node, sink, stream.appeared)?;
                Some(link.appeared.duration_since(stream.appeared))
            })?;
            out.push(took);
            app.stop();
        }
    }
    versus_medians(
        report,
        "stream appears -> linked: to its rule's sink (ours) vs WirePlumber to the default (unrouted)",
        &ours,
        &theirs,
    );
    Ok(())
}

fn versus_medians(report: &mut Report, figure: &str, ours: &[Duration], theirs: &[Duration]) {
    let (a, b) = (Summary::of_ms(ours), Summary::of_ms(theirs));
    report.dist(&format!("{figure} - ours"), "ms", a, "");
    report.dist(&format!("{figure} - other"), "ms", b, "");
    if let (Some(a), Some(b)) = (a, b) {
        report.versus(&format!("{figure} (medians)"), a.median, b.median, "ms");
    }
}
