//! Debian 12's own PipeWire 0.3.65 and WirePlumber 0.4.13 from a private
//! prefix, beside the installed PipeWire 1.4 and WirePlumber 0.5, for beds
//! on the older [`Stack`](crate::Stack)s.
//!
//! The packages are fetched with `apt-get download` (no root, nothing
//! installed), unpacked with `dpkg -x` into a directory under the Cargo
//! target directory once, and reused by every later bed: `wireplumber-0.4/`
//! (WirePlumber 0.4.13 and Lua 5.3 only, run against the installed PipeWire)
//! and `pipewire-0.3/` (the same plus PipeWire 0.3.65's server, libraries,
//! SPA plugins and modules). A prefix is built in a temporary directory next
//! to it and renamed into place, so tests that start such beds in parallel
//! never see a half-made one; a stamp file inside marks it as complete.
//!
//! Programs of a prefix run with every variable pointing into that same
//! prefix: `LD_LIBRARY_PATH`, `WIREPLUMBER_MODULE_DIR`,
//! `WIREPLUMBER_CONFIG_DIR`, `WIREPLUMBER_DATA_DIR`, and for the PipeWire one
//! also `SPA_PLUGIN_DIR`, `PIPEWIRE_MODULE_DIR` and `PIPEWIRE_CONFIG_DIR`
//! (WirePlumber loads SPA plugins and PipeWire modules through its
//! libpipewire: the installed 1.4 ones in a 0.3.65 process crash it). The
//! bed's clients (`pw-dump`, `pw-cli`, `wpctl`, the daemon) stay the
//! installed ones: PipeWire's protocol is compatible across these versions.
//!
//! WirePlumber 0.4's configuration in the prefix gets one addition, the
//! equivalent of the 0.5 bed's fragment: no ALSA, V4L2, libcamera or
//! Bluetooth monitors.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::{hook, tool};

/// WirePlumber 0.4.13 with Lua 5.3 (Debian 12's versions first).
const WIREPLUMBER_PACKAGES: [(&str, &str); 3] =
    [("wireplumber", "0.4.13-1"), ("libwireplumber-0.4-0", "0.4.13-1"), ("liblua5.3-0", "5.3.6-2")];

/// PipeWire 0.3.65's server, tools, libraries, modules and SPA plugins.
const PIPEWIRE_PACKAGES: [(&str, &str); 5] = [
    ("pipewire", "0.3.65-3+deb12u1"),
    ("pipewire-bin", "0.3.65-3+deb12u1"),
    ("libpipewire-0.3-0", "0.3.65-3+deb12u1"),
    ("libpipewire-0.3-modules", "0.3.65-3+deb12u1"),
    ("libspa-0.2-modules", "0.3.65-3+deb12u1"),
];

/// What a prefix holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// WirePlumber 0.4 only, run against the installed PipeWire.
    WirePlumber04,
    /// PipeWire 0.3.65 and WirePlumber 0.4, run together.
    PipeWire03,
}

impl Kind {
    /// The cache directory's name under the target directory.
    fn dir_name(self) -> &'static str {
        match self {
            Kind::WirePlumber04 => "wireplumber-0.4",
            Kind::PipeWire03 => "pipewire-0.3",
        }
    }

    /// The variable that overrides where the prefix is kept.
    fn dir_env(self) -> &'static str {
        match self {
            Kind::WirePlumber04 => "PVM_WIREPLUMBER_04_DIR",
            Kind::PipeWire03 => "PVM_PIPEWIRE_03_DIR",
        }
    }

    /// The packages, each with the version asked for first, and the version
    /// prefix a fallback version must have.
    fn packages(self) -> Vec<(&'static str, &'static str, &'static str)> {
        let wireplumber =
            WIREPLUMBER_PACKAGES.iter().map(|&(n, v)| (n, v, if n == "liblua5.3-0" { "" } else { "0.4." }));
        match self {
            Kind::WirePlumber04 => wireplumber.collect(),
            Kind::PipeWire03 => wireplumber.chain(PIPEWIRE_PACKAGES.iter().map(|&(n, v)| (n, v, "0.3.65-"))).collect(),
        }
    }
}

