//! Small cases next to the checker, as gleam's `assert_module_error!`: a model's source in, its
//! rendered diagnostics (or its IR) out, snapshotted under `check/snapshots/`.

use crate::driver::{compile_source, graph_text};

/// The clauses of a complete model around `encoder`'s body.
fn model_with_encoder(net: &str, encoder: &str) -> String {
    format!(
        "{net}\ndata rings(n = 256)\nlatent R^2 ~ normal()\nencoder {{ {encoder} }}\n\
         generator {{ linear(32) relu linear(2) }}\npenalty 1 * sinkhorn(epsilon = 0.1)\n\
         train {{ batch 64 epochs 1 }}\n"
    )
}

/// Every diagnostic of `src`, rendered as `sae-dsl check` prints it without colour.
fn diagnostics(src: &str) -> String {
    let c = compile_source("case.sae", src, None);
    c.sources.render(&c.diags, false, 100)
}

/// Snapshots the diagnostics of a source that must not compile.
macro_rules! assert_model_error {
    ($name:literal, $src:expr) => {{
        let src: String = $src;
        let c = compile_source("case.sae", &src, None);
        assert!(c.has_errors(), "{} compiled without an error", $name);
        insta::assert_snapshot!($name, diagnostics(&src));
    }};
}

/// Snapshots the graph of a source that must compile without a diagnostic.
macro_rules! assert_model_graph {
    ($name:literal, $src:expr) => {{
        let src: String = $src;
        let c = compile_source("case.sae", &src, None);
        assert!(c.diags.is_empty(), "{}:\n{}", $name, diagnostics(&src));
        insta::assert_snapshot!($name, graph_text(&c).unwrap_or_default());
    }};
}

#[test]
fn exact_integer_division_gives_a_size() {
    assert_model_graph!(
        "exact_integer_division",
        model_with_encoder(
            "net half(h = 64) { linear(h / 2) relu linear(2) }",
            "half()"
        )
    );
}

#[test]
fn inexact_division_is_not_a_size() {
    assert_model_error!(
        "inexact_division",
        model_with_encoder("", "linear(7 / 2) relu linear(2)")
    );
}

#[test]
fn division_by_zero_in_a_net_argument() {
    assert_model_error!(
        "division_by_zero_net",
        model_with_encoder("net n(h = 0) { linear(8 / h) relu linear(2) }", "n()")
    );
}

#[test]
fn unknown_named_argument_suggests_the_parameter() {
    assert_model_error!(
        "unknown_named_argument",
        model_with_encoder("", "linear(32, bais = false) relu linear(2)")
    );
}

#[test]
fn integer_powers_are_integers_in_prior_programs_too() {
    assert_model_graph!(
        "prior_integer_power",
        "prior pick() on R^2 {\n  c ~ categorical(2 ^ 2)\n  x ~ normal(c, 1, dim = 2)\n  return x\n}\n\
         data rings(n = 256)\nlatent R^2 ~ pick()\nencoder { linear(32) relu linear(2) }\n\
         generator { linear(32) relu linear(2) }\npenalty 1 * sinkhorn(epsilon = 0.1)\n"
            .to_string()
    );
}

#[test]
fn division_by_zero_in_a_prior_program() {
    assert_model_error!(
        "division_by_zero_prior",
        "prior p() on R^2 {\n  x ~ normal(0, 1 / (2 - 2), dim = 2)\n  return x\n}\n\
         data rings(n = 256)\nlatent R^2 ~ p()\nencoder { linear(32) relu linear(2) }\n\
         generator { linear(32) relu linear(2) }\npenalty 1 * sinkhorn(epsilon = 0.1)\n"
            .to_string()
    );
}

/// Every layer of the catalogue has an IR form and a shape rule: each compiles, on the image or
/// after `flatten`, in an encoder (component layers are covered by tests/ui/ok).
#[test]
fn every_catalogue_layer_compiles() {
    for e in crate::catalogue::reference()
        .iter()
        .filter(|e| e.kind == "layer")
    {
        let call = match e.name {
            "select" | "place" | "crop" | "residual" | "concat" | "repeat" => continue,
            "reshape" | "unflatten" => format!("{}(784)", e.name),
            // A required first parameter (a size, a kernel, a group count): 2 fits every context.
            _ if e
                .signature
                .split_once('(')
                .and_then(|(_, rest)| rest.split([',', ')']).next())
                .is_some_and(|first| !first.is_empty() && !first.contains('=')) =>
            {
                format!("{}(2)", e.name)
            }
            _ => e.name.to_string(),
        };
        let contexts = [
            format!("{call} flatten linear(2)"),
            format!("flatten {call} flatten linear(2)"),
            format!("flatten {call}"), // a Gaussian head ends the encoder
        ];
        let compiles = contexts.iter().any(|encoder| {
            let src = format!(
                "data mnist()\nlatent R^2 ~ normal()\nencoder {{ {encoder} }}\n\
                 generator {{ linear(784) sigmoid reshape(1, 28, 28) }}\npenalty sinkhorn()\n"
            );
            !compile_source("case.sae", &src, None).has_errors()
        });
        assert!(compiles, "layer `{}` compiles in no context", e.name);
    }
}

/// Names from other tools suggest ours by meaning (`mse` is `squared_l2`), in their context.
#[test]
fn names_from_other_tools_suggest_ours() {
    let base = model_with_encoder("", "linear(32) relu linear(2)");
    let cases = [
        (
            base.replace("penalty 1 *", "cost mse\npenalty 1 *"),
            "`mse` is called `squared_l2` here",
        ),
        (
            base.replace("batch 64", "batch 64 optimizer adamw(lr = 0.001)"),
            "`adamw` is called `adam` here (AdamW with `weight_decay > 0`)",
        ),
        (
            base.replace(
                "linear(32) relu linear(2) }\ngenerator",
                "dense(32) relu linear(2) }\ngenerator",
            ),
            "`dense` is called `linear` here",
        ),
        (
            base.replace("R^2 ~ normal()", "R^2 ~ gaussian()"),
            "`gaussian` is called `normal` here",
        ),
        (
            base.replace("sinkhorn(epsilon = 0.1)", "wasserstein()"),
            "`wasserstein` is called `sinkhorn` here",
        ),
        (base.replace("R^2 ~", "R2 ~"), "write `R^2`"),
    ];
    for (src, want) in cases {
        let text = diagnostics(&src);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(want), "want {want:?} in:\n{text}");
    }
}
