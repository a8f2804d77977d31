//! The snapshot file: creation rules, the seqlock under concurrent readers,
//! and waiting for changes.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pvm_ipc::layout::{header_flags, write_str, Snapshot, MAX_APPS, MAX_SINKS};
use pvm_ipc::reader::{ShmError, SnapshotReader};
use pvm_ipc::writer::SnapshotWriter;

/// A snapshot where every field is derived from `n`, so any mix of two
/// publishes is detectable.
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

fn consistent(s: &Snapshot) -> Result<u64, String> {
    let n = s.sinks[0].serial;
    let text = format!("pub-{n}");
    let ok = s.header.sink_count == (n % MAX_SINKS as u64) as u32
        && s.header.app_count == (n % MAX_APPS as u64) as u32
        && s.header.total_sinks == n as u32
        && s.sinks.iter().all(|x| x.serial == n && x.id == n as u32 && x.name() == text)
        && s.apps.iter().all(|a| a.stream_count == n as u32 && a.stream_ids == [n as u32; 8] && a.name() == text);
    if ok {
        Ok(n)
    } else {
        Err(format!("torn snapshot around publish {n}"))
    }
}

#[test]
fn readers_never_see_a_torn_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let mut writer = SnapshotWriter::create(&path).unwrap();
    writer.publish(&pattern(1));
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let reader = SnapshotReader::open(&path).unwrap();
                let mut snap = Snapshot::new_boxed();
                let (mut reads, mut distinct, mut last) = (0u64, 0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    // A writer publishing back to back may keep a reader from
                    // settling: that is refused with Busy, never a torn copy.
                    match reader.read_into(&mut snap) {
                        Ok(_) => {}
                        Err(ShmError::Busy { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                    let n = consistent(&snap).unwrap();
                    assert!(n >= last, "publish numbers never go backwards");
                    if n != last {
                        distinct += 1;
                        last = n;
                    }
                    reads += 1;
                }
                (reads, distinct)
            })
        })
        .collect();
    let writer_thread = {
        let stop = stop.clone();
        let published = published.clone();
        std::thread::spawn(move || {
            let mut n = 2;
            let mut snaps = [pattern(0), pattern(0)];
            while !stop.load(Ordering::Relaxed) {
                let s = &mut snaps[(n % 2) as usize];
                *s = pattern(n);
                writer.publish(s);
                n += 1;
            }
            published.store(n, Ordering::Relaxed);
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    writer_thread.join().unwrap();
    for r in readers {
        let (reads, distinct) = r.join().unwrap();
        assert!(reads > 100, "reader made progress ({reads} reads)");
        assert!(distinct > 10, "reader saw many publishes ({distinct})");
    }
    assert!(published.load(Ordering::Relaxed) > 1000);
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
