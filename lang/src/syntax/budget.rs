//! The time one check may take, and its cancellation. The expansions that can grow (user
//! functions, nets) ask [`stop`] as they go: past the deadline the check ends with a located
//! error naming the limit, and a check whose result nobody wants any more (the language server
//! received a newer edit) ends early, silently.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a check may run.
pub const MAX_CHECK: Duration = Duration::from_secs(10);

thread_local! {
    static BUDGET: RefCell<Option<(Instant, Option<Arc<AtomicBool>>)>> = const { RefCell::new(None) };
    /// The running-out was reported (once per check).
    static SAID: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True the first time it is asked in a check: the running-out is reported once.
pub fn first_report() -> bool {
    !SAID.with(|s| s.replace(true))
}

/// Why an expansion must stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The check ran past [`MAX_CHECK`].
    OutOfTime,
    /// The check was cancelled (its result would be thrown away).
    Cancelled,
}

/// Ends the budget of this thread's check when dropped.
pub struct Guard {
    outer: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.outer {
            BUDGET.with(|b| *b.borrow_mut() = None);
        }
    }
}

/// Starts the budget of a check on this thread (a check inside another keeps the outer one),
/// with a flag that cancels it when set.
pub fn start(cancel: Option<Arc<AtomicBool>>) -> Guard {
    BUDGET.with(|b| {
        let mut b = b.borrow_mut();
        if b.is_some() {
            return Guard { outer: false };
        }
        *b = Some((Instant::now() + MAX_CHECK, cancel));
        SAID.with(|s| s.set(false));
        Guard { outer: true }
    })
}

/// Whether the current check must stop, and why.
pub fn stop() -> Option<Stop> {
    BUDGET.with(|b| {
        let b = b.borrow();
        let (deadline, cancel) = b.as_ref()?;
        if cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Some(Stop::Cancelled);
        }
        (Instant::now() > *deadline).then_some(Stop::OutOfTime)
    })
}
