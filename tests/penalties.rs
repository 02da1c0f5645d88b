//! Every latent penalty against an independent computation: MMD against a direct double sum,
//! sliced Wasserstein against the closed-form 1-D distance, exact matching against brute force
//! over permutations, KL against numerical integration, the Sinkhorn envelope gradient against
//! finite differences, the unrolled gradient at convergence and POT's fixtures, the debiased
//! divergence against POT and its zero/positivity, Fisher-Rao against its definition.

mod common;

use rand::{Rng, SeedableRng};
use sae_dsl::ir::LatentCost;
use sae_dsl::runtime::ot::{self, Kernel, SinkhornOptions};
use tch::{Device, Kind, Tensor};

fn t64(rows: &[Vec<f64>]) -> Tensor {
    let d = rows[0].len() as i64;
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Tensor::from_slice(&flat).reshape([-1, d])
}

fn points(rng: &mut rand::rngs::StdRng, n: usize, d: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|_| (0..d).map(|_| rng.gen_range(-1.5..1.5)).collect())
        .collect()
}

fn sq(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

#[test]
fn mmd_matches_a_direct_double_sum() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (x, y) = (points(&mut rng, 7, 3), points(&mut rng, 5, 3));
    let c = 2.0 * 3.0 * 1.0;
    for kernel in [Kernel::Imq, Kernel::Rbf] {
        let k = |a: &[f64], b: &[f64]| -> f64 {
            ot::MMD_SCALES
                .iter()
                .map(|s| {
                    let cs = c * s;
                    match kernel {
                        Kernel::Imq => cs / (cs + sq(a, b)),
                        Kernel::Rbf => (-sq(a, b) / cs).exp(),
                    }
                })
                .sum()
        };
        let (n, m) = (x.len() as f64, y.len() as f64);
        let mut want = 0.0;
        for i in 0..x.len() {
            for j in 0..x.len() {
                if i != j {
                    want += k(&x[i], &x[j]) / (n * (n - 1.0));
                }
            }
        }
        for i in 0..y.len() {
            for j in 0..y.len() {
                if i != j {
                    want += k(&y[i], &y[j]) / (m * (m - 1.0));
                }
            }
        }
        for a in &x {
            for b in &y {
                want -= 2.0 * k(a, b) / (n * m);
            }
        }
        let got = ot::mmd(&t64(&x), &t64(&y), kernel, c).double_value(&[]);
        assert!((got - want).abs() < 1e-12, "{kernel:?}: {got} vs {want}");
    }
}

#[test]
fn sliced_in_one_dimension_is_the_closed_form_distance() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let (x, y) = (points(&mut rng, 9, 1), points(&mut rng, 9, 1));
    let mut xs: Vec<f64> = x.iter().map(|v| v[0]).collect();
    let mut ys: Vec<f64> = y.iter().map(|v| v[0]).collect();
    xs.sort_by(f64::total_cmp);
    ys.sort_by(f64::total_cmp);
    for p in [1.0, 2.0, 3.0] {
        let want: f64 = xs
            .iter()
            .zip(&ys)
            .map(|(a, b)| (a - b).abs().powf(p))
            .sum::<f64>()
            / 9.0;
        let along = ot::sliced_along(
            &t64(&x),
            &t64(&y),
            &Tensor::from_slice(&[1.0f64]).reshape([1, 1]),
            p,
        )
        .double_value(&[]);
        assert!((along - want).abs() < 1e-12, "p {p}: {along} vs {want}");
        // Random directions in 1-D are +-1, both give the same distance.
        tch::manual_seed(3);
        let random = ot::sliced(&t64(&x), &t64(&y), 16, p).double_value(&[]);
        assert!((random - want).abs() < 1e-12, "p {p}: {random} vs {want}");
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = vec![];
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn exact_matching_is_the_brute_force_optimum() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    for n in 1..=7 {
        for _ in 0..5 {
            let (x, y) = (points(&mut rng, n, 2), points(&mut rng, n, 2));
            let best = permutations(n)
                .iter()
                .map(|perm| (0..n).map(|i| sq(&x[i], &y[perm[i]])).sum::<f64>() / n as f64)
                .fold(f64::INFINITY, f64::min);
            let got =
                ot::exact(&t64(&x), &t64(&y), LatentCost::Euclidean { p: 2.0 }).double_value(&[]);
            assert!((got - best).abs() < 1e-12, "n {n}: {got} vs {best}");
        }
    }
    // Integer costs with ties: still optimal.
    let cost = [4.0, 1.0, 3.0, 2.0, 0.0, 5.0, 3.0, 2.0, 2.0];
    let a = ot::hungarian(&cost, 3);
    let total: f64 = a.iter().enumerate().map(|(i, &j)| cost[i * 3 + j]).sum();
    assert_eq!(total, 5.0);
}

