//! The reconstruction cost: a named one (`squared_l2`, `l1`, `bce`) or an expression of the data
//! `x` and its reconstruction `y` that gives one number per example, compiled to an
//! [`ir::CostExpr`].

use super::*;
use crate::catalogue::*;
use crate::ir::{Arith, CostExpr, Func};
use crate::syntax::BinOp;

/// Elementwise functions a cost may use, with their IR.
const ELEMENTWISE: &[(&str, Func)] = &[
    ("exp", Func::Exp),
    ("log", Func::Log),
    ("log1p", Func::Log1p),
    ("expm1", Func::Expm1),
    ("sqrt", Func::Sqrt),
    ("abs", Func::Abs),
    ("sin", Func::Sin),
    ("cos", Func::Cos),
    ("tanh", Func::Tanh),
    ("sigmoid", Func::Sigmoid),
    ("erf", Func::Erf),
];

/// What a cost expression may call, for messages.
const FUNCTIONS: &str = "exp, log, log1p, expm1, sqrt, abs, sin, cos, tanh, sigmoid, erf (elementwise), min(a, b), max(a, b), sum, mean (over an example's values), dx, dy (differences of horizontal / vertical neighbours of an image)";

/// Whether `e` mentions the data `x` or the reconstruction `y` (then it is not a constant).
fn mentions(e: &Expr, names: &[&str]) -> bool {
    match &e.kind {
        ExprKind::Call(c) => {
            (!c.parens && c.args.is_empty() && names.contains(&c.name.name.as_str()))
                || c.args.iter().any(|a| mentions(&a.value, names))
        }
        ExprKind::Neg(a) => mentions(a, names),
        ExprKind::Binary(_, a, b) | ExprKind::Index(a, b) => {
            mentions(a, names) || mentions(b, names)
        }
        ExprKind::List(items) => items.iter().any(|i| mentions(i, names)),
        ExprKind::If(c, a, b) => [c, a, b].iter().any(|x| mentions(x, names)),
        ExprKind::Comprehension(b, _, s) => mentions(b, names) || mentions(s, names),
        ExprKind::Slice(a, lo, hi) => {
            mentions(a, names)
                || [lo, hi]
                    .iter()
                    .any(|b| b.as_ref().is_some_and(|b| mentions(b, names)))
        }
        ExprKind::Int(_) | ExprKind::Real(_) | ExprKind::Str(_) | ExprKind::Bool(_) => false,
    }
}

/// The sign a cost expression has whatever the data, where its form shows it.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Sign {
    NonNegative,
    NonPositive,
}

fn sign(e: &Expr) -> Option<Sign> {
    use Sign::*;
    let flip = |s: Sign| {
        if s == NonNegative {
            NonPositive
        } else {
            NonNegative
        }
    };
    let number = |v: f64| if v >= 0.0 { NonNegative } else { NonPositive };
    match &e.kind {
        ExprKind::Int(k) => Some(number(*k as f64)),
        ExprKind::Real(v) => Some(number(*v)),
        ExprKind::Neg(a) => sign(a).map(flip),
        ExprKind::Call(c) if c.parens => match c.name.name.as_str() {
            "sum" | "mean" => c.args.first().and_then(|a| sign(&a.value)),
            "abs" | "sqrt" | "exp" | "sigmoid" => Some(NonNegative),
            _ => None,
        },
        ExprKind::Binary(BinOp::Pow, _, b) => match b.kind {
            ExprKind::Int(k) if k % 2 == 0 => Some(NonNegative),
            _ => None,
        },
        ExprKind::Binary(BinOp::Mul | BinOp::Div, a, b) => match (sign(a)?, sign(b)?) {
            (x, y) if x == y => Some(NonNegative),
            _ => Some(NonPositive),
        },
        ExprKind::Binary(BinOp::Add, a, b) => match (sign(a)?, sign(b)?) {
            (x, y) if x == y => Some(x),
            _ => None,
        },
        ExprKind::Binary(BinOp::Sub, a, b) => match (sign(a)?, sign(b)?) {
            (x, y) if x != y => Some(x),
            _ => None,
        },
        _ => None,
    }
}

impl<'a> Checker<'a> {
    /// The model's reconstruction cost (`squared_l2` when there is no `cost` clause).
    pub(super) fn cost(
        &mut self,
        cl: Option<&Clause>,
        gen: Option<(&Flow, Span)>,
        data: Option<&(ir::DataSpec, Span)>,
    ) -> Option<ir::ReconCost> {
        let Some(cl) = cl else {
            return Some(ir::ReconCost::SquaredL2);
        };
        let ClauseKind::Cost(e) = &cl.kind else {
            return None;
        };
        // A named cost is a call of no data (`squared_l2`, `l1()`); anything else an expression.
        match &e.kind {
            ExprKind::Call(call)
                if !mentions(e, &["x", "y"])
                    && !ELEMENTWISE.iter().any(|(n, _)| *n == call.name.name) =>
            {
                self.named_cost(call, gen, data)
            }
            _ => {
                let shape = data.map(|(d, _)| d.shape.clone())?;
                let (expr, out) = self.cost_expr(e, &shape)?;
                if !out.is_empty() {
                    self.err(
                        msg::cost_expression(&format!(
                            "must give one number per example, but gives {} values of shape {}",
                            out.iter().product::<i64>(),
                            shape_str(&out)
                        ))
                        .label(e.span, format!("shape {} per example", shape_str(&out)))
                        .help("reduce it over an example's values with `sum(...)` or `mean(...)`"),
                    );
                    return None;
                }
                if !mentions(e, &["y"]) {
                    self.err(msg::cost_without_reconstruction().label(e.span, "no `y` here"));
                }
                if sign(e) == Some(Sign::NonPositive) {
                    self.diags.report(
                        msg::negative_cost()
                            .label(e.span, "never positive")
                            .help("a cost is minimised: write it so that better reconstructions give smaller values, e.g. without the minus sign"),
                    );
                }
                let text = e.to_string();
                Some(ir::ReconCost::Expr { text, expr })
            }
        }
    }

