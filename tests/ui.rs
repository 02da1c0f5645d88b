//! UI tests: every file in tests/ui/ok must check without a diagnostic; every file in
//! tests/ui/err must give at least one error, and its rendered diagnostics are snapshotted. A
//! fixture line `# --set NAME=VALUE` compiles it with that command-line override.

use std::collections::BTreeSet;
use std::path::Path;

use sae_dsl::overrides::Override;
use sae_dsl::{compile_file, compile_file_with, diag::Code};

/// The `--set` overrides a fixture asks for on lines `# --set NAME=VALUE`.
fn overrides(path: &Path) -> Vec<Override> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("# --set "))
        .filter_map(|o| o.trim().parse().ok())
        .collect()
}

fn render(path: &Path) -> (String, usize, Vec<String>) {
    let c = compile_file_with(path, &overrides(path)).expect("fixture is readable");
    let text = c.sources.render(&c.diags, false, 100);
    let errors = c.diags.iter().filter(|d| d.is_error()).count();
    (
        text,
        errors,
        c.diags
            .iter()
            .map(|d| d.code.as_str().to_string())
            .collect(),
    )
}

#[test]
fn ok_files_give_no_diagnostic() {
    insta::glob!("ui/ok/*.sae", |path| {
        let (text, _, _) = render(path);
        assert!(
            text.is_empty(),
            "{} gave diagnostics:\n{text}",
            path.display()
        );
    });
}

#[test]
fn err_files_give_errors() {
    insta::glob!("ui/err/*.sae", |path| {
        let (text, errors, _) = render(path);
        assert!(errors > 0, "{} gave no error:\n{text}", path.display());
        insta::assert_snapshot!(text);
    });
}

/// Model files of earlier versions (tests/compat: each file as it was written then) keep
/// compiling: warnings allowed (a renamed argument is read with a warning), errors never.
#[test]
fn files_of_earlier_versions_still_compile() {
    let mut n = 0;
    insta::glob!("compat/*.sae", |path| {
        let (text, errors, _) = render(path);
        assert_eq!(errors, 0, "{} no longer compiles:\n{text}", path.display());
        n += 1;
    });
    assert!(n >= 16, "only {n} files of earlier versions");
}

/// A diagnostic code without a fixture is a message no test has looked at.
#[test]
fn every_code_has_a_fixture() {
    let mut seen = BTreeSet::new();
    for sub in ["tests/ui/err", "tests/ui/warn"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(sub);
        for e in std::fs::read_dir(&dir).expect("fixture folder exists") {
            let p = e.expect("dir entry").path();
            if p.extension().is_some_and(|x| x == "sae") {
                seen.extend(render(&p).2);
            }
        }
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !seen.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a fixture in tests/ui/err or tests/ui/warn: {missing:?}"
    );
}

#[test]
fn warn_files_give_warnings_only() {
    insta::glob!("ui/warn/*.sae", |path| {
        let (text, errors, codes) = render(path);
        assert_eq!(errors, 0, "{} gave errors:\n{text}", path.display());
        assert!(!codes.is_empty(), "{} gave no warning", path.display());
        insta::assert_snapshot!(text);
    });
}

#[test]
fn unreadable_model_file_names_the_path() {
    let err = compile_file(Path::new("tests/ui/no_such_model.sae"))
        .err()
        .expect("an error");
    let text = format!("{:?}", miette::Report::new(err));
    assert!(
        text.contains("cannot read model file tests/ui/no_such_model.sae"),
        "{text}"
    );
    assert!(text.contains("sae::load::read"), "{text}");
}

/// One mistake gives one error: every fixture of tests/ui/err makes one mistake, except these,
/// which make as many as listed (each reported once, none a follow-on of another).
const SEVERAL_MISTAKES: &[(&str, usize)] = &[
    ("many_errors.sae", 5),
    ("missing_clause.sae", 2),
    ("unknown_net.sae", 2),
    ("composite_unknown_component.sae", 2),
    ("validation_fraction.sae", 5),
    ("validation_metric.sae", 3),
    ("call_every_mistake.sae", 7),
];

#[test]
fn one_mistake_gives_one_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/err");
    let mut wrong = vec![];
    for e in std::fs::read_dir(&dir).expect("fixture folder") {
        let p = e.expect("entry").path();
        if p.extension().is_none_or(|x| x != "sae") {
            continue;
        }
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let want = SEVERAL_MISTAKES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(1, |(_, k)| *k);
        let (text, errors, _) = render(&p);
        if errors != want {
            wrong.push(format!("{name}: {errors} errors, {want} mistakes\n{text}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