#[test]
fn gaussian_kl_matches_numerical_integration() {
    for (mu, logvar, mean, std) in [
        (0.3, -0.7, 0.0, 1.0),
        (-1.2, 0.4, 0.5, 2.0),
        (0.0, 0.0, 0.0, 1.0),
    ] {
        let s1: f64 = (logvar as f64 * 0.5).exp();
        let pdf = |x: f64, m: f64, s: f64| {
            (-(x - m).powi(2) / (2.0 * s * s)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
        };
        let (lo, hi, steps) = (-30.0, 30.0, 600_000);
        let h = (hi - lo) / steps as f64;
        let mut want = 0.0;
        for k in 0..steps {
            let x = lo + (k as f64 + 0.5) * h;
            let p = pdf(x, mu, s1);
            if p > 1e-300 {
                want += p * (p / pdf(x, mean, std)).ln() * h;
            }
        }
        let got = ot::gaussian_kl(
            &Tensor::from_slice(&[mu]).reshape([1, 1]),
            &Tensor::from_slice(&[logvar]).reshape([1, 1]),
            mean,
            std,
        )
        .double_value(&[]);
        assert!((got - want).abs() < 1e-6, "KL {got} vs {want}");
    }
}

#[test]
fn fisher_rao_is_twice_the_bhattacharyya_angle() {
    let z = t64(&[vec![1.0, 0.0, 0.0], vec![0.25, 0.25, 0.5]]);
    let w = t64(&[vec![0.0, 1.0, 0.0], vec![0.25, 0.25, 0.5]]);
    let c = ot::cost_matrix(&z, &w, LatentCost::FisherRao { p: 1.0 });
    let pi = std::f64::consts::PI;
    // Float64 with the 1e-12 floor under the square roots: sqrt(1e-12) = 1e-6 per zero
    // coordinate moves the angles by about 1e-6.
    assert!(
        (c.double_value(&[0, 0]) - pi).abs() < 1e-5,
        "distinct vertices are pi apart (up to the sqrt floor)"
    );
    // The chord form: a point's distance to itself is the rounding of its squared chord (about
    // 1e-16) under a square root, 1e-8; the arccos form gave 2.8e-3 (its clamp).
    assert!(
        c.double_value(&[1, 1]) < 1e-7,
        "a point is at distance ~0 from itself: {}",
        c.double_value(&[1, 1])
    );
    let want = 2.0 * (0.25f64.sqrt()).acos();
    assert!((c.double_value(&[0, 1]) - want).abs() < 1e-5);
}

fn load(dir: &std::path::Path, name: &str) -> Tensor {
    let a = sae_dsl::data::npy::read(&dir.join(name)).expect("fixture array");
    Tensor::from_slice(&a.data).reshape([a.shape[0] as i64, a.shape[1] as i64])
}

fn opts(epsilon: f64, envelope: bool) -> SinkhornOptions {
    SinkhornOptions {
        epsilon,
        iterations: 3000,
        tolerance: 0.0,
        scaling: 1.0,
        envelope,
    }
}

fn grad_of(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let xv = x.copy().set_requires_grad(true);
    let v = f(&xv);
    Tensor::run_backward(&[&v], &[&xv], false, false).remove(0)
}

#[test]
fn envelope_gradient_against_finite_differences_unrolled_and_pot() {
    let Some(dir) = common::fixtures() else {
        return;
    };
    let refs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("json"))
            .expect("json");
    let (x, y) = (load(&dir, "X_A.npy"), load(&dir, "Y_A.npy"));
    let eps = 0.1;
    let env = grad_of(&x, |xv| {
        ot::solve(&ot::sqdist(xv, &y), &opts(eps, true)).value
    });
    // Against the fixture's envelope gradient 2 sum_j P_ij (x_i - y_j).
    let r = &refs["pairs"]["A"]["by_eps"]["0.1"]["grad_entropic"];
    let flat: Vec<f64> = r
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|v| v.as_f64().expect("num"))
        })
        .collect();
    let want = Tensor::from_slice(&flat).reshape([64, 2]);
    let e1 = (&env - &want).abs().max().double_value(&[]);
    assert!(e1 < 1e-9, "vs POT: {e1}");
    // Against the unrolled gradient of the dual at convergence.
    let unrolled = grad_of(&x, |xv| {
        ot::solve(&ot::sqdist(xv, &y), &opts(eps, false)).dual
    });
    let e2 = (&env - &unrolled).abs().max().double_value(&[]);
    assert!(e2 < 1e-9, "vs unrolled at convergence: {e2}");
    // Against central finite differences of the converged dual value.
    let value = |xm: &Tensor| {
        tch::no_grad(|| {
            ot::solve(&ot::sqdist(xm, &y), &opts(eps, true))
                .value
                .double_value(&[])
        })
    };
    let h = 1e-5;
    for (i, j) in [(0i64, 0i64), (5, 1), (40, 0), (63, 1)] {
        let bump = |s: f64| {
            let xm = x.copy();
            let _ = xm.get(i).get(j).fill_(x.double_value(&[i, j]) + s);
            xm
        };
        let fd = (value(&bump(h)) - value(&bump(-h))) / (2.0 * h);
        let g = env.double_value(&[i, j]);
        assert!(
            (fd - g).abs() < 1e-6,
            "({i},{j}): finite difference {fd} vs envelope {g}"
        );
    }
}

