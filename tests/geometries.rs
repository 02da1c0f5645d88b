//! The torus T^k and the Poincare ball as latent spaces, against closed forms and independent
//! computations: projections land on the manifold (even for huge inputs), distances are
//! symmetric, obey the triangle inequality and match the 1-D closed forms and Moebius-addition
//! formula, gradients stay finite at the boundary, Sinkhorn on the space's cost equals Sinkhorn on
//! the independently computed cost matrix (value and gradient), the stdlib priors' radial and
//! angular laws pass two-sample KS tests, interpolations stay on the manifold and are geodesics,
//! and the geodesic solver keeps its curves there.

mod common;

use common::{ks_critical, ks_two_sample};
use rand::SeedableRng;
use rand_distr::Distribution;
use sae_dsl::eval::geometry::{self, Options};
use sae_dsl::ir::{LatentCost, Prior, Space};
use sae_dsl::runtime::ot::{self, cost_matrix};
use sae_dsl::runtime::sampler::sample_program;
use sae_dsl::runtime::space::latent_path;
use sae_dsl::runtime::tensor::{expmap0, mobius_add, torus, torus_angles};
use tch::{Device, Kind, Tensor};

const D: (Kind, Device) = (Kind::Double, Device::Cpu);

fn vals(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).expect("values")
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

/// Random points of the ball of curvature -c, some near its boundary.
fn ball_points(n: i64, d: i64, c: f64) -> Tensor {
    let v = Tensor::randn([n, d], D) * 1.5;
    expmap0(&v, c)
}

#[test]
fn projections_land_on_the_manifold() {
    tch::manual_seed(1);
    let h = Tensor::randn([64, 6], D) * 1e6;
    let t = torus(&h);
    let pair_norms = t
        .reshape([64, 3, 2])
        .square()
        .sum_dim_intlist(-1, false, Kind::Double);
    assert!(max_abs(&(pair_norms - 1.0)) < 1e-12);
    for c in [0.5, 1.0, 4.0] {
        let b = expmap0(&h, c);
        let r2 = b.square().sum_dim_intlist(-1, false, Kind::Double) * c;
        assert!(b.isfinite().all().int64_value(&[]) == 1);
        assert!(
            r2.max().double_value(&[]) < 1.0,
            "c = {c}: c|x|^2 reaches 1"
        );
    }
    // expmap0 is the identity to first order at the origin.
    let small = Tensor::randn([8, 3], D) * 1e-6;
    assert!(max_abs(&(expmap0(&small, 2.0) - &small)) < 1e-15);
}

#[test]
fn hyperbolic_distances_are_a_metric_and_match_closed_forms() {
    tch::manual_seed(2);
    for c in [1.0, 0.25, 3.0] {
        let x = ball_points(40, 5, c);
        let d = ot::hyperbolic_distance(&x, &x, c);
        assert!(max_abs(&(&d - d.tr())) < 1e-9, "symmetric");
        assert!(
            d.diag(0).max().double_value(&[]) < 1e-6,
            "zero on the diagonal"
        );
        // Triangle inequality over all triples.
        let via = d.unsqueeze(2) + d.unsqueeze(0); // d(i, j) + d(j, k) at [i, j, k]
        let direct = d.unsqueeze(1); // d(i, k) at [i, 1, k]
        let worst = (direct - via).max().double_value(&[]);
        assert!(
            worst < 1e-9,
            "c = {c}: triangle inequality fails by {worst}"
        );
        // Against 2 / sqrt(c) artanh(sqrt(c) |(-x) (+) y|), with Moebius addition.
        let y = ball_points(40, 5, c);
        let pair = ot::hyperbolic_distance(&x, &y, c).diag(0);
        let m = mobius_add(&(-&x), &y, c);
        let norm = m.square().sum_dim_intlist(-1, false, Kind::Double).sqrt();
        let want = (norm * c.sqrt()).arctanh() * (2.0 / c.sqrt());
        let rel = max_abs(&((&pair - &want) / want.clamp_min(1e-3)));
        assert!(rel < 1e-6, "c = {c}: {rel}");
    }
    // d = 1, c = 1: |2 artanh(x) - 2 artanh(y)|.
    let x = Tensor::from_slice(&[-0.9f64, -0.3, 0.0, 0.5, 0.99]).unsqueeze(1);
    let d = vals(&ot::hyperbolic_distance(&x, &x, 1.0));
    let xs = [-0.9f64, -0.3, 0.0, 0.5, 0.99];
    for i in 0..5 {
        for j in 0..5 {
            let want = (2.0 * xs[i].atanh() - 2.0 * xs[j].atanh()).abs();
            assert!(
                (d[i * 5 + j] - want).abs() < 1e-6,
                "{} {}: {} vs {want}",
                xs[i],
                xs[j],
                d[i * 5 + j]
            );
        }
    }
}

