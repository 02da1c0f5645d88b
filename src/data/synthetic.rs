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
        DataSource::Tree {
            n,
            depth,
            branching,
            dim,
            noise,
            tree_seed,
        } => {
            let (nodes, depths) = tree_nodes(depth, branching, dim, tree_seed, seed);
            let count = depths.size()[0];
            let pick = Tensor::randint(count, [n as i64], (Kind::Int64, Device::Cpu));
            let x =
                nodes.index_select(0, &pick) + Tensor::randn([n as i64, dim as i64], opts) * noise;
            (x, depths.index_select(0, &pick))
        }
        DataSource::Donut { n, noise } => {
            let n = n as i64;
            let tau = 2.0 * std::f64::consts::PI;
            let (theta, phi) = (Tensor::rand([n], opts) * tau, Tensor::rand([n], opts) * tau);
            let ring: Tensor = phi.cos() * 0.4 + 1.0;
            let x = Tensor::stack(
                &[&ring * theta.cos(), &ring * theta.sin(), phi.sin() * 0.4],
                1,
            ) + Tensor::randn([n, 3], opts) * noise;
            let label = (theta * (8.0 / tau))
                .floor()
                .clamp(0.0, 7.0)
                .to_kind(Kind::Int64);
            (x, label)
        }
        // Files and procedural images are loaded elsewhere.
        _ => (
            Tensor::zeros([0, 2], opts),
            Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
        ),
    }
}

/// The nodes of a complete tree in R^dim, breadth first from the root at the origin, each a unit
/// step in a random direction from its parent (the directions drawn from `seed`, independent of
/// the data's seed so that both splits see one tree), scaled by 1 / depth; and their depths.
/// Leaves the global generator seeded with `then`.
fn tree_nodes(
    depth: usize,
    branching: usize,
    dim: usize,
    seed: u64,
    then: i64,
) -> (Tensor, Tensor) {
    tch::manual_seed(seed as i64 ^ 0x7265_6574);
    let opts = (Kind::Double, Device::Cpu);
    let mut levels = vec![Tensor::zeros([1, dim as i64], opts)];
    let mut depths = vec![Tensor::zeros([1], (Kind::Int64, Device::Cpu))];
    for d in 1..=depth {
        let parents = levels[d - 1].repeat_interleave_self_int(branching as i64, 0, None);
        let steps =
            crate::runtime::tensor::normalize(&Tensor::randn(parents.size().as_slice(), opts));
        let count = parents.size()[0];
        levels.push(parents + steps);
        depths.push(Tensor::full([count], d as i64, (Kind::Int64, Device::Cpu)));
    }
    tch::manual_seed(then);
    let x = Tensor::cat(&levels, 0) / depth.max(1) as f64;
    (x.to_kind(Kind::Float), Tensor::cat(&depths, 0))
}
