//! The log-domain Sinkhorn against POT reference values and gradients
//! (../shared/fixtures/sinkhorn; see its README for the conventions).

mod common;

use sae_dsl::runtime::ot;
use serde_json::Value;
use tch::{Kind, Tensor};

fn load(dir: &std::path::Path, name: &str) -> Tensor {
    let a = sae_dsl::data::npy::read(&dir.join(name)).expect("fixture array");
    Tensor::from_slice(&a.data).reshape([a.shape[0] as i64, a.shape[1] as i64])
}

fn matrix(v: &Value) -> Tensor {
    let rows: Vec<f64> = v
        .as_array()
        .expect("array")
        .iter()
        .flat_map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().expect("number"))
        })
        .collect();
    let n = v.as_array().map(|a| a.len()).unwrap_or(0) as i64;
    Tensor::from_slice(&rows).reshape([n, -1])
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn unrolled_values_and_gradients_match_the_reference() {
    let Some(dir) = common::fixtures() else {
        return;
    };
    let refs: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference.json")).expect("reference.json"),
    )
    .expect("json");
    let mut checked = 0;
    for pair in ["A", "B"] {
        let x0 = load(&dir, &format!("X_{pair}.npy"));
        let y = load(&dir, &format!("Y_{pair}.npy"));
        for (eps_key, by) in refs["pairs"][pair]["by_eps"].as_object().expect("by_eps") {
            let eps: f64 = eps_key.parse().expect("eps");
            for (l, r) in by["unrolled"].as_object().expect("unrolled") {
                let iters: i64 = l.parse().expect("L");
                let x = x0.copy().set_requires_grad(true);
                let out = ot::sinkhorn(&ot::sqdist(&x, &y), eps, iters);
                let sharp = out.sharp.double_value(&[]);
                let dual = out.dual.double_value(&[]);
                let want_sharp = r["sharp"].as_f64().expect("sharp");
                let want_dual = r["dual"].as_f64().expect("dual");
                assert!(
                    (sharp - want_sharp).abs() < 1e-9 * want_sharp.abs().max(1.0),
                    "{pair} eps {eps} L {iters}: sharp {sharp} vs {want_sharp}"
                );
                assert!(
                    (dual - want_dual).abs() < 1e-9 * want_dual.abs().max(1.0),
                    "{pair} eps {eps} L {iters}: dual {dual} vs {want_dual}"
                );
                let grad = Tensor::run_backward(&[&out.sharp], &[&x], false, false).remove(0);
                let err = max_abs(&grad, &matrix(&r["grad_sharp"]));
                assert!(
                    err < 1e-8,
                    "{pair} eps {eps} L {iters}: gradient error {err}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 12, "2 pairs x 2 epsilons x 3 iteration counts");
}

/// Run to convergence, the unrolled iteration reaches POT's converged plan: the transport cost,
/// the dual value and the envelope gradient 2 sum_j P_ij (x_i - y_j).
#[test]
fn converged_values_match_pot() {
    let Some(dir) = common::fixtures() else {
        return;
    };
    let refs: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference.json")).expect("reference.json"),
    )
    .expect("json");
    for pair in ["A", "B"] {
        let x = load(&dir, &format!("X_{pair}.npy"));
        let y = load(&dir, &format!("Y_{pair}.npy"));
        for (eps_key, r) in refs["pairs"][pair]["by_eps"].as_object().expect("by_eps") {
            let eps: f64 = eps_key.parse().expect("eps");
            let c = ot::sqdist(&x, &y);
            // POT needed 20,000 iterations plus Newton steps for pair B at eps 0.01.
            let iters = if eps < 0.05 { 40_000 } else { 3_000 };
            let out = tch::no_grad(|| ot::sinkhorn(&c, eps, iters));
            let err = ot::marginal_error(&out.plan);
            assert!(
                err < 1e-6,
                "{pair} eps {eps}: marginal error {err} after {iters} iterations"
            );
            // Values are accurate to about the marginal error (pair B at eps 0.01 converges slowly).
            let tol = 1e-8f64.max(50.0 * err);
            let linear = r["linear"].as_f64().expect("linear");
            let entropic = r["entropic"].as_f64().expect("entropic");
            let (sharp, dual) = (out.sharp.double_value(&[]), out.dual.double_value(&[]));
            assert!(
                (sharp - linear).abs() < tol,
                "{pair} eps {eps}: linear {sharp} vs {linear}"
            );
            assert!(
                (dual - entropic).abs() < tol,
                "{pair} eps {eps}: entropic {dual} vs {entropic}"
            );
            // Envelope gradient of the dual from the converged plan.
            let diff = x.unsqueeze(1) - y.unsqueeze(0);
            let grad = (out.plan.unsqueeze(2) * diff).sum_dim_intlist(1, false, Kind::Double) * 2.0;
            let gerr = max_abs(&grad, &matrix(&r["grad_entropic"]));
            assert!(
                gerr < 10.0 * tol,
                "{pair} eps {eps}: envelope gradient error {gerr}"
            );
        }
    }
}

/// Small epsilon on a unit-scale cost stays finite in the log domain (float32, as in training).
#[test]
fn small_epsilon_is_stable_in_float32() {
    tch::manual_seed(0);
    let x = Tensor::rand([128, 16], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let y = Tensor::rand([128, 16], (Kind::Float, tch::Device::Cpu));
    let c = ot::sqdist(&x, &y);
    let c = &c / c.max();
    let out = ot::sinkhorn(&c, 1e-3, 50);
    let v = out.sharp.double_value(&[]);
    assert!(v.is_finite() && v > 0.0, "value {v}");
    let g = Tensor::run_backward(&[&out.sharp], &[&x], false, false).remove(0);
    assert!(
        g.isfinite().all().int64_value(&[]) == 1,
        "gradient has non-finite entries"
    );
}

/// The geodesic cost on the sphere is the angle: brute force on a few points.
#[test]
fn geodesic_cost_is_the_angle() {
    let x = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 1.0]).reshape([2, 2]);
    let y = Tensor::from_slice(&[0.0f64, 1.0, -1.0, 0.0, 0.6, 0.8]).reshape([3, 2]);
    let c = ot::cost_matrix(&x, &y, sae_dsl::ir::LatentCost::Geodesic { p: 1.0 });
    let pi = std::f64::consts::PI;
    let want = [
        pi / 2.0,
        pi,
        (0.6f64).acos(),
        0.0,
        pi / 2.0,
        (0.8f64).acos(),
    ];
    for (i, w) in want.iter().enumerate() {
        let got = c.view([-1]).double_value(&[i as i64]);
        // Float64 chords (see ot::sphere_angle): rounding of about 1e-16 in a squared chord
        // moves an angle by at most about 1e-8 (at coincident points, under the root).
        assert!((got - w).abs() < 1e-7, "entry {i}: {got} vs {w}");
    }
}

/// The hand-written reverse sweep gives the autograd gradient of the unrolled iterations: against
/// the fixtures' unrolled values and gradients (float64), and against autograd in float32.
#[test]
fn fast_unrolled_gradient_matches_the_fixtures_and_autograd() {
    let Some(dir) = common::fixtures() else {
        return;
    };
    let refs: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference.json")).expect("reference.json"),
    )
    .expect("json");
    for pair in ["A", "B"] {
        let x0 = load(&dir, &format!("X_{pair}.npy"));
        let y = load(&dir, &format!("Y_{pair}.npy"));
        for (eps_key, by) in refs["pairs"][pair]["by_eps"].as_object().expect("by_eps") {
            let eps: f64 = eps_key.parse().expect("eps");
            for (l, r) in by["unrolled"].as_object().expect("unrolled") {
                let iters: i64 = l.parse().expect("L");
                let x = x0.copy().set_requires_grad(true);
                let v = ot::sinkhorn_unrolled_fast(&ot::sqdist(&x, &y), eps, iters);
                let want = r["sharp"].as_f64().expect("sharp");
                assert!(
                    (v.double_value(&[]) - want).abs() < 1e-9 * want.abs().max(1.0),
                    "{pair} {eps} {iters}: value"
                );
                let grad = Tensor::run_backward(&[&v], &[&x], false, false).remove(0);
                let err = max_abs(&grad, &matrix(&r["grad_sharp"]));
                assert!(
                    err < 1e-8,
                    "{pair} eps {eps} L {iters}: gradient error {err}"
                );
            }
        }
    }
    // float32, small epsilon (the floored exponents): agrees with autograd through the iterations.
    tch::manual_seed(5);
    let x0 = Tensor::rand([96, 8], (Kind::Float, tch::Device::Cpu));
    let y = Tensor::rand([80, 8], (Kind::Float, tch::Device::Cpu));
    for eps in [0.1, 0.01] {
        let xa = x0.copy().set_requires_grad(true);
        let a = ot::sinkhorn(&ot::sqdist(&xa, &y), eps, 30).sharp;
        let ga = Tensor::run_backward(&[&a], &[&xa], false, false).remove(0);
        let xb = x0.copy().set_requires_grad(true);
        let b = ot::sinkhorn_unrolled_fast(&ot::sqdist(&xb, &y), eps, 30);
        let gb = Tensor::run_backward(&[&b], &[&xb], false, false).remove(0);
        assert!(
            (a.double_value(&[]) - b.double_value(&[])).abs() < 1e-5,
            "eps {eps}: values"
        );
        let rel = (&ga - &gb).abs().max().double_value(&[]) / ga.abs().max().double_value(&[]);
        assert!(rel < 1e-3, "eps {eps}: relative gradient difference {rel}");
    }
}
