//! Prior programs, compiled from the DSL and run batched: every primitive through the program
//! path against an independent reference (rand_distr samples or closed forms, two-sample KS at
//! level 0.001, moments within 5 standard errors), mixtures, indexing, the standard library's
//! priors against the built-ins, composite latent spaces, and the spatial transformer layers.

mod common;

use common::{ks_critical, ks_two_sample};
use rand::SeedableRng;
use rand_distr::Distribution;
use sae_dsl::ir::{Prior, Space};
use sae_dsl::runtime::sampler::sample_program;
use sae_dsl::runtime::tensor::{crop, place};
use sae_dsl::{compile_source, ir};
use tch::{Device, Kind, Tensor};

const N: i64 = 40_000;

/// Compiles a model whose only latent uses `prior` (a definition in `defs`) on `space`.
fn program(defs: &str, space: &str, prior: &str) -> (ir::Program, Space) {
    let text = format!(
        "import \"std/priors\"\n{defs}\ndata rings(n = 256)\nlatent {space} ~ {prior}\nencoder {{ linear(8) relu linear(1) }}\ngenerator {{ linear(2) }}\npenalty sinkhorn(epsilon = 0.1)\n"
    );
    let c = compile_source("prior.sae", &text, None);
    let errors: Vec<_> = c.diags.iter().filter(|d| d.is_error()).cloned().collect();
    // The encoder's width is wrong on purpose for most spaces; only prior errors matter here.
    let prior_errors: Vec<_> = errors
        .iter()
        .filter(|d| d.code != sae_dsl::diag::Code::LatentShape)
        .cloned()
        .collect();
    assert!(
        prior_errors.is_empty(),
        "{}",
        c.sources.render(&prior_errors, false, 100)
    );
    let text = text.replace("linear(1) }", &format!("linear({}) }}", dim_of(space)));
    let c = compile_source("prior.sae", &text, None);
    let m = c
        .model
        .unwrap_or_else(|| panic!("{}", c.sources.render(&c.diags, false, 100)));
    match &m.latents[0].prior {
        Prior::Program(p) => (p.clone(), m.latents[0].space),
        p => panic!("not a program: {p:?}"),
    }
}

fn dim_of(space: &str) -> i64 {
    if let Some(d) = space.strip_prefix("R^") {
        d.parse().expect("dim")
    } else if let Some(k) = space.strip_prefix("S^") {
        k.parse::<i64>().expect("dim") + 1
    } else {
        space
            .trim_start_matches("simplex(")
            .trim_end_matches(')')
            .parse()
            .expect("dim")
    }
}

fn draw(p: &ir::Program, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    sample_program(p, &[], N, Device::Cpu).to_kind(Kind::Double)
}

fn col(t: &Tensor, j: i64) -> Vec<f64> {
    Vec::<f64>::try_from(t.select(1, j).contiguous()).expect("column")
}

fn reference<D: Distribution<f64>>(d: D, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..N).map(|_| d.sample(&mut rng)).collect()
}

