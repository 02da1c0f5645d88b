//! The objective's terms: reconstruction costs, latent penalties (with GAN discriminators) and
//! the discriminators' updates.

use tch::{nn, Device, Tensor};

use crate::ir::{self, PenaltyKind};
use crate::runtime::optim::Adam;
use crate::runtime::ot;

/// See [`Compiled::recon_cost`].
pub fn recon_cost(cost: &ir::ReconCost, xhat: &Tensor, x: &Tensor) -> Tensor {
    let n = x.size()[0].max(1) as f64;
    let per = match cost {
        // One number per example already.
        ir::ReconCost::Expr { expr, .. } => return cost_expr(expr, x, xhat).sum(xhat.kind()) / n,
        ir::ReconCost::SquaredL2 => (xhat - x).square(),
        ir::ReconCost::L1 => (xhat - x).abs(),
        ir::ReconCost::Bce => {
            // Clamped logs: a saturated sigmoid must not give an infinite loss.
            let p = xhat.clamp(1e-7, 1.0 - 1e-7);
            let one_minus_x: Tensor = 1.0 - x;
            let one_minus_p: Tensor = 1.0 - &p;
            -(x * p.log() + one_minus_x * one_minus_p.log())
        }
    };
    per.sum(per.kind()) / n
}

/// A cost expression on a batch (`x` the data, `y` the reconstructions): a tensor with the batch
/// axis first; the checker made the whole expression one number per example, `[B]`.
pub fn cost_expr(e: &ir::CostExpr, x: &Tensor, y: &Tensor) -> Tensor {
    use ir::{Arith, CostExpr as C};
    let go = |e: &C| cost_expr(e, x, y);
    match e {
        C::X => x.shallow_clone(),
        C::Y => y.shallow_clone(),
        C::Const(c) => Tensor::from(*c).to_kind(y.kind()).to_device(y.device()),
        C::Channels(v) => {
            // [1, C, 1, 1] against images, [1, F] against vectors.
            let mut shape = vec![1, v.len() as i64];
            shape.extend(std::iter::repeat_n(1, x.dim().saturating_sub(2)));
            Tensor::from_slice(v)
                .to_kind(y.kind())
                .to_device(y.device())
                .reshape(shape.as_slice())
        }
        C::Apply(f, a) => crate::runtime::sampler::apply_func(*f, &go(a)),
        C::Neg(a) => -go(a),
        C::Binary(op, a, b) => {
            let (p, q) = (go(a), go(b));
            // A per-example scalar [B] against [B, ...]: trailing axes added.
            let rank = p.dim().max(q.dim());
            let lift = |t: Tensor| {
                let mut t = t;
                while t.dim() > 0 && t.dim() < rank {
                    t = t.unsqueeze(-1);
                }
                t
            };
            let (p, q) = (lift(p), lift(q));
            match op {
                Arith::Add => p + q,
                Arith::Sub => p - q,
                Arith::Mul => p * q,
                Arith::Div => p / q,
                Arith::Pow => p.pow(&q),
                Arith::Minimum => p.minimum(&q),
                Arith::Maximum => p.maximum(&q),
                _ => p * 0.0, // the checker admits no other operator in costs
            }
        }
        C::Sum(a) => per_example(go(a), false),
        C::Mean(a) => per_example(go(a), true),
        C::Dx(a) => {
            let t = go(a);
            let w = t.size()[3];
            t.narrow(3, 1, w - 1) - t.narrow(3, 0, w - 1)
        }
        C::Dy(a) => {
            let t = go(a);
            let h = t.size()[2];
            t.narrow(2, 1, h - 1) - t.narrow(2, 0, h - 1)
        }
    }
}

/// The sum (or mean) of each example's values: `[B, ...]` -> `[B]` (`[B]` stays).
fn per_example(t: Tensor, mean: bool) -> Tensor {
    let d: Vec<i64> = (1..t.dim() as i64).collect();
    match (d.is_empty(), mean) {
        (true, _) => t,
        (false, false) => t.sum_dim_intlist(d.as_slice(), false, t.kind()),
        (false, true) => t.mean_dim(d.as_slice(), false, t.kind()),
    }
}

/// The unweighted latent penalty between codes `z` and prior samples `w`, for penalties that
/// need neither a discriminator nor encoder statistics (used by the benchmarks).
pub fn penalty(p: &ir::Penalty, z: &Tensor, w: &Tensor) -> Tensor {
    evaluate_penalty(p, z, w, PenaltyCtx::default()).value
}

/// What a penalty may need beyond codes and prior samples.
#[derive(Default)]
pub struct PenaltyCtx<'a> {
    /// The Gaussian encoder's (mean, log-variance), for KL.
    pub stats: Option<&'a (Tensor, Tensor)>,
    /// A GAN penalty's discriminator.
    pub disc: Option<&'a mut Discriminator>,
    /// Given unit directions for `sliced` (rows); None: fresh random ones.
    pub projections: Option<&'a Tensor>,
    /// Measure a Sinkhorn plan's marginal error.
    pub measure: bool,
    /// Inject a NaN into the discriminator loss (tests).
    pub poison_disc: bool,
}

/// A GAN penalty's latent discriminator: its own variables and its own Adam.
pub struct Discriminator {
    pub vs: nn::VarStore,
    pub net: crate::runtime::nets::Net,
    pub opt: Adam,
}