/// Marks a complete prefix; its content changes whenever what the bed writes
/// into the prefix changes, so an old prefix is rebuilt.
const STAMP: &str = ".testbed-prefix";
const STAMP_CONTENT: &str = "testbed prefix, layout 2\n";

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

/// An unpacked WirePlumber 0.4 (and PipeWire 0.3.65 with [`Kind::PipeWire03`]).
#[derive(Debug, Clone)]
pub(crate) struct Prefix {
    kind: Kind,
    root: PathBuf,
    lib: PathBuf,
    /// WirePlumber's configuration and scripts (`usr/share/wireplumber`, or a copy).
    share: PathBuf,
    /// PipeWire's configuration (`usr/share/pipewire`, or a copy).
    pipewire_config: PathBuf,
}

impl Prefix {
    /// The `wireplumber` binary.
    pub(crate) fn wireplumber(&self) -> PathBuf {
        self.root.join("usr/bin/wireplumber")
    }

    /// The `pipewire` binary, when the prefix has PipeWire.
    pub(crate) fn pipewire(&self) -> Option<PathBuf> {
        (self.kind == Kind::PipeWire03).then(|| self.root.join("usr/bin/pipewire"))
    }

    /// PipeWire's configuration directory (`PIPEWIRE_CONFIG_DIR`), when the
    /// prefix has PipeWire. PipeWire 0.3.65 with that variable set reads
    /// `pipewire.conf.d/` there and nowhere else.
    pub(crate) fn pipewire_config(&self) -> Option<&Path> {
        (self.kind == Kind::PipeWire03).then_some(self.pipewire_config.as_path())
    }

    /// The variables that make the prefix's programs use the prefix (and only
    /// those programs: `wpctl` and friends of the bed stay the installed ones).
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let mut env = vec![
            ("LD_LIBRARY_PATH".into(), path(&self.lib)),
            ("WIREPLUMBER_MODULE_DIR".into(), path(&self.lib.join("wireplumber-0.4"))),
            ("WIREPLUMBER_CONFIG_DIR".into(), path(&self.share)),
            ("WIREPLUMBER_DATA_DIR".into(), path(&self.share)),
        ];
        if self.kind == Kind::PipeWire03 {
            env.extend([
                ("SPA_PLUGIN_DIR".into(), path(&self.lib.join("spa-0.2"))),
                ("PIPEWIRE_MODULE_DIR".into(), path(&self.lib.join("pipewire-0.3"))),
                ("PIPEWIRE_CONFIG_DIR".into(), path(&self.pipewire_config)),
            ]);
        }
        env
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

    /// The same prefix reading PipeWire's configuration from a copy in `dir`
    /// (a bed writes its sinks into `dir/pipewire.conf.d/`). Unchanged when
    /// the prefix has no PipeWire.
    pub(crate) fn with_pipewire_config(&self, dir: &Path) -> Result<Prefix> {
        if self.kind != Kind::PipeWire03 {
            return Ok(self.clone());
        }
        copy_tree(&self.pipewire_config, dir)?;
        crate::dirs::create_private_dir(&dir.join("pipewire.conf.d"))?;
        Ok(Prefix { pipewire_config: dir.to_owned(), ..self.clone() })
    }

    /// The prefix at `root`, if it is complete.
    fn open(kind: Kind, root: &Path) -> Option<Prefix> {
        if fs::read_to_string(root.join(STAMP)).ok()? != STAMP_CONTENT {
            return None;
        }
        let lib = library_dir(root)?;
        let prefix = Prefix {
            kind,
            root: root.to_owned(),
            lib,
            share: root.join("usr/share/wireplumber"),
            pipewire_config: root.join("usr/share/pipewire"),
        };
        let complete = prefix.wireplumber().is_file() && prefix.pipewire().is_none_or(|p| p.is_file());
        complete.then_some(prefix)
    }
}

