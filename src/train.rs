//! Stage 4, `train`: runs a compiled model on its data and writes the run directory.
//!
//! Entry points: [`run`] for a new run, [`resume`] to continue one. Every artifact is written
//! atomically; the checkpoint and the training state (`resume.safetensors`: variables, Adam
//! moments, position, running sums) are replaced only by complete newer ones, so an error or an
//! interruption keeps the last good state. Random numbers are re-seeded from (seed, epoch, step)
//! at every step, so a resumed run draws exactly what the uninterrupted run would have drawn.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;
use tch::{nn, Device, Kind, Tensor};

use crate::backend::Compiled;
use crate::data::{self, DataError, Dataset};
use crate::ir::{self, PenaltyKind};
use crate::optim::Adam;
use crate::ot;
use crate::util::write_atomic;

/// Options from the command line that override or complement the model file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub epochs: Option<i64>,
    pub seed: Option<i64>,
    pub out: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub quiet: bool,
    pub force: bool,
    /// Compute the evaluation metrics (FID, latent MMD, ...) at the end (`sae-dsl eval`).
    pub evaluate: bool,
    /// Machine-readable progress: one JSON object per epoch on standard output.
    pub json: bool,
}

/// Environment variable that injects a fault, for tests: `nan-recon@STEP`, `nan-penalty@STEP`
/// or `nan-disc@STEP` makes that term NaN at the given global step (1-based).
pub const FAULT_ENV: &str = "SAE_DSL_FAULT";

/// Why a run stopped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TrainError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Data(#[from] DataError),
    #[error("run directory {0} already exists and is not empty")]
    #[diagnostic(code(sae::run::exists), help("choose another --out, pass --force to write into it, or `sae-dsl resume DIR` to continue it"))]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    #[diagnostic(code(sae::run::io))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the {term} became {value} at epoch {epoch}, step {step}")]
    #[diagnostic(code(sae::run::non_finite), help("{help}"))]
    NonFinite {
        term: String,
        value: String,
        epoch: i64,
        step: i64,
        help: String,
    },
    #[error("interrupted at epoch {epoch}, step {step}; the state is saved in {dir}")]
    #[diagnostic(
        code(sae::run::interrupted),
        help("continue with `sae-dsl resume {dir}`")
    )]
    Interrupted { dir: String, epoch: i64, step: i64 },
    #[error("another training (process {pid}) is writing into {dir}")]
    #[diagnostic(code(sae::run::locked), help("wait for it to finish, or choose another --out; a lock of a process that has died is removed automatically"))]
    Locked { dir: String, pid: u32 },
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
    #[error("libtorch: {0}")]
    #[diagnostic(code(sae::run::torch))]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Eval(#[from] crate::eval::EvalError),
}

/// One epoch's averages, appended to `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct EpochMetrics {
    pub epoch: i64,
    pub recon: f64,
    pub penalty: f64,
    pub total: f64,
    pub seconds: f64,
    /// Mean Sinkhorn iterations per step, when the model has a Sinkhorn penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sinkhorn_iterations: Option<f64>,
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
}

static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// Set (e.g. by a SIGINT/SIGTERM handler) to stop training at the next step boundary, after
/// saving the state.
pub fn interrupt_flag() -> &'static AtomicBool {
    &INTERRUPT
}

/// Resolves `auto|cpu|cuda` to a device.
pub fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err(
                    "CUDA was asked for but no CUDA device is visible; use --device cpu or auto"
                        .into(),
                )
            }
        }
        other => Err(format!("unknown device `{other}`; use auto, cpu or cuda")),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The default run directory: `runs/<model>-<YYYYmmdd-HHMMSS>`.
pub fn default_run_dir(model: &str) -> PathBuf {
    PathBuf::from("runs").join(format!(
        "{model}-{}",
        chrono::Local::now().format("%Y%m%d-%H%M%S")
    ))
}

/// The unweighted latent penalty between codes `z` and prior samples `w`, for penalties that
/// need neither a discriminator nor encoder statistics (used by the benchmarks).
pub fn penalty(p: &ir::Penalty, z: &Tensor, w: &Tensor) -> Tensor {
    evaluate_penalty(p, z, w, None, None, false, false).value
}

/// A GAN penalty's latent discriminator: its own variables and its own Adam.
pub struct Discriminator {
    pub vs: nn::VarStore,
    pub net: crate::backend::Net,
    pub opt: Adam,
}

