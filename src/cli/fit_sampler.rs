//! `sae-dsl fit-sampler DIR --gmm K`: a Gaussian mixture fitted to the training codes, saved in
//! the run directory for `sample --sampler gmm` and `eval --sampler gmm`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tch::Tensor;

use super::{open_with_data, Outcome};
use crate::eval::{self, LoadedRun};
use crate::runtime::gmm::Gmm;
use crate::util::write_atomic;

/// The mixture's tensors and its fit report, in the run directory.
const GMM_FILE: &str = "sampler_gmm.safetensors";
const GMM_JSON: &str = "sampler_gmm.json";

/// Fits `k` components to the encoded training set of the run in `dir`.
pub fn fit_sampler(dir: &Path, k: i64, seed: i64, dev: &str, data_dir: Option<PathBuf>) -> Outcome {
    let (run, train, _) = open_with_data(dir, dev, data_dir)?;
    let codes = eval::encode_all(&run.net, &train.x());
    let (gmm, report) = Gmm::fit(&codes, &run.model, k, seed, 100).map_err(|e| {
        eprintln!(
            "error: cannot fit {k} components to the codes of {}: {e}",
            dir.display()
        );
        ExitCode::from(1)
    })?;
    let path = dir.join(GMM_FILE);
    let fail = |e: String| {
        eprintln!("error: could not write {}: {e}", path.display());
        ExitCode::from(1)
    };
    // Through a temporary file, sealed with its checksum, and a rename.
    let tmp = dir.join(format!(".{GMM_FILE}.tmp"));
    Tensor::write_safetensors(&gmm.tensors(), &tmp).map_err(|e| fail(e.to_string()))?;
    crate::rundir::seal_weights(&tmp).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| fail(e.to_string()))?;
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    write_atomic(&dir.join(GMM_JSON), text.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let ll = report.log_likelihood.last().copied().unwrap_or(f64::NAN);
    println!(
        "fitted {k} components to {} training codes in {} EM iterations ({}; mean log-likelihood {ll:.3})",
        codes.size()[0],
        report.iterations,
        if report.converged { "converged" } else { "not converged after 100" }
    );
    println!(
        "  written: {}; use it with `sample --sampler gmm` or `eval --sampler gmm`",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Sets the run's code sampler: nothing for "prior", the fitted mixture for "gmm" (an error
/// when `fit-sampler` has not been run).
pub(super) fn use_sampler(run: &mut LoadedRun, sampler: &str) -> Result<(), ExitCode> {
    if sampler != "gmm" {
        return Ok(());
    }
    let path = run.dir.join(GMM_FILE);
    if !path.is_file() {
        eprintln!(
            "error: {} has no fitted sampler ({GMM_FILE}); run `sae-dsl fit-sampler {} --gmm K` first",
            run.dir.display(),
            run.dir.display()
        );
        return Err(ExitCode::from(1));
    }
    if let Err(e) = crate::rundir::verify_weights(&path) {
        eprintln!(
            "error: {e}; fit it again with `sae-dsl fit-sampler {} --gmm K`",
            run.dir.display()
        );
        return Err(ExitCode::from(1));
    }
    let named: HashMap<String, Tensor> = Tensor::read_safetensors(&path)
        .map(|v| v.into_iter().collect())
        .map_err(|e| {
            eprintln!("error: {}: {e}", path.display());
            ExitCode::from(1)
        })?;
    let gmm = Gmm::from_tensors(named, &run.model).map_err(|e| {
        eprintln!(
            "error: {} does not fit this run's model: {e}; fit it again",
            path.display()
        );
        ExitCode::from(1)
    })?;
    run.net.code_sampler = Some(gmm);
    Ok(())
}
