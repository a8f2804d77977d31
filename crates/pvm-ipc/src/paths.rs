//! Where the daemon keeps its files, and how to override each place.
//!
//! | file | default | environment |
//! |---|---|---|
//! | shared memory | `/dev/shm/pipewire-volume-mixer-<uid>` | `PVM_SHM` |
//! | control socket | `$XDG_RUNTIME_DIR/pipewire-volume-mixer/socket` | `PVM_SOCKET` |
//! | stats | `$XDG_RUNTIME_DIR/pipewire-volume-mixer/stats` | `PVM_STATS` |
//! | config | `$XDG_CONFIG_HOME/pipewire-volume-mixer/config.toml` | `PVM_CONFIG` |
//! | persisted routes | `$XDG_STATE_HOME/pipewire-volume-mixer/routes.toml` | `PVM_STATE` |
//!
//! `XDG_RUNTIME_DIR` defaults to `/run/user/<uid>`, `XDG_CONFIG_HOME` to
//! `~/.config`, `XDG_STATE_HOME` to `~/.local/state` and `XDG_DATA_HOME`
//! (where `pvmctl setup` installs the WirePlumber hook) to `~/.local/share`. As the XDG base
//! directory specification asks, an empty or relative `XDG_*` value is
//! ignored. An empty `PVM_*` value counts as unset.
//!
//! The free functions read the process environment; [`Resolver`] takes any
//! lookup function, so the rules can be tested without touching the
//! environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The directory name used under the XDG directories.
pub const APP_DIR: &str = "pipewire-volume-mixer";
/// Overrides the shared-memory path.
pub const ENV_SHM: &str = "PVM_SHM";
/// Overrides the control socket path.
pub const ENV_SOCKET: &str = "PVM_SOCKET";
/// Overrides the stats file path.
pub const ENV_STATS: &str = "PVM_STATS";
/// Overrides the config file path.
pub const ENV_CONFIG: &str = "PVM_CONFIG";
/// Overrides the persisted routes path.
pub const ENV_STATE: &str = "PVM_STATE";

/// Looks up one environment variable.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Computes the default paths from an environment and a user id.
pub struct Resolver<'a> {
    env: EnvLookup<'a>,
    uid: u32,
}

impl Resolver<'static> {
    /// The resolver for this process: its environment and real user id.
    pub fn from_process() -> Self {
        Resolver { env: &|name| std::env::var_os(name), uid: current_uid() }
    }
}

impl<'a> Resolver<'a> {
    /// A resolver over `env` for user `uid`.
    pub fn new(env: EnvLookup<'a>, uid: u32) -> Self {
        Resolver { env, uid }
    }

    /// The shared-memory snapshot file.
    pub fn shm(&self) -> PathBuf {
        self.overridden(ENV_SHM).unwrap_or_else(|| PathBuf::from(format!("/dev/shm/{APP_DIR}-{}", self.uid)))
    }

    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.overridden(ENV_SOCKET).unwrap_or_else(|| self.runtime_dir().join("socket"))
    }

    /// The stats file.
    pub fn stats(&self) -> PathBuf {
        self.overridden(ENV_STATS).unwrap_or_else(|| self.runtime_dir().join("stats"))
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.overridden(ENV_CONFIG)
            .unwrap_or_else(|| self.xdg_dir("XDG_CONFIG_HOME", ".config").join(APP_DIR).join("config.toml"))
    }

    /// The persisted routes.
    pub fn state(&self) -> PathBuf {
        self.overridden(ENV_STATE)
            .unwrap_or_else(|| self.xdg_dir("XDG_STATE_HOME", ".local/state").join(APP_DIR).join("routes.toml"))
    }

    /// `$XDG_CONFIG_HOME`, or `~/.config`.
    pub fn config_home(&self) -> PathBuf {
        self.xdg_dir("XDG_CONFIG_HOME", ".config")
    }

    /// `$XDG_DATA_HOME`, or `~/.local/share`.
    pub fn data_home(&self) -> PathBuf {
        self.xdg_dir("XDG_DATA_HOME", ".local/share")
    }

    /// The daemon's directory in the runtime dir, holding the socket and the
    /// stats file by default: `$XDG_RUNTIME_DIR/pipewire-volume-mixer`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.absolute("XDG_RUNTIME_DIR")
            .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", self.uid)))
            .join(APP_DIR)
    }

    /// A `PVM_*` override, when set and not empty.
    fn overridden(&self, name: &str) -> Option<PathBuf> {
        (self.env)(name).filter(|v| !v.is_empty()).map(PathBuf::from)
    }

    /// An XDG variable, when it holds an absolute path.
    fn absolute(&self, name: &str) -> Option<PathBuf> {
        (self.env)(name).map(PathBuf::from).filter(|p| p.is_absolute())
    }

    /// `$name`, or `$HOME/fallback`.
    fn xdg_dir(&self, name: &str, fallback: &str) -> PathBuf {
        self.absolute(name).unwrap_or_else(|| self.home().join(fallback))
    }

    /// `$HOME`, or the home directory in the user database.
    fn home(&self) -> PathBuf {
        (self.env)("HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(home_from_user_database)
            .unwrap_or_else(|| Path::new("/").to_path_buf())
    }
}

/// The real user id of this process.
pub fn current_uid() -> u32 {
    // SAFETY: getuid(2) has no preconditions, touches no memory and cannot fail.
    unsafe { libc::getuid() }
}

