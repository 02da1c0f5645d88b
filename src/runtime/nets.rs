//! The IR's networks as libtorch modules: one executable op per layer, built under an `nn::Path`.

use tch::{nn, Tensor};

use crate::ir::{self, Init, LayerOp};
use crate::runtime::init::{batch_norm_config, layer_inits};
use crate::runtime::tensor::{crop, normalize, place};

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
    Identity,
    Gelu,
    Silu,
    Elu(f64),
    /// (beta, threshold).
    Softplus(f64, f64),
    Dropout(f64),
    LayerNorm(nn::LayerNorm),
    GroupNorm(nn::GroupNorm),
    /// (kernel, stride, padding).
    AvgPool(i64, i64, i64),
    MaxPool(i64, i64, i64),
    AdaptiveAvgPool(i64),
    /// To (scale x, or a fixed size) with bilinear or nearest filling.
    Resize(Resize, ir::Resample),
    /// The body (under `body`), and the projection of the input (a one-layer net under `proj`).
    Residual(Net, Option<Net>),
    Concat(Vec<Net>),
    Reshape(Vec<i64>),
    Normalize,
    Torus,
    Expmap0(f64),
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

/// The output size of a resizing layer.
#[derive(Debug, Clone, Copy)]
enum Resize {
    Scale(i64),
    Size(i64),
}

/// A layer pipeline on the device.
#[derive(Debug)]
pub struct Net {
    ops: Vec<Op>,
}

impl Net {
    /// Builds the layers of `net` as variables under `path`; layers that name no
    /// initialisation start as `default` says.
    pub fn new(path: &nn::Path, net: &ir::Network, default: Init) -> Net {
        Net::from_layers(path, &net.layers, default)
    }