#[test]
fn hyperbolic_gradients_stay_finite_at_the_boundary_and_where_points_meet() {
    let x = (Tensor::from_slice(&[0.999_99f64, 0.0, -0.3, 0.2]).reshape([2, 2]))
        .set_requires_grad(true);
    let y = Tensor::from_slice(&[0.999_98f64, 0.001, -0.3, 0.2]).reshape([2, 2]);
    let cost = cost_matrix(&x, &y, LatentCost::Hyperbolic { p: 2.0, c: 1.0 });
    let g = Tensor::run_backward(&[&cost.sum(Kind::Double)], &[&x], false, false).remove(0);
    assert!(g.isfinite().all().int64_value(&[]) == 1, "{g:?}");
    // In float32 too, from the encoder's clamp (1 - 1e-5).
    let x32 = expmap0(
        &(Tensor::from_slice(&[40.0f32, 0.0, 0.0, 40.0]).reshape([2, 2])),
        1.0,
    )
    .set_requires_grad(true);
    let cost = cost_matrix(
        &x32,
        &x32.detach(),
        LatentCost::Hyperbolic { p: 2.0, c: 1.0 },
    );
    let g = Tensor::run_backward(&[&cost.sum(Kind::Float)], &[&x32], false, false).remove(0);
    assert!(g.isfinite().all().int64_value(&[]) == 1, "{g:?}");
}

#[test]
fn torus_distances_are_a_metric_and_match_the_angles() {
    tch::manual_seed(3);
    let a = Tensor::rand([30, 3], D) * 20.0 - 10.0;
    let x = torus(&Tensor::stack(&[a.cos(), a.sin()], -1).reshape([30, 6]));
    let d2 = cost_matrix(&x, &x, LatentCost::Torus { p: 2.0 });
    let d = (&d2 + 1e-30).sqrt();
    assert!(max_abs(&(&d - d.tr())) < 1e-12);
    let via = d.unsqueeze(2) + d.unsqueeze(0);
    assert!((d.unsqueeze(1) - via).max().double_value(&[]) < 1e-9);
    // Against the wrapped angle differences, computed from the angles themselves.
    let av = vals(&a);
    let dv = vals(&d2);
    for i in 0..30 {
        for j in 0..30 {
            let want: f64 = (0..3)
                .map(|f| {
                    let diff =
                        (av[i * 3 + f] - av[j * 3 + f]).rem_euclid(2.0 * std::f64::consts::PI);
                    diff.min(2.0 * std::f64::consts::PI - diff).powi(2)
                })
                .sum();
            assert!(
                (dv[i * 30 + j] - want).abs() < 1e-9,
                "{i} {j}: {} vs {want}",
                dv[i * 30 + j]
            );
        }
    }
    // The angles read back.
    let back = vals(&torus_angles(&x));
    for (k, (got, want)) in back.iter().zip(&av).enumerate() {
        let diff = (got - want).rem_euclid(2.0 * std::f64::consts::PI);
        assert!(diff.min(2.0 * std::f64::consts::PI - diff) < 1e-9, "{k}");
    }
}

