//! Stage 2, `check`: resolves names, binds and validates arguments, expands nets, infers every
//! shape and matches the encoder, prior and space; produces the IR ([`ir::Model`]).
//!
//! Entry point: [`check`]. It never stops at the first problem: every diagnostic of the program is
//! collected, and a model is returned only when none of them is an error.

mod args;
mod compat;
mod cost;
mod data;
mod latents;
mod model;
mod nets;
mod objective;
mod settings;
mod shapes;
mod values;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::catalogue::{names, LAYERS};
use shapes::{infer, name_of, stdlib_hint};
use values::{Env, Value};

use crate::diag::messages::{self as msg, Takes, Unknown};
use crate::diag::{unknown_help, Diag, Problems, Span};
use crate::ir::{self, shape_str, DataSource, LayerOp, Shape, Space};
use crate::load::Program;
use crate::prior::{self, Priors};
use crate::syntax::{
    Arg, Call, Clause, ClauseKind, Expr, ExprKind, Ident, NetDef, Pipeline, SpaceExpr,
};

/// The outcome of checking: the model when there was no error, and all diagnostics.
pub struct Checked {
    pub model: Option<ir::Model>,
    pub diags: Vec<Diag>,
    /// True when the main file has no model clauses (a library such as `stdlib/nets.sae`).
    pub library: bool,
    /// A library's prior programs, instantiated with their defaults (for `graph`).
    pub library_priors: Vec<(ir::Program, Space)>,
    /// Every layer instantiated, with where it is written: what editors show on hover.
    pub layer_sites: Vec<LayerSite>,
}

/// One layer of a checked network and the source it came from.
#[derive(Clone, Debug)]
pub struct LayerSite {
    /// The layer's own call (inside a net's body when it comes from a net).
    pub call: Span,
    /// The call in the model's pipeline it was expanded from (the same as `call` for a layer
    /// written in the pipeline itself).
    pub site: Span,
    pub layer: ir::Layer,
}

/// Largest tensor (elements per example) or parameter count accepted before allocation.
pub const MAX_ELEMENTS: i128 = 1 << 31;

/// Most layers one network may expand into (`repeat` and nets multiply).
pub const MAX_LAYERS: usize = 10_000;

/// Checks a loaded program whose main file is named `name`.
pub fn check(program: &Program, name: &str) -> Checked {
    let mut c = Checker::new(program);
    c.constants();
    c.share_constants();
    c.collect_nets();
    let main = program.main();
    if main.clauses.is_empty() {
        c.check_library();
        let mut diags = std::mem::take(&mut c.diags);
        let library_priors = c.priors.check_library(main, &mut diags);
        return Checked {
            model: None,
            diags: diags.into_vec(),
            library: true,
            library_priors,
            layer_sites: std::mem::take(&mut c.sites),
        };
    }
    let model = c.model(name, &main.clauses);
    let failed = c.diags.has_errors();
    Checked {
        model: if failed { None } else { model },
        diags: c.diags.into_vec(),
        library: false,
        library_priors: vec![],
        layer_sites: c.sites,
    }
}

struct Checker<'a> {
    program: &'a Program,
    diags: Problems,
    nets: HashMap<String, &'a NetDef>,
    priors: Priors<'a>,
    /// The latent components (name, space, declaration), once checked.
    components: Vec<(String, Space, Span)>,
    /// Which pipeline is being expanded (for the component layers).
    role: Role,
    /// The file-level constants (`let NAME = ...`), evaluated.
    consts: Env,
    /// Where each constant's value is written (in the file, or in a `--set` argument).
    const_spans: HashMap<String, Span>,
    /// Constants whose value was an error (reported once): their uses stay silent.
    failed_consts: std::collections::HashSet<String>,
    /// The user functions being expanded in constants (recursion check).
    fn_stack: Vec<String>,
    /// User-function calls expanded so far (bounded by `syntax::MAX_CALLS`).
    fn_calls: usize,
    /// Every layer instantiated so far, with its source.
    sites: Vec<LayerSite>,
    /// The nets being expanded, outermost first: name, call site, parameter names. An error
    /// inside a net (of a library, say) also labels the outermost call, and a net's parameter
    /// is not taken for a file constant of the same name.
    expanding: Vec<(String, Span, Vec<String>)>,
}

