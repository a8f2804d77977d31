//! The bed's private directory tree, the environment its processes see, and
//! the config files that keep PipeWire, WirePlumber and D-Bus inside it.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::error::{Error, Result};

/// Variables passed through from the caller's environment when set: logging
/// and backtraces of the programs under test.
const PASSED_THROUGH: &[&str] = &["RUST_LOG", "RUST_BACKTRACE", "PIPEWIRE_DEBUG", "WIREPLUMBER_DEBUG"];

/// The file name of the `pipewire.conf.d` fragment that lists the sinks.
pub(crate) const SINKS_FRAGMENT: &str = "90-testbed-sinks.conf";

/// `PATH` when the caller has none.
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// WirePlumber settings for a bed: no hardware monitors (they would open the
/// host's real sound cards, Bluetooth and cameras), no logind, no portal and
/// no device reservation (they talk to the user's session).
const WIREPLUMBER_FRAGMENT: &str = "\
# Written by the test bed: a session manager for virtual sinks only.
wireplumber.profiles = {
  main = {
    hardware.audio = disabled
    hardware.bluetooth = disabled
    hardware.video-capture = disabled
    support.reserve-device = disabled
    support.portal-permissionstore = disabled
    script.client.access-portal = disabled
    support.logind = disabled
  }
}
";

/// The directory layout of one bed, all under a fresh temporary directory.
#[derive(Debug)]
pub(crate) struct BedDirs {
    root: TempDir,
}

impl BedDirs {
    /// Creates the temporary tree and writes the static config files.
    pub(crate) fn create() -> Result<BedDirs> {
        let root = tempfile::Builder::new()
            .prefix("pvm-testbed-")
            .tempdir()
            .map_err(|e| Error::io("creating the test bed's temporary directory", e))?;
        let dirs = BedDirs { root };
        for dir in [
            dirs.runtime_dir(),
            dirs.state_home(),
            dirs.config_home(),
            dirs.data_home(),
            dirs.cache_home(),
            dirs.home(),
            dirs.logs(),
            dirs.pipewire_fragments(),
            dirs.wireplumber_fragments(),
        ] {
            create_private_dir(&dir)?;
        }
        write(&dirs.wireplumber_fragments().join("90-testbed.conf"), WIREPLUMBER_FRAGMENT)?;
        write(&dirs.dbus_config(), &dbus_config(&dirs.bus_socket()))?;
        Ok(dirs)
    }

    /// The temporary root.
    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    /// `XDG_RUNTIME_DIR` (mode 0700): PipeWire's, pipewire-pulse's and D-Bus's sockets.
    pub(crate) fn runtime_dir(&self) -> PathBuf {
        self.root().join("xdg-runtime")
    }

    fn state_home(&self) -> PathBuf {
        self.root().join("xdg-state")
    }

    fn config_home(&self) -> PathBuf {
        self.root().join("xdg-config")
    }

    fn data_home(&self) -> PathBuf {
        self.root().join("xdg-data")
    }

    fn cache_home(&self) -> PathBuf {
        self.root().join("xdg-cache")
    }

    fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// Where the bed's processes write their output (`<name>.log`).
    pub(crate) fn logs(&self) -> PathBuf {
        self.root().join("logs")
    }

    /// The log file of the process called `name`.
    pub(crate) fn log(&self, name: &str) -> PathBuf {
        self.logs().join(format!("{name}.log"))
    }

    fn pipewire_fragments(&self) -> PathBuf {
        self.config_home().join("pipewire/pipewire.conf.d")
    }

    /// WirePlumber 0.5's user fragments: `$XDG_CONFIG_HOME/wireplumber/wireplumber.conf.d`.
    pub(crate) fn wireplumber_fragments(&self) -> PathBuf {
        self.config_home().join("wireplumber/wireplumber.conf.d")
    }

    /// WirePlumber 0.5's user scripts: `$XDG_DATA_HOME/wireplumber/scripts`.
    pub(crate) fn wireplumber_scripts(&self) -> PathBuf {
        self.data_home().join("wireplumber/scripts")
    }

    /// The `pipewire.conf.d` fragment that lists the sinks.
    pub(crate) fn sinks_fragment(&self) -> PathBuf {
        self.pipewire_fragments().join(SINKS_FRAGMENT)
    }

    /// The private session bus's config file.
    pub(crate) fn dbus_config(&self) -> PathBuf {
        self.root().join("dbus-session.conf")
    }

    /// The private session bus socket.
    pub(crate) fn bus_socket(&self) -> PathBuf {
        self.runtime_dir().join("bus")
    }

    /// PipeWire's socket.
    pub(crate) fn pipewire_socket(&self) -> PathBuf {
        self.runtime_dir().join("pipewire-0")
    }

    /// pipewire-pulse's socket.
    pub(crate) fn pulse_socket(&self) -> PathBuf {
        self.runtime_dir().join("pulse/native")
    }

    /// The environment every process of the bed gets (and nothing else).
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut env = vec![
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_else(|_| FALLBACK_PATH.to_owned())),
            ("HOME".to_owned(), path(self.home())),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
            ("XDG_RUNTIME_DIR".to_owned(), path(self.runtime_dir())),
            ("XDG_STATE_HOME".to_owned(), path(self.state_home())),
            ("XDG_CONFIG_HOME".to_owned(), path(self.config_home())),
            ("XDG_DATA_HOME".to_owned(), path(self.data_home())),
            ("XDG_CACHE_HOME".to_owned(), path(self.cache_home())),
            ("DBUS_SESSION_BUS_ADDRESS".to_owned(), format!("unix:path={}", self.bus_socket().display())),
            // Nothing of a bed has business on the host's system bus (RTKit, logind).
            (
                "DBUS_SYSTEM_BUS_ADDRESS".to_owned(),
                format!("unix:path={}", self.runtime_dir().join("no-system-bus").display()),
            ),
        ];
        for name in PASSED_THROUGH {
            if let Ok(value) = std::env::var(name) {
                env.push(((*name).to_owned(), value));
            }
        }
        env
    }

    /// A command for `program` with exactly [`BedDirs::env`] as its environment,
    /// run from the bed's root.
    pub(crate) fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env_clear().envs(self.env()).current_dir(self.root());
        command
    }

    /// Creates (or opens for appending) the log file of `name`.
    pub(crate) fn open_log(&self, name: &str) -> Result<fs::File> {
        let path = self.log(name);
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))
    }

    /// The last `lines` lines of `name`'s log, for error messages: empty, or
    /// starting with a newline and a heading.
    pub(crate) fn log_tail(&self, name: &str, lines: usize) -> String {
        tail_of(&self.log(name), lines)
            .map(|tail| format!("\n--- last lines of {} ---\n{tail}", self.log(name).display()))
            .unwrap_or_default()
    }
}

/// The last `lines` lines of a text file, if it exists and is not empty.
pub(crate) fn tail_of(path: &Path, lines: usize) -> Option<String> {
    let text = fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    if all.is_empty() {
        return None;
    }
    Some(all[all.len().saturating_sub(lines)..].join("\n"))
}

/// Creates `dir` (and parents) with mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o700)))
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

/// Writes a whole file (atomically enough for files read only at process start).
pub(crate) fn write(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// A session-bus config that listens only on `socket` and activates no services.
fn dbus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Written by the test bed: a private session bus without service activation. -->
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}
