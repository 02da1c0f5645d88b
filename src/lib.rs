//! sae-dsl: a small language for optimal-transport autoencoders, compiled to libtorch.
//!
//! This crate is the runtime half; the language half (syntax, checking, the IR) is the crate
//! `sae-dsl-lang` in `lang/`, which never links libtorch and is re-exported here. The stages:
//! [`driver`] (model text to [`ir`]) -> [`runtime`] (the IR as tch modules and samplers) ->
//! [`data`] -> [`train`] -> [`eval`], with [`pipeline`] running training then evaluation,
//! [`rundir`] the run directory's format, [`plot`] the pictures' canvas and [`cli`] the commands.
//! See ARCHITECTURE.md.

pub use sae_dsl_lang::overrides;
pub use sae_dsl_lang::{catalogue, check, diag, driver, ir, load, prior, syntax};
pub use sae_dsl_lang::{compile_file, compile_file_with, compile_source, graph_text, Compilation};

pub mod cli;
pub mod data;
pub mod eval;
pub mod export;
pub mod pipeline;
pub mod plot;
pub mod rundir;
pub mod runtime;
pub mod signals;
pub mod sweep;
pub mod tensorboard;
pub mod train;
pub mod util;
