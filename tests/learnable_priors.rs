//! Learnable priors (`param` statements in prior programs): gradients through the batched
//! sampler against central finite differences with the same random draws, the Gamma family's
//! implicit gradient against the closed form d/da E[Gamma(a)] = 1, and through the real binary:
//! the parameters train with the model, are saved in the checkpoint, resume exactly, and
//! `sae-dsl prior RUN_DIR NAME` draws them as learned.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use sae_dsl::compile_source;
use sae_dsl::ir::{self, Prior};
use sae_dsl::runtime::sampler::{initial_params, sample_program};
use tch::{Device, Kind, Tensor};

const BIN: &str = env!("CARGO_BIN_EXE_sae-dsl");

/// A model on 2-D rings whose only latent uses `prior` defined by `defs`.
fn model_text(defs: &str, prior: &str, epochs: i64) -> String {
    format!(
        "{defs}\ndata rings(n = 512, k = 2)\nlatent R^2 ~ {prior}\nencoder {{ linear(32) relu linear(2) }}\n\
         generator {{ linear(32) relu linear(2) }}\npenalty 1 * sinkhorn(epsilon = 0.1, iterations = 20)\n\
         train {{ optimizer adam(lr = 1e-2) batch 64 epochs {epochs} seed 3 }}\n"
    )
}

fn program(defs: &str, prior: &str) -> ir::Program {
    let c = compile_source("learn.sae", &model_text(defs, prior, 1), None);
    let m = c
        .model
        .unwrap_or_else(|| panic!("{}", c.sources.render(&c.diags, false, 100)));
    match &m.latents[0].prior {
        Prior::Program(p) => p.clone(),
        p => panic!("not a program: {p:?}"),
    }
}

const MIXTURE: &str = "prior learned(k: int = 3) on R^2 {
  param means ~ normal(zeros(k, 2), 2)
  param log_scales = log(0.5) * ones(k, 2)
  param shift = [0.3, -0.2]
  c ~ categorical(k)
  e ~ laplace(0, 1)
  u ~ uniform(shift[0], 1)
  z ~ normal(means[c] + shift * u, exp(log_scales[c]) * (1 + 0.1 * e))
  return z
}";

/// A smooth function of a batch of draws, with the parameters in float64 and the draws fixed by
/// the seed, so that central differences see the same noise.
fn objective(p: &ir::Program, params: &[Tensor]) -> Tensor {
    tch::manual_seed(11);
    let z = sample_program(p, params, 512, Device::Cpu).to_kind(Kind::Double);
    (z.square().sum(Kind::Double) / 512.0) + z.sin().sum(Kind::Double) / 512.0
}

