//! The WirePlumber hook that holds new streams until the daemon has decided
//! (`contrib/wireplumber/`): installing it into a bed, and checking that the
//! bed's WirePlumber runs it.
//!
//! The check is the hook's own announcement: the bed waits until the hook
//! has written [`HOLD_KEY`] (subject 0) into the `default` metadata.

use std::time::Duration;

use crate::dirs::{self, BedDirs};
use crate::error::Result;

/// The hook script, as shipped.
pub const HOLD_SCRIPT: &str = include_str!("../../../contrib/wireplumber/pipewire-volume-mixer-hold.lua");
/// Its file name under `$XDG_DATA_HOME/wireplumber/scripts/`.
pub const HOLD_SCRIPT_NAME: &str = "pipewire-volume-mixer-hold.lua";
/// The `wireplumber.conf.d` fragment that loads it, as shipped.
pub const HOLD_FRAGMENT: &str = include_str!("../../../contrib/wireplumber/90-pipewire-volume-mixer.conf");
/// Its file name under `$XDG_CONFIG_HOME/wireplumber/wireplumber.conf.d/`.
pub const HOLD_FRAGMENT_NAME: &str = "90-pipewire-volume-mixer.conf";
/// `application.name` of the daemon's PipeWire client: while one is
/// connected, the hook holds new streams until it has decided.
pub const DAEMON_CLIENT_NAME: &str = "pipewire-volume-mixer-daemon";
/// The key the hook writes (subject 0) into the `default` metadata to announce itself.
pub const HOLD_KEY: &str = "pvm.hold";
/// The key of the daemon's decision about a stream in the `default` metadata
/// (subject = the stream's node id).
pub const DECISION_KEY: &str = "pvm.decision";
/// The WirePlumber setting that holds the time limit, in milliseconds.
pub const TIMEOUT_SETTING: &str = "pipewire-volume-mixer.hold-timeout-ms";

/// Writes the script and its fragment into the bed's `XDG_DATA_HOME` and
/// `XDG_CONFIG_HOME`, and, if given, a fragment that sets the time limit.
pub(crate) fn install(dirs: &BedDirs, timeout: Option<Duration>) -> Result<()> {
    let scripts = dirs.wireplumber_scripts();
    dirs::create_private_dir(&scripts)?;
    dirs::write(&scripts.join(HOLD_SCRIPT_NAME), HOLD_SCRIPT)?;
    let fragments = dirs.wireplumber_fragments();
    dirs::write(&fragments.join(HOLD_FRAGMENT_NAME), HOLD_FRAGMENT)?;
    if let Some(timeout) = timeout {
        let text = format!(
            "# Written by the test bed: the hold's time limit.\nwireplumber.settings = {{ {TIMEOUT_SETTING} = {} }}\n",
            timeout.as_millis()
        );
        dirs::write(&fragments.join("91-testbed-hold.conf"), &text)?;
    }
    Ok(())
}

/// Keeps a system-wide hook (the Debian package's
/// `/usr/share/wireplumber/wireplumber.conf.d/90-pipewire-volume-mixer.conf`)
/// out of a bed that must run without it: WirePlumber 0.5 loads only the
/// first fragment of each file name along its search path, and the bed's
/// `XDG_CONFIG_HOME` comes first, so an empty file of the same name there
/// hides the system one (as a user would, to turn it off).
pub(crate) fn mask(dirs: &BedDirs) -> Result<()> {
    dirs::write(
        &dirs.wireplumber_fragments().join(HOLD_FRAGMENT_NAME),
        "# Written by the test bed: no pipewire-volume-mixer hook in this bed.\n",
    )
}
