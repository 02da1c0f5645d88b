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

use std::collections::{HashMap, HashSet};

use crate::diag::{did_you_mean, Code, Diag, Span};
use crate::ir::{self, Arith, Func, Instr, Op, Prim, Space};
use crate::syntax::{Arg, BinOp, Call, Expr, ExprKind, Module, PriorDef, SpaceExpr, StmtKind};

/// Where the values of a register lie, as far as the checker can tell.
#[derive(Clone, Copy, Debug, PartialEq)]
enum On {
    Any,
    /// Every coordinate is positive (Gamma, exponential, exp, ...).
    Positive,
    Sphere,
    Simplex,
}

/// A value while checking: a constant, a random register, or a distribution not yet drawn.
#[derive(Clone, Debug)]
enum Val {
    Const {
        data: Vec<f64>,
        shape: Vec<i64>,
        int: bool,
    },
    Reg {
        reg: usize,
        shape: Vec<i64>,
        int: bool,
        on: On,
        /// For integer draws: the number of values (0..card), for indexing checks.
        card: Option<i64>,
    },
    Dist(Box<DistV>),
}

#[derive(Clone, Debug)]
enum DistV {
    Prim {
        prim: Prim,
        args: Vec<Val>,
        shape: Vec<i64>,
    },
    Prior {
        name: String,
        args: Vec<(String, Val)>,
        span: Span,
    },
    Mixture {
        weights: Vec<f64>,
        comps: Vec<DistV>,
        span: Span,
    },
}

impl Val {
    fn shape(&self) -> &[i64] {
        match self {
            Val::Const { shape, .. } | Val::Reg { shape, .. } => shape,
            Val::Dist(_) => &[],
        }
    }
    fn int(&self) -> bool {
        matches!(
            self,
            Val::Const { int: true, .. } | Val::Reg { int: true, .. }
        )
    }
    fn scalar(x: f64) -> Val {
        Val::Const {
            data: vec![x],
            shape: vec![],
            int: false,
        }
    }
    /// A constant scalar's value.
    fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Const { data, shape, .. } if shape.is_empty() => Some(data[0]),
            _ => None,
        }
    }
    fn on(&self) -> On {
        match self {
            Val::Reg { on, .. } => *on,
            Val::Const { data, shape, .. } if shape.len() == 1 => const_on(data),
            _ => On::Any,
        }
    }
    fn describe(&self) -> String {
        match self {
            Val::Dist(_) => "a distribution".into(),
            v => {
                let kind = if matches!(v, Val::Const { .. }) {
                    "constant"
                } else {
                    "random"
                };
                let what = match v.shape() {
                    [] if v.int() => "integer".to_string(),
                    [] => "number".to_string(),
                    [n] => format!("vector of {n}"),
                    s => format!("{} x {} matrix", s[0], s[1]),
                };
                format!("a {kind} {what}")
            }
        }
    }
}

/// Whether a constant vector lies on the unit sphere or the simplex.
fn const_on(data: &[f64]) -> On {
    let norm: f64 = data.iter().map(|x| x * x).sum::<f64>().sqrt();
    let sum: f64 = data.iter().sum();
    if (norm - 1.0).abs() < 1e-9 {
        On::Sphere
    } else if data.iter().all(|&x| x >= 0.0) && (sum - 1.0).abs() < 1e-9 {
        On::Simplex
    } else {
        On::Any
    }
}

/// The largest dimension or number of categories of a draw (the batch multiplies it).
const MAX_DIM: f64 = (1 << 20) as f64;

/// The primitive distributions: name, distribution, parameters (name, default).
const PRIMS: &[(&str, Prim, &[(&str, Option<f64>)])] = &[
    (
        "normal",
        Prim::Normal,
        &[("mean", Some(0.0)), ("std", Some(1.0))],
    ),
    (
        "uniform",
        Prim::Uniform,
        &[("low", Some(0.0)), ("high", Some(1.0))],
    ),
    ("uniform_sphere", Prim::UniformSphere, &[]),
    ("dirichlet", Prim::Dirichlet, &[("alpha", None)]),
    (
        "gamma",
        Prim::Gamma,
        &[("shape", None), ("rate", Some(1.0))],
    ),
    ("beta", Prim::Beta, &[("a", None), ("b", None)]),
    ("categorical", Prim::Categorical, &[("weights", None)]),
    ("bernoulli", Prim::Bernoulli, &[("p", Some(0.5))]),
    (
        "laplace",
        Prim::Laplace,
        &[("loc", Some(0.0)), ("scale", Some(1.0))],
    ),
    ("exponential", Prim::Exponential, &[("rate", Some(1.0))]),
    (
        "von_mises_fisher",
        Prim::VonMisesFisher,
        &[("mu", None), ("kappa", None)],
    ),
];

const FUNCS: &[(&str, Func)] = &[
    ("exp", Func::Exp),
    ("log", Func::Log),
    ("sin", Func::Sin),
    ("cos", Func::Cos),
    ("sqrt", Func::Sqrt),
    ("abs", Func::Abs),
    ("tanh", Func::Tanh),
    ("sigmoid", Func::Sigmoid),
    ("floor", Func::Floor),
    ("softmax", Func::Softmax),
    ("normalize", Func::Normalize),
    ("normalise", Func::Normalize),
    ("sum", Func::Sum),
];

/// Names a prior program can call besides functions and priors.
const SPECIAL: &[&str] = &["mixture", "concat", "vmf"];

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
}

