//! Benchmarks (not tests): one training step of models/dirichlet_mnist.sae, Sinkhorn loss +
//! gradient for n in {64, 256, 1024} (d 16, epsilon 0.1, 50 iterations), and prior sampling.
//!
//! Run with `cargo bench` (add `-- --device cuda` on a GPU machine). Prints a Markdown table.

use std::time::Instant;

use sae_dsl::compile_file;
use sae_dsl::runtime::model::Compiled;
use sae_dsl::runtime::optim::Adam;
use sae_dsl::runtime::sampler::sample_prior;
use sae_dsl::runtime::{device::parse_device, objective, ot};
use tch::{nn, Device, Kind, Tensor};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `f` over `reps` runs after `warm` warm-up runs; `sync` waits for the device.
fn time(warm: usize, reps: usize, device: Device, mut f: impl FnMut()) -> f64 {
    for _ in 0..warm {
        f();
    }
    let mut v = vec![];
    for _ in 0..reps {
        let t = Instant::now();
        f();
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
        v.push(t.elapsed().as_secs_f64());
    }
    median(v)
}

/// Child-process mode: one loss + gradient at n 1024 (or nothing, for the baseline), then the
/// peak resident memory in MiB.
fn sinkhorn_peak(mode: &str) {
    let n = 1024;
    let y = Tensor::rand([n, 16], (Kind::Float, Device::Cpu));
    let x = Tensor::rand([n, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    if mode == "fast" {
        ot::sinkhorn_unrolled_fast(&ot::sqdist(&x, &y), 0.1, 50).backward();
    } else if mode != "none" {
        let o = ot::SinkhornOptions {
            epsilon: 0.1,
            iterations: 50,
            tolerance: 0.0,
            scaling: 1.0,
            envelope: mode == "envelope",
        };
        ot::solve(&ot::sqdist(&x, &y), &o).value.backward();
    }
    let hwm = sae_dsl::util::peak_rss_mib();
    println!("{}", hwm);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--sinkhorn-peak") {
        sinkhorn_peak(args.get(i + 1).map(String::as_str).unwrap_or("none"));
        return;
    }
    let device = match args
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| args.get(i + 1))
    {
        Some(d) => parse_device(d).unwrap_or(Device::Cpu),
        None => Device::Cpu,
    };
    println!(
        "device {device:?}, torch threads {}",
        tch::get_num_threads()
    );
    println!("| benchmark | median |\n|---|---|");

    // One training step of the Dirichlet MNIST model on a batch of random images.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/dirichlet_mnist.sae");
    let c = compile_file(&path).expect("model file");
    let model = c.model.expect("model compiles");
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let net = Compiled::new(&vs, &model);
    let mut opt = Adam::new(&vs, &model.train.optimizer);
    let b = model.train.batch;
    let x = Tensor::rand([b, 1, 28, 28], (Kind::Float, device));
    // The terms as training computes them (`Compiled::step_terms`), then the same update.
    let draws = sae_dsl::runtime::model::Draws {
        batch: b,
        ..Default::default()
    };
    let step = time(3, 20, device, || {
        let loss = net
            .step_terms(&x, &draws, &mut [], false, false)
            .loss(&model);
        opt.zero_grad();
        loss.backward();
        opt.step();
    });
    println!(
        "| training step, dirichlet_mnist (batch {b}, eps 0.01, 50 iterations) | {:.2} ms |",
        step * 1e3
    );
    // The same step assembled by hand (as before `step_terms`), in the same run: what the shared
    // assembly costs, if anything.
    let by_hand = time(3, 20, device, || {
        let z = net.encode(&x, true);
        let rec = net.recon_cost(&net.decode(&z, true), &x);
        let w = net.sample_prior(b);
        let pen: Tensor = model
            .penalties
            .iter()
            .map(|p| objective::penalty(p, &z, &w) * p.weight)
            .sum();
        let loss = rec + pen;
        opt.zero_grad();
        loss.backward();
        opt.step();
    });
    println!(
        "| the same step assembled by hand (encode, decode, penalty), same run | {:.2} ms |",
        by_hand * 1e3
    );
    // Its parts: the optimizer update alone, and the penalty's forward + backward alone.
    let adam = time(3, 20, device, || opt.step());
    println!(
        "| of which: Adam update of 170,193 parameters (our Adam, checkpointable) | {:.2} ms |",
        adam * 1e3
    );
    let z0 = tch::no_grad(|| net.encode(&x, false));
    let pen = time(3, 20, device, || {
        let z = z0.copy().set_requires_grad(true);
        let w = net.sample_prior(b);
        let p: Tensor = model
            .penalties
            .iter()
            .map(|p| objective::penalty(p, &z, &w))
            .sum();
        p.backward();
    });
    println!("| of which: Sinkhorn penalty forward + backward (n {b}, eps 0.01, 50 iterations) | {:.2} ms |", pen * 1e3);
    let sample = time(3, 50, device, || {
        let _ = net.sample_prior(256);
    });
    println!(
        "| prior sample, dirichlet(0.2) x 256 in 16-D | {:.3} ms ({:.2}% of a step) |",
        sample * 1e3,
        100.0 * sample / step
    );
    for (name, prior, dim) in [
        (
            "normal",
            sae_dsl::ir::Prior::Normal {
                mean: 0.0,
                std: 1.0,
            },
            8,
        ),
        ("uniform_sphere", sae_dsl::ir::Prior::UniformSphere, 10),
    ] {
        let t = time(3, 50, device, || {
            let _ = sample_prior(&prior, &[], 256, dim, device);
        });
        println!(
            "| prior sample, {name} x 256 in {dim}-D | {:.3} ms |",
            t * 1e3
        );
    }

    // Every prior program of the standard library, compiled from stdlib/priors.sae.
    let lib = sae_dsl::compile_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/stdlib/priors.sae"
    )))
    .expect("stdlib/priors.sae");
    for (program, space) in &lib.library_priors {
        let t = time(3, 50, device, || {
            let _ = sae_dsl::runtime::sampler::sample_program(program, &[], 256, device);
        });
        println!(
            "| prior program {} x 256 on {space} | {:.3} ms ({:.2}% of a step; {} registers) |",
            program.call,
            t * 1e3,
            100.0 * t / step,
            program.instrs.len()
        );
    }

    // Gradient modes at n 1024: time here, peak memory in a fresh child process each.
    for (mode, envelope) in [
        ("unrolled (autograd tape)", false),
        ("unrolled (reverse sweep)", false),
        ("envelope", true),
    ] {
        let n = 1024;
        let y = Tensor::rand([n, 16], (Kind::Float, device));
        let x = Tensor::rand([n, 16], (Kind::Float, device));
        let o = ot::SinkhornOptions {
            epsilon: 0.1,
            iterations: 50,
            tolerance: 0.0,
            scaling: 1.0,
            envelope,
        };
        let fast = mode.contains("sweep");
        let t = time(1, 5, device, || {
            let xv = x.copy().set_requires_grad(true);
            if fast {
                ot::sinkhorn_unrolled_fast(&ot::sqdist(&xv, &y), 0.1, 50).backward();
            } else {
                ot::solve(&ot::sqdist(&xv, &y), &o).value.backward();
            }
        });
        let peak = |m: &str| -> f64 {
            std::process::Command::new(std::env::current_exe().expect("bench binary"))
                .args(["--sinkhorn-peak", m])
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .unwrap_or(f64::NAN)
        };
        let child = if fast {
            "fast"
        } else if envelope {
            "envelope"
        } else {
            "unrolled"
        };
        let extra = peak(child) - peak("none");
        println!("| sinkhorn {mode} gradient, n {n}, d 16, eps 0.1, 50 iterations | {:.2} ms, peak memory +{extra:.0} MiB |", t * 1e3);
    }

    // Sinkhorn loss + gradient.
    for n in [64i64, 256, 1024] {
        let y = Tensor::rand([n, 16], (Kind::Float, device));
        let x = Tensor::rand([n, 16], (Kind::Float, device));
        let t = time(2, if n > 512 { 5 } else { 20 }, device, || {
            let xv = x.copy().set_requires_grad(true);
            let out = ot::sinkhorn(&ot::sqdist(&xv, &y), 0.1, 50);
            out.sharp.backward();
        });
        println!("| sinkhorn loss + gradient, n {n}, d 16, eps 0.1, 50 iterations (unrolled) | {:.2} ms |", t * 1e3);
    }
}
