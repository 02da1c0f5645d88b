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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_goes_to_host_memory_only_when_it_does_not_fit_beside_the_model() {
        let gib = 1024f64.powi(3);
        assert_eq!(data_on_host(2.0 * gib, 1.0 * gib, 10.0 * gib), Some(false));
        assert_eq!(data_on_host(2.0 * gib, 6.9 * gib, 10.0 * gib), Some(false));
        assert_eq!(data_on_host(2.0 * gib, 7.1 * gib, 10.0 * gib), Some(true));
        assert_eq!(data_on_host(9.5 * gib, 0.0, 10.0 * gib), None);
    }
}

/// The bytes the examples of a data set (training and test together) take on the device,
/// where the model file says how many there are: uint8 sources a byte per value, the others
/// four. None for folders and arrays, whose size is known only once they are read.
pub fn estimate_data(spec: &ir::DataSpec) -> Option<f64> {
    use ir::DataSource as S;
    let per: f64 = spec.source_shape().iter().map(|&d| d as f64).product();
    let limited = |limit: usize, all: f64| {
        if limit > 0 {
            limit as f64 + 10_000.0
        } else {
            all
        }
    };
    let (count, bytes) = match &spec.source {
        S::Idx { limit, .. } => (limited(*limit, 70_000.0), 1.0),
        S::Rings { n, .. } | S::GaussianGrid { n, .. } | S::SwissRoll { n, .. } => {
            (2.0 * *n as f64, 4.0)
        }
        S::Tree { n, dim, .. } => (2.0 * (*n * *dim) as f64, 4.0),
        S::Donut { n, .. } => (2.0 * 3.0 * *n as f64, 4.0),
        S::Cifar10 { limit, .. } => (limited(*limit, 60_000.0), 1.0),
        S::Shapes { n, .. } => (*n as f64 * 1.2, 4.0),
        S::Images { .. } | S::Arrays { .. } => return None,
    };
    // Transforms turn a uint8 store into floats.
    let bytes = if spec.transforms.is_empty() {
        bytes
    } else {
        4.0
    };
    Some(count * per * bytes)
}

/// Where a training set goes on a GPU with `free` bytes, beside a model needing `model` bytes:
/// `Some(false)` on the device when both fit with a tenth of the memory to spare, `Some(true)`
/// in host memory (each batch copied over) when only the model fits, None when not even the
/// model fits.
pub fn data_on_host(model: f64, data: f64, free: f64) -> Option<bool> {
    let usable = 0.9 * free;
    if model > usable {
        None
    } else {
        Some(model + data > usable)
    }
}

/// Available memory on `device`, when it can be known (CPU: MemAvailable of /proc/meminfo;
/// CUDA: the free memory the runtime reports).
pub fn available_memory(device: Device) -> Option<f64> {
    if let Device::Cuda(_) = device {
        return cuda_free();
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// Free memory on the current CUDA device, from `cudaMemGetInfo` of the CUDA runtime that
/// libtorch_cuda loaded (looked up at run time: nothing links against it at build time).
fn cuda_free() -> Option<f64> {
    type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> i32;
    // SAFETY: dlsym with a NUL-terminated name; a found symbol is cudaMemGetInfo of the CUDA
    // runtime, whose C signature is `cudaError_t (size_t *free, size_t *total)`.
    unsafe {
        let f = libc::dlsym(libc::RTLD_DEFAULT, c"cudaMemGetInfo".as_ptr());
        if f.is_null() {
            return None;
        }
        let f: MemGetInfo = std::mem::transmute(f);
        let (mut free, mut total) = (0usize, 0usize);
        (f(&mut free, &mut total) == 0).then_some(free as f64)
    }
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