/// The prefix of `kind`, fetched and unpacked first if this is the first use.
pub(crate) fn prefix(kind: Kind) -> Result<Prefix> {
    let root = cache_dir(kind)?;
    if let Some(prefix) = Prefix::open(kind, &root) {
        return Ok(prefix);
    }
    let parent = root.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    let work = tempfile::Builder::new()
        .prefix(&format!(".{}-", kind.dir_name()))
        .tempdir_in(parent)
        .map_err(|e| Error::io(format!("creating a temporary directory in {}", parent.display()), e))?;
    let made = work.path().join("prefix");
    build(kind, work.path(), &made)?;
    // Replace an incomplete or outdated prefix; then the rename either puts
    // ours in place or finds that a parallel test was faster.
    if root.exists() && Prefix::open(kind, &root).is_none() {
        let old = work.path().join("old");
        let _ = fs::rename(&root, old);
    }
    if let Err(e) = fs::rename(&made, &root) {
        if Prefix::open(kind, &root).is_none() {
            return Err(Error::io(format!("moving the prefix to {}", root.display()), e));
        }
    }
    Prefix::open(kind, &root).ok_or_else(|| {
        Error::io(format!("checking {}", root.display()), std::io::Error::other("the prefix is incomplete"))
    })
}

/// Where the prefix lives: `$PVM_WIREPLUMBER_04_DIR` / `$PVM_PIPEWIRE_03_DIR`,
/// or `wireplumber-0.4/` / `pipewire-0.3/` in the Cargo target directory the
/// running executable was built into.
fn cache_dir(kind: Kind) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(kind.dir_env()) {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the path of the running executable", e))?;
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(|target| target.join(kind.dir_name()))
        .ok_or_else(|| Error::CommandFailed {
            command: "finding the Cargo target directory".into(),
            status: "not found".into(),
            stderr: format!("{} is not inside a target directory; set {}", exe.display(), kind.dir_env()),
        })
}

/// Downloads the packages into `work/debs` and unpacks them into `into`.
fn build(kind: Kind, work: &Path, into: &Path) -> Result<()> {
    let debs = work.join("debs");
    for dir in [&debs, into] {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let packages = kind.packages();
    let exact: Vec<String> = packages.iter().map(|(name, version, _)| format!("{name}={version}")).collect();
    if let Err(first) = download(&debs, &exact) {
        let fallback = fallback_versions(&packages)?;
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
    if count != packages.len() {
        return Err(Error::CommandFailed {
            command: "apt-get download".into(),
            status: format!("{count} packages"),
            stderr: format!("expected {} .deb files in {}", packages.len(), debs.display()),
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

/// The packages with the newest version the archive has that starts with
/// each package's version prefix (any version for an empty prefix: the
/// candidate).
fn fallback_versions(packages: &[(&str, &str, &str)]) -> Result<Vec<String>> {
    let mut wanted = Vec::new();
    for &(name, _, series) in packages {
        if series.is_empty() {
            wanted.push(name.to_owned());
            continue;
        }
        let mut command = Command::new("apt-cache");
        command.args(["madison", name]);
        let output = tool::run_ok(command, FETCH_TIMEOUT)?;
        let text = String::from_utf8_lossy(&output.stdout);
        let version = text
            .lines()
            .filter_map(|line| line.split('|').nth(1).map(str::trim))
            .find(|v| v.starts_with(series))
            .ok_or_else(|| Error::CommandFailed {
                command: format!("apt-cache madison {name}"),
                status: format!("no {series}* version"),
                stderr: text.trim().to_owned(),
            })?;
        wanted.push(format!("{name}={version}"));
    }
    Ok(wanted)
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
