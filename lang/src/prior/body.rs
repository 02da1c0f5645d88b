//! A prior's body: arguments bound to parameters, statements run in order, the result checked
//! against the declared space.

use super::values::*;
use super::*;
use crate::syntax::Ident;

impl<'p, 'a> Inst<'p, 'a> {
    /// The parameter an argument of a prior call fills: by name, or the next position.
    fn param_slot(
        &mut self,
        def: &PriorDef,
        a: &Arg,
        positional: &mut usize,
        total: usize,
    ) -> Option<usize> {
        match &a.name {
            None => {
                let i = *positional;
                *positional += 1;
                if i >= def.params.len() {
                    self.err(
                        msg::arg_count(&def.name.name, Takes::AtMost(def.params.len()), total)
                            .label(a.span, "one argument too many")
                            .label(def.name.span, "defined here"),
                    );
                    return None;
                }
                Some(i)
            }
            Some(n) => match def.params.iter().position(|p| p.name.name == n.name) {
                Some(i) => Some(i),
                None => {
                    let names: Vec<&str> =
                        def.params.iter().map(|p| p.name.name.as_str()).collect();
                    let help = match did_you_mean(&n.name, names.iter().copied()) {
                        Some(c) => format!(
                            "did you mean `{c}`? `{}` takes {}",
                            def.name.name,
                            names.join(", ")
                        ),
                        None => format!("`{}` takes {}", def.name.name, names.join(", ")),
                    };
                    self.err(
                        msg::unknown_parameter(&def.name.name, &n.name)
                            .label(n.span, "unknown parameter")
                            .help(help),
                    );
                    return None;
                }
            },
        }
    }

    /// The bound values in parameter order, defaults evaluated, each checked against its
    /// declared type; None after an error.
    fn fill_params(
        &mut self,
        def: &PriorDef,
        slots: Vec<Option<(Val, Span)>>,
        site: Span,
    ) -> Option<Vec<(String, Val)>> {
        let mut ok = true;
        let mut out = vec![];
        for (p, slot) in def.params.iter().zip(slots) {
            let (v, span) = match slot {
                Some(s) => s,
                None => match &p.default {
                    Some(e) => {
                        let v = self.expr(e, &mut Scope::new())?;
                        (v, e.span)
                    }
                    None => {
                        self.err(
                            msg::missing_argument(&def.name.name, &format!("`{}`", p.name.name))
                                .label(site, format!("`{}` is missing", p.name.name))
                                .label(p.name.span, "declared here without a default"),
                        );
                        ok = false;
                        continue;
                    }
                },
            };
            let ty = p.ty.as_ref().map(|t| t.name.as_str());
            let fits = match ty {
                None => true,
                Some("int") => v.shape().is_empty() && v.int(),
                Some("real") => v.shape().is_empty(),
                Some("vector") => v.shape().len() == 1,
                Some(_) => true,
            };
            if !fits {
                self.err(
                    msg::arg_type(
                        &format!("`{}` of `{}`", p.name.name, def.name.name),
                        &format!("of its declared type `{}`", ty.unwrap_or("")),
                        &v.describe(),
                    )
                    .label(span, format!("not of type `{}`", ty.unwrap_or("")))
                    .label(p.name.span, "declared here"),
                );
                ok = false;
                continue;
            }
            out.push((p.name.name.clone(), v));
        }
        ok.then_some(out)
    }

    /// Binds a call's arguments to a definition's parameters; arguments must be constants.
    pub(super) fn bind(
        &mut self,
        def: &PriorDef,
        args: &[(&Arg, Val)],
        site: Span,
    ) -> Option<Vec<(String, Val)>> {
        let mut slots: Vec<Option<(Val, Span)>> = vec![None; def.params.len()];
        let mut ok = true;
        let mut positional = 0;
        for (a, v) in args {
            let Some(i) = self.param_slot(def, a, &mut positional, args.len()) else {
                ok = false;
                continue;
            };
            if slots[i].is_some() {
                self.err(
                    msg::duplicate_argument(&def.params[i].name.name)
                        .label(a.span, "given again here"),
                );
                ok = false;
                continue;
            }
            if !matches!(v, Val::Const { .. }) {
                self.err(
                    msg::arg_type(
                        &format!("an argument of prior `{}`", def.name.name),
                        "a constant",
                        &v.describe(),
                    )
                    .label(a.value.span, "not known when the model is compiled")
                    .help("a prior's parameters fix its shape and space, so they are constants; to use a random value, write the statements inline"),
                );
                ok = false;
                continue;
            }
            slots[i] = Some((v.clone(), a.value.span));
        }
        let out = self.fill_params(def, slots, site);
        ok.then_some(out?)
    }

