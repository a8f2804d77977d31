//! WirePlumber 0.4.13 (Debian 12's own package) from a private prefix, beside
//! the installed WirePlumber 0.5, for beds built with
//! [`WirePlumber::V0_4`](crate::WirePlumber::V0_4).
//!
//! The packages are fetched with `apt-get download` (no root, nothing
//! installed), unpacked with `dpkg -x` into `<target dir>/wireplumber-0.4/`
//! once, and reused by every later bed. The prefix is built in a temporary
//! directory next to it and renamed into place, so tests that start such beds
//! in parallel never see a half-made one; a stamp file inside marks it as
//! complete.
//!
//! Its WirePlumber runs against the installed PipeWire with `LD_LIBRARY_PATH`,
//! `WIREPLUMBER_MODULE_DIR`, `WIREPLUMBER_CONFIG_DIR` and
//! `WIREPLUMBER_DATA_DIR` pointing into the prefix. Its configuration there
//! gets one addition, the equivalent of the 0.5 bed's fragment: no ALSA,
//! V4L2, libcamera or Bluetooth monitors.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::{hook, tool};

/// The packages, with the versions asked for first (Debian 12's).
const PACKAGES: [(&str, &str); 3] =
    [("wireplumber", "0.4.13-1"), ("libwireplumber-0.4-0", "0.4.13-1"), ("liblua5.3-0", "5.3.6-2")];

/// The cache directory's name under the target directory.
const DIR_NAME: &str = "wireplumber-0.4";

/// Overrides where the prefix is kept.
const DIR_ENV: &str = "PVM_WIREPLUMBER_04_DIR";

/// Marks a complete prefix; its content changes whenever what the bed writes
/// into the prefix changes, so an old prefix is rebuilt.
const STAMP: &str = ".testbed-prefix";
const STAMP_CONTENT: &str = "testbed wireplumber-0.4 prefix, layout 1\n";

/// How long downloading and unpacking may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// `main.lua.d` addition: loaded after the `50-*-config.lua` files and before
/// `90-enable-all.lua`, which starts the monitors that are enabled.
const MAIN_LUA: &str = "\
-- Written by the test bed: a session manager for virtual sinks only.
alsa_monitor.enabled = false
v4l2_monitor.enabled = false
libcamera_monitor.enabled = false
";
const BLUETOOTH_LUA: &str = "\
-- Written by the test bed: no Bluetooth.
bluez_monitor.enabled = false
";

/// An unpacked WirePlumber 0.4.
#[derive(Debug, Clone)]
pub(crate) struct Prefix {
    root: PathBuf,
    lib: PathBuf,
    /// Its configuration and scripts (`usr/share/wireplumber`, or a copy).
    share: PathBuf,
}

impl Prefix {
    /// The `wireplumber` binary.
    pub(crate) fn wireplumber(&self) -> PathBuf {
        self.root.join("usr/bin/wireplumber")
    }

    /// The variables that make the binary use the prefix (and only the
    /// binary: `wpctl` and friends of the bed stay the installed 0.5 ones).
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            ("LD_LIBRARY_PATH".into(), path(&self.lib)),
            ("WIREPLUMBER_MODULE_DIR".into(), path(&self.lib.join("wireplumber-0.4"))),
            ("WIREPLUMBER_CONFIG_DIR".into(), path(&self.share)),
            ("WIREPLUMBER_DATA_DIR".into(), path(&self.share)),
        ]
    }

    /// The same prefix reading its configuration and scripts from a copy in
    /// `dir` that also holds pipewire-volume-mixer's hook files where 0.4
    /// finds them (`wireplumber.conf.d/`, `scripts/`), as on the desktop of
    /// a user who installed the hook.
    pub(crate) fn with_hook_files(&self, dir: &Path) -> Result<Prefix> {
        copy_tree(&self.share, dir)?;
        crate::dirs::create_private_dir(&dir.join("wireplumber.conf.d"))?;
        crate::dirs::write(&dir.join("wireplumber.conf.d").join(hook::HOLD_FRAGMENT_NAME), hook::HOLD_FRAGMENT)?;
        crate::dirs::write(&dir.join("scripts").join(hook::HOLD_SCRIPT_NAME), hook::HOLD_SCRIPT)?;
        Ok(Prefix { share: dir.to_owned(), ..self.clone() })
    }

    /// The prefix at `root`, if it is complete.
    fn open(root: &Path) -> Option<Prefix> {
        if fs::read_to_string(root.join(STAMP)).ok()? != STAMP_CONTENT {
            return None;
        }
        let lib = library_dir(root)?;
        let prefix = Prefix { root: root.to_owned(), lib, share: root.join("usr/share/wireplumber") };
        prefix.wireplumber().is_file().then_some(prefix)
    }
}

