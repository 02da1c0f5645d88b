//! Snapshots of `sae-dsl graph` for every file in models/ and stdlib/.

use std::path::Path;

use sae_dsl::{compile_file, graph_text};

/// Compiles a file that must give no diagnostic; returns its graph text.
fn graph(path: &Path, library: bool) -> String {
    let c = compile_file(path).expect("readable");
    assert!(
        c.diags.is_empty(),
        "{}:\n{}",
        path.display(),
        c.sources.render(&c.diags, false, 100)
    );
    assert_eq!(c.library, library, "{}", path.display());
    graph_text(&c).expect("a graph")
}

#[test]
fn models_compile_to_stable_graphs() {
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/models"),
        "*.sae",
        |path| {
            insta::assert_snapshot!(graph(path, false));
        }
    );
}

#[test]
fn stdlib_compiles_to_stable_graphs() {
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib"),
        "*.sae",
        |path| {
            insta::assert_snapshot!(graph(path, true));
        }
    );
}

/// The training settings beyond the defaults, and constants, as `graph` prints them.
#[test]
fn training_settings_show_in_the_graph() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/ok/training_settings.sae");
    insta::assert_snapshot!(graph(&p, false));
}

#[test]
fn constants_show_in_the_graph() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/ok/constants.sae");
    insta::assert_snapshot!(graph(&p, false));
}
