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

/// `text` and `other` (the same file printed or formatted) compile beside `path`'s folder, so that
/// relative imports resolve the same way, to the same diagnostics, IR and prior programs.
fn assert_same_compilation(name: &str, dir: Option<&Path>, text: &str, other: &str, what: &str) {
    let name = name.to_string();
    let a = compile_source(&name, text, dir);
    let b = compile_source(&name, other, dir);
    let codes =
        |c: &sae_dsl::Compilation| c.diags.iter().map(|d| d.code.as_str()).collect::<Vec<_>>();
    assert_eq!(
        codes(&a),
        codes(&b),
        "{name}: other diagnostics after {what}:\n{other}"
    );
    assert_eq!(
        a.model.as_ref().map(ToString::to_string),
        b.model.as_ref().map(ToString::to_string),
        "{name}: another IR after {what}:\n{other}"
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
        "{name}: other prior programs after {what}"
    );
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
        assert_same_compilation(&name, path.parent(), &text, &printed, "printing");
        checked += 1;
    }
    assert!(checked > 50, "only {checked} files parsed");
}

/// Words of the grammar's internals that a syntax error must never show a user.
/// Whether `text` holds `word` not as part of a longer name (`identity` is a user's layer,
/// `ident` a grammar rule).
fn contains_word(text: &str, word: &str) -> bool {
    let name_char = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !(word.starts_with(name_char) && before.is_some_and(name_char))
            && !(word.ends_with(name_char) && after.is_some_and(name_char))
    })
}

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
                            !contains_word(&shown, j),
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

/// The comments of a file, in order (outside strings).
fn comment_texts(text: &str) -> Vec<String> {
    let mut out = vec![];
    for line in text.lines() {
        let mut in_string = false;
        for (i, ch) in line.char_indices() {
            match ch {
                '"' => in_string = !in_string,
                '#' if !in_string => {
                    out.push(line[i..].trim_end().to_string());
                    break;
                }
                '/' if !in_string && line[i..].starts_with("//") => {
                    out.push(line[i..].trim_end().to_string());
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

/// `sae-dsl fmt` on every file that parses: the same IR and diagnostics, every comment kept in
/// order, and formatting twice changes nothing.
#[test]
fn formatting_keeps_the_ir_and_every_comment_and_is_idempotent() {
    let mut checked = 0;
    for path in corpus() {
        let name = path.display().to_string();
        let Ok(text) = String::from_utf8(std::fs::read(&path).expect("readable fixture")) else {
            continue; // not UTF-8 on purpose
        };
        let Ok(formatted) = syntax::format_source(0, &text) else {
            assert!(
                syntax::parse(0, &text).is_err(),
                "{name}: parses but does not format"
            );
            continue;
        };
        let again = syntax::format_source(0, &formatted).unwrap_or_else(|d| {
            panic!("{name}: the formatted text does not parse: {d:?}\n{formatted}")
        });
        assert_eq!(again, formatted, "{name}: formatting is not idempotent");
        assert_eq!(
            comment_texts(&formatted),
            comment_texts(&text),
            "{name}: comments changed"
        );
        assert_same_compilation(&name, path.parent(), &text, &formatted, "formatting");
        checked += 1;
    }
    assert!(checked > 50, "only {checked} files formatted");
}

/// Whitespace runs between tokens (outside strings and comments, and not the line break that
/// ends a comment): where a perturbation may put other whitespace or a comment of its own.
fn gaps(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = vec![];
    let (mut i, mut in_string, mut in_comment) = (0, false, false);
    while i < bytes.len() {
        let c = bytes[i];
        if in_comment {
            in_comment = c != b'\n';
            i += 1;
            continue;
        }
        match c {
            b'"' => in_string = !in_string,
            b'#' if !in_string => in_comment = true,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => in_comment = true,
            b' ' | b'\t' | b'\n' if !in_string => {
                let start = i;
                while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n') {
                    i += 1;
                }
                // Never the first character after a comment (its line break).
                if start == 0 || bytes[start - 1] != b'\n' || !line_has_comment(text, start - 1) {
                    out.push((start, i));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Whether the line ending at `newline` holds a comment.
fn line_has_comment(text: &str, newline: usize) -> bool {
    let line_start = text[..newline].rfind('\n').map_or(0, |n| n + 1);
    !comment_texts(&text[line_start..newline]).is_empty()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
    /// Generated models: a shipped or fixture model whose whitespace between tokens is replaced
    /// at random (spaces, tabs, line breaks, blank lines, comments of its own) still formats to
    /// a file with the same IR, keeps every comment, and is stable under a second formatting.
    #[test]
    fn formatting_generated_layouts(file in 0usize..1000, choices in proptest::collection::vec(0u8..8, 400)) {
        let files: Vec<PathBuf> = corpus()
            .into_iter()
            .filter(|p| !p.display().to_string().contains("/err/"))
            .collect();
        let path = &files[file % files.len()];
        let Ok(text) = String::from_utf8(std::fs::read(path).expect("readable fixture")) else {
            return Ok(());
        };
        let mut out = String::new();
        let mut last = 0;
        for (k, (a, b)) in gaps(&text).into_iter().enumerate() {
            out.push_str(&text[last..a]);
            let ws = &text[a..b];
            out.push_str(match choices[k % choices.len()] {
                0 => " ",
                1 => "\t  ",
                2 => "\n",
                3 => "\n\n\n",
                4 => "  # a comment of the generator\n",
                5 if !ws.contains('\n') => "   ",
                _ => ws,
            });
            last = b;
        }
        out.push_str(&text[last..]);
        let name = path.display().to_string();
        let Ok(formatted) = syntax::format_source(0, &out) else {
            proptest::prop_assert!(syntax::parse(0, &out).is_err(), "{}: parses but does not format", name);
            return Ok(());
        };
        let again = syntax::format_source(0, &formatted).expect("formatted text parses");
        proptest::prop_assert_eq!(&again, &formatted, "{}: not idempotent", name);
        proptest::prop_assert_eq!(comment_texts(&formatted), comment_texts(&out), "{}: comments changed; input:\n{}\noutput:\n{}", name, out, formatted);
        assert_same_compilation(&name, path.parent(), &text, &formatted, "perturbing and formatting");
    }
}
