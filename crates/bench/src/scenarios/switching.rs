//! Scenario 5: rapid sink switching through ROUTE, 100 times a second.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use pvm_ipc::client::Client;
use pvm_ipc::protocol::{Request, Response};
use testbed::AppSpec;

use super::{sleep_until, Config, Rig, SINKS, TIMEOUT};
use crate::measure::Summary;
use crate::report::Report;

pub fn run(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section("5. Rapid sink switching: ROUTE between 4 sinks, 100/s");
    let rig = Rig::start(false, None)?;
    let app = "Switcher";
    let _player = rig.bed.spawn_app(&AppSpec::new(app))?;
    let stream = rig.probe.wait_for(TIMEOUT, "the stream linked", |r| {
        r.streams_of(app).first().filter(|s| !r.live_links_from(s.node).is_empty()).map(|s| s.node)
    })?;
    let sink_ids: Vec<u32> = SINKS.iter().map(|s| rig.sink_id(s)).collect::<Result<_>>()?;
    let mut client = Client::connect(&rig.daemon.socket)?;
    let count = cfg.pick(1000, 50);
    let period = Duration::from_millis(10);
    let (mut sent, mut answered, mut errors) = (Vec::new(), Vec::new(), 0usize);
    let start = Instant::now();
    for i in 0..count {
        sleep_until(start + period * i as u32);
        let sink = SINKS[(i + 1) % SINKS.len()];
        sent.push(Instant::now());
        let response = client.request(&Request::Route { app: app.into(), sink: sink.into(), create_pending: false })?;
        answered.push(Instant::now());
        if let Response::Error(e) = response {
            errors += 1;
            eprintln!("ROUTE {i} -> {sink}: ERROR {e}");
        }
    }
    let last = sink_ids[count % SINKS.len()];
    std::thread::sleep(Duration::from_secs(1));
    rig.probe.sync()?;
    // An OK means the stream plays on the new sink: each ROUTE's link must
    // appear. The probe is another client and receives the link independently
    // of the daemon, often a little after the daemon has answered, so it
    // looks for it until the next ROUTE to the same sink (4 sinks in turn).
    let (mut to_ok, mut to_link, mut never_linked, mut seen_after_ok) = (Vec::new(), Vec::new(), 0usize, 0usize);
    let left_behind = rig.probe.with(|r| {
        for i in 0..count {
            let target = sink_ids[(i + 1) % SINKS.len()];
            to_ok.push(answered[i].saturating_duration_since(sent[i]));
            let next = sent.get(i + SINKS.len()).copied();
            match r.first_link_after(stream, target, sent[i]) {
                Some(link) if next.is_none_or(|n| link.appeared < n) => {
                    to_link.push(link.appeared.saturating_duration_since(sent[i]));
                    if link.appeared > answered[i] {
                        seen_after_ok += 1;
                    }
                }
                _ => never_linked += 1,
            }
        }
        r.live_links_from(stream).iter().filter(|l| l.input_node != last).count()
    });
    let linked_to_last = rig.probe.with(|r| r.live_links_from(stream).iter().any(|l| l.input_node == last));
    if !linked_to_last {
        bail!("after the last ROUTE the stream is not linked to its sink");
    }
    let note = format!("{count} ROUTEs in {:.1} s", sent[count - 1].duration_since(start).as_secs_f64());
    report.dist("ROUTE sent -> OK (linked to the new sink, in the snapshot)", "ms", Summary::of_ms(&to_ok), &note);
    report.dist(
        "ROUTE sent -> stream linked to the new sink (seen by the probe)",
        "ms",
        Summary::of_ms(&to_link),
        &note,
    );
    report.value("ROUTEs answered ERROR", errors.to_string(), "");
    report.value(
        "ROUTEs whose new sink never got a link",
        never_linked.to_string(),
        "must be 0: OK means the stream plays there",
    );
    report.value(
        "links the probe saw only after the OK arrived",
        format!("{seen_after_ok} of {}", to_link.len()),
        "the probe is another client and gets the same event independently",
    );
    report.value("links left to another sink after the last ROUTE", left_behind.to_string(), "after 1 s");
    Ok(())
}
