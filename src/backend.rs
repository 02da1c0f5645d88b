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
    /// Columns `offset..offset + len` of the network's input (the code).
    Select(i64, i64),
    /// Spatial transformer onto a canvas, at the position in columns `offset..offset + 3` of
    /// the input: (offset, canvas size, shift, zoom).
    Place(i64, i64, f64, f64),
    /// A window cut at the position of an encoded component: (component index, size, shift,
    /// zoom).
    Crop(usize, i64, f64, f64),
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
                    LayerOp::Select { offset, len, .. } => Op::Select(*offset, *len),
                    LayerOp::Place {
                        offset,
                        size,
                        shift,
                        zoom,
                        ..
                    } => Op::Place(*offset, *size, *shift, *zoom),
                    LayerOp::Crop {
                        index,
                        size,
                        shift,
                        zoom,
                        ..
                    } => Op::Crop(*index, *size, *shift, *zoom),
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
        self.forward_parts(x, train, &[])
    }

    /// Like [`Net::forward_stats`]; `parts` holds the latent components encoded so far, for
    /// `crop` layers.
    pub fn forward_parts(
        &self,
        x: &Tensor,
        train: bool,
        parts: &[Option<Tensor>],
    ) -> (Tensor, Option<(Tensor, Tensor)>) {
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
                Op::Select(offset, len) => x.narrow(1, *offset, *len),
                Op::Place(offset, size, shift, zoom) => {
                    place(&h, &x.narrow(1, *offset, 3), *size, *shift, *zoom)
                }
                Op::Crop(index, size, shift, zoom) => match parts.get(*index) {
                    Some(Some(at)) => crop(&h, at, *size, *shift, *zoom),
                    // The checker orders encoders so that this cannot happen.
                    _ => h.zeros_like().narrow(2, 0, *size).narrow(3, 0, *size),
                },
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

/// Centre and scale of a `where` code `w` ([B, 3]): (tx, ty) = shift * (w0, w1) in the canvas's
/// [-1, 1] coordinates, and the factor exp(zoom * w2).
fn position(w: &Tensor, shift: f64, zoom: f64) -> (Tensor, Tensor, Tensor) {
    (
        w.select(1, 0) * shift,
        w.select(1, 1) * shift,
        (w.select(1, 2) * zoom).exp(),
    )
}

/// Spatial transformer: draws images `img` ([B, C, h, w]) onto `size x size` canvases at the
/// positions `w`; an image keeps its native size relative to the canvas times exp(zoom w2).
/// Affine grid + bilinear sampling, differentiable in the image and the position.
pub fn place(img: &Tensor, w: &Tensor, size: i64, shift: f64, zoom: f64) -> Tensor {
    let dims = img.size();
    let (b, c, h) = (dims[0], dims[1], dims[2]);
    let (tx, ty, f) = position(w, shift, zoom);
    let inv = (f * (h as f64 / size as f64)).reciprocal();
    let zero = inv.zeros_like();
    // Canvas point u maps to image point (u - t) / s.
    let row0 = Tensor::stack(&[&inv, &zero, &(-&tx * &inv)], 1);
    let row1 = Tensor::stack(&[&zero, &inv, &(-&ty * &inv)], 1);
    let theta = Tensor::stack(&[row0, row1], 1);
    let grid = Tensor::affine_grid_generator(&theta, [b, c, size, size], false);
    img.grid_sampler(&grid.to_kind(img.kind()), 0, 0, false)
}

/// The inverse of [`place`]: cuts `size x size` windows out of canvases `img` at the positions
/// `w`, rescaled to the native size.
pub fn crop(img: &Tensor, w: &Tensor, size: i64, shift: f64, zoom: f64) -> Tensor {
    let dims = img.size();
    let (b, c, big) = (dims[0], dims[1], dims[2]);
    let (tx, ty, f) = position(w, shift, zoom);
    let s = f * (size as f64 / big as f64);
    let zero = s.zeros_like();
    // Window point v maps to canvas point t + s v.
    let row0 = Tensor::stack(&[&s, &zero, &tx], 1);
    let row1 = Tensor::stack(&[&zero, &s, &ty], 1);
    let theta = Tensor::stack(&[row0, row1], 1);
    let grid = Tensor::affine_grid_generator(&theta, [b, c, size, size], false);
    img.grid_sampler(&grid.to_kind(img.kind()), 0, 0, false)
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
        ir::Prior::Program(p) => sample_program(p, n, device),
    }
}

