//! Prior programs, part of stage 2 (`check`): `prior NAME(params) on SPACE { ... }` definitions
//! are checked and instantiated into [`ir::Program`]s, straight-line tensor code that draws a
//! whole batch in one pass.
//!
//! A program is checked when it is instantiated with the arguments of a call, so every parameter
//! is a constant: shapes are inferred through every statement, constant arithmetic is folded,
//! distribution parameters are range-checked where they are constants, calls of other priors and
//! mixtures are inlined, and the result is checked to lie in the declared space (a sphere prior
//! must end normalised or come from a sphere distribution; a simplex prior from Dirichlet or
//! softmax). Entry points: [`Priors::collect`], [`Priors::instantiate`], [`Priors::primitive`],
//! [`Priors::check_library`].

use crate::diag::FileId;
use crate::load::Program;
use std::collections::{HashMap, HashSet};

use crate::diag::messages::{self as msg, Takes, Unknown};
use crate::diag::{did_you_mean, Code, Diag, Problems, Span};
use crate::ir::{self, Arith, Func, Instr, Op, Prim, Space};
use crate::syntax::{
    Arg, BinOp, Call, Expr, ExprKind, FnDef, Module, PriorDef, SpaceExpr, StmtKind,
};

mod body;
mod dist;
pub(crate) mod expr;
mod learn;
mod values;

use crate::catalogue::distributions::*;
use values::*;

/// Whether `name` is a primitive distribution (usable directly in a `latent` clause).
pub fn is_primitive(name: &str) -> bool {
    name == "vmf" || PRIMS.iter().any(|(n, ..)| *n == name)
}

/// The names of the primitive distributions.
pub fn primitive_names() -> impl Iterator<Item = &'static str> {
    PRIMS.iter().map(|(n, ..)| *n)
}

/// Names a prior definition may not take.
pub fn reserved(name: &str) -> bool {
    is_primitive(name)
        || FUNCS.iter().any(|(n, _)| *n == name)
        || SPECIAL.contains(&name)
        || name == "pi"
}

/// The prior definitions of a program, by name.
pub struct Priors<'a> {
    defs: HashMap<String, &'a PriorDef>,
    /// User functions (`fn name(params) = expr`), expanded where called.
    fns: HashMap<String, &'a FnDef>,
    /// The file's numeric constants (`let g = (1 + sqrt(5)) / 2`), visible in every prior.
    consts: HashMap<String, Val>,
    /// The standard library's files (see [`Program::is_std`]).
    std_files: Vec<FileId>,
}

/// The warnings of a definition `def` of a prior or function (`kind`) that takes a built-in's
/// name, or (in the main file) the name of an imported `prev`; true when it hides `prev` that way
/// (the imported one is dropped). Definitions in the standard library hide nothing.
fn shadowing(
    program: &Program,
    diags: &mut Problems,
    kind: &str,
    def: &crate::syntax::Ident,
    prev: Option<&crate::syntax::Ident>,
) -> bool {
    let name = &def.name;
    if reserved(name) && !program.is_std(def.span.file) {
        diags.report(
            msg::shadows(name, &format!("the built-in `{name}`"))
                .label(def.span, "used instead of the built-in in this file"),
        );
    }
    let main = program.main().file;
    match prev {
        Some(prev) if prev.span.file == main && def.span.file != main => {
            let file = program.sources.name(def.span.file);
            diags.report(
                msg::shadows(name, &format!("the {kind} `{name}` of {file}"))
                    .label(prev.span, format!("used instead of the imported {kind}")),
            );
            true
        }
        _ => false,
    }
}

/// Adds `param = value` to a call of `def` that does not give that parameter (by name or by
/// position); whether it was added.
fn fill_parameter(def: &PriorDef, call: &mut Call, param: String, value: ExprKind) -> bool {
    let Some(position) = def.params.iter().position(|p| p.name.name == param) else {
        return false;
    };
    let positional = call.args.iter().filter(|a| a.name.is_none()).count();
    let named = call
        .args
        .iter()
        .any(|a| a.name.as_ref().is_some_and(|n| n.name == param));
    if named || positional > position {
        return false;
    }
    let at = call.span;
    call.args.push(Arg {
        name: Some(crate::syntax::Ident {
            name: param,
            span: at,
        }),
        value: Expr {
            kind: value,
            span: at,
        },
        span: at,
    });
    call.parens = true;
    true
}

