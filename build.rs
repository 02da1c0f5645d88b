//! Links libtorch so that CUDA is visible at run time and the binary finds libtorch without
//! LD_LIBRARY_PATH (tch-rs issues 907 and 964): an rpath to libtorch's lib directory and
//! `--no-as-needed -ltorch`, which keeps libtorch_cuda loaded even though no symbol of it is
//! referenced directly.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    // Exported by torch-sys (links = "tch") as `cargo:libtorch_lib=...`.
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // The rpath links nothing, so it can apply to every target (the library's unit tests too).
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-link-search=native={lib}");
        // Forcing libtorch (and with it libtorch_cuda) into every target that runs libtorch code,
        // but not into the `sae-dsl` front end: `check` and `graph` must start without loading
        // libtorch, whose static initialisers take about 350 ms.
        for target in ["-bin=sae-dsl-torch", "-tests", "-benches", "-examples"] {
            println!("cargo:rustc-link-arg{target}=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg{target}=-ltorch");
        }
    }
}
