//! Stage 0, `load`: reads a model file and, transitively, the files it imports.
//!
//! `import "std/nets"` names a file of the standard library, which is compiled into the binary
//! (so it works from any directory); any other path is relative to the importing file, with the
//! `.sae` extension optional. Import cycles and missing files are diagnostics at the import.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diag::messages as msg;
use crate::diag::{Diag, FileId, Problems, SourceMap, Span};
use crate::syntax::{self, Module};

/// The standard library, embedded at build time: (name, text).
pub const STDLIB: &[(&str, &str)] = &[
    ("nets", include_str!("../../stdlib/nets.sae")),
    ("priors", include_str!("../../stdlib/priors.sae")),
    ("rgb", include_str!("../../stdlib/rgb.sae")),
    ("resnet", include_str!("../../stdlib/resnet.sae")),
];

/// All files of a program, parsed; `modules[0]` is the main file.
#[derive(Debug, Clone)]
pub struct Program {
    pub sources: SourceMap,
    pub modules: Vec<Module>,
    /// Every import of a file that is not in the standard library, as resolved.
    pub imports: Vec<ImportEdge>,
    /// The files of the standard library among `modules`.
    pub std_files: Vec<FileId>,
}

/// One resolved import: `from` imports `path` (as written), which was read as `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportEdge {
    pub from: FileId,
    pub path: String,
    pub to: FileId,
}

/// A run directory's own copies of the files its model imports: imports are resolved through
/// `map` (importing file -> import path as written -> copy), with files named relative to `root`
/// (`model.sae` for the main file, `imports/NAME-HASH.sae` for the copies), so that the run
/// compiles wherever it is moved and whatever happens to the original files.
#[derive(Debug, Clone, Default)]
pub struct Vendored {
    pub root: PathBuf,
    pub map: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl Vendored {
    /// The copy that `importer` (a path on disk) reads for `path`, when the map has one.
    fn lookup(&self, importer: &Path, path: &str) -> Option<PathBuf> {
        let root = self
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.root.clone());
        let rel = importer.strip_prefix(&root).ok()?;
        let copy = self
            .map
            .get(&rel.to_string_lossy().replace('\\', "/"))?
            .get(path)?;
        Some(root.join(copy))
    }
}

impl Program {
    pub fn main(&self) -> &Module {
        &self.modules[0]
    }

    /// Whether `file` is a file of the standard library (whose names always mean the
    /// built-ins: a user's definition that hides a built-in does not reach into it).
    pub fn is_std(&self, file: FileId) -> bool {
        self.std_files.contains(&file)
    }
}

/// Loads from a path on disk.
pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    let text = read_source(path)?;
    Ok(load_source(
        &path.display().to_string(),
        &text,
        path.parent().map(Path::to_path_buf),
    ))
}

/// Failure to read the main file itself (imported files are diagnostics).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("cannot read model file {0}: {1}")]
    #[diagnostic(
        code(sae::load::read),
        help("check the path; model files usually live in models/")
    )]
    Io(PathBuf, std::io::Error),
    #[error("{} is not UTF-8 text: byte 0x{value:02x} at line {line}, column {column} (byte {offset} of the file)", path.display())]
    #[diagnostic(
        code(sae::load::not_utf8),
        help("model files are plain text in UTF-8; save it as UTF-8 (a byte-order mark is fine)")
    )]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        column: usize,
        offset: usize,
        value: u8,
    },
}

/// Reads a model file as text. A UTF-8 byte-order mark is dropped; a byte that is not UTF-8 is
/// an error that says where it is.
pub fn read_source(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io(path.to_path_buf(), e))?;
    decode(path, &bytes)
}

/// The text of a file's bytes; see [`read_source`].
pub fn decode(path: &Path, bytes: &[u8]) -> Result<String, LoadError> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let skip = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
    let body = &bytes[skip..];
    match std::str::from_utf8(body) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            let before = &body[..at];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1;
            Err(LoadError::NotUtf8 {
                path: path.to_path_buf(),
                line,
                column,
                offset: skip + at,
                value: body[at],
            })
        }
    }
}

