//! `sae-dsl sweep`: make a sweep, train its members (locally or one per Slurm array task), show
//! where they stand, write and submit the sbatch script.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use sae_dsl_lang::cli::{SweepAction, SweepCreate};

use super::{device, Outcome};
use crate::pipeline;
use crate::sweep::{self, Manifest, Plan, SlurmOptions, State};
use crate::train::RunOptions;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}

/// Dispatches `sweep FILE ...` and `sweep run|status|slurm DIR`.
pub fn sweep(action: Option<SweepAction>, create: SweepCreate) -> Outcome {
    match action {
        None => make(create),
        Some(SweepAction::Run {
            dir,
            jobs,
            index,
            threads,
            device,
            data_dir,
            no_eval,
        }) => match index {
            Some(i) => run_member(&dir, i, threads, &device, data_dir, no_eval),
            None => run_all(&dir, jobs, threads, &device, data_dir, no_eval),
        },
        Some(SweepAction::Status { dir }) => status(&dir),
        Some(SweepAction::Slurm {
            dir,
            partition,
            time,
            gpus_per_task,
            cpus_per_task,
            array_max,
            data_dir,
            no_eval,
            submit,
        }) => slurm(
            &dir,
            &SlurmOptions {
                partition,
                time,
                gpus_per_task,
                cpus_per_task,
                array_max,
                data_dir: data_dir.map(|d| std::path::absolute(&d).unwrap_or(d)),
                no_eval,
            },
            submit,
        ),
    }
}

/// Each option parsed by `parse`; the first that cannot be is a usage error (exit 2).
fn parse_all<T>(opts: &[String], parse: fn(&str) -> Result<T, String>) -> Result<Vec<T>, ExitCode> {
    opts.iter()
        .map(|o| parse(o))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })
}

