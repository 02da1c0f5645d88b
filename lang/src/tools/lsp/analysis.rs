//! What the language server knows about one open document: its compilation (the same checks as
//! `sae-dsl check`) and the answers to the editor's questions, as plain functions of the text
//! and a position, so that they are tested without a client.

use std::path::{Path, PathBuf};

use lsp_types::{
    CompletionItem, CompletionItemKind, Diagnostic, DiagnosticRelatedInformation,
    DiagnosticSeverity, DocumentSymbol, Documentation, Hover, HoverContents, Location,
    MarkupContent, MarkupKind, NumberOrString, Position, Range, SymbolKind, TextEdit, Url,
};

use super::lines::LineIndex;
use crate::catalogue::{self, Entry};
use crate::check::LayerSite;
use crate::diag::{FileId, Span};
use crate::driver::{compile_source, Compilation};
use crate::ir::{shape_str, thousands};
use crate::load::STDLIB;
use crate::syntax::{format_source, ClauseKind, Module, CLAUSE_KEYWORDS};

/// An open document and its latest compilation.
pub struct Document {
    pub uri: Url,
    pub text: String,
    index: LineIndex,
    compiled: Compilation,
    /// The text `compiled` read (the current text once its check is in).
    compiled_text: String,
    /// The last compilation whose main file parsed, with its text: names and definitions stay
    /// available while the user is in the middle of typing something that does not parse.
    last_parsed: Option<(Compilation, String)>,
}

/// One definition found by name: where it is and how to describe it.
struct Definition {
    file: FileId,
    name: Span,
    kind: &'static str,
    header: String,
    doc: String,
}

impl Document {
    pub fn new(uri: Url, text: String) -> Self {
        let compiled = compile(&uri, &text);
        let mut d = Document::unchecked(uri, text.clone());
        d.apply(text, compiled);
        d
    }

    /// A document whose text is not checked yet (its check runs elsewhere, then
    /// [`Document::apply`]): answers use the text, names come from the last check.
    pub fn unchecked(uri: Url, text: String) -> Self {
        let index = LineIndex::new(&text);
        Document {
            uri,
            compiled: compile_source("untitled.sae", "", None),
            compiled_text: String::new(),
            text,
            index,
            last_parsed: None,
        }
    }

    /// Replaces the text before its check: positions read the new text at once, names come
    /// from the last check (their places mapped into the new text).
    pub fn set_text(&mut self, text: String) {
        self.text = text;
        self.index = LineIndex::new(&self.text);
    }

    /// Takes the check of `text`, when it is still the current text. When it does not parse,
    /// the last compilation that did is kept for names and definitions.
    pub fn apply(&mut self, text: String, compiled: Compilation) {
        if text != self.text {
            return;
        }
        let old = std::mem::replace(&mut self.compiled, compiled);
        let old_text = std::mem::replace(&mut self.compiled_text, text);
        if main_module(&self.compiled).is_some() {
            self.last_parsed = None;
        } else if main_module(&old).is_some() && !old_text.is_empty() {
            self.last_parsed = Some((old, old_text));
        }
    }

    /// Replaces the text and checks it again.
    pub fn update(&mut self, text: String) {
        let compiled = compile(&self.uri, &text);
        self.set_text(text.clone());
        self.apply(text, compiled);
    }

    /// The compilation to look names up in, with the text its spans in this file refer to.
    fn names(&self) -> (&Compilation, &str) {
        if main_module(&self.compiled).is_some() {
            return (&self.compiled, &self.compiled_text);
        }
        match &self.last_parsed {
            Some((c, t)) => (c, t),
            None => (&self.compiled, &self.compiled_text),
        }
    }

    /// A range in the current text for a span of `compiled` (the text a compilation read: the
    /// current one, or the last that parsed). The two texts share a beginning and an end; an
    /// offset in the part that changed goes to the start of that part.
    fn current_range(&self, compiled: &str, start: usize, end: usize) -> Range {
        if std::ptr::eq(compiled, self.text.as_str()) {
            return self.range(start, end);
        }
        let (a, b) = (compiled.as_bytes(), self.text.as_bytes());
        let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let most = a.len().min(b.len()) - prefix;
        let suffix = a
            .iter()
            .rev()
            .zip(b.iter().rev())
            .take(most)
            .take_while(|(x, y)| x == y)
            .count();
        let map = |o: usize| {
            let mut o = if o <= prefix {
                o
            } else if o >= a.len() - suffix {
                o - (a.len() - suffix) + (b.len() - suffix)
            } else {
                prefix
            };
            o = o.min(self.text.len());
            while !self.text.is_char_boundary(o) {
                o -= 1;
            }
            o
        };
        let (s, e) = (map(start), map(end));
        self.range(s, e.max(s))
    }

    pub fn offset(&self, pos: Position) -> usize {
        self.index.offset(&self.text, pos)
    }

    // ---- diagnostics -----------------------------------------------------------------------

