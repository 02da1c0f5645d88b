//! Training: runs a compiled model on its data and keeps the run directory's training files.
//!
//! Entry points: [`run`] for a new run, [`resume`] to continue one; both return a [`Trained`]
//! that the pipeline (`crate::pipeline`) hands to evaluation. Every artifact is written
//! atomically; the checkpoint and the training state (`resume.safetensors`: variables, Adam
//! moments, position, running sums) are replaced only by complete newer ones, so an error or an
//! interruption keeps the last good state. Random numbers are re-seeded from (seed, epoch, step)
//! at every step, so a resumed run draws exactly what the uninterrupted run would have drawn.
//!
//! Parts: [`session`] (the loop: epochs and steps), [`state`] (lock, position, saved state),
//! [`interrupt`] (stop requests), [`fault`] (fault injection for tests).

mod fault;
pub mod init;
pub mod interrupt;
mod session;
mod state;
mod track;
mod validate;

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{nn, Device, Tensor};

use crate::data::{self, DataError, Dataset};
use crate::ir;
use crate::rundir;
use crate::runtime::device::{
    available_memory, bytes, data_on_host, estimate_data, estimate_memory,
};
use crate::runtime::model::Compiled;
use crate::runtime::objective::{discriminators, Discriminator};
use crate::runtime::optim::Adam;
use crate::util::write_atomic;

pub use fault::FAULT_ENV;
pub use interrupt::Interrupter;
use session::Session;
use state::{Position, RunLock, SavedState};
pub use validate::ValMetrics;

