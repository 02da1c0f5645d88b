//! One training step of a 64x64 RGB model beside the same network in plain PyTorch (issue 14):
//! `cargo bench --bench rgb_step`.
//!
//! Ours: `std/rgb`'s `wae_rgb_encoder(64, width = 32)` / `wae_rgb_decoder(64, size = 64, width =
//! 32)`, squared error, normal R^64, `1 * sinkhorn(epsilon = 1, iterations = 50)`, Adam 1e-3,
//! batch 64, on a fixed batch of random images. Theirs: benches/py/rgb_step.py, the same network
//! and objective, run with the set-up's torch wheel (first on PYTHONPATH), the same threads.
//! Both take the median of 10 steps after 3 warm-up steps, one after the other. The issue's target
//! is a ratio (ours / PyTorch's) of at most 0.8; the ratio is printed and written to
//! bench-out/rgb_step.json.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sae_dsl::runtime::model::{Compiled, Draws};
use sae_dsl::runtime::optim::Adam;
use tch::{nn, Device, Kind, Tensor};

const MODEL: &str = r#"import "std/rgb"
data shapes(n = 64, size = 64)
latent R^64 ~ normal()
encoder { wae_rgb_encoder(64, width = 32) }
generator { wae_rgb_decoder(64, size = 64, width = 32) }
cost squared_l2
penalty 1 * sinkhorn(epsilon = 1, iterations = 50, p = 2)
train { optimizer adam(lr = 1e-3) batch 64 epochs 1 }
"#;

fn main() {
    let threads = tch::get_num_threads();
    let c = sae_dsl::compile_source("rgb_step.sae", MODEL, None);
    let model = c.model.expect("the benchmark model compiles");
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Compiled::new(&vs, &model);
    let mut opt = Adam::new(&vs, &model.train.optimizer);
    let b = model.train.batch;
    let x = Tensor::rand([b, 3, 64, 64], (Kind::Float, Device::Cpu));
    let draws = Draws {
        batch: b,
        ..Default::default()
    };
    let mut step = || {
        let loss = net
            .step_terms(&x, &draws, &mut [], false, false)
            .loss(&model);
        opt.zero_grad();
        loss.backward();
        opt.step();
    };
    for _ in 0..3 {
        step();
    }
    let mut v: Vec<f64> = (0..10)
        .map(|_| {
            let t = Instant::now();
            step();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    let ours = v[v.len() / 2];
    println!("threads {threads}");
    println!("| 64x64 RGB training step (batch 64, 3,484,483 parameters) | median |\n|---|---|");
    println!("| sae-dsl | {ours:.1} ms |");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/py/rgb_step.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(threads.to_string());
    if let Some(pkg) =
        std::env::var_os("LIBTORCH").and_then(|l| Path::new(&l).parent().map(Path::to_path_buf))
    {
        cmd.env("PYTHONPATH", pkg);
    }
    match cmd.output() {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value =
                serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
            if let Some(theirs) = v["ms"].as_f64() {
                println!("| PyTorch (same network, same threads) | {theirs:.1} ms |");
                println!(
                    "ratio sae-dsl / PyTorch: {:.2} (target at most 0.8)",
                    ours / theirs
                );
                let _ = std::fs::create_dir_all("bench-out");
                let _ = std::fs::write(
                    "bench-out/rgb_step.json",
                    serde_json::json!({"threads": threads, "sae_dsl_ms": ours, "pytorch_ms": theirs, "ratio": ours / theirs}).to_string(),
                );
            }
        }
        Ok(o) => println!(
            "PyTorch side failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => println!("SKIPPED the PyTorch side: no python3 ({e})"),
    }
}
