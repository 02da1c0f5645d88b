//! `sae-dsl`: the front end. `check` and `graph` run here without loading libtorch (which takes
//! about 350 ms of static initialisation); every other command is handed to `sae-dsl-torch`, the
//! binary beside this one, by `exec` (same process id, so signals and locks behave the same).

use std::process::ExitCode;

use clap::Parser;
use sae_dsl_lang::cli::{run_front_end, Cli};

// Only the language crate: this binary must never link libtorch (tests/architecture.rs).
fn main() -> ExitCode {
    sae_dsl_lang::cli::quiet_broken_pipe();
    let cli = Cli::parse();
    if let Some(code) = run_front_end(&cli.command) {
        return code;
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("sae-dsl-torch")));
    match sibling {
        Some(path) if path.is_file() => {
            use std::os::unix::process::CommandExt;
            let err = std::process::Command::new(&path)
                .args(std::env::args_os().skip(1))
                .exec();
            eprintln!("error: cannot run {}: {err}", path.display());
            ExitCode::from(1)
        }
        _ => {
            eprintln!(
                "error: this command needs `sae-dsl-torch`, the libtorch half of sae-dsl, beside this binary; build it with `cargo build` (or run `cargo run -- ...`, which uses it directly)"
            );
            ExitCode::from(1)
        }
    }
}
