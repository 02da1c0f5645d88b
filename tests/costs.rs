//! Paths checked against hand computations: the reconstruction costs (squared error, L1,
//! cross-entropy), the blocked MMD used by `eval` against the direct one, and the great-circle
//! interpolation on the sphere.

use sae_dsl::ir::{ReconCost, Space};
use sae_dsl::runtime::objective::recon_cost;
use sae_dsl::runtime::ot::{self, Kernel};
use sae_dsl::runtime::space::latent_path;
use tch::{Device, Kind, Tensor};

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).expect("values")
}

#[test]
fn reconstruction_costs_match_hand_computations() {
    tch::manual_seed(3);
    let (b, f) = (5usize, 7usize);
    let x = Tensor::rand([b as i64, f as i64], (Kind::Double, Device::Cpu));
    let y = Tensor::rand([b as i64, f as i64], (Kind::Double, Device::Cpu)) * 0.98 + 0.01;
    let (xv, yv) = (values(&x), values(&y));
    // Summed over an example's features, averaged over the batch.
    let per_batch = |term: &dyn Fn(f64, f64) -> f64| -> f64 {
        (0..b)
            .map(|i| {
                (0..f)
                    .map(|j| term(yv[i * f + j], xv[i * f + j]))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / b as f64
    };
    let cases: [(ReconCost, Box<dyn Fn(f64, f64) -> f64>); 3] = [
        (ReconCost::SquaredL2, Box::new(|p, q| (p - q).powi(2))),
        (ReconCost::L1, Box::new(|p, q| (p - q).abs())),
        (
            ReconCost::Bce,
            Box::new(|p, q| -(q * p.ln() + (1.0 - q) * (1.0 - p).ln())),
        ),
    ];
    for (cost, term) in cases {
        let got = recon_cost(&cost, &y, &x).double_value(&[]);
        let want = per_batch(term.as_ref());
        // The cost is summed in float32, as in training.
        assert!(
            (got - want).abs() < 1e-6 * want.abs().max(1.0),
            "{cost:?}: {got} vs {want}"
        );
    }
    // A saturated output gives a large but finite cross-entropy, not infinity.
    let ones = Tensor::ones([1, 3], (Kind::Double, Device::Cpu));
    let zeros = Tensor::zeros([1, 3], (Kind::Double, Device::Cpu));
    let sat = recon_cost(&ReconCost::Bce, &ones, &zeros).double_value(&[]);
    assert!(sat.is_finite() && sat > 30.0, "{sat}");
}

/// An example's values summed: [B, C, H, W] -> [B].
fn per(t: Tensor) -> Tensor {
    t.sum_dim_intlist([1, 2, 3].as_slice(), false, Kind::Double)
}

/// The cost of `text` compiled for `data` (a data clause).
fn dsl_cost(data: &str, dim: usize, text: &str) -> ReconCost {
    let model = format!(
        "data {data}\nlatent R^2 ~ normal()\nencoder {{ flatten linear(2) }}\ngenerator {{ linear({dim}) {} }}\ncost {text}\npenalty sinkhorn(epsilon = 0.1)\n",
        if data.starts_with("shapes") { "reshape(3, 8, 8)" } else { "" }
    );
    let c = sae_dsl::compile_source("cost.sae", &model, None);
    let m = c
        .model
        .unwrap_or_else(|| panic!("{}", c.sources.render(&c.diags, false, 100)));
    assert!(matches!(m.cost, ReconCost::Expr { .. }), "{:?}", m.cost);
    m.cost
}

/// Costs written in the language against the same costs written here with tensor operations:
/// values and gradients with respect to the reconstruction, on images (per-channel weights,
/// neighbour differences) and on points (per-feature weights).
#[test]
fn costs_written_in_the_language_match_hand_written_ones() {
    tch::manual_seed(8);
    let opts = (Kind::Double, Device::Cpu);
    let x = Tensor::rand([4, 3, 8, 8], opts);
    let y0 = Tensor::rand([4, 3, 8, 8], opts);
    let w = Tensor::from_slice(&[0.2f64, 0.7, 0.1]).view([1, 3, 1, 1]);
    type Hand<'a> = Box<dyn Fn(&Tensor, &Tensor) -> Tensor + 'a>;
    let cases: Vec<(&str, Hand<'_>)> = vec![
        (
            "sum((x - y)^2) + 0.1 * sum(abs(x - y))",
            Box::new(|x, y| per((x - y).square()) + per((x - y).abs()) * 0.1),
        ),
        (
            "sum([0.2, 0.7, 0.1] * (x - y)^2)",
            Box::new(move |x, y| per((x - y).square() * &w)),
        ),
        (
            "sum(sqrt((x - y)^2 + 1e-3))",
            Box::new(|x, y| per(((x - y).square() + 1e-3).sqrt())),
        ),
        (
            "mean((x - y)^2) + 0.5 * (sum(dx(x - y)^2) + sum(dy(x - y)^2))",
            Box::new(|x, y| {
                let d = x - y;
                let gx = d.narrow(3, 1, 7) - d.narrow(3, 0, 7);
                let gy = d.narrow(2, 1, 7) - d.narrow(2, 0, 7);
                d.square()
                    .mean_dim([1, 2, 3].as_slice(), false, Kind::Double)
                    + (per(gx.square()) + per(gy.square())) * 0.5
            }),
        ),
        (
            "sum(max(x - y, 0) - min(x, y) * log1p(y)) / 2",
            Box::new(|x, y| per((x - y).clamp_min(0.0) - x.minimum(y) * y.log1p()) / 2.0),
        ),
    ];
    for (text, hand) in cases {
        let cost = dsl_cost("shapes(n = 64, size = 8)", 192, text);
        let y = y0.copy().set_requires_grad(true);
        let got = recon_cost(&cost, &y, &x);
        let g_got = Tensor::run_backward(&[&got], &[&y], false, false).remove(0);
        let y = y0.copy().set_requires_grad(true);
        let want = hand(&x, &y).mean(Kind::Double);
        let g_want = Tensor::run_backward(&[&want], &[&y], false, false).remove(0);
        let (a, b) = (got.double_value(&[]), want.double_value(&[]));
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "{text}: {a} vs {b}"
        );
        let dg = (&g_got - &g_want).abs().max().double_value(&[]);
        assert!(dg <= 1e-9, "{text}: gradients differ by {dg}");
    }
    // Points: a weight per feature.
    let x = Tensor::rand([6, 2], opts);
    let y = Tensor::rand([6, 2], opts);
    let cost = dsl_cost("rings(n = 256)", 2, "sum([1, 3] * abs(x - y))");
    let got = recon_cost(&cost, &y, &x).double_value(&[]);
    let want = ((&x - &y).abs() * Tensor::from_slice(&[1.0f64, 3.0]))
        .sum(Kind::Double)
        .double_value(&[])
        / 6.0;
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

#[test]
fn blocked_mmd_equals_the_direct_one() {
    tch::manual_seed(4);
    let x = Tensor::randn([300, 3], (Kind::Double, Device::Cpu));
    let y = Tensor::randn([250, 3], (Kind::Double, Device::Cpu)) * 1.5 + 0.3;
    for kernel in [Kernel::Imq, Kernel::Rbf] {
        let direct = ot::mmd(&x, &y, kernel, 6.0).double_value(&[]);
        for block in [64, 100, 1000] {
            let blocked = ot::mmd_blocked(&x, &y, kernel, 6.0, block);
            assert!(
                (blocked - direct).abs() < 1e-9 * direct.abs().max(1e-12) + 1e-12,
                "{kernel:?}, block {block}: {blocked} vs {direct}"
            );
        }
    }
}

#[test]
fn interpolation_on_the_sphere_follows_the_great_circle() {
    let a = Tensor::from_slice(&[1.0f32, 0.0, 0.0]);
    let b = Tensor::from_slice(&[0.0f32, 1.0, 0.0]);
    let steps = 7;
    let path = latent_path(&a, &b, Space::Sphere { dim: 3 }, steps);
    assert_eq!(path.size(), [steps, 3]);
    let v = values(&path);
    for k in 0..steps as usize {
        let p = &v[k * 3..k * 3 + 3];
        let norm = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "point {k} leaves the sphere: {norm}"
        );
        // Equal angles along the quarter circle from a to b.
        let angle = p[1].atan2(p[0]);
        let want = std::f64::consts::FRAC_PI_2 * k as f64 / (steps - 1) as f64;
        assert!(
            (angle - want).abs() < 1e-4,
            "point {k}: angle {angle} vs {want}"
        );
        assert!(p[2].abs() < 1e-6);
    }
    // In R^d the path is the straight line.
    let line = values(&latent_path(&a, &b, Space::Euclidean { dim: 3 }, 3));
    assert!((line[3] - 0.5).abs() < 1e-6 && (line[4] - 0.5).abs() < 1e-6);
}
