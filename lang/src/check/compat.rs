//! Model files of earlier versions keep compiling: arguments that the standard library renamed
//! are read in their new form, with a warning that shows it. (Built-ins added later never break
//! a file either: a user's definition of the same name hides them, see `msg::shadows`.)

use crate::diag::{messages as msg, Diag};
use crate::syntax::{Arg, Call, Expr, ExprKind, Ident};

/// A standard-library prior whose separate arguments became one list: (prior, the old names in
/// order, the new name, the default of a missing old one, since when).
const MERGED: &[(&str, &[&str], &str, f64, &str)] = &[(
    "torus_von_mises",
    &["mean1", "mean2"],
    "mean",
    0.0,
    "2026-12-04",
)];

/// The call in its current form, and the warning, when it uses arguments of an earlier version.
pub(super) fn migrate(call: &Call) -> Option<(Call, Diag)> {
    let &(_, old, new, default, since) = MERGED.iter().find(|m| m.0 == call.name.name)?;
    let given: Vec<&Arg> = call
        .args
        .iter()
        .filter(|a| {
            a.name
                .as_ref()
                .is_some_and(|n| old.contains(&n.name.as_str()))
        })
        .collect();
    let first = given.first()?;
    let items: Vec<Expr> = old
        .iter()
        .map(|o| {
            given
                .iter()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == *o))
                .map(|a| a.value.clone())
                .unwrap_or(Expr {
                    kind: if default.fract() == 0.0 {
                        ExprKind::Int(default as i64)
                    } else {
                        ExprKind::Real(default)
                    },
                    span: call.span,
                })
        })
        .collect();
    let written: Vec<String> = items.iter().map(|e| e.to_string()).collect();
    let list = format!("[{}]", written.join(", "));
    let mut out = call.clone();
    out.args.retain(|a| {
        !a.name
            .as_ref()
            .is_some_and(|n| old.contains(&n.name.as_str()))
    });
    out.args.push(Arg {
        name: Some(Ident {
            name: new.to_string(),
            span: first.span,
        }),
        value: Expr {
            kind: ExprKind::List(items),
            span: first.span,
        },
        span: first.span,
    });
    let olds = old
        .iter()
        .map(|o| format!("`{o}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let at = given
        .iter()
        .map(|a| a.span)
        .reduce(|a, b| a.to(b))
        .unwrap_or(first.span);
    let d = msg::deprecated(&format!(
        "{olds} of `{}` are written `{new} = [...]` since {since}",
        call.name.name
    ))
    .label(at, format!("read as `{new} = {list}`"))
    .help(format!(
        "write `{new} = {list}`; the old form is still read"
    ));
    Some((out, d))
}
