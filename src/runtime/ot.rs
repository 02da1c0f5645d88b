//! Distances between a batch of codes and a batch of prior samples.
//!
//! - [`sinkhorn`] runs a fixed number of log-domain Sinkhorn iterations from zero potentials; every
//!   operation is a tensor operation, so autograd back-propagates through the unrolled iterations
//!   (the SAE paper's gradient). [`solve`] adds tolerance stopping, epsilon scaling, the envelope
//!   gradient and the debiased divergence.
//! - [`mmd`] (inverse multiquadratic or Gaussian kernels, unbiased), [`sliced`] (sliced
//!   Wasserstein), [`exact`] (optimal assignment, Hungarian algorithm) and [`gaussian_kl`].

use tch::{Kind, Tensor};

use crate::ir::LatentCost;

/// Pairwise cost matrix C_ij between rows of `x` (n x d) and `y` (m x d).
pub fn cost_matrix(x: &Tensor, y: &Tensor, cost: LatentCost) -> Tensor {
    match cost {
        LatentCost::Euclidean { p } => {
            let sq = sqdist(x, y);
            if p == 2.0 {
                sq
            } else {
                // A tiny floor keeps the gradient of |.|^p finite where points coincide.
                (sq + 1e-12).pow_tensor_scalar(p / 2.0)
            }
        }
        LatentCost::Geodesic { p } => {
            let angle = sphere_angle(x, y);
            if p == 1.0 {
                angle
            } else {
                angle.pow_tensor_scalar(p)
            }
        }
        LatentCost::Torus { p } => {
            // Angle between the unit vectors of each circle, by atan2 (a finite gradient where
            // they coincide, unlike arccos), squared and summed over the circles.
            let (n, m, k2) = (x.size()[0], y.size()[0], x.size()[1]);
            let a = x.reshape([n, 1, k2 / 2, 2]);
            let b = y.reshape([1, m, k2 / 2, 2]);
            let dot = (&a * &b).sum_dim_intlist(-1, false, x.kind());
            let cross = a.select(-1, 0) * b.select(-1, 1) - a.select(-1, 1) * b.select(-1, 0);
            let sq = cross
                .atan2(&dot)
                .square()
                .sum_dim_intlist(-1, false, x.kind());
            if p == 2.0 {
                sq
            } else {
                (sq + 1e-12).pow_tensor_scalar(p / 2.0)
            }
        }
        LatentCost::Hyperbolic { p, c } => {
            let d = hyperbolic_distance(x, y, c);
            if p == 1.0 {
                d
            } else {
                d.pow_tensor_scalar(p)
            }
        }
        LatentCost::FisherRao { p } => {
            // 2 arccos(sum_i sqrt(z_i w_i)): twice the angle between sqrt(z) and sqrt(w), unit
            // vectors of the positive orthant; the floor keeps sqrt's gradient finite at 0.
            let d = sphere_angle(&x.clamp_min(1e-12).sqrt(), &y.clamp_min(1e-12).sqrt()) * 2.0;
            if p == 1.0 {
                d
            } else {
                d.pow_tensor_scalar(p)
            }
        }
    }
}

/// Angles between rows of `x` and `y` (unit vectors), from chords rather than from the dot
/// product: 2 asin(|x - y| / 2) where the vectors point the same way, pi - 2 asin(|x + y| / 2)
/// where they point apart. arccos of the dot product had to be clamped away from +-1 for a finite
/// gradient, so angles under 1.4e-3 from 0 or pi read as 1.4e-3; the chords need no clamp and
/// keep the precision of [`sqdist`] (about u times the squared spread of the points around their
/// centre); the floor under the root keeps the gradient finite where points coincide.
fn sphere_angle(x: &Tensor, y: &Tensor) -> Tensor {
    // Each branch is used where its half chord is at most sqrt(1/2) = 0.7071: the cap at 0.75
    // never binds there, and keeps asin's derivative finite in the other branch, whose zero
    // gradient from `where` would otherwise meet an infinite one (0 x inf = NaN).
    let half_chord = |d2: Tensor| ((d2 + 1e-24).sqrt() * 0.5).clamp_max(0.75).asin() * 2.0;
    let near = half_chord(sqdist(x, y));
    let far = half_chord(sqdist(x, &-y)).neg() + std::f64::consts::PI;
    let same_side = x.matmul(&y.tr()).ge(0.0);
    near.where_self(&same_side, &far)
}

