//! Scenario 9: exact routing. With the rule `Game*` -> `game`:
//!
//! - new streams of rule-matched apps, one at a time and in rounds of
//!   several processes started at once: how many are ever linked to a sink
//!   other than `game`, with the routing hold (WirePlumber 0.5 and the hook
//!   of `contrib/wireplumber/`), without the hook, and on WirePlumber 0.4.13
//!   (with and without the hook's files, which it ignores);
//! - the time from a stream's creation (its node global) to its first link:
//!   hold, no hold, and WirePlumber alone (no daemon) with and without the
//!   hook installed;
//! - WirePlumber remembering another target: an app routed to `chat` once,
//!   then unrouted; how many new starts are first linked elsewhere than
//!   `game`.
//!
//! A [`GraphWatcher`](testbed::GraphWatcher) records every link each
//! stream ever gets, straight from PipeWire's registry, so a link that lived
//! a few milliseconds counts.
//!
//! A stream started alone races the daemon's pin against WirePlumber's
//! linking; in a round of many, WirePlumber takes longer to reach each
//! stream and the pin usually wins, so both are counted.

mod rig;

use std::time::Duration;

use anyhow::Result;
use testbed::{Stack, StreamEvent, StreamHistory};

use super::{Config, SINKS};
use crate::measure::Summary;
use crate::report::{num, Report};
use rig::Rig;

/// The sink of the rule.
const RULE_SINK: &str = "game";
/// The sink WirePlumber picks when nobody says otherwise (the default).
const DEFAULT_SINK: &str = SINKS[0];
/// The sink WirePlumber is made to remember.
const REMEMBERED_SINK: &str = "chat";
/// The hook's time limit as shipped (and in the bed): a held stream with no
/// decision seen by then is linked as usual.
const HOLD_TIME_LIMIT: Duration = Duration::from_millis(200);
/// Processes started at once in each round of new streams, at most.
const APPS_PER_ROUND: usize = 10;
/// Streams each of those processes opens, at most.
const STREAMS_PER_APP: usize = 4;

/// How a bed is set up.
#[derive(Clone, Copy)]
struct Setup {
    /// Its name in the results.
    label: &'static str,
    /// The PipeWire + WirePlumber it runs.
    stack: Stack,
    /// The hook installed into the bed's WirePlumber.
    hook: bool,
    /// The daemon running, with the rule.
    daemon: bool,
}

const HOLD: Setup = Setup { label: "WP 0.5 + hook (hold)", stack: Stack::Pw14Wp05, hook: true, daemon: true };
const NO_HOLD: Setup = Setup { label: "WP 0.5, no hook", stack: Stack::Pw14Wp05, hook: false, daemon: true };
const WP04: Setup = Setup { label: "WP 0.4.13", stack: Stack::Pw14Wp04, hook: false, daemon: true };
const WP04_HOOK_FILES: Setup =
    Setup { label: "WP 0.4.13, hook files installed", stack: Stack::Pw14Wp04, hook: true, daemon: true };
const ALONE_HOOK: Setup =
    Setup { label: "WP 0.5 alone, hook installed", stack: Stack::Pw14Wp05, hook: true, daemon: false };
const ALONE: Setup = Setup { label: "WP 0.5 alone, no hook", stack: Stack::Pw14Wp05, hook: false, daemon: false };

impl Setup {
    /// Whether the hook runs: installed, on WirePlumber 0.5.
    fn holds(&self) -> bool {
        self.hook && self.stack.has_wireplumber_05()
    }
}

/// The setups with the daemon, side by side in the results.
const WITH_DAEMON: [Setup; 4] = [HOLD, NO_HOLD, WP04, WP04_HOOK_FILES];

/// The run's sizes.
struct Sizes {
    /// New streams in rounds, per setup.
    new_streams: usize,
    /// Streams started one at a time, per setup and kind.
    paced: usize,
    /// Starts after WirePlumber was made to remember `chat`.
    memory: usize,
}

/// New streams of one kind in one setup.
#[derive(Default)]
struct NewStreams {
    started: usize,
    /// Ever linked to another sink than the expected one.
    misrouted: usize,
    /// Creation -> first link of each.
    first_link: Vec<Duration>,
}

impl NewStreams {
    /// Counts `streams`, which should only ever have been linked to `sink`;
    /// the first few that were not are shown on stderr.
    fn add(&mut self, label: &str, streams: &[StreamHistory], sink: &str) {
        for stream in streams {
            self.started += 1;
            self.first_link.extend(first_link(stream));
            if stream.links().any(|linked| linked != sink) {
                self.misrouted += 1;
                if self.misrouted <= 3 {
                    eprintln!("{label}: {:?} linked elsewhere: {}", stream.app_name, stream.timeline().join(" | "));
                }
            }
        }
    }

    fn of(label: &str, streams: &[StreamHistory], sink: &str) -> NewStreams {
        let mut new = NewStreams::default();
        new.add(label, streams, sink);
        new
    }
}

