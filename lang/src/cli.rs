//! The command-line interface, shared by the two binaries: `sae-dsl` (the front end: `check` and
//! `graph` run without loading libtorch, everything else is handed to `sae-dsl-torch`) and
//! `sae-dsl-torch` (every command).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::driver::{compile_file_with, Compilation};
use crate::overrides::Override;

#[derive(Parser)]
#[command(
    name = "sae-dsl",
    version,
    about = "Optimal-transport autoencoders from small model files, trained with libtorch"
)]
#[command(after_help = "Examples:
  sae-dsl check models/dirichlet_mnist.sae
  sae-dsl graph models/dirichlet_mnist.sae
  sae-dsl run models/rings_2d.sae --epochs 5
  sae-dsl run models/dirichlet_mnist.sae --out runs/dir16
  sae-dsl eval runs/dir16
  sae-dsl compare runs/dir16 runs/sphere runs/vae")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by the commands that train.
#[derive(clap::Args, Clone)]
pub struct TrainArgs {
    /// auto (CUDA when available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Folder holding data sets (DIR/mnist/train-images-idx3-ubyte.gz, ...); also $SAE_DSL_DATA.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// No progress bar or per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// Machine-readable progress: one JSON object per epoch on standard output, then the summary.
    #[arg(long)]
    pub json: bool,
    /// Skip the evaluation at the end (FID, latent MMD, coverage); `sae-dsl eval` computes it later.
    #[arg(long)]
    pub no_eval: bool,
    /// Keep training when the loss grows far beyond its best (by default the run stops there,
    /// keeping the last good checkpoint).
    #[arg(long)]
    pub allow_divergence: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check a model file and report every diagnostic; exits 1 on error.
    #[command(after_help = "Example:\n  sae-dsl check models/sphere_mnist.sae")]
    Check {
        /// The model file (.sae).
        file: PathBuf,
        /// Colour the diagnostics (default: when stderr is a terminal).
        #[arg(long)]
        color: Option<bool>,
        /// Override a constant (`let NAME = ...`) or a `train` setting: `--set gamma=10`.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<Override>,
    },
    /// Run the language server over standard input and output (for editors; see editors/vscode).
    Lsp,
    /// Rewrite model files in the canonical style (comments and blank-line groups kept).
    #[command(
        after_help = "Examples:\n  sae-dsl fmt models/            # every .sae file under models/\n  sae-dsl fmt --check models/ stdlib/\n  sae-dsl fmt --stdout my.sae"
    )]
    Fmt {
        /// Files, or folders searched recursively for `.sae` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing: print a diff of what would change and exit 1 if anything would.
        #[arg(long, conflicts_with = "stdout")]
        check: bool,
        /// Print the formatted text instead of rewriting the files.
        #[arg(long)]
        stdout: bool,
    },
    /// Print the compiled graph: layers with inferred shapes and parameter counts, prior, space,
    /// costs, penalties and training settings.
    #[command(after_help = "Example:\n  sae-dsl graph models/dirichlet_mnist.sae")]
    Graph {
        /// The model file (.sae).
        file: PathBuf,
        /// Print the model as a Graphviz graph (pipe it to `dot -Tsvg`).
        #[arg(long, conflicts_with = "svg")]
        dot: bool,
        /// Print the model as an SVG picture (needs Graphviz's `dot` on the PATH).
        #[arg(long)]
        svg: bool,
        /// Override a constant (`let NAME = ...`) or a `train` setting: `--set gamma=10`.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<Override>,
    },
    /// Train a model and write its run directory (checkpoint, metrics, pictures, summary).
    #[command(
        after_help = "Examples:\n  sae-dsl run models/rings_2d.sae\n  sae-dsl run models/dirichlet_mnist.sae --epochs 5 --out runs/try1\n  SAE_DSL_DATA=/path/to/data sae-dsl run models/normal_mnist.sae --json > progress.jsonl"
    )]
    Run {
        /// The model file (.sae) to train.
        file: PathBuf,
        /// Override the number of epochs of the model file.
        #[arg(long)]
        epochs: Option<i64>,
        /// Run directory (default runs/<model>-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the seed of the model file.
        #[arg(long)]
        seed: Option<i64>,
        /// Write into an existing, non-empty run directory.
        #[arg(long)]
        force: bool,
        /// Continue the run in --out instead of starting a new one (same as `sae-dsl resume`).
        #[arg(long)]
        resume: bool,
        /// Start from these weights instead of a random initialisation: a safetensors file
        /// (e.g. exported from PyTorch) or a run directory (its checkpoint). Every variable's name
        /// and shape must match the model's.
        #[arg(long, value_name = "FILE")]
        init_from: Option<PathBuf>,
        /// Override a constant (`let NAME = ...`) or a `train` setting: `--set gamma=10`; the run
        /// records the model with the values substituted, and them in config.json.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<Override>,
        #[command(flatten)]
        t: TrainArgs,
    },
    /// Continue an interrupted run from its saved state (resume.safetensors).
    #[command(
        after_help = "Examples:\n  sae-dsl resume runs/dirichlet_mnist-20261121-070630\n  sae-dsl resume runs/try1 --epochs 40    # train a finished run for longer"
    )]
    Resume {
        /// The run directory (written by `sae-dsl run`).
        dir: PathBuf,
        /// Train up to this many epochs in all (default: the run's own).
        #[arg(long)]
        epochs: Option<i64>,
        /// Resume even when the training data changed since the run started.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        t: TrainArgs,
    },
    /// Compute the metrics of a run (reconstruction, latent MMD, FID with an MNIST CNN, sample
    /// coverage, data-space Sinkhorn) into summary.json, and redraw its pictures.
    #[command(
        after_help = "Example:\n  sae-dsl eval runs/dir16\n\nThe FID uses a small CNN trained on the data set's labels (trained once, cached); it is not the Inception FID."
    )]
    Eval {
        /// The run directory (written by `sae-dsl run`).
        dir: PathBuf,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// The data folder, searched first (by default: the folder the run's data were found in, then $SAE_DSL_DATA and the default folders).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Generated samples for FID and coverage.
        #[arg(long, default_value_t = 10_000)]
        samples: i64,
        /// Print the figures only, without progress.
        #[arg(long)]
        quiet: bool,
        /// Where generated codes come from: the prior, or the mixture of `fit-sampler` (then the
        /// figures go to summary.gmm.json and the samples to samples_gmm.png).
        #[arg(long, default_value = "prior", value_parser = ["prior", "gmm"])]
        sampler: String,
        /// A TorchScript feature network (images [N, C, H, W] in [0, 1] -> features [N, F]) for a
        /// second FID, e.g. an Inception network exported from PyTorch, so that figures can be
        /// compared with published ones.
        #[arg(long, value_name = "FILE.pt")]
        features: Option<PathBuf>,
    },
    /// Decode prior samples: .npy or .npz (uint8 images, or float32 points; .npz under the key
    /// arr_0, images as N x H x W x C), a .png grid, or (images) a folder of PNG files (a path
    /// without an extension).
    #[command(
        after_help = "Examples:\n  sae-dsl sample runs/dir16 -n 10000 --out samples.npy\n  sae-dsl sample runs/dir16 -n 10000 --out samples.npz   (for FID evaluators)\n  sae-dsl sample runs/dir16 -n 64 --out grid.png\n  sae-dsl sample runs/dir16 -n 10000 --out samples/   (one PNG per sample)"
    )]
    Sample {
        /// The run directory (written by `sae-dsl run`).
        dir: PathBuf,
        /// How many samples to draw.
        #[arg(short = 'n', long, default_value_t = 64)]
        n: i64,
        /// Where to write the samples: .npy or .npz (the decoded images), .png (a grid), or a folder (one PNG each).
        #[arg(long)]
        out: PathBuf,
        /// The random seed (default: the run's).
        #[arg(long)]
        seed: Option<i64>,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Where the codes come from: the prior, or the mixture of `fit-sampler`.
        #[arg(long, default_value = "prior", value_parser = ["prior", "gmm"])]
        sampler: String,
    },
    /// Write the codes of a run's test (or training) set with their labels: .npz (arrays
    /// `codes` [N, d] float32 and, when the data have labels, `labels` [N] int64) or .npy (the
    /// codes; labels beside them as NAME.labels.npy).
    #[command(
        after_help = "Examples:\n  sae-dsl encode runs/dir16 --out codes.npz\n  sae-dsl encode runs/dir16 --split train --out train_codes.npy"
    )]
    Encode {
        /// The run directory (written by `sae-dsl run`).
        dir: PathBuf,
        /// The output file: .npz (codes and labels) or .npy (codes; labels beside them).
        #[arg(long)]
        out: PathBuf,
        /// The set to encode: test or train.
        #[arg(long, default_value = "test", value_parser = ["test", "train"])]
        split: String,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// The data folder, searched first (by default: the folder the run's data were found in, then $SAE_DSL_DATA and the default folders).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Redraw the pictures of a run (reconstructions, samples, latent codes, loss curves, ...).
    #[command(after_help = "Example:\n  sae-dsl reconstruct runs/dir16")]
    Reconstruct {
        /// The run directory (written by `sae-dsl run`).
        dir: PathBuf,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// The data folder, searched first (by default: the folder the run's data were found in, then $SAE_DSL_DATA and the default folders).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Decode the path between two test examples' codes: linear in R^d, great circle on the
    /// sphere, straight on the simplex; writes interpolate-I-J.png in the run directory.
    #[command(
        after_help = "Example:\n  sae-dsl interpolate runs/dir16 --from 3 --to 7 --steps 12"
    )]
    Interpolate {
        /// The run directory (written by `sae-dsl run`).
        dir: PathBuf,
        /// The test example to start from (its index in the test set).
        #[arg(long)]
        from: i64,
        /// The test example to end at (its index in the test set).
        #[arg(long)]
        to: i64,
        /// Points along the interpolation, both ends included.
        #[arg(long, default_value_t = 10)]
        steps: i64,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// The data folder, searched first (by default: the folder the run's data were found in, then $SAE_DSL_DATA and the default folders).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Geodesic interpolation under the generator's pullback metric: a PNG with the straight and
    /// the geodesic strip and their lengths in data space, JSON with the curves, and for 2-D
    /// latents the magnification factor over the latent plane with both curves.
    #[command(after_help = "Example:\n  sae-dsl geodesic runs/dir16 --from 3 --to 7 --points 32")]
    Geodesic {
        /// The run directory (written by `sae-dsl run`).
        dir: PathBuf,
        /// The test example to start from (its index in the test set).
        #[arg(long)]
        from: i64,
        /// The test example to end at (its index in the test set).
        #[arg(long)]
        to: i64,
        /// Points on the discretised curve, end points included (16 to 64 is typical).
        #[arg(long, default_value_t = 32)]
        points: i64,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// The data folder, searched first (by default: the folder the run's data were found in, then $SAE_DSL_DATA and the default folders).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Draw samples of a prior program: NAME's samples as .npy (float32, N x d) and a PNG (a
    /// scatter for 2-D, a simplex projection for simplex priors, pairwise scatters otherwise).
    #[command(
        after_help = "Examples:\n  sae-dsl prior stdlib/priors.sae ring_mixture -n 5000 --out prior-ring\n  sae-dsl prior stdlib/priors.sae ring_mixture --args \"k = 5, radius = 1\" --out ring5\n  sae-dsl prior my_priors.sae two_moons -n 2000 --out moons\n  sae-dsl prior runs/learned_gmm_mnist z --out learned   # the prior as trained"
    )]
    Prior {
        /// A file defining the prior (or importing it, e.g. `import "std/priors"`), or a run
        /// directory: then NAME is a latent component (or its prior's name), drawn with its
        /// learnable parameters as trained.
        file: PathBuf,
        /// The prior's name (with a run directory: the latent component's).
        name: String,
        /// Its arguments as in a model file, e.g. "k = 8, radius = 2" (default: its defaults).
        #[arg(long)]
        args: Option<String>,
        /// How many samples to draw.
        #[arg(short = 'n', long, default_value_t = 4000)]
        n: i64,
        /// Output folder for NAME.npy and NAME.png.
        #[arg(long)]
        out: PathBuf,
        /// The random seed of the draws.
        #[arg(long, default_value_t = 0)]
        seed: i64,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// The coordinates to plot against each other, numbered from 1 (2 to 4 of them), e.g.
        /// "3,7"; default: the first four (a simplex: its projection).
        #[arg(long)]
        dims: Option<String>,
    },
    /// A Markdown table of runs like the SAE paper's (method, prior, gamma, MMD, reconstruction,
    /// FID), and the same as CSV.
    #[command(after_help = "Example:\n  sae-dsl compare runs/* --csv compare.csv")]
    Compare {
        /// Run directories, or sweep folders (each member is a row).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the CSV (default: compare.csv in the current directory).
        #[arg(long, default_value = "compare.csv")]
        csv: PathBuf,
        /// For sweeps: the validation metric that picks the best setting (lower is better):
        /// one of training's validation metrics, or `fid` (the FID against the validation images,
        /// computed by the evaluation).
        #[arg(long, default_value = "recon", value_parser = ["recon", "penalty", "total", "latent_mmd", "fid"])]
        metric: String,
    },
    /// Export a run's encoder and generator for use from Python: TorchScript modules, or plain
    /// weights with PyTorch-compatible names and a generated `model.py`.
    #[command(
        after_help = "Examples:\n  sae-dsl export runs/dir16 --format torchscript --out exported\n  sae-dsl export runs/dir16 --format safetensors --out exported"
    )]
    Export {
        /// The run directory (written by `sae-dsl run`).
        dir: PathBuf,
        /// `torchscript` (encoder.pt, generator.pt) or `safetensors` (weights.safetensors, model.py).
        #[arg(long, value_parser = ["torchscript", "safetensors"])]
        format: String,
        /// The output folder.
        #[arg(long)]
        out: PathBuf,
        /// The weights to export: the last checkpoint, or the best validation's (`best`).
        #[arg(long, default_value = "last", value_parser = ["last", "best"])]
        weights: String,
    },
    /// A sweep over constants and settings: `sweep FILE --grid ... --out DIR` writes the members
    /// (nothing trained yet); `sweep run`, `sweep status`, `sweep slurm` act on DIR.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Examples:\n  sae-dsl sweep models/sphere_mnist.sae --grid gamma=1,10,100 --grid seed=0,1,2 --out sweeps/sphere\n  sae-dsl sweep models/normal_mnist.sae --vary d=4,16 --vary epsilon=0.1,2.5 --grid seed=0,1 --out sweeps/normal\n  sae-dsl sweep models/vae_mnist.sae --random 8 --range lr=1e-4:1e-2:log --out sweeps/vae\n  sae-dsl sweep run sweeps/sphere --jobs 2\n  sae-dsl sweep slurm sweeps/sphere --partition gpu --gpus-per-task 1 --submit\n  sae-dsl compare sweeps/sphere --metric recon"
    )]
    Sweep {
        #[command(subcommand)]
        action: Option<SweepAction>,
        #[command(flatten)]
        create: SweepCreate,
    },
    /// Fit a post-hoc sampler to the training codes of a run: a Gaussian mixture with K
    /// components (full covariances, EM), used by `sample --sampler gmm` and `eval --sampler gmm`.
    #[command(after_help = "Example:\n  sae-dsl fit-sampler runs/dir16 --gmm 10")]
    FitSampler {
        /// The run directory (written by `sae-dsl run`).
        dir: PathBuf,
        /// Number of mixture components.
        #[arg(long)]
        gmm: i64,
        /// The seed of the mixture's initialisation.
        #[arg(long, default_value_t = 0)]
        seed: i64,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// The data folder, searched first (by default: the folder the run's data were found in, then $SAE_DSL_DATA and the default folders).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// `sae-dsl sweep FILE ...`: the members of a new sweep.
#[derive(clap::Args, Clone, Debug)]
pub struct SweepCreate {
    /// The model file.
    pub file: Option<PathBuf>,
    /// NAME=V1,V2,...: a constant or setting and its values; several --grid make a product.
    #[arg(long = "grid", value_name = "NAME=V1,V2,...")]
    pub grid: Vec<String>,
    /// NAME=V1,V2,...: one value changed at a time around the file's settings (a coordinate
    /// sweep): the file's own setting plus one member per value, each with the whole grid.
    #[arg(long = "vary", value_name = "NAME=V1,V2,...")]
    pub vary: Vec<String>,
    /// Draw this many random settings from the --range options (each combined with the grid).
    #[arg(long)]
    pub random: Option<usize>,
    /// NAME=LOW:HIGH[:log|:lin|:int]: the range of a random setting.
    #[arg(long = "range", value_name = "NAME=LOW:HIGH[:log]")]
    pub range: Vec<String>,
    /// The seed of the random draws.
    #[arg(long, default_value_t = 0)]
    pub draw_seed: u64,
    /// NAME=VALUE given to every member (e.g. `--set validation="split(fraction = 0.1)"`).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<Override>,
    /// The sweep directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What to do with an existing sweep directory.
#[derive(Subcommand, Clone, Debug)]
pub enum SweepAction {
    /// Train the members (finished ones are skipped, interrupted ones resumed), K at a time.
    Run {
        /// The sweep folder (written by `sae-dsl sweep FILE ... --out DIR`).
        dir: PathBuf,
        /// Members trained at once; the cores are split between them.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Train exactly member I (what a Slurm array task calls).
        #[arg(long)]
        index: Option<usize>,
        /// Threads per member (default: the cores divided by --jobs).
        #[arg(long)]
        threads: Option<usize>,
        /// auto (CUDA when available), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// The data folder, searched first (by default: the folder the run's data were found in, then $SAE_DSL_DATA and the default folders).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Skip each member's evaluation (FID, ...); its validation metrics are still written.
        #[arg(long)]
        no_eval: bool,
    },
    /// Each member's state: done, running, interrupted (epochs done) or not started.
    Status {
        /// The sweep folder (written by `sae-dsl sweep FILE ... --out DIR`).
        dir: PathBuf,
    },
    /// Write an sbatch script that runs the members as a Slurm job array (one member per task).
    Slurm {
        /// The sweep folder (written by `sae-dsl sweep FILE ... --out DIR`).
        dir: PathBuf,
        /// The Slurm partition (`#SBATCH --partition`).
        #[arg(long)]
        partition: Option<String>,
        /// Time limit per task, as Slurm takes it (e.g. 2:00:00).
        #[arg(long)]
        time: Option<String>,
        /// GPUs per task (`#SBATCH --gpus-per-task`).
        #[arg(long)]
        gpus_per_task: Option<u32>,
        /// CPU cores per task (`#SBATCH --cpus-per-task`), also each member's threads.
        #[arg(long, default_value_t = 2)]
        cpus_per_task: u32,
        /// At most this many tasks at once (`--array=0-N%M`).
        #[arg(long)]
        array_max: Option<usize>,
        /// The data folder every task reads (written into the script, absolute), so that the
        /// tasks do not depend on the submitting shell's environment.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Skip each member's evaluation (written into the script).
        #[arg(long)]
        no_eval: bool,
        /// Submit it with sbatch.
        #[arg(long)]
        submit: bool,
    },
}

/// Loads and checks a file, printing its diagnostics; None when the file cannot be read.
pub fn front(file: &Path, color: Option<bool>, set: &[Override]) -> Option<Compilation> {
    let c = match compile_file_with(file, set) {
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

/// `dot` text rendered by Graphviz's `dot -Tsvg` (the program named by $SAE_DSL_DOT, else `dot`).
fn render_svg(dot: &str) -> Result<String, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let program = std::env::var("SAE_DSL_DOT").unwrap_or_else(|_| "dot".to_string());
    let mut child = Command::new(&program)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run Graphviz's `{program}` ({e}); install Graphviz (e.g. `apt-get install graphviz`) or use `--dot` and render the text elsewhere")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dot.as_bytes())
            .map_err(|e| format!("cannot write to `{program}`: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{program}` failed: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{program} -Tsvg` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout)
        .map_err(|_| format!("`{program}` wrote something that is not UTF-8"))
}

/// `check` and `graph`, which need no libtorch. None for the other commands.
pub fn run_front_end(command: &Command) -> Option<std::process::ExitCode> {
    use std::process::ExitCode;
    match command {
        Command::Check { file, color, set } => {
            let Some(c) = front(file, *color, set) else {
                return Some(ExitCode::from(1));
            };
            if c.has_errors() {
                return Some(ExitCode::from(1));
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
            Some(ExitCode::SUCCESS)
        }
        Command::Fmt {
            files,
            check,
            stdout,
        } => Some(crate::tools::fmt::run(files, *check, *stdout)),
        Command::Lsp => Some(crate::tools::lsp::serve()),
        Command::Graph {
            file,
            set,
            dot,
            svg,
        } => {
            let Some(c) = front(file, None, set) else {
                return Some(ExitCode::from(1));
            };
            let model = c.model.as_ref().filter(|_| !c.has_errors());
            match (model, *dot, *svg) {
                (Some(m), true, _) => {
                    print!("{}", crate::ir::to_dot(m));
                    Some(ExitCode::SUCCESS)
                }
                (Some(m), _, true) => match render_svg(&crate::ir::to_dot(m)) {
                    Ok(svg) => {
                        print!("{svg}");
                        Some(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        Some(ExitCode::from(1))
                    }
                },
                (None, true, _) | (None, _, true) if !c.has_errors() => {
                    eprintln!(
                        "error: `graph --dot`/`--svg` draws a model, and {} has no model clauses (a library of nets and priors); `sae-dsl graph` without them prints its priors",
                        file.display()
                    );
                    Some(ExitCode::from(1))
                }
                _ => match crate::driver::graph_text(&c) {
                    Some(text) if !c.has_errors() => {
                        print!("{text}");
                        Some(ExitCode::SUCCESS)
                    }
                    _ => Some(ExitCode::from(1)),
                },
            }
        }
        _ => None,
    }
}

/// Makes output to a closed pipe (`sae-dsl graph FILE | head -1`) end the process quietly, as
/// it does for other Unix tools, instead of a panic in `println!`: Rust ignores SIGPIPE, so a
/// write to a closed pipe returns an error that `println!` turns into a panic. Training saves
/// its state before it prints an epoch's line, so a run stopped this way can be resumed.
pub fn quiet_broken_pipe() {
    // SAFETY: called first thing in `main`, before any thread starts; it only restores the
    // default action of one signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and every argument of every command says what it is in `--help`.
    #[test]
    fn every_command_and_option_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{p}: the command"));
                }
                for a in sub.get_arguments() {
                    let id = a.get_id().as_str();
                    if id == "help" || id == "version" {
                        continue;
                    }
                    if a.get_help().is_none() && a.get_long_help().is_none() {
                        missing.push(format!("{p}: {id}"));
                    }
                }
                walk(sub, &p, missing);
            }
        }
        let mut missing = vec![];
        walk(&super::Cli::command(), "sae-dsl", &mut missing);
        assert!(
            missing.is_empty(),
            "without a description:\n{}",
            missing.join("\n")
        );
    }

    /// Help texts are read as written: no escaped quotes from doc comments.
    #[test]
    fn help_texts_have_no_stray_backslashes() {
        let mut out = vec![];
        for sub in super::Cli::command().get_subcommands_mut() {
            let text = sub.render_long_help().to_string();
            if text.contains("\\\"") {
                out.push(sub.get_name().to_string());
            }
        }
        assert!(out.is_empty(), "backslashes in the help of {out:?}");
    }
}
