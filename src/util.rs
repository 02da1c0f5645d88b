//! Small helpers shared by the stages that write files.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a temporary file beside `path` and renames it into place, so that a crash
/// never leaves a half-written artifact.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// A folder of the cache: `$SAE_DSL_CACHE/SUB`, else `~/.cache/sae-dsl/SUB`.
pub fn cache_dir(sub: &str) -> std::path::PathBuf {
    use std::path::PathBuf;
    let base = std::env::var_os("SAE_DSL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sae-dsl")))
        .unwrap_or_else(|| PathBuf::from(".sae-dsl-cache"));
    base.join(sub)
}

/// The peak resident memory of this process in MiB (VmHWM), NaN where /proc is unavailable.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Injected write failures, for tests, from `SAE_DSL_FAULT` (the variable of training's step
/// faults): `fail-write@NAME:K` makes the K-th write of NAME in this process fail as a full
/// disk would; `stall-write@NAME:K` makes the K-th write stop for a minute once its temporary
/// file is half written (a test kills the process there). NAME is `checkpoint`, `resume`,
/// `metrics` or `cache`.
pub mod fault {
    use std::collections::HashMap;
    use std::sync::Mutex;

    static COUNTS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

    /// Whether the current write of `name` is the one `kind@name:K` names (counting per kind).
    fn hit(kind: &str, name: &str) -> bool {
        let Ok(v) = std::env::var("SAE_DSL_FAULT") else {
            return false;
        };
        let Some((k, rest)) = v.split_once('@') else {
            return false;
        };
        let Some((n, at)) = rest.split_once(':') else {
            return false;
        };
        if k != kind || n != name {
            return false;
        }
        let Ok(at) = at.parse::<usize>() else {
            return false;
        };
        let mut guard = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let counts = guard.get_or_insert_with(HashMap::new);
        let c = counts.entry(format!("{kind}@{name}")).or_insert(0);
        *c += 1;
        *c == at
    }

    /// Before writing `name`: the injected failure, if this write is the one.
    pub fn before_write(name: &str) -> std::io::Result<()> {
        if hit("fail-write", name) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device (injected by SAE_DSL_FAULT)",
            ));
        }
        Ok(())
    }

    /// With the temporary file of `name` written (before its rename): the injected stall, after
    /// cutting the file to half its length.
    pub fn after_temporary(name: &str, tmp: &std::path::Path) {
        if hit("stall-write", name) {
            if let Ok(bytes) = std::fs::read(tmp) {
                let _ = std::fs::write(tmp, &bytes[..bytes.len() / 2]);
            }
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

/// Prints a warning on standard error once per process: the training and the test split read
/// the same source, and one finding should be said once.
pub fn warn_once(message: &str) {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(HashSet::new()));
    // A poisoned lock only means another thread panicked while printing: print anyway.
    let first = match seen.lock() {
        Ok(mut s) => s.insert(message.to_string()),
        Err(_) => true,
    };
    if first {
        eprintln!("{message}");
    }
}
