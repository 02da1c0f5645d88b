//! Stage 5, `eval`: the metrics and pictures of a trained run, computed the same way for every
//! model so that runs can be compared.
//!
//! Entry points: [`open_run`] loads a run directory; [`evaluate`] computes the metrics and writes
//! `summary.json`; [`draw`] writes the pictures. FID here uses a small MNIST-trained CNN as the
//! feature extractor (the SAE paper's choice), NOT the Inception network: every output says so.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::backend::Compiled;
use crate::classifier::{frechet_distance, Classifier};
use crate::data::{self, Dataset};
use crate::ir::{self, PenaltyKind, Prior, Space};
use crate::plot::{self, Series, PALETTE};
use crate::{ot, util::write_atomic};

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
    let crate::train::RunRecord {
        model,
        source,
        config,
    } = crate::train::read_run_record(dir).map_err(fail)?;
    let config = config.unwrap_or(serde_json::Value::Null);
    let mut vs = nn::VarStore::new(device);
    let net = Compiled::new(&vs, &model);
    let ck = dir.join("checkpoint.safetensors");
    if !ck.is_file() {
        return Err(fail(
            "no checkpoint.safetensors yet: the run has not finished an epoch".into(),
        ));
    }
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
    pub fid_note: Option<String>,
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
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    pub quiet: bool,
    /// Number of generated samples for FID and coverage (default 10,000).
    pub samples: Option<i64>,
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
    let device = net.device;
    tch::manual_seed(seed.wrapping_add(4242));
    let (test_recon, test_mse) = tch::no_grad(|| crate::train::evaluate(net, &test.x));
    // Latent MMD x 1000 between the encoded test set and as many prior samples.
    let codes = encode_all(net, &test.x);
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
    let (mut fid, mut acc, mut hist, mut entropy) = (None, None, None, None);
    if model.data.is_image() && model.data.shape == [1, 28, 28] {
        if let (Some(ty), Some(sy)) = (&train.labels, &test.labels) {
            let name = match &model.data.source {
                ir::DataSource::Idx { dir, .. } => dir.clone(),
                _ => "data".into(),
            };
            let c = Classifier::get(&name, (&train.x, ty), (&test.x, sy), device, opts.quiet)
                .map_err(EvalError::Io)?;
            tch::manual_seed(seed.wrapping_add(777));
            let samples = sample(net, n_samples);
            fid = Some(frechet_distance(
                &c.features(&test.x),
                &c.features(&samples),
            ));
            acc = Some(c.test_accuracy);
            let pred = c.predict(&samples);
            let counts = pred.bincount::<&Tensor>(None, 10).to_kind(Kind::Double);
            let shares = &counts / counts.sum(Kind::Double);
            let v: Vec<f64> =
                Vec::<f64>::try_from(shares.to_device(Device::Cpu)).unwrap_or_default();
            entropy = Some(
                -v.iter()
                    .filter(|p| **p > 0.0)
                    .map(|p| p * p.log2())
                    .sum::<f64>(),
            );
            hist = Some(v);
        }
    }
    // Debiased Sinkhorn divergence in data space, 1000 vs 1000.
    tch::manual_seed(seed.wrapping_add(99));
    let k = test.len().min(1000);
    let gen = sample(net, k).flatten(1, -1).to_kind(Kind::Double);
    let real = test.x.narrow(0, 0, k).flatten(1, -1).to_kind(Kind::Double);
    let eps = if model.data.is_image() { 1.0 } else { 0.05 };
    let o = ot::SinkhornOptions {
        epsilon: eps,
        iterations: 500,
        tolerance: 1e-3,
        scaling: 0.7,
        envelope: true,
    };
    let data_sinkhorn = tch::no_grad(|| {
        ot::debiased(&gen, &real, ir::LatentCost::Euclidean { p: 2.0 }, &o)
            .0
            .double_value(&[])
    });

    let prev: Option<serde_json::Value> = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let epochs = std::fs::read_to_string(dir.join("metrics.jsonl"))
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
        fid_note: fid.map(|_| FID_NOTE.to_string()),
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
    write_atomic(&dir.join("summary.json"), text.as_bytes())
        .map_err(|e| EvalError::Io(format!("{}: {e}", dir.display())))?;
    Ok(summary)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |e| EvalError::Io(format!("{}: {e}", path.display()))
}

