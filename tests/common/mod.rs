//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A folder from an environment variable, else a path relative to the checkout when it exists;
/// None (and a visible message) otherwise, so that the calling test can skip.
pub fn shared_dir(env: &str, rel: &str, what: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        if p.is_dir() {
            return Some(p);
        }
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    if p.is_dir() {
        return Some(p);
    }
    // Written to the process's stderr directly: libtest captures eprintln! of passing tests.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {what} not found (set {env} or provide {rel})"
    );
    None
}

pub fn fixtures() -> Option<PathBuf> {
    shared_dir(
        "SAE_DSL_FIXTURES",
        "../shared/fixtures/sinkhorn",
        "Sinkhorn fixtures",
    )
}

pub fn data() -> Option<PathBuf> {
    shared_dir("SAE_DSL_DATA", "../shared/data", "MNIST data")
}

/// A fresh empty temporary directory.
pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sae-dsl-test-{tag}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}
