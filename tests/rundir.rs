//! Run directories as self-contained artefacts (issue 32): every command works on a run that was
//! moved, from another working directory, with no environment variable; imports resolve through
//! the run's own copies; `--force` leaves nothing of the previous run; damaged weight and state
//! files are named and never used; signals stop every phase cleanly, and a second one ends the
//! process at once without a crash, leaving no lock.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sae-dsl");

/// `sae-dsl ARGS` in `cwd`, offline, without `$SAE_DSL_DATA` (and `env` added).
fn sae_in(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env("SAE_DSL_OFFLINE", "1")
        .env_remove("SAE_DSL_DATA");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("sae-dsl runs")
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn stderr(o: &Output) -> String {
    common::flat_stderr(o)
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("folder");
    std::fs::write(p, text).expect("write");
}

/// A small MNIST model in `proj/models/m.sae` that imports a net from its own folder and a prior
/// from `proj/lib`.
fn project(root: &Path, epochs: i64) -> PathBuf {
    let proj = root.join("proj");
    write(
        &proj.join("models/m.sae"),
        &format!(
            "import \"mynets\"\nimport \"../lib/mypriors\"\n\
             data mnist(limit = 256)\nlatent R^2 ~ blob(d = 2)\n\
             encoder {{ flatten small(2) }}\n\
             generator {{ small(784) sigmoid reshape(1, 28, 28) }}\n\
             penalty 1 * sinkhorn(epsilon = 0.1, iterations = 10)\n\
             train {{ batch 64 epochs {epochs} seed 3 }}\n"
        ),
    );
    write(
        &proj.join("models/mynets.sae"),
        "net small(out) {\n  linear(32) relu\n  linear(out)\n}\n",
    );
    write(
        &proj.join("lib/mypriors.sae"),
        "prior blob(d: int = 2) on R^d {\n  z ~ normal(0, 1, dim = d)\n  return z\n}\n",
    );
    proj
}

#[test]
fn a_moved_run_directory_works_from_anywhere_without_the_variables() {
    let Some(data) = common::data() else { return };
    let root = common::tempdir("rundir-move");
    let proj = project(&root, 1);
    // Trained from the project with a relative model path and the data found through the variable.
    let o = sae_in(
        &proj,
        &[
            "run",
            "models/m.sae",
            "--out",
            "runs/a",
            "--device",
            "cpu",
            "--quiet",
            "--no-eval",
        ],
        &[("SAE_DSL_DATA", &data)],
    );
    ok(&o, "training");
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(proj.join("runs/a/config.json")).expect("config"),
    )
    .expect("json");
    let rec = &config["run"]["data"];
    assert_eq!(rec["found_by"], "$SAE_DSL_DATA", "{rec}");
    assert!(
        Path::new(rec["train_file"].as_str().expect("train file")).is_absolute(),
        "{rec}"
    );
    assert_eq!(rec["test_sha256"].as_str().map(str::len), Some(64), "{rec}");
    assert!(proj.join("runs/a/imports.json").is_file());

    // Moved elsewhere; the originals of its imports gone or changed.
    let moved = root.join("elsewhere/a");
    std::fs::create_dir_all(moved.parent().expect("parent")).expect("folder");
    std::fs::rename(proj.join("runs/a"), &moved).expect("move");
    std::fs::rename(proj.join("lib"), proj.join("lib-gone")).expect("rename lib");
    write(&proj.join("models/mynets.sae"), "net small( {\n");
    let cwd = root.join("somewhere-else");
    std::fs::create_dir_all(&cwd).expect("cwd");
    let m = moved.to_str().expect("utf8");
    let cache = std::env::var_os("SAE_DSL_CACHE").map(PathBuf::from);
    let cache_env: Vec<(&str, &Path)> = cache
        .as_deref()
        .map(|c| vec![("SAE_DSL_CACHE", c)])
        .unwrap_or_default();
    for args in [
        vec!["sample", m, "-n", "8", "--out", "s.png", "--device", "cpu"],
        vec!["encode", m, "--out", "codes.npz", "--device", "cpu"],
        vec!["reconstruct", m, "--device", "cpu"],
        vec!["geodesic", m, "--from", "0", "--to", "1", "--device", "cpu"],
        vec!["export", m, "--format", "safetensors", "--out", "exported"],
        vec!["prior", m, "blob", "-n", "50", "--out", "prior"],
        vec![
            "resume",
            m,
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--quiet",
            "--no-eval",
        ],
        vec!["eval", m, "--device", "cpu", "--samples", "200", "--quiet"],
    ] {
        let o = sae_in(&cwd, &args, &cache_env);
        ok(&o, &args.join(" "));
    }
    let metrics = std::fs::read_to_string(moved.join("metrics.jsonl")).expect("metrics");
    assert_eq!(metrics.lines().count(), 2, "resumed to epoch 2");

    // Other data given with --data-dir: a changed test file is named with its checksum.
    let other = root.join("other-data/mnist");
    std::fs::create_dir_all(&other).expect("folder");
    for f in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(data.join("mnist").join(f), other.join(f)).expect("copy");
    }
    std::fs::copy(
        data.join("mnist/train-images-idx3-ubyte.gz"),
        other.join("t10k-images-idx3-ubyte.gz"),
    )
    .expect("copy");
    let dd = root.join("other-data");
    let o = sae_in(
        &cwd,
        &[
            "encode",
            m,
            "--out",
            "c2.npz",
            "--device",
            "cpu",
            "--data-dir",
            dd.to_str().expect("utf8"),
        ],
        &[],
    );
    let err = stderr(&o);
    assert!(!o.status.success(), "changed data must not be used");
    assert!(
        err.contains("t10k-images-idx3-ubyte.gz")
            && err.contains("SHA-256")
            && err.contains("is not the file the run was trained with"),
        "{err}"
    );
}

