//! Scenarios 4 and 6: start-up from exec to ready, with 20 sinks and apps
//! present, beside the floor (a bare `pipewire` client's connect + sync).

use std::io::{BufRead as _, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use pvm_ipc::client::Client;
use pvm_ipc::protocol::{Request, Response};
use testbed::{AppSpec, TestBed};

use super::{Config, TIMEOUT};
use crate::measure::{status_kb, Summary};
use crate::report::Report;

/// Kills and reaps a child on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    /// SIGTERM, then waits up to 10 s for a clean exit.
    fn terminate(mut self) -> Result<()> {
        // SAFETY: kill(2) with the pid of our own unreaped child.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.0.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bail!("the daemon did not exit within 10 s of SIGTERM")
    }
}

pub fn run(report: &mut Report, cfg: &Config) -> Result<()> {
    report.section("4. Start-up (exec -> READY=1: socket accepting, first snapshot published) and 6. the floor");
    let sinks: Vec<String> = (0..10).map(|i| format!("sink{i}")).collect();
    let sink_refs: Vec<&str> = sinks.iter().map(String::as_str).collect();
    let bed = TestBed::builder().sinks(&sink_refs).start()?;
    let _apps = bed.spawn_app(&AppSpec::new("Present").distinct(10))?;
    std::thread::sleep(Duration::from_millis(500));
    let runs = cfg.pick(20, 3);
    let (mut ready, mut rss) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (took, bytes) = daemon_start(&bed, run)?;
        ready.push(took);
        rss.push(bytes as f64 / (1024.0 * 1024.0));
    }
    let (mut floor, mut floor_rss) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (took, bytes) = floor_start(&bed)?;
        floor.push(took);
        floor_rss.push(bytes as f64 / (1024.0 * 1024.0));
    }
    let note = format!("{runs} runs, 10 sinks + 10 apps present");
    let (d, f) = (Summary::of_ms(&ready), Summary::of_ms(&floor));
    report.dist("daemon: exec -> READY=1", "ms", d, &note);
    report.dist("floor: bare pipewire client, exec -> first sync done", "ms", f, &note);
    let (dr, fr) = (Summary::of(&rss), Summary::of(&floor_rss));
    report.dist("daemon RSS right after READY=1", "MiB", dr, "");
    report.dist("floor RSS after its first sync", "MiB", fr, "");
    if let (Some(d), Some(f), Some(dr), Some(fr)) = (d, f, dr, fr) {
        report.value("daemon start-up above the floor (medians)", format!("{:.2} ms", d.median - f.median), "");
        report.value("daemon RSS above the floor (medians)", format!("{:.2} MiB", dr.median - fr.median), "");
    }
    Ok(())
}

/// One daemon start: exec to READY=1 on a notify socket of ours; RSS then.
fn daemon_start(bed: &TestBed, run: usize) -> Result<(Duration, u64)> {
    let notify_path = bed.dir().join(format!("notify-{run}"));
    let notify = UnixDatagram::bind(&notify_path)?;
    notify.set_read_timeout(Some(TIMEOUT))?;
    let mut command = bed.daemon_command(&[])?;
    command.env("NOTIFY_SOCKET", &notify_path).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    let child = Reaped(command.spawn().context("starting the daemon")?);
    let mut buf = [0u8; 512];
    let took = loop {
        let n = notify.recv(&mut buf).context("waiting for READY=1")?;
        if String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "READY=1") {
            break start.elapsed();
        }
    };
    let pid = child.0.id();
    let rss = status_kb(pid, "VmRSS").unwrap_or(0);
    // Ready means ready: the socket answers and the snapshot is there.
    let mut client = Client::connect(&bed.daemon_paths().socket)?;
    match client.request(&Request::Ping)? {
        Response::Ok(_) => {}
        Response::Error(e) => bail!("PING after READY=1: {e}"),
    }
    let reader = pvm_ipc::reader::SnapshotReader::open(&bed.daemon_paths().shm)?;
    if reader.read()?.sinks().len() < pvm_ipc::layout::MAX_SINKS {
        bail!("READY=1 before the sinks were in the snapshot");
    }
    drop(client);
    child.terminate()?;
    let _ = std::fs::remove_file(&notify_path);
    Ok((took, rss))
}

/// One floor start: `pvm-bench-floor` prints a line after its first sync.
fn floor_start(bed: &TestBed) -> Result<(Duration, u64)> {
    let binary = testbed::workspace_binary("pvm-bench-floor", "PVM_BENCH_FLOOR")?;
    let mut command = bed.command(&binary);
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
    let start = Instant::now();
    let mut child = Reaped(command.spawn()?);
    let stdout = child.0.stdout.take().context("floor stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let took = start.elapsed();
    if line.trim() != "synced" {
        bail!("pvm-bench-floor said {line:?}");
    }
    let rss = status_kb(child.0.id(), "VmRSS").unwrap_or(0);
    drop(child.0.stdin.take());
    let _ = child.0.wait();
    Ok((took, rss))
}
