//! `sae_dsl._native`: the Rust side of the Python package. A thin layer over the `sae-dsl`
//! crate: tensors pass both ways as `torch.Tensor`s of the one libtorch in the process (tch's
//! `python-extension`), so gradients flow through our optimal-transport penalties and prior
//! programs into the user's PyTorch code. The Python modules in `sae_dsl/` give it its API.

use std::path::{Path, PathBuf};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_tch::PyTensor;
use sae_dsl::ir::{self, LatentCost};
use sae_dsl::runtime::ot::{self, Kernel, SinkhornOptions};
use tch::{Device, Tensor};

/// Every diagnostic of a check, as dictionaries: code, severity, message, file, line and column
/// (1-based, in characters), help, and `rendered`, the text `sae-dsl check` prints for it.
#[pyfunction]
#[pyo3(signature = (source, is_path, overrides = Vec::new()))]
fn check(
    py: Python<'_>,
    source: &str,
    is_path: bool,
    overrides: Vec<String>,
) -> PyResult<Vec<PyObject>> {
    let c = compile(source, is_path, &overrides)?;
    let mut out = vec![];
    for d in &c.diags {
        let dict = PyDict::new(py);
        dict.set_item("code", d.code.as_str())?;
        dict.set_item(
            "severity",
            match d.severity {
                miette::Severity::Error => "error",
                miette::Severity::Warning => "warning",
                miette::Severity::Advice => "advice",
            },
        )?;
        dict.set_item("message", &d.message)?;
        dict.set_item("help", d.help.clone())?;
        match d.labels.first() {
            Some((span, _)) if span.file < c.sources.len() => {
                let text = c.sources.text(span.file);
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                let column = before[line_start..].chars().count() + 1;
                dict.set_item("file", c.sources.name(span.file))?;
                dict.set_item("line", line)?;
                dict.set_item("column", column)?;
            }
            _ => {
                dict.set_item("file", py.None())?;
                dict.set_item("line", py.None())?;
                dict.set_item("column", py.None())?;
            }
        }
        dict.set_item(
            "rendered",
            c.sources.render(std::slice::from_ref(d), false, 100),
        )?;
        out.push(dict.into_any().unbind());
    }
    Ok(out)
}

/// The checked model's readable graph (what `sae-dsl graph` prints); None when it has errors.
#[pyfunction]
#[pyo3(signature = (source, is_path, overrides = Vec::new()))]
fn graph(source: &str, is_path: bool, overrides: Vec<String>) -> PyResult<Option<String>> {
    let c = compile(source, is_path, &overrides)?;
    Ok(sae_dsl::graph_text(&c))
}

fn compile(source: &str, is_path: bool, overrides: &[String]) -> PyResult<sae_dsl::Compilation> {
    let parsed: Vec<sae_dsl::overrides::Override> = overrides
        .iter()
        .map(|o| {
            o.parse()
                .map_err(|e| PyValueError::new_err(format!("override `{o}`: {e}")))
        })
        .collect::<PyResult<_>>()?;
    if is_path {
        sae_dsl::compile_file_with(Path::new(source), &parsed)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    } else {
        Ok(sae_dsl::driver::compile_with(
            "<text>", source, None, &parsed,
        ))
    }
}

fn latent_cost(cost: &str, p: f64, curvature: f64) -> PyResult<LatentCost> {
    Ok(match cost {
        "euclidean" => LatentCost::Euclidean { p },
        "geodesic" => LatentCost::Geodesic { p },
        "fisher_rao" => LatentCost::FisherRao { p },
        "torus" => LatentCost::Torus { p },
        "hyperbolic" => LatentCost::Hyperbolic { p, c: curvature },
        other => {
            return Err(PyValueError::new_err(format!(
                "cost must be one of \"euclidean\", \"geodesic\", \"fisher_rao\", \"torus\", \"hyperbolic\", found \"{other}\""
            )))
        }
    })
}