/// What one setup with the daemon measured.
struct Measured {
    setup: Setup,
    hold_active: bool,
    /// Rule-matched streams started one at a time.
    paced: NewStreams,
    /// Unrouted streams started one at a time (the hold setup only).
    paced_unrouted: NewStreams,
    /// Rule-matched streams started in rounds of many at once.
    rounds: NewStreams,
    /// Starts after WirePlumber was made to remember `chat`, first linked elsewhere.
    memory_elsewhere: usize,
}

impl Measured {
    /// Misroutes among all the rule-matched new streams, per 1000.
    fn per_1000(&self) -> f64 {
        let (bad, all) = (self.paced.misrouted + self.rounds.misrouted, self.paced.started + self.rounds.started);
        bad as f64 * 1000.0 / all.max(1) as f64
    }
}

pub fn run(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section(
        "9. Routing: new streams of rule-matched apps (`Game*` -> game), every link recorded \
         (WP = WirePlumber; ratio = other / ours, below 1 means the hold is slower)",
    );
    let sizes = Sizes {
        new_streams: cfg.new_streams.unwrap_or(cfg.pick(1000, 40)),
        paced: cfg.pick(200, 10),
        memory: cfg.pick(20, 5),
    };
    let mut measured = Vec::new();
    for setup in WITH_DAEMON {
        measured.push(measure_with_daemon(setup, &sizes)?);
    }
    let mut alone = Vec::new();
    for setup in [ALONE_HOOK, ALONE] {
        let rig = Rig::start(setup)?;
        let streams = rig.paced("Plain Paced", DEFAULT_SINK, sizes.paced)?;
        alone.push((setup, NewStreams::of(setup.label, &streams, DEFAULT_SINK)));
    }
    write_results(report, &sizes, &measured, &alone);
    Ok(())
}

fn measure_with_daemon(setup: Setup, sizes: &Sizes) -> Result<Measured> {
    let rig = Rig::start(setup)?;
    let paced = NewStreams::of(setup.label, &rig.paced("Game Paced", RULE_SINK, sizes.paced)?, RULE_SINK);
    let paced_unrouted = if setup.holds() {
        NewStreams::of(setup.label, &rig.paced("Plain Paced", DEFAULT_SINK, sizes.paced)?, DEFAULT_SINK)
    } else {
        NewStreams::default()
    };
    let mut rounds = NewStreams::default();
    for round in 0.. {
        if rounds.started >= sizes.new_streams {
            break;
        }
        rounds.add(setup.label, &rig.round(round, sizes.new_streams - rounds.started)?, RULE_SINK);
    }
    let memory_elsewhere = rig.memory(sizes.memory)?;
    let measured = Measured { setup, hold_active: rig.hold_active, paced, paced_unrouted, rounds, memory_elsewhere };
    println!(
        "  ({}: {} of {} new streams one at a time and {} of {} in rounds ever linked elsewhere)",
        setup.label,
        measured.paced.misrouted,
        measured.paced.started,
        measured.rounds.misrouted,
        measured.rounds.started
    );
    Ok(measured)
}

fn write_results(report: &mut Report, sizes: &Sizes, measured: &[Measured], alone: &[(Setup, NewStreams)]) {
    let columns: Vec<&str> = measured.iter().map(|m| m.setup.label).collect();
    let row = |report: &mut Report, figure: &str, cell: &dyn Fn(&Measured) -> String| {
        report.grid(&columns, figure, measured.iter().map(cell).collect());
    };
    let ratio = |n: &NewStreams| format!("{} / {}", n.misrouted, n.started);
    let round_size = APPS_PER_ROUND * STREAMS_PER_APP;
    row(report, "misroutes per 1000 new streams (ever linked to a sink other than the rule's)", &|m| num(m.per_1000()));
    row(report, "ever linked elsewhere / new streams: one at a time", &|m| ratio(&m.paced));
    row(
        report,
        &format!(
            "ever linked elsewhere / new streams: in rounds of {round_size} ({APPS_PER_ROUND} processes x \
             {STREAMS_PER_APP} streams started at once)"
        ),
        &|m| ratio(&m.rounds),
    );
    row(
        report,
        &format!(
            "WP remembers {REMEMBERED_SINK}: starts first linked elsewhere than {RULE_SINK} / starts \
             (routed to {REMEMBERED_SINK} once, stopped, unrouted)"
        ),
        &|m| format!("{} / {}", m.memory_elsewhere, sizes.memory),
    );
    row(
        report,
        &format!("one at a time: first linked {} ms or more after appearing", HOLD_TIME_LIMIT.as_millis()),
        &|m| {
            let late = m.paced.first_link.iter().filter(|d| **d >= HOLD_TIME_LIMIT).count();
            format!("{late} / {}", m.paced.first_link.len())
        },
    );
    row(report, "the daemon reports the hold (`hold_active`)", &|m| (if m.hold_active { "yes" } else { "no" }).into());

    let ms = |n: &NewStreams| Summary::of_ms(&n.first_link);
    let one_at_a_time = format!("{} streams, one at a time", sizes.paced);
    let [hold, no_hold, wp04, wp04_files] = measured else { return };
    let figure = |what: &str| format!("stream created -> first link: {what}");
    report.dist(&figure("hold (daemon + hook), rule-matched app"), "ms", ms(&hold.paced), &one_at_a_time);
    report.dist(&figure("hold (daemon + hook), unrouted app"), "ms", ms(&hold.paced_unrouted), &one_at_a_time);
    report.dist(&figure("no hold (daemon, no hook), rule-matched app"), "ms", ms(&no_hold.paced), &one_at_a_time);
    for (setup, paced) in alone {
        report.dist(&figure(&format!("{} (no daemon)", setup.label)), "ms", ms(paced), &one_at_a_time);
    }
    for m in [wp04, wp04_files] {
        let what = format!("{} + daemon, rule-matched app", m.setup.label);
        report.dist(&figure(&what), "ms", ms(&m.paced), &one_at_a_time);
    }
    for m in measured {
        let note = format!("{} streams in rounds of {round_size} at once", m.rounds.started);
        report.dist(&figure(&format!("in rounds, {}", m.setup.label)), "ms", ms(&m.rounds), &note);
    }

    let mut versus = |figure: &str, ours: &NewStreams, theirs: &NewStreams| {
        if let (Some(a), Some(b)) = (ms(ours), ms(theirs)) {
            report.versus(&format!("first link (medians): {figure}"), a.median, b.median, "ms");
        }
    };
    versus("hold vs no hold, rule-matched app", &hold.paced, &no_hold.paced);
    for (setup, paced) in alone {
        versus(&format!("hold, rule-matched app vs {}", setup.label), &hold.paced, paced);
    }
    for (setup, paced) in alone {
        versus(&format!("hold, unrouted app vs {}", setup.label), &hold.paced_unrouted, paced);
    }
    versus("in rounds, hold vs no hold", &hold.rounds, &no_hold.rounds);
}

