//! No panic, whatever the input (issue 20's first class), through the real binary: a diagnostic
//! on a very long line, a very long candidate list, a file that is not UTF-8, a byte-order mark,
//! output into a closed pipe, and a prior whose samples are not finite.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sae-dsl");

const MODEL: &str = "data rings(n = 256)\nlatent R^2 ~ normal()\nencoder { linear(32) relu linear(2) }\n\
                     generator { linear(32) relu linear(2) }\npenalty 1 * sinkhorn(epsilon = 0.1)\n";

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sae-dsl-inputs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SAE_DSL_OFFLINE", "1")
        .output()
        .expect("run sae-dsl")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Rendered text with the renderer's line wrapping and frame undone, to search in.
fn flat(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `sae-dsl run MODEL --out OUT --device cpu --no-eval EXTRA...`, to completion.
fn train(model: &Path, out: &Path, extra: &[&str]) -> Output {
    let (m, o) = (model.to_str().expect("utf8"), out.to_str().expect("utf8"));
    let mut args = vec!["run", m, "--out", o, "--device", "cpu", "--no-eval"];
    args.extend_from_slice(extra);
    run(&args)
}

fn check(path: &Path) -> Output {
    run(&[
        "check",
        path.to_str().expect("utf8 path"),
        "--color",
        "false",
    ])
}

#[test]
fn a_diagnostic_on_a_very_long_line_shows_a_window_of_it() {
    let dir = temp("long");
    let filler = " ".repeat(150_000); // the error sits past column 150,000
    let src = MODEL.replace(
        "encoder { linear(32) relu linear(2) }",
        &format!("encoder {{ linear(32) {filler} reluu linear(2) }}"),
    );
    let path = dir.join("long.sae");
    std::fs::write(&path, src).expect("write");
    let out = check(&path);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{}", &err[..err.len().min(2000)]);
    assert!(
        err.contains("unknown layer or net `reluu`"),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(err.contains("…"), "the cut is marked: {err}");
    assert!(err.len() < 5_000, "{} bytes of output", err.len());
}

#[test]
fn a_long_list_of_candidates_is_cut_to_the_closest() {
    let dir = temp("candidates");
    let mut src = String::new();
    for i in 0..5_000 {
        src.push_str(&format!("net block{i}() {{ relu }}\n"));
    }
    src.push_str(&MODEL.replace(
        "relu linear(2) }\ngenerator",
        "blokc7 linear(2) }\ngenerator",
    ));
    let path = dir.join("many.sae");
    std::fs::write(&path, src).expect("write");
    let out = check(&path);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("more"), "{err}");
    assert!(err.len() < 5_000, "{} bytes of output:\n{err}", err.len());
}

#[test]
fn a_file_that_is_not_utf8_is_located() {
    let dir = temp("latin1");
    let path = dir.join("latin1.sae");
    let mut bytes = b"data rings(n = 256)\n# caf".to_vec();
    bytes.push(0xe9); // Latin-1 e-acute
    bytes.extend_from_slice(b"\n");
    std::fs::write(&path, bytes).expect("write");
    let out = check(&path);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        flat(&err)
            .contains("is not UTF-8 text: byte 0xe9 at line 2, column 6 (byte 25 of the file)"),
        "{err}"
    );
    assert!(flat(&err).contains("save it as UTF-8"), "{err}");
    assert!(!err.contains("check the path"), "{err}");
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let dir = temp("bom");
    let path = dir.join("bom.sae");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(MODEL.as_bytes());
    std::fs::write(&path, bytes).expect("write");
    let out = check(&path);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = temp("pipe");
    let path = dir.join("m.sae");
    std::fs::write(&path, MODEL).expect("write");
    let mut child = Command::new(BIN)
        .args(["graph", path.to_str().expect("utf8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Close the reading end before the child writes (it takes milliseconds to start).
    drop(child.stdout.take());
    let status = child.wait().expect("wait");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(status.code(), Some(101), "a panic's exit code: {err}");
}

#[test]
fn a_prior_with_samples_that_are_not_finite_is_drawn_and_reported() {
    let dir = temp("inf");
    let path = dir.join("blowup.sae");
    std::fs::write(
        &path,
        "prior blowup() on R^2 {\n  x ~ normal(0, 1, dim = 2)\n  return exp(exp(exp(x)))\n}\n",
    )
    .expect("write");
    let out_dir = dir.join("out");
    let out = run(&[
        "prior",
        path.to_str().expect("utf8"),
        "blowup",
        "-n",
        "400",
        "--out",
        out_dir.to_str().expect("utf8"),
        "--device",
        "cpu",
    ]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("samples of blowup() are not finite"), "{err}");
    let png = std::fs::read(out_dir.join("blowup.png")).expect("the picture is written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
}

#[test]
fn a_prior_that_draws_non_finite_values_is_named_with_its_statement() {
    let dir = temp("prior-nan");
    let path = dir.join("blowup.sae");
    std::fs::write(
        &path,
        "prior blowup() on R^2 {\n  x ~ normal(0, 1, dim = 2)\n  y = exp(exp(exp(x)))\n  return y\n}\n\
         data rings(n = 256)\nlatent R^2 ~ blowup()\nencoder { linear(16) relu linear(2) }\n\
         generator { linear(16) relu linear(2) }\npenalty 1 * sinkhorn(epsilon = 0.1, iterations = 5)\n\
         train { batch 64 epochs 1 }\n",
    )
    .expect("write");
    let out = train(&path, &dir.join("run"), &["--quiet"]);
    let err = flat(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the prior samples became inf at epoch 1"),
        "{err}"
    );
    assert!(err.contains("the prior `blowup()` of `z`"), "{err}");
    assert!(
        err.contains("the statement that binds `y`"),
        "the statement is named: {err}"
    );
    assert!(
        !err.contains("Sinkhorn penalty"),
        "not blamed on Sinkhorn: {err}"
    );
}

/// Trains the small rings model for one epoch into `dir/run`; returns the run directory.
fn trained_run(dir: &Path) -> PathBuf {
    let path = dir.join("m.sae");
    std::fs::write(&path, format!("{MODEL}train {{ batch 64 epochs 1 }}\n")).expect("write");
    let run_dir = dir.join("run");
    let out = train(&path, &run_dir, &["--quiet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    run_dir
}

/// Cuts a file to half its length.
fn truncate(path: &Path) {
    let bytes = std::fs::read(path).expect("read");
    std::fs::write(path, &bytes[..bytes.len() / 2]).expect("truncate");
}

#[test]
fn truncated_state_and_checkpoint_files_are_refused_by_name() {
    let dir = temp("truncated");
    let run_dir = trained_run(&dir);
    let d = run_dir.to_str().expect("utf8");
    truncate(&run_dir.join("resume.safetensors"));
    let out = run(&[
        "resume",
        d,
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--quiet",
        "--no-eval",
    ]);
    let err = flat(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("resume.safetensors is damaged") && err.contains("(truncated?)"),
        "{err}"
    );
    truncate(&run_dir.join("checkpoint.safetensors"));
    let samples = dir.join("s.npy");
    let out = run(&[
        "sample",
        d,
        "-n",
        "4",
        "--out",
        samples.to_str().expect("utf8"),
        "--device",
        "cpu",
    ]);
    let err = flat(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("checkpoint.safetensors"), "{err}");
}

/// Writes a small MNIST-format data set (train and test, `n` images of 28x28 with `fill`
/// pixels) into `dir/mnist`.
fn idx_set(dir: &Path, n: u32, fill: u8) {
    use std::io::Write;
    let gz = |path: PathBuf, bytes: Vec<u8>| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&bytes).expect("gzip");
        std::fs::write(path, e.finish().expect("gzip")).expect("write");
    };
    let m = dir.join("mnist");
    std::fs::create_dir_all(&m).expect("dir");
    for prefix in ["train", "t10k"] {
        let mut img = vec![];
        for x in [2051u32, n, 28, 28] {
            img.extend_from_slice(&x.to_be_bytes());
        }
        img.extend((0..n as usize * 784).map(|i| fill.wrapping_add((i % 97) as u8)));
        gz(m.join(format!("{prefix}-images-idx3-ubyte.gz")), img);
        let mut lab = 2049u32.to_be_bytes().to_vec();
        lab.extend_from_slice(&n.to_be_bytes());
        lab.extend((0..n).map(|i| (i % 10) as u8));
        gz(m.join(format!("{prefix}-labels-idx1-ubyte.gz")), lab);
    }
}

/// A small model of 28 x 28 images from `data_clause`, trained one epoch in batches of `batch`.
fn idx_model(data_clause: &str, batch: i64) -> String {
    format!(
        "data {data_clause}\nlatent R^2 ~ normal()\nencoder {{ flatten linear(16) relu linear(2) }}\n\
         generator {{ linear(784) sigmoid reshape(1, 28, 28) }}\npenalty 1 * sinkhorn(epsilon = 0.1, iterations = 5)\n\
         train {{ batch {batch} epochs 1 }}\n"
    )
}

#[test]
fn resuming_on_changed_data_is_refused_unless_forced() {
    let dir = temp("changed-data");
    let data = dir.join("data");
    idx_set(&data, 64, 0);
    let path = dir.join("m.sae");
    std::fs::write(&path, idx_model("mnist()", 32)).expect("write");
    let run_dir = dir.join("run");
    let (d, dd) = (
        run_dir.to_str().expect("utf8"),
        data.to_str().expect("utf8"),
    );
    let out = train(&path, &run_dir, &["--quiet", "--data-dir", dd]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    idx_set(&data, 64, 100); // other pixels, same shapes
    let mut args = vec![
        "resume",
        d,
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--quiet",
        "--no-eval",
    ];
    args.extend(["--data-dir", dd]);
    let out = run(&args);
    let err = flat(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("its training data changed since the run started"),
        "{err}"
    );
    assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
    args.push("--force");
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_limit_or_batch_beyond_the_data_on_disk_is_said() {
    let dir = temp("beyond");
    let data = dir.join("data");
    idx_set(&data, 64, 0);
    let dd = data.to_str().expect("utf8");
    for (name, src, want) in [
        (
            "limit",
            idx_model("mnist(limit = 100)", 32),
            "warning: limit 100 is more than the 64 images",
        ),
        (
            "batch",
            idx_model("mnist()", 128),
            "warning: batch 128 is larger than the 64 training examples",
        ),
    ] {
        let path = dir.join(format!("{name}.sae"));
        std::fs::write(&path, src).expect("write");
        let out_dir = dir.join(format!("run-{name}"));
        let out = train(&path, &out_dir, &["--data-dir", dd]);
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}

/// `limit` cuts the test set too (the IDX sets) or is applied before the held-out split (arrays):
/// both are said.
#[test]
fn a_limit_that_cuts_the_test_set_is_said() {
    let dir = temp("limit-test");
    let data = dir.join("data");
    idx_set(&data, 64, 0);
    let dd = data.to_str().expect("utf8");
    let path = dir.join("m.sae");
    std::fs::write(&path, idx_model("mnist(limit = 32)", 16)).expect("write");
    let out = train(&path, &dir.join("run"), &["--data-dir", dd]);
    let err = flat(&text(&out.stderr));
    assert!(out.status.success(), "{err}");
    let want = "note: limit 32 also applies to the test set: 32 of the 64 test images";
    assert_eq!(err.matches(want).count(), 1, "{err}");
}

/// Float images in 0..255 stop the run with the reason and the fix; images slightly outside
/// [0, 1] are warned about once (the training and the test split read the same array); a `limit`
/// applied before the held-out split says how it divides.
#[test]
fn float_images_out_of_range_are_stopped_or_said_once_and_a_limit_before_the_split_is_said() {
    use ndarray_npy::WriteNpyExt;
    let dir = temp("float255");
    let model = "data arrays(\"imgs.npy\", channels = 1, size = 8, limit = 20)\nlatent R^2 ~ normal()\n\
                 encoder { flatten linear(8) relu linear(2) }\ngenerator { linear(64) reshape(1, 8, 8) }\n\
                 penalty 1 * sinkhorn(epsilon = 0.1, iterations = 5)\ntrain { batch 8 epochs 1 }\n";
    let path = dir.join("m.sae");
    std::fs::write(&path, model).expect("write");
    for (top, stops) in [(255.0, true), (1.2, false)] {
        let imgs = ndarray::Array4::<f64>::from_shape_fn((40, 1, 8, 8), |(i, _, r, c)| {
            ((i * 7 + r * 8 + c) % 256) as f64 / 255.0 * top
        });
        imgs.write_npy(std::fs::File::create(dir.join("imgs.npy")).expect("file"))
            .expect("npy");
        let out = train(&path, &dir.join(format!("run-{top}")), &[]);
        let err = flat(&text(&out.stderr));
        if stops {
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(
                err.contains("holds float images with values up to 255"),
                "{err}"
            );
            assert!(
                err.contains("divide them by 255, or store them as uint8"),
                "{err}"
            );
            continue;
        }
        assert!(out.status.success(), "{err}");
        assert_eq!(
            err.matches("float images span [0, 1.2]").count(),
            1,
            "{err}"
        );
        assert_eq!(
            err.matches("note: limit 20 is applied before the test split")
                .count(),
            1,
            "{err}"
        );
        assert!(
            err.contains("18 of these examples train and 2 test"),
            "{err}"
        );
    }
}