#[test]
fn a_sweep_of_a_model_with_local_imports_trains_and_slurm_carries_the_data_flags() {
    let Some(data) = common::data() else { return };
    let root = common::tempdir("rundir-sweep");
    let proj = project(&root, 1);
    let d = data.to_str().expect("utf8");
    let o = sae_in(
        &proj,
        &["sweep", "models/m.sae", "--grid", "seed=1,2", "--out", "sw"],
        &[],
    );
    ok(&o, "sweep create");
    // The sweep is moved and the originals of the imports are gone: the members' copies serve.
    std::fs::rename(proj.join("lib"), proj.join("lib-gone")).expect("rename lib");
    let o = sae_in(
        &proj,
        &[
            "sweep",
            "run",
            "sw",
            "--jobs",
            "1",
            "--device",
            "cpu",
            "--no-eval",
            "--data-dir",
            d,
        ],
        &[],
    );
    ok(&o, "sweep run");
    let status = sae_in(&proj, &["sweep", "status", "sw"], &[]);
    ok(&status, "sweep status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("2 of 2 members finished"), "{text}");
    let o = sae_in(
        &proj,
        &["sweep", "slurm", "sw", "--data-dir", d, "--no-eval"],
        &[],
    );
    ok(&o, "sweep slurm");
    let script = std::fs::read_to_string(proj.join("sw/sweep.sbatch")).expect("script");
    assert!(
        script.contains(&format!("--data-dir \"{d}\"")) && script.contains(" --no-eval"),
        "{script}"
    );
}

/// The rings model used by the tests below (fast; a validation split keeps best weights).
fn rings(dir: &Path, validation: bool, epochs: i64) -> PathBuf {
    let v = if validation {
        "validation split(fraction = 0.2, metric = \"total\")"
    } else {
        ""
    };
    let p = dir.join(if validation { "v.sae" } else { "n.sae" });
    write(
        &p,
        &format!(
            "import \"std/nets\"\ndata rings(n = 1024, k = 2)\nlatent R^2 ~ normal()\n\
             encoder {{ mlp(2, hidden = 16) }}\ngenerator {{ mlp(2, hidden = 16) }}\n\
             penalty 1 * sinkhorn(epsilon = 0.1, iterations = 10)\n\
             train {{ batch 64 epochs {epochs} seed 2 {v} }}\n"
        ),
    );
    p
}

fn train(dir: &Path, model: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        model.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--device",
        "cpu",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    sae_in(dir, &args, &[])
}

#[test]
fn force_leaves_nothing_of_the_previous_run() {
    let root = common::tempdir("rundir-force");
    let out = root.join("run");
    ok(
        &train(&root, &rings(&root, true, 2), &out, &[]),
        "first run",
    );
    assert!(out.join("best.safetensors").is_file() && out.join("best.json").is_file());
    std::fs::write(out.join("notes.md"), "mine").expect("a user's file");
    let events = |d: &Path| {
        std::fs::read_dir(d)
            .expect("dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("events.out"))
            })
            .count()
    };
    let before = events(&out);
    ok(
        &train(
            &root,
            &rings(&root, false, 1),
            &out,
            &["--force", "--no-eval"],
        ),
        "forced run",
    );
    for stale in ["best.safetensors", "best.json", "summary.json"] {
        let fresh = stale == "summary.json"; // written again by the new run
        assert_eq!(
            out.join(stale).is_file(),
            fresh,
            "{stale} after --force (present before: yes)"
        );
    }
    assert!(out.join("notes.md").is_file(), "a user's own file is kept");
    // A folder that holds no run is never cleared: `--force --out .` in a project.
    let project = root.join("project");
    std::fs::create_dir_all(&project).expect("dir");
    std::fs::write(project.join("results.json"), "{}").expect("a user's file");
    std::fs::write(project.join("figure.png"), "png").expect("a user's file");
    ok(
        &train(
            &root,
            &rings(&root, false, 1),
            &project,
            &["--force", "--no-eval"],
        ),
        "forced run into a project folder",
    );
    assert!(project.join("results.json").is_file() && project.join("figure.png").is_file());
    assert!(
        before >= 1 && events(&out) == 1,
        "only the new run's events"
    );
    let o = sae_in(
        &root,
        &[
            "export",
            out.to_str().expect("utf8"),
            "--format",
            "safetensors",
            "--out",
            "exp",
            "--weights",
            "best",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("has no best.safetensors"),
        "{}",
        stderr(&o)
    );
}

/// Flips one byte in the middle of the tensor data, or cuts the file in half.
fn damage(p: &Path, how: &str) {
    let mut b = std::fs::read(p).expect("read");
    if how == "flip" {
        let i = b.len() - b.len() / 4;
        b[i] ^= 0x5a;
    } else {
        b.truncate(b.len() / 2);
    }
    std::fs::write(p, b).expect("write");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("read") {
        let e = e.expect("entry");
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

#[test]
fn damaged_weight_and_state_files_are_named_and_never_used() {
    let root = common::tempdir("rundir-damage");
    let good = root.join("good");
    ok(&train(&root, &rings(&root, true, 2), &good, &[]), "run");
    let g = good.to_str().expect("utf8");
    ok(
        &sae_in(
            &root,
            &["fit-sampler", g, "--gmm", "2", "--device", "cpu"],
            &[],
        ),
        "fit-sampler",
    );
    let cases: [(&str, &[&str]); 6] = [
        (
            "checkpoint.safetensors",
            &["eval", "@", "--device", "cpu", "--quiet"],
        ),
        (
            "checkpoint.safetensors",
            &["sample", "@", "--out", "s.png", "--device", "cpu"],
        ),
        (
            "resume.safetensors",
            &["resume", "@", "--epochs", "3", "--device", "cpu", "--quiet"],
        ),
        (
            "best.safetensors",
            &[
                "export",
                "@",
                "--format",
                "safetensors",
                "--out",
                "e",
                "--weights",
                "best",
            ],
        ),
        (
            "sampler_gmm.safetensors",
            &[
                "sample",
                "@",
                "--out",
                "g.png",
                "--sampler",
                "gmm",
                "--device",
                "cpu",
            ],
        ),
        (
            "checkpoint.safetensors",
            &["export", "@", "--format", "torchscript", "--out", "t"],
        ),
    ];
    for how in ["flip", "truncate"] {
        for (k, (file, args)) in cases.iter().enumerate() {
            let dir = root.join(format!("{how}{k}"));
            copy_dir(&good, &dir);
            assert!(dir.join(file).is_file(), "{file} exists in a finished run");
            damage(&dir.join(file), how);
            let summary = std::fs::read(dir.join("summary.json")).expect("summary");
            let d = dir.to_str().expect("utf8");
            let args: Vec<&str> = args.iter().map(|a| if *a == "@" { d } else { a }).collect();
            let o = sae_in(&root, &args, &[]);
            let err = stderr(&o);
            assert!(
                !o.status.success(),
                "{how} {file}: `{}` must fail:\n{err}",
                args.join(" ")
            );
            assert!(
                err.contains(file) && err.contains("damaged"),
                "{how} {file}: `{}` names the file:\n{err}",
                args.join(" ")
            );
            assert_eq!(
                std::fs::read(dir.join("summary.json")).expect("summary"),
                summary,
                "{how} {file}: summary.json untouched"
            );
        }
    }
}

/// Starts `sae-dsl ARGS` with stderr read line by line; `on_line` sees each line and the child's
/// pid, and returns true once it has sent what it wanted.
fn run_and_signal(
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &Path)],
    mut on_line: impl FnMut(&str, u32) -> bool,
) -> (std::process::ExitStatus, String) {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env("SAE_DSL_OFFLINE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("spawn");
    let pid = child.id();
    let reader = BufReader::new(child.stderr.take().expect("stderr"));
    let mut text = String::new();
    let mut sent = false;
    for line in reader.lines() {
        let line = line.unwrap_or_default();
        text.push_str(&line);
        text.push('\n');
        if !sent {
            sent = on_line(&line, pid);
        }
    }
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "no exit:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, text)
}

/// Stderr with miette's line wrapping and frame undone: words joined by single spaces.
fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

fn kill(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

#[test]
fn a_second_signal_during_training_ends_at_once_and_resume_completes() {
    let root = common::tempdir("rundir-sig-train");
    let model = rings(&root, false, 15);
    for round in 0..3 {
        let out = root.join(format!("r{round}"));
        let o = out.to_str().expect("utf8");
        let m = model.to_str().expect("utf8");
        // Progress lines on stderr (not --quiet) say that training is under way.
        let (status, text) = run_and_signal(
            &root,
            &["run", m, "--out", o, "--device", "cpu", "--no-eval"],
            &[],
            |_, pid| {
                if out.join("metrics.jsonl").is_file() {
                    if round == 0 {
                        // Resuming a run that is still training names its lock.
                        let r = sae_in(&root, &["resume", o, "--device", "cpu"], &[]);
                        let err = stderr(&r);
                        assert!(
                            !r.status.success()
                                && err.contains("run.lock")
                                && err.contains(&pid.to_string()),
                            "{err}"
                        );
                    }
                    kill(pid, "-INT");
                    std::thread::sleep(Duration::from_millis(5 * round));
                    kill(pid, "-INT");
                    return true;
                }
                false
            },
        );
        assert_eq!(
            status.code(),
            Some(130),
            "round {round}: {status:?}\n{text}"
        );
        assert!(
            !out.join("run.lock").exists(),
            "round {round}: the lock is released"
        );
        let r = sae_in(
            &root,
            &["resume", o, "--device", "cpu", "--quiet", "--no-eval"],
            &[],
        );
        ok(&r, &format!("round {round}: resume"));
        let n = std::fs::read_to_string(out.join("metrics.jsonl"))
            .expect("metrics")
            .lines()
            .count();
        assert_eq!(n, 15, "round {round}: every epoch once");
    }
}

#[test]
fn signals_during_the_evaluation_stop_it_cleanly_and_eval_finishes_it() {
    let Some(data) = common::data() else { return };
    let root = common::tempdir("rundir-sig-eval");
    let proj = project(&root, 1);
    let m = proj.join("models/m.sae");
    let m = m.to_str().expect("utf8");
    // A fresh cache: the evaluation trains its classifier (about 30 s), the phase to interrupt.
    let cache = root.join("cache");
    for (round, signals) in [1, 2].into_iter().enumerate() {
        let out = root.join(format!("e{round}"));
        let o = out.to_str().expect("utf8");
        let (status, text) = run_and_signal(
            &proj,
            &["run", m, "--out", o, "--device", "cpu"],
            &[("SAE_DSL_DATA", &data), ("SAE_DSL_CACHE", &cache)],
            |line, pid| {
                if line.contains("training the evaluation classifier") {
                    std::thread::sleep(Duration::from_millis(300));
                    for _ in 0..signals {
                        kill(pid, "-INT");
                        std::thread::sleep(Duration::from_millis(30));
                    }
                    return true;
                }
                false
            },
        );
        assert_eq!(
            status.code(),
            Some(130),
            "{signals} signal(s): {status:?}\n{text}"
        );
        assert!(!out.join("run.lock").exists(), "the lock is released");
        if signals == 1 {
            let flat = flat(&text);
            assert!(flat.contains("stopped by a signal"), "{text}");
            assert!(flat.contains(&format!("sae-dsl eval {o}")), "{text}");
        }
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("summary.json")).expect("summary"),
        )
        .expect("json");
        assert!(
            summary.get("fid_cnn").is_none_or(|v| v.is_null()),
            "no figures of a stopped evaluation: {summary}"
        );
        assert!(out.join("checkpoint.safetensors").is_file());
    }
    // `sae-dsl eval` itself stops at a safe point too (a fresh cache: it trains its classifier).
    let o = root.join("e0");
    let cache2 = root.join("cache2");
    let (status, text) = run_and_signal(
        &proj,
        &["eval", o.to_str().expect("utf8"), "--device", "cpu"],
        &[("SAE_DSL_CACHE", &cache2)],
        |line, pid| {
            if line.contains("training the evaluation classifier") {
                kill(pid, "-INT");
                return true;
            }
            false
        },
    );
    assert_eq!(status.code(), Some(130), "eval: {status:?}\n{text}");
    assert!(flat(&text).contains("stopped by a signal"), "{text}");
    // And the evaluation finishes afterwards.
    let r = sae_in(
        &proj,
        &[
            "eval",
            o.to_str().expect("utf8"),
            "--device",
            "cpu",
            "--samples",
            "200",
            "--quiet",
        ],
        &[("SAE_DSL_CACHE", &cache)],
    );
    ok(&r, "eval after an interrupted evaluation");
}

#[test]
fn a_signal_stops_a_sweep_and_sweep_run_continues_it() {
    let root = common::tempdir("rundir-sig-sweep");
    let model = rings(&root, false, 30);
    let m = model.to_str().expect("utf8");
    let sw = root.join("sw");
    let s = sw.to_str().expect("utf8");
    ok(
        &sae_in(&root, &["sweep", m, "--grid", "seed=1,2", "--out", s], &[]),
        "sweep create",
    );
    let first = sw.join("members/0000/run/metrics.jsonl");
    let mut c = Command::new(BIN);
    c.args([
        "sweep",
        "run",
        s,
        "--jobs",
        "1",
        "--device",
        "cpu",
        "--no-eval",
    ])
    .current_dir(&root)
    .env("SAE_DSL_OFFLINE", "1")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let child = c.spawn().expect("spawn");
    let pid = child.id();
    let t = Instant::now();
    while !first.is_file() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the first member never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // As Ctrl-C in a terminal: the sweep and its running member both get SIGINT.
    let members = Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .expect("pgrep");
    kill(pid, "-INT");
    for p in String::from_utf8_lossy(&members.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-INT", p]).status();
    }
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("sweep stopped by a signal"), "{err}");
    assert!(!sw.join("members/0000/run/run.lock").exists());
    assert!(
        !sw.join("members/0000/failed.txt").exists(),
        "an interrupted member is not a failed one"
    );
    ok(
        &sae_in(
            &root,
            &[
                "sweep",
                "run",
                s,
                "--jobs",
                "1",
                "--device",
                "cpu",
                "--no-eval",
            ],
            &[],
        ),
        "sweep run again",
    );
    let st = sae_in(&root, &["sweep", "status", s], &[]);
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(text.contains("2 of 2 members finished"), "{text}");
}