/// One instantiation in progress.
struct Inst<'p, 'a> {
    defs: &'p HashMap<String, &'a PriorDef>,
    fns: &'p HashMap<String, &'a FnDef>,
    /// The functions being expanded, outermost first (recursion check).
    fn_stack: Vec<String>,
    /// User-function calls expanded so far (bounded by `syntax::MAX_CALLS`).
    fn_calls: usize,
    consts: &'p HashMap<String, Val>,
    /// The standard library's files: their calls always mean the built-ins.
    std_files: &'p [FileId],
    diags: &'p mut Problems,
    seen: HashSet<(Code, String, usize, usize)>,
    instrs: Vec<Instr>,
    /// Learnable parameters declared so far (`param` statements).
    params: Vec<ir::PriorParam>,
    /// The priors being instantiated, outermost first, with their call sites (recursion check).
    stack: Vec<(String, Span)>,
}

struct Binding {
    /// None when the statement that binds it failed (uses are then silent).
    val: Option<Val>,
    span: Span,
    used: bool,
    param: bool,
}

/// The names bound so far in a prior program (parameters, draws, bindings).
type Scope = HashMap<String, Binding>;

impl<'a> Priors<'a> {
    /// Collects every module's prior definitions and functions. A definition of a built-in's
    /// name hides the built-in (a warning), one in the main file hides an imported one (a
    /// warning); other duplicates are errors.
    pub fn collect(program: &'a Program, diags: &mut Problems) -> Priors<'a> {
        let mut defs: HashMap<String, &'a PriorDef> = HashMap::new();
        for m in &program.modules {
            for p in &m.priors {
                let name = &p.name.name;
                if shadowing(
                    program,
                    diags,
                    "prior",
                    &p.name,
                    defs.get(name).map(|d| &d.name),
                ) {
                    continue;
                }
                if let Some(prev) = defs.get(name) {
                    diags.report(
                        msg::duplicate_definition(name, "a prior")
                            .label(p.name.span, "defined again here")
                            .label(prev.name.span, "first defined here")
                            .help("rename one of them"),
                    );
                    continue;
                }
                defs.insert(name.clone(), p);
            }
        }
        let mut fns: HashMap<String, &'a FnDef> = HashMap::new();
        for m in &program.modules {
            for f in &m.fns {
                let name = &f.name.name;
                if shadowing(
                    program,
                    diags,
                    "function",
                    &f.name,
                    fns.get(name).map(|d| &d.name),
                ) {
                    continue;
                }
                let taken = if defs.contains_key(name) {
                    Some("a prior")
                } else {
                    fns.get(name).map(|_| "a function")
                };
                if let Some(what) = taken {
                    diags.report(
                        msg::duplicate_definition(name, what)
                            .label(f.name.span, "a function cannot take this name")
                            .help("choose another name for this function"),
                    );
                    continue;
                }
                fns.insert(name.clone(), f);
            }
        }
        Priors {
            defs,
            fns,
            consts: HashMap::new(),
            std_files: program.std_files.clone(),
        }
    }

    /// Makes a file constant visible to every prior program: its values (row-major), shape
    /// ([] a number, [n] a vector, [k, d] a matrix) and whether they are whole numbers. A name
    /// bound in a prior (parameter, draw, binding) hides it there.
    pub fn set_constant(&mut self, name: &str, data: Vec<f64>, shape: Vec<i64>, int: bool) {
        self.consts
            .insert(name.to_string(), Val::Const { data, shape, int });
    }

    /// The names of the user functions, sorted.
    pub(crate) fn function_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.fns.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    /// The user function called `name`, if any.
    pub(crate) fn function(&self, name: &str) -> Option<&'a FnDef> {
        self.fns.get(name).copied()
    }

    /// Whether a prior called `name` is defined.
    pub fn has(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    /// Names of the defined priors, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.defs.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    fn inst<'p>(&'p self, diags: &'p mut Problems) -> Inst<'p, 'a> {
        Inst {
            defs: &self.defs,
            fns: &self.fns,
            fn_stack: vec![],
            fn_calls: 0,
            consts: &self.consts,
            std_files: &self.std_files,
            diags,
            seen: HashSet::new(),
            instrs: vec![],
            params: vec![],
            stack: vec![],
        }
    }

