//! Fault injection for tests: a NaN in one term at one global step, from an environment variable.

/// Environment variable that injects a fault, for tests: `nan-recon@STEP`, `nan-penalty@STEP`,
/// `nan-disc@STEP` or `nan-grad@STEP` makes that term (or the model's gradient) NaN at the given
/// global step (1-based); `grow-recon@STEP` multiplies the reconstruction cost by 1e6 from that
/// step on (a divergence).
pub const FAULT_ENV: &str = "SAE_DSL_FAULT";

/// The injected fault, with its global step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Fault {
    NanRecon(i64),
    NanPenalty(i64),
    NanDisc(i64),
    NanGrad(i64),
    /// The reconstruction cost times 1e6 from this step on.
    GrowRecon(i64),
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
        "nan-grad" => Some(Fault::NanGrad(step)),
        "grow-recon" => Some(Fault::GrowRecon(step)),
        _ => None,
    }
}
