//! The snapshot readers for other languages: the C header agrees with the
//! Rust layout, and the Python and C example readers print what
//! `pvmctl status --json` prints for a live daemon.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pvm_ipc::layout::{
    app_flags, header_flags, sink_flags, AppSlot, Header, SinkKind, SinkSlot, Snapshot, TargetSource, APP_NAME_LEN,
    APP_SINK_LEN, LAYOUT_VERSION, MAGIC, MAX_APPS, MAX_SINKS, MAX_STREAMS_PER_APP, NO_ID, SINK_DESCRIPTION_LEN,
    SINK_NAME_LEN, SINK_OUTPUT_LEN, SNAPSHOT_SIZE,
};
use serde_json::Value;
use testbed::{AppSpec, TestBed};

const TIMEOUT: Duration = Duration::from_secs(10);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run_ok(command: &mut Command) -> Output {
    let out = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(out.status.success(), "{command:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

/// `_Static_assert`s for the offset and size of each listed field of a C
/// struct, with the values the Rust compiler computed for the same field.
macro_rules! field_asserts {
    ($out:ident, $rust:ty, $c:literal, $sample:expr, [$($field:ident),* $(,)?]) => {{
        let sample: &$rust = $sample;
        $(
            $out.push_str(&format!(
                "_Static_assert(offsetof(struct {c}, {f}) == {offset}, \"offset of {c}.{f}\");\n\
                 _Static_assert(sizeof(((struct {c} *)0)->{f}) == {size}, \"size of {c}.{f}\");\n",
                c = $c,
                f = stringify!($field),
                offset = std::mem::offset_of!($rust, $field),
                size = std::mem::size_of_val(&sample.$field),
            ));
        )*
        $out.push_str(&format!(
            "_Static_assert(sizeof(struct {c}) == {size}, \"size of {c}\");\n\
             _Static_assert(_Alignof(struct {c}) == {align}, \"alignment of {c}\");\n",
            c = $c,
            size = std::mem::size_of::<$rust>(),
            align = std::mem::align_of::<$rust>(),
        ));
    }};
}

/// A C file that compiles only if include/pipewire-volume-mixer.h matches
/// crates/pvm-ipc/src/layout.rs: every field's offset and size, every
/// struct's size, every constant and flag.
fn layout_check_source() -> String {
    let snapshot = Snapshot::new_boxed();
    let mut c = String::from("#include <stddef.h>\n#include \"pipewire-volume-mixer.h\"\n\n");
    field_asserts!(
        c,
        Header,
        "pvm_header",
        &snapshot.header,
        [
            magic,
            version,
            generation,
            last_update_ns,
            flags,
            sink_count,
            app_count,
            total_sinks,
            total_apps,
            daemon_pid,
            file_size,
            reserved
        ]
    );
    field_asserts!(
        c,
        SinkSlot,
        "pvm_sink",
        &snapshot.sinks[0],
        [id, flags, volume, channels, serial, name, description, kind, output_id, output]
    );
    field_asserts!(
        c,
        AppSlot,
        "pvm_app",
        &snapshot.apps[0],
        [flags, stream_count, volume, target_source, stream_ids, name, sink, target]
    );
    field_asserts!(c, Snapshot, "pvm_snapshot", &snapshot, [header, sinks, apps]);

    let constants: &[(&str, u64)] = &[
        ("PVM_MAGIC", MAGIC.into()),
        ("PVM_LAYOUT_VERSION", LAYOUT_VERSION.into()),
        ("PVM_MAX_SINKS", MAX_SINKS as u64),
        ("PVM_MAX_APPS", MAX_APPS as u64),
        ("PVM_MAX_STREAMS_PER_APP", MAX_STREAMS_PER_APP as u64),
        ("PVM_SINK_NAME_LEN", SINK_NAME_LEN as u64),
        ("PVM_SINK_DESCRIPTION_LEN", SINK_DESCRIPTION_LEN as u64),
        ("PVM_APP_NAME_LEN", APP_NAME_LEN as u64),
        ("PVM_APP_SINK_LEN", APP_SINK_LEN as u64),
        ("PVM_SINK_OUTPUT_LEN", SINK_OUTPUT_LEN as u64),
        ("PVM_NO_ID", NO_ID.into()),
        ("PVM_SNAPSHOT_SIZE", SNAPSHOT_SIZE as u64),
        ("PVM_HEADER_RUNNING", header_flags::RUNNING.into()),
        ("PVM_HEADER_CONNECTED", header_flags::CONNECTED.into()),
        ("PVM_HEADER_SINKS_OVERFLOW", header_flags::SINKS_OVERFLOW.into()),
        ("PVM_HEADER_APPS_OVERFLOW", header_flags::APPS_OVERFLOW.into()),
        ("PVM_HEADER_TRUNCATED", header_flags::TRUNCATED.into()),
        ("PVM_HEADER_HOLD_ACTIVE", header_flags::HOLD_ACTIVE.into()),
        ("PVM_SINK_MUTED", sink_flags::MUTED.into()),
        ("PVM_SINK_DEFAULT", sink_flags::DEFAULT.into()),
        ("PVM_SINK_NAME_TRUNCATED", sink_flags::NAME_TRUNCATED.into()),
        ("PVM_SINK_DESCRIPTION_TRUNCATED", sink_flags::DESCRIPTION_TRUNCATED.into()),
        ("PVM_SINK_DEVICE_BACKED", sink_flags::DEVICE_BACKED.into()),
        ("PVM_SINK_OUTPUT_TRUNCATED", sink_flags::OUTPUT_TRUNCATED.into()),
        ("PVM_SINK_KIND_DEVICE", SinkKind::Device as u64),
        ("PVM_SINK_KIND_CHANNEL", SinkKind::Channel as u64),
        ("PVM_APP_ACTIVE", app_flags::ACTIVE.into()),
        ("PVM_APP_MOVABLE", app_flags::MOVABLE.into()),
        ("PVM_APP_MUTED", app_flags::MUTED.into()),
        ("PVM_APP_NAME_TRUNCATED", app_flags::NAME_TRUNCATED.into()),
        ("PVM_APP_STREAMS_OVERFLOW", app_flags::STREAMS_OVERFLOW.into()),
        ("PVM_APP_SINK_TRUNCATED", app_flags::SINK_TRUNCATED.into()),
        ("PVM_TARGET_SESSION_MANAGER", TargetSource::SessionManager as u64),
        ("PVM_TARGET_RULE", TargetSource::Rule as u64),
        ("PVM_TARGET_ROUTE", TargetSource::Route as u64),
        ("PVM_TARGET_OTHER_TOOL", TargetSource::OtherTool as u64),
    ];
    for (name, value) in constants {
        c.push_str(&format!("_Static_assert({name} == {value}u, \"{name}\");\n"));
    }
    c
}

#[test]
fn c_header_matches_the_rust_layout() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("layout_check.c");
    fs::write(&source, layout_check_source()).unwrap();
    for standard in ["-std=c11", "-std=c17"] {
        run_ok(
            Command::new("cc")
                .args([standard, "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-I"])
                .arg(repo_root().join("include"))
                .arg(&source),
        );
    }
    // The check itself can fail: a wrong offset does not compile.
    let wrong =
        layout_check_source().replace("offsetof(struct pvm_app, sink) == 128", "offsetof(struct pvm_app, sink) == 129");
    assert_ne!(wrong, layout_check_source());
    fs::write(&source, wrong).unwrap();
    let out = Command::new("cc")
        .args(["-std=c11", "-fsyntax-only", "-I"])
        .arg(repo_root().join("include"))
        .arg(&source)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong offset compiled");
}

/// Compiles examples/c/pvm-status.c into `dir` as the documentation says.
fn build_c_reader(dir: &Path) -> PathBuf {
    let binary = dir.join("pvm-status");
    run_ok(
        Command::new("cc")
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(repo_root().join("include"))
            .arg(repo_root().join("examples/c/pvm-status.c"))
            .arg("-o")
            .arg(&binary)
            .arg("-lm"),
    );
    binary
}

fn json_of(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn python_and_c_readers_print_what_pvmctl_prints() {
    let bed = TestBed::start(&["speakers", "game", "chat"]).unwrap();
    let daemon = bed.spawn_daemon(&[]).unwrap();
    let c_reader = build_c_reader(bed.dir());
    let python_reader = repo_root().join("examples/python/pvm_snapshot.py");

    let pvmctl_status = || {
        let out = bed.pvmctl(&daemon, &["status", "--json"]).unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        json_of(&out)
    };
    let ok = |out: Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let python = |json: bool| {
        let mut command = Command::new("python3");
        command.arg(&python_reader).arg("--shm").arg(&daemon.shm).args(json.then_some("--json"));
        ok(command.output().unwrap())
    };
    let c = |json: bool| {
        let mut command = Command::new(&c_reader);
        command.arg("--shm").arg(&daemon.shm).args(json.then_some("--json"));
        ok(command.output().unwrap())
    };

    // Two apps: one routed by a ROUTE command, one left to the session manager.
    let out = bed.pvmctl(&daemon, &["route", "Music \"Player\"", "game"]).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut music = bed.spawn_app(&AppSpec::new("Music \"Player\"").binary("music-player").role("Music")).unwrap();
    let mut voice = bed.spawn_app(&AppSpec::new("Voice Chat").binary("voice-chat").streams(2)).unwrap();
    music.wait_for_streams(TIMEOUT).unwrap();
    voice.wait_for_streams(TIMEOUT).unwrap();
    bed.wait_until(TIMEOUT, "both apps linked in the snapshot", || {
        let status = pvmctl_status();
        let sink_of = |name: &str| {
            status["apps"].as_array().unwrap().iter().find(|a| a["name"] == name).map(|a| a["sink"].clone())
        };
        sink_of("Music \"Player\"") == Some(Value::from("game"))
            && sink_of("Voice Chat") == Some(Value::from("speakers"))
    })
    .unwrap();

    // Compare only reads that saw the same generation as pvmctl before and after them.
    let deadline = Instant::now() + TIMEOUT;
    let (expected, from_python, from_c) = loop {
        let before = pvmctl_status();
        let (from_python, from_c) = (json_of(&python(true)), json_of(&c(true)));
        let after = pvmctl_status();
        if before["generation"] == after["generation"] {
            break (before, from_python, from_c);
        }
        assert!(Instant::now() < deadline, "the snapshot never stood still for three reads");
    };
    assert_eq!(expected["apps"].as_array().map(Vec::len), Some(2), "{expected}");
    assert_eq!(expected["sinks"].as_array().map(Vec::len), Some(3), "{expected}");
    for key in ["sinks", "apps"] {
        assert_eq!(from_python[key], expected[key], "Python reader, {key}");
        assert_eq!(from_c[key], expected[key], "C reader, {key}");
    }
    // Same generation read by all three: the whole object must agree.
    assert_eq!(from_python, expected);
    assert_eq!(from_c, expected);

    // The human-readable forms name the same sinks and apps.
    for (reader, out) in [("python", python(false)), ("c", c(false))] {
        let text = String::from_utf8_lossy(&out.stdout);
        for name in ["speakers", "game", "chat", "Music \"Player\"", "Voice Chat"] {
            assert!(text.contains(name), "{reader} summary lacks {name}:\n{text}");
        }
    }
}

#[test]
fn readers_report_a_stopped_daemon_with_exit_status_3() {
    let bed = TestBed::start(&["speakers"]).unwrap();
    let mut daemon = bed.spawn_daemon(&[]).unwrap();
    let c_reader = build_c_reader(bed.dir());
    bed.wait_until(TIMEOUT, "a connected snapshot", || {
        bed.pvmctl(&daemon, &["status", "--json"]).is_ok_and(|o| o.status.success() && json_of(&o)["connected"] == true)
    })
    .unwrap();
    daemon.kill(libc::SIGTERM).unwrap();
    daemon.wait_exit(TIMEOUT).expect("the daemon did not stop");

    let mut python = Command::new("python3");
    python.arg(repo_root().join("examples/python/pvm_snapshot.py")).arg("--json").arg("--shm").arg(&daemon.shm);
    let mut c = Command::new(&c_reader);
    c.arg("--json").arg("--shm").arg(&daemon.shm);
    for mut command in [python, c] {
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
        let status = json_of(&out);
        assert_eq!(status["running"], false);
        assert_eq!(status["connected"], false);
    }

    // A file that is not a snapshot is an error, not garbage output.
    let bogus = bed.dir().join("not-a-snapshot");
    fs::write(&bogus, vec![0u8; SNAPSHOT_SIZE]).unwrap();
    let mut python = Command::new("python3");
    python.arg(repo_root().join("examples/python/pvm_snapshot.py")).arg("--shm").arg(&bogus);
    let mut c = Command::new(&c_reader);
    c.arg("--shm").arg(&bogus);
    for mut command in [python, c] {
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("bad magic"), "{command:?}");
        assert!(out.stdout.is_empty());
    }
}
