//! The readers' side of the snapshot: a consistent copy, and a wait for the
//! next change that sleeps in the kernel.

use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use memmap2::MmapRaw;

use crate::futex;
use crate::layout::{header_flags, Snapshot, LAYOUT_VERSION, MAGIC, SNAPSHOT_SIZE};
pub use crate::shmfile::ShmError;
use crate::shmfile::{io_err, open};
use crate::words::{ReadOnlyWords, GENERATION_WORD, MAGIC_VERSION_WORD};

/// How long `read` keeps retrying while a publish is in progress.
const SETTLE_LIMIT: Duration = Duration::from_millis(200);

/// A read-only view of the snapshot file.
pub struct SnapshotReader {
    path: PathBuf,
    /// Mapped read-only. `MmapRaw` hands out raw pointers only, never a
    /// `&[u8]` that would claim the bytes do not change under it.
    map: MmapRaw,
}

impl SnapshotReader {
    /// Maps the snapshot at `path` (never through a symlink) and checks its
    /// magic number and layout version.
    pub fn open(path: &Path) -> Result<SnapshotReader, ShmError> {
        let (file, size) = open(path, false, false)?;
        if size < SNAPSHOT_SIZE as u64 {
            return Err(ShmError::TooSmall { path: path.to_owned(), size });
        }
        let map = memmap2::MmapOptions::new().len(SNAPSHOT_SIZE).map_raw_read_only(&file).map_err(io_err(path))?;
        let reader = SnapshotReader { path: path.to_owned(), map };
        let word0 = reader.words().load_acquire(MAGIC_VERSION_WORD);
        let (magic, version) = (word0 as u32, (word0 >> 32) as u32);
        if magic != MAGIC {
            return Err(ShmError::BadMagic { path: path.to_owned() });
        }
        match version {
            0 => Err(ShmError::NotReady { path: path.to_owned() }),
            LAYOUT_VERSION => Ok(reader),
            v => Err(ShmError::UnsupportedVersion { path: path.to_owned(), version: v }),
        }
    }

    fn words(&self) -> ReadOnlyWords<'_> {
        // SAFETY: the mapping is page-aligned (so 8-byte aligned), exactly
        // SNAPSHOT_SIZE bytes long (checked against the file size in `open`)
        // and lives as long as the borrow of self. Other processes store to
        // it only with atomics (writer.rs), and ReadOnlyWords only loads.
        unsafe { ReadOnlyWords::new(self.map.as_ptr(), SNAPSHOT_SIZE) }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current generation (odd while a publish is in progress).
    pub fn generation(&self) -> u64 {
        self.words().load_acquire(GENERATION_WORD)
    }

    /// A consistent copy of the snapshot.
    pub fn read(&self) -> Result<Box<Snapshot>, ShmError> {
        let mut snap = Snapshot::new_boxed();
        self.read_into(&mut snap)?;
        Ok(snap)
    }

    /// Copies a consistent snapshot into `dst`; returns its generation.
    /// Never returns a torn copy: it retries while a publish is in progress.
    ///
    /// The seqlock read: load the generation (`Relaxed`) and fence
    /// (`Acquire`), so the copy sees at least that publish; copy every word
    /// with `Relaxed` loads; fence (`Acquire`) and load the generation again.
    /// If a copied word came from a later publish, the writer's `Release`
    /// fence after making the generation odd makes that odd value (or a
    /// later one) visible to the second load, so the two loads differ and
    /// the copy is thrown away.
    pub fn read_into(&self, dst: &mut Snapshot) -> Result<u64, ShmError> {
        let words = self.words();
        let out: &mut [u64] = bytemuck::cast_slice_mut(bytemuck::bytes_of_mut(dst));
        debug_assert_eq!(out.len(), words.len());
        let mut deadline: Option<Instant> = None;
        let mut spins = 0u32;
        loop {
            let before = words.load_acquire(GENERATION_WORD);
            if before & 1 == 0 {
                words.copy_relaxed(out);
                fence(Ordering::Acquire);
                let after = words.load(GENERATION_WORD);
                if before == after {
                    return self.check(dst).map(|()| before);
                }
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                let limit = *deadline.get_or_insert_with(|| Instant::now() + SETTLE_LIMIT);
                if Instant::now() > limit {
                    return Err(ShmError::Busy { path: self.path.clone() });
                }
                std::thread::yield_now();
            }
        }
    }

