//! Stage 4, `train`: runs a compiled model on its data and writes the run directory.
//!
//! Entry point: [`run`]. Artifacts are written atomically; the checkpoint is replaced only by a
//! complete newer one, so an error or interruption keeps the last good epoch.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use crate::backend::Compiled;
use crate::data::{self, DataError};
use crate::image::{self, Series};
use crate::ir::{self, PenaltyKind, Space};
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
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TrainError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Data(#[from] DataError),
    #[error("run directory {0} already exists and is not empty")]
    #[diagnostic(
        code(sae::run::exists),
        help("choose another --out, or pass --force to write into it")
    )]
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
    #[error("libtorch: {0}")]
    #[diagnostic(code(sae::run::torch))]
    Torch(#[from] tch::TchError),
}

/// One epoch's averages, appended to `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct EpochMetrics {
    pub epoch: i64,
    pub recon: f64,
    pub penalty: f64,
    pub total: f64,
    pub seconds: f64,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub epochs: Vec<EpochMetrics>,
    pub test_recon: f64,
    pub test_mse: f64,
    pub device: String,
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

/// The weighted latent penalty and its unweighted value, between codes `z` and prior samples `w`.
pub fn penalty(p: &ir::Penalty, z: &Tensor, w: &Tensor) -> Tensor {
    match &p.kind {
        PenaltyKind::Sinkhorn {
            epsilon,
            iterations,
            cost,
        } => {
            let c = ot::cost_matrix(z, w, *cost);
            ot::sinkhorn(&c, *epsilon, *iterations).sharp
        }
    }
}

/// Trains `model` and writes its run directory. `source` is the model file's text.
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

    tch::manual_seed(seed);
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

    write_atomic(&dir.join("model.sae"), source.as_bytes()).map_err(io_err(&dir))?;
    let config = serde_json::json!({
        "model": model,
        "run": {
            "epochs": epochs, "seed": seed, "device": format!("{device:?}"),
            "train_data": train.origin, "train_examples": train.len(), "test_examples": test.len(),
            "sae_dsl": env!("CARGO_PKG_VERSION"),
        }
    });
    let config_text = serde_json::to_string_pretty(&config).unwrap_or_default();
    write_atomic(&dir.join("config.json"), config_text.as_bytes()).map_err(io_err(&dir))?;

    tch::manual_seed(seed);
    let vs = nn::VarStore::new(device);
    let net = Compiled::new(&vs, model);
    let a = &model.train.optimizer;
    let mut opt = nn::Adam {
        beta1: a.beta1,
        beta2: a.beta2,
        wd: 0.0,
        eps: 1e-8,
        amsgrad: false,
    }
    .build(&vs, a.lr)?;

    let n = train.len();
    let batch = model.train.batch.min(n);
    let steps = n / batch; // the last partial batch is dropped: every step sees a full batch
    let metrics_path = dir.join("metrics.jsonl");
    let mut history = vec![];
    let bar = progress_bar(opts.quiet, steps as u64);
    for epoch in 1..=epochs {
        let t0 = Instant::now();
        let perm = Tensor::randperm(n, (Kind::Int64, device));
        let mut sum_rec = Tensor::zeros([], (Kind::Float, device));
        let mut sum_pen = Tensor::zeros([], (Kind::Float, device));
        if let Some(b) = &bar {
            b.reset();
            b.set_prefix(format!("epoch {epoch}/{epochs}"));
        }
        for step in 0..steps {
            let idx = perm.narrow(0, step * batch, batch);
            let mut x = train.x.index_select(0, &idx);
            if model.data.binarize {
                x = x.bernoulli();
            }
            let z = net.encode(&x, true);
            let xhat = net.decode(&z, true);
            let rec = net.recon_cost(&xhat, &x);
            let w = net.sample_prior(batch);
            let mut pen_total = Tensor::zeros([], (Kind::Float, device));
            for p in &model.penalties {
                pen_total = pen_total + penalty(p, &z, &w) * p.weight;
            }
            let loss = &rec + &pen_total;
            opt.zero_grad();
            loss.backward();
            opt.step();
            sum_rec += rec.detach();
            sum_pen += pen_total.detach();
            // Host reads only at logging points: every 10 steps and at the end of the epoch.
            if step % 10 == 9 || step + 1 == steps {
                let (r, pv) = (rec.double_value(&[]), pen_total.double_value(&[]));
                check_finite(r, pv, epoch, step + 1, model)?;
                if let Some(b) = &bar {
                    b.set_position(step as u64 + 1);
                    b.set_message(format!("recon {r:.4}  penalty {pv:.4}"));
                }
            }
        }
        let k = steps.max(1) as f64;
        let m = EpochMetrics {
            epoch,
            recon: sum_rec.double_value(&[]) / k,
            penalty: sum_pen.double_value(&[]) / k,
            total: (sum_rec.double_value(&[]) + sum_pen.double_value(&[])) / k,
            seconds: t0.elapsed().as_secs_f64(),
        };
        check_finite(m.recon, m.penalty, epoch, steps, model)?;
        append_line(
            &metrics_path,
            &serde_json::to_string(&m).unwrap_or_default(),
        )?;
        save_checkpoint(&vs, &dir)?;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        if !opts.quiet {
            eprintln!(
                "epoch {:>3}/{epochs}  recon {:.4}  penalty {:.5}  total {:.4}  ({:.1} s)",
                epoch, m.recon, m.penalty, m.total, m.seconds
            );
        }
        history.push(m);
    }

    let (test_recon, test_mse) = tch::no_grad(|| evaluate(&net, &test.x));
    write_pictures(&net, model, &train.x, &test.x, &dir)?;
    let summary = RunSummary {
        dir: dir.clone(),
        epochs: history,
        test_recon,
        test_mse,
        device: format!("{device:?}"),
    };
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    write_atomic(&dir.join("summary.json"), text.as_bytes()).map_err(io_err(&dir))?;
    Ok(summary)
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
    let (term, value) = if !rec.is_finite() {
        ("reconstruction cost", rec)
    } else if !pen.is_finite() {
        ("latent penalty", pen)
    } else {
        return Ok(());
    };
    let eps = model.penalties.iter().map(|p| match p.kind {
        PenaltyKind::Sinkhorn { epsilon, .. } => epsilon,
    });
    let help = if term == "latent penalty" {
        format!(
            "the Sinkhorn penalty (epsilon {}) overflowed; raise epsilon or lower the penalty weight; the last good checkpoint is kept",
            eps.map(ir::num).collect::<Vec<_>>().join(", ")
        )
    } else {
        format!(
            "lower the learning rate (now {}); the last good checkpoint is kept",
            ir::num(model.train.optimizer.lr)
        )
    };
    Err(TrainError::NonFinite {
        term: term.into(),
        value: format!("{value}"),
        epoch,
        step,
        help,
    })
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