#[test]
fn sinkhorn_on_the_new_costs_equals_sinkhorn_on_the_computed_matrix() {
    tch::manual_seed(4);
    let z = ball_points(24, 3, 1.0).set_requires_grad(true);
    let w = ball_points(24, 3, 1.0);
    // The matrix computed independently: 2 artanh |(-z_i) (+) w_j| squared.
    let m = mobius_add(&(-z.unsqueeze(1)), &w.unsqueeze(0), 1.0);
    let indep = (m
        .square()
        .sum_dim_intlist(-1, false, Kind::Double)
        .sqrt()
        .arctanh()
        * 2.0)
        .square();
    let ours = cost_matrix(&z, &w, LatentCost::Hyperbolic { p: 2.0, c: 1.0 });
    let (a, b) = (
        ot::sinkhorn(&ours, 0.1, 200),
        ot::sinkhorn(&indep, 0.1, 200),
    );
    let (va, vb) = (a.sharp.double_value(&[]), b.sharp.double_value(&[]));
    assert!((va - vb).abs() < 1e-6 * vb.abs().max(1.0), "{va} vs {vb}");
    let ga = Tensor::run_backward(&[&a.sharp], &[&z], true, false).remove(0);
    let gb = Tensor::run_backward(&[&b.sharp], &[&z], false, false).remove(0);
    assert!(
        max_abs(&(&ga - &gb)) < 1e-5 * max_abs(&gb).max(1.0),
        "gradients differ"
    );
}

/// The program of a stdlib prior, compiled on `space`.
fn stdlib_prior(space: &str, call: &str, d: i64) -> sae_dsl::ir::Program {
    let text = format!(
        "import \"std/priors\"\ndata rings(n = 256)\nlatent {space} ~ {call}\nencoder {{ linear(8) relu linear({d}) }}\ngenerator {{ linear(2) }}\npenalty sinkhorn(epsilon = 0.1)\n"
    );
    let c = sae_dsl::compile_source("geo.sae", &text, None);
    let m = c
        .model
        .unwrap_or_else(|| panic!("{}", c.sources.render(&c.diags, false, 100)));
    match &m.latents[0].prior {
        Prior::Program(p) => p.clone(),
        p => panic!("{p:?}"),
    }
}

#[test]
fn ball_and_torus_priors_follow_their_laws() {
    let n = 20_000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    // Wrapped normal: the distance from the origin is 2 |v| with v ~ N(0, std^2 I_3).
    let p = stdlib_prior(
        "ball(3, curvature = 2)",
        "wrapped_normal(std = 0.7, curvature = 2)",
        3,
    );
    tch::manual_seed(5);
    let x = sample_program(&p, &[], n, Device::Cpu).to_kind(Kind::Double);
    let r2 = x.square().sum_dim_intlist(-1, false, Kind::Double);
    assert!(
        (r2 * 2.0).max().double_value(&[]) < 1.0,
        "inside the ball of curvature -2"
    );
    let zero = Tensor::zeros([1, 3], D);
    let dist = vals(&ot::hyperbolic_distance(&x, &zero, 2.0).squeeze_dim(1));
    let normal = rand_distr::Normal::<f64>::new(0.0, 0.7).expect("normal");
    let want: Vec<f64> = (0..n)
        .map(|_| {
            let s: f64 = (0..3).map(|_| normal.sample(&mut rng).powi(2)).sum();
            2.0 * s.sqrt()
        })
        .collect();
    let ks = ks_two_sample(&dist, &want);
    assert!(
        ks < ks_critical(dist.len(), want.len()),
        "wrapped normal radius KS {ks}"
    );
    // Hyperbolic uniform: the distance from the origin is uniform on [0, radius].
    let p = stdlib_prior("ball(2)", "hyperbolic_uniform(radius = 4)", 2);
    let x = sample_program(&p, &[], n, Device::Cpu).to_kind(Kind::Double);
    let zero = Tensor::zeros([1, 2], D);
    let dist = vals(&ot::hyperbolic_distance(&x, &zero, 1.0).squeeze_dim(1));
    let uni = rand_distr::Uniform::new(0.0, 4.0);
    let want: Vec<f64> = (0..n).map(|_| uni.sample(&mut rng)).collect();
    let ks = ks_two_sample(&dist, &want);
    assert!(
        ks < ks_critical(dist.len(), want.len()),
        "hyperbolic uniform radius KS {ks}"
    );
    // Torus uniform: every angle uniform on (-pi, pi].
    let p = stdlib_prior("T^3", "torus_uniform()", 6);
    let x = sample_program(&p, &[], n, Device::Cpu).to_kind(Kind::Double);
    let angles = torus_angles(&x);
    let uni = rand_distr::Uniform::new(-std::f64::consts::PI, std::f64::consts::PI);
    for f in 0..3 {
        let got = vals(&angles.select(1, f));
        let want: Vec<f64> = (0..n).map(|_| uni.sample(&mut rng)).collect();
        let ks = ks_two_sample(&got, &want);
        assert!(
            ks < ks_critical(got.len(), want.len()),
            "torus angle {f} KS {ks}"
        );
    }
}