    fn check(&self, snap: &Snapshot) -> Result<(), ShmError> {
        match (snap.header.magic, snap.header.version) {
            (MAGIC, LAYOUT_VERSION) => Ok(()),
            (MAGIC, 0) => Err(ShmError::NotReady { path: self.path.clone() }),
            (MAGIC, v) => Err(ShmError::UnsupportedVersion { path: self.path.clone(), version: v }),
            _ => Err(ShmError::BadMagic { path: self.path.clone() }),
        }
    }

    /// Waits until the generation differs from `since` (and no publish is in
    /// progress): `Ok(true)`. `Ok(false)` when `timeout` passes first. Sleeps
    /// on a futex on the generation word; no polling.
    pub fn wait_for_change(&self, since: u64, timeout: Option<Duration>) -> Result<bool, ShmError> {
        let words = self.words();
        let addr = words.futex_addr(GENERATION_WORD);
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let g = words.load_acquire(GENERATION_WORD);
            if g != since && g & 1 == 0 {
                return Ok(true);
            }
            let remaining = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(r) if !r.is_zero() => Some(r),
                    _ => return Ok(false),
                },
                None => None,
            };
            futex::wait(addr, g as u32, remaining);
        }
    }

    /// Sleeps once on the futex: returns when the generation differs from
    /// `since`, on any wake-up (a publish, [`wake_waiters`](Self::wake_waiters),
    /// a signal), or after `timeout`. `Ok(true)` if the generation changed.
    /// For loops that re-check their own condition after every wake-up.
    pub fn wait_once(&self, since: u64, timeout: Option<Duration>) -> Result<bool, ShmError> {
        let words = self.words();
        let g = words.load_acquire(GENERATION_WORD);
        if g == since || g & 1 == 1 {
            futex::wait(words.futex_addr(GENERATION_WORD), g as u32, timeout);
        }
        let now = words.load_acquire(GENERATION_WORD);
        Ok(now != since && now & 1 == 0)
    }

    /// Wakes every waiter sleeping on this snapshot, in this and other
    /// processes, without a publish: [`wait_once`](Self::wait_once) returns,
    /// [`wait_for_change`](Self::wait_for_change) re-checks and sleeps again.
    pub fn wake_waiters(&self) {
        futex::wake_all(self.words().futex_addr(GENERATION_WORD));
    }

    /// Starts a thread that calls [`wake_waiters`](Self::wake_waiters) when
    /// process `pid` (the daemon) exits, so a reader blocked without a
    /// timeout notices a daemon that died without publishing. Uses a pidfd:
    /// the thread sleeps in the kernel until the process is gone.
    pub fn wake_on_exit(self: &std::sync::Arc<Self>, pid: u32) -> std::io::Result<()> {
        let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        let reader = std::sync::Arc::clone(self);
        std::thread::Builder::new().name("daemon-exit".into()).spawn(move || {
            let mut pfd = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&fd), events: libc::POLLIN, revents: 0 };
            loop {
                // SAFETY: pfd is a valid pollfd for the duration of the call.
                let rc = unsafe { libc::poll(&mut pfd, 1, -1) };
                if rc > 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    break;
                }
            }
            reader.wake_waiters();
        })?;
        Ok(())
    }

    /// Whether the daemon that owns the snapshot is alive: the RUNNING flag
    /// is set and its process exists.
    pub fn daemon_alive(&self, snap: &Snapshot) -> bool {
        if snap.header.flags & header_flags::RUNNING == 0 || snap.header.daemon_pid == 0 {
            return false;
        }
        let Ok(pid) = libc::pid_t::try_from(snap.header.daemon_pid) else { return false };
        // SAFETY: signal 0 only checks that the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}
