//! The benchmark runs end to end (shortened) and writes every section.

use std::process::Command;

#[test]
fn quick_run_writes_every_scenario_to_the_results() {
    let out = std::env::temp_dir().join(format!("pvm-bench-smoke-{}.md", std::process::id()));
    let status =
        Command::new(env!("CARGO_BIN_EXE_bench")).args(["all", "--quick", "--out"]).arg(&out).status().unwrap();
    let results = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    assert!(status.success(), "bench failed ({status}):\n{results}");
    for section in [
        "## Machine",
        "## 1. Event-to-snapshot latency",
        "## 2. Load",
        "## 3. Idle",
        "## 4. Start-up",
        "## 5. Rapid sink switching",
        "## 7. Side by side",
        "## 8. Leaks",
        "## 9. Routing",
        "## 10. Channels",
        "## 11. pvm-mixer",
        "## 12. Routing on each PipeWire + WirePlumber stack",
    ] {
        assert!(results.contains(section), "missing {section:?} in:\n{results}");
    }
    for figure in [
        "daemon minus floor",
        "daemon CPU idle",
        "exec -> READY=1",
        "wpctl set-volume",
        "definitely lost",
        "misroutes per 1000 new streams",
        "misroutes per 100 new streams",
        "PW 0.3.65 + WP 0.4.13",
        "stream created -> first link",
        "key press -> new value on the mixer's screen",
        "pvm-mixer wake-ups idle",
        "added latency: onset at the output's monitor",
        "default device changed",
    ] {
        assert!(results.contains(figure), "missing {figure:?} in:\n{results}");
    }
    assert!(!results.contains("FAILED"), "a scenario failed:\n{results}");
}
