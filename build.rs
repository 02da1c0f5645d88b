//! Links libtorch so that CUDA is visible at run time and the binary finds libtorch without
//! LD_LIBRARY_PATH (tch-rs issues 907 and 964): an rpath to libtorch's lib directory and
//! `--no-as-needed -ltorch`, which keeps libtorch_cuda loaded even though no symbol of it is
//! referenced directly.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    // Exported by torch-sys (links = "tch") as `cargo:libtorch_lib=...`.
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-link-search=native={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
}
