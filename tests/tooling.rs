//! Language tooling through the real `sae-dsl` binary: the formatter (`fmt`), the language server
//! (`lsp`, a scripted JSON-RPC session) and the graph pictures (`graph --dot/--svg`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

const FRONT: &str = env!("CARGO_BIN_EXE_sae-dsl");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn front(args: &[&str]) -> Output {
    Command::new(FRONT).args(args).output().expect("sae-dsl runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The files we ship are formatted: what CI's `fmt --check` guarantees.
#[test]
fn shipped_models_and_stdlib_are_formatted() {
    let out = front(&["fmt", "--check", &format!("{ROOT}/models"), &format!("{ROOT}/stdlib")]);
    assert!(
        out.status.success(),
        "run `sae-dsl fmt models stdlib`:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn fmt_rewrites_checks_and_prints() {
    let dir = common::tempdir("fmt");
    let file = dir.join("m.sae");
    let messy = "let  gamma=10 # weight\ndata rings( n=256 )\nlatent R^2~normal()\nencoder{linear(32)->relu->linear(2)}\ngenerator {linear(32) relu linear(2)}\npenalty gamma*sinkhorn(epsilon=0.1)\ntrain{batch 64 epochs 1}\n";
    std::fs::write(&file, messy).expect("write");
    let f = file.to_str().expect("utf-8 path");

    // --check: a diff on stdout, exit 1, the file untouched.
    let out = front(&["fmt", "--check", f]);
    assert_eq!(out.status.code(), Some(1));
    let diff = text(&out.stdout);
    assert!(diff.contains("-let  gamma=10 # weight"), "{diff}");
    assert!(diff.contains("+let gamma = 10  # weight"), "{diff}");
    assert!(text(&out.stderr).contains("1 of 1 file would be reformatted"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), messy);

    // --stdout prints, changes nothing.
    let out = front(&["fmt", "--stdout", f]);
    assert!(out.status.success());
    let expected = "let gamma = 10  # weight\ndata rings(n = 256)\nlatent R^2 ~ normal()\nencoder { linear(32) relu linear(2) }\ngenerator { linear(32) relu linear(2) }\npenalty gamma * sinkhorn(epsilon = 0.1)\ntrain { batch 64 epochs 1 }\n";
    assert_eq!(text(&out.stdout), expected);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), messy);

    // In place, then --check passes.
    let out = front(&["fmt", f]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), expected);
    assert!(front(&["fmt", "--check", f]).status.success());
}

/// What a user sees when a file cannot be formatted: the syntax error, and the file untouched
/// while the other files are still formatted.
#[test]
fn fmt_reports_syntax_errors_and_leaves_the_file_alone() {
    let dir = common::tempdir("fmt-err");
    let bad = dir.join("bad.sae");
    let good = dir.join("good.sae");
    std::fs::write(&bad, "latent R^2 ~ normal(\n").expect("write");
    std::fs::write(&good, "cost   squared_l2\n").expect("write");
    let out = front(&["fmt", bad.to_str().expect("path"), good.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::flat_stderr(&out);
    println!("{err}");
    assert!(err.contains("sae::parse::syntax"), "{err}");
    assert!(err.contains("bad.sae"), "{err}");
    assert!(err.contains("1 file not formatted because of the errors above"), "{err}");
    assert_eq!(std::fs::read_to_string(&bad).expect("read"), "latent R^2 ~ normal(\n");
    assert_eq!(std::fs::read_to_string(&good).expect("read"), "cost squared_l2\n");

    let out = front(&["fmt", dir.join("missing.sae").to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read model file"), "{}", text(&out.stderr));
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = front(&["fmt", empty.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no .sae files under"), "{}", text(&out.stderr));
    assert!(!Path::new(&dir).join(".bad.sae.fmt").exists());
}

/// `graph --dot`: every layer's node (activations folded into the layer before), the data, each
/// latent component in the code's cluster, priors, penalties and the cost, with the edges between
/// them; rendered by Graphviz when it is installed.
#[test]
fn graph_dot_draws_the_model() {
    let model = format!("{ROOT}/models/what_where_mnist.sae");
    let out = front(&["graph", "--dot", &model]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dot = text(&out.stdout);
    insta::assert_snapshot!("what_where_dot", dot);
    for needle in [
        "subgraph cluster_code",
        "latent_what [shape=ellipse",
        "latent_where [shape=ellipse",
        "subgraph cluster_encoder_where",
        "subgraph cluster_encoder_what",
        "subgraph cluster_generator",
        "data -> encoder_where_1;",
        "encoder_where_10 -> latent_where;",
        "latent_where -> encoder_what_1 [style=dotted",
        "latent_what -> generator_1;",
        "conv2d(1 -> 16, kernel 4, stride 2, padding 1) + relu\\n[16, 32, 32], 272 params",
        "generator_9 -> cost",
        "prior_what -> penalty_0",
        "latent_where -> penalty_1",
    ] {
        assert!(dot.contains(needle), "missing {needle:?} in\n{dot}");
    }
    match Command::new("dot").arg("-V").output() {
        Ok(_) => {
            let out = front(&["graph", "--svg", &model]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            let svg = text(&out.stdout);
            assert!(svg.contains("<svg") && svg.contains("what: S^9"), "{svg}");
        }
        Err(_) => eprintln!("SKIPPED: Graphviz `dot` not installed, --svg not rendered"),
    }
}

/// What a user sees from `--svg` without Graphviz, and from a model with errors.
#[test]
fn graph_svg_without_graphviz_explains() {
    let model = format!("{ROOT}/models/dirichlet_mnist.sae");
    let out = Command::new(FRONT)
        .args(["graph", "--svg", &model])
        .env("SAE_DSL_DOT", "/nonexistent/dot")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    println!("{err}");
    assert!(err.contains("cannot run Graphviz's `/nonexistent/dot`"), "{err}");
    assert!(err.contains("use `--dot`"), "{err}");
    let bad = format!("{ROOT}/tests/ui/err/latent_shape.sae");
    let out = front(&["graph", "--dot", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).is_empty());
    assert!(text(&out.stderr).contains("sae::check::latent_shape"));
}
