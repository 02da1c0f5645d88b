//! The run directory's format, in one place: what training writes and evaluation, resume and
//! compare read. Every file is written atomically (a temporary file and a rename).
//!
//! | file | written by |
//! |---|---|
//! | `model.sae`, `config.json` | training, at the start |
//! | `imports.json`, `imports/*.sae` | training, at the start: the run's own copies of the files its model imports |
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
/// How the model's imports resolve to the run's own copies.
pub const IMPORTS: &str = "imports.json";
/// The folder of those copies.
pub const IMPORTS_DIR: &str = "imports";

/// The files a model imports (not the standard library's, which is built in), as copies for its
/// run directory: named by content, with the map from (importing file, import as written) to the
/// copy, so that the run compiles from its own copies wherever it is moved.
#[derive(Clone, Debug, Default)]
pub struct Imports {
    /// (copy name relative to the run directory, text, original path).
    pub files: Vec<(String, String, String)>,
    /// importing file (`model.sae` or a copy) -> import path as written -> copy.
    pub map: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl Imports {
    /// The imports of a loaded program; the main file becomes `model.sae`.
    pub fn of(program: &crate::load::Program) -> Imports {
        let main = program.modules.first().map(|m| m.file);
        let mut names = std::collections::HashMap::new();
        let mut out = Imports::default();
        let mut name_of = |id: usize, out: &mut Imports| -> String {
            if Some(id) == main {
                return MODEL.to_string();
            }
            names
                .entry(id)
                .or_insert_with(|| {
                    let text = program.sources.text(id).to_string();
                    let original = program.sources.name(id).to_string();
                    let stem = Path::new(&original)
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "import".into());
                    // A copy of a copy keeps the original's name.
                    let stem = match stem.rsplit_once('-') {
                        Some((head, tail))
                            if tail.len() == 16 && tail.bytes().all(|b| b.is_ascii_hexdigit()) =>
                        {
                            head.to_string()
                        }
                        _ => stem,
                    };
                    let hash =
                        crate::data::hex(&<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
                    let copy = format!("{IMPORTS_DIR}/{stem}-{}.sae", &hash[..16]);
                    let original = std::path::absolute(&original)
                        .map(|p| p.display().to_string())
                        .unwrap_or(original);
                    out.files.push((copy.clone(), text, original));
                    copy
                })
                .clone()
        };
        for e in &program.imports {
            let from = name_of(e.from, &mut out);
            let to = name_of(e.to, &mut out);
            out.map.entry(from).or_default().insert(e.path.clone(), to);
        }
        out
    }

    /// Writes the copies and `imports.json` into `dir` (atomically, each file).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(dir.join(IMPORTS_DIR))?;
        for (copy, text, _) in &self.files {
            write_atomic(&dir.join(copy), text.as_bytes())?;
        }
        let originals: std::collections::BTreeMap<&str, &str> = self
            .files
            .iter()
            .map(|(c, _, o)| (c.as_str(), o.as_str()))
            .collect();
        let v = serde_json::json!({ "map": self.map, "originals": originals });
        write_json(dir, IMPORTS, &v)
    }
}

/// The run's own copies of its imports, when it has any (runs made before they were recorded
/// resolve imports from the run directory as before).
pub fn vendored(dir: &Path) -> Result<Option<crate::load::Vendored>, String> {
    let path = dir.join(IMPORTS);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is damaged ({e}); copy it again from the original run",
            path.display()
        )
    })?;
    let map = serde_json::from_value(v["map"].clone()).map_err(|e| {
        format!(
            "{} is damaged ({e}); copy it again from the original run",
            path.display()
        )
    })?;
    Ok(Some(crate::load::Vendored {
        root: dir.to_path_buf(),
        map,
    }))
}

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
    let vendored = vendored(dir)?;
    let c = crate::driver::compile_vendored(
        &path.display().to_string(),
        &source,
        Some(dir),
        &[],
        vendored.as_ref(),
    );
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
    if let Err(e) = vs.save(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(match io_of_torch(&e) {
            Some(error) => SaveError::Io { path: dest, error },
            None => SaveError::Torch(e),
        });
    }
    seal_weights(&tmp).map_err(|error| SaveError::Io {
        path: dest.clone(),
        error,
    })?;
    crate::util::fault::after_temporary("checkpoint", &tmp);
    std::fs::rename(&tmp, &dest).map_err(|error| SaveError::Io { path: dest, error })
}