fn ks(ours: &[f64], theirs: &[f64], what: &str) {
    let stat = ks_two_sample(ours, theirs);
    let crit = ks_critical(ours.len(), theirs.len());
    assert!(stat < crit, "{what}: KS {stat:.4} >= {crit:.4}");
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// |sample mean - mu| within 5 standard errors of a quantity with standard deviation `sd`.
fn near_mean(v: &[f64], mu: f64, sd: f64, what: &str) {
    let m = mean(v);
    let se = sd / (v.len() as f64).sqrt();
    assert!(
        (m - mu).abs() < 5.0 * se,
        "{what}: mean {m:.4}, expected {mu:.4} (se {se:.4})"
    );
}

/// One primitive drawn through a one-statement program.
fn one(expr: &str, space: &str) -> Tensor {
    let (p, _) = program(
        &format!("prior p() on {space} {{\n  x ~ {expr}\n  return x\n}}"),
        space,
        "p()",
    );
    draw(&p, 11)
}

#[test]
fn continuous_primitives_match_rand_distr() {
    use rand_distr::{Beta, Exp, Gamma, Normal, Uniform};
    let t = one("normal([1, -2], [0.5, 2])", "R^2");
    ks(
        &col(&t, 0),
        &reference(Normal::new(1.0, 0.5).unwrap(), 1),
        "normal x1",
    );
    ks(
        &col(&t, 1),
        &reference(Normal::new(-2.0, 2.0).unwrap(), 2),
        "normal x2",
    );
    let t = one("uniform(-1, 3, dim = 2)", "R^2");
    ks(
        &col(&t, 1),
        &reference(Uniform::new(-1.0, 3.0), 3),
        "uniform",
    );
    let t = one("gamma(2.5, rate = 3, dim = 1)", "R^1");
    ks(
        &col(&t, 0),
        &reference(Gamma::new(2.5, 1.0 / 3.0).unwrap(), 4),
        "gamma",
    );
    let t = one("beta(2, 5, dim = 1)", "R^1");
    ks(
        &col(&t, 0),
        &reference(Beta::new(2.0, 5.0).unwrap(), 5),
        "beta",
    );
    let t = one("exponential(2, dim = 1)", "R^1");
    ks(
        &col(&t, 0),
        &reference(Exp::new(2.0).unwrap(), 6),
        "exponential",
    );
    // Laplace(0.5, 2) by its inverse CDF in f64, an implementation independent of ours.
    let t = one("laplace(0.5, 2, dim = 1)", "R^1");
    let u = reference(Uniform::new(-0.5, 0.5), 7);
    let lap: Vec<f64> = u
        .iter()
        .map(|u| 0.5 - 2.0 * u.signum() * (1.0 - 2.0 * u.abs()).ln())
        .collect();
    ks(&col(&t, 0), &lap, "laplace");
}

#[test]
fn discrete_primitives_have_their_frequencies() {
    // categorical with weights, drawn and returned as a number.
    let (p, _) = program(
        "prior c() on R^1 {\n  k ~ categorical([0.2, 0.3, 0.5])\n  return [k]\n}",
        "R^1",
        "c()",
    );
    let v = col(&draw(&p, 3), 0);
    for (k, w) in [0.2, 0.3, 0.5].iter().enumerate() {
        let hits: Vec<f64> = v.iter().map(|x| f64::from(*x == k as f64)).collect();
        near_mean(
            &hits,
            *w,
            (w * (1.0 - w)).sqrt(),
            &format!("categorical {k}"),
        );
    }
    let t = one("bernoulli(0.3, dim = 1)", "R^1");
    near_mean(&col(&t, 0), 0.3, (0.3f64 * 0.7).sqrt(), "bernoulli");
}

#[test]
fn sphere_simplex_and_von_mises_fisher_primitives() {
    use rand_distr::{Beta, Uniform};
    // Archimedes: a coordinate of the uniform distribution on S^2 is uniform on [-1, 1].
    let t = one("uniform_sphere(3)", "S^2");
    ks(
        &col(&t, 2),
        &reference(Uniform::new(-1.0, 1.0), 8),
        "sphere",
    );
    // Dirichlet([1, 2, 3]): the first coordinate is Beta(1, 5).
    let t = one("dirichlet([1, 2, 3])", "simplex(3)");
    ks(
        &col(&t, 0),
        &reference(Beta::new(1.0, 5.0).unwrap(), 9),
        "dirichlet",
    );
    // vMF on S^2: the component along mu has mean coth(kappa) - 1/kappa.
    let kappa: f64 = 4.0;
    let t = one("von_mises_fisher([0, 0.6, 0.8], 4)", "S^2");
    let along: Vec<f64> = (0..N)
        .map(|i| 0.6 * t.double_value(&[i, 1]) + 0.8 * t.double_value(&[i, 2]))
        .collect();
    // Its distribution, not only its mean: on S^2 the component t = mu . x has the density
    // kappa e^(kappa t) / (2 sinh kappa) on [-1, 1], so CDF (e^(kappa t) - e^-kappa) / (2 sinh kappa).
    let cdf = |t: f64| ((kappa * t).exp() - (-kappa).exp()) / (2.0 * kappa.sinh());
    let mut sorted = along.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let d = sorted
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            (cdf(t) - i as f64 / n)
                .abs()
                .max(((i + 1) as f64 / n - cdf(t)).abs())
        })
        .fold(0.0, f64::max);
    assert!(
        d < 1.95 / n.sqrt(),
        "vmf: KS {d} against the closed-form CDF"
    );
    let norms = t.square().sum_dim_intlist(1, false, Kind::Double).sqrt();
    assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-5);
}

