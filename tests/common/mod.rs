//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Set to 1 when the shared data and fixtures must be there (scripts/test.sh, with ../shared).
pub const REQUIRE_ENV: &str = "SAE_DSL_REQUIRE_SHARED";

/// A folder from an environment variable, else a path relative to the checkout when it exists;
/// None (and a visible message) otherwise, so that the calling test can skip.
pub fn shared_dir(env: &str, rel: &str, what: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        if p.is_dir() {
            return Some(p);
        }
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    if p.is_dir() {
        return Some(p);
    }
    // Where the shared material is known to be present (scripts/test.sh sets this when it finds
    // ../shared), a missing piece is a failure, not a skip.
    if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v == "1") {
        panic!("{what} not found ({env} or {rel}), but {REQUIRE_ENV}=1 says the shared material is present");
    }
    // Written to the process's stderr directly: libtest captures eprintln! of passing tests.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {what} not found (set {env} or provide {rel})"
    );
    None
}

pub fn fixtures() -> Option<PathBuf> {
    shared_dir(
        "SAE_DSL_FIXTURES",
        "../shared/fixtures/sinkhorn",
        "Sinkhorn fixtures",
    )
}

pub fn data() -> Option<PathBuf> {
    shared_dir("SAE_DSL_DATA", "../shared/data", "MNIST data")
}

/// A fresh empty temporary directory.
pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sae-dsl-test-{tag}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Two-sample Kolmogorov-Smirnov statistic.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            i += 1;
        } else {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// The two-sample KS critical value at level 0.001 for sample sizes n and m.
pub fn ks_critical(n: usize, m: usize) -> f64 {
    1.95 * ((n + m) as f64 / (n * m) as f64).sqrt()
}

/// Decodes a PNG and checks that it is a picture: at least `min_side` pixels on each side and
/// content that varies (no byte value covers 99.5% of it, so not one flat colour). Returns (width, height).
pub fn assert_picture(path: &std::path::Path, min_side: u32) -> (u32, u32) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = png::Decoder::new(std::io::BufReader::new(f))
        .read_info()
        .unwrap_or_else(|e| panic!("{} is not a PNG: {e}", path.display()));
    let mut buf = vec![0; r.output_buffer_size()];
    let frame = r
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let data = &buf[..frame.buffer_size()];
    let (w, h) = (r.info().width, r.info().height);
    assert!(
        w >= min_side && h >= min_side,
        "{}: {w}x{h}",
        path.display()
    );
    let mut counts = [0usize; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let commonest = counts.iter().max().copied().unwrap_or(0) as f64 / data.len().max(1) as f64;
    assert!(
        commonest < 0.995,
        "{}: {:.1}% of its bytes are one value",
        path.display(),
        100.0 * commonest
    );
    (w, h)
}

/// A command's standard error with the renderer's frame and line wrapping undone, to search in.
pub fn flat_stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `python3` command with the set-up's torch package on PYTHONPATH (the parent of LIBTORCH),
/// and after it `SAE_DSL_PEERS` (a folder of extra packages, e.g. `pip install --target DIR
/// tensorboard`) when set; None, with a visible message, when there is no Python 3.
pub fn python_torch(what: &str) -> Option<std::process::Command> {
    let python = ["python3", "python"].into_iter().find(|p| {
        std::process::Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: no Python 3 on PATH, so {what} cannot run"
        );
        return None;
    };
    let mut cmd = std::process::Command::new(python);
    cmd.arg("-W").arg("ignore");
    let mut paths: Vec<PathBuf> = std::env::var_os("LIBTORCH")
        .and_then(|l| std::path::Path::new(&l).parent().map(|p| p.to_path_buf()))
        .into_iter()
        .collect();
    paths.extend(std::env::var_os("SAE_DSL_PEERS").map(PathBuf::from));
    if let Ok(joined) = std::env::join_paths(paths) {
        cmd.env("PYTHONPATH", joined);
    }
    Some(cmd)
}

/// Runs the `sae-dsl` binary of this build with `args` (offline), capturing its output.
pub fn sae(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sae-dsl"))
        .args(args)
        .env("SAE_DSL_OFFLINE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run sae-dsl")
}

/// Trains the model file `model` into `out` on the CPU without evaluation, quietly (with
/// `--data-dir` when given); panics with the error when the run fails.
pub fn train_quiet(model: &std::path::Path, out: &std::path::Path, data: Option<&std::path::Path>) {
    let (m, o) = (model.to_str().expect("utf8"), out.to_str().expect("utf8"));
    let mut args = vec![
        "run",
        m,
        "--out",
        o,
        "--device",
        "cpu",
        "--no-eval",
        "--quiet",
    ];
    if let Some(d) = data {
        args.extend(["--data-dir", d.to_str().expect("utf8")]);
    }
    let done = sae(&args);
    assert!(done.status.success(), "{}", flat_stderr(&done));
}
