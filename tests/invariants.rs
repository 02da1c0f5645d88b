//! Invariants over every model file we ship or test with (models/, stdlib/, tests/ui/*): the front
//! end never panics, every span of the syntax tree and of every diagnostic lies inside its file
//! and on character boundaries, a file printed back from its syntax tree compiles to the same
//! IR (and prints the same again), and the IR survives the JSON round trip that `config.json`
//! relies on with the same readable form.

use std::path::{Path, PathBuf};

use sae_dsl::diag::SourceMap;
use sae_dsl::{compile_file, compile_source, ir, syntax};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The `.sae` files of a folder, recursively, sorted.
fn sae_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sae") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut files = vec![];
    for dir in ["models", "stdlib", "tests/ui"] {
        files.extend(sae_files(&root.join(dir)));
    }
    assert!(
        files.len() > 50,
        "the corpus is unexpectedly small: {}",
        files.len()
    );
    files
}

/// Every `Span { file: F, start: S, end: E }` in a Debug rendering.
fn spans_in(debug: &str) -> Vec<(usize, usize, usize)> {
    let mut out = vec![];
    let mut rest = debug;
    while let Some(i) = rest.find("Span { file: ") {
        rest = &rest[i + "Span { file: ".len()..];
        let nums: Vec<usize> = rest
            .split('}')
            .next()
            .unwrap_or("")
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        if let [file, start, end] = nums[..] {
            out.push((file, start, end));
        }
    }
    out
}

fn assert_span_ok(sources: &SourceMap, (file, start, end): (usize, usize, usize), what: &str) {
    assert!(file < sources.len(), "{what}: span in unknown file {file}");
    let text = sources.text(file);
    assert!(
        start <= end && end <= text.len(),
        "{what}: span {start}..{end} outside {} ({} bytes)",
        sources.name(file),
        text.len()
    );
    assert!(
        text.is_char_boundary(start) && text.is_char_boundary(end),
        "{what}: span {start}..{end} splits a character of {}",
        sources.name(file)
    );
}

#[test]
fn syntax_tree_spans_lie_inside_their_file() {
    for path in corpus() {
        let Ok(text) = String::from_utf8(std::fs::read(&path).expect("readable fixture")) else {
            continue; // a fixture that is not UTF-8 on purpose
        };
        let Ok(module) = syntax::parse(0, &text) else {
            continue; // syntax errors are checked through their diagnostics below
        };
        let mut sources = SourceMap::default();
        sources.add(path.display().to_string(), text.as_str());
        let spans = spans_in(&format!("{module:?}"));
        let empty = module.imports.is_empty()
            && module.nets.is_empty()
            && module.priors.is_empty()
            && module.clauses.is_empty();
        assert!(
            empty || !spans.is_empty(),
            "{}: no spans found",
            path.display()
        );
        for s in spans {
            assert_span_ok(&sources, s, &path.display().to_string());
        }
    }
}

#[test]
fn the_front_end_never_panics_and_labels_lie_inside_their_file() {
    for path in corpus() {
        let name = path.display().to_string();
        let c = std::panic::catch_unwind(|| compile_file(&path))
            .unwrap_or_else(|_| panic!("{name}: the front end panicked"));
        let c = match c {
            Ok(c) => c,
            Err(e) => {
                // Only a file that is not UTF-8 on purpose may fail to load.
                assert!(e.to_string().contains("is not UTF-8 text"), "{name}: {e}");
                continue;
            }
        };
        for d in &c.diags {
            for (span, _) in &d.labels {
                assert_span_ok(&c.sources, (span.file, span.start, span.end), &name);
            }
        }
        // Rendering must not panic either.
        let _ = c.sources.render(&c.diags, false, 100);
        let ok = name.contains("/ok/") || name.contains("/models/") || name.contains("/stdlib/");
        if ok {
            assert!(
                !c.has_errors(),
                "{name}: an error in a file that must compile"
            );
        }
    }
}

