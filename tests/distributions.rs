//! The batched samplers of prior programs against independent references: two-sample KS against
//! rand_distr, closed-form moments, and for von Mises-Fisher on S^2 the exact CDF of the component
//! along the mean direction. Tolerances follow the sample size (KS at level 0.001, 5 standard
//! errors for moments).

mod common;

use common::{ks_critical, ks_two_sample};
use rand::SeedableRng;
use rand_distr::Distribution;
use sae_dsl::runtime::dist;
use tch::{Device, Kind, Tensor};

const N: i64 = 40_000;

fn vec(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).expect("values")
}

fn full(v: f64) -> Tensor {
    Tensor::full([N], v, (Kind::Float, Device::Cpu))
}

fn against<D: Distribution<f64>>(ours: &Tensor, d: D, seed: u64, what: &str) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let reference: Vec<f64> = (0..N).map(|_| d.sample(&mut rng)).collect();
    let o = vec(ours);
    let stat = ks_two_sample(&o, &reference);
    assert!(
        stat < ks_critical(o.len(), reference.len()),
        "{what}: KS {stat} >= {}",
        ks_critical(o.len(), reference.len())
    );
}

#[test]
fn gamma_beta_laplace_exponential_match_rand_distr() {
    tch::manual_seed(1);
    for a in [0.3, 1.0, 2.5] {
        against(
            &dist::gamma(&full(a)),
            rand_distr::Gamma::new(a, 1.0).expect("gamma"),
            1,
            &format!("gamma({a})"),
        );
    }
    for (a, b) in [(0.5, 0.5), (2.0, 5.0)] {
        against(
            &dist::beta(&full(a), &full(b)),
            rand_distr::Beta::new(a, b).expect("beta"),
            2,
            &format!("beta({a}, {b})"),
        );
    }
    // Laplace(loc, scale) = loc + scale * (E1 - E2) with independent unit exponentials.
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let e = rand_distr::Exp::new(1.0).expect("exp");
    let reference: Vec<f64> = (0..N)
        .map(|_| 0.5 + 2.0 * (e.sample(&mut rng) - e.sample(&mut rng)))
        .collect();
    let ours = vec(&dist::laplace(&full(0.5), &full(2.0)));
    assert!(
        ks_two_sample(&ours, &reference) < ks_critical(ours.len(), reference.len()),
        "laplace"
    );
    against(
        &dist::exponential(&full(3.0)),
        rand_distr::Exp::new(3.0).expect("exp"),
        4,
        "exponential(3)",
    );
}

#[test]
fn categorical_and_bernoulli_frequencies() {
    tch::manual_seed(2);
    let p = [0.1, 0.2, 0.3, 0.4];
    let draws = dist::categorical(&Tensor::from_slice(&p), N);
    let counts = vec(&draws.bincount::<&Tensor>(None, 4));
    for (k, &pk) in p.iter().enumerate() {
        let se = (pk * (1.0 - pk) / N as f64).sqrt();
        assert!(
            (counts[k] / N as f64 - pk).abs() < 5.0 * se,
            "category {k}: {}",
            counts[k] / N as f64
        );
    }
    let b = vec(&dist::bernoulli(&full(0.3)));
    let mean = b.iter().sum::<f64>() / N as f64;
    assert!(b.iter().all(|x| *x == 0.0 || *x == 1.0));
    assert!(
        (mean - 0.3).abs() < 5.0 * (0.21f64 / N as f64).sqrt(),
        "bernoulli mean {mean}"
    );
}

#[test]
fn von_mises_fisher_on_the_two_sphere_matches_its_closed_form() {
    tch::manual_seed(3);
    let mu = Tensor::from_slice(&[0.0f32, 0.6, 0.8]);
    for kappa in [0.5, 5.0, 50.0] {
        let x = dist::von_mises_fisher(&mu, kappa, N);
        let norms = vec(&x.square().sum_dim_intlist(1, false, Kind::Float).sqrt());
        assert!(
            norms.iter().all(|r| (r - 1.0).abs() < 1e-4),
            "samples lie on the sphere"
        );
        // On S^2 the component w = <mu, x> has density proportional to exp(kappa w) on [-1, 1]:
        // CDF F(w) = (exp(kappa w) - exp(-kappa)) / (exp(kappa) - exp(-kappa)). One-sample KS.
        let mut w = vec(&x.matmul(&mu));
        w.sort_by(f64::total_cmp);
        let cdf = |t: f64| {
            ((kappa * (t - 1.0)).exp() - (-2.0 * kappa).exp()) / (1.0 - (-2.0 * kappa).exp())
        };
        let d = w
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                ((i + 1) as f64 / N as f64 - cdf(t))
                    .abs()
                    .max((cdf(t) - i as f64 / N as f64).abs())
            })
            .fold(0.0, f64::max);
        assert!(d < 1.95 / (N as f64).sqrt(), "kappa {kappa}: KS {d}");
        // Mean resultant length coth(kappa) - 1/kappa, along mu.
        let mean = x.mean_dim(0, false, Kind::Double);
        let want = 1.0 / kappa.tanh() - 1.0 / kappa;
        let along = vec(&mean.matmul(&mu.to_kind(Kind::Double)))[0];
        assert!(
            (along - want).abs() < 0.01,
            "kappa {kappa}: mean resultant {along} vs {want}"
        );
        let off = (&mean - mu.to_kind(Kind::Double) * along)
            .square()
            .sum(Kind::Double)
            .sqrt()
            .double_value(&[]);
        assert!(
            off < 0.01,
            "kappa {kappa}: the mean direction is mu (off by {off})"
        );
    }
}
