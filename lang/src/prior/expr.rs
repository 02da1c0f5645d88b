//! Expressions of prior programs: names, lists, arithmetic with broadcasting, indexing, calls
//! of functions and of other priors, `concat`.

use super::values::*;
use super::*;
use crate::catalogue::distributions::*;
use crate::consteval::{self, ConstError, Num};

impl<'p, 'a> Inst<'p, 'a> {
    pub(super) fn expr(&mut self, e: &Expr, env: &mut Scope) -> Option<Val> {
        match &e.kind {
            ExprKind::Int(i) => Some(Val::Const {
                data: vec![*i as f64],
                shape: vec![],
                int: true,
            }),
            ExprKind::Real(r) => Some(Val::scalar(*r)),
            ExprKind::Str(_) | ExprKind::Bool(_) => {
                self.err(
                    msg::arg_type(
                        "a value in a prior program",
                        "a number",
                        if matches!(e.kind, ExprKind::Str(_)) {
                            "a string"
                        } else {
                            "a boolean"
                        },
                    )
                    .label(e.span, "not a number"),
                );
                None
            }
            ExprKind::List(items) => self.list(items, e.span, env),
            ExprKind::Comprehension(body, var, source) => {
                let vals = self.comprehension(body, var, source, env)?;
                let spans = vec![body.span; vals.len()];
                self.list_of(vals, &spans, e.span)
            }
            ExprKind::Call(c) if !c.parens => self.name(c, env),
            ExprKind::Call(c) => self.call(c, env),
            ExprKind::Neg(x) => {
                let v = self.value(x, env)?;
                Some(match v {
                    Val::Const { data, shape, int } => {
                        let nums: Vec<Num> = data
                            .iter()
                            .map(|&x| consteval::neg(Num::from_f64(x, int)))
                            .collect();
                        Val::Const {
                            int: nums.iter().all(|n| n.is_int()),
                            data: nums.iter().map(|n| n.as_f64()).collect(),
                            shape,
                        }
                    }
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
            ExprKind::If(c, a, b) => {
                let vc = self.value(c, env);
                let va = self.value(a, env);
                let vb = self.value(b, env);
                self.select(vc?, va?, vb?, [c.span, a.span, b.span])
            }
            ExprKind::Index(a, i) => {
                let va = self.value(a, env);
                let vi = self.value(i, env);
                self.index(va?, vi?, a.span, i.span)
            }
            ExprKind::Slice(a, lo, hi) => self.slice_expr(a, [lo, hi], e.span, env),
        }
    }

    /// An expression that must be a value, not a distribution.
    pub(super) fn value(&mut self, e: &Expr, env: &mut Scope) -> Option<Val> {
        let v = self.expr(e, env)?;
        if let Val::Dist(_) = v {
            self.err(
                msg::arg_type("this operand", "a value", "a distribution")
                    .label(e.span, "a distribution")
                    .help("draw from it first with `~`, e.g. `x ~ normal(0, 1)`, then use `x`"),
            );
            return None;
        }
        Some(v)
    }

    pub(super) fn name(&mut self, c: &Call, env: &mut Scope) -> Option<Val> {
        if let Some(b) = env.get_mut(&c.name.name) {
            b.used = true;
            return b.val.clone();
        }
        if let Some(v) = self.consts.get(&c.name.name) {
            return Some(v.clone());
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
            msg::unknown(Unknown::Name, &c.name.name)
                .label(c.name.span, "not bound before this point")
                .help(help),
        );
        None
    }

    pub(super) fn list(&mut self, items: &[Expr], span: Span, env: &mut Scope) -> Option<Val> {
        let mut vals = vec![];
        for x in items {
            vals.push(self.expr(x, env));
        }
        let vals: Vec<Val> = vals.into_iter().collect::<Option<_>>()?;
        let spans: Vec<Span> = items.iter().map(|x| x.span).collect();
        self.list_of(vals, &spans, span)
    }

    /// The elements of `[body for var in source]`, one per element (row) of the constant
    /// `source`, with `var` bound to it; unrolled here, when the model is checked.
    pub(super) fn comprehension(
        &mut self,
        body: &Expr,
        var: &crate::syntax::Ident,
        source: &Expr,
        env: &mut Scope,
    ) -> Option<Vec<Val>> {
        let src = self.value(source, env)?;
        let Val::Const { data, shape, int } = &src else {
            self.err(
                msg::arg_type(
                    "the source of a comprehension",
                    "a constant vector or matrix, e.g. `range(k)` or a list of points",
                    &src.describe(),
                )
                .label(source.span, "not a constant")
                .help("comprehensions are unrolled when the model is checked, so their source is fixed"),
            );
            return None;
        };
        if env.contains_key(&var.name) {
            self.err(
                msg::duplicate_definition(&var.name, "a name of this program")
                    .label(var.span, "bound again here")
                    .help("every name is bound once; choose another name for the comprehension"),
            );
            return None;
        }
        let (n, row) = match shape.as_slice() {
            [n] => (*n as usize, vec![]),
            [n, d] => (*n as usize, vec![*d]),
            _ => (1, vec![]),
        };
        let width = data.len() / n.max(1);
        let mut out = vec![];
        for i in 0..n {
            let elem = Val::Const {
                data: data[i * width..(i + 1) * width].to_vec(),
                shape: row.clone(),
                int: *int,
            };
            env.insert(
                var.name.clone(),
                Binding {
                    val: Some(elem),
                    span: var.span,
                    used: true,
                    param: false,
                },
            );
            let v = self.expr(body, env);
            env.remove(&var.name);
            out.push(v?);
        }
        Some(out)
    }

    /// A vector or matrix of the values `vals` (each at `spans`), written at `span`.
    fn list_of(&mut self, vals: Vec<Val>, spans: &[Span], span: Span) -> Option<Val> {
        let items = spans;
        if vals.is_empty() {
            self.err(
                msg::arg_type("a list", "one element or more", "an empty list")
                    .label(span, "no elements")
                    .help("a vector needs at least one element"),
            );
            return None;
        }
        if vals.iter().any(|v| matches!(v, Val::Dist(_))) {
            self.err(
                msg::arg_type("a list element", "a value", "a distribution")
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
                msg::shape_mismatch(
                    "every element of a list",
                    &format!("of the first element's shape, {}", shape_words(&shape0)),
                    &shape_words(v.shape()),
                )
                .label(items[i], shape_words(v.shape()))
                .label(items[0], shape_words(&shape0))
                .help("to join vectors end to end write `concat(a, b)`"),
            );
            return None;
        }
        if shape0.len() > 1 {
            self.err(
                msg::shape_mismatch("a list", "at most two deep (a matrix)", "deeper nesting")
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

    /// The shape of an elementwise operation on `a` and `b` (of `what`), or the error.
    fn operands(
        &mut self,
        what: &str,
        a: &Val,
        b: &Val,
        sa: Span,
        sb: Span,
    ) -> Option<crate::ir::Shape> {
        let Some(shape) = broadcast(a.shape(), b.shape()) else {
            let found = format!("{} and {}", shape_words(a.shape()), shape_words(b.shape()));
            let expected = if a.shape().len() > 1 || b.shape().len() > 1 {
                "of equal shape, or one a scalar (index a matrix's row to combine it with a vector)"
            } else {
                "of equal shape, or one a scalar"
            };
            self.err(
                msg::shape_mismatch(what, expected, &found)
                    .label(sa, shape_words(a.shape()))
                    .label(sb, shape_words(b.shape()))
                    .help("arithmetic works on equal shapes, or a scalar with anything"),
            );
            return None;
        };
        Some(shape)
    }

    /// `min(a, b)`, `max(a, b)`, `atan2(y, x)`, `pow(x, y)`: elementwise, broadcasting a scalar;
    /// constants fold.
    fn arith(&mut self, op: Arith, a: Val, b: Val, sa: Span, sb: Span) -> Option<Val> {
        let shape = self.operands(
            &format!("the arguments of `{}`", op.symbol()),
            &a,
            &b,
            sa,
            sb,
        )?;
        let int = a.int() && b.int() && matches!(op, Arith::Minimum | Arith::Maximum);
        if let (Val::Const { data: x, .. }, Val::Const { data: y, .. }) = (&a, &b) {
            let n = shape.iter().product::<i64>() as usize; // every element of a matrix too
            let get = |v: &Vec<f64>, i: usize| if v.len() == 1 { v[0] } else { v[i] };
            return Some(Val::Const {
                data: (0..n).map(|i| op.apply(get(x, i), get(y, i))).collect(),
                shape,
                int,
            });
        }
        let ra = self.lift(&a, "const");
        let rb = self.lift(&b, "const");
        Some(self.emit(op.symbol(), shape, int, Op::Binary(op, ra, rb)))
    }

    /// The functions of two or three arguments: `min`, `max` (two arguments), `atan2`, `pow`,
    /// `dot` and `clip(x, lo, hi)`.
    fn call_of_many(&mut self, c: &Call, env: &mut Scope) -> Option<Val> {
        let name = c.name.name.as_str();
        let want = if name == "clip" { 3 } else { 2 };
        if c.args.len() != want || c.args.iter().any(|a| a.name.is_some()) {
            self.err(
                msg::arg_count(name, Takes::Exactly(want), c.args.len())
                    .label(c.span, "here")
                    .help(match name {
                        "clip" => "write `clip(x, lo, hi)`, positional",
                        "atan2" => "write `atan2(y, x)`, positional",
                        _ => "two positional arguments",
                    }),
            );
            return None;
        }
        let mut vals = vec![];
        for a in &c.args {
            vals.push((self.value(&a.value, env)?, a.value.span));
        }
        let (a, sa) = vals[0].clone();
        let (b, sb) = vals[1].clone();
        match name {
            "min" => self.arith(Arith::Minimum, a, b, sa, sb),
            "max" => self.arith(Arith::Maximum, a, b, sa, sb),
            "atan2" => self.arith(Arith::Atan2, a, b, sa, sb),
            "pow" => self.arith(Arith::Pow, a, b, sa, sb),
            "dot" => {
                if a.shape().len() != 1 || a.shape() != b.shape() {
                    let found =
                        format!("{} and {}", shape_words(a.shape()), shape_words(b.shape()));
                    self.err(
                        msg::shape_mismatch(
                            "the arguments of `dot`",
                            "two vectors of one length",
                            &found,
                        )
                        .label(sa, shape_words(a.shape()))
                        .label(sb, shape_words(b.shape())),
                    );
                    return None;
                }
                let product = self.arith(Arith::Mul, a, b, sa, sb)?;
                self.apply(Func::Sum, product, "dot", c.span)
            }
            _ => {
                let (hi, shi) = vals[2].clone();
                if let (Val::Const { data: l, .. }, Val::Const { data: h, .. }) = (&b, &hi) {
                    if l.iter().zip(h.iter().cycle()).any(|(l, h)| l > h) {
                        self.err(
                            msg::invalid_value("the bounds of `clip`", "lo <= hi", "lo > hi")
                                .label(sb, "lo")
                                .label(shi, "hi"),
                        );
                        return None;
                    }
                }
                let low = self.arith(Arith::Maximum, a, b, sa, sb)?;
                self.arith(Arith::Minimum, low, hi, sa, shi)
            }
        }
    }

    /// `a @ b`: a matrix times a vector (either side) or two matrices, inner sizes equal;
    /// constants fold.
    fn matmul(&mut self, a: Val, b: Val, sa: Span, sb: Span) -> Option<Val> {
        let (x, y) = (a.shape().to_vec(), b.shape().to_vec());
        let out = match (x.as_slice(), y.as_slice()) {
            ([k, d], [e]) if d == e => vec![*k],
            ([d], [e, k]) if d == e => vec![*k],
            ([k, d], [e, m]) if d == e => vec![*k, *m],
            _ => {
                let found = format!("{} and {}", shape_words(&x), shape_words(&y));
                self.err(
                    msg::shape_mismatch(
                        "the operands of `@`",
                        "a matrix and a vector, or two matrices, whose inner sizes agree",
                        &found,
                    )
                    .label(sa, shape_words(&x))
                    .label(sb, shape_words(&y))
                    .help("[k x d] @ [d] gives [k]; [d] @ [d x k] gives [k]; [k x d] @ [d x m] gives [k x m]"),
                );
                return None;
            }
        };
        let int = a.int() && b.int();
        if let (Val::Const { data: p, .. }, Val::Const { data: q, .. }) = (&a, &b) {
            // As matrices: a vector on the left is a row, on the right a column.
            let (k, d) = if x.len() == 2 {
                (x[0], x[1])
            } else {
                (1, x[0])
            };
            let m = if y.len() == 2 { y[1] } else { 1 };
            let (k, d, m) = (k as usize, d as usize, m as usize);
            let data = (0..k)
                .flat_map(|i| (0..m).map(move |j| (i, j)))
                .map(|(i, j)| (0..d).map(|t| p[i * d + t] * q[t * m + j]).sum())
                .collect();
            return Some(Val::Const {
                data,
                shape: out,
                int,
            });
        }
        let ra = self.lift(&a, "const");
        let rb = self.lift(&b, "const");
        Some(self.emit("@", out, int, Op::MatMul(ra, rb)))
    }

    /// `if c then a else b`: elementwise (numpy's `where`), a where c is non-zero; c a scalar
    /// or of the result's shape. A constant condition picks a branch.
    fn select(&mut self, c: Val, a: Val, b: Val, spans: [Span; 3]) -> Option<Val> {
        let shape = self.operands("the branches of a condition", &a, &b, spans[1], spans[2])?;
        let fits = c.shape().is_empty() || c.shape() == shape.as_slice();
        if !fits {
            self.err(
                msg::shape_mismatch(
                    "a condition",
                    &format!("a scalar or {}, as the branches", shape_words(&shape)),
                    &shape_words(c.shape()),
                )
                .label(spans[0], shape_words(c.shape())),
            );
            return None;
        }
        let int = a.int() && b.int();
        if let Val::Const { data, .. } = &c {
            if data.iter().all(|v| *v != 0.0) || data.iter().all(|v| *v == 0.0) {
                let pick = if data[0] != 0.0 { a } else { b };
                // A constant branch broadcast to the shape of both.
                return match pick {
                    Val::Const { data, .. } if data.len() == 1 && !shape.is_empty() => {
                        Some(Val::Const {
                            data: vec![data[0]; shape.iter().product::<i64>() as usize],
                            shape,
                            int,
                        })
                    }
                    v => Some(v),
                };
            }
        }
        let (rc, ra, rb) = (
            self.lift(&c, "const"),
            self.lift(&a, "const"),
            self.lift(&b, "const"),
        );
        Some(self.emit("where", shape, int, Op::Where(rc, ra, rb)))
    }

    /// A call of a user function: its arguments (values or distributions) evaluated here,
    /// its body in a scope of its parameters only (and the file's constants).
    fn user_fn(&mut self, def: &FnDef, c: &Call, env: &mut Scope) -> Option<Val> {
        let name = def.name.name.as_str();
        if self.fn_stack.iter().any(|f| f == name) {
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
        let mut slots: Vec<Option<&Expr>> = vec![None; names.len()];
        for (i, a) in c.args.iter().enumerate() {
            let k = match &a.name {
                Some(n) => names.iter().position(|p| *p == n.name),
                None => (i < names.len()).then_some(i),
            };
            match k {
                Some(k) if slots[k].is_none() => slots[k] = Some(&a.value),
                _ => {
                    let sig = format!("{name}({})", names.join(", "));
                    self.err(
                        msg::arg_count(name, Takes::Exactly(names.len()), c.args.len())
                            .label(a.span, "not a parameter of the function")
                            .help(format!("the function is `{sig}`")),
                    );
                    return None;
                }
            }
        }
        let mut scope = Scope::new();
        for (k, p) in def.params.iter().enumerate() {
            let v = match (slots[k], &p.default) {
                (Some(e), _) => self.expr(e, env)?,
                (None, Some(d)) => self.expr(d, &mut scope)?,
                (None, None) => {
                    self.err(
                        msg::missing_argument(name, &format!("`{}`", p.name.name))
                            .label(c.span, "here")
                            .help(format!("write `{name}({})`", names.join(", "))),
                    );
                    return None;
                }
            };
            scope.insert(
                p.name.name.clone(),
                Binding {
                    val: Some(v),
                    span: p.name.span,
                    used: true,
                    param: true,
                },
            );
        }
        self.fn_stack.push(name.to_string());
        let out = self.expr(&def.body, &mut scope);
        self.fn_stack.pop();
        out
    }

    /// A new register computed by `op`, as a value of shape `shape` lying anywhere.
    fn emit(&mut self, name: &str, shape: Vec<i64>, int: bool, op: Op) -> Val {
        let reg = self.push(name, shape.clone(), int, op);
        Val::Reg {
            reg,
            shape,
            int,
            on: On::Any,
            card: None,
        }
    }

    /// A constant whole number >= `min` given as argument `k` of `c`.
    fn const_int(&mut self, c: &Call, k: usize, min: i64, env: &mut Scope) -> Option<i64> {
        let a = &c.args[k].value;
        let v = self.value(a, env)?;
        // What was given, in words (`range(k)` with k = 0 said "something else").
        let found = match &v {
            Val::Const { data, shape, int }
                if shape.is_empty() && *int && data[0] as i64 >= min =>
            {
                return Some(data[0] as i64);
            }
            Val::Const { data, shape, int } if shape.is_empty() && *int => {
                format!("{}", data[0] as i64)
            }
            Val::Const { data, shape, .. } if shape.is_empty() => {
                format!("{}, not a whole number", crate::ir::num(data[0]))
            }
            Val::Const { .. } => "a list".to_string(),
            _ => "a value drawn at random, not a constant".to_string(),
        };
        self.err(
            msg::arg_type(
                &format!("argument {} of `{}`", k + 1, c.name.name),
                &format!("a constant whole number of at least {min}"),
                &found,
            )
            .label(a.span, "here")
            .help("sizes of vectors and matrices are fixed when the model is checked"),
        );
        None
    }

    /// `eye(n)`, `zeros(n)` / `zeros(k, d)`, `ones(...)`, `range(n)`, `one_hot(i, k)`,
    /// `transpose(M)` and `diag(v)`: constants (`one_hot` of a drawn index indexes `eye(k)`).
    fn linalg_call(&mut self, c: &Call, env: &mut Scope) -> Option<Val> {
        let name = c.name.name.as_str();
        let (lo, hi) = match name {
            "zeros" | "ones" => (1, 2),
            "one_hot" => (2, 2),
            _ => (1, 1),
        };
        if c.args.len() < lo || c.args.len() > hi || c.args.iter().any(|a| a.name.is_some()) {
            let takes = if lo == hi {
                Takes::Exactly(lo)
            } else {
                Takes::AtMost(hi)
            };
            self.err(
                msg::arg_count(name, takes, c.args.len())
                    .label(c.span, "here")
                    .help("positional arguments, e.g. `eye(3)`, `zeros(2, 3)`, `one_hot(c, 4)`"),
            );
            return None;
        }
        let konst =
            |data: Vec<f64>, shape: Vec<i64>, int: bool| Some(Val::Const { data, shape, int });
        match name {
            "eye" => {
                let n = self.const_int(c, 0, 1, env)? as usize;
                let data = (0..n * n)
                    .map(|i| f64::from(u8::from(i / n == i % n)))
                    .collect();
                konst(data, vec![n as i64, n as i64], true)
            }
            "zeros" | "ones" => {
                let mut shape = vec![];
                for k in 0..c.args.len() {
                    shape.push(self.const_int(c, k, 1, env)?);
                }
                let v = if name == "ones" { 1.0 } else { 0.0 };
                konst(vec![v; shape.iter().product::<i64>() as usize], shape, true)
            }
            "range" => {
                let n = self.const_int(c, 0, 1, env)?;
                konst((0..n).map(|i| i as f64).collect(), vec![n], true)
            }
            "one_hot" => {
                let k = self.const_int(c, 1, 1, env)? as usize;
                let si = c.args[0].value.span;
                let i = self.value(&c.args[0].value, env)?;
                let eye = Val::Const {
                    data: (0..k * k)
                        .map(|t| f64::from(u8::from(t / k == t % k)))
                        .collect(),
                    shape: vec![k as i64, k as i64],
                    int: true,
                };
                self.index(eye, i, c.args[1].value.span, si)
            }
            _ => {
                let a = &c.args[0].value;
                let v = self.value(a, env)?;
                let shape = v.shape().to_vec();
                let (Val::Const { data, int, .. }, true) = (
                    &v,
                    name == "transpose" && shape.len() == 2 || name == "diag" && shape.len() == 1,
                ) else {
                    let need = if name == "transpose" {
                        "a constant matrix"
                    } else {
                        "a constant vector"
                    };
                    self.err(
                        msg::arg_type(
                            &format!("the argument of `{name}`"),
                            need,
                            &shape_words(&shape),
                        )
                        .label(a.span, "here")
                        .help(format!(
                            "`{name}` works on constants (drawn values are not supported yet)"
                        )),
                    );
                    return None;
                };
                if name == "diag" {
                    let n = data.len();
                    let m = (0..n * n)
                        .map(|t| if t / n == t % n { data[t / n] } else { 0.0 })
                        .collect();
                    return konst(m, vec![n as i64, n as i64], *int);
                }
                let (r, q) = (shape[0] as usize, shape[1] as usize);
                let t = (0..r * q).map(|t| data[(t % r) * q + t / r]).collect();
                konst(t, vec![q as i64, r as i64], *int)
            }
        }
    }

    pub(super) fn binary(&mut self, op: BinOp, a: Val, b: Val, sa: Span, sb: Span) -> Option<Val> {
        if op == BinOp::MatMul {
            return self.matmul(a, b, sa, sb);
        }
        let shape = self.operands("the operands of arithmetic", &a, &b, sa, sb)?;
        let int = op.compares()
            || (a.int() && b.int() && matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul));
        // `@` returned above.
        let arith = consteval::arith(op).unwrap_or(Arith::Mul);
        if let (
            Val::Const {
                data: x, int: xi, ..
            },
            Val::Const {
                data: y, int: yi, ..
            },
        ) = (&a, &b)
        {
            // Constants fold elementwise under the language's one set of rules.
            let n = shape.iter().product::<i64>() as usize; // every element of a matrix too
            let get = |v: &Vec<f64>, i: usize| if v.len() == 1 { v[0] } else { v[i] };
            let mut data = Vec::with_capacity(n);
            let mut all_int = true;
            for i in 0..n {
                let p = Num::from_f64(get(x, i), *xi);
                let q = Num::from_f64(get(y, i), *yi);
                match consteval::binary(op, p, q) {
                    Ok(r) => {
                        all_int &= r.is_int();
                        data.push(r.as_f64());
                    }
                    Err(ConstError::DivisionByZero) => return self.division_by_zero(sb),
                    Err(e) => {
                        self.err(e.diag(sb));
                        return None;
                    }
                }
            }
            return Some(Val::Const {
                data,
                shape,
                int: all_int,
            });
        }
        if let Val::Const { data, .. } = &b {
            if op == BinOp::Div && data.contains(&0.0) {
                return self.division_by_zero(sb);
            }
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

    /// A random index (a draw of `categorical` or `bernoulli`) whose values all lie in a list of
    /// `len` elements.
    fn random_index_fits(&mut self, i: &Val, len: i64, sa: Span, si: Span) -> Option<()> {
        let bound = match &i {
            Val::Const { data, .. } => Some(data[0] as i64 + 1),
            Val::Reg { card, .. } => *card,
            Val::Dist(_) => None,
        };
        match bound {
            Some(b) if b <= len && b >= 1 => Some(()),
            Some(b) => {
                self.err(
                    msg::invalid_value(
                        "a random index",
                        &format!("in 0..{len}, the list's positions"),
                        &format!("values in 0..{b}"),
                    )
                    .label(si, format!("{b} possible values"))
                    .label(sa, format!("{len} elements"))
                    .help("draw the index with as many categories as there are elements"),
                );
                None
            }
            None => {
                self.err(
                    msg::arg_type(
                        "a random index",
                        "a draw from `categorical` or `bernoulli`",
                        "a computed value",
                    )
                    .label(si, "its range is not known")
                    .help("draw it with `c ~ categorical(k)` and index with `c`, so that its range is checked"),
                );
                None
            }
        }
    }

    /// `a[lo:hi]` as written: the bounds evaluated (constant integers), then [`Inst::slice`].
    fn slice_expr(
        &mut self,
        a: &Expr,
        [lo, hi]: [&Option<Box<Expr>>; 2],
        at: Span,
        env: &mut Scope,
    ) -> Option<Val> {
        let va = self.value(a, env)?;
        let mut bounds = [None, None];
        for (k, b) in [lo, hi].into_iter().enumerate() {
            if let Some(b) = b {
                let v = self.value(b, env)?;
                match v.as_f64() {
                    Some(x) if v.int() => bounds[k] = Some(x as i64),
                    _ => {
                        self.err(
                            msg::arg_type("a slice bound", "a constant integer", &v.describe())
                                .label(b.span, "not a constant integer"),
                        );
                        return None;
                    }
                }
            }
        }
        self.slice(va, bounds, a.span, at)
    }

    /// `a[lo:hi]`: elements of a vector, or rows of a matrix, `lo` to `hi - 1`.
    fn slice(&mut self, a: Val, bounds: [Option<i64>; 2], sa: Span, at: Span) -> Option<Val> {
        let Some(&len) = a.shape().first() else {
            self.err(
                msg::shape_mismatch("a sliced value", "a vector or a matrix", "a scalar")
                    .label(sa, "a scalar"),
            );
            return None;
        };
        let range = match consteval::slice_range(bounds[0], bounds[1], len) {
            Ok(r) => r,
            Err((expected, found)) => {
                self.err(
                    msg::invalid_value("a slice", &expected, &found)
                        .label(at, "out of range")
                        .label(sa, format!("{len} elements")),
                );
                return None;
            }
        };
        let mut shape = a.shape().to_vec();
        shape[0] = range.len() as i64;
        let w: usize = a.shape()[1..].iter().product::<i64>() as usize;
        match &a {
            Val::Const { data, int, .. } => Some(Val::Const {
                data: data[range.start * w..range.end * w].to_vec(),
                shape,
                int: *int,
            }),
            _ => {
                let int = a.int();
                let on = match (&a, shape.len()) {
                    // Rows of a matrix keep their support; part of a vector does not.
                    (Val::Reg { on, .. }, 2) => *on,
                    _ => On::Any,
                };
                let ra = self.lift(&a, "list");
                let op = Op::Slice(ra, range.start as i64, range.end as i64);
                Some(self.emit("slice", shape, int, op).with_on(on))
            }
        }
    }

    pub(super) fn index(&mut self, a: Val, i: Val, sa: Span, si: Span) -> Option<Val> {
        let len = match a.shape().first() {
            Some(&n) => n,
            None => {
                self.err(
                    msg::shape_mismatch(
                        "an indexed value",
                        "a vector or a list of vectors",
                        "a scalar",
                    )
                    .label(sa, "a scalar")
                    .help("index a vector or a list of vectors"),
                );
                return None;
            }
        };
        if !i.shape().is_empty() || !i.int() {
            self.err(
                msg::arg_type("an index", "an integer", &i.describe())
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
                        msg::invalid_value("an index", &format!("in 0..{len}"), &k.to_string())
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
                self.random_index_fits(&i, len, sa, si)?;
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
                // A register value built like the other operations' results (binary, calls).
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

    /// A call of a prior program defined in the file: its arguments bound, a distribution.
    fn prior_call(&mut self, c: &Call, env: &mut Scope) -> Option<Val> {
        let def = self.defs.get(c.name.name.as_str()).copied()?;
        let mut args = vec![];
        for a in &c.args {
            let v = self.value(&a.value, env)?;
            args.push((a, v));
        }
        let bound = self.bind(def, &args, c.span)?;
        Some(Val::Dist(Box::new(DistV::Prior {
            name: c.name.name.clone(),
            args: bound,
            span: c.span,
        })))
    }

    pub(super) fn call(&mut self, c: &Call, env: &mut Scope) -> Option<Val> {
        let name = c.name.name.as_str();
        // A user's function or prior of a built-in's name hides it, outside the standard library.
        if reserved(name) && !self.std_files.contains(&c.span.file) {
            if let Some(def) = self.fns.get(name).copied() {
                return self.user_fn(def, c, env);
            }
            if self.defs.contains_key(name) {
                return self.prior_call(c, env);
            }
        }
        let many = match name {
            "min" | "max" => c.args.len() > 1,
            "atan2" | "pow" | "dot" | "clip" => true,
            _ => false,
        };
        if many {
            return self.call_of_many(c, env);
        }
        if matches!(
            name,
            "eye" | "zeros" | "ones" | "range" | "one_hot" | "transpose" | "diag"
        ) {
            return self.linalg_call(c, env);
        }
        if name == "expmap0" && c.args.len() == 2 {
            return self.expmap0_curved(c, env);
        }
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
        if let Some(def) = self.fns.get(name).copied() {
            return self.user_fn(def, c, env);
        }
        if self.defs.contains_key(name) {
            return self.prior_call(c, env);
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
            msg::unknown(Unknown::Distribution, name)
                .label(c.name.span, "not defined")
                .help(help),
        );
        None
    }

    pub(super) fn func(&mut self, f: Func, c: &Call, env: &mut Scope) -> Option<Val> {
        if c.args.len() != 1 || c.args[0].name.is_some() {
            self.err(
                msg::arg_count(&c.name.name, Takes::Exactly(1), c.args.len()).label(c.span, "here"),
            );
            return None;
        }
        let arg = &c.args[0].value;
        let v = self.value(arg, env)?;
        self.apply(f, v, &c.name.name, arg.span)
    }

    /// `f` applied to the value `v` (of the argument at `at`, of the call `name`).
    fn apply(&mut self, f: Func, v: Val, name: &str, at: Span) -> Option<Val> {
        let shape = v.shape().to_vec();
        let reduces = f.needs_vector();
        // (what it needs, what it got): a matrix never, a scalar not where a vector is reduced.
        let wrong = match shape.len() {
            n if n > 1 && reduces => Some(("a vector, so index a row first", "a matrix")),
            0 if reduces => Some(("a vector", "a scalar")),
            _ => None,
        };
        if let Some((need, got)) = wrong {
            self.err(
                msg::shape_mismatch(&format!("the argument of `{}`", name), need, got)
                    .label(at, got),
            );
            return None;
        }
        if let Val::Const { data, .. } = &v {
            let bad = match f {
                Func::Log => data.iter().any(|x| *x <= 0.0),
                Func::Log1p => data.iter().any(|x| *x <= -1.0),
                Func::Sqrt => data.iter().any(|x| *x < 0.0),
                Func::Normalize => data.iter().all(|x| *x == 0.0),
                _ => false,
            };
            if bad {
                self.err(
                    msg::invalid_value(
                        &format!("the argument of `{}`", name),
                        "in its domain",
                        "a constant outside it",
                    )
                    .label(at, "outside the domain")
                    .help(match f {
                        Func::Log => "log needs positive numbers",
                        Func::Log1p => "log1p needs numbers above -1",
                        Func::Sqrt => "sqrt needs non-negative numbers",
                        _ => "the zero vector has no direction",
                    }),
                );
                return None;
            }
        }
        let out_shape = match (f, shape.as_slice()) {
            // Angles to (cos, sin) pairs.
            (Func::Torus, []) => vec![2],
            (Func::Torus, [k]) => vec![2 * k],
            _ if f.reduces() => vec![],
            _ => shape,
        };
        let int = v.int()
            && matches!(
                f,
                Func::Abs | Func::Floor | Func::Sum | Func::Cumsum | Func::Max | Func::Min
            );
        if let Val::Const { data, .. } = &v {
            // Constants fold through pure functions, so that every static check (ranges,
            // unit norms, dimensions) sees `-sqrt(4)` as the -2 it is.
            return Some(Val::Const {
                data: fold(f, data),
                shape: out_shape,
                int,
            });
        }
        let on = match f {
            Func::Softmax => On::Simplex,
            Func::Normalize => On::Sphere,
            Func::Exp => On::Positive,
            Func::Torus => On::Torus,
            Func::Expmap0 => On::Ball(1.0),
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

    /// `expmap0(v, c)`: the exponential map at the origin of the ball of curvature -c,
    /// exp_0(sqrt(c) v) / sqrt(c) with the unit ball's map.
    fn expmap0_curved(&mut self, c: &Call, env: &mut Scope) -> Option<Val> {
        let v = self.value(&c.args[0].value, env)?;
        let cv = self.value(&c.args[1].value, env)?;
        let k = match cv.as_f64() {
            Some(k) if k > 0.0 && k.is_finite() => k,
            _ => {
                self.err(
                    msg::invalid_value(
                        "the curvature of `expmap0`",
                        "a positive constant",
                        &show(&cv),
                    )
                    .label(
                        c.args[1].value.span,
                        "the ball's curvature is -c with c > 0",
                    ),
                );
                return None;
            }
        };
        let (s0, s1) = (c.args[0].value.span, c.args[1].value.span);
        let scaled = self.arith(Arith::Mul, v, Val::scalar(k.sqrt()), s0, s1)?;
        let on_unit = self.apply(Func::Expmap0, scaled, "expmap0", s0)?;
        let out = self.arith(Arith::Mul, on_unit, Val::scalar(1.0 / k.sqrt()), s0, s1)?;
        Some(out.with_on(On::Ball(k)))
    }

    pub(super) fn concat(&mut self, c: &Call, env: &mut Scope) -> Option<Val> {
        let mut vals = vec![];
        for a in &c.args {
            let v = self.value(&a.value, env)?;
            if v.shape().len() > 1 {
                self.err(
                    msg::shape_mismatch(
                        "an argument of `concat`",
                        "a scalar or a vector",
                        "a matrix",
                    )
                    .label(a.value.span, "a matrix"),
                );
                return None;
            }
            vals.push(v);
        }
        if vals.is_empty() {
            self.err(msg::arg_count("concat", Takes::AtLeast(1), 0).label(c.span, "here"));
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
        // Points of S^1 (and of tori) side by side lie on a torus.
        let circle =
            |v: &Val| matches!(v.on(), On::Torus) || (v.on() == On::Sphere && v.shape() == [2]);
        let on = if vals.iter().all(circle) {
            On::Torus
        } else {
            On::Any
        };
        let regs: Vec<usize> = vals.iter().map(|v| self.lift(v, "const")).collect();
        let reg = self.push("concat", vec![n], int, Op::Concat(regs));
        Some(Val::Reg {
            reg,
            shape: vec![n],
            int,
            on,
            card: None,
        })
    }

    /// The error for a division by a constant zero.
    fn division_by_zero(&mut self, at: Span) -> Option<Val> {
        self.err(ConstError::DivisionByZero.diag(at));
        None
    }
}

/// The error function, for folding constants: its Maclaurin series below 2.5, and beyond, erfc
/// from its continued fraction (modified Lentz); both to about 1e-15.
fn erf(x: f64) -> f64 {
    if x.abs() < 2.5 {
        // Maclaurin series: erf x = 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1)).
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        for n in 1..200 {
            term *= -x2 / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc x = exp(-x^2) / (x sqrt(pi)) times a continued fraction (Lentz), beyond 2.5.
        let a = x.abs();
        let mut f = a;
        let mut c = a;
        let mut d = 0.0;
        for k in 1..200 {
            let ak = k as f64 / 2.0;
            d = a + ak * d;
            d = if d == 0.0 { 1e-300 } else { 1.0 / d };
            c = a + ak / c;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        let erfc = (-a * a).exp() / (f * std::f64::consts::PI.sqrt());
        (1.0 - erfc).copysign(x)
    }
}

/// `f` applied to constant data, in float64 (what the runtime computes in float32).
pub(crate) fn fold(f: Func, data: &[f64]) -> Vec<f64> {
    let map = |g: fn(f64) -> f64| data.iter().map(|&x| g(x)).collect::<Vec<f64>>();
    match f {
        Func::Exp => map(f64::exp),
        Func::Log => map(f64::ln),
        Func::Sin => map(f64::sin),
        Func::Cos => map(f64::cos),
        Func::Sqrt => map(f64::sqrt),
        Func::Abs => map(f64::abs),
        Func::Tanh => map(f64::tanh),
        Func::Sigmoid => map(|x| 1.0 / (1.0 + (-x).exp())),
        Func::Floor => map(f64::floor),
        Func::Sum => vec![data.iter().sum()],
        Func::Log1p => map(f64::ln_1p),
        Func::Expm1 => map(f64::exp_m1),
        Func::Erf => map(erf),
        Func::Logsumexp => {
            let m = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            vec![m + data.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()]
        }
        Func::Norm => vec![data.iter().map(|x| x * x).sum::<f64>().sqrt()],
        Func::Cumsum => data
            .iter()
            .scan(0.0, |acc, &x| {
                *acc += x;
                Some(*acc)
            })
            .collect(),
        Func::Max => vec![data.iter().copied().fold(f64::NEG_INFINITY, f64::max)],
        Func::Min => vec![data.iter().copied().fold(f64::INFINITY, f64::min)],
        Func::Softmax => {
            let m = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = data.iter().map(|&x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            e.into_iter().map(|x| x / z).collect()
        }
        Func::Normalize => {
            let n = data.iter().map(|x| x * x).sum::<f64>().sqrt();
            data.iter().map(|x| x / n).collect()
        }
        Func::Torus => data.iter().flat_map(|t| [t.cos(), t.sin()]).collect(),
        Func::Expmap0 => {
            let n = data.iter().map(|x| x * x).sum::<f64>().sqrt();
            let f = if n > 0.0 { n.tanh() / n } else { 1.0 };
            data.iter().map(|x| x * f).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fold;
    use crate::ir::Func;

    /// Folding against closed forms and independent formulas.
    /// The folded error function against tabulated values (to 1e-14), and odd symmetry.
    #[test]
    fn erf_folds_to_tabulated_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (2.7, 0.999_865_667_260_059_4),
            (3.0, 0.999_977_909_503_001_4),
            (5.0, 0.999_999_999_998_462_5),
        ] {
            let got = fold(Func::Erf, &[x, -x]);
            assert!(
                (got[0] - want).abs() < 1e-14,
                "erf({x}) = {} vs {want}",
                got[0]
            );
            assert_eq!(got[1], -got[0]);
        }
        let v = [1.0, -2.0, 0.5];
        assert!(
            (fold(Func::Logsumexp, &v)[0] - (1f64.exp() + (-2f64).exp() + 0.5f64.exp()).ln()).abs()
                < 1e-15
        );
        assert_eq!(fold(Func::Cumsum, &v), vec![1.0, -1.0, -0.5]);
        assert_eq!(fold(Func::Max, &v), vec![1.0]);
        assert_eq!(fold(Func::Min, &v), vec![-2.0]);
        assert!((fold(Func::Norm, &v)[0] - 5.25f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn folding_matches_closed_forms() {
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(&fold(Func::Sqrt, &[4.0, 900.0]), &[2.0, 30.0]));
        assert!(close(
            &fold(Func::Exp, &[0.0, 1.0]),
            &[1.0, std::f64::consts::E]
        ));
        assert!(close(
            &fold(Func::Log, &[1.0, std::f64::consts::E]),
            &[0.0, 1.0]
        ));
        assert!(close(&fold(Func::Sigmoid, &[0.0]), &[0.5]));
        assert!(close(&fold(Func::Abs, &[-2.0, 3.0]), &[2.0, 3.0]));
        assert!(close(&fold(Func::Floor, &[-1.5, 2.5]), &[-2.0, 2.0]));
        assert!(close(&fold(Func::Sum, &[1.0, 2.0, 3.5]), &[6.5]));
        assert!(close(
            &fold(Func::Normalize, &[1.0, 2.0, 2.0]),
            &[1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0]
        ));
        // softmax([0, ln 3]) = [1/4, 3/4], also for shifted inputs.
        assert!(close(
            &fold(Func::Softmax, &[0.0, 3f64.ln()]),
            &[0.25, 0.75]
        ));
        assert!(close(
            &fold(Func::Softmax, &[1000.0, 1000.0 + 3f64.ln()]),
            &[0.25, 0.75]
        ));
        let (s, c) = (fold(Func::Sin, &[1.0])[0], fold(Func::Cos, &[1.0])[0]);
        assert!((s * s + c * c - 1.0).abs() < 1e-12);
        assert!(close(
            &fold(Func::Tanh, &[0.5]),
            &[(1.0 - (-1.0f64).exp()) / (1.0 + (-1.0f64).exp())]
        ));
    }
}
