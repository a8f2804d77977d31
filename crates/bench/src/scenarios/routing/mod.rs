//! Scenario 9: exact routing. With the rule `Game*` -> `game`:
//!
//! - many new streams of rule-matched apps, started several processes at
//!   once: how many are ever linked to a sink other than `game`, with the
//!   routing hold (WirePlumber 0.5 and the hook of `contrib/wireplumber/`),
//!   without the hook, and on WirePlumber 0.4.13;
//! - the time from a stream's creation (its node global) to its first link:
//!   hold, no hold, and WirePlumber alone (no daemon) with and without the
//!   hook installed;
//! - WirePlumber remembering another target: an app routed to `chat` once,
//!   then unrouted; how many new starts are first linked elsewhere than
//!   `game`.
//!
//! A [`GraphWatcher`](testbed::GraphWatcher) records every link each stream ever gets, straight
//! from PipeWire's registry, so a link that lived a few milliseconds counts.

mod rig;

use std::time::Duration;

use anyhow::Result;
use testbed::WirePlumber;

use super::{Config, SINKS};
use crate::measure::Summary;
use crate::report::{num, Report};
use rig::{first_link, Rig};

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
const STREAMS_PER_APP: usize = 10;

/// How a bed is set up.
#[derive(Clone, Copy)]
struct Setup {
    /// Its name in the results.
    label: &'static str,
    wireplumber: WirePlumber,
    /// The hook installed into the bed's WirePlumber.
    hook: bool,
    /// The daemon running, with the rule.
    daemon: bool,
}

const HOLD: Setup =
    Setup { label: "WP 0.5 + hook (hold)", wireplumber: WirePlumber::Installed, hook: true, daemon: true };
const NO_HOLD: Setup =
    Setup { label: "WP 0.5, no hook", wireplumber: WirePlumber::Installed, hook: false, daemon: true };
const WP04: Setup = Setup { label: "WP 0.4.13", wireplumber: WirePlumber::V0_4, hook: false, daemon: true };
const WP04_HOOK_FILES: Setup =
    Setup { label: "WP 0.4.13, hook files installed", wireplumber: WirePlumber::V0_4, hook: true, daemon: true };
const ALONE_HOOK: Setup =
    Setup { label: "WP 0.5 alone, hook installed", wireplumber: WirePlumber::Installed, hook: true, daemon: false };
const ALONE: Setup =
    Setup { label: "WP 0.5 alone, no hook", wireplumber: WirePlumber::Installed, hook: false, daemon: false };

/// The setups with the daemon, side by side in the results.
const WITH_DAEMON: [Setup; 4] = [HOLD, NO_HOLD, WP04, WP04_HOOK_FILES];

/// The run's sizes.
struct Sizes {
    /// New streams in the bursts, per setup.
    new_streams: usize,
    /// Streams started one at a time for the time to the first link.
    paced: usize,
    /// Starts after WirePlumber was made to remember `chat`.
    memory: usize,
}

/// What one setup with the daemon measured.
struct Measured {
    setup: Setup,
    hold_active: bool,
    /// Rule-matched streams started one at a time: creation -> first link.
    paced: Vec<Duration>,
    /// The same for unrouted streams (the hold setup only).
    paced_unrouted: Vec<Duration>,
    /// Streams started in the bursts.
    started: usize,
    /// Of those, ever linked to another sink than the rule's.
    misrouted: usize,
    /// Creation -> first link of every stream in the bursts.
    burst_first_link: Vec<Duration>,
    /// Starts after WirePlumber was made to remember `chat`, first linked elsewhere.
    memory_elsewhere: usize,
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
        alone.push((setup, rig.paced("Plain Paced", DEFAULT_SINK, sizes.paced)?));
    }
    write_results(report, &sizes, &measured, &alone);
    Ok(())
}

