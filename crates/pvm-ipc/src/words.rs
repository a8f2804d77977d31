//! The one place that views the shared mapping as 64-bit atomic words.
//!
//! Another process writes the mapping concurrently, so every access to it
//! goes through atomics: plain loads racing with stores are undefined
//! behaviour in Rust, even when a seqlock later throws the value away.
//!
//! Readers map the file read-only. Rust defines only one atomic access on
//! read-only memory: a `Relaxed` load no wider than the target's native
//! atomic width (8 bytes on the 64-bit targets; see "Atomic accesses to
//! read-only memory" in `std::sync::atomic`). An `Acquire` load may be
//! implemented with a read-modify-write and fault there, so [`ReadOnlyWords`]
//! offers nothing but `Relaxed` loads, and the reader orders them with
//! [`fence`](std::sync::atomic::fence)s.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// Word index of the header's `magic` and `version` fields.
pub(crate) const MAGIC_VERSION_WORD: usize = 0;
/// Word index of the header's `generation` field.
pub(crate) const GENERATION_WORD: usize = 1;
/// Word index of the header's `last_update_ns` field.
pub(crate) const LAST_UPDATE_WORD: usize = 2;

// A `Relaxed` 8-byte load is defined on read-only memory only where 8 bytes
// is the native atomic width.
#[cfg(not(target_pointer_width = "64"))]
compile_error!("the snapshot reader needs 8-byte atomic loads on read-only memory (64-bit targets only)");

/// Views `len_bytes` bytes at `ptr`, a writable shared mapping, as atomic words.
///
/// # Safety
///
/// `ptr` must be 8-byte aligned, carry write permission (come from a raw
/// pointer of a writable mapping, not from a shared reference), be valid for
/// reads and writes of `len_bytes` bytes for `'a`, and every concurrent
/// access to that memory, in this process or another, must be atomic.
pub(crate) unsafe fn writable_words<'a>(ptr: *mut u8, len_bytes: usize) -> &'a [AtomicU64] {
    debug_assert_eq!(ptr as usize % std::mem::align_of::<AtomicU64>(), 0);
    // SAFETY: the caller guarantees alignment, validity for reads and writes
    // for 'a, write provenance and atomic-only access; AtomicU64 has the size
    // and alignment of u64, and its stores go through its UnsafeCell.
    unsafe { std::slice::from_raw_parts(ptr.cast::<AtomicU64>(), len_bytes / 8) }
}

/// The words of a read-only shared mapping. Only `Relaxed` loads are
/// possible, the one atomic access defined on read-only memory; callers add
/// [`fence`]s for ordering ([`load_acquire`](Self::load_acquire)).
#[derive(Clone, Copy)]
pub(crate) struct ReadOnlyWords<'a>(&'a [AtomicU64]);

impl<'a> ReadOnlyWords<'a> {
    /// Views `len_bytes` bytes at `ptr` as words that are only loaded.
    ///
    /// # Safety
    ///
    /// `ptr` must be 8-byte aligned and valid for reads of `len_bytes` bytes
    /// for `'a` (it may be mapped read-only), and every concurrent access to
    /// that memory, in this process or another, must be atomic.
    pub(crate) unsafe fn new(ptr: *const u8, len_bytes: usize) -> ReadOnlyWords<'a> {
        debug_assert_eq!(ptr as usize % std::mem::align_of::<AtomicU64>(), 0);
        // SAFETY: the caller guarantees alignment, validity for reads for 'a
        // and atomic-only access. The slice is never used to store: this
        // type only exposes Relaxed loads, which are defined on read-only
        // memory for 8-byte words on 64-bit targets (checked above).
        ReadOnlyWords(unsafe { std::slice::from_raw_parts(ptr.cast::<AtomicU64>(), len_bytes / 8) })
    }

    /// Number of words.
    pub(crate) fn len(self) -> usize {
        self.0.len()
    }

    /// A `Relaxed` load of word `i`.
    pub(crate) fn load(self, i: usize) -> u64 {
        self.0[i].load(Ordering::Relaxed)
    }

    /// Word `i` with acquire semantics: a `Relaxed` load followed by an
    /// `Acquire` fence. If the value was stored with `Release` (or after a
    /// `Release` fence), everything the writer did before that store is
    /// visible to loads made after this call.
    pub(crate) fn load_acquire(self, i: usize) -> u64 {
        let value = self.load(i);
        fence(Ordering::Acquire);
        value
    }

    /// Copies every word into `out` with `Relaxed` loads (as many as fit).
    pub(crate) fn copy_relaxed(self, out: &mut [u64]) {
        for (o, w) in out.iter_mut().zip(self.0) {
            *o = w.load(Ordering::Relaxed);
        }
    }

    /// The address of word `i`'s low 32 bits, for futex(2).
    pub(crate) fn futex_addr(self, i: usize) -> *const u32 {
        futex_addr(&self.0[i])
    }
}

/// The address of `word`'s low 32 bits (little-endian), for futex(2). No
/// reference to it as an `AtomicU32` is made; the kernel reads the word itself.
pub(crate) fn futex_addr(word: &AtomicU64) -> *const u32 {
    word.as_ptr().cast::<u32>().cast_const()
}
