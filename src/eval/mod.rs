//! Evaluation: the metrics and pictures of a trained run, computed the same way for every model
//! so that runs can be compared.
//!
//! Entry points: [`open_run`] loads a run directory; [`evaluate`] computes the metrics and writes
//! `summary.json`; [`pictures::draw`] writes the pictures. FID here uses a small MNIST-trained CNN
//! as the feature extractor (the SAE paper's choice), NOT the Inception network: every output
//! says so.
//!
//! Parts: [`classifier`] (the FID feature extractor), [`pictures`], [`compare`] (the table over
//! runs), [`geodesic`] with [`geometry`] (the latent metric, magnification and geodesics).

pub mod classifier;
pub mod compare;
pub mod geodesic;
pub mod geometry;
pub mod pictures;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::data::{self, Dataset};
use crate::ir::{self, PenaltyKind, Prior, Space};
use crate::rundir;
use crate::runtime::model::{reconstruction, Compiled};
use crate::runtime::ot;
use crate::util::write_atomic;
use classifier::{frechet_distance, Classifier};

pub use compare::compare;
pub use geodesic::geodesic;
pub use pictures::{
    draw, interpolation, loss_curves, project_2d, write_codes, write_prior_samples, write_samples,
};

/// The note that goes with every FID figure.
pub const FID_NOTE: &str = "FID with features of a small CNN classifier trained on the data set's labels (as in the SAE paper); not the Inception FID, not comparable to Inception-FID numbers";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EvalError {
    #[error("{dir}: {what}")]
    #[diagnostic(code(sae::eval::run), help("pass the directory of a run written by `sae-dsl run` (it holds model.sae, config.json and checkpoint.safetensors)"))]
    Run { dir: String, what: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Data(#[from] data::DataError),
    #[error("{0}")]
    #[diagnostic(code(sae::eval::io))]
    Io(String),
    #[error("libtorch: {0}")]
    #[diagnostic(code(sae::eval::torch))]
    Torch(#[from] tch::TchError),
    #[error(
        "evaluation of {dir} stopped by a signal {phase}; summary.json keeps the figures it had"
    )]
    #[diagnostic(
        code(sae::eval::interrupted),
        help("the trained weights are complete; finish the evaluation with `sae-dsl eval {dir}`")
    )]
    Interrupted { dir: String, phase: String },
    #[error("{path}: {what}")]
    #[diagnostic(
        code(sae::eval::features),
        help("--features takes a TorchScript file (torch.jit.script or torch.jit.trace, then .save) whose forward maps images [N, C, H, W] in [0, 1] to features [N, F]")
    )]
    Features { path: String, what: String },
}

/// Stops an evaluation phase at a safe point (between phases, before any file is written)
/// when a signal asked the process to stop.
pub fn check_stop(dir: &Path, phase: &str) -> Result<(), EvalError> {
    if crate::signals::stop_requested() {
        return Err(EvalError::Interrupted {
            dir: dir.display().to_string(),
            phase: phase.to_string(),
        });
    }
    Ok(())
}

/// A trained run, loaded.
pub struct LoadedRun {
    pub dir: PathBuf,
    pub model: ir::Model,
    pub source: String,
    pub vs: nn::VarStore,
    pub net: Compiled,
    pub config: serde_json::Value,
}

impl LoadedRun {
    /// The data folder and seed the run used.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.config["run"]["data_dir"].as_str().map(PathBuf::from)
    }
    pub fn seed(&self) -> i64 {
        self.config["run"]["seed"]
            .as_i64()
            .unwrap_or(self.model.train.seed)
    }
}

/// Loads the model file, configuration and checkpoint of a run directory.
pub fn open_run(dir: &Path, device: Device) -> Result<LoadedRun, EvalError> {
    let fail = |what: String| EvalError::Run {
        dir: dir.display().to_string(),
        what,
    };
    let record = rundir::read_run_record(dir).map_err(fail)?;
    let (model, source, config) = (record.model, record.source, record.config);
    let config = config.unwrap_or(serde_json::Value::Null);
    let mut vs = nn::VarStore::new(device);
    let net = Compiled::new(&vs, &model);
    let ck = dir.join(rundir::CHECKPOINT);
    if !ck.is_file() {
        return Err(fail(
            "no checkpoint.safetensors yet: the run has not finished an epoch".into(),
        ));
    }
    rundir::verify_weights(&ck).map_err(&fail)?;
    vs.load(&ck)
        .map_err(|e| fail(format!("checkpoint.safetensors: {e}")))?;
    Ok(LoadedRun {
        dir: dir.to_path_buf(),
        model,
        source,
        vs,
        net,
        config,
    })
}

