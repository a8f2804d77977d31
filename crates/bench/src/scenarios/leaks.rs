//! Scenario 8: the daemon under valgrind memcheck through its whole
//! lifecycle (the long form of the test suite's `tests/memcheck.rs`, with
//! the same helper): apps, streams, sinks and links added and removed,
//! routing moves, config reloads, every request kind, WirePlumber and
//! PipeWire restarts, SIGTERM. Every memcheck error counts, and any fails
//! the scenario.

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use testbed::lifecycle::{run_under_memcheck, LifecyclePlan};
use testbed::memcheck::{memcheck_daemon_binary, valgrind_version, Memcheck};

use super::Config;
use crate::report::Report;

pub fn run(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section("8. Leaks: valgrind memcheck through the daemon's whole lifecycle and a clean shutdown");
    let valgrind = valgrind_version().context("valgrind is required (scripts/setup.sh installs it)")?;
    let binary = memcheck_daemon_binary()?;
    let plan = if cfg.quick { LifecyclePlan { rounds: 1, ..LifecyclePlan::short() } } else { LifecyclePlan::long() };
    let run = run_under_memcheck(&binary, &plan, &Memcheck::default())?;
    let outcome = &run.outcome;
    let memcheck = &outcome.report;
    report.value(
        "memcheck errors",
        format!("{} errors from {} contexts (suppressed: {})", memcheck.errors, memcheck.contexts, memcheck.suppressed),
        "any kind: invalid read/write, uninitialised value, invalid free, definite leak",
    );
    report.value("definitely lost", memcheck.definitely_lost.to_string(), "");
    report.value("indirectly lost", memcheck.indirectly_lost.to_string(), "");
    report.value(
        "possibly lost",
        memcheck.possibly_lost.to_string(),
        "not an error: interior pointers (48 bytes is std's handle of the main thread)",
    );
    report.value("lifecycle", run.counts.to_string(), "");
    report.value(
        "run",
        format!("{:.0} s", run.elapsed.as_secs_f64()),
        &format!("{valgrind}, --track-origins=yes; {}; valgrind {}", short_path(&binary), outcome.exit),
    );
    if let Some(problems) = outcome.problems() {
        eprintln!("{problems}");
        bail!("memcheck found errors: {memcheck}");
    }
    Ok(())
}

/// `target/release/<binary>`: the last three components of `path`.
fn short_path(path: &Path) -> String {
    let parts: Vec<_> = path.iter().map(|p| p.to_string_lossy()).collect();
    parts[parts.len().saturating_sub(3)..].join("/")
}