/// Geodesic distances of the Poincare ball of curvature -c between rows of `x` and `y`:
/// arccosh(1 + delta) / sqrt(c) with delta = 2c|x - y|^2 / ((1 - c|x|^2)(1 - c|y|^2)), written
/// as log1p(delta + sqrt(delta (delta + 2))) with the conformal factors floored at 1e-7 (points
/// at the boundary stay finite) and a tiny floor under the root (a finite gradient where points
/// coincide).
pub fn hyperbolic_distance(x: &Tensor, y: &Tensor, c: f64) -> Tensor {
    // |x - y|^2 from the differences, not |x|^2 + |y|^2 - 2<x, y>: near the boundary the
    // conformal factors multiply that expansion's rounding by up to 1e10.
    let sq = (x.unsqueeze(1) - y.unsqueeze(0))
        .square()
        .sum_dim_intlist(-1, false, x.kind());
    let fx: Tensor = 1.0 - x.square().sum_dim_intlist(1, true, x.kind()) * c;
    let fy: Tensor = 1.0 - y.square().sum_dim_intlist(1, true, y.kind()) * c;
    let denom = fx.clamp_min(1e-7) * fy.clamp_min(1e-7).tr();
    let delta = sq * (2.0 * c) / denom;
    let root = (&delta * (&delta + 2.0) + 1e-15).sqrt();
    (delta + root).log1p() / c.sqrt()
}

/// The cost of a product of latent components: sum_i weight_i C_i(x_i, y_j) over the factors,
/// each on its own coordinates with its own space's cost.
pub fn joint_cost_matrix(x: &Tensor, y: &Tensor, factors: &[crate::ir::Factor]) -> Tensor {
    factors
        .iter()
        .map(|q| {
            cost_matrix(
                &x.narrow(1, q.offset, q.dim),
                &y.narrow(1, q.offset, q.dim),
                q.cost,
            ) * q.weight
        })
        .reduce(|a, b| a + b)
        .unwrap_or_else(|| sqdist(x, y))
}

/// Squared Euclidean distances |x_i - y_j|^2, clamped at zero against rounding.
///
/// Computed as |x|^2 + |y|^2 - 2 x.y (one matrix product, no n x m x d tensor), after moving both
/// sets by the mean of `y`: the expansion's rounding error is about u (|x|^2 + |y|^2), which the
/// shift makes the points' spread around their centre instead of their distance from the origin
/// (codes far from 0 lost all their digits in float32 otherwise; see the test below). Distances
/// do not change under the shift, and the mean is detached: its gradient would be exactly zero.
pub fn sqdist(x: &Tensor, y: &Tensor) -> Tensor {
    let centre = y.detach().mean_dim(0, true, y.kind());
    let (x, y) = (&(x - &centre), &(y - &centre));
    let xx = x.square().sum_dim_intlist(1, true, x.kind());
    let yy = y.square().sum_dim_intlist(1, true, y.kind()).tr();
    (xx + yy - x.matmul(&y.tr()) * 2.0).clamp_min(0.0)
}

/// log-sum-exp along `dim` with the shifted exponents floored at -80: the dropped terms are below
/// e^-80 (2e-35) relative, invisible in float32 and far below the tests' float64 tolerances, and
/// libtorch's CPU `exp` is about 10x slower for arguments below about -88, which small epsilon
/// (C / eps up to several hundred) hits on most entries. The max is detached: the gradient is
/// still exactly the softmax.
pub fn lse(a: &Tensor, dim: i64) -> Tensor {
    let m = a.detach().amax(dim, true);
    (a - &m)
        .clamp_min(-80.0)
        .exp()
        .sum_dim_intlist(dim, false, a.kind())
        .log()
        + m.squeeze_dim(dim)
}

/// Which log-sum-exp a solve uses. Without an autograd tape (envelope mode, evaluation) the
/// floored one ([`lse`]) wins when most exponents fall below -88 (small epsilon) and for large
/// matrices, while torch's fused `logsumexp` wins on small ones at moderate epsilon (forward only,
/// n 256: eps 0.1 0.09 vs 0.26 ms, eps 0.01 0.55 vs 0.25 ms; n 1024: 2.4 vs 1.4 ms, 11.8 vs 2.3).
/// With a tape (unrolled gradient) the fused one wins: the floored chain keeps more intermediates
/// (n 256, eps 0.01 penalty 12.8 -> 23.6 ms; n 1024 peak memory 516 -> 1684 MiB). Float64 has no
/// slow path.
fn pick_lse(c: &Tensor, epsilon: f64) -> fn(&Tensor, i64) -> Tensor {
    let cells = c.size().iter().product::<i64>();
    if c.kind() == Kind::Float && !c.requires_grad() && (epsilon < 0.05 || cells >= 512 * 512) {
        lse
    } else {
        |a: &Tensor, dim: i64| a.logsumexp(dim, false)
    }
}

