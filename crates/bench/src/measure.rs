//! Numbers: summaries of samples, and what `/proc` and the stats file say
//! about a process.

use std::fs;
use std::path::Path;
use std::time::Duration;

/// Median, p99 and max of a set of samples (any unit).
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// `None` when there are no samples.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        Some(Summary { n: s.len(), median: at(0.5), p99: at(0.99), max: s[s.len() - 1] })
    }

    /// Durations in milliseconds.
    pub fn of_ms(samples: &[Duration]) -> Option<Summary> {
        Summary::of(&samples.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>())
    }
}

/// CPU time (user + system) of process `pid` so far.
pub fn cpu_time(pid: u32) -> Duration {
    cpu_time_of(&format!("/proc/{pid}/stat"))
}

/// CPU time of thread `tid` of this process so far.
pub fn thread_cpu_time(tid: u32) -> Duration {
    cpu_time_of(&format!("/proc/self/task/{tid}/stat"))
}

fn cpu_time_of(path: &str) -> Duration {
    let Ok(stat) = fs::read_to_string(path) else { return Duration::ZERO };
    let Some(close) = stat.rfind(')') else { return Duration::ZERO };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // Fields 14 and 15 (utime, stime), counted from 1 with the name as field 2.
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// A `kB` field of `/proc/PID/status` in bytes (e.g. `VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Context switches (voluntary + involuntary) of all threads of `pid`.
pub fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    let mut total = 0;
    for task in tasks.flatten() {
        let Ok(status) = fs::read_to_string(task.path().join("status")) else { continue };
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches:") || line.starts_with("nonvoluntary_ctxt_switches:") {
                total += line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    total
}

/// A sample of a process's CPU time at a moment.
pub struct CpuMark {
    cpu: Duration,
    at: std::time::Instant,
    switches: u64,
}

impl CpuMark {
    pub fn now(pid: u32) -> CpuMark {
        CpuMark { cpu: cpu_time(pid), at: std::time::Instant::now(), switches: context_switches(pid) }
    }

    /// CPU used since the mark, in % of one core, and context switches.
    pub fn since(&self, pid: u32) -> (f64, u64) {
        let cpu = cpu_time(pid).saturating_sub(self.cpu);
        let wall = self.at.elapsed();
        (cpu.as_secs_f64() / wall.as_secs_f64() * 100.0, context_switches(pid).saturating_sub(self.switches))
    }
}

/// The value of metric `name` (exact series, labels included) in a
/// Prometheus text file.
pub fn metric(stats: &Path, name: &str) -> Option<f64> {
    let text = fs::read_to_string(stats).ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The sum of all series of metric `name` (any labels).
pub fn metric_sum(stats: &Path, name: &str) -> f64 {
    let Ok(text) = fs::read_to_string(stats) else { return 0.0 };
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_order_statistics() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&samples).unwrap();
        assert_eq!((s.n, s.median, s.p99, s.max), (100, 51.0, 99.0, 100.0));
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn metrics_are_read_by_exact_name() {
        let dir = std::env::temp_dir().join(format!("pvm-bench-metric-{}", std::process::id()));
        fs::write(&dir, "# HELP x\npvm_events_total{kind=\"a\"} 3\npvm_events_total{kind=\"b\"} 4\npvm_publishes_total 5\npvm_publishes_total_x 9\n")
            .unwrap();
        assert_eq!(metric(&dir, "pvm_publishes_total"), Some(5.0));
        assert_eq!(metric_sum(&dir, "pvm_events_total"), 7.0);
        assert_eq!(metric_sum(&dir, "pvm_publishes_total"), 5.0);
        let _ = fs::remove_file(&dir);
    }
}
