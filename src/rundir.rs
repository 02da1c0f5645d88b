//! The run directory's format, in one place: what training writes and evaluation, resume and
//! compare read. Every file is written atomically (a temporary file and a rename).
//!
//! | file | written by |
//! |---|---|
//! | `model.sae`, `config.json` | training, at the start |
//! | `metrics.jsonl` | training, one line per epoch |
//! | `checkpoint.safetensors`, `resume.safetensors` | training, after every epoch and on interruption |
//! | `best.safetensors`, `best.json` | training with a validation split, when the validation improves |
//! | `events.out.tfevents.*` | training: TensorBoard scalars, images and the model file |
//! | `run.lock` | training, while it runs |
//! | `summary.json` | the pipeline after training, then evaluation |
//! | `*.png`, `*.npy`, `*.json` | evaluation |

use std::path::{Path, PathBuf};

use tch::nn;

use crate::ir;
use crate::util::write_atomic;

/// The model file as run.
pub const MODEL: &str = "model.sae";
/// The resolved configuration: the model's IR and the run's settings.
pub const CONFIG: &str = "config.json";
/// One JSON object per finished epoch.
pub const METRICS: &str = "metrics.jsonl";
/// Encoder and generator variables.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// Variables, optimiser moments, position and running sums.
pub const RESUME: &str = "resume.safetensors";
/// Encoder and generator variables at the best validation.
pub const BEST: &str = "best.safetensors";
/// The epoch, metric and value of the best validation.
pub const BEST_JSON: &str = "best.json";
/// Training's and evaluation's summary.
pub const SUMMARY: &str = "summary.json";
/// The lock of the process writing into the directory.
pub const LOCK: &str = "run.lock";

/// The default run directory: `runs/<model>-<YYYYmmdd-HHMMSS>`.
pub fn default_run_dir(model: &str) -> PathBuf {
    PathBuf::from("runs").join(format!(
        "{model}-{}",
        chrono::Local::now().format("%Y%m%d-%H%M%S")
    ))
}

/// What a run directory records about its model.
pub struct RunRecord {
    /// The model, under the name it was run with (its copy is always called model.sae).
    pub model: ir::Model,
    /// The model file's text as run.
    pub source: String,
    /// `config.json`, when readable.
    pub config: Option<serde_json::Value>,
}

/// Reads and compiles a run directory's model.sae and reads its config.json.
pub fn read_run_record(dir: &Path) -> Result<RunRecord, String> {
    let path = dir.join(MODEL);
    let source = std::fs::read_to_string(&path).map_err(|e| format!("{MODEL}: {e}"))?;
    let c = crate::compile_source(&path.display().to_string(), &source, Some(dir));
    let mut model = match c.model.as_ref() {
        Some(m) if !c.has_errors() => m.clone(),
        _ => {
            return Err(format!(
                "its {MODEL} no longer compiles:\n{}",
                c.sources.render(&c.diags, false, 100)
            ))
        }
    };
    let config: Option<serde_json::Value> = std::fs::read_to_string(dir.join(CONFIG))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(name) = config.as_ref().and_then(|c| c["model"]["name"].as_str()) {
        model.name = name.to_string();
    }
    // Relative data paths start from the original model file's folder, not the run's.
    if let Some(base) = config.as_ref().and_then(|c| c["run"]["data_base"].as_str()) {
        model.data.base = Some(base.to_string());
    }
    Ok(RunRecord {
        model,
        source,
        config,
    })
}

/// Why a file of the run directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Saves the variables as `checkpoint.safetensors` through a temporary file and a rename.
pub fn save_checkpoint(vs: &nn::VarStore, dir: &Path) -> Result<(), SaveError> {
    save_weights(vs, dir, CHECKPOINT)
}

/// Saves the variables as `dir/name` (safetensors) through a temporary file and a rename.
pub fn save_weights(vs: &nn::VarStore, dir: &Path, name: &str) -> Result<(), SaveError> {
    let stem = name.strip_suffix(".safetensors").unwrap_or(name);
    let tmp = dir.join(format!(".{stem}.tmp.safetensors"));
    let dest = dir.join(name);
    crate::util::fault::before_write("checkpoint").map_err(|error| SaveError::Io {
        path: dest.clone(),
        error,
    })?;
    vs.save(&tmp)?;
    crate::util::fault::after_temporary("checkpoint", &tmp);
    std::fs::rename(&tmp, &dest).map_err(|error| SaveError::Io { path: dest, error })
}

/// Writes `value` as pretty JSON to `dir/name`, atomically.
pub fn write_json(dir: &Path, name: &str, value: &impl serde::Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    write_atomic(&dir.join(name), text.as_bytes())
}
