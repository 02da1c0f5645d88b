//! The layout's rules (ARCHITECTURE.md), checked on the sources: the language crate never uses
//! libtorch, the front-end binary never loads it, no module is re-included with `#[path]`, the
//! modules of each layer form no cycle, and a function over 100 lines says why next to it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable source folder") {
            let p = e.expect("directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).expect("readable source file")
}

/// Source text without `//` comments (doc comments included), so that prose never counts.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_language_crate_never_uses_libtorch() {
    let manifest = read(&Path::new(ROOT).join("lang/Cargo.toml"));
    // The keys of every dependency table ([dependencies], [dev-dependencies], ...).
    let mut section = "";
    let mut deps = vec![];
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section.contains("dependencies") && !line.starts_with('#') {
            let key = line.split('=').next().unwrap_or("").trim();
            if key.contains("tch") || key.contains("torch") {
                deps.push(key);
            }
        }
    }
    assert!(deps.is_empty(), "lang/Cargo.toml names libtorch: {deps:?}");
    for f in rust_files(&Path::new(ROOT).join("lang/src")) {
        let code = code_of(&read(&f));
        for needle in ["tch::", "torch_sys", "extern crate tch", "use tch"] {
            assert!(
                !code.contains(needle),
                "{} uses `{needle}`: the language crate must build without libtorch",
                f.display()
            );
        }
    }
}

#[test]
fn the_front_end_binary_does_not_need_libtorch() {
    let bin = env!("CARGO_BIN_EXE_sae-dsl");
    let code = code_of(&read(&Path::new(ROOT).join("src/bin/sae-dsl.rs")));
    assert!(
        !code.contains("sae_dsl::"),
        "src/bin/sae-dsl.rs must use the language crate only"
    );
    // The dynamic section lists the shared libraries the loader maps at start.
    match std::process::Command::new("readelf")
        .args(["-d", bin])
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let needed: Vec<&str> = text.lines().filter(|l| l.contains("(NEEDED)")).collect();
            assert!(
                !needed.is_empty(),
                "readelf listed no NEEDED entries: {text}"
            );
            assert!(
                !needed
                    .iter()
                    .any(|l| l.contains("torch") || l.contains("c10")),
                "the front end needs libtorch: {needed:?}"
            );
        }
        _ => eprintln!("SKIPPED: readelf is not available; the source check above still ran"),
    }
}

#[test]
fn no_module_is_re_included_with_path() {
    for dir in ["src", "lang/src"] {
        for f in rust_files(&Path::new(ROOT).join(dir)) {
            assert!(
                !code_of(&read(&f)).contains("#[path"),
                "{} re-includes a module with #[path]; use the crate boundary instead",
                f.display()
            );
        }
    }
}

/// The module a file belongs to at `depth` levels under `src` (`runtime/ot.rs` is `runtime` at

/// A diagnostic's message is written only in `lang/src/diag/messages.rs`: `Diag::error` and
/// `Diag::warning` are private to `diag` (the compiler enforces that), and no other file builds a
/// `Diag` from its fields or changes a message after construction.
#[test]
fn diagnostics_are_worded_in_one_file() {
    for dir in ["src", "lang/src"] {
        for f in rust_files(&Path::new(ROOT).join(dir)) {
            if f.parent().is_some_and(|p| p.ends_with("lang/src/diag")) {
                continue;
            }
            // A function returning a Diag is fine; a struct literal is not.
            let code = code_of(&read(&f)).replace("-> Diag {", "");
            for pattern in ["Diag {", ".message =", "Diag::error(", "Diag::warning("] {
                assert!(
                    !code.contains(pattern),
                    "{} has `{pattern}`: word diagnostics in lang/src/diag/messages.rs",
                    f.display()
                );
            }
        }
    }
}
/// depth 1 and `runtime::ot` at depth 2).
fn module_of(src: &Path, file: &Path, depth: usize) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.truncate(depth);
    parts.join("::")
}

/// Edges `module -> module` from the `crate::a::b` paths of every file under `src` whose module
/// starts with `within` (empty: all), at `depth` path segments.
fn graph(src: &Path, within: &str, depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in rust_files(src) {
        let from = module_of(src, &f, depth);
        if from.is_empty() || !from.starts_with(within) || from.starts_with("bin") {
            continue;
        }
        edges.entry(from.clone()).or_default();
        // Unit tests may use any stage (a checker test compiles through the driver).
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        for path in crate_paths(&code_of(&read(&f))) {
            let to = path
                .iter()
                .take(depth)
                .cloned()
                .collect::<Vec<_>>()
                .join("::");
            if to.starts_with(within) && to != from && path.len() >= depth {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// Every path named after `crate::`, with `use` groups expanded:
/// `crate::runtime::{model::Compiled, ot}` gives `runtime::model::Compiled` and `runtime::ot`.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let segments = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|p| {
                p.trim()
                    .chars()
                    .take_while(|c| ident(*c))
                    .collect::<String>()
            })
            .filter(|p| !p.is_empty() && p != "self")
            .collect()
    };
    let mut out = vec![];
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let end = rest
            .find(|c: char| !(ident(c) || c == ':'))
            .unwrap_or(rest.len());
        let prefix = segments(&rest[..end]);
        if rest[end..].starts_with('{') {
            let close = rest[end..].find('}').map_or(rest.len(), |j| end + j);
            for item in rest[end + 1..close].split(',') {
                let mut p = prefix.clone();
                p.extend(segments(item));
                out.push(p);
            }
        } else {
            out.push(prefix);
        }
    }
    out
}