/// Every figure of a run, written to `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub model: String,
    /// SHA-256 of the model file as run.
    pub model_sha256: String,
    /// Method name as in the SAE paper's table (SAE, WAE-MMD, WAE-GAN, SWAE, HAE, VAE, beta-VAE).
    pub method: String,
    pub prior: String,
    /// The weight of the (first) latent penalty.
    pub gamma: f64,
    pub data: String,
    pub epochs: usize,
    /// Test reconstruction in the model's cost (per example) and as mean squared error per value.
    pub test_recon: f64,
    pub test_mse: f64,
    /// Unbiased MMD^2 x 1000 (IMQ, C = 2 d sigma^2 with sigma 1, summed over the WAE scales)
    /// between the encoded test set and as many prior samples.
    pub latent_mmd_x1000: f64,
    /// FID with the data set's CNN classifier (see `fid_note`); images only.
    pub fid_cnn: Option<f64>,
    /// The same FID against the validation split's images (runs with a `validation` split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid_validation: Option<f64>,
    pub fid_note: Option<String>,
    /// The feature network of the FID (architecture, input shape, classes, training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid_features: Option<String>,
    /// The FID with a user's TorchScript feature network (`eval --features FILE.pt`), and that
    /// network: its file and SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid_external: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid_external_features: Option<String>,
    /// For data with generating factors (`shapes`): how well a linear read-out of the codes,
    /// fitted on the training set, recovers each factor on the test set (R^2; for the
    /// categorical `shape`, the accuracy of the read-out's largest one-hot score).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor_probe: Option<Vec<(String, f64)>>,
    pub classifier_test_accuracy: Option<f64>,
    /// Share of samples per predicted class, and its entropy in bits (log2(10) = 3.32 is uniform).
    pub sample_label_histogram: Option<Vec<f64>>,
    pub sample_label_entropy_bits: Option<f64>,
    /// Debiased Sinkhorn divergence between 1000 samples and 1000 test examples in data space
    /// (cost |x - y|^2 summed over values, epsilon below).
    pub data_sinkhorn: f64,
    pub data_sinkhorn_epsilon: f64,
    /// Largest row-marginal error of the training Sinkhorn plan seen at logging points.
    pub sinkhorn_marginal_error_max: Option<f64>,
    pub device: String,
    pub eval_seconds: f64,
}

/// The method's name in the paper's table.
pub fn method_name(m: &ir::Model) -> String {
    match m.penalties.first().map(|p| (&p.kind, p.weight)) {
        Some((PenaltyKind::Sinkhorn { .. }, _)) => "SAE".into(),
        Some((PenaltyKind::Mmd { .. }, _)) => "WAE-MMD".into(),
        Some((PenaltyKind::Gan { .. }, _)) => "WAE-GAN".into(),
        Some((PenaltyKind::Sliced { .. }, _)) => "SWAE".into(),
        Some((PenaltyKind::Exact { .. }, _)) => "HAE".into(),
        Some((PenaltyKind::Kl { .. }, w)) if w == 1.0 => "VAE".into(),
        Some((PenaltyKind::Kl { .. }, w)) => format!("beta-VAE ({})", ir::num(w)),
        None => "AE".into(),
    }
}

/// A short prior description: "normal R^8", "uniform S^9", "Dirichlet(0.2) simplex(16)".
pub fn prior_name(m: &ir::Model) -> String {
    if m.is_composite() {
        let parts: Vec<String> = m
            .latents
            .iter()
            .map(|l| format!("{}: {}", l.name, component_name(l)))
            .collect();
        return parts.join(" x ");
    }
    component_name(&m.latents[0])
}

fn component_name(l: &ir::Latent) -> String {
    match (&l.prior, l.space) {
        (Prior::Normal { .. }, Space::Euclidean { dim }) => format!("normal R^{dim}"),
        (Prior::Uniform { .. }, Space::Euclidean { dim }) => format!("uniform box R^{dim}"),
        (Prior::UniformSphere, Space::Sphere { dim }) => format!("uniform S^{}", dim - 1),
        (Prior::Dirichlet { alpha }, Space::Simplex { dim }) => {
            format!("Dirichlet({}) simplex({dim})", ir::num(alpha[0]))
        }
        (Prior::Program(p), s) => format!("{} on {s}", p.call),
        (p, s) => format!("{p} on {s}"),
    }
}

