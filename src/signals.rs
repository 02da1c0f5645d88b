//! The process's signals, for every phase: training asks its `Interrupter`, the phases after it
//! (evaluation, pictures) ask [`stop_requested`]; a second signal ends the process at once
//! ([`exit_now`]). The handler itself is installed by the CLI (`cli::install_signals`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Signals the process has received (SIGINT, SIGTERM).
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// The lock file of the run this process writes, removed by [`exit_now`].
static LOCK: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Whether a signal asked this process to stop.
pub fn stop_requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// Counts a signal; returns how many have arrived, this one included.
pub fn note_signal() -> usize {
    SIGNALS.fetch_add(1, Ordering::SeqCst) + 1
}

/// Forgets the signals received (a library that trains several times in one process, the
/// Python package, clears the stop it asked of one training before the next).
pub fn clear() {
    SIGNALS.store(0, Ordering::SeqCst);
}

/// Records the lock file of the run being written (None when it is released).
pub fn set_lock(path: Option<PathBuf>) {
    if let Ok(mut l) = LOCK.lock() {
        *l = path;
    }
}

/// Ends the process at once with `code`, after removing the run's lock: `_exit`, not `exit`, so
/// that no destructor or atexit handler runs while other threads are inside libtorch (`exit`
/// from the signal thread corrupted the heap mid-evaluation). Every file of a run is written
/// through a temporary file and a rename, so none is left half-written.
pub fn exit_now(code: i32) -> ! {
    if let Ok(l) = LOCK.try_lock() {
        if let Some(p) = l.as_ref() {
            let _ = std::fs::remove_file(p);
        }
    }
    // SAFETY: _exit ends the process without running any user-space code.
    unsafe { libc::_exit(code) }
}