    /// Runs a definition's statements with bound parameters: the returned value and the space.
    pub(super) fn run(
        &mut self,
        def: &PriorDef,
        bound: Vec<(String, Val)>,
        site: Span,
    ) -> Option<(Val, Space)> {
        if let Some(i) = self.stack.iter().position(|(n, _)| *n == def.name.name) {
            let chain: Vec<&str> = self.stack[i..]
                .iter()
                .map(|(n, _)| n.as_str())
                .chain([def.name.name.as_str()])
                .collect();
            self.err(
                msg::recursive_prior(&def.name.name)
                    .label(site, "this call recurses")
                    .help(format!(
                        "a prior program is unrolled into tensor code, so it cannot recurse: {}",
                        chain.join(" -> ")
                    )),
            );
            return None;
        }
        for t in def.params.iter().filter_map(|p| p.ty.as_ref()) {
            if !["int", "real", "vector"].contains(&t.name.as_str()) {
                let help = match did_you_mean(&t.name, ["int", "real", "vector"]) {
                    Some(c) => format!(
                        "did you mean `{c}`? parameter types are `int`, `real` and `vector`"
                    ),
                    None => "parameter types are `int`, `real` and `vector`".into(),
                };
                self.err(
                    msg::arg_type(
                        "a parameter type",
                        "`int`, `real` or `vector`",
                        &format!("`{}`", t.name),
                    )
                    .label(t.span, "not a type")
                    .help(help),
                );
            }
        }
        let mut env = Scope::new();
        for (p, (name, v)) in def.params.iter().zip(bound) {
            env.insert(
                name,
                Binding {
                    val: Some(v),
                    span: p.name.span,
                    used: false,
                    param: true,
                },
            );
        }
        self.stack.push((def.name.name.clone(), site));
        let out = self.body(def, &mut env);
        self.stack.pop();
        out
    }

    /// One draw (`x ~ d`) or binding (`x = e`): evaluated, named, bound once. False after an
    /// error (the name is then bound to nothing, so that its uses are not reported again).
    fn statement(&mut self, draw: bool, name: &Ident, e: &Expr, env: &mut Scope) -> bool {
        let start = self.instrs.len();
        let v = self.expr(e, env);
        let v = match (draw, v) {
            (_, None) => None,
            (true, Some(Val::Dist(d))) => self.draw(&d, &name.name),
            (true, Some(v)) => {
                self.err(
                    msg::arg_type("the right side of `~`", "a distribution", &v.describe())
                        .label(e.span, "not a distribution")
                        .help(format!("bind a value with `=`: `{} = ...`", name.name)),
                );
                None
            }
            (_, Some(v)) => Some(v),
        };
        let Some(v) = v else {
            bind_failed(env, name);
            return false;
        };
        // The register computed by this statement takes the variable's name.
        if let Val::Reg { reg, .. } = &v {
            if *reg >= start {
                self.instrs[*reg].name = name.name.clone();
            }
        }
        if let Some(prev) = env.get(&name.name) {
            let what = if prev.param {
                "a parameter"
            } else {
                "a variable"
            };
            self.err(
                msg::duplicate_definition(&name.name, &format!("{what} of this prior"))
                    .label(name.span, "bound again here")
                    .label(prev.span, "first bound here")
                    .help("names in a prior program are bound once; choose a new name"),
            );
            return false;
        }
        env.insert(
            name.name.clone(),
            Binding {
                val: Some(v),
                span: name.span,
                used: false,
                param: false,
            },
        );
        true
    }

    /// A warning for each parameter or variable never used, in source order (not after an
    /// error, when names may look unused only because their users failed).
    fn warn_unused(&mut self, env: &Scope) {
        let mut unused: Vec<(&String, &Binding)> = env
            .iter()
            .filter(|(n, b)| !b.used && !n.starts_with('_'))
            .collect();
        unused.sort_by_key(|(_, b)| b.span.start);
        let warnings: Vec<Diag> = unused
            .into_iter()
            .map(|(n, b)| {
                let what = if b.param { "parameter" } else { "variable" };
                msg::unused_variable(what, n)
                    .label(b.span, "never used")
                    .help(format!(
                        "remove it, or start its name with `_` (`_{n}`) to keep it"
                    ))
            })
            .collect();
        for w in warnings {
            self.err(w);
        }
    }

