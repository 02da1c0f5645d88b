//! `--set NAME=VALUE`: a file's constant (`let NAME = ...`) or a `train` setting given on the
//! command line. The value is parsed and checked like the file, with its diagnostics pointing at
//! the argument; the effective model text (the file with the values substituted) is what a run
//! records, so that it compiles to the same model again.

use crate::catalogue::{find, OPTIMIZERS, SETTINGS};
use crate::diag::messages::{self as msg, Unknown};
use crate::diag::{unknown_help, Diag, Span};
use crate::load::Program;
use crate::syntax::{parse_expr, Arg, Call, Clause, ClauseKind, Expr, ExprKind, Ident};

/// One `--set NAME=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub name: String,
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;
    /// `NAME=VALUE`, as clap hands it over.
    fn from_str(s: &str) -> Result<Override, String> {
        match s.split_once('=') {
            Some((n, v)) if !n.trim().is_empty() && !v.trim().is_empty() => Ok(Override {
                name: n.trim().to_string(),
                value: v.trim().to_string(),
            }),
            _ => Err(format!(
                "`{s}` is not NAME=VALUE (e.g. `--set gamma=10` or `--set epochs=5`)"
            )),
        }
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// A text edit of the main file: the byte range replaced, and by what.
struct Edit {
    range: std::ops::Range<usize>,
    text: String,
}

/// Applies `overrides` to the main module of `program` (its syntax tree, with each value's
/// spans in its own `--set` source), and returns the main file's text with them substituted;
/// the errors when an override names nothing or its value does not parse.
pub fn apply(program: &mut Program, overrides: &[Override]) -> Result<String, Vec<Diag>> {
    let main_file = program.main().file;
    let text = program.sources.text(main_file).to_string();
    let mut edits = vec![];
    let mut errors = vec![];
    let mut seen = std::collections::HashSet::new();
    for o in overrides {
        // The argument as its own source: `gamma=10`; the value is parsed in place.
        let arg = format!("{}={}", o.name, o.value);
        let file = program.sources.add("--set", arg.as_str());
        let padded = format!("{}{}", " ".repeat(o.name.len() + 1), o.value);
        let value = match parse_expr(file, &padded) {
            Ok(v) => v,
            Err(d) => {
                errors.extend(d);
                continue;
            }
        };
        let name_span = Span::new(file, 0, o.name.len());
        if !seen.insert(o.name.clone()) {
            errors.push(
                msg::duplicate_argument(&o.name)
                    .label(name_span, "given again here")
                    .help("give each `--set NAME=VALUE` once"),
            );
            continue;
        }
        let main = &mut program.modules[0];
        if let Some(l) = main.lets.iter_mut().find(|l| l.name.name == o.name) {
            edits.push(Edit {
                range: l.value.span.start..l.value.span.end,
                text: o.value.clone(),
            });
            l.value = value;
            continue;
        }
        let adam: Vec<&str> = find(OPTIMIZERS, "adam")
            .map(|b| b.params.iter().map(|p| p.name).collect())
            .unwrap_or_default();
        if adam.contains(&o.name.as_str()) {
            optimizer_arg(main, o, value, name_span, &mut edits);
            continue;
        }
        if !SETTINGS.contains(&o.name.as_str()) {
            let mut known: Vec<&str> = main.lets.iter().map(|l| l.name.name.as_str()).collect();
            known.extend(SETTINGS);
            known.extend(&adam);
            errors.push(
                msg::unknown(Unknown::Override, &o.name)
                    .label(name_span, "not a constant of the file or a `train` setting")
                    .help(unknown_help(&o.name, "names", &known)),
            );
            continue;
        }
        set_setting(main, o, value, name_span, &mut edits);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // From the end of the text back; of two insertions at one place, the later given is applied
    // first, so that they end up in the order given.
    let mut order: Vec<(usize, Edit)> = edits.into_iter().enumerate().collect();
    order.sort_by_key(|(i, e)| std::cmp::Reverse((e.range.start, *i)));
    let mut out = text;
    for (_, e) in order {
        out.replace_range(e.range, &e.text);
    }
    Ok(out)
}

/// The text with an empty `train { }` appended when an override sets a training setting and the
/// file has no `train` clause (so that every override edits a clause that is in the text).
pub fn with_train_clause(program: &Program, text: &str, overrides: &[Override]) -> Option<String> {
    let adam: Vec<&str> = find(OPTIMIZERS, "adam")
        .map(|b| b.params.iter().map(|p| p.name).collect())
        .unwrap_or_default();
    let needs = overrides.iter().any(|o| {
        let n = o.name.as_str();
        !program.main().lets.iter().any(|l| l.name.name == n)
            && (SETTINGS.contains(&n) || adam.contains(&n))
    });
    let has = program
        .main()
        .clauses
        .iter()
        .any(|c| matches!(c.kind, ClauseKind::Train(_)));
    (needs && !has).then(|| format!("{}\ntrain {{ }}\n", text.trim_end()))
}

/// `--set NAME=VALUE` for a `train` setting: replaced where the clause has it, added before its
/// closing brace otherwise.
fn set_setting(
    main: &mut crate::syntax::Module,
    o: &Override,
    value: Expr,
    name_span: Span,
    edits: &mut Vec<Edit>,
) {
    let ident = Ident {
        name: o.name.clone(),
        span: name_span,
    };
    {
        let train = main
            .clauses
            .iter_mut()
            .find(|c| matches!(c.kind, ClauseKind::Train(_)));
        match train {
            Some(Clause {
                kind: ClauseKind::Train(settings),
                span,
                ..
            }) => match settings.iter_mut().find(|(n, _)| n.name == o.name) {
                Some((_, v)) => {
                    edits.push(Edit {
                        range: v.span.start..v.span.end,
                        text: o.value.clone(),
                    });
                    *v = value;
                }
                None => {
                    // Before the clause's closing brace.
                    let at = span.end.saturating_sub(1);
                    edits.push(Edit {
                        range: at..at,
                        text: format!(" {} {} ", o.name, o.value),
                    });
                    settings.push((ident, value));
                }
            },
            // `with_train_clause` gave the file one before the overrides were applied.
            _ => {}
        }
    }
}

/// `--set lr=VALUE` (or another parameter of `adam`): the argument of the `optimizer` call,
/// replaced or added; `optimizer adam(NAME = VALUE)` when the file names no optimizer.
fn optimizer_arg(
    main: &mut crate::syntax::Module,
    o: &Override,
    value: Expr,
    name_span: Span,
    edits: &mut Vec<Edit>,
) {
    let ident = Ident {
        name: o.name.clone(),
        span: name_span,
    };
    let call = main.clauses.iter_mut().find_map(|c| match &mut c.kind {
        ClauseKind::Train(settings) => settings
            .iter_mut()
            .find(|(n, _)| n.name == "optimizer")
            .and_then(|(_, v)| match &mut v.kind {
                ExprKind::Call(call) => Some(call),
                _ => None,
            }),
        _ => None,
    });
    let Some(call) = call else {
        let whole = Override {
            name: "optimizer".into(),
            value: format!("adam({} = {})", o.name, o.value),
        };
        let call = Call {
            name: Ident {
                name: "adam".into(),
                span: name_span,
            },
            args: vec![Arg {
                name: Some(ident),
                value,
                span: name_span,
            }],
            parens: true,
            span: name_span,
        };
        let expr = Expr {
            kind: ExprKind::Call(call),
            span: name_span,
        };
        set_setting(main, &whole, expr, name_span, edits);
        return;
    };
    match call
        .args
        .iter_mut()
        .find(|a| a.name.as_ref().is_some_and(|n| n.name == o.name))
    {
        Some(a) => {
            edits.push(Edit {
                range: a.value.span.start..a.value.span.end,
                text: o.value.clone(),
            });
            a.value = value;
        }
        None => {
            let arg = format!("{} = {}", o.name, o.value);
            let (at, new) = if !call.parens {
                (call.span.end, format!("({arg})"))
            } else if call.args.is_empty() {
                (call.span.end - 1, arg)
            } else {
                (call.span.end - 1, format!(", {arg}"))
            };
            edits.push(Edit {
                range: at..at,
                text: new,
            });
            call.parens = true;
            call.args.push(Arg {
                name: Some(ident),
                value,
                span: name_span,
            });
        }
    }
}

#[cfg(test)]
mod tests;
