//! Stage 3, `backend`: the IR as libtorch modules and samplers on one device.
//!
//! Entry point: [`Compiled::new`], which builds encoder and generator under an `nn::Path` and
//! prepares the prior sampler. The device is chosen once by the caller and passed down.

use tch::{nn, Device, Kind, Tensor};

use crate::ir::{self, LayerOp};

/// One executable layer.
#[derive(Debug)]
enum Op {
    Linear(nn::Linear),
    Conv(nn::Conv2D),
    ConvT(nn::ConvTranspose2D),
    Bn(nn::BatchNorm),
    Relu,
    LeakyRelu(f64),
    Tanh,
    Sigmoid,
    Softmax,
    Flatten,
    Reshape(Vec<i64>),
    Normalize,
    /// Mean and log-variance heads.
    Gaussian(nn::Linear, nn::Linear),
}

/// A layer pipeline on the device.
#[derive(Debug)]
pub struct Net {
    ops: Vec<Op>,
}

impl Net {
    /// Builds the layers of `net` as variables under `path`.
    pub fn new(path: &nn::Path, net: &ir::Network) -> Net {
        let ops = net
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let p = path / format!("l{i}");
                match &l.op {
                    LayerOp::Linear {
                        input,
                        output,
                        bias,
                    } => Op::Linear(nn::linear(
                        &p,
                        *input,
                        *output,
                        nn::LinearConfig {
                            bias: *bias,
                            ..Default::default()
                        },
                    )),
                    LayerOp::Conv2d {
                        input,
                        output,
                        kernel,
                        stride,
                        padding,
                        bias,
                    } => Op::Conv(nn::conv2d(
                        &p,
                        *input,
                        *output,
                        *kernel,
                        nn::ConvConfig {
                            stride: *stride,
                            padding: *padding,
                            bias: *bias,
                            ..Default::default()
                        },
                    )),
                    LayerOp::ConvTranspose2d {
                        input,
                        output,
                        kernel,
                        stride,
                        padding,
                        output_padding,
                        bias,
                    } => Op::ConvT(nn::conv_transpose2d(
                        &p,
                        *input,
                        *output,
                        *kernel,
                        nn::ConvTransposeConfig {
                            stride: *stride,
                            padding: *padding,
                            output_padding: *output_padding,
                            bias: *bias,
                            ..Default::default()
                        },
                    )),
                    LayerOp::BatchNorm { features } => {
                        if l.input.len() == 3 {
                            Op::Bn(nn::batch_norm2d(&p, *features, Default::default()))
                        } else {
                            Op::Bn(nn::batch_norm1d(&p, *features, Default::default()))
                        }
                    }
                    LayerOp::Relu => Op::Relu,
                    LayerOp::LeakyRelu { slope } => Op::LeakyRelu(*slope),
                    LayerOp::Tanh => Op::Tanh,
                    LayerOp::Sigmoid => Op::Sigmoid,
                    LayerOp::Softmax => Op::Softmax,
                    LayerOp::Flatten => Op::Flatten,
                    LayerOp::Reshape { shape } => Op::Reshape(shape.clone()),
                    LayerOp::Normalize => Op::Normalize,
                    LayerOp::Gaussian { input, output } => Op::Gaussian(
                        nn::linear(&p / "mean", *input, *output, Default::default()),
                        nn::linear(&p / "log_var", *input, *output, Default::default()),
                    ),
                }
            })
            .collect();
        Net { ops }
    }

    /// Applies the pipeline to a batch; `train` switches batch normalisation's statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_stats(x, train).0
    }

    /// Like [`Net::forward_t`], and also the (mean, log-variance) of a Gaussian head. In
    /// training the head samples z = mean + exp(log_var / 2) * noise; in evaluation z = mean.
    pub fn forward_stats(&self, x: &Tensor, train: bool) -> (Tensor, Option<(Tensor, Tensor)>) {
        let mut h = x.shallow_clone();
        let mut stats = None;
        for op in &self.ops {
            h = match op {
                Op::Linear(l) => h.apply(l),
                Op::Conv(c) => h.apply(c),
                Op::ConvT(c) => h.apply(c),
                Op::Bn(b) => h.apply_t(b, train),
                Op::Relu => h.relu(),
                Op::LeakyRelu(s) => h.leaky_relu_with_slope(*s),
                Op::Tanh => h.tanh(),
                Op::Sigmoid => h.sigmoid(),
                Op::Softmax => h.softmax(-1, Kind::Float),
                Op::Flatten => h.flatten(1, -1),
                Op::Reshape(s) => {
                    let mut shape = vec![-1i64];
                    shape.extend_from_slice(s);
                    h.reshape(shape.as_slice())
                }
                Op::Normalize => normalize(&h),
                Op::Gaussian(mean, log_var) => {
                    let (mu, lv) = (h.apply(mean), h.apply(log_var).clamp(-30.0, 20.0));
                    let z = if train {
                        &mu + (&lv * 0.5).exp() * mu.randn_like()
                    } else {
                        mu.shallow_clone()
                    };
                    stats = Some((mu, lv));
                    z
                }
            };
        }
        (h, stats)
    }
}

