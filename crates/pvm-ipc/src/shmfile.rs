//! Opening the snapshot file safely, and the errors of the snapshot code.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::layout::{LAYOUT_VERSION, SNAPSHOT_SIZE};

/// What can go wrong with the snapshot file.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// An I/O error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The path is a symlink.
    #[error("{}: is a symlink; refusing to follow it", path.display())]
    Symlink {
        /// The file.
        path: PathBuf,
    },
    /// The path is not a regular file.
    #[error("{}: not a regular file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// The file belongs to another user.
    #[error("{}: owned by uid {owner}, not by us (uid {me}); refusing to use it", path.display())]
    ForeignOwner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        me: u32,
    },
    /// Another daemon holds the file.
    #[error("{}: another pipewire-volume-mixer-daemon{} is already running for this user", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    AlreadyRunning {
        /// The file.
        path: PathBuf,
        /// The other daemon's pid, if readable.
        pid: Option<u32>,
    },
    /// The file is smaller than a snapshot.
    #[error("{}: {size} bytes, too small for a snapshot ({SNAPSHOT_SIZE} bytes)", path.display())]
    TooSmall {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file does not start with the magic number.
    #[error("{}: not a pipewire-volume-mixer snapshot (bad magic)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// The daemon has not finished initialising the file.
    #[error("{}: the daemon is still initialising the snapshot", path.display())]
    NotReady {
        /// The file.
        path: PathBuf,
    },
    /// A layout version this reader does not know.
    #[error("{}: snapshot layout version {version} is not supported (this reader knows {LAYOUT_VERSION})", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The generation never settled (a writer died in the middle of a publish).
    #[error("{}: the snapshot never settled; did the daemon die while publishing?", path.display())]
    Busy {
        /// The file.
        path: PathBuf,
    },
}

impl ShmError {
    /// Whether the error means there is no file at the path.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ShmError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ShmError + '_ {
    move |source| {
        if source.raw_os_error() == Some(libc::ELOOP) {
            ShmError::Symlink { path: path.to_owned() }
        } else {
            ShmError::Io { path: path.to_owned(), source }
        }
    }
}

/// Opens `path` without following a symlink, checks it is a regular file we
/// own (when `must_own`), and returns it with its size.
pub(crate) fn open(path: &Path, write: bool, must_own: bool) -> Result<(File, u64), ShmError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if write {
        opts.write(true).create(true).mode(0o600);
    }
    let file = opts.open(path).map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.file_type().is_file() {
        return Err(ShmError::NotRegular { path: path.to_owned() });
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if must_own && meta.uid() != me {
        return Err(ShmError::ForeignOwner { path: path.to_owned(), owner: meta.uid(), me });
    }
    Ok((file, meta.len()))
}

/// Takes an exclusive, non-blocking `flock` on the file. `Ok(false)` if
/// another process holds it.
pub(crate) fn try_lock(file: &File, path: &Path) -> Result<bool, ShmError> {
    // SAFETY: the fd is open for the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(io_err(path)(err))
    }
}