fn images(t: &Tensor, h: i64, w: i64) -> Vec<Vec<f32>> {
    let t = t
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .reshape([-1, h * w]);
    (0..t.size()[0])
        .map(|i| Vec::<f32>::try_from(t.get(i)).unwrap_or_default())
        .collect()
}

/// Writes images `[N, C, H, W]` of the model's data shape as a titled grid with `cols` columns.
fn image_grid(
    path: &Path,
    title: &str,
    t: &Tensor,
    model: &ir::Model,
    cols: usize,
    zoom: usize,
) -> Result<(), EvalError> {
    let (h, w) = (model.data.shape[1], model.data.shape[2]);
    let rows: Vec<(String, Vec<Vec<f32>>)> = images(t, h, w)
        .chunks(cols.max(1))
        .map(|c| (String::new(), c.to_vec()))
        .collect();
    plot::image_rows(path, title, &rows, h as usize, w as usize, zoom).map_err(io(path))
}

fn points(t: &Tensor) -> Vec<(f64, f64)> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Double);
    let v: Vec<f64> =
        Vec::<f64>::try_from(t.narrow(1, 0, 2).contiguous().flatten(0, -1)).unwrap_or_default();
    v.chunks(2).map(|c| (c[0], c[1])).collect()
}

/// 2-D coordinates of latent codes: the codes themselves in 2-D, a regular-polygon projection for
/// the simplex, the first two principal components otherwise. Returns the axis names.
pub fn project_2d(codes: &Tensor, space: Space) -> (Tensor, &'static str, &'static str) {
    let codes = codes.to_kind(Kind::Double);
    let d = codes.size()[1];
    if let Space::Simplex { dim } = space {
        let ang = Tensor::arange(dim, (Kind::Double, codes.device()))
            * (2.0 * std::f64::consts::PI / dim as f64);
        let verts = Tensor::stack(&[ang.sin(), ang.cos()], 1);
        return (
            codes.matmul(&verts),
            "simplex projection x",
            "simplex projection y",
        );
    }
    if d == 2 {
        return (codes, "z1", "z2");
    }
    let centred = &codes - codes.mean_dim(0, true, Kind::Double);
    let cov = centred.tr().matmul(&centred);
    let (_, vecs) = cov.linalg_eigh("L");
    let top = vecs.narrow(1, d - 2, 2).flip([1]);
    (
        centred.matmul(&top),
        "principal component 1",
        "principal component 2",
    )
}

