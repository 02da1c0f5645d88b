//! The values of prior programs as the checker sees them: constants, registers with their shapes
//! and supports, distributions; and how they print in messages.

use super::*;

/// Where the values of a register lie, as far as the checker can tell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum On {
    Any,
    /// Every coordinate is positive (Gamma, exponential, exp, ...).
    Positive,
    Sphere,
    Simplex,
    /// Every pair of coordinates is a unit vector: a point of the torus (S^1)^k.
    Torus,
    /// Inside the Poincare ball of curvature -c.
    Ball(f64),
}

/// A value while checking: a constant, a random register, or a distribution not yet drawn.
#[derive(Clone, Debug)]
pub(super) enum Val {
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
pub(super) enum DistV {
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
    pub(super) fn shape(&self) -> &[i64] {
        match self {
            Val::Const { shape, .. } | Val::Reg { shape, .. } => shape,
            Val::Dist(_) => &[],
        }
    }
    pub(super) fn int(&self) -> bool {
        matches!(
            self,
            Val::Const { int: true, .. } | Val::Reg { int: true, .. }
        )
    }
    pub(super) fn scalar(x: f64) -> Val {
        Val::Const {
            data: vec![x],
            shape: vec![],
            int: false,
        }
    }
    /// A constant scalar's value.
    pub(super) fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Const { data, shape, .. } if shape.is_empty() => Some(data[0]),
            _ => None,
        }
    }
    pub(super) fn on(&self) -> On {
        match self {
            Val::Reg { on, .. } => *on,
            Val::Const { data, shape, .. } if shape.len() == 1 => const_on(data),
            _ => On::Any,
        }
    }
    /// The same value with what the checker knows of where it lies replaced (registers only).
    pub(super) fn with_on(self, on: On) -> Val {
        match self {
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
        }
    }

    pub(super) fn describe(&self) -> String {
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
/// How far from 1 a constant's norm (or sum) may be to count as on the sphere (or simplex): a
/// float32-accurate literal such as 0.70710678 is within it, a typo is not.
pub(super) const UNIT_TOLERANCE: f64 = 1e-6;

pub(super) fn const_on(data: &[f64]) -> On {
    let norm: f64 = data.iter().map(|x| x * x).sum::<f64>().sqrt();
    let sum: f64 = data.iter().sum();
    if (norm - 1.0).abs() < UNIT_TOLERANCE {
        On::Sphere
    } else if data.iter().all(|&x| x >= 0.0) && (sum - 1.0).abs() < UNIT_TOLERANCE {
        On::Simplex
    } else {
        On::Any
    }
}

/// The largest dimension or number of categories of a draw (the batch multiplies it).
/// A constant as written back in a resolved call.
pub(super) fn show(v: &Val) -> String {
    match v {
        Val::Const { data, shape, .. } if shape.is_empty() => ir::num(data[0]),
        Val::Const { data, .. } => format!(
            "[{}]",
            data.iter()
                .map(|x| ir::num(*x))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => v.describe(),
    }
}

/// `laplace(%0, %1)` for a directly used primitive: the call with its constants filled in.
pub(super) fn call_text(call: &Call, instrs: &[Instr]) -> String {
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
pub(super) fn all_const(vals: &[Val]) -> Option<Vec<f64>> {
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
pub(super) fn broadcast(a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    if a.is_empty() {
        Some(b.to_vec())
    } else if b.is_empty() || a == b {
        Some(a.to_vec())
    } else {
        None
    }
}

pub(super) fn shape_words(s: &[i64]) -> String {
    match s {
        [] => "a scalar".into(),
        [n] => format!("a vector of {n}"),
        s => format!("a {} x {} matrix", s[0], s[1]),
    }
}
