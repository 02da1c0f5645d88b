//! `sae-dsl export`: the TorchScript modules and the generated PyTorch module, loaded in Python
//! with the set-up's torch package, reproduce sae-dsl's own encodings and decodings within 1e-5.

mod common;

use std::path::Path;

use sae_dsl::eval::open_run;
use tch::{Device, Kind, Tensor};

/// Trains `text` for its epochs, exports it both ways and compares in Python.
fn check(tag: &str, text: &str, data: Option<&Path>) {
    let Some(mut py) = common::python_torch("the export check") else {
        return;
    };
    let root = common::tempdir(tag);
    let m = root.join("model.sae");
    std::fs::write(&m, text).expect("model");
    let run = root.join("run");
    common::train_quiet(&m, &run, data);
    let rs = run.to_str().expect("utf8");
    for format in ["torchscript", "safetensors"] {
        let o = root.join(format);
        let out = common::sae(&[
            "export",
            rs,
            "--format",
            format,
            "--out",
            o.to_str().expect("utf8"),
        ]);
        assert!(out.status.success(), "{}", common::flat_stderr(&out));
    }

    // sae-dsl's own results on 5 inputs (the traced modules saw a batch of 2).
    let loaded = open_run(&run, Device::Cpu).expect("the run opens");
    let mut shape = vec![5];
    shape.extend_from_slice(&loaded.model.data.shape);
    tch::manual_seed(3);
    let x = Tensor::rand(shape.as_slice(), (Kind::Float, Device::Cpu));
    let z = loaded.net.sample_prior(5).to_kind(Kind::Float);
    let (codes, decoded) =
        tch::no_grad(|| (loaded.net.encode(&x, false), loaded.net.decode(&z, false)));
    let expected = root.join("expected.safetensors");
    Tensor::write_safetensors(
        &[
            ("x", &x),
            ("z", &z),
            ("codes", &codes),
            ("decoded", &decoded),
        ],
        &expected,
    )
    .expect("expected");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/export_check.py");
    let out = py
        .arg(script)
        .arg(root.join("torchscript"))
        .arg(root.join("safetensors"))
        .arg(&expected)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "the Python side failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("a JSON line from the Python side");
    for k in [
        "torchscript_encode",
        "torchscript_decode",
        "python_encode",
        "python_decode",
    ] {
        let d = v[k].as_f64().expect(k);
        assert!(d <= 1e-5, "{tag}: {k} differs by {d} (all: {v})");
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("safetensors/model.json")).expect("model.json"),
    )
    .expect("json");
    assert_eq!(json["generator"]["input"][1], loaded.model.latent_dim());
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn an_mlp_with_a_composite_latent_exports_exactly() {
    check(
        "export-mlp",
        // b's prior has a learnable parameter: its weight is exported but not a network's.
        "import \"std/nets\"\ndata rings(n = 512)\nlatent a: S^1 ~ uniform_sphere()\nlatent b: R^2 ~ moving()\n\
         prior moving() on R^2 {\n  param m = [0.5, 0]\n  z ~ normal(m, 1)\n  return z\n}\n\
         encoder a { linear(16) leaky_relu(0.2) linear(2) normalize }\nencoder b { linear(16) tanh linear(2) }\n\
         generator { linear(16) relu linear(2) }\npenalty sinkhorn(epsilon = 0.1, iterations = 10) on a\n\
         penalty mmd() on b\ntrain { batch 64 epochs 1 }\n",
        None,
    );
}

#[test]
fn a_conv_net_with_batch_norm_and_a_gaussian_head_exports_exactly() {
    let Some(data) = common::data() else { return };
    check(
        "export-conv",
        "data mnist(limit = 256)\nlatent R^4 ~ normal()\n\
         encoder { conv2d(8, kernel = 4, stride = 2, padding = 1) batch_norm() relu flatten linear(32) gaussian(4) }\n\
         generator { linear(392) relu reshape(8, 7, 7) conv_transpose2d(8, kernel = 4, stride = 2, padding = 1) batch_norm() relu conv_transpose2d(1, kernel = 4, stride = 2, padding = 1) sigmoid }\n\
         cost bce\npenalty kl()\ntrain { batch 64 epochs 1 }\n",
        Some(&data),
    );
}

