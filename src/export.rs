//! `sae-dsl export`: a run's encoder and generator for use from Python.
//!
//! Two formats, both with `model.json` (inputs, outputs, latent space, prior, data range):
//! - `torchscript`: `encoder.pt` and `generator.pt`, traced modules (`torch.jit.load`);
//! - `safetensors`: `weights.safetensors` with the VarStore's names (`encoder.l0.weight`, ...,
//!   the names PyTorch gives the generated modules) and `model.py`, which defines the networks
//!   layer for layer and loads the weights without any package besides torch.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tch::{nn, CModule, Device, Kind, Tensor};

use crate::eval::LoadedRun;
use crate::ir::{self, LayerOp, Network};
use crate::util::write_atomic;

/// Why an export failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExportError {
    #[error("cannot export this model: its {net} has a `{layer}` layer")]
    #[diagnostic(
        code(sae::export::unsupported),
        help("the spatial transformers of multi-object models (`place`, `crop`) have no exported form yet; export a model without them")
    )]
    Unsupported { net: String, layer: String },
    #[error("could not write {path}: {error}")]
    #[diagnostic(code(sae::export::io), help("choose a writable --out folder"))]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("libtorch: {0}")]
    #[diagnostic(code(sae::export::torch))]
    Torch(#[from] tch::TchError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |error| ExportError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The networks of a model, each with its name in messages.
fn networks(model: &ir::Model) -> Vec<(String, &Network)> {
    let mut v: Vec<(String, &Network)> = model
        .encoders
        .iter()
        .map(|e| match &e.component {
            Some(c) => (format!("encoder of `{c}`"), &e.net),
            None => ("encoder".to_string(), &e.net),
        })
        .collect();
    v.push(("generator".into(), &model.generator));
    v
}

/// Refuses models with layers that have no exported form.
fn check_supported(model: &ir::Model) -> Result<(), ExportError> {
    for (name, net) in networks(model) {
        for l in &net.layers {
            let layer = match l.op {
                LayerOp::Place { .. } => "place",
                LayerOp::Crop { .. } => "crop",
                _ => continue,
            };
            return Err(ExportError::Unsupported {
                net: name,
                layer: layer.into(),
            });
        }
    }
    Ok(())
}

/// Writes the export of `run` in `format` ("torchscript" or "safetensors") into `out`; the
/// files written.
pub fn export(run: &LoadedRun, format: &str, out: &Path) -> Result<Vec<PathBuf>, ExportError> {
    check_supported(&run.model)?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut files = vec![];
    if format == "torchscript" {
        files.extend(torchscript(run, out)?);
    } else {
        files.extend(safetensors(run, out)?);
    }
    let meta = describe(&run.model, format);
    let path = out.join("model.json");
    let text = serde_json::to_string_pretty(&meta).unwrap_or_default();
    write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
    files.push(path);
    Ok(files)
}

/// `model.json`: what the exported modules take and give.
fn describe(model: &ir::Model, format: &str) -> serde_json::Value {
    let latents: Vec<serde_json::Value> = model
        .latents
        .iter()
        .map(|l| {
            serde_json::json!({
                "name": l.name, "space": l.space.to_string(), "dim": l.space.dim(),
                "prior": l.prior.to_string(),
            })
        })
        .collect();
    let (encoder, generator) = match format {
        "torchscript" => ("encoder.pt", "generator.pt"),
        _ => ("model.py: Model.encode", "model.py: Model.decode"),
    };
    serde_json::json!({
        "format": format,
        "model": model.name,
        "encoder": {
            "file": encoder,
            "input": shape_with_batch(&model.data.shape),
            "output": ["N", model.latent_dim()],
            "note": "evaluation mode: batch norm uses its running statistics, a Gaussian head returns its mean; the output lies on the latent space (the encoder's projection is part of it)",
        },
        "generator": {
            "file": generator,
            "input": ["N", model.latent_dim()],
            "output": shape_with_batch(&model.generator.output),
        },
        "data": {
            "shape": model.data.shape,
            "range": if model.data.is_image() { "[0, 1]: pixel values / 255" } else { "as the data set's points" },
        },
        "latents": latents,
        "sae_dsl": env!("CARGO_PKG_VERSION"),
    })
}

fn shape_with_batch(shape: &[i64]) -> Vec<serde_json::Value> {
    let mut v = vec![serde_json::Value::from("N")];
    v.extend(shape.iter().map(|d| serde_json::Value::from(*d)));
    v
}

/// Traces the encoder (codes from data) and the generator (data from codes) in evaluation
/// mode on CPU copies of the weights, with a batch of 2 (the traced graphs take any batch size).
fn torchscript(run: &LoadedRun, out: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let net = on_cpu(run)?;
    let model = &run.model;
    let mut data_shape = vec![2];
    data_shape.extend_from_slice(&model.data.shape);
    let x = Tensor::rand(data_shape.as_slice(), (Kind::Float, Device::Cpu));
    let z = Tensor::randn([2, model.latent_dim()], (Kind::Float, Device::Cpu));
    let (encoder, generator) = tch::no_grad(|| {
        let e = CModule::create_by_tracing("Encoder", "forward", &[x], &mut |t| {
            vec![net.1.encode(&t[0], false)]
        })?;
        let g = CModule::create_by_tracing("Generator", "forward", &[z], &mut |t| {
            vec![net.1.decode(&t[0], false)]
        })?;
        Ok::<_, ExportError>((e, g))
    })?;
    let (pe, pg) = (out.join("encoder.pt"), out.join("generator.pt"));
    encoder.save(&pe)?;
    generator.save(&pg)?;
    Ok(vec![pe, pg])
}

/// The run's networks rebuilt on the CPU with its weights (tracing records CPU tensors).
fn on_cpu(run: &LoadedRun) -> Result<(nn::VarStore, crate::runtime::model::Compiled), ExportError> {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = crate::runtime::model::Compiled::new(&vs, &run.model);
    vs.copy(&run.vs)?;
    vs.freeze();
    Ok((vs, net))
}

/// `weights.safetensors` (float32, the VarStore's names, plus PyTorch's `num_batches_tracked`
/// for batch norms) and the generated `model.py`.
fn safetensors(run: &LoadedRun, out: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let mut named: Vec<(String, Tensor)> = run
        .vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.to_device(Device::Cpu).to_kind(Kind::Float)))
        .collect();
    let tracked: Vec<String> = named
        .iter()
        .filter_map(|(n, _)| n.strip_suffix(".running_mean"))
        .map(|p| format!("{p}.num_batches_tracked"))
        .collect();
    for t in tracked {
        named.push((t, Tensor::from(0i64)));
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let weights = out.join("weights.safetensors");
    let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&refs, &weights)?;
    let py = out.join("model.py");
    write_atomic(&py, python_module(&run.model).as_bytes()).map_err(io(&py))?;
    Ok(vec![weights, py])
}