#[test]
fn debiased_divergence_matches_pot_and_is_zero_only_for_identical_clouds() {
    let Some(dir) = common::fixtures() else {
        return;
    };
    let refs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("json"))
            .expect("json");
    let (x, y) = (load(&dir, "X_A.npy"), load(&dir, "Y_A.npy"));
    let cost = LatentCost::Euclidean { p: 2.0 };
    for envelope in [false, true] {
        let (s, _) = ot::debiased(&x, &y, cost, &opts(0.1, envelope));
        let want = refs["pairs"]["A"]["by_eps"]["0.1"]["divergence"]
            .as_f64()
            .expect("divergence");
        assert!(
            (s.double_value(&[]) - want).abs() < 1e-8,
            "envelope {envelope}: {} vs {want}",
            s.double_value(&[])
        );
        let (zero, _) = ot::debiased(&x, &x, cost, &opts(0.1, envelope));
        assert!(
            zero.double_value(&[]).abs() < 1e-12,
            "identical clouds: {}",
            zero.double_value(&[])
        );
    }
    tch::manual_seed(0);
    for _ in 0..5 {
        let a = Tensor::randn([40, 3], (Kind::Double, Device::Cpu));
        let b = Tensor::randn([40, 3], (Kind::Double, Device::Cpu)) * 0.8 + 0.3;
        let (s, _) = ot::debiased(&a, &b, cost, &opts(0.5, false));
        assert!(
            s.double_value(&[]) > 0.0,
            "different clouds: {}",
            s.double_value(&[])
        );
    }
}