#[test]
fn mixtures_and_indexing_draw_the_right_components() {
    // A first-class mixture with weights: the share of the far component.
    let (p, _) = program(
        "prior m() on R^1 {\n  z ~ mixture(normal(-10, 1, dim = 1), normal(10, 1, dim = 1), weights = [1, 3])\n  return z\n}",
        "R^1",
        "m()",
    );
    let v = col(&draw(&p, 5), 0);
    let far: Vec<f64> = v.iter().map(|x| f64::from(*x > 0.0)).collect();
    near_mean(&far, 0.75, (0.75f64 * 0.25).sqrt(), "mixture weight");
    // The left component is N(-10, 1) in distribution, not only in mean.
    let left: Vec<f64> = v.iter().copied().filter(|x| *x < 0.0).collect();
    ks(
        &left,
        &reference(rand_distr::Normal::new(-10.0, 1.0).unwrap(), 12),
        "left component",
    );

    // The stdlib ring: 8 equally likely clusters of std 0.2 at radius 2.
    let (p, space) = program("", "R^2", "ring_mixture(k = 8, radius = 2, scale = 0.2)");
    assert_eq!(space, Space::Euclidean { dim: 2 });
    let t = draw(&p, 6);
    let (x, y) = (col(&t, 0), col(&t, 1));
    let mut counts = [0usize; 8];
    let mut dx = vec![];
    for (a, b) in x.iter().zip(&y) {
        let k =
            ((b.atan2(*a) / (std::f64::consts::PI / 4.0)).round() as i64).rem_euclid(8) as usize;
        counts[k] += 1;
        let ang = k as f64 * std::f64::consts::PI / 4.0;
        dx.push(a - 2.0 * ang.cos());
    }
    for c in counts {
        let share = c as f64 / N as f64;
        let se = (0.125f64 * 0.875 / N as f64).sqrt();
        assert!((share - 0.125).abs() < 5.0 * se, "cluster share {share}");
    }
    let sd = (dx.iter().map(|d| d * d).sum::<f64>() / dx.len() as f64).sqrt();
    assert!((sd - 0.2).abs() < 0.01, "within-cluster std {sd}");
}

#[test]
fn stdlib_priors_match_the_builtins() {
    use rand_distr::{Beta, Normal};
    let (p, _) = program("", "R^8", "gaussian(8, std = 2)");
    let t = draw(&p, 12);
    ks(
        &col(&t, 5),
        &reference(Normal::new(0.0, 2.0).unwrap(), 13),
        "gaussian",
    );
    // sphere(10) against the built-in uniform_sphere on S^9: same first-coordinate law.
    let (p, _) = program("", "S^9", "sphere(10)");
    let ours = col(&draw(&p, 14), 0);
    tch::manual_seed(15);
    let builtin =
        sae_dsl::runtime::sampler::sample_prior(&Prior::UniformSphere, &[], N, 10, Device::Cpu)
            .to_kind(Kind::Double);
    ks(&ours, &col(&builtin, 0), "sphere vs built-in");
    // symmetric_dirichlet(16, 0.2): normalised Gammas; a coordinate is Beta(0.2, 3.0).
    let (p, _) = program("", "simplex(16)", "symmetric_dirichlet(16, alpha = 0.2)");
    let t = draw(&p, 16);
    ks(
        &col(&t, 3),
        &reference(Beta::new(0.2, 3.0).unwrap(), 17),
        "dirichlet program",
    );
    let sums = t.sum_dim_intlist(1, false, Kind::Double);
    assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-4);
    // Every stdlib prior draws finite values of its space's dimension.
    for (space, call) in [
        ("R^2", "box()"),
        ("R^2", "grid_mixture()"),
        ("R^2", "swiss_roll()"),
        ("S^9", "what(10)"),
        ("R^3", "where()"),
        ("R^13", "what_where(10)"),
        ("S^2", "two_caps()"),
    ] {
        let (p, sp) = program("", space, call);
        let t = draw(&p, 18);
        assert_eq!(t.size(), [N, sp.dim()], "{call}");
        assert!(t.isfinite().all().int64_value(&[]) == 1, "{call} is finite");
    }
}

