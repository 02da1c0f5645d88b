//! Fault injection for tests: a NaN in one term at one global step, from an environment variable.

/// Environment variable that injects a fault, for tests: `nan-recon@STEP`, `nan-penalty@STEP`
/// or `nan-disc@STEP` makes that term NaN at the given global step (1-based).
pub const FAULT_ENV: &str = "SAE_DSL_FAULT";

/// The injected fault, with its global step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Fault {
    NanRecon(i64),
    NanPenalty(i64),
    NanDisc(i64),
}

/// The fault asked for by [`FAULT_ENV`], if any.
pub(crate) fn fault_from_env() -> Option<Fault> {
    let v = std::env::var(FAULT_ENV).ok()?;
    let (kind, step) = v.split_once('@')?;
    let step = step.parse().ok()?;
    match kind {
        "nan-recon" => Some(Fault::NanRecon(step)),
        "nan-penalty" => Some(Fault::NanPenalty(step)),
        "nan-disc" => Some(Fault::NanDisc(step)),
        _ => None,
    }
}