fn two_clouds(x: &Tensor, y: &Tensor) -> PyResult<()> {
    let (sx, sy) = (x.size(), y.size());
    if sx.len() != 2 || sy.len() != 2 || sx[1] != sy[1] || sx[0] < 1 || sy[0] < 1 {
        return Err(PyValueError::new_err(format!(
            "x and y must be point clouds [n, d] and [m, d] of the same d, found {sx:?} and {sy:?}"
        )));
    }
    if x.kind() != y.kind() || x.device() != y.device() {
        return Err(PyValueError::new_err(format!(
            "x and y must have one dtype and device, found {:?} on {:?} and {:?} on {:?}",
            x.kind(),
            x.device(),
            y.kind(),
            y.device()
        )));
    }
    Ok(())
}

/// Entropic optimal transport between the rows of `x` and `y` (uniform weights): a scalar
/// tensor with its gradient. See `sae_dsl.ot.sinkhorn` for the meaning of every argument.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (x, y, epsilon, iterations, p, cost, envelope, debiased, tolerance, curvature))]
fn sinkhorn(
    py: Python<'_>,
    x: PyTensor,
    y: PyTensor,
    epsilon: f64,
    iterations: i64,
    p: f64,
    cost: &str,
    envelope: bool,
    debiased: bool,
    tolerance: f64,
    curvature: f64,
) -> PyResult<PyTensor> {
    two_clouds(&x, &y)?;
    if !(epsilon > 0.0) || iterations < 1 || !(p > 0.0) || tolerance < 0.0 {
        return Err(PyValueError::new_err(format!(
            "epsilon and p must be > 0 and iterations >= 1 (tolerance >= 0), found epsilon {epsilon}, p {p}, iterations {iterations}, tolerance {tolerance}"
        )));
    }
    let c = latent_cost(cost, p, curvature)?;
    let o = SinkhornOptions {
        epsilon,
        iterations,
        tolerance,
        scaling: 1.0,
        envelope,
    };
    let (x, y) = (x.0, y.0);
    let value = py.allow_threads(move || {
        if debiased {
            ot::debiased(&x, &y, c, &o).0
        } else {
            ot::solve(&ot::cost_matrix(&x, &y, c), &o).value
        }
    });
    Ok(PyTensor(value))
}

/// The unbiased MMD^2 between the rows of `x` and `y`, kernel summed over `scale` times the
/// WAE scales.
#[pyfunction]
fn mmd(py: Python<'_>, x: PyTensor, y: PyTensor, kernel: &str, scale: f64) -> PyResult<PyTensor> {
    two_clouds(&x, &y)?;
    if x.size()[0] < 2 || y.size()[0] < 2 {
        return Err(PyValueError::new_err(
            "the MMD estimator needs at least 2 points on each side",
        ));
    }
    let k = match kernel {
        "imq" => Kernel::Imq,
        "rbf" => Kernel::Rbf,
        other => {
            return Err(PyValueError::new_err(format!(
                "kernel must be \"imq\" or \"rbf\", found \"{other}\""
            )))
        }
    };
    let (x, y) = (x.0, y.0);
    Ok(PyTensor(
        py.allow_threads(move || ot::mmd(&x, &y, k, scale)),
    ))
}

/// Sliced Wasserstein W_p^p between equal-sized clouds along random directions (drawn from
/// torch's generator: `torch.manual_seed` fixes them).
#[pyfunction]
fn sliced(
    py: Python<'_>,
    x: PyTensor,
    y: PyTensor,
    projections: i64,
    p: f64,
) -> PyResult<PyTensor> {
    two_clouds(&x, &y)?;
    if x.size()[0] != y.size()[0] || projections < 1 {
        return Err(PyValueError::new_err(
            "sliced needs clouds of equal size and at least one projection",
        ));
    }
    let (x, y) = (x.0, y.0);
    Ok(PyTensor(
        py.allow_threads(move || ot::sliced(&x, &y, projections, p)),
    ))
}