fn batched(n: i64, f: impl Fn(i64, i64) -> Tensor) -> Tensor {
    let mut out = vec![];
    let mut i = 0;
    while i < n {
        let b = (n - i).min(1000);
        out.push(f(i, b));
        i += b;
    }
    Tensor::cat(&out, 0)
}

/// Encodes (evaluation mode, means for Gaussian encoders) a whole set.
pub fn encode_all(net: &Compiled, x: &Tensor) -> Tensor {
    tch::no_grad(|| batched(x.size()[0], |i, b| net.encode(&x.narrow(0, i, b), false)))
}

/// Decodes `n` prior samples.
pub fn sample(net: &Compiled, n: i64) -> Tensor {
    tch::no_grad(|| batched(n, |_, b| net.decode(&net.sample_prior(b), false)))
}

/// Options of [`evaluate`].
#[derive(Debug, Default)]
pub struct EvalOptions {
    pub quiet: bool,
    /// Number of generated samples for FID and coverage (default 10,000).
    pub samples: Option<i64>,
    /// Where the summary goes (default `summary.json`; `summary.gmm.json` for a post-hoc sampler).
    pub summary_file: Option<String>,
    /// The validation split's images, for the FID against them (choosing settings without the
    /// test set).
    pub validation: Option<Tensor>,
    /// A TorchScript feature network for a second FID (`--features FILE.pt`).
    pub features: Option<PathBuf>,
}

/// Computes the metrics of a trained network and writes `summary.json` into `dir`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    dir: &Path,
    model: &ir::Model,
    source: &str,
    net: &Compiled,
    train: &Dataset,
    test: &Dataset,
    seed: i64,
    opts: &EvalOptions,
) -> Result<Summary, EvalError> {
    let t0 = std::time::Instant::now();
    check_stop(dir, "before it began")?;
    let device = net.device;
    tch::manual_seed(seed.wrapping_add(4242));
    let x = test.x();
    let (test_recon, test_mse) = tch::no_grad(|| reconstruction(net, &x));
    // Latent MMD x 1000 between the encoded test set and as many prior samples.
    let codes = encode_all(net, &x);
    drop(x);
    let prior = tch::no_grad(|| net.sample_prior(codes.size()[0]));
    let d = model.space().dim() as f64;
    let mmd = tch::no_grad(|| {
        ot::mmd_blocked(
            &codes.to_kind(Kind::Double),
            &prior.to_kind(Kind::Double),
            ot::Kernel::Imq,
            2.0 * d,
            2000,
        )
    }) * 1000.0;

    let n_samples = opts.samples.unwrap_or(10_000);
    let SampleQuality {
        fid,
        accuracy: acc,
        histogram: hist,
        entropy,
        fid_validation,
        features,
    } = {
        let q = sample_quality(model, net, (train, test), seed, n_samples, opts);
        // A stop inside (the classifier's training ends early) is reported as the stop it is.
        check_stop(
            dir,
            "while it trained its classifier, sampled or computed the FID",
        )?;
        q?
    };
    let factor_probe = factor_probe(net, train, test);
    let external = match &opts.features {
        Some(p) => Some(external_fid(p, net, test, seed, n_samples)?),
        None => None,
    };
    // Debiased Sinkhorn divergence in data space, 1000 vs 1000.
    let (data_sinkhorn, eps) = data_sinkhorn(model, net, test, seed);
    check_stop(dir, "in its last figures")?;
    let prev: Option<serde_json::Value> = std::fs::read_to_string(dir.join(rundir::SUMMARY))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let epochs = std::fs::read_to_string(dir.join(rundir::METRICS))
        .map(|s| s.lines().count())
        .unwrap_or(0);
    let summary = Summary {
        model: model.name.clone(),
        model_sha256: data::hex(&<sha2::Sha256 as sha2::Digest>::digest(source.as_bytes())),
        method: method_name(model),
        prior: prior_name(model),
        gamma: model.penalties.first().map_or(0.0, |p| p.weight),
        data: train.origin.clone(),
        epochs,
        test_recon,
        test_mse,
        latent_mmd_x1000: mmd,
        fid_cnn: fid,
        fid_validation,
        fid_note: fid.map(|_| FID_NOTE.to_string()),
        fid_features: features,
        fid_external: external.as_ref().map(|e| e.0),
        fid_external_features: external.map(|e| e.1),
        factor_probe,
        classifier_test_accuracy: acc,
        sample_label_histogram: hist,
        sample_label_entropy_bits: entropy,
        data_sinkhorn,
        data_sinkhorn_epsilon: eps,
        sinkhorn_marginal_error_max: prev
            .as_ref()
            .and_then(|p| p["sinkhorn_marginal_error_max"].as_f64()),
        device: format!("{device:?}"),
        eval_seconds: t0.elapsed().as_secs_f64(),
    };
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    let file = opts.summary_file.as_deref().unwrap_or(rundir::SUMMARY);
    write_atomic(&dir.join(file), text.as_bytes())
        .map_err(|e| EvalError::Io(format!("{}: {e}", dir.display())))?;
    Ok(summary)
}