    /// The parameter that decides a prior's dimension, when its space is written with one
    /// (`on R^d`, `on S^(d - 1)`, `on simplex(d)`, `on R^(d + 3)`): its name, and the value that
    /// gives `target`. None when the space is fixed or written otherwise.
    pub fn dimension_parameter(&self, name: &str, target: &Space) -> Option<(String, i64)> {
        let def = self.defs.get(name)?;
        // The number written in the space: R^n and simplex(n) have n coordinates, S^n has n + 1.
        let (written, expr) = match (&def.space, target) {
            (SpaceExpr::Pow { base, exponent, .. }, Space::Euclidean { dim })
                if base.name == "R" =>
            {
                (*dim, exponent)
            }
            (SpaceExpr::Pow { base, exponent, .. }, Space::Sphere { dim }) if base.name == "S" => {
                (*dim - 1, exponent)
            }
            (SpaceExpr::Call(c), Space::Simplex { dim })
                if c.name.name == "simplex" && c.args.len() == 1 =>
            {
                (*dim, &c.args[0].value)
            }
            (SpaceExpr::Pow { base, exponent, .. }, Space::Torus { k }) if base.name == "T" => {
                (*k, exponent)
            }
            (SpaceExpr::Call(c), Space::Ball { dim, .. })
                if c.name.name == "ball" && !c.args.is_empty() =>
            {
                (*dim, &c.args[0].value)
            }
            _ => return None,
        };
        let param = |e: &Expr| match &e.kind {
            ExprKind::Call(c) if c.args.is_empty() && !c.parens => def
                .params
                .iter()
                .find(|p| p.name.name == c.name.name)
                .map(|p| p.name.name.clone()),
            _ => None,
        };
        let int = |e: &Expr| match e.kind {
            ExprKind::Int(k) => Some(k),
            _ => None,
        };
        let (p, value) = match &expr.kind {
            ExprKind::Binary(BinOp::Sub, a, b) => (param(a)?, written.checked_add(int(b)?)?),
            ExprKind::Binary(BinOp::Add, a, b) => (param(a)?, written.checked_sub(int(b)?)?),
            _ => (param(expr)?, written),
        };
        (value >= 1).then_some((p, value))
    }

    /// `call` with the dimension parameter added from the latent space `target`, when the prior
    /// has one (see [`Priors::dimension_parameter`]) and the call does not give it; likewise a
    /// ball's curvature written as a parameter of the prior (`on ball(d, curvature)`).
    pub fn with_dimension(&self, call: &Call, target: &Space) -> Option<Call> {
        let def = self.defs.get(&call.name.name)?;
        let mut out = call.clone();
        let mut changed = false;
        if let Some((param, value)) = self.dimension_parameter(&call.name.name, target) {
            changed |= fill_parameter(def, &mut out, param, ExprKind::Int(value));
        }
        // The ball's curvature, when the prior's space writes it as a parameter.
        if let (SpaceExpr::Call(c), Space::Ball { c: curvature, .. }) = (&def.space, target) {
            let written = c
                .args
                .iter()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == "curvature"))
                .or_else(|| c.args.get(1).filter(|a| a.name.is_none()));
            let param = written.and_then(|a| match &a.value.kind {
                ExprKind::Call(p) if p.args.is_empty() && !p.parens => def
                    .params
                    .iter()
                    .find(|q| q.name.name == p.name.name)
                    .map(|q| q.name.name.clone()),
                _ => None,
            });
            if let Some(param) = param {
                changed |= fill_parameter(def, &mut out, param, ExprKind::Real(*curvature));
            }
        }
        changed.then_some(out)
    }

    /// Instantiates the prior called by `call` (which must be defined): the program, its
    /// declared space and the span of that declaration.
    pub fn instantiate(
        &self,
        call: &Call,
        diags: &mut Problems,
    ) -> Option<(ir::Program, Space, Span)> {
        let def = self.defs.get(&call.name.name)?;
        let mut inst = self.inst(diags);
        let mut args = vec![];
        for a in &call.args {
            let v = inst.expr(&a.value, &mut Scope::new())?;
            args.push((a, v));
        }
        let bound = inst.bind(def, &args, call.span)?;
        let shown = bound
            .iter()
            .map(|(n, v)| format!("{n} = {}", show(v)))
            .collect::<Vec<_>>()
            .join(", ");
        let (val, space) = inst.run(def, bound, call.span)?;
        let result = inst.lift(&val, "result");
        let result = inst.as_vector(result, space.dim());
        Some((
            ir::Program {
                call: format!("{}({shown})", def.name.name),
                instrs: inst.instrs,
                result,
                params: inst.params,
            },
            space,
            def.space.span(),
        ))
    }

    /// A primitive distribution used directly as a latent prior, e.g. `latent R^4 ~ laplace()`:
    /// a one-draw program whose dimension defaults to the space's.
    pub fn primitive(
        &self,
        call: &Call,
        space: Space,
        space_span: Span,
        diags: &mut Problems,
    ) -> Option<ir::Program> {
        let mut inst = self.inst(diags);
        let d = inst.distribution(call, &mut Scope::new(), Some(space.dim()))?;
        let val = inst.draw(&d, &call.name.name)?;
        inst.result_in_space(&val, space, call.span, space_span, &call.name.name)?;
        let result = inst.lift(&val, "result");
        let result = inst.as_vector(result, space.dim());
        Some(ir::Program {
            call: call_text(call, &inst.instrs),
            instrs: inst.instrs,
            result,
            params: inst.params,
        })
    }

    /// Checks the priors of a library file: each is instantiated with its defaults, or with
    /// placeholder values (2 for `int`, 1 for `real`) for parameters without one; range errors
    /// that placeholders may cause are not reported. Returns the programs, for `graph`.
    pub fn check_library(
        &self,
        module: &'a Module,
        diags: &mut Problems,
    ) -> Vec<(ir::Program, Space)> {
        let mut out = vec![];
        for def in &module.priors {
            if self.defs.get(&def.name.name).map(|d| d.span) != Some(def.span) {
                continue;
            }
            // A sink of its own: placeholder values may cause range errors that are not shown.
            let mut local = Problems::new();
            let mut inst = self.inst(&mut local);
            let mut bound = vec![];
            let mut placeholder = false;
            for p in &def.params {
                let v = match &p.default {
                    Some(e) => inst.expr(e, &mut Scope::new()),
                    None => {
                        placeholder = true;
                        Some(match p.ty.as_ref().map(|t| t.name.as_str()) {
                            Some("int") => Val::Const {
                                data: vec![2.0],
                                shape: vec![],
                                int: true,
                            },
                            _ => Val::scalar(1.0),
                        })
                    }
                };
                if let Some(v) = v {
                    bound.push((p.name.name.clone(), v));
                }
            }
            let shown = bound
                .iter()
                .map(|(n, v)| format!("{n} = {}", show(v)))
                .collect::<Vec<_>>()
                .join(", ");
            let ran = if bound.len() == def.params.len() {
                inst.run(def, bound, def.name.span)
            } else {
                None
            };
            let program = ran.map(|(val, space)| {
                let r = inst.lift(&val, "result");
                let r = inst.as_vector(r, space.dim());
                (
                    ir::Program {
                        call: format!("{}({shown})", def.name.name),
                        instrs: std::mem::take(&mut inst.instrs),
                        result: r,
                        params: std::mem::take(&mut inst.params),
                    },
                    space,
                )
            });
            drop(inst);
            diags.report_all(
                local
                    .into_vec()
                    .into_iter()
                    .filter(|d| !(placeholder && d.code == Code::InvalidValue)),
            );
            out.extend(program);
        }
        out
    }
}