#[test]
fn a_program_draws_independent_rows_in_one_pass() {
    // One run returns the batch; each row has its own draws (a broadcasting slip would give every
    // row the same cluster or the same noise).
    let (p, _) = program("", "R^2", "ring_mixture()");
    for n in [1, 7, 4096] {
        let t = sample_program(&p, &[], n, Device::Cpu);
        assert_eq!(t.size(), [n, 2]);
    }
    let t = sample_program(&p, &[], 4096, Device::Cpu).to_kind(Kind::Double);
    let angles: Vec<i64> = (0..4096)
        .map(|i| {
            let a = t.double_value(&[i, 1]).atan2(t.double_value(&[i, 0]));
            ((a / (std::f64::consts::PI / 4.0)).round() as i64).rem_euclid(8)
        })
        .collect();
    let distinct: std::collections::HashSet<i64> = angles.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        8,
        "every cluster appears in a batch of 4096"
    );
    let first = t.get(0);
    let same = (&t - &first)
        .abs()
        .sum_dim_intlist(1, false, Kind::Double)
        .lt(1e-12);
    assert_eq!(same.sum(Kind::Int64).int64_value(&[]), 1, "rows differ");
}

#[test]
fn composite_latents_sample_and_train_per_component() {
    let text = r#"
        import "std/priors"
        data rings(n = 512)
        latent angle: S^1 ~ sphere(2)
        latent size: R^1 ~ gaussian(1, std = 0.5)
        encoder angle { linear(16) relu linear(2) normalize }
        encoder size { linear(16) relu linear(1) }
        generator { linear(16) relu linear(2) }
        penalty 1 * sinkhorn(epsilon = 0.1, iterations = 20) on angle
        penalty 0.5 * sinkhorn(epsilon = 0.1, iterations = 20) on size
        train { optimizer adam(lr = 3e-3) batch 128 epochs 3 seed 2 }
    "#;
    let c = compile_source("composite.sae", text, None);
    let m = c
        .model
        .unwrap_or_else(|| panic!("{}", c.sources.render(&c.diags, false, 100)));
    assert_eq!(m.latent_dim(), 3);
    assert_eq!(m.penalties[1].on, "size");
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let net = sae_dsl::runtime::model::Compiled::new(&vs, &m);
    tch::manual_seed(0);
    let w = net.sample_prior(N).to_kind(Kind::Double);
    let norms = w
        .narrow(1, 0, 2)
        .square()
        .sum_dim_intlist(1, false, Kind::Double);
    assert!(
        (norms - 1.0).abs().max().double_value(&[]) < 1e-5,
        "angle on the circle"
    );
    ks(
        &col(&w, 2),
        &reference(rand_distr::Normal::new(0.0, 0.5).unwrap(), 13),
        "size component",
    );
    let x = Tensor::randn([5, 2], (Kind::Float, Device::Cpu));
    let z = net.encode(&x, false);
    assert_eq!(z.size(), [5, 3]);
    let zn = z
        .narrow(1, 0, 2)
        .square()
        .sum_dim_intlist(1, false, Kind::Float);
    assert!(
        (zn - 1.0).abs().max().double_value(&[]) < 1e-5,
        "encoder ends on the circle"
    );
    let dir = common::tempdir("composite");
    let opts = sae_dsl::train::RunOptions {
        out: Some(dir.join("run")),
        quiet: true,
        ..Default::default()
    };
    let s = sae_dsl::pipeline::run(&m, text, Device::Cpu, &opts).expect("trains");
    assert_eq!(s.epochs.len(), 3);
    assert!(s
        .epochs
        .iter()
        .all(|e| e.penalty.is_finite() && e.recon.is_finite()));
}

