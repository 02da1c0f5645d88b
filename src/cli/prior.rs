//! `sae-dsl prior FILE NAME`: samples of a prior program, as .npy and a picture.

use std::path::Path;
use std::process::ExitCode;

use super::{at_least_one, device, report, Outcome};
use crate::eval;
use crate::runtime::sampler::sample_program;

/// Instantiates prior `name` of `file` with `args`, draws `n` samples and writes them to `out`.
pub fn prior(
    file: &Path,
    name: &str,
    args: Option<&str>,
    n: i64,
    out: &Path,
    seed: i64,
    dev: &str,
) -> Outcome {
    at_least_one(n)?;
    let (program, space, warnings) = match crate::driver::prior_program(file, name, args) {
        Ok(p) => p,
        Err(text) => {
            eprintln!("{text}");
            return Err(ExitCode::from(1));
        }
    };
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let d = device(dev)?;
    tch::manual_seed(seed);
    let started = std::time::Instant::now();
    let z = tch::no_grad(|| sample_program(&program, n, d));
    let took = started.elapsed();
    let finite = z
        .isfinite()
        .all_dim(1, false)
        .sum(tch::Kind::Int64)
        .int64_value(&[]);
    if finite < n {
        eprintln!(
            "warning: {} of the {n} samples of {} are not finite (inf or NaN); they are written to the .npy file but not drawn",
            n - finite,
            program.call
        );
    }
    let written = eval::write_prior_samples(&z, space, &program.call, out, name).map_err(report)?;
    let draws = program.draws();
    println!(
        "{n} samples of {} on {space} in {:.2} ms ({draws} draw{} per sample)",
        program.call,
        took.as_secs_f64() * 1e3,
        if draws == 1 { "" } else { "s" }
    );
    for f in written {
        println!("  {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}
