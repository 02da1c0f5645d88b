//! Snapshots of `sae-dsl graph` for every file in models/ and stdlib/.

use sae_dsl::{compile_file, graph_text};

#[test]
fn models_compile_to_stable_graphs() {
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/models"),
        "*.sae",
        |path| {
            let c = compile_file(path).expect("readable");
            assert!(
                c.diags.is_empty(),
                "{}:\n{}",
                path.display(),
                c.sources.render(&c.diags, false, 100)
            );
            insta::assert_snapshot!(graph_text(&c).expect("a model"));
        }
    );
}

#[test]
fn stdlib_compiles_to_stable_graphs() {
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib"),
        "*.sae",
        |path| {
            let c = compile_file(path).expect("readable");
            assert!(
                c.diags.is_empty(),
                "{}:\n{}",
                path.display(),
                c.sources.render(&c.diags, false, 100)
            );
            assert!(c.library);
            insta::assert_snapshot!(graph_text(&c).expect("a library"));
        }
    );
}
