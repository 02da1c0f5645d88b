//! Training settings: learning-rate schedules and AdamW with clipping against PyTorch; the
//! validation split, best checkpoint and early stopping; bf16 refused on the CPU; TensorBoard
//! event files read back.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use sae_dsl::ir::{Adam, LrSchedule, ScheduleKind};
use sae_dsl::runtime::optim;
use sae_dsl::tensorboard::{event_files, read_events, ReadValue};
use serde_json::{json, Value};
use tch::{nn, Device, Kind, Tensor};

#[test]
fn schedules_and_adamw_with_clipping_match_pytorch() {
    let Some(mut py) = common::python_torch("the PyTorch side of the optimiser test") else {
        return;
    };
    let dir = common::tempdir("optim");
    let (per_epoch, epochs, warmup) = (3, 4, 4);
    let total = per_epoch * epochs;
    let (min, every, factor) = (0.05, 2, 0.5);
    tch::manual_seed(7);
    let opts = (Kind::Double, Device::Cpu);
    let (w0, x, y) = (
        Tensor::randn([4, 3], opts),
        Tensor::randn([8, 3], opts),
        Tensor::randn([8, 4], opts),
    );
    let rows = |t: &Tensor| -> Vec<Vec<f64>> {
        (0..t.size()[0])
            .map(|i| Vec::<f64>::try_from(t.get(i)).expect("row"))
            .collect()
    };
    // The optimiser runs under a cosine schedule with warm-up: its factors go to PyTorch's
    // LambdaLR, and each schedule alone is compared with PyTorch's own scheduler below.
    let run_schedule = LrSchedule {
        kind: ScheduleKind::Cosine { min },
        warmup,
    };
    let factors: Vec<f64> = (0..total)
        .map(|k| run_schedule.factor(k, per_epoch, total))
        .collect();
    let cfg = Adam {
        lr: 0.05,
        beta1: 0.9,
        beta2: 0.999,
        weight_decay: 0.1,
        clip_norm: 1.0,
    };
    let job = json!({
        "total": total, "per_epoch": per_epoch, "warmup": warmup, "min": min, "every": every,
        "factor": factor, "lr": cfg.lr, "weight_decay": cfg.weight_decay,
        "clip_norm": cfg.clip_norm, "factors": factors,
        "w": rows(&w0), "x": rows(&x), "y": rows(&y),
    });
    std::fs::write(dir.join("job.json"), job.to_string()).expect("job");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/optim_parity.py");
    let out = py.arg(&script).arg(&dir).output().expect("python");
    assert!(
        out.status.success(),
        "the PyTorch side failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).expect("out"))
            .expect("json");

    let ours = |kind: ScheduleKind, warmup: i64| -> Vec<f64> {
        let s = LrSchedule { kind, warmup };
        (0..total).map(|k| s.factor(k, per_epoch, total)).collect()
    };
    let cases = [
        ("cosine", ours(ScheduleKind::Cosine { min }, 0)),
        ("step", ours(ScheduleKind::Step { every, factor }, 0)),
        ("exponential", ours(ScheduleKind::Exponential { factor }, 0)),
        ("warmup", ours(ScheduleKind::Constant, warmup)),
    ];
    for (name, got) in cases {
        let theirs: Vec<f64> = want["schedules"][name]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        assert_eq!(theirs.len(), got.len(), "{name}");
        for (k, (a, b)) in got.iter().zip(&theirs).enumerate() {
            assert!(
                (a - b).abs() < 1e-12,
                "{name} at step {k}: ours {a}, PyTorch {b}"
            );
        }
    }

    let mut vs = nn::VarStore::new(Device::Cpu);
    let mut w = vs.root().var_copy("w", &w0);
    vs.double();
    tch::no_grad(|| w.copy_(&w0));
    let mut opt = optim::Adam::new(&vs, &cfg);
    let mut losses = vec![];
    for f in &factors {
        opt.set_lr_factor(*f);
        opt.zero_grad();
        let loss = (x.matmul(&w.tr()) - &y).square().sum(Kind::Double) * 10.0;
        loss.backward();
        opt.step();
        losses.push(loss.double_value(&[]));
    }
    let theirs: Vec<f64> = want["losses"]
        .as_array()
        .expect("losses")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    for (k, (a, b)) in losses.iter().zip(&theirs).enumerate() {
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "loss at step {k}: ours {a}, PyTorch {b}"
        );
    }
    let wt: Vec<f64> = want["w"]
        .as_array()
        .expect("w")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let ours_w = Vec::<f64>::try_from(w.detach().flatten(0, -1)).expect("w");
    for (a, b) in ours_w.iter().zip(&wt) {
        assert!((a - b).abs() < 1e-9, "final weight: ours {a}, PyTorch {b}");
    }
    // The clipping was active: the first gradient's norm is far above 1.
    assert!(
        losses[0] > 100.0,
        "the loss {} is large enough to clip",
        losses[0]
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn model(dir: &Path, train: &str) -> PathBuf {
    let text = format!(
        "import \"std/nets\"\ndata rings(n = 640, k = 2)\nlatent R^2 ~ normal()\n\
         encoder {{ mlp(2, hidden = 16) }}\ngenerator {{ mlp(2, hidden = 16) }}\n\
         penalty 1 * sinkhorn(epsilon = 0.1, iterations = 10)\ntrain {{ {train} }}\n"
    );
    let p = dir.join("model.sae");
    std::fs::write(&p, text).expect("model");
    p
}

fn train(model: &Path, out: &Path) -> Output {
    let (m, o) = (model.to_str().expect("utf8"), out.to_str().expect("utf8"));
    common::sae(&["run", m, "--out", o, "--device", "cpu", "--no-eval"])
}

fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn validation_keeps_the_best_checkpoint_and_stops_early() {
    let root = common::tempdir("validation");
    // A learning rate too small to move the weights: the validation never improves after the
    // first epoch, so patience 2 stops the run at epoch 3 of 8.
    let m = model(
        &root,
        "optimizer adam(lr = 1e-12) validation split(fraction = 0.25, metric = \"total\", patience = 2) batch 32 epochs 8",
    );
    let d = root.join("run");
    let out = train(&m, &d);
    let err = common::flat_stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("stopping early at epoch 3: no better validation for 2 evaluations; the best (epoch 1) is in best.safetensors"),
        "{err}"
    );
    let lines = metrics(&d);
    assert_eq!(lines.len(), 3);
    for l in &lines {
        let v = &l["validation"];
        for k in ["recon", "penalty", "total", "latent_mmd"] {
            assert!(v[k].as_f64().is_some_and(f64::is_finite), "{k} in {v}");
        }
    }
    let best: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("best.json")).expect("best.json"))
            .expect("json");
    assert_eq!(best["epoch"], 1);
    assert_eq!(best["metric"], "total");
    assert!(d.join("best.safetensors").is_file());
    // 480 of 640 examples train: 15 steps of 32 an epoch.
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(config["run"]["train_examples"], 480);
    assert_eq!(config["run"]["validation_examples"], 160);

    let d2 = d.to_str().expect("utf8");
    let out = common::sae(&[
        "resume",
        d2,
        "--device",
        "cpu",
        "--no-eval",
        "--epochs",
        "10",
    ]);
    let err = common::flat_stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot resume") && err.contains("early stopping ended the run at epoch 3"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn validation_settings_that_hold_out_nothing_are_refused() {
    let root = common::tempdir("validation-empty");
    let m = model(
        &root,
        "validation split(fraction = 0.0005) batch 32 epochs 1",
    );
    let out = train(&m, &root.join("run"));
    let err = common::flat_stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("a validation fraction of 0.0005 of 640 examples leaves 0 for validation and 640 for training"),
        "{err}"
    );
    assert!(
        !root.join("run").exists(),
        "no run directory for a run that cannot start"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn bf16_is_refused_on_the_cpu_with_what_to_do() {
    let root = common::tempdir("bf16");
    let m = model(&root, "precision \"bf16\" batch 32 epochs 1");
    let out = train(&m, &root.join("run"));
    let err = common::flat_stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("`precision \"bf16\"` needs a CUDA device; this run is on Cpu"),
        "{err}"
    );
    assert!(
        err.contains("sae::run::precision") && err.contains("train in float32"),
        "{err}"
    );
    assert!(!root.join("run").exists());
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn tensorboard_events_hold_scalars_images_and_the_model() {
    let root = common::tempdir("tensorboard");
    let m = model(&root, "batch 32 epochs 2 images_every 1");
    let d = root.join("run");
    let out = train(&m, &d);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let files = event_files(&d);
    assert_eq!(files.len(), 1, "{files:?}");
    let events = read_events(&files[0]).expect("a readable event file");
    let mut scalars: HashMap<String, Vec<(i64, f32)>> = HashMap::new();
    let mut text = None;
    for e in &events {
        for (tag, v) in &e.values {
            match v {
                ReadValue::Scalar(x) => scalars.entry(tag.clone()).or_default().push((e.step, *x)),
                ReadValue::Text(t) => text = Some(t.clone()),
                ReadValue::Image(..) => {}
            }
        }
    }
    // 20 steps an epoch: logging points at steps 10 and 20 of each epoch.
    let recon = &scalars["train/recon"];
    assert_eq!(
        recon.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![10, 20, 30, 40]
    );
    let lines = metrics(&d);
    let epoch_recon = &scalars["epoch/recon"];
    assert_eq!(epoch_recon.len(), 2);
    for (l, (step, v)) in lines.iter().zip(epoch_recon) {
        let want = l["recon"].as_f64().expect("recon");
        assert!(
            (*v as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
            "{v} vs {want}"
        );
        assert_eq!(*step, l["epoch"].as_i64().expect("epoch") * 20);
    }
    assert!(scalars["train/lr"]
        .iter()
        .all(|p| (p.1 - 1e-3).abs() < 1e-9));
    let text = text.expect("the model text");
    assert!(text.contains("data rings(n = 640, k = 2)"));
    // 2-D data: no image grids.
    assert!(!events.iter().any(|e| e
        .values
        .iter()
        .any(|(_, v)| matches!(v, ReadValue::Image(..)))));
    tensorboard_reads(&files[0], &scalars, &text);
    let _ = std::fs::remove_dir_all(root);
}

/// Reads the event file with the `tensorboard` package when it is importable (set
/// `SAE_DSL_PEERS` to a folder where it is installed): its scalar tags, the values of one tag,
/// and the model text must be what our reader found.
fn tensorboard_reads(file: &Path, scalars: &HashMap<String, Vec<(i64, f32)>>, text: &str) {
    let Some(mut py) = common::python_torch("the TensorBoard reader check") else {
        return;
    };
    let script = "import json, sys\n\
try:\n    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n\
except ImportError:\n    print('NO-TENSORBOARD'); sys.exit(0)\n\
a = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0, 'tensors': 0}); a.Reload()\n\
out = {t: [[e.step, e.value] for e in a.Scalars(t)] for t in a.Tags()['scalars']}\n\
texts = [t.tensor_proto.string_val[0].decode() for t in a.Tensors('model')]\n\
print(json.dumps({'scalars': out, 'text': texts}))\n";
    let out = py.arg("-c").arg(script).arg(file).output().expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.contains("NO-TENSORBOARD") {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the tensorboard Python package is not importable (set SAE_DSL_PEERS to a folder with it); the event file was checked with our own reader only"
        );
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).expect("json from the TensorBoard side");
    let tags: Vec<&String> = v["scalars"].as_object().expect("scalars").keys().collect();
    let mut ours: Vec<&String> = scalars.keys().collect();
    ours.sort();
    assert_eq!(tags, ours, "scalar tags");
    for (tag, points) in scalars {
        let theirs = v["scalars"][tag].as_array().expect("points");
        assert_eq!(theirs.len(), points.len(), "{tag}");
        for (t, (step, x)) in theirs.iter().zip(points) {
            assert_eq!(t[0].as_i64(), Some(*step), "{tag}");
            assert_eq!(t[1].as_f64().map(|f| f as f32), Some(*x), "{tag}");
        }
    }
    assert_eq!(v["text"][0].as_str(), Some(text), "the model text");
}

#[test]
fn tensorboard_gets_sample_and_reconstruction_grids_of_images() {
    let Some(data) = common::data() else { return };
    let root = common::tempdir("tensorboard-images");
    let text = "import \"std/nets\"\ndata mnist(limit = 256)\nlatent R^4 ~ normal()\n\
                encoder { flatten -> linear(32) -> relu -> linear(4) }\n\
                generator { linear(784) -> sigmoid -> reshape(1, 28, 28) }\ncost bce\n\
                penalty 1 * mmd()\ntrain { batch 64 epochs 2 images_every 2 }\n";
    let m = root.join("model.sae");
    std::fs::write(&m, text).expect("model");
    let d = root.join("run");
    let (ms, ds, data) = (
        m.to_str().expect("utf8"),
        d.to_str().expect("utf8"),
        data.to_str().expect("utf8"),
    );
    let out = common::sae(&[
        "run",
        ms,
        "--out",
        ds,
        "--device",
        "cpu",
        "--no-eval",
        "--data-dir",
        data,
    ]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let events = read_events(&event_files(&d)[0]).expect("events");
    let images: Vec<(i64, &str, &ReadValue)> = events
        .iter()
        .flat_map(|e| {
            e.values
                .iter()
                .filter(|(_, v)| matches!(v, ReadValue::Image(..)))
                .map(move |(t, v)| (e.step, t.as_str(), v))
        })
        .collect();
    // Only at epoch 2 (images_every 2): 4 steps an epoch.
    assert_eq!(
        images.iter().map(|i| (i.0, i.1)).collect::<Vec<_>>(),
        vec![(8, "samples"), (8, "reconstructions")]
    );
    for (_, tag, v) in images {
        let ReadValue::Image(h, w, c, png) = v else {
            unreachable!()
        };
        // 8 images of 28 x 28 at zoom 2 with a 1-pixel frame, in 2 rows.
        assert_eq!((*h, *w, *c), (2 * 58, 8 * 58, 3), "{tag}");
        let dec = png::Decoder::new(&png[..]).read_info().expect("a PNG");
        assert_eq!(
            (dec.info().width as usize, dec.info().height as usize),
            (*w, *h),
            "{tag}"
        );
    }
    // TensorBoard's own reader sees both images at step 8, with their sizes.
    if let Some(mut py) = common::python_torch("the TensorBoard image check") {
        let script = "import sys\n\
try:\n    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n\
except ImportError:\n    print('NO-TENSORBOARD'); sys.exit(0)\n\
a = EventAccumulator(sys.argv[1]); a.Reload()\n\
print(' '.join(f'{t}:{e.step}:{e.width}x{e.height}' for t in sorted(a.Tags()['images']) for e in a.Images(t)))\n";
        let out = py
            .arg("-c")
            .arg(script)
            .arg(&event_files(&d)[0])
            .output()
            .expect("python");
        let text = String::from_utf8_lossy(&out.stdout);
        if !text.contains("NO-TENSORBOARD") {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(text.trim(), "reconstructions:8:464x116 samples:8:464x116");
        }
    }
    let _ = std::fs::remove_dir_all(root);
}
