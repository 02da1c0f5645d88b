//! Unit tests of `--set`: the effective text and the errors.

use super::*;
use crate::driver::{compile_source, compile_with};

const BASE: &str = "let gamma = 10 # the weight\ndata rings(n = 256)\nlatent R^2 ~ normal()\n\
    encoder { linear(8) relu linear(2) }\ngenerator { linear(8) relu linear(2) }\n\
    penalty gamma * mmd()\n";

fn set(pairs: &[(&str, &str)]) -> Vec<Override> {
    pairs
        .iter()
        .map(|(n, v)| Override {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

/// The overridden compile and the compile of the effective text give the same model.
fn effective(text: &str, pairs: &[(&str, &str)]) -> String {
    let c = compile_with("m.sae", text, None, &set(pairs));
    assert!(
        !c.has_errors(),
        "{}",
        c.sources.render(&c.diags, false, 100)
    );
    let eff = c.effective.clone().expect("an effective text");
    let again = compile_source("m.sae", &eff, None);
    assert!(!again.has_errors(), "{eff}");
    let (a, b) = (c.model.expect("model"), again.model.expect("model"));
    assert_eq!(a.to_string(), b.to_string());
    eff
}

#[test]
fn constants_and_settings_are_substituted_in_place() {
    let t = format!("{BASE}train {{ epochs 3 optimizer adam(lr = 1e-3) }}\n");
    let e = effective(&t, &[("gamma", "2.5"), ("epochs", "7"), ("batch", "32")]);
    assert!(e.starts_with("let gamma = 2.5 # the weight\n"), "{e}");
    assert!(
        e.contains("train { epochs 7 optimizer adam(lr = 1e-3)  batch 32 }"),
        "{e}"
    );
    let e = effective(&t, &[("lr", "0.01"), ("weight_decay", "0.1")]);
    assert!(e.contains("adam(lr = 0.01, weight_decay = 0.1)"), "{e}");
    let e = effective(BASE, &[("lr", "0.01"), ("seed", "4")]);
    assert!(
        e.ends_with("penalty gamma * mmd()\ntrain {  optimizer adam(lr = 0.01)  seed 4 }\n"),
        "{e}"
    );
    let t = format!("{BASE}train {{ optimizer adam }}\n");
    let e = effective(&t, &[("beta1", "0.5")]);
    assert!(e.contains("optimizer adam(beta1 = 0.5)"), "{e}");
}

#[test]
fn unknown_and_repeated_names_are_errors_at_the_argument() {
    let c = compile_with(
        "m.sae",
        BASE,
        None,
        &set(&[("gama", "1"), ("gamma", "1"), ("gamma", "2")]),
    );
    let text = c.sources.render(&c.diags, false, 100);
    assert!(
        text.contains("unknown constant or training setting `gama`"),
        "{text}"
    );
    assert!(text.contains("did you mean `gamma`?"), "{text}");
    assert!(text.contains("given again here"), "{text}");
    let c = compile_with("m.sae", BASE, None, &set(&[("gamma", "-1")]));
    let text = c.sources.render(&c.diags, false, 100);
    assert!(
        text.contains("`gamma` is given here") && text.contains("gamma=-1"),
        "{text}"
    );
}
