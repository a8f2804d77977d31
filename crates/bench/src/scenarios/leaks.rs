//! Scenario 8: the daemon under valgrind memcheck through a shortened load
//! and a clean shutdown.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use testbed::{AppSpec, TestBed};

use super::{sleep_until, wait_snapshot, Config, SINKS};
use crate::report::Report;

pub fn run(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section("8. Leaks: valgrind memcheck through a shortened load and a clean shutdown");
    if Command::new("valgrind").arg("--version").output().is_err() {
        report.value("valgrind", "not installed".into(), "scripts/setup.sh installs it");
        return Ok(());
    }
    let bed = TestBed::builder().sinks(&SINKS).start()?;
    let daemon_binary = testbed::workspace_binary("pipewire-volume-mixer-daemon", "PVM_DAEMON_BIN")?;
    let log = bed.dir().join("valgrind.log");
    let wrapper = bed.dir().join("daemon-under-valgrind");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec valgrind --leak-check=full --show-leak-kinds=definite,indirect --log-file={} {} \"$@\"\n",
            log.display(),
            daemon_binary.display()
        ),
    )?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
    let mut daemon = bed.spawn_daemon_from(&wrapper, &[])?;
    let reader = pvm_ipc::reader::SnapshotReader::open(&daemon.shm)?;
    let _apps = bed.spawn_app(&AppSpec::new("Leak").distinct(10))?;
    wait_snapshot(&reader, "10 apps", |s| s.apps().len() >= 10)?;
    let probe = crate::probe::start(&bed.pipewire_socket())?;
    let game = probe.with(|r| r.node_named("game").map(|n| n.id)).context("no game sink")?;
    let duration = Duration::from_secs(cfg.pick(10, 1));
    let period = Duration::from_millis(5);
    let start = std::time::Instant::now();
    let mut i = 0u32;
    while start.elapsed() < duration {
        sleep_until(start + period * i);
        let cubic = 0.2 + (i % 600) as f32 * 0.001;
        crate::probe::set_volume(&probe, game, cubic * cubic * cubic)?;
        i += 1;
    }
    drop(probe);
    daemon.kill(libc::SIGTERM)?;
    let Some(status) = daemon.wait_exit(Duration::from_secs(60)) else {
        bail!("the daemon under valgrind did not exit within 60 s of SIGTERM");
    };
    let text = std::fs::read_to_string(&log).context("reading the valgrind log")?;
    let lost = |kind: &str| -> String {
        text.lines()
            .find_map(|l| l.split_once(&format!("{kind} lost: ")).map(|(_, rest)| rest.trim().to_owned()))
            .unwrap_or_else(|| "0 bytes in 0 blocks".into())
    };
    let errors = text
        .lines()
        .find_map(|l| l.split_once("ERROR SUMMARY: ").map(|(_, rest)| rest.trim().to_owned()))
        .unwrap_or_else(|| "-".into());
    // Show where the lost blocks come from.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("definitely lost in loss record")
            || line.contains("Invalid ")
            || line.contains("uninitialised")
        {
            for l in lines[i..].iter().take(14).take_while(|l| l.len() > 12 || *l == line) {
                eprintln!("valgrind: {l}");
            }
        }
    }
    let note = format!("{i} volume changes over {} s, 10 apps, SIGTERM; exit {status}", duration.as_secs());
    report.value("definitely lost", lost("definitely"), &note);
    report.value("indirectly lost", lost("indirectly"), "");
    report.value("possibly lost", lost("possibly"), "");
    report.value("memcheck errors", errors, "");
    Ok(())
}
