//! Finding the workspace's own binaries (the fake application, the daemon, `pvmctl`).

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The fake application binary and the variable that overrides its path.
pub const FAKE_APP: (&str, &str) = ("pvm-fake-app", "PVM_FAKE_APP");
/// The daemon binary and the variable that overrides its path.
pub const DAEMON: (&str, &str) = ("pipewire-volume-mixer-daemon", "PVM_DAEMON_BIN");
/// The CLI binary and the variable that overrides its path.
pub const PVMCTL: (&str, &str) = ("pvmctl", "PVM_PVMCTL_BIN");

/// Finds the binary `name` built by this workspace.
///
/// If the environment variable `env_var` is set, its value is the path.
/// Otherwise the binary is looked for next to the running executable, and in
/// the parent directory when that is `deps/` or `examples/` (test and example
/// binaries live there, under `target/<profile>/`).
pub fn workspace_binary(name: &str, env_var: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        return if path.exists() { Ok(path) } else { Err(Error::BadOverride { env_var: env_var.to_owned(), path }) };
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the path of the running executable", e))?;
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join(name));
        if matches!(dir.file_name().and_then(|n| n.to_str()), Some("deps" | "examples")) {
            if let Some(parent) = dir.parent() {
                candidates.push(parent.join(name));
            }
        }
    }
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(Error::BinaryNotFound {
        name: name.to_owned(),
        searched: candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        env_var: env_var.to_owned(),
    })
}
