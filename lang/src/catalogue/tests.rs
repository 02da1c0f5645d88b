//! The README's reference tables against the catalogue: every built-in layer, prior and penalty
//! is documented with exactly the parameters and defaults it has, and the tables name nothing
//! the catalogue lacks. A table that drifts from the code fails here.

use super::*;

/// The rows of the Markdown table that follows the line starting with `heading` in the README:
/// (names in the first cell, second cell).
fn table(readme: &str, heading: &str) -> Vec<(Vec<String>, String)> {
    let start = readme
        .lines()
        .position(|l| l.starts_with(heading))
        .unwrap_or_else(|| panic!("README has no line starting with {heading:?}"));
    readme
        .lines()
        .skip(start + 1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
            let names = ticked(cells[0]);
            (names, cells.get(1).copied().unwrap_or("").to_string())
        })
        .collect()
}

/// The `backticked` items of a cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A parameter cell that lists parameters only (`a`, `b = 1`, ...), as items; None when the
/// cell is prose (its parameters are described in words).
fn listed(cell: &str) -> Option<Vec<String>> {
    let items = ticked(cell);
    let bare: String = cell.replace(|c: char| c == ',' || c.is_whitespace(), "");
    let joined: String = items.iter().map(|i| format!("`{i}`")).collect();
    (bare == joined.replace(char::is_whitespace, "")).then_some(items)
}

/// How the README writes a parameter: `name` or `name = default`.
fn documented(p: &P) -> String {
    match p.default {
        REQ => p.name.to_string(),
        I(i) => format!("{} = {i}", p.name),
        R(r) => format!("{} = {}", p.name, ir::num(r)),
        B(b) => format!("{} = {b}", p.name),
        S(s) => format!("{} = \"{s}\"", p.name),
    }
}

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    std::fs::read_to_string(path).expect("README.md beside the workspace")
}

/// Checks one table against one catalogue table; `extra` names documented in the table but
/// checked elsewhere (component layers).
fn check_table(heading: &str, catalogue: &[Builtin], extra: &[Builtin]) {
    let rows = table(&readme(), heading);
    assert!(!rows.is_empty(), "{heading}: empty table");
    let mut seen = vec![];
    for (names, cell) in &rows {
        for name in names {
            let params = catalogue
                .iter()
                .chain(extra)
                .find(|b| b.name == name)
                .map(|b| b.params)
                .unwrap_or_else(|| {
                    panic!("{heading}: the README documents `{name}`, which the catalogue lacks")
                });
            seen.push(name.clone());
            let want: Vec<String> = params.iter().map(documented).collect();
            if let Some(got) = listed(cell) {
                assert_eq!(got, want, "{heading}: the README's parameters of `{name}`");
            } else {
                for w in &want {
                    assert!(
                        cell.contains(&format!("`{w}`")),
                        "{heading}: the README's row of `{name}` does not give `{w}`"
                    );
                }
            }
        }
    }
    for name in catalogue.iter().map(|b| b.name) {
        assert!(
            seen.iter().any(|s| s == name),
            "{heading}: `{name}` is in the catalogue but not in the README"
        );
    }
}

#[test]
fn layers_table_matches_the_catalogue() {
    check_table("Layers (", LAYERS, &[]);
}

#[test]
fn priors_table_matches_the_catalogue() {
    check_table("Priors (", PRIORS, &[]);
}

#[test]
fn penalties_table_matches_the_catalogue() {
    check_table("Penalties:", PENALTIES, &[]);
}

#[test]
fn a_drifted_row_is_caught() {
    // The checker of this file must fail on a wrong default: `linear(out, bias = false)`.
    let p = find(LAYERS, "linear").expect("linear").params;
    let got = listed("`out`, `bias = false`").expect("a list");
    let want: Vec<String> = p.iter().map(documented).collect();
    assert_ne!(got, want);
    assert_eq!(listed("sizes, e.g. `reshape(64, 7, 7)`"), None);
}

/// Data sets, transforms and optimisers are documented by their call form in the clause table:
/// each must appear there exactly as `sae-dsl` writes its signature.
#[test]
fn call_forms_in_the_clause_table_match_the_catalogue() {
    let text = readme();
    let rows = table(&text, "### Reference");
    let cell = |clause: &str| {
        rows.iter()
            .find(|(names, _)| names.first().is_some_and(|n| n.starts_with(clause)))
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("no `{clause}` row in the clause table"))
    };
    let data = cell("data");
    for &Builtin { name, params, .. } in DATASETS.iter().chain(TRANSFORMS) {
        // fashion_mnist shares mnist's parameters and is written `fashion_mnist(...)`.
        if name == "fashion_mnist" {
            assert!(data.contains("`fashion_mnist(...)`"));
            continue;
        }
        let form = signature(name, params);
        assert!(data.contains(&form), "the data row lacks `{form}`");
    }
    let train = cell("train");
    for p in TRAIN_SETTINGS {
        let form = format!(
            "`{} {}`",
            p.name,
            documented(p).rsplit(' ').next().unwrap_or("")
        );
        assert!(train.contains(&form), "the train row lacks {form}");
    }
    for (setting, table) in [
        ("optimizer", OPTIMIZERS),
        ("schedule", SCHEDULES),
        ("validation", VALIDATIONS),
    ] {
        for &Builtin { name, params, .. } in table {
            let form = signature(name, params);
            assert!(
                train.contains(&format!("`{setting} {form}`")),
                "the train row lacks `{setting} {form}`"
            );
        }
    }
}

#[test]
fn every_builtin_has_a_doc_line_and_a_unique_name_per_kind() {
    let all = reference();
    assert!(all.len() > 30, "{} built-ins", all.len());
    for e in &all {
        assert!(
            !e.doc.trim().is_empty(),
            "{} `{}` has no doc line",
            e.kind,
            e.name
        );
        assert!(e.signature.starts_with(e.name), "{e:?}");
        let same = all
            .iter()
            .filter(|o| o.kind == e.kind && o.name == e.name)
            .count();
        assert_eq!(same, 1, "{} `{}` is declared {same} times", e.kind, e.name);
    }
    let linear = all.iter().find(|e| e.name == "linear").expect("linear");
    assert_eq!(
        linear.signature,
        "linear(out, bias = true, init = \"model\")"
    );
}
