//! End to end on CPU: a model file compiled and trained; losses fall and artifacts are written.

mod common;

use sae_dsl::{compile_source, pipeline, train};

/// libtorch's random generator is one per process and training re-seeds it at every step: two
/// trainings in parallel threads would draw from each other's streams. Each test holds this lock,
/// so that every run here is the deterministic run of its seed.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn compile(text: &str) -> sae_dsl::ir::Model {
    let c = compile_source("toy.sae", text, None);
    assert!(
        c.diags.is_empty(),
        "{}",
        c.sources.render(&c.diags, false, 100)
    );
    c.model.expect("model")
}

#[test]
fn synthetic_model_trains_and_writes_its_run() {
    let _serial = serial();
    let model = compile(
        r#"
        import "std/nets"
        data gaussian_grid(n = 1024, k = 3, std = 0.05)
        latent R^2 ~ normal()
        encoder { mlp(2, hidden = 32) }
        generator { mlp(2, hidden = 32) }
        penalty 1 * sinkhorn(epsilon = 0.1, iterations = 20)
        train { optimizer adam(lr = 3e-3) batch 128 epochs 12 seed 3 }
        "#,
    );
    let dir = common::tempdir("e2e");
    let out = dir.join("run");
    let opts = train::RunOptions {
        out: Some(out.clone()),
        quiet: true,
        ..Default::default()
    };
    let summary =
        pipeline::run(&model, "source text", tch::Device::Cpu, &opts).expect("training runs");
    let e = &summary.epochs;
    assert_eq!(e.len(), 12);
    assert!(
        e[11].recon < 0.5 * e[0].recon,
        "reconstruction falls: {} -> {}",
        e[0].recon,
        e[11].recon
    );
    assert!(
        e[11].penalty < e[0].penalty,
        "penalty falls: {} -> {}",
        e[0].penalty,
        e[11].penalty
    );
    for f in [
        "checkpoint.safetensors",
        "model.sae",
        "config.json",
        "metrics.jsonl",
        "samples.png",
        "reconstructions.png",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    assert_eq!(lines.lines().count(), 12);
    assert_eq!(
        std::fs::read_to_string(out.join("model.sae")).expect("copy"),
        "source text"
    );
    // A second run into the same directory is refused without --force.
    let again = pipeline::run(&model, "x", tch::Device::Cpu, &opts);
    assert!(matches!(
        again,
        Err(pipeline::RunError::Train(train::TrainError::Exists(_)))
    ));
    let _ = std::fs::remove_dir_all(dir);
}

/// 160 steps of the MNIST Dirichlet model on 4096 images: it reconstructs the test set better
/// than the mean image does, and writes its pictures and the decoded simplex vertices.
#[test]
fn mnist_dirichlet_model_writes_pictures() {
    let _serial = serial();
    let Some(data) = common::data() else { return };
    // The reference Dirichlet setting (gamma 7.84, epsilon 0.02): models/dirichlet_mnist.sae's
    // gamma 100 keeps the decoder at the mean image for its first epochs (BENCHMARKS.md).
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/pytorch_reference/dirichlet.sae"
    ))
    .expect("model");
    let text = text.replace(
        "data mnist(split = \"train\")",
        "data mnist(split = \"train\", limit = 4096)",
    );
    let model = compile(&text);
    let dir = common::tempdir("mnist");
    let opts = train::RunOptions {
        out: Some(dir.join("run")),
        quiet: true,
        epochs: Some(10),
        data_dir: Some(data.clone()),
        ..Default::default()
    };
    let s = pipeline::run(&model, &text, tch::Device::Cpu, &opts).expect("training runs");
    // Better than the best constant picture: the training images' mean, scored on the test set.
    let train =
        sae_dsl::data::load(&model.data, "train", Some(&data), 0, tch::Device::Cpu).expect("train");
    let test =
        sae_dsl::data::load(&model.data, "test", Some(&data), 0, tch::Device::Cpu).expect("test");
    let mean_image = train.x().mean_dim(0, true, tch::Kind::Double);
    let baseline = (test.x().to_kind(tch::Kind::Double) - mean_image)
        .square()
        .mean(tch::Kind::Double)
        .double_value(&[]);
    assert!(
        s.test_mse < baseline,
        "test MSE {} is not below the mean-image baseline {baseline}",
        s.test_mse
    );
    for f in ["samples.png", "reconstructions.png", "vertices.png"] {
        common::assert_picture(&dir.join("run").join(f), 100);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Every penalty kind (summed in one model, with a Gaussian encoder, a discriminator, debiased
/// envelope Sinkhorn with tolerance and epsilon scaling) trains, and resumes from its state.
#[test]
fn every_penalty_trains_and_reports_sinkhorn_iterations() {
    let _serial = serial();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ui/ok/every_penalty.sae"
    ))
    .expect("fixture");
    let text = text.replace(
        "import \"std/nets\"",
        "import \"std/nets\"\ntrain { batch 64 epochs 3 seed 1 }",
    );
    let model = compile(&text);
    let dir = common::tempdir("every");
    let opts = train::RunOptions {
        out: Some(dir.join("run")),
        quiet: true,
        ..Default::default()
    };
    let s = pipeline::run(&model, &text, tch::Device::Cpu, &opts).expect("training runs");
    assert_eq!(s.epochs.len(), 3);
    assert!(s
        .epochs
        .iter()
        .all(|e| e.recon.is_finite() && e.penalty.is_finite()));
    let it = s.epochs[0]
        .sinkhorn_iterations
        .expect("iterations reported");
    assert!(it > 0.0 && it <= 100.0 + 20.0, "mean iterations {it}");
    let state: Vec<(String, tch::Tensor)> =
        tch::Tensor::read_safetensors(dir.join("run/resume.safetensors")).expect("state");
    assert!(
        state
            .iter()
            .any(|(n, _)| n.starts_with("disc3.") || n.starts_with("disc2.")),
        "the discriminator is checkpointed"
    );
    let more = train::RunOptions {
        epochs: Some(4),
        quiet: true,
        ..Default::default()
    };
    let r = pipeline::resume(&dir.join("run"), tch::Device::Cpu, &more)
        .expect("resumes with the discriminator");
    assert_eq!(r.epochs.len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}
