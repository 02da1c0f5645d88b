//! The commands that need libtorch, one file each; [`run`] dispatches. The command-line
//! definition itself ([`Cli`](sae_dsl_lang::cli::Cli)) and the front-end commands `check` and
//! `graph` live in the language crate, which the `sae-dsl` binary uses alone.

mod compare;
mod encode;
mod eval;
mod export;
mod fit_sampler;
mod geodesic;
mod interpolate;
mod prior;
mod reconstruct;
mod run;
mod sample;
mod sweep;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sae_dsl_lang::cli::{run_front_end, Command};

use crate::data::{self, Dataset};
use crate::eval::{open_run, LoadedRun, Summary};
use crate::runtime::device::parse_device;

/// Runs one command; its exit code.
// long: one arm per command, each only unpacking its arguments for the command's module.
pub fn run(command: Command) -> ExitCode {
    let out = match command {
        Command::Check { .. } | Command::Graph { .. } | Command::Fmt { .. } | Command::Lsp => {
            Ok(run_front_end(&command).unwrap_or(ExitCode::from(2)))
        }
        Command::Run {
            file,
            epochs,
            out,
            seed,
            force,
            resume,
            init_from,
            set,
            t,
        } => run::run(&file, epochs, out, seed, force, resume, init_from, &set, t),
        Command::Resume {
            dir,
            epochs,
            force,
            t,
        } => Ok(run::resume(&dir, epochs, force, t)),
        Command::Eval {
            dir,
            device,
            data_dir,
            samples,
            quiet,
            sampler,
            features,
        } => eval::eval(&dir, &device, data_dir, samples, quiet, &sampler, features),
        Command::Sample {
            dir,
            n,
            out,
            seed,
            device,
            sampler,
        } => sample::sample(&dir, n, &out, seed, &device, &sampler),
        Command::Encode {
            dir,
            out,
            split,
            device,
            data_dir,
        } => encode::encode(&dir, &out, &split, &device, data_dir),
        Command::Reconstruct {
            dir,
            device,
            data_dir,
        } => reconstruct::reconstruct(&dir, &device, data_dir),
        Command::Interpolate {
            dir,
            from,
            to,
            steps,
            device,
            data_dir,
        } => interpolate::interpolate(&dir, from, to, steps, &device, data_dir),
        Command::Geodesic {
            dir,
            from,
            to,
            points,
            device,
            data_dir,
        } => geodesic::geodesic(&dir, from, to, points, &device, data_dir),
        Command::Prior {
            file,
            name,
            args,
            n,
            out,
            seed,
            device,
            dims,
        } => prior::prior(
            &file,
            &name,
            args.as_deref(),
            n,
            &out,
            seed,
            &device,
            dims.as_deref(),
        ),
        Command::Compare { dirs, csv, metric } => compare::compare(&dirs, &csv, &metric),
        Command::Sweep { action, create } => sweep::sweep(action, create),
        Command::Export {
            dir,
            format,
            out,
            weights,
        } => export::export(&dir, &format, &out, &weights),
        Command::FitSampler {
            dir,
            gmm,
            seed,
            device,
            data_dir,
        } => fit_sampler::fit_sampler(&dir, gmm, seed, &device, data_dir),
    };
    match out {
        Ok(c) | Err(c) => c,
    }
}

/// What a command returns: its exit code, early or not.
type Outcome = Result<ExitCode, ExitCode>;

/// Prints an error with its diagnostic; exit code 1.
fn report<E: miette::Diagnostic + Send + Sync + 'static>(e: E) -> ExitCode {
    eprintln!("{:?}", miette::Report::new(e));
    ExitCode::from(1)
}

/// Resolves `--device`; exit code 2 when it cannot.
fn device(s: &str) -> Result<tch::Device, ExitCode> {
    parse_device(s).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// Refuses `-n` below 1 (exit code 2).
fn at_least_one(n: i64) -> Result<(), ExitCode> {
    if n < 1 {
        eprintln!("error: -n must be at least 1");
        return Err(ExitCode::from(2));
    }
    Ok(())
}

/// Opens a run and loads its train and test data.
fn open_with_data(
    dir: &Path,
    dev: &str,
    data_dir: Option<PathBuf>,
) -> Result<(LoadedRun, Dataset, Dataset), ExitCode> {
    let dev = device(dev)?;
    let run = open_run(dir, dev).map_err(report)?;
    let dd = data_dir.or_else(|| run.data_dir());
    let train =
        data::load(&run.model.data, "train", dd.as_deref(), run.seed(), dev).map_err(report)?;
    let test =
        data::load(&run.model.data, "test", dd.as_deref(), run.seed(), dev).map_err(report)?;
    for (split, set) in [("train", &train), ("test", &test)] {
        if let Err(e) = crate::rundir::check_data(&run.config, split, &set.origin) {
            eprintln!("error: {}: {e}", dir.display());
            return Err(ExitCode::from(1));
        }
    }
    Ok((run, train, test))
}

/// The metrics lines of a summary, shared by `run` and `eval`.
fn print_summary(e: &Summary) {
    println!("  latent MMD x1000 {:.3}", e.latent_mmd_x1000);
    if let (Some(f), Some(a)) = (e.fid_cnn, e.classifier_test_accuracy) {
        let net = match e.fid_features.as_deref() {
            Some(s) if s.starts_with("cnn v1: conv(1->32") && s.contains("linear(3136") => {
                "MNIST-CNN features".to_string()
            }
            Some(s) => format!(
                "features of a CNN trained on the data's labels: {}",
                s.split(';').next().unwrap_or(s)
            ),
            None => "CNN features".to_string(),
        };
        println!(
            "  FID {f:.2} ({net}, classifier test accuracy {:.2}%; not the Inception FID)",
            a * 100.0
        );
    }
    if let (Some(f), Some(net)) = (e.fid_external, &e.fid_external_features) {
        println!("  FID {f:.2} (features of {net})");
    }
    if let Some(f) = e.fid_validation {
        println!("  FID against the validation split {f:.2}");
    }
    if let (Some(h), Some(hist)) = (e.sample_label_entropy_bits, &e.sample_label_histogram) {
        let k = hist.len().max(1);
        println!(
            "  sample label entropy {h:.2} bits of {:.2} (coverage of the {k} classes)",
            (k as f64).log2()
        );
    }
    if let Some(p) = &e.factor_probe {
        let parts: Vec<String> = p
            .iter()
            .map(|(n, v)| {
                format!(
                    "{n} {}{v:.3}",
                    if n == "shape" { "accuracy " } else { "R^2 " }
                )
            })
            .collect();
        println!(
            "  linear read-out of the factors from the codes (test): {}",
            parts.join(", ")
        );
    }
    println!(
        "  data-space Sinkhorn divergence {:.4} (epsilon {})",
        e.data_sinkhorn, e.data_sinkhorn_epsilon
    );
}

/// Installs the process's SIGINT/SIGTERM handler (once; later calls keep the first): the first
/// signal asks `stop` and every later phase to stop at its next safe point and prints `first`;
/// a second ends the process at once (`signals::exit_now`, exit status 130).
pub(crate) fn install_signals(stop: &crate::train::Interrupter, first: &'static str) {
    let handler = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if crate::signals::note_signal() >= 2 {
            eprintln!("\nsecond signal: stopping now (the files of the last safe point are kept)");
            crate::signals::exit_now(130);
        }
        handler.request();
        eprintln!("\n{first} (signal again to quit at once)");
    });
}