/// A prior program instantiated with its arguments; its learnable parameters require gradients.
#[pyclass(unsendable)]
struct NativePrior {
    program: ir::Program,
    params: Vec<Tensor>,
    space: ir::Space,
    warnings: Vec<String>,
}

#[pymethods]
impl NativePrior {
    /// The prior `name` of `text` (named `file` in messages, imports relative to `dir`) called
    /// with `args` (the text between the parentheses).
    #[new]
    #[pyo3(signature = (file, text, dir, name, args))]
    fn new(file: &str, text: &str, dir: Option<PathBuf>, name: &str, args: &str) -> PyResult<Self> {
        let args = (!args.trim().is_empty()).then_some(args);
        let (program, space, warnings) =
            sae_dsl::driver::prior_program_in(file, text, dir.as_deref(), name, args)
                .map_err(PyValueError::new_err)?;
        let params: Vec<Tensor> = sae_dsl::runtime::sampler::initial_params(&program, Device::Cpu)
            .into_iter()
            .map(|t| t.set_requires_grad(true))
            .collect();
        Ok(NativePrior {
            program,
            params,
            space,
            warnings,
        })
    }

    /// `n` samples as a [n, d] tensor, differentiable in the learnable parameters.
    fn sample(&self, n: i64) -> PyResult<PyTensor> {
        if n < 1 {
            return Err(PyValueError::new_err(format!("n must be >= 1, found {n}")));
        }
        let device = self.params.first().map_or(Device::Cpu, Tensor::device);
        Ok(PyTensor(sae_dsl::runtime::sampler::sample_program(
            &self.program,
            &self.params,
            n,
            device,
        )))
    }

    /// The learnable parameters (`param` statements), in order.
    fn parameters(&self) -> Vec<PyTensor> {
        self.params
            .iter()
            .map(|t| PyTensor(t.shallow_clone()))
            .collect()
    }

    /// The names of the learnable parameters, in order.
    fn parameter_names(&self) -> Vec<String> {
        self.program.params.iter().map(|p| p.name.clone()).collect()
    }

    /// The space the samples lie on, as sae-dsl writes it.
    #[getter]
    fn space(&self) -> String {
        self.space.to_string()
    }

    /// The number of coordinates of a sample.
    #[getter]
    fn dim(&self) -> i64 {
        self.space.dim()
    }

    /// The call, with every argument.
    #[getter]
    fn call(&self) -> String {
        self.program.call.clone()
    }

    /// The checker's warnings about the program.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

/// A trained run directory: its networks with the trained weights.
#[pyclass(unsendable)]
struct NativeRun {
    run: sae_dsl::eval::LoadedRun,
}

#[pymethods]
impl NativeRun {
    #[new]
    fn new(dir: PathBuf, device: &str) -> PyResult<Self> {
        let d = match device {
            "cpu" => Device::Cpu,
            "cuda" => Device::cuda_if_available(),
            other => {
                return Err(PyValueError::new_err(format!(
                    "device must be \"cpu\" or \"cuda\", found \"{other}\""
                )))
            }
        };
        if device == "cuda" && d == Device::Cpu {
            return Err(PyRuntimeError::new_err(
                "CUDA is not available to this torch",
            ));
        }
        let run =
            sae_dsl::eval::open_run(&dir, d).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(NativeRun { run })
    }

    /// `n` decoded prior samples (the seed drawn from when given).
    #[pyo3(signature = (n, seed = None))]
    fn sample(&self, n: i64, seed: Option<i64>) -> PyResult<PyTensor> {
        if n < 1 {
            return Err(PyValueError::new_err(format!("n must be >= 1, found {n}")));
        }
        if let Some(s) = seed {
            tch::manual_seed(s);
        }
        Ok(PyTensor(sae_dsl::eval::sample(&self.run.net, n)))
    }