#[test]
fn gradients_through_the_sampler_match_finite_differences() {
    let p = program(MIXTURE, "learned()");
    assert_eq!(p.params.len(), 3, "{p}");
    tch::manual_seed(0);
    let start: Vec<Tensor> = initial_params(&p, Device::Cpu)
        .iter()
        .map(|t| t.to_kind(Kind::Double))
        .collect();
    let vars: Vec<Tensor> = start
        .iter()
        .map(|t| t.detach().copy().set_requires_grad(true))
        .collect();
    let f = objective(&p, &vars);
    f.backward();
    let h = 1e-6;
    let mut checked = 0;
    for (i, v) in vars.iter().enumerate() {
        let grad = v.grad();
        let n = v.numel() as i64;
        for j in 0..n {
            let bump = |delta: f64| -> f64 {
                let moved: Vec<Tensor> = start
                    .iter()
                    .enumerate()
                    .map(|(k, t)| {
                        let t = t.copy();
                        if k == i {
                            let flat = t.view([-1]);
                            let _ = flat.get(j).g_add_scalar_(delta);
                        }
                        t
                    })
                    .collect();
                tch::no_grad(|| objective(&p, &moved).double_value(&[]))
            };
            let fd = (bump(h) - bump(-h)) / (2.0 * h);
            let g = grad.view([-1]).double_value(&[j]);
            assert!(
                (fd - g).abs() <= 1e-6 * fd.abs().max(1e-2),
                "d/d {}[{j}]: autograd {g}, finite differences {fd}",
                p.params[i].name
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6 + 6 + 2);
}

#[test]
fn the_gamma_familys_gradient_is_the_closed_form_one() {
    // E[Gamma(a, 1)] = a, so the mean pathwise gradient d/da of a Gamma draw is 1; for Beta(a, b)
    // the mean is a / (a + b), whose derivative in a is b / (a + b)^2.
    let p = program(
        "prior g() on R^2 {\n  param a = 2.5\n  param b = 1.5\n  x ~ gamma(a)\n  y ~ beta(a, b)\n  return [x, y]\n}",
        "g()",
    );
    let vars: Vec<Tensor> = initial_params(&p, Device::Cpu)
        .iter()
        .map(|t| t.to_kind(Kind::Double).set_requires_grad(true))
        .collect();
    tch::manual_seed(5);
    let n = 400_000;
    let z = sample_program(&p, &vars, n, Device::Cpu).to_kind(Kind::Double);
    let means = z.mean_dim(0, false, Kind::Double);
    let ga = Tensor::run_backward(&[means.get(0)], &[&vars[0]], true, false);
    let da = ga[0].double_value(&[]);
    assert!(
        (da - 1.0).abs() < 0.01,
        "d/da E[Gamma(a)] = {da}, expected 1"
    );
    let gb = Tensor::run_backward(&[means.get(1)], &[&vars[0], &vars[1]], false, false);
    let (a, b) = (2.5, 1.5);
    let (want_a, want_b) = (b / (a + b) / (a + b), -a / (a + b) / (a + b));
    let (got_a, got_b) = (gb[0].double_value(&[]), gb[1].double_value(&[]));
    assert!(
        (got_a - want_a).abs() < 0.01 && (got_b - want_b).abs() < 0.01,
        "d/da, d/db E[Beta(a, b)] = {got_a}, {got_b}; expected {want_a}, {want_b}"
    );
}

fn read(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

fn sae(args: &[&str]) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.args(args).env("SAE_DSL_OFFLINE", "1");
    if matches!(args.first(), Some(&"run") | Some(&"resume")) {
        c.arg("--no-eval");
    }
    c.output().expect("run sae-dsl")
}

fn ok(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn learnable_parameters_train_checkpoint_resume_exactly_and_show_as_learned() {
    let root = common::tempdir("learnable");
    let model = root.join("m.sae");
    let defs = "prior shifted(d: int = 2) on R^d {\n  param center = [3, -3]\n  param log_scale = zeros(d)\n  z ~ normal(center, exp(log_scale))\n  return z\n}";
    std::fs::write(&model, model_text(defs, "shifted()", 3)).expect("model");
    let (m, a, b) = (
        model.to_str().expect("utf8"),
        root.join("straight"),
        root.join("resumed"),
    );
    let (a_s, b_s) = (a.to_str().expect("utf8"), b.to_str().expect("utf8"));
    ok(&sae(&[
        "run", m, "--out", a_s, "--device", "cpu", "--quiet",
    ]));
    ok(&sae(&[
        "run", m, "--out", b_s, "--device", "cpu", "--quiet", "--epochs", "1",
    ]));
    let after_one = read(&b.join("checkpoint.safetensors"));
    ok(&sae(&[
        "resume", b_s, "--epochs", "3", "--device", "cpu", "--quiet",
    ]));

    let (x, y) = (
        read(&a.join("checkpoint.safetensors")),
        read(&b.join("checkpoint.safetensors")),
    );
    let center = &x["prior.z.center"];
    assert_eq!(center.size(), vec![2]);
    assert!(x.contains_key("prior.z.log_scale"), "{:?}", x.keys());
    // Trained: the codes of the rings lie near the origin, so the center moves away from (3, -3)
    // towards them, and keeps moving in epochs 2 and 3.
    let start = Tensor::from_slice(&[3.0f32, -3.0]);
    let moved = (center - &start).abs().max().double_value(&[]);
    assert!(moved > 0.05, "the learnable center moved by {moved} only");
    let diff_one = (&after_one["prior.z.center"] - center)
        .abs()
        .max()
        .double_value(&[]);
    assert!(
        diff_one > 1e-4,
        "epochs 2 and 3 moved the center by {diff_one} only"
    );
    for (k, t) in &x {
        let d = (t - &y[k]).abs().max().double_value(&[]);
        assert!(d < 1e-6, "{k}: resumed and straight runs differ by {d}");
    }

    let out_dir = root.join("learned");
    let text = ok(&sae(&[
        "prior",
        a_s,
        "z",
        "-n",
        "500",
        "--out",
        out_dir.to_str().expect("utf8"),
    ]));
    let c: Vec<f32> = Vec::<f32>::try_from(center.to_kind(Kind::Float)).expect("values");
    let shown = "learned center [2]: ";
    assert!(text.contains(shown), "{text}");
    assert!(
        text.contains(&format!("{:.4}", c[0])) && text.contains(&format!("{:.4}", c[1])),
        "the printed values are the checkpoint's {c:?}:\n{text}"
    );
    assert!(out_dir.join("z.npy").is_file() && out_dir.join("z.png").is_file());

    // A name that is neither a component nor a prior: the error lists what there is.
    let out = sae(&[
        "prior",
        a_s,
        "nope",
        "--out",
        out_dir.to_str().expect("utf8"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no latent component or prior called `nope`")
            && err.contains("`z` (prior `shifted`)"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(root);
}
