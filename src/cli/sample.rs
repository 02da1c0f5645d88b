//! `sae-dsl sample DIR`: decoded prior samples of a trained run.

use std::path::Path;
use std::process::ExitCode;

use super::{at_least_one, device, fit_sampler::use_sampler, report, Outcome};
use crate::eval;

/// Writes `n` samples to `out` (.npy, .npz, .png or a folder of PNGs).
/// `sampler` is "prior" or "gmm" (the mixture of `fit-sampler`).
pub fn sample(
    dir: &Path,
    n: i64,
    out: &Path,
    seed: Option<i64>,
    dev: &str,
    sampler: &str,
) -> Outcome {
    let d = device(dev)?;
    let mut run = eval::open_run(dir, d).map_err(report)?;
    use_sampler(&mut run, sampler)?;
    at_least_one(n)?;
    tch::manual_seed(seed.unwrap_or(run.seed()));
    eval::write_samples(&run.net, &run.model, n, out).map_err(report)?;
    println!("{n} samples written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}
