//! `sae-dsl run` and `sae-dsl resume`: train (or continue), then evaluate, through the pipeline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sae_dsl_lang::cli::{front, TrainArgs};
use sae_dsl_lang::overrides::Override;

use super::{device, print_summary, Outcome};
use crate::eval;
use crate::pipeline::{self, RunError};
use crate::train::{Interrupter, RunOptions, RunSummary, TrainError};

/// SIGINT and SIGTERM stop training at the next step boundary with the state saved (and the
/// evaluation at its next safe point); a second signal exits at once.
fn install_signal_handler() -> Interrupter {
    let stop = Interrupter::new();
    super::install_signals(
        &stop,
        "stopping at the next safe point (in training, after saving its state; in evaluation, before writing its figures)",
    );
    stop
}

/// `sae-dsl run FILE`.
#[allow(clippy::too_many_arguments)] // the command's flags, as clap gives them
pub fn run(
    file: &Path,
    epochs: Option<i64>,
    out: Option<PathBuf>,
    seed: Option<i64>,
    force: bool,
    resume_flag: bool,
    init_from: Option<PathBuf>,
    set: &[Override],
    t: TrainArgs,
) -> Outcome {
    if resume_flag {
        let Some(dir) = out else {
            eprintln!("error: --resume needs --out DIR, the run to continue");
            return Err(ExitCode::from(2));
        };
        return Ok(resume(&dir, epochs, force, t));
    }
    let c = front(file, None, set).ok_or(ExitCode::from(1))?;
    let Some(model) = c.model.clone().filter(|_| !c.has_errors()) else {
        if c.library {
            eprintln!("error: {} defines nets only; `run` needs a model with data, latent, encoder, generator and penalty clauses", file.display());
        }
        return Err(ExitCode::from(1));
    };
    let dev = device(&t.device)?;
    // With overrides, the run records the model text with their values in place.
    let source = match &c.effective {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(file).unwrap_or_default(),
    };
    if !t.quiet && !t.json {
        eprintln!("training {} on {dev:?}", model.name);
    }
    let opts = RunOptions {
        epochs,
        seed,
        out,
        data_dir: t.data_dir,
        quiet: t.quiet,
        force,
        evaluate: !t.no_eval,
        json: t.json,
        interrupter: install_signal_handler(),
        allow_divergence: t.allow_divergence,
        init_from,
        overrides: set
            .iter()
            .map(|o| (o.name.clone(), o.value.clone()))
            .collect(),
        imports: Some(crate::rundir::Imports::of(&c.program)),
    };
    Ok(match pipeline::run(&model, &source, dev, &opts) {
        Ok(s) => finished(&s, t.json),
        Err(e) => failed(e),
    })
}

/// `sae-dsl resume DIR` (and `run --resume --out DIR`); `force` resumes on changed data.
pub fn resume(dir: &Path, epochs: Option<i64>, force: bool, t: TrainArgs) -> ExitCode {
    let dev = match device(&t.device) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let opts = RunOptions {
        epochs,
        data_dir: t.data_dir,
        quiet: t.quiet,
        evaluate: !t.no_eval,
        json: t.json,
        interrupter: install_signal_handler(),
        allow_divergence: t.allow_divergence,
        force,
        ..Default::default()
    };
    match pipeline::resume(dir, dev, &opts) {
        Ok(s) => finished(&s, t.json),
        Err(e) => failed(e),
    }
}

/// Reports a failed run; 130 for an interruption, as shells expect after SIGINT.
fn failed(e: RunError) -> ExitCode {
    let code = if matches!(
        e,
        RunError::Train(TrainError::Interrupted { .. })
            | RunError::Eval(crate::eval::EvalError::Interrupted { .. })
    ) {
        130
    } else {
        1
    };
    eprintln!("{:?}", miette::Report::new(e));
    ExitCode::from(code)
}

/// The closing lines of a finished run (one JSON object with `--json`).
fn finished(s: &RunSummary, json: bool) -> ExitCode {
    let summary = s.dir.join(crate::rundir::SUMMARY);
    if json {
        let mut v = std::fs::read_to_string(&summary)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .unwrap_or_default();
        v["event"] = "summary".into();
        v["dir"] = s.dir.display().to_string().into();
        println!("{v}");
    } else {
        println!(
            "run finished: {}\n  test reconstruction {:.4} (model cost), mse {:.5}",
            s.dir.display(),
            s.test_recon,
            s.test_mse
        );
        if let Ok(text) = std::fs::read_to_string(&summary) {
            if let Ok(e) = serde_json::from_str::<eval::Summary>(&text) {
                print_summary(&e);
            }
        }
        println!("  pictures: {}/*.png", s.dir.display());
    }
    ExitCode::SUCCESS
}