/// What a Sinkhorn run returns.
#[derive(Debug)]
pub struct SinkhornOutput {
    /// <P, C>, the transport cost of the entropic plan ("sharp" Sinkhorn; the training loss).
    pub sharp: Tensor,
    /// eps * (mean f + mean g) in scaled units: the entropic dual value <a, f> + <b, g>.
    pub dual: Tensor,
    /// Scaled potentials f/eps (n) and g/eps (m).
    pub f: Tensor,
    pub g: Tensor,
    /// The plan P (n x m).
    pub plan: Tensor,
}

/// Log-domain Sinkhorn with uniform weights for `iterations` steps from zero potentials.
///
/// Each step is f <- -LSE_j(g_j + log b_j - C_ij/eps), g <- -LSE_i(f_i + log a_i - C_ij/eps),
/// which is stable for small epsilon because nothing is exponentiated outside a log-sum-exp.
pub fn sinkhorn(c: &Tensor, epsilon: f64, iterations: i64) -> SinkhornOutput {
    let (n, m) = (c.size()[0], c.size()[1]);
    let la = -(n as f64).ln();
    let lb = -(m as f64).ln();
    let cs = c / epsilon;
    let lse = pick_lse(c, epsilon);
    let mut f = Tensor::zeros([n], (c.kind(), c.device()));
    let mut g = Tensor::zeros([m], (c.kind(), c.device()));
    for _ in 0..iterations {
        f = -lse(&((&g + lb).unsqueeze(0) - &cs), 1);
        g = -lse(&((&f + la).unsqueeze(1) - &cs), 0);
    }
    let plan = (f.unsqueeze(1) + g.unsqueeze(0) - &cs + (la + lb)).exp();
    let sharp = (&plan * c).sum(c.kind());
    let dual = (f.mean(c.kind()) + g.mean(c.kind())) * epsilon;
    SinkhornOutput {
        sharp,
        dual,
        f,
        g,
        plan,
    }
}

/// The row-marginal error sum_i |sum_j P_ij - 1/n| of a plan, a convergence measure.
pub fn marginal_error(plan: &Tensor) -> f64 {
    let n = plan.size()[0] as f64;
    let rows = plan.sum_dim_intlist(1, false, plan.kind());
    (rows - 1.0 / n).abs().sum(Kind::Double).double_value(&[])
}

/// Options of [`solve`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkhornOptions {
    pub epsilon: f64,
    /// Iterations at the target epsilon: exactly this many when `tolerance` is 0, else a cap.
    pub iterations: i64,
    /// Stop when the row-marginal error sum_i |sum_j P_ij - 1/n| falls below this (0: off).
    pub tolerance: f64,
    /// Epsilon scaling: start at max C and multiply by this factor (in (0, 1); 1: off), one
    /// iteration per stage, before iterating at the target epsilon.
    pub scaling: f64,
    /// Envelope gradient: iterate without autograd and differentiate only the final plan.
    pub envelope: bool,
}

/// The result of [`solve`].
#[derive(Debug)]
pub struct Solved {
    /// Unrolled: <P, C>, with the gradient through the iterations. Envelope: the entropic dual
    /// value, with the gradient sum_ij P_ij dC_ij (the envelope theorem).
    pub value: Tensor,
    /// The entropic dual value <a, F> + <b, G> (differentiable when unrolled).
    pub dual: Tensor,
    /// Iterations run (all stages).
    pub iterations: i64,
    /// The row-marginal error, when it was measured (tolerance mode).
    pub marginal_error: Option<f64>,
    pub plan: Tensor,
}