    /// The codes of a batch of data (evaluation mode: the mean of a Gaussian encoder).
    fn encode(&self, x: PyTensor) -> PyResult<PyTensor> {
        let x = self.input(x.0)?;
        Ok(PyTensor(self.run.net.encode(&x, false)))
    }

    /// The decodings of a batch of codes.
    fn decode(&self, z: PyTensor) -> PyResult<PyTensor> {
        let d = self.run.model.latent_dim();
        let z = z.0.to_device(self.device());
        if z.dim() != 2 || z.size()[1] != d {
            return Err(PyValueError::new_err(format!(
                "codes must be [n, {d}], found {:?}",
                z.size()
            )));
        }
        Ok(PyTensor(
            self.run.net.decode(&z.to_kind(tch::Kind::Float), false),
        ))
    }

    /// Decode(encode(x)).
    fn reconstruct(&self, x: PyTensor) -> PyResult<PyTensor> {
        let x = self.input(x.0)?;
        let z = self.run.net.encode(&x, false);
        Ok(PyTensor(self.run.net.decode(&z, false)))
    }

    /// The model's data shape (per example).
    #[getter]
    fn data_shape(&self) -> Vec<i64> {
        self.run.model.data.shape.clone()
    }

    /// The model text the run was trained from.
    #[getter]
    fn source(&self) -> String {
        self.run.source.clone()
    }
}

impl NativeRun {
    fn device(&self) -> Device {
        self.run.vs.device()
    }

