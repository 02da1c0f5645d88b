//! The `sae-dsl` front end: `check` and `graph` must run without loading libtorch (issue 8: under
//! 100 ms, no CUDA initialisation), while every other command reaches the torch-linked binary.

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
