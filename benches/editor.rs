//! The language server's responsiveness (issue 17): `cargo bench --bench editor`.
//!
//! A generated model file of about 1,000 lines (nets, priors, constants, comments and the model
//! clauses) is checked the way `sae-dsl lsp` checks a document on every change (parse, load the
//! imports, check, diagnostics converted to the protocol's form), then asked for a hover, a
//! completion and its formatting. Target: the check under 50 ms. Prints the medians and writes
//! bench-out/editor.json.

use std::fmt::Write as _;
use std::time::Instant;

use lsp_types::{Position, Url};
use sae_dsl_lang::tools::lsp::Document;

/// About `lines` lines of model: nets of five lines with comments, priors, constants.
fn generated(lines: usize) -> String {
    let mut s = String::from("import \"std/nets\"\nimport \"std/priors\"\n\n");
    let mut i: usize = 0;
    while s.lines().count() + 14 < lines {
        let _ = writeln!(s, "# Block {i}: a small body with a skip of nothing.\nlet width{i} = {}\nnet body{i}(d, w = width{i}) {{\n  linear(w) relu      # hidden\n  linear(d)\n}}\n", 8 + i % 5);
        let _ = writeln!(s, "prior ring{i}(k: int = 4, radius: real = 1) on R^2 {{\n  c ~ categorical(k)\n  angle = 2 * pi * c / k\n  z ~ normal([radius * cos(angle), radius * sin(angle)], 0.1)\n  return z\n}}\n");
        i += 1;
    }
    let last = i.saturating_sub(1);
    let _ = writeln!(s, "data rings(n = 256)\nlatent R^2 ~ ring{last}()\nencoder {{\n  body{last}(2)\n}}\ngenerator {{\n  body0(2)\n  mlp(2)\n}}\npenalty 10 * sinkhorn(epsilon = 0.1)\ntrain {{\n  batch 64\n  epochs 1\n}}");
    s
}

fn median_ms(mut f: impl FnMut(), runs: usize) -> f64 {
    f(); // warm-up
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let text = generated(1000);
    let lines = text.lines().count();
    let uri = Url::from_file_path(std::env::temp_dir().join("bench-editor.sae")).expect("uri");
    let doc = Document::new(uri.clone(), text.clone());
    let diags = doc.diagnostics();
    assert!(
        diags
            .iter()
            .all(|d| d.severity != Some(lsp_types::DiagnosticSeverity::ERROR)),
        "the generated model must check: {diags:?}"
    );
    let check = median_ms(
        || {
            let d = Document::new(uri.clone(), text.clone());
            std::hint::black_box(d.diagnostics());
        },
        30,
    );
    let last_line = (lines - 1) as u32;
    let hover = median_ms(
        || {
            std::hint::black_box(doc.hover(Position::new(3, 6)));
        },
        30,
    );
    let completion = median_ms(
        || {
            std::hint::black_box(doc.completion(Position::new(last_line - 5, 2)));
        },
        30,
    );
    let format = median_ms(
        || {
            std::hint::black_box(doc.format());
        },
        30,
    );
    println!(
        "editor bench: a generated model of {lines} lines ({} bytes)",
        text.len()
    );
    println!(
        "  check on change (parse, imports, check, diagnostics)  {check:8.2} ms   target < 50 ms"
    );
    println!("  hover                                                   {hover:8.3} ms");
    println!("  completion                                              {completion:8.3} ms");
    println!("  formatting                                              {format:8.2} ms");
    let out = serde_json::json!({
        "lines": lines, "check_ms": check, "hover_ms": hover, "completion_ms": completion, "format_ms": format,
    });
    let _ = std::fs::create_dir_all("bench-out");
    let _ = std::fs::write("bench-out/editor.json", out.to_string());
    assert!(
        check < 50.0,
        "the check of {lines} lines took {check:.1} ms (target 50 ms)"
    );
}