/// The I/O error inside a libtorch/safetensors write error (a full disk, a missing folder, a
/// permission), which tch only gives as text (`IoError(Os { code: 28, ... })`): users get the
/// plain words of the OS error instead.
pub fn io_of_torch(e: &tch::TchError) -> Option<std::io::Error> {
    if let tch::TchError::Io(io) = e {
        return Some(std::io::Error::new(io.kind(), io.to_string()));
    }
    let text = e.to_string();
    let code: i32 = text
        .split("Os { code: ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some(std::io::Error::from_raw_os_error(code))
}

/// Writes `value` as pretty JSON to `dir/name`, atomically.
pub fn write_json(dir: &Path, name: &str, value: &impl serde::Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    write_atomic(&dir.join(name), text.as_bytes())
}

/// Removes whatever a previous run left in `dir` (for `run --force` into it): its weights, state,
/// best weights, summary, metrics, TensorBoard events, pictures, evaluation outputs and import
/// copies, so that no later command can take them for this run's. Other files (a user's notes)
/// and the lock are left alone, and a folder that holds no run (no `config.json`, `model.sae` or
/// checkpoint: `--force --out .` in a project) is not touched at all.
pub fn clear_previous(dir: &Path) -> std::io::Result<()> {
    let is_run = [CONFIG, MODEL, CHECKPOINT, RESUME, METRICS]
        .iter()
        .any(|f| dir.join(f).is_file());
    if !is_run {
        return Ok(());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name == IMPORTS_DIR && path.is_dir() {
            std::fs::remove_dir_all(&path)?;
            continue;
        }
        if name == LOCK || !path.is_file() {
            continue;
        }
        let ours = name == MODEL
            || name.starts_with("events.out.tfevents.")
            || name.starts_with('.') && name.contains(".tmp")
            || [
                ".safetensors",
                ".json",
                ".jsonl",
                ".png",
                ".npy",
                ".npz",
                ".csv",
                ".txt",
            ]
            .iter()
            .any(|ext| name.ends_with(ext));
        if ours {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Where a run's data came from: the files (absolute), their checksums and what found them.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DataRecord {
    /// The folder searched that held the data (absolute), for named data sets.
    pub root: Option<String>,
    /// `--data-dir`, `$SAE_DSL_DATA`, a default folder, the model file's folder, an absolute
    /// path in the model, or generated.
    pub found_by: String,
    pub train_file: Option<String>,
    pub train_sha256: Option<String>,
    pub test_file: Option<String>,
    pub test_sha256: Option<String>,
}

/// The file or folder part of a data set's origin (`FILE -> transforms`), absolute, when it is on
/// disk.
pub fn origin_path(origin: &str) -> Option<PathBuf> {
    let first = origin.split(" -> ").next()?;
    let first = first.split(" (").next()?; // `root (train/)` for image folders
    let p = Path::new(first);
    p.exists()
        .then(|| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// The SHA-256 of a file's bytes (None for a folder or an unreadable file).
pub fn sha256_file(p: &Path) -> Option<String> {
    if !p.is_file() {
        return None;
    }
    let bytes = std::fs::read(p).ok()?;
    Some(crate::data::hex(&<sha2::Sha256 as sha2::Digest>::digest(
        &bytes,
    )))
}

impl DataRecord {
    /// The record of data loaded for `model` with `--data-dir data_dir`.
    pub fn of(model: &ir::Model, train: &str, test: &str, data_dir: Option<&Path>) -> DataRecord {
        let (train_file, test_file) = (origin_path(train), origin_path(test));
        let Some(file) = train_file.clone() else {
            return DataRecord {
                found_by: "generated".into(),
                ..DataRecord::default()
            };
        };
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut roots: Vec<(PathBuf, String)> = vec![];
        if let Some(d) = data_dir {
            roots.push((abs(d), "--data-dir".into()));
        }
        if let Some(d) = std::env::var_os(crate::data::DATA_ENV) {
            roots.push((abs(Path::new(&d)), format!("${}", crate::data::DATA_ENV)));
        }
        for d in crate::data::search::default_search_path() {
            roots.push((abs(&d), format!("the default folder {}", d.display())));
        }
        let found = roots.into_iter().find(|(r, _)| file.starts_with(r));
        let (root, found_by) = match found {
            Some((r, by)) => (Some(r.display().to_string()), by),
            None => {
                let in_base = model
                    .data
                    .base
                    .as_deref()
                    .is_some_and(|b| !b.is_empty() && file.starts_with(b));
                let by = if in_base {
                    "the model file's folder"
                } else {
                    "a path in the model"
                };
                (None, by.to_string())
            }
        };
        DataRecord {
            root,
            found_by,
            train_sha256: sha256_file(&file),
            train_file: Some(file.display().to_string()),
            test_sha256: test_file.as_deref().and_then(sha256_file),
            test_file: test_file.map(|p| p.display().to_string()),
        }
    }
}

/// Checks that a data set loaded for a run's command is the one the run recorded (by checksum,
/// when the run recorded one for that file): a changed file is an error that names it.
pub fn check_data(config: &serde_json::Value, split: &str, origin: &str) -> Result<(), String> {
    let rec = &config["run"]["data"];
    let (Some(was), Some(now_file)) =
        (rec[format!("{split}_sha256")].as_str(), origin_path(origin))
    else {
        return Ok(());
    };
    let Some(now) = sha256_file(&now_file) else {
        return Ok(());
    };
    if was == now {
        return Ok(());
    }
    let recorded = rec[format!("{split}_file")].as_str().unwrap_or("?");
    Err(format!(
        "the {split} data {} (SHA-256 {}...) is not the file the run was trained with ({recorded}, SHA-256 {}...); pass --data-dir with the folder of the original data",
        now_file.display(),
        &now[..12],
        &was[..was.len().min(12)]
    ))
}

/// The metadata key of a weight file's checksum.
const SEAL_KEY: &str = "sae_dsl_sha256";

/// Adds the SHA-256 of a safetensors file's tensor bytes to its header's `__metadata__`, so that
/// every reader can tell a damaged file from a good one ([`verify_weights`]). Rewrites `path` in
/// place; call it on the temporary file before the rename.
pub fn seal_weights(path: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let (mut header, data) = split_safetensors(&bytes).map_err(|e| bad(&e))?;
    let digest = crate::data::hex(&<sha2::Sha256 as sha2::Digest>::digest(data));
    let obj = header
        .as_object_mut()
        .ok_or_else(|| bad("the header is not an object"))?;
    let meta = obj
        .entry("__metadata__")
        .or_insert_with(|| serde_json::json!({}));
    meta[SEAL_KEY] = digest.into();
    let mut text = serde_json::to_string(&header).map_err(|e| bad(&e.to_string()))?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + data.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(path, out)
}

/// A safetensors file's header (parsed) and tensor bytes; an error says what is wrong.
fn split_safetensors(bytes: &[u8]) -> Result<(serde_json::Value, &[u8]), String> {
    if bytes.len() < 8 {
        return Err(format!("{} bytes, shorter than a header", bytes.len()));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(n) as usize;
    if n > bytes.len() - 8 {
        return Err(format!(
            "the header claims {n} bytes, the file has {} (truncated?)",
            bytes.len()
        ));
    }
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n])
        .map_err(|e| format!("the header is not JSON ({e})"))?;
    let data = &bytes[8 + n..];
    let end = header
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v["data_offsets"][1].as_u64())
        .max()
        .unwrap_or(0) as usize;
    if end != data.len() {
        return Err(format!(
            "its tensors need {end} bytes, the file holds {} (truncated?)",
            data.len()
        ));
    }
    Ok((header, data))
}

/// Checks a weight or state file before it is used: it must be a whole safetensors file, and
/// when it carries a checksum ([`seal_weights`]; files written before checksums existed do not)
/// its bytes must match it. The error names the file and what is wrong with it.
pub fn verify_weights(path: &Path) -> Result<(), String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    let damaged = |what: String| format!("{} is damaged: {what}", path.display());
    let (header, data) = split_safetensors(&bytes).map_err(damaged)?;
    if let Some(want) = header["__metadata__"][SEAL_KEY].as_str() {
        let got = crate::data::hex(&<sha2::Sha256 as sha2::Digest>::digest(data));
        if got != want {
            return Err(damaged(format!(
                "its contents do not match the checksum written with it (SHA-256 {}... recorded, {}... now)",
                &want[..want.len().min(12)],
                &got[..12]
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_inside_a_libtorch_error_reads_as_the_os_error() {
        let e = tch::TchError::Torch(
            "safetensors error /r/.checkpoint.tmp.safetensors: IoError(Os { code: 28, kind: StorageFull, message: \"No space left on device\" })".into(),
        );
        let io = io_of_torch(&e).expect("an I/O error");
        assert_eq!(io.raw_os_error(), Some(28));
        assert!(io.to_string().contains("No space left on device"), "{io}");
        assert!(io_of_torch(&tch::TchError::Torch("shape mismatch".into())).is_none());
    }

    #[test]
    fn a_sealed_file_is_verified_and_a_changed_byte_is_named() {
        let dir = std::env::temp_dir().join(format!("sae-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("w.safetensors");
        let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
        tch::Tensor::write_safetensors(&[("w", &t)], &p).expect("write");
        verify_weights(&p).expect("an unsealed file is accepted");
        seal_weights(&p).expect("seal");
        verify_weights(&p).expect("sealed and intact");
        let back = tch::Tensor::read_safetensors(&p).expect("libtorch reads a sealed file");
        assert_eq!(back[0].1, t);
        let mut b = std::fs::read(&p).expect("read");
        let n = b.len();
        b[n - 3] ^= 1;
        std::fs::write(&p, &b).expect("write");
        let e = verify_weights(&p).expect_err("a flipped byte");
        assert!(
            e.contains("w.safetensors is damaged") && e.contains("checksum"),
            "{e}"
        );
        std::fs::write(&p, &b[..n - 5]).expect("write");
        let e = verify_weights(&p).expect_err("truncated");
        assert!(e.contains("truncated"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