/// `sweep FILE --grid ... --out DIR`.
fn make(c: SweepCreate) -> Outcome {
    let (Some(file), Some(out)) = (c.file, c.out) else {
        eprintln!("error: `sae-dsl sweep FILE --grid NAME=V1,V2 ... --out DIR` makes a sweep; `sae-dsl sweep run|status|slurm DIR` acts on one");
        return Err(ExitCode::from(2));
    };
    let grid = parse_all(&c.grid, sweep::parse_grid)?;
    let vary = parse_all(&c.vary, sweep::parse_vary)?;
    let ranges = parse_all(&c.range, sweep::parse_range)?;
    if !ranges.is_empty() && c.random.unwrap_or(0) == 0 {
        eprintln!("error: --range needs --random N, the number of random settings to draw");
        return Err(ExitCode::from(2));
    }
    let plan = Plan {
        fixed: c
            .set
            .iter()
            .map(|o| (o.name.clone(), o.value.clone()))
            .collect(),
        grid,
        vary,
        ranges,
        random: c.random.unwrap_or(0),
        seed: c.draw_seed,
    };
    let m = sweep::create(&file, &plan, &out).map_err(fail)?;
    println!(
        "sweep of {} members written to {}; train them with `sae-dsl sweep run {}` or on Slurm with `sae-dsl sweep slurm {}`",
        m.members.len(),
        out.display(),
        out.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Trains member `i` in this process: resumes it when interrupted, skips it when finished.
// long: one member's whole life (its own import copies, its state, train or resume, and how an
// interruption differs from a failure), kept in one place so that `sweep status` reads the same.
fn run_member(
    dir: &Path,
    i: usize,
    threads: Option<usize>,
    dev: &str,
    data_dir: Option<PathBuf>,
    no_eval: bool,
) -> Outcome {
    let manifest = Manifest::read(dir).map_err(fail)?;
    let Some(m) = manifest.members.get(i) else {
        return Err(fail(format!(
            "{} has members 0 to {}, not {i}",
            dir.display(),
            manifest.members.len().saturating_sub(1)
        )));
    };
    if let Some(t) = threads {
        tch::set_num_threads(t.max(1) as i32);
    }
    let d = device(dev)?;
    let run = manifest.run_dir(dir, m);
    let model_path = dir.join(&m.dir).join(crate::rundir::MODEL);
    let member_dir = dir.join(&m.dir);
    let text = sae_dsl_lang::load::read_source(&model_path).map_err(|e| fail(e.to_string()))?;
    let vendored = crate::rundir::vendored(&member_dir).map_err(fail)?;
    let c = crate::driver::compile_vendored(
        &model_path.display().to_string(),
        &text,
        Some(&member_dir),
        &[],
        vendored.as_ref(),
    );
    let Some(mut model) = c.model.clone().filter(|_| !c.has_errors()) else {
        return Err(fail(format!(
            "member {i}'s model no longer compiles:\n{}",
            c.sources.render(&c.diags, false, 100)
        )));
    };
    // Relative data paths start from the swept model file's folder, not the member's copy.
    if let Some(folder) = std::path::Path::new(&manifest.file).parent() {
        model.data.base = Some(folder.display().to_string());
    }
    let interrupter = crate::train::Interrupter::new();
    super::install_signals(
        &interrupter,
        "stopping this member at the next safe point; its state will be saved",
    );
    let opts = RunOptions {
        out: Some(run.clone()),
        interrupter,
        data_dir,
        quiet: true,
        evaluate: !no_eval,
        overrides: m.overrides.clone(),
        imports: Some(crate::rundir::Imports::of(&c.program)),
        ..Default::default()
    };
    let st = sweep::state(&run, Some(model.train.epochs));
    let _ = std::fs::remove_file(dir.join(&m.dir).join(sweep::FAILED));
    let result = match st {
        State::Done => {
            println!("member {i} ({}): already done", m.label());
            return Ok(ExitCode::SUCCESS);
        }
        State::Trained if no_eval => {
            println!("member {i} ({}): already trained", m.label());
            return Ok(ExitCode::SUCCESS);
        }
        State::Running(pid) => {
            return Err(fail(format!(
                "member {i} is being trained by process {pid}"
            )))
        }
        State::Interrupted(_) | State::Trained => pipeline::resume(&run, d, &opts),
        State::NotStarted => {
            let source = text;
            pipeline::run(
                &model,
                &source,
                d,
                &RunOptions {
                    force: true,
                    ..opts
                },
            )
        }
    };
    match result {
        Ok(s) => {
            println!(
                "member {i} ({}): done, test reconstruction {:.4}",
                m.label(),
                s.test_recon
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let interrupted = matches!(
                e,
                pipeline::RunError::Train(crate::train::TrainError::Interrupted { .. })
                    | pipeline::RunError::Eval(crate::eval::EvalError::Interrupted { .. })
            );
            let text = format!("{:?}", miette::Report::new(e));
            if interrupted {
                // Not a failure: `sweep run` continues it.
                eprintln!("member {i} ({}):\n{text}", m.label());
                return Err(ExitCode::from(130));
            }
            eprintln!("member {i} ({}):\n{text}", m.label());
            // Recorded beside the run, for `sweep status` and for whoever reads the sweep later.
            let _ =
                crate::util::write_atomic(&dir.join(&m.dir).join(sweep::FAILED), text.as_bytes());
            Err(ExitCode::from(1))
        }
    }
}

/// Trains every member not done, `jobs` at a time, each in its own process with its share of
/// the cores.
fn run_all(
    dir: &Path,
    jobs: usize,
    threads: Option<usize>,
    dev: &str,
    data_dir: Option<PathBuf>,
    no_eval: bool,
) -> Outcome {
    let manifest = Manifest::read(dir).map_err(fail)?;
    let exe = std::env::current_exe().map_err(fail)?;
    let jobs = jobs.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Finished members are only reported, so the cores go to those left (a last member alone
    // gets them all).
    let to_do = manifest
        .members
        .iter()
        .filter(|m| {
            let st = sweep::state(&manifest.run_dir(dir, m), None);
            !(matches!(st, State::Done) || (no_eval && matches!(st, State::Trained)))
        })
        .count();
    let threads = threads.unwrap_or((cores / jobs.min(to_do.max(1))).max(1));
    let mut pending: Vec<usize> = manifest.members.iter().map(|m| m.index).collect();
    pending.reverse();
    let mut running: Vec<(usize, std::process::Child)> = vec![];
    let mut failed = vec![];
    // Ctrl-C reaches the members too (one process group): each saves its state and stops; this
    // process starts no new member and waits for them. A second signal ends it at once.
    let stop = crate::train::Interrupter::new();
    super::install_signals(
        &stop,
        "stopping: no new member starts; the running ones save their state",
    );
    while !pending.is_empty() || !running.is_empty() {
        if crate::signals::stop_requested() {
            pending.clear();
        }
        while running.len() < jobs {
            let Some(i) = pending.pop() else { break };
            let mut cmd = Command::new(&exe);
            cmd.args(["sweep", "run"])
                .arg(dir)
                .args(["--index", &i.to_string(), "--threads", &threads.to_string()])
                .args(["--device", dev]);
            if let Some(d) = &data_dir {
                cmd.arg("--data-dir").arg(d);
            }
            if no_eval {
                cmd.arg("--no-eval");
            }
            running.push((i, cmd.spawn().map_err(fail)?));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut still = vec![];
        for (i, mut child) in running {
            match child.try_wait() {
                Ok(Some(status)) if !status.success() => failed.push(i),
                Ok(Some(_)) => {}
                Ok(None) => still.push((i, child)),
                Err(_) => failed.push(i),
            }
        }
        running = still;
    }
    if crate::signals::stop_requested() {
        eprintln!(
            "sweep stopped by a signal; `sae-dsl sweep run {}` continues it",
            dir.display()
        );
        return Err(ExitCode::from(130));
    }
    if failed.is_empty() {
        println!(
            "all {} members of {} are trained",
            manifest.members.len(),
            dir.display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        failed.sort_unstable();
        Err(fail(format!(
            "members {failed:?} failed (their errors are above); `sae-dsl sweep run {}` again continues them",
            dir.display()
        )))
    }
}

/// `sweep status DIR`: one line per member, then the counts.
fn status(dir: &Path) -> Outcome {
    let manifest = Manifest::read(dir).map_err(fail)?;
    let mut done = 0;
    for m in &manifest.members {
        let run = manifest.run_dir(dir, m);
        let epochs = crate::compile_file(&dir.join(&m.dir).join(crate::rundir::MODEL))
            .ok()
            .and_then(|c| c.model.map(|m| m.train.epochs));
        let st = sweep::state(&run, epochs);
        if matches!(st, State::Done | State::Trained) {
            done += 1;
        }
        let failed = std::fs::read_to_string(dir.join(&m.dir).join(sweep::FAILED)).ok();
        match failed {
            Some(why) if !matches!(st, State::Done | State::Trained | State::Running(_)) => {
                let first = why
                    .lines()
                    .find(|l| l.contains('×'))
                    .unwrap_or_else(|| why.lines().next().unwrap_or(""))
                    .trim()
                    .trim_start_matches('×')
                    .trim();
                println!("{:>4}  {:<40}  failed: {first} ({st})", m.index, m.label());
            }
            _ => println!("{:>4}  {:<40}  {st}", m.index, m.label()),
        }
    }
    println!(
        "{done} of {} members finished ({})",
        manifest.members.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `sweep slurm DIR`: writes DIR/sweep.sbatch (and DIR/logs), and submits it with `--submit`.
fn slurm(dir: &Path, o: &SlurmOptions, submit: bool) -> Outcome {
    let manifest = Manifest::read(dir).map_err(fail)?;
    let dir = std::fs::canonicalize(dir).map_err(fail)?;
    let exe = std::env::current_exe().map_err(fail)?;
    std::fs::create_dir_all(dir.join("logs")).map_err(fail)?;
    let script = dir.join("sweep.sbatch");
    let text = sweep::sbatch(&dir, manifest.members.len(), &exe, o);
    crate::util::write_atomic(&script, text.as_bytes()).map_err(fail)?;
    println!(
        "{}: a job array of {} tasks, logs in {}/logs",
        script.display(),
        manifest.members.len(),
        dir.display()
    );
    if !submit {
        println!("submit it with `sbatch {}`", script.display());
        return Ok(ExitCode::SUCCESS);
    }
    let out = Command::new("sbatch").arg(&script).output().map_err(|e| {
        fail(format!(
            "could not run sbatch ({e}): is Slurm installed here? The script is written; submit it where Slurm runs"
        ))
    })?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        return Err(fail(format!(
            "sbatch refused the script: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(ExitCode::SUCCESS)
}
