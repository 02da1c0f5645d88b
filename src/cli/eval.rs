//! `sae-dsl eval DIR`: the metrics and pictures of a finished run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{fit_sampler::use_sampler, open_with_data, print_summary, report, Outcome};
use crate::eval::{self, EvalOptions};

/// Computes `summary.json` and the pictures, and prints the metrics; with the `gmm` sampler,
/// `summary.gmm.json` and `samples_gmm.png`.
pub fn eval(
    dir: &Path,
    dev: &str,
    data_dir: Option<PathBuf>,
    samples: i64,
    quiet: bool,
    sampler: &str,
    features: Option<PathBuf>,
) -> Outcome {
    // Ctrl-C stops the evaluation at its next safe point, writing no figure of the unfinished
    // phase; a second one ends the process at once.
    super::install_signals(
        &crate::train::Interrupter::new(),
        "stopping the evaluation at its next safe point; summary.json keeps its figures",
    );
    let (mut run, train, test) = open_with_data(dir, dev, data_dir)?;
    use_sampler(&mut run, sampler)?;
    let gmm = sampler == "gmm";
    let opts = EvalOptions {
        quiet,
        samples: Some(samples),
        summary_file: gmm.then(|| "summary.gmm.json".to_string()),
        validation: match &run.model.train.validation {
            Some(v) => crate::train::validation_images(&train, v).map_err(report)?,
            None => None,
        },
        features,
    };
    let s = eval::evaluate(
        dir,
        &run.model,
        &run.source,
        &run.net,
        &train,
        &test,
        run.seed(),
        &opts,
    )
    .map_err(|e| {
        let interrupted = matches!(e, eval::EvalError::Interrupted { .. });
        let code = report(e);
        if interrupted {
            ExitCode::from(130)
        } else {
            code
        }
    })?;
    if gmm {
        tch::manual_seed(run.seed());
        let grid = dir.join("samples_gmm.png");
        eval::write_samples(&run.net, &run.model, 64, &grid).map_err(report)?;
    } else {
        eval::draw(dir, &run.model, &run.net, &train, &test).map_err(report)?;
    }
    println!(
        "{}: {} with {} prior, gamma {}{}",
        dir.display(),
        s.method,
        s.prior,
        crate::ir::num(s.gamma),
        if gmm {
            "; samples from the fitted Gaussian mixture"
        } else {
            ""
        }
    );
    println!(
        "  test reconstruction {:.4} (model cost), mse {:.5}",
        s.test_recon, s.test_mse
    );
    print_summary(&s);
    if gmm {
        println!(
            "  written: {0}/summary.gmm.json and {0}/samples_gmm.png (latent MMD: codes against the mixture's draws)",
            dir.display()
        );
    } else {
        println!("  written: {}/summary.json and pictures", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
