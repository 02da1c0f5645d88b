//! Robustness of runs, through the real binary: SIGTERM saves the state and resuming gives the
//! uninterrupted result; a second training into the same directory is refused and a stale lock is
//! recognised; forced NaN losses stop the run with the term, epoch and step and keep the last good
//! checkpoint; a model too large for memory is refused before allocation; non-convergence warns.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tch::Tensor;

const BIN: &str = env!("CARGO_BIN_EXE_sae-dsl");

fn toy(epochs: i64, extra: &str) -> String {
    format!(
        "import \"std/nets\"\ndata rings(n = 2048, k = 2)\nlatent R^2 ~ normal()\nencoder {{ mlp(2, hidden = 32) }}\n\
         generator {{ mlp(2, hidden = 32) }}\npenalty 1 * sinkhorn(epsilon = 0.1, iterations = 20)\n\
         train {{ optimizer adam(lr = 3e-3) batch 32 epochs {epochs} seed 5 }}\n{extra}"
    )
}

fn write_model(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("model.sae");
    std::fs::write(&p, text).expect("model file");
    p
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("SAE_DSL_OFFLINE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // These tests are about training; the evaluation at the end is tested elsewhere.
    if matches!(args.first(), Some(&"run") | Some(&"resume")) {
        c.arg("--no-eval");
    }
    c
}

/// `sae-dsl run MODEL --out DIR --device cpu --quiet EXTRA...`, not yet started.
fn train_cmd(model: &Path, dir: &Path, extra: &[&str]) -> Command {
    let (m, d) = (model.to_str().expect("utf8"), dir.to_str().expect("utf8"));
    let mut args = vec!["run", m, "--out", d, "--device", "cpu", "--quiet"];
    args.extend_from_slice(extra);
    cmd(&args)
}

/// Runs a model to completion (see [`train_cmd`]) with extra environment variables.
fn run_model(model: &Path, dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = train_cmd(model, dir, &[]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run sae-dsl")
}

fn output(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = cmd(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run sae-dsl")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metrics_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

/// Losses per epoch without the timing.
fn losses(dir: &Path) -> Vec<(f64, f64)> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            (
                v["recon"].as_f64().expect("recon"),
                v["penalty"].as_f64().expect("penalty"),
            )
        })
        .collect()
}

fn max_param_diff(a: &Path, b: &Path) -> f64 {
    let ta: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(a)
        .expect("a")
        .into_iter()
        .collect();
    let tb: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(b)
        .expect("b")
        .into_iter()
        .collect();
    assert_eq!(ta.len(), tb.len());
    ta.iter()
        .map(|(k, t)| (t - &tb[k]).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

/// The toy model with every training setting that keeps state across steps or epochs: AdamW
/// with clipping, a cosine schedule with warm-up, a validation split with patience.
fn toy_with_knobs(epochs: i64) -> String {
    toy(epochs, "").replace(
        "optimizer adam(lr = 3e-3)",
        "optimizer adam(lr = 3e-3, weight_decay = 0.01, clip_norm = 0.5) \
         schedule cosine(min = 0.1, warmup = 30) \
         validation split(fraction = 0.1, metric = \"total\", patience = 100)",
    )
}

#[test]
fn sigterm_then_resume_matches_an_uninterrupted_run() {
    let root = common::tempdir("resume");
    let model = write_model(&root, &toy_with_knobs(12));
    let (a, b) = (root.join("interrupted"), root.join("straight"));

    let child = train_cmd(&model, &a, &[]).spawn().expect("spawn");
    wait_for("the first epoch", || metrics_lines(&a) >= 1);
    signal(&child, "-TERM");
    let out = child.wait_with_output().expect("wait");
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(130),
        "exit code after SIGTERM; stderr:\n{err}"
    );
    assert!(
        err.contains("interrupted at epoch") && err.contains("sae-dsl resume"),
        "{err}"
    );
    assert!(metrics_lines(&a) < 12, "the run stopped early");
    assert!(!a.join("run.lock").exists(), "the lock is released");

    let out = output(
        &[
            "resume",
            a.to_str().expect("utf8"),
            "--device",
            "cpu",
            "--quiet",
        ],
        &[],
    );
    assert!(out.status.success(), "resume failed:\n{}", stderr(&out));

    let out = run_model(&model, &b, &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    let diff = max_param_diff(
        &a.join("checkpoint.safetensors"),
        &b.join("checkpoint.safetensors"),
    );
    assert!(diff < 1e-6, "final parameters differ by {diff}");
    let (la, lb) = (losses(&a), losses(&b));
    assert_eq!(la.len(), 12);
    for (x, y) in la.iter().zip(&lb) {
        assert!(
            (x.0 - y.0).abs() < 1e-5 && (x.1 - y.1).abs() < 1e-5,
            "epoch losses {x:?} vs {y:?}"
        );
    }
    // The schedule's position, the validations and the best checkpoint continue exactly.
    let field = |d: &Path, name: &str, key: &str| -> Vec<f64> {
        std::fs::read_to_string(d.join(name))
            .expect("file")
            .lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                key.split('.').try_fold(&v, |v, k| v.get(k))?.as_f64()
            })
            .collect()
    };
    for key in ["lr", "validation.total", "validation.latent_mmd"] {
        let (x, y) = (
            field(&a, "metrics.jsonl", key),
            field(&b, "metrics.jsonl", key),
        );
        assert_eq!(x.len(), 12, "{key}");
        for (p, q) in x.iter().zip(&y) {
            assert!((p - q).abs() < 1e-5 * q.abs().max(1.0), "{key}: {p} vs {q}");
        }
    }
    let best = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("best.json")).expect("best"))
            .expect("json")
    };
    assert_eq!(best(&a)["epoch"], best(&b)["epoch"]);
    let diff = max_param_diff(&a.join("best.safetensors"), &b.join("best.safetensors"));
    assert!(diff < 1e-6, "best parameters differ by {diff}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn sigint_saves_the_state_and_exits_130() {
    let root = common::tempdir("sigint");
    let model = write_model(&root, &toy(200, ""));
    let d = root.join("run");
    let child = train_cmd(&model, &d, &[]).spawn().expect("spawn");
    wait_for("the first epoch", || metrics_lines(&d) >= 1);
    signal(&child, "-INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let state: Vec<(String, Tensor)> =
        Tensor::read_safetensors(d.join("resume.safetensors")).expect("state saved");
    let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
    for want in ["state.position", "state.sums", "adam.t"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(
        names.iter().any(|n| n.starts_with("adam.m."))
            && names.iter().any(|n| n.starts_with("model."))
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_second_training_is_refused_and_a_stale_lock_recognised() {
    let root = common::tempdir("lock");
    let model = write_model(&root, &toy(500, ""));
    let d = root.join("run");
    let child = train_cmd(&model, &d, &[]).spawn().expect("spawn");
    wait_for("the lock", || d.join("run.lock").exists());

    let out = train_cmd(&model, &d, &["--force", "--epochs", "1"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "another training (process {}) is writing into",
            child.id()
        )),
        "{}",
        stderr(&out)
    );

    // Killed without a chance to clean up: the lock stays, and is recognised as stale.
    signal(&child, "-KILL");
    let _ = child.wait_with_output();
    assert!(d.join("run.lock").exists());
    let out = train_cmd(&model, &d, &["--force", "--epochs", "1"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("removing a stale lock"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn forced_nan_losses_stop_with_term_epoch_and_step_and_keep_the_checkpoint() {
    let root = common::tempdir("nan");
    let model = write_model(&root, &toy(3, ""));
    // 64 steps per epoch; the fault hits global step 70, step 6 of epoch 2.
    for (fault, term) in [
        (
            "nan-recon@70",
            "the reconstruction cost became NaN at epoch 2, step 6",
        ),
        (
            "nan-penalty@70",
            "the latent penalty became NaN at epoch 2, step 6",
        ),
    ] {
        let d = root.join(fault.replace('@', "-"));
        let out = run_model(&model, &d, &[("SAE_DSL_FAULT", fault)]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(term), "{err}");
        assert!(err.contains("last good checkpoint is kept"), "{err}");
        assert_eq!(metrics_lines(&d), 1, "only the good epoch is recorded");
        let ck: Vec<(String, Tensor)> =
            Tensor::read_safetensors(d.join("checkpoint.safetensors")).expect("checkpoint kept");
        assert!(
            ck.iter()
                .all(|(_, t)| t.isfinite().all().int64_value(&[]) == 1),
            "the kept checkpoint is finite"
        );
        // The saved state is the end of epoch 1: resuming starts there.
        let out = output(
            &[
                "resume",
                d.to_str().expect("utf8"),
                "--device",
                "cpu",
                "--epochs",
                "1",
            ],
            &[],
        );
        assert!(
            stderr(&out).contains("pass --epochs N with N > 1"),
            "{}",
            stderr(&out)
        );
    }
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_nan_discriminator_loss_is_named() {
    let root = common::tempdir("nandisc");
    let text = toy(3, "").replace(
        "penalty 1 * sinkhorn(epsilon = 0.1, iterations = 20)",
        "net critic() { linear(16) relu linear(1) }\npenalty 1 * gan(discriminator = critic())",
    );
    let model = write_model(&root, &text);
    let d = root.join("run");
    let out = run_model(&model, &d, &[("SAE_DSL_FAULT", "nan-disc@70")]);
    let err = stderr(&out);
    assert!(
        err.contains("the discriminator loss became NaN at epoch 2, step 6"),
        "{err}"
    );
    assert!(err.contains("discriminator's learning rate"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_nan_gradient_of_finite_terms_is_named() {
    let root = common::tempdir("nangrad");
    let model = write_model(&root, &toy(3, ""));
    let d = root.join("run");
    let out = run_model(&model, &d, &[("SAE_DSL_FAULT", "nan-grad@70")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the gradient became NaN at epoch 2, step 6"),
        "{err}"
    );
    assert!(err.contains("its gradient was not"), "{err}");
    assert!(
        d.join("checkpoint.safetensors").is_file(),
        "epoch 1's checkpoint is kept"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_diverging_loss_stops_the_run_unless_allowed() {
    let root = common::tempdir("diverge");
    let model = write_model(&root, &toy(3, ""));
    // From step 70 (epoch 2) on, the reconstruction cost is a million times larger.
    let fault = [("SAE_DSL_FAULT", "grow-recon@70")];
    let d = root.join("run");
    let out = run_model(&model, &d, &fault);
    let err = stderr(&out).replace('│', " ");
    let err = err.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Read at the first logging point after the fault, within epoch 2.
    assert!(
        err.contains("the loss exploded at epoch 2, step 10"),
        "{err}"
    );
    assert!(err.contains("the checkpoint of epoch 1 is kept"), "{err}");
    let lines = std::fs::read_to_string(d.join("metrics.jsonl")).expect("metrics");
    assert_eq!(lines.lines().count(), 1, "only the good epoch is recorded");
    let d2 = root.join("run2");
    let mut c = train_cmd(&model, &d2, &["--allow-divergence"]);
    c.env("SAE_DSL_FAULT", "grow-recon@70");
    let out = c.output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(root);
}

/// A learning rate far too large, in a one-epoch run: stopped within the epoch, naming the
/// learning rate (a bounded penalty lets the loss grow without becoming NaN), and naming it too
/// when the Sinkhorn penalty overflows first.
#[test]
fn a_learning_rate_far_too_large_is_named_from_the_first_steps() {
    let root = common::tempdir("lr");
    let flat = |o: &Output| {
        let e = stderr(o).replace('│', " ");
        e.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let text = toy(1, "").replace("lr = 3e-3", "lr = 10");
    let mmd = text.replace("sinkhorn(epsilon = 0.1, iterations = 20)", "mmd()");
    let out = run_model(&write_model(&root, &mmd), &root.join("mmd"), &[]);
    let err = flat(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the loss exploded at epoch 1, step"), "{err}");
    assert!(
        err.contains("the learning rate (now 10) is too large"),
        "{err}"
    );
    assert!(err.contains("no epoch had finished"), "{err}");
    let out = run_model(&write_model(&root, &text), &root.join("sinkhorn"), &[]);
    let err = flat(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("became NaN at epoch 1"), "{err}");
    assert!(
        err.contains("the learning rate (now 10) is too large"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn too_large_for_memory_is_refused_before_allocation() {
    let root = common::tempdir("mem");
    let text = toy(1, "")
        .replace("batch 32", "batch 100000000")
        .replace("rings(n = 2048, k = 2)", "rings(n = 100000000, k = 2)");
    let model = write_model(&root, &text);
    let d = root.join("run");
    let t = Instant::now();
    let out = run_model(&model, &d, &[]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("sae::run::memory")
            && err.contains("needs about")
            && err.contains("PiB of memory"),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "refused before generating 10^8 points"
    );
    assert!(!d.exists(), "no run directory is left");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn data_too_large_for_memory_are_refused_before_they_are_drawn() {
    let root = common::tempdir("memdata");
    let text = "data shapes(n = 2000000000, size = 64)\nlatent R^2 ~ normal()\n\
                encoder { flatten linear(2) }\ngenerator { linear(12288) sigmoid reshape(3, 64, 64) }\n\
                penalty 1 * sinkhorn(epsilon = 1, iterations = 5)\ntrain { batch 8 epochs 1 }\n";
    let model = write_model(&root, text);
    let d = root.join("run");
    let t = Instant::now();
    let out = run_model(&model, &d, &[]);
    let err = stderr(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!out.status.success());
    assert!(
        err.contains("sae::run::memory")
            && err.contains("needs about")
            && err.contains("its data take about")
            && err.contains("lower `n` or `limit`"),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "refused before drawing"
    );
    assert!(!d.exists(), "no run directory is left");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn unconverged_sinkhorn_warns_once() {
    let root = common::tempdir("warn");
    let text = toy(2, "").replace(
        "sinkhorn(epsilon = 0.1, iterations = 20)",
        "sinkhorn(epsilon = 0.001, iterations = 1)",
    );
    let model = write_model(&root, &text);
    let d = root.join("run");
    let out = run_model(&model, &d, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("Sinkhorn did not converge in 1 iterations")
            .count(),
        1,
        "{err}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_sinkhorn_tolerance_cap_warns_once_and_iterations_are_reported() {
    let root = common::tempdir("cap");
    let text = toy(2, "").replace(
        "sinkhorn(epsilon = 0.1, iterations = 20)",
        "sinkhorn(epsilon = 0.01, iterations = 5, tolerance = 1e-9)",
    );
    let model = write_model(&root, &text);
    let d = root.join("run");
    let out = run_model(&model, &d, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("reached its cap of 5 iterations without the tolerance 0.000000001")
            .count(),
        1,
        "{err}"
    );
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .expect("metrics")
            .lines()
            .next()
            .expect("line"),
    )
    .expect("json");
    assert_eq!(first["sinkhorn_iterations"].as_f64(), Some(5.0));
    let _ = std::fs::remove_dir_all(root);
}
