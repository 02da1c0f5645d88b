//! The values of nets' and clauses' constant expressions (numbers, strings, lists, net
//! parameters) and their evaluation; arithmetic follows [`crate::consteval`].

use std::collections::HashMap;

use super::*;
use crate::consteval::{self, Num};

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
            ExprKind::Call(c) => {
                if !c.parens {
                    if let Some(v) = env
                        .get(&c.name.name)
                        .or_else(|| self.consts.get(&c.name.name))
                    {
                        return Some(v.clone());
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
                } else {
                    self.err(
                        msg::arg_type(
                            "an argument",
                            "a value",
                            &format!("a call `{}(...)`", c.name.name),
                        )
                        .label(c.span, "a call where a value is expected")
                        .help("write a number, a string, `true`/`false` or a list"),
                    );
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

    pub(super) fn not_numeric(&mut self, v: &Value, span: Span) -> Option<Value> {
        self.err(
            msg::arg_type("an operand of arithmetic", "a number", v.type_name())
                .label(span, "not a number"),
        );
        None
    }
}
