//! The daemon under valgrind's memcheck through its whole lifecycle (the
//! short form of the benchmark's leak scenario): streams, sinks and links
//! added and removed, routing moves, config reloads, every request kind,
//! WirePlumber and PipeWire restarts, and SIGTERM. Any memcheck error fails
//! it: invalid reads and writes, uninitialised values, invalid frees, and
//! definitely lost blocks. `testbed::lifecycle` lists what is covered and the
//! one thing that cannot be here (a sound card's `Route` change).
//!
//! It checks the dev build in `target/debug` (built by
//! `cargo build --workspace --bins`, which `scripts/test.sh` runs first), or
//! the binary named by `PVM_MEMCHECK_DAEMON`, e.g. an older commit's build:
//!
//! ```sh
//! PVM_MEMCHECK_DAEMON=/tmp/old/target/debug/pipewire-volume-mixer-daemon \
//!     cargo test -p pipewire-volume-mixer-daemon --test memcheck -- --nocapture
//! ```
//!
//! valgrind is required (`scripts/setup.sh` installs it): without it the test
//! fails rather than skips.

use testbed::lifecycle::{run_under_memcheck, LifecyclePlan};
use testbed::memcheck::{memcheck_daemon_binary, valgrind_version, Memcheck};

#[test]
fn no_memcheck_error_through_the_whole_lifecycle() {
    let valgrind = valgrind_version().unwrap_or_else(|e| panic!("valgrind is required: {e}"));
    let binary = memcheck_daemon_binary().unwrap();
    let run = run_under_memcheck(&binary, &LifecyclePlan::short(), &Memcheck::default())
        .unwrap_or_else(|e| panic!("{} under {valgrind}: {e}", binary.display()));
    let report = &run.outcome.report;
    println!("{} under {valgrind}", binary.display());
    println!("lifecycle: {}", run.counts);
    println!("memcheck: {report}; valgrind {}; {:.0?}", run.outcome.exit, run.elapsed);

    let problems = run.outcome.problems().unwrap_or_default();
    assert_eq!(report.errors, 0, "memcheck errors of any kind\n{problems}");
    assert_eq!(report.definitely_lost.bytes, 0, "definitely lost\n{problems}");
    assert!(run.outcome.exit.success(), "{problems}");
    // The run did go through the lifecycle it claims.
    assert!(run.counts.streams >= 10 && run.counts.routing_moves >= 10, "{}", run.counts);
    assert_eq!((run.counts.wireplumber_restarts, run.counts.pipewire_restarts), (1, 1), "{}", run.counts);
    assert!(run.counts.channels >= 2, "channels made and removed in every round: {}", run.counts);
    assert!(run.counts.metadata_replays >= 1, "held-back metadata events replayed: {}", run.counts);
}