    /// Every diagnostic of the check, as `sae-dsl check` reports it: code, message, the primary
    /// label and help in the message, secondary labels as related information.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let c = &self.compiled;
        let anchor = main_module(c)
            .and_then(|m| m.imports.first().map(|i| i.span))
            .unwrap_or(Span::new(0, 0, 0));
        c.diags
            .iter()
            .map(|d| {
                let primary = d.labels.first();
                let (range, elsewhere) = match primary {
                    Some((s, _)) if s.file == 0 => (self.range(s.start, s.end), None),
                    Some((s, _)) => (self.range(anchor.start, anchor.end), Some(*s)),
                    None => (self.range(0, 0), None),
                };
                let mut message = d.message.clone();
                if let Some((_, label)) = primary.filter(|(_, l)| !l.is_empty()) {
                    message.push_str(&format!("\n{label}"));
                }
                if let Some(help) = &d.help {
                    message.push_str(&format!("\nhelp: {help}"));
                }
                let mut related = vec![];
                let rest = if elsewhere.is_some() {
                    &d.labels[..]
                } else {
                    d.labels.get(1..).unwrap_or(&[])
                };
                for (span, label) in rest {
                    if let Some(location) = self.location(c, *span) {
                        related.push(DiagnosticRelatedInformation {
                            location,
                            message: if label.is_empty() {
                                "here".into()
                            } else {
                                label.clone()
                            },
                        });
                    }
                }
                Diagnostic {
                    range,
                    severity: Some(match d.severity {
                        miette::Severity::Error => DiagnosticSeverity::ERROR,
                        miette::Severity::Warning => DiagnosticSeverity::WARNING,
                        miette::Severity::Advice => DiagnosticSeverity::HINT,
                    }),
                    code: Some(NumberOrString::String(d.code.as_str().to_string())),
                    source: Some("sae-dsl".into()),
                    message,
                    related_information: (!related.is_empty()).then_some(related),
                    ..Diagnostic::default()
                }
            })
            .collect()
    }

    fn range(&self, start: usize, end: usize) -> Range {
        self.index.range(&self.text, start, end)
    }

    /// A span of any file of a compilation as an LSP location.
    fn location(&self, c: &Compilation, span: Span) -> Option<Location> {
        if span.file >= c.sources.len() {
            return None;
        }
        let text = c.sources.text(span.file);
        let uri = if span.file == 0 {
            self.uri.clone()
        } else {
            file_uri(c, span.file)?
        };
        let index = LineIndex::new(text);
        Some(Location::new(uri, index.range(text, span.start, span.end)))
    }

    // ---- hover -----------------------------------------------------------------------------

    /// Markdown for what is under the cursor: a layer's shapes and parameters, a net's or
    /// prior's signature and doc comment, a latent clause's space, a penalty with its defaults,
    /// a constant's value, a built-in's signature and doc.
    pub fn hover(&self, pos: Position) -> Option<Hover> {
        let offset = self.offset(pos);
        let (start, end, word) = word_at(&self.text, offset)?;
        let value = self
            .hover_layer(start, word)
            .or_else(|| self.hover_clause(offset, start, word))
            .or_else(|| self.hover_definition(word))
            .or_else(|| hover_builtin(word))?;
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value,
            }),
            range: Some(self.range(start, end)),
        })
    }

    /// A layer or net call in a pipeline: the shapes it was checked with.
    fn hover_layer(&self, start: usize, word: &str) -> Option<String> {
        let sites = &self.compiled.layer_sites;
        let own: Vec<&LayerSite> = sites
            .iter()
            .filter(|s| s.call.file == 0 && s.call.start == start)
            .collect();
        if !own.is_empty() {
            let mut out = builtin_text("layer", word).unwrap_or_else(|| format!("`{word}`"));
            out.push_str("\n\n");
            let mut seen = vec![];
            for s in &own {
                let line = format!(
                    "`{}`: `{} -> {}`, {} parameters",
                    s.layer.op,
                    shape_str(&s.layer.input),
                    shape_str(&s.layer.output),
                    thousands(s.layer.params)
                );
                if !seen.contains(&line) {
                    seen.push(line);
                }
            }
            if seen.len() > 1 {
                out.push_str(&format!("used {} ways:\n\n", seen.len()));
            }
            out.push_str(
                &seen
                    .iter()
                    .take(8)
                    .map(|l| format!("- {l}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            return Some(out);
        }
        let expanded: Vec<&LayerSite> = sites
            .iter()
            .filter(|s| s.site.file == 0 && s.site.start == start && s.call != s.site)
            .collect();
        let (first, last) = (expanded.first()?, expanded.last()?);
        let params: u64 = expanded.iter().map(|s| s.layer.params).sum();
        let mut out = self
            .hover_definition(word)
            .unwrap_or_else(|| format!("`{word}`"));
        out.push_str(&format!(
            "\n\nhere: `{} -> {}`, {} parameters in {} layers",
            shape_str(&first.layer.input),
            shape_str(&last.layer.output),
            thousands(params),
            expanded.len()
        ));
        Some(out)
    }

    /// The keyword or space of a latent clause, or the penalty's name: what the check made of it.
    fn hover_clause(&self, offset: usize, start: usize, word: &str) -> Option<String> {
        let main = main_module(&self.compiled)?;
        let model = self.compiled.model.as_ref()?;
        let mut latents = 0;
        let mut penalties = 0;
        for clause in &main.clauses {
            let inside =
                clause.span.file == 0 && clause.span.start <= offset && offset <= clause.span.end;
            match &clause.kind {
                ClauseKind::Latent { prior, .. } => {
                    let on_prior = prior.span.start <= offset && offset <= prior.span.end;
                    if inside && !on_prior {
                        let l = model.latents.get(latents)?;
                        let prior = l.prior.to_string();
                        let prior = prior
                            .split(crate::ir::display::PROGRAM_NOTE)
                            .next()
                            .unwrap_or_default()
                            .trim_end();
                        return Some(format!(
                            "latent `{}`: {}, {} coordinates\n\nprior: `{prior}`",
                            l.name,
                            l.space,
                            l.space.dim()
                        ));
                    }
                    latents += 1;
                }
                ClauseKind::Penalty { call, .. } => {
                    if inside && call.name.span.start == start {
                        let p = model.penalties.get(penalties)?;
                        let mut out = builtin_text("penalty", word).unwrap_or_default();
                        let text = p.to_string();
                        out.push_str(&format!(
                            "\n\nchecked, with every default: `{}`",
                            text.lines().next().unwrap_or_default()
                        ));
                        return Some(out);
                    }
                    penalties += 1;
                }
                _ => {}
            }
        }
        None
    }

    /// A net, prior or constant of this file or its imports: its header and doc comment.
    fn hover_definition(&self, word: &str) -> Option<String> {
        let (c, _) = self.names();
        let def = find_definition(c, word)?;
        let mut out = format!("```sae\n{}\n```", def.header);
        if def.kind == "constant" {
            if let Some((_, v)) = c
                .model
                .as_ref()
                .and_then(|m| m.constants.iter().find(|(n, _)| n == word))
            {
                out.push_str(&format!("\n\nvalue: `{v}`"));
            }
        }
        if !def.doc.is_empty() {
            out.push_str("\n\n");
            out.push_str(&def.doc);
        }
        if def.file != 0 {
            out.push_str(&format!("\n\n*from {}*", c.sources.name(def.file)));
        }
        Some(out)
    }

    // ---- definition ------------------------------------------------------------------------

    /// Where the net, prior or constant under the cursor is defined, or the file an import names.
    pub fn definition(&self, pos: Position) -> Option<Location> {
        let offset = self.offset(pos);
        let (c, text) = self.names();
        if let Some(m) = main_module(c) {
            if let Some(imp) = m
                .imports
                .iter()
                .find(|i| i.span.start <= offset && offset <= i.span.end)
            {
                let uri = import_uri(&imp.path, self.dir().as_deref())?;
                return Some(Location::new(uri, Range::default()));
            }
        }
        let (_, _, word) = word_at(&self.text, offset)?;
        let def = find_definition(c, word)?;
        if def.file == 0 {
            // Spans of this file refer to the text that was compiled, maybe an earlier one.
            return Some(Location::new(
                self.uri.clone(),
                self.current_range(text, def.name.start, def.name.end),
            ));
        }
        self.location(c, def.name)
    }

    fn dir(&self) -> Option<PathBuf> {
        self.uri
            .to_file_path()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
    }

    // ---- completion ------------------------------------------------------------------------

    /// What may be written at the cursor: named arguments inside a call's parentheses, else the
    /// built-ins and definitions that fit the clause being written, and keywords at a line start.
    // long: one arm per kind of clause the cursor can be in, each listing what fits there.
    pub fn completion(&self, pos: Position) -> Vec<CompletionItem> {
        let offset = self.offset(pos);
        let code = mask(&self.text[..offset]);
        if let Some(callee) = enclosing_call(&code) {
            let args = self.named_arguments(callee);
            if !args.is_empty() {
                return args;
            }
        }
        let (c, _) = self.names();
        let mut items = vec![];
        let kind = clause_at(&code);
        let line_start = code.rfind('\n').map_or(0, |n| n + 1);
        let before =
            code[line_start..].trim_end_matches(|ch: char| ch.is_ascii_alphanumeric() || ch == '_');
        if before.trim().is_empty() && (before.is_empty() || kind.is_none()) {
            for k in CLAUSE_KEYWORDS {
                items.push(item(
                    k,
                    CompletionItemKind::KEYWORD,
                    format!("{k} ..."),
                    String::new(),
                ));
            }
        }
        let builtins = catalogue::reference();
        let add_kind = |items: &mut Vec<CompletionItem>, kinds: &[&str]| {
            for e in builtins.iter().filter(|e| kinds.contains(&e.kind)) {
                items.push(entry_item(e));
            }
        };
        match kind {
            Some("net" | "encoder" | "generator") => {
                add_kind(&mut items, &["layer"]);
                for (name, header, doc) in definitions_of(c, "net") {
                    items.push(item(&name, CompletionItemKind::MODULE, header, doc));
                }
            }
            Some("prior") => {
                let (dists, funcs) = catalogue::program_builtins();
                items.extend(dists.iter().map(entry_item));
                for f in funcs {
                    items.push(item(
                        f,
                        CompletionItemKind::FUNCTION,
                        format!("{f}(...)"),
                        "a function of prior programs".into(),
                    ));
                }
                for (name, header, doc) in definitions_of(c, "prior") {
                    items.push(item(&name, CompletionItemKind::CLASS, header, doc));
                }
            }
            Some("latent") => {
                if code[code.rfind("latent").unwrap_or(0)..].contains('~') {
                    add_kind(&mut items, &["prior"]);
                    for (name, header, doc) in definitions_of(c, "prior") {
                        items.push(item(&name, CompletionItemKind::CLASS, header, doc));
                    }
                } else {
                    for (s, d) in [
                        ("R^", "Euclidean space R^d"),
                        ("S^", "the unit sphere S^(d-1) in R^d"),
                        (
                            "simplex",
                            "the probability simplex with d vertices: simplex(d)",
                        ),
                    ] {
                        items.push(item(
                            s,
                            CompletionItemKind::TYPE_PARAMETER,
                            d.into(),
                            String::new(),
                        ));
                    }
                }
            }
            Some("data") => add_kind(&mut items, &["data set", "transform"]),
            Some("cost") => add_kind(&mut items, &["cost"]),
            Some("penalty") => add_kind(&mut items, &["penalty"]),
            Some("train") => {
                // After a setting's name, its values; elsewhere in the block, the settings.
                let head =
                    code.trim_end_matches(|ch: char| ch.is_ascii_alphanumeric() || ch == '_');
                let prev = head
                    .trim_end()
                    .rsplit(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .next()
                    .unwrap_or_default();
                match prev {
                    "optimizer" => add_kind(&mut items, &["optimizer"]),
                    "schedule" => add_kind(&mut items, &["schedule"]),
                    "validation" => add_kind(&mut items, &["validation"]),
                    _ => {
                        for name in catalogue::SETTINGS {
                            let default = catalogue::TRAIN_SETTINGS
                                .iter()
                                .find(|p| p.name == *name)
                                .and_then(|p| catalogue::default_text(p.default))
                                .map(|d| format!("{name} {d} (default)"))
                                .unwrap_or_else(|| format!("{name} ..."));
                            items.push(item(
                                name,
                                CompletionItemKind::PROPERTY,
                                default,
                                "a training setting".into(),
                            ));
                        }
                        return items;
                    }
                }
            }
            _ => {}
        }
        if matches!(
            kind,
            Some("penalty" | "net" | "encoder" | "generator" | "latent" | "train" | "let" | "data")
        ) {
            for (name, header, doc) in definitions_of(c, "constant") {
                items.push(item(&name, CompletionItemKind::CONSTANT, header, doc));
            }
        }
        items
    }

    /// The named arguments of `callee` (a built-in, net, prior or distribution).
    fn named_arguments(&self, callee: &str) -> Vec<CompletionItem> {
        let (c, _) = self.names();
        let mut params: Vec<(String, Option<String>, String)> = vec![];
        if let Some(def) = find_definition(c, callee).filter(|d| d.kind != "constant") {
            params = header_params(&def.header);
        } else {
            let (dists, _) = catalogue::program_builtins();
            let all = catalogue::reference();
            if let Some(e) = all.iter().chain(dists.iter()).find(|e| e.name == callee) {
                params = e
                    .params
                    .iter()
                    .map(|p| (p.name.to_string(), p.default.clone(), p.why.to_string()))
                    .collect();
            }
        }
        params
            .into_iter()
            .map(|(name, default, why)| {
                let detail = match &default {
                    Some(d) => format!("{name} = {d} (default)"),
                    None => format!("{name} (required)"),
                };
                let mut it = item(&name, CompletionItemKind::FIELD, detail, why);
                it.insert_text = Some(format!("{name} = "));
                it
            })
            .collect()
    }

    // ---- symbols and formatting ------------------------------------------------------------

    /// The file's outline: imports, constants, nets, priors and clauses.
    pub fn symbols(&self) -> Vec<DocumentSymbol> {
        let (c, text) = self.names();
        let Some(m) = main_module(c) else {
            return vec![];
        };
        let r = |s: Span| self.current_range(text, s.start, s.end);
        let mut out = vec![];
        for i in &m.imports {
            out.push(symbol(
                format!("import {}", i.path),
                SymbolKind::MODULE,
                r(i.span),
                r(i.span),
            ));
        }
        for l in &m.lets {
            out.push(symbol(
                l.name.name.clone(),
                SymbolKind::CONSTANT,
                r(l.span),
                r(l.name.span),
            ));
        }
        for n in &m.nets {
            out.push(symbol(
                n.name.name.clone(),
                SymbolKind::FUNCTION,
                r(n.span),
                r(n.name.span),
            ));
        }
        for p in &m.priors {
            out.push(symbol(
                p.name.name.clone(),
                SymbolKind::CLASS,
                r(p.span),
                r(p.name.span),
            ));
        }
        for cl in &m.clauses {
            let name = match &cl.kind {
                ClauseKind::Latent { name: Some(n), .. } => format!("latent {}", n.name),
                ClauseKind::Encoder(Some(n), _) => format!("encoder {}", n.name),
                ClauseKind::Penalty { call, on, .. } => match on {
                    Some(o) => format!("penalty {} on {}", call.name.name, o.name),
                    None => format!("penalty {}", call.name.name),
                },
                ClauseKind::Data(call, _) => format!("data {}", call.name.name),
                ClauseKind::Cost(e) => match &e.kind {
                    crate::syntax::ExprKind::Call(c) => format!("cost {}", c.name.name),
                    _ => "cost (expression)".to_string(),
                },
                _ => cl.keyword_name().to_string(),
            };
            out.push(symbol(name, SymbolKind::FIELD, r(cl.span), r(cl.keyword)));
        }
        out.sort_by_key(|s| (s.range.start.line, s.range.start.character));
        out
    }

    /// The edits that format the whole document; None when it does not parse.
    pub fn format(&self) -> Option<Vec<TextEdit>> {
        let formatted = format_source(0, &self.text).ok()?;
        if formatted == self.text {
            return Some(vec![]);
        }
        Some(vec![TextEdit::new(
            self.range(0, self.text.len()),
            formatted,
        )])
    }
}

/// The file name and folder a document's checks use (imports resolve beside the file).
fn file_of(uri: &Url) -> (String, Option<PathBuf>) {
    let path = uri.to_file_path().ok();
    let name = path
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "untitled.sae".into());
    let dir = path
        .as_ref()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf);
    (name, dir)
}

/// [`compile`] that stops early once `cancel` is set (a newer edit replaced the text).
pub(super) fn compile_cancellable(
    uri: &Url,
    text: &str,
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Compilation {
    let (name, dir) = file_of(uri);
    crate::driver::compile_cancellable(&name, text, dir.as_deref(), cancel)
}

/// Checks the text as the file of `uri`.
fn compile(uri: &Url, text: &str) -> Compilation {
    let (name, dir) = file_of(uri);
    compile_source(&name, text, dir.as_deref())
}

/// The main file's syntax tree when it parsed.
fn main_module(c: &Compilation) -> Option<&Module> {
    c.program.modules.first().filter(|m| m.file == 0)
}

/// The identifier around `offset` (also when the cursor sits just after it).
fn word_at(text: &str, offset: usize) -> Option<(usize, usize, &str)> {
    let is_word = |ch: char| ch.is_ascii_alphanumeric() || ch == '_';
    let offset = offset.min(text.len());
    if !text.is_char_boundary(offset) {
        return None;
    }
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|&(_, ch)| is_word(ch))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .char_indices()
        .find(|&(_, ch)| !is_word(ch))
        .map_or(text.len(), |(i, _)| offset + i);
    (start < end).then(|| (start, end, &text[start..end]))
}

/// The comment lines right above `start` in `text`, markers removed.
fn doc_above(text: &str, start: usize) -> String {
    let line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
    let mut lines = vec![];
    for line in text[..line_start].lines().rev() {
        let t = line.trim_start();
        let body = t.strip_prefix('#').or_else(|| t.strip_prefix("//"));
        match body {
            Some(b) => lines.push(b.strip_prefix(' ').unwrap_or(b).to_string()),
            None => break,
        }
    }
    lines.reverse();
    lines.join("\n")
}

/// The comment that ends the line of `end` (`let d = 16  # the latent size`), if any.
fn doc_after(text: &str, end: usize) -> String {
    let rest = text.get(end..).unwrap_or_default();
    let line = rest.split('\n').next().unwrap_or_default().trim();
    line.strip_prefix('#')
        .or_else(|| line.strip_prefix("//"))
        .map(|b| b.trim().to_string())
        .unwrap_or_default()
}

/// A net, prior or constant named `name` in the main file or its imports.
fn find_definition(c: &Compilation, name: &str) -> Option<Definition> {
    for m in &c.program.modules {
        let text = c.sources.text(m.file);
        let header = |start: usize, end: usize| {
            let h = &text[start..end];
            let h = h.find('{').map_or(h, |i| &h[..i]);
            h.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        if let Some(n) = m.nets.iter().find(|n| n.name.name == name) {
            return Some(Definition {
                file: m.file,
                name: n.name.span,
                kind: "net",
                header: header(n.span.start, n.span.end),
                doc: doc_above(text, n.span.start),
            });
        }
        if let Some(p) = m.priors.iter().find(|p| p.name.name == name) {
            return Some(Definition {
                file: m.file,
                name: p.name.span,
                kind: "prior",
                header: header(p.span.start, p.span.end),
                doc: doc_above(text, p.span.start),
            });
        }
        if let Some(l) = m.lets.iter().find(|l| l.name.name == name) {
            // The statement's span runs on over the comments after it; the code ends with the
            // value, and a comment on the same line documents the constant.
            let end = l.value.span.end.max(l.span.start);
            let line = text.get(l.span.start..end).unwrap_or_default();
            let above = doc_above(text, l.span.start);
            return Some(Definition {
                file: m.file,
                name: l.name.span,
                kind: "constant",
                header: line.split_whitespace().collect::<Vec<_>>().join(" "),
                doc: if above.is_empty() {
                    doc_after(text, end)
                } else {
                    above
                },
            });
        }
    }
    None
}

/// Name, header and doc of every definition of one kind (`net`, `prior`, `constant`).
fn definitions_of(c: &Compilation, kind: &str) -> Vec<(String, String, String)> {
    let mut names: Vec<String> = vec![];
    for m in &c.program.modules {
        match kind {
            "net" => names.extend(m.nets.iter().map(|n| n.name.name.clone())),
            "prior" => names.extend(m.priors.iter().map(|n| n.name.name.clone())),
            _ => names.extend(m.lets.iter().map(|n| n.name.name.clone())),
        }
    }
    names
        .into_iter()
        .filter_map(|n| find_definition(c, &n).map(|d| (n, d.header, d.doc)))
        .collect()
}

/// The parameters of a definition's header `net f(a, b = 2)` / `prior p(k: int = 3) on ...`:
/// (name, default, type).
fn header_params(header: &str) -> Vec<(String, Option<String>, String)> {
    let Some(open) = header.find('(') else {
        return vec![];
    };
    let mut depth = 0;
    let mut close = header.len();
    for (i, ch) in header[open..].char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth == 0 {
                    close = open + i;
                    break;
                }
            }
            _ => {}
        }
    }
    let inner = &header[open + 1..close];
    let mut parts = vec![];
    let (mut depth, mut last) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[last..i]);
                last = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[last..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (left, default) = match p.split_once('=') {
                Some((l, d)) => (l.trim(), Some(d.trim().to_string())),
                None => (p, None),
            };
            let (name, ty) = match left.split_once(':') {
                Some((n, t)) => (n.trim(), t.trim().to_string()),
                None => (left, String::new()),
            };
            (name.to_string(), default, ty)
        })
        .collect()
}