/// The discriminators of a model, one slot per penalty (None for non-GAN penalties), built from
/// the current random state.
pub fn discriminators(model: &ir::Model, device: Device) -> Vec<Option<Discriminator>> {
    model
        .penalties
        .iter()
        .enumerate()
        .map(|(i, p)| match &p.kind {
            PenaltyKind::Gan {
                discriminator,
                lr,
                beta1,
                beta2,
            } => {
                let vs = nn::VarStore::new(device);
                let net = crate::backend::Net::new(&(vs.root() / "discriminator"), discriminator);
                let cfg = ir::Adam {
                    lr: *lr,
                    beta1: *beta1,
                    beta2: *beta2,
                };
                let opt = Adam::new(&vs, &cfg).with_prefix(&format!("disc{i}.adam."));
                Some(Discriminator { vs, net, opt })
            }
            _ => None,
        })
        .collect()
}

/// What one penalty gives at one step.
pub struct PenaltyOut {
    /// The unweighted penalty, differentiable in the codes.
    pub value: Tensor,
    /// Row-marginal error of a Sinkhorn plan, when measured.
    pub marginal_error: Option<f64>,
    /// Sinkhorn iterations run (0 for other penalties).
    pub iterations: i64,
    /// The discriminator's loss after its update (GAN).
    pub disc_loss: Option<Tensor>,
}

/// Evaluates one penalty. For a GAN this first updates the discriminator on (prior samples: real,
/// detached codes: fake), then returns the non-saturating loss -log D(z). `stats` are the Gaussian
/// encoder's (mean, log-variance) for KL. `poison_disc` injects a NaN into the discriminator loss
/// (tests).
pub fn evaluate_penalty(
    p: &ir::Penalty,
    z: &Tensor,
    w: &Tensor,
    stats: Option<&(Tensor, Tensor)>,
    disc: Option<&mut Discriminator>,
    measure: bool,
    poison_disc: bool,
) -> PenaltyOut {
    let simple = |value: Tensor| PenaltyOut {
        value,
        marginal_error: None,
        iterations: 0,
        disc_loss: None,
    };
    match &p.kind {
        PenaltyKind::Sinkhorn {
            epsilon,
            iterations,
            cost,
            debiased,
            envelope,
            tolerance,
            scaling,
        } => {
            let o = ot::SinkhornOptions {
                epsilon: *epsilon,
                iterations: *iterations,
                tolerance: *tolerance,
                scaling: *scaling,
                envelope: *envelope,
            };
            if *debiased {
                let (value, iters) = ot::debiased(z, w, *cost, &o);
                return PenaltyOut {
                    value,
                    marginal_error: None,
                    iterations: iters,
                    disc_loss: None,
                };
            }
            let c = ot::cost_matrix(z, w, *cost);
            if !*envelope && *tolerance == 0.0 && *scaling >= 1.0 {
                // The paper's unrolled gradient, by the hand-written reverse sweep.
                let (value, plan) = ot::sinkhorn_unrolled_fast_plan(&c, *epsilon, *iterations);
                let err = measure.then(|| ot::marginal_error(&plan));
                return PenaltyOut {
                    value,
                    marginal_error: err,
                    iterations: *iterations,
                    disc_loss: None,
                };
            }
            let s = ot::solve(&c, &o);
            let err = s
                .marginal_error
                .or_else(|| measure.then(|| tch::no_grad(|| ot::marginal_error(&s.plan))));
            PenaltyOut {
                value: s.value,
                marginal_error: err,
                iterations: s.iterations,
                disc_loss: None,
            }
        }
        PenaltyKind::Mmd { imq, scale, .. } => simple(ot::mmd(
            z,
            w,
            if *imq {
                ot::Kernel::Imq
            } else {
                ot::Kernel::Rbf
            },
            *scale,
        )),
        PenaltyKind::Sliced { projections, p } => simple(ot::sliced(z, w, *projections, *p)),
        PenaltyKind::Exact { cost } => simple(ot::exact(z, w, *cost)),
        PenaltyKind::Kl { mean, std } => match stats {
            Some((mu, lv)) => simple(ot::gaussian_kl(mu, lv, *mean, *std)),
            None => simple(Tensor::zeros([], (z.kind(), z.device()))),
        },
        PenaltyKind::Gan { .. } => {
            let Some(d) = disc else {
                return simple(Tensor::zeros([], (z.kind(), z.device())));
            };
            let real = d.net.forward_t(w, true);
            let fake = d.net.forward_t(&z.detach(), true);
            let mut d_loss = ((-real).softplus() + fake.softplus()).mean(Kind::Float);
            if poison_disc {
                d_loss = d_loss * f64::NAN;
            }
            d.opt.zero_grad();
            d_loss.backward();
            d.opt.step();
            let value = (-d.net.forward_t(z, true)).softplus().mean(Kind::Float);
            PenaltyOut {
                value,
                marginal_error: None,
                iterations: 0,
                disc_loss: Some(d_loss.detach()),
            }
        }
    }
}