/// A cycle of the graph, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = path.iter().position(|p| p == n).unwrap_or(0);
                let mut cycle = path[at..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if let Some(c) = visit(n, edges, &mut state, &mut vec![]) {
            return Some(c);
        }
    }
    None
}

#[test]
fn use_groups_are_expanded() {
    let paths =
        crate_paths("use crate::runtime::{model::Compiled, ot};\nuse crate::{check, ir::Space};");
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        [
            "runtime::model::Compiled",
            "runtime::ot",
            "check",
            "ir::Space"
        ]
    );
}

#[test]
fn the_stages_form_no_cycle() {
    let root = Path::new(ROOT);
    let layers = [
        ("lang/src", "", 1),
        ("src", "", 1),
        ("src", "runtime", 2),
        ("src", "train", 2),
        ("src", "eval", 2),
        ("src", "data", 2),
    ];
    for (dir, within, depth) in layers {
        let g = graph(&root.join(dir), within, depth);
        assert!(g.len() > 1, "{dir}/{within}: found no modules");
        if let Some(c) = find_cycle(&g) {
            panic!(
                "{dir}: modules depend on each other in a cycle: {}",
                c.join(" -> ")
            );
        }
    }
    // The driver above training and evaluation is the only place that knows both.
    let g = graph(&root.join("src"), "", 1);
    assert!(!g["train"].contains("eval"), "train must not use eval");
    assert!(!g["eval"].contains("train"), "eval must not use train");
    assert!(g["pipeline"].contains("train") && g["pipeline"].contains("eval"));
}

/// Functions over 100 lines still to be split, as `file:function`. The test fails when one of
/// them becomes short (take it off the list) or when a new long function appears without a
/// `// long:` reason (a dispatch with one arm per variant is such a reason).
const NOT_YET_SPLIT: &[&str] = &[];

/// Functions longer than `limit` lines that have no `// long:` reason in the lines above, as
/// `file:function`.
fn long_functions(limit: usize) -> Vec<String> {
    let mut out = vec![];
    for dir in ["src", "lang/src"] {
        for f in rust_files(&Path::new(ROOT).join(dir)) {
            let text = read(&f);
            let rel = f.strip_prefix(ROOT).unwrap_or(&f).display().to_string();
            let lines: Vec<&str> = text.lines().collect();
            let mut i = 0;
            while i < lines.len() {
                let t = lines[i].trim_start();
                let name = t
                    .split("fn ")
                    .nth(1)
                    .and_then(|r| r.split(['(', '<']).next())
                    .filter(|_| {
                        !t.starts_with("//") && (t.starts_with("fn ") || t.contains(" fn "))
                    })
                    .filter(|n| {
                        !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_')
                    });
                let Some(name) = name else {
                    i += 1;
                    continue;
                };
                let indent = lines[i].len() - t.len();
                if lines[i].trim_end().ends_with(';') {
                    i += 1;
                    continue;
                }
                // The body ends at the first later line with the same indentation that closes it.
                let end = (i + 1..lines.len()).find(|&j| {
                    let l = lines[j];
                    l.len() > indent
                        && l[..indent].trim().is_empty()
                        && l[indent..].starts_with('}')
                });
                let Some(end) = end else { break };
                let n = end - i + 1;
                let reason = lines[i.saturating_sub(6)..i]
                    .iter()
                    .any(|l| l.contains("// long:"));
                if n > limit && !reason {
                    out.push(format!("{rel}:{name}"));
                }
                i = end + 1;
            }
        }
    }
    out.sort();
    out
}

#[test]
fn long_functions_say_why() {
    let long = long_functions(100);
    let new: Vec<&String> = long
        .iter()
        .filter(|f| !NOT_YET_SPLIT.contains(&f.as_str()))
        .collect();
    assert!(
        new.is_empty(),
        "functions over 100 lines without a `// long:` reason above them:\n{new:?}"
    );
    let done: Vec<&&str> = NOT_YET_SPLIT
        .iter()
        .filter(|f| !long.contains(&f.to_string()))
        .collect();
    assert!(
        done.is_empty(),
        "no longer over 100 lines (or gone): take them off NOT_YET_SPLIT: {done:?}"
    );
}
