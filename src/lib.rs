//! sae-dsl: a small language for optimal-transport autoencoders, compiled to libtorch.
//!
//! The pipeline: [`load`] (files and imports) -> [`syntax`] (parse) -> [`check`] (names, values,
//! shapes, spaces; produces the [`ir`]) -> [`backend`] (tch modules) -> [`train`].

pub mod backend;
pub mod check;
pub mod classifier;
pub mod cli;
pub mod data;
pub mod diag;
pub mod dist;
pub mod eval;
pub mod front;
pub mod geometry;
pub mod ir;
pub mod load;
pub mod npy;
pub mod optim;
pub mod ot;
pub mod plot;
pub mod prior;
pub mod syntax;
pub mod train;
pub mod util;

pub use front::{compile_file, compile_source, graph_text, Compilation};
