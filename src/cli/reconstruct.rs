//! `sae-dsl reconstruct DIR`: redraws a run's pictures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{open_with_data, report, Outcome};
use crate::eval;

/// Writes reconstructions, samples, latent scatters and loss curves into the run directory.
pub fn reconstruct(dir: &Path, dev: &str, data_dir: Option<PathBuf>) -> Outcome {
    let (run, train, test) = open_with_data(dir, dev, data_dir)?;
    eval::draw(dir, &run.model, &run.net, &train, &test).map_err(report)?;
    println!("pictures written to {}: reconstructions.png, samples.png, latent.png, loss_curves.png, ...", dir.display());
    Ok(ExitCode::SUCCESS)
}
