//! futex(2) on the low 32 bits of the generation word.
//!
//! The mapping is shared between processes, so these are *not* private
//! futexes. The address is passed as a raw pointer: the kernel reads the
//! word itself, and no `&AtomicU32` aliasing the `AtomicU64` is ever created.

use std::time::Duration;

/// Sleeps while the 32-bit word at `addr` equals `expected`, at most `timeout`.
/// Returns on wake-up, value mismatch, signal or timeout; callers re-check.
pub(crate) fn wait(addr: *const u32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: addr points into a live shared mapping (the caller holds it);
    // FUTEX_WAIT only reads the word; ts_ptr is null or points to a timespec
    // that outlives the call. Errors (EAGAIN, EINTR, ETIMEDOUT) are all
    // "return and let the caller re-check".
    unsafe {
        libc::syscall(libc::SYS_futex, addr, libc::FUTEX_WAIT, expected, ts_ptr, std::ptr::null::<u32>(), 0u32);
    }
}

/// Wakes every waiter on the word at `addr`.
pub(crate) fn wake_all(addr: *const u32) {
    // SAFETY: addr points into a live shared mapping; FUTEX_WAKE does not
    // access memory beyond hashing the address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr,
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}