/// Writes the pictures of a run: loss curves, samples, reconstructions, vertices (simplex),
/// latent codes by label, the decoded manifold (2-D latents), an interpolation strip.
pub fn draw(
    dir: &Path,
    model: &ir::Model,
    net: &Compiled,
    train: &Dataset,
    test: &Dataset,
) -> Result<(), EvalError> {
    loss_curves(dir)?;
    let image = model.data.is_image();
    let (h, w) = if image {
        (model.data.shape[1], model.data.shape[2])
    } else {
        (0, 0)
    };
    tch::no_grad(|| -> Result<(), EvalError> {
        if image {
            image_grid(
                &dir.join("samples.png"),
                &format!("{}: prior samples, decoded", model.name),
                &sample(net, 64),
                model,
                8,
                2,
            )?;
            let k = test.len().min(32);
            let x = test.x.narrow(0, 0, k);
            let r = net.decode(&net.encode(&x, false), false);
            let (xi, ri) = (images(&x, h, w), images(&r, h, w));
            let mut rows = vec![];
            for c in 0..(k as usize).div_ceil(8) {
                let range = c * 8..((c + 1) * 8).min(k as usize);
                rows.push(("input".to_string(), xi[range.clone()].to_vec()));
                rows.push(("recon.".to_string(), ri[range].to_vec()));
            }
            plot::image_rows(
                &dir.join("reconstructions.png"),
                &format!("{}: test images and reconstructions", model.name),
                &rows,
                h as usize,
                w as usize,
                2,
            )
            .map_err(io(dir))?;
            if let Space::Simplex { dim } = model.space() {
                let vertices = net.decode(&Tensor::eye(dim, (Kind::Float, net.device)), false);
                image_grid(
                    &dir.join("vertices.png"),
                    &format!("{}: the {dim} simplex vertices, decoded", model.name),
                    &vertices,
                    model,
                    8,
                    2,
                )?;
            }
            interpolation(&dir.join("interpolation.png"), model, net, test, 0, 1, 10)?;
        } else {
            let many = sample(net, 1000);
            let data = train.x.narrow(0, 0, train.len().min(1000));
            let rec = net.decode(&net.encode(&data, false), false);
            let g = |name: &str, c: usize, t: &Tensor| Series {
                name: name.into(),
                color: PALETTE[c],
                points: points(t),
            };
            plot::scatter(
                &dir.join("samples.png"),
                &format!("{}: data and decoded prior samples", model.name),
                "x1",
                "x2",
                &[g("data", 7, &data), g("samples", 3, &many)],
            )
            .map_err(io(dir))?;
            plot::scatter(
                &dir.join("reconstructions.png"),
                &format!("{}: data and reconstructions", model.name),
                "x1",
                "x2",
                &[g("data", 7, &data), g("reconstructions", 0, &rec)],
            )
            .map_err(io(dir))?;
        }
        // Latent codes of the test set coloured by label.
        let k = test.len().min(5000);
        let codes = encode_all(net, &test.x.narrow(0, 0, k));
        let (xy, xl, yl) = project_2d(&codes, model.space());
        let labels: Vec<i64> = test
            .labels
            .as_ref()
            .map(|l| {
                Vec::<i64>::try_from(l.narrow(0, 0, k).to_device(Device::Cpu)).unwrap_or_default()
            })
            .unwrap_or_default();
        let pts = points(&xy);
        let mut groups: Vec<Series> = vec![];
        let max_label = labels.iter().copied().max().unwrap_or(0).clamp(0, 9);
        for c in 0..=max_label {
            let p: Vec<(f64, f64)> = pts
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == c)
                .map(|(p, _)| *p)
                .collect();
            if !p.is_empty() {
                groups.push(Series {
                    name: format!("label {c}"),
                    color: PALETTE[c as usize % 10],
                    points: p,
                });
            }
        }
        if labels.is_empty() {
            groups.push(Series {
                name: "codes".into(),
                color: PALETTE[0],
                points: pts,
            });
        }
        plot::scatter(
            &dir.join("latent.png"),
            &format!("{}: test codes by label", model.name),
            xl,
            yl,
            &groups,
        )
        .map_err(io(dir))?;
        if model.space().dim() == 2 {
            manifold(&dir.join("manifold.png"), model, net, &codes)?;
        }
        Ok(())
    })
}

/// Loss per term over epochs, from `metrics.jsonl`.
pub fn loss_curves(dir: &Path) -> Result<(), EvalError> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let series = |key: &str, c: usize, name: &str| Series {
        name: name.into(),
        color: PALETTE[c],
        points: rows
            .iter()
            .filter_map(|r| Some((r["epoch"].as_f64()?, r[key].as_f64()?)))
            .collect(),
    };
    let all = [
        series("recon", 0, "reconstruction"),
        series("penalty", 1, "gamma x penalty"),
        series("total", 3, "total"),
    ];
    let positive = all.iter().all(|s| s.points.iter().all(|p| p.1 > 0.0));
    plot::line_chart(
        &dir.join("loss_curves.png"),
        "training losses per epoch",
        "epoch",
        "mean loss per step",
        &all,
        positive,
    )
    .map_err(io(dir))
}

/// The path between two test examples' codes: linear in R^d, great circle on the sphere,
/// straight on the simplex; `steps` points including both ends.
pub fn latent_path(a: &Tensor, b: &Tensor, space: Space, steps: i64) -> Tensor {
    let t = Tensor::linspace(0.0, 1.0, steps, (Kind::Float, a.device())).unsqueeze(1);
    match space {
        Space::Sphere { .. } => {
            let cos = (a * b).sum(Kind::Float).clamp(-1.0 + 1e-6, 1.0 - 1e-6);
            let omega = cos.acos();
            let so = omega.sin();
            let one_minus_t: Tensor = 1.0 - &t;
            let wa = (one_minus_t * &omega).sin() / &so;
            let wb = (&t * &omega).sin() / &so;
            wa * a.unsqueeze(0) + wb * b.unsqueeze(0)
        }
        _ => {
            let one_minus_t: Tensor = 1.0 - &t;
            one_minus_t * a.unsqueeze(0) + &t * b.unsqueeze(0)
        }
    }
}