/// One layer as a PyTorch module expression.
fn py_layer(l: &ir::Layer, indent: &str) -> String {
    let inner = format!("{indent}    ");
    let b = |x: bool| if x { "True" } else { "False" };
    match &l.op {
        LayerOp::Linear {
            input,
            output,
            bias,
        } => format!("nn.Linear({input}, {output}, bias={})", b(*bias)),
        // The IR variants' field lists, as in nets.rs and the shape rules: each stage takes them apart.
        LayerOp::Conv2d {
            input,
            output,
            kernel,
            stride,
            padding,
            bias,
            dilation,
            groups,
        } => format!(
            "nn.Conv2d({input}, {output}, {kernel}, stride={stride}, padding={padding}, dilation={dilation}, groups={groups}, bias={})",
            b(*bias)
        ),
        LayerOp::ConvTranspose2d {
            input,
            output,
            kernel,
            stride,
            padding,
            output_padding,
            bias,
            dilation,
            groups,
        } => format!(
            "nn.ConvTranspose2d({input}, {output}, {kernel}, stride={stride}, padding={padding}, output_padding={output_padding}, groups={groups}, bias={}, dilation={dilation})",
            b(*bias)
        ),
        LayerOp::BatchNorm { features } if l.input.len() == 3 => {
            format!("nn.BatchNorm2d({features})")
        }
        LayerOp::BatchNorm { features } => format!("nn.BatchNorm1d({features})"),
        LayerOp::Relu => "nn.ReLU()".into(),
        LayerOp::LeakyRelu { slope } => format!("LeakyReLU({slope:?})"),
        LayerOp::Tanh => "nn.Tanh()".into(),
        LayerOp::Sigmoid => "nn.Sigmoid()".into(),
        LayerOp::Softmax => "nn.Softmax(dim=-1)".into(),
        LayerOp::Flatten => "nn.Flatten()".into(),
        LayerOp::Identity => "nn.Identity()".into(),
        LayerOp::Gelu => "nn.GELU()".into(),
        LayerOp::Silu => "nn.SiLU()".into(),
        LayerOp::Elu { alpha } => format!("nn.ELU({alpha:?})"),
        LayerOp::Softplus { beta, threshold } => format!("nn.Softplus({beta:?}, {threshold:?})"),
        LayerOp::Dropout { p } => format!("nn.Dropout({p:?})"),
        LayerOp::LayerNorm { shape } => {
            let s: Vec<String> = shape.iter().map(i64::to_string).collect();
            format!("nn.LayerNorm([{}])", s.join(", "))
        }
        LayerOp::GroupNorm { groups, channels } => format!("nn.GroupNorm({groups}, {channels})"),
        LayerOp::AvgPool2d {
            kernel,
            stride,
            padding,
        } => format!("nn.AvgPool2d({kernel}, stride={stride}, padding={padding})"),
        LayerOp::MaxPool2d {
            kernel,
            stride,
            padding,
        } => format!("nn.MaxPool2d({kernel}, stride={stride}, padding={padding})"),
        LayerOp::AdaptiveAvgPool2d { size } => format!("nn.AdaptiveAvgPool2d({size})"),
        LayerOp::Upsample { scale, mode } => {
            format!("nn.Upsample(scale_factor={scale}, mode={:?})", mode.name())
        }
        LayerOp::Interpolate { size, mode } => {
            format!("nn.Upsample(size=({size}, {size}), mode={:?})", mode.name())
        }
        LayerOp::Reshape { shape } => {
            let s: Vec<String> = shape.iter().map(i64::to_string).collect();
            format!("Reshape({})", s.join(", "))
        }
        LayerOp::Normalize => "Normalize()".into(),
        LayerOp::Torus => "TorusProjection()".into(),
        LayerOp::Expmap0 { c } => format!("Expmap0({c:?})"),
        LayerOp::Gaussian { input, output } => format!("GaussianHead({input}, {output})"),
        LayerOp::Select { offset, len, .. } => format!("Select({offset}, {len})"),
        LayerOp::Residual { body, projection } => format!(
            "Residual({}, {})",
            py_layers(body, &inner),
            projection.as_ref().map_or("None".to_string(), |p| py_layers(
                std::slice::from_ref(p.as_ref()),
                &inner
            ))
        ),
        LayerOp::Concat { branches } => {
            let b: Vec<String> = branches.iter().map(|b| py_layers(b, &inner)).collect();
            format!("Concat({})", b.join(", "))
        }
        // Refused by `check_supported` before any code is generated.
        LayerOp::Place { .. } | LayerOp::Crop { .. } => "None".into(),
    }
}

