//! Scenario 1: event-to-snapshot latency, measured from outside the daemon,
//! beside the floor (when PipeWire delivers the same change to a bare client).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use pvm_ipc::layout::Snapshot;
use testbed::AppSpec;

use super::{has_app, sleep_until, wait_snapshot, Config, Rig, TIMEOUT};
use crate::measure::{metric, Summary};
use crate::report::Report;

pub fn run(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section("1. Event-to-snapshot latency (from outside the daemon)");
    let rig = Rig::start(false, None)?;
    volume_events(report, cfg, &rig)?;
    stream_events(report, cfg, &rig)?;
    // The stats file is rewritten at most once a second.
    std::thread::sleep(Duration::from_millis(1500));
    let stats = &rig.daemon.stats;
    let p50 = metric(stats, "pvm_event_to_snapshot_p50_seconds").unwrap_or(f64::NAN) * 1e3;
    let p99 = metric(stats, "pvm_event_to_snapshot_p99_seconds").unwrap_or(f64::NAN) * 1e3;
    report.value(
        "daemon's own histogram: event callback to publish, p50 / p99",
        format!("{} / {} ms", crate::report::num(p50), crate::report::num(p99)),
        "bucket upper bounds, from the stats file",
    );
    Ok(())
}

/// Sink volume changes at 1000/s: send, floor arrival, snapshot visible.
fn volume_events(report: &mut Report, cfg: &Config, rig: &Rig) -> Result<()> {
    let count = cfg.pick(10_000, 300);
    let game = rig.sink_id("game")?;
    let mut snap = Snapshot::new_boxed();
    let period = Duration::from_millis(1);
    let mut visible = Vec::with_capacity(count);
    let mut requests = Vec::with_capacity(count);
    let mut targets = Vec::with_capacity(count);
    let start = Instant::now();
    for i in 0..count {
        sleep_until(start + period * i as u32);
        let cubic = 0.2 + (i % 600) as f32 * 0.001;
        let linear = cubic * cubic * cubic;
        requests.push(crate::probe::set_volume(&rig.probe, game, linear)?);
        targets.push(linear);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let generation = rig.reader.read_into(&mut snap)?;
            let shown = snap.sinks().iter().find(|s| s.id == game).map(|s| s.volume);
            if shown.is_some_and(|v| (v - cubic).abs() < 1e-4) {
                visible.push(Instant::now());
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("volume change {i} never showed in the snapshot");
            }
            rig.reader.wait_for_change(generation, Some(left))?;
        }
    }
    let elapsed = start.elapsed();
    rig.probe.sync()?;
    let (mut daemon, mut floor, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    rig.probe.with(|r| {
        let mut from = 0;
        for (i, &req) in requests.iter().enumerate() {
            let Some(&sent) = r.sent.get(req) else { continue };
            daemon.push(visible[i].saturating_duration_since(sent));
            // The floor: the first Props of `game` with this value after the send.
            if let Some(k) = r.volumes[from..]
                .iter()
                .position(|v| v.node == game && v.at >= sent && (v.linear - targets[i]).abs() < 1e-6)
            {
                let seen = r.volumes[from + k].at;
                from += k;
                floor.push(seen.saturating_duration_since(sent));
                diff.push(signed_ms(visible[i], seen));
            }
        }
    });
    let rate = count as f64 / elapsed.as_secs_f64();
    let note = format!("{count} events at {rate:.0}/s");
    report.dist("volume change: sent -> visible in the snapshot (daemon)", "ms", Summary::of_ms(&daemon), &note);
    report.dist("volume change: sent -> delivered to a bare client (floor)", "ms", Summary::of_ms(&floor), &note);
    report.dist("volume change: daemon minus floor", "ms", Summary::of(&diff), "the daemon's own share");
    rig.probe.clear_volumes();
    Ok(())
}

/// Streams appearing and disappearing: floor arrival vs snapshot visible.
fn stream_events(report: &mut Report, cfg: &Config, rig: &Rig) -> Result<()> {
    let count = cfg.pick(100, 5);
    let (mut appear, mut disappear) = (Vec::new(), Vec::new());
    for i in 0..count {
        let name = format!("Appear {i}");
        let mut app = rig.bed.spawn_app(&AppSpec::new(&name))?;
        let shown = wait_snapshot(&rig.reader, &name, |s| has_app(s, &name))?;
        let appeared = rig.probe.wait_for(TIMEOUT, &name, |r| r.streams_of(&name).first().map(|s| s.appeared))?;
        appear.push(signed_ms(shown, appeared));
        // Waits for the removal on another thread: `stop` returns only once the
        // process is reaped, well after its stream is gone.
        let gone = std::thread::scope(|scope| {
            let waiter = scope.spawn(|| wait_snapshot(&rig.reader, &name, |s| !has_app(s, &name)));
            app.stop();
            waiter.join().unwrap_or_else(|_| bail!("the snapshot waiter panicked"))
        })?;
        let removed = rig.probe.wait_for(TIMEOUT, "the stream removed", |r| {
            let streams = r.streams_of(&name);
            if streams.iter().all(|s| s.removed.is_some()) {
                streams.first().and_then(|s| s.removed)
            } else {
                None
            }
        })?;
        disappear.push(signed_ms(gone, removed));
    }
    let note = format!("{count} fake apps");
    report.dist("stream appears: delivered to a bare client -> in the snapshot", "ms", Summary::of(&appear), &note);
    report.dist(
        "stream disappears: delivered to a bare client -> gone from the snapshot",
        "ms",
        Summary::of(&disappear),
        &note,
    );
    Ok(())
}

/// `a - b` in milliseconds, negative when `a` came first.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    match a.checked_duration_since(b) {
        Some(d) => d.as_secs_f64() * 1e3,
        None => -(b.duration_since(a).as_secs_f64() * 1e3),
    }
}
