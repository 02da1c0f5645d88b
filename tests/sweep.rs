//! Overrides and sweeps through the real binary: `run --set` records the effective model; a
//! sweep's members are checked when it is made, trained K at a time (finished ones skipped,
//! interrupted ones resumed), shown by `sweep status` and compared by setting with the best
//! picked on the validation split; `sweep slurm` writes the array script.

mod common;

use std::path::{Path, PathBuf};

const MODEL: &str =
    "import \"std/nets\"\nlet gamma = 1\ndata rings(n = 512)\nlatent R^2 ~ normal()\n\
    encoder { mlp(2, hidden = 16) }\ngenerator { mlp(2, hidden = 16) }\n\
    penalty gamma * sinkhorn(epsilon = 0.1, iterations = 10)\n\
    train { batch 64 epochs 2 validation split(fraction = 0.25) }\n";

fn model(root: &Path) -> PathBuf {
    let m = root.join("model.sae");
    std::fs::write(&m, MODEL).expect("model");
    m
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

#[test]
fn a_run_with_overrides_records_the_effective_model() {
    let root = common::tempdir("set");
    let m = model(&root);
    let run = root.join("run");
    let out = common::sae(&[
        "run",
        s(&m),
        "--out",
        s(&run),
        "--device",
        "cpu",
        "--no-eval",
        "--quiet",
        "--set",
        "gamma=2.5",
        "--set",
        "epochs=1",
        "--set",
        "lr=0.01",
    ]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let text = std::fs::read_to_string(run.join("model.sae")).expect("model.sae");
    assert!(text.contains("let gamma = 2.5"), "{text}");
    assert!(
        text.contains("epochs 1") && text.contains("optimizer adam(lr = 0.01)"),
        "{text}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(config["run"]["overrides"]["gamma"], "2.5");
    assert_eq!(config["model"]["constants"][0][1], "2.5");
    assert_eq!(config["model"]["penalties"][0]["weight"], 2.5);
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics");
    assert_eq!(lines.lines().count(), 1);
    let g = common::sae(&["graph", s(&m), "--set", "gamma=7"]);
    let graph = String::from_utf8_lossy(&g.stdout);
    assert!(
        graph.contains("let       gamma = 7") && graph.contains("penalty   7 * sinkhorn"),
        "{graph}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_sweep_is_made_trained_resumed_and_compared() {
    let root = common::tempdir("sweep");
    let m = model(&root);
    let dir = root.join("sweep");
    // A member that does not compile: nothing is written, the member and the reason are named.
    let bad = common::sae(&["sweep", s(&m), "--grid", "gamma=1,-1", "--out", s(&dir)]);
    let err = common::flat_stderr(&bad);
    assert!(!bad.status.success());
    assert!(
        err.contains("member 1 (gamma=-1) does not compile")
            && err.contains("`gamma` is given here"),
        "{err}"
    );
    assert!(!dir.exists());
    let out = common::sae(&[
        "sweep",
        s(&m),
        "--grid",
        "gamma=1,10",
        "--grid",
        "seed=0,1",
        "--out",
        s(&dir),
    ]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["members"].as_array().map(Vec::len), Some(4));
    let m3 = std::fs::read_to_string(dir.join("members/0003/model.sae")).expect("member 3");
    assert!(
        m3.contains("let gamma = 10") && m3.contains("seed 1"),
        "{m3}"
    );

    // Member 0 stops at epoch 2 (a full disk at its second checkpoint): interrupted after 1.
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sae-dsl"));
    let o = c
        .args([
            "sweep",
            "run",
            s(&dir),
            "--index",
            "0",
            "--device",
            "cpu",
            "--no-eval",
        ])
        .env("SAE_DSL_FAULT", "fail-write@checkpoint:2")
        .output()
        .expect("run");
    assert!(!o.status.success());
    let st = common::sae(&["sweep", "status", s(&dir)]);
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(
        text.contains("interrupted after 1 epochs") && text.contains("0 of 4 members finished"),
        "{text}"
    );

    let run = common::sae(&[
        "sweep",
        "run",
        s(&dir),
        "--jobs",
        "2",
        "--device",
        "cpu",
        "--no-eval",
    ]);
    assert!(run.status.success(), "{}", common::flat_stderr(&run));
    let st = common::sae(&["sweep", "status", s(&dir)]);
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(text.contains("4 of 4 members finished"), "{text}");
    // Member 0 was resumed, not restarted: its metrics list epochs 1 and 2 once each.
    let metrics =
        std::fs::read_to_string(dir.join("members/0000/run/metrics.jsonl")).expect("metrics");
    let epochs: Vec<i64> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["epoch"].as_i64())
        .collect();
    assert_eq!(epochs, vec![1, 2]);
    // A second `sweep run` has nothing left to do.
    let again = common::sae(&[
        "sweep",
        "run",
        s(&dir),
        "--index",
        "2",
        "--device",
        "cpu",
        "--no-eval",
    ]);
    assert!(String::from_utf8_lossy(&again.stdout)
        .contains("member 2 (gamma=10 seed=0): already trained"));

    let csv = root.join("c.csv");
    let cmp = common::sae(&["compare", s(&dir), "--metric", "recon", "--csv", s(&csv)]);
    let table = String::from_utf8_lossy(&cmp.stdout);
    assert!(cmp.status.success(), "{}", common::flat_stderr(&cmp));
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("gamma=")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows.iter().all(|r| r.contains("| 2 |")),
        "two seeds per setting: {table}"
    );
    assert_eq!(
        rows.iter().filter(|r| r.ends_with("| best |")).count(),
        1,
        "{table}"
    );

    let bad = common::sae(&["sweep", "run", s(&dir), "--index", "9"]);
    assert!(common::flat_stderr(&bad).contains("has members 0 to 3, not 9"));
    let _ = std::fs::remove_dir_all(root);
}

/// `--vary`: the file's setting plus one member per value, one constant changed at a time, each
/// with the grid; a malformed `--vary` names the option.
#[test]
fn a_coordinate_sweep_changes_one_constant_at_a_time() {
    let root = common::tempdir("sweep-vary");
    let m = model(&root);
    let dir = root.join("sweep");
    let bad = common::sae(&["sweep", s(&m), "--vary", "gamma", "--out", s(&dir)]);
    assert_eq!(bad.status.code(), Some(2));
    let err = common::flat_stderr(&bad);
    assert!(
        err.contains("`--vary gamma` is not NAME=V1,V2,..."),
        "{err}"
    );
    let empty = common::sae(&["sweep", s(&m), "--vary", "gamma=", "--out", s(&dir)]);
    assert_eq!(empty.status.code(), Some(2));
    let err = common::flat_stderr(&empty);
    assert!(
        err.contains("`--vary gamma=` needs a name and at least one value"),
        "{err}"
    );
    assert!(!dir.exists(), "nothing is written for a bad option");
    let out = common::sae(&[
        "sweep",
        s(&m),
        "--vary",
        "gamma=3,30",
        "--grid",
        "seed=0,1",
        "--out",
        s(&dir),
    ]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sweep of 6 members"));
    let text = |i: usize| {
        std::fs::read_to_string(dir.join(format!("members/{i:04}/model.sae"))).expect("member")
    };
    assert!(text(0).contains("let gamma = 1\n") && text(1).contains("let gamma = 1\n"));
    assert!(text(2).contains("let gamma = 3\n") && text(5).contains("let gamma = 30\n"));
    let st =
        String::from_utf8_lossy(&common::sae(&["sweep", "status", s(&dir)]).stdout).to_string();
    assert!(st.contains("gamma=30 seed=1"), "{st}");
    let _ = std::fs::remove_dir_all(root);
}

/// A grid over the latent size (shapes re-inferred per member), a member that fails (recorded,
/// the others go on, exit 1 with the failed members named), a member file edited by hand.
#[test]
fn structural_grids_failures_and_edited_sweeps() {
    let root = common::tempdir("sweep-bad");
    let m = root.join("model.sae");
    std::fs::write(
        &m,
        "let d = 2
let lr = 1e-3
data rings(n = 256)
latent R^d ~ normal()
encoder { linear(8) relu linear(d) }
         generator { linear(8) relu linear(2) }
penalty mmd()
train { optimizer adam(lr = lr) batch 64 epochs 1 }
",
    )
    .expect("model");
    let dir = root.join("sweep");
    let out = common::sae(&[
        "sweep",
        s(&m),
        "--grid",
        "d=1,3",
        "--grid",
        "lr=1e-3,1e6",
        "--out",
        s(&dir),
    ]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let g = common::sae(&["graph", s(&dir.join("members/0002/model.sae"))]);
    assert!(String::from_utf8_lossy(&g.stdout).contains("latent    z: R^3"));
    // lr = 1e6 diverges: those members fail, the others train.
    let run = common::sae(&[
        "sweep",
        "run",
        s(&dir),
        "--jobs",
        "2",
        "--device",
        "cpu",
        "--no-eval",
    ]);
    let err = common::flat_stderr(&run);
    assert!(!run.status.success());
    assert!(err.contains("members [1, 3] failed"), "{err}");
    let st =
        String::from_utf8_lossy(&common::sae(&["sweep", "status", s(&dir)]).stdout).to_string();
    assert!(st.contains("2 of 4 members finished"), "{st}");
    assert!(
        st.lines().filter(|l| l.contains("failed:")).count() == 2,
        "{st}"
    );
    assert!(dir.join("members/0001/failed.txt").is_file());
    // A member file edited into something that does not compile.
    std::fs::write(
        dir.join("members/0001/model.sae"),
        "data rings(
",
    )
    .expect("edit");
    let out = common::sae(&["sweep", "run", s(&dir), "--index", "1", "--device", "cpu"]);
    let err = common::flat_stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("member 1's model no longer compiles"), "{err}");
    // A manifest edited into something that is not one.
    std::fs::write(dir.join("sweep.json"), "{").expect("edit");
    let out = common::sae(&["sweep", "status", s(&dir)]);
    assert!(common::flat_stderr(&out).contains("sweep.json: EOF while parsing"));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn the_slurm_script_runs_one_member_per_array_task() {
    let root = common::tempdir("sbatch");
    let m = model(&root);
    let dir = root.join("sweep");
    // `--set` gives every member the same value, and stays out of the members' labels.
    let out = common::sae(&[
        "sweep",
        s(&m),
        "--set",
        "epochs=1",
        "--grid",
        "seed=0,1,2",
        "--out",
        s(&dir),
    ]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let st =
        String::from_utf8_lossy(&common::sae(&["sweep", "status", s(&dir)]).stdout).to_string();
    assert!(
        st.contains("   2  seed=2 ") && !st.contains("epochs=1"),
        "{st}"
    );
    let m2 = std::fs::read_to_string(dir.join("members/0002/model.sae")).expect("member");
    assert!(m2.contains("epochs 1") && m2.contains("seed 2"), "{m2}");
    let out = common::sae(&[
        "sweep",
        "slurm",
        s(&dir),
        "--partition",
        "gpu",
        "--time",
        "1:00:00",
        "--gpus-per-task",
        "1",
        "--cpus-per-task",
        "4",
        "--array-max",
        "2",
    ]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let script = std::fs::read_to_string(dir.join("sweep.sbatch")).expect("script");
    for want in [
        "#SBATCH --array=0-2%2",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=1:00:00",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --cpus-per-task=4",
        "/logs/%A_%a.out",
        "sweep run",
        "--index \"$SLURM_ARRAY_TASK_ID\" --threads 4",
    ] {
        assert!(script.contains(want), "{want} in\n{script}");
    }
    let bad = common::sae(&[
        "sweep",
        s(&m),
        "--range",
        "lr=1e-4:1e-2:log",
        "--out",
        s(&root.join("x")),
    ]);
    assert!(common::flat_stderr(&bad).contains("--range needs --random N"));
    let _ = std::fs::remove_dir_all(root);
}

/// With evaluation, each member's summary has the FID against its validation images, and
/// `compare --metric fid` picks a setting by it.
#[test]
fn settings_are_picked_by_the_fid_on_the_validation_split() {
    let Some(data) = common::data() else { return };
    let root = common::tempdir("sweep-fid");
    let m = root.join("model.sae");
    std::fs::write(
        &m,
        "let gamma = 1\ndata mnist(limit = 512)\nlatent R^4 ~ normal()\n\
         encoder { flatten linear(32) relu linear(4) }\ngenerator { linear(784) sigmoid reshape(1, 28, 28) }\n\
         cost bce\npenalty gamma * mmd()\ntrain { batch 64 epochs 1 validation split(fraction = 0.25) }\n",
    )
    .expect("model");
    let dir = root.join("sweep");
    let out = common::sae(&["sweep", s(&m), "--grid", "gamma=1,100", "--out", s(&dir)]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let run = common::sae(&[
        "sweep",
        "run",
        s(&dir),
        "--device",
        "cpu",
        "--data-dir",
        s(&data),
    ]);
    assert!(run.status.success(), "{}", common::flat_stderr(&run));
    for i in 0..2 {
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("members/{i:04}/run/summary.json")))
                .expect("summary"),
        )
        .expect("json");
        let (f, v) = (
            summary["fid_cnn"].as_f64(),
            summary["fid_validation"].as_f64(),
        );
        assert!(
            f.is_some_and(f64::is_finite) && v.is_some_and(f64::is_finite),
            "{summary}"
        );
        assert_ne!(f, v, "the validation images are not the test images");
    }
    let cmp = common::sae(&[
        "compare",
        s(&dir),
        "--metric",
        "fid",
        "--csv",
        s(&root.join("c.csv")),
    ]);
    let table = String::from_utf8_lossy(&cmp.stdout);
    assert!(cmp.status.success(), "{}", common::flat_stderr(&cmp));
    assert!(table.contains("validation fid"), "{table}");
    let rows = table.lines().filter(|l| l.contains("gamma="));
    assert_eq!(
        rows.filter(|l| l.ends_with("| best |")).count(),
        1,
        "{table}"
    );
    let _ = std::fs::remove_dir_all(root);
}

/// Two sweeps in folders of the same name (a tuning sweep and its winner's seeds) stay apart in
/// `compare`, named by their paths; a lone sweep is named by its folder.
#[test]
fn sweeps_with_the_same_folder_name_are_not_pooled() {
    let root = common::tempdir("sweep-names");
    let m = model(&root);
    let (a, b) = (root.join("tuning/normal"), root.join("final/normal"));
    let out = common::sae(&["sweep", s(&m), "--grid", "gamma=1,2", "--out", s(&a)]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let out = common::sae(&[
        "sweep",
        s(&m),
        "--set",
        "gamma=5",
        "--grid",
        "seed=0",
        "--out",
        s(&b),
    ]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let csv = root.join("c.csv");
    let cmp = common::sae(&["compare", s(&a), s(&b), "--csv", s(&csv)]);
    assert!(cmp.status.success(), "{}", common::flat_stderr(&cmp));
    let table = String::from_utf8_lossy(&cmp.stdout).to_string();
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("normal |")).collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows[2].starts_with(&format!("| {} | - |", b.display())),
        "{table}"
    );
    let cmp = common::sae(&["compare", s(&a), "--csv", s(&csv)]);
    let table = String::from_utf8_lossy(&cmp.stdout).to_string();
    assert!(table.contains("\n| normal | gamma=2 |"), "{table}");
    let _ = std::fs::remove_dir_all(root);
}