trait LeakyExt {
    fn leaky_relu_with_slope(&self, slope: f64) -> Tensor;
}

impl LeakyExt for Tensor {
    fn leaky_relu_with_slope(&self, slope: f64) -> Tensor {
        self.maximum(&(self * slope))
    }
}

/// Projects rows onto the unit sphere.
pub fn normalize(z: &Tensor) -> Tensor {
    let norm = z
        .square()
        .sum_dim_intlist(-1, true, z.kind())
        .sqrt()
        .clamp_min(1e-12);
    z / norm
}

/// Draws `n` samples of the prior on `device`, as one batched tensor operation.
pub fn sample_prior(prior: &ir::Prior, n: i64, dim: i64, device: Device) -> Tensor {
    let opts = (Kind::Float, device);
    match prior {
        ir::Prior::Normal { mean, std } => Tensor::randn([n, dim], opts) * *std + *mean,
        ir::Prior::Uniform { low, high } => Tensor::rand([n, dim], opts) * (*high - *low) + *low,
        ir::Prior::UniformSphere => normalize(&Tensor::randn([n, dim], opts)),
        ir::Prior::Dirichlet { alpha } => {
            let a = Tensor::from_slice(&alpha.iter().map(|&a| a as f32).collect::<Vec<_>>())
                .to_device(device);
            let a = a.unsqueeze(0).expand([n, dim], false).contiguous();
            dirichlet(&a)
        }
    }
}

/// Dirichlet samples, one row per row of concentrations (see [`crate::dist::dirichlet`]).
pub fn dirichlet(alpha: &Tensor) -> Tensor {
    crate::dist::dirichlet(alpha)
}

/// The encoder, generator and prior of a model on one device.
#[derive(Debug)]
pub struct Compiled {
    pub encoder: Net,
    pub generator: Net,
    pub model: ir::Model,
    pub device: Device,
}

impl Compiled {
    /// Builds the networks' variables in `vs` (root paths `encoder` and `generator`).
    pub fn new(vs: &nn::VarStore, model: &ir::Model) -> Compiled {
        let root = vs.root();
        Compiled {
            encoder: Net::new(&(&root / "encoder"), &model.encoder),
            generator: Net::new(&(&root / "generator"), &model.generator),
            model: model.clone(),
            device: vs.device(),
        }
    }

    pub fn encode(&self, x: &Tensor, train: bool) -> Tensor {
        self.encoder.forward_t(x, train)
    }

    /// Codes and, for a Gaussian encoder, its (mean, log-variance).
    pub fn encode_stats(&self, x: &Tensor, train: bool) -> (Tensor, Option<(Tensor, Tensor)>) {
        self.encoder.forward_stats(x, train)
    }

    pub fn decode(&self, z: &Tensor, train: bool) -> Tensor {
        self.generator.forward_t(z, train)
    }

    pub fn sample_prior(&self, n: i64) -> Tensor {
        sample_prior(
            &self.model.latent.prior,
            n,
            self.model.latent.space.dim(),
            self.device,
        )
    }

    /// The reconstruction cost, summed over an example's features and averaged over the batch.
    pub fn recon_cost(&self, xhat: &Tensor, x: &Tensor) -> Tensor {
        recon_cost(self.model.cost, xhat, x)
    }
}

/// See [`Compiled::recon_cost`].
pub fn recon_cost(cost: ir::ReconCost, xhat: &Tensor, x: &Tensor) -> Tensor {
    let n = x.size()[0].max(1) as f64;
    let per = match cost {
        ir::ReconCost::SquaredL2 => (xhat - x).square(),
        ir::ReconCost::L1 => (xhat - x).abs(),
        ir::ReconCost::Bce => {
            // Clamped logs: a saturated sigmoid must not give an infinite loss.
            let p = xhat.clamp(1e-7, 1.0 - 1e-7);
            let one_minus_x: Tensor = 1.0 - x;
            let one_minus_p: Tensor = 1.0 - &p;
            -(x * p.log() + one_minus_x * one_minus_p.log())
        }
    };
    per.sum(Kind::Float) / n
}
