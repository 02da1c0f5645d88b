//! Latent geometry against closed forms: for a linear generator the geodesic is the straight
//! segment with length |A (z1 - z0)|; for a map of the plane onto a sphere patch the length is the
//! great-circle distance; the solver never lengthens the initial curve; the magnification factor
//! of s * identity is s^d; and the `geodesic` command's JSON for a fixed small model.

mod common;

use sae_dsl::eval::geometry::{self, Options};
use sae_dsl::ir::Space;
use tch::{Device, Kind, Tensor};

fn t(v: &[f64]) -> Tensor {
    Tensor::from_slice(&v.iter().map(|x| *x as f32).collect::<Vec<_>>())
}

#[test]
fn linear_generator_geodesic_is_the_straight_segment() {
    tch::manual_seed(1);
    let a = Tensor::randn([5, 2], (Kind::Float, Device::Cpu));
    let f = |z: &Tensor| z.matmul(&a.tr());
    let (z0, z1) = (t(&[-1.0, 0.5]), t(&[2.0, -1.0]));
    let g = geometry::solve(
        &f,
        &z0,
        &z1,
        Space::Euclidean { dim: 2 },
        24,
        &Options::default(),
    );
    let want = (z1.copy() - &z0)
        .matmul(&a.tr())
        .square()
        .sum(Kind::Float)
        .sqrt()
        .double_value(&[]);
    assert!(
        (g.length - want).abs() < 1e-4 * want,
        "length {} vs |A(z1 - z0)| {want}",
        g.length
    );
    // Every point lies on the segment.
    let dir = (&z1 - &z0) / (&z1 - &z0).square().sum(Kind::Float).sqrt();
    let rel = &g.curve - z0.unsqueeze(0);
    let along = rel.matmul(&dir.unsqueeze(1));
    let off = (&rel - along * dir.unsqueeze(0))
        .abs()
        .max()
        .double_value(&[]);
    assert!(off < 1e-3, "distance from the segment {off}");
    // The metric length (Jacobian-vector products) agrees.
    let ml = geometry::metric_length(&f, &g.curve);
    assert!(
        (ml - want).abs() < 1e-4 * want,
        "metric length {ml} vs {want}"
    );
}

#[test]
fn sphere_patch_length_is_the_great_circle_distance() {
    // (latitude, longitude) -> the unit sphere in R^3.
    let f = |z: &Tensor| {
        let (lat, lon) = (z.select(1, 0), z.select(1, 1));
        Tensor::stack(
            &[lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()],
            1,
        )
    };
    // Two points on the 50-degree parallel, 100 degrees apart: the parallel is longer than the
    // great circle, which bends towards the pole.
    let (lat, dl) = (50f64.to_radians(), 100f64.to_radians());
    let (z0, z1) = (t(&[lat, 0.0]), t(&[lat, dl]));
    let o = Options {
        max_iterations: 3000,
        rel_tol: 1e-7,
        lr: 1e-2,
    };
    let g = geometry::solve(&f, &z0, &z1, Space::Euclidean { dim: 2 }, 48, &o);
    let great = (lat.sin() * lat.sin() + lat.cos() * lat.cos() * dl.cos()).acos();
    let parallel = lat.cos() * dl;
    assert!(
        g.initial_length > parallel * 0.995 && g.initial_length < parallel * 1.001,
        "straight in the chart follows the parallel: {} vs {parallel}",
        g.initial_length
    );
    assert!(
        (g.length - great).abs() < 0.005 * great,
        "geodesic {} vs great circle {great}",
        g.length
    );
    assert!(g.improved && g.length < g.initial_length);
}