/// A deterministic seed for (seed, epoch, step): splitmix64, kept non-negative.
fn step_seed(seed: i64, epoch: i64, step: i64) -> i64 {
    let mut x = (seed as u64)
        ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (step as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((x ^ (x >> 31)) >> 1) as i64
}

/// Bytes, in words: "1.5 GiB".
fn bytes(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

/// An estimate of the memory training needs, from the IR: parameters with their gradients and
/// Adam moments, activations kept for the backward pass, and the unrolled Sinkhorn iterations.
pub fn estimate_memory(model: &ir::Model) -> f64 {
    let params = (model.encoder_params() + model.generator.params()) as f64;
    let b = model.train.batch as f64;
    let act: f64 = model
        .encoders
        .iter()
        .flat_map(|e| &e.net.layers)
        .chain(&model.generator.layers)
        .map(|l| l.output.iter().map(|&d| d as f64).product::<f64>())
        .sum();
    let sinkhorn: f64 = model
        .penalties
        .iter()
        .map(|p| match &p.kind {
            PenaltyKind::Sinkhorn {
                iterations,
                debiased,
                envelope,
                ..
            } => {
                let kept = if *envelope {
                    4.0
                } else {
                    2.0 * *iterations as f64 + 4.0
                };
                b * b * kept * if *debiased { 3.0 } else { 1.0 }
            }
            PenaltyKind::Mmd { .. } => 3.0 * 8.0 * b * b,
            PenaltyKind::Exact { .. } => 2.0 * b * b,
            PenaltyKind::Sliced { projections, .. } => 6.0 * b * *projections as f64,
            PenaltyKind::Gan { discriminator, .. } => {
                4.0 * discriminator.params() as f64
                    + 6.0
                        * b
                        * discriminator
                            .layers
                            .iter()
                            .map(|l| l.output.iter().map(|&d| d as f64).product::<f64>())
                            .sum::<f64>()
            }
            PenaltyKind::Kl { .. } => 0.0,
        })
        .sum();
    4.0 * (4.0 * params + 2.0 * b * act + sinkhorn)
}

/// Available memory on `device`, when it can be known (CPU: MemAvailable of /proc/meminfo).
fn available_memory(device: Device) -> Option<f64> {
    if device != Device::Cpu {
        return None;
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

fn check_memory(model: &ir::Model, device: Device) -> Result<(), TrainError> {
    let need = estimate_memory(model);
    match available_memory(device) {
        Some(have) if need > have => Err(TrainError::Memory {
            need: bytes(need),
            have: bytes(have),
            help: format!(
                "the batch of {} dominates (the unrolled Sinkhorn keeps batch^2 x iterations values); lower `batch` or `iterations`",
                model.train.batch
            ),
        }),
        _ => Ok(()),
    }
}

/// A lock file holding the process id; removed when dropped.
struct RunLock {
    path: PathBuf,
}

impl RunLock {
    fn acquire(dir: &Path) -> Result<RunLock, TrainError> {
        let path = dir.join("run.lock");
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id()).map_err(io_err(&path))?;
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    if let Some(pid) = pid {
                        if pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
                        {
                            return Err(TrainError::Locked {
                                dir: dir.display().to_string(),
                                pid,
                            });
                        }
                    }
                    eprintln!(
                        "note: removing a stale lock in {} (process {} is not running)",
                        dir.display(),
                        pid.map_or("?".into(), |p| p.to_string())
                    );
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(TrainError::Io { path, source: e }),
            }
        }
        Err(TrainError::Locked {
            dir: dir.display().to_string(),
            pid: 0,
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where training starts: epoch, step within it, and the running sums of that epoch.
#[derive(Clone, Copy, Debug)]
struct Position {
    epoch: i64,
    step: i64,
    sum_rec: f64,
    sum_pen: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    NanRecon(i64),
    NanPenalty(i64),
    NanDisc(i64),
}

fn fault_from_env() -> Option<Fault> {
    let v = std::env::var(FAULT_ENV).ok()?;
    let (kind, step) = v.split_once('@')?;
    let step = step.parse().ok()?;
    match kind {
        "nan-recon" => Some(Fault::NanRecon(step)),
        "nan-penalty" => Some(Fault::NanPenalty(step)),
        "nan-disc" => Some(Fault::NanDisc(step)),
        _ => None,
    }
}

/// Trains `model` in a new run directory. `source` is the model file's text.
pub fn run(
    model: &ir::Model,
    source: &str,
    device: Device,
    opts: &RunOptions,
) -> Result<RunSummary, TrainError> {
    let epochs = opts.epochs.unwrap_or(model.train.epochs);
    let seed = opts.seed.unwrap_or(model.train.seed);
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| default_run_dir(&model.name));
    refuse_existing(&dir, opts.force)?;
    check_memory(model, device)?;

    let train = data::load(&model.data, "train", opts.data_dir.as_deref(), seed, device)?;
    let test = data::load(&model.data, "test", opts.data_dir.as_deref(), seed, device)?;
    if train.is_empty() {
        return Err(DataError::Corrupt {
            path: train.origin.clone().into(),
            what: "the training set is empty".into(),
        }
        .into());
    }
    // Created only once the data are there, so that a failed start leaves no empty run.
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let _lock = RunLock::acquire(&dir)?;

    write_atomic(&dir.join("model.sae"), source.as_bytes()).map_err(io_err(&dir))?;
    let config = serde_json::json!({
        "model": model,
        "run": {
            "epochs": epochs, "seed": seed, "device": format!("{device:?}"),
            "data_dir": opts.data_dir.as_ref().map(|d| d.display().to_string()),
            "train_data": train.origin, "train_examples": train.len(), "test_examples": test.len(),
            "sae_dsl": env!("CARGO_PKG_VERSION"),
        }
    });
    let config_text = serde_json::to_string_pretty(&config).unwrap_or_default();
    write_atomic(&dir.join("config.json"), config_text.as_bytes()).map_err(io_err(&dir))?;
    let _ = std::fs::remove_file(dir.join("metrics.jsonl")); // --force: a new run, new metrics

    tch::manual_seed(seed);
    let vs = nn::VarStore::new(device);
    let net = Compiled::new(&vs, model);
    let opt = Adam::new(&vs, &model.train.optimizer);
    let discs = discriminators(model, device);
    let start = Position {
        epoch: 1,
        step: 0,
        sum_rec: 0.0,
        sum_pen: 0.0,
    };
    Session {
        model,
        net: &net,
        vs: &vs,
        opt,
        discs,
        dir: &dir,
        source,
        evaluate: opts.evaluate,
        json: opts.json,
        epochs,
        seed,
        quiet: opts.quiet,
        device,
    }
    .train(start, &train, &test)
}

/// What a run directory records about its model.
pub struct RunRecord {
    /// The model, under the name it was run with (its copy is always called model.sae).
    pub model: ir::Model,
    /// The model file's text as run.
    pub source: String,
    /// `config.json`, when readable.
    pub config: Option<serde_json::Value>,
}

/// Reads and compiles a run directory's model.sae and reads its config.json.
pub fn read_run_record(dir: &Path) -> Result<RunRecord, String> {
    let path = dir.join("model.sae");
    let source = std::fs::read_to_string(&path).map_err(|e| format!("model.sae: {e}"))?;
    let c = crate::compile_source(&path.display().to_string(), &source, Some(dir));
    let mut model = match c.model.as_ref() {
        Some(m) if !c.has_errors() => m.clone(),
        _ => {
            return Err(format!(
                "its model.sae no longer compiles:\n{}",
                c.sources.render(&c.diags, false, 100)
            ))
        }
    };
    let config: Option<serde_json::Value> = std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(name) = config.as_ref().and_then(|c| c["model"]["name"].as_str()) {
        model.name = name.to_string();
    }
    Ok(RunRecord {
        model,
        source,
        config,
    })
}

/// Continues the run in `dir` from its saved state (`resume.safetensors`).
pub fn resume(dir: &Path, device: Device, opts: &RunOptions) -> Result<RunSummary, TrainError> {
    let fail = |what: String| TrainError::Resume {
        dir: dir.display().to_string(),
        what,
    };
    let RunRecord {
        model,
        source,
        config,
    } = read_run_record(dir).map_err(fail)?;
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

    let state_path = dir.join("resume.safetensors");
    if !state_path.is_file() {
        return Err(fail(
            "there is no saved training state (resume.safetensors)".into(),
        ));
    }
    let _lock = RunLock::acquire(dir)?;
    let state: HashMap<String, Tensor> =
        Tensor::read_safetensors(&state_path)?.into_iter().collect();
    let pos = state
        .get("state.position")
        .map(|t| (t.int64_value(&[0]), t.int64_value(&[1])))
        .ok_or_else(|| fail("the state has no position".into()))?;
    let sums = state
        .get("state.sums")
        .map(|t| (t.double_value(&[0]), t.double_value(&[1])))
        .unwrap_or((0.0, 0.0));
    if pos.0 > epochs {
        return Err(fail(format!("the run has finished its {epochs} epochs; pass --epochs N with N > {epochs} to train longer")));
    }
    check_memory(&model, device)?;
    let train = data::load(&model.data, "train", data_dir.as_deref(), seed, device)?;
    let test = data::load(&model.data, "test", data_dir.as_deref(), seed, device)?;

    let vs = nn::VarStore::new(device);
    let net = Compiled::new(&vs, &model);
    tch::no_grad(|| -> Result<(), TrainError> {
        for (name, mut var) in vs.variables() {
            let saved = state
                .get(&format!("model.{name}"))
                .ok_or_else(|| fail(format!("the state lacks variable {name}")))?;
            var.copy_(&saved.to_device(device));
        }
        Ok(())
    })?;
    let mut opt = Adam::new(&vs, &model.train.optimizer);
    opt.load_state(&state).map_err(fail)?;
    let mut discs = discriminators(&model, device);
    for (i, d) in discs.iter_mut().enumerate() {
        let Some(d) = d else { continue };
        tch::no_grad(|| -> Result<(), TrainError> {
            for (name, mut var) in d.vs.variables() {
                let saved = state.get(&format!("disc{i}.model.{name}")).ok_or_else(|| {
                    fail(format!("the state lacks discriminator variable {name}"))
                })?;
                var.copy_(&saved.to_device(device));
            }
            Ok(())
        })?;
        d.opt.load_state(&state).map_err(fail)?;
    }
    if !opts.quiet {
        eprintln!(
            "resuming {} at epoch {}, step {}",
            dir.display(),
            pos.0,
            pos.1
        );
    }
    let start = Position {
        epoch: pos.0,
        step: pos.1,
        sum_rec: sums.0,
        sum_pen: sums.1,
    };
    Session {
        model: &model,
        net: &net,
        vs: &vs,
        opt,
        discs,
        dir,
        source: &source,
        evaluate: opts.evaluate,
        json: opts.json,
        epochs,
        seed,
        quiet: opts.quiet,
        device,
    }
    .train(start, &train, &test)
}

/// Everything a training loop needs.
struct Session<'a> {
    model: &'a ir::Model,
    net: &'a Compiled,
    vs: &'a nn::VarStore,
    opt: Adam,
    discs: Vec<Option<Discriminator>>,
    dir: &'a Path,
    source: &'a str,
    evaluate: bool,
    json: bool,
    epochs: i64,
    seed: i64,
    quiet: bool,
    device: Device,
}

impl Session<'_> {
    /// Writes the variables, the optimizer state and the position, atomically.
    fn save_state(&self, pos: Position) -> Result<(), TrainError> {
        let mut named: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("model.{n}"), t.to_device(Device::Cpu)))
            .collect();
        named.extend(self.opt.state());
        for (i, d) in self.discs.iter().enumerate() {
            let Some(d) = d else { continue };
            named.extend(
                d.vs.variables()
                    .into_iter()
                    .map(|(n, t)| (format!("disc{i}.model.{n}"), t.to_device(Device::Cpu))),
            );
            named.extend(d.opt.state());
        }
        named.push((
            "state.position".into(),
            Tensor::from_slice(&[pos.epoch, pos.step]),
        ));
        named.push((
            "state.sums".into(),
            Tensor::from_slice(&[pos.sum_rec, pos.sum_pen]),
        ));
        let tmp = self.dir.join(".resume.tmp.safetensors");
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        Tensor::write_safetensors(&refs, &tmp)?;
        let dest = self.dir.join("resume.safetensors");
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        save_checkpoint(self.vs, self.dir)
    }

    fn train(
        mut self,
        start: Position,
        train: &Dataset,
        test: &Dataset,
    ) -> Result<RunSummary, TrainError> {
        let model = self.model;
        let device = self.device;
        let n = train.len();
        let batch = model.train.batch.min(n);
        let steps = n / batch; // the last partial batch is dropped: every step sees a full batch
        let metrics_path = self.dir.join("metrics.jsonl");
        let fault = fault_from_env();
        let terms = term_names(model);
        let mut history = vec![];
        let mut warned = false;
        let mut max_err = 0.0f64;
        let bar = progress_bar(self.quiet || self.json, steps as u64);
        for epoch in start.epoch..=self.epochs {
            let t0 = Instant::now();
            tch::manual_seed(step_seed(self.seed, epoch, -1));
            let perm = Tensor::randperm(n, (Kind::Int64, device));
            let resumed = epoch == start.epoch;
            let (r0, p0) = if resumed {
                (start.sum_rec, start.sum_pen)
            } else {
                (0.0, 0.0)
            };
            let mut sum_rec = Tensor::from(r0 as f32).to_device(device);
            let mut sum_pen = Tensor::from(p0 as f32).to_device(device);
            let first = if resumed { start.step.min(steps) } else { 0 };
            if let Some(b) = &bar {
                b.reset();
                b.set_prefix(format!("epoch {epoch}/{}", self.epochs));
                b.set_position(first as u64);
            }
            // The first step (1-based) at which each tracked term was not finite, and its value,
            // kept on the device so that no step waits for the host; read at the logging points.
            let mut bad: Vec<(Tensor, Tensor)> = (0..terms.len())
                .map(|_| {
                    (
                        Tensor::full([], -1, (Kind::Int64, device)),
                        Tensor::zeros([], (Kind::Float, device)),
                    )
                })
                .collect();
            let (mut iter_sum, mut iter_count) = (0i64, 0i64);
            for step in first..steps {
                if INTERRUPT.swap(false, Ordering::SeqCst) {
                    let pos = Position {
                        epoch,
                        step,
                        sum_rec: sum_rec.double_value(&[]),
                        sum_pen: sum_pen.double_value(&[]),
                    };
                    self.save_state(pos)?;
                    if let Some(b) = &bar {
                        b.finish_and_clear();
                    }
                    return Err(TrainError::Interrupted {
                        dir: self.dir.display().to_string(),
                        epoch,
                        step,
                    });
                }
                tch::manual_seed(step_seed(self.seed, epoch, step));
                let log_point = step % 10 == 9 || step + 1 == steps;
                let global = (epoch - 1) * steps + step + 1;
                let idx = perm.narrow(0, step * batch, batch);
                let mut x = train.x.index_select(0, &idx);
                if model.data.binarize {
                    x = x.bernoulli();
                }
                let (z, stats) = self.net.encode_stats(&x, true);
                let xhat = self.net.decode(&z, true);
                let mut rec = self.net.recon_cost(&xhat, &x);
                if fault == Some(Fault::NanRecon(global)) {
                    rec = rec * f64::NAN;
                }
                let w = self.net.sample_prior(batch);
                // Order of computation within a step, which breaks ties: reconstruction, the
                // discriminator updates (their NaN poisons the GAN penalty of the same step), penalties.
                let mut tracked = vec![rec.detach(), Tensor::zeros([], (Kind::Float, device))];
                let mut pen_total = Tensor::zeros([], (Kind::Float, device));
                let mut disc_total = Tensor::zeros([], (Kind::Float, device));
                let mut step_err = None;
                for (i, p) in model.penalties.iter().enumerate() {
                    let poison = fault == Some(Fault::NanDisc(global));
                    // Each penalty matches its own component of the code.
                    let (zc, wc) = match model.component(&p.on) {
                        Some((off, l)) if model.is_composite() => {
                            let d = l.space.dim();
                            (z.narrow(1, off, d), w.narrow(1, off, d))
                        }
                        _ => (z.shallow_clone(), w.shallow_clone()),
                    };
                    let out = evaluate_penalty(
                        p,
                        &zc,
                        &wc,
                        stats.as_ref(),
                        self.discs[i].as_mut(),
                        log_point,
                        poison,
                    );
                    step_err = step_err.or(out.marginal_error);
                    if out.iterations > 0 {
                        iter_sum += out.iterations;
                        iter_count += 1;
                        if let (
                            PenaltyKind::Sinkhorn {
                                tolerance,
                                iterations,
                                ..
                            },
                            Some(e),
                        ) = (&p.kind, out.marginal_error)
                        {
                            if *tolerance > 0.0
                                && e > *tolerance
                                && out.iterations >= *iterations
                                && !warned
                            {
                                warned = true;
                                eprintln!(
                                    "warning: Sinkhorn reached its cap of {iterations} iterations without the tolerance {} (marginal error {e:.2e} at epoch {epoch}, step {}); raise `iterations` or `epsilon`. Shown once per run.",
                                    ir::num(*tolerance),
                                    step + 1
                                );
                            }
                        }
                    }
                    if let Some(dl) = out.disc_loss {
                        disc_total = disc_total + dl;
                    }
                    let mut v = out.value * p.weight;
                    if fault == Some(Fault::NanPenalty(global)) {
                        v = v * f64::NAN;
                    }
                    tracked.push(v.detach());
                    pen_total = pen_total + v;
                }
                tracked[1] = disc_total;
                let loss = &rec + &pen_total;
                self.opt.zero_grad();
                loss.backward();
                self.opt.step();
                sum_rec += rec.detach();
                sum_pen += pen_total.detach();
                for ((first_bad, val), term) in bad.iter_mut().zip(&tracked) {
                    let keep = first_bad.ge(0).logical_or(&term.isfinite());
                    *val = val.where_self(&keep, term);
                    *first_bad = first_bad.where_self(&keep, &first_bad.full_like(step + 1));
                }
                // Host reads only at logging points: every 10 steps and at the end of the epoch.
                if log_point {
                    let (r, pv) = (rec.double_value(&[]), pen_total.double_value(&[]));
                    // Name the term that went bad first: after it, the weights poison the others.
                    let first_bad = bad
                        .iter()
                        .enumerate()
                        .map(|(i, (s, v))| (s.int64_value(&[]), i, v))
                        .filter(|(s, _, _)| *s >= 0)
                        .min_by_key(|(s, i, _)| (*s, *i));
                    if let Some((s, i, v)) = first_bad {
                        return Err(non_finite(&terms[i], v.double_value(&[]), epoch, s, model));
                    }
                    if let Some(e) = step_err {
                        max_err = max_err.max(e);
                        let fixed = model.penalties.iter().any(|p| matches!(p.kind, PenaltyKind::Sinkhorn { tolerance, .. } if tolerance == 0.0));
                        if fixed && e > 0.05 && !warned {
                            warned = true;
                            eprintln!("{}", convergence_warning(model, e, epoch, step + 1));
                        }
                    }
                    if let Some(b) = &bar {
                        b.set_position(step as u64 + 1);
                        b.set_message(format!("recon {r:.4}  penalty {pv:.4}"));
                    }
                }
            }
            let k = steps.max(1) as f64;
            let (sr, sp) = (sum_rec.double_value(&[]), sum_pen.double_value(&[]));
            let m = EpochMetrics {
                epoch,
                recon: sr / k,
                penalty: sp / k,
                total: (sr + sp) / k,
                seconds: t0.elapsed().as_secs_f64(),
                sinkhorn_iterations: (iter_count > 0).then(|| iter_sum as f64 / iter_count as f64),
            };
            check_finite(m.recon, m.penalty, epoch, steps, model)?;
            append_line(
                &metrics_path,
                &serde_json::to_string(&m).unwrap_or_default(),
            )?;
            self.save_state(Position {
                epoch: epoch + 1,
                step: 0,
                sum_rec: 0.0,
                sum_pen: 0.0,
            })?;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            if self.json {
                let mut v = serde_json::to_value(&m).unwrap_or_default();
                v["event"] = "epoch".into();
                v["epochs"] = self.epochs.into();
                println!("{v}");
            } else if !self.quiet {
                eprintln!(
                    "epoch {:>3}/{}  recon {:.4}  penalty {:.5}  total {:.4}  ({:.1} s)",
                    epoch, self.epochs, m.recon, m.penalty, m.total, m.seconds
                );
            }
            history.push(m);
        }

        let (test_recon, test_mse) = tch::no_grad(|| evaluate(self.net, &test.x));
        crate::eval::draw(self.dir, model, self.net, train, test)?;
        let summary = RunSummary {
            dir: self.dir.to_path_buf(),
            epochs: history,
            test_recon,
            test_mse,
            device: format!("{device:?}"),
            sinkhorn_marginal_error_max: max_err,
        };
        let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
        write_atomic(&self.dir.join("summary.json"), text.as_bytes()).map_err(io_err(self.dir))?;
        if self.evaluate {
            let opts = crate::eval::EvalOptions {
                quiet: self.quiet || self.json,
                samples: None,
            };
            crate::eval::evaluate(
                self.dir,
                model,
                self.source,
                self.net,
                train,
                test,
                self.seed,
                &opts,
            )?;
        }
        Ok(summary)
    }
}

