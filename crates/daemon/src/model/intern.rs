//! String interning for node properties.
//!
//! The same few strings (app names, binaries, roles, sink names) arrive again
//! with every node `info` event. Interning turns each repeat into a hash
//! lookup instead of an allocation. The table lives on the loop thread and
//! drops strings nobody else holds once it has doubled since the last sweep,
//! so changing strings (`media.name` of a music player) cannot grow it
//! without bound.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

/// An interned string.
pub type IStr = Rc<str>;

struct Table {
    set: HashSet<Rc<str>>,
    sweep_at: usize,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table { set: HashSet::new(), sweep_at: 256 });
    static HITS: Cell<u64> = const { Cell::new(0) };
    static MISSES: Cell<u64> = const { Cell::new(0) };
}

/// The shared copy of `s`.
pub fn intern(s: &str) -> IStr {
    TABLE.with_borrow_mut(|t| {
        if let Some(found) = t.set.get(s) {
            HITS.set(HITS.get() + 1);
            return found.clone();
        }
        MISSES.set(MISSES.get() + 1);
        if t.set.len() >= t.sweep_at {
            t.set.retain(|e| Rc::strong_count(e) > 1);
            t.sweep_at = (t.set.len() * 2).max(256);
        }
        let new: Rc<str> = Rc::from(s);
        t.set.insert(new.clone());
        new
    })
}

/// `(hits, misses)` so far on this thread.
pub fn counters() -> (u64, u64) {
    (HITS.get(), MISSES.get())
}

/// Strings held by the table.
pub fn table_len() -> usize {
    TABLE.with_borrow(|t| t.set.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_share_one_allocation() {
        let (h0, m0) = counters();
        let a = intern("Firefox");
        let b = intern("Firefox");
        assert!(Rc::ptr_eq(&a, &b));
        let (h1, m1) = counters();
        assert_eq!((h1 - h0, m1 - m0), (1, 1));
    }

    #[test]
    fn unused_strings_are_swept() {
        for i in 0..10_000 {
            drop(intern(&format!("track {i}")));
        }
        assert!(table_len() <= 512, "table stays bounded: {}", table_len());
        let kept = intern("kept");
        for i in 0..10_000 {
            drop(intern(&format!("song {i}")));
        }
        assert!(Rc::ptr_eq(&kept, &intern("kept")), "held strings survive sweeps");
    }
}
