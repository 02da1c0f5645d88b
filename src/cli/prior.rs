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
    dims: Option<&str>,
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
    let dims = match dims.map(|s| parse_dims(s, space.dim())).transpose() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: --dims: {e}");
            return Err(ExitCode::from(2));
        }
    };
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
    let written = eval::write_prior_samples(&z, space, &program.call, out, name, dims.as_deref())
        .map_err(report)?;
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

/// `--dims 3,7`: two to four distinct coordinates, numbered from 1 up to the space's `d`.
fn parse_dims(s: &str, d: i64) -> Result<Vec<i64>, String> {
    let mut out = vec![];
    for part in s.split(',') {
        let i: i64 = part.trim().parse().map_err(|_| {
            format!(
                "`{}` is not a coordinate number (write e.g. `--dims 3,7`)",
                part.trim()
            )
        })?;
        if !(1..=d).contains(&i) {
            return Err(format!("coordinate {i} is outside 1..{d} (coordinates are numbered from 1, as the picture's axes z1, z2, ...)"));
        }
        if out.contains(&i) {
            return Err(format!("coordinate {i} is given twice"));
        }
        out.push(i);
    }
    if !(2..=4).contains(&out.len()) {
        return Err(format!("give 2 to 4 coordinates, not {}", out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_dims;

    #[test]
    fn dims_are_checked_with_the_reason() {
        assert_eq!(parse_dims("3, 7", 8), Ok(vec![3, 7]));
        assert!(parse_dims("0,2", 8).unwrap_err().contains("outside 1..8"));
        assert!(parse_dims("2,2", 8).unwrap_err().contains("twice"));
        assert!(parse_dims("2", 8).unwrap_err().contains("2 to 4"));
        assert!(parse_dims("a,2", 8)
            .unwrap_err()
            .contains("not a coordinate"));
    }
}
