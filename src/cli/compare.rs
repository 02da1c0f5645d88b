//! `sae-dsl compare DIR...`: one table over runs, printed as Markdown and written as CSV.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{report, Outcome};
use crate::eval;

/// Prints the table and writes `csv`; sweep directories are compared by setting, with the best
/// picked by validation `metric`.
pub fn compare(dirs: &[PathBuf], csv: &Path, metric: &str) -> Outcome {
    let sweeps = dirs
        .iter()
        .filter(|d| d.join(crate::sweep::MANIFEST).is_file())
        .count();
    if sweeps > 0 && sweeps < dirs.len() {
        eprintln!("error: compare either run directories or sweep directories, not both");
        return Err(ExitCode::from(2));
    }
    let (md, text) = if sweeps > 0 {
        eval::compare::compare_sweeps(dirs, metric).map_err(report)?
    } else {
        eval::compare(dirs).map_err(report)?
    };
    crate::util::write_atomic(csv, text.as_bytes()).map_err(|e| {
        eprintln!("error: {}: {e}", csv.display());
        ExitCode::from(1)
    })?;
    print!("{md}");
    println!("\nCSV: {}", csv.display());
    Ok(ExitCode::SUCCESS)
}
