//! Latent geometry: the generator's pullback metric M(z) = J(z)^T J(z), the magnification factor
//! sqrt(det M), lengths and energies of latent curves measured in data space, and geodesics.
//!
//! Jacobian-vector products use the double-backward trick (tch has no forward mode): with
//! g(u) = J^T u, d<g(u), v>/du = J v. The full Jacobian is never built for curve quantities; the
//! metric itself (d x d) is assembled from d products where it is needed (magnification factor).

use tch::{Kind, Tensor};

use crate::ir::Space;

/// A generator as a function of a batch of codes `[B, d]`.
pub type Gen<'a> = &'a dyn Fn(&Tensor) -> Tensor;

/// J(z) v for a batch: `z`, `v` are `[B, d]`; returns `[B, D]` (outputs flattened).
pub fn jvp(f: Gen, z: &Tensor, v: &Tensor) -> Tensor {
    let z = z.detach().set_requires_grad(true);
    let y = f(&z).flatten(1, -1);
    let u = y.zeros_like().set_requires_grad(true);
    let g = Tensor::run_backward(&[(&y * &u).sum(Kind::Float)], &[&z], true, true).remove(0);
    Tensor::run_backward(&[(g * v).sum(Kind::Float)], &[&u], false, false).remove(0)
}

/// The pullback metric M(z) = J^T J, `[B, d, d]`, from d Jacobian-vector products.
pub fn metric(f: Gen, z: &Tensor) -> Tensor {
    let d = z.size()[1];
    let cols: Vec<Tensor> = (0..d)
        .map(|k| {
            let e = Tensor::zeros_like(z);
            let _ = e.narrow(1, k, 1).fill_(1.0);
            jvp(f, z, &e)
        })
        .collect();
    let j = Tensor::stack(&cols, 2); // [B, D, d]
    j.transpose(1, 2).matmul(&j)
}

/// The magnification factor sqrt(det M(z)) for a batch of codes.
pub fn magnification(f: Gen, z: &Tensor) -> Tensor {
    metric(f, z)
        .to_kind(Kind::Double)
        .det()
        .clamp_min(0.0)
        .sqrt()
}

/// Length and energy of a discretised curve `[K, d]` measured in data space: the sum of the
/// distances between consecutive decoded points, and (K - 1) times the sum of their squares
/// (the discrete version of the integral of |d f(gamma)/dt|^2 over t in [0, 1]).
pub fn length_energy(f: Gen, curve: &Tensor) -> (f64, f64) {
    let (l, e) = length_energy_t(f, curve);
    (l.double_value(&[]), e.double_value(&[]))
}

fn length_energy_t(f: Gen, curve: &Tensor) -> (Tensor, Tensor) {
    let x = f(curve).flatten(1, -1);
    let k = curve.size()[0];
    let steps = &x.narrow(0, 1, k - 1) - &x.narrow(0, 0, k - 1);
    let sq = steps.square().sum_dim_intlist(1, false, Kind::Float);
    (
        sq.sqrt().sum(Kind::Float),
        sq.sum(Kind::Float) * (k - 1) as f64,
    )
}

/// The length of a curve from the metric: the sum over segments of sqrt(v^T M v) with v the
/// segment (Jacobian-vector products at the segment midpoints).
pub fn metric_length(f: Gen, curve: &Tensor) -> f64 {
    let k = curve.size()[0];
    let (a, b) = (curve.narrow(0, 0, k - 1), curve.narrow(0, 1, k - 1));
    let mid = (&a + &b) / 2.0;
    let jv = jvp(f, &mid, &(&b - &a));
    jv.square()
        .sum_dim_intlist(1, false, Kind::Float)
        .sqrt()
        .sum(Kind::Double)
        .double_value(&[])
}

/// The initial curve: straight in R^d and on the simplex, the great circle on the sphere.
pub fn initial_curve(z0: &Tensor, z1: &Tensor, space: Space, points: i64) -> Tensor {
    crate::runtime::space::latent_path(z0, z1, space, points)
}

/// What the solver returns.
#[derive(Debug, serde::Serialize)]
pub struct Geodesic {
    /// The curve `[K, d]` (end points fixed).
    #[serde(skip)]
    pub curve: Tensor,
    pub points: Vec<Vec<f64>>,
    pub initial_length: f64,
    pub initial_energy: f64,
    pub length: f64,
    pub energy: f64,
    pub iterations: i64,
    /// Whether the optimised curve was kept (false: the initial curve was already shortest).
    pub improved: bool,
}

/// Solver settings.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub max_iterations: i64,
    /// Stop when the energy changed by less than this fraction over the last 10 iterations.
    pub rel_tol: f64,
    pub lr: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_iterations: 1000,
            rel_tol: 1e-5,
            lr: 1e-2,
        }
    }
}