#[allow(deprecated)] // Its Unix behaviour (HOME, then getpwuid_r) is what we want.
fn home_from_user_database() -> Option<PathBuf> {
    std::env::home_dir()
}

/// The shared-memory snapshot file (see the [module docs](self)).
pub fn shm_path() -> PathBuf {
    Resolver::from_process().shm()
}

/// The control socket (see the [module docs](self)).
pub fn socket_path() -> PathBuf {
    Resolver::from_process().socket()
}

/// The stats file (see the [module docs](self)).
pub fn stats_path() -> PathBuf {
    Resolver::from_process().stats()
}

/// The config file (see the [module docs](self)).
pub fn config_path() -> PathBuf {
    Resolver::from_process().config()
}

/// The persisted routes (see the [module docs](self)).
pub fn state_path() -> PathBuf {
    Resolver::from_process().state()
}

/// `$XDG_RUNTIME_DIR/pipewire-volume-mixer` (see the [module docs](self)).
pub fn runtime_dir() -> PathBuf {
    Resolver::from_process().runtime_dir()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with_env(vars: &[(&str, &str)], check: impl FnOnce(&Resolver<'_>)) {
        let map: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        let lookup = move |name: &str| map.get(name).cloned();
        check(&Resolver::new(&lookup, 1234));
    }

    #[test]
    fn defaults_follow_xdg_variables() {
        with_env(
            &[
                ("HOME", "/home/u"),
                ("XDG_RUNTIME_DIR", "/run/user/1234"),
                ("XDG_CONFIG_HOME", "/cfg"),
                ("XDG_STATE_HOME", "/st"),
                ("XDG_DATA_HOME", "/data"),
            ],
            |r| {
                assert_eq!(r.config_home(), Path::new("/cfg"));
                assert_eq!(r.data_home(), Path::new("/data"));
                assert_eq!(r.shm(), Path::new("/dev/shm/pipewire-volume-mixer-1234"));
                assert_eq!(r.socket(), Path::new("/run/user/1234/pipewire-volume-mixer/socket"));
                assert_eq!(r.stats(), Path::new("/run/user/1234/pipewire-volume-mixer/stats"));
                assert_eq!(r.config(), Path::new("/cfg/pipewire-volume-mixer/config.toml"));
                assert_eq!(r.state(), Path::new("/st/pipewire-volume-mixer/routes.toml"));
            },
        );
    }

    #[test]
    fn unset_xdg_variables_fall_back() {
        with_env(&[("HOME", "/home/u")], |r| {
            assert_eq!(r.config_home(), Path::new("/home/u/.config"));
            assert_eq!(r.data_home(), Path::new("/home/u/.local/share"));
            assert_eq!(r.socket(), Path::new("/run/user/1234/pipewire-volume-mixer/socket"));
            assert_eq!(r.stats(), Path::new("/run/user/1234/pipewire-volume-mixer/stats"));
            assert_eq!(r.config(), Path::new("/home/u/.config/pipewire-volume-mixer/config.toml"));
            assert_eq!(r.state(), Path::new("/home/u/.local/state/pipewire-volume-mixer/routes.toml"));
        });
    }

    #[test]
    fn empty_or_relative_xdg_variables_are_ignored() {
        with_env(
            &[
                ("HOME", "/home/u"),
                ("XDG_RUNTIME_DIR", ""),
                ("XDG_CONFIG_HOME", "relative/cfg"),
                ("XDG_STATE_HOME", ""),
            ],
            |r| {
                assert_eq!(r.runtime_dir(), Path::new("/run/user/1234/pipewire-volume-mixer"));
                assert_eq!(r.config(), Path::new("/home/u/.config/pipewire-volume-mixer/config.toml"));
                assert_eq!(r.state(), Path::new("/home/u/.local/state/pipewire-volume-mixer/routes.toml"));
            },
        );
    }

    #[test]
    fn pvm_variables_override_everything() {
        with_env(
            &[
                ("HOME", "/home/u"),
                ("XDG_RUNTIME_DIR", "/run/user/1234"),
                (ENV_SHM, "/tmp/a/shm"),
                (ENV_SOCKET, "/tmp/a/sock"),
                (ENV_STATS, "/tmp/a/stats"),
                (ENV_CONFIG, "/tmp/a/config.toml"),
                (ENV_STATE, "/tmp/a/routes.toml"),
            ],
            |r| {
                assert_eq!(r.shm(), Path::new("/tmp/a/shm"));
                assert_eq!(r.socket(), Path::new("/tmp/a/sock"));
                assert_eq!(r.stats(), Path::new("/tmp/a/stats"));
                assert_eq!(r.config(), Path::new("/tmp/a/config.toml"));
                assert_eq!(r.state(), Path::new("/tmp/a/routes.toml"));
            },
        );
    }

    #[test]
    fn empty_pvm_variable_counts_as_unset() {
        with_env(&[(ENV_SHM, ""), (ENV_SOCKET, "")], |r| {
            assert_eq!(r.shm(), Path::new("/dev/shm/pipewire-volume-mixer-1234"));
            assert_eq!(r.socket(), Path::new("/run/user/1234/pipewire-volume-mixer/socket"));
        });
    }

    #[test]
    fn current_uid_owns_the_files_we_create() {
        use std::os::unix::fs::MetadataExt;
        let file = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(file.as_file().metadata().unwrap().uid(), current_uid());
    }
}
