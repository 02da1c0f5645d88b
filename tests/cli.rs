//! The `sae-dsl` front end: `check` and `graph` must run without loading libtorch (issue 8: under
//! 100 ms, no CUDA initialisation), while every other command reaches the torch-linked binary.

mod common;

use std::process::Command;

const FRONT: &str = env!("CARGO_BIN_EXE_sae-dsl");

#[test]
fn the_front_end_does_not_link_libtorch() {
    let Ok(out) = Command::new("readelf").args(["-d", FRONT]).output() else {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: readelf not found");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NEEDED"), "readelf output: {text}");
    for lib in ["libtorch", "libc10", "cuda"] {
        assert!(!text.contains(lib), "sae-dsl links {lib}:\n{text}");
    }
}

#[test]
fn check_and_graph_run_in_the_front_end_and_training_commands_are_handed_over() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/models/dirichlet_mnist.sae");
    let out = Command::new(FRONT)
        .args(["check", model])
        .output()
        .expect("runs");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains(": ok"));
    let out = Command::new(FRONT)
        .args(["graph", model])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("total     170,193 parameters"));
    let bad = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/err/latent_shape.sae");
    let out = Command::new(FRONT)
        .args(["check", bad])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sae::check::latent_shape"));
    // A training command goes to sae-dsl-torch: its own errors come back.
    let out = Command::new(FRONT)
        .args(["eval", "/nonexistent/run", "--device", "cpu"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sae::eval::run"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The messages of the run-directory commands' argument errors.
#[test]
fn run_directory_commands_explain_bad_arguments() {
    let root = std::env::temp_dir().join(format!("sae-dsl-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("dir");
    let model = root.join("m.sae");
    std::fs::write(&model, "import \"std/nets\"\ndata rings(n = 256)\nlatent R^2 ~ normal()\nencoder { mlp(2, hidden = 8) }\ngenerator { mlp(2, hidden = 8) }\npenalty sinkhorn(iterations = 5)\ntrain { batch 64 epochs 1 }\n").expect("model");
    let run = root.join("run");
    let (m, r) = (model.to_str().expect("utf8"), run.to_str().expect("utf8"));
    let out = Command::new(FRONT)
        .args([
            "run",
            m,
            "--out",
            r,
            "--quiet",
            "--no-eval",
            "--device",
            "cpu",
        ])
        .env("SAE_DSL_OFFLINE", "1")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = |args: &[&str]| {
        let o = Command::new(FRONT).args(args).output().expect("runs");
        assert!(!o.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(
        err(&["sample", r, "-n", "0", "--out", "x.npy", "--device", "cpu"])
            .contains("-n must be at least 1")
    );
    let e = err(&[
        "sample",
        r,
        "-n",
        "4",
        "--out",
        root.join("x.txt").to_str().expect("utf8"),
        "--device",
        "cpu",
    ]);
    assert!(e.contains("write samples as .npy, .npz, .png"), "{e}");
    let e = err(&[
        "interpolate",
        r,
        "--from",
        "0",
        "--to",
        "99999",
        "--device",
        "cpu",
    ]);
    assert!(
        e.contains("the test set has 256 examples (0 to 255)"),
        "{e}"
    );
    let e = err(&["geodesic", r, "--from", "3", "--to", "3", "--device", "cpu"]);
    assert!(e.contains("pick two different test examples"), "{e}");
    let e = err(&["run", m, "--resume"]);
    assert!(e.contains("--resume needs --out DIR"), "{e}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn prior_command_draws_a_program_and_explains_mistakes() {
    let root = std::env::temp_dir().join(format!("sae-dsl-prior-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let stdlib = concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib/priors.sae");
    let out_dir = root.to_str().expect("utf8");
    let o = Command::new(FRONT)
        .args([
            "prior",
            stdlib,
            "ring_mixture",
            "--args",
            "k = 5, radius = 1",
        ])
        .args(["-n", "500", "--out", out_dir, "--device", "cpu"])
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("ring_mixture(k = 5, radius = 1, scale = 0.2)"),
        "{text}"
    );
    let npy = sae_dsl::data::npy::read(&root.join("ring_mixture.npy")).expect("npy");
    assert_eq!(npy.shape, vec![500, 2]);
    // Points lie near the unit circle (radius 1, std 0.2).
    let mean_r: f64 = npy
        .data
        .chunks(2)
        .map(|p| (p[0] * p[0] + p[1] * p[1]).sqrt())
        .sum::<f64>()
        / 500.0;
    assert!((mean_r - 1.0).abs() < 0.1, "mean radius {mean_r}");
    common::assert_picture(&root.join("ring_mixture.png"), 100);
    // A simplex prior is drawn as a polygon projection, a 3-D one as pairwise scatters.
    for name in ["symmetric_dirichlet", "two_caps"] {
        let o = Command::new(FRONT)
            .args([
                "prior", stdlib, name, "-n", "300", "--out", out_dir, "--device", "cpu",
            ])
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        common::assert_picture(&root.join(format!("{name}.png")), 100);
    }
    let fails = |args: &[&str]| {
        let o = Command::new(FRONT)
            .args(["prior", stdlib])
            .args(args)
            .args(["--out", out_dir, "--device", "cpu"])
            .output()
            .expect("runs");
        assert!(!o.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(fails(&["ring_mixtur"]).contains("did you mean `ring_mixture`"));
    let e = fails(&["ring_mixture", "--args", "k = 0"]);
    assert!(
        e.contains("`k` of `categorical` must be an integer from 1"),
        "{e}"
    );
    // The user's call is the primary place; the library line it reaches comes after it.
    let (call, lib) = (e.find("<prior call>"), e.find("stdlib/priors.sae"));
    assert!(call.is_some() && lib.is_some() && call < lib, "{e}");
    let e = fails(&["ring_mixture", "--args", "radius = "]);
    assert!(e.contains("sae::parse::syntax"), "{e}");
}

/// `sae-dsl encode`: the test codes and labels as .npz and .npy, equal to the run's own
/// encoding of its test set; an unknown extension is a clear error.
#[test]
fn encode_writes_the_test_codes_with_their_labels() {
    let root = common::tempdir("encode");
    let m = root.join("m.sae");
    std::fs::write(
        &m,
        "data rings(n = 512, k = 3)\nlatent R^2 ~ normal()\nencoder { linear(16) relu linear(2) }\n\
         generator { linear(16) relu linear(2) }\npenalty mmd()\ntrain { batch 64 epochs 1 }\n",
    )
    .expect("model");
    let run = root.join("run");
    common::train_quiet(&m, &run, None);
    let rs = run.to_str().expect("utf8");
    let npz = root.join("codes.npz");
    let out = common::sae(&[
        "encode",
        rs,
        "--out",
        npz.to_str().expect("utf8"),
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    let mut z = sae_dsl::data::npy::NpFile::open(&npz).expect("opens");
    let (_, codes) = z.numbers("codes", "codes").expect("codes");
    let labels = z.integers("labels", "labels").expect("labels");
    let loaded = sae_dsl::eval::open_run(&run, tch::Device::Cpu).expect("opens");
    let test = sae_dsl::data::load(
        &loaded.model.data,
        "test",
        None,
        loaded.seed(),
        tch::Device::Cpu,
    )
    .expect("test set");
    let want = sae_dsl::eval::encode_all(&loaded.net, &test.x());
    assert_eq!(codes.shape(), vec![want.size()[0] as usize, 2]);
    let sae_dsl::data::npy::Numbers::F32(codes) = codes else {
        panic!("float32 codes")
    };
    let want: Vec<f32> = Vec::<f32>::try_from(want.flatten(0, -1)).expect("codes");
    assert_eq!(codes.iter().copied().collect::<Vec<f32>>(), want);
    let want_labels: Vec<i64> =
        Vec::<i64>::try_from(test.labels.as_ref().expect("ring labels")).expect("labels");
    assert_eq!(labels, want_labels);
    assert!(labels.iter().all(|l| (0..3).contains(l)));
    // .npy: the codes, and the labels beside them.
    let npy = root.join("codes.npy");
    let out = common::sae(&[
        "encode",
        rs,
        "--out",
        npy.to_str().expect("utf8"),
        "--split",
        "train",
    ]);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    assert!(root.join("codes.labels.npy").is_file());
    let out = common::sae(&[
        "encode",
        rs,
        "--out",
        root.join("codes.txt").to_str().expect("utf8"),
    ]);
    assert!(!out.status.success());
    let e = common::flat_stderr(&out);
    assert!(
        e.contains("write codes as .npz (codes and labels) or .npy"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(root);
}

/// `sae-dsl prior --dims`: the chosen coordinates are drawn; coordinates outside the space are
/// refused with the range.
#[test]
fn prior_dims_choose_the_coordinates() {
    let stdlib = concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib/priors.sae");
    let root = common::tempdir("prior-dims");
    let out = root.to_str().expect("utf8");
    let ok = common::sae(&[
        "prior", stdlib, "gaussian", "-n", "300", "--dims", "3,7", "--out", out, "--device", "cpu",
    ]);
    assert!(ok.status.success(), "{}", common::flat_stderr(&ok));
    assert!(root.join("gaussian.png").is_file());
    let bad = common::sae(&[
        "prior", stdlib, "gaussian", "--dims", "2,9", "--out", out, "--device", "cpu",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let e = common::flat_stderr(&bad);
    assert!(e.contains("--dims: coordinate 9 is outside 1..8"), "{e}");
    let _ = std::fs::remove_dir_all(root);
}
