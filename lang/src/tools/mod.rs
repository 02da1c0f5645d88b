//! Tools around the language that editors and scripts use: the formatter command ([`fmt`]) and
//! the language server ([`lsp`]). They sit above the driver and never touch libtorch.

pub mod fmt;
pub mod lsp;
