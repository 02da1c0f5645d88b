//! The syntax tree printed back as source text, in one plain style: imports, nets, priors, then
//! the clauses in their order. Comments are not in the tree and are not printed. Parsing the
//! printed text gives a tree that compiles to the same IR (tests/invariants.rs), which is what a
//! formatter builds on.

use std::fmt::{self, Display, Formatter, Write};

use super::{
    Arg, BinOp, Call, Clause, ClauseKind, Expr, ExprKind, Module, NetDef, Pipeline, PriorDef,
    SpaceExpr, StmtKind,
};

impl Display for BinOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
            BinOp::MatMul => "@",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
        })
    }
}

/// Whether an expression prints as one primary (no operator at its top).
fn atomic(e: &Expr) -> bool {
    !matches!(
        e.kind,
        ExprKind::Neg(_) | ExprKind::Binary(..) | ExprKind::If(..)
    )
}

/// An expression as a primary: in parentheses unless it is one already.
struct Primary<'a>(&'a Expr);

impl Display for Primary<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if atomic(self.0) {
            write!(f, "{}", self.0)
        } else {
            write!(f, "({})", self.0)
        }
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Int(i) => write!(f, "{i}"),
            // Debug of f64 is the shortest text that reads back to the same number, and always
            // has a `.` or an exponent, so it reads back as a real.
            ExprKind::Real(r) => write!(f, "{r:?}"),
            ExprKind::Str(s) => write!(f, "\"{s}\""),
            ExprKind::Bool(b) => write!(f, "{b}"),
            ExprKind::Call(c) => write!(f, "{c}"),
            ExprKind::Neg(x) => write!(f, "-{}", Primary(x)),
            ExprKind::Binary(op, a, b) => write!(f, "{} {op} {}", Primary(a), Primary(b)),
            ExprKind::List(items) => {
                f.write_char('[')?;
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_char(']')
            }
            ExprKind::Index(a, i) => write!(f, "{}[{i}]", Primary(a)),
            ExprKind::Slice(a, lo, hi) => {
                let bound =
                    |b: &Option<Box<Expr>>| b.as_ref().map(|e| e.to_string()).unwrap_or_default();
                write!(f, "{}[{}:{}]", Primary(a), bound(lo), bound(hi))
            }
            ExprKind::If(c, a, b) => write!(f, "if {c} then {a} else {b}"),
            ExprKind::Comprehension(body, var, source) => {
                write!(f, "[{body} for {} in {source}]", var.name)
            }
        }
    }
}

impl Display for Arg {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{} = {}", n.name, self.value),
            None => write!(f, "{}", self.value),
        }
    }
}

impl Display for Call {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name.name)?;
        if self.parens {
            f.write_char('(')?;
            for (i, a) in self.args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{a}")?;
            }
            f.write_char(')')?;
        }
        Ok(())
    }
}

impl Display for Pipeline {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for l in &self.layers {
            write!(f, " {l}")?;
        }
        f.write_str(" }")
    }
}

impl Display for SpaceExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SpaceExpr::Pow { base, exponent, .. } => {
                write!(f, "{}^{}", base.name, Primary(exponent))
            }
            SpaceExpr::Call(c) => write!(f, "{c}"),
        }
    }
}

/// A parameter list: `(a, b: int = 2)`.
fn params<'a>(
    f: &mut Formatter<'_>,
    items: impl Iterator<Item = (&'a str, Option<&'a str>, Option<&'a Expr>)>,
) -> fmt::Result {
    f.write_char('(')?;
    for (i, (name, ty, default)) in items.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(name)?;
        if let Some(t) = ty {
            write!(f, ": {t}")?;
        }
        if let Some(d) = default {
            write!(f, " = {d}")?;
        }
    }
    f.write_char(')')
}

impl Display for NetDef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "net {}", self.name.name)?;
        let items = self.params.iter();
        params(
            f,
            items.map(|p| (p.name.name.as_str(), None, p.default.as_ref())),
        )?;
        write!(f, " {}", self.body)
    }
}

impl Display for PriorDef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "prior {}", self.name.name)?;
        let items = self.params.iter().map(|p| {
            let ty = p.ty.as_ref().map(|t| t.name.as_str());
            (p.name.name.as_str(), ty, p.default.as_ref())
        });
        params(f, items)?;
        writeln!(f, " on {} {{", self.space)?;
        for s in &self.body {
            match &s.kind {
                StmtKind::Draw(x, e) => writeln!(f, "  {} ~ {e}", x.name)?,
                StmtKind::Let(x, e) => writeln!(f, "  {} = {e}", x.name)?,
                StmtKind::Return(e) => writeln!(f, "  return {e}")?,
                StmtKind::Param(x, e, draw) => {
                    let op = if *draw { "~" } else { "=" };
                    writeln!(f, "  param {} {op} {e}", x.name)?
                }
            }
        }
        f.write_str("}")
    }
}

impl Display for Clause {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ClauseKind::Data(call, transforms) => {
                write!(f, "data {call}")?;
                for t in transforms {
                    write!(f, " -> {t}")?;
                }
                Ok(())
            }
            ClauseKind::Latent { name, space, prior } => {
                f.write_str("latent ")?;
                if let Some(n) = name {
                    write!(f, "{}: ", n.name)?;
                }
                write!(f, "{space} ~ {prior}")
            }
            ClauseKind::Encoder(name, p) => match name {
                Some(n) => write!(f, "encoder {} {p}", n.name),
                None => write!(f, "encoder {p}"),
            },
            ClauseKind::Generator(p) => write!(f, "generator {p}"),
            ClauseKind::Cost(c) => write!(f, "cost {c}"),
            ClauseKind::Penalty { weight, call, on } => {
                f.write_str("penalty ")?;
                if let Some(w) = weight {
                    write!(f, "({w}) * ")?;
                }
                write!(f, "{call}")?;
                if let Some(o) = on {
                    write!(f, " on {}", o.name)?;
                }
                Ok(())
            }
            ClauseKind::Train(settings) => {
                f.write_str("train {")?;
                for (name, value) in settings {
                    write!(f, " {} {value}", name.name)?;
                }
                f.write_str(" }")
            }
        }
    }
}

impl Display for Module {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for i in &self.imports {
            writeln!(f, "import \"{}\"", i.path)?;
        }
        for l in &self.lets {
            writeln!(f, "let {} = {}", l.name.name, l.value)?;
        }
        for n in &self.nets {
            writeln!(f, "{n}")?;
        }
        for d in &self.fns {
            let params: Vec<String> = d
                .params
                .iter()
                .map(|p| match &p.default {
                    Some(e) => format!("{} = {e}", p.name.name),
                    None => p.name.name.clone(),
                })
                .collect();
            writeln!(f, "fn {}({}) = {}", d.name.name, params.join(", "), d.body)?;
        }
        for p in &self.priors {
            writeln!(f, "{p}")?;
        }
        for c in &self.clauses {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}
