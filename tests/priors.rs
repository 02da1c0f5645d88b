//! Prior samplers against closed-form moments and independent (rand_distr) samples.
//! Tolerances are set from the sample size: 5 standard errors.

mod common;

use common::{ks_critical, ks_two_sample};
use rand::SeedableRng;
use rand_distr::Distribution;
use sae_dsl::ir::Prior;
use sae_dsl::runtime::sampler::sample_prior;
use tch::{Device, Kind, Tensor};

const N: i64 = 40_000;

fn draw(p: &Prior, dim: i64) -> Tensor {
    tch::manual_seed(3);
    sample_prior(p, &[], N, dim, Device::Cpu).to_kind(Kind::Double)
}

fn col(t: &Tensor, j: i64) -> Vec<f64> {
    Vec::<f64>::try_from(t.select(1, j).contiguous()).expect("column")
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

#[test]
fn normal_matches_moments_and_rand_distr() {
    let t = draw(
        &Prior::Normal {
            mean: 1.5,
            std: 2.0,
        },
        3,
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let reference: Vec<f64> = (0..N)
        .map(|_| {
            rand_distr::Normal::new(1.5, 2.0)
                .expect("normal")
                .sample(&mut rng)
        })
        .collect();
    for j in 0..3 {
        let c = col(&t, j);
        let (m, v) = mean_var(&c);
        let se = 2.0 / (N as f64).sqrt();
        assert!((m - 1.5).abs() < 5.0 * se, "mean {m}");
        assert!(
            (v - 4.0).abs() < 5.0 * 4.0 * (2.0 / N as f64).sqrt(),
            "variance {v}"
        );
        assert!(
            ks_two_sample(&c, &reference) < ks_critical(c.len(), reference.len()),
            "KS against rand_distr"
        );
    }
}

#[test]
fn uniform_box_matches_moments() {
    let t = draw(
        &Prior::Uniform {
            low: -2.0,
            high: 1.0,
        },
        2,
    );
    let c = col(&t, 0);
    assert!(c.iter().all(|x| (-2.0..1.0).contains(x)));
    let (m, v) = mean_var(&c);
    let want_v = 9.0 / 12.0;
    assert!(
        (m + 0.5).abs() < 5.0 * (want_v / N as f64).sqrt(),
        "mean {m}"
    );
    assert!((v - want_v).abs() < 0.02, "variance {v}");
    // And the shape: uniform, against rand_distr.
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let u = rand_distr::Uniform::new(-2.0, 1.0);
    let reference: Vec<f64> = (0..N).map(|_| u.sample(&mut rng)).collect();
    assert!(
        ks_two_sample(&c, &reference) < ks_critical(c.len(), reference.len()),
        "KS against rand_distr"
    );
}

#[test]
fn sphere_samples_are_unit_and_isotropic() {
    let d = 5;
    let t = draw(&Prior::UniformSphere, d);
    let norms = t.square().sum_dim_intlist(1, false, Kind::Double).sqrt();
    assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-6);
    // Each coordinate: mean 0, variance 1/d; z_1 is distributed as 2 Beta((d-1)/2, (d-1)/2) - 1.
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let beta = rand_distr::Beta::new((d - 1) as f64 / 2.0, (d - 1) as f64 / 2.0).expect("beta");
    let reference: Vec<f64> = (0..N).map(|_| 2.0 * beta.sample(&mut rng) - 1.0).collect();
    for j in 0..d {
        let c = col(&t, j);
        let (m, v) = mean_var(&c);
        assert!(
            m.abs() < 5.0 * (1.0 / (d as f64 * N as f64)).sqrt(),
            "mean {m}"
        );
        assert!((v - 1.0 / d as f64).abs() < 0.01, "variance {v}");
        assert!(
            ks_two_sample(&c, &reference) < ks_critical(c.len(), reference.len()),
            "KS coordinate {j}"
        );
    }
}

fn check_dirichlet(alpha: Vec<f64>) {
    let d = alpha.len() as i64;
    let a0: f64 = alpha.iter().sum();
    let t = draw(
        &Prior::Dirichlet {
            alpha: alpha.clone(),
        },
        d,
    );
    let sums = t.sum_dim_intlist(1, false, Kind::Double);
    assert!(
        (sums - 1.0).abs().max().double_value(&[]) < 1e-5,
        "rows sum to 1"
    );
    assert!(t.min().double_value(&[]) >= 0.0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    for (j, &aj) in alpha.iter().enumerate() {
        let c = col(&t, j as i64);
        let (m, v) = mean_var(&c);
        let want_m = aj / a0;
        let want_v = aj * (a0 - aj) / (a0 * a0 * (a0 + 1.0));
        assert!(
            (m - want_m).abs() < 5.0 * (want_v / N as f64).sqrt(),
            "alpha {alpha:?} coord {j}: mean {m} vs {want_m}"
        );
        assert!(
            (v - want_v).abs() < 0.1 * want_v,
            "alpha {alpha:?} coord {j}: variance {v} vs {want_v}"
        );
        // The marginal is Beta(a_j, a0 - a_j): compare with rand_distr's sampler.
        let beta = rand_distr::Beta::new(aj, a0 - aj).expect("beta");
        let reference: Vec<f64> = (0..N).map(|_| beta.sample(&mut rng)).collect();
        assert!(
            ks_two_sample(&c, &reference) < ks_critical(c.len(), reference.len()),
            "alpha {alpha:?} coord {j}: KS"
        );
    }
}

#[test]
fn dirichlet_matches_moments_and_beta_marginals() {
    check_dirichlet(vec![0.2; 16]); // the paper's sparse prior: exercises the small-alpha path
    check_dirichlet(vec![1.0, 2.0, 5.0]);
}
