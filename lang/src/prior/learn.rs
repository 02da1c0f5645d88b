//! Learnable parameters of prior programs: `param w ~ normal(zeros(k, d), 1)` or
//! `param w = zeros(d)` declares a tensor trained with the model, and the gradient must reach it
//! through reparameterised draws only.

use super::values::*;
use super::*;
use crate::syntax::Ident;

impl<'p, 'a> Inst<'p, 'a> {
    /// `param NAME ~ INIT` or `param NAME = INIT`: the parameter's register, bound to `name`.
    /// False after an error.
    pub(super) fn param_statement(
        &mut self,
        name: &Ident,
        e: &Expr,
        draw: bool,
        env: &mut Scope,
    ) -> bool {
        let Some((init, shape)) = self.param_init(name, e, draw, env) else {
            super::body::bind_failed(env, name);
            return false;
        };
        if let Some(prev) = env.get(&name.name) {
            self.err(
                msg::duplicate_definition(&name.name, "a name of this prior")
                    .label(name.span, "bound again here")
                    .label(prev.span, "first bound here")
                    .help("names in a prior program are bound once; choose a new name"),
            );
            return false;
        }
        // A prior inlined twice (or two priors with a parameter of the same name) gets distinct
        // names in the checkpoint: `w`, `w_2`, ...
        let mut unique = name.name.clone();
        let mut k = 1;
        while self.params.iter().any(|p| p.name == unique) {
            k += 1;
            unique = format!("{}_{k}", name.name);
        }
        let index = self.params.len();
        self.params.push(ir::PriorParam {
            name: unique,
            shape: shape.clone(),
            init,
        });
        let reg = self.push(&name.name, shape.clone(), false, Op::Param(index));
        env.insert(
            name.name.clone(),
            Binding {
                val: Some(Val::Reg {
                    reg,
                    shape,
                    int: false,
                    on: On::Any,
                    card: None,
                }),
                span: name.span,
                used: false,
                param: false,
            },
        );
        true
    }

    /// The initial value of a parameter and its shape: a constant, or `normal`/`uniform` of
    /// constants of any shape (broadcast together).
    fn param_init(
        &mut self,
        name: &Ident,
        e: &Expr,
        draw: bool,
        env: &mut Scope,
    ) -> Option<(ir::ParamInit, Vec<i64>)> {
        if !draw {
            return match self.value(e, env)? {
                Val::Const { data, shape, .. } => Some((ir::ParamInit::Const(data), shape)),
                v => {
                    self.err(
                        msg::param_init(&name.name, &v.describe())
                            .label(e.span, "not known when the model is compiled"),
                    );
                    None
                }
            };
        }
        let call = match &e.kind {
            ExprKind::Call(c) if ["normal", "uniform"].contains(&c.name.name.as_str()) => c,
            _ => {
                self.err(
                    msg::param_init(&name.name, "another distribution or value")
                        .label(e.span, "not `normal(...)` or `uniform(...)`"),
                );
                return None;
            }
        };
        self.drawn_init(name, call, env)
    }