#[test]
fn place_and_crop_move_and_scale_as_specified() {
    // A centred Gaussian blob: placed at w, its centroid moves to the canvas point shift * w.
    let h = 28i64;
    let grid = Tensor::arange(h, (Kind::Float, Device::Cpu)) - (h as f64 - 1.0) / 2.0;
    let r2 = grid.square().unsqueeze(0) + grid.square().unsqueeze(1);
    let blob = (-r2 / 18.0).exp().view([1, 1, h, h]);
    let size = 64i64;
    let (shift, zoom) = (0.4, 0.3);
    let w = Tensor::from_slice(&[1.0f32, -0.5, 0.5]).view([1, 3]);
    let canvas = place(&blob, &w, size, shift, zoom);
    assert_eq!(canvas.size(), [1, 1, size, size]);
    let c = canvas.view([size, size]).to_kind(Kind::Double);
    let idx = Tensor::arange(size, (Kind::Double, Device::Cpu));
    let mass = c.sum(Kind::Double).double_value(&[]);
    let cx = (c.sum_dim_intlist(0, false, Kind::Double) * &idx)
        .sum(Kind::Double)
        .double_value(&[])
        / mass;
    let cy = (c.sum_dim_intlist(1, false, Kind::Double) * &idx)
        .sum(Kind::Double)
        .double_value(&[])
        / mass;
    // Canvas coordinate t in [-1, 1] is pixel (t + 1) * size / 2 - 0.5 (align_corners = false).
    let px = |t: f64| (t + 1.0) * size as f64 / 2.0 - 0.5;
    assert!(
        (cx - px(shift * 1.0)).abs() < 0.3,
        "x centroid {cx} vs {}",
        px(shift)
    );
    assert!(
        (cy - px(shift * -0.5)).abs() < 0.3,
        "y centroid {cy} vs {}",
        px(-0.5 * shift)
    );
    // Mass scales with the area: (exp(zoom w2))^2.
    let blob_mass = blob.sum(Kind::Double).double_value(&[]);
    let ratio = mass / blob_mass;
    let expected = (zoom * 0.5f64).exp().powi(2);
    assert!(
        (ratio / expected - 1.0).abs() < 0.02,
        "mass ratio {ratio} vs {expected}"
    );
    // Cropping at the same position recovers the blob.
    let back = crop(&canvas, &w, h, shift, zoom);
    let err = (&back - &blob).abs().max().double_value(&[]);
    assert!(err < 0.05, "crop(place(x)) differs from x by {err}");
}