#[test]
fn the_ir_survives_its_json_round_trip() {
    let mut models = 0;
    for path in corpus() {
        let Ok(c) = compile_file(&path) else {
            continue; // not UTF-8 on purpose
        };
        let Some(model) = c.model.filter(|_| !c.diags.iter().any(|d| d.is_error())) else {
            continue;
        };
        let json = serde_json::to_string(&model).expect("the IR serialises");
        let back: ir::Model = serde_json::from_str(&json).expect("the IR deserialises");
        assert_eq!(
            serde_json::to_string(&back).expect("again"),
            json,
            "{}: JSON round trip",
            path.display()
        );
        assert_eq!(
            back.to_string(),
            model.to_string(),
            "{}: the readable form after the round trip",
            path.display()
        );
        models += 1;
    }
    assert!(models > 20, "only {models} models compiled");
}

#[test]
fn parse_print_parse_gives_the_same_ir() {
    let mut checked = 0;
    for path in corpus() {
        let name = path.display().to_string();
        let Ok(text) = String::from_utf8(std::fs::read(&path).expect("readable fixture")) else {
            continue; // not UTF-8 on purpose
        };
        let Ok(module) = syntax::parse(0, &text) else {
            continue;
        };
        let printed = module.to_string();
        let again = syntax::parse(0, &printed).unwrap_or_else(|d| {
            panic!("{name}: the printed text does not parse: {d:?}\n{printed}")
        });
        assert_eq!(again.to_string(), printed, "{name}: printing is not stable");
        // Compiled beside the original, so that relative imports resolve the same way.
        let dir = path.parent();
        let a = compile_source(&name, &text, dir);
        let b = compile_source(&name, &printed, dir);
        let codes =
            |c: &sae_dsl::Compilation| c.diags.iter().map(|d| d.code.as_str()).collect::<Vec<_>>();
        assert_eq!(
            codes(&a),
            codes(&b),
            "{name}: other diagnostics after printing:\n{printed}"
        );
        assert_eq!(
            a.model.as_ref().map(ToString::to_string),
            b.model.as_ref().map(ToString::to_string),
            "{name}: another IR after printing:\n{printed}"
        );
        // A library's IR: its prior programs instantiated with their defaults.
        let programs = |c: &sae_dsl::Compilation| {
            c.library_priors
                .iter()
                .map(|(p, space)| format!("{p} on {space}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            programs(&a),
            programs(&b),
            "{name}: other prior programs after printing"
        );
        checked += 1;
    }
    assert!(checked > 50, "only {checked} files parsed");
}

/// Words of the grammar's internals that a syntax error must never show a user.
const JARGON: &[&str] = &[
    "an index `[",
    "an operator",
    "Rule::",
    "EOI",
    "primary",
    "ident",
    "param_list",
    "arg_list",
    "string_inner",
    "space_pow",
    "kw_",
    "named_arg",
];

/// Every file cut short at every token boundary, and with one token dropped: the syntax error of
/// each expected-token set the grammar can reach from real files is rendered, and none names the
/// grammar's internals or lists an index or an operator where something else is missing.
#[test]
fn syntax_errors_speak_the_users_language() {
    let mut seen = std::collections::BTreeSet::new();
    let mut checked = 0;
    for path in corpus() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let bounds: Vec<usize> = text
            .char_indices()
            .filter(|(i, c)| c.is_whitespace() || "(){}[],=~".contains(*c) || *i == 0)
            .map(|(i, _)| i)
            .collect();
        for (k, &cut) in bounds.iter().enumerate() {
            let next = bounds.get(k + 1).copied().unwrap_or(text.len());
            for variant in [
                text[..cut].to_string(),
                format!("{}{}", &text[..cut], &text[next..]),
            ] {
                let Err(diags) = syntax::parse(0, &variant) else {
                    continue;
                };
                checked += 1;
                for d in diags {
                    let shown = format!(
                        "{} {}",
                        d.message,
                        d.labels
                            .iter()
                            .map(|l| l.1.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    for j in JARGON {
                        assert!(
                            !shown.contains(j),
                            "{}: cut at {cut}: `{shown}` shows `{j}`",
                            path.display()
                        );
                    }
                    seen.insert(d.message.clone());
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} broken variants");
    eprintln!(
        "{checked} broken variants, {} distinct messages",
        seen.len()
    );
}