/// An interpolation strip between test examples `i` and `j`.
pub fn interpolation(
    path: &Path,
    model: &ir::Model,
    net: &Compiled,
    test: &Dataset,
    i: i64,
    j: i64,
    steps: i64,
) -> Result<(), EvalError> {
    let n = test.len();
    if i < 0 || j < 0 || i >= n || j >= n {
        return Err(EvalError::Io(format!(
            "--from {i} --to {j}: the test set has {n} examples (0 to {})",
            n - 1
        )));
    }
    if !model.data.is_image() {
        return Err(EvalError::Io(
            "interpolation strips are drawn for image data".into(),
        ));
    }
    let (h, w) = (model.data.shape[1], model.data.shape[2]);
    tch::no_grad(|| {
        let x = Tensor::stack(&[test.x.get(i), test.x.get(j)], 0);
        let z = net.encode(&x, false);
        // Each component along its own space's path (a great circle for a sphere component).
        let mut off = 0;
        let mut parts = vec![];
        for l in &model.latents {
            let d = l.space.dim();
            let (a, b) = (z.get(0).narrow(0, off, d), z.get(1).narrow(0, off, d));
            parts.push(latent_path(&a, &b, l.space, steps));
            off += d;
        }
        let path_z = Tensor::cat(&parts, 1);
        let imgs = images(&net.decode(&path_z, false), h, w);
        let how = match model.space() {
            Space::Sphere { .. } => "great circle",
            Space::Simplex { .. } => "straight line in the simplex",
            Space::Euclidean { .. } => "straight line",
        };
        let ends = images(&x, h, w);
        let rows = vec![
            ("decoded".to_string(), imgs),
            ("inputs".to_string(), vec![ends[0].clone(), ends[1].clone()]),
        ];
        plot::image_rows(
            path,
            &format!("{}: test {i} to {j}, {how}", model.name),
            &rows,
            h as usize,
            w as usize,
            2,
        )
    })
    .map_err(io(path))
}

/// For a 2-D latent: images decoded on a grid over the codes' range (or decoded points for data
/// in the plane).
fn manifold(
    path: &Path,
    model: &ir::Model,
    net: &Compiled,
    codes: &Tensor,
) -> Result<(), EvalError> {
    let k = 12;
    let q = |c: i64, p: f64| {
        codes
            .select(1, c)
            .to_kind(Kind::Float)
            .quantile_scalar(p, None, false, "linear")
            .double_value(&[])
    };
    let (x0, x1, y0, y1) = (q(0, 0.02), q(0, 0.98), q(1, 0.02), q(1, 0.98));
    let xs = Tensor::linspace(x0, x1, k, (Kind::Float, net.device));
    let ys = Tensor::linspace(y1, y0, k, (Kind::Float, net.device));
    let grid = Tensor::stack(
        &[
            xs.unsqueeze(0).expand([k, k], false),
            ys.unsqueeze(1).expand([k, k], false),
        ],
        2,
    )
    .reshape([-1, 2]);
    let out = net.decode(&grid, false);
    if model.data.is_image() {
        let title = format!(
            "{}: decoded latent grid [{x0:.1}, {x1:.1}] x [{y0:.1}, {y1:.1}]",
            model.name
        );
        image_grid(path, &title, &out, model, k as usize, 1)
    } else {
        let s = [Series {
            name: "decoded grid".into(),
            color: PALETTE[0],
            points: points(&out),
        }];
        plot::scatter(
            path,
            &format!("{}: latent grid, decoded", model.name),
            "x1",
            "x2",
            &s,
        )
        .map_err(io(path))
    }
}

