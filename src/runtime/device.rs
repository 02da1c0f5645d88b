//! Devices and memory: `auto|cpu|cuda`, and the memory estimate checked before training.

use tch::Device;

use crate::ir::{self, PenaltyKind};

/// Resolves `auto|cpu|cuda` to a device.
pub fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err(
                    "CUDA was asked for but no CUDA device is visible; use --device cpu or auto"
                        .into(),
                )
            }
        }
        other => Err(format!("unknown device `{other}`; use auto, cpu or cuda")),
    }
}

/// Bytes, in words: "1.5 GiB".
pub fn bytes(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

/// An estimate of the memory training needs, from the IR: parameters with their gradients and
/// Adam moments, activations kept for the backward pass, and the unrolled Sinkhorn iterations.
pub fn estimate_memory(model: &ir::Model) -> f64 {
    let params = (model.encoder_params() + model.generator.params()) as f64;
    let b = model.train.batch as f64;
    let act: f64 = model
        .encoders
        .iter()
        .flat_map(|e| &e.net.layers)
        .chain(&model.generator.layers)
        .map(|l| l.output.iter().map(|&d| d as f64).product::<f64>())
        .sum();
    let sinkhorn: f64 = model
        .penalties
        .iter()
        .map(|p| match &p.kind {
            PenaltyKind::Sinkhorn {
                iterations,
                debiased,
                envelope,
                ..
            } => {
                let kept = if *envelope {
                    4.0
                } else {
                    2.0 * *iterations as f64 + 4.0
                };
                b * b * kept * if *debiased { 3.0 } else { 1.0 }
            }
            PenaltyKind::Mmd { .. } => 3.0 * 8.0 * b * b,
            PenaltyKind::Exact { .. } => 2.0 * b * b,
            PenaltyKind::Sliced { projections, .. } => 6.0 * b * *projections as f64,
            PenaltyKind::Gan { discriminator, .. } => {
                4.0 * discriminator.params() as f64
                    + 6.0
                        * b
                        * discriminator
                            .layers
                            .iter()
                            .map(|l| l.output.iter().map(|&d| d as f64).product::<f64>())
                            .sum::<f64>()
            }
            PenaltyKind::Kl { .. } => 0.0,
        })
        .sum();
    4.0 * (4.0 * params + 2.0 * b * act + sinkhorn)
}

/// Available memory on `device`, when it can be known (CPU: MemAvailable of /proc/meminfo).
pub fn available_memory(device: Device) -> Option<f64> {
    if device != Device::Cpu {
        return None;
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

extern "C" {
    // at::autocast::set_autocast_dtype(c10::DeviceType, c10::ScalarType) from libtorch_cpu:
    // tch has autocast on and off but not its type (float16 by default on CUDA). Both enums
    // are one byte (int8_t), passed as in C.
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn at_set_autocast_dtype(device: i8, kind: i8);
}

/// Makes CUDA autocast use bf16 (c10::DeviceType::CUDA = 1, c10::ScalarType::BFloat16 = 15).
pub fn autocast_bf16() {
    // SAFETY: a setter of a global in libtorch, with valid enum values.
    unsafe { at_set_autocast_dtype(1, 15) }
}
