//! `sae-dsl eval DIR`: the metrics and pictures of a finished run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{open_with_data, print_summary, report, Outcome};
use crate::eval::{self, EvalOptions};

/// Computes `summary.json` and the pictures, and prints the metrics.
pub fn eval(
    dir: &Path,
    dev: &str,
    data_dir: Option<PathBuf>,
    samples: i64,
    quiet: bool,
) -> Outcome {
    let (run, train, test) = open_with_data(dir, dev, data_dir)?;
    let opts = EvalOptions {
        quiet,
        samples: Some(samples),
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
    .map_err(report)?;
    eval::draw(dir, &run.model, &run.net, &train, &test).map_err(report)?;
    println!(
        "{}: {} with {} prior, gamma {}",
        dir.display(),
        s.method,
        s.prior,
        crate::ir::num(s.gamma)
    );
    println!(
        "  test reconstruction {:.4} (model cost), mse {:.5}",
        s.test_recon, s.test_mse
    );
    print_summary(&s);
    println!("  written: {}/summary.json and pictures", dir.display());
    Ok(ExitCode::SUCCESS)
}
