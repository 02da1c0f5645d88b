//! `sae-dsl prior FILE NAME`: samples of a prior program, as .npy and a picture; with a run
//! directory for FILE, the prior of one latent component as trained (learnable parameters at
//! their learned values).

use std::path::Path;
use std::process::ExitCode;

use super::{at_least_one, device, report, Outcome};
use crate::eval;
use crate::ir;
use crate::runtime::sampler::{initial_params, sample_prior, sample_program};

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
    if file.is_dir() {
        if args.is_some() {
            eprintln!("error: --args cannot be given with a run directory: its prior's arguments are the model file's");
            return Err(ExitCode::from(2));
        }
        return learned(file, name, n, out, seed, dev, dims);
    }
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
    let dims = dims_arg(dims, space.dim())?;
    let d = device(dev)?;
    tch::manual_seed(seed);
    let started = std::time::Instant::now();
    // A learnable parameter takes its initial value here; `sae-dsl prior RUN_DIR NAME` shows
    // the trained one.
    let params = initial_params(&program, d);
    let z = tch::no_grad(|| sample_program(&program, &params, n, d));
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

/// The prior of latent component `name` of the run in `dir` (or the latent whose prior program
/// is called `name`), drawn with its learned parameters, which are printed.
fn learned(
    dir: &Path,
    name: &str,
    n: i64,
    out: &Path,
    seed: i64,
    dev: &str,
    dims: Option<&str>,
) -> Outcome {
    let d = device(dev)?;
    let run = eval::open_run(dir, d).map_err(report)?;
    let latents = &run.model.latents;
    let prior_name = |p: &ir::Prior| match p {
        ir::Prior::Program(p) => p.call.split('(').next().unwrap_or("").to_string(),
        other => other
            .to_string()
            .split('(')
            .next()
            .unwrap_or("")
            .to_string(),
    };
    let Some(i) = latents
        .iter()
        .position(|l| l.name == name)
        .or_else(|| latents.iter().position(|l| prior_name(&l.prior) == name))
    else {
        let known: Vec<String> = latents
            .iter()
            .map(|l| format!("`{}` (prior `{}`)", l.name, prior_name(&l.prior)))
            .collect();
        eprintln!(
            "error: the run in {} has no latent component or prior called `{name}`; it has {}",
            dir.display(),
            known.join(", ")
        );
        return Err(ExitCode::from(2));
    };
    let l = &latents[i];
    let dims = dims_arg(dims, l.space.dim())?;
    let params = &run.net.prior_params[i];
    if let ir::Prior::Program(p) = &l.prior {
        for (q, t) in p.params.iter().zip(params) {
            println!("{}", describe_param(&q.name, t));
        }
    }
    tch::manual_seed(seed);
    let z = tch::no_grad(|| sample_prior(&l.prior, params, n, l.space.dim(), d));
    let learned = if params.is_empty() {
        ""
    } else {
        ", as learned"
    };
    let shown = l.prior.to_string();
    let title = format!(
        "{}{learned}",
        shown.split(" (program").next().unwrap_or(&shown)
    );
    let written = eval::write_prior_samples(&z, l.space, &title, out, name, dims.as_deref())
        .map_err(report)?;
    println!(
        "{n} samples of the prior of `{}` in {}{learned}",
        l.name,
        dir.display()
    );
    for f in written {
        println!("  {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `means [10, 8]: mean 0.01, min -2.3, max 2.1` and, for up to 16 numbers, the values.
fn describe_param(name: &str, t: &tch::Tensor) -> String {
    let t = t
        .detach()
        .to_device(tch::Device::Cpu)
        .to_kind(tch::Kind::Double);
    let v: Vec<f64> = Vec::<f64>::try_from(t.flatten(0, -1)).unwrap_or_default();
    let shape = ir::shape_str(&t.size());
    if v.is_empty() {
        return format!("learned {name} {shape}: empty");
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let values = if v.len() <= 16 {
        let shown: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
        format!(" = [{}]", shown.join(", "))
    } else {
        String::new()
    };
    format!("learned {name} {shape}: mean {mean:.4}, min {min:.4}, max {max:.4}{values}")
}

/// `--dims` checked against a space of `d` coordinates; exit code 2 with the reason otherwise.
fn dims_arg(dims: Option<&str>, d: i64) -> Result<Option<Vec<i64>>, ExitCode> {
    dims.map(|s| parse_dims(s, d)).transpose().map_err(|e| {
        eprintln!("error: --dims: {e}");
        ExitCode::from(2)
    })
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