/// Writes `n` decoded prior samples to `out`: `.npy` (uint8 images, or float32 points) or `.png`.
pub fn write_samples(
    net: &Compiled,
    model: &ir::Model,
    n: i64,
    out: &Path,
) -> Result<(), EvalError> {
    let s = sample(net, n);
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "npy" if model.data.is_image() => {
            let (h, w) = (model.data.shape[1], model.data.shape[2]);
            let u8s = (s.clamp(0.0, 1.0) * 255.0)
                .round()
                .to_kind(Kind::Uint8)
                .reshape([n, h, w])
                .to_device(Device::Cpu);
            let v: Vec<u8> = Vec::<u8>::try_from(u8s.flatten(0, -1)).unwrap_or_default();
            write_atomic(
                out,
                &crate::npy::encode_u8(&[n as usize, h as usize, w as usize], &v),
            )
            .map_err(io(out))
        }
        "npy" => {
            let d = s.size()[1];
            let v: Vec<f32> =
                Vec::<f32>::try_from(s.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default();
            write_atomic(out, &crate::npy::encode_f32(&[n as usize, d as usize], &v))
                .map_err(io(out))
        }
        "png" if model.data.is_image() => {
            let cols = (n as f64).sqrt().ceil() as usize;
            image_grid(
                out,
                &format!("{}: {n} prior samples", model.name),
                &s,
                model,
                cols,
                2,
            )
        }
        "png" => plot::scatter(
            out,
            &format!("{}: {n} prior samples", model.name),
            "x1",
            "x2",
            &[Series {
                name: "samples".into(),
                color: PALETTE[3],
                points: points(&s),
            }],
        )
        .map_err(io(out)),
        _ => Err(EvalError::Io(format!(
            "{}: write samples as .npy or .png",
            out.display()
        ))),
    }
}

/// The `compare` table: one row per run, from its `summary.json`.
pub fn compare(dirs: &[PathBuf]) -> Result<(String, String), EvalError> {
    let mut rows = vec![];
    for d in dirs {
        let text = std::fs::read_to_string(d.join("summary.json")).map_err(|e| EvalError::Run {
            dir: d.display().to_string(),
            what: format!(
                "summary.json: {e} (run `sae-dsl eval {}` first)",
                d.display()
            ),
        })?;
        let s: Summary = serde_json::from_str(&text).map_err(|e| EvalError::Run {
            dir: d.display().to_string(),
            what: format!(
                "summary.json is not an evaluation summary ({e}); run `sae-dsl eval {}`",
                d.display()
            ),
        })?;
        rows.push((d.clone(), s));
    }
    let fmt_opt = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |x| format!("{x:.p$}"));
    let mut md = String::from("| run | method | prior | gamma | MMD x1000 | reconstruction (MSE) | FID (MNIST CNN) | sample entropy (bits) | epochs |\n|---|---|---|---|---|---|---|---|---|\n");
    let mut csv = String::from(
        "run,method,prior,gamma,mmd_x1000,recon_mse,fid_cnn,sample_entropy_bits,epochs\n",
    );
    for (d, s) in &rows {
        let name = d
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {:.2} | {:.4} | {} | {} | {} |\n",
            s.method,
            s.prior,
            ir::num(s.gamma),
            s.latent_mmd_x1000,
            s.test_mse,
            fmt_opt(s.fid_cnn, 2),
            fmt_opt(s.sample_label_entropy_bits, 2),
            s.epochs
        ));
        csv.push_str(&format!(
            "{name},{},{},{},{:.6},{:.6},{},{},{}\n",
            s.method,
            s.prior,
            s.gamma,
            s.latent_mmd_x1000,
            s.test_mse,
            s.fid_cnn.map_or(String::new(), |v| format!("{v:.6}")),
            s.sample_label_entropy_bits
                .map_or(String::new(), |v| format!("{v:.6}")),
            s.epochs
        ));
    }
    if rows.iter().any(|(_, s)| s.fid_cnn.is_some()) {
        md.push_str(&format!("\nFID: {FID_NOTE}.\n"));
    }
    Ok((md, csv))
}