/// Scenario 10: the same new streams on each PipeWire + WirePlumber stack
/// (`--stacks`, all by default), set up as a user of that stack has it: the
/// hook installed, which runs on WirePlumber 0.5 only.
pub fn run_stacks(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section(
        "12. Routing on each PipeWire + WirePlumber stack: new streams of rule-matched apps (`Game*` -> game), \
         daemon running, hook installed (it runs on WirePlumber 0.5 only), every link recorded",
    );
    let sizes = Sizes {
        new_streams: cfg.new_streams.unwrap_or(cfg.pick(1000, 40)),
        paced: cfg.pick(200, 10),
        memory: cfg.pick(20, 5),
    };
    let mut measured = Vec::new();
    for &stack in &cfg.stacks {
        measured
            .push(measure_with_daemon(Setup { label: stack_label(stack), stack, hook: true, daemon: true }, &sizes)?);
    }
    let columns: Vec<&str> = measured.iter().map(|m| m.setup.label).collect();
    let row = |report: &mut Report, figure: &str, cell: &dyn Fn(&Measured) -> String| {
        report.grid(&columns, figure, measured.iter().map(cell).collect());
    };
    let ratio = |n: &NewStreams| format!("{} / {}", n.misrouted, n.started);
    row(report, "misroutes per 100 new streams (ever linked to a sink other than the rule's)", &|m| {
        num(m.per_1000() / 10.0)
    });
    row(report, "ever linked elsewhere / new streams: one at a time", &|m| ratio(&m.paced));
    row(
        report,
        &format!("ever linked elsewhere / new streams: in rounds of {} at once", APPS_PER_ROUND * STREAMS_PER_APP),
        &|m| ratio(&m.rounds),
    );
    row(
        report,
        &format!("WP remembers {REMEMBERED_SINK}: starts first linked elsewhere than {RULE_SINK} / starts"),
        &|m| format!("{} / {}", m.memory_elsewhere, sizes.memory),
    );
    row(report, "the daemon reports the hold (`hold_active`)", &|m| (if m.hold_active { "yes" } else { "no" }).into());
    row(report, "stream created -> first link, one at a time: median ms", &|m| {
        Summary::of_ms(&m.paced.first_link).map_or_else(|| "-".into(), |s| num(s.median))
    });
    Ok(())
}

/// A stack's name in the results.
fn stack_label(stack: Stack) -> &'static str {
    match stack {
        Stack::Pw14Wp05 => "PW 1.4 + WP 0.5 (pw14-wp05)",
        Stack::Pw14Wp04 => "PW 1.4 + WP 0.4.13 (pw14-wp04)",
        Stack::Pw03Wp04 => "PW 0.3.65 + WP 0.4.13 (pw03-wp04)",
    }
}

/// Creation (the node global) -> the stream's first link, as the watcher saw them.
fn first_link(stream: &StreamHistory) -> Option<Duration> {
    stream.events.iter().find_map(|e| match e {
        StreamEvent::Linked { at, .. } => Some(at.saturating_duration_since(stream.appeared)),
        StreamEvent::Metadata { .. } => None,
    })
}
