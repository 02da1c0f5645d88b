//! Parity with PyTorch (issue 13): the reference autoencoder of `../shared/bench/sae_reference.py`
//! declared in sae-dsl and written in PyTorch (`tests/parity/step_parity.py`) starts from the same
//! weights (PyTorch's, exported by the script and read with `--init-from`'s loader), sees the same
//! batches, prior draws, sliced directions and Gaussian noise, and after 5 Adam steps has the
//! same losses and parameters: float64 to 1e-9 relative; in float32 (with tanh and Adam eps 1e-3,
//! see [`setting`]), losses to 1e-4 and the trained function at most as far from the exact
//! (float64) trajectory as PyTorch's own float32 runs (see [`compare`]). Also: freshly initialised layers of every kind follow PyTorch's
//! distributions. The bounds hold under every ATen CPU variant (`ATEN_CPU_CAPABILITY=default`,
//! `avx2`, `avx512`) and with 1 or 2 threads (issue 31).
//!
//! The PyTorch side needs Python 3 and the torch package that `scripts/setup.sh` installs (the
//! cached wheel is a complete Python package). Without a Python 3 the tests say so and skip;
//! with one, a missing torch is a failure.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sae_dsl::ir::Init;
use sae_dsl::runtime::init::{fans, layer_inits};
use sae_dsl::runtime::model::{Compiled, Draws};
use sae_dsl::runtime::optim::Adam;
use sae_dsl::{compile_source, ir, train};
use serde_json::json;
use tch::{nn, Device, Kind, Tensor};

const STEPS: i64 = 5;
const BATCH: i64 = 8;
const LATENT: i64 = 16;
const GAMMA: f64 = 7.84;
const LR: f64 = 1e-3;
/// PyTorch float32 runs per case from weights moved by one unit in the last place: they sample
/// how far rounding alone carries a float32 run from the exact trajectory.
const NUDGES: i64 = 4;

/// The network's activation and Adam's epsilon in the trajectories: the reference network as
/// PyTorch's defaults have it (ReLU, eps 1e-8) in float64; `tanh` and eps 1e-3 in float32.
///
/// Why another setting in float32: its purpose is to show that sae-dsl's float32 rounding carries
/// a run no further from the exact trajectory than PyTorch's does, and with ReLU and eps 1e-8
/// rounding decides discrete events whose size has nothing to do with accuracy. Adam's step
/// lr g / (|g| + eps) has a sensitivity of up to lr / eps to a rounding error in g: at 1e-8 a
/// weight whose exact gradient lies near float32's rounding of it (measured in `mmd`: encoder.l2
/// element 7918 after one step) moves by up to the whole learning rate in a direction that the
/// summation order picks; sae-dsl's channels-last convolutions and PyTorch's contiguous ones sum
/// in different orders, so the two programs, and PyTorch's own nudged runs among themselves
/// (1.31e-3 against 1.2e-4 under `avx2`), landed on either side by chance. And a ReLU whose
/// pre-activation lies within rounding of 0 (the exact trajectory has some within 1e-7 at every
/// step) is on or off by chance: the sphere case's error was 2e-6 or 8.5e-5, nothing between,
/// for sae-dsl and PyTorch alike, by CPU variant and thread count. With eps 1e-3 Adam's step is
/// smooth in g, and tanh has no kink: every run's error is then a continuous function of its
/// rounding, and the bound below holds on every CPU variant and thread count. The float64 test
/// keeps the reference setting, where the algorithms must agree to 1e-9.
fn setting(kind: Kind) -> (&'static str, f64) {
    if kind == Kind::Double {
        ("relu", 1e-8)
    } else {
        ("tanh", 1e-3)
    }
}