/// The result of loading: the program and every diagnostic met on the way (syntax errors,
/// missing imports, cycles). The program holds whatever parsed.
pub struct Loaded {
    pub program: Program,
    pub diags: Vec<Diag>,
}

/// Loads from text; `dir` resolves relative imports.
pub fn load_source(name: &str, text: &str, dir: Option<PathBuf>) -> Loaded {
    load_source_vendored(name, text, dir, None)
}

/// [`load_source`] with imports read through a run directory's copies first.
pub fn load_source_vendored(
    name: &str,
    text: &str,
    dir: Option<PathBuf>,
    vendored: Option<&Vendored>,
) -> Loaded {
    let mut l = Loader {
        sources: SourceMap::default(),
        modules: vec![],
        diags: Problems::new(),
        by_key: HashMap::new(),
        imports: vec![],
        vendored: vendored.cloned(),
    };
    let file = l.sources.add(name, text);
    let key = Key::Path(
        Path::new(name)
            .canonicalize()
            .unwrap_or_else(|_| PathBuf::from(name)),
    );
    l.visit(file, key, dir, &mut vec![]);
    // modules were pushed in post-order; keep the main file first.
    l.modules
        .sort_by_key(|m| if m.file == file { 0 } else { 1 + m.file });
    Loaded {
        program: Program {
            sources: l.sources,
            modules: l.modules,
            imports: l.imports,
            std_files: l
                .by_key
                .iter()
                .filter(|(k, _)| matches!(k, Key::Std(_)))
                .map(|(_, f)| *f)
                .collect(),
        },
        diags: l.diags.into_vec(),
    }
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diag::is_error)
    }
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Key {
    Std(String),
    Path(PathBuf),
}

struct Loader {
    sources: SourceMap,
    modules: Vec<Module>,
    diags: Problems,
    by_key: HashMap<Key, FileId>,
    imports: Vec<ImportEdge>,
    vendored: Option<Vendored>,
}

impl Loader {
    /// Warnings for a file that is legal but almost certainly not what was meant: an empty main
    /// file, or an imported file with model clauses (only its nets and priors are imported).
    fn suspicious(&mut self, module: &Module, file: FileId, text: &str, imported_at: Option<Span>) {
        match imported_at {
            None if module.imports.is_empty()
                && module.nets.is_empty()
                && module.priors.is_empty()
                && module.lets.is_empty()
                && module.fns.is_empty()
                && module.clauses.is_empty() =>
            {
                let what = if text.trim().is_empty() {
                    "empty"
                } else {
                    "only comments"
                };
                self.diags.report(
                    msg::empty_file(what)
                        .label(Span::new(file, 0, 0), "nothing after this point")
                        .help("a model needs `data`, `latent`, `encoder`, `generator` and `penalty` clauses; a library defines `net`s or `prior`s"),
                );
            }
            Some(at) if !module.clauses.is_empty() => {
                let first = module.clauses[0].keyword;
                self.diags.report(
                    msg::imported_clauses_ignored(module.clauses.len())
                    .label(at, "imports only its nets and priors")
                    .label(first, "ignored from here on")
                    .help("move the shared nets and priors into a file without model clauses, or copy the clauses into this model"),
                );
            }
            _ => {}
        }
    }

