//! Arguments: names looked up, bound to a built-in's parameters by name or position, typed and
//! range-checked.

use super::*;
use crate::catalogue::*;

/// Arguments bound to a built-in's parameters, with the span each value came from, read by
/// parameter name.
pub(super) struct Bound {
    /// The parameter names of the catalogue entry, in order.
    names: Vec<&'static str>,
    values: Vec<Value>,
    spans: Vec<Span>,
}

impl Bound {
    /// The index of parameter `name`. The names come from the catalogue entry this was bound
    /// against; a name outside it is a bug of the checker, which the UI fixtures (every built-in
    /// with its parameters) catch.
    fn at(&self, name: &str) -> usize {
        match self.names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => panic!(
                "internal error: `{name}` is not a parameter here (parameters: {:?})",
                self.names
            ),
        }
    }
    /// The value of parameter `name`, as bound and typed.
    pub(super) fn value(&self, name: &str) -> &Value {
        &self.values[self.at(name)]
    }
    /// Where the value of `name` came from (the call, for a default).
    pub(super) fn span(&self, name: &str) -> Span {
        self.spans[self.at(name)]
    }
    /// An `int` parameter (typing has checked it is an integer).
    pub(super) fn int(&self, name: &str) -> i64 {
        match self.value(name) {
            Value::Int(v) => *v,
            v => panic!(
                "internal error: `{name}` is bound to a {}, not an int",
                v.type_name()
            ),
        }
    }
    /// A `real` parameter (integers widen).
    pub(super) fn real(&self, name: &str) -> f64 {
        match self.value(name).as_f64() {
            Some(x) => x,
            None => panic!("internal error: `{name}` is not bound to a number"),
        }
    }
    /// A `bool` parameter.
    pub(super) fn bool(&self, name: &str) -> bool {
        match self.value(name) {
            Value::Bool(b) => *b,
            v => panic!(
                "internal error: `{name}` is bound to a {}, not a bool",
                v.type_name()
            ),
        }
    }
    /// A `string` parameter.
    pub(super) fn str(&self, name: &str) -> String {
        match self.value(name) {
            Value::Str(s) => s.clone(),
            v => panic!(
                "internal error: `{name}` is bound to a {}, not a string",
                v.type_name()
            ),
        }
    }
}

