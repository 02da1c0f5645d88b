//! Quality beside speed (issue 13): `cargo bench --bench quality [-- --epochs N --seed S --prior P]`.
//!
//! For each prior of `sae_reference.py` (normal, sphere, dirichlet) this trains the script and
//! the equivalent model file `models/pytorch_reference/PRIOR.sae` for the same epochs on the
//! same MNIST files, one after the other, and reports both test reconstruction errors and both
//! FIDs: the project's FID (MNIST-CNN features, `sae-dsl eval`'s) of 10,000 decoded prior samples
//! of each side against the test set, both quantised to 8 bits as the script saves them.
//!
//! Needs `SAE_DSL_DATA` (the folder with `mnist/`), `SAE_DSL_PEERS` (a folder where numpy is
//! importable: `pip install --target DIR numpy`) and the script (`SAE_DSL_BENCH_REF`, default
//! `../shared/bench`). Writes bench-out/quality.json and prints the table of BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use sae_dsl::data::{self, npy};
use sae_dsl::eval::classifier::{frechet_distance, Classifier};
use sae_dsl::{compile_source, ir, pipeline, train};
use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};

const PRIORS: [&str; 3] = ["normal", "sphere", "dirichlet"];

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).map(PathBuf::from)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The script's run: its JSON line, with the samples it saved.
fn reference(
    script: &Path,
    pythonpath: &str,
    data: &Path,
    prior: &str,
    (epochs, seed): (i64, i64),
    out: &Path,
) -> Value {
    let json = out.join(format!("ref_{prior}.json"));
    let samples = out.join(format!("ref_{prior}.npy"));
    let o = Command::new("python3")
        .arg(script)
        .args([
            "--prior",
            prior,
            "--epochs",
            &epochs.to_string(),
            "--recon",
            "sum",
        ])
        .args([
            "--gamma",
            "7.84",
            "--threads",
            "2",
            "--seed",
            &seed.to_string(),
        ])
        .arg("--data-dir")
        .arg(data.join("mnist"))
        .arg("--save-samples")
        .arg(&samples)
        .arg("--out")
        .arg(&json)
        .env("PYTHONPATH", pythonpath)
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "sae_reference.py failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&json).expect("the script's JSON");
    serde_json::from_str(text.trim()).expect("JSON")
}

