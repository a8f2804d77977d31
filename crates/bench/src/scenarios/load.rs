//! Scenarios 2 and 3: the daemon under load (100 apps, 1000 events/s) and
//! idle (10 apps, nothing changing).

use std::time::{Duration, Instant};

use anyhow::Result;
use testbed::AppSpec;

use super::{sleep_until, wait_snapshot, Config, Rig};
use crate::measure::{metric, metric_sum, status_kb, CpuMark};
use crate::report::{num, Report};

/// The stats file is rewritten at most once a second.
const STATS_SETTLE: Duration = Duration::from_millis(1300);

/// Sends volume changes at `rate`/s for `duration`, round robin over `sinks`.
fn storm(rig: &Rig, sinks: &[u32], rate: u32, duration: Duration) -> Result<u64> {
    let period = Duration::from_secs(1) / rate;
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        sleep_until(start + period * sent as u32);
        let cubic = 0.2 + (sent % 600) as f32 * 0.001;
        crate::probe::set_volume(&rig.probe, sinks[sent as usize % sinks.len()], cubic * cubic * cubic)?;
        sent += 1;
    }
    Ok(sent)
}

pub fn run_load(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section("2. Load: 100 apps playing, 1000 events/s");
    let rig = Rig::start(false, None)?;
    let _apps = rig.bed.spawn_app(&AppSpec::new("Load").distinct(100))?;
    wait_snapshot(&rig.reader, "100 apps", |s| s.apps().len() >= 100)?;
    std::thread::sleep(STATS_SETTLE);
    let sinks = [rig.sink_id("game")?, rig.sink_id("chat")?, rig.sink_id("music")?];
    let pid = rig.daemon.pid();
    let stats = &rig.daemon.stats;
    let (events0, publishes0) = (metric_sum(stats, "pvm_events_total"), metric_sum(stats, "pvm_publishes_total"));
    let duration = Duration::from_secs(cfg.pick(60, 3));
    let mark = CpuMark::now(pid);
    let tid = rig.probe.with(|r| r.thread_id);
    let probe_cpu0 = crate::measure::thread_cpu_time(tid);
    let sent = storm(&rig, &sinks, 1000, duration)?;
    let (cpu, _) = mark.since(pid);
    let probe_cpu = (crate::measure::thread_cpu_time(tid) - probe_cpu0).as_secs_f64() / duration.as_secs_f64() * 100.0;
    let rss = status_kb(pid, "VmRSS").unwrap_or(0);
    let peak = status_kb(pid, "VmHWM").unwrap_or(0);
    std::thread::sleep(STATS_SETTLE);
    let events = metric_sum(stats, "pvm_events_total") - events0;
    let publishes = metric_sum(stats, "pvm_publishes_total") - publishes0;
    let note = format!("{sent} volume changes in {} s, 100 apps", duration.as_secs());
    report.value("daemon CPU under load", format!("{} % of one core", num(cpu)), &note);
    report.value(
        "floor: CPU of a bare client receiving the same events",
        format!("{} % of one core", num(probe_cpu)),
        "the benchmark's own PipeWire thread (it also sends them)",
    );
    report.value(
        "daemon RSS under load (current / peak)",
        format!("{} / {} MiB", mib(rss), mib(peak)),
        "VmRSS / VmHWM",
    );
    report.value("events processed / snapshots published", format!("{events:.0} / {publishes:.0}"), "");
    report.value(
        "coalescing: events per publish",
        if publishes > 0.0 { num(events / publishes) } else { "-".into() },
        "events applied in one pass share one publish",
    );
    drop(rig);
    allocations(report, cfg)
}

/// Heap allocations per event in steady state, with a daemon built with
/// `--features count-alloc`.
fn allocations(report: &mut Report, cfg: &Config) -> Result<()> {
    let Some(binary) = &cfg.count_alloc_daemon else {
        report.value("heap allocations per event (steady state)", "not measured".into(), "needs --count-alloc-daemon");
        return Ok(());
    };
    let bed = testbed::TestBed::builder().sinks(&super::SINKS).start()?;
    let daemon = bed.spawn_daemon_from(binary, &[])?;
    let reader = pvm_ipc::reader::SnapshotReader::open(&daemon.shm)?;
    let probe = crate::probe::start(&bed.pipewire_socket())?;
    let rig = Rig { probe, reader, daemon, bed };
    let _apps = rig.bed.spawn_app(&AppSpec::new("Alloc").distinct(10))?;
    wait_snapshot(&rig.reader, "10 apps", |s| s.apps().len() >= 10)?;
    let sinks = [rig.sink_id("game")?, rig.sink_id("chat")?, rig.sink_id("music")?];
    // Warm up: intern tables, buffers and histograms reach their size.
    storm(&rig, &sinks, 1000, Duration::from_secs(1))?;
    std::thread::sleep(STATS_SETTLE);
    let stats = &rig.daemon.stats;
    let read = || (metric(stats, "pvm_heap_allocations_total").unwrap_or(0.0), metric_sum(stats, "pvm_events_total"));
    let (allocs0, events0) = read();
    let sent = storm(&rig, &sinks, 1000, Duration::from_secs(cfg.pick(10, 2)))?;
    std::thread::sleep(STATS_SETTLE);
    let (allocs1, events1) = read();
    let events = events1 - events0;
    // The stats file's own rendering allocates; it is part of the figure.
    report.value(
        "heap allocations per event (steady state)",
        if events > 0.0 { num((allocs1 - allocs0) / events) } else { "-".into() },
        &format!("{:.0} allocations over {events:.0} events ({sent} volume changes)", allocs1 - allocs0),
    );
    Ok(())
}

pub fn run_idle(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section("3. Idle: 10 apps playing, nothing changing");
    let rig = Rig::start(false, None)?;
    let _apps = rig.bed.spawn_app(&AppSpec::new("Idle").distinct(10))?;
    wait_snapshot(&rig.reader, "10 apps", |s| s.apps().len() >= 10)?;
    // Let the last stats write and PipeWire's own settling pass.
    std::thread::sleep(Duration::from_secs(2));
    let pid = rig.daemon.pid();
    let stats_mtime = || std::fs::metadata(&rig.daemon.stats).and_then(|m| m.modified()).ok();
    let before = stats_mtime();
    let duration = Duration::from_secs(cfg.pick(60, 2));
    let mark = CpuMark::now(pid);
    std::thread::sleep(duration);
    let (cpu, switches) = mark.since(pid);
    let note = format!("{} s; /proc counts CPU in 10 ms ticks, so 0 means under 1 tick", duration.as_secs());
    report.value("daemon CPU idle", format!("{} % of one core", num(cpu)), &note);
    report.value(
        "daemon context switches idle (all threads)",
        switches.to_string(),
        &format!("{} s", duration.as_secs()),
    );
    report.value(
        "stats file rewritten while idle",
        if stats_mtime() == before { "no".into() } else { "yes".into() },
        "written only when something changed",
    );
    report.value("daemon RSS idle", format!("{} MiB", mib(status_kb(pid, "VmRSS").unwrap_or(0))), "VmRSS");
    Ok(())
}

/// Bytes as MiB with two decimals.
pub fn mib(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / (1024.0 * 1024.0))
}