/// The functions of issue 15 on random inputs, row by row against the same function computed
/// here in float64 from the drawn inputs: log1p, expm1, erf, logsumexp, norm, cumsum, max and
/// min of a vector, and min, max, atan2, pow, dot and clip of two or three arguments.
#[test]
fn new_functions_match_float64_references() {
    let defs = "prior fx() on R^21 {\n\
        x ~ normal(0, 1, dim = 3)\n\
        y ~ normal(0, 1, dim = 3)\n\
        u ~ uniform(0, 2)\n\
        return concat(x, y, u, log1p(exp(x[0])), expm1(x[1]), erf(x[2]), logsumexp(x), norm(x),\n\
                      cumsum(x)[2], max(x), min(y), min(x[0], y[0]), max(x[1], 0.5),\n\
                      atan2(y[0], x[0]), pow(u, 1.5), dot(x, y), clip(y[2], -0.5, 0.25))\n\
    }";
    let (p, _) = program(defs, "R^21", "fx()");
    let t = draw(&p, 11);
    let c: Vec<Vec<f64>> = (0..21).map(|j| col(&t, j)).collect();
    let erf = |x: f64| {
        // Abramowitz and Stegun 7.1.26 (error below 1.5e-7): independent of the folding code.
        let s = x.signum();
        let x = x.abs();
        let t = 1.0 / (1.0 + 0.3275911 * x);
        let y = 1.0
            - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
                + 0.254829592)
                * t
                * (-x * x).exp();
        s * y
    };
    let mut worst = 0.0f64;
    for i in 0..N as usize {
        let x = [c[0][i], c[1][i], c[2][i]];
        let y = [c[3][i], c[4][i], c[5][i]];
        let u = c[6][i];
        let want = [
            x[0].exp().ln_1p(),
            x[1].exp_m1(),
            erf(x[2]),
            x.iter().map(|v| v.exp()).sum::<f64>().ln(),
            x.iter().map(|v| v * v).sum::<f64>().sqrt(),
            x[0] + x[1] + x[2],
            x[0].max(x[1]).max(x[2]),
            y[0].min(y[1]).min(y[2]),
            x[0].min(y[0]),
            x[1].max(0.5),
            y[0].atan2(x[0]),
            u.powf(1.5),
            x[0] * y[0] + x[1] * y[1] + x[2] * y[2],
            y[2].clamp(-0.5, 0.25),
        ];
        for (k, w) in want.iter().enumerate() {
            let got = c[7 + k][i];
            let err = (got - w).abs() / w.abs().max(1.0);
            assert!(
                err < 2e-6,
                "function {k}: row {i}: {got} vs {w} (x {x:?}, y {y:?}, u {u})"
            );
            worst = worst.max(err);
        }
    }
    eprintln!("largest relative difference to the float64 references: {worst:.2e}");
}

/// Linear algebra in prior programs, row by row against float64 arithmetic on the drawn
/// inputs: a matrix literal times a drawn vector (`@`), a vector times a matrix, a product of
/// constant matrices (folded), `transpose`, `diag`, `eye`, `ones`, `range`, and `one_hot` of
/// a drawn category.
#[test]
fn matrix_products_and_constructors_match_float64_references() {
    let defs = "prior lin() on R^15 {\n\
        W = [[1, 0], [0.5, 1], [0, 2]]\n\
        u ~ normal(0, 1, dim = 2)\n\
        c ~ categorical([0.2, 0.3, 0.5])\n\
        v = W @ u\n\
        return concat(u, v, v @ W, (transpose(W) @ W) @ u, diag([2, 3]) @ u + eye(2) @ u,\n\
                      one_hot(c, 3), dot(ones(3), v) + sum(range(3)))\n\
    }";
    let (p, _) = program(defs, "R^15", "lin()");
    let t = draw(&p, 5);
    let c: Vec<Vec<f64>> = (0..15).map(|j| col(&t, j)).collect();
    let w = [[1.0, 0.0], [0.5, 1.0], [0.0, 2.0]];
    let mut counts = [0usize; 3];
    for i in 0..N as usize {
        let u = [c[0][i], c[1][i]];
        let v: Vec<f64> = w.iter().map(|r| r[0] * u[0] + r[1] * u[1]).collect();
        let vw: Vec<f64> = (0..2)
            .map(|j| (0..3).map(|k| v[k] * w[k][j]).sum())
            .collect();
        let wtw: Vec<f64> = (0..2)
            .map(|a| {
                (0..2)
                    .map(|b| (0..3).map(|k| w[k][a] * w[k][b]).sum::<f64>() * u[b])
                    .sum()
            })
            .collect();
        let mut want = vec![];
        want.extend(&v);
        want.extend(&vw);
        want.extend(&wtw);
        want.extend([3.0 * u[0], 4.0 * u[1]]);
        let hot: Vec<f64> = (0..3).map(|j| c[11 + j][i]).collect();
        assert_eq!(hot.iter().sum::<f64>(), 1.0, "row {i}: one_hot {hot:?}");
        let k = hot.iter().position(|&h| h == 1.0).expect("a one");
        counts[k] += 1;
        want.extend(&hot);
        want.push(v.iter().sum::<f64>() + 3.0);
        for (j, w) in want.iter().enumerate() {
            let got = c[2 + j][i];
            assert!(
                (got - w).abs() <= 1e-5 * w.abs().max(1.0),
                "column {}: row {i}: {got} vs {w} (u {u:?})",
                2 + j
            );
        }
    }
    // The categories at their probabilities (5 standard errors).
    for (k, p) in [0.2, 0.3, 0.5].iter().enumerate() {
        let f = counts[k] as f64 / N as f64;
        assert!(
            (f - p).abs() < 5.0 * (p * (1.0 - p) / N as f64).sqrt(),
            "category {k}: {f}"
        );
    }
}