impl<'p, 'a> Inst<'p, 'a> {
    pub(super) fn err(&mut self, d: Diag) {
        let d = self.with_site(d);
        let key = (
            d.code,
            d.message.clone(),
            d.labels.first().map_or(0, |l| l.0.start),
            d.labels.first().map_or(0, |l| l.0.file),
        );
        if self.seen.insert(key) {
            self.diags.report(d);
        }
    }

    /// Adds the innermost call site to a diagnostic raised inside an instantiated prior.
    /// When the diagnostic lies in another file than the call (a standard-library or imported
    /// prior), the call site becomes the primary label: the user's mistake is in their file.
    pub(super) fn with_site(&self, d: Diag) -> Diag {
        match self.stack.last() {
            Some((name, site)) if d.labels.iter().all(|(s, _)| s != site) => {
                let other_file = d.file().is_some_and(|f| f != site.file);
                let mut d = d.label(*site, format!("in `{name}` as called here"));
                if other_file {
                    d.labels.rotate_right(1);
                }
                d
            }
            _ => d,
        }
    }

    pub(super) fn push(&mut self, name: &str, shape: Vec<i64>, int: bool, op: Op) -> usize {
        self.instrs.push(Instr {
            name: name.to_string(),
            shape,
            int,
            op,
        });
        self.instrs.len() - 1
    }

    /// A register holding `v` (constants become `Const` instructions).
    pub(super) fn lift(&mut self, v: &Val, name: &str) -> usize {
        match v {
            Val::Reg { reg, .. } => *reg,
            Val::Const { data, shape, int } => {
                self.push(name, shape.clone(), *int, Op::Const(data.clone()))
            }
            Val::Dist(_) => self.push(name, vec![], false, Op::Const(vec![0.0])),
        }
    }

    /// A scalar result of a one-dimensional prior becomes a vector of one.
    pub(super) fn as_vector(&mut self, reg: usize, d: i64) -> usize {
        if self.instrs[reg].shape.is_empty() && d == 1 {
            let name = self.instrs[reg].name.clone();
            return self.push(&name, vec![1], false, Op::Concat(vec![reg]));
        }
        reg
    }
}