#[test]
fn tolerance_and_epsilon_scaling_reach_the_converged_value_in_fewer_iterations() {
    let Some(dir) = common::fixtures() else {
        return;
    };
    let refs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("json"))
            .expect("json");
    let (x, y) = (load(&dir, "X_A.npy"), load(&dir, "Y_A.npy"));
    let c = ot::sqdist(&x, &y);
    let want = refs["pairs"]["A"]["by_eps"]["0.01"]["entropic"]
        .as_f64()
        .expect("entropic");
    let plain = ot::solve(
        &c,
        &SinkhornOptions {
            epsilon: 0.01,
            iterations: 20_000,
            tolerance: 1e-9,
            scaling: 1.0,
            envelope: true,
        },
    );
    let scaled = ot::solve(
        &c,
        &SinkhornOptions {
            epsilon: 0.01,
            iterations: 20_000,
            tolerance: 1e-9,
            scaling: 0.7,
            envelope: true,
        },
    );
    for s in [&plain, &scaled] {
        assert!(s.marginal_error.expect("measured") < 1e-9);
        assert!(s.iterations < 20_000, "stopped by tolerance");
        assert!(
            (s.value.double_value(&[]) - want).abs() < 1e-7,
            "{} vs {want}",
            s.value.double_value(&[])
        );
    }
    assert!(
        scaled.iterations < plain.iterations,
        "scaling: {} vs plain {}",
        scaled.iterations,
        plain.iterations
    );
    // A cap that is too small is reported as not converged.
    let capped = ot::solve(
        &c,
        &SinkhornOptions {
            epsilon: 0.01,
            iterations: 20,
            tolerance: 1e-9,
            scaling: 1.0,
            envelope: true,
        },
    );
    assert_eq!(capped.iterations, 20);
    assert!(capped.marginal_error.expect("measured") > 1e-9);
}

/// A GAN penalty alone moves codes (free parameters, started far from the prior) toward the
/// prior: the discriminator learns to tell them apart, the non-saturating loss pulls them over.
#[test]
fn gan_penalty_moves_codes_toward_the_prior() {
    use sae_dsl::compile_source;
    use sae_dsl::runtime::objective;
    let text = "net critic(h = 32) { linear(h) relu linear(h) relu linear(1) }\ndata rings()\nlatent R^2 ~ normal()\n\
                encoder { linear(2) }\ngenerator { linear(2) }\npenalty gan(discriminator = critic(), lr = 2e-3)\n";
    let c = compile_source("gan.sae", text, None);
    let model = c.model.expect("model");
    tch::manual_seed(11);
    let mut discs = objective::discriminators(&model, Device::Cpu);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let z = vs.root().var_copy(
        "z",
        &(Tensor::randn([256, 2], (Kind::Float, Device::Cpu)) * 0.3 + 4.0),
    );
    let mut opt = sae_dsl::runtime::optim::Adam::new(
        &vs,
        &sae_dsl::ir::Adam {
            lr: 2e-2,
            beta1: 0.5,
            beta2: 0.999,
            weight_decay: 0.0,
            clip_norm: 0.0,
        },
    );
    let prior = |n| Tensor::randn([n, 2], (Kind::Float, Device::Cpu));
    let distance =
        |z: &Tensor| tch::no_grad(|| ot::mmd(z, &prior(1024), Kernel::Imq, 4.0).double_value(&[]));
    let before = distance(&z);
    for _ in 0..400 {
        let w = prior(256);
        let ctx = objective::PenaltyCtx {
            disc: discs[0].as_mut(),
            ..Default::default()
        };
        let out = objective::evaluate_penalty(&model.penalties[0], &z, &w, ctx);
        opt.zero_grad();
        out.value.backward();
        opt.step();
    }
    let after = distance(&z);
    let mean = z.mean_dim(0, false, Kind::Float);
    let norm = mean.square().sum(Kind::Float).sqrt().double_value(&[]);
    assert!(
        after < 0.2 * before,
        "MMD to the prior: {before} -> {after}"
    );
    assert!(
        norm < 1.5,
        "the codes' mean moved from (4, 4) to within 1.5 of the origin: {norm}"
    );
}
