//! The one place that views the shared mapping as 64-bit atomic words.
//!
//! Another process writes the mapping concurrently, so every access to it
//! goes through atomics: plain loads racing with stores are undefined
//! behaviour in Rust, even when a seqlock later throws the value away.

use std::sync::atomic::AtomicU64;

/// Views `len_bytes` bytes at `ptr` as atomic words.
///
/// # Safety
///
/// `ptr` must be 8-byte aligned, valid for reads (and writes, if the caller
/// stores) of `len_bytes` bytes for `'a`, and every concurrent access to that
/// memory, in this process or another, must be atomic.
pub(crate) unsafe fn as_words<'a>(ptr: *const u8, len_bytes: usize) -> &'a [AtomicU64] {
    debug_assert_eq!(ptr as usize % std::mem::align_of::<AtomicU64>(), 0);
    // SAFETY: the caller guarantees alignment, validity for 'a and atomic-only
    // access; AtomicU64 has the size and alignment of u64.
    unsafe { std::slice::from_raw_parts(ptr.cast::<AtomicU64>(), len_bytes / 8) }
}

/// Word index of the header's `generation` field.
pub(crate) const GENERATION_WORD: usize = 1;
/// Word index of the header's `last_update_ns` field.
pub(crate) const LAST_UPDATE_WORD: usize = 2;