/// Log-domain Sinkhorn in unscaled potentials F, G with the options above.
pub fn solve(c: &Tensor, o: &SinkhornOptions) -> Solved {
    let (n, m) = (c.size()[0], c.size()[1]);
    let (la, lb) = (-(n as f64).ln(), -(m as f64).ln());
    let lse = pick_lse(c, o.epsilon);
    let run = |c: &Tensor| {
        let mut f = Tensor::zeros([n], (c.kind(), c.device()));
        let mut g = Tensor::zeros([m], (c.kind(), c.device()));
        let mut iters = 0;
        if o.scaling > 0.0 && o.scaling < 1.0 {
            // Annealing stages, one iteration each, in unscaled potentials.
            let mut eps = c.max().double_value(&[]).max(o.epsilon);
            while eps > o.epsilon {
                f = -lse(&((&g / eps + lb).unsqueeze(0) - c / eps), 1) * eps;
                g = -lse(&((&f / eps + la).unsqueeze(1) - c / eps), 0) * eps;
                iters += 1;
                eps *= o.scaling;
            }
        }
        // At the target epsilon: potentials scaled by 1/eps and C/eps computed once.
        let cs = c / o.epsilon;
        let (mut fh, mut gh) = (f / o.epsilon, g / o.epsilon);
        let mut err = None;
        for k in 0..o.iterations {
            fh = -lse(&((&gh + lb).unsqueeze(0) - &cs), 1);
            gh = -lse(&((&fh + la).unsqueeze(1) - &cs), 0);
            iters += 1;
            if o.tolerance > 0.0 && (k % 10 == 9 || k + 1 == o.iterations) {
                let e = tch::no_grad(|| {
                    marginal_error(&((fh.unsqueeze(1) + gh.unsqueeze(0) - &cs) + (la + lb)).exp())
                });
                err = Some(e);
                if e < o.tolerance {
                    break;
                }
            }
        }
        (fh * o.epsilon, gh * o.epsilon, iters, err)
    };
    if o.envelope {
        let (f, g, iters, err) = tch::no_grad(|| run(&c.detach()));
        let plan = plan_of(&f, &g, &c.detach(), o.epsilon, la + lb);
        let dual = f.mean(c.kind()) + g.mean(c.kind());
        let value = with_gradient(&dual, c, &plan);
        Solved {
            value,
            dual,
            iterations: iters,
            marginal_error: err,
            plan,
        }
    } else {
        let (f, g, iters, err) = run(c);
        let plan = plan_of(&f, &g, c, o.epsilon, la + lb);
        let value = (&plan * c).sum(c.kind());
        let dual = f.mean(c.kind()) + g.mean(c.kind());
        Solved {
            value,
            dual,
            iterations: iters,
            marginal_error: err,
            plan,
        }
    }
}

fn plan_of(f: &Tensor, g: &Tensor, c: &Tensor, eps: f64, lab: f64) -> Tensor {
    ((f.unsqueeze(1) + g.unsqueeze(0) - c) / eps + lab).exp()
}

/// The debiased Sinkhorn divergence S(z, w) = OT(z, w) - (OT(z, z) + OT(w, w)) / 2 on the
/// entropic dual values: zero for identical clouds, positive otherwise.
pub fn debiased(z: &Tensor, w: &Tensor, cost: LatentCost, o: &SinkhornOptions) -> (Tensor, i64) {
    debiased_with(z, w, &|a, b| cost_matrix(a, b, cost), o)
}

/// [`debiased`] with any cost function (a joint product cost, see [`joint_cost_matrix`]).
pub fn debiased_with(
    z: &Tensor,
    w: &Tensor,
    cost: &dyn Fn(&Tensor, &Tensor) -> Tensor,
    o: &SinkhornOptions,
) -> (Tensor, i64) {
    let xy = solve(&cost(z, w), o);
    let xx = solve(&cost(z, z), o);
    let yy = solve(&cost(w, w), o);
    let pick = |s: &Solved| {
        if o.envelope {
            s.value.shallow_clone()
        } else {
            s.dual.shallow_clone()
        }
    };
    (pick(&xy) - (pick(&xx) + pick(&yy)) * 0.5, xy.iterations)
}

/// Kernels of [`mmd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kernel {
    /// Inverse multiquadratic C / (C + |x - y|^2).
    Imq,
    /// Gaussian exp(-|x - y|^2 / C).
    Rbf,
}

/// The scales of the WAE reference code: the kernel is summed over C * these.
pub const MMD_SCALES: [f64; 7] = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];

fn kernel_sum(d2: &Tensor, kernel: Kernel, c: f64) -> Tensor {
    let mut total = d2.zeros_like();
    for s in MMD_SCALES {
        let cs = c * s;
        total += match kernel {
            Kernel::Imq => (d2 + cs).reciprocal() * cs,
            Kernel::Rbf => (d2 / -cs).exp(),
        };
    }
    total
}

