//! `sae-dsl`: the front end. `check` and `graph` run here without loading libtorch (which takes
//! about 350 ms of static initialisation); every other command is handed to `sae-dsl-torch`, the
//! binary beside this one, by `exec` (same process id, so signals and locks behave the same).

use std::process::ExitCode;

use clap::Parser;
use cli::{run_front_end, Cli};

// The front-end stages, compiled into this binary directly: it must not link the library crate,
// whose other modules pull in libtorch.
#[allow(dead_code)]
#[path = "check.rs"]
mod check;
#[allow(dead_code)]
#[path = "cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "diag.rs"]
mod diag;
#[allow(dead_code)]
#[path = "front.rs"]
mod front;
#[allow(dead_code)]
#[path = "ir.rs"]
mod ir;
#[allow(dead_code)]
#[path = "load.rs"]
mod load;
#[allow(dead_code)]
#[path = "prior.rs"]
mod prior;
#[allow(dead_code)]
#[path = "syntax.rs"]
mod syntax;

fn main() -> ExitCode {
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
