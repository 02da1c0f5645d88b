//! No panic reachable from a model file: random text and random mutations of real model files
//! go through load, parse and check (proptest, bounded number of cases).

use proptest::prelude::*;
use sae_dsl::compile_source;

const MODELS: &[&str] = &[
    include_str!("../models/dirichlet_mnist.sae"),
    include_str!("../models/sphere_mnist.sae"),
    include_str!("../models/rings_2d.sae"),
    include_str!("ui/ok/all_layers.sae"),
    include_str!("ui/ok/nets_and_arithmetic.sae"),
];

const TOKENS: &[&str] = &[
    "data ",
    "latent ",
    "encoder ",
    "generator ",
    "cost ",
    "penalty ",
    "train ",
    "net ",
    "import ",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "~",
    "^",
    "*",
    "/",
    "+",
    "-",
    "->",
    "R",
    "S",
    "simplex",
    "linear",
    "conv2d",
    "reshape",
    "flatten",
    "softmax",
    "normal",
    "dirichlet",
    "sinkhorn",
    "mnist",
    "rings",
    "0",
    "1",
    "16",
    "-3",
    "1e300",
    "99999999999999999999",
    "0.5",
    "\"std/nets\"",
    "\"",
    "#",
    "\n",
    " ",
    "x",
    "d",
    "on",
    "batch",
    "epochs",
    "optimizer",
    "adam",
];

/// Checks and renders one input; no panic, and no input takes more than a time bound.
fn run(text: &str) {
    let t = std::time::Instant::now();
    let c = compile_source("fuzz.sae", text, None);
    // Rendering walks every span: it must not panic either.
    let _ = c.sources.render(&c.diags, false, 80);
    let _ = sae_dsl::graph_text(&c);
    let took = t.elapsed();
    assert!(
        took < std::time::Duration::from_secs(2),
        "an input of {} bytes took {took:?}",
        text.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(tokens in proptest::collection::vec(0..TOKENS.len(), 0..60)) {
        let text: String = tokens.iter().map(|&i| TOKENS[i]).collect();
        run(&text);
    }

    #[test]
    fn mutated_models_never_panic(which in 0..MODELS.len(), edits in proptest::collection::vec((0usize..4000, 0usize..12, 0..TOKENS.len()), 1..6)) {
        let mut text = MODELS[which].to_string();
        for (at, len, tok) in edits {
            let mut start = at % (text.len() + 1);
            while !text.is_char_boundary(start) { start -= 1; }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(start..end, TOKENS[tok]);
        }
        run(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        run(&text);
    }
}

/// The corpus: inputs that crashed or stressed the front end, kept as regression tests.
#[test]
fn corpus_inputs_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("tests/fuzz_corpus") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "sae") {
            run(&std::fs::read_to_string(&p).expect("corpus file"));
            n += 1;
        }
    }
    assert!(n >= 10, "corpus has {n} files");
}

/// Regression inputs found while building the checker.
#[test]
fn known_hard_inputs() {
    for text in [
        "",
        "latent R^99999999999999999999 ~ normal()",
        "latent S^9223372036854775807 ~ uniform_sphere()",
        "data rings(n = 1e400)",
        "net a(x = x) { linear(x) } data rings() latent R^2 ~ normal() encoder { a() } generator { a(2) } penalty sinkhorn()",
        "encoder { reshape(0, -1) }",
        "penalty -1 * sinkhorn()",
        "train { seed 1.5 batch \"x\" optimizer 3 }",
        &"(".repeat(100_000),
        &format!("data rings(n = {})", "-".repeat(10_000) + "1"),
    ] {
        run(text);
    }
}