    /// `cost squared_l2`, `l1` or `bce`, with bce's checks of the data and the generator.
    fn named_cost(
        &mut self,
        call: &Call,
        gen: Option<(&Flow, Span)>,
        data: Option<&(ir::DataSpec, Span)>,
    ) -> Option<ir::ReconCost> {
        let params = self.lookup(call, COSTS, Unknown::Cost, "reconstruction costs")?;
        self.bind(call, params, &Env::new())?;
        let cost = match name_of(call) {
            "squared_l2" => ir::ReconCost::SquaredL2,
            "l1" => ir::ReconCost::L1,
            _ => ir::ReconCost::Bce,
        };
        if cost == ir::ReconCost::Bce {
            if let Some((d, dspan)) = data {
                if !d.is_image() {
                    self.err(
                        msg::cost_output(
                            "binary cross-entropy",
                            "data in [0, 1]",
                            &format!("points {}", shape_str(&d.shape)),
                        )
                        .label(call.span, "bce here")
                        .label(*dspan, "points, not pixel intensities")
                        .help("use `cost squared_l2` for point data"),
                    );
                    return None;
                }
            }
            if let Some((flow, pspan)) = gen {
                // The sigmoid must be the generator's last layer, shape changes aside.
                let last = flow.last_value_layer();
                let sigmoid = flow
                    .layers
                    .iter()
                    .zip(&flow.spans)
                    .rev()
                    .find(|(l, _)| l.op == LayerOp::Sigmoid);
                if let (Some((l, at)), Some((_, sat)), true) = (last, sigmoid, flow.shape.is_some())
                {
                    if l.op != LayerOp::Sigmoid {
                        self.err(
                            msg::cost_output("binary cross-entropy", "a generator that outputs probabilities", "layers after its sigmoid")
                                .label(call.span, "bce compares probabilities")
                                .label(*sat, "a sigmoid here")
                                .label(*at, "but the generator ends here, outside (0, 1)")
                                .help("move `sigmoid` to the end of the generator (before any reshape), or use `cost squared_l2`"),
                        );
                        return None;
                    }
                }
                if flow.shape.is_some()
                    && !flow.layers.iter().rev().any(|l| l.op == LayerOp::Sigmoid)
                {
                    let at = flow.spans.last().copied().unwrap_or(pspan);
                    self.err(
                        msg::cost_output("binary cross-entropy", "a generator that outputs probabilities", "no sigmoid at its end")
                            .label(call.span, "bce compares probabilities")
                            .label(at, "the generator ends here without a sigmoid")
                            .help("add `sigmoid` to the generator (before any reshape), or use `cost squared_l2`"),
                    );
                    return None;
                }
            }
        }
        Some(cost)
    }

    /// One node of a cost expression and its shape per example (`data` is the data's).
    fn cost_expr(&mut self, e: &Expr, data: &[i64]) -> Option<(CostExpr, Shape)> {
        if !mentions(e, &["x", "y"]) {
            return self.cost_constant(e, data);
        }
        match &e.kind {
            ExprKind::Call(c) if !c.parens && c.args.is_empty() => {
                let node = if c.name.name == "x" {
                    CostExpr::X
                } else {
                    CostExpr::Y
                };
                Some((node, data.to_vec()))
            }
            ExprKind::Neg(a) => {
                let (n, s) = self.cost_expr(a, data)?;
                Some((CostExpr::Neg(Box::new(n)), s))
            }
            ExprKind::Binary(op, a, b) => {
                let arith = match op {
                    crate::syntax::BinOp::Add => Arith::Add,
                    crate::syntax::BinOp::Sub => Arith::Sub,
                    crate::syntax::BinOp::Mul => Arith::Mul,
                    crate::syntax::BinOp::Div => Arith::Div,
                    crate::syntax::BinOp::Pow => Arith::Pow,
                    _ => {
                        self.err(
                            msg::cost_expression("cannot compare or multiply matrices")
                                .label(e.span, "not in a cost")
                                .help("a cost combines values with + - * / ^ and the functions of the reference"),
                        );
                        return None;
                    }
                };
                self.cost_binary(arith, a, b, data)
            }
            ExprKind::Call(c) => self.cost_call(c, data),
            _ => {
                self.err(
                    msg::cost_expression(
                        "can only use x, y, numbers, constants, arithmetic and functions",
                    )
                    .label(e.span, "not in a cost")
                    .help(format!("the functions: {FUNCTIONS}")),
                );
                None
            }
        }
    }