    pub(super) fn body(&mut self, def: &PriorDef, env: &mut Scope) -> Option<(Val, Space)> {
        let space = self.space(&def.space, env);
        let mut result: Option<(Val, Span)> = None;
        let mut failed = false;
        for st in &def.body {
            if let Some((_, rspan)) = &result {
                self.err(
                    msg::prior_return(&def.name.name, "has a statement after `return`")
                        .label(st.span, "never runs")
                        .label(*rspan, "the program returns here")
                        .help("`return` ends a prior program; move it to the end"),
                );
                failed = true;
                break;
            }
            match &st.kind {
                StmtKind::Draw(name, e) | StmtKind::Let(name, e) => {
                    let draw = matches!(st.kind, StmtKind::Draw(..));
                    failed |= !self.statement(draw, name, e, env);
                }
                StmtKind::Param(name, e, draw) => {
                    failed |= !self.param_statement(name, e, *draw, env);
                }
                StmtKind::Return(e) => match self.expr(e, env) {
                    Some(v) => result = Some((v, e.span)),
                    None => {
                        failed = true;
                        result = Some((Val::scalar(0.0), e.span));
                    }
                },
            }
        }
        if !failed {
            self.warn_unused(env);
        }
        let Some((val, rspan)) = result else {
            self.err(
                msg::prior_return(&def.name.name, "does not return a value")
                    .label(def.end, "the program ends here without `return`")
                    .label(def.name.span, "in this prior")
                    .help("end the program with `return NAME`, the sample it draws"),
            );
            return None;
        };
        if failed {
            return None;
        }
        let space = space?;
        if let Val::Dist(_) = val {
            self.err(
                msg::arg_type("the value of `return`", "a sample", "a distribution")
                    .label(rspan, "a distribution")
                    .help("draw from it first: `z ~ ...` then `return z`"),
            );
            return None;
        }
        self.result_in_space(&val, space, rspan, def.space.span(), &def.name.name)?;
        Some((val, space))
    }

    /// The result's shape and set must match the declared space.
    pub(super) fn result_in_space(
        &mut self,
        val: &Val,
        space: Space,
        at: Span,
        space_span: Span,
        name: &str,
    ) -> Option<()> {
        let d = space.dim();
        let shape = val.shape().to_vec();
        let fits = shape == vec![d] || (shape.is_empty() && d == 1);
        if !fits {
            self.err(
                msg::shape_mismatch(
                    &format!("the result of `{name}`"),
                    &format!("{d} coordinates (its space {space})"),
                    &shape_words(&shape),
                )
                .label(at, format!("{} here", shape_words(&shape)))
                .label(space_span, format!("{d} coordinates declared here")),
            );
            return None;
        }
        let on = val.on();
        let why = match (space, on) {
            (Space::Sphere { .. }, On::Sphere) | (Space::Simplex { .. }, On::Simplex) => None,
            (Space::Torus { .. }, On::Torus) | (Space::Torus { k: 1 }, On::Sphere) => None,
            (Space::Ball { c, .. }, On::Ball(found)) if (c - found).abs() <= 1e-12 * c => None,
            (Space::Ball { .. }, On::Ball(_)) => Some((
                "lies in a ball of another curvature",
                "give `expmap0(v, c)` the curvature of the declared ball",
            )),
            (Space::Torus { .. }, _) => Some((
                "is not known to lie on the torus",
                "end with `torus(angles)`, or `concat` points of S^1 (e.g. `von_mises_fisher` draws in R^2)",
            )),
            (Space::Ball { .. }, _) => Some((
                "is not known to lie in the Poincare ball",
                "end with `expmap0(v, c)`, the exponential map at the origin",
            )),
            (Space::Euclidean { .. }, _) => None,
            (Space::Sphere { .. }, _) => Some((
                "is not known to lie on the unit sphere",
                "end with `normalize(...)`, or draw it from `uniform_sphere` or `von_mises_fisher`",
            )),
            (Space::Simplex { .. }, _) => Some((
                "is not known to lie on the simplex",
                "end with `softmax(...)` or `x / sum(x)` for positive x, or draw it from `dirichlet`",
            )),
        };
        if let Some((what, help)) = why {
            let origin = match on {
                On::Simplex => " (it lies on the simplex)".to_string(),
                On::Sphere => " (it lies on the sphere)".to_string(),
                On::Torus => " (it lies on a torus)".to_string(),
                On::Ball(c) => format!(" (it lies in the ball of curvature -{})", ir::num(c)),
                On::Positive | On::Any => String::new(),
            };
            self.err(
                msg::prior_result(name, &format!("{what}{origin}"))
                    .label(at, "returned here")
                    .label(space_span, format!("declared on {space}"))
                    .help(help),
            );
            return None;
        }
        Some(())
    }