/// Options from the command line that override or complement the model file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub epochs: Option<i64>,
    pub seed: Option<i64>,
    pub out: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub quiet: bool,
    pub force: bool,
    /// Compute the evaluation metrics (FID, latent MMD, ...) at the end (`sae-dsl eval`); read
    /// by the pipeline, which runs evaluation after training.
    pub evaluate: bool,
    /// Machine-readable progress: one JSON object per epoch on standard output.
    pub json: bool,
    /// Stops the loop at the next step boundary with the state saved.
    pub interrupter: Interrupter,
    /// Keep training when the loss diverges (grows over 1000 times its best).
    pub allow_divergence: bool,
    /// Start from these weights (a safetensors file or a run directory) instead of random ones.
    pub init_from: Option<PathBuf>,
    /// The `--set NAME=VALUE` overrides the model was compiled with (recorded in config.json).
    pub overrides: Vec<(String, String)>,
    /// The files the model imports, copied into the run directory.
    pub imports: Option<rundir::Imports>,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TrainError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Data(#[from] DataError),
    #[error("run directory {0} already exists and is not empty")]
    #[diagnostic(code(sae::run::exists), help("choose another --out, pass --force to write into it, or `sae-dsl resume DIR` to continue it"))]
    Exists(PathBuf),
    #[error("could not write {path}: {error}")]
    #[diagnostic(code(sae::run::io), help("every file of a run is replaced atomically, so those of the last finished epoch are intact; free space or fix the permissions, then continue with `sae-dsl resume` on the run directory"))]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot create the run directory {dir}: {error}")]
    #[diagnostic(
        code(sae::run::directory),
        help("choose a writable place with --out DIR")
    )]
    RunDir { dir: PathBuf, error: std::io::Error },
    #[error("the {term} became {value} at epoch {epoch}, step {step}")]
    #[diagnostic(code(sae::run::non_finite), help("{help}"))]
    NonFinite {
        term: String,
        value: String,
        epoch: i64,
        step: i64,
        help: String,
    },
    #[error("the loss diverged at epoch {epoch}: {total} per step, over {factor} times its best ({best})")]
    #[diagnostic(code(sae::run::diverged), help("lower the learning rate (now {lr}) or the penalty weight; the checkpoint of epoch {kept} is kept; pass --allow-divergence to train on anyway"))]
    Diverged {
        epoch: i64,
        total: String,
        best: String,
        factor: f64,
        lr: String,
        kept: i64,
    },
    #[error("the loss exploded at epoch {epoch}, step {step}: {total} per step, over {factor} times its lowest ({best}) since the first steps")]
    #[diagnostic(code(sae::run::diverged), help("the learning rate (now {lr}) is too large for this model: lower it, e.g. to {lower}; {kept}; pass --allow-divergence to train on anyway"))]
    Exploded {
        epoch: i64,
        step: i64,
        total: String,
        best: String,
        factor: f64,
        lr: String,
        lower: String,
        kept: String,
    },
    #[error("interrupted at epoch {epoch}, step {step}; the state is saved in {dir}")]
    #[diagnostic(
        code(sae::run::interrupted),
        help("continue with `sae-dsl resume {dir}`")
    )]
    Interrupted { dir: String, epoch: i64, step: i64 },
    #[error(
        "another training (process {pid}) is writing into {dir}: its lock {dir}/run.lock is held"
    )]
    #[diagnostic(code(sae::run::locked), help("wait for it to finish (or stop it with Ctrl-C / `kill -INT {pid}`, which saves its state), or choose another --out; a lock of a process that has died is removed automatically"))]
    Locked { dir: String, pid: u32 },
    #[error("{0}")]
    #[diagnostic(
        code(sae::run::damaged),
        help("a damaged file is never used: copy the run directory again from where it was made, or train it again with `sae-dsl run --force --out DIR`")
    )]
    Damaged(String),
    #[error("cannot resume {dir}: {what}")]
    #[diagnostic(code(sae::run::resume))]
    Resume { dir: String, what: String },
    #[error("this model needs about {need} of memory for training, {have} are available")]
    #[diagnostic(code(sae::run::memory), help("{help}"))]
    Memory {
        need: String,
        have: String,
        help: String,
    },
    #[error("cannot start from {path}: {}", problems.join("; "))]
    #[diagnostic(code(sae::run::init_from), help("{help}"))]
    InitFrom {
        path: String,
        problems: Vec<String>,
        help: String,
    },
    #[error("`precision \"bf16\"` needs a CUDA device; this run is on {device}")]
    #[diagnostic(
        code(sae::run::precision),
        help("bf16 autocast is a CUDA feature; on the CPU train in float32: remove `precision \"bf16\"` from the `train` clause, or run with --device cuda")
    )]
    Precision { device: String },
    #[error("libtorch: {0}")]
    #[diagnostic(code(sae::run::torch))]
    Torch(#[from] tch::TchError),
    #[error("could not write the checkpoint: {0}")]
    #[diagnostic(code(sae::run::io), help("the checkpoint and resume state of the last finished epoch are intact; free space or fix the permissions, then continue with `sae-dsl resume` on the run directory"))]
    Save(#[from] rundir::SaveError),
}

/// One epoch's averages, appended to `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct EpochMetrics {
    pub epoch: i64,
    pub recon: f64,
    pub penalty: f64,
    pub total: f64,
    pub seconds: f64,
    /// Of `seconds`, the time spent assembling batches (selecting rows, binarising): the data
    /// share of a step. Exact on the CPU; on CUDA it counts launches, not the copies.
    pub data_seconds: f64,
    /// Mean Sinkhorn iterations per step, when the model has a Sinkhorn penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sinkhorn_iterations: Option<f64>,
    /// The learning rate of the epoch's last step (the schedule's).
    pub lr: f64,
    /// The validation metrics, at the epochs where they were measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValMetrics>,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub epochs: Vec<EpochMetrics>,
    pub test_recon: f64,
    pub test_mse: f64,
    pub device: String,
    /// Largest row-marginal error of the Sinkhorn plan seen at the logging points.
    pub sinkhorn_marginal_error_max: f64,
    /// The epoch of the best validation (its weights are `best.safetensors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<i64>,
    /// The epoch at which early stopping ended the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_early_at: Option<i64>,
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |error| TrainError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Refuses a model whose training would not fit in memory, before anything is allocated: the
/// network's estimate plus its data where the model file says how large they are.
fn check_memory(model: &ir::Model, device: Device) -> Result<(), TrainError> {
    let (net, data) = (estimate_memory(model), estimate_data(&model.data));
    // On a GPU, data that do not fit stay in host memory: only the network must fit there.
    let need = if device == Device::Cpu {
        net + data.unwrap_or(0.0)
    } else {
        net
    };
    match available_memory(device) {
        Some(have) if need > have => Err(TrainError::Memory {
            need: bytes(need),
            have: bytes(have),
            help: match data {
                Some(d) if d > net => format!(
                    "its data take about {} of it; lower `n` or `limit`",
                    bytes(d)
                ),
                _ => format!(
                    "the batch of {} dominates (the unrolled Sinkhorn keeps batch^2 x iterations values); lower `batch` or `iterations`",
                    model.train.batch
                ),
            },
        }),
        _ => Ok(()),
    }
}

/// Whether the examples of `sets` stay in host memory for training on `device`: on a GPU when
/// they do not fit beside the network (with a note); never on the CPU.
fn keep_on_host(model: &ir::Model, device: Device, sets: &[&Dataset], quiet: bool) -> bool {
    if device == Device::Cpu {
        return false;
    }
    let data: f64 = sets.iter().map(|s| s.bytes()).sum();
    let net = estimate_memory(model);
    let Some(free) = available_memory(device) else {
        return false;
    };
    let host = data_on_host(net, data, free).unwrap_or(true);
    if host && !quiet {
        eprintln!(
            "note: the data ({}) do not fit on {device:?} beside the network (about {}; {} free): they stay in host memory and each batch is copied over",
            bytes(data),
            bytes(net),
            bytes(free)
        );
    }
    host
}

/// A finished training, still holding the run's lock: what evaluation needs next.
pub struct Trained {
    pub summary: RunSummary,
    pub model: ir::Model,
    /// The model file's text as run.
    pub source: String,
    pub net: Compiled,
    pub vs: nn::VarStore,
    pub train: Dataset,
    pub test: Dataset,
    /// The validation split held out of `train`, when the model declares one.
    pub validation: Option<Dataset>,
    /// The whole training set, validation split included: what evaluation measures with (its
    /// classifier is trained on it, so that FIDs of runs with and without a split compare).
    pub full_train: Option<Dataset>,
    pub seed: i64,
    _lock: RunLock,
}

/// A model's data: training (without the validation split), test, and validation sets.
struct Data {
    train: Dataset,
    test: Dataset,
    validation: Option<Dataset>,
    /// The training set before the split, when there is one.
    full_train: Option<Dataset>,
}

/// Loads a model's train and test sets, and holds its validation split out of the training set.
fn load_data(
    model: &ir::Model,
    data_dir: Option<&Path>,
    seed: i64,
    device: Device,
) -> Result<Data, TrainError> {
    // Read into host memory first: where the examples go depends on their size.
    let train = data::load(&model.data, "train", data_dir, seed, Device::Cpu)?;
    let test = data::load(&model.data, "test", data_dir, seed, Device::Cpu)?;
    let host = keep_on_host(model, device, &[&train, &test], false);
    let (train, test) = (train.place(device, host), test.place(device, host));
    let (train, validation, full_train) = match &model.train.validation {
        Some(v) if !train.is_empty() => {
            let full = train.shallow_clone();
            let (t, va) = validate::split(train, v)?;
            (t, Some(va), Some(full))
        }
        _ => (train, None, None),
    };
    Ok(Data {
        train,
        test,
        validation,
        full_train,
    })
}

/// The images of the validation split `v` of the training set `train` (the same examples that
/// training held out).
pub fn validation_images(train: &Dataset, v: &ir::Validation) -> Result<Option<Tensor>, DataError> {
    let copy = train.shallow_clone();
    Ok(Some(validate::split(copy, v)?.1.x()))
}

/// Refuses bf16 on a device without CUDA autocast; on CUDA sets autocast's type to bf16.
fn check_precision(model: &ir::Model, device: Device) -> Result<bool, TrainError> {
    if model.train.precision != ir::Precision::Bf16 {
        return Ok(false);
    }
    if !device.is_cuda() {
        return Err(TrainError::Precision {
            device: format!("{device:?}"),
        });
    }
    crate::runtime::device::autocast_bf16();
    Ok(true)
}

/// Trains `model` in a new run directory. `source` is the model file's text.
pub fn run(
    model: &ir::Model,
    source: &str,
    device: Device,
    opts: &RunOptions,
) -> Result<Trained, TrainError> {
    let epochs = opts.epochs.unwrap_or(model.train.epochs);
    let seed = opts.seed.unwrap_or(model.train.seed);
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| rundir::default_run_dir(&model.name));
    refuse_existing(&dir, opts.force)?;
    check_memory(model, device)?;
    check_precision(model, device)?;

    let Data {
        train,
        test,
        validation,
        full_train,
    } = load_data(model, opts.data_dir.as_deref(), seed, device)?;
    if train.is_empty() {
        return Err(DataError::Corrupt {
            path: train.origin.clone().into(),
            what: "the training set is empty".into(),
        }
        .into());
    }
    tch::manual_seed(seed);
    let mut vs = nn::VarStore::new(device);
    let net = Compiled::new(&vs, model);
    if let Some(from) = &opts.init_from {
        init::load_weights(&mut vs, from)?;
    }
    // Created only once the data and weights are there, so that a failed start leaves no empty run.
    std::fs::create_dir_all(&dir).map_err(|error| TrainError::RunDir {
        dir: dir.clone(),
        error,
    })?;
    let lock = RunLock::acquire(&dir)?;

    rundir::clear_previous(&dir).map_err(io_err(&dir))?;
    write_atomic(&dir.join(rundir::MODEL), source.as_bytes()).map_err(io_err(&dir))?;
    if let Some(imports) = &opts.imports {
        imports.write(&dir).map_err(io_err(&dir))?;
    }
    let found =
        rundir::DataRecord::of(model, &train.origin, &test.origin, opts.data_dir.as_deref());
    let config = serde_json::json!({
        "model": model,
        "run": {
            "epochs": epochs, "seed": seed, "device": format!("{device:?}"),
            // The folder the data were found in, absolute: later commands find them again
            // from anywhere, without the variable or flag that found them.
            "data_dir": found.root.clone().or_else(|| opts.data_dir.as_ref().map(|d| d.display().to_string())),
            "data": found,
            "train_data": train.origin, "train_examples": train.len(), "test_examples": test.len(),
            "validation_examples": validation.as_ref().map(Dataset::len),
            "train_data_sha256": found.train_sha256,
            "data_base": model.data.base,
            "init_from": opts.init_from.as_ref().map(|p| p.display().to_string()),
            "overrides": opts.overrides.iter().map(|(n, v)| (n.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "sae_dsl": env!("CARGO_PKG_VERSION"),
        }
    });
    rundir::write_json(&dir, rundir::CONFIG, &config).map_err(io_err(&dir))?;

    let opt = Adam::new(&vs, &model.train.optimizer);
    let discs = discriminators(model, device);
    let ready = Ready {
        model: model.clone(),
        source: source.to_string(),
        net,
        vs,
        opt,
        discs,
        train,
        test,
        validation,
        full_train,
        seed,
        epochs,
        lock,
    };
    ready.train(&dir, Position::start_of(1), device, opts)
}

/// Continues the run in `dir` from its saved state (`resume.safetensors`).
// long: the checks before anything is trained again (the lock, the state's seal and position, the
// data's checksum, memory) must run in this order, each with its own message.
pub fn resume(dir: &Path, device: Device, opts: &RunOptions) -> Result<Trained, TrainError> {
    let fail = |what: String| TrainError::Resume {
        dir: dir.display().to_string(),
        what,
    };
    let record = rundir::read_run_record(dir).map_err(fail)?;
    let (model, source, config) = (record.model, record.source, record.config);
    let config = config.ok_or_else(|| fail("config.json is missing or unreadable".into()))?;
    let epochs = opts
        .epochs
        .or_else(|| config["run"]["epochs"].as_i64())
        .unwrap_or(model.train.epochs);
    let seed = config["run"]["seed"].as_i64().unwrap_or(model.train.seed);
    let data_dir = opts
        .data_dir
        .clone()
        .or_else(|| config["run"]["data_dir"].as_str().map(PathBuf::from));

    let state_path = dir.join(rundir::RESUME);
    // The lock first: a run still in its first epoch has no state yet, and is not to be
    // reported as one that never saved any.
    let lock = RunLock::acquire(dir)?;
    if !state_path.is_file() {
        return Err(fail(
            "there is no saved training state (resume.safetensors)".into(),
        ));
    }
    let state = SavedState::read(&state_path).map_err(|e| match e {
        TrainError::Damaged(_) => e,
        e => fail(format!(
            "{} cannot be read (truncated or corrupt?): {e}",
            rundir::RESUME
        )),
    })?;
    let start = state
        .position()
        .ok_or_else(|| fail("the state has no position".into()))?;
    resumable(&start, epochs).map_err(fail)?;
    check_memory(&model, device)?;
    check_precision(&model, device)?;
    let Data {
        train,
        test,
        validation,
        full_train,
    } = load_data(&model, data_dir.as_deref(), seed, device)?;
    // The data a run started on must be the data it continues on.
    if let (Some(was), Some(now)) = (
        config["run"]["train_data_sha256"].as_str(),
        file_sha256(&train.origin),
    ) {
        if was != now && !opts.force {
            return Err(fail(format!(
                "its training data changed since the run started: {} had SHA-256 {}..., now {}...; pass --force to continue on the new data",
                train.origin,
                &was[..was.len().min(12)],
                &now[..12]
            )));
        }
    }

    let vs = nn::VarStore::new(device);
    let net = Compiled::new(&vs, &model);
    state.restore(&vs, "", "variable").map_err(fail)?;
    let mut opt = Adam::new(&vs, &model.train.optimizer);
    opt.load_state(state.tensors()).map_err(fail)?;
    let mut discs = discriminators(&model, device);
    for (i, d) in discs.iter_mut().enumerate() {
        let Some(d) = d else { continue };
        state
            .restore(&d.vs, &format!("disc{i}."), "discriminator variable")
            .map_err(fail)?;
        d.opt.load_state(state.tensors()).map_err(fail)?;
    }
    if !opts.quiet {
        eprintln!(
            "resuming {} at epoch {}, step {}",
            dir.display(),
            start.epoch,
            start.step
        );
    }
    trim_metrics(dir, start.epoch)?;
    // The same fields as in `run`: a new run and a resumed one set up the same Ready.
    let ready = Ready {
        model,
        source,
        net,
        vs,
        opt,
        discs,
        train,
        test,
        validation,
        full_train,
        seed,
        epochs,
        lock,
    };
    ready.train(dir, start, device, opts)
}

/// Why a run at `start` cannot go on to `epochs`, if it cannot.
fn resumable(start: &Position, epochs: i64) -> Result<(), String> {
    if start.epoch > epochs {
        return Err(format!("the run has finished its {epochs} epochs; pass --epochs N with N > {epochs} to train longer"));
    }
    if start.best.stopped_at > 0 {
        return Err(format!(
            "early stopping ended the run at epoch {} (no better validation for {} evaluations); the best weights (epoch {}) are in {}",
            start.best.stopped_at,
            start.best.waited,
            start.best.epoch,
            rundir::BEST
        ));
    }
    Ok(())
}

/// Drops the lines of `metrics.jsonl` from epoch `from` on: a run stopped after appending an
/// epoch's line but before saving the state that follows it (killed, or a full disk) does that
/// epoch again, and must not list it twice.
fn trim_metrics(dir: &Path, from: i64) -> Result<(), TrainError> {
    let path = dir.join(rundir::METRICS);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let keep: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["epoch"].as_i64())
                .is_some_and(|e| e < from)
        })
        .collect();
    if keep.len() == text.lines().count() {
        return Ok(());
    }
    let mut out = keep.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    write_atomic(&path, out.as_bytes()).map_err(io_err(&path))
}

