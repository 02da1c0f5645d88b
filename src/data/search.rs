//! Where data files are looked for: `--data-dir`, `$SAE_DSL_DATA`, then the default folders;
//! a missing file is downloaded when allowed.

use std::path::{Path, PathBuf};

use super::download::{download, REMOTES};
use super::*;

/// Folders searched after `--data-dir` and `$SAE_DSL_DATA`.
pub fn default_search_path() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("data")];
    if let Some(home) = std::env::var_os("HOME") {
        v.push(PathBuf::from(home).join(".cache/sae-dsl/data"));
    }
    v.push(PathBuf::from("/usr/share/datasets"));
    v
}

/// The folders to search, in order.
pub fn search_path(data_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut v = vec![];
    if let Some(d) = data_dir {
        v.push(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os(DATA_ENV) {
        v.push(PathBuf::from(d));
    }
    v.extend(default_search_path());
    v
}

/// Finds `file` of data set `dir` in the search path, downloading it when allowed.
pub fn find_file(dir: &str, file: &str, data_dir: Option<&Path>) -> Result<PathBuf, DataError> {
    let folders = search_path(data_dir);
    for f in &folders {
        let p = f.join(dir).join(file);
        if p.is_file() {
            return Ok(p);
        }
    }
    let looked: Vec<String> = folders
        .iter()
        .map(|f| format!("  {}", f.join(dir).display()))
        .collect();
    let offline = std::env::var(OFFLINE_ENV).is_ok_and(|v| v == "1");
    let remote = REMOTES.iter().find(|r| r.dir == dir);
    let cache = folders
        .iter()
        .find(|f| f.ends_with(".cache/sae-dsl/data"))
        .cloned()
        .or_else(|| data_dir.map(Path::to_path_buf));
    let mut tried = String::new();
    if let (false, Some(remote), Some(cache)) = (offline, remote, cache) {
        match download(remote, file, &cache.join(dir)) {
            Ok(p) => return Ok(p),
            Err(e) => tried = format!("\ndownload failed: {e}"),
        }
    }
    Err(DataError::NotFound {
        name: dir.to_string(),
        file: file.to_string(),
        help: format!(
            "looked in:\n{}{tried}\nput the IDX files in one of these folders, pass --data-dir DIR (DIR/{dir}/{file}), or set {DATA_ENV}",
            looked.join("\n")
        ),
    })
}