/// The layers of issue 16 (dilated and grouped convolutions, group and layer normalisation,
/// pooling, resizing, GELU, SiLU, ELU, softplus, dropout, identity) against the same modules
/// of PyTorch: after a trained epoch, the exported PyTorch network and the traced modules
/// encode and decode as sae-dsl does.
#[test]
fn every_new_layer_matches_its_pytorch_module() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ui/ok/layers_v2.sae"
    ))
    .expect("fixture");
    check("export-layers-v2", &text, None);
}

/// The projections onto the torus and the Poincare ball (`torus`, `expmap0` with a curvature)
/// against their exported PyTorch modules (`tests/ui/ok/geometries.sae`: a T^2 and a ball
/// component).
#[test]
fn torus_and_ball_projections_match_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ui/ok/geometries.sae"
    ))
    .expect("fixture");
    check("export-geometries", &text, None);
}

/// Residual blocks (with and without projections, in nets and inline, on images and vectors)
/// and concatenations against the same blocks written with torch.nn modules.
#[test]
fn residual_and_concat_blocks_match_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ui/ok/blocks.sae"
    ))
    .expect("fixture");
    check("export-blocks", &text, None);
}

#[test]
fn a_model_with_a_spatial_transformer_is_refused_with_the_reason() {
    let root = common::tempdir("export-place");
    // A run directory is not needed to see the refusal: the model is checked first.
    let run = root.join("run");
    std::fs::create_dir_all(&run).expect("dir");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/ok/composite_latent.sae"),
    )
    .expect("fixture");
    std::fs::write(run.join("model.sae"), text).expect("model");
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let c = sae_dsl::compile_source(
        "m.sae",
        &std::fs::read_to_string(run.join("model.sae")).expect("m"),
        None,
    );
    let _net = sae_dsl::runtime::model::Compiled::new(&vs, c.model.as_ref().expect("model"));
    vs.save(run.join("checkpoint.safetensors"))
        .expect("checkpoint");
    let out = common::sae(&[
        "export",
        run.to_str().expect("utf8"),
        "--format",
        "safetensors",
        "--out",
        root.join("out").to_str().expect("utf8"),
    ]);
    let err = common::flat_stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot export this model: its encoder of `what` has a `crop` layer")
            && err.contains("sae::export::unsupported"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn missing_best_weights_and_an_unwritable_folder_are_clear_errors() {
    let root = common::tempdir("export-errors");
    let m = root.join("model.sae");
    std::fs::write(
        &m,
        "data rings(n = 256)\nlatent R^2 ~ normal()\nencoder { linear(8) relu linear(2) }\n\
         generator { linear(8) relu linear(2) }\npenalty mmd()\ntrain { batch 64 epochs 1 }\n",
    )
    .expect("model");
    let run = root.join("run");
    common::train_quiet(&m, &run, None);
    let rs = run.to_str().expect("utf8");
    let o = root.join("out");
    let os = o.to_str().expect("utf8");
    let out = common::sae(&[
        "export",
        rs,
        "--format",
        "torchscript",
        "--out",
        os,
        "--weights",
        "best",
    ]);
    let err = common::flat_stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("has no best.safetensors: only a run with a `validation` setting keeps its best weights"),
        "{err}"
    );
    let out = common::sae(&[
        "export",
        rs,
        "--format",
        "safetensors",
        "--out",
        "/proc/sae-dsl/out",
    ]);
    let err = common::flat_stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("could not write /proc/sae-dsl/out")
            && err.contains("choose a writable --out folder"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(root);
}
