//! `sae-dsl export DIR --format F --out OUT`: the encoder and generator for Python.

use std::path::Path;
use std::process::ExitCode;

use super::{report, Outcome};
use crate::eval;
use crate::rundir;

/// Exports the run in `dir`; `weights` is "last" (the checkpoint) or "best" (the best
/// validation's weights).
pub fn export(dir: &Path, format: &str, out: &Path, weights: &str) -> Outcome {
    let mut run = eval::open_run(dir, tch::Device::Cpu).map_err(report)?;
    if weights == "best" {
        let best = dir.join(rundir::BEST);
        if !best.is_file() {
            eprintln!(
                "error: {} has no {}: only a run with a `validation` setting keeps its best weights; export the last ones (--weights last)",
                dir.display(),
                rundir::BEST
            );
            return Err(ExitCode::from(1));
        }
        if let Err(e) = rundir::verify_weights(&best) {
            eprintln!(
                "error: {e}; export the last weights (--weights last) or train the run again"
            );
            return Err(ExitCode::from(1));
        }
        if let Err(e) = run.vs.load(&best) {
            eprintln!("error: {}: {e}", best.display());
            return Err(ExitCode::from(1));
        }
    }
    let files = crate::export::export(&run, format, out).map_err(report)?;
    println!("exported {} ({format}, {weights} weights):", dir.display());
    for f in files {
        println!("  {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}