fn convergence_warning(model: &ir::Model, err: f64, epoch: i64, step: i64) -> String {
    let (eps, iters) = model
        .penalties
        .iter()
        .find_map(|p| match p.kind {
            PenaltyKind::Sinkhorn {
                epsilon,
                iterations,
                ..
            } => Some((epsilon, iterations)),
            _ => None,
        })
        .unwrap_or((0.0, 0));
    format!(
        "warning: Sinkhorn did not converge in {iters} iterations (row-marginal error {err:.3} at epoch {epoch}, step {step}); \
         the loss uses the plan as it stands after {iters} iterations, as the SAE paper does. For a converged plan raise \
         `iterations` or `epsilon` (now {}), or set `tolerance`. Shown once per run.",
        ir::num(eps)
    )
}

/// Names of the tracked terms: reconstruction, the discriminators, each penalty.
fn term_names(model: &ir::Model) -> Vec<String> {
    let mut v = vec![
        "reconstruction cost".to_string(),
        "discriminator loss".to_string(),
    ];
    let many = model.penalties.len() > 1;
    for (i, p) in model.penalties.iter().enumerate() {
        let kind = penalty_name(&p.kind);
        v.push(if many {
            format!("latent penalty `{kind}` (penalty {})", i + 1)
        } else {
            "latent penalty".to_string()
        });
    }
    v
}