/// The unbiased MMD^2 estimator between rows of `x` (n) and `y` (m), with the kernel summed
/// over `c` times [`MMD_SCALES`] (the WAE paper sets c = 2 d sigma^2).
pub fn mmd(x: &Tensor, y: &Tensor, kernel: Kernel, c: f64) -> Tensor {
    let (n, m) = (x.size()[0] as f64, y.size()[0] as f64);
    let off = |k: Tensor| k.sum(k.kind()) - k.diagonal(0, 0, 1).sum(k.kind());
    let kxx = off(kernel_sum(&sqdist(x, x), kernel, c));
    let kyy = off(kernel_sum(&sqdist(y, y), kernel, c));
    let kxy = kernel_sum(&sqdist(x, y), kernel, c);
    kxx / (n * (n - 1.0)) + kyy / (m * (m - 1.0)) - kxy.sum(kxy.kind()) * (2.0 / (n * m))
}

/// Sliced Wasserstein: the mean over `projections` random unit directions of the 1-D
/// W_p^p between the projected clouds (equal sizes), by sorting.
pub fn sliced(x: &Tensor, y: &Tensor, projections: i64, p: f64) -> Tensor {
    let d = x.size()[1];
    let theta =
        crate::runtime::tensor::normalize(&Tensor::randn([projections, d], (x.kind(), x.device())));
    sliced_along(x, y, &theta, p)
}

/// Sliced Wasserstein along given unit directions (rows of `theta`).
pub fn sliced_along(x: &Tensor, y: &Tensor, theta: &Tensor, p: f64) -> Tensor {
    let (px, _) = x.matmul(&theta.tr()).sort(0, false);
    let (py, _) = y.matmul(&theta.tr()).sort(0, false);
    let diff = (px - py).abs();
    let powered = if p == 1.0 {
        diff
    } else {
        diff.pow_tensor_scalar(p)
    };
    powered.mean(x.kind())
}

/// Exact matching: the mean cost of the optimal one-to-one assignment of the rows of `x` to the
/// rows of `y` (equal sizes). The assignment is found on the host; the gradient flows through the
/// matched costs.
pub fn exact(x: &Tensor, y: &Tensor, cost: LatentCost) -> Tensor {
    let c = cost_matrix(x, y, cost);
    let n = c.size()[0] as usize;
    let host: Vec<f64> = Vec::<f64>::try_from(
        c.detach()
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Double)
            .flatten(0, -1),
    )
    .unwrap_or_default();
    let assign = hungarian(&host, n);
    let idx = Tensor::from_slice(&assign.iter().map(|&j| j as i64).collect::<Vec<_>>())
        .to_device(c.device());
    c.gather(1, &idx.unsqueeze(1), false).mean(c.kind())
}