fn py_pipeline(net: &Network, indent: &str) -> String {
    py_layers(&net.layers, indent)
}

/// `Pipeline([...])` of `layers`, one per line.
fn py_layers(layers: &[ir::Layer], indent: &str) -> String {
    let mut s = String::from("Pipeline([\n");
    for l in layers {
        let _ = writeln!(s, "{indent}    {},  # {}", py_layer(l, indent), l.op);
    }
    s + indent + "])"
}

/// The generated `model.py`.
pub fn python_module(model: &ir::Model) -> String {
    let encoder = match model.encoders.as_slice() {
        [e] if e.component.is_none() => py_pipeline(&e.net, "        "),
        encoders => {
            let mut s = String::from("nn.ModuleDict({\n");
            for e in encoders {
                let name = e.component.clone().unwrap_or_default();
                let _ = writeln!(
                    s,
                    "            {name:?}: {},",
                    py_pipeline(&e.net, "            ")
                );
            }
            s + "        })"
        }
    };
    let order: Vec<String> = model
        .latents
        .iter()
        .map(|l| format!("{:?}", l.name))
        .collect();
    PY_TEMPLATE
        .replace("{MODEL}", &model.name)
        .replace("{ENCODER}", &encoder)
        .replace("{GENERATOR}", &py_pipeline(&model.generator, "        "))
        .replace("{COMPONENTS}", &order.join(", "))
        .replace("{LATENT_DIM}", &model.latent_dim().to_string())
}