/// Runs a prior program once for a batch of `n`: each register is a tensor `[n, ...shape]`
/// (constants `[1, ...shape]`, broadcast), so there is no per-sample loop. Returns `[n, d]`.
pub fn sample_program(p: &ir::Program, n: i64, device: Device) -> Tensor {
    use ir::{Func, Op as I, Prim};
    let opts = (Kind::Float, device);
    let mut regs: Vec<Tensor> = Vec::with_capacity(p.instrs.len());
    // A register with trailing axes added up to `rank` (a scalar [n] against a vector [n, d]).
    let at = |regs: &Vec<Tensor>, i: usize, rank: usize| -> Tensor {
        let mut t = regs[i].shallow_clone();
        for _ in p.instrs[i].shape.len()..rank {
            t = t.unsqueeze(-1);
        }
        t
    };
    for ins in &p.instrs {
        let mut full = vec![n];
        full.extend(&ins.shape);
        let rank = ins.shape.len();
        let arg = |regs: &Vec<Tensor>, i: usize| -> Tensor {
            at(regs, i, rank)
                .expand(full.as_slice(), false)
                .contiguous()
        };
        let t = match &ins.op {
            I::Const(v) => {
                let mut shape = vec![1i64];
                shape.extend(&ins.shape);
                Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<_>>())
                    .to_device(device)
                    .reshape(shape.as_slice())
            }
            I::Draw(prim, a) => match prim {
                Prim::Normal => {
                    Tensor::randn(full.as_slice(), opts) * arg(&regs, a[1]) + arg(&regs, a[0])
                }
                Prim::Uniform => {
                    let (lo, hi) = (arg(&regs, a[0]), arg(&regs, a[1]));
                    Tensor::rand(full.as_slice(), opts) * (&hi - &lo) + lo
                }
                Prim::UniformSphere => normalize(&Tensor::randn(full.as_slice(), opts)),
                Prim::Dirichlet => crate::dist::dirichlet(&arg(&regs, a[0])),
                Prim::Gamma => crate::dist::gamma(&arg(&regs, a[0])) / arg(&regs, a[1]),
                Prim::Beta => crate::dist::beta(&arg(&regs, a[0]), &arg(&regs, a[1])),
                Prim::Categorical => {
                    let w = &regs[a[0]];
                    let k = w.size()[1];
                    let probs = w.expand([n, k], false).contiguous();
                    probs
                        .multinomial(1, true)
                        .squeeze_dim(1)
                        .to_kind(Kind::Float)
                }
                Prim::Bernoulli => crate::dist::bernoulli(&arg(&regs, a[0])),
                Prim::Laplace => crate::dist::laplace(&arg(&regs, a[0]), &arg(&regs, a[1])),
                Prim::Exponential => crate::dist::exponential(&arg(&regs, a[0])),
                Prim::VonMisesFisher => {
                    let mu = regs[a[0]].squeeze_dim(0);
                    let kappa = regs[a[1]].double_value(&[0]);
                    crate::dist::von_mises_fisher(&mu, kappa, n)
                }
            },
            I::Apply(f, a) => {
                let x = &regs[*a];
                match f {
                    Func::Exp => x.exp(),
                    Func::Log => x.log(),
                    Func::Sin => x.sin(),
                    Func::Cos => x.cos(),
                    Func::Sqrt => x.sqrt(),
                    Func::Abs => x.abs(),
                    Func::Tanh => x.tanh(),
                    Func::Sigmoid => x.sigmoid(),
                    Func::Floor => x.floor(),
                    Func::Softmax => x.softmax(-1, Kind::Float),
                    Func::Normalize => normalize(x),
                    Func::Sum => x.sum_dim_intlist(-1, false, Kind::Float),
                }
            }
            I::Neg(a) => -&regs[*a],
            I::Binary(op, a, b) => {
                let (x, y) = (at(&regs, *a, rank), at(&regs, *b, rank));
                match op {
                    ir::Arith::Add => x + y,
                    ir::Arith::Sub => x - y,
                    ir::Arith::Mul => x * y,
                    ir::Arith::Div => x / y,
                    ir::Arith::Pow => x.pow(&y),
                }
            }
            I::Index(src, idx) => {
                let s = &regs[*src];
                let sshape = &p.instrs[*src].shape;
                let k = sshape[0];
                let i = regs[*idx]
                    .to_kind(Kind::Int64)
                    .clamp(0, k - 1)
                    .expand([n], false);
                if sshape.len() == 1 {
                    s.expand([n, k], false)
                        .gather(1, &i.unsqueeze(1), false)
                        .squeeze_dim(1)
                } else {
                    let m = sshape[1];
                    let i = i.view([n, 1, 1]).expand([n, 1, m], false);
                    s.expand([n, k, m], false)
                        .gather(1, &i, false)
                        .squeeze_dim(1)
                }
            }
            I::Concat(parts) => {
                let cols: Vec<Tensor> = parts
                    .iter()
                    .map(|&i| {
                        let t = at(&regs, i, 1);
                        let w = t.size()[1];
                        t.expand([n, w], false)
                    })
                    .collect();
                Tensor::cat(&cols, 1)
            }
            I::Stack(parts) => {
                let rows: Vec<Tensor> = parts
                    .iter()
                    .map(|&i| {
                        let mut f = vec![n];
                        f.extend(&p.instrs[i].shape);
                        regs[i].expand(f.as_slice(), false)
                    })
                    .collect();
                Tensor::stack(&rows, 1)
            }
        };
        regs.push(t);
    }
    let out = &regs[p.result];
    let out = if out.dim() == 1 {
        out.unsqueeze(1)
    } else {
        out.shallow_clone()
    };
    let d = out.size()[1];
    out.expand([n, d], false).to_kind(Kind::Float).contiguous()
}

