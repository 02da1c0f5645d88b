//! The sae-dsl language, with no libtorch: everything from a model file's text to its checked IR.
//!
//! Stages, each a module, dependencies pointing down this list only:
//! - [`driver`]: load, check, render; what the `sae-dsl` front end and the runtime crate call.
//! - [`check`]: names, values, shapes, spaces, objective, settings; produces the [`ir`].
//! - [`prior`]: prior programs (values, expressions, distributions, bodies) compiled to [`ir::Program`].
//! - [`load`]: files, imports and the embedded standard library.
//! - [`syntax`]: the pest grammar and the syntax tree.
//! - [`catalogue`]: every built-in with its parameters, defaults, ranges and docs.
//! - [`consteval`]: constant arithmetic, one set of rules for checks and prior programs.
//! - [`ir`]: the compiled model and its readable `Display`.
//! - [`diag`]: diagnostics (codes, labels, help) and their rendering.
//!
//! [`cli`] holds the command-line definition shared by both binaries and the front-end commands.

pub mod catalogue;
pub mod check;
pub mod cli;
pub mod consteval;
pub mod diag;
pub mod driver;
pub mod ir;
pub mod load;
pub mod overrides;
pub mod prior;
pub mod syntax;
pub mod tools;

pub use driver::{
    compile_file, compile_file_with, compile_source, compile_with, graph_text, Compilation,
};
