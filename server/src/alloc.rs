//! The hook that hands memory freed by a flush or compaction back to the
//! OS, for the binary's allocator, mimalloc (`main.rs`).
//!
//! mimalloc returns a thread's freed pages after a delay, from that
//! thread's later allocator calls; the maintenance thread sleeps after a
//! flush, so the block it built and the head it dropped stayed resident
//! until the next one; the threads that write and query keep allocating
//! from pages they hold, which runs no purge either. Purging everything at
//! once instead (`mi_option_purge_delay` 0) lowered the peak but made
//! every query and span write fault its reused buffers in again (harness
//! queries 1.3–2.8× slower). So: collect once per flush or compaction on
//! the thread that freed, and at most once a second on each thread that
//! runs requests (decisions.md §16).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Collects the calling thread's mimalloc heap and purges its free pages
/// (and notes when, so [`release_now_and_then`] on the same thread, after
/// an admin flush say, does not collect again at once). A no-op in effect
/// when mimalloc is not the global allocator (tests).
#[allow(unsafe_code)]
pub fn release_freed_pages() {
    LAST.set(Some(Instant::now()));
    // SAFETY: `mi_collect` takes no pointers; it only walks the calling
    // thread's own heap and may be called at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Least time between two collections on one request thread.
const EVERY: Duration = Duration::from_secs(1);

thread_local! {
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// [`release_freed_pages`], if this thread last did so [`EVERY`] ago or
/// never: called after each request's engine work.
pub fn release_now_and_then() {
    if LAST.get().is_none_or(|t| t.elapsed() >= EVERY) {
        release_freed_pages();
    }
}
