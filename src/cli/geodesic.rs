//! `sae-dsl geodesic DIR FROM TO`: straight and geodesic paths between two test examples.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{open_with_data, report, Outcome};
use crate::eval;

/// Solves the geodesic, writes its pictures and JSON, and prints both lengths.
pub fn geodesic(
    dir: &Path,
    from: i64,
    to: i64,
    points: i64,
    dev: &str,
    data_dir: Option<PathBuf>,
) -> Outcome {
    let (run, _, test) = open_with_data(dir, dev, data_dir)?;
    let json = eval::geodesic(
        dir,
        &run.model,
        &run.net,
        &test,
        from,
        to,
        points.clamp(3, 256),
    )
    .map_err(report)?;
    let (s, g) = (&json["straight"], &json["geodesic"]);
    println!(
        "{}: test {from} to {to}, {} points in {}",
        dir.display(),
        json["points"],
        json["space"].as_str().unwrap_or("")
    );
    println!(
        "  straight  length {} (data space), energy {}",
        s["length_data_space"], s["energy"]
    );
    println!(
        "  geodesic  length {} (data space), energy {}, {} iterations",
        g["length_data_space"], g["energy"], g["iterations"]
    );
    println!(
        "  written: geodesic-{from}-{to}.png, geodesic-{from}-{to}.json{}",
        if run.model.latent_dim() == 2 {
            format!(", magnification-{from}-{to}.png")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