    fn input(&self, x: Tensor) -> PyResult<Tensor> {
        let shape = &self.run.model.data.shape;
        let size = x.size();
        if size.len() != shape.len() + 1 || size[1..] != shape[..] {
            return Err(PyValueError::new_err(format!(
                "data must be [n, {}], found {size:?}",
                shape
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(x.to_device(self.device()).to_kind(tch::Kind::Float))
    }
}

/// A training running on a thread of its own (the same trainer as `sae-dsl run`): Python waits
/// for it in short slices, so that a callback can run between epochs and Ctrl-C (or a
/// notebook's interrupt button) reaches Python, which then asks the trainer to stop at its next
/// step boundary with the state saved.
#[pyclass]
struct Training {
    handle: Option<std::thread::JoinHandle<(String, String)>>,
    stop: sae_dsl::train::Interrupter,
    dir: PathBuf,
    outcome: Option<(String, String)>,
}

#[pymethods]
impl Training {
    /// The run directory being written.
    #[getter]
    fn dir(&self) -> String {
        self.dir.display().to_string()
    }

    /// Waits up to `seconds` for the end, without holding the GIL; whether it has ended.
    fn wait(&mut self, py: Python<'_>, seconds: f64) -> bool {
        if self.outcome.is_some() {
            return true;
        }
        let Some(h) = self.handle.as_ref() else {
            return true;
        };
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds.max(0.0));
        let finished = py.allow_threads(|| {
            while !h.is_finished() {
                if std::time::Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            true
        });
        if finished {
            if let Some(h) = self.handle.take() {
                self.outcome =
                    Some(h.join().unwrap_or_else(|_| {
                        ("error".into(), "the training thread panicked".into())
                    }));
            }
        }
        finished
    }

    /// Asks the trainer to stop at its next safe point (the state saved, resumable); nothing
    /// once it has ended (a late stop must not reach the next training of this process).
    fn stop(&self) {
        let running = self.handle.as_ref().is_some_and(|h| !h.is_finished());
        if running {
            self.stop.request();
            sae_dsl::signals::note_signal();
        }
    }

    /// None while running; then ("ok" | "interrupted" | "error", the text to show).
    fn outcome(&self) -> Option<(String, String)> {
        self.outcome.clone()
    }
}

/// Starts training a model (a path or a text) into `out` on a thread of its own.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (source, is_path, overrides, out, epochs, seed, data_dir, evaluate, device, force))]
fn start_fit(
    source: &str,
    is_path: bool,
    overrides: Vec<String>,
    out: Option<PathBuf>,
    epochs: Option<i64>,
    seed: Option<i64>,
    data_dir: Option<PathBuf>,
    evaluate: bool,
    device: &str,
    force: bool,
) -> PyResult<Training> {
    let c = compile(source, is_path, &overrides)?;
    let Some(model) = c.model.clone().filter(|_| !c.has_errors()) else {
        return Err(PyValueError::new_err(
            c.sources.render(&c.diags, false, 100),
        ));
    };
    let dev = match device {
        "cpu" => Device::Cpu,
        "cuda" if tch::Cuda::is_available() => Device::Cuda(0),
        "auto" => Device::cuda_if_available(),
        other => {
            return Err(PyValueError::new_err(format!(
                "device must be \"cpu\", \"cuda\" (when available) or \"auto\", found \"{other}\""
            )))
        }
    };
    let text = match (&c.effective, is_path) {
        (Some(t), _) => t.clone(),
        (None, true) => std::fs::read_to_string(source).unwrap_or_default(),
        (None, false) => source.to_string(),
    };
    let dir = out.unwrap_or_else(|| sae_dsl::rundir::default_run_dir(&model.name));
    let stop = sae_dsl::train::Interrupter::new();
    // A stop asked of an earlier training of this process is not this one's.
    sae_dsl::signals::clear();
    let opts = sae_dsl::train::RunOptions {
        epochs,
        seed,
        out: Some(dir.clone()),
        data_dir,
        quiet: true,
        force,
        evaluate,
        json: false,
        interrupter: stop.clone(),
        allow_divergence: false,
        init_from: None,
        overrides: overrides
            .iter()
            .filter_map(|o| {
                o.split_once('=')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            })
            .collect(),
        imports: Some(sae_dsl::rundir::Imports::of(&c.program)),
    };
    let handle = std::thread::spawn(move || {
        let r = sae_dsl::pipeline::run(&model, &text, dev, &opts);
        // A stop asked of this training must not stop the next one of this process.
        sae_dsl::signals::clear();
        match r {
            Ok(s) => ("ok".to_string(), s.dir.display().to_string()),
            Err(e) => {
                use sae_dsl::pipeline::RunError;
                let interrupted = matches!(
                    e,
                    RunError::Train(sae_dsl::train::TrainError::Interrupted { .. })
                        | RunError::Eval(sae_dsl::eval::EvalError::Interrupted { .. })
                );
                let text = format!("{:?}", miette::Report::new(e));
                let kind = if interrupted { "interrupted" } else { "error" };
                (kind.to_string(), text)
            }
        }
    });
    Ok(Training {
        handle: Some(handle),
        stop,
        dir,
        outcome: None,
    })
}

/// Writes the run's networks as a PyTorch module file and weights (`sae-dsl export --format
/// safetensors`) into `out`.
#[pyfunction]
fn export_modules(py: Python<'_>, run: &NativeRun, out: PathBuf) -> PyResult<()> {
    let _ = py;
    sae_dsl::export::export(&run.run, "safetensors", &out)
        .map(|_| ())
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Two tensors in, the first one out, no work: what a call into the extension costs by itself
/// (the benchmark's overhead figure).
#[pyfunction]
fn _roundtrip(x: PyTensor, y: PyTensor) -> PyTensor {
    let _ = y;
    x
}

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(graph, m)?)?;
    m.add_function(wrap_pyfunction!(sinkhorn, m)?)?;
    m.add_function(wrap_pyfunction!(mmd, m)?)?;
    m.add_function(wrap_pyfunction!(sliced, m)?)?;
    m.add_class::<NativePrior>()?;
    m.add_class::<NativeRun>()?;
    m.add_class::<Training>()?;
    m.add_function(wrap_pyfunction!(start_fit, m)?)?;
    m.add_function(wrap_pyfunction!(export_modules, m)?)?;
    m.add_function(wrap_pyfunction!(_roundtrip, m)?)?;
    m.add("TORCH_VERSION", "2.11")?;
    Ok(())
}