/// Minimises the discrete curve energy over the interior points, from the initial curve, with
/// Adam. On the sphere each point is projected back after every step; on the simplex the points
/// live in a chart (softmax of free logits). The result is never longer than the initial curve:
/// if optimisation does not shorten it, the initial curve is returned.
pub fn solve(f: Gen, z0: &Tensor, z1: &Tensor, space: Space, points: i64, o: &Options) -> Geodesic {
    let init = initial_curve(z0, z1, space, points).detach();
    let (il, ie) = length_energy(f, &init);
    let k = points;
    let (first, last) = (init.narrow(0, 0, 1), init.narrow(0, k - 1, 1));
    // Free parameters for the interior points, in the space's chart.
    let to_param = |c: &Tensor| match space {
        Space::Simplex { .. } => c.clamp_min(1e-8).log(),
        Space::Torus { .. } => crate::runtime::tensor::torus_angles(c),
        Space::Ball { c: k, .. } => crate::runtime::tensor::logmap0(c, k),
        _ => c.shallow_clone(),
    };
    let from_param = |p: &Tensor| match space {
        Space::Simplex { .. } => p.softmax(-1, Kind::Float),
        Space::Torus { .. } => crate::runtime::tensor::torus_points(p),
        Space::Ball { c: k, .. } => crate::runtime::tensor::expmap0(p, k),
        _ => p.shallow_clone(),
    };
    let scale = (z1 - z0).abs().max().double_value(&[]).max(1e-3);
    let mut p = to_param(&init.narrow(0, 1, k - 2))
        .detach()
        .set_requires_grad(true);
    let (mut m, mut v) = (p.zeros_like(), p.zeros_like());
    let (b1, b2, lr) = (0.9, 0.999, o.lr * scale);
    let mut history: Vec<f64> = vec![];
    let mut best = (ie, init.shallow_clone());
    let mut iters = 0;
    for t in 1..=o.max_iterations {
        iters = t;
        let curve = Tensor::cat(
            &[first.shallow_clone(), from_param(&p), last.shallow_clone()],
            0,
        );
        let (_, e) = length_energy_t(f, &curve);
        let g = Tensor::run_backward(&[&e], &[&p], false, false).remove(0);
        let ev = e.double_value(&[]);
        if ev < best.0 {
            best = (ev, curve.detach());
        }
        history.push(ev);
        tch::no_grad(|| {
            m = &m * b1 + &g * (1.0 - b1);
            v = &v * b2 + g.square() * (1.0 - b2);
            let mh = &m / (1.0 - b1.powi(t as i32));
            let vh = &v / (1.0 - b2.powi(t as i32));
            let step = mh / (vh.sqrt() + 1e-12) * lr;
            let mut next = &p - step;
            if let Space::Sphere { .. } = space {
                next = crate::runtime::tensor::normalize(&next);
            }
            p = next.detach().set_requires_grad(true);
        });
        if history.len() > 10 {
            let old = history[history.len() - 11];
            if ((old - ev) / old.abs().max(1e-12)).abs() < o.rel_tol {
                break;
            }
        }
    }
    let (l, e) = length_energy(f, &best.1);
    let improved = l < il;
    let curve = if improved { best.1 } else { init };
    let (length, energy) = if improved { (l, e) } else { (il, ie) };
    let pts: Vec<f64> = Vec::<f64>::try_from(
        curve
            .to_kind(Kind::Double)
            .to_device(tch::Device::Cpu)
            .flatten(0, -1),
    )
    .unwrap_or_default();
    let d = curve.size()[1] as usize;
    Geodesic {
        points: pts.chunks(d).map(|c| c.to_vec()).collect(),
        curve,
        initial_length: il,
        initial_energy: ie,
        length,
        energy,
        iterations: iters,
        improved,
    }
}

/// Rounds to 6 significant digits, for stable JSON.
fn r6(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let m = 10f64.powi(5 - x.abs().log10().floor() as i32);
    (x * m).round() / m
}

/// The `geodesic` command's JSON: the straight and the geodesic curve with their lengths.
pub fn report_json(
    from: i64,
    to: i64,
    space: Space,
    straight: &Tensor,
    g: &Geodesic,
    f: Gen,
) -> serde_json::Value {
    let pts = |c: &Tensor| -> Vec<Vec<f64>> {
        let d = c.size()[1] as usize;
        let v: Vec<f64> = Vec::<f64>::try_from(
            c.to_kind(Kind::Double)
                .to_device(tch::Device::Cpu)
                .flatten(0, -1),
        )
        .unwrap_or_default();
        v.chunks(d)
            .map(|r| r.iter().map(|x| r6(*x)).collect())
            .collect()
    };
    serde_json::json!({
        "from": from,
        "to": to,
        "space": space.to_string(),
        "points": straight.size()[0],
        "straight": {
            "length_data_space": r6(g.initial_length),
            "energy": r6(g.initial_energy),
            "length_from_metric": r6(metric_length(f, straight)),
            "curve": pts(straight),
        },
        "geodesic": {
            "length_data_space": r6(g.length),
            "energy": r6(g.energy),
            "length_from_metric": r6(metric_length(f, &g.curve)),
            "iterations": g.iterations,
            "shorter_than_straight": g.improved,
            "curve": pts(&g.curve),
        },
        "note": "lengths are sums of distances between decoded consecutive points (data space); length_from_metric integrates sqrt(v^T J^T J v) with Jacobian-vector products",
    })
}