    pub(super) fn space(&mut self, s: &SpaceExpr, env: &mut Scope) -> Option<Space> {
        let (base, arg, span) = match s {
            SpaceExpr::Pow {
                base,
                exponent,
                span,
            } => (base.name.as_str(), Some(exponent), *span),
            SpaceExpr::Call(c) => (
                c.name.name.as_str(),
                c.args.first().map(|a| &a.value),
                c.span,
            ),
        };
        let kind = match (s, base) {
            (SpaceExpr::Pow { .. }, "R") => 0,
            (SpaceExpr::Pow { .. }, "S") => 1,
            (SpaceExpr::Call(_), "simplex") => 2,
            (SpaceExpr::Pow { .. }, "T") => 3,
            (SpaceExpr::Call(_), "ball") => 4,
            _ => {
                self.err(
                    msg::unknown(Unknown::Space, base)
                        .label(span, "not a latent space")
                        .help("spaces are written `R^d`, `S^k`, `simplex(d)`, `T^k` or `ball(d, curvature = 1)`"),
                );
                return None;
            }
        };
        let curvature = match s {
            SpaceExpr::Call(c) if kind == 4 => self.ball_curvature(c, env)?,
            _ => 1.0,
        };
        let arg = arg?;
        let v = self.expr(arg, env)?;
        let n = match v.as_f64() {
            Some(x) if v.int() => x as i64,
            _ => {
                self.err(
                    msg::arg_type("a space dimension", "a constant integer", &v.describe())
                        .label(arg.span, "not an integer"),
                );
                return None;
            }
        };
        // `S^n` lives in R^(n+1): saturating, so that a huge n reaches the range check below.
        let (space, min) = match kind {
            0 => (Space::Euclidean { dim: n }, 1),
            1 => (
                Space::Sphere {
                    dim: n.saturating_add(1),
                },
                1,
            ),
            2 => (Space::Simplex { dim: n }, 2),
            3 => (Space::Torus { k: n }, 1),
            _ => (
                Space::Ball {
                    dim: n,
                    c: curvature,
                },
                1,
            ),
        };
        if n < min || n > 1 << 20 {
            self.err(
                msg::invalid_value(
                    &format!("the dimension of `{base}`"),
                    &format!("from {min} to {}", 1 << 20),
                    &n.to_string(),
                )
                .label(arg.span, "out of range"),
            );
            return None;
        }
        Some(space)
    }

    /// The curvature of `ball(d, curvature = c)` (second argument, positional or named; 1 when
    /// left out): a positive constant.
    fn ball_curvature(&mut self, c: &Call, env: &mut Scope) -> Option<f64> {
        let Some(a) = c.args.get(1) else {
            return Some(1.0);
        };
        let v = self.expr(&a.value, env)?;
        match v.as_f64() {
            Some(x) if x > 0.0 && x.is_finite() => Some(x),
            _ => {
                self.err(
                    msg::invalid_value("the curvature of `ball`", "a positive constant", &show(&v))
                        .label(a.value.span, "the ball's curvature is -c with c > 0"),
                );
                None
            }
        }
    }

    // ---- expressions ---------------------------------------------------------------------------
}

/// Binds `name` to nothing after its statement failed, so that its uses are not reported again.
pub(super) fn bind_failed(env: &mut Scope, name: &Ident) {
    env.entry(name.name.clone()).or_insert(Binding {
        val: None,
        span: name.span,
        used: true,
        param: false,
    });
}
