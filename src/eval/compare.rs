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

/// One setting of a sweep over its seeds.
struct Setting {
    method: String,
    label: String,
    /// The best validation value of each member (the chosen metric).
    validation: Vec<f64>,
    test_recon: Vec<f64>,
    fid: Vec<f64>,
    mmd: Vec<f64>,
}

fn mean_sd(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Some((m, var.sqrt()))
}

fn shown(v: &[f64], p: usize) -> String {
    match mean_sd(v) {
        Some((m, s)) if v.len() > 1 => format!("{m:.p$} ± {s:.p$}"),
        Some((m, _)) => format!("{m:.p$}"),
        None => "-".into(),
    }
}

/// The lowest value of validation metric `metric` over a run's epochs.
fn best_validation(run: &std::path::Path, metric: &str) -> Option<f64> {
    std::fs::read_to_string(run.join(rundir::METRICS))
        .ok()?
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["validation"][metric].as_f64())
        .min_by(f64::total_cmp)
}

/// A sweep's name in the table: its folder's name, or the path as given when another of `dirs`
/// has a folder of the same name.
fn sweep_name(d: &std::path::Path, dirs: &[PathBuf]) -> String {
    let name = |p: &std::path::Path| p.file_name().map(|f| f.to_string_lossy().into_owned());
    if dirs.iter().filter(|o| name(o) == name(d)).count() > 1 {
        d.display().to_string()
    } else {
        name(d).unwrap_or_default()
    }
}

/// `compare` over sweep directories: one row per setting (its members that differ only in
/// `seed` pooled: mean ± standard deviation), and the best setting of each sweep by the lowest
/// mean of validation metric `metric`, never by a test figure.
pub fn compare_sweeps(dirs: &[PathBuf], metric: &str) -> Result<(String, String), EvalError> {
    let mut settings: Vec<Setting> = vec![];
    for d in dirs {
        let manifest = crate::sweep::Manifest::read(d).map_err(|what| EvalError::Run {
            dir: d.display().to_string(),
            what,
        })?;
        for m in &manifest.members {
            let run = manifest.run_dir(d, m);
            let summary: Option<Summary> = std::fs::read_to_string(run.join(rundir::SUMMARY))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            // One sweep is one model file: its settings compete with each other (a method's
            // name may change with a setting, as beta-VAE (4) with gamma). Sweeps whose folders
            // share a name (`tuned/vae`, `final/vae`) are told apart by their whole path.
            let method = sweep_name(d, dirs);
            let label = m.setting();
            let idx = match settings
                .iter()
                .position(|s| s.method == method && s.label == label)
            {
                Some(i) => i,
                None => {
                    settings.push(Setting {
                        method: method.clone(),
                        label,
                        validation: vec![],
                        test_recon: vec![],
                        fid: vec![],
                        mmd: vec![],
                    });
                    settings.len() - 1
                }
            };
            let s = &mut settings[idx];
            if metric == "fid" {
                s.validation
                    .extend(summary.as_ref().and_then(|x| x.fid_validation));
            } else {
                s.validation.extend(best_validation(&run, metric));
            }
            if let Some(sum) = &summary {
                s.test_recon.push(sum.test_recon);
                s.fid.extend(sum.fid_cnn);
                s.mmd.push(sum.latent_mmd_x1000);
            }
        }
    }
    // The best setting per method: the lowest mean validation value.
    let mut best: std::collections::HashMap<&str, (usize, f64)> = Default::default();
    for (i, s) in settings.iter().enumerate() {
        if let Some((m, _)) = mean_sd(&s.validation) {
            let e = best.entry(s.method.as_str()).or_insert((i, m));
            if m < e.1 {
                *e = (i, m);
            }
        }
    }
    let mut md = format!("| sweep | setting | runs | validation {metric} | test reconstruction | FID (MNIST CNN) | MMD x1000 | best |\n|---|---|---|---|---|---|---|---|\n");
    let mut csv = format!("sweep,setting,runs,validation_{metric}_mean,validation_{metric}_sd,test_recon_mean,test_recon_sd,fid_mean,fid_sd,best\n");
    for (i, s) in settings.iter().enumerate() {
        let is_best = best.get(s.method.as_str()).is_some_and(|b| b.0 == i);
        let runs = s.validation.len().max(s.test_recon.len());
        md.push_str(&format!(
            "| {} | {} | {runs} | {} | {} | {} | {} | {} |\n",
            s.method,
            if s.label.is_empty() { "-" } else { &s.label },
            shown(&s.validation, 4),
            shown(&s.test_recon, 4),
            shown(&s.fid, 2),
            shown(&s.mmd, 2),
            if is_best { "best" } else { "" }
        ));
        let (vm, vs) = mean_sd(&s.validation).unwrap_or((f64::NAN, f64::NAN));
        let (rm, rs) = mean_sd(&s.test_recon).unwrap_or((f64::NAN, f64::NAN));
        let (fm, fs) = mean_sd(&s.fid).unwrap_or((f64::NAN, f64::NAN));
        csv.push_str(&format!(
            "{},{},{runs},{vm},{vs},{rm},{rs},{fm},{fs},{is_best}\n",
            s.method, s.label
        ));
    }
    if best.is_empty() {
        md.push_str(&format!("\nNo member has validation metrics, so no setting is picked: add `validation split(...)` to the model's `train` clause (the best is never chosen on the test set).\n"));
    } else {
        md.push_str(&format!("\nbest: the lowest mean validation {metric} of each sweep (mean ± standard deviation over seeds).\n"));
    }
    Ok((md, csv))
}