fn measure_with_daemon(setup: Setup, sizes: &Sizes) -> Result<Measured> {
    let rig = Rig::start(setup)?;
    let paced = rig.paced("Game Paced", RULE_SINK, sizes.paced)?;
    let paced_unrouted = if setup.hook && setup.wireplumber == WirePlumber::Installed {
        rig.paced("Plain Paced", DEFAULT_SINK, sizes.paced)?
    } else {
        Vec::new()
    };
    let (mut started, mut misrouted, mut burst_first_link, mut shown) = (0, 0, Vec::new(), 0);
    let mut round = 0;
    while started < sizes.new_streams {
        let streams = rig.burst(round, sizes.new_streams - started)?;
        started += streams.len();
        for stream in &streams {
            burst_first_link.extend(first_link(stream));
            if stream.links().any(|sink| sink != RULE_SINK) {
                misrouted += 1;
                if shown < 3 {
                    shown += 1;
                    eprintln!(
                        "{}: {:?} linked elsewhere:\n  {}",
                        setup.label,
                        stream.app_name,
                        stream.timeline().join("\n  ")
                    );
                }
            }
        }
        round += 1;
    }
    let memory_elsewhere = rig.memory(sizes.memory)?;
    println!("  ({}: {misrouted} of {started} new streams ever linked elsewhere)", setup.label);
    Ok(Measured {
        setup,
        hold_active: rig.hold_active,
        paced,
        paced_unrouted,
        started,
        misrouted,
        burst_first_link,
        memory_elsewhere,
    })
}

fn write_results(report: &mut Report, sizes: &Sizes, measured: &[Measured], alone: &[(Setup, Vec<Duration>)]) {
    let columns: Vec<&str> = measured.iter().map(|m| m.setup.label).collect();
    let row = |report: &mut Report, figure: &str, cell: &dyn Fn(&Measured) -> String| {
        report.grid(&columns, figure, measured.iter().map(cell).collect());
    };
    row(report, "misroutes per 1000 new streams (ever linked to a sink other than the rule's)", &|m| {
        num(m.misrouted as f64 * 1000.0 / m.started.max(1) as f64)
    });
    let burst_size = APPS_PER_ROUND * STREAMS_PER_APP;
    row(
        report,
        &format!(
            "new streams ever linked elsewhere / started (rounds of {burst_size}: {APPS_PER_ROUND} processes x \
             {STREAMS_PER_APP} streams started at once)"
        ),
        &|m| format!("{} / {}", m.misrouted, m.started),
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
        &format!("one at a time: streams first linked {} ms or more after they appeared", HOLD_TIME_LIMIT.as_millis()),
        &|m| format!("{} / {}", m.paced.iter().filter(|d| **d >= HOLD_TIME_LIMIT).count(), m.paced.len()),
    );
    row(report, "the daemon reports the hold (`hold_active`)", &|m| (if m.hold_active { "yes" } else { "no" }).into());

    let ms = Summary::of_ms;
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
        report.dist(
            &figure(&format!("{} + daemon, rule-matched app", m.setup.label)),
            "ms",
            ms(&m.paced),
            &one_at_a_time,
        );
    }
    for m in measured {
        let note = format!("{} streams in rounds of up to {burst_size} at once", m.started);
        report.dist(&figure(&format!("in the bursts, {}", m.setup.label)), "ms", ms(&m.burst_first_link), &note);
    }

    let median = |d: &[Duration]| ms(d).map(|s| s.median);
    let mut versus = |figure: &str, ours: &[Duration], theirs: &[Duration]| {
        if let (Some(a), Some(b)) = (median(ours), median(theirs)) {
            report.versus(&format!("first link (medians): {figure}"), a, b, "ms");
        }
    };
    versus("hold vs no hold, rule-matched app", &hold.paced, &no_hold.paced);
    for (setup, paced) in alone {
        versus(&format!("hold, rule-matched app vs {}", setup.label), &hold.paced, paced);
    }
    for (setup, paced) in alone {
        versus(&format!("hold, unrouted app vs {}", setup.label), &hold.paced_unrouted, paced);
    }
    versus("in the bursts, hold vs no hold", &hold.burst_first_link, &no_hold.burst_first_link);
}
