//! Distributions: primitives with their argument ranges, mixtures, and draws into registers.

use super::values::*;
use super::*;
use crate::catalogue::distributions::*;

impl<'p, 'a> Inst<'p, 'a> {
    /// `mixture(d1, d2, ..., weights = [...])`: a distribution; weights default to equal.
    /// The components a comprehension argument of `mixture` builds, each a distribution.
    fn components_of(&mut self, e: &Expr, env: &mut Scope) -> Option<Vec<DistV>> {
        let ExprKind::Comprehension(body, var, source) = &e.kind else {
            return Some(vec![]);
        };
        let mut out = vec![];
        for v in self.comprehension(body, var, source, env)? {
            match v {
                Val::Dist(d) => out.push(*d),
                v => {
                    self.err(
                        msg::arg_type("a component of `mixture`", "a distribution", &v.describe())
                            .label(body.span, "not a distribution"),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    pub(super) fn mixture(&mut self, c: &Call, env: &mut Scope) -> Option<DistV> {
        let mut comps = vec![];
        let mut weights = None;
        for a in &c.args {
            match a.name.as_ref().map(|n| n.name.as_str()) {
                Some("weights") => {
                    let v = self.value(&a.value, env)?;
                    match v {
                        Val::Const { data, shape, .. } if shape.len() == 1 => {
                            weights = Some((data, a.value.span))
                        }
                        v => {
                            self.err(
                                msg::arg_type(
                                    "the weights of `mixture`",
                                    "a constant vector",
                                    &v.describe(),
                                )
                                .label(a.value.span, "not a constant vector"),
                            );
                            return None;
                        }
                    }
                }
                Some(other) => {
                    self.err(
                        msg::unknown_parameter("mixture", other)
                        .label(a.span, "unknown parameter")
                        .help("write the components as positional arguments and `weights = [...]`"),
                    );
                    return None;
                }
                None if matches!(a.value.kind, ExprKind::Comprehension(..)) => {
                    comps.extend(self.components_of(&a.value, env)?);
                }
                None => match self.expr(&a.value, env)? {
                    Val::Dist(d) => comps.push(*d),
                    v => {
                        self.err(
                            msg::arg_type(
                                "a component of `mixture`",
                                "a distribution",
                                &v.describe(),
                            )
                            .label(a.value.span, "not a distribution")
                            .help("e.g. `mixture(normal([-1, 0], 0.1), normal([1, 0], 0.1))`"),
                        );
                        return None;
                    }
                },
            }
        }
        if comps.is_empty() {
            self.err(
                msg::arg_count("mixture", Takes::AtLeast(1), 0).label(c.span, "no components"),
            );
            return None;
        }
        let k = comps.len();
        let weights = match weights {
            None => vec![1.0 / k as f64; k],
            Some((w, span)) => {
                if w.len() != k {
                    self.err(
                        msg::shape_mismatch(
                            "the weights of `mixture`",
                            &format!("{k} numbers, one per component"),
                            &format!("{} numbers", w.len()),
                        )
                        .label(span, format!("{} weights", w.len()))
                        .label(c.span, format!("{k} components")),
                    );
                    return None;
                }
                self.normalised(&w, span, "mixture")?
            }
        };
        Some(DistV::Mixture {
            weights,
            comps,
            span: c.span,
        })
    }

    /// A primitive distribution with its arguments; `dim` is the latent space's dimension when
    /// the primitive is used directly as a latent prior.
    pub(super) fn distribution(
        &mut self,
        c: &Call,
        env: &mut Scope,
        space_dim: Option<i64>,
    ) -> Option<DistV> {
        let name = if c.name.name == "vmf" {
            "von_mises_fisher"
        } else {
            c.name.name.as_str()
        };
        let &(_, prim, params) = PRIMS.iter().find(|(n, ..)| *n == name)?;
        // `uniform_sphere(d)` and `categorical(k)` take a size as their only parameter.
        let params: &[(&str, Option<f64>)] = match prim {
            Prim::UniformSphere => &[("dim", None)],
            _ => params,
        };
        let (mut args, spans, dim) = self.dist_args(c, env, name, prim, params, space_dim)?;
        for (i, v) in args.iter().enumerate() {
            if v.shape().len() > 1 && !(prim == Prim::Categorical) {
                self.err(
                    msg::shape_mismatch(
                        &format!("an argument of `{name}`"),
                        "a scalar or a vector",
                        "a matrix",
                    )
                    .label(spans[i], "a matrix"),
                );
                return None;
            }
        }
        self.ranges(prim, name, &args, &spans)?;
        self.check_differentiable(prim, &args, c.span)?;
        let shape = self.dist_shape(c, name, prim, &mut args, &spans, dim, space_dim)?;
        Some(DistV::Prim { prim, args, shape })
    }

    /// The shape of one draw of a primitive, after its shape-specific checks (a sphere's
    /// dimension, categorical weights, a von Mises-Fisher mean, broadcast parameters and `dim`).
    // long: one arm per primitive whose draw shape has its own rule and its own diagnostic.
    #[allow(clippy::too_many_arguments)]
    fn dist_shape(
        &mut self,
        c: &Call,
        name: &str,
        prim: Prim,
        args: &mut [Val],
        spans: &[Span],
        dim: Option<(i64, Span)>,
        space_dim: Option<i64>,
    ) -> Option<Vec<i64>> {
        let shape = match prim {
            Prim::UniformSphere => {
                let d = args[0].as_f64().filter(|_| args[0].int());
                match d {
                    Some(d) if (2.0..=MAX_DIM).contains(&d) => vec![d as i64],
                    _ => {
                        self.err(
                            msg::invalid_value(
                                "`d` of `uniform_sphere`",
                                &format!("a constant integer from 2 to {MAX_DIM}"),
                                &show(&args[0]),
                            )
                            .label(spans[0], "the dimension of the ambient space R^d")
                            .help(
                                "the unit sphere S^(d-1) lives in R^d; S^9 is `uniform_sphere(10)`",
                            ),
                        );
                        return None;
                    }
                }
            }
            Prim::Categorical => {
                let w = &args[0];
                match (w, w.shape()) {
                    (Val::Const { data, .. }, []) => {
                        let k = data[0];
                        if !w.int() || !(1.0..=MAX_DIM).contains(&k) {
                            self.err(
                                msg::invalid_value(
                                    "`k` of `categorical`",
                                    &format!("an integer from 1 to {MAX_DIM}"),
                                    &ir::num(k),
                                )
                                .label(spans[0], format!("k = {}", ir::num(k)))
                                .help("k is the number of categories; or give a vector of weights"),
                            );
                            return None;
                        }
                        args[0] = Val::Const {
                            data: vec![1.0 / k; k as usize],
                            shape: vec![k as i64],
                            int: false,
                        };
                    }
                    (Val::Const { data, .. }, [_]) => {
                        let w = self.normalised(data, spans[0], "categorical")?;
                        args[0] = Val::Const {
                            shape: vec![w.len() as i64],
                            data: w,
                            int: false,
                        };
                    }
                    (_, [_]) => {}
                    _ => {
                        self.err(
                            msg::arg_type(
                                "the argument of `categorical`",
                                "a number of categories or a vector of weights",
                                &w.describe(),
                            )
                            .label(spans[0], "neither"),
                        );
                        return None;
                    }
                }
                vec![]
            }
            Prim::VonMisesFisher => {
                let ok = matches!(&args[0], Val::Const { shape, .. } if shape.len() == 1 && shape[0] >= 2)
                    && args[0].on() == On::Sphere
                    && matches!(&args[1], Val::Const { shape, .. } if shape.is_empty());
                if !ok {
                    // A constant vector off the sphere: say its norm, so a rounding slip shows.
                    let found = match &args[0] {
                        Val::Const { data, shape, .. } if shape.len() == 1 => {
                            let norm = data.iter().map(|x| x * x).sum::<f64>().sqrt();
                            format!("mu of norm {norm} (unit within {UNIT_TOLERANCE:e})")
                        }
                        _ => "other values".to_string(),
                    };
                    self.err(
                        msg::invalid_value(
                            "`mu` and `kappa` of `von_mises_fisher`",
                            "a constant unit vector and a constant number",
                            &found,
                        )
                        .label(spans[0], "mu")
                        .help("e.g. `von_mises_fisher([0, 0, 1], 10)`, or `normalize([1, 2, 2])`"),
                    );
                    return None;
                }
                args[0].shape().to_vec()
            }
            Prim::VonMises if !matches!(&args[1], Val::Const { shape, .. } if shape.is_empty()) => {
                self.err(
                    msg::invalid_value(
                        "`kappa` of `von_mises`",
                        "a constant number (one concentration for every angle)",
                        &args[1].describe(),
                    )
                    .label(spans[1], "kappa")
                    .help("e.g. `von_mises(0, 4, dim = 3)`; the locations may differ per angle"),
                );
                return None;
            }
            _ => {
                let mut shape: Vec<i64> = vec![];
                let mut at = c.span;
                for (v, s) in args.iter().zip(spans) {
                    match broadcast(&shape, v.shape()) {
                        Some(b) => {
                            if !v.shape().is_empty() {
                                at = *s;
                            }
                            shape = b;
                        }
                        None => {
                            self.err(
                                msg::shape_mismatch(
                                    &format!("the arguments of `{name}`"),
                                    &format!("of one length, {}", shape_words(&shape)),
                                    &shape_words(v.shape()),
                                )
                                .label(*s, shape_words(v.shape()))
                                .label(at, shape_words(&shape)),
                            );
                            return None;
                        }
                    }
                }
                let dim = dim
                    .map(|(d, s)| (d, Some(s)))
                    .or(space_dim.map(|d| (d, None)));
                if let Some((d, s)) = dim {
                    if !shape.is_empty() && shape[0] != d {
                        let mut diag = msg::shape_mismatch(
                            &format!("the arguments of `{name}`"),
                            &format!("of length {d}, its dimension"),
                            &format!("length {}", shape[0]),
                        )
                        .label(at, format!("length {}", shape[0]));
                        if let Some(s) = s {
                            diag = diag.label(s, format!("dim = {d}"));
                        }
                        self.err(diag);
                        return None;
                    }
                    shape = vec![d];
                }
                if prim == Prim::Dirichlet && shape.is_empty() {
                    self.err(
                        msg::missing_argument(name, "a dimension")
                            .label(c.span, "a single concentration and no `dim`")
                            .help("write `dirichlet(alpha = 0.2, dim = 16)` or give a vector of concentrations"),
                    );
                    return None;
                }
                shape
            }
        };
        Some(shape)
    }

    /// Binds a primitive's arguments by name or position, with defaults; returns the values,
    /// the span of each, and an explicit `dim`.
    fn dist_args(
        &mut self,
        c: &Call,
        env: &mut Scope,
        name: &str,
        prim: Prim,
        params: &[(&str, Option<f64>)],
        space_dim: Option<i64>,
    ) -> Option<(Vec<Val>, Vec<Span>, Option<(i64, Span)>)> {
        let mut vals: Vec<Option<(Val, Span)>> = vec![None; params.len()];
        let mut dim: Option<(i64, Span)> = None;
        let mut positional = 0;
        for a in &c.args {
            let v = self.value(&a.value, env)?;
            let i = match &a.name {
                Some(n) if n.name == "dim" && prim != Prim::UniformSphere => {
                    match v.as_f64() {
                        Some(x) if v.int() && (1.0..=MAX_DIM).contains(&x) => {
                            dim = Some((x as i64, a.value.span))
                        }
                        _ => {
                            self.err(
                                msg::invalid_value(
                                    &format!("`dim` of `{name}`"),
                                    &format!("a constant integer from 1 to {MAX_DIM}"),
                                    &v.describe(),
                                )
                                .label(a.value.span, "not a positive integer"),
                            );
                            return None;
                        }
                    }
                    continue;
                }
                Some(n) => match params.iter().position(|(p, _)| *p == n.name) {
                    Some(i) => i,
                    None => {
                        let mut names: Vec<&str> = params.iter().map(|(p, _)| *p).collect();
                        if prim != Prim::UniformSphere {
                            names.push("dim");
                        }
                        let help = match did_you_mean(&n.name, names.iter().copied()) {
                            Some(k) => {
                                format!("did you mean `{k}`? `{name}` takes {}", names.join(", "))
                            }
                            None => format!("`{name}` takes {}", names.join(", ")),
                        };
                        self.err(
                            msg::unknown_parameter(name, &n.name)
                                .label(n.span, "unknown parameter")
                                .help(help),
                        );
                        return None;
                    }
                },
                None => {
                    positional += 1;
                    if positional > params.len() {
                        self.err(
                            msg::arg_count(
                                name,
                                Takes::AtMost(params.len()),
                                c.args.iter().filter(|a| a.name.is_none()).count(),
                            )
                            .label(a.span, "one argument too many")
                            .help(signature(name, params, prim)),
                        );
                        return None;
                    }
                    positional - 1
                }
            };
            vals[i] = Some((v, a.value.span));
        }
        let (args, spans) = self.dist_defaults(c, name, prim, params, vals, space_dim)?;
        Some((args, spans, dim))
    }

    /// The bound values in parameter order, defaults filled in; a missing required argument is
    /// an error.
    fn dist_defaults(
        &mut self,
        c: &Call,
        name: &str,
        prim: Prim,
        params: &[(&str, Option<f64>)],
        vals: Vec<Option<(Val, Span)>>,
        space_dim: Option<i64>,
    ) -> Option<(Vec<Val>, Vec<Span>)> {
        let mut args = vec![];
        let mut spans = vec![];
        for ((p, default), v) in params.iter().zip(vals) {
            match (v, default) {
                (Some((v, s)), _) => {
                    args.push(v);
                    spans.push(s);
                }
                (None, Some(d)) => {
                    args.push(Val::scalar(*d));
                    spans.push(c.span);
                }
                (None, None) if prim == Prim::UniformSphere && space_dim.is_some() => {
                    let d = space_dim.unwrap_or(2);
                    args.push(Val::Const {
                        data: vec![d as f64],
                        shape: vec![],
                        int: true,
                    });
                    spans.push(c.span);
                }
                (None, None) => {
                    self.err(
                        msg::missing_argument(name, &format!("`{p}`"))
                            .label(c.span, format!("`{p}` is missing"))
                            .help(signature(name, params, prim)),
                    );
                    return None;
                }
            }
        }
        Some((args, spans))
    }

    /// Constant weights scaled to sum to one; negative weights or a zero sum are an error.
    pub(super) fn normalised(&mut self, w: &[f64], span: Span, what: &str) -> Option<Vec<f64>> {
        let total: f64 = w.iter().sum();
        if w.iter().any(|x| *x < 0.0) || total <= 0.0 {
            self.err(
                msg::invalid_value(
                    &format!("the weights of `{what}`"),
                    "non-negative with a positive sum",
                    &format!(
                        "[{}]",
                        w.iter().map(|x| ir::num(*x)).collect::<Vec<_>>().join(", ")
                    ),
                )
                .label(span, "invalid weights"),
            );
            return None;
        }
        if (total - 1.0).abs() > 1e-6 {
            self.err(
                msg::weights_normalised(what, &ir::num(total))
                    .label(span, format!("sum {}", ir::num(total)))
                    .help("write weights that sum to 1 to say what is meant, e.g. `[0.25, 0.75]`"),
            );
        }
        Some(w.iter().map(|x| x / total).collect())
    }

    /// Static range checks of constant parameters.
    pub(super) fn ranges(
        &mut self,
        prim: Prim,
        name: &str,
        args: &[Val],
        spans: &[Span],
    ) -> Option<()> {
        type Bad = Option<(usize, &'static str, &'static str)>;
        let check =
            |i: usize, ok: &dyn Fn(f64) -> bool, what: &'static str, need: &'static str| -> Bad {
                match &args[i] {
                    Val::Const { data, .. } if data.iter().any(|x| !ok(*x)) => {
                        Some((i, what, need))
                    }
                    _ => None,
                }
            };
        let pos = |x: f64| x > 0.0;
        let bad = match prim {
            Prim::Normal => check(1, &pos, "the standard deviation", "positive"),
            Prim::Uniform => match (&args[0], &args[1]) {
                (Val::Const { data: lo, .. }, Val::Const { data: hi, .. })
                    if lo.iter().zip(hi.iter().cycle()).any(|(l, h)| l >= h)
                        || hi.iter().zip(lo.iter().cycle()).any(|(h, l)| l >= h) =>
                {
                    Some((1, "`high`", "above `low`"))
                }
                _ => None,
            },
            Prim::Dirichlet => check(0, &pos, "the concentrations", "positive"),
            Prim::Gamma => check(0, &pos, "the shape", "positive")
                .or_else(|| check(1, &pos, "the rate", "positive")),
            Prim::Beta => check(0, &pos, "the first parameter", "positive")
                .or_else(|| check(1, &pos, "the second parameter", "positive")),
            Prim::Bernoulli => check(
                0,
                &|x| (0.0..=1.0).contains(&x),
                "the probability",
                "in [0, 1]",
            ),
            Prim::Laplace => check(1, &pos, "the scale", "positive"),
            Prim::Exponential => check(0, &pos, "the rate", "positive"),
            Prim::VonMisesFisher | Prim::VonMises => {
                check(1, &pos, "kappa, the concentration,", "positive")
            }
            Prim::UniformSphere | Prim::Categorical => None,
        };
        if let Some((i, what, need)) = bad {
            let shown = show(&args[i]);
            self.err(
                msg::invalid_value(&format!("{what} of `{name}`"), need, &shown)
                    .label(spans[i], format!("this is {shown}")),
            );
            return None;
        }
        Some(())
    }

    /// Emits the instructions that draw one sample of `d` per row.
    // long: one arm per distribution kind (primitive, mixture, prior call), each lowered to registers.
    pub(super) fn draw(&mut self, d: &DistV, name: &str) -> Option<Val> {
        match d {
            DistV::Prim {
                prim, args, shape, ..
            } => {
                let regs: Vec<usize> = match prim {
                    Prim::UniformSphere => vec![],
                    _ => args.iter().map(|a| self.lift(a, "const")).collect(),
                };
                let int = matches!(prim, Prim::Categorical | Prim::Bernoulli);
                let card = match prim {
                    Prim::Categorical => args[0].shape().first().copied(),
                    Prim::Bernoulli => Some(2),
                    _ => None,
                };
                let on = match prim {
                    Prim::UniformSphere | Prim::VonMisesFisher => On::Sphere,
                    Prim::Dirichlet => On::Simplex,
                    Prim::Gamma | Prim::Exponential => On::Positive,
                    _ => On::Any,
                };
                let reg = self.push(name, shape.clone(), int, Op::Draw(*prim, regs));
                Some(Val::Reg {
                    reg,
                    shape: shape.clone(),
                    int,
                    on,
                    card,
                })
            }
            DistV::Prior {
                name: callee,
                args,
                span,
            } => {
                let def = *self.defs.get(callee)?;
                let (v, space) = self.run(def, args.clone(), *span)?;
                let on = match space {
                    Space::Sphere { .. } => On::Sphere,
                    Space::Simplex { .. } => On::Simplex,
                    Space::Torus { .. } => On::Torus,
                    Space::Ball { c, .. } => On::Ball(c),
                    Space::Euclidean { .. } => v.on(),
                };
                Some(v.with_on(on))
            }
            DistV::Mixture {
                weights,
                comps,
                span,
            } => {
                let mut vals = vec![];
                for c in comps {
                    vals.push(self.draw(c, name)?);
                }
                let shape0 = vals[0].shape().to_vec();
                if let Some(v) = vals.iter().find(|v| v.shape() != shape0) {
                    self.err(
                        msg::shape_mismatch(
                            "every component of `mixture`",
                            &format!("of the first component's shape, {}", shape_words(&shape0)),
                            &shape_words(v.shape()),
                        )
                        .label(*span, "in this mixture")
                        .help("every component must draw values of the same shape"),
                    );
                    return None;
                }
                let on = if vals.iter().all(|v| v.on() == vals[0].on()) {
                    vals[0].on()
                } else {
                    On::Any
                };
                let int = vals.iter().all(Val::int);
                let k = vals.len() as i64;
                let regs: Vec<usize> = vals.iter().map(|v| self.lift(v, "const")).collect();
                let mut stacked_shape = vec![k];
                stacked_shape.extend(&shape0);
                let stacked = self.push("components", stacked_shape, int, Op::Stack(regs));
                let w = self.push("weights", vec![k], false, Op::Const(weights.clone()));
                let c = self.push(
                    "component",
                    vec![],
                    true,
                    Op::Draw(Prim::Categorical, vec![w]),
                );
                let reg = self.push(name, shape0.clone(), int, Op::Index(stacked, c));
                Some(Val::Reg {
                    reg,
                    shape: shape0,
                    int,
                    on,
                    card: None,
                })
            }
        }
    }
}

/// The usage line of a primitive, in the catalogue's one signature format; `dim` is accepted
/// by every primitive whose draw is a vector of free length.
fn signature(name: &str, params: &[(&str, Option<f64>)], prim: Prim) -> String {
    let mut ps: Vec<(&str, Option<String>)> =
        params.iter().map(|(p, d)| (*p, d.map(ir::num))).collect();
    if !matches!(
        prim,
        Prim::UniformSphere | Prim::Categorical | Prim::VonMisesFisher
    ) {
        ps.push(("dim", None));
    }
    format!("usage: `{}`", crate::catalogue::call_form(name, ps))
}