    /// `param NAME ~ normal(mean, std)` or `~ uniform(low, high)`: the arguments, constants of
    /// any shape, broadcast together and range-checked elementwise.
    fn drawn_init(
        &mut self,
        name: &Ident,
        call: &Call,
        env: &mut Scope,
    ) -> Option<(ir::ParamInit, Vec<i64>)> {
        let names: [&str; 2] = if call.name.name == "normal" {
            ["mean", "std"]
        } else {
            ["low", "high"]
        };
        let mut vals: [Option<(Vec<f64>, Vec<i64>, Span)>; 2] = [None, None];
        let mut positional = 0;
        for a in &call.args {
            let slot = match &a.name {
                None => {
                    positional += 1;
                    positional - 1
                }
                Some(n) => match names.iter().position(|x| *x == n.name) {
                    Some(i) => i,
                    None => {
                        self.err(
                            msg::unknown_parameter(&call.name.name, &n.name)
                                .label(n.span, "unknown parameter")
                                .help(format!(
                                    "an initial `{}` takes {} and {}; the shape comes from them",
                                    call.name.name, names[0], names[1]
                                )),
                        );
                        return None;
                    }
                },
            };
            if slot > 1 {
                self.err(
                    msg::arg_count(&call.name.name, Takes::AtMost(2), call.args.len())
                        .label(a.span, "one argument too many"),
                );
                return None;
            }
            match self.value(&a.value, env)? {
                Val::Const { data, shape, .. } => vals[slot] = Some((data, shape, a.value.span)),
                v => {
                    self.err(
                        msg::param_init(&name.name, &v.describe())
                            .label(a.value.span, "not known when the model is compiled"),
                    );
                    return None;
                }
            }
        }
        // normal(mean = 0, std = 1) and uniform(low = 0, high = 1), as in prior programs.
        let defaults = [0.0, 1.0];
        let [a, b] = vals;
        let a = a.unwrap_or((vec![defaults[0]], vec![], call.span));
        let b = b.unwrap_or((vec![defaults[1]], vec![], call.span));
        let Some(shape) = broadcast(&a.1, &b.1) else {
            self.err(
                msg::shape_mismatch(
                    &format!("the arguments of the initial `{}`", call.name.name),
                    "of one shape, or a scalar",
                    &format!("{} and {}", shape_words(&a.1), shape_words(&b.1)),
                )
                .label(a.2, shape_words(&a.1))
                .label(b.2, shape_words(&b.1)),
            );
            return None;
        };
        let size: i64 = shape.iter().product();
        let full = |v: &[f64]| -> Vec<f64> {
            if v.len() == 1 {
                vec![v[0]; size as usize]
            } else {
                v.to_vec()
            }
        };
        let (first, second) = (full(&a.0), full(&b.0));
        self.init_ranges(&call.name.name, &first, &second, call.span)?;
        let init = if call.name.name == "normal" {
            ir::ParamInit::Normal {
                mean: first,
                std: second,
            }
        } else {
            ir::ParamInit::Uniform {
                low: first,
                high: second,
            }
        };
        Some((init, shape))
    }

    /// An error unless every `std` of an initial normal is positive (and finite), or every `low`
    /// of an initial uniform is below its `high`.
    fn init_ranges(&mut self, dist: &str, first: &[f64], second: &[f64], at: Span) -> Option<()> {
        let normal = dist == "normal";
        let bad = if normal {
            second.iter().position(|s| !(*s > 0.0 && s.is_finite()))
        } else {
            first.iter().zip(second).position(|(l, h)| !(l < h))
        };
        if let Some(i) = bad {
            let (what, expected) = if normal {
                ("`std` of the initial `normal`", "positive")
            } else {
                ("the initial `uniform`", "`low` < `high`")
            };
            let found = if normal {
                ir::num(second[i])
            } else {
                format!("low {} and high {}", ir::num(first[i]), ir::num(second[i]))
            };
            self.err(msg::invalid_value(what, expected, &found).label(at, "out of range"));
            return None;
        }
        Some(())
    }

    /// The learnable parameter `v` depends on, if any (its name, for messages).
    pub(super) fn learned(&self, v: &Val) -> Option<String> {
        let Val::Reg { reg, .. } = v else {
            return None;
        };
        let mut stack = vec![*reg];
        let mut seen = HashSet::new();
        while let Some(r) = stack.pop() {
            if !seen.insert(r) {
                continue;
            }
            match &self.instrs[r].op {
                Op::Param(k) => return self.params.get(*k).map(|p| p.name.clone()),
                Op::Const(_) => {}
                Op::Draw(_, a) | Op::Concat(a) | Op::Stack(a) => stack.extend(a),
                Op::Apply(_, a) | Op::Neg(a) | Op::Slice(a, ..) => stack.push(*a),
                Op::Binary(_, a, b) | Op::MatMul(a, b) | Op::Index(a, b) => stack.extend([*a, *b]),
                Op::Where(c, a, b) => stack.extend([*c, *a, *b]),
            }
        }
        None
    }

    /// An error when a learnable parameter reaches an operand of `prim` that no gradient flows
    /// through (the draw is not reparameterised).
    pub(super) fn check_differentiable(
        &mut self,
        prim: Prim,
        args: &[Val],
        at: Span,
    ) -> Option<()> {
        if prim.reparameterised() {
            return Some(());
        }
        let Some(param) = args.iter().find_map(|a| self.learned(a)) else {
            return Some(());
        };
        let why = match prim {
            Prim::Categorical | Prim::Bernoulli => {
                "its draws are integers, so their gradient is zero"
            }
            _ => "its sampler is not differentiable in its parameters",
        };
        self.err(msg::not_differentiable(&param, prim.name(), why).label(at, "here"));
        None
    }
}
