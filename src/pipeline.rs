//! The driver above training and evaluation: train (or resume), then draw the pictures, write
//! the summary and, when asked, compute the evaluation metrics. Neither `train` nor `eval`
//! knows about the other; this is the one place that runs them in order.

use std::path::Path;

use tch::Device;

use crate::eval::{self, EvalError, EvalOptions};
use crate::ir;
use crate::rundir;
use crate::train::{self, RunOptions, RunSummary, TrainError, Trained};

/// Why a run (training, then evaluation) stopped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RunError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Eval(#[from] EvalError),
}

/// Trains `model` in a new run directory and evaluates it. `source` is the model file's text.
pub fn run(
    model: &ir::Model,
    source: &str,
    device: Device,
    opts: &RunOptions,
) -> Result<RunSummary, RunError> {
    let trained = train::run(model, source, device, opts)?;
    finish(trained, opts)
}

/// Continues the run in `dir` and evaluates it.
pub fn resume(dir: &Path, device: Device, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let trained = train::resume(dir, device, opts)?;
    finish(trained, opts)
}

/// Pictures, `summary.json`, then the metrics when `opts.evaluate`; the run's lock is held
/// until the end.
fn finish(t: Trained, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let dir = t.summary.dir.clone();
    let train = t.full_train.as_ref().unwrap_or(&t.train);
    eval::check_stop(&dir, "before the pictures")?;
    eval::draw(&dir, &t.model, &t.net, train, &t.test)?;
    rundir::write_json(&dir, rundir::SUMMARY, &t.summary).map_err(|error| TrainError::Io {
        path: dir.clone(),
        error,
    })?;
    if opts.evaluate {
        eval::check_stop(&dir, "before it began")?;
        let eval_opts = EvalOptions {
            quiet: opts.quiet || opts.json,
            samples: None,
            summary_file: None,
            validation: t.validation.as_ref().map(|v| v.x()),
            features: None,
        };
        eval::evaluate(
            &dir, &t.model, &t.source, &t.net, train, &t.test, t.seed, &eval_opts,
        )?;
    }
    Ok(t.summary)
}