impl<'a> Checker<'a> {
    pub(super) fn lookup(
        &mut self,
        call: &Call,
        table: &'static [Builtin],
        kind: Unknown,
        what: &str,
    ) -> Option<&'static [P]> {
        let name = name_of(call);
        if let Some(b) = find(table, name) {
            return Some(b.params);
        }
        let cands = names(table);
        self.err(
            msg::unknown(kind, name)
                .label(call.name.span, format!("not a known {}", kind.noun()))
                .help(known_as(name, &cands).unwrap_or_else(|| unknown_help(name, what, &cands))),
        );
        None
    }

    /// Matches a call's arguments to parameter slots: count, names, duplicates, required ones.
    pub(super) fn match_args<'c>(
        &mut self,
        call: &'c Call,
        names: &[&str],
        required: &[bool],
        sig: &str,
        kind: &str,
    ) -> Option<Vec<Option<&'c Arg>>> {
        let (slots, ok) = self.match_all_args(call, names, required, sig, kind);
        ok.then_some(slots)
    }

    /// [`Checker::match_args`] that keeps the arguments it could place when others were wrong
    /// (their values are still checked, so one call reports all its mistakes): the slots, and
    /// whether every argument was placed.
    fn match_all_args<'c>(
        &mut self,
        call: &'c Call,
        names: &[&str],
        required: &[bool],
        sig: &str,
        kind: &str,
    ) -> (Vec<Option<&'c Arg>>, bool) {
        let mut slots: Vec<Option<&Arg>> = vec![None; names.len()];
        let mut ok = true;
        let fname = name_of(call);
        let mut positional = 0usize;
        for a in &call.args {
            let idx = match &a.name {
                None => {
                    let i = positional;
                    positional += 1;
                    if i >= names.len() {
                        self.err(
                            msg::arg_count(fname, Takes::AtMost(names.len()), call.args.len())
                                .label(a.span, "extra argument")
                                .help(format!("the {kind} is `{sig}`")),
                        );
                        ok = false;
                        continue;
                    }
                    i
                }
                Some(n) => match names.iter().position(|x| *x == n.name) {
                    Some(i) => i,
                    None => {
                        self.err(
                            msg::unknown_parameter(fname, &n.name)
                                .label(n.span, "unknown parameter")
                                .help(format!(
                                    "{}; the {kind} is `{sig}`",
                                    unknown_help(&n.name, "parameters", names)
                                )),
                        );
                        ok = false;
                        continue;
                    }
                },
            };
            if let Some(prev) = slots[idx] {
                self.err(
                    msg::duplicate_argument(names[idx])
                        .label(a.span, "given again here")
                        .label(prev.span, "first given here")
                        .help(format!("the {kind} is `{sig}`")),
                );
                ok = false;
                continue;
            }
            slots[idx] = Some(a);
        }
        for (i, s) in slots.iter().enumerate() {
            if s.is_none() && required[i] {
                self.err(
                    msg::missing_argument(fname, &format!("`{}`", names[i]))
                        .label(call.span, format!("`{}` missing", names[i]))
                        .help(format!("the {kind} is `{sig}`")),
                );
                ok = false;
            }
        }
        (slots, ok)
    }

    /// Binds a call to a built-in's parameters, evaluating and validating every value.
    pub(super) fn bind(&mut self, call: &Call, params: &[P], env: &Env) -> Option<Bound> {
        let names: Vec<&str> = params.iter().map(|p| p.name).collect();
        let required: Vec<bool> = params.iter().map(|p| matches!(p.default, REQ)).collect();
        let sig = signature(name_of(call), params);
        let (slots, mut ok) = self.match_all_args(call, &names, &required, &sig, "signature");
        let mut values = vec![];
        let mut spans = vec![];
        for (i, spec) in params.iter().enumerate() {
            let (v, span) = match slots[i] {
                Some(arg) => match self
                    .eval(&arg.value, env)
                    .and_then(|v| self.typed(v, spec, arg.value.span, name_of(call)))
                {
                    Some(v) => (v, arg.value.span),
                    None => {
                        ok = false;
                        continue;
                    }
                },
                None => (
                    match spec.default {
                        I(i) => Value::Int(i),
                        R(r) => Value::Real(r),
                        B(b) => Value::Bool(b),
                        S(s) => Value::Str(s.into()),
                        REQ => Value::Int(0),
                    },
                    call.span,
                ),
            };
            values.push(v);
            spans.push(span);
        }
        ok.then_some(Bound {
            names,
            values,
            spans,
        })
    }

    /// The range check of a typed value; the error says the range and why it holds.
    fn in_range(&mut self, v: &Value, spec: &P, span: Span, owner: &str) -> Option<()> {
        let bad = match (&spec.range, v) {
            (Positive, v) => v.as_f64().is_some_and(|x| !(x > 0.0)),
            (NonNegative, v) => v.as_f64().is_some_and(|x| !(x >= 0.0)),
            (AtLeast(m), v) => v.as_f64().is_some_and(|x| !(x >= *m)),
            (Fraction, v) => v.as_f64().is_some_and(|x| !(0.0..1.0).contains(&x)),
            (OneOf(opts), Value::Str(s)) => !opts.contains(&s.as_str()),
            (Ints(opts), Value::Int(i)) => !opts.contains(i),
            _ => false,
        };
        if bad {
            let shown = match v {
                Value::Int(i) => i.to_string(),
                Value::Real(r) => ir::num(*r),
                Value::Str(s) => format!("\"{s}\""),
                _ => String::new(),
            };
            let need = match spec.range {
                Positive => "> 0".to_string(),
                NonNegative => ">= 0".to_string(),
                AtLeast(m) => format!(">= {}", ir::num(m)),
                Fraction => "in [0, 1)".to_string(),
                OneOf(opts) => format!(
                    "one of {}",
                    opts.iter()
                        .map(|o| format!("\"{o}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Ints(opts) => format!(
                    "one of {}",
                    opts.iter()
                        .map(|o| o.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Range::Any => String::new(),
            };
            self.err(
                msg::invalid_value(&format!("`{}` of `{owner}`", spec.name), &need, &shown)
                    .label(span, format!("must be {need}"))
                    .help(spec.why),
            );
            return None;
        }
        Some(())
    }

    /// Checks a value's type and range against a parameter.
    pub(super) fn typed(&mut self, v: Value, spec: &P, span: Span, owner: &str) -> Option<Value> {
        let v = match (spec.ty, v) {
            (Ty::Int, Value::Int(i)) => Value::Int(i),
            (Ty::Int, Value::Real(r)) if r.is_finite() && r == r.trunc() && r.abs() < 9e15 => {
                Value::Int(r as i64)
            }
            (Ty::Int, Value::Real(r)) if r.is_infinite() || r.abs() >= 9e15 => {
                self.err(
                    msg::too_large(&format!("`{}` of `{owner}` is {}", spec.name, ir::num(r)))
                        .label(span, "far beyond what fits in memory")
                        .help(format!(
                            "sizes above {} elements are rejected before anything is allocated",
                            ir::thousands(MAX_ELEMENTS as u64)
                        )),
                );
                return None;
            }
            (Ty::Real | Ty::Reals, Value::Int(i)) => Value::Real(i as f64),
            (Ty::Real | Ty::Reals, Value::Real(r)) => Value::Real(r),
            (Ty::Reals, Value::List(items)) if items.iter().all(|x| x.as_f64().is_some()) => {
                let inner = P {
                    ty: Ty::Real,
                    ..*spec
                };
                let mut out = vec![];
                for x in items {
                    out.push(self.typed(x, &inner, span, owner)?);
                }
                return Some(Value::List(out));
            }
            (Ty::Bool, Value::Bool(b)) => Value::Bool(b),
            (Ty::Str, Value::Str(s)) => Value::Str(s),
            (ty, v) => {
                let want = match ty {
                    Ty::Int => "an integer",
                    Ty::Real => "a number",
                    Ty::Bool => "`true` or `false`",
                    Ty::Str => "a string in quotes",
                    Ty::Reals => "a number or a list of numbers",
                };
                let help = match (&v, ty) {
                    (Value::Real(_), Ty::Int) => "sizes and counts are whole numbers".to_string(),
                    (_, Ty::Str) => format!(
                        "write it in quotes, e.g. `{} = \"{}\"`",
                        spec.name,
                        match spec.range {
                            OneOf(opts) => opts[0],
                            _ => "...",
                        }
                    ),
                    _ => format!("`{}` of `{owner}` is {want}", spec.name),
                };
                self.err(
                    msg::arg_type(
                        &format!("`{}` of `{owner}`", spec.name),
                        want,
                        v.type_name(),
                    )
                    .label(span, format!("{} here", v.type_name()))
                    .help(help),
                );
                return None;
            }
        };
        self.in_range(&v, spec, span, owner)?;
        Some(v)
    }
}
