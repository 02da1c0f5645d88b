//! Initial values of layer parameters, as PyTorch sets them by default or as a model names.
//!
//! Fans are computed from the weight tensor's shape exactly as PyTorch's
//! `_calculate_fan_in_and_fan_out` does: fan_in = size(1) x kernel area, fan_out = size(0) x
//! kernel area. A linear weight is [out, in], a convolution's [out, in, k, k] and a transposed
//! convolution's [in, out, k, k], so a transposed convolution's fan_in counts its *output*
//! channels, as in PyTorch.

use tch::nn;

use crate::ir::Init;

/// (fan_in, fan_out) of a weight of shape `dims` (at least two dimensions).
pub fn fans(dims: &[i64]) -> (i64, i64) {
    let receptive: i64 = dims.iter().skip(2).product();
    let fan_in = dims.get(1).copied().unwrap_or(1) * receptive;
    let fan_out = dims.first().copied().unwrap_or(1) * receptive;
    (fan_in, fan_out)
}

fn uniform(bound: f64) -> nn::Init {
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// (weight, bias) initialisers of a layer whose weight has shape `dims`.
pub fn layer_inits(init: Init, dims: &[i64]) -> (nn::Init, nn::Init) {
    let (fan_in, fan_out) = fans(dims);
    let fan_in = fan_in.max(1) as f64;
    let zero = nn::Init::Const(0.0);
    match init {
        // kaiming_uniform_(a = sqrt(5)) gives the bound gain * sqrt(3 / fan_in) with gain
        // sqrt(2 / (1 + 5)): 1 / sqrt(fan_in); the bias uses the same bound.
        Init::Pytorch => (uniform(1.0 / fan_in.sqrt()), uniform(1.0 / fan_in.sqrt())),
        Init::Kaiming => (uniform((6.0 / fan_in).sqrt()), zero),
        Init::Xavier => (
            uniform((6.0 / (fan_in + fan_out.max(1) as f64)).sqrt()),
            zero,
        ),
        Init::Orthogonal => (nn::Init::Orthogonal { gain: 1.0 }, zero),
        Init::Zeros => (zero, zero),
    }
}

/// Batch normalisation as PyTorch starts it: scale 1, shift 0 (tch's default draws the scale
/// uniformly in [0, 1]).
pub fn batch_norm_config() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_follow_pytorch() {
        assert_eq!(fans(&[10, 784]), (784, 10));
        assert_eq!(fans(&[32, 1, 4, 4]), (16, 512));
        // ConvTranspose2d(64 -> 32, k 4): weight [64, 32, 4, 4], fan_in = 32 * 16.
        assert_eq!(fans(&[64, 32, 4, 4]), (512, 1024));
    }
}
