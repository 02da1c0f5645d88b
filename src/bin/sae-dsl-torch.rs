//! `sae-dsl-torch`: every command of the CLI, linked with libtorch. The `sae-dsl` front end runs
//! `check` and `graph` itself (no libtorch load) and hands the others to this binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use sae_dsl::cli::{front, run_front_end, Cli, Command, TrainArgs};
use sae_dsl::{data, eval, train};

/// SIGINT and SIGTERM stop training at the next step boundary with the state saved; a second
/// signal exits at once.
fn install_signal_handler() {
    let _ = ctrlc::set_handler(|| {
        let flag = train::interrupt_flag();
        if flag.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\nstopping at the next step; the state will be saved (signal again to quit at once)"
        );
    });
}

fn report<E: miette::Diagnostic + Send + Sync + 'static>(e: E) -> ExitCode {
    eprintln!("{:?}", miette::Report::new(e));
    ExitCode::from(1)
}

/// Reports a training error; 130 for an interruption, as shells expect after SIGINT.
fn train_failed(e: train::TrainError) -> ExitCode {
    let code = if matches!(e, train::TrainError::Interrupted { .. }) {
        130
    } else {
        1
    };
    eprintln!("{:?}", miette::Report::new(e));
    ExitCode::from(code)
}

fn finished(s: &train::RunSummary, json: bool) -> ExitCode {
    if json {
        let mut v = std::fs::read_to_string(s.dir.join("summary.json"))
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
        if let Ok(text) = std::fs::read_to_string(s.dir.join("summary.json")) {
            if let Ok(e) = serde_json::from_str::<eval::Summary>(&text) {
                print_summary(&e);
            }
        }
        println!("  pictures: {}/*.png", s.dir.display());
    }
    ExitCode::SUCCESS
}

fn print_summary(e: &eval::Summary) {
    println!("  latent MMD x1000 {:.3}", e.latent_mmd_x1000);
    if let (Some(f), Some(a)) = (e.fid_cnn, e.classifier_test_accuracy) {
        println!("  FID {f:.2} (MNIST-CNN features, classifier test accuracy {:.2}%; not the Inception FID)", a * 100.0);
    }
    if let Some(h) = e.sample_label_entropy_bits {
        println!("  sample label entropy {h:.2} bits of 3.32 (coverage of the 10 classes)");
    }
    println!(
        "  data-space Sinkhorn divergence {:.4} (epsilon {})",
        e.data_sinkhorn, e.data_sinkhorn_epsilon
    );
}

fn device(s: &str) -> Result<tch::Device, ExitCode> {
    train::parse_device(s).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// Opens a run and loads its train and test data.
fn open_with_data(
    dir: &Path,
    dev: &str,
    data_dir: Option<PathBuf>,
) -> Result<(eval::LoadedRun, data::Dataset, data::Dataset), ExitCode> {
    let dev = device(dev)?;
    let run = eval::open_run(dir, dev).map_err(report)?;
    let dd = data_dir.or_else(|| run.data_dir());
    let train =
        data::load(&run.model.data, "train", dd.as_deref(), run.seed(), dev).map_err(report)?;
    let test =
        data::load(&run.model.data, "test", dd.as_deref(), run.seed(), dev).map_err(report)?;
    Ok((run, train, test))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(c) | Err(c) => c,
    }
}