/// The text with comments and string contents replaced by spaces (same length).
fn mask(text: &str) -> String {
    // Every byte a space, then the code characters put back where they were.
    let mut out = vec![b' '; text.len()];
    for (i, ch) in crate::syntax::code_chars(text) {
        ch.encode_utf8(&mut out[i..i + ch.len_utf8()]);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The name of the call whose parentheses the end of `code` is inside.
fn enclosing_call(code: &str) -> Option<&str> {
    let mut depth = 0i32;
    for (i, ch) in code.char_indices().rev() {
        match ch {
            ')' | ']' => depth += 1,
            '[' => depth -= 1,
            '(' if depth == 0 => {
                let before = code[..i].trim_end();
                let (s, _, w) = word_at(before, before.len())?;
                return (s + w.len() == before.len()).then_some(w);
            }
            '(' => depth -= 1,
            '{' | '}' => return None,
            _ => {}
        }
    }
    None
}

/// The keyword of the item the end of `code` is in: the last line starting with one.
fn clause_at(code: &str) -> Option<&'static str> {
    for line in code.lines().rev().chain(code.ends_with('\n').then_some("")) {
        if let Some(k) = CLAUSE_KEYWORDS.iter().find(|k| {
            line.starts_with(**k)
                && !line[k.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        }) {
            return Some(k);
        }
    }
    None
}

/// Markdown for a built-in of one kind.
fn builtin_text(kind: &str, name: &str) -> Option<String> {
    let all = catalogue::reference();
    let e = all.iter().find(|e| e.kind == kind && e.name == name)?;
    Some(entry_markdown(e))
}

fn entry_markdown(e: &Entry) -> String {
    let mut out = format!("```sae\n{}\n```\n{} — {}", e.signature, e.kind, e.doc);
    let documented: Vec<String> = e
        .params
        .iter()
        .filter(|p| !p.why.is_empty())
        .map(|p| format!("- `{}`: {}", p.name, p.why))
        .collect();
    if !documented.is_empty() {
        out.push_str("\n\n");
        out.push_str(&documented.join("\n"));
    }
    out
}

/// Markdown for any built-in called `name` (every kind that has one).
fn hover_builtin(name: &str) -> Option<String> {
    let (dists, _) = catalogue::program_builtins();
    let all = catalogue::reference();
    let found: Vec<String> = all
        .iter()
        .chain(dists.iter())
        .filter(|e| e.name == name)
        .map(entry_markdown)
        .collect();
    (!found.is_empty()).then(|| found.join("\n\n---\n\n"))
}

fn item(label: &str, kind: CompletionItemKind, detail: String, doc: String) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail: Some(detail),
        documentation: (!doc.is_empty()).then(|| {
            Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: doc,
            })
        }),
        ..CompletionItem::default()
    }
}

