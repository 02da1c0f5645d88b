//! The `sae-dsl` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sae_dsl::{compile_file, graph_text, train, Compilation};

#[derive(Parser)]
#[command(
    name = "sae-dsl",
    version,
    about = "Optimal-transport autoencoders from small model files, trained with libtorch"
)]
#[command(
    after_help = "Examples:\n  sae-dsl check models/dirichlet_mnist.sae\n  sae-dsl graph models/dirichlet_mnist.sae\n  sae-dsl run models/rings_2d.sae --epochs 5\n  sae-dsl run models/dirichlet_mnist.sae --device auto --out runs/dir16"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a model file and report every diagnostic; exits 1 on error.
    #[command(after_help = "Example:\n  sae-dsl check models/sphere_mnist.sae")]
    Check {
        file: PathBuf,
        /// Colour the diagnostics (default: when stderr is a terminal).
        #[arg(long)]
        color: Option<bool>,
    },
    /// Print the compiled graph: layers with inferred shapes and parameter counts, prior, space,
    /// costs, penalty and training settings.
    #[command(after_help = "Example:\n  sae-dsl graph models/dirichlet_mnist.sae")]
    Graph { file: PathBuf },
    /// Continue an interrupted run from its saved state (resume.safetensors).
    #[command(
        after_help = "Examples:\n  sae-dsl resume runs/dirichlet_mnist-20261121-070630\n  sae-dsl resume runs/try1 --epochs 40    # train a finished run for longer"
    )]
    Resume {
        dir: PathBuf,
        /// Train up to this many epochs in all (default: the run's own).
        #[arg(long)]
        epochs: Option<i64>,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Folder holding data sets (default: the one the run used).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// No progress bar or per-epoch lines.
        #[arg(long)]
        quiet: bool,
    },
    /// Train a model and write its run directory (checkpoint, metrics, pictures).
    #[command(
        after_help = "Examples:\n  sae-dsl run models/rings_2d.sae\n  sae-dsl run models/dirichlet_mnist.sae --epochs 5 --out runs/try1\n  SAE_DSL_DATA=/path/to/data sae-dsl run models/normal_mnist.sae"
    )]
    Run {
        file: PathBuf,
        /// Override the number of epochs of the model file.
        #[arg(long)]
        epochs: Option<i64>,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Run directory (default runs/<model>-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the seed of the model file.
        #[arg(long)]
        seed: Option<i64>,
        /// Folder holding data sets (DIR/mnist/train-images-idx3-ubyte.gz, ...); also $SAE_DSL_DATA.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// No progress bar or per-epoch lines.
        #[arg(long)]
        quiet: bool,
        /// Write into an existing, non-empty run directory.
        #[arg(long)]
        force: bool,
    },
}

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

fn finished(s: &train::RunSummary) -> ExitCode {
    println!(
        "run finished: {}\n  test reconstruction {:.4} (model cost), mse {:.5}",
        s.dir.display(),
        s.test_recon,
        s.test_mse
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Resume {
            dir,
            epochs,
            device,
            data_dir,
            quiet,
        } => {
            let device = match train::parse_device(&device) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            install_signal_handler();
            let opts = train::RunOptions {
                epochs,
                data_dir,
                quiet,
                ..Default::default()
            };
            match train::resume(&dir, device, &opts) {
                Ok(s) => finished(&s),
                Err(e) => train_failed(e),
            }
        }
        Command::Check { file, color } => {
            let Some(c) = front(&file, color) else {
                return ExitCode::from(1);
            };
            if c.has_errors() {
                return ExitCode::from(1);
            }
            let warnings = c.diags.len();
            println!(
                "{}: ok{}",
                file.display(),
                if warnings > 0 {
                    format!(" ({warnings} warnings)")
                } else {
                    String::new()
                }
            );
            ExitCode::SUCCESS
        }
        Command::Graph { file } => {
            let Some(c) = front(&file, None) else {
                return ExitCode::from(1);
            };
            match graph_text(&c) {
                Some(text) if !c.has_errors() => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(1),
            }
        }
        Command::Run {
            file,
            epochs,
            device,
            out,
            seed,
            data_dir,
            quiet,
            force,
        } => {
            let Some(c) = front(&file, None) else {
                return ExitCode::from(1);
            };
            let Some(model) = c.model.clone().filter(|_| !c.has_errors()) else {
                if c.library {
                    eprintln!("error: {} defines nets only; `run` needs a model with data, latent, encoder, generator and penalty clauses", file.display());
                }
                return ExitCode::from(1);
            };
            let device = match train::parse_device(&device) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let source = std::fs::read_to_string(&file).unwrap_or_default();
            let opts = train::RunOptions {
                epochs,
                seed,
                out,
                data_dir,
                quiet,
                force,
            };
            if !quiet {
                eprintln!("training {} on {device:?}", model.name);
            }
            install_signal_handler();
            match train::run(&model, &source, device, &opts) {
                Ok(s) => finished(&s),
                Err(e) => train_failed(e),
            }
        }
    }
}

/// Loads and checks a file, printing its diagnostics; None when the file cannot be read.
fn front(file: &Path, color: Option<bool>) -> Option<Compilation> {
    let c = match compile_file(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return None;
        }
    };
    if !c.diags.is_empty() {
        use std::io::IsTerminal;
        let color = color.unwrap_or_else(|| std::io::stderr().is_terminal());
        eprint!("{}", c.sources.render(&c.diags, color, 100));
        let errors = c.diags.iter().filter(|d| d.is_error()).count();
        if errors > 0 {
            eprintln!(
                "{}: {errors} error{}",
                file.display(),
                if errors == 1 { "" } else { "s" }
            );
        }
    }
    Some(c)
}
