//! Creating the control socket safely: a private directory, no symlinks, no
//! other user's files, a stale socket reclaimed, a live one left alone.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Why the socket cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// An I/O error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The path or its directory is a symlink.
    #[error("{}: refusing to use a symlink", path.display())]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// The path or its directory belongs to someone else.
    #[error("{}: owned by uid {owner}, not by us (uid {me}); refusing to use it", path.display())]
    ForeignOwner {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        me: u32,
    },
    /// Something other than a socket is in the way.
    #[error("{}: exists and is not a socket; refusing to replace it", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Another daemon answers on the socket.
    #[error("{}: another pipewire-volume-mixer-daemon is already serving this socket", path.display())]
    InUse {
        /// The path.
        path: PathBuf,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SocketError + '_ {
    move |source| SocketError::Io { path: path.to_owned(), source }
}

fn check_owner(path: &Path, meta: &fs::Metadata) -> Result<(), SocketError> {
    owned_by(path, meta.uid(), rustix::process::geteuid().as_raw())
}

fn owned_by(path: &Path, owner: u32, me: u32) -> Result<(), SocketError> {
    if owner != me {
        return Err(SocketError::ForeignOwner { path: path.to_owned(), owner, me });
    }
    Ok(())
}

/// Makes sure `dir` exists, is a real directory and is ours; a directory we
/// create is 0700.
pub fn private_dir(dir: &Path) -> Result<(), SocketError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) => {
            if meta.file_type().is_symlink() {
                return Err(SocketError::Symlink { path: dir.to_owned() });
            }
            if !meta.is_dir() {
                return Err(SocketError::Io {
                    path: dir.to_owned(),
                    source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
                });
            }
            check_owner(dir, &meta)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
            // `mode` is filtered by the umask; make it exact.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))
        }
        Err(e) => Err(io(dir)(e)),
    }
}

/// Binds a listening socket at `path`, mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            if meta.file_type().is_symlink() {
                return Err(SocketError::Symlink { path: path.to_owned() });
            }
            if !meta.file_type().is_socket() {
                return Err(SocketError::NotASocket { path: path.to_owned() });
            }
            check_owner(path, &meta)?;
            if UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse { path: path.to_owned() });
            }
            tracing::info!(path = %path.display(), "removing a stale control socket");
            fs::remove_file(path).map_err(io(path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path)(e)),
    }
    let listener = UnixListener::bind(path).map_err(io(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_dir_and_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run/pvm/socket");
        let _l = bind(&path).unwrap();
        let dir_mode = fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let sock_mode = fs::symlink_metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(sock_mode, 0o600);
        // A live socket is not taken over.
        assert!(matches!(bind(&path), Err(SocketError::InUse { .. })));
    }

    #[test]
    fn stale_socket_is_reclaimed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("socket");
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let _l = bind(&path).unwrap();
    }

    #[test]
    fn symlink_and_regular_file_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::write(&target, "keep").unwrap();
        let link = tmp.path().join("socket");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(bind(&link), Err(SocketError::Symlink { .. })));
        assert!(matches!(bind(&target), Err(SocketError::NotASocket { .. })));
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        let link_dir = tmp.path().join("linkdir");
        std::os::unix::fs::symlink(tmp.path(), &link_dir).unwrap();
        assert!(matches!(bind(&link_dir.join("s")), Err(SocketError::Symlink { .. })));
    }

    #[test]
    fn foreign_owner_is_refused() {
        let p = Path::new("/x");
        assert!(owned_by(p, 1000, 1000).is_ok());
        let err = owned_by(p, 65534, 1000).unwrap_err();
        assert!(matches!(err, SocketError::ForeignOwner { owner: 65534, me: 1000, .. }));
        assert!(err.to_string().contains("owned by uid 65534"));
    }
}