/// One training setting compared with PyTorch.
struct Case {
    name: &'static str,
    /// The encoder's end: linear, softmax, normalize or gaussian.
    head: &'static str,
    space: &'static str,
    penalty_sae: &'static str,
    penalty_py: serde_json::Value,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "sinkhorn_unrolled",
            head: "linear",
            space: "R^16 ~ normal()",
            penalty_sae: "sinkhorn(epsilon = 1, iterations = 20)",
            penalty_py: json!({"kind": "sinkhorn", "epsilon": 1.0, "iterations": 20, "gradient": "unrolled"}),
        },
        Case {
            name: "sinkhorn_envelope",
            head: "linear",
            space: "R^16 ~ normal()",
            penalty_sae: "sinkhorn(epsilon = 1, iterations = 20, gradient = \"envelope\")",
            penalty_py: json!({"kind": "sinkhorn", "epsilon": 1.0, "iterations": 20, "gradient": "envelope"}),
        },
        // Small epsilon: the log-domain iterations in float32, the kernel form in float64.
        Case {
            name: "sinkhorn_simplex",
            head: "softmax",
            space: "simplex(16) ~ dirichlet(alpha = 0.2)",
            penalty_sae: "sinkhorn(epsilon = 0.02, iterations = 20)",
            penalty_py: json!({"kind": "sinkhorn", "epsilon": 0.02, "iterations": 20, "gradient": "unrolled"}),
        },
        Case {
            name: "sinkhorn_sphere",
            head: "normalize",
            space: "S^15 ~ uniform_sphere()",
            penalty_sae: "sinkhorn(epsilon = 0.1, iterations = 20, metric = \"euclidean\")",
            penalty_py: json!({"kind": "sinkhorn", "epsilon": 0.1, "iterations": 20, "gradient": "unrolled"}),
        },
        Case {
            name: "mmd",
            head: "linear",
            space: "R^16 ~ normal()",
            penalty_sae: "mmd(kernel = \"imq\", sigma = 1)",
            penalty_py: json!({"kind": "mmd", "sigma": 1.0}),
        },
        Case {
            name: "sliced",
            head: "linear",
            space: "R^16 ~ normal()",
            penalty_sae: "sliced(projections = 12, p = 2)",
            penalty_py: json!({"kind": "sliced", "p": 2.0}),
        },
        Case {
            name: "kl",
            head: "gaussian",
            space: "R^16 ~ normal()",
            penalty_sae: "kl()",
            penalty_py: json!({"kind": "kl"}),
        },
        Case {
            name: "exact",
            head: "linear",
            space: "R^16 ~ normal()",
            penalty_sae: "exact(p = 2)",
            penalty_py: json!({"kind": "exact"}),
        },
    ]
}

/// The model file of a case: sae_reference.py's network.
fn source(c: &Case, act: &str) -> String {
    let end = match c.head {
        "gaussian" => "gaussian(16)".to_string(),
        "linear" => "linear(16)".to_string(),
        other => format!("linear(16) {other}"),
    };
    format!(
        "data mnist()\n\
         latent {space}\n\
         encoder {{ conv2d(32, kernel = 4, stride = 2, padding = 1) {act} conv2d(64, kernel = 4, stride = 2, padding = 1) {act} flatten {end} }}\n\
         generator {{ linear(3136) {act} reshape(64, 7, 7) conv_transpose2d(32, kernel = 4, stride = 2, padding = 1) {act} conv_transpose2d(1, kernel = 4, stride = 2, padding = 1) sigmoid }}\n\
         cost squared_l2\n\
         penalty {GAMMA} * {pen}\n\
         train {{ optimizer adam(lr = {LR}) batch {BATCH} }}\n",
        space = c.space,
        pen = c.penalty_sae,
    )
}

fn compile(text: &str) -> ir::Model {
    let c = compile_source("parity.sae", text, None);
    assert!(!c.has_errors(), "{:?}", c.diags);
    c.model.expect("a model")
}

/// The torch package's folder: the parent of the LIBTORCH the set-up recorded.
fn torch_package() -> Option<PathBuf> {
    let lib = std::env::var_os("LIBTORCH")?;
    Path::new(&lib).parent().map(Path::to_path_buf)
}

