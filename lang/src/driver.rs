//! The front end's API: load and check a model file, print its graph. Shared by the library and
//! by the `sae-dsl` binary, which compiles these modules itself so that it never links libtorch.

use std::path::Path;

use crate::diag::{Diag, Problems, SourceMap};
use crate::overrides::Override;
use crate::{check, ir, load};

/// The front end's result for one file: sources, diagnostics and the model when there is one.
pub struct Compilation {
    pub sources: SourceMap,
    pub diags: Vec<Diag>,
    pub model: Option<ir::Model>,
    /// The main file defines nets only.
    pub library: bool,
    pub program: load::Program,
    /// A library's priors instantiated with their defaults (placeholders where none).
    pub library_priors: Vec<(ir::Program, ir::Space)>,
    /// Every layer instantiated, with the call it was written as (for editors).
    pub layer_sites: Vec<check::LayerSite>,
    /// With `--set` overrides: the model text with their values substituted (what a run
    /// records as its model.sae).
    pub effective: Option<String>,
}

impl Compilation {
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diag::is_error)
    }
}

/// Loads and checks model text; `dir` resolves relative imports.
pub fn compile_source(name: &str, text: &str, dir: Option<&Path>) -> Compilation {
    compile_with(name, text, dir, &[])
}

/// [`compile_source`] that stops early (its result then incomplete) once `cancel` is set: the
/// language server's check of a text that a newer edit replaced.
pub fn compile_cancellable(
    name: &str,
    text: &str,
    dir: Option<&Path>,
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Compilation {
    let _budget = crate::syntax::budget::start(Some(cancel));
    compile_with(name, text, dir, &[])
}

/// Loads and checks model text with `--set` overrides applied: their errors point at the
/// arguments; `effective` holds the text with the values substituted.
pub fn compile_with(
    name: &str,
    text: &str,
    dir: Option<&Path>,
    overrides: &[Override],
) -> Compilation {
    compile_vendored(name, text, dir, overrides, None)
}

/// [`compile_with`] with imports read through a run directory's own copies (see
/// [`load::Vendored`]).
pub fn compile_vendored(
    name: &str,
    text: &str,
    dir: Option<&Path>,
    overrides: &[Override],
    vendored: Option<&load::Vendored>,
) -> Compilation {
    // Every check runs within the time budget (a caller's own budget, if any, is kept).
    let _budget = crate::syntax::budget::start(None);
    let load = |t: &str| load::load_source_vendored(name, t, dir.map(Path::to_path_buf), vendored);
    let mut loaded = load(text);
    if !loaded.has_errors() && !loaded.program.modules.is_empty() {
        if let Some(t) = crate::overrides::with_train_clause(&loaded.program, text, overrides) {
            loaded = load(&t);
        }
    }
    let mut diags = loaded.diags;
    let mut program = loaded.program;
    let mut effective = None;
    if !overrides.is_empty() && !diags.iter().any(Diag::is_error) && !program.modules.is_empty() {
        match crate::overrides::apply(&mut program, overrides) {
            Ok(t) => effective = Some(t),
            Err(d) => diags.extend(d),
        }
    }
    let stem = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let (model, library, library_priors, layer_sites) =
        if diags.iter().any(Diag::is_error) || program.modules.is_empty() {
            (None, false, vec![], vec![])
        } else {
            let checked = check::check(&program, &stem);
            diags.extend(checked.diags);
            let mut model = checked.model;
            if let (Some(m), Some(d)) = (model.as_mut(), dir) {
                // Relative data paths start from the model file's folder.
                // `m.sae` has the empty folder as its parent: the working directory.
                let d = if d.as_os_str().is_empty() {
                    std::env::current_dir().unwrap_or_default()
                } else {
                    std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf())
                };
                m.data.base = Some(d.display().to_string());
            }
            (
                model,
                checked.library,
                checked.library_priors,
                checked.layer_sites,
            )
        };
    Compilation {
        sources: program.sources.clone(),
        diags,
        model,
        library,
        program,
        library_priors,
        layer_sites,
        effective,
    }
}