/// The project's FID (MNIST-CNN features) of decoded prior samples, the classifier's test
/// accuracy, and the samples' label histogram and entropy; for 28 x 28 labelled images only.
#[derive(Default)]
struct SampleQuality {
    fid: Option<f64>,
    accuracy: Option<f64>,
    histogram: Option<Vec<f64>>,
    entropy: Option<f64>,
    fid_validation: Option<f64>,
    /// The feature network's description.
    features: Option<String>,
}

// long: the classifier, the samples, then every figure computed from them.
fn sample_quality(
    model: &ir::Model,
    net: &Compiled,
    (train, test): (&Dataset, &Dataset),
    seed: i64,
    n_samples: i64,
    opts: &EvalOptions,
) -> Result<SampleQuality, EvalError> {
    let quiet = opts.quiet;
    let mut q = SampleQuality::default();
    let big_enough = model.data.is_image() && model.data.shape[1] >= 4 && model.data.shape[2] >= 4;
    if let (true, Some(ty), Some(sy)) = (big_enough, &train.labels, &test.labels) {
        let name = match &model.data.source {
            ir::DataSource::Idx { dir, .. } => dir.clone(),
            ir::DataSource::Cifar10 { .. } => "cifar10".into(),
            ir::DataSource::Shapes { size, .. } => format!("shapes{size}"),
            _ => "data".into(),
        };
        // The test images as floats once: the classifier's test accuracy and the FID use them.
        let test_x = test.x();
        let c = Classifier::get(&name, (&train.x(), ty), (&test_x, sy), net.device, quiet)
            .map_err(EvalError::Io)?;
        tch::manual_seed(seed.wrapping_add(777));
        let samples = sample(net, n_samples);
        let sample_features = c.features(&samples);
        q.fid = Some(frechet_distance(&c.features(&test_x), &sample_features));
        q.fid_validation = opts
            .validation
            .as_ref()
            .map(|v| frechet_distance(&c.features(v), &sample_features));
        q.accuracy = Some(c.test_accuracy);
        q.features = Some(c.spec.clone());
        let pred = c.predict(&samples);
        let classes = ty.max().int64_value(&[]).max(sy.max().int64_value(&[])) + 1;
        let counts = pred
            .bincount::<&Tensor>(None, classes)
            .to_kind(Kind::Double);
        let shares = &counts / counts.sum(Kind::Double);
        let v: Vec<f64> = Vec::<f64>::try_from(shares.to_device(Device::Cpu)).unwrap_or_default();
        q.entropy = Some(
            -v.iter()
                .filter(|p| **p > 0.0)
                .map(|p| p * p.log2())
                .sum::<f64>(),
        );
        q.histogram = Some(v);
    }
    Ok(q)
}

