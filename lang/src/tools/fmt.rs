//! `sae-dsl fmt`: files rewritten by [`crate::syntax::format_source`], atomically; `--check`
//! prints a unified diff instead and exits 1 when anything would change.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::diag::SourceMap;
use crate::load::{display_path, read_source};
use crate::syntax::format_source;

/// The `.sae` files named by `paths`: files as given, folders searched recursively (sorted).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            let mut found = vec![];
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                let entries = std::fs::read_dir(&d)
                    .map_err(|e| format!("cannot read folder {}: {e}", display_path(&d)))?;
                for e in entries.flatten() {
                    let q = e.path();
                    if q.is_dir() {
                        stack.push(q);
                    } else if q.extension().is_some_and(|x| x == "sae") {
                        found.push(q);
                    }
                }
            }
            if found.is_empty() {
                return Err(format!("no .sae files under {}", display_path(p)));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Formats every file; the exit code: 0, or 1 when a file has a syntax error, cannot be read or
/// written, or (with `check`) is not formatted.
pub fn run(paths: &[PathBuf], check: bool, stdout: bool) -> ExitCode {
    let files = match expand(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut failed = 0;
    let mut unformatted = 0;
    for path in &files {
        match format_one(path, check, stdout) {
            Ok(true) => {}
            Ok(false) => unformatted += 1,
            Err(e) => {
                eprint!("{e}");
                failed += 1;
            }
        }
    }
    if check && unformatted > 0 {
        eprintln!(
            "{unformatted} of {} file{} would be reformatted (run `sae-dsl fmt` on {})",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            if unformatted == 1 { "it" } else { "them" }
        );
    }
    if failed > 0 {
        eprintln!(
            "{failed} file{} not formatted because of the errors above",
            if failed == 1 { "" } else { "s" }
        );
    }
    if failed > 0 || (check && unformatted > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// One file: Ok(true) when it already was formatted (or was printed), Ok(false) when `check`
/// found a difference (printed as a diff); Err with the text to print.
fn format_one(path: &Path, check: bool, stdout: bool) -> Result<bool, String> {
    let name = display_path(path);
    let text = read_source(path).map_err(|e| format!("error: {e}\n"))?;
    let formatted = format_source(0, &text).map_err(|diags| {
        let mut sources = SourceMap::default();
        sources.add(name.clone(), text.as_str());
        use std::io::IsTerminal;
        sources.render(&diags, std::io::stderr().is_terminal(), 100)
    })?;
    if stdout {
        print!("{formatted}");
        return Ok(true);
    }
    if formatted == text {
        return Ok(true);
    }
    if check {
        let diff = similar::TextDiff::from_lines(&text, &formatted);
        print!(
            "{}",
            diff.unified_diff()
                .context_radius(2)
                .header(&name, &format!("{name} (formatted)"))
        );
        return Ok(false);
    }
    // A read-only file is not rewritten (renaming over it would succeed); a symbolic link
    // keeps pointing where it did: its target is rewritten.
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if std::fs::metadata(&target).is_ok_and(|m| m.permissions().readonly()) {
        return Err(format!(
            "error: {name} is read-only and not formatted; make it writable or use `sae-dsl fmt --check`\n"
        ));
    }
    write_atomically(&target, &formatted)
        .map_err(|e| format!("error: cannot write {name}: {e}\n"))?;
    eprintln!("formatted {name}");
    Ok(true)
}

/// Writes beside the file and renames over it, so that an interrupted write never leaves half a
/// model file; keeps the file's permissions.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.fmt-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