fn penalty_name(k: &PenaltyKind) -> &'static str {
    match k {
        PenaltyKind::Sinkhorn { .. } => "sinkhorn",
        PenaltyKind::Mmd { .. } => "mmd",
        PenaltyKind::Gan { .. } => "gan",
        PenaltyKind::Sliced { .. } => "sliced",
        PenaltyKind::Exact { .. } => "exact",
        PenaltyKind::Kl { .. } => "kl",
    }
}

/// The error for a term that became NaN or infinite, with what to change.
fn non_finite(term: &str, value: f64, epoch: i64, step: i64, model: &ir::Model) -> TrainError {
    let help = if term.starts_with("latent penalty") {
        let eps: Vec<String> = model
            .penalties
            .iter()
            .filter_map(|p| match p.kind {
                PenaltyKind::Sinkhorn { epsilon, .. } => Some(ir::num(epsilon)),
                _ => None,
            })
            .collect();
        if eps.is_empty() {
            "lower the penalty weight or the learning rate; the last good checkpoint is kept"
                .to_string()
        } else {
            format!("the Sinkhorn penalty (epsilon {}) overflowed; raise epsilon or lower the penalty weight; the last good checkpoint is kept", eps.join(", "))
        }
    } else if term.starts_with("discriminator") {
        "lower the discriminator's learning rate (`gan(lr = ...)`); the last good checkpoint is kept".to_string()
    } else {
        format!(
            "lower the learning rate (now {}); the last good checkpoint is kept",
            ir::num(model.train.optimizer.lr)
        )
    };
    TrainError::NonFinite {
        term: term.into(),
        value: format!("{value}"),
        epoch,
        step,
        help,
    }
}