/// A run set up to train: its model, networks, optimisers, data and lock.
struct Ready {
    model: ir::Model,
    source: String,
    net: Compiled,
    vs: nn::VarStore,
    opt: Adam,
    discs: Vec<Option<Discriminator>>,
    train: Dataset,
    test: Dataset,
    validation: Option<Dataset>,
    full_train: Option<Dataset>,
    seed: i64,
    epochs: i64,
    lock: RunLock,
}

impl Ready {
    /// Runs the session from `start` and keeps what evaluation needs.
    fn train(
        self,
        dir: &Path,
        start: Position,
        device: Device,
        opts: &RunOptions,
    ) -> Result<Trained, TrainError> {
        let summary = Session {
            model: &self.model,
            net: &self.net,
            vs: &self.vs,
            opt: self.opt,
            discs: self.discs,
            dir,
            json: opts.json,
            epochs: self.epochs,
            seed: self.seed,
            quiet: opts.quiet,
            device,
            interrupter: &opts.interrupter,
            allow_divergence: opts.allow_divergence,
            source: &self.source,
            validation: self.validation.as_ref(),
            bf16: self.model.train.precision == ir::Precision::Bf16,
        }
        .train(start, &self.train, &self.test)?;
        Ok(Trained {
            summary,
            model: self.model,
            source: self.source,
            net: self.net,
            vs: self.vs,
            train: self.train,
            test: self.test,
            validation: self.validation,
            full_train: self.full_train,
            seed: self.seed,
            _lock: self.lock,
        })
    }
}

/// The SHA-256 of a data set's file, when its origin is a file (synthetic sets are not).
pub fn file_sha256(origin: &str) -> Option<String> {
    rundir::origin_path(origin).and_then(|p| rundir::sha256_file(&p))
}

fn refuse_existing(dir: &Path, force: bool) -> Result<(), TrainError> {
    let non_empty = std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if non_empty && !force {
        return Err(TrainError::Exists(dir.to_path_buf()));
    }
    Ok(())
}