const PY_TEMPLATE: &str = r#""""The networks of the sae-dsl model `{MODEL}`, generated by `sae-dsl export --format safetensors`.

    import model
    m = model.load()                  # reads weights.safetensors next to this file
    z = m.encode(x)                   # x: [N, ...] data in sae-dsl's range; z: [N, {LATENT_DIM}]
    x_hat = m.decode(z)

Only torch is needed. The modules are in evaluation mode after `load` (batch norm uses its running
statistics; a Gaussian encoder head returns its mean).
"""
import json
import os

import torch
from torch import nn


class Pipeline(nn.Module):
    """Layers applied in order, named l0, l1, ... as in sae-dsl; `Select` reads the pipeline's input."""

    def __init__(self, layers):
        super().__init__()
        self.names = []
        for i, layer in enumerate(layers):
            self.add_module(f"l{i}", layer)
            self.names.append(f"l{i}")

    def forward(self, x):
        h = x
        for name in self.names:
            layer = getattr(self, name)
            h = layer(h, x) if isinstance(layer, Select) else layer(h)
        return h


class Residual(nn.Module):
    """x + body(x), x through `proj` first when given (sae-dsl's `residual`)."""

    def __init__(self, body, proj):
        super().__init__()
        self.body = body
        self.proj = proj

    def forward(self, h):
        return self.body(h) + (h if self.proj is None else self.proj(h))


class Concat(nn.Module):
    """Branches on the same input, joined along dimension 1 (sae-dsl's `concat`)."""

    def __init__(self, *branches):
        super().__init__()
        self.n = len(branches)
        for k, b in enumerate(branches):
            self.add_module(f"b{k}", b)

    def forward(self, h):
        return torch.cat([getattr(self, f"b{k}")(h) for k in range(self.n)], dim=1)


class LeakyReLU(nn.Module):
    def __init__(self, slope):
        super().__init__()
        self.slope = slope

    def forward(self, h):
        return torch.maximum(h, h * self.slope)


class Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, h):
        return h.reshape(-1, *self.shape)


class Normalize(nn.Module):
    """Projection onto the unit sphere."""

    def forward(self, h):
        return h / h.square().sum(-1, keepdim=True).sqrt().clamp_min(1e-12)


class TorusProjection(nn.Module):
    """Each pair of coordinates normalised: onto the torus (S^1)^k."""

    def forward(self, h):
        p = h.reshape(*h.shape[:-1], -1, 2)
        return (p / p.square().sum(-1, keepdim=True).sqrt().clamp_min(1e-12)).reshape(h.shape)


