//! The snapshot file: creation rules, the seqlock under concurrent readers,
//! and waiting for changes.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pvm_ipc::layout::{header_flags, write_str, Snapshot, MAX_APPS, MAX_SINKS};
use pvm_ipc::reader::{ShmError, SnapshotReader};
use pvm_ipc::writer::SnapshotWriter;

/// A snapshot whose sink and app slots are derived from `n`.
fn pattern(n: u64) -> Box<Snapshot> {
    let mut s = Snapshot::new_boxed();
    s.header.flags = header_flags::RUNNING;
    s.header.sink_count = (n % MAX_SINKS as u64) as u32;
    s.header.app_count = (n % MAX_APPS as u64) as u32;
    s.header.total_sinks = n as u32;
    s.header.total_apps = (n >> 32) as u32;
    let text = format!("pub-{n}");
    for slot in s.sinks.iter_mut() {
        slot.id = n as u32;
        slot.serial = n;
        slot.volume = (n % 1000) as f32;
        write_str(&mut slot.name, &text);
    }
    for slot in s.apps.iter_mut() {
        slot.stream_count = n as u32;
        slot.stream_ids = [n as u32; 8];
        write_str(&mut slot.name, &text);
    }
    s
}

/// The first word of a snapshot after the 64-byte header.
const FIRST_SLOT_WORD: usize = 8;