/// One instantiation in progress.
struct Inst<'p, 'a> {
    defs: &'p HashMap<String, &'a PriorDef>,
    diags: &'p mut Vec<Diag>,
    seen: HashSet<(Code, String, usize, usize)>,
    instrs: Vec<Instr>,
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

type Env = HashMap<String, Binding>;

impl<'a> Priors<'a> {
    /// Collects every module's prior definitions; duplicates and reserved names are diagnostics.
    pub fn collect(modules: &'a [Module], diags: &mut Vec<Diag>) -> Priors<'a> {
        let mut defs: HashMap<String, &'a PriorDef> = HashMap::new();
        for m in modules {
            for p in &m.priors {
                let name = &p.name.name;
                if reserved(name) {
                    diags.push(
                        Diag::error(
                            Code::DuplicateDefinition,
                            format!("`{name}` is a built-in distribution or function"),
                        )
                        .label(p.name.span, "a prior cannot take this name")
                        .help("choose another name for this prior"),
                    );
                    continue;
                }
                if let Some(prev) = defs.get(name) {
                    diags.push(
                        Diag::error(
                            Code::DuplicateDefinition,
                            format!("prior `{name}` is defined twice"),
                        )
                        .label(p.name.span, "defined again here")
                        .label(prev.name.span, "first defined here")
                        .help("rename one of them"),
                    );
                    continue;
                }
                defs.insert(name.clone(), p);
            }
        }
        Priors { defs }
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

    fn inst<'p>(&'p self, diags: &'p mut Vec<Diag>) -> Inst<'p, 'a> {
        Inst {
            defs: &self.defs,
            diags,
            seen: HashSet::new(),
            instrs: vec![],
            stack: vec![],
        }
    }

    /// Instantiates the prior called by `call` (which must be defined): the program, its
    /// declared space and the span of that declaration.
    pub fn instantiate(
        &self,
        call: &Call,
        diags: &mut Vec<Diag>,
    ) -> Option<(ir::Program, Space, Span)> {
        let def = self.defs.get(&call.name.name)?;
        let mut inst = self.inst(diags);
        let mut args = vec![];
        for a in &call.args {
            let v = inst.expr(&a.value, &mut Env::new())?;
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
        diags: &mut Vec<Diag>,
    ) -> Option<ir::Program> {
        let mut inst = self.inst(diags);
        let d = inst.distribution(call, &mut Env::new(), Some(space.dim()))?;
        let val = inst.draw(&d, &call.name.name)?;
        inst.result_in_space(&val, space, call.span, space_span, &call.name.name)?;
        let result = inst.lift(&val, "result");
        let result = inst.as_vector(result, space.dim());
        Some(ir::Program {
            call: call_text(call, &inst.instrs),
            instrs: inst.instrs,
            result,
        })
    }

    /// Checks the priors of a library file: each is instantiated with its defaults, or with
    /// placeholder values (2 for `int`, 1 for `real`) for parameters without one; range errors
    /// that placeholders may cause are not reported. Returns the programs, for `graph`.
    pub fn check_library(
        &self,
        module: &'a Module,
        diags: &mut Vec<Diag>,
    ) -> Vec<(ir::Program, Space)> {
        let mut out = vec![];
        for def in &module.priors {
            if self.defs.get(&def.name.name).map(|d| d.span) != Some(def.span) {
                continue;
            }
            let mut local = vec![];
            let mut inst = self.inst(&mut local);
            let mut bound = vec![];
            let mut placeholder = false;
            for p in &def.params {
                let v = match &p.default {
                    Some(e) => inst.expr(e, &mut Env::new()),
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
                    },
                    space,
                )
            });
            drop(inst);
            diags.extend(
                local
                    .into_iter()
                    .filter(|d| !(placeholder && d.code == Code::InvalidValue)),
            );
            out.extend(program);
        }
        out
    }
}

/// A constant as written back in a resolved call.
fn show(v: &Val) -> String {
    match v {
        Val::Const { data, shape, .. } if shape.is_empty() => ir::num(data[0]),
        Val::Const { data, .. } => format!(
            "[{}]",
            data.iter()
                .map(|x| ir::num(*x))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "?".into(),
    }
}

/// `laplace(%0, %1)` for a directly used primitive: the call with its constants filled in.
fn call_text(call: &Call, instrs: &[Instr]) -> String {
    match instrs.last() {
        Some(Instr {
            op: Op::Draw(p, args),
            shape,
            ..
        }) => {
            let shown: Vec<String> = args
                .iter()
                .map(|&a| match &instrs[a].op {
                    Op::Const(v) if v.len() == 1 || v.iter().all(|x| *x == v[0]) => ir::num(v[0]),
                    Op::Const(v) => format!("[{} values]", v.len()),
                    _ => format!("%{a}"),
                })
                .collect();
            let dim = shape
                .first()
                .map(|d| format!(", dim {d}"))
                .unwrap_or_default();
            format!("{}({}{dim})", p.name(), shown.join(", "))
        }
        _ => call.name.name.clone(),
    }
}

/// The values of constants laid end to end, when every value is a constant.
fn all_const(vals: &[Val]) -> Option<Vec<f64>> {
    let mut out = vec![];
    for v in vals {
        match v {
            Val::Const { data, .. } => out.extend_from_slice(data),
            _ => return None,
        }
    }
    Some(out)
}

/// Broadcast shape of two operands (a scalar broadcasts over anything).
fn broadcast(a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    if a.is_empty() {
        Some(b.to_vec())
    } else if b.is_empty() || a == b {
        Some(a.to_vec())
    } else {
        None
    }
}

fn shape_words(s: &[i64]) -> String {
    match s {
        [] => "a scalar".into(),
        [n] => format!("a vector of {n}"),
        s => format!("a {} x {} matrix", s[0], s[1]),
    }
}

impl<'p, 'a> Inst<'p, 'a> {
    fn err(&mut self, d: Diag) {
        let d = self.with_site(d);
        let key = (
            d.code,
            d.message.clone(),
            d.labels.first().map_or(0, |l| l.0.start),
            d.labels.first().map_or(0, |l| l.0.file),
        );
        if self.seen.insert(key) {
            self.diags.push(d);
        }
    }

    /// Adds the innermost call site to a diagnostic raised inside an instantiated prior.
    fn with_site(&self, d: Diag) -> Diag {
        match self.stack.last() {
            Some((name, site)) if d.labels.iter().all(|(s, _)| s != site) => {
                d.label(*site, format!("in `{name}` as called here"))
            }
            _ => d,
        }
    }

    fn push(&mut self, name: &str, shape: Vec<i64>, int: bool, op: Op) -> usize {
        self.instrs.push(Instr {
            name: name.to_string(),
            shape,
            int,
            op,
        });
        self.instrs.len() - 1
    }

    /// A register holding `v` (constants become `Const` instructions).
    fn lift(&mut self, v: &Val, name: &str) -> usize {
        match v {
            Val::Reg { reg, .. } => *reg,
            Val::Const { data, shape, int } => {
                self.push(name, shape.clone(), *int, Op::Const(data.clone()))
            }
            Val::Dist(_) => self.push(name, vec![], false, Op::Const(vec![0.0])),
        }
    }

    /// A scalar result of a one-dimensional prior becomes a vector of one.
    fn as_vector(&mut self, reg: usize, d: i64) -> usize {
        if self.instrs[reg].shape.is_empty() && d == 1 {
            let name = self.instrs[reg].name.clone();
            return self.push(&name, vec![1], false, Op::Concat(vec![reg]));
        }
        reg
    }

    /// Binds a call's arguments to a definition's parameters; arguments must be constants.
    fn bind(
        &mut self,
        def: &PriorDef,
        args: &[(&Arg, Val)],
        site: Span,
    ) -> Option<Vec<(String, Val)>> {
        let mut slots: Vec<Option<(Val, Span)>> = vec![None; def.params.len()];
        let mut ok = true;
        let mut positional = 0;
        for (a, v) in args {
            let i = match &a.name {
                None => {
                    let i = positional;
                    positional += 1;
                    if i >= def.params.len() {
                        self.err(
                            Diag::error(
                                Code::ArgCount,
                                format!(
                                    "`{}` takes {} arguments, found {}",
                                    def.name.name,
                                    def.params.len(),
                                    args.len()
                                ),
                            )
                            .label(a.span, "one argument too many")
                            .label(def.name.span, "defined here"),
                        );
                        ok = false;
                        continue;
                    }
                    i
                }
                Some(n) => match def.params.iter().position(|p| p.name.name == n.name) {
                    Some(i) => i,
                    None => {
                        let names: Vec<&str> =
                            def.params.iter().map(|p| p.name.name.as_str()).collect();
                        let help = match did_you_mean(&n.name, names.iter().copied()) {
                            Some(c) => format!(
                                "did you mean `{c}`? `{}` takes {}",
                                def.name.name,
                                names.join(", ")
                            ),
                            None => format!("`{}` takes {}", def.name.name, names.join(", ")),
                        };
                        self.err(
                            Diag::error(
                                Code::UnknownParameter,
                                format!("`{}` has no parameter `{}`", def.name.name, n.name),
                            )
                            .label(n.span, "unknown parameter")
                            .help(help),
                        );
                        ok = false;
                        continue;
                    }
                },
            };
            if slots[i].is_some() {
                self.err(
                    Diag::error(
                        Code::DuplicateArgument,
                        format!("`{}` is given twice", def.params[i].name.name),
                    )
                    .label(a.span, "given again here"),
                );
                ok = false;
                continue;
            }
            if !matches!(v, Val::Const { .. }) {
                self.err(
                    Diag::error(
                        Code::ArgType,
                        format!(
                            "the arguments of prior `{}` must be constants, found {}",
                            def.name.name,
                            v.describe()
                        ),
                    )
                    .label(a.value.span, "not known when the model is compiled")
                    .help("a prior's parameters fix its shape and space, so they are constants; to use a random value, write the statements inline"),
                );
                ok = false;
                continue;
            }
            slots[i] = Some((v.clone(), a.value.span));
        }
        let mut out = vec![];
        for (p, slot) in def.params.iter().zip(slots) {
            let (v, span) = match slot {
                Some(s) => s,
                None => match &p.default {
                    Some(e) => {
                        let v = self.expr(e, &mut Env::new())?;
                        (v, e.span)
                    }
                    None => {
                        self.err(
                            Diag::error(
                                Code::MissingArgument,
                                format!(
                                    "prior `{}` needs a value for `{}`",
                                    def.name.name, p.name.name
                                ),
                            )
                            .label(site, format!("`{}` is missing", p.name.name))
                            .label(p.name.span, "declared here without a default"),
                        );
                        ok = false;
                        continue;
                    }
                },
            };
            let ty = p.ty.as_ref().map(|t| t.name.as_str());
            let fits = match ty {
                None => true,
                Some("int") => v.shape().is_empty() && v.int(),
                Some("real") => v.shape().is_empty(),
                Some("vector") => v.shape().len() == 1,
                Some(_) => true,
            };
            if !fits {
                self.err(
                    Diag::error(
                        Code::ArgType,
                        format!(
                            "`{}` is declared `{}`, found {}",
                            p.name.name,
                            ty.unwrap_or(""),
                            v.describe()
                        ),
                    )
                    .label(span, format!("not of type `{}`", ty.unwrap_or("")))
                    .label(p.name.span, "declared here"),
                );
                ok = false;
                continue;
            }
            out.push((p.name.name.clone(), v));
        }
        ok.then_some(out)
    }

    /// Runs a definition's statements with bound parameters: the returned value and the space.
    fn run(
        &mut self,
        def: &PriorDef,
        bound: Vec<(String, Val)>,
        site: Span,
    ) -> Option<(Val, Space)> {
        if let Some(i) = self.stack.iter().position(|(n, _)| *n == def.name.name) {
            let chain: Vec<&str> = self.stack[i..]
                .iter()
                .map(|(n, _)| n.as_str())
                .chain([def.name.name.as_str()])
                .collect();
            self.err(
                Diag::error(
                    Code::RecursivePrior,
                    format!("prior `{}` calls itself", def.name.name),
                )
                .label(site, "this call recurses")
                .help(format!(
                    "a prior program is unrolled into tensor code, so it cannot recurse: {}",
                    chain.join(" -> ")
                )),
            );
            return None;
        }
        for t in def.params.iter().filter_map(|p| p.ty.as_ref()) {
            if !["int", "real", "vector"].contains(&t.name.as_str()) {
                let help = match did_you_mean(&t.name, ["int", "real", "vector"]) {
                    Some(c) => format!(
                        "did you mean `{c}`? parameter types are `int`, `real` and `vector`"
                    ),
                    None => "parameter types are `int`, `real` and `vector`".into(),
                };
                self.err(
                    Diag::error(
                        Code::ArgType,
                        format!("unknown parameter type `{}`", t.name),
                    )
                    .label(t.span, "not a type")
                    .help(help),
                );
            }
        }
        let mut env = Env::new();
        for (p, (name, v)) in def.params.iter().zip(bound) {
            env.insert(
                name,
                Binding {
                    val: Some(v),
                    span: p.name.span,
                    used: false,
                    param: true,
                },
            );
        }
        self.stack.push((def.name.name.clone(), site));
        let out = self.body(def, &mut env);
        self.stack.pop();
        out
    }

    fn body(&mut self, def: &PriorDef, env: &mut Env) -> Option<(Val, Space)> {
        let space = self.space(&def.space, env);
        let mut result: Option<(Val, Span)> = None;
        let mut failed = false;
        for st in &def.body {
            if let Some((_, rspan)) = &result {
                self.err(
                    Diag::error(Code::PriorReturn, "statement after `return`")
                        .label(st.span, "never runs")
                        .label(*rspan, "the program returns here")
                        .help("`return` ends a prior program; move it to the end"),
                );
                failed = true;
                break;
            }
            match &st.kind {
                StmtKind::Draw(name, e) | StmtKind::Let(name, e) => {
                    let start = self.instrs.len();
                    let v = self.expr(e, env);
                    let v = match (&st.kind, v) {
                        (_, None) => None,
                        (StmtKind::Draw(..), Some(Val::Dist(d))) => self.draw(&d, &name.name),
                        (StmtKind::Draw(..), Some(v)) => {
                            self.err(
                                Diag::error(
                                    Code::ArgType,
                                    format!(
                                        "`~` draws from a distribution, but this is {}",
                                        v.describe()
                                    ),
                                )
                                .label(e.span, "not a distribution")
                                .help(format!("bind a value with `=`: `{} = ...`", name.name)),
                            );
                            None
                        }
                        (_, Some(v)) => Some(v),
                    };
                    let Some(v) = v else {
                        failed = true;
                        env.entry(name.name.clone()).or_insert(Binding {
                            val: None,
                            span: name.span,
                            used: true,
                            param: false,
                        });
                        continue;
                    };
                    // The register computed by this statement takes the variable's name.
                    if let Val::Reg { reg, .. } = &v {
                        if *reg >= start {
                            self.instrs[*reg].name = name.name.clone();
                        }
                    }
                    if let Some(prev) = env.get(&name.name) {
                        let what = if prev.param {
                            "a parameter"
                        } else {
                            "a variable"
                        };
                        self.err(
                            Diag::error(
                                Code::DuplicateDefinition,
                                format!("`{}` is already {what} of this prior", name.name),
                            )
                            .label(name.span, "bound again here")
                            .label(prev.span, "first bound here")
                            .help("names in a prior program are bound once; choose a new name"),
                        );
                        failed = true;
                        continue;
                    }
                    env.insert(
                        name.name.clone(),
                        Binding {
                            val: Some(v),
                            span: name.span,
                            used: false,
                            param: false,
                        },
                    );
                }
                StmtKind::Return(e) => match self.expr(e, env) {
                    Some(v) => result = Some((v, e.span)),
                    None => {
                        failed = true;
                        result = Some((Val::scalar(0.0), e.span));
                    }
                },
            }
        }
        // Unused names, in source order.
        // (After an error, names may look unused only because their users failed.)
        let mut unused: Vec<(&String, &Binding)> = env
            .iter()
            .filter(|(n, b)| !failed && !b.used && !n.starts_with('_'))
            .collect();
        unused.sort_by_key(|(_, b)| b.span.start);
        let warnings: Vec<Diag> = unused
            .into_iter()
            .map(|(n, b)| {
                let what = if b.param { "parameter" } else { "variable" };
                Diag::warning(Code::UnusedVariable, format!("{what} `{n}` is never used"))
                    .label(b.span, "never used")
                    .help(format!(
                        "remove it, or start its name with `_` (`_{n}`) to keep it"
                    ))
            })
            .collect();
        for w in warnings {
            self.err(w);
        }
        let Some((val, rspan)) = result else {
            self.err(
                Diag::error(
                    Code::PriorReturn,
                    format!("prior `{}` does not return a value", def.name.name),
                )
                .label(def.end, "the program ends here without `return`")
                .label(def.name.span, "in this prior")
                .help("end the program with `return NAME`, the sample it draws"),
            );
            return None;
        };
        if failed {
            return None;
        }
        let space = space?;
        if let Val::Dist(_) = val {
            self.err(
                Diag::error(
                    Code::ArgType,
                    "a prior returns a sample, not a distribution",
                )
                .label(rspan, "a distribution")
                .help("draw from it first: `z ~ ...` then `return z`"),
            );
            return None;
        }
        self.result_in_space(&val, space, rspan, def.space.span(), &def.name.name)?;
        Some((val, space))
    }

    /// The result's shape and set must match the declared space.
    fn result_in_space(
        &mut self,
        val: &Val,
        space: Space,
        at: Span,
        space_span: Span,
        name: &str,
    ) -> Option<()> {
        let d = space.dim();
        let shape = val.shape().to_vec();
        let fits = shape == vec![d] || (shape.is_empty() && d == 1);
        if !fits {
            self.err(
                Diag::error(
                    Code::ShapeMismatch,
                    format!(
                        "`{name}` returns {} but its space {space} has {d} coordinates",
                        shape_words(&shape)
                    ),
                )
                .label(at, format!("{} here", shape_words(&shape)))
                .label(space_span, format!("{d} coordinates declared here")),
            );
            return None;
        }
        let on = val.on();
        let why = match (space, on) {
            (Space::Sphere { .. }, On::Sphere) | (Space::Simplex { .. }, On::Simplex) => None,
            (Space::Euclidean { .. }, _) => None,
            (Space::Sphere { .. }, _) => Some((
                "is not known to lie on the unit sphere",
                "end with `normalize(...)`, or draw it from `uniform_sphere` or `von_mises_fisher`",
            )),
            (Space::Simplex { .. }, _) => Some((
                "is not known to lie on the simplex",
                "end with `softmax(...)` or `x / sum(x)` for positive x, or draw it from `dirichlet`",
            )),
        };
        if let Some((what, help)) = why {
            let origin = match on {
                On::Simplex => " (it lies on the simplex)",
                On::Sphere => " (it lies on the sphere)",
                On::Positive | On::Any => "",
            };
            self.err(
                Diag::error(
                    Code::PriorResult,
                    format!("the result of `{name}` {what}{origin}"),
                )
                .label(at, "returned here")
                .label(space_span, format!("declared on {space}"))
                .help(help),
            );
            return None;
        }
        Some(())
    }

    fn space(&mut self, s: &SpaceExpr, env: &mut Env) -> Option<Space> {
        let (base, arg, span) = match s {
            SpaceExpr::Pow {
                base,
                exponent,
                span,
            } => (base.name.as_str(), Some(exponent), *span),
            SpaceExpr::Call(c) => (
                c.name.name.as_str(),
                c.args.first().map(|a| &a.value),
                c.span,
            ),
        };
        let kind = match (s, base) {
            (SpaceExpr::Pow { .. }, "R") => 0,
            (SpaceExpr::Pow { .. }, "S") => 1,
            (SpaceExpr::Call(_), "simplex") => 2,
            _ => {
                self.err(
                    Diag::error(Code::UnknownSpace, format!("unknown space `{base}`"))
                        .label(span, "not a latent space")
                        .help("spaces are written `R^d`, `S^k` or `simplex(d)`"),
                );
                return None;
            }
        };
        let arg = arg?;
        let v = self.expr(arg, env)?;
        let n = match v.as_f64() {
            Some(x) if v.int() => x as i64,
            _ => {
                self.err(
                    Diag::error(
                        Code::ArgType,
                        format!(
                            "a space dimension must be a constant integer, found {}",
                            v.describe()
                        ),
                    )
                    .label(arg.span, "not an integer"),
                );
                return None;
            }
        };
        let (space, min) = match kind {
            0 => (Space::Euclidean { dim: n }, 1),
            1 => (Space::Sphere { dim: n + 1 }, 1),
            _ => (Space::Simplex { dim: n }, 2),
        };
        if n < min || n > 1 << 20 {
            self.err(
                Diag::error(
                    Code::InvalidValue,
                    format!("invalid dimension {n} for `{base}`"),
                )
                .label(arg.span, "out of range"),
            );
            return None;
        }
        Some(space)
    }

    // ---- expressions ---------------------------------------------------------------------------

    fn expr(&mut self, e: &Expr, env: &mut Env) -> Option<Val> {
        match &e.kind {
            ExprKind::Int(i) => Some(Val::Const {
                data: vec![*i as f64],
                shape: vec![],
                int: true,
            }),
            ExprKind::Real(r) => Some(Val::scalar(*r)),
            ExprKind::Str(_) | ExprKind::Bool(_) => {
                self.err(
                    Diag::error(Code::ArgType, "prior programs compute with numbers only")
                        .label(e.span, "not a number"),
                );
                None
            }
            ExprKind::List(items) => self.list(items, e.span, env),
            ExprKind::Call(c) if !c.parens => self.name(c, env),
            ExprKind::Call(c) => self.call(c, env),
            ExprKind::Neg(x) => {
                let v = self.value(x, env)?;
                Some(match v {
                    Val::Const { data, shape, int } => Val::Const {
                        data: data.iter().map(|x| -x).collect(),
                        shape,
                        int,
                    },
                    Val::Reg {
                        reg, shape, int, ..
                    } => {
                        let r = self.push("neg", shape.clone(), int, Op::Neg(reg));
                        Val::Reg {
                            reg: r,
                            shape,
                            int,
                            on: On::Any,
                            card: None,
                        }
                    }
                    Val::Dist(_) => unreachable!("value() rejects distributions"),
                })
            }
            ExprKind::Binary(op, a, b) => {
                let va = self.value(a, env);
                let vb = self.value(b, env);
                self.binary(*op, va?, vb?, a.span, b.span)
            }
            ExprKind::Index(a, i) => {
                let va = self.value(a, env);
                let vi = self.value(i, env);
                self.index(va?, vi?, a.span, i.span)
            }
        }
    }

    /// An expression that must be a value, not a distribution.
    fn value(&mut self, e: &Expr, env: &mut Env) -> Option<Val> {
        let v = self.expr(e, env)?;
        if let Val::Dist(_) = v {
            self.err(
                Diag::error(Code::ArgType, "a distribution is not a value")
                    .label(e.span, "a distribution")
                    .help("draw from it first with `~`, e.g. `x ~ normal(0, 1)`, then use `x`"),
            );
            return None;
        }
        Some(v)
    }

    fn name(&mut self, c: &Call, env: &mut Env) -> Option<Val> {
        if let Some(b) = env.get_mut(&c.name.name) {
            b.used = true;
            return b.val.clone();
        }
        if c.name.name == "pi" {
            return Some(Val::scalar(std::f64::consts::PI));
        }
        if is_primitive(&c.name.name) || self.defs.contains_key(&c.name.name) {
            return self.call(c, env);
        }
        let mut known: Vec<&str> = env.keys().map(String::as_str).collect();
        known.push("pi");
        known.sort();
        let help = match did_you_mean(&c.name.name, known.iter().copied()) {
            Some(k) => format!("did you mean `{k}`?"),
            None => format!(
                "names here: {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.err(
            Diag::error(Code::UnknownName, format!("unknown name `{}`", c.name.name))
                .label(c.name.span, "not bound before this point")
                .help(help),
        );
        None
    }

    fn list(&mut self, items: &[Expr], span: Span, env: &mut Env) -> Option<Val> {
        let mut vals = vec![];
        for x in items {
            vals.push(self.expr(x, env));
        }
        let vals: Vec<Val> = vals.into_iter().collect::<Option<_>>()?;
        if vals.is_empty() {
            self.err(
                Diag::error(Code::ArgType, "an empty list")
                    .label(span, "no elements")
                    .help("a vector needs at least one element"),
            );
            return None;
        }
        if vals.iter().any(|v| matches!(v, Val::Dist(_))) {
            self.err(
                Diag::error(Code::ArgType, "a list of distributions")
                    .label(span, "distributions cannot be elements")
                    .help(
                        "for a mixture write `mixture(normal(...), normal(...), weights = [...])`",
                    ),
            );
            return None;
        }
        let shape0 = vals[0].shape().to_vec();
        if let Some((i, v)) = vals.iter().enumerate().find(|(_, v)| v.shape() != shape0) {
            self.err(
                Diag::error(
                    Code::ShapeMismatch,
                    format!(
                        "list elements differ in shape: {} and {}",
                        shape_words(&shape0),
                        shape_words(v.shape())
                    ),
                )
                .label(items[i].span, shape_words(v.shape()))
                .label(items[0].span, shape_words(&shape0))
                .help("to join vectors end to end write `concat(a, b)`"),
            );
            return None;
        }
        if shape0.len() > 1 {
            self.err(
                Diag::error(
                    Code::ShapeMismatch,
                    "lists nest at most two deep (a matrix)",
                )
                .label(span, "too deep"),
            );
            return None;
        }
        let mut shape = vec![vals.len() as i64];
        shape.extend(&shape0);
        let int = vals.iter().all(Val::int);
        if let Some(data) = all_const(&vals) {
            return Some(Val::Const { data, shape, int });
        }
        let regs: Vec<usize> = vals.iter().map(|v| self.lift(v, "element")).collect();
        let reg = self.push("list", shape.clone(), int, Op::Stack(regs));
        Some(Val::Reg {
            reg,
            shape,
            int,
            on: On::Any,
            card: None,
        })
    }

    fn binary(&mut self, op: BinOp, a: Val, b: Val, sa: Span, sb: Span) -> Option<Val> {
        let Some(shape) = broadcast(a.shape(), b.shape()).filter(|s| s.len() <= 1) else {
            let msg = if a.shape().len() > 1 || b.shape().len() > 1 {
                "arithmetic on a matrix (a list of vectors); index a row first".to_string()
            } else {
                format!(
                    "dimension mismatch: {} and {}",
                    shape_words(a.shape()),
                    shape_words(b.shape())
                )
            };
            self.err(
                Diag::error(Code::ShapeMismatch, msg)
                    .label(sa, shape_words(a.shape()))
                    .label(sb, shape_words(b.shape()))
                    .help("arithmetic works on equal shapes, or a scalar with anything"),
            );
            return None;
        };
        let int = a.int() && b.int() && matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul);
        let arith = match op {
            BinOp::Add => Arith::Add,
            BinOp::Sub => Arith::Sub,
            BinOp::Mul => Arith::Mul,
            BinOp::Div => Arith::Div,
            BinOp::Pow => Arith::Pow,
        };
        if let Val::Const { data, .. } = &b {
            if op == BinOp::Div && data.contains(&0.0) {
                self.err(
                    Diag::error(Code::InvalidValue, "division by zero")
                        .label(sb, "zero")
                        .help("divide by a non-zero number"),
                );
                return None;
            }
        }
        if let (Val::Const { data: x, .. }, Val::Const { data: y, .. }) = (&a, &b) {
            let n = shape.first().copied().unwrap_or(1) as usize;
            let get = |v: &Vec<f64>, i: usize| if v.len() == 1 { v[0] } else { v[i] };
            let data = (0..n)
                .map(|i| {
                    let (p, q) = (get(x, i), get(y, i));
                    match op {
                        BinOp::Add => p + q,
                        BinOp::Sub => p - q,
                        BinOp::Mul => p * q,
                        BinOp::Div => p / q,
                        BinOp::Pow => p.powf(q),
                    }
                })
                .collect();
            let int = int
                || (a.int()
                    && b.int()
                    && op == BinOp::Div
                    && x.iter().zip(y.iter().cycle()).all(|(p, q)| p % q == 0.0));
            return Some(Val::Const { data, shape, int });
        }
        let ra = self.lift(&a, "const");
        let rb = self.lift(&b, "const");
        // `x / sum(x)` with positive x lies on the simplex.
        let normalised = op == BinOp::Div
            && matches!(a.on(), On::Positive | On::Simplex)
            && self.instrs[rb].op == Op::Apply(Func::Sum, ra);
        let on = if normalised { On::Simplex } else { On::Any };
        let reg = self.push(
            arith.symbol(),
            shape.clone(),
            int,
            Op::Binary(arith, ra, rb),
        );
        Some(Val::Reg {
            reg,
            shape,
            int,
            on,
            card: None,
        })
    }

    fn index(&mut self, a: Val, i: Val, sa: Span, si: Span) -> Option<Val> {
        let len = match a.shape().first() {
            Some(&n) => n,
            None => {
                self.err(
                    Diag::error(Code::ShapeMismatch, "indexing a scalar")
                        .label(sa, "a scalar")
                        .help("index a vector or a list of vectors"),
                );
                return None;
            }
        };
        if !i.shape().is_empty() || !i.int() {
            self.err(
                Diag::error(
                    Code::ArgType,
                    format!("an index must be an integer, found {}", i.describe()),
                )
                .label(si, "not an integer")
                .help("index with a constant or a draw from `categorical`"),
            );
            return None;
        }
        let out_shape = a.shape()[1..].to_vec();
        match (&a, &i) {
            (Val::Const { data, int, .. }, Val::Const { data: ix, .. }) => {
                let k = ix[0] as i64;
                if k < 0 || k >= len {
                    self.err(
                        Diag::error(
                            Code::InvalidValue,
                            format!("index {k} is out of range 0..{len}"),
                        )
                        .label(si, "out of range")
                        .label(sa, format!("{len} elements")),
                    );
                    return None;
                }
                let w = out_shape.iter().product::<i64>() as usize;
                let k = k as usize;
                Some(Val::Const {
                    data: data[k * w..(k + 1) * w].to_vec(),
                    shape: out_shape,
                    int: *int,
                })
            }
            _ => {
                let bound = match &i {
                    Val::Const { data, .. } => Some(data[0] as i64 + 1),
                    Val::Reg { card, .. } => *card,
                    Val::Dist(_) => None,
                };
                match bound {
                    Some(b) if b <= len && b >= 1 => {}
                    Some(b) => {
                        self.err(
                            Diag::error(
                                Code::InvalidValue,
                                format!("this index takes values 0 to {}, but the list has {len} elements (0 to {})", b - 1, len - 1),
                            )
                            .label(si, format!("{b} possible values"))
                            .label(sa, format!("{len} elements"))
                            .help("draw the index with as many categories as there are elements"),
                        );
                        return None;
                    }
                    None => {
                        self.err(
                            Diag::error(
                                Code::ArgType,
                                "a random index must come straight from `categorical` or `bernoulli`",
                            )
                            .label(si, "its range is not known")
                            .help("draw it with `c ~ categorical(k)` and index with `c`, so that its range is checked"),
                        );
                        return None;
                    }
                }
                let on = if out_shape.len() == 1 {
                    match &a {
                        Val::Const { data, .. } => {
                            let w = out_shape[0] as usize;
                            let ons: Vec<On> = data.chunks(w).map(const_on).collect();
                            if ons.iter().all(|o| *o == ons[0]) {
                                ons[0]
                            } else {
                                On::Any
                            }
                        }
                        Val::Reg { on, .. } => *on,
                        Val::Dist(_) => On::Any,
                    }
                } else {
                    On::Any
                };
                let int = a.int();
                let ra = self.lift(&a, "list");
                let ri = self.lift(&i, "index");
                let reg = self.push("index", out_shape.clone(), int, Op::Index(ra, ri));
                Some(Val::Reg {
                    reg,
                    shape: out_shape,
                    int,
                    on,
                    card: None,
                })
            }
        }
    }

    fn call(&mut self, c: &Call, env: &mut Env) -> Option<Val> {
        let name = c.name.name.as_str();
        if let Some(&(_, f)) = FUNCS.iter().find(|(n, _)| *n == name) {
            return self.func(f, c, env);
        }
        if name == "concat" {
            return self.concat(c, env);
        }
        if name == "mixture" {
            return self.mixture(c, env).map(|d| Val::Dist(Box::new(d)));
        }
        if is_primitive(name) {
            return self
                .distribution(c, env, None)
                .map(|d| Val::Dist(Box::new(d)));
        }
        if let Some(def) = self.defs.get(name).copied() {
            let mut args = vec![];
            for a in &c.args {
                let v = self.value(&a.value, env)?;
                args.push((a, v));
            }
            let bound = self.bind(def, &args, c.span)?;
            return Some(Val::Dist(Box::new(DistV::Prior {
                name: name.to_string(),
                args: bound,
                span: c.span,
            })));
        }
        let mut known: Vec<&str> = FUNCS.iter().map(|(n, _)| *n).collect();
        known.extend(PRIMS.iter().map(|(n, ..)| *n));
        known.extend(["mixture", "concat", "vmf"]);
        known.extend(self.defs.keys().map(String::as_str));
        let dists: Vec<&str> = PRIMS
            .iter()
            .map(|(n, ..)| *n)
            .chain(["mixture"])
            .chain(self.defs.keys().map(String::as_str))
            .collect();
        let help = match did_you_mean(name, known.iter().copied()) {
            Some(k) => format!("did you mean `{k}`? Distributions: {}", dists.join(", ")),
            None => format!(
                "distributions: {}; functions: {}",
                dists.join(", "),
                FUNCS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        };
        self.err(
            Diag::error(
                Code::UnknownDistribution,
                format!("unknown distribution or function `{name}`"),
            )
            .label(c.name.span, "not defined")
            .help(help),
        );
        None
    }

    fn func(&mut self, f: Func, c: &Call, env: &mut Env) -> Option<Val> {
        if c.args.len() != 1 || c.args[0].name.is_some() {
            self.err(
                Diag::error(
                    Code::ArgCount,
                    format!(
                        "`{}` takes one argument, found {}",
                        c.name.name,
                        c.args.len()
                    ),
                )
                .label(c.span, "here"),
            );
            return None;
        }
        let arg = &c.args[0].value;
        let v = self.value(arg, env)?;
        let shape = v.shape().to_vec();
        if shape.len() > 1 {
            self.err(
                Diag::error(
                    Code::ShapeMismatch,
                    format!("`{}` of a matrix", c.name.name),
                )
                .label(arg.span, "a list of vectors")
                .help("index a row first"),
            );
            return None;
        }
        let reduces = matches!(f, Func::Softmax | Func::Normalize | Func::Sum);
        if reduces && shape.is_empty() {
            self.err(
                Diag::error(
                    Code::ShapeMismatch,
                    format!("`{}` needs a vector, found a scalar", c.name.name),
                )
                .label(arg.span, "a scalar"),
            );
            return None;
        }
        if let Val::Const { data, .. } = &v {
            let bad = match f {
                Func::Log => data.iter().any(|x| *x <= 0.0),
                Func::Sqrt => data.iter().any(|x| *x < 0.0),
                Func::Normalize => data.iter().all(|x| *x == 0.0),
                _ => false,
            };
            if bad {
                self.err(
                    Diag::error(
                        Code::InvalidValue,
                        format!("`{}` is not defined for this constant", c.name.name),
                    )
                    .label(arg.span, "outside the domain")
                    .help(match f {
                        Func::Log => "log needs positive numbers",
                        Func::Sqrt => "sqrt needs non-negative numbers",
                        _ => "the zero vector has no direction",
                    }),
                );
                return None;
            }
        }
        let out_shape = if f == Func::Sum { vec![] } else { shape };
        let int = v.int() && matches!(f, Func::Abs | Func::Floor | Func::Sum);
        let on = match f {
            Func::Softmax => On::Simplex,
            Func::Normalize => On::Sphere,
            Func::Exp => On::Positive,
            _ => On::Any,
        };
        let r = self.lift(&v, "const");
        let reg = self.push(f.name(), out_shape.clone(), int, Op::Apply(f, r));
        Some(Val::Reg {
            reg,
            shape: out_shape,
            int,
            on,
            card: None,
        })
    }

    fn concat(&mut self, c: &Call, env: &mut Env) -> Option<Val> {
        let mut vals = vec![];
        for a in &c.args {
            let v = self.value(&a.value, env)?;
            if v.shape().len() > 1 {
                self.err(
                    Diag::error(Code::ShapeMismatch, "`concat` joins scalars and vectors")
                        .label(a.value.span, "a matrix"),
                );
                return None;
            }
            vals.push(v);
        }
        if vals.is_empty() {
            self.err(
                Diag::error(Code::ArgCount, "`concat` needs at least one argument")
                    .label(c.span, "here"),
            );
            return None;
        }
        let n: i64 = vals
            .iter()
            .map(|v| v.shape().first().copied().unwrap_or(1))
            .sum();
        let int = vals.iter().all(Val::int);
        if let Some(data) = all_const(&vals) {
            return Some(Val::Const {
                data,
                shape: vec![n],
                int,
            });
        }
        let regs: Vec<usize> = vals.iter().map(|v| self.lift(v, "const")).collect();
        let reg = self.push("concat", vec![n], int, Op::Concat(regs));
        Some(Val::Reg {
            reg,
            shape: vec![n],
            int,
            on: On::Any,
            card: None,
        })
    }

    /// `mixture(d1, d2, ..., weights = [...])`: a distribution; weights default to equal.
    fn mixture(&mut self, c: &Call, env: &mut Env) -> Option<DistV> {
        let mut comps = vec![];
        let mut weights = None;
        for a in &c.args {
            match a.name.as_ref().map(|n| n.name.as_str()) {
                Some("weights") => {
                    let v = self.value(&a.value, env)?;
                    match v {
                        Val::Const { data, shape, .. } if shape.len() == 1 => {
                            weights = Some((data, a.value.span))
                        }
                        v => {
                            self.err(
                                Diag::error(
                                    Code::ArgType,
                                    format!(
                                        "mixture weights must be a constant vector, found {}",
                                        v.describe()
                                    ),
                                )
                                .label(a.value.span, "not a constant vector"),
                            );
                            return None;
                        }
                    }
                }
                Some(other) => {
                    self.err(
                        Diag::error(
                            Code::UnknownParameter,
                            format!("`mixture` has no parameter `{other}`"),
                        )
                        .label(a.span, "unknown parameter")
                        .help("write the components as positional arguments and `weights = [...]`"),
                    );
                    return None;
                }
                None => match self.expr(&a.value, env)? {
                    Val::Dist(d) => comps.push(*d),
                    v => {
                        self.err(
                            Diag::error(
                                Code::ArgType,
                                format!(
                                    "a mixture component must be a distribution, found {}",
                                    v.describe()
                                ),
                            )
                            .label(a.value.span, "not a distribution")
                            .help("e.g. `mixture(normal([-1, 0], 0.1), normal([1, 0], 0.1))`"),
                        );
                        return None;
                    }
                },
            }
        }
        if comps.is_empty() {
            self.err(
                Diag::error(Code::ArgCount, "a mixture needs at least one component")
                    .label(c.span, "no components"),
            );
            return None;
        }
        let k = comps.len();
        let weights = match weights {
            None => vec![1.0 / k as f64; k],
            Some((w, span)) => {
                if w.len() != k {
                    self.err(
                        Diag::error(
                            Code::ShapeMismatch,
                            format!("{} weights for {k} components", w.len()),
                        )
                        .label(span, format!("{} weights", w.len()))
                        .label(c.span, format!("{k} components")),
                    );
                    return None;
                }
                self.normalised(&w, span, "mixture")?
            }
        };
        Some(DistV::Mixture {
            weights,
            comps,
            span: c.span,
        })
    }

    /// A primitive distribution with its arguments; `dim` is the latent space's dimension when
    /// the primitive is used directly as a latent prior.
    fn distribution(&mut self, c: &Call, env: &mut Env, space_dim: Option<i64>) -> Option<DistV> {
        let name = if c.name.name == "vmf" {
            "von_mises_fisher"
        } else {
            c.name.name.as_str()
        };
        let &(_, prim, params) = PRIMS.iter().find(|(n, ..)| *n == name)?;
        // `uniform_sphere(d)` and `categorical(k)` take a size as their only parameter.
        let params: &[(&str, Option<f64>)] = match prim {
            Prim::UniformSphere => &[("dim", None)],
            _ => params,
        };
        let mut vals: Vec<Option<(Val, Span)>> = vec![None; params.len()];
        let mut dim: Option<(i64, Span)> = None;
        let mut positional = 0;
        for a in &c.args {
            let v = self.value(&a.value, env)?;
            let i = match &a.name {
                Some(n) if n.name == "dim" && prim != Prim::UniformSphere => {
                    match v.as_f64() {
                        Some(x) if v.int() && (1.0..=MAX_DIM).contains(&x) => {
                            dim = Some((x as i64, a.value.span))
                        }
                        _ => {
                            self.err(
                                Diag::error(
                                    Code::InvalidValue,
                                    format!(
                                        "`dim` must be a constant integer from 1 to {}",
                                        MAX_DIM
                                    ),
                                )
                                .label(a.value.span, "not a positive integer"),
                            );
                            return None;
                        }
                    }
                    continue;
                }
                Some(n) => match params.iter().position(|(p, _)| *p == n.name) {
                    Some(i) => i,
                    None => {
                        let mut names: Vec<&str> = params.iter().map(|(p, _)| *p).collect();
                        if prim != Prim::UniformSphere {
                            names.push("dim");
                        }
                        let help = match did_you_mean(&n.name, names.iter().copied()) {
                            Some(k) => {
                                format!("did you mean `{k}`? `{name}` takes {}", names.join(", "))
                            }
                            None => format!("`{name}` takes {}", names.join(", ")),
                        };
                        self.err(
                            Diag::error(
                                Code::UnknownParameter,
                                format!("`{name}` has no parameter `{}`", n.name),
                            )
                            .label(n.span, "unknown parameter")
                            .help(help),
                        );
                        return None;
                    }
                },
                None => {
                    positional += 1;
                    if positional > params.len() {
                        self.err(
                            Diag::error(
                                Code::ArgCount,
                                format!("`{name}` takes {} positional arguments", params.len()),
                            )
                            .label(a.span, "one argument too many")
                            .help(signature(name, params, prim)),
                        );
                        return None;
                    }
                    positional - 1
                }
            };
            vals[i] = Some((v, a.value.span));
        }
        let mut args = vec![];
        let mut spans = vec![];
        for ((p, default), v) in params.iter().zip(vals) {
            match (v, default) {
                (Some((v, s)), _) => {
                    args.push(v);
                    spans.push(s);
                }
                (None, Some(d)) => {
                    args.push(Val::scalar(*d));
                    spans.push(c.span);
                }
                (None, None) if prim == Prim::UniformSphere && space_dim.is_some() => {
                    let d = space_dim.unwrap_or(2);
                    args.push(Val::Const {
                        data: vec![d as f64],
                        shape: vec![],
                        int: true,
                    });
                    spans.push(c.span);
                }
                (None, None) => {
                    self.err(
                        Diag::error(Code::MissingArgument, format!("`{name}` needs `{p}`"))
                            .label(c.span, format!("`{p}` is missing"))
                            .help(signature(name, params, prim)),
                    );
                    return None;
                }
            }
        }
        for (i, v) in args.iter().enumerate() {
            if v.shape().len() > 1 && !(prim == Prim::Categorical) {
                self.err(
                    Diag::error(
                        Code::ShapeMismatch,
                        format!("`{name}` parameters are scalars or vectors"),
                    )
                    .label(spans[i], "a matrix"),
                );
                return None;
            }
        }
        self.ranges(prim, name, &args, &spans)?;
        let shape = match prim {
            Prim::UniformSphere => {
                let d = args[0].as_f64().filter(|_| args[0].int());
                match d {
                    Some(d) if (2.0..=MAX_DIM).contains(&d) => vec![d as i64],
                    _ => {
                        self.err(
                            Diag::error(
                                Code::InvalidValue,
                                format!(
                                    "`uniform_sphere(d)` needs a constant integer d from 2 to {}",
                                    MAX_DIM
                                ),
                            )
                            .label(spans[0], "the dimension of the ambient space R^d")
                            .help(
                                "the unit sphere S^(d-1) lives in R^d; S^9 is `uniform_sphere(10)`",
                            ),
                        );
                        return None;
                    }
                }
            }
            Prim::Categorical => {
                let w = &args[0];
                match (w, w.shape()) {
                    (Val::Const { data, .. }, []) => {
                        let k = data[0];
                        if !w.int() || !(1.0..=MAX_DIM).contains(&k) {
                            self.err(
                                Diag::error(
                                    Code::InvalidValue,
                                    format!(
                                        "`categorical(k)` needs an integer k from 1 to {}",
                                        MAX_DIM
                                    ),
                                )
                                .label(spans[0], format!("k = {}", ir::num(k)))
                                .help("k is the number of categories; or give a vector of weights"),
                            );
                            return None;
                        }
                        args[0] = Val::Const {
                            data: vec![1.0 / k; k as usize],
                            shape: vec![k as i64],
                            int: false,
                        };
                    }
                    (Val::Const { data, .. }, [_]) => {
                        let w = self.normalised(data, spans[0], "categorical")?;
                        args[0] = Val::Const {
                            shape: vec![w.len() as i64],
                            data: w,
                            int: false,
                        };
                    }
                    (_, [_]) => {}
                    _ => {
                        self.err(
                            Diag::error(
                                Code::ArgType,
                                "categorical takes a number of categories or a vector of weights",
                            )
                            .label(spans[0], "neither"),
                        );
                        return None;
                    }
                }
                vec![]
            }
            Prim::VonMisesFisher => {
                let ok = matches!(&args[0], Val::Const { shape, .. } if shape.len() == 1 && shape[0] >= 2)
                    && args[0].on() == On::Sphere
                    && matches!(&args[1], Val::Const { shape, .. } if shape.is_empty());
                if !ok {
                    self.err(
                        Diag::error(
                            Code::InvalidValue,
                            "`von_mises_fisher(mu, kappa)` needs a constant unit vector mu and a constant kappa",
                        )
                        .label(spans[0], "mu")
                        .help("e.g. `von_mises_fisher([0, 0, 1], 10)`; normalise mu yourself"),
                    );
                    return None;
                }
                args[0].shape().to_vec()
            }
            _ => {
                let mut shape: Vec<i64> = vec![];
                let mut at = c.span;
                for (v, s) in args.iter().zip(&spans) {
                    match broadcast(&shape, v.shape()) {
                        Some(b) => {
                            if !v.shape().is_empty() {
                                at = *s;
                            }
                            shape = b;
                        }
                        None => {
                            self.err(
                                Diag::error(
                                    Code::ShapeMismatch,
                                    format!(
                                        "`{name}` parameters of different lengths: {} and {}",
                                        shape_words(&shape),
                                        shape_words(v.shape())
                                    ),
                                )
                                .label(*s, shape_words(v.shape()))
                                .label(at, shape_words(&shape)),
                            );
                            return None;
                        }
                    }
                }
                let dim = dim
                    .map(|(d, s)| (d, Some(s)))
                    .or(space_dim.map(|d| (d, None)));
                if let Some((d, s)) = dim {
                    if !shape.is_empty() && shape[0] != d {
                        let mut diag = Diag::error(
                            Code::ShapeMismatch,
                            format!(
                                "`{name}` has parameters of length {} but dimension {d}",
                                shape[0]
                            ),
                        )
                        .label(at, format!("length {}", shape[0]));
                        if let Some(s) = s {
                            diag = diag.label(s, format!("dim = {d}"));
                        }
                        self.err(diag);
                        return None;
                    }
                    shape = vec![d];
                }
                if prim == Prim::Dirichlet && shape.is_empty() {
                    self.err(
                        Diag::error(Code::MissingArgument, "a Dirichlet draw needs a dimension")
                            .label(c.span, "a single concentration and no `dim`")
                            .help("write `dirichlet(alpha = 0.2, dim = 16)` or give a vector of concentrations"),
                    );
                    return None;
                }
                shape
            }
        };
        Some(DistV::Prim { prim, args, shape })
    }

    /// Constant weights scaled to sum to one; negative weights or a zero sum are an error.
    fn normalised(&mut self, w: &[f64], span: Span, what: &str) -> Option<Vec<f64>> {
        let total: f64 = w.iter().sum();
        if w.iter().any(|x| *x < 0.0) || total <= 0.0 {
            self.err(
                Diag::error(
                    Code::InvalidValue,
                    format!("{what} weights must be non-negative with a positive sum"),
                )
                .label(span, "invalid weights"),
            );
            return None;
        }
        Some(w.iter().map(|x| x / total).collect())
    }

    /// Static range checks of constant parameters.
    fn ranges(&mut self, prim: Prim, name: &str, args: &[Val], spans: &[Span]) -> Option<()> {
        let check = |i: usize, ok: &dyn Fn(f64) -> bool, why: &str| -> Option<(usize, String)> {
            match &args[i] {
                Val::Const { data, .. } if data.iter().any(|x| !ok(*x)) => {
                    Some((i, why.to_string()))
                }
                _ => None,
            }
        };
        let pos = |x: f64| x > 0.0;
        let bad = match prim {
            Prim::Normal => check(1, &pos, "a standard deviation must be positive"),
            Prim::Uniform => match (&args[0], &args[1]) {
                (Val::Const { data: lo, .. }, Val::Const { data: hi, .. })
                    if lo.iter().zip(hi.iter().cycle()).any(|(l, h)| l >= h)
                        || hi.iter().zip(lo.iter().cycle()).any(|(h, l)| l >= h) =>
                {
                    Some((1, "uniform needs low < high".to_string()))
                }
                _ => None,
            },
            Prim::Dirichlet => check(0, &pos, "Dirichlet concentrations must be positive"),
            Prim::Gamma => check(0, &pos, "a gamma shape must be positive")
                .or_else(|| check(1, &pos, "a rate must be positive")),
            Prim::Beta => check(0, &pos, "beta parameters must be positive")
                .or_else(|| check(1, &pos, "beta parameters must be positive")),
            Prim::Bernoulli => check(
                0,
                &|x| (0.0..=1.0).contains(&x),
                "a probability lies in [0, 1]",
            ),
            Prim::Laplace => check(1, &pos, "a scale must be positive"),
            Prim::Exponential => check(0, &pos, "a rate must be positive"),
            Prim::VonMisesFisher => check(1, &pos, "kappa (the concentration) must be positive"),
            Prim::UniformSphere | Prim::Categorical => None,
        };
        if let Some((i, why)) = bad {
            let shown = show(&args[i]);
            self.err(
                Diag::error(
                    Code::InvalidValue,
                    format!("invalid parameter of `{name}`: {why}"),
                )
                .label(spans[i], format!("this is {shown}"))
                .help(why),
            );
            return None;
        }
        Some(())
    }

    /// Emits the instructions that draw one sample of `d` per row.
    fn draw(&mut self, d: &DistV, name: &str) -> Option<Val> {
        match d {
            DistV::Prim {
                prim, args, shape, ..
            } => {
                let regs: Vec<usize> = match prim {
                    Prim::UniformSphere => vec![],
                    _ => args.iter().map(|a| self.lift(a, "const")).collect(),
                };
                let int = matches!(prim, Prim::Categorical | Prim::Bernoulli);
                let card = match prim {
                    Prim::Categorical => args[0].shape().first().copied(),
                    Prim::Bernoulli => Some(2),
                    _ => None,
                };
                let on = match prim {
                    Prim::UniformSphere | Prim::VonMisesFisher => On::Sphere,
                    Prim::Dirichlet => On::Simplex,
                    Prim::Gamma | Prim::Exponential => On::Positive,
                    _ => On::Any,
                };
                let reg = self.push(name, shape.clone(), int, Op::Draw(*prim, regs));
                Some(Val::Reg {
                    reg,
                    shape: shape.clone(),
                    int,
                    on,
                    card,
                })
            }
            DistV::Prior {
                name: callee,
                args,
                span,
            } => {
                let def = *self.defs.get(callee)?;
                let (v, space) = self.run(def, args.clone(), *span)?;
                let on = match space {
                    Space::Sphere { .. } => On::Sphere,
                    Space::Simplex { .. } => On::Simplex,
                    Space::Euclidean { .. } => v.on(),
                };
                Some(match v {
                    Val::Reg {
                        reg,
                        shape,
                        int,
                        card,
                        ..
                    } => Val::Reg {
                        reg,
                        shape,
                        int,
                        on,
                        card,
                    },
                    v => v,
                })
            }
            DistV::Mixture {
                weights,
                comps,
                span,
            } => {
                let mut vals = vec![];
                for c in comps {
                    vals.push(self.draw(c, name)?);
                }
                let shape0 = vals[0].shape().to_vec();
                if let Some(v) = vals.iter().find(|v| v.shape() != shape0) {
                    self.err(
                        Diag::error(
                            Code::ShapeMismatch,
                            format!(
                                "mixture components of different shapes: {} and {}",
                                shape_words(&shape0),
                                shape_words(v.shape())
                            ),
                        )
                        .label(*span, "in this mixture")
                        .help("every component must draw values of the same shape"),
                    );
                    return None;
                }
                let on = if vals.iter().all(|v| v.on() == vals[0].on()) {
                    vals[0].on()
                } else {
                    On::Any
                };
                let int = vals.iter().all(Val::int);
                let k = vals.len() as i64;
                let regs: Vec<usize> = vals.iter().map(|v| self.lift(v, "const")).collect();
                let mut stacked_shape = vec![k];
                stacked_shape.extend(&shape0);
                let stacked = self.push("components", stacked_shape, int, Op::Stack(regs));
                let w = self.push("weights", vec![k], false, Op::Const(weights.clone()));
                let c = self.push(
                    "component",
                    vec![],
                    true,
                    Op::Draw(Prim::Categorical, vec![w]),
                );
                let reg = self.push(name, shape0.clone(), int, Op::Index(stacked, c));
                Some(Val::Reg {
                    reg,
                    shape: shape0,
                    int,
                    on,
                    card: None,
                })
            }
        }
    }
}

fn signature(name: &str, params: &[(&str, Option<f64>)], prim: Prim) -> String {
    let mut ps: Vec<String> = params
        .iter()
        .map(|(p, d)| match d {
            Some(d) => format!("{p} = {}", ir::num(*d)),
            None => p.to_string(),
        })
        .collect();
    if !matches!(
        prim,
        Prim::UniformSphere | Prim::Categorical | Prim::VonMisesFisher
    ) {
        ps.push("dim".into());
    }
    format!("usage: `{name}({})`", ps.join(", "))
}
