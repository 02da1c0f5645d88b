//! Interruption as a value: whoever holds a clone (a signal handler, a test) can ask the training
//! loop to stop at the next step boundary, after it has saved its state.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A shared stop request. Cloning shares the request; the default is a fresh, unset one.
#[derive(Clone, Debug, Default)]
pub struct Interrupter(Arc<AtomicBool>);

impl Interrupter {
    /// A fresh request, not set.
    pub fn new() -> Interrupter {
        Interrupter::default()
    }

    /// Asks the loop to stop; returns whether a stop had already been asked for (a second
    /// signal, which the CLI answers by exiting at once).
    pub fn request(&self) -> bool {
        self.0.swap(true, Ordering::SeqCst)
    }

    /// Consumes a pending request: true once per request.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

/// Signals the process has received (SIGINT, SIGTERM), for every phase: training asks its
/// [`Interrupter`], the phases after it (evaluation, pictures, export) ask [`stop_requested`].
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

/// Installs the process's SIGINT/SIGTERM handler (once; later calls keep the first): the first
/// signal asks `stop` and every later phase to stop at its next safe point and prints `first`;
/// a second ends the process at once ([`exit_now`], exit status 130).
pub fn install(stop: &Interrupter, first: &'static str) {
    let handler = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if note_signal() >= 2 {
            eprintln!("\nsecond signal: stopping now (the files of the last safe point are kept)");
            exit_now(130);
        }
        handler.request();
        eprintln!("\n{first} (signal again to quit at once)");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_seen_once_by_every_clone() {
        let a = Interrupter::new();
        let b = a.clone();
        assert!(!b.take());
        assert!(!a.request());
        assert!(a.request(), "a second request reports the first");
        assert!(b.take());
        assert!(!b.take());
    }
}
