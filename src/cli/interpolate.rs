//! `sae-dsl interpolate DIR FROM TO`: an interpolation strip between two test examples.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{open_with_data, report, Outcome};
use crate::eval;

/// Writes `interpolate-FROM-TO.png` into the run directory.
pub fn interpolate(
    dir: &Path,
    from: i64,
    to: i64,
    steps: i64,
    dev: &str,
    data_dir: Option<PathBuf>,
) -> Outcome {
    let (run, _, test) = open_with_data(dir, dev, data_dir)?;
    let path = dir.join(format!("interpolate-{from}-{to}.png"));
    eval::interpolation(
        &path,
        &run.model,
        &run.net,
        &test,
        from,
        to,
        steps.clamp(2, 64),
    )
    .map_err(report)?;
    println!("written: {}", path.display());
    Ok(ExitCode::SUCCESS)
}
