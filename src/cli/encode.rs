//! `sae-dsl encode DIR --out FILE`: the codes of a run's test or training set, with labels.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{open_with_data, report, Outcome};
use crate::eval;

/// Encodes the `split` set of the run in `dir` (evaluation mode: means of a Gaussian encoder)
/// and writes the codes and labels to `out`.
pub fn encode(
    dir: &Path,
    out: &Path,
    split: &str,
    dev: &str,
    data_dir: Option<PathBuf>,
) -> Outcome {
    let (run, train, test) = open_with_data(dir, dev, data_dir)?;
    let set = if split == "train" { &train } else { &test };
    let codes = eval::encode_all(&run.net, &set.x());
    let files = eval::write_codes(&codes, set.labels.as_ref(), out).map_err(report)?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    println!(
        "{} codes of the {split} set ({} coordinates) written to {}",
        codes.size()[0],
        codes.size()[1],
        names.join(" and ")
    );
    Ok(ExitCode::SUCCESS)
}