class Expmap0(nn.Module):
    """The exponential map at the origin of the Poincare ball of curvature -c."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, v):
        sc = self.c ** 0.5
        n = v.square().sum(-1, keepdim=True).clamp_min(1e-30).sqrt()
        r = torch.tanh(n * sc).clamp_max(1.0 - 1e-5) / sc
        return v * (r / n)


class Select(nn.Module):
    """Coordinates offset..offset+length of the pipeline's input (one latent component)."""

    def __init__(self, offset, length):
        super().__init__()
        self.offset, self.length = offset, length

    def forward(self, h, x):
        return x[:, self.offset:self.offset + self.length]


class GaussianHead(nn.Module):
    """Mean and log-variance heads: the mean in evaluation, a reparameterised sample in training."""

    def __init__(self, inputs, outputs):
        super().__init__()
        self.mean = nn.Linear(inputs, outputs)
        self.log_var = nn.Linear(inputs, outputs)

    def forward(self, h):
        mu = self.mean(h)
        if not self.training:
            return mu
        lv = self.log_var(h).clamp(-30, 20)
        return mu + (lv * 0.5).exp() * torch.randn_like(mu)


class Model(nn.Module):
    components = [{COMPONENTS}]

    def __init__(self):
        super().__init__()
        self.encoder = {ENCODER}
        self.generator = {GENERATOR}

    def encode(self, x):
        if isinstance(self.encoder, nn.ModuleDict):
            return torch.cat([self.encoder[c](x) for c in self.components], 1)
        return self.encoder(x)

    def decode(self, z):
        return self.generator(z)

    def forward(self, x):
        return self.decode(self.encode(x))


def read_safetensors(path):
    """The tensors of a safetensors file, read with torch alone."""
    kinds = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=kinds[meta["dtype"]]) if b > a else torch.zeros(0, dtype=kinds[meta["dtype"]])
        out[name] = t.reshape(meta["shape"]).clone()
    return out


def load(path=None):
    """The model with the exported weights, in evaluation mode."""
    path = path or os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.safetensors")
    m = Model()
    state = read_safetensors(path)
    # Learnable prior parameters (prior.LATENT.NAME) are not part of the networks.
    m.load_state_dict({k: v for k, v in state.items() if not k.startswith("prior.")})
    return m.eval()


def prior_parameters(path=None):
    """The learnable prior parameters as trained, by name (prior.LATENT.NAME); empty without."""
    path = path or os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.safetensors")
    return {k: v for k, v in read_safetensors(path).items() if k.startswith("prior.")}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_but_the_spatial_transformers_has_a_python_form() {
        let text = "import \"std/nets\"\ndata mnist()\nlatent R^8 ~ normal()\n\
            encoder { conv2d(8, kernel = 4, stride = 2, padding = 1) batch_norm() leaky_relu(0.2) flatten linear(32) tanh gaussian(8) }\n\
            generator { linear(32) relu linear(392) reshape(8, 7, 7) conv_transpose2d(1, kernel = 4, stride = 4) sigmoid }\n\
            penalty kl()\n";
        let c = crate::compile_source("m.sae", text, None);
        let m = c.model.expect("a model");
        let py = python_module(&m);
        for want in [
            "nn.Conv2d(1, 8, 4, stride=2, padding=1, dilation=1, groups=1, bias=True)",
            "nn.BatchNorm2d(8)",
            "LeakyReLU(0.2)",
            "GaussianHead(32, 8)",
            "Reshape(8, 7, 7)",
            "nn.ConvTranspose2d(8, 1, 4, stride=4, padding=0, output_padding=0, groups=1, bias=True, dilation=1)",
        ] {
            assert!(py.contains(want), "{want} in\n{py}");
        }
        assert!(check_supported(&m).is_ok());
    }
}
