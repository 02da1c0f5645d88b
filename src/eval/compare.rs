//! The `compare` table over run directories, from their `summary.json`.

use std::path::PathBuf;

use crate::ir;
use crate::rundir;

use super::{EvalError, Summary, FID_NOTE};

/// The `compare` table: one row per run, from its `summary.json`.
pub fn compare(dirs: &[PathBuf]) -> Result<(String, String), EvalError> {
    let mut rows = vec![];
    for d in dirs {
        let text =
            std::fs::read_to_string(d.join(rundir::SUMMARY)).map_err(|e| EvalError::Run {
                dir: d.display().to_string(),
                what: format!(
                    "summary.json: {e} (run `sae-dsl eval {}` first)",
                    d.display()
                ),
            })?;
        let s: Summary = serde_json::from_str(&text).map_err(|e| EvalError::Run {
            dir: d.display().to_string(),
            what: format!(
                "summary.json is not an evaluation summary ({e}); run `sae-dsl eval {}`",
                d.display()
            ),
        })?;
        rows.push((d.clone(), s));
    }
    let fmt_opt = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |x| format!("{x:.p$}"));
    let mut md = String::from("| run | method | prior | gamma | MMD x1000 | reconstruction (MSE) | FID (MNIST CNN) | sample entropy (bits) | epochs |\n|---|---|---|---|---|---|---|---|---|\n");
    let mut csv = String::from(
        "run,method,prior,gamma,mmd_x1000,recon_mse,fid_cnn,sample_entropy_bits,epochs\n",
    );
    for (d, s) in &rows {
        let name = d
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {:.2} | {:.4} | {} | {} | {} |\n",
            s.method,
            s.prior,
            ir::num(s.gamma),
            s.latent_mmd_x1000,
            s.test_mse,
            fmt_opt(s.fid_cnn, 2),
            fmt_opt(s.sample_label_entropy_bits, 2),
            s.epochs
        ));
        csv.push_str(&format!(
            "{name},{},{},{},{:.6},{:.6},{},{},{}\n",
            s.method,
            s.prior,
            s.gamma,
            s.latent_mmd_x1000,
            s.test_mse,
            s.fid_cnn.map_or(String::new(), |v| format!("{v:.6}")),
            s.sample_label_entropy_bits
                .map_or(String::new(), |v| format!("{v:.6}")),
            s.epochs
        ));
    }
    if rows.iter().any(|(_, s)| s.fid_cnn.is_some()) {
        md.push_str(&format!("\nFID: {FID_NOTE}.\n"));
    }
    Ok((md, csv))
}