    /// Parses `file` and its imports depth-first; `stack` holds the chain of files being loaded.
    fn visit(
        &mut self,
        file: FileId,
        key: Key,
        dir: Option<PathBuf>,
        stack: &mut Vec<(Key, Span)>,
    ) {
        self.by_key.insert(key.clone(), file);
        let text = self.sources.text(file).clone();
        let module = match syntax::parse(file, &text) {
            Ok(m) => m,
            Err(ds) => {
                self.diags.report_all(ds);
                return;
            }
        };
        self.suspicious(&module, file, &text, stack.last().map(|(_, at)| *at));
        for imp in &module.imports {
            let Some((ikey, idir, itext, iname)) =
                self.resolve(&imp.path, &key, dir.as_deref(), imp.span)
            else {
                continue;
            };
            if ikey == key || stack.iter().any(|(k, _)| *k == ikey) {
                let chain: Vec<String> = stack
                    .iter()
                    .map(|(k, _)| key_name(k))
                    .chain([key_name(&key), key_name(&ikey)])
                    .collect();
                self.diags.report(
                    msg::import_cycle(&chain)
                        .label(
                            imp.span,
                            "this import leads back to a file that is being loaded",
                        )
                        .help("move the shared definitions into a third file that both import"),
                );
                continue;
            }
            if let Some(&to) = self.by_key.get(&ikey) {
                if matches!(ikey, Key::Path(_)) {
                    self.imports.push(ImportEdge {
                        from: file,
                        path: imp.path.clone(),
                        to,
                    });
                }
                continue; // already loaded through another import
            }
            let ifile = self.sources.add(iname, itext);
            if matches!(ikey, Key::Path(_)) {
                self.imports.push(ImportEdge {
                    from: file,
                    path: imp.path.clone(),
                    to: ifile,
                });
            }
            stack.push((key.clone(), imp.span));
            self.visit(ifile, ikey, idir, stack);
            stack.pop();
        }
        self.modules.push(module);
    }

    fn resolve(
        &mut self,
        path: &str,
        importer: &Key,
        dir: Option<&Path>,
        span: Span,
    ) -> Option<(Key, Option<PathBuf>, String, String)> {
        if let Some(name) = path.strip_prefix("std/") {
            let name = name.trim_end_matches(".sae");
            if let Some((_, text)) = STDLIB.iter().find(|(n, _)| *n == name) {
                return Some((
                    Key::Std(name.into()),
                    None,
                    text.to_string(),
                    format!("stdlib/{name}.sae"),
                ));
            }
            let names: Vec<String> = STDLIB.iter().map(|(n, _)| format!("std/{n}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            self.diags.report(
                msg::import_not_found(path)
                    .label(span, "not in the standard library")
                    .help(crate::diag::unknown_help(
                        path,
                        "standard library files",
                        &refs,
                    )),
            );
            return None;
        }
        let copy = match (&self.vendored, importer) {
            (Some(v), Key::Path(p)) => v.lookup(p, path),
            _ => None,
        };
        let base = dir.map(Path::to_path_buf).unwrap_or_default();
        let mut tried = vec![];
        let candidates = match copy {
            // The run's own copy, and only it: the original may have changed or gone.
            Some(c) => vec![c],
            None => vec![base.join(path), base.join(format!("{path}.sae"))],
        };
        for cand in candidates {
            let read = std::fs::read(&cand).map_err(|e| LoadError::Io(cand.clone(), e));
            match read.and_then(|bytes| decode(&cand, &bytes)) {
                Ok(text) => {
                    let canon = cand.canonicalize().unwrap_or(cand.clone());
                    let idir = cand.parent().map(Path::to_path_buf);
                    return Some((Key::Path(canon), idir, text, display_path(&cand)));
                }
                Err(LoadError::NotUtf8 {
                    line,
                    column,
                    offset,
                    value,
                    ..
                }) => {
                    let file = display_path(&cand);
                    self.diags.report(
                        msg::import_not_utf8(&file, value, line, column, offset)
                            .label(span, "imported here")
                            .help("model files are plain text in UTF-8; save it as UTF-8"),
                    );
                    return None;
                }
                Err(_) => tried.push(display_path(&cand)),
            }
        }
        self.diags.report(
            msg::import_not_found(path)
                .label(span, "no such file")
                .help(format!(
                    "looked for {}; paths are relative to the importing file, and `std/NAME` names the standard library",
                    tried.join(" and ")
                )),
        );
        None
    }
}

/// A path as users see it: relative to the working directory when it lies below it.
pub fn display_path(p: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let rel = cwd
        .as_deref()
        .and_then(|c| p.strip_prefix(c).ok())
        .unwrap_or(p);
    rel.display().to_string()
}

fn key_name(k: &Key) -> String {
    match k {
        Key::Std(n) => format!("std/{n}"),
        Key::Path(p) => p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}