/// Elementwise arithmetic and functions on matrices with a drawn scalar, and slices of drawn
/// vectors and of matrices, row by row against float64.
#[test]
fn slices_and_elementwise_matrices_match_float64_references() {
    let defs = "prior mat() on R^7 {\n\
        W = [[1, 0], [0.5, 1], [0, 2]]\n\
        s ~ uniform(0.5, 1.5)\n\
        u ~ normal(0, 1, dim = 4)\n\
        M = exp(W * s) - W / 2\n\
        R = (M * M)[1:]\n\
        return concat(s, u[1:3], M @ u[:2], R[1][:1])\n\
    }";
    let (p, _) = program(defs, "R^7", "mat()");
    let t = draw(&p, 9);
    let c: Vec<Vec<f64>> = (0..7).map(|j| col(&t, j)).collect();
    let w = [[1.0, 0.0], [0.5, 1.0], [0.0, 2.0]];
    for i in 0..N as usize {
        let s = c[0][i];
        assert!((0.5..1.5).contains(&s));
        let (u1, u2) = (c[1][i], c[2][i]);
        // u[0] is not returned; M @ u[:2] = M[:, 0] u0 + M[:, 1] u1 with u1 = column 1.
        let m: Vec<[f64; 2]> = w
            .iter()
            .map(|r| [(r[0] * s).exp() - r[0] / 2.0, (r[1] * s).exp() - r[1] / 2.0])
            .collect();
        // Solve for u0 from the first output row (m[0][0] > 0), then check the other two.
        let u0 = (c[3][i] - m[0][1] * u1) / m[0][0];
        for k in 1..3 {
            let want = m[k][0] * u0 + m[k][1] * u1;
            let got = c[3 + k][i];
            assert!(
                (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                "row {i}: (M @ u)[{k}] = {got}, expected {want}"
            );
        }
        let want = m[2][0] * m[2][0];
        assert!(
            (c[6][i] - want).abs() <= 1e-5 * want.max(1.0),
            "row {i}: R[1][0] = {}, expected {want}",
            c[6][i]
        );
        let _ = u2;
    }
}

/// Comparisons and `if ... then ... else` (elementwise) on drawn values, row by row: 1 where a
/// comparison holds and 0 elsewhere, the branch chosen per sample.
#[test]
fn comparisons_and_conditionals_choose_per_sample() {
    let defs = "prior cmp() on R^8 {\n\
        x ~ normal(0, 1, dim = 2)\n\
        u ~ uniform(0, 1)\n\
        return concat(x, u, x[0] < x[1], u >= 0.5, if x > 0 then x else 0 * x,\n\
                      if u < 0.3 then 1 else -1)\n\
    }";
    let (p, _) = program(defs, "R^8", "cmp()");
    let t = draw(&p, 9);
    let c: Vec<Vec<f64>> = (0..8).map(|j| col(&t, j)).collect();
    let mut low = 0usize;
    for i in 0..N as usize {
        let (x, u) = ([c[0][i], c[1][i]], c[2][i]);
        let want = [
            f64::from(u8::from(x[0] < x[1])),
            f64::from(u8::from(u >= 0.5)),
            x[0].max(0.0),
            x[1].max(0.0),
            if u < 0.3 { 1.0 } else { -1.0 },
        ];
        for (k, w) in want.iter().enumerate() {
            assert_eq!(c[3 + k][i] as f32, *w as f32, "column {}: row {i}", 3 + k);
        }
        low += usize::from(u < 0.3);
    }
    let f = low as f64 / N as f64;
    assert!((f - 0.3).abs() < 5.0 * (0.21 / N as f64).sqrt(), "{f}");
}

/// A mixture built by a comprehension equals the same mixture written out by hand, in
/// distribution (two-sample KS per coordinate); comprehensions over a vector build vectors.
#[test]
fn comprehension_mixtures_equal_hand_written_ones() {
    let verts = "[[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, 0]]";
    let built = format!(
        "prior a() on S^2 {{\n  verts = {verts}\n  z ~ mixture([vmf(normalize(v), 40) for v in verts], weights = [1, 2, 3, 4])\n  return z\n}}"
    );
    let by_hand = "prior a() on S^2 {\n  z ~ mixture(vmf([1, 0, 0], 40), vmf([0, 1, 0], 40), vmf([0, 0, 1], 40),\n                vmf(normalize([-1, -1, 0]), 40), weights = [1, 2, 3, 4])\n  return z\n}";
    let (p, _) = program(&built, "S^2", "a()");
    let (q, _) = program(by_hand, "S^2", "a()");
    let (s, t) = (draw(&p, 21), draw(&q, 22));
    for j in 0..3 {
        ks(&col(&s, j), &col(&t, j), &format!("coordinate {j}"));
    }
    // Values: [2 k + u for k in range(3)] is the vector (u, 2 + u, 4 + u).
    let (p, _) = program(
        "prior b() on R^4 {\n  u ~ uniform(0, 1)\n  return concat(u, [2 * k + u for k in range(3)])\n}",
        "R^4",
        "b()",
    );
    let t = draw(&p, 3);
    let c: Vec<Vec<f64>> = (0..4).map(|j| col(&t, j)).collect();
    for i in 0..N as usize {
        for k in 0..3 {
            assert!((c[1 + k][i] - (2.0 * k as f64 + c[0][i])).abs() < 1e-6);
        }
    }
}

/// User functions expand where they are called: a rotation function of a drawn vector, row by
/// row against float64, and a function returning a distribution (its draws at their mean).
#[test]
fn user_functions_expand_where_called() {
    let defs = "fn rotate(v, t = 0) = [[cos(t), -sin(t)], [sin(t), cos(t)]] @ v\n\
        fn blob(m, s = 0.1) = normal(m, s)\n\
        prior spun() on R^6 {\n\
        u ~ normal(0, 1, dim = 2)\n\
        c ~ blob([1, 2])\n\
        return concat(u, rotate(u, t = 0.5), c)\n\
    }";
    let (p, _) = program(defs, "R^6", "spun()");
    let t = draw(&p, 4);
    let c: Vec<Vec<f64>> = (0..6).map(|j| col(&t, j)).collect();
    let (s, co) = (0.5f64.sin(), 0.5f64.cos());
    for i in 0..N as usize {
        let (x, y) = (c[0][i], c[1][i]);
        assert!((c[2][i] - (co * x - s * y)).abs() < 1e-5, "row {i}");
        assert!((c[3][i] - (s * x + co * y)).abs() < 1e-5, "row {i}");
    }
    near_mean(&c[4], 1.0, 0.1, "blob x");
    near_mean(&c[5], 2.0, 0.1, "blob y");
}