#[test]
fn interpolations_stay_on_the_manifold_and_are_geodesics() {
    tch::manual_seed(6);
    // Ball: d(x, g(t)) = t d(x, y), every point inside.
    let c = 1.5;
    let pts = ball_points(2, 4, c);
    let (x, y) = (pts.get(0), pts.get(1));
    let path = latent_path(&x, &y, Space::Ball { dim: 4, c }, 11).to_kind(Kind::Double);
    let total = ot::hyperbolic_distance(
        &x.unsqueeze(0).to_kind(Kind::Double),
        &y.unsqueeze(0).to_kind(Kind::Double),
        c,
    )
    .double_value(&[0, 0]);
    let from_x = vals(&ot::hyperbolic_distance(
        &x.unsqueeze(0).to_kind(Kind::Double),
        &path,
        c,
    ));
    for (i, d) in from_x.iter().enumerate() {
        let want = total * i as f64 / 10.0;
        assert!(
            (d - want).abs() < 2e-3 * total.max(1.0),
            "step {i}: {d} vs {want}"
        );
    }
    // Torus: the shorter way round each circle, at constant speed, on the circles.
    let a = Tensor::from_slice(&[3.0f32, 0.1]);
    let b = Tensor::from_slice(&[-3.0f32, 1.1]);
    let pa = torus(&Tensor::stack(&[a.cos(), a.sin()], -1).reshape([4]));
    let pb = torus(&Tensor::stack(&[b.cos(), b.sin()], -1).reshape([4]));
    let path = latent_path(&pa, &pb, Space::Torus { k: 2 }, 5);
    let ang = vals(&torus_angles(&path));
    // Circle 1 goes from 3 through pi to -3 (0.283 rad), not back through 0.
    let first: Vec<f64> = ang.chunks(2).map(|c| c[0]).collect();
    assert!(first.iter().all(|t| t.abs() > 2.9), "{first:?}");
    let second: Vec<f64> = ang.chunks(2).map(|c| c[1]).collect();
    for (i, t) in second.iter().enumerate() {
        assert!((t - (0.1 + 0.25 * i as f64)).abs() < 1e-5, "{second:?}");
    }
}