fn progress_bar(quiet: bool, steps: u64) -> Option<indicatif::ProgressBar> {
    if quiet {
        return None;
    }
    let b = indicatif::ProgressBar::new(steps);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    b.set_style(style);
    Some(b)
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

fn check_finite(
    rec: f64,
    pen: f64,
    epoch: i64,
    step: i64,
    model: &ir::Model,
) -> Result<(), TrainError> {
    if !rec.is_finite() {
        return Err(non_finite("reconstruction cost", rec, epoch, step, model));
    }
    if !pen.is_finite() {
        return Err(non_finite("latent penalty", pen, epoch, step, model));
    }
    Ok(())
}

fn append_line(path: &Path, line: &str) -> Result<(), TrainError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    writeln!(f, "{line}").map_err(io_err(path))
}

/// Saves the variables as safetensors through a temporary file and a rename.
pub fn save_checkpoint(vs: &nn::VarStore, dir: &Path) -> Result<(), TrainError> {
    let tmp = dir.join(".checkpoint.tmp.safetensors");
    vs.save(&tmp)?;
    let dest = dir.join("checkpoint.safetensors");
    std::fs::rename(&tmp, &dest).map_err(io_err(&dest))
}

/// Test reconstruction: (mean cost per example in the model's cost, mean squared error per value).
pub fn evaluate(net: &Compiled, x: &Tensor) -> (f64, f64) {
    let n = x.size()[0];
    let (mut cost, mut se) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let b = (n - i).min(1000);
        let xb = x.narrow(0, i, b);
        let xh = net.decode(&net.encode(&xb, false), false);
        cost += net.recon_cost(&xh, &xb).double_value(&[]) * b as f64;
        se += (&xh - &xb).square().sum(Kind::Double).double_value(&[]);
        i += b;
    }
    let numel = x.numel().max(1) as f64;
    (cost / n.max(1) as f64, se / numel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ir::Model {
        let text = "data rings()\nlatent R^2 ~ normal()\nencoder { linear(2) }\ngenerator { linear(2) }\npenalty sinkhorn(epsilon = 0.001)\n";
        crate::compile_source("m.sae", text, None)
            .model
            .expect("model")
    }

    #[test]
    fn non_finite_losses_name_term_epoch_and_step() {
        let m = model();
        assert!(check_finite(1.0, 2.0, 1, 1, &m).is_ok());
        let e = check_finite(f64::NAN, 1.0, 3, 7, &m).expect_err("NaN reconstruction");
        assert_eq!(
            e.to_string(),
            "the reconstruction cost became NaN at epoch 3, step 7"
        );
        assert!(
            format!("{:?}", miette::Report::new(e)).contains("lower the learning rate (now 0.001)")
        );
        let e = check_finite(1.0, f64::INFINITY, 2, 40, &m).expect_err("infinite penalty");
        assert_eq!(
            e.to_string(),
            "the latent penalty became inf at epoch 2, step 40"
        );
        assert!(format!("{:?}", miette::Report::new(e)).contains("epsilon 0.001"));
    }
}
