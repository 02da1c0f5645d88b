//! Faults survived (issue 20), through the real binary: a full disk while writing the
//! checkpoint, the resume state, the metrics or the classifier cache (an injected write error:
//! `SAE_DSL_FAULT=fail-write@NAME:K`), a SIGKILL in the middle of writing a checkpoint followed
//! by `resume`, and an output directory that cannot be created.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tch::Tensor;

const BIN: &str = env!("CARGO_BIN_EXE_sae-dsl");

const MODEL: &str = "data rings(n = 256)\nlatent R^2 ~ normal()\nencoder { linear(32) relu linear(2) }\n\
    generator { linear(32) relu linear(2) }\npenalty 1 * sinkhorn(epsilon = 0.1)\ntrain { batch 64 epochs 3 }\n";

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sae-dsl-faults-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn command(args: &[&str], fault: Option<&str>) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .args(["--device", "cpu", "--no-eval", "--quiet"]);
    c.env_remove("SAE_DSL_FAULT");
    if let Some(f) = fault {
        c.env("SAE_DSL_FAULT", f);
    }
    c
}

fn run(model: &Path, out: &Path, fault: Option<&str>) -> Output {
    let (m, o) = (model.to_str().expect("utf8"), out.to_str().expect("utf8"));
    command(&["run", m, "--out", o], fault)
        .output()
        .expect("runs")
}

fn resume(out: &Path) -> Output {
    command(&["resume", out.to_str().expect("utf8")], None)
        .output()
        .expect("runs")
}

fn stderr(o: &Output) -> String {
    common::flat_stderr(o)
}

/// The epochs listed in metrics.jsonl, in order.
fn metric_epochs(out: &Path) -> Vec<i64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["epoch"].as_i64())
        .collect()
}

fn checkpoint_loads(out: &Path) {
    let t = Tensor::read_safetensors(out.join("checkpoint.safetensors"));
    assert!(t.is_ok_and(|t| !t.is_empty()), "the checkpoint is complete");
}

fn model_in(dir: &Path) -> PathBuf {
    let p = dir.join("m.sae");
    std::fs::write(&p, MODEL).expect("write");
    p
}

/// A full disk at each file a run writes: the run stops and names the file; what was written
/// before is intact; `resume` finishes the run with every epoch listed once.
#[test]
fn a_full_disk_stops_the_run_and_resume_finishes_it() {
    for (fault, says) in [
        ("fail-write@checkpoint:2", "could not write the checkpoint"),
        ("fail-write@resume:2", "resume.safetensors"),
        ("fail-write@metrics:2", "metrics.jsonl"),
    ] {
        let dir = temp(fault.split(['@', ':']).nth(1).unwrap_or("x"));
        let model = model_in(&dir);
        let out = dir.join("run");
        let o = run(&model, &out, Some(fault));
        assert!(!o.status.success(), "{fault}: the run stops");
        let e = stderr(&o);
        assert!(
            e.contains(says) && e.contains("No space left on device"),
            "{fault}: {e}"
        );
        assert!(
            e.contains("sae-dsl resume"),
            "{fault}: says how to go on: {e}"
        );
        checkpoint_loads(&out);
        let o = resume(&out);
        assert!(o.status.success(), "{fault}: resume: {}", stderr(&o));
        assert_eq!(
            metric_epochs(&out),
            vec![1, 2, 3],
            "{fault}: every epoch once"
        );
        checkpoint_loads(&out);
    }
}

/// SIGKILL while the checkpoint's temporary file is half written (a stall injected there), then
/// `resume`: the dead process's lock is taken over, the half file is ignored, the run finishes.
#[test]
fn a_kill_during_a_checkpoint_write_is_resumed() {
    let dir = temp("kill");
    let model = model_in(&dir);
    let out = dir.join("run");
    let (m, o) = (model.to_str().expect("utf8"), out.to_str().expect("utf8"));
    let mut child = command(&["run", m, "--out", o], Some("stall-write@checkpoint:2"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let tmp = out.join(".checkpoint.tmp.safetensors");
    let t0 = Instant::now();
    // The stall begins once epoch 2's temporary checkpoint is cut to half its length.
    while !(tmp.is_file() && metric_epochs(&out) == vec![1, 2]) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the stall was not reached"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(tmp.is_file(), "the half-written file is left behind");
    let o = resume(&out);
    assert!(o.status.success(), "resume after SIGKILL: {}", stderr(&o));
    assert_eq!(metric_epochs(&out), vec![1, 2, 3]);
    checkpoint_loads(&out);
}

/// A full disk while writing TensorBoard events: a warning, and the run trains to its end.
#[test]
fn a_failed_tensorboard_write_warns_and_training_goes_on() {
    let dir = temp("tensorboard");
    let model = model_in(&dir);
    let out = dir.join("run");
    let o = run(&model, &out, Some("fail-write@tensorboard:3"));
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("warning: could not write TensorBoard events to")
            && e.contains("No space left on device (injected by SAE_DSL_FAULT); training goes on without them"),
        "{e}"
    );
    assert_eq!(e.matches("TensorBoard").count(), 1, "warned once: {e}");
    assert_eq!(metric_epochs(&out), vec![1, 2, 3]);
    checkpoint_loads(&out);
}

/// An output directory that cannot be created (under /proc, which even root cannot write).
#[test]
fn an_unwritable_output_directory_is_a_clear_error() {
    let dir = temp("unwritable");
    let model = model_in(&dir);
    let o = run(&model, Path::new("/proc/sae-dsl-run/out"), None);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("sae::run::directory")
            && e.contains("cannot create the run directory /proc/sae-dsl-run/out"),
        "{e}"
    );
    assert!(e.contains("--out"), "{e}");
}

/// A full disk while caching the evaluation classifier: a warning, and the classifier is used.
/// (In-process: this test binary's only test that sets the fault variable for itself.)
#[test]
fn a_classifier_that_cannot_be_cached_is_still_used() {
    use sae_dsl::eval::classifier::Classifier;
    use tch::{Device, Kind};
    let dir = temp("cache");
    std::env::set_var("SAE_DSL_CACHE", &dir);
    std::env::set_var("SAE_DSL_FAULT", "fail-write@cache:1");
    let x = Tensor::rand([64, 1, 28, 28], (Kind::Float, Device::Cpu));
    let y = Tensor::arange(64, (Kind::Int64, Device::Cpu)).remainder(10);
    let c = Classifier::get("tiny", (&x, &y), (&x, &y), Device::Cpu, true);
    std::env::remove_var("SAE_DSL_FAULT");
    let c = c.expect("the classifier is trained and used although it cannot be cached");
    assert_eq!(c.features(&x).size()[0], 64);
    let cached = std::fs::read_dir(dir.join("classifiers"))
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    assert_eq!(cached, 0, "nothing half-written is left in the cache");
}
