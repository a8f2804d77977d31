//! `pvmctl setup wireplumber`: installs (or removes) the WirePlumber hook
//! that holds a new playback stream until the daemon has decided where it
//! plays (`contrib/wireplumber/`, WirePlumber 0.5).
//!
//! Two files, embedded in the binary, so nothing else needs to be installed:
//!
//! | file | where |
//! |---|---|
//! | the Lua script | `$XDG_DATA_HOME/wireplumber/scripts/pipewire-volume-mixer-hold.lua` |
//! | the fragment that loads it | `$XDG_CONFIG_HOME/wireplumber/wireplumber.conf.d/90-pipewire-volume-mixer.conf` |
//!
//! Installing writes a file only when its content differs (atomically: a
//! temporary file in the same directory, renamed over it), so a second run
//! changes nothing. Uninstalling removes exactly these two files; the
//! directories are left in place, as they may have existed before or hold
//! other files. WirePlumber reads both at start only.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use pvm_ipc::paths::Resolver;

use crate::failure::Outcome;

/// The hook script, as shipped in `contrib/wireplumber/`.
pub const HOLD_SCRIPT: &str = include_str!("../../../contrib/wireplumber/pipewire-volume-mixer-hold.lua");
/// The `wireplumber.conf.d` fragment that loads it.
pub const HOLD_FRAGMENT: &str = include_str!("../../../contrib/wireplumber/90-pipewire-volume-mixer.conf");

/// How to make WirePlumber load (or drop) the hook.
const RESTART: &str = "WirePlumber reads these files when it starts: restart it with \
     `systemctl --user restart wireplumber` (the hook needs WirePlumber 0.5)";

/// One file of the hook: where it goes and what it holds.
struct HookFile {
    path: PathBuf,
    contents: &'static str,
}

/// The two files, under the XDG directories of `resolver`.
fn hook_files(resolver: &Resolver<'_>) -> [HookFile; 2] {
    [
        HookFile {
            path: resolver.data_home().join("wireplumber/scripts/pipewire-volume-mixer-hold.lua"),
            contents: HOLD_SCRIPT,
        },
        HookFile {
            path: resolver.config_home().join("wireplumber/wireplumber.conf.d/90-pipewire-volume-mixer.conf"),
            contents: HOLD_FRAGMENT,
        },
    ]
}

/// What happened to one file.
enum Change {
    Installed,
    Updated,
    Unchanged,
    Removed,
    Absent,
}

/// `setup wireplumber [--uninstall]`.
pub fn wireplumber(uninstall: bool) -> Outcome {
    let resolver = Resolver::from_process();
    let mut out = io::stdout().lock();
    let mut changed = false;
    for file in hook_files(&resolver) {
        let change = if uninstall { remove(&file.path)? } else { install(&file)? };
        let verb = match change {
            Change::Installed => "installed",
            Change::Updated => "updated",
            Change::Unchanged => "up to date",
            Change::Removed => "removed",
            Change::Absent => "not installed",
        };
        changed |= matches!(change, Change::Installed | Change::Updated | Change::Removed);
        writeln!(out, "{verb}: {}", file.path.display())?;
    }
    if changed {
        writeln!(out, "{RESTART}")?;
    } else {
        writeln!(out, "nothing changed")?;
    }
    Ok(out.flush()?)
}

/// Writes `file` unless it already holds exactly its contents.
fn install(file: &HookFile) -> Result<Change, anyhow::Error> {
    let existing = match fs::read(&file.path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", file.path.display()))),
    };
    if existing.as_deref() == Some(file.contents.as_bytes()) {
        return Ok(Change::Unchanged);
    }
    write_atomically(&file.path, file.contents)?;
    Ok(if existing.is_some() { Change::Updated } else { Change::Installed })
}

/// Replaces `path` with a file holding `contents`, creating its directory.
fn write_atomically(path: &Path, contents: &str) -> Result<(), anyhow::Error> {
    let dir = path.parent().ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = fs::write(&temp, contents).and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(anyhow!(e).context(format!("cannot write {}", path.display())));
    }
    Ok(())
}

/// Removes `path` if it is there.
fn remove(path: &Path) -> Result<Change, anyhow::Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(Change::Removed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Change::Absent),
        Err(e) => Err(anyhow!(e).context(format!("cannot remove {}", path.display()))),
    }
}