/// The FID of decoded prior samples (the same draws as the CNN FID's) against the test images
/// in the features of a TorchScript network, and a description naming the file and its SHA-256.
fn external_fid(
    path: &Path,
    net: &Compiled,
    test: &Dataset,
    seed: i64,
    n_samples: i64,
) -> Result<(f64, String), EvalError> {
    let fail = |what: String| EvalError::Features {
        path: path.display().to_string(),
        what,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let sha = data::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let module = tch::CModule::load_on_device(path, net.device).map_err(|e| {
        fail(format!(
            "not a TorchScript module: {}",
            e.to_string().lines().next().unwrap_or("")
        ))
    })?;
    let features = |x: &Tensor| -> Result<Tensor, EvalError> {
        let mut out = vec![];
        let n = x.size()[0];
        let mut i = 0;
        while i < n {
            let b = (n - i).min(500);
            let f = tch::no_grad(|| module.forward_ts(&[x.narrow(0, i, b)])).map_err(|e| {
                fail(format!(
                    "forward failed on images {:?}: {}",
                    x.narrow(0, i, b).size(),
                    e.to_string().lines().next().unwrap_or("")
                ))
            })?;
            if f.dim() != 2 || f.size()[0] != b {
                return Err(fail(format!(
                    "forward returned shape {:?} for {b} images; features must be [{b}, F]",
                    f.size()
                )));
            }
            out.push(f.to_kind(Kind::Double));
            i += b;
        }
        Ok(Tensor::cat(&out, 0))
    };
    tch::manual_seed(seed.wrapping_add(777));
    let samples = sample(net, n_samples);
    let fid = frechet_distance(&features(&test.x())?, &features(&samples)?);
    Ok((
        fid,
        format!("TorchScript {} (sha256 {})", path.display(), &sha[..16]),
    ))
}

/// A linear probe per generating factor: least squares (ridge 1e-3) from the codes and a bias,
/// fitted on the training codes, scored on the test codes.
fn factor_probe(net: &Compiled, train: &Dataset, test: &Dataset) -> Option<Vec<(String, f64)>> {
    let ((names, ftrain), (_, ftest)) = (train.factors.as_ref()?, test.factors.as_ref()?);
    let with_bias = |x: &Tensor| {
        let z = encode_all(net, x)
            .to_kind(Kind::Double)
            .to_device(Device::Cpu);
        Tensor::cat(&[z.ones_like().narrow(1, 0, 1), z], 1)
    };
    let (ztr, zte) = (with_bias(&train.x()), with_bias(&test.x()));
    let k = ztr.size()[1];
    let gram = ztr.tr().matmul(&ztr) + Tensor::eye(k, (Kind::Double, Device::Cpu)) * 1e-3;
    let fit = |y: &Tensor| -> Tensor { Tensor::linalg_solve(&gram, &ztr.tr().matmul(y), true) };
    let (ftr, fte) = (
        ftrain.to_kind(Kind::Double).to_device(Device::Cpu),
        ftest.to_kind(Kind::Double).to_device(Device::Cpu),
    );
    let mut out = vec![];
    for (j, name) in names.iter().enumerate() {
        let (ytr, yte) = (ftr.narrow(1, j as i64, 1), fte.narrow(1, j as i64, 1));
        let score = if name == "shape" {
            let classes = ytr.max().int64_value(&[]) + 1;
            let onehot = ytr
                .squeeze_dim(1)
                .to_kind(Kind::Int64)
                .one_hot(classes)
                .to_kind(Kind::Double);
            let pred = zte.matmul(&fit(&onehot)).argmax(1, false);
            pred.eq_tensor(&yte.squeeze_dim(1).to_kind(Kind::Int64))
                .to_kind(Kind::Double)
                .mean(Kind::Double)
                .double_value(&[])
        } else {
            let pred = zte.matmul(&fit(&ytr));
            let resid = (&yte - pred).square().sum(Kind::Double).double_value(&[]);
            let total = (&yte - yte.mean(Kind::Double))
                .square()
                .sum(Kind::Double)
                .double_value(&[]);
            1.0 - resid / total.max(1e-12)
        };
        out.push((name.clone(), score));
    }
    Some(out)
}

/// The debiased Sinkhorn divergence between decoded prior samples and test data (1000 each), and
/// its epsilon.
fn data_sinkhorn(model: &ir::Model, net: &Compiled, test: &Dataset, seed: i64) -> (f64, f64) {
    tch::manual_seed(seed.wrapping_add(99));
    let k = test.len().min(1000);
    let gen = sample(net, k).flatten(1, -1).to_kind(Kind::Double);
    let real = test.head(k).flatten(1, -1).to_kind(Kind::Double);
    let eps = if model.data.is_image() { 1.0 } else { 0.05 };
    let o = ot::SinkhornOptions {
        epsilon: eps,
        iterations: 500,
        tolerance: 1e-3,
        scaling: 0.7,
        envelope: true,
    };
    let value = tch::no_grad(|| {
        ot::debiased(&gen, &real, ir::LatentCost::Euclidean { p: 2.0 }, &o)
            .0
            .double_value(&[])
    });

    (value, eps)
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |e| EvalError::Io(format!("{}: {e}", path.display()))
}
