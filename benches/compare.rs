//! Side-by-side speed against the alternatives (issue 8): `cargo bench --bench compare`.
//!
//! Our side always runs. The peers run when importable: set `SAE_DSL_PEERS` to a folder with
//! numpy, geomloss and POT (`pip install --target DIR numpy geomloss pot scipy`; never in CI) and
//! `SAE_DSL_BENCH_REF` to the folder of `sinkhorn_bench.py` and `sae_reference.py` (default:
//! `../shared/bench` beside the checkout). They run with the same torch 2.11.0 (the set-up's
//! wheel, first on PYTHONPATH), 2 threads, the same shapes. Writes bench-out/compare.json and
//! the scaling pictures, prints the ratio table.
//!
//! `-- --quick` skips the training comparison and the largest sizes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sae_dsl::runtime::{objective, ot};
use sae_dsl::{compile_source, pipeline, plot, train};
use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median ms of `f` after warm-up, with fewer repetitions when slow.
fn time_ms(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    let first = t.elapsed().as_secs_f64();
    let reps = if first > 1.0 {
        3
    } else if first > 0.1 {
        5
    } else {
        15
    };
    f();
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

/// The reference benchmark's data: X ~ N(0, I/(2d)); Y uniform with per-coordinate variance
/// 1/(2d), shifted by a vector of norm 0.5 (E C about 1.25, max C about 4).
fn make_pair(n: i64, d: i64, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let x = Tensor::randn([n, d], (Kind::Float, Device::Cpu)) / (2.0 * d as f64).sqrt();
    let w = (3.0 / (2.0 * d as f64)).sqrt();
    let y = (Tensor::rand([n, d], (Kind::Float, Device::Cpu)) * 2.0 - 1.0) * w
        + 0.5 / (d as f64).sqrt();
    (x, y)
}

fn grad_time(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> f64 {
    time_ms(|| {
        let xv = x.copy().set_requires_grad(true);
        f(&xv).backward();
    })
}

/// Converged entropic value (float64, tolerance 1e-10) of a pair, the accuracy reference.
fn reference_entropic(x: &Tensor, y: &Tensor, eps: f64) -> f64 {
    let c = ot::sqdist(&x.to_kind(Kind::Double), &y.to_kind(Kind::Double));
    let o = ot::SinkhornOptions {
        epsilon: eps,
        iterations: 100_000,
        tolerance: 1e-7,
        scaling: 0.5,
        envelope: true,
    };
    tch::no_grad(|| ot::solve(&c, &o).value.double_value(&[]))
}

fn python_env() -> Option<(String, PathBuf)> {
    let peers = std::env::var("SAE_DSL_PEERS").ok()?;
    let torch_dir = std::env::var("LIBTORCH")
        .ok()
        .map(PathBuf::from)?
        .parent()?
        .to_path_buf();
    let path = format!("{}:{peers}", torch_dir.display());
    let ok = Command::new("python3")
        .args(["-c", "import numpy, torch, geomloss, ot"])
        .env("PYTHONPATH", &path)
        .status()
        .ok()?
        .success();
    let refdir = std::env::var("SAE_DSL_BENCH_REF")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench"));
    (ok && refdir.join("sinkhorn_bench.py").is_file()).then_some((path, refdir))
}

fn fit_exponent(pts: &[(f64, f64)]) -> f64 {
    let l: Vec<(f64, f64)> = pts.iter().map(|(x, y)| (x.ln(), y.ln())).collect();
    let n = l.len() as f64;
    let (mx, my) = (
        l.iter().map(|p| p.0).sum::<f64>() / n,
        l.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov: f64 = l.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let var: f64 = l.iter().map(|p| (p.0 - mx).powi(2)).sum();
    cov / var
}

/// Child mode: peak resident memory (MiB) of one loss + gradient.
fn peak_child(mode: &str, n: i64) {
    let (x, y) = make_pair(n, 16, 1);
    let x = x.set_requires_grad(true);
    match mode {
        "tape" => ot::sinkhorn(&ot::sqdist(&x, &y), 0.1, 50).sharp.backward(),
        "sweep" => ot::sinkhorn_unrolled_fast(&ot::sqdist(&x, &y), 0.1, 50).backward(),
        "envelope" => {
            let o = ot::SinkhornOptions {
                epsilon: 0.1,
                iterations: 1000,
                tolerance: 1e-3,
                scaling: 0.5,
                envelope: true,
            };
            ot::solve(&ot::sqdist(&x, &y), &o).value.backward()
        }
        _ => {}
    }
    let hwm = sae_dsl::util::peak_rss_mib();
    println!("{}", hwm);
}

fn peak(mode: &str, n: i64) -> f64 {
    // A fixed mmap threshold: freed large blocks go back to the OS, so the high-water mark
    // measures live memory rather than glibc's retained heap.
    let out = Command::new(std::env::current_exe().expect("bench binary"))
        .args(["--peak", mode, &n.to_string()])
        .env("MALLOC_MMAP_THRESHOLD_", "131072")
        .output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(f64::NAN)
}

/// Child mode: train the reference architecture for `epochs` on MNIST; prints JSON with the
/// median seconds per epoch (epochs after the first) and the peak memory.
fn train_child(gradient: &str, epochs: i64, data: &str) {
    let text = format!(
        "import \"std/nets\"\ndata mnist()\nlatent simplex(16) ~ dirichlet(alpha = 0.2)\nencoder {{ conv28_encoder(16) softmax }}\ngenerator {{ conv28_decoder(16) }}\n\
         penalty 0.01 * sinkhorn(epsilon = 0.1, iterations = 50, gradient = \"{gradient}\"{})\ntrain {{ batch 256 epochs {epochs} seed 0 }}\n",
        if gradient == "envelope" { ", tolerance = 1e-3, scaling = 0.5, iterations = 1000" } else { "" }
    );
    let text = if gradient == "envelope" {
        text.replace("iterations = 50, ", "")
    } else {
        text
    };
    let c = compile_source("bench.sae", &text, None);
    let model = c
        .model
        .unwrap_or_else(|| panic!("{}", c.sources.render(&c.diags, false, 100)));
    let dir = std::env::temp_dir().join(format!("sae-bench-{}", std::process::id()));
    let opts = train::RunOptions {
        out: Some(dir.clone()),
        quiet: true,
        force: true,
        data_dir: Some(PathBuf::from(data)),
        ..Default::default()
    };
    let s = pipeline::run(&model, &text, Device::Cpu, &opts).expect("training");
    let secs: Vec<f64> = s.epochs.iter().skip(1).map(|e| e.seconds).collect();
    let hwm = sae_dsl::util::peak_rss_mib();
    println!(
        "{}",
        json!({"seconds_per_epoch_median": median(secs), "peak_rss_mb": hwm})
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--peak") {
        peak_child(&args[i + 1], args[i + 2].parse().unwrap_or(1024));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--train-child") {
        train_child(&args[i + 1], args[i + 2].parse().unwrap_or(3), &args[i + 3]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    tch::set_num_threads(2);
    let out = PathBuf::from("bench-out");
    let _ = std::fs::create_dir_all(&out);
    let peers = python_env();
    println!(
        "torch threads {}; peers: {}",
        tch::get_num_threads(),
        if peers.is_some() {
            "importable"
        } else {
            "not importable (set SAE_DSL_PEERS): our side only"
        }
    );

    let mut peer_rows: Vec<Value> = vec![];
    if let Some((path, refdir)) = &peers {
        let o = Command::new("python3")
            .arg(refdir.join("sinkhorn_bench.py"))
            .args([
                "--ns",
                "64,256,1024",
                "--ds",
                "16",
                "--eps",
                "0.1,0.01",
                "--impls",
                "geomloss,unrolled",
                "--Ls",
                "50",
                "--reps",
                "10",
                "--budget-s",
                "30",
                "--threads",
                "2",
                "--no-fixtures",
                "--out",
                "bench-out/sinkhorn_peers.json",
            ])
            .env("PYTHONPATH", path)
            .output();
        match o {
            Ok(o) if o.status.success() => {
                let v: Value = serde_json::from_slice(
                    o.stdout
                        .split(|b| *b == b'\n')
                        .rfind(|l| !l.is_empty())
                        .unwrap_or(b"{}"),
                )
                .unwrap_or(Value::Null);
                peer_rows = v["rows"].as_array().cloned().unwrap_or_default();
            }
            Ok(o) => eprintln!(
                "sinkhorn_bench.py failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("python3: {e}"),
        }
    }
    let peer = |n: i64, eps: f64, imp: &str, key: &str| -> Option<f64> {
        peer_rows
            .iter()
            .find(|r| {
                r["n"].as_i64() == Some(n)
                    && r["d"].as_i64() == Some(16)
                    && (r["eps"].as_f64().unwrap_or(0.0) - eps).abs() < 1e-12
                    && r["impl"] == imp
            })
            .and_then(|r| r[key].as_f64())
    };
    // ---- Sinkhorn loss + gradient -----------------------------------------------------------
    let mut ours = vec![];
    for &eps in &[0.1, 0.01] {
        for &n in &[64i64, 256, 1024] {
            let (x, y) = make_pair(n, 16, 1);
            let tape = grad_time(&x, |xv| ot::sinkhorn(&ot::sqdist(xv, &y), eps, 50).sharp);
            let sweep = grad_time(&x, |xv| {
                ot::sinkhorn_unrolled_fast(&ot::sqdist(xv, &y), eps, 50)
            });
            let reference = reference_entropic(&x, &y, eps);
            // Envelope at GeomLoss's accuracy on this case (1e-3 without the peers): the fastest
            // schedule (epsilon annealing by 0.25 or 0.5 per stage, then k iterations) whose
            // relative error is at most GeomLoss's.
            let target =
                peer(n, eps, "geomloss", "relerr_vs_pot_entropic").map_or(1e-3, |e| e.abs());
            let mut env: Option<(String, f64, f64)> = None;
            for scaling in [0.25, 0.5] {
                for k in [1i64, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 3000] {
                    let o = ot::SinkhornOptions {
                        epsilon: eps,
                        iterations: k,
                        tolerance: 0.0,
                        scaling,
                        envelope: true,
                    };
                    let v =
                        tch::no_grad(|| ot::solve(&ot::sqdist(&x, &y), &o).value.double_value(&[]));
                    let rel = (v / reference - 1.0).abs();
                    if rel <= target {
                        let ms = grad_time(&x, |xv| ot::solve(&ot::sqdist(xv, &y), &o).value);
                        if env.as_ref().is_none_or(|e| ms < e.2) {
                            env = Some((format!("scaling {scaling}, {k} it."), rel, ms));
                        }
                        break;
                    }
                }
            }
            let (tol, rel, env_ms) =
                env.map(|(a, b, c)| (a, b, c))
                    .unwrap_or(("none".into(), f64::NAN, f64::NAN));
            println!("ours n {n} eps {eps}: unrolled tape {tape:.2} ms, reverse sweep {sweep:.2} ms, envelope ({tol}) {env_ms:.2} ms (rel. error {rel:.1e}, target {target:.1e})");
            ours.push(json!({"n": n, "eps": eps, "unrolled_tape_ms": tape, "unrolled_sweep_ms": sweep, "envelope_ms": env_ms, "envelope_schedule": tol, "accuracy_target": target, "envelope_relerr": rel}));
        }
    }
    println!("\n| n | eps | ours unrolled (reverse sweep) | PyTorch unrolled L50 | ratio (target <= 0.8) | ours envelope at GeomLoss's accuracy (rel. error) | GeomLoss tensorized (rel. error) | ratio (target <= 1.0) |\n|---|---|---|---|---|---|---|---|");
    for r in &ours {
        let (n, eps) = (
            r["n"].as_i64().unwrap_or(0),
            r["eps"].as_f64().unwrap_or(0.0),
        );
        let pu = peer(n, eps, "unrolled_L50", "fwdbwd_ms_median");
        let pg = peer(n, eps, "geomloss", "fwdbwd_ms_median");
        let ge = peer(n, eps, "geomloss", "relerr_vs_pot_entropic");
        let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2} ms"));
        let ratio = |a: f64, b: Option<f64>| b.map_or("-".into(), |b| format!("{:.2}", a / b));
        let sweep = r["unrolled_sweep_ms"].as_f64().unwrap_or(f64::NAN);
        let env = r["envelope_ms"].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {n} | {eps} | {sweep:.2} ms | {} | {} | {env:.2} ms ({:.1e}) | {} ({}) | {} |",
            f(pu),
            ratio(sweep, pu),
            r["envelope_relerr"].as_f64().unwrap_or(f64::NAN),
            f(pg),
            ge.map_or("-".into(), |e| format!("{:.1e}", e.abs())),
            ratio(env, pg)
        );
    }

    // ---- peak memory of one loss + gradient at n 1024 ---------------------------------------
    let base = peak("none", 1024);
    let mem: Vec<(String, f64)> = ["tape", "sweep", "envelope"]
        .iter()
        .map(|m| (m.to_string(), peak(m, 1024) - base))
        .collect();
    println!(
        "\npeak memory above baseline, n 1024, eps 0.1, L 50: {}",
        mem.iter()
            .map(|(m, v)| format!("{m} {v:.0} MiB"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // ---- scaling ------------------------------------------------------------------------------
    let ns: Vec<i64> = if quick {
        vec![64, 128, 256, 512, 1024]
    } else {
        vec![64, 128, 256, 512, 1024, 2048, 4096]
    };
    let mut sweep_pts = vec![];
    let mut env_pts = vec![];
    for &n in &ns {
        let (x, y) = make_pair(n, 16, 2);
        if n <= 2048 {
            sweep_pts.push((
                n as f64,
                grad_time(&x, |xv| {
                    ot::sinkhorn_unrolled_fast(&ot::sqdist(xv, &y), 0.1, 50)
                }),
            ));
        }
        let o = ot::SinkhornOptions {
            epsilon: 0.1,
            iterations: 1000,
            tolerance: 1e-3,
            scaling: 0.5,
            envelope: true,
        };
        env_pts.push((
            n as f64,
            grad_time(&x, |xv| ot::solve(&ot::sqdist(xv, &y), &o).value),
        ));
    }
    let mut step_pts = vec![];
    {
        let c = sae_dsl::compile_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/dirichlet_mnist.sae"),
        )
        .expect("model");
        let model = c.model.expect("model");
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let net = sae_dsl::runtime::model::Compiled::new(&vs, &model);
        let mut opt = sae_dsl::runtime::optim::Adam::new(&vs, &model.train.optimizer);
        for &b in &[64i64, 128, 256, 512, 1024] {
            let x = Tensor::rand([b, 1, 28, 28], (Kind::Float, Device::Cpu));
            let ms = time_ms(|| {
                let z = net.encode(&x, true);
                let rec = net.recon_cost(&net.decode(&z, true), &x);
                let w = net.sample_prior(b);
                let loss = rec
                    + objective::penalty(&model.penalties[0], &z, &w) * model.penalties[0].weight;
                opt.zero_grad();
                loss.backward();
                opt.step();
            });
            step_pts.push((b as f64, ms));
        }
    }
    let log = |p: &[(f64, f64)]| {
        p.iter()
            .map(|(x, y)| (x.log10(), y.log10()))
            .collect::<Vec<_>>()
    };
    let series = |name: String, c: usize, p: &[(f64, f64)]| plot::Series {
        name,
        color: plot::PALETTE[c],
        points: log(p),
    };
    let _ = plot::line_chart(
        &out.join("scaling_sinkhorn.png"),
        "Sinkhorn loss + gradient vs n (d 16, eps 0.1)",
        "log10 n",
        "log10 ms",
        &[
            series(
                format!(
                    "unrolled L50, reverse sweep (slope {:.2})",
                    fit_exponent(&sweep_pts)
                ),
                0,
                &sweep_pts,
            ),
            series(
                format!("envelope, tol 1e-3 (slope {:.2})", fit_exponent(&env_pts)),
                1,
                &env_pts,
            ),
        ],
        false,
    );
    let _ = plot::line_chart(
        &out.join("scaling_step.png"),
        "training step vs batch (dirichlet_mnist)",
        "log10 batch",
        "log10 ms",
        &[series(
            format!("training step (slope {:.2})", fit_exponent(&step_pts)),
            2,
            &step_pts,
        )],
        false,
    );
    println!("\nscaling (ms): sinkhorn unrolled sweep {sweep_pts:?} slope {:.2}; envelope {env_pts:?} slope {:.2}; training step {step_pts:?} slope {:.2}", fit_exponent(&sweep_pts), fit_exponent(&env_pts), fit_exponent(&step_pts));

    // ---- training: the reference architecture on MNIST --------------------------------------
    let mut training = Value::Null;
    let data = std::env::var("SAE_DSL_DATA")
        .ok()
        .filter(|d| Path::new(d).join("mnist").is_dir());
    if !quick {
        if let Some(data) = &data {
            let child = |g: &str| -> Value {
                Command::new(std::env::current_exe().expect("bench"))
                    .args(["--train-child", g, "4", data])
                    .output()
                    .ok()
                    .and_then(|o| {
                        serde_json::from_slice(
                            String::from_utf8_lossy(&o.stdout)
                                .lines()
                                .last()
                                .unwrap_or("{}")
                                .as_bytes(),
                        )
                        .ok()
                    })
                    .unwrap_or(Value::Null)
            };
            let (unrolled, envelope) = (child("unrolled"), child("envelope"));
            let mut reference = Value::Null;
            if let Some((path, refdir)) = &peers {
                let o = Command::new("python3")
                    .arg(refdir.join("sae_reference.py"))
                    .args([
                        "--prior",
                        "dirichlet",
                        "--alpha",
                        "0.2",
                        "--eps",
                        "0.1",
                        "--iters",
                        "50",
                        "--epochs",
                        "4",
                        "--threads",
                        "2",
                        "--gamma",
                        "0.01",
                        "--data-dir",
                    ])
                    .arg(Path::new(data).join("mnist"))
                    .args([
                        "--eval-points",
                        "200",
                        "--max-test",
                        "1000",
                        "--out",
                        "bench-out/sae_reference.json",
                    ])
                    .env("PYTHONPATH", path)
                    .output();
                if let Ok(o) = o {
                    reference = serde_json::from_slice(
                        String::from_utf8_lossy(&o.stdout)
                            .lines()
                            .last()
                            .unwrap_or("{}")
                            .as_bytes(),
                    )
                    .unwrap_or(Value::Null);
                    // The reference's median includes its first epoch; use epochs 2..4 like ours.
                    if let Some(e) = reference["epoch_seconds"].as_array() {
                        let s: Vec<f64> = e.iter().skip(1).filter_map(|v| v.as_f64()).collect();
                        if !s.is_empty() {
                            reference["seconds_per_epoch_median_after_first"] = json!(median(s));
                        }
                    }
                }
            }
            let r = reference["seconds_per_epoch_median_after_first"].as_f64();
            let f = |v: &Value| v["seconds_per_epoch_median"].as_f64().unwrap_or(f64::NAN);
            println!("\n| training, dirichlet, batch 256, eps 0.1, L 50, 10k MNIST images, 2 threads | s/epoch | ratio | peak memory |\n|---|---|---|---|");
            println!(
                "| PyTorch reference (sae_reference.py) | {} | 1.00 | {} MB |",
                r.map_or("-".into(), |v| format!("{v:.2}")),
                reference["peak_rss_mb"]
                    .as_f64()
                    .map_or("-".into(), |v| format!("{v:.0}"))
            );
            println!(
                "| sae-dsl unrolled (target <= 0.8) | {:.2} | {} | {:.0} MB |",
                f(&unrolled),
                r.map_or("-".into(), |v| format!("{:.2}", f(&unrolled) / v)),
                unrolled["peak_rss_mb"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "| sae-dsl envelope, tol 1e-3 (target <= 0.5) | {:.2} | {} | {:.0} MB |",
                f(&envelope),
                r.map_or("-".into(), |v| format!("{:.2}", f(&envelope) / v)),
                envelope["peak_rss_mb"].as_f64().unwrap_or(f64::NAN)
            );
            training = json!({"reference": reference, "unrolled": unrolled, "envelope": envelope});
        } else {
            println!("\ntraining comparison skipped: set SAE_DSL_DATA to a folder with mnist/");
        }
    }
    let result = json!({"ours": ours, "peers": peer_rows, "memory_mib": mem, "scaling": {"sinkhorn_sweep": sweep_pts, "sinkhorn_envelope": env_pts, "training_step": step_pts}, "training": training});
    let _ = std::fs::write(
        out.join("compare.json"),
        serde_json::to_string_pretty(&result).unwrap_or_default(),
    );
    println!("\nwritten: bench-out/compare.json, bench-out/scaling_sinkhorn.png, bench-out/scaling_step.png");
}