/// The `geodesic` command: straight and geodesic interpolation between test examples `i` and
/// `j`; writes geodesic-I-J.png (two strips with their lengths), geodesic-I-J.json and, for 2-D
/// latents, magnification-I-J.png. Returns the JSON.
pub fn geodesic(
    dir: &Path,
    model: &ir::Model,
    net: &Compiled,
    test: &Dataset,
    i: i64,
    j: i64,
    points: i64,
) -> Result<serde_json::Value, EvalError> {
    use crate::geometry;
    let n = test.len();
    if i < 0 || j < 0 || i >= n || j >= n || i == j {
        return Err(EvalError::Io(format!(
            "--from {i} --to {j}: pick two different test examples between 0 and {}",
            n - 1
        )));
    }
    let x = Tensor::stack(&[test.x.get(i), test.x.get(j)], 0);
    let z = tch::no_grad(|| net.encode(&x, false));
    let f = |zz: &Tensor| net.decode(zz, false);
    let space = model.space();
    let g = geometry::solve(
        &f,
        &z.get(0),
        &z.get(1),
        space,
        points,
        &geometry::Options::default(),
    );
    let straight = geometry::initial_curve(&z.get(0), &z.get(1), space, points);
    let json = geometry::report_json(i, j, space, &straight, &g, &f);
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    let jpath = dir.join(format!("geodesic-{i}-{j}.json"));
    write_atomic(&jpath, text.as_bytes()).map_err(io(&jpath))?;
    let ppath = dir.join(format!("geodesic-{i}-{j}.png"));
    tch::no_grad(|| -> Result<(), EvalError> {
        if model.data.is_image() {
            let (h, w) = (model.data.shape[1], model.data.shape[2]);
            let pick = |c: &Tensor| {
                let k = c.size()[0];
                let idx: Vec<i64> = (0..12).map(|t| (t * (k - 1) + 5) / 11).collect();
                c.index_select(0, &Tensor::from_slice(&idx).to_device(c.device()))
            };
            let rows = vec![
                (
                    format!("straight {:.2}", g.initial_length),
                    images(&net.decode(&pick(&straight), false), h, w),
                ),
                (
                    format!("geodesic {:.2}", g.length),
                    images(&net.decode(&pick(&g.curve), false), h, w),
                ),
            ];
            plot::image_rows(
                &ppath,
                &format!("{}: test {i} to {j}, lengths in data space", model.name),
                &rows,
                h as usize,
                w as usize,
                2,
            )
            .map_err(io(&ppath))?;
        } else {
            let s = [
                Series {
                    name: format!("straight, length {:.3}", g.initial_length),
                    color: PALETTE[7],
                    points: points_of(&net.decode(&straight, false)),
                },
                Series {
                    name: format!("geodesic, length {:.3}", g.length),
                    color: PALETTE[3],
                    points: points_of(&net.decode(&g.curve, false)),
                },
            ];
            plot::scatter(
                &ppath,
                &format!("{}: decoded curves {i} to {j}", model.name),
                "x1",
                "x2",
                &s,
            )
            .map_err(io(&ppath))?;
        }
        Ok(())
    })?;
    if space.dim() == 2 {
        let pts = |c: &Tensor| points_of(c);
        let all = Tensor::cat(
            &[
                straight.shallow_clone(),
                g.curve.shallow_clone(),
                encode_all(net, &test.x.narrow(0, 0, n.min(2000))),
            ],
            0,
        );
        let q = |c: i64, p: f64| {
            all.select(1, c)
                .to_kind(Kind::Float)
                .quantile_scalar(p, None, false, "linear")
                .double_value(&[])
        };
        let (x0, x1, y0, y1) = (q(0, 0.01), q(0, 0.99), q(1, 0.01), q(1, 0.99));
        let pad = |a: f64, b: f64| ((b - a) * 0.1).max(1e-3);
        let (x0, x1, y0, y1) = (
            x0 - pad(x0, x1),
            x1 + pad(x0, x1),
            y0 - pad(y0, y1),
            y1 + pad(y0, y1),
        );
        let k = 48;
        let xs = Tensor::linspace(x0, x1, k, (Kind::Float, net.device));
        let ys = Tensor::linspace(y1, y0, k, (Kind::Float, net.device));
        // Cell centres, first row at the top.
        let cx = (xs.narrow(0, 0, k - 1) + xs.narrow(0, 1, k - 1)) / 2.0;
        let cy = (ys.narrow(0, 0, k - 1) + ys.narrow(0, 1, k - 1)) / 2.0;
        let m = k - 1;
        let grid = Tensor::stack(
            &[
                cx.unsqueeze(0).expand([m, m], false),
                cy.unsqueeze(1).expand([m, m], false),
            ],
            2,
        )
        .reshape([-1, 2]);
        let mag = geometry::magnification(&f, &grid).clamp_min(1e-300).log10();
        let vals: Vec<f64> = Vec::<f64>::try_from(mag.to_device(Device::Cpu)).unwrap_or_default();
        let curves = [
            Series {
                name: format!("straight {:.2}", g.initial_length),
                color: [0, 0, 0],
                points: pts(&straight),
            },
            Series {
                name: format!("geodesic {:.2}", g.length),
                color: [230, 30, 30],
                points: pts(&g.curve),
            },
        ];
        let mpath = dir.join(format!("magnification-{i}-{j}.png"));
        plot::heatmap(
            &mpath,
            &format!("{}: log10 magnification factor", model.name),
            "z1",
            "z2",
            (x0, x1),
            (y0, y1),
            m as usize,
            &vals,
            "log10 sqrt(det M)",
            &curves,
        )
        .map_err(io(&mpath))?;
    }
    Ok(json)
}