#[test]
fn geodesics_of_the_pullback_metric_stay_on_the_manifold() {
    tch::manual_seed(7);
    let w1 = Tensor::randn([4, 16], (Kind::Float, Device::Cpu));
    let w2 = Tensor::randn([16, 5], (Kind::Float, Device::Cpu));
    let f = |z: &Tensor| z.matmul(&w1).tanh().matmul(&w2);
    let o = Options {
        max_iterations: 80,
        ..Options::default()
    };
    // Torus T^2.
    let z0 = torus(&Tensor::randn([4], (Kind::Float, Device::Cpu)));
    let z1 = torus(&Tensor::randn([4], (Kind::Float, Device::Cpu)));
    let g = geometry::solve(&f, &z0, &z1, Space::Torus { k: 2 }, 12, &o);
    let norms = g
        .curve
        .reshape([12, 2, 2])
        .square()
        .sum_dim_intlist(-1, false, Kind::Float);
    assert!(max_abs(&(norms - 1.0)) < 1e-5, "off the torus");
    assert!(g.length <= g.initial_length + 1e-6);
    // Ball of curvature -2 in R^4.
    let z0 = expmap0(&Tensor::randn([4], (Kind::Float, Device::Cpu)), 2.0);
    let z1 = expmap0(&Tensor::randn([4], (Kind::Float, Device::Cpu)), 2.0);
    let g = geometry::solve(&f, &z0, &z1, Space::Ball { dim: 4, c: 2.0 }, 12, &o);
    let r2 = g.curve.square().sum_dim_intlist(-1, false, Kind::Float) * 2.0;
    assert!(
        r2.max().double_value(&[]) < 1.0,
        "outside the ball: {:?} {:?} {:?}",
        Vec::<f32>::try_from(&r2),
        Vec::<f32>::try_from(&z0),
        Vec::<f32>::try_from(&z1)
    );
    assert!(g.length <= g.initial_length + 1e-6);
}

/// A product of a torus and a ball as one joint Sinkhorn problem: the penalty equals Sinkhorn on
/// the weighted sum of the two costs computed here from angles and Moebius addition, in value and
/// gradient; and such a model trains.
#[test]
fn a_product_latent_is_one_joint_sinkhorn_problem() {
    let text = "import \"std/priors\"\ndata tree(n = 256, depth = 3, dim = 8)\n\
        latent a: T^1 ~ torus_uniform()\nlatent b: ball(2) ~ wrapped_normal()\n\
        encoder a { linear(16) relu linear(2) torus }\nencoder b { linear(16) relu linear(2) expmap0 }\n\
        generator { linear(16) relu linear(8) }\n\
        penalty 3 * sinkhorn(epsilon = 0.2, iterations = 100, weights = [2, 0.5])\n\
        train { batch 64 epochs 2 }\n";
    let c = sae_dsl::compile_source("joint.sae", text, None);
    let m = c
        .model
        .unwrap_or_else(|| panic!("{}", c.sources.render(&c.diags, false, 100)));
    assert_eq!(m.penalties.len(), 1);
    let shown = m.penalties[0].to_string();
    assert!(
        shown.contains("jointly on the product")
            && shown.contains("2 x [a:")
            && shown.contains("0.5 x [b:"),
        "{shown}"
    );
    tch::manual_seed(8);
    let ang = Tensor::rand([32], D) * 6.0;
    let z = Tensor::cat(
        &[
            Tensor::stack(&[ang.cos(), ang.sin()], 1),
            ball_points(32, 2, 1.0),
        ],
        1,
    )
    .set_requires_grad(true);
    let ang_w = Tensor::rand([32], D) * 6.0;
    let w = Tensor::cat(
        &[
            Tensor::stack(&[ang_w.cos(), ang_w.sin()], 1),
            ball_points(32, 2, 1.0),
        ],
        1,
    );
    let sae_dsl::ir::PenaltyKind::Sinkhorn { factors, .. } = &m.penalties[0].kind else {
        panic!("not sinkhorn")
    };
    let ours = ot::joint_cost_matrix(&z, &w, factors);
    // Independently: wrapped angle differences squared, and 2 artanh |(-x) (+) y| squared.
    // The angles read back from z, so that the gradient flows through this computation too.
    let za = z.select(1, 1).atan2(&z.select(1, 0));
    let diff = (za.unsqueeze(1) - ang_w.unsqueeze(0)).remainder(2.0 * std::f64::consts::PI);
    let torus_sq = diff
        .minimum(&(diff.neg() + 2.0 * std::f64::consts::PI))
        .square();
    let (zb, wb) = (z.narrow(1, 2, 2), w.narrow(1, 2, 2));
    let mob = mobius_add(&(-zb.unsqueeze(1)), &wb.unsqueeze(0), 1.0);
    let hyp = (mob
        .square()
        .sum_dim_intlist(-1, false, Kind::Double)
        .sqrt()
        .arctanh()
        * 2.0)
        .square();
    let indep = torus_sq * 2.0 + hyp * 0.5;
    assert!(
        max_abs(&(&ours - &indep)) < 1e-6 * max_abs(&indep),
        "joint cost matrix"
    );
    let (a, b) = (
        ot::sinkhorn(&ours, 0.2, 100),
        ot::sinkhorn(&indep, 0.2, 100),
    );
    assert!((a.sharp.double_value(&[]) - b.sharp.double_value(&[])).abs() < 1e-6);
    let ga = Tensor::run_backward(&[&a.sharp], &[&z], true, false).remove(0);
    let gb = Tensor::run_backward(&[&b.sharp], &[&z], false, false).remove(0);
    assert!(max_abs(&(&ga - &gb)) < 1e-5 * max_abs(&gb).max(1.0));
    // It trains, and its metrics have the one joint term.
    let root = common::tempdir("joint");
    let opts = sae_dsl::train::RunOptions {
        out: Some(root.join("run")),
        quiet: true,
        ..Default::default()
    };
    sae_dsl::train::run(&m, text, Device::Cpu, &opts).expect("trains");
    let metrics = std::fs::read_to_string(root.join("run/metrics.jsonl")).expect("metrics");
    assert_eq!(metrics.lines().count(), 2, "{metrics}");
    let _ = std::fs::remove_dir_all(root);
}