/// The discriminators of a model, one slot per penalty (None for non-GAN penalties), built from
/// the current random state.
pub fn discriminators(model: &ir::Model, device: Device) -> Vec<Option<Discriminator>> {
    model
        .penalties
        .iter()
        .enumerate()
        .map(|(i, p)| match &p.kind {
            PenaltyKind::Gan { discriminator, opt } => {
                let vs = nn::VarStore::new(device);
                let net = crate::runtime::nets::Net::new(
                    &(vs.root() / "discriminator"),
                    discriminator,
                    model.train.init,
                );
                let opt = Adam::new(&vs, opt).with_prefix(&format!("disc{i}.adam."));
                Some(Discriminator { vs, net, opt })
            }
            _ => None,
        })
        .collect()
}

/// What one penalty gives at one step.
pub struct PenaltyOut {
    /// The unweighted penalty, differentiable in the codes.
    pub value: Tensor,
    /// Row-marginal error of a Sinkhorn plan, when measured.
    pub marginal_error: Option<f64>,
    /// Sinkhorn iterations run (0 for other penalties).
    pub iterations: i64,
    /// The discriminator's loss after its update (GAN).
    pub disc_loss: Option<Tensor>,
}

/// Evaluates one penalty. For a GAN this first updates the discriminator on (prior samples: real,
/// detached codes: fake), then returns the non-saturating loss -log D(z).
// long: one arm per latent penalty, each with its own solver and statistics.
pub fn evaluate_penalty(p: &ir::Penalty, z: &Tensor, w: &Tensor, ctx: PenaltyCtx) -> PenaltyOut {
    let PenaltyCtx {
        stats,
        disc,
        projections,
        measure,
        poison_disc,
    } = ctx;
    let simple = |value: Tensor| PenaltyOut {
        value,
        marginal_error: None,
        iterations: 0,
        disc_loss: None,
    };
    match &p.kind {
        // The same field list as the IR's Display: both take the variant apart, for other ends.
        PenaltyKind::Sinkhorn {
            epsilon,
            iterations,
            cost,
            debiased,
            envelope,
            tolerance,
            scaling,
            factors,
        } => {
            let o = ot::SinkhornOptions {
                epsilon: *epsilon,
                iterations: *iterations,
                tolerance: *tolerance,
                scaling: *scaling,
                envelope: *envelope,
            };
            // One component's cost, or the weighted sum of the components' (a joint problem).
            let costf = |a: &Tensor, b: &Tensor| {
                if factors.is_empty() {
                    ot::cost_matrix(a, b, *cost)
                } else {
                    ot::joint_cost_matrix(a, b, factors)
                }
            };
            if *debiased {
                let (value, iters) = ot::debiased_with(z, w, &costf, &o);
                return PenaltyOut {
                    value,
                    marginal_error: None,
                    iterations: iters,
                    disc_loss: None,
                };
            }
            let c = costf(z, w);
            if !*envelope && *tolerance == 0.0 && *scaling >= 1.0 {
                // The paper's unrolled gradient, by the hand-written reverse sweep.
                let (value, plan) = ot::sinkhorn_unrolled_fast_plan(&c, *epsilon, *iterations);
                let err = measure.then(|| ot::marginal_error(&plan));
                return PenaltyOut {
                    value,
                    marginal_error: err,
                    iterations: *iterations,
                    disc_loss: None,
                };
            }
            let s = ot::solve(&c, &o);
            let err = s
                .marginal_error
                .or_else(|| measure.then(|| tch::no_grad(|| ot::marginal_error(&s.plan))));
            PenaltyOut {
                value: s.value,
                marginal_error: err,
                iterations: s.iterations,
                disc_loss: None,
            }
        }
        PenaltyKind::Mmd { imq, scale, .. } => simple(ot::mmd(
            z,
            w,
            if *imq {
                ot::Kernel::Imq
            } else {
                ot::Kernel::Rbf
            },
            *scale,
        )),
        PenaltyKind::Sliced { projections: k, p } => simple(match projections {
            Some(theta) => ot::sliced_along(z, w, theta, *p),
            None => ot::sliced(z, w, *k, *p),
        }),
        PenaltyKind::Exact { cost } => simple(ot::exact(z, w, *cost)),
        PenaltyKind::Kl { mean, std } => match stats {
            Some((mu, lv)) => simple(ot::gaussian_kl(mu, lv, *mean, *std)),
            None => simple(Tensor::zeros([], (z.kind(), z.device()))),
        },
        PenaltyKind::Gan { .. } => {
            let Some(d) = disc else {
                return simple(Tensor::zeros([], (z.kind(), z.device())));
            };
            let real = d.net.forward_t(w, true);
            let fake = d.net.forward_t(&z.detach(), true);
            let mut d_loss = ((-real).softplus() + fake.softplus()).mean(z.kind());
            if poison_disc {
                d_loss = d_loss * f64::NAN;
            }
            d.opt.zero_grad();
            d_loss.backward();
            d.opt.step();
            let value = (-d.net.forward_t(z, true)).softplus().mean(z.kind());
            PenaltyOut {
                value,
                marginal_error: None,
                iterations: 0,
                disc_loss: Some(d_loss.detach()),
            }
        }
    }
}