    /// Builds `layers` as variables under `path` (`path.l0`, `path.l1`, ...).
    // long: one arm per IR layer operation, each building its tch module.
    fn from_layers(path: &nn::Path, layers: &[ir::Layer], default: Init) -> Net {
        let ops = layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let p = path / format!("l{i}");
                let init = l.init.unwrap_or(default);
                match &l.op {
                    LayerOp::Linear {
                        input,
                        output,
                        bias,
                    } => Op::Linear(linear(&p, *input, *output, *bias, init)),
                    LayerOp::Conv2d {
                        input,
                        output,
                        kernel,
                        stride,
                        padding,
                        bias,
                        dilation,
                        groups,
                    } => {
                        let (ws_init, bs_init) =
                            layer_inits(init, &[*output, *input / *groups, *kernel, *kernel]);
                        Op::Conv(nn::conv2d(
                            &p,
                            *input,
                            *output,
                            *kernel,
                            nn::ConvConfig {
                                stride: *stride,
                                padding: *padding,
                                dilation: *dilation,
                                groups: *groups,
                                bias: *bias,
                                ws_init,
                                bs_init,
                                ..Default::default()
                            },
                        ))
                    }
                    // The IR variant's field list, as in shape inference: the checker sizes it, this builds it.
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
                    } => {
                        // PyTorch's transposed weight is [in, out / groups, k, k].
                        let (ws_init, bs_init) =
                            layer_inits(init, &[*input, *output / *groups, *kernel, *kernel]);
                        Op::ConvT(nn::conv_transpose2d(
                            &p,
                            *input,
                            *output,
                            *kernel,
                            nn::ConvTransposeConfig {
                                stride: *stride,
                                padding: *padding,
                                output_padding: *output_padding,
                                dilation: *dilation,
                                groups: *groups,
                                bias: *bias,
                                ws_init,
                                bs_init,
                                ..Default::default()
                            },
                        ))
                    }
                    LayerOp::BatchNorm { features } => {
                        if l.input.len() == 3 {
                            Op::Bn(nn::batch_norm2d(&p, *features, batch_norm_config()))
                        } else {
                            Op::Bn(nn::batch_norm1d(&p, *features, batch_norm_config()))
                        }
                    }
                    LayerOp::Relu => Op::Relu,
                    LayerOp::LeakyRelu { slope } => Op::LeakyRelu(*slope),
                    LayerOp::Tanh => Op::Tanh,
                    LayerOp::Sigmoid => Op::Sigmoid,
                    LayerOp::Softmax => Op::Softmax,
                    LayerOp::Flatten => Op::Flatten,
                    LayerOp::Identity => Op::Identity,
                    LayerOp::Gelu => Op::Gelu,
                    LayerOp::Silu => Op::Silu,
                    LayerOp::Elu { alpha } => Op::Elu(*alpha),
                    LayerOp::Softplus { beta, threshold } => Op::Softplus(*beta, *threshold),
                    LayerOp::Dropout { p } => Op::Dropout(*p),
                    // PyTorch's defaults: eps 1e-5, scale 1 and shift 0.
                    LayerOp::LayerNorm { shape } => {
                        Op::LayerNorm(nn::layer_norm(&p, shape.clone(), Default::default()))
                    }
                    LayerOp::GroupNorm { groups, channels } => {
                        Op::GroupNorm(nn::group_norm(&p, *groups, *channels, Default::default()))
                    }
                    LayerOp::AvgPool2d {
                        kernel,
                        stride,
                        padding,
                    } => Op::AvgPool(*kernel, *stride, *padding),
                    LayerOp::MaxPool2d {
                        kernel,
                        stride,
                        padding,
                    } => Op::MaxPool(*kernel, *stride, *padding),
                    LayerOp::AdaptiveAvgPool2d { size } => Op::AdaptiveAvgPool(*size),
                    LayerOp::Upsample { scale, mode } => Op::Resize(Resize::Scale(*scale), *mode),
                    LayerOp::Interpolate { size, mode } => Op::Resize(Resize::Size(*size), *mode),
                    LayerOp::Residual { body, projection } => Op::Residual(
                        Net::from_layers(&(&p / "body"), body, default),
                        projection.as_ref().map(|l| {
                            Net::from_layers(
                                &(&p / "proj"),
                                std::slice::from_ref(l.as_ref()),
                                default,
                            )
                        }),
                    ),
                    LayerOp::Concat { branches } => Op::Concat(
                        branches
                            .iter()
                            .enumerate()
                            .map(|(k, b)| Net::from_layers(&(&p / format!("b{k}")), b, default))
                            .collect(),
                    ),
                    LayerOp::Reshape { shape } => Op::Reshape(shape.clone()),
                    LayerOp::Normalize => Op::Normalize,
                    LayerOp::Torus => Op::Torus,
                    LayerOp::Expmap0 { c } => Op::Expmap0(*c),
                    LayerOp::Gaussian { input, output } => Op::Gaussian(
                        linear(&(&p / "mean"), *input, *output, true, init),
                        linear(&(&p / "log_var"), *input, *output, true, init),
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
        self.forward_parts(x, train, &[], None)
    }

    /// Like [`Net::forward_stats`]; `parts` holds the latent components encoded so far, for
    /// `crop` layers; `noise` replaces the standard normal draws of a Gaussian head in training.
    pub fn forward_parts(
        &self,
        x: &Tensor,
        train: bool,
        parts: &[Option<Tensor>],
        noise: Option<&Tensor>,
    ) -> (Tensor, Option<(Tensor, Tensor)>) {
        let mut h = x.shallow_clone();
        let mut stats = None;
        for op in &self.ops {
            h = match op {
                Op::Linear(l) => h.apply(l),
                Op::Conv(c) => channels_last(&h).apply(c),
                Op::ConvT(c) => channels_last(&h).apply(c),
                Op::Bn(b) => h.apply_t(b, train),
                Op::Relu => h.relu(),
                Op::LeakyRelu(s) => h.leaky_relu_with_slope(*s),
                Op::Tanh => h.tanh(),
                Op::Sigmoid => h.sigmoid(),
                Op::Softmax => h.softmax(-1, h.kind()),
                Op::Flatten => h.flatten(1, -1),
                Op::Identity => h,
                Op::Gelu => h.gelu("none"),
                Op::Silu => h.silu(),
                Op::Elu(alpha) => h.clamp_min(0.0) + (h.clamp_max(0.0).exp() - 1.0) * *alpha,
                Op::Softplus(beta, threshold) => {
                    let bx = &h * *beta;
                    let soft = bx.exp().log1p() / *beta;
                    soft.where_self(&bx.le(*threshold), &h)
                }
                Op::Dropout(p) => h.dropout(*p, train),
                Op::LayerNorm(l) => h.apply(l),
                Op::GroupNorm(g) => h.apply(g),
                Op::AvgPool(k, s, p) => {
                    h.avg_pool2d([*k, *k], [*s, *s], [*p, *p], false, true, None)
                }
                Op::MaxPool(k, s, p) => h.max_pool2d([*k, *k], [*s, *s], [*p, *p], [1, 1], false),
                Op::AdaptiveAvgPool(size) => h.adaptive_avg_pool2d([*size, *size]),
                Op::Resize(to, mode) => resize(&h, *to, *mode),
                Op::Residual(body, projection) => {
                    let skip = match projection {
                        Some(p) => p.forward_t(&h, train),
                        None => h.shallow_clone(),
                    };
                    body.forward_t(&h, train) + skip
                }
                Op::Concat(branches) => {
                    let outs: Vec<Tensor> =
                        branches.iter().map(|b| b.forward_t(&h, train)).collect();
                    Tensor::cat(&outs, 1)
                }
                Op::Reshape(s) => {
                    let mut shape = vec![-1i64];
                    shape.extend_from_slice(s);
                    h.reshape(shape.as_slice())
                }
                Op::Normalize => normalize(&h),
                Op::Torus => crate::runtime::tensor::torus(&h),
                Op::Expmap0(c) => crate::runtime::tensor::expmap0(&h, *c),
                Op::Gaussian(mean, log_var) => {
                    let (mu, lv) = (h.apply(mean), h.apply(log_var).clamp(-30.0, 20.0));
                    let z = if train {
                        let e = noise.map_or_else(|| mu.randn_like(), Tensor::shallow_clone);
                        &mu + (&lv * 0.5).exp() * e
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
        // Convolutions may leave their output stored channel-last: callers get the usual layout.
        (h.contiguous(), stats)
    }
}

/// `x` ([N, C, H, W]) resized as PyTorch's `nn.Upsample` does: by a scale (passed to the
/// kernel, as `scale_factor` is) or to a size; bilinear without aligned corners.
fn resize(x: &Tensor, to: Resize, mode: ir::Resample) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    let (size, scale) = match to {
        Resize::Scale(s) => ([h * s, w * s], Some(s as f64)),
        Resize::Size(s) => ([s, s], None),
    };
    match mode {
        ir::Resample::Nearest => x.upsample_nearest2d(size, scale, scale),
        ir::Resample::Bilinear => x.upsample_bilinear2d(size, false, scale, scale),
    }
}

/// `x` ([N, C, H, W]) with its values stored channel-last, as a convolution's input on the
/// CPU in float32: libtorch's oneDNN kernels then run without converting to and from their
/// blocked layout, which makes a 64x64 RGB training step about 15% faster (BENCHMARKS.md,
/// "Own data"). The values and shape are unchanged; an input already so stored is not copied.
fn channels_last(x: &Tensor) -> Tensor {
    if x.device() == tch::Device::Cpu && x.kind() == tch::Kind::Float && x.dim() == 4 {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        x.shallow_clone()
    }
}

/// A linear layer with weight [out, in] started as `init` says.
fn linear(p: &nn::Path, input: i64, output: i64, bias: bool, init: Init) -> nn::Linear {
    let (ws_init, bs_init) = layer_inits(init, &[output, input]);
    nn::linear(
        p,
        input,
        output,
        nn::LinearConfig {
            ws_init,
            bs_init: bias.then_some(bs_init),
            bias,
        },
    )
}

trait LeakyExt {
    fn leaky_relu_with_slope(&self, slope: f64) -> Tensor;
}

impl LeakyExt for Tensor {
    fn leaky_relu_with_slope(&self, slope: f64) -> Tensor {
        self.maximum(&(self * slope))
    }
}
