//! Small synthetic 2-D data sets drawn from a seed.

use tch::{Device, Kind, Tensor};

use crate::ir::DataSource;

/// Draws a synthetic 2-D data set on the CPU from `seed`; labels are the ring or blob index.
pub fn synthetic_points(source: &DataSource, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let opts = (Kind::Float, Device::Cpu);
    match *source {
        DataSource::Rings { n, k, noise } => {
            let n = n as i64;
            let ring = Tensor::randint(k as i64, [n], (Kind::Int64, Device::Cpu));
            let radius = (ring.to_kind(Kind::Float) + 1.0) / k as f64;
            let angle = Tensor::rand([n], opts) * (2.0 * std::f64::consts::PI);
            let x = Tensor::stack(&[&radius * angle.cos(), &radius * angle.sin()], 1)
                + Tensor::randn([n, 2], opts) * noise;
            (x, ring)
        }
        DataSource::GaussianGrid { n, k, std } => {
            let n = n as i64;
            let k = k as i64;
            let cell = Tensor::randint(k * k, [n], (Kind::Int64, Device::Cpu));
            let step = if k > 1 { 2.0 / (k - 1) as f64 } else { 0.0 };
            let cx = cell.remainder(k).to_kind(Kind::Float) * step - if k > 1 { 1.0 } else { 0.0 };
            let cy = cell.floor_divide_scalar(k).to_kind(Kind::Float) * step
                - if k > 1 { 1.0 } else { 0.0 };
            let x = Tensor::stack(&[cx, cy], 1) + Tensor::randn([n, 2], opts) * std;
            (x, cell)
        }
        DataSource::SwissRoll { n, noise } => {
            let n = n as i64;
            let t = (Tensor::rand([n], opts) * 2.0 + 1.0) * (1.5 * std::f64::consts::PI);
            let scale = 1.0 / (4.5 * std::f64::consts::PI);
            let x = Tensor::stack(&[&t * t.cos() * scale, &t * t.sin() * scale], 1)
                + Tensor::randn([n, 2], opts) * noise;
            let label = (&t / (std::f64::consts::PI)).floor().to_kind(Kind::Int64);
            (x, label)
        }
        // Files and procedural images are loaded elsewhere.
        _ => (
            Tensor::zeros([0, 2], opts),
            Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
        ),
    }
}
