//! Initialisation (issue 13): the named alternatives to PyTorch's default against their closed
//! forms, and `run --init-from` with every error a user can meet, through the real binary.
//! (PyTorch's default itself is compared with PyTorch in tests/parity.rs.)

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sae_dsl::compile_source;
use sae_dsl::runtime::model::Compiled;
use tch::{nn, Device, Kind, Tensor};

const BIN: &str = env!("CARGO_BIN_EXE_sae-dsl");

fn variables(text: &str) -> HashMap<String, Tensor> {
    let c = compile_source("init.sae", text, None);
    assert!(!c.has_errors(), "{:?}", c.diags);
    let model = c.model.expect("model");
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = Compiled::new(&vs, &model);
    vs.variables().into_iter().collect()
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

#[test]
fn named_initialisations_follow_their_definitions() {
    // The model-wide default is xavier; one layer says orthogonal, one zeros, one kaiming.
    let v = variables(
        "data rings(n = 64)\nlatent R^2 ~ normal()\n\
         encoder { linear(400) relu linear(100, init = \"orthogonal\") relu linear(2, init = \"zeros\") }\n\
         generator { linear(300, init = \"kaiming\") relu reshape(3, 10, 10) conv_transpose2d(4, kernel = 3) flatten linear(2) }\n\
         penalty sinkhorn()\ntrain { init \"xavier\" }\n",
    );
    // xavier: U(+-sqrt(6 / (fan_in + fan_out))), zero bias; [400, 2].
    let bound = (6.0f64 / (2.0 + 400.0)).sqrt();
    let m = max_abs(&v["encoder.l0.weight"]);
    assert!(
        m <= bound && m > 0.95 * bound,
        "xavier linear: {m} vs {bound}"
    );
    assert_eq!(max_abs(&v["encoder.l0.bias"]), 0.0);
    // A transposed convolution's fans as PyTorch counts them: weight [3, 4, 3, 3].
    let bound = (6.0f64 / (4.0 * 9.0 + 3.0 * 9.0)).sqrt();
    let m = max_abs(&v["generator.l3.weight"]);
    assert!(
        m <= bound && m > 0.9 * bound,
        "xavier conv_transpose2d: {m} vs {bound}"
    );
    // orthogonal [100, 400]: orthonormal rows.
    let w = v["encoder.l2.weight"].to_kind(Kind::Double);
    let gram = w.matmul(&w.tr());
    let eye = Tensor::eye(100, (Kind::Double, Device::Cpu));
    assert!(max_abs(&(gram - eye)) < 1e-5, "orthogonal rows");
    assert_eq!(max_abs(&v["encoder.l2.bias"]), 0.0);
    // zeros.
    assert_eq!(max_abs(&v["encoder.l4.weight"]), 0.0);
    assert_eq!(max_abs(&v["encoder.l4.bias"]), 0.0);
    // kaiming: U(+-sqrt(6 / fan_in)), zero bias; [300, 2].
    let bound = (6.0f64 / 2.0).sqrt();
    let m = max_abs(&v["generator.l0.weight"]);
    assert!(m <= bound && m > 0.9 * bound, "kaiming: {m} vs {bound}");
    assert_eq!(max_abs(&v["generator.l0.bias"]), 0.0);
}

#[test]
fn the_default_is_pytorchs_bound_with_random_biases() {
    let v = variables(
        "data rings(n = 64)\nlatent R^2 ~ normal()\nencoder { linear(500) relu linear(2) }\n\
         generator { linear(2) }\npenalty sinkhorn()\n",
    );
    // [500, 2]: bound 1 / sqrt(2) for weights and biases alike.
    let bound = 1.0 / 2f64.sqrt();
    for name in ["encoder.l0.weight", "encoder.l0.bias"] {
        let m = max_abs(&v[name]);
        assert!(m <= bound && m > 0.95 * bound, "{name}: {m} vs {bound}");
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sae-dsl-init-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const MODEL: &str = "data rings(n = 256)\nlatent R^2 ~ normal()\nencoder { linear(32) relu linear(2) }\n\
    generator { linear(32) relu linear(2) }\npenalty 1 * sinkhorn(epsilon = 0.1)\ntrain { batch 64 epochs 1 }\n";

fn run(model: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args([
            "run",
            model.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
        ])
        .args(["--device", "cpu", "--no-eval", "--quiet"])
        .args(extra)
        .output()
        .expect("runs")
}

fn stderr(o: &Output) -> String {
    common::flat_stderr(o)
}

#[test]
fn init_from_a_run_starts_from_its_checkpoint() {
    let dir = temp("from-run");
    let model = dir.join("m.sae");
    std::fs::write(&model, MODEL).expect("write");
    let first = dir.join("first");
    let o = run(&model, &first, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The loader puts exactly the checkpoint's values into a fresh model.
    let c = compile_source("m.sae", MODEL, None);
    let m = c.model.expect("model");
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _net = Compiled::new(&vs, &m);
    sae_dsl::train::init::load_weights(&mut vs, &first).expect("loads");
    let saved: HashMap<String, Tensor> =
        Tensor::read_safetensors(first.join("checkpoint.safetensors"))
            .expect("checkpoint")
            .into_iter()
            .collect();
    for (name, v) in vs.variables() {
        assert!(v.equal(&saved[&name]), "{name} differs from the checkpoint");
    }
    // And the command trains from it, recording where it started.
    let second = dir.join("second");
    let o = run(
        &model,
        &second,
        &["--init-from", first.to_str().expect("utf8")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let config = std::fs::read_to_string(second.join("config.json")).expect("config");
    assert!(config.contains("\"init_from\""), "{config}");
}

#[test]
fn init_from_names_every_mismatch_and_starts_nothing() {
    let dir = temp("mismatch");
    let model = dir.join("m.sae");
    std::fs::write(&model, MODEL).expect("write");
    // A file with one variable of the wrong shape, one missing and one extra.
    let c = compile_source("m.sae", MODEL, None);
    let m = c.model.expect("model");
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = Compiled::new(&vs, &m);
    let mut tensors: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(n, _)| n != "generator.l2.bias")
        .collect();
    for (n, t) in tensors.iter_mut() {
        if n == "encoder.l0.weight" {
            *t = Tensor::zeros([16, 2], (Kind::Float, Device::Cpu));
        }
    }
    tensors.push((
        "encoder.l9.weight".into(),
        Tensor::zeros([3], (Kind::Float, Device::Cpu)),
    ));
    let file = dir.join("w.safetensors");
    Tensor::write_safetensors(&tensors, &file).expect("write");
    let out = dir.join("run");
    let o = run(&model, &out, &["--init-from", file.to_str().expect("utf8")]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("sae::run::init_from"), "{e}");
    assert!(
        e.contains("`encoder.l0.weight` is [16, 2] in the file but [32, 2] in the model"),
        "{e}"
    );
    assert!(e.contains("`generator.l2.bias` [2] is missing"), "{e}");
    assert!(
        e.contains("`encoder.l9.weight` [3] is not a variable of the model"),
        "{e}"
    );
    assert!(e.contains("the model's variables are"), "{e}");
    assert!(!out.exists(), "a refused start leaves no run directory");

    // Not a file, and not safetensors.
    let o = run(
        &model,
        &out,
        &[
            "--init-from",
            dir.join("nothing.safetensors").to_str().expect("utf8"),
        ],
    );
    assert!(stderr(&o).contains("no such file"), "{}", stderr(&o));
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not safetensors at all").expect("write");
    let o = run(&model, &out, &["--init-from", junk.to_str().expect("utf8")]);
    assert!(
        stderr(&o).contains("not a readable safetensors file"),
        "{}",
        stderr(&o)
    );
    // A run directory without a checkpoint.
    let empty = dir.join("empty-run");
    std::fs::create_dir_all(&empty).expect("dir");
    let o = run(
        &model,
        &out,
        &["--init-from", empty.to_str().expect("utf8")],
    );
    assert!(
        stderr(&o).contains("has no checkpoint.safetensors"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}