fn points_of(t: &Tensor) -> Vec<(f64, f64)> {
    points(&t.detach())
}

/// Writes prior samples `z` ([n, d]) as DIR/NAME.npy (float32) and DIR/NAME.png: a scatter for
/// 2-D, the polygon projection for a simplex, pairwise scatters of the first (up to 4)
/// coordinates otherwise. Returns the files written.
pub fn write_prior_samples(
    z: &Tensor,
    space: Space,
    title: &str,
    dir: &Path,
    name: &str,
) -> Result<Vec<std::path::PathBuf>, EvalError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let z = z.to_device(Device::Cpu).to_kind(Kind::Float);
    let (n, d) = (z.size()[0], z.size()[1]);
    let npy = dir.join(format!("{name}.npy"));
    let v: Vec<f32> = Vec::<f32>::try_from(z.flatten(0, -1)).unwrap_or_default();
    write_atomic(&npy, &crate::npy::encode_f32(&[n as usize, d as usize], &v)).map_err(io(&npy))?;
    let png = dir.join(format!("{name}.png"));
    let points = |x: &Tensor, y: &Tensor| -> Vec<(f64, f64)> {
        let x = Vec::<f64>::try_from(x.to_kind(Kind::Double)).unwrap_or_default();
        let y = Vec::<f64>::try_from(y.to_kind(Kind::Double)).unwrap_or_default();
        x.into_iter().zip(y).collect()
    };
    let series = |pts: Vec<(f64, f64)>| {
        vec![plot::Series {
            name: format!("{n} samples"),
            color: plot::PALETTE[0],
            points: pts,
        }]
    };
    let caption = format!("{title} on {space}");
    if matches!(space, Space::Simplex { .. }) || d <= 2 {
        let (xy, xl, yl) = if d == 1 {
            (
                Tensor::cat(
                    &[
                        z.shallow_clone(),
                        Tensor::zeros([n, 1], (Kind::Float, Device::Cpu)),
                    ],
                    1,
                ),
                "z1",
                "",
            )
        } else {
            let (xy, xl, yl) = project_2d(&z, space);
            (xy, xl, yl)
        };
        let pts = points(&xy.select(1, 0), &xy.select(1, 1));
        plot::scatter(&png, &caption, xl, yl, &series(pts)).map_err(io(&png))?;
    } else {
        // Pairwise scatters of the first coordinates, side by side.
        let k = d.min(4);
        let pairs: Vec<(i64, i64)> = (0..k)
            .flat_map(|i| (i + 1..k).map(move |j| (i, j)))
            .collect();
        let size = 320;
        let cols = pairs.len().min(3);
        let rows = pairs.len().div_ceil(cols);
        let mut canvas = plot::Canvas::new(cols * (size + 40), rows * size + 24);
        canvas.text(8, 6, &caption, plot::BLACK, 2);
        for (idx, (i, j)) in pairs.iter().enumerate() {
            let pts = points(&z.select(1, *i), &z.select(1, *j));
            let f = plot::scatter_frame(
                "",
                &format!("z{}", i + 1),
                &format!("z{}", j + 1),
                &series(pts),
                size,
            );
            canvas.blit(
                &f.canvas,
                (idx % cols) * (size + 40),
                24 + (idx / cols) * size,
            );
        }
        canvas.save(&png).map_err(io(&png))?;
    }
    Ok(vec![npy, png])
}