/// Word `i` (past the header) of publish `n`: every word differs from the
/// same word of every other publish, so any mix of two publishes shows.
fn slot_word(n: u64, i: usize) -> u64 {
    n.rotate_left(i as u32 % 64) ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Fills every field the writer copies from the caller (the header's
/// counters and flags, every byte of every slot) from `n`.
fn fill_every_word(s: &mut Snapshot, n: u64) {
    s.header.flags = header_flags::RUNNING;
    s.header.sink_count = n as u32;
    s.header.app_count = (n >> 32) as u32 ^ 0x5a5a_5a5a;
    s.header.total_sinks = !(n as u32);
    s.header.total_apps = n as u32 ^ 0xa5a5_a5a5;
    s.header.reserved = [n as u32, (n >> 32) as u32, !(n as u32)];
    let words: &mut [u64] = bytemuck::cast_slice_mut(bytemuck::bytes_of_mut(s));
    for (i, w) in words.iter_mut().enumerate().skip(FIRST_SLOT_WORD) {
        *w = slot_word(n, i);
    }
}

/// The publish number of a copy made by a reader, if the copy is exactly
/// one publish, every word of it.
fn whole_publish(s: &Snapshot) -> Result<u64, String> {
    let words: &[u64] = bytemuck::cast_slice(bytemuck::bytes_of(s));
    let n = (words[FIRST_SLOT_WORD] ^ (FIRST_SLOT_WORD as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .rotate_right(FIRST_SLOT_WORD as u32);
    let mut expected = Snapshot::new_boxed();
    fill_every_word(&mut expected, n);
    let h = &s.header;
    let header_ok = h.magic == pvm_ipc::layout::MAGIC
        && h.version == pvm_ipc::layout::LAYOUT_VERSION
        && h.generation % 2 == 0
        && (h.flags, h.sink_count, h.app_count, h.total_sinks, h.total_apps, h.reserved)
            == (
                expected.header.flags,
                expected.header.sink_count,
                expected.header.app_count,
                expected.header.total_sinks,
                expected.header.total_apps,
                expected.header.reserved,
            );
    let wrong = (FIRST_SLOT_WORD..words.len()).find(|&i| words[i] != slot_word(n, i));
    match (header_ok, wrong) {
        (true, None) => Ok(n),
        (false, _) => Err(format!("torn snapshot: header {h:?} in publish {n}")),
        (true, Some(i)) => Err(format!("torn snapshot: word {i} of publish {n} is {:#x}", words[i])),
    }
}

/// Set in the environment of the child process that plays the writer in
/// [`readers_never_see_a_torn_snapshot_written_by_another_process`].
const WRITER_PATH_ENV: &str = "PVM_STRESS_WRITER_PATH";
/// What the child writer prints last on stdout (the test harness prints
/// its own lines, and its "test ... " before ours on the same line).
const WRITER_PUBLISHED: &str = "stress writer: published ";

/// The writer side: publishes `fill_every_word(n)` for n = 1, 2, ... back to
/// back until its stdin closes, then prints how many it published.
fn run_stress_writer(path: &std::path::Path) {
    let mut writer = SnapshotWriter::create(path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_eof = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        stop_on_eof.store(true, Ordering::Relaxed);
    });
    let mut snap = Snapshot::new_boxed();
    fill_every_word(&mut snap, 1);
    writer.publish(&snap);
    let mut n = 1;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        fill_every_word(&mut snap, n);
        writer.publish(&snap);
    }
    println!("{WRITER_PUBLISHED}{n}");
}

/// Kills and reaps a child process when the test ends, pass or fail.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The seqlock between two processes, as it runs for real: this test
/// re-runs itself as a child process that publishes back to back, while
/// three reader threads here, each with its own read-only mapping, copy the
/// snapshot. Every copy must be exactly one publish, every word of it, and
/// the publishes a reader sees never go backwards. It runs until every
/// reader has made 1000 reads and seen 100 different publishes.
#[test]
fn readers_never_see_a_torn_snapshot_written_by_another_process() {
    use std::io::Read;
    use std::process::{Command, Stdio};

    if let Some(path) = std::env::var_os(WRITER_PATH_ENV) {
        run_stress_writer(std::path::Path::new(&path));
        return;
    }
    const READERS: usize = 3;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "readers_never_see_a_torn_snapshot_written_by_another_process", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(WRITER_PATH_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut writer = Reaper(child);
    let writer_pid = writer.0.id();
    let started = std::time::Instant::now();
    while !SnapshotReader::open(&path).and_then(|r| r.read()).is_ok_and(|s| s.header.daemon_pid == writer_pid) {
        assert!(writer.0.try_wait().unwrap().is_none(), "the writer process exited early");
        // A liveness bound only.
        assert!(started.elapsed() < Duration::from_secs(60), "the writer process never published");
        std::thread::sleep(Duration::from_millis(10));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (progress_tx, progress) = std::sync::mpsc::channel();
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (path, stop, progress) = (path.clone(), stop.clone(), progress_tx.clone());
            std::thread::spawn(move || {
                let outcome = read_until_stopped(&path, &stop, &progress);
                if let Err(e) = &outcome {
                    let _ = progress.send(Err(e.clone()));
                }
                outcome
            })
        })
        .collect();
    drop(progress_tx);
    for _ in 0..READERS {
        // A liveness bound only: no reader that makes progress comes near it.
        let heard = progress.recv_timeout(Duration::from_secs(300));
        if heard != Ok(Ok(())) {
            stop.store(true, Ordering::Relaxed);
            let stats: Vec<_> = readers.into_iter().map(|r| r.join()).collect();
            panic!("{heard:?}; the readers did not all reach {READS} reads and {DISTINCT} publishes: {stats:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let stats: Vec<ReaderStats> = readers.into_iter().map(|r| r.join().unwrap().unwrap()).collect();

    // Closing its stdin stops the writer; its stdout then ends.
    drop(writer.0.stdin.take());
    let mut output = String::new();
    writer.0.stdout.take().unwrap().read_to_string(&mut output).unwrap();
    let published: u64 = output
        .lines()
        .find_map(|l| l.split_once(WRITER_PUBLISHED).map(|(_, n)| n.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("the writer's count of publishes in its output: {output}"));
    assert!(writer.0.wait().unwrap().success(), "the writer process succeeded");
    for ReaderStats { reads, distinct, busy, last } in stats {
        eprintln!("reader: {reads} reads, {distinct} publishes seen, {busy} busy, last {last} of {published}");
        assert!(reads >= READS && distinct >= DISTINCT);
        assert!(last <= published, "a reader saw publish {last}, beyond the writer's last ({published})");
    }
}

/// Reads that must each reader make in the stress test, and different
/// publishes it must see among them.
const READS: u64 = 1000;
const DISTINCT: u64 = 100;

/// What one reader of the stress test did.
#[derive(Debug)]
struct ReaderStats {
    reads: u64,
    distinct: u64,
    busy: u64,
    last: u64,
}

/// Copies the snapshot at `path` over and over until `stop`, checking every
/// copy; sends `Ok(())` on `progress` once it has made [`READS`] reads and
/// seen [`DISTINCT`] publishes. The first bad copy ends it with an error.
fn read_until_stopped(
    path: &std::path::Path,
    stop: &AtomicBool,
    progress: &std::sync::mpsc::Sender<Result<(), String>>,
) -> Result<ReaderStats, String> {
    let reader = SnapshotReader::open(path).map_err(|e| e.to_string())?;
    let mut snap = Snapshot::new_boxed();
    let mut stats = ReaderStats { reads: 0, distinct: 0, busy: 0, last: 0 };
    let mut announced = false;
    while !stop.load(Ordering::Relaxed) {
        // A writer publishing back to back may keep a reader from settling:
        // that is refused with Busy, never a torn copy.
        let generation = match reader.read_into(&mut snap) {
            Ok(g) => g,
            Err(ShmError::Busy { .. }) => {
                stats.busy += 1;
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let n = whole_publish(&snap)?;
        if generation != snap.header.generation {
            return Err(format!("read_into returned generation {generation} for a copy of {}", snap.header.generation));
        }
        if n < stats.last {
            return Err(format!("publish {n} read after publish {}", stats.last));
        }
        if n != stats.last {
            stats.distinct += 1;
            stats.last = n;
        }
        stats.reads += 1;
        if !announced && stats.reads >= READS && stats.distinct >= DISTINCT {
            announced = true;
            let _ = progress.send(Ok(()));
        }
    }
    Ok(stats)
}

#[test]
fn wait_for_change_wakes_on_publish_and_times_out_without() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let mut writer = SnapshotWriter::create(&path).unwrap();
    let reader = SnapshotReader::open(&path).unwrap();
    let g = reader.generation();
    assert_eq!(g, writer.generation());
    assert!(!reader.wait_for_change(g, Some(Duration::from_millis(50))).unwrap());
    let waiter = std::thread::spawn(move || {
        let changed = reader.wait_for_change(g, Some(Duration::from_secs(30))).unwrap();
        (changed, reader.generation())
    });
    std::thread::sleep(Duration::from_millis(100));
    let new = writer.publish(&pattern(5));
    let (changed, seen) = waiter.join().unwrap();
    assert!(changed);
    assert_eq!(seen, new);
}

#[test]
fn file_is_private_and_single_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let writer = SnapshotWriter::create(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), pvm_ipc::layout::SNAPSHOT_SIZE as u64);
    match SnapshotWriter::create(&path) {
        Err(ShmError::AlreadyRunning { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a second writer must be refused"),
    }
    let err = SnapshotWriter::create(&path).err().unwrap().to_string();
    assert!(err.contains("already running"), "{err}");
    drop(writer);
}

#[test]
fn stale_file_is_reclaimed_and_generation_keeps_growing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let g1 = {
        let mut w = SnapshotWriter::create(&path).unwrap();
        w.publish(&pattern(1));
        w.publish(&pattern(2))
    };
    // The first writer is gone (lock released) without cleaning up.
    let w2 = SnapshotWriter::create(&path).unwrap();
    assert!(w2.generation() > g1);
    let snap = SnapshotReader::open(&path).unwrap().read().unwrap();
    assert_eq!(snap.header.sink_count, 0, "contents of the old daemon are gone");
    assert_ne!(snap.header.flags & header_flags::RUNNING, 0);

    // Garbage is reclaimed too.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a snapshot").unwrap();
    assert!(matches!(SnapshotReader::open(&junk), Err(ShmError::TooSmall { .. })));
    SnapshotWriter::create(&junk).unwrap();
    assert!(SnapshotReader::open(&junk).is_ok());
}

#[test]
fn symlinks_and_foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim");
    std::fs::write(&target, b"keep me").unwrap();
    let link = dir.path().join("shm");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(matches!(SnapshotWriter::create(&link), Err(ShmError::Symlink { .. })));
    assert!(matches!(SnapshotReader::open(&link), Err(ShmError::Symlink { .. })));
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let foreign = dir.path().join("foreign");
        std::fs::write(&foreign, b"theirs").unwrap();
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
        match SnapshotWriter::create(&foreign) {
            Err(ShmError::ForeignOwner { owner: 65534, .. }) => {}
            other => panic!("expected ForeignOwner, got {:?}", other.err()),
        }
        assert_eq!(std::fs::metadata(&foreign).unwrap().uid(), 65534);
        assert_eq!(std::fs::read(&foreign).unwrap(), b"theirs");
    }
}

#[test]
fn reader_rejects_wrong_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad");
    std::fs::write(&path, vec![0u8; pvm_ipc::layout::SNAPSHOT_SIZE]).unwrap();
    assert!(matches!(SnapshotReader::open(&path), Err(ShmError::BadMagic { .. })));
    let mut bytes = vec![0u8; pvm_ipc::layout::SNAPSHOT_SIZE];
    bytes[..4].copy_from_slice(b"PVMS");
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(SnapshotReader::open(&path), Err(ShmError::NotReady { .. })));
    bytes[4] = 9;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(SnapshotReader::open(&path), Err(ShmError::UnsupportedVersion { version: 9, .. })));
    assert!(SnapshotReader::open(&dir.path().join("missing")).err().unwrap().is_not_found());
}

#[test]
fn mark_stopped_clears_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let mut w = SnapshotWriter::create(&path).unwrap();
    let mut s = pattern(3);
    s.header.flags |= header_flags::CONNECTED;
    w.publish(&s);
    let r = SnapshotReader::open(&path).unwrap();
    assert!(r.daemon_alive(&r.read().unwrap()));
    w.mark_stopped();
    let snap = r.read().unwrap();
    assert_eq!(snap.header.flags & (header_flags::RUNNING | header_flags::CONNECTED), 0);
    assert!(!r.daemon_alive(&snap));
    assert_eq!(snap.sinks[0].serial, 3, "the last state stays readable");
}

#[test]
fn a_waiter_wakes_when_the_watched_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let _writer = SnapshotWriter::create(&path).unwrap();
    let reader = Arc::new(SnapshotReader::open(&path).unwrap());
    let mut child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
    reader.wake_on_exit(child.id()).unwrap();
    let g = reader.generation();
    let waiter = {
        let reader = reader.clone();
        std::thread::spawn(move || reader.wait_once(g, None).unwrap())
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(!waiter.is_finished(), "nothing happened yet");
    child.kill().unwrap();
    child.wait().unwrap();
    // No publish happened: the waiter returns because the process exited.
    assert!(!waiter.join().unwrap(), "woken without a change");
}