/// A prior program of a file (or of the files it imports), instantiated with `args` (the text
/// between the parentheses, e.g. `k = 8, radius = 2`; defaults when None). Returns the program,
/// its space and the warnings; on failure, the rendered diagnostics.
pub fn prior_program(
    path: &Path,
    name: &str,
    args: Option<&str>,
) -> Result<(ir::Program, ir::Space, Vec<String>), String> {
    let text = load::read_source(path).map_err(|e| format!("error: {e}"))?;
    prior_program_in(&load::display_path(path), &text, path.parent(), name, args)
}

/// [`prior_program`] of a text (`file` names it in messages; imports are relative to `dir`).
pub fn prior_program_in(
    file: &str,
    text: &str,
    dir: Option<&Path>,
    name: &str,
    args: Option<&str>,
) -> Result<(ir::Program, ir::Space, Vec<String>), String> {
    let loaded = load::load_source(file, text, dir.map(Path::to_path_buf));
    let mut sources = loaded.program.sources.clone();
    let mut diags = Problems::from(loaded.diags);
    if diags.has_errors() {
        return Err(sources.render(&diags, false, 100));
    }
    let call_text = format!("{name}({})", args.unwrap_or(""));
    let file = sources.add("<prior call>", call_text.as_str());
    let call = match crate::syntax::parse_call(file, &call_text) {
        Ok(c) => c,
        Err(d) => return Err(sources.render(&d, false, 100)),
    };
    let mut priors = crate::prior::Priors::collect(&loaded.program, &mut diags);
    for (n, data, shape, int) in crate::check::numeric_constants(&loaded.program) {
        priors.set_constant(&n, data, shape, int);
    }
    if !priors.has(name) {
        let names = priors.names();
        let help = match crate::diag::did_you_mean(name, names.iter().copied()) {
            Some(c) => format!("did you mean `{c}`?"),
            None if names.is_empty() => {
                "the file defines no priors (`prior NAME(...) on SPACE { ... }`)".into()
            }
            None => format!("its priors: {}", names.join(", ")),
        };
        return Err(format!("error: {file} defines no prior `{name}`; {help}"));
    }
    let out = priors.instantiate(&call, &mut diags);
    let warnings: Vec<String> = diags
        .iter()
        .filter(|d| !d.is_error())
        .map(|d| d.message.clone())
        .collect();
    match out {
        Some((p, space, _)) if !diags.has_errors() => Ok((p, space, warnings)),
        _ => Err(sources.render(&diags, false, 100)),
    }
}

/// Loads and checks a model file.
pub fn compile_file(path: &Path) -> Result<Compilation, load::LoadError> {
    compile_file_with(path, &[])
}

/// Loads and checks a model file with `--set` overrides.
pub fn compile_file_with(
    path: &Path,
    overrides: &[Override],
) -> Result<Compilation, load::LoadError> {
    let text = load::read_source(path)?;
    Ok(compile_with(
        &load::display_path(path),
        &text,
        path.parent(),
        overrides,
    ))
}

/// The text `sae-dsl graph` prints: the IR of a model, or the definitions of a library.
pub fn graph_text(c: &Compilation) -> Option<String> {
    if let Some(m) = &c.model {
        return Some(m.to_string());
    }
    if c.library && !c.has_errors() {
        let main = c.program.main();
        let text = c.sources.text(main.file);
        let mut out = String::from("library\n");
        for n in &main.nets {
            let params: Vec<String> = n
                .params
                .iter()
                .map(|p| match &p.default {
                    Some(d) => format!("{} = {}", p.name.name, &text[d.span.start..d.span.end]),
                    None => p.name.name.clone(),
                })
                .collect();
            out.push_str(&format!("net {}({})\n", n.name.name, params.join(", ")));
            for (i, l) in n.body.layers.iter().enumerate() {
                out.push_str(&format!(
                    "  {:>2}  {}\n",
                    i + 1,
                    &text[l.span.start..l.span.end]
                ));
            }
        }
        for (p, space) in &c.library_priors {
            out.push_str(&format!("prior {} on {space}\n{p}\n", p.call));
        }
        return Some(out);
    }
    None
}