/// Runs the PyTorch side once for all tests; None when there is no Python 3.
fn pytorch_side() -> Option<&'static PathBuf> {
    static DONE: OnceLock<Option<PathBuf>> = OnceLock::new();
    DONE.get_or_init(|| {
        let python = ["python3", "python"].into_iter().find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        let Some(python) = python else {
            eprintln!(
                "SKIPPED: no Python 3 on PATH, so the PyTorch side of the parity tests cannot run"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!("sae-parity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut job = vec![];
        for (k, c) in cases().iter().enumerate() {
            // float64ref: the exact trajectory of the float32 setting (see `setting`).
            for (dtype, suffix) in [
                ("float32", "float32"),
                ("float64", "float64"),
                ("float64", "float64ref"),
            ] {
                let name = format!("{}_{suffix}", c.name);
                let (act, eps) = setting(if suffix == "float64" {
                    Kind::Double
                } else {
                    Kind::Float
                });
                write_inputs(&dir, &name, c, k as i64);
                job.push(json!({
                    "name": name, "dtype": dtype, "head": c.head, "latent": LATENT,
                    "penalty": c.penalty_py, "gamma": GAMMA, "lr": LR, "steps": STEPS,
                    "adam_eps": eps, "act": act, "seed": 10 + k as i64,
                    "nudges": if dtype == "float32" { NUDGES } else { 0 },
                }));
            }
        }
        std::fs::write(dir.join("job.json"), json!({ "cases": job }).to_string()).expect("job");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/step_parity.py");
        let mut cmd = Command::new(python);
        cmd.arg("-W").arg("ignore").arg(&script).arg(&dir);
        if let Some(pkg) = torch_package() {
            cmd.env("PYTHONPATH", pkg);
        }
        let out = cmd.output().expect("python runs");
        assert!(
            out.status.success(),
            "the PyTorch side failed (is the torch wheel of scripts/setup.sh there?):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(dir)
    })
    .as_ref()
}

/// The inputs of a case in float64: images in [0, 1], prior draws, noise, unit directions.
fn write_inputs(dir: &Path, name: &str, c: &Case, seed: i64) {
    tch::manual_seed(100 + seed);
    let opts = (Kind::Double, Device::Cpu);
    let x = Tensor::rand([STEPS, BATCH, 1, 28, 28], opts);
    let g = Tensor::randn([STEPS, BATCH, LATENT], opts);
    let w = match c.head {
        "softmax" => {
            // Dirichlet-like points on the simplex.
            let e = Tensor::rand([STEPS, BATCH, LATENT], opts)
                .log()
                .neg()
                .pow_tensor_scalar(5.0);
            &e / e.sum_dim_intlist(-1, true, Kind::Double)
        }
        "normalize" => &g / g.square().sum_dim_intlist(-1, true, Kind::Double).sqrt(),
        _ => g.shallow_clone(),
    };
    let mut tensors = vec![("x".to_string(), x), ("w".to_string(), w)];
    if c.head == "gaussian" {
        tensors.push(("noise".into(), Tensor::randn([STEPS, BATCH, LATENT], opts)));
    }
    if c.name == "sliced" {
        let t = Tensor::randn([STEPS, 12, LATENT], opts);
        let t = &t / t.square().sum_dim_intlist(-1, true, Kind::Double).sqrt();
        tensors.push(("theta".into(), t));
    }
    let dtype = if name.ends_with("float32") {
        Kind::Float
    } else {
        Kind::Double
    };
    let named: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| (n, t.to_kind(dtype)))
        .collect();
    Tensor::write_safetensors(&named, dir.join(format!("{name}.inputs.safetensors")))
        .expect("inputs");
}

fn read(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// sae-dsl's side: the compiled model from PyTorch's initial weights, 5 steps of the training
/// objective (`Compiled::step_terms`, which every training step calls) with our Adam.
fn sae_side(dir: &Path, name: &str, c: &Case, kind: Kind) -> (Vec<f64>, nn::VarStore) {
    let (act, eps) = setting(kind);
    let model = compile(&source(c, act));
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = Compiled::new(&vs, &model);
    if kind == Kind::Double {
        vs.double();
    }
    train::init::load_weights(&mut vs, &dir.join(format!("{name}.init.safetensors")))
        .unwrap_or_else(|e| panic!("{e}"));
    let inputs = read(&dir.join(format!("{name}.inputs.safetensors")));
    let mut opt = Adam::new(&vs, &model.train.optimizer).with_eps(eps);
    let mut losses = vec![];
    for s in 0..STEPS {
        let draws = Draws {
            batch: BATCH,
            prior: Some(inputs["w"].get(s)),
            noise: inputs.get("noise").map(|t| t.get(s)),
            projections: inputs.get("theta").map(|t| t.get(s)),
        };
        let loss = net
            .step_terms(&inputs["x"].get(s), &draws, &mut [], false, false)
            .loss(&model);
        assert_eq!(
            loss.kind(),
            kind,
            "{name}: the loss is computed in the model's precision"
        );
        opt.zero_grad();
        loss.backward();
        opt.step();
        losses.push(loss.double_value(&[]));
    }
    (losses, vs)
}

/// The largest difference between two sets of variables, relative to the largest magnitude of
/// each variable in `reference`, and where it is.
fn param_error(
    ours: &HashMap<String, Tensor>,
    reference: &HashMap<String, Tensor>,
) -> (f64, String) {
    let mut worst = (0.0, String::new());
    for (n, v) in ours {
        let r = reference[n].to_kind(Kind::Double);
        let scale = r.abs().max().double_value(&[]).max(1e-12);
        let e = (v.to_kind(Kind::Double) - &r).abs().max().double_value(&[]) / scale;
        if e > worst.0 {
            worst = (e, n.clone());
        }
    }
    worst
}

/// The network's codes and reconstructions of the probe images `x` with `weights`, computed by
/// sae-dsl's float64 network (which the float64 test holds to PyTorch's at 1e-9).
fn outputs(model: &ir::Model, weights: &HashMap<String, Tensor>, x: &Tensor) -> (Tensor, Tensor) {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = Compiled::new(&vs, model);
    vs.double();
    tch::no_grad(|| {
        for (n, mut v) in vs.variables() {
            v.copy_(&weights[&n].to_kind(Kind::Double));
        }
        let z = net.encode(x, false);
        let xh = net.decode(&z, false);
        (z, xh)
    })
}

/// How far a float32 run's function lies from the exact trajectory's, relative to how far the
/// exact trajectory moved it: for the codes and for the reconstructions of the 40 training
/// images, |f(w) - f(w_exact)| / |f(w_exact) - f(w_init)| (Euclidean norms), the larger of the
/// two. Measured on the function, not the weights: weights have directions that the function
/// does not see (the radius before `normalize`, a constant shift before `softmax`) whose gradient
/// is zero up to rounding, so Adam moves them by rounding-dependent amounts; and a norm over all
/// outputs averages the rounding that a maximum over single weights leaves to one ReLU kink.
struct Probe {
    model: ir::Model,
    x: Tensor,
    exact: (Tensor, Tensor),
    moved: (f64, f64),
}

impl Probe {
    fn new(
        model: ir::Model,
        x: Tensor,
        exact: &HashMap<String, Tensor>,
        init: &HashMap<String, Tensor>,
    ) -> Probe {
        let exact = outputs(&model, exact, &x);
        let start = outputs(&model, init, &x);
        let moved = (
            (&exact.0 - &start.0).norm().double_value(&[]),
            (&exact.1 - &start.1).norm().double_value(&[]),
        );
        Probe {
            model,
            x,
            exact,
            moved,
        }
    }

    fn error(&self, weights: &HashMap<String, Tensor>) -> f64 {
        let (z, xh) = outputs(&self.model, weights, &self.x);
        let ez = (&z - &self.exact.0).norm().double_value(&[]) / self.moved.0.max(1e-300);
        let ex = (&xh - &self.exact.1).norm().double_value(&[]) / self.moved.1.max(1e-300);
        ez.max(ex)
    }
}

/// Float64: losses and parameters after 5 steps within `tol` (1e-9) of PyTorch's: the same
/// operations in float64 (unit roundoff 1.1e-16) in other summation orders differ by a few
/// hundred roundings over the 6,272-term sums and 5 steps, far below 1e-9 (measured: at most
/// 6e-11, sinkhorn_sphere, under every CPU variant), while any difference in the algorithm shows at 1e-3 or more.
///
/// Float32: losses within `tol` (1e-4) of PyTorch's float32 losses: a float32 sum of n = 6,272
/// squared errors is off by at most n u = 3.7e-4 relative and typically sqrt(n) u = 5e-6 (u =
/// 6e-8); measured at most 3.5e-6. Parameters: the function's error ([`Probe`]) from the exact
/// trajectory (PyTorch in float64 with the float32 setting) at most twice the largest of PyTorch's
/// own float32 runs (its run and `NUDGES` runs from weights moved by one rounding each): those
/// five runs sample how far rounding alone carries a correct float32 program, and twice their
/// maximum allows for the sampling of that maximum. No floor: a sae-dsl run worse than
/// PyTorch's by more than 2x fails whatever the figures.
fn compare(kind: Kind, tol: f64) {
    let Some(dir) = pytorch_side() else { return };
    let suffix = if kind == Kind::Double {
        "float64"
    } else {
        "float32"
    };
    let mut report: Vec<String> = vec![];
    let mut failures = vec![];
    for c in cases() {
        let name = format!("{}_{suffix}", c.name);
        let (losses, vs) = sae_side(dir, &name, &c, kind);
        let reference = read(&dir.join(format!("{name}.out.safetensors")));
        let want: Vec<f64> = Vec::<f64>::try_from(&reference["loss"]).expect("losses");
        let loss_err = losses
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1e-12))
            .fold(0.0, f64::max);
        let ours: HashMap<String, Tensor> = vs.variables().into_iter().collect();
        let (param_err, at) = param_error(&ours, &reference);
        let (param_ok, line) = if kind == Kind::Double {
            (
                param_err <= tol,
                format!("parameters {param_err:.2e} ({at})"),
            )
        } else {
            let exact = read(&dir.join(format!("{}_float64ref.out.safetensors", c.name)));
            let init = read(&dir.join(format!("{}_float64ref.init.safetensors", c.name)));
            let restrict = |run: &HashMap<String, Tensor>| -> HashMap<String, Tensor> {
                ours.keys()
                    .map(|k| (k.clone(), run[k].shallow_clone()))
                    .collect()
            };
            let x = read(&dir.join(format!("{}_float64ref.inputs.safetensors", c.name)))["x"]
                .flatten(0, 1);
            let probe = Probe::new(compile(&source(&c, setting(kind).0)), x, &exact, &init);
            let ours_off = probe.error(&ours);
            let torch_off = probe.error(&restrict(&reference));
            let nudged: Vec<f64> = (1..=NUDGES)
                .map(|k| {
                    let run = read(&dir.join(format!("{name}.nudged{k}.safetensors")));
                    probe.error(&restrict(&run))
                })
                .collect();
            let spread = nudged.iter().copied().fold(torch_off, f64::max);
            let nudged: Vec<String> = nudged.iter().map(|e| format!("{e:.2e}")).collect();
            (
                ours_off <= 2.0 * spread,
                format!("parameters vs PyTorch float32 {param_err:.2e} ({at}); function error from the float64 trajectory: sae-dsl {ours_off:.2e}, PyTorch {torch_off:.2e} (nudged: {})", nudged.join(", ")),
            )
        };
        report.push(format!(
            "{name}: losses {loss_err:.2e} (step 5: {:.6} vs {:.6}), {line}",
            losses[4], want[4]
        ));
        if !(loss_err <= tol && param_ok) {
            failures.push(name);
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "beyond {tol:e}: {failures:?}\n{}",
        report.join("\n")
    );
}

#[test]
fn float64_steps_match_pytorch() {
    compare(Kind::Double, 1e-9);
}

#[test]
fn float32_steps_match_pytorch() {
    compare(Kind::Float, 1e-4);
}

/// Two-sample Kolmogorov-Smirnov statistic between two tensors' values.
fn ks(a: &Tensor, b: &Tensor) -> f64 {
    let values =
        |t: &Tensor| Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).expect("values");
    common::ks_two_sample(&values(a), &values(b))
}

/// Fresh layers of every kind with parameters, built by sae-dsl's own layer builder, against
/// the same layers freshly built by PyTorch: each weight and bias passes a two-sample KS test
/// (at a level that a wrong fan-in, a missing bias draw or tch's old default all fail), and
/// batch normalisation starts exactly at PyTorch's values.
#[test]
fn initial_weights_follow_pytorch_distributions() {
    let Some(dir) = pytorch_side() else { return };
    let torch = read(&dir.join("init_stats.safetensors"));
    // Layers shaped as the script's: Linear(300, 200), Conv2d(16, 32, 3), ConvTranspose2d(32, 8, 4).
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    tch::manual_seed(3);
    let mk = |name: &str, dims: &[i64]| {
        let (w, b) = layer_inits(Init::Pytorch, dims);
        let bias_len = if name == "conv_transpose2d" {
            dims[1]
        } else {
            dims[0]
        };
        (
            root.var(&format!("{name}_w"), dims, w),
            root.var(&format!("{name}_b"), &[bias_len], b),
        )
    };
    let ours = [
        ("linear", mk("linear", &[200, 300])),
        ("conv2d", mk("conv2d", &[32, 16, 3, 3])),
        ("conv_transpose2d", mk("conv_transpose2d", &[32, 8, 4, 4])),
    ];
    let mut report = vec![];
    for (name, (w, b)) in &ours {
        let tw = &torch[&format!("{name}.weight")];
        let tb = &torch[&format!("{name}.bias")];
        assert_eq!(w.size(), tw.size(), "{name}: weight shape");
        let (dw, db) = (ks(w, tw), ks(b, tb));
        // Critical value at level 1e-4: 2.15 sqrt((n + m) / (n m)).
        let crit = |n: i64| 2.15 * (2.0 / n as f64).sqrt();
        report.push(format!(
            "{name}: KS weight {dw:.4} (limit {:.4}), bias {db:.4} (limit {:.4})",
            crit(w.numel() as i64),
            crit(b.numel() as i64)
        ));
        assert!(dw < crit(w.numel() as i64), "{}", report.join("\n"));
        assert!(db < crit(b.numel() as i64), "{}", report.join("\n"));
        // And the support: PyTorch's bound 1 / sqrt(fan_in), reached by both.
        let bound = 1.0 / (fans(&w.size()).0 as f64).sqrt();
        for t in [w, tw] {
            let m = t.abs().max().double_value(&[]);
            assert!(
                m <= bound * (1.0 + 1e-6) && m > 0.95 * bound,
                "{name}: max |w| {m} vs bound {bound}"
            );
        }
    }
    eprintln!("{}", report.join("\n"));
    // Batch normalisation: PyTorch's exact starting values, through the network builder.
    let model = compile(
        "data rings(n = 64)\nlatent R^2 ~ normal()\nencoder { linear(12) batch_norm linear(2) }\n\
         generator { linear(2) }\npenalty sinkhorn()\n",
    );
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = Compiled::new(&vs, &model);
    let vars: HashMap<String, Tensor> = vs.variables().into_iter().collect();
    for (ours, theirs) in [
        ("encoder.l1.weight", "batch_norm.weight"),
        ("encoder.l1.bias", "batch_norm.bias"),
        ("encoder.l1.running_mean", "batch_norm.running_mean"),
        ("encoder.l1.running_var", "batch_norm.running_var"),
    ] {
        let a = &vars[ours];
        let b = &torch[theirs];
        assert!(
            a.to_kind(Kind::Double)
                .allclose(&b.to_kind(Kind::Double), 0.0, 0.0, false),
            "{ours}: {a} vs {theirs}: {b}"
        );
    }
}