/// The prefix, fetched and unpacked first if this is the first use.
pub(crate) fn prefix() -> Result<Prefix> {
    let root = cache_dir()?;
    if let Some(prefix) = Prefix::open(&root) {
        return Ok(prefix);
    }
    let parent = root.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    let work = tempfile::Builder::new()
        .prefix(".wireplumber-0.4-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(format!("creating a temporary directory in {}", parent.display()), e))?;
    let made = work.path().join("prefix");
    build(work.path(), &made)?;
    // Replace an incomplete or outdated prefix; then the rename either puts
    // ours in place or finds that a parallel test was faster.
    if root.exists() && Prefix::open(&root).is_none() {
        let old = work.path().join("old");
        let _ = fs::rename(&root, old);
    }
    if let Err(e) = fs::rename(&made, &root) {
        if Prefix::open(&root).is_none() {
            return Err(Error::io(format!("moving the prefix to {}", root.display()), e));
        }
    }
    Prefix::open(&root).ok_or_else(|| {
        Error::io(format!("checking {}", root.display()), std::io::Error::other("the prefix is incomplete"))
    })
}

/// Where the prefix lives: `$PVM_WIREPLUMBER_04_DIR`, or `wireplumber-0.4/`
/// in the Cargo target directory the running executable was built into.
fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the path of the running executable", e))?;
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(|target| target.join(DIR_NAME))
        .ok_or_else(|| Error::CommandFailed {
            command: "finding the Cargo target directory".into(),
            status: "not found".into(),
            stderr: format!("{} is not inside a target directory; set {DIR_ENV}", exe.display()),
        })
}

/// Downloads the packages into `work/debs` and unpacks them into `into`.
fn build(work: &Path, into: &Path) -> Result<()> {
    let debs = work.join("debs");
    for dir in [&debs, into] {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let exact: Vec<String> = PACKAGES.iter().map(|(name, version)| format!("{name}={version}")).collect();
    if let Err(first) = download(&debs, &exact) {
        let fallback = fallback_versions()?;
        tracing::info!(?exact, ?fallback, "exact versions not available ({first}); trying the archive's");
        download(&debs, &fallback)?;
    }
    let mut count = 0;
    for entry in fs::read_dir(&debs).map_err(|e| Error::io(format!("reading {}", debs.display()), e))? {
        let path = entry.map_err(|e| Error::io(format!("reading {}", debs.display()), e))?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            let mut command = Command::new("dpkg");
            command.arg("-x").arg(&path).arg(into);
            tool::run_ok(command, FETCH_TIMEOUT)?;
            count += 1;
        }
    }
    if count != PACKAGES.len() {
        return Err(Error::CommandFailed {
            command: "apt-get download".into(),
            status: format!("{count} packages"),
            stderr: format!("expected {} .deb files in {}", PACKAGES.len(), debs.display()),
        });
    }
    let share = into.join("usr/share/wireplumber");
    crate::dirs::write(&share.join("main.lua.d/60-testbed.lua"), MAIN_LUA)?;
    crate::dirs::write(&share.join("bluetooth.lua.d/60-testbed.lua"), BLUETOOTH_LUA)?;
    library_dir(into).ok_or_else(|| Error::CommandFailed {
        command: "dpkg -x".into(),
        status: "incomplete".into(),
        stderr: format!("no usr/lib/*/wireplumber-0.4 in {}", into.display()),
    })?;
    crate::dirs::write(&into.join(STAMP), STAMP_CONTENT)
}

/// `apt-get download` of `packages` into `dir`.
fn download(dir: &Path, packages: &[String]) -> Result<()> {
    let mut command = Command::new("apt-get");
    command.arg("download").args(packages).current_dir(dir);
    tool::run_ok(command, FETCH_TIMEOUT).map(drop).map_err(|e| match e {
        Error::CommandFailed { command, status, stderr } => Error::CommandFailed {
            command,
            status,
            stderr: format!("{stderr}\n(are the apt package lists present? scripts/setup.sh fetches them)"),
        },
        other => other,
    })
}

/// The packages with the newest 0.4 version the archive has (for the two
/// WirePlumber packages) and the candidate version (for Lua).
fn fallback_versions() -> Result<Vec<String>> {
    let mut command = Command::new("apt-cache");
    command.args(["madison", "wireplumber"]);
    let output = tool::run_ok(command, FETCH_TIMEOUT)?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text
        .lines()
        .filter_map(|line| line.split('|').nth(1).map(str::trim))
        .find(|v| v.starts_with("0.4."))
        .ok_or_else(|| Error::CommandFailed {
            command: "apt-cache madison wireplumber".into(),
            status: "no 0.4 version".into(),
            stderr: text.trim().to_owned(),
        })?;
    Ok(vec![format!("wireplumber={version}"), format!("libwireplumber-0.4-0={version}"), "liblua5.3-0".into()])
}

/// `usr/lib/<multiarch>` of the prefix: the directory that holds `wireplumber-0.4/`.
fn library_dir(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root.join("usr/lib"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|dir| dir.join("wireplumber-0.4").is_dir())
}

/// Copies the directory tree `from` to `to` (files and directories only).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| Error::io(format!("creating {}", to.display()), e))?;
    for entry in fs::read_dir(from).map_err(|e| Error::io(format!("reading {}", from.display()), e))? {
        let entry = entry.map_err(|e| Error::io(format!("reading {}", from.display()), e))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            fs::copy(&source, &target)
                .map_err(|e| Error::io(format!("copying {} to {}", source.display(), target.display()), e))?;
        }
    }
    Ok(())
}
