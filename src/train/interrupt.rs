//! Interruption as a value: whoever holds a clone (a signal handler, a test) can ask the training
//! loop to stop at the next step boundary, after it has saved its state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
