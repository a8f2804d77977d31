//! The WirePlumber hook that holds new streams until the daemon has decided
//! (`contrib/wireplumber/`): installing it into a bed, and checking that the
//! bed's WirePlumber runs it.
//!
//! The check is the hook's own handshake: a short-lived client exports a
//! metadata object named [`METADATA_NAME`], as the daemon does, and the bed
//! waits until the hook has written [`HOLD_KEY`] on it. The client then
//! disconnects and the object goes away with it.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use pipewire as pw;

use crate::dirs::{self, BedDirs};
use crate::error::{Error, Result};
use crate::exported_metadata::ExportedMetadata;

/// The hook script, as shipped.
pub const HOLD_SCRIPT: &str = include_str!("../../../contrib/wireplumber/pipewire-volume-mixer-hold.lua");
/// Its file name under `$XDG_DATA_HOME/wireplumber/scripts/`.
pub const HOLD_SCRIPT_NAME: &str = "pipewire-volume-mixer-hold.lua";
/// The `wireplumber.conf.d` fragment that loads it, as shipped.
pub const HOLD_FRAGMENT: &str = include_str!("../../../contrib/wireplumber/90-pipewire-volume-mixer.conf");
/// Its file name under `$XDG_CONFIG_HOME/wireplumber/wireplumber.conf.d/`.
pub const HOLD_FRAGMENT_NAME: &str = "90-pipewire-volume-mixer.conf";
/// `metadata.name` of the metadata object the daemon exports.
pub const METADATA_NAME: &str = "pipewire-volume-mixer";
/// The key the hook writes (subject 0) on that object to announce itself.
pub const HOLD_KEY: &str = "pvm.hold";
/// The key of the daemon's decision about a stream (subject = the stream's node id).
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

/// Exports a `pipewire-volume-mixer` metadata object on a connection of its
/// own to the PipeWire at `socket` for as long as `check` runs, and returns
/// what `check` returns. `check` is called (from this thread) once the object
/// is exported.
pub(crate) fn with_stand_in_metadata<T>(socket: &Path, check: impl FnOnce() -> Result<T>) -> Result<T> {
    let (exported, ready) = mpsc::channel::<std::result::Result<(), String>>();
    let (stop, stop_receiver) = pw::channel::channel::<()>();
    let socket = socket.to_string_lossy().into_owned();
    let thread = thread::Builder::new()
        .name("hold-hook-probe".into())
        .spawn(move || {
            if let Err(e) = export_until_stopped(&socket, &exported, stop_receiver) {
                let _ = exported.send(Err(e));
            }
        })
        .map_err(|e| Error::io("starting the hook probe thread", e))?;
    let result = match ready.recv_timeout(PROBE_CONNECT_TIMEOUT) {
        Ok(Ok(())) => check(),
        Ok(Err(e)) => Err(Error::io("exporting a stand-in daemon's metadata", std::io::Error::other(e))),
        Err(_) => Err(Error::Timeout {
            what: "a stand-in daemon's metadata object to be exported".into(),
            timeout: PROBE_CONNECT_TIMEOUT,
            details: String::new(),
        }),
    };
    let _ = stop.send(());
    let _ = thread.join();
    result
}

/// How long connecting and exporting may take.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The probe thread: connect, export the metadata, report, run until stopped.
fn export_until_stopped(
    socket: &str,
    exported: &mpsc::Sender<std::result::Result<(), String>>,
    stop: pw::channel::Receiver<()>,
) -> std::result::Result<(), String> {
    pw::init();
    let main_loop = pw::main_loop::MainLoopRc::new(None).map_err(|e| e.to_string())?;
    let context = pw::context::ContextRc::new(&main_loop, None).map_err(|e| e.to_string())?;
    let core = context
        .connect_rc(Some(pw::properties::properties! { *pw::keys::REMOTE_NAME => socket }))
        .map_err(|e| format!("connecting to {socket}: {e}"))?;
    let metadata = ExportedMetadata::new(&core, METADATA_NAME).map_err(|e| e.to_string())?;
    // Answered once PipeWire has processed the export.
    let pending = core.sync(0).map_err(|e| e.to_string())?;
    let done = exported.clone();
    let _core_listener = core
        .add_listener_local()
        .done(move |id, seq| {
            if id == pw::core::PW_ID_CORE && seq == pending {
                let _ = done.send(Ok(()));
            }
        })
        .register();
    let quit = main_loop.clone();
    let _stop = stop.attach(main_loop.loop_(), move |()| quit.quit());
    main_loop.run();
    drop(metadata);
    Ok(())
}