/// Best and Fisher's (1979) rejection sampler of the von Mises distribution around 0, written
/// here in f64 from the paper as an independent reference.
fn best_fisher(kappa: f64, n: usize, rng: &mut rand::rngs::StdRng) -> Vec<f64> {
    use rand::Rng;
    let tau = 1.0 + (1.0 + 4.0 * kappa * kappa).sqrt();
    let rho = (tau - (2.0 * tau).sqrt()) / (2.0 * kappa);
    let r = (1.0 + rho * rho) / (2.0 * rho);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (u1, u2, u3): (f64, f64, f64) = (rng.gen(), rng.gen(), rng.gen());
        let z = (std::f64::consts::PI * u1).cos();
        let f = (1.0 + r * z) / (r + z);
        let c = kappa * (r - f);
        if c * (2.0 - c) - u2 > 0.0 || (c / u2).ln() + 1.0 - c >= 0.0 {
            let sign = if u3 > 0.5 { 1.0 } else { -1.0 };
            out.push(sign * f.acos());
        }
    }
    out
}

/// `von_mises(loc, kappa, dim = k)` angles against Best and Fisher's sampler (KS per angle, after
/// removing each loc), and `torus_von_mises` lands on the torus.
#[test]
fn von_mises_angles_follow_best_and_fishers_sampler() {
    let n = 20_000;
    let p = stdlib_prior("T^3", "torus_von_mises(mean = [0, 1, 3], kappa = 2.5)", 6);
    tch::manual_seed(11);
    let x = sample_program(&p, &[], n, Device::Cpu).to_kind(Kind::Double);
    let pair_norms = x
        .reshape([n, 3, 2])
        .square()
        .sum_dim_intlist(-1, false, Kind::Double);
    assert!(max_abs(&(pair_norms - 1.0)) < 1e-6);
    let angles = torus_angles(&x);
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for (f, loc) in [0.0f64, 1.0, 3.0].iter().enumerate() {
        let got: Vec<f64> = vals(&angles.select(1, f as i64))
            .iter()
            .map(|t| (t - loc).sin().atan2((t - loc).cos()))
            .collect();
        let want = best_fisher(2.5, n as usize, &mut rng);
        let ks = ks_two_sample(&got, &want);
        assert!(
            ks < ks_critical(got.len(), want.len()),
            "angle {f}: KS {ks}"
        );
    }
}
