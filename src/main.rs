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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
            match train::run(&model, &source, device, &opts) {
                Ok(s) => {
                    println!(
                        "run finished: {}\n  test reconstruction {:.4} (model cost), mse {:.5}",
                        s.dir.display(),
                        s.test_recon,
                        s.test_mse
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{:?}", miette::Report::new(e));
                    ExitCode::from(1)
                }
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