fn entry_item(e: &Entry) -> CompletionItem {
    let kind = match e.kind {
        "layer" => CompletionItemKind::FUNCTION,
        "prior" | "distribution" => CompletionItemKind::CLASS,
        "data set" | "transform" => CompletionItemKind::REFERENCE,
        _ => CompletionItemKind::OPERATOR,
    };
    let defaults: Vec<String> = e
        .params
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("- `{}` = {d}", p.name),
            None => format!("- `{}` (required)", p.name),
        })
        .collect();
    let mut doc = format!("{} — {}", e.kind, e.doc);
    if !defaults.is_empty() {
        doc.push_str("\n\n");
        doc.push_str(&defaults.join("\n"));
    }
    item(e.name, kind, e.signature.clone(), doc)
}

#[allow(deprecated)] // `deprecated` is a required field of the struct
fn symbol(name: String, kind: SymbolKind, range: Range, selection_range: Range) -> DocumentSymbol {
    DocumentSymbol {
        name,
        detail: None,
        kind,
        tags: None,
        deprecated: None,
        range,
        selection_range,
        children: None,
    }
}

/// The URI of a file of a compilation other than the main one: a standard-library file is
/// served from a copy of the embedded text (see [`std_file`]).
fn file_uri(c: &Compilation, file: FileId) -> Option<Url> {
    let name = c.sources.name(file);
    if let Some(std) = name
        .strip_prefix("stdlib/")
        .and_then(|n| n.strip_suffix(".sae"))
    {
        if STDLIB
            .iter()
            .any(|(n, t)| *n == std && **t == **c.sources.text(file))
        {
            return Url::from_file_path(std_file(std)?).ok();
        }
    }
    let p = PathBuf::from(name);
    let abs = if p.is_absolute() {
        p
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    Url::from_file_path(abs.canonicalize().unwrap_or(abs)).ok()
}

/// The file an `import` names.
fn import_uri(path: &str, dir: Option<&Path>) -> Option<Url> {
    if let Some(name) = path.strip_prefix("std/") {
        return Url::from_file_path(std_file(name.trim_end_matches(".sae"))?).ok();
    }
    let base = dir.map(Path::to_path_buf).unwrap_or_default();
    [base.join(path), base.join(format!("{path}.sae"))]
        .into_iter()
        .find(|p| p.is_file())
        .and_then(|p| Url::from_file_path(p.canonicalize().unwrap_or(p)).ok())
}

/// A standard-library file written from the text embedded in this binary, so that "go to
/// definition" opens exactly what the checker used: under $XDG_CACHE_HOME (or ~/.cache, or the
/// temporary folder) in `sae-dsl/std-VERSION/`; written atomically when missing or different.
pub fn std_file(name: &str) -> Option<PathBuf> {
    let (_, text) = STDLIB.iter().find(|(n, _)| *n == name)?;
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base
        .join("sae-dsl")
        .join(format!("std-{}", env!("CARGO_PKG_VERSION")));
    let path = dir.join(format!("{name}.sae"));
    if std::fs::read_to_string(&path).ok().as_deref() != Some(*text) {
        std::fs::create_dir_all(&dir).ok()?;
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&tmp, text).ok()?;
        std::fs::rename(&tmp, &path).ok()?;
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        let dir = std::env::temp_dir();
        Document::new(
            Url::from_file_path(dir.join("lsp-unit.sae")).expect("uri"),
            text.to_string(),
        )
    }

    fn pos_of(d: &Document, needle: &str, plus: usize) -> Position {
        let at = d
            .text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not in the text"))
            + plus;
        d.index.position(&d.text, at)
    }

    fn hover_text(d: &Document, needle: &str) -> String {
        match d.hover(pos_of(d, needle, 1)).map(|h| h.contents) {
            Some(HoverContents::Markup(m)) => m.value,
            other => panic!("no hover at {needle}: {other:?}"),
        }
    }

    const MODEL: &str = "import \"std/nets\"\n\n# The weight.\nlet gamma = 10\n\n# A two-layer body.\nnet body(w = 16) {\n  linear(w) relu\n}\n\ndata rings(n = 64)\nlatent R^2 ~ normal()\nencoder { body(8) linear(2) }\ngenerator { mlp(2) }\npenalty gamma * sinkhorn(epsilon = 0.1)\ntrain { batch 32 epochs 1 }\n";

    #[test]
    fn hover_shows_shapes_signatures_docs_and_defaults() {
        let d = doc(MODEL);
        assert!(d.diagnostics().is_empty(), "{:?}", d.diagnostics());
        let h = hover_text(&d, "linear(2)");
        assert!(
            h.contains("linear(out, bias = true") && h.contains("`[8] -> [2]`, 18 parameters"),
            "{h}"
        );
        let h = hover_text(&d, "linear(w)");
        assert!(
            h.contains("`[2] -> [16]`") || h.contains("`[2] -> [8]`"),
            "{h}"
        );
        let h = hover_text(&d, "body(8)");
        assert!(
            h.contains("net body(w = 16)")
                && h.contains("A two-layer body.")
                && h.contains("here: `[2] -> [8]`, 24 parameters in 2 layers"),
            "{h}"
        );
        let h = hover_text(&d, "mlp(2)");
        assert!(
            h.contains("net mlp(out, hidden = 64)") && h.contains("*from stdlib/nets.sae*"),
            "{h}"
        );
        let h = hover_text(&d, "latent");
        assert!(h.contains("latent `z`: R^2, 2 coordinates"), "{h}");
        let h = hover_text(&d, "sinkhorn");
        assert!(
            h.contains("checked, with every default: `10 * sinkhorn(epsilon = 0.1, iterations = "),
            "{h}"
        );
        let h = hover_text(&d, "gamma *");
        assert!(
            h.contains("let gamma = 10") && h.contains("The weight."),
            "{h}"
        );
        let h = hover_text(&d, "normal()");
        assert!(h.contains("prior"), "{h}");
    }

    #[test]
    fn definitions_completion_symbols_and_formatting() {
        let d = doc(MODEL);
        let loc = d
            .definition(pos_of(&d, "body(8)", 1))
            .expect("body defined");
        assert_eq!(loc.range.start, pos_of(&d, "body(w", 0));
        let loc = d
            .definition(pos_of(&d, "gamma *", 0))
            .expect("gamma defined");
        assert_eq!(loc.range.start.line, 3);
        let loc = d.definition(pos_of(&d, "mlp(2)", 0)).expect("mlp defined");
        let path = loc.uri.to_file_path().expect("a file");
        let text = std::fs::read_to_string(&path).expect("the stdlib copy exists");
        assert!(text.contains("net mlp("), "{}", path.display());
        let loc = d
            .definition(pos_of(&d, "std/nets", 0))
            .expect("import resolves");
        assert!(loc.uri.path().ends_with("/nets.sae"));

        // Named arguments inside a call, with defaults.
        let labels =
            |items: Vec<CompletionItem>| items.into_iter().map(|i| i.label).collect::<Vec<_>>();
        let args = d.completion(pos_of(&d, "epsilon = 0.1)", 0));
        let sink: Vec<String> = labels(args.clone());
        assert!(
            sink.contains(&"epsilon".to_string()) && sink.contains(&"iterations".to_string()),
            "{sink:?}"
        );
        assert!(args
            .iter()
            .any(|i| i.detail.as_deref().is_some_and(|d| d.contains("(default)"))));
        // Layers and nets inside an encoder; priors after `~`; keywords at a line start.
        let in_encoder = labels(d.completion(pos_of(&d, "linear(2) }", 0)));
        for want in ["conv2d", "batch_norm", "body", "mlp"] {
            assert!(
                in_encoder.contains(&want.to_string()),
                "{want} missing: {in_encoder:?}"
            );
        }
        let after_tilde = labels(d.completion(pos_of(&d, "normal()", 0)));
        assert!(
            after_tilde.contains(&"dirichlet".to_string()),
            "{after_tilde:?}"
        );
        let at_start = labels(d.completion(pos_of(&d, "data rings", 0)));
        assert!(at_start.contains(&"penalty".to_string()), "{at_start:?}");
        let in_data = labels(d.completion(pos_of(&d, "rings(", 0)));
        assert!(in_data.contains(&"mnist".to_string()), "{in_data:?}");

        let names: Vec<String> = d.symbols().into_iter().map(|s| s.name).collect();
        assert_eq!(
            names[..4],
            ["import std/nets", "gamma", "body", "data rings"],
            "{names:?}"
        );
        assert_eq!(d.format(), Some(vec![]), "the model is formatted already");
        let messy = doc(&MODEL.replace(
            "encoder { body(8) linear(2) }",
            "encoder {body( 8 )->linear(2)}",
        ));
        let edits = messy.format().expect("parses");
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].new_text, MODEL);
    }

    #[test]
    fn names_survive_an_edit_that_does_not_parse() {
        let mut d = doc(MODEL);
        let broken = MODEL.replace(
            "encoder { body(8) linear(2) }",
            "encoder { body(8) linear(2 }",
        );
        d.update(broken);
        assert!(!d.diagnostics().is_empty());
        let labels: Vec<String> = d
            .completion(pos_of(&d, "linear(2 }", 0))
            .into_iter()
            .map(|i| i.label)
            .collect();
        assert!(labels.contains(&"body".to_string()), "{labels:?}");
        assert!(d.definition(pos_of(&d, "body(8)", 1)).is_some());
        d.update(MODEL.to_string());
        assert!(d.diagnostics().is_empty());
    }

    #[test]
    fn diagnostics_carry_codes_labels_help_and_related_locations() {
        let d = doc("data rings(n = 64)\nlatent R^2 ~ normal()\nencoder { linear(3) }\ngenerator { linear(2) }\npenalty 1 * sinkhorn()\n");
        let diags = d.diagnostics();
        let shape = diags
            .iter()
            .find(|x| matches!(&x.code, Some(NumberOrString::String(c)) if c == "sae::check::latent_shape"))
            .unwrap_or_else(|| panic!("{diags:?}"));
        assert!(shape.message.contains("help:"), "{}", shape.message);
        assert_eq!(shape.severity, Some(DiagnosticSeverity::ERROR));
        let d = doc("latent R^2 ~ normal(\n");
        let diags = d.diagnostics();
        assert_eq!(diags.len(), 1);
        assert!(
            matches!(&diags[0].code, Some(NumberOrString::String(c)) if c == "sae::parse::unclosed_bracket"),
            "{diags:?}"
        );
        // Nothing parsed: no outline, no formatting, no panic on any question.
        assert!(d.symbols().is_empty() && d.format().is_none());
        for line in 0..3 {
            for character in 0..30 {
                let p = Position::new(line, character);
                let _ = (d.hover(p), d.definition(p), d.completion(p));
            }
        }
    }

    #[test]
    fn a_constant_shows_its_own_comment_not_the_next_one() {
        let text = "let gamma = 10      # the penalty weight\nlet d = 16          # the latent size\n# The regularisation.\nlet eps = 0.1\n";
        let d = doc(text);
        let g = hover_text(&d, "gamma");
        assert!(
            g.contains("let gamma = 10\n") && g.contains("the penalty weight"),
            "{g}"
        );
        let dd = hover_text(&d, "d = 16");
        assert!(dd.contains("the latent size"), "{dd}");
        assert!(
            !dd.contains("regularisation"),
            "the next constant's doc leaked: {dd}"
        );
        let e = hover_text(&d, "eps");
        assert!(e.contains("The regularisation."), "{e}");
    }

    #[test]
    fn completion_in_train_offers_the_settings_then_their_values() {
        let text = "data rings(n = 64)\nlatent R^2 ~ normal()\nencoder { linear(2) }\ngenerator { linear(2) }\npenalty 1 * sinkhorn(epsilon = 0.1)\ntrain {\n  ep\n  optimizer ad\n}\n";
        let d = doc(text);
        let labels =
            |items: Vec<CompletionItem>| items.into_iter().map(|i| i.label).collect::<Vec<_>>();
        let settings = labels(d.completion(pos_of(&d, "ep\n", 2)));
        for want in ["optimizer", "batch", "epochs", "seed", "schedule"] {
            assert!(settings.contains(&want.to_string()), "{want}: {settings:?}");
        }
        assert!(!settings.contains(&"adam".to_string()), "{settings:?}");
        let optimizers = labels(d.completion(pos_of(&d, "ad\n", 2)));
        assert!(optimizers.contains(&"adam".to_string()), "{optimizers:?}");
        assert!(
            !optimizers.contains(&"epochs".to_string()),
            "{optimizers:?}"
        );
    }

    #[test]
    fn positions_follow_edits_while_the_file_does_not_parse() {
        let mut d = doc(MODEL);
        // Three lines inserted above, one of them broken: the last parse is used for names,
        // but locations are in the text as it is now.
        let edited = format!("let broken = (\n\n\n{MODEL}");
        d.update(edited);
        assert!(
            main_module(&d.compiled).is_none(),
            "the edit does not parse"
        );
        let loc = d
            .definition(pos_of(&d, "body(8)", 1))
            .expect("body still defined");
        assert_eq!(loc.range.start, pos_of(&d, "body(w", 0));
        let symbols = d.symbols();
        let body = symbols
            .iter()
            .find(|s| s.name == "body")
            .expect("body in the outline");
        assert_eq!(body.selection_range.start, pos_of(&d, "body(w", 0));
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let d = doc(&format!("\u{feff}{MODEL}"));
        assert!(d.diagnostics().is_empty(), "{:?}", d.diagnostics());
    }
}
