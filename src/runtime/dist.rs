//! Batched samplers for the primitive distributions of prior programs (issue 3): each call draws
//! a whole batch with tensor operations on the tensors' device, no per-sample loop.

use tch::{Kind, Tensor};

/// log of Gamma(shape, 1) draws for a tensor of shapes (any shape > 0), by the boost
/// Gamma(a) = Gamma(a + 1) U^(1/a) (Marsaglia and Tsang) in log space, so that small shapes, whose
/// draws underflow float32, stay usable for ratios (Dirichlet, Beta).
pub fn log_gamma_draw(shape: &Tensor) -> Tensor {
    let g = (shape + 1.0).internal_standard_gamma();
    let u = Tensor::rand_like(shape).clamp_min(1e-30);
    g.clamp_min(1e-30).log() + u.log() / shape
}

/// Gamma(shape, 1).
pub fn gamma(shape: &Tensor) -> Tensor {
    log_gamma_draw(shape).exp()
}

/// Beta(a, b) = G_a / (G_a + G_b) = sigmoid(log G_a - log G_b).
pub fn beta(a: &Tensor, b: &Tensor) -> Tensor {
    (log_gamma_draw(a) - log_gamma_draw(b)).sigmoid()
}

/// Dirichlet rows for a tensor of concentrations `[.., k]`: normalised Gamma draws, as a softmax
/// of their logs.
pub fn dirichlet(alpha: &Tensor) -> Tensor {
    log_gamma_draw(alpha).softmax(-1, alpha.kind())
}

/// `n` draws of a categorical with the given probabilities (`[k]`), as int64 indices.
pub fn categorical(probs: &Tensor, n: i64) -> Tensor {
    probs.multinomial(n, true)
}

/// Bernoulli(p) for a tensor of probabilities, as 0.0 / 1.0.
pub fn bernoulli(p: &Tensor) -> Tensor {
    Tensor::rand_like(p).lt_tensor(p).to_kind(p.kind())
}

/// Laplace(loc, scale) by the inverse CDF.
pub fn laplace(loc: &Tensor, scale: &Tensor) -> Tensor {
    let u = Tensor::rand_like(loc) - 0.5;
    let tail: Tensor = 1.0 - u.abs() * 2.0;
    loc - scale * u.sign() * tail.clamp_min(1e-30).log()
}

/// Exponential(rate) by the inverse CDF.
pub fn exponential(rate: &Tensor) -> Tensor {
    -Tensor::rand_like(rate).clamp_min(1e-30).log() / rate
}

/// `n` angles of the von Mises distribution around 0 with concentration `kappa`: the angle of a
/// von Mises-Fisher draw on the circle S^1 (Wood's algorithm in R^2), in (-pi, pi].
pub fn von_mises(kappa: f64, n: i64, device: tch::Device) -> Tensor {
    let mu = Tensor::from_slice(&[1.0f32, 0.0]).to_device(device);
    let x = von_mises_fisher(&mu, kappa, n);
    x.select(1, 1).atan2(&x.select(1, 0))
}

/// von Mises-Fisher on the unit sphere in R^m around the unit vector `mu` (`[m]`) with
/// concentration `kappa > 0`: `n` exact samples by Wood's (1994) rejection for the component
/// along `mu`, run for all rows at once until every row has accepted, then a uniform direction
/// in the orthogonal complement, then a Householder reflection taking e1 to `mu`.
pub fn von_mises_fisher(mu: &Tensor, kappa: f64, n: i64) -> Tensor {
    let m = mu.size()[0];
    let (kind, dev) = (mu.kind(), mu.device());
    let m1 = (m - 1) as f64;
    let b = (-2.0 * kappa + (4.0 * kappa * kappa + m1 * m1).sqrt()) / m1;
    let x0 = (1.0 - b) / (1.0 + b);
    let c = kappa * x0 + m1 * (1.0 - x0 * x0).ln();
    let half = Tensor::full([n], m1 / 2.0, (kind, dev));
    let mut w = Tensor::zeros([n], (kind, dev));
    let mut done = Tensor::zeros([n], (Kind::Bool, dev));
    for _ in 0..1000 {
        let z = beta(&half, &half);
        let cand = (1.0 - (1.0 + b) * &z) / (1.0 - (1.0 - b) * &z);
        let u = Tensor::rand([n], (kind, dev)).clamp_min(1e-30);
        let one_minus: Tensor = 1.0 - &cand * x0;
        let lhs: Tensor = &cand * kappa + one_minus.clamp_min(1e-30).log() * m1 - c;
        let accept = lhs.ge_tensor(&u.log()).logical_and(&done.logical_not());
        w = w.where_self(&accept.logical_not(), &cand);
        done = done.logical_or(&accept);
        if done.all().int64_value(&[]) == 1 {
            break;
        }
    }
    let v = crate::runtime::tensor::normalize(&Tensor::randn([n, m - 1], (kind, dev)));
    let rest: Tensor = 1.0 - w.square();
    let x = Tensor::cat(
        &[w.unsqueeze(1), rest.clamp_min(0.0).sqrt().unsqueeze(1) * v],
        1,
    );
    // Householder reflection H = I - 2 u u^T with u = (e1 - mu) / |e1 - mu| maps e1 to mu.
    let e1 = Tensor::zeros([m], (kind, dev));
    let _ = e1.get(0).fill_(1.0);
    let diff = &e1 - mu;
    let norm = diff.square().sum(kind).sqrt().double_value(&[]);
    if norm < 1e-9 {
        return x;
    }
    let u = diff / norm;
    &x - x.matmul(&u).unsqueeze(1) * u.unsqueeze(0) * 2.0
}
