//! `sae-dsl compare DIR...`: one table over runs, printed as Markdown and written as CSV.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{report, Outcome};
use crate::eval;

/// Prints the table and writes `csv`.
pub fn compare(dirs: &[PathBuf], csv: &Path) -> Outcome {
    let (md, text) = eval::compare(dirs).map_err(report)?;
    crate::util::write_atomic(csv, text.as_bytes()).map_err(|e| {
        eprintln!("error: {}: {e}", csv.display());
        ExitCode::from(1)
    })?;
    print!("{md}");
    println!("\nCSV: {}", csv.display());
    Ok(ExitCode::SUCCESS)
}