impl Flow {
    /// The last layer that changes values (shape changes, `reshape` and `flatten`, aside), with
    /// its source: what a pipeline's outputs are made of.
    fn last_value_layer(&self) -> Option<(&ir::Layer, &Span)> {
        self.layers
            .iter()
            .zip(&self.spans)
            .rev()
            .find(|(l, _)| !matches!(l.op, ir::LayerOp::Reshape { .. } | ir::LayerOp::Flatten))
    }
}

/// The pipeline being expanded.
#[derive(Clone, PartialEq)]
enum Role {
    /// A net of a library: components are not known.
    Library,
    /// An encoder; the components already encoded by earlier encoders, and every component
    /// that has an encoder at all.
    Encoder(Vec<String>, Vec<String>),
    Generator,
    /// A discriminator or other network that sees codes only.
    Other,
}

/// A pipeline being expanded: the current shape (None after an error) and the layers so far.
struct Flow {
    shape: Option<Shape>,
    layers: Vec<ir::Layer>,
    /// The source span of each layer (the call as written at the outermost level).
    spans: Vec<Span>,
    origin: Vec<String>,
    stack: Vec<String>,
}

impl<'a> Checker<'a> {
    /// A checker of `program` with its priors collected (their problems reported).
    fn new(program: &'a Program) -> Checker<'a> {
        let mut diags = Problems::new();
        let priors = Priors::collect(program, &mut diags);
        Checker {
            program,
            diags,
            nets: HashMap::new(),
            priors,
            components: vec![],
            role: Role::Library,
            consts: Env::new(),
            const_spans: HashMap::new(),
            failed_consts: Default::default(),
            fn_stack: vec![],
            fn_calls: 0,
            sites: vec![],
            expanding: vec![],
        }
    }

    /// Reports `d`; a label on a constant's name gets a second one where its value is given
    /// (the `let`, or the `--set` argument that overrides it).
    pub(super) fn err(&mut self, mut d: Diag) {
        let mut extra = vec![];
        for (span, _) in &d.labels {
            let text = self.program.sources.text(span.file);
            let Some(name) = text.get(span.start..span.end) else {
                continue;
            };
            if self
                .expanding
                .last()
                .is_some_and(|(_, _, params)| params.iter().any(|p| p == name))
            {
                continue;
            }
            if let Some(at) = self.const_spans.get(name) {
                if !d.labels.iter().any(|(s, _)| s == at) {
                    extra.push((*at, format!("`{name}` is given here")));
                }
            }
        }
        for (span, text) in extra {
            d = d.label(span, text);
        }
        if let Some((net, site, _)) = self.expanding.first() {
            if !d.labels.iter().any(|(s, _)| s == site) {
                let label = (*site, format!("in `{net}` as called here"));
                // Inside another file (a library's net), the user's call leads: editors and the
                // header place the diagnostic there.
                if d.file() != Some(site.file) {
                    d.labels.insert(0, label);
                } else {
                    d.labels.push(label);
                }
            }
        }
        self.diags.report(d);
    }

    /// Evaluates the `let` constants of every file, imported ones first, each seeing those
    /// before it.
    pub(super) fn constants(&mut self) {
        let mut spans: HashMap<String, Span> = HashMap::new();
        for m in self.program.modules.iter().rev() {
            for l in &m.lets {
                let name = &l.name.name;
                if let Some(prev) = spans.get(name) {
                    let mut d = msg::duplicate_definition(name, "a constant")
                        .label(l.name.span, "defined again here");
                    if prev.file == l.name.span.file {
                        d = d.label(*prev, "first defined here");
                    }
                    self.diags.report(d.help(
                        "give each constant one value; `--set` overrides it from the command line",
                    ));
                    continue;
                }
                if name == "pi" {
                    self.diags.report(
                        msg::shadows(name, "the built-in constant `pi` (3.14159...)")
                            .label(l.name.span, "used instead of the built-in from here on"),
                    );
                }
                spans.insert(name.clone(), l.name.span);
                self.const_spans.insert(name.clone(), l.value.span);
                match self.eval(&l.value, &Env::new()) {
                    Some(v) => {
                        self.consts.insert(name.clone(), v);
                    }
                    None => {
                        self.failed_consts.insert(name.clone());
                    }
                }
            }
        }
    }

    /// Passes the numeric constants (numbers, vectors, matrices) to the prior programs.
    fn share_constants(&mut self) {
        for (name, v) in &self.consts {
            if let Some((data, shape, int)) = numeric(v) {
                self.priors.set_constant(name, data, shape, int);
            }
        }
    }

    /// The main file's constants and their values, in order (for the IR and `graph`).
    fn constant_values(&self) -> Vec<(String, String)> {
        self.program
            .main()
            .lets
            .iter()
            .filter_map(|l| {
                let v = self.consts.get(&l.name.name)?;
                Some((l.name.name.clone(), v.source_text()))
            })
            .collect()
    }

    pub(super) fn collect_nets(&mut self) {
        let builtin = names(LAYERS);
        let main = self.program.main().file;
        for m in &self.program.modules {
            for n in &m.nets {
                let name = &n.name.name;
                if builtin.contains(&name.as_str()) {
                    self.diags.report(
                        msg::shadows(name, &format!("the built-in layer `{name}`"))
                            .label(n.name.span, "used instead of the layer in this program"),
                    );
                }
                if let Some(prev) = self.nets.get(name) {
                    // The main file's definition hides an imported one (a library may gain a
                    // net without breaking the files that import it).
                    if prev.name.span.file == main && n.name.span.file != main {
                        self.diags.report(
                            msg::shadows(
                                name,
                                &format!(
                                    "the net `{name}` of {}",
                                    self.program.sources.name(n.name.span.file)
                                ),
                            )
                            .label(prev.name.span, "used instead of the imported net"),
                        );
                        continue;
                    }
                    let mut d = msg::duplicate_definition(name, "a net")
                        .label(n.name.span, "defined again here");
                    if prev.name.span.file == n.name.span.file {
                        d = d.label(prev.name.span, "first defined here");
                    } else {
                        d = d.help(format!(
                            "the first definition is in {}; rename one of them",
                            self.program.sources.name(prev.name.span.file)
                        ));
                    }
                    self.diags.report(d);
                    continue;
                }
                for (i, par) in n.params.iter().enumerate() {
                    if let Some(first) = n.params[..i].iter().find(|q| q.name.name == par.name.name)
                    {
                        self.diags.report(
                            msg::duplicate_definition(&par.name.name, "a parameter of this net")
                                .label(par.name.span, "declared again here")
                                .label(first.name.span, "first declared here"),
                        );
                    }
                }
                self.nets.insert(n.name.name.clone(), n);
            }
        }
    }

    /// A library has no model; its nets are checked for names and arguments only, since their
    /// input shapes are known only where they are used.
    pub(super) fn check_library(&mut self) {
        let nets: Vec<&NetDef> = self.program.main().nets.iter().collect();
        for n in nets {
            let mut env = Env::new();
            for par in &n.params {
                let v = match &par.default {
                    Some(e) => self.eval(e, &Env::new()).unwrap_or(Value::Int(1)),
                    None => Value::Int(1),
                };
                env.insert(par.name.name.clone(), v);
            }
            let mut flow = Flow {
                shape: None,
                layers: vec![],
                spans: vec![],
                origin: vec![],
                stack: vec![n.name.name.clone()],
            };
            self.expand(&n.body, &env, &mut flow, None);
        }
    }
}

/// A constant as numbers: its values row-major, its shape, whether all are whole; None for
/// strings, booleans and ragged or deeper lists.
fn numeric(v: &Value) -> Option<(Vec<f64>, Vec<i64>, bool)> {
    match v {
        Value::Int(i) => Some((vec![*i as f64], vec![], true)),
        Value::Real(r) => Some((vec![*r], vec![], false)),
        Value::List(items) => {
            let parts: Vec<_> = items.iter().map(numeric).collect::<Option<_>>()?;
            let first = parts.first()?.1.clone();
            if first.len() > 1 || parts.iter().any(|p| p.1 != first) {
                return None;
            }
            let mut shape = vec![parts.len() as i64];
            shape.extend(&first);
            let int = parts.iter().all(|p| p.2);
            Some((parts.into_iter().flat_map(|p| p.0).collect(), shape, int))
        }
        _ => None,
    }
}

/// The numeric constants of a loaded program (for `sae-dsl prior`, which checks no model).
pub fn numeric_constants(program: &Program) -> Vec<(String, Vec<f64>, Vec<i64>, bool)> {
    let mut c = Checker::new(program);
    c.constants();
    c.consts
        .iter()
        .filter_map(|(n, v)| numeric(v).map(|(d, s, i)| (n.clone(), d, s, i)))
        .collect()
}