/// 8-bit quantisation, as the script saves its samples.
fn quantise(x: &Tensor) -> Tensor {
    (x.clamp(0.0, 1.0) * 255.0).round() / 255.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let epochs: i64 = args
        .iter()
        .position(|a| a == "--epochs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seed: i64 = args
        .iter()
        .position(|a| a == "--seed")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (Some(data), Some(peers)) = (env_path("SAE_DSL_DATA"), env_path("SAE_DSL_PEERS")) else {
        println!("quality: set SAE_DSL_DATA and SAE_DSL_PEERS (numpy) to run this bench; nothing measured");
        return;
    };
    let refdir = env_path("SAE_DSL_BENCH_REF")
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench"));
    let torch_dir = env_path("LIBTORCH")
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .expect("LIBTORCH (written by scripts/setup.sh)");
    let pythonpath = format!("{}:{}", torch_dir.display(), peers.display());
    tch::set_num_threads(2);
    let out = PathBuf::from("bench-out");
    std::fs::create_dir_all(&out).expect("bench-out");
    let only: Option<String> = args
        .iter()
        .position(|a| a == "--prior")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut rows = vec![];
    for prior in PRIORS
        .into_iter()
        .filter(|p| only.as_deref().is_none_or(|o| o == *p))
    {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("models/pytorch_reference/{prior}.sae"));
        let text = std::fs::read_to_string(&file).expect("model file");
        let c = compile_source(file.to_str().expect("utf8"), &text, None);
        let model: ir::Model = c
            .model
            .filter(|_| c.diags.iter().all(|d| !d.is_error()))
            .expect("model compiles");

        // sae-dsl: train, then the pipeline's evaluation (FID of 10,000 samples).
        let dir = out.join(format!("quality_{prior}"));
        let opts = train::RunOptions {
            epochs: Some(epochs),
            seed: Some(seed),
            out: Some(dir.clone()),
            quiet: true,
            force: true,
            evaluate: true,
            data_dir: Some(data.clone()),
            ..Default::default()
        };
        let s = pipeline::run(&model, &text, Device::Cpu, &opts).expect("sae-dsl trains");
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("summary.json")).expect("summary"),
        )
        .expect("summary JSON");
        let ours_train = s.epochs.last().map_or(f64::NAN, |e| e.recon);
        let ours_secs = median(s.epochs.iter().skip(1).map(|e| e.seconds).collect());

        // The script, then its samples through the same classifier.
        let r = reference(
            &refdir.join("sae_reference.py"),
            &pythonpath,
            &data,
            prior,
            (epochs, seed),
            &out,
        );
        let trainset =
            data::load(&model.data, "train", Some(&data), 0, Device::Cpu).expect("train set");
        let testset =
            data::load(&model.data, "test", Some(&data), 0, Device::Cpu).expect("test set");
        let (Some(ty), Some(sy)) = (&trainset.labels, &testset.labels) else {
            panic!("MNIST has labels")
        };
        let classifier = Classifier::get(
            "mnist",
            (&trainset.x(), ty),
            (&testset.x(), sy),
            Device::Cpu,
            true,
        )
        .expect("classifier");
        let arr = npy::read(&out.join(format!("ref_{prior}.npy"))).expect("the script's samples");
        let theirs = Tensor::from_slice(&arr.data)
            .reshape([-1, 1, 28, 28])
            .to_kind(Kind::Float)
            / 255.0;
        let real = classifier.features(&testset.x());
        let fid_theirs = frechet_distance(&real, &classifier.features(&theirs));
        // Our FID with our samples quantised like theirs (the pipeline's is unquantised).
        tch::manual_seed(777 + seed);
        let net_samples = {
            let loaded = sae_dsl::eval::open_run(&dir, Device::Cpu).expect("the run");
            sae_dsl::eval::sample(&loaded.net, 10_000)
        };
        let fid_ours = frechet_distance(&real, &classifier.features(&quantise(&net_samples)));
        let theirs_train = r["epoch_log"]
            .as_array()
            .and_then(|l| l.last())
            .and_then(|e| e["train_recon"].as_f64())
            .unwrap_or(f64::NAN);
        let row = json!({
            "prior": prior, "epochs": epochs, "seed": seed,
            "sae_dsl": {"test_mse_per_pixel": summary["test_mse"], "fid": fid_ours,
                        "fid_pipeline_unquantised": summary["fid_cnn"],
                        "train_recon_last_epoch": ours_train, "seconds_per_epoch": ours_secs},
            "pytorch": {"test_mse_per_pixel": r["test_recon_mse_per_pixel"], "fid": fid_theirs,
                        "train_recon_last_epoch": theirs_train,
                        "seconds_per_epoch": r["seconds_per_epoch_median"]},
        });
        println!("{row}");
        rows.push(row);
    }
    std::fs::write(
        out.join(format!("quality_seed{seed}.json")),
        serde_json::to_string_pretty(&rows).unwrap_or_default(),
    )
    .expect("write");
    println!("\n| prior (epsilon) | epochs | test MSE/pixel: sae-dsl | PyTorch | FID: sae-dsl | PyTorch | train recon (sum/image, last epoch): sae-dsl | PyTorch | s/epoch: sae-dsl | PyTorch |\n|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {} | {:.4} | {:.4} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            r["prior"].as_str().unwrap_or("?"),
            r["epochs"],
            f(&r["sae_dsl"]["test_mse_per_pixel"]),
            f(&r["pytorch"]["test_mse_per_pixel"]),
            f(&r["sae_dsl"]["fid"]),
            f(&r["pytorch"]["fid"]),
            f(&r["sae_dsl"]["train_recon_last_epoch"]),
            f(&r["pytorch"]["train_recon_last_epoch"]),
            f(&r["sae_dsl"]["seconds_per_epoch"]),
            f(&r["pytorch"]["seconds_per_epoch"]),
        );
    }
}
