//! Entropic optimal transport between two point clouds, in the log domain.
//!
//! [`sinkhorn`] runs a fixed number of log-domain Sinkhorn iterations from zero potentials; every
//! operation is a tensor operation, so autograd back-propagates through the unrolled iterations
//! (the SAE paper's gradient). The loss is the transport cost of the entropic plan, <P, C>.

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
            let cos = x.matmul(&y.tr()).clamp(-1.0 + 1e-6, 1.0 - 1e-6);
            let angle = cos.acos();
            if p == 1.0 {
                angle
            } else {
                angle.pow_tensor_scalar(p)
            }
        }
    }
}

/// Squared Euclidean distances |x_i - y_j|^2, clamped at zero against rounding.
pub fn sqdist(x: &Tensor, y: &Tensor) -> Tensor {
    let xx = x.square().sum_dim_intlist(1, true, x.kind());
    let yy = y.square().sum_dim_intlist(1, true, y.kind()).tr();
    (xx + yy - x.matmul(&y.tr()) * 2.0).clamp_min(0.0)
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
    let mut f = Tensor::zeros([n], (c.kind(), c.device()));
    let mut g = Tensor::zeros([m], (c.kind(), c.device()));
    for _ in 0..iterations {
        f = -((&g + lb).unsqueeze(0) - &cs).logsumexp(1, false);
        g = -((&f + la).unsqueeze(1) - &cs).logsumexp(0, false);
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