#[test]
fn the_solver_never_lengthens_the_initial_curve() {
    for seed in 0..6 {
        tch::manual_seed(seed);
        let w1 = Tensor::randn([3, 16], (Kind::Float, Device::Cpu));
        let w2 = Tensor::randn([16, 6], (Kind::Float, Device::Cpu));
        let f = |z: &Tensor| z.matmul(&w1).tanh().matmul(&w2);
        let z0 = Tensor::randn([3], (Kind::Float, Device::Cpu));
        let z1 = Tensor::randn([3], (Kind::Float, Device::Cpu));
        let o = Options {
            max_iterations: 60,
            ..Options::default()
        };
        let g = geometry::solve(&f, &z0, &z1, Space::Euclidean { dim: 3 }, 16, &o);
        assert!(
            g.length <= g.initial_length + 1e-9,
            "seed {seed}: {} > {}",
            g.length,
            g.initial_length
        );
        // On the sphere and the simplex too, and the curves stay on the manifold.
        let (s0, s1) = (
            sae_dsl::runtime::tensor::normalize(&z0),
            sae_dsl::runtime::tensor::normalize(&z1),
        );
        let gs = geometry::solve(&f, &s0, &s1, Space::Sphere { dim: 3 }, 16, &o);
        assert!(gs.length <= gs.initial_length + 1e-9);
        let norms = gs
            .curve
            .square()
            .sum_dim_intlist(1, false, Kind::Float)
            .sqrt();
        assert!(
            (norms - 1.0).abs().max().double_value(&[]) < 1e-5,
            "sphere curve leaves the sphere"
        );
        let (p0, p1) = (z0.softmax(0, Kind::Float), z1.softmax(0, Kind::Float));
        let gp = geometry::solve(&f, &p0, &p1, Space::Simplex { dim: 3 }, 16, &o);
        assert!(gp.length <= gp.initial_length + 1e-9);
        let sums = gp.curve.sum_dim_intlist(1, false, Kind::Float);
        assert!(
            (sums - 1.0).abs().max().double_value(&[]) < 1e-5
                && gp.curve.min().double_value(&[]) >= 0.0,
            "simplex curve leaves the simplex"
        );
    }
}

#[test]
fn magnification_of_a_scaled_identity_is_the_scale_to_the_power_d() {
    for (s, d) in [(2.0, 3i64), (0.5, 2), (3.0, 4)] {
        let f = move |z: &Tensor| z * s;
        let z = Tensor::randn([5, d], (Kind::Float, Device::Cpu));
        let m = geometry::magnification(&f, &z);
        let want = f64::powi(s, d as i32);
        assert!(
            (m - want).abs().max().double_value(&[]) < 1e-4 * want,
            "s {s}, d {d}"
        );
    }
    // The metric of a linear map is A^T A everywhere.
    let a = Tensor::randn([4, 2], (Kind::Float, Device::Cpu));
    let f = |z: &Tensor| z.matmul(&a.tr());
    let m = geometry::metric(&f, &Tensor::randn([3, 2], (Kind::Float, Device::Cpu)));
    let want = a.tr().matmul(&a);
    assert!((m - want.unsqueeze(0)).abs().max().double_value(&[]) < 1e-5);
}

/// The command's JSON for a fixed small model: deterministic weights, synthetic data.
#[test]
fn geodesic_json_of_a_fixed_model() {
    let text = "data rings(n = 256, k = 2)\nlatent R^2 ~ normal()\nencoder { linear(8) tanh linear(2) }\ngenerator { linear(8) tanh linear(2) }\npenalty sinkhorn()\ntrain { seed 3 }\n";
    let c = sae_dsl::compile_source("fixed.sae", text, None);
    let model = c.model.expect("model");
    let root = common::tempdir("geo");
    let dir = root.join("run");
    std::fs::create_dir_all(&dir).expect("dir");
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let _net = sae_dsl::runtime::model::Compiled::new(&vs, &model);
    let mut names: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (k, (_, v)) in names.iter_mut().enumerate() {
            let n = v.numel() as i64;
            let vals = (Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.7 + k as f64).sin() * 0.8;
            v.copy_(&vals.reshape(v.size()));
        }
    });
    vs.save(dir.join("checkpoint.safetensors")).expect("save");
    std::fs::write(dir.join("model.sae"), text).expect("model");
    std::fs::write(
        dir.join("config.json"),
        r#"{"model": {"name": "fixed"}, "run": {"seed": 3}}"#,
    )
    .expect("config");
    let run = sae_dsl::eval::open_run(&dir, Device::Cpu).expect("opens");
    let test = sae_dsl::data::load(&run.model.data, "test", None, 3, Device::Cpu).expect("data");
    let json =
        sae_dsl::eval::geodesic(&dir, &run.model, &run.net, &test, 0, 5, 8).expect("geodesic");
    assert!(
        json["geodesic"]["length_data_space"].as_f64()
            <= json["straight"]["length_data_space"].as_f64()
    );
    // Four significant digits keep the snapshot stable across BLAS builds.
    fn round(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                let x = n.as_f64().unwrap_or(0.0);
                let r = if x == 0.0 {
                    0.0
                } else {
                    let m = 10f64.powi(3 - x.abs().log10().floor() as i32);
                    (x * m).round() / m
                };
                *v = serde_json::json!(r);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(round),
            serde_json::Value::Object(o) => o.values_mut().for_each(round),
            _ => {}
        }
    }
    let mut j = json.clone();
    round(&mut j);
    insta::assert_snapshot!(serde_json::to_string_pretty(&j).expect("json"));
    for f in [
        "geodesic-0-5.json",
        "geodesic-0-5.png",
        "magnification-0-5.png",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let _ = std::fs::remove_dir_all(root);
}
