//! Shape inference: every layer's output shape and parameter count from its input shape.

use super::*;

/// "`NAME` is defined in the standard library: ..." when a stdlib file defines `KIND NAME(`.
pub(super) fn stdlib_hint(kind: &str, name: &str) -> Option<String> {
    crate::load::STDLIB
        .iter()
        .find(|(_, text)| text.contains(&format!("{kind} {name}(")))
        .map(|(file, _)| {
            format!("`{name}` is defined in the standard library: add `import \"std/{file}\"`")
        })
}

pub(super) fn name_of(c: &Call) -> &str {
    c.name.name.as_str()
}

/// `groups` must divide a convolution's input and output channels.
fn divides(name: &str, groups: i64, input: i64, output: i64) -> Result<(), (Diag, String)> {
    if input % groups == 0 && output % groups == 0 {
        return Ok(());
    }
    Err((
        msg::invalid_value(
            &format!("`groups` of `{name}`"),
            &format!("a divisor of both the {input} input and the {output} output channels"),
            &groups.to_string(),
        ),
        "each group maps the same number of input channels to the same number of outputs".into(),
    ))
}

/// Shape inference for one layer: the resolved op, its output shape and its parameter count.
// long: one arm per layer operation, each with its own shape rule and diagnostic.
pub(super) fn infer(op: LayerOp, input: &Shape) -> Result<(LayerOp, Shape, u64), (Diag, String)> {
    let s = shape_str(input);
    let flat_needed = |name: &str| {
        (
            msg::layer_input(name, "a flat input", &s),
            format!("insert `flatten` before `{name}`"),
        )
    };
    let image_needed = |name: &str| {
        (
            msg::layer_input(name, "an input of shape [channels, height, width]", &s),
            "insert `reshape(C, H, W)` before it".to_string(),
        )
    };
    let too_large = |what: &str| {
        (
            msg::too_large(&format!("this layer would need {what}")),
            format!(
                "tensors and parameter counts above {} elements are rejected before allocation",
                ir::thousands(MAX_ELEMENTS as u64)
            ),
        )
    };
    let numel = |s: &[i64]| s.iter().map(|&d| d as i128).product::<i128>();
    let out = match op {
        LayerOp::Linear { output, bias, .. } => {
            if input.len() != 1 {
                return Err(flat_needed("linear"));
            }
            let n = input[0];
            let params = (n as i128) * (output as i128) + if bias { output as i128 } else { 0 };
            if params > MAX_ELEMENTS || output as i128 > MAX_ELEMENTS {
                return Err(too_large(&format!("{params} parameters")));
            }
            (
                LayerOp::Linear {
                    input: n,
                    output,
                    bias,
                },
                vec![output],
                params as u64,
            )
        }
        LayerOp::Conv2d {
            output,
            kernel,
            stride,
            padding,
            bias,
            dilation,
            groups,
            ..
        } => {
            if input.len() != 3 {
                return Err(image_needed("conv2d"));
            }
            let (c, h, w) = (input[0], input[1], input[2]);
            divides("conv2d", groups, c, output)?;
            // The kernel's span with its taps spread `dilation` apart.
            let span = dilation * (kernel - 1) + 1;
            let oh = (h + 2 * padding - span).div_euclid(stride) + 1;
            let ow = (w + 2 * padding - span).div_euclid(stride) + 1;
            if h + 2 * padding < span || w + 2 * padding < span || oh < 1 || ow < 1 {
                let m = span - 2 * padding;
                let spread = if dilation == 1 {
                    String::new()
                } else {
                    format!(" (dilation {dilation})")
                };
                return Err((
                    msg::layer_input(
                        "conv2d",
                        &format!(
                            "at least {m}x{m} pixels for kernel {kernel}{spread} with padding {padding}"
                        ),
                        &format!("{h}x{w} pixels"),
                    ),
                    "use a smaller kernel, more padding, or fewer down-sampling layers before it"
                        .into(),
                ));
            }
            let params = (output as i128) * (c as i128 / groups as i128) * (kernel as i128).pow(2)
                + if bias { output as i128 } else { 0 };
            let out = vec![output, oh, ow];
            if params > MAX_ELEMENTS || numel(&out) > MAX_ELEMENTS {
                return Err(too_large("that many elements"));
            }
            (
                LayerOp::Conv2d {
                    input: c,
                    output,
                    kernel,
                    stride,
                    padding,
                    bias,
                    dilation,
                    groups,
                },
                out,
                params as u64,
            )
        }
        // Kept apart from conv2d's rule: the transposed size formula changes every computed line.
        LayerOp::ConvTranspose2d {
            output,
            kernel,
            stride,
            padding,
            output_padding,
            bias,
            dilation,
            groups,
            ..
        } => {
            if input.len() != 3 {
                return Err(image_needed("conv_transpose2d"));
            }
            if output_padding >= stride.max(dilation) {
                return Err((
                    msg::invalid_value(
                        "`output_padding` of `conv_transpose2d`",
                        &format!("smaller than the stride {stride} or the dilation {dilation}"),
                        &output_padding.to_string(),
                    ),
                    "output_padding only resolves the ambiguity of a strided transposed convolution".into(),
                ));
            }
            let (c, h, w) = (input[0], input[1], input[2]);
            divides("conv_transpose2d", groups, c, output)?;
            let span = dilation * (kernel - 1) + 1;
            let oh = (h - 1) * stride - 2 * padding + span + output_padding;
            let ow = (w - 1) * stride - 2 * padding + span + output_padding;
            if oh < 1 || ow < 1 {
                return Err((
                    msg::layer_input(
                        "conv_transpose2d",
                        &format!("an input that gives a non-empty output with padding {padding}"),
                        &format!("{h}x{w} pixels, giving {oh}x{ow}"),
                    ),
                    "reduce the padding".into(),
                ));
            }
            let params = (output as i128 / groups as i128) * (c as i128) * (kernel as i128).pow(2)
                + if bias { output as i128 } else { 0 };
            let out = vec![output, oh, ow];
            if params > MAX_ELEMENTS || numel(&out) > MAX_ELEMENTS {
                return Err(too_large("that many elements"));
            }
            (
                LayerOp::ConvTranspose2d {
                    input: c,
                    output,
                    kernel,
                    stride,
                    padding,
                    output_padding,
                    bias,
                    dilation,
                    groups,
                },
                out,
                params as u64,
            )
        }
        LayerOp::LayerNorm { .. } => {
            let n: i128 = numel(input);
            if 2 * n > MAX_ELEMENTS {
                return Err(too_large(&format!("{} parameters", 2 * n)));
            }
            (
                LayerOp::LayerNorm {
                    shape: input.clone(),
                },
                input.clone(),
                2 * n as u64,
            )
        }
        LayerOp::GroupNorm { groups, .. } => {
            let c = input[0];
            if c % groups != 0 {
                return Err((
                    msg::invalid_value(
                        "`groups` of `group_norm`",
                        &format!("a divisor of the {c} channels"),
                        &groups.to_string(),
                    ),
                    format!(
                        "each group holds the same number of channels: choose a divisor of {c}"
                    ),
                ));
            }
            (
                LayerOp::GroupNorm {
                    groups,
                    channels: c,
                },
                input.clone(),
                2 * c as u64,
            )
        }
        LayerOp::AvgPool2d {
            kernel,
            stride,
            padding,
        }
        | LayerOp::MaxPool2d {
            kernel,
            stride,
            padding,
        } => {
            let name = if matches!(op, LayerOp::AvgPool2d { .. }) {
                "avg_pool2d"
            } else {
                "max_pool2d"
            };
            if input.len() != 3 {
                return Err(image_needed(name));
            }
            if 2 * padding > kernel {
                return Err((
                    msg::invalid_value(
                        &format!("`padding` of `{name}`"),
                        &format!("at most half the kernel ({})", kernel / 2),
                        &padding.to_string(),
                    ),
                    "a window must overlap the image (PyTorch's rule)".into(),
                ));
            }
            let (c, h, w) = (input[0], input[1], input[2]);
            let oh = (h + 2 * padding - kernel).div_euclid(stride) + 1;
            let ow = (w + 2 * padding - kernel).div_euclid(stride) + 1;
            if h + 2 * padding < kernel || w + 2 * padding < kernel || oh < 1 || ow < 1 {
                let m = kernel - 2 * padding;
                return Err((
                    msg::layer_input(
                        name,
                        &format!(
                            "at least {m}x{m} pixels for kernel {kernel} with padding {padding}"
                        ),
                        &format!("{h}x{w} pixels"),
                    ),
                    "use a smaller kernel, or fewer down-sampling layers before it".into(),
                ));
            }
            (op, vec![c, oh, ow], 0)
        }
        LayerOp::AdaptiveAvgPool2d { size } => {
            if input.len() != 3 {
                return Err(image_needed("adaptive_avg_pool2d"));
            }
            (op, vec![input[0], size, size], 0)
        }
        LayerOp::Upsample { scale, .. } => {
            if input.len() != 3 {
                return Err(image_needed("upsample"));
            }
            let out = vec![input[0], input[1] * scale, input[2] * scale];
            if numel(&out) > MAX_ELEMENTS {
                return Err(too_large("that many elements"));
            }
            (op, out, 0)
        }
        LayerOp::Interpolate { size, .. } => {
            if input.len() != 3 {
                return Err(image_needed("interpolate"));
            }
            let out = vec![input[0], size, size];
            if numel(&out) > MAX_ELEMENTS {
                return Err(too_large("that many elements"));
            }
            (op, out, 0)
        }
        LayerOp::BatchNorm { .. } => {
            if input.len() != 1 && input.len() != 3 {
                return Err((
                    msg::layer_input("batch_norm", "[features] or [channels, height, width]", &s),
                    "flatten or reshape first".into(),
                ));
            }
            (
                LayerOp::BatchNorm { features: input[0] },
                input.clone(),
                2 * input[0] as u64,
            )
        }
        LayerOp::Torus => {
            if input.len() != 1 || input[0] % 2 != 0 {
                return Err((
                    msg::layer_input("torus", "a flat input of an even size", &s),
                    "each circle of the torus is a pair of coordinates: make the layer before it output 2k values".to_string(),
                ));
            }
            (op, input.clone(), 0)
        }
        LayerOp::Expmap0 { .. } => {
            if input.len() != 1 {
                return Err(flat_needed("expmap0"));
            }
            (op, input.clone(), 0)
        }
        LayerOp::Softmax | LayerOp::Normalize => {
            if input.len() != 1 {
                return Err(flat_needed(if op == LayerOp::Softmax {
                    "softmax"
                } else {
                    "normalize"
                }));
            }
            (op, input.clone(), 0)
        }
        LayerOp::Flatten => (op, vec![input.iter().product()], 0),
        LayerOp::Gaussian { output, .. } => {
            if input.len() != 1 {
                return Err(flat_needed("gaussian"));
            }
            let n = input[0];
            let params = 2 * ((n as i128) * (output as i128) + output as i128);
            if params > MAX_ELEMENTS {
                return Err(too_large(&format!("{params} parameters")));
            }
            (
                LayerOp::Gaussian { input: n, output },
                vec![output],
                params as u64,
            )
        }
        LayerOp::Reshape { ref shape } => {
            let have: i64 = input.iter().product();
            let want = numel(shape);
            if want != have as i128 {
                return Err((
                    msg::layer_input(
                        "reshape",
                        &format!("{want} values for {}", shape_str(shape)),
                        &format!("{s} ({have} values)"),
                    ),
                    format!("the sizes must multiply to {have}"),
                ));
            }
            let out = shape.clone();
            (op, out, 0)
        }
        // Blocks are built with their shapes by `Checker::block`, never inferred here.
        LayerOp::Residual { .. } | LayerOp::Concat { .. } => (op, input.clone(), 0),
        // Element-wise layers keep the shape. Listed by name, so that a new layer must state its
        // shape rule here. Component layers get their shapes where they are expanded.
        LayerOp::Relu
        | LayerOp::LeakyRelu { .. }
        | LayerOp::Tanh
        | LayerOp::Sigmoid
        | LayerOp::Identity
        | LayerOp::Gelu
        | LayerOp::Silu
        | LayerOp::Elu { .. }
        | LayerOp::Softplus { .. }
        | LayerOp::Dropout { .. }
        | LayerOp::Select { .. }
        | LayerOp::Place { .. }
        | LayerOp::Crop { .. } => (op, input.clone(), 0),
    };
    Ok(out)
}