/// Decoded prior samples, test reconstructions and (for simplex latents) decoded vertices.
fn write_pictures(
    net: &Compiled,
    model: &ir::Model,
    train: &Tensor,
    test: &Tensor,
    dir: &Path,
) -> Result<(), TrainError> {
    tch::no_grad(|| {
        let samples = net.decode(&net.sample_prior(64), false);
        let k = test.size()[0].min(32);
        let xb = test.narrow(0, 0, k);
        let recon = net.decode(&net.encode(&xb, false), false);
        if model.data.is_image() {
            image::write_grid(&dir.join("samples.png"), &samples, 8, 2).map_err(io_err(dir))?;
            // Rows of 8 inputs, each followed by a row of their reconstructions.
            let pairs = Tensor::stack(
                &[
                    xb.reshape([-1, 8, 1, 28, 28]),
                    recon.reshape([-1, 8, 1, 28, 28]),
                ],
                1,
            );
            let (h, w) = (model.data.shape[1], model.data.shape[2]);
            let pairs = if h == 28 && w == 28 {
                pairs.reshape([-1, 1, h, w])
            } else {
                Tensor::cat(&[xb, recon], 0)
            };
            image::write_grid(&dir.join("reconstructions.png"), &pairs, 8, 2)
                .map_err(io_err(dir))?;
            if let Space::Simplex { dim } = model.latent.space {
                let vertices = net.decode(&Tensor::eye(dim, (Kind::Float, net.device)), false);
                image::write_grid(&dir.join("vertices.png"), &vertices, dim.min(8), 2)
                    .map_err(io_err(dir))?;
            }
        } else {
            let many = net.decode(&net.sample_prior(1000), false);
            let data = train.narrow(0, 0, train.size()[0].min(1000));
            let series = [
                Series {
                    points: &data,
                    color: [150, 150, 150],
                },
                Series {
                    points: &many,
                    color: [200, 30, 30],
                },
            ];
            image::write_scatter(&dir.join("samples.png"), &series, 480).map_err(io_err(dir))?;
            let rec_all = net.decode(&net.encode(&data, false), false);
            let series = [
                Series {
                    points: &data,
                    color: [150, 150, 150],
                },
                Series {
                    points: &rec_all,
                    color: [30, 60, 200],
                },
            ];
            image::write_scatter(&dir.join("reconstructions.png"), &series, 480)
                .map_err(io_err(dir))?;
        }
        Ok(())
    })
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
