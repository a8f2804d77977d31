//! The daemon's side of the snapshot: safe creation, the single-instance
//! lock, and the seqlock publish.

use std::fs::File;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU64, Ordering};

use memmap2::MmapRaw;

use crate::futex;
use crate::layout::{header_flags, Snapshot, LAYOUT_VERSION, MAGIC, SNAPSHOT_SIZE};
pub use crate::shmfile::ShmError;
use crate::shmfile::{io_err, open, try_lock};
use crate::words::{futex_addr, writable_words, GENERATION_WORD, LAST_UPDATE_WORD, MAGIC_VERSION_WORD};

/// Publishes snapshots to the shared file. Holds an exclusive `flock` on it
/// for its whole life: that lock is what keeps a second daemon out.
pub struct SnapshotWriter {
    path: PathBuf,
    /// Mapped shared and writable. `MmapRaw::as_mut_ptr` is a raw pointer
    /// with write permission; no `&[u8]` or `&mut [u8]` to the shared bytes
    /// is ever made (other processes change them under any reference).
    map: MmapRaw,
    _file: File,
    generation: u64,
    /// What the mapping holds (as of the last publish).
    published: Box<Snapshot>,
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl SnapshotWriter {
    /// Creates (or reclaims) the snapshot file at `path`: mode 0600, never
    /// through a symlink, never a file of another user, and only if no other
    /// daemon holds it. A stale file left by a crashed daemon is reused; its
    /// generation keeps counting up so readers never see it go backwards.
    pub fn create(path: &Path) -> Result<SnapshotWriter, ShmError> {
        let (file, size) = open(path, true, true)?;
        if !try_lock(&file, path)? {
            let mut pid = [0u8; 4];
            let pid = file.read_exact_at(&mut pid, 44).ok().map(|()| u32::from_le_bytes(pid)).filter(|&p| p != 0);
            return Err(ShmError::AlreadyRunning { path: path.to_owned(), pid });
        }
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
        if size < SNAPSHOT_SIZE as u64 {
            file.set_len(SNAPSHOT_SIZE as u64).map_err(io_err(path))?;
        }
        // The file is ours, locked, and at least SNAPSHOT_SIZE long; other
        // processes only read it, and every access in this crate goes through
        // atomics (see words.rs).
        let map = memmap2::MmapOptions::new().len(SNAPSHOT_SIZE).map_raw(&file).map_err(io_err(path))?;
        let mut w =
            SnapshotWriter { path: path.to_owned(), map, _file: file, generation: 0, published: Snapshot::new_boxed() };
        w.initialise();
        Ok(w)
    }

    fn words(&self) -> &[AtomicU64] {
        shared_words(&self.map)
    }

    fn initialise(&mut self) {
        let words = self.words();
        let magic_version = words[MAGIC_VERSION_WORD].load(Ordering::Acquire);
        let old_gen = words[GENERATION_WORD].load(Ordering::Acquire);
        // Readers treat version 0 as "not ready" while we rewrite the file.
        words[MAGIC_VERSION_WORD].store(u64::from(MAGIC), Ordering::Release);
        let start = if magic_version as u32 == MAGIC { (old_gen | 1) + 1 } else { 0 };
        self.generation = start;
        // Every word differs from `published` (all ones) so all are stored.
        bytemuck::bytes_of_mut(&mut *self.published).fill(0xff);
        self.published.header.version = 0;
        let mut blank = Snapshot::new_boxed();
        blank.header.flags = header_flags::RUNNING;
        self.publish(&blank);
        let words = shared_words(&self.map);
        words[MAGIC_VERSION_WORD].store(u64::from(MAGIC) | (u64::from(LAYOUT_VERSION) << 32), Ordering::Release);
        self.published.header.version = LAYOUT_VERSION;
        // The publish above woke waiters while the version was still 0; a
        // reader that looked then saw "not ready". Wake them again now that
        // the file is usable, so a reader that sleeps until the next change
        // (pvmctl watch across a daemon restart) does not wait for one.
        futex::wake_all(futex_addr(&words[GENERATION_WORD]));
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The generation of the last publish (even).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Publishes `snap`: everything but the fields the writer owns (magic,
    /// version, generation, last update, pid, file size). Only the 8-byte
    /// words that changed are stored. Wakes readers waiting for a change.
    /// Returns the new generation.
    pub fn publish(&mut self, snap: &Snapshot) -> u64 {
        // The header is small: adjust a copy. The slots are compared in place,
        // so a publish reads the state once and copies nothing else.
        let mut header = snap.header;
        header.magic = MAGIC;
        header.version = self.published.header.version;
        header.daemon_pid = std::process::id();
        header.file_size = SNAPSHOT_SIZE as u32;
        let g = self.generation;
        let head: &[u64] = bytemuck::cast_slice(bytemuck::bytes_of(&header));
        let next: &[u64] = bytemuck::cast_slice(bytemuck::bytes_of(snap));
        let prev: &mut [u64] = bytemuck::cast_slice_mut(bytemuck::bytes_of_mut(&mut *self.published));
        // Borrows the mapping apart from `self.published`.
        let words = shared_words(&self.map);
        words[GENERATION_WORD].store(g + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, (&new, old)) in head.iter().chain(&next[head.len()..]).zip(prev.iter_mut()).enumerate() {
            if new != *old && i != GENERATION_WORD && i != LAST_UPDATE_WORD {
                words[i].store(new, Ordering::Relaxed);
                *old = new;
            }
        }
        let now = monotonic_ns();
        words[LAST_UPDATE_WORD].store(now, Ordering::Relaxed);
        words[GENERATION_WORD].store(g + 2, Ordering::Release);
        self.generation = g + 2;
        prev[LAST_UPDATE_WORD] = now;
        prev[GENERATION_WORD] = g + 2;
        futex::wake_all(futex_addr(&words[GENERATION_WORD]));
        self.generation
    }

    /// Publishes the last state once more with RUNNING and CONNECTED cleared,
    /// so readers see that the daemon stopped. The file stays.
    pub fn mark_stopped(&mut self) {
        let mut last = self.published.clone();
        last.header.flags &= !(header_flags::RUNNING | header_flags::CONNECTED);
        self.publish(&last);
    }
}

/// The writable mapping as atomic words, for as long as `map` is borrowed.
fn shared_words(map: &MmapRaw) -> &[AtomicU64] {
    debug_assert!(map.len() >= SNAPSHOT_SIZE);
    // SAFETY: `as_mut_ptr` of a shared, writable mapping of SNAPSHOT_SIZE
    // bytes (`create` maps exactly that much of a file at least that long):
    // page-aligned, with write permission, valid while `map` lives, which
    // the returned borrow ensures. Every access to the mapping, here and in
    // the readers of other processes, is atomic.
    unsafe { writable_words(map.as_mut_ptr(), SNAPSHOT_SIZE) }
}

#[cfg(target_endian = "big")]
compile_error!("the snapshot layout is little-endian; big-endian targets are not supported");
