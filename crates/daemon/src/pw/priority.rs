//! Running ahead of the session manager on the CPU.
//!
//! PipeWire and WirePlumber renice themselves to -11 at start (their
//! `libpipewire-module-rt`, directly where the user may, through RTKit on a
//! desktop). A routing pin must reach WirePlumber before it links a new
//! stream; at nice 0 the daemon loses the CPU to both of them exactly when a
//! stream appears (they are busy setting it up), and WirePlumber, not
//! seeing the pin yet, links the stream to the default sink for a few
//! milliseconds. So the daemon asks for nice -15 (RTKit's default limit)
//! through the same module, with the same fallbacks: it then wins the CPU
//! when it and the session manager wake for the same new stream. Measured on
//! 2 cores: 0-9 misroutes in 20 streams at nice 0, about 1 in 40 at -11,
//! about 1 in 100 at -15. The daemon is idle otherwise, so being favoured
//! costs the rest of the desktop nothing. Only the nice level: the daemon
//! never takes a realtime priority.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use pipewire as pw;

/// The nice level asked for: ahead of PipeWire's and WirePlumber's -11.
pub const NICE_LEVEL: i32 = -15;

const MODULE: &CStr = c"libpipewire-module-rt";

static ASKED: AtomicBool = AtomicBool::new(false);

/// Asks for [`NICE_LEVEL`] once per process, through `context`.
/// Failing is not an error: the daemon then runs at its current priority,
/// and says so.
pub fn raise(context: &pw::context::ContextRc) {
    if ASKED.swap(true, Ordering::Relaxed) {
        return;
    }
    let Ok(args) = CString::new(format!("{{ nice.level = {NICE_LEVEL} }}")) else { return };
    let before = current_nice();
    // SAFETY: `context` is a live context owned by the caller for the whole
    // call; the name and args are NUL-terminated strings that outlive the call
    // and that PipeWire only reads (it copies what it keeps); a null properties pointer is
    // allowed. The returned module belongs to the context and is unloaded
    // with it, so it is not kept here (the nice level outlives it).
    let module = unsafe {
        pw::sys::pw_context_load_module(context.as_raw_ptr(), MODULE.as_ptr(), args.as_ptr(), std::ptr::null_mut())
    };
    let after = current_nice();
    if module.is_null() {
        tracing::info!(nice = after, "libpipewire-module-rt not available: running at the current priority");
    } else if after <= NICE_LEVEL {
        tracing::debug!(nice = after, "running ahead of the session manager's priority");
    } else {
        tracing::info!(
            nice = after,
            wanted = NICE_LEVEL,
            was = before,
            "could not raise the priority (no CAP_SYS_NICE, RLIMIT_NICE or RTKit): \
             a new stream may reach the default sink for a few milliseconds before it is routed"
        );
    }
}

/// The calling thread's nice level.
fn current_nice() -> i32 {
    rustix::process::getpriority_process(None).unwrap_or(0)
}
