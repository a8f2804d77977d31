//! `bench`: pipewire-volume-mixer's performance figures, measured on a
//! private, headless PipeWire + WirePlumber beside wpctl, pactl and
//! WirePlumber, written to `bench/RESULTS.md`.
//!
//! Run it through `scripts/bench.sh` (release builds of every binary, plus a
//! daemon with a counting allocator), or by hand:
//! `cargo build --release --workspace --bins && cargo run -p bench --release -- all`.

mod measure;
mod probe;
mod report;
mod scenarios;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use report::Report;
use scenarios::Config;

/// One scenario of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Every scenario below, in order.
    All,
    /// 1. Event-to-snapshot latency from outside, beside the floor.
    Latency,
    /// 2. 100 apps and 1000 events/s: CPU, RSS, coalescing, allocations.
    Load,
    /// 3. 10 apps, nothing changing: CPU and wake-ups.
    Idle,
    /// 4 and 6. Start-up to ready, beside a bare client's connect + sync.
    Startup,
    /// 5. ROUTE between 4 sinks 100 times a second.
    Switching,
    /// 7. Side by side with wpctl, pactl and WirePlumber.
    Compare,
    /// 8. valgrind memcheck through the daemon's whole lifecycle.
    Leaks,
    /// 9. New streams of rule-matched apps: misroutes with and without the hold, first-link times.
    Routing,
    /// 10. Channels: CPU idle and playing beside playing straight to the device, added latency, device changes.
    Channels,
    /// 11. pvm-mixer in a pseudo-terminal: key press to screen, idle wake-ups, RSS.
    Mixer,
    /// 12. The same new streams on each PipeWire + WirePlumber stack (`--stacks`).
    RoutingStacks,
}

const ORDER: [Scenario; 11] = [
    Scenario::Latency,
    Scenario::Load,
    Scenario::Idle,
    Scenario::Startup,
    Scenario::Switching,
    Scenario::Compare,
    Scenario::Leaks,
    Scenario::Routing,
    Scenario::Channels,
    Scenario::Mixer,
    Scenario::RoutingStacks,
];

/// Measures pipewire-volume-mixer on a private PipeWire and writes bench/RESULTS.md.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
struct Args {
    /// Scenarios to run.
    #[arg(value_enum, default_values_t = [Scenario::All])]
    scenarios: Vec<Scenario>,
    /// Shortened scenarios (seconds instead of minutes), for a smoke test.
    #[arg(long)]
    quick: bool,
    /// Where to write the results.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/RESULTS.md"))]
    out: PathBuf,
    /// A daemon built with `--features count-alloc`, for allocations per event.
    #[arg(long, env = "PVM_COUNT_ALLOC_DAEMON")]
    count_alloc_daemon: Option<PathBuf>,
    /// New streams per configuration in the routing scenario (default 1000,
    /// 40 with --quick).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    new_streams: Option<u64>,
    /// A wiremix binary (the PipeWire terminal mixer), measured beside
    /// pvm-mixer in the mixer scenario; skipped without it.
    #[arg(long, env = "PVM_WIREMIX_BIN", value_name = "PATH")]
    wiremix: Option<PathBuf>,
    /// The stacks of the routing-stacks scenario, comma-separated
    /// (pw14-wp05, pw14-wp04, pw03-wp04; the older ones from Debian 12's
    /// packages in a private prefix).
    #[arg(long, value_delimiter = ',', default_value = "pw14-wp05,pw14-wp04,pw03-wp04")]
    stacks: Vec<testbed::Stack>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Absolute: the test bed runs its processes in its own directory.
    let count_alloc_daemon = args.count_alloc_daemon.as_ref().map(|p| std::fs::canonicalize(p).unwrap_or(p.clone()));
    let new_streams = args.new_streams.map(|n| n as usize);
    let wiremix = args.wiremix.as_ref().map(|p| std::fs::canonicalize(p).unwrap_or(p.clone()));
    let config = Config { quick: args.quick, count_alloc_daemon, new_streams, wiremix, stacks: args.stacks };
    let wanted: Vec<Scenario> = if args.scenarios.contains(&Scenario::All) {
        ORDER.to_vec()
    } else {
        ORDER.iter().copied().filter(|s| args.scenarios.contains(s)).collect()
    };
    let mut report = Report::new(args.quick);
    let mut failed = Vec::new();
    for scenario in wanted {
        let result = match scenario {
            Scenario::Latency => scenarios::latency::run(&mut report, &config),
            Scenario::Load => scenarios::load::run_load(&mut report, &config),
            Scenario::Idle => scenarios::load::run_idle(&mut report, &config),
            Scenario::Startup => scenarios::startup::run(&mut report, &config),
            Scenario::Switching => scenarios::switching::run(&mut report, &config),
            Scenario::Compare => scenarios::compare::run(&mut report, &config),
            Scenario::Leaks => scenarios::leaks::run(&mut report, &config),
            Scenario::Routing => scenarios::routing::run(&mut report, &config),
            Scenario::Channels => scenarios::channels::run(&mut report, &config),
            Scenario::Mixer => scenarios::mixer::run(&mut report, &config),
            Scenario::RoutingStacks => scenarios::routing::run_stacks(&mut report, &config),
            Scenario::All => Ok(()),
        };
        if let Err(e) = result {
            eprintln!("bench: {scenario:?} failed: {e:#}");
            report.value(&format!("{scenario:?} FAILED"), format!("{e:#}"), "");
            failed.push(scenario);
        }
    }
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let markdown = report.markdown(&format!("bench {command}"));
    if let Some(dir) = args.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&args.out, markdown) {
        Ok(()) => println!("\nwrote {}", args.out.display()),
        Err(e) => {
            eprintln!("bench: cannot write {}: {e}", args.out.display());
            return ExitCode::FAILURE;
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("bench: failed scenarios: {failed:?}");
        ExitCode::FAILURE
    }
}
