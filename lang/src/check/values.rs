//! The values of nets' and clauses' constant expressions (numbers, strings, lists, net
//! parameters) and their evaluation; arithmetic follows [`crate::consteval`].

use std::collections::HashMap;

use super::*;
use crate::consteval::{self, Num};

/// The most numbers a constant list (`range`, `zeros`, `ones`, `eye`) may hold.
pub const MAX_CONSTANT_LIST: i64 = 1 << 18;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    Int(i64),
    Real(f64),
    Bool(bool),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    /// A number as the constant arithmetic sees it.
    pub(super) fn as_num(&self) -> Option<Num> {
        match self {
            Value::Int(i) => Some(Num::Int(*i)),
            Value::Real(r) => Some(Num::Real(*r)),
            _ => None,
        }
    }
    pub(super) fn from_num(n: Num) -> Value {
        match n {
            Num::Int(i) => Value::Int(i),
            Num::Real(r) => Value::Real(r),
        }
    }

    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real number",
            Value::Bool(_) => "a boolean",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
        }
    }
    pub(super) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Real(r) => Some(*r),
            _ => None,
        }
    }
}

impl Value {
    /// As written in a model file: `10`, `0.05`, `"xavier"`, `[1, 2]`.
    pub(super) fn source_text(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Real(r) => ir::num(*r),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::List(v) => format!(
                "[{}]",
                v.iter()
                    .map(Value::source_text)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl Value {
    /// How many numbers (or other scalars) the value holds, lists counted through.
    pub fn numbers(&self) -> i64 {
        match self {
            Value::List(v) => v.iter().map(Value::numbers).sum::<i64>().max(1),
            _ => 1,
        }
    }
}

pub(super) type Env = HashMap<String, Value>;

impl<'a> Checker<'a> {
    // long: one arm per expression kind of the constant language.
    pub(super) fn eval(&mut self, e: &Expr, env: &Env) -> Option<Value> {
        match &e.kind {
            ExprKind::Int(i) => Some(Value::Int(*i)),
            ExprKind::Real(r) => Some(Value::Real(*r)),
            ExprKind::Str(s) => Some(Value::Str(s.clone())),
            ExprKind::Bool(b) => Some(Value::Bool(*b)),
            ExprKind::List(items) => {
                let mut out = vec![];
                for x in items {
                    out.push(self.eval(x, env)?);
                }
                Some(Value::List(out))
            }
            ExprKind::Comprehension(body, var, source) => match self.eval(source, env)? {
                Value::List(items) => {
                    let mut out = vec![];
                    // Counted as it grows: nested comprehensions multiply their sizes.
                    let mut numbers: i64 = 0;
                    let items_len = items.len() as i64;
                    for item in items {
                        let mut inner = env.clone();
                        inner.insert(var.name.clone(), item);
                        let v = self.eval(body, &inner)?;
                        numbers += v.numbers();
                        // The first element tells the size of the whole: stop before building it.
                        let projected = v.numbers().saturating_mul(items_len);
                        if numbers > MAX_CONSTANT_LIST || projected > MAX_CONSTANT_LIST {
                            self.err(
                                msg::too_large(&format!(
                                    "this comprehension would hold more than {MAX_CONSTANT_LIST} numbers (a constant list holds at most 2^18)"
                                ))
                                .label(e.span, "stopped here")
                                .help("constants describe a model's settings; compute large arrays elsewhere and load them as data"),
                            );
                            return None;
                        }
                        out.push(v);
                    }
                    Some(Value::List(out))
                }
                v => {
                    self.err(
                        msg::arg_type("the source of a comprehension", "a list", v.type_name())
                            .label(source.span, "not a list")
                            .help("iterate over a list, e.g. `[2 * w for w in widths]`"),
                    );
                    None
                }
            },
            ExprKind::Call(c) => {
                if !c.parens {
                    if let Some(v) = env
                        .get(&c.name.name)
                        .or_else(|| self.consts.get(&c.name.name))
                    {
                        return Some(v.clone());
                    }
                    // As in prior programs; a constant called `pi` would have been found above.
                    if c.name.name == "pi" {
                        return Some(Value::Real(std::f64::consts::PI));
                    }
                    if self.failed_consts.contains(&c.name.name) && !env.contains_key(&c.name.name)
                    {
                        return None; // its definition's error is reported
                    }
                    let mut known: Vec<&str> = env
                        .keys()
                        .chain(self.consts.keys())
                        .map(String::as_str)
                        .collect();
                    known.sort();
                    // A constant defined further down: constants are evaluated in order.
                    let later = self.program.modules.iter().flat_map(|m| &m.lets).find(|l| {
                        l.name.name == c.name.name
                            && l.name.span.file == c.name.span.file
                            && l.name.span.start > c.name.span.start
                    });
                    if let Some(l) = later {
                        self.err(
                            msg::unknown(Unknown::Name, &c.name.name)
                                .label(c.name.span, "used before its definition")
                                .label(l.name.span, "defined here, further down")
                                .help(format!("constants are read in order: move `let {} = ...` above its first use", c.name.name)),
                        );
                        return None;
                    }
                    let help = if known.is_empty() {
                        "only constants (`let NAME = ...`) and a net's parameters can be used as names here; write a number, or a string in quotes".to_string()
                    } else {
                        unknown_help(&c.name.name, "names here", &known)
                    };
                    self.err(
                        msg::unknown(Unknown::Name, &c.name.name)
                            .label(c.name.span, "not defined here")
                            .help(help),
                    );
                } else if let Some(def) = self.priors.function(&c.name.name) {
                    return self.const_fn(def, c, env);
                } else if let Some(v) = self.pure_call(c, env) {
                    return v;
                } else {
                    self.err(self.not_a_constant_function(c));
                }
                None
            }
            ExprKind::Index(list, i) => {
                let l = self.eval(list, env)?;
                let k = self.eval(i, env)?;
                match (l, k) {
                    (Value::List(items), Value::Int(k)) if k >= 0 && (k as usize) < items.len() => {
                        Some(items[k as usize].clone())
                    }
                    (Value::List(items), Value::Int(k)) => {
                        self.err(
                            msg::invalid_value(
                                "an index",
                                &format!("in 0..{}", items.len()),
                                &k.to_string(),
                            )
                            .label(i.span, "out of range"),
                        );
                        None
                    }
                    (l, k) => {
                        self.err(
                            msg::arg_type(
                                "indexing",
                                "a list with an integer",
                                &format!("{} with {}", l.type_name(), k.type_name()),
                            )
                            .label(e.span, "here")
                            .help("index a list with an integer: `sizes[0]`"),
                        );
                        None
                    }
                }
            }
            ExprKind::Slice(list, lo, hi) => {
                let l = self.eval(list, env)?;
                let mut bounds = [None, None];
                for (k, b) in [lo, hi].into_iter().enumerate() {
                    if let Some(b) = b {
                        match self.eval(b, env)? {
                            Value::Int(i) => bounds[k] = Some(i),
                            v => {
                                self.err(
                                    msg::arg_type("a slice bound", "an integer", v.type_name())
                                        .label(b.span, "not an integer"),
                                );
                                return None;
                            }
                        }
                    }
                }
                let Value::List(items) = l else {
                    self.err(
                        msg::arg_type("slicing", "a list", l.type_name())
                            .label(list.span, "not a list"),
                    );
                    return None;
                };
                match consteval::slice_range(bounds[0], bounds[1], items.len() as i64) {
                    Ok(r) => Some(Value::List(items[r].to_vec())),
                    Err((expected, found)) => {
                        self.err(
                            msg::invalid_value("a slice", &expected, &found)
                                .label(e.span, "out of range"),
                        );
                        None
                    }
                }
            }
            ExprKind::If(c, a, b) => match self.eval(c, env)? {
                Value::Bool(true) => self.eval(a, env),
                Value::Bool(false) => self.eval(b, env),
                v => {
                    self.err(
                        msg::arg_type("the condition of `if`", "true or false", v.type_name())
                            .label(c.span, "not a condition")
                            .help("compare values, e.g. `if depth > 2 then 64 else 32`"),
                    );
                    None
                }
            },
            ExprKind::Neg(x) => match self.eval(x, env)? {
                Value::Int(i) => Some(Value::from_num(consteval::neg(Num::Int(i)))),
                Value::Real(r) => Some(Value::Real(-r)),
                v => self.not_numeric(&v, x.span),
            },
            ExprKind::Binary(op, a, b) => {
                let va = self.eval(a, env)?;
                let vb = self.eval(b, env)?;
                let (Some(x), Some(y)) = (va.as_num(), vb.as_num()) else {
                    let (v, s) = if va.as_num().is_none() {
                        (&va, a.span)
                    } else {
                        (&vb, b.span)
                    };
                    return self.not_numeric(&v.clone(), s);
                };
                match consteval::binary(*op, x, y) {
                    Ok(n) if op.compares() => Some(Value::Bool(n.as_f64() != 0.0)),
                    Ok(n) => Some(Value::from_num(n)),
                    Err(e) => {
                        self.err(e.diag(b.span));
                        None
                    }
                }
            }
        }
    }

    /// A user function in a constant: arguments evaluated here, the body with the parameters
    /// bound (and the file's constants).
    fn const_fn(&mut self, def: &crate::syntax::FnDef, c: &Call, env: &Env) -> Option<Value> {
        let name = def.name.name.clone();
        if self.fn_stack.contains(&name) {
            self.err(
                msg::recursive_function(&name, &self.fn_stack)
                    .label(c.span, "called again here")
                    .label(def.name.span, "defined here"),
            );
            return None;
        }
        if let Err(stop) =
            crate::syntax::call_limits(self.fn_stack.len(), &mut self.fn_calls, c.span)
        {
            if let Some(d) = stop {
                self.err(d);
            }
            return None;
        }
        let names: Vec<&str> = def.params.iter().map(|p| p.name.name.as_str()).collect();
        let required: Vec<bool> = def.params.iter().map(|p| p.default.is_none()).collect();
        let sig = format!("{name}({})", names.join(", "));
        let slots = self.match_args(c, &names, &required, &sig, "function")?;
        let mut inner = Env::new();
        for (k, p) in def.params.iter().enumerate() {
            let v = match (&slots[k], &p.default) {
                (Some(a), _) => self.eval(&a.value, env)?,
                (None, Some(d)) => self.eval(d, &inner)?,
                (None, None) => return None, // reported by match_args
            };
            inner.insert(p.name.name.clone(), v);
        }
        self.fn_stack.push(name);
        let out = self.eval(&def.body, &inner);
        self.fn_stack.pop();
        out
    }

    /// The arguments of a pure function: each a number or a list of numbers (whether it was a
    /// list, its numbers, where it is written); None after reporting another argument.
    #[allow(clippy::type_complexity)]
    fn numeric_args(&mut self, c: &Call, env: &Env) -> Option<Vec<(bool, Vec<Num>, Span)>> {
        let name = c.name.name.as_str();
        let mut args = vec![];
        for a in &c.args {
            let v = self.eval(&a.value, env)?;
            let nums = match &v {
                Value::List(items) => items.iter().map(Value::as_num).collect::<Option<Vec<_>>>(),
                v => v.as_num().map(|n| vec![n]),
            };
            let Some(nums) = nums.filter(|_| a.name.is_none()) else {
                self.err(
                    msg::arg_type(
                        &format!("an argument of `{name}`"),
                        "a number or a list of numbers",
                        v.type_name(),
                    )
                    .label(a.value.span, "here"),
                );
                return None;
            };
            args.push((matches!(v, Value::List(_)), nums, a.value.span));
        }
        Some(args)
    }

    /// `range(n)` (0 .. n - 1), `zeros(n)` / `zeros(k, n)`, `ones(...)` and `eye(n)` as constant
    /// lists, as prior programs build them.
    fn constructor(&mut self, c: &Call, env: &Env) -> Option<Value> {
        let name = c.name.name.as_str();
        let args = self.numeric_args(c, env)?;
        let sizes: Option<Vec<i64>> = args
            .iter()
            .map(|(list, n, _)| match (list, n.as_slice()) {
                (false, [Num::Int(k)]) if *k >= 0 => Some(*k),
                _ => None,
            })
            .collect();
        // Constant lists are built while checking: their size is bounded, and the bound named.
        if let Some(s) = &sizes {
            let total = match (name, s.as_slice()) {
                ("eye", [n]) => n.saturating_mul(*n),
                _ => s.iter().fold(1i64, |a, n| a.saturating_mul(*n)),
            };
            if total > MAX_CONSTANT_LIST {
                let shape: Vec<String> = s.iter().map(|n| n.to_string()).collect();
                self.err(
                    msg::too_large(&format!(
                        "`{name}({})` would hold {total} numbers (a constant list holds at most {MAX_CONSTANT_LIST} = 2^18)",
                        shape.join(", ")
                    ))
                    .label(c.span, "here"),
                );
                return None;
            }
        }
        let fits = match name {
            "zeros" | "ones" => (1..=2).contains(&args.len()),
            _ => args.len() == 1,
        };
        let (Some(sizes), true) = (sizes, fits) else {
            let takes = if matches!(name, "zeros" | "ones") {
                "one or two sizes (whole numbers from 0)"
            } else {
                "one size (a whole number from 0)"
            };
            self.err(
                msg::arg_type(&format!("the arguments of `{name}`"), takes, "other values")
                    .label(c.span, "here"),
            );
            return None;
        };
        let row = |n: i64, f: &dyn Fn(i64) -> i64| {
            Value::List((0..n).map(|i| Value::Int(f(i))).collect())
        };
        Some(match (name, sizes.as_slice()) {
            ("range", [n]) => row(*n, &|i| i),
            ("eye", [n]) => Value::List((0..*n).map(|r| row(*n, &|i| i64::from(i == r))).collect()),
            (_, [n]) => row(*n, &|_| i64::from(name == "ones")),
            (_, [k, n]) => Value::List(
                (0..*k)
                    .map(|_| row(*n, &|_| i64::from(name == "ones")))
                    .collect(),
            ),
            _ => return None,
        })
    }

    /// A pure function of numbers in a constant (`sqrt(5)`, `max(2, d)`, `sum([1, 2])`),
    /// folded as prior programs fold it. None when `c` names no such function; Some(None)
    /// after reporting a bad argument.
    /// The error for a call that constants cannot evaluate: a function of prior programs only
    /// (`concat`, a distribution), or an unknown one.
    fn not_a_constant_function(&self, c: &Call) -> Diag {
        use crate::catalogue::distributions::FUNCS;
        let name = c.name.name.as_str();
        let mut known: Vec<&str> = [
            "range", "zeros", "ones", "eye", "min", "max", "atan2", "pow",
        ]
        .into_iter()
        .chain(FUNCS.iter().map(|(n, _)| *n))
        .collect();
        let fns: Vec<&str> = self.priors.function_names();
        known.extend(fns);
        let mut seen = std::collections::HashSet::new();
        known.retain(|n| seen.insert(*n));
        let listed = known
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if crate::prior::reserved(name) {
            return msg::arg_type(
                "the value of a constant",
                "a value that constants can compute",
                &format!("`{name}(...)`, which only prior programs can compute"),
            )
            .label(c.span, "a prior program's function")
            .help(format!(
                "in constants the functions are {listed}; use `{name}` inside a `prior` program"
            ));
        }
        let help = match crate::diag::did_you_mean(name, known.iter().copied()) {
            Some(k) => format!("did you mean `{k}`? In constants the functions are {listed}"),
            None => format!("in constants the functions are {listed}"),
        };
        msg::unknown(Unknown::Name, name)
            .label(c.name.span, "not a function of constants")
            .help(help)
    }

    fn pure_call(&mut self, c: &Call, env: &Env) -> Option<Option<Value>> {
        use crate::catalogue::distributions::FUNCS;
        use crate::ir::{Arith, Func};
        let name = c.name.name.as_str();
        if ["range", "zeros", "ones", "eye"].contains(&name) {
            return Some(self.constructor(c, env));
        }
        let unary = FUNCS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f);
        let binary = match name {
            "min" if c.args.len() == 2 => Some(Arith::Minimum),
            "max" if c.args.len() == 2 => Some(Arith::Maximum),
            "atan2" => Some(Arith::Atan2),
            "pow" => Some(Arith::Pow),
            _ => None,
        };
        if unary.is_none() && binary.is_none() {
            return None;
        }
        let Some(args) = self.numeric_args(c, env) else {
            return Some(None);
        };
        let want = if binary.is_some() { 2 } else { 1 };
        if args.len() != want {
            self.err(msg::arg_count(name, Takes::Exactly(want), args.len()).label(c.span, "here"));
            return Some(None);
        }
        let (values, list, int): (Vec<f64>, bool, bool) = match (unary, binary) {
            (_, Some(op)) => {
                let (x, y) = (&args[0].1, &args[1].1);
                if x.len() != 1 || y.len() != 1 {
                    self.err(
                        msg::arg_type(&format!("the arguments of `{name}`"), "numbers", "a list")
                            .label(c.span, "here"),
                    );
                    return Some(None);
                }
                let int =
                    x[0].is_int() && y[0].is_int() && matches!(op, Arith::Minimum | Arith::Maximum);
                (vec![op.apply(x[0].as_f64(), y[0].as_f64())], false, int)
            }
            (Some(f), None) => {
                let (list, nums, at) = &args[0];
                if f.needs_vector() && !list {
                    self.err(
                        msg::arg_type(
                            &format!("the argument of `{name}`"),
                            "a list of numbers",
                            "a number",
                        )
                        .label(*at, "here"),
                    );
                    return Some(None);
                }
                let data: Vec<f64> = nums.iter().map(|n| n.as_f64()).collect();
                let all_int = nums.iter().all(|n| n.is_int());
                let int = f == Func::Floor
                    || (all_int
                        && matches!(
                            f,
                            Func::Abs | Func::Sum | Func::Cumsum | Func::Max | Func::Min
                        ));
                (
                    crate::prior::expr::fold(f, &data),
                    *list && !f.reduces(),
                    int,
                )
            }
            (None, None) => return None,
        };
        if values.iter().any(|v| !v.is_finite()) {
            self.err(
                msg::invalid_value(
                    &format!("the argument of `{name}`"),
                    "in its domain",
                    "a value outside it",
                )
                .label(c.span, "outside the domain"),
            );
            return Some(None);
        }
        let one = |v: f64| {
            if int && v.abs() < 9.0e15 {
                Value::Int(v as i64)
            } else {
                Value::Real(v)
            }
        };
        Some(Some(if list {
            Value::List(values.into_iter().map(one).collect())
        } else {
            one(values[0])
        }))
    }

    pub(super) fn not_numeric(&mut self, v: &Value, span: Span) -> Option<Value> {
        self.err(
            msg::arg_type("an operand of arithmetic", "a number", v.type_name())
                .label(span, "not a number"),
        );
        None
    }
}
