//! `sae-dsl-torch`: every command of the CLI, linked with libtorch. The `sae-dsl` front end runs
//! `check` and `graph` itself (no libtorch load) and hands the others to this binary.

use std::process::ExitCode;

use clap::Parser;
use sae_dsl_lang::cli::Cli;

fn main() -> ExitCode {
    sae_dsl_lang::cli::quiet_broken_pipe();
    sae_dsl::cli::run(Cli::parse().command)
}