/// Minimum-cost assignment for an n x n row-major cost matrix (Hungarian algorithm with
/// potentials, O(n^3)); returns, for each row, its column.
pub fn hungarian(cost: &[f64], n: usize) -> Vec<usize> {
    if n == 0 || cost.len() < n * n {
        return vec![];
    }
    let inf = f64::INFINITY;
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let mut p = vec![0usize; n + 1]; // p[j]: row matched to column j (1-based; 0 = none)
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let (mut delta, mut j1) = (inf, 0);
            for j in 1..=n {
                if !used[j] {
                    let cur = cost[(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![0; n];
    for j in 1..=n {
        if p[j] > 0 {
            out[p[j] - 1] = j - 1;
        }
    }
    out
}

/// KL(N(mu, exp(logvar)) || N(mean, std^2)) summed over coordinates, averaged over the batch.
pub fn gaussian_kl(mu: &Tensor, logvar: &Tensor, mean: f64, std: f64) -> Tensor {
    let var = logvar.exp();
    let per = (var + (mu - mean).square()) / (2.0 * std * std) - logvar * 0.5 + (std.ln() - 0.5);
    per.sum(mu.kind()) / mu.size()[0].max(1) as f64
}

/// The unbiased MMD^2 of [`mmd`] computed in blocks of `block` rows, for large sets.
pub fn mmd_blocked(x: &Tensor, y: &Tensor, kernel: Kernel, c: f64, block: i64) -> f64 {
    let sum = |a: &Tensor, b: &Tensor| -> f64 {
        let mut s = 0.0;
        let (n, m) = (a.size()[0], b.size()[0]);
        let mut i = 0;
        while i < n {
            let ai = a.narrow(0, i, block.min(n - i));
            let mut j = 0;
            while j < m {
                let bj = b.narrow(0, j, block.min(m - j));
                s += kernel_sum(&sqdist(&ai, &bj), kernel, c)
                    .sum(Kind::Double)
                    .double_value(&[]);
                j += block;
            }
            i += block;
        }
        s
    };
    let (n, m) = (x.size()[0] as f64, y.size()[0] as f64);
    // k(x, x) = 1 per scale for both kernels: the diagonal holds n * |scales|.
    let diag = MMD_SCALES.len() as f64;
    let kxx = sum(x, x) - n * diag;
    let kyy = sum(y, y) - m * diag;
    kxx / (n * (n - 1.0)) + kyy / (m * (m - 1.0)) - 2.0 * sum(x, y) / (n * m)
}

/// `value` (a detached scalar) with the gradient `grad_c` in `c`: value + <C, G> - <C, G> detached,
/// so autograd carries G = dS/dC from the cost matrix to whatever `c` was computed from.
fn with_gradient(value: &Tensor, c: &Tensor, grad_c: &Tensor) -> Tensor {
    let surrogate = (c * grad_c).sum(c.kind());
    value + (&surrogate - surrogate.detach())
}

/// The unrolled Sinkhorn loss <P_L, C> with its exact gradient (the gradient autograd would give
/// through all L iterations, as in the SAE paper) computed by a hand-written reverse sweep:
/// only the potentials of each iteration are stored (L (n + m) numbers instead of an autograd
/// tape of about 2 L n m), each iteration's normalised kernel is recomputed in the reverse sweep,
/// and exponents are floored at -80 (see [`lse`]). The gradient dS/dC reaches the codes through
/// autograd from `c` via a surrogate whose value is S and whose gradient in C is dS/dC.
pub fn sinkhorn_unrolled_fast(c: &Tensor, epsilon: f64, iterations: i64) -> Tensor {
    sinkhorn_unrolled_fast_plan(c, epsilon, iterations).0
}

/// [`sinkhorn_unrolled_fast`] and the final plan (detached), for convergence measurements.
///
/// When max C / eps is at most 50 (float32) or 300 (float64), the iterations run in the kernel
/// form: K = exp(-C/eps) once, then u = 1 / (K (b v)), v = 1 / (K^T (a u)): two matrix-vector
/// products per iteration instead of two log-sum-exps over n x m, and the reverse sweep needs only
/// matrix-vector products and one (n x L)(L x m) product. Above that bound (small epsilon) the
/// log domain is used. Both give the same iterates (the kernel form is the log form exponentiated).
pub fn sinkhorn_unrolled_fast_plan(c: &Tensor, epsilon: f64, iterations: i64) -> (Tensor, Tensor) {
    let bound = if c.kind() == Kind::Float { 50.0 } else { 300.0 };
    let cmax = tch::no_grad(|| c.detach().max().double_value(&[]));
    if cmax / epsilon <= bound && iterations > 0 {
        return sinkhorn_kernel_form(c, epsilon, iterations);
    }
    sinkhorn_log_form(c, epsilon, iterations)
}

/// The kernel form of [`sinkhorn_unrolled_fast_plan`].
fn sinkhorn_kernel_form(c: &Tensor, epsilon: f64, iterations: i64) -> (Tensor, Tensor) {
    let (n, m) = (c.size()[0], c.size()[1]);
    let (a, b) = (1.0 / n as f64, 1.0 / m as f64);
    let (value, grad_c, plan) = tch::no_grad(|| {
        let cd = c.detach();
        let k = (&cd / -epsilon).exp();
        let kt = k.tr();
        let mv = |mat: &Tensor, vec: &Tensor| mat.mv(vec);
        let mut us: Vec<Tensor> = Vec::with_capacity(iterations as usize);
        let mut vs: Vec<Tensor> = Vec::with_capacity(iterations as usize + 1);
        let mut v = Tensor::ones([m], (c.kind(), c.device()));
        vs.push(v.shallow_clone());
        for _ in 0..iterations {
            let u = mv(&k, &(&v * b)).reciprocal();
            v = mv(&kt, &(&u * a)).reciprocal();
            us.push(u);
            vs.push(v.shallow_clone());
        }
        let ul = us
            .last()
            .map(|u| u.shallow_clone())
            .unwrap_or_else(|| Tensor::ones([n], (c.kind(), c.device())));
        let plan = (&ul * a).unsqueeze(1) * &k * (&v * b).unsqueeze(0);
        let pc = &plan * &cd;
        let value = pc.sum(c.kind());
        let mut grad_c = &plan - &pc / epsilon;
        // Adjoints of the log-potentials f = log u, g = log v (as in the log form).
        let mut af = pc.sum_dim_intlist(1, false, c.kind());
        let mut ag = pc.sum_dim_intlist(0, false, c.kind());
        // dS/dcs = K (.) sum_k [ (a u_k) (x) (v_k ag_k) + (u_k af_k) (x) (b v_{k-1}) ]: stacked.
        let (mut left, mut right) = (
            Vec::with_capacity(2 * iterations as usize),
            Vec::with_capacity(2 * iterations as usize),
        );
        for kk in (0..iterations as usize).rev() {
            let (u, v1, v0) = (&us[kk], &vs[kk + 1], &vs[kk]);
            let vag = v1 * &ag;
            af -= mv(&k, &vag) * u * a;
            left.push(u * a);
            right.push(vag);
            let uaf = u * &af;
            ag = -(mv(&kt, &uaf) * v0 * b);
            left.push(uaf);
            right.push(v0 * b);
            af = af.zeros_like();
        }
        let acs = Tensor::stack(&left, 1).matmul(&Tensor::stack(&right, 0)) * &k;
        grad_c += acs / epsilon;
        (value, grad_c, plan)
    });
    (with_gradient(&value, c, &grad_c), plan)
}

/// The log-domain form of [`sinkhorn_unrolled_fast_plan`].
fn sinkhorn_log_form(c: &Tensor, epsilon: f64, iterations: i64) -> (Tensor, Tensor) {
    let (n, m) = (c.size()[0], c.size()[1]);
    let (la, lb) = (-(n as f64).ln(), -(m as f64).ln());
    let floor = |t: Tensor| {
        if t.kind() == Kind::Float {
            t.clamp_min(-80.0)
        } else {
            t
        }
    };
    let (value, grad_c) = tch::no_grad(|| {
        let cd = c.detach();
        let cs = &cd / epsilon;
        let mut fs = Vec::with_capacity(iterations as usize);
        let mut gs = Vec::with_capacity(iterations as usize + 1);
        let mut g = Tensor::zeros([m], (c.kind(), c.device()));
        gs.push(g.shallow_clone());
        for _ in 0..iterations {
            let f = -lse(&((&g + lb).unsqueeze(0) - &cs), 1);
            g = -lse(&((&f + la).unsqueeze(1) - &cs), 0);
            fs.push(f);
            gs.push(g.shallow_clone());
        }
        // Kept apart from the kernel form above: the log form differs in every tensor expression.
        let f_last = fs
            .last()
            .map(|f| f.shallow_clone())
            .unwrap_or_else(|| Tensor::zeros([n], (c.kind(), c.device())));
        let plan = floor(f_last.unsqueeze(1) + g.unsqueeze(0) - &cs + (la + lb)).exp();
        let pc = &plan * &cd;
        let value = pc.sum(c.kind());
        // Adjoints: S = sum P C with P = exp(f + g - C/eps + la + lb).
        let mut grad_c = &plan - &pc / epsilon;
        let plan_out = plan.shallow_clone();
        let mut af = pc.sum_dim_intlist(1, false, c.kind());
        let mut ag = pc.sum_dim_intlist(0, false, c.kind());
        let mut acs = Tensor::zeros_like(&cd);
        for k in (0..iterations as usize).rev() {
            // g_k = -LSE_i(f_k + la - cs): Q (columns sum to 1) = exp(f_k + la - cs + g_k).
            let q = floor(fs[k].unsqueeze(1) + gs[k + 1].unsqueeze(0) - &cs + la).exp();
            let qa = &q * ag.unsqueeze(0);
            af -= qa.sum_dim_intlist(1, false, c.kind());
            acs += qa;
            // f_k = -LSE_j(g_{k-1} + lb - cs): R (rows sum to 1) = exp(g_{k-1} + lb - cs + f_k).
            let r = floor(gs[k].unsqueeze(0) + fs[k].unsqueeze(1) - &cs + lb).exp();
            let ra = &r * af.unsqueeze(1);
            ag = -ra.sum_dim_intlist(0, false, c.kind());
            acs += ra;
            af = af.zeros_like();
        }
        grad_c += acs / epsilon;
        (value, (grad_c, plan_out))
    });
    let (value, grad_c, plan) = (value, grad_c.0, grad_c.1);
    (with_gradient(&value, c, &grad_c), plan)
}

#[cfg(test)]
mod precision {
    use super::*;

    /// Float32 distances of points far from the origin (|x| about 1000, squared distances 5 to
    /// 80) against float64 differences of the same float32 points. The bound: the centred
    /// expansion rounds at about u (|x - c|^2 + |y - c|^2) = 6e-8 x 64 against squared distances
    /// of at least about 4, i.e. 1e-6; 4e-6 allows the sums' rounding. Measured 3.7e-7, and 4.2e-2
    /// for the plain expansion (u |x|^2 = 0.06 per term).
    #[test]
    fn distances_keep_their_digits_away_from_the_origin() {
        tch::manual_seed(1);
        let base = Tensor::randn([64, 16], (Kind::Double, tch::Device::Cpu));
        // Rounded to float32 first: the exact distances are those of the points as stored.
        let x = (&base + 250.0).to_kind(Kind::Float).to_kind(Kind::Double);
        let y = (Tensor::randn([48, 16], (Kind::Double, tch::Device::Cpu)) + 250.0)
            .to_kind(Kind::Float)
            .to_kind(Kind::Double);
        let exact =
            (x.unsqueeze(1) - y.unsqueeze(0))
                .square()
                .sum_dim_intlist(-1, false, Kind::Double);
        let ours = sqdist(&x.to_kind(Kind::Float), &y.to_kind(Kind::Float)).to_kind(Kind::Double);
        let rel = ((&ours - &exact).abs() / &exact).max().double_value(&[]);
        let (xf, yf) = (x.to_kind(Kind::Float), y.to_kind(Kind::Float));
        let plain = (xf.square().sum_dim_intlist(1, true, Kind::Float)
            + yf.square().sum_dim_intlist(1, true, Kind::Float).tr()
            - xf.matmul(&yf.tr()) * 2.0)
            .to_kind(Kind::Double);
        let rel_plain = ((&plain - &exact).abs() / &exact).max().double_value(&[]);
        eprintln!("centred {rel:e}, plain expansion {rel_plain:e}");
        assert!(rel < 4e-6, "relative error {rel:e}");
    }

    /// Float32 angles between unit vectors 1e-3 rad and pi - 1e-3 rad apart (in a set spread
    /// over the circle), against float64 angles of the same float32 vectors. The chord form's
    /// error is the expansion's rounding, about u (|x - c|^2 + |y - c|^2) = 6e-8 x 1, on a squared
    /// chord of 9e-7, halved by the root: up to 7% of the angle, measured 2%; the bound is 10%.
    /// The arccos form read both as 1.4e-3 from the ends (its clamp at 1 - 1e-6): 48% off.
    #[test]
    fn small_and_near_antipodal_angles_keep_their_digits() {
        let f = |t: &Tensor| t.to_kind(Kind::Float).to_kind(Kind::Double);
        let unit = |a: f64| [a.cos(), a.sin(), 0.0];
        let pts = |angles: &[f64]| {
            let v: Vec<f64> = angles.iter().flat_map(|a| unit(*a)).collect();
            f(&Tensor::from_slice(&v).reshape([angles.len() as i64, 3]))
        };
        let x = pts(&[0.3, 1.1]);
        let y = pts(&[0.301, 1.1 + std::f64::consts::PI - 1e-3]);
        let exact = x.matmul(&y.tr()).clamp(-1.0, 1.0).acos(); // float64: fine at these angles
        let ours = cost_matrix(
            &x.to_kind(Kind::Float),
            &y.to_kind(Kind::Float),
            LatentCost::Geodesic { p: 1.0 },
        )
        .to_kind(Kind::Double);
        for (i, j) in [(0, 0), (1, 1)] {
            let (e, o) = (exact.double_value(&[i, j]), ours.double_value(&[i, j]));
            let tiny = e.min(std::f64::consts::PI - e);
            assert!((o - e).abs() < 0.1 * tiny, "({i}, {j}): {o} vs {e}");
        }
    }

    /// Coincident and antipodal pairs: finite gradients in both branches of the chord form.
    #[test]
    fn the_angle_has_finite_gradients_at_coincident_and_antipodal_points() {
        for kind in [Kind::Float, Kind::Double] {
            let x = Tensor::from_slice(&[0.6f64, 0.8, 0.0, 1.0])
                .reshape([2, 2])
                .to_kind(kind)
                .set_requires_grad(true);
            let y = Tensor::from_slice(&[0.6f64, 0.8, 0.0, -1.0])
                .reshape([2, 2])
                .to_kind(kind);
            let c = cost_matrix(&x, &y, LatentCost::Geodesic { p: 1.0 });
            let g = Tensor::run_backward(&[c.sum(kind)], &[&x], false, false).remove(0);
            assert_eq!(g.isfinite().all().int64_value(&[]), 1, "{kind:?}: {g}");
        }
    }
}
