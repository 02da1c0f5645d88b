//! A real Slurm cluster: `scripts/slurm-local.sh` starts a one-node cluster on this machine
//! (installing slurm-wlm and munge when missing); a sweep of four members of a tiny model is
//! submitted as a job array and must finish, each member's run directory complete. Skipped with
//! the reason when the cluster cannot start here.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Stops the cluster when the test ends, passed or not.
struct Cluster(PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.0).output();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local.sh")
}

#[test]
fn a_sweep_runs_as_a_slurm_job_array() {
    let root = common::tempdir("slurm");
    let cdir = root.join("cluster");
    let out = Command::new(script())
        .arg("start")
        .arg(&cdir)
        .output()
        .expect("the script runs");
    if !out.status.success() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: no local Slurm cluster: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return;
    }
    let cluster = Cluster(cdir.clone());
    let conf = cdir.join("slurm.conf");
    let m = root.join("model.sae");
    std::fs::write(
        &m,
        "data rings(n = 256)\nlatent R^2 ~ normal()\nencoder { linear(8) relu linear(2) }\n\
         generator { linear(8) relu linear(2) }\npenalty mmd()\ntrain { batch 64 epochs 2 }\n",
    )
    .expect("model");
    let dir = root.join("sweep");
    let s = |p: &Path| p.to_str().expect("utf8").to_string();
    let out = common::sae(&["sweep", &s(&m), "--grid", "seed=0,1,2,3", "--out", &s(&dir)]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let sub = Command::new(env!("CARGO_BIN_EXE_sae-dsl"))
        .args([
            "sweep",
            "slurm",
            &s(&dir),
            "--cpus-per-task",
            "1",
            "--submit",
        ])
        .env("SLURM_CONF", &conf)
        .output()
        .expect("submit");
    let text = String::from_utf8_lossy(&sub.stdout);
    assert!(sub.status.success(), "{text}{}", common::flat_stderr(&sub));
    assert!(text.contains("Submitted batch job"), "{text}");
    let t0 = Instant::now();
    loop {
        let st = common::sae(&["sweep", "status", &s(&dir)]);
        let status = String::from_utf8_lossy(&st.stdout).to_string();
        if status.contains("4 of 4 members finished") {
            break;
        }
        let queue = Command::new("squeue").env("SLURM_CONF", &conf).output();
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "the array did not finish in 240 s:\n{status}\nsqueue: {}",
            queue
                .map(|q| String::from_utf8_lossy(&q.stdout).into_owned())
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for i in 0..4 {
        let run = dir.join(format!("members/{i:04}/run"));
        for f in [
            "checkpoint.safetensors",
            "metrics.jsonl",
            "summary.json",
            "config.json",
        ] {
            assert!(run.join(f).is_file(), "member {i} lacks {f}");
        }
        let log = std::fs::read_dir(dir.join("logs"))
            .expect("logs")
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(&format!("_{i}.out"))
            });
        assert!(log, "a log of task {i}");
    }
    // compare pools the four seeds of the one setting.
    let cmp = common::sae(&["compare", &s(&dir), "--csv", &s(&root.join("c.csv"))]);
    let table = String::from_utf8_lossy(&cmp.stdout);
    assert!(cmp.status.success(), "{}", common::flat_stderr(&cmp));
    assert!(table.lines().any(|l| l.contains("| - | 4 |")), "{table}");
    drop(cluster);
    let _ = std::fs::remove_dir_all(root);
}