/// Dirichlet samples, one row per row of concentrations (see [`crate::dist::dirichlet`]).
pub fn dirichlet(alpha: &Tensor) -> Tensor {
    crate::dist::dirichlet(alpha)
}

/// The encoder, generator and prior of a model on one device.
#[derive(Debug)]
pub struct Compiled {
    /// The encoders in the order they run, each with the index of the latent component it
    /// computes (None: the whole code).
    pub encoders: Vec<(Option<usize>, Net)>,
    pub generator: Net,
    pub model: ir::Model,
    pub device: Device,
}

impl Compiled {
    /// Builds the networks' variables in `vs` (root paths `encoder` and `generator`).
    pub fn new(vs: &nn::VarStore, model: &ir::Model) -> Compiled {
        let root = vs.root();
        let encoders = model
            .encoders
            .iter()
            .map(|e| match &e.component {
                None => (None, Net::new(&(&root / "encoder"), &e.net)),
                Some(c) => (
                    model.latents.iter().position(|l| &l.name == c),
                    Net::new(&(&root / "encoder" / c.as_str()), &e.net),
                ),
            })
            .collect();
        Compiled {
            encoders,
            generator: Net::new(&(&root / "generator"), &model.generator),
            model: model.clone(),
            device: vs.device(),
        }
    }

    pub fn encode(&self, x: &Tensor, train: bool) -> Tensor {
        self.encode_stats(x, train).0
    }

    /// Codes and, for a Gaussian encoder, its (mean, log-variance). Component encoders run in
    /// order (a later one may crop at an earlier one's output); the code is the components
    /// concatenated in declaration order.
    pub fn encode_stats(&self, x: &Tensor, train: bool) -> (Tensor, Option<(Tensor, Tensor)>) {
        let mut parts: Vec<Option<Tensor>> = (0..self.model.latents.len()).map(|_| None).collect();
        let mut stats = None;
        for (index, net) in &self.encoders {
            let (z, s) = net.forward_parts(x, train, &parts);
            stats = stats.or(s);
            match index {
                None => return (z, stats),
                Some(i) => parts[*i] = Some(z),
            }
        }
        let parts: Vec<Tensor> = parts.into_iter().flatten().collect();
        (Tensor::cat(&parts, 1), stats)
    }

    pub fn decode(&self, z: &Tensor, train: bool) -> Tensor {
        self.generator.forward_t(z, train)
    }

    /// `n` draws of the prior of the whole code (components side by side).
    pub fn sample_prior(&self, n: i64) -> Tensor {
        let parts: Vec<Tensor> = self
            .model
            .latents
            .iter()
            .map(|l| sample_prior(&l.prior, n, l.space.dim(), self.device))
            .collect();
        Tensor::cat(&parts, 1)
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
