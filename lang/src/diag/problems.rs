//! The one sink of a compilation's diagnostics: every stage (loading, checking, prior programs)
//! reports into a [`Problems`], errors and warnings in the order they were found.

use std::ops::Deref;

use super::Diag;

/// Collected diagnostics. Reading goes through `Deref<Target = [Diag]>`; writing only through
/// [`Problems::report`], so that every stage reports the same way.
#[derive(Clone, Debug, Default)]
pub struct Problems {
    diags: Vec<Diag>,
}

impl Problems {
    /// An empty sink.
    pub fn new() -> Problems {
        Problems::default()
    }

    /// Records one diagnostic.
    pub fn report(&mut self, d: Diag) {
        self.diags.push(d);
    }

    /// Records several diagnostics, in order.
    pub fn report_all(&mut self, ds: impl IntoIterator<Item = Diag>) {
        self.diags.extend(ds);
    }

    /// Whether any error (not a warning) was reported.
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diag::is_error)
    }

    /// The diagnostics, in the order reported.
    pub fn into_vec(self) -> Vec<Diag> {
        self.diags
    }
}

impl Deref for Problems {
    type Target = [Diag];
    fn deref(&self) -> &[Diag] {
        &self.diags
    }
}

impl From<Vec<Diag>> for Problems {
    fn from(diags: Vec<Diag>) -> Problems {
        Problems { diags }
    }
}