    /// A part without `x` or `y`: a number, or a vector of one value per channel (or feature).
    fn cost_constant(&mut self, e: &Expr, data: &[i64]) -> Option<(CostExpr, Shape)> {
        let v = self.eval(e, &Env::new())?;
        if let Some(x) = v.as_f64() {
            return Some((CostExpr::Const(x), vec![]));
        }
        let nums: Option<Vec<f64>> = match &v {
            Value::List(items) => items.iter().map(Value::as_f64).collect(),
            _ => None,
        };
        let per = data.first().copied().unwrap_or(0);
        match nums {
            Some(n) if n.len() as i64 == per => {
                let shape = if data.len() == 3 {
                    vec![per]
                } else {
                    data.to_vec()
                };
                Some((CostExpr::Channels(n), shape))
            }
            found => {
                let what = if data.len() == 3 {
                    "channel"
                } else {
                    "feature"
                };
                let found = match found {
                    Some(n) => format!("a list of {}", n.len()),
                    None => v.type_name().to_string(),
                };
                self.err(
                    msg::cost_expression(&format!(
                        "needs numbers, or lists of one number per {what} ({per}); found {found}"
                    ))
                    .label(e.span, "here"),
                );
                None
            }
        }
    }

    /// `a OP b` with their shapes broadcast: equal shapes, a number with anything, a vector of
    /// one value per channel with an image.
    fn cost_binary(
        &mut self,
        op: Arith,
        a: &Expr,
        b: &Expr,
        data: &[i64],
    ) -> Option<(CostExpr, Shape)> {
        let l = self.cost_expr(a, data);
        let r = self.cost_expr(b, data);
        let ((ln, ls), (rn, rs)) = (l?, r?);
        let channel = |v: &Shape, img: &Shape| v.len() == 1 && img.len() == 3 && v[0] == img[0];
        let shape = if ls == rs || rs.is_empty() {
            ls.clone()
        } else if ls.is_empty() {
            rs.clone()
        } else if channel(&ls, &rs) {
            rs.clone()
        } else if channel(&rs, &ls) {
            ls.clone()
        } else {
            self.err(
                msg::shape_mismatch(
                    "the operands of arithmetic in a cost",
                    "of one shape, or one a number or a vector of one value per channel",
                    &format!("{} and {}", shape_str(&ls), shape_str(&rs)),
                )
                .label(a.span, shape_str(&ls))
                .label(b.span, shape_str(&rs)),
            );
            return None;
        };
        Some((CostExpr::Binary(op, Box::new(ln), Box::new(rn)), shape))
    }

    /// A function call in a cost expression.
    fn cost_call(&mut self, c: &Call, data: &[i64]) -> Option<(CostExpr, Shape)> {
        let name = c.name.name.as_str();
        let want = if matches!(name, "min" | "max") { 2 } else { 1 };
        let known = ELEMENTWISE.iter().any(|(n, _)| *n == name)
            || matches!(name, "min" | "max" | "sum" | "mean" | "dx" | "dy");
        if !known {
            self.err(
                msg::cost_expression(&format!("cannot call `{name}`"))
                    .label(c.name.span, "not a function of costs")
                    .help(format!("the functions: {FUNCTIONS}")),
            );
            return None;
        }
        if c.args.len() != want || c.args.iter().any(|a| a.name.is_some()) {
            self.err(
                msg::arg_count(name, Takes::Exactly(want), c.args.len()).label(c.span, "here"),
            );
            return None;
        }
        if want == 2 {
            let op = if name == "min" {
                Arith::Minimum
            } else {
                Arith::Maximum
            };
            return self.cost_binary(op, &c.args[0].value, &c.args[1].value, data);
        }
        let arg = &c.args[0].value;
        let (n, s) = self.cost_expr(arg, data)?;
        let n = Box::new(n);
        if let Some((_, f)) = ELEMENTWISE.iter().find(|(x, _)| *x == name) {
            return Some((CostExpr::Apply(*f, n), s));
        }
        match name {
            "sum" => Some((CostExpr::Sum(n), vec![])),
            "mean" => Some((CostExpr::Mean(n), vec![])),
            _ => {
                // dx, dy: an image of at least 2 pixels along the direction.
                let axis = if name == "dx" { 2 } else { 1 };
                if s.len() != 3 || s[axis] < 2 {
                    self.err(
                        msg::cost_expression(&format!(
                            "takes `{name}` of an image [C, H, W] at least 2 pixels {}, found {}",
                            if name == "dx" { "wide" } else { "high" },
                            shape_str(&s)
                        ))
                        .label(arg.span, shape_str(&s)),
                    );
                    return None;
                }
                let mut out = s.clone();
                out[axis] -= 1;
                let node = if name == "dx" {
                    CostExpr::Dx(n)
                } else {
                    CostExpr::Dy(n)
                };
                Some((node, out))
            }
        }
    }
}