fn run(command: Command) -> Result<ExitCode, ExitCode> {
    Ok(match command {
        Command::Check { .. } | Command::Graph { .. } => {
            run_front_end(&command).unwrap_or(ExitCode::from(2))
        }
        Command::Run {
            file,
            epochs,
            out,
            seed,
            force,
            resume,
            t,
        } => {
            if resume {
                let Some(dir) = out else {
                    eprintln!("error: --resume needs --out DIR, the run to continue");
                    return Err(ExitCode::from(2));
                };
                return Ok(resume_run(&dir, epochs, t));
            }
            let c = front(&file, None).ok_or(ExitCode::from(1))?;
            let Some(model) = c.model.clone().filter(|_| !c.has_errors()) else {
                if c.library {
                    eprintln!("error: {} defines nets only; `run` needs a model with data, latent, encoder, generator and penalty clauses", file.display());
                }
                return Err(ExitCode::from(1));
            };
            let dev = device(&t.device)?;
            let source = std::fs::read_to_string(&file).unwrap_or_default();
            let opts = train::RunOptions {
                epochs,
                seed,
                out,
                data_dir: t.data_dir,
                quiet: t.quiet,
                force,
                evaluate: !t.no_eval,
                json: t.json,
            };
            if !t.quiet && !t.json {
                eprintln!("training {} on {dev:?}", model.name);
            }
            install_signal_handler();
            match train::run(&model, &source, dev, &opts) {
                Ok(s) => finished(&s, t.json),
                Err(e) => train_failed(e),
            }
        }
        Command::Resume { dir, epochs, t } => resume_run(&dir, epochs, t),
        Command::Eval {
            dir,
            device: dev,
            data_dir,
            samples,
            quiet,
        } => {
            let (run, train, test) = open_with_data(&dir, &dev, data_dir)?;
            let opts = eval::EvalOptions {
                quiet,
                samples: Some(samples),
            };
            let s = eval::evaluate(
                &dir,
                &run.model,
                &run.source,
                &run.net,
                &train,
                &test,
                run.seed(),
                &opts,
            )
            .map_err(report)?;
            eval::draw(&dir, &run.model, &run.net, &train, &test).map_err(report)?;
            println!(
                "{}: {} with {} prior, gamma {}",
                dir.display(),
                s.method,
                s.prior,
                sae_dsl::ir::num(s.gamma)
            );
            println!(
                "  test reconstruction {:.4} (model cost), mse {:.5}",
                s.test_recon, s.test_mse
            );
            print_summary(&s);
            println!("  written: {}/summary.json and pictures", dir.display());
            ExitCode::SUCCESS
        }
        Command::Sample {
            dir,
            n,
            out,
            seed,
            device: dev,
        } => {
            let d = device(&dev)?;
            let run = eval::open_run(&dir, d).map_err(report)?;
            if n < 1 {
                eprintln!("error: -n must be at least 1");
                return Err(ExitCode::from(2));
            }
            tch::manual_seed(seed.unwrap_or(run.seed()));
            eval::write_samples(&run.net, &run.model, n, &out).map_err(report)?;
            println!("{n} samples written to {}", out.display());
            ExitCode::SUCCESS
        }
        Command::Reconstruct {
            dir,
            device: dev,
            data_dir,
        } => {
            let (run, train, test) = open_with_data(&dir, &dev, data_dir)?;
            eval::draw(&dir, &run.model, &run.net, &train, &test).map_err(report)?;
            println!("pictures written to {}: reconstructions.png, samples.png, latent.png, loss_curves.png, ...", dir.display());
            ExitCode::SUCCESS
        }
        Command::Interpolate {
            dir,
            from,
            to,
            steps,
            device: dev,
            data_dir,
        } => {
            let (run, _, test) = open_with_data(&dir, &dev, data_dir)?;
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
            ExitCode::SUCCESS
        }
        Command::Geodesic {
            dir,
            from,
            to,
            points,
            device: dev,
            data_dir,
        } => {
            let (run, _, test) = open_with_data(&dir, &dev, data_dir)?;
            let json = eval::geodesic(
                &dir,
                &run.model,
                &run.net,
                &test,
                from,
                to,
                points.clamp(3, 256),
            )
            .map_err(report)?;
            let (s, g) = (&json["straight"], &json["geodesic"]);
            println!(
                "{}: test {from} to {to}, {} points in {}",
                dir.display(),
                json["points"],
                json["space"].as_str().unwrap_or("")
            );
            println!(
                "  straight  length {} (data space), energy {}",
                s["length_data_space"], s["energy"]
            );
            println!(
                "  geodesic  length {} (data space), energy {}, {} iterations",
                g["length_data_space"], g["energy"], g["iterations"]
            );
            println!(
                "  written: geodesic-{from}-{to}.png, geodesic-{from}-{to}.json{}",
                if run.model.latent_dim() == 2 {
                    format!(", magnification-{from}-{to}.png")
                } else {
                    String::new()
                }
            );
            ExitCode::SUCCESS
        }
        Command::Prior {
            file,
            name,
            args,
            n,
            out,
            seed,
            device: dev,
        } => {
            if n < 1 {
                eprintln!("error: -n must be at least 1");
                return Err(ExitCode::from(2));
            }
            let (program, space, warnings) =
                match sae_dsl::front::prior_program(&file, &name, args.as_deref()) {
                    Ok(p) => p,
                    Err(text) => {
                        eprintln!("{text}");
                        return Err(ExitCode::from(1));
                    }
                };
            for w in warnings {
                eprintln!("warning: {w}");
            }
            let d = device(&dev)?;
            tch::manual_seed(seed);
            let started = std::time::Instant::now();
            let z = tch::no_grad(|| sae_dsl::backend::sample_program(&program, n, d));
            let took = started.elapsed();
            let written =
                eval::write_prior_samples(&z, space, &program.call, &out, &name).map_err(report)?;
            println!(
                "{n} samples of {} on {space} in {:.2} ms ({} registers, {} draws per sample)",
                program.call,
                took.as_secs_f64() * 1e3,
                program.instrs.len(),
                program.draws()
            );
            for f in written {
                println!("  {}", f.display());
            }
            ExitCode::SUCCESS
        }
        Command::Compare { dirs, csv } => {
            let (md, text) = eval::compare(&dirs).map_err(report)?;
            sae_dsl::util::write_atomic(&csv, text.as_bytes()).map_err(|e| {
                eprintln!("error: {}: {e}", csv.display());
                ExitCode::from(1)
            })?;
            print!("{md}");
            println!("\nCSV: {}", csv.display());
            ExitCode::SUCCESS
        }
    })
}

fn resume_run(dir: &Path, epochs: Option<i64>, t: TrainArgs) -> ExitCode {
    let dev = match device(&t.device) {
        Ok(d) => d,
        Err(c) => return c,
    };
    install_signal_handler();
    let opts = train::RunOptions {
        epochs,
        data_dir: t.data_dir,
        quiet: t.quiet,
        evaluate: !t.no_eval,
        json: t.json,
        ..Default::default()
    };
    match train::resume(dir, dev, &opts) {
        Ok(s) => finished(&s, t.json),
        Err(e) => train_failed(e),
    }
}
