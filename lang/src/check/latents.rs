//! Latent clauses, spaces and encoders: components, priors on their spaces, the Gaussian
//! encoder's placement and the projection onto a space.

use std::collections::HashMap;

use super::*;
use crate::catalogue::*;

impl<'a> Checker<'a> {
    /// The `latent` clauses: one (named or not), or several named components.
    pub(super) fn latents(&mut self, clauses: &'a [Clause]) -> Option<Vec<(ir::Latent, Span)>> {
        let cls: Vec<&Clause> = clauses
            .iter()
            .filter(|c| matches!(c.kind, ClauseKind::Latent { .. }))
            .collect();
        if cls.is_empty() {
            return None;
        }
        let mut ok = true;
        let mut out = vec![];
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for c in &cls {
            let ClauseKind::Latent { name, space, prior } = &c.kind else {
                continue;
            };
            match name {
                None if cls.len() > 1 => {
                    self.err(
                        msg::missing_clause("a component of a composite latent space", "name")
                        .label(c.keyword, "this component has no name")
                        .help("name each component, e.g. `latent what: S^9 ~ uniform_sphere()` and `latent where: R^3 ~ normal()`"),
                    );
                    ok = false;
                    continue;
                }
                Some(n) => {
                    if let Some(prev) = seen.get(n.name.as_str()) {
                        self.err(
                            msg::duplicate_definition(&n.name, "a latent component")
                                .label(n.span, "declared again here")
                                .label(*prev, "first declared here"),
                        );
                        ok = false;
                        continue;
                    }
                    seen.insert(&n.name, n.span);
                }
                None => {}
            }
            match self.latent(name.as_ref().map(|n| n.name.as_str()), space, prior) {
                Some(l) => out.push(l),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// What an encoder computes: a component (named), or the whole code; with the span of its
    /// declaration and whether it is a single space. None after an error (an unknown component);
    /// Some(None) when the latents are not known.
    fn encoder_target(
        &mut self,
        name: Option<&Ident>,
        latents: Option<&Vec<(ir::Latent, Span)>>,
    ) -> Option<Option<(Space, Span, bool)>> {
        Some(match name {
            Some(n) => match self.components.iter().find(|(c, ..)| *c == n.name) {
                Some((_, sp, s)) => Some((*sp, *s, true)),
                None if latents.is_none() => None,
                None => {
                    self.unknown_component(n, "not a component");
                    return None;
                }
            },
            None => latents.map(|ls| match ls.as_slice() {
                [(l, s)] => (l.space, *s, true),
                _ => (
                    Space::Euclidean {
                        dim: ls.iter().map(|(l, _)| l.space.dim()).sum(),
                    },
                    ls[0].1,
                    false,
                ),
            }),
        })
    }

    /// One encoder of a composite code ends on R^d: every component must be Euclidean.
    fn whole_code_is_euclidean(
        &mut self,
        c: &Clause,
        latents: Option<&Vec<(ir::Latent, Span)>>,
    ) -> bool {
        let Some((l, s)) = latents
            .into_iter()
            .flatten()
            .find(|(l, _)| !matches!(l.space, Space::Euclidean { .. }))
        else {
            return true;
        };
        self.err(
            msg::encoder_space(
                "one code for all components",
                &format!("the component `{}` ({})", l.name, l.space),
            )
            .label(c.keyword, "this encoder computes the whole code")
            .label(*s, "this component is not Euclidean")
            .help(format!(
                "give each component its own encoder, e.g. `encoder {} {{ ... normalize }}`",
                l.name
            )),
        );
        false
    }

    /// An error for each latent component without an encoder; whether there was none.
    fn every_component_encoded(&mut self, done: &[String]) -> bool {
        let mut ok = true;
        for (comp, _, lspan) in self.components.clone() {
            if !done.contains(&comp) {
                self.err(
                    msg::missing_clause(&format!("latent component `{comp}`"), "encoder")
                        .label(lspan, "declared here")
                        .help(format!("add `encoder {comp} {{ ... }}`")),
                );
                ok = false;
            }
        }
        ok
    }

    /// The encoder clauses: one for the whole code, or one per named component. Each ends on
    /// its space; a component encoder may `crop` at components encoded before it.
    pub(super) fn encoders(
        &mut self,
        clauses: &'a [Clause],
        data: Option<&(ir::DataSpec, Span)>,
        latents: Option<&Vec<(ir::Latent, Span)>>,
    ) -> Option<Vec<(ir::Encoder, Span)>> {
        let cls: Vec<(&Clause, Option<&Ident>, &Pipeline)> = clauses
            .iter()
            .filter_map(|c| match &c.kind {
                ClauseKind::Encoder(n, p) => Some((c, n.as_ref(), p)),
                _ => None,
            })
            .collect();
        let named: Vec<&Ident> = cls.iter().filter_map(|(_, n, _)| *n).collect();
        if cls.is_empty() || (named.len() < cls.len() && cls.len() > 1) {
            if !named.is_empty() && named.len() < cls.len() {
                let whole = cls
                    .iter()
                    .find(|(_, n, _)| n.is_none())
                    .map(|(c, ..)| c.keyword);
                self.err(
                    msg::duplicate_clause("encoders of the same coordinates: one of the whole code, one of a component")
                    .label(whole.unwrap_or(named[0].span), "encodes the whole code")
                    .label(named[0].span, "encodes one component")
                    .help("use one `encoder { ... }`, or one `encoder NAME { ... }` per component"),
                );
            }
            return None;
        }
        let input = data.map(|(d, _)| d.shape.clone());
        let mut ok = true;
        let mut done: Vec<String> = vec![];
        let mut out = vec![];
        for (c, name, p) in &cls {
            // The target: a component, or the whole code.
            let Some(target) = self.encoder_target(*name, latents) else {
                ok = false;
                continue;
            };
            if let Some(n) = name {
                if done.contains(&n.name) {
                    self.err(
                        msg::duplicate_clause(&format!("encoders of component `{}`", n.name))
                            .label(c.keyword, "second one here")
                            .help("keep one of them"),
                    );
                    ok = false;
                    continue;
                }
            }
            let declared = named.iter().map(|n| n.name.clone()).collect();
            self.role = Role::Encoder(done.clone(), declared);
            let mut flow = self.pipeline(p, input.clone());
            self.role = Role::Other;
            self.gaussian_placement(&mut flow, target.map(|(sp, s, _)| (sp, s)), true);
            if let Some((space, lspan, single)) = target {
                if !single && !self.whole_code_is_euclidean(c, latents) {
                    ok = false;
                    continue;
                }
                if flow.shape.is_some() {
                    self.project(&mut flow, space, lspan, p.span);
                    self.encoder_end(&flow, space.dim(), lspan, p.span);
                }
            }
            match (&input, &flow.shape) {
                (Some(i), Some(o)) => out.push((
                    ir::Encoder {
                        component: name.map(|n| n.name.clone()),
                        net: ir::Network {
                            input: i.clone(),
                            output: o.clone(),
                            layers: flow.layers,
                        },
                    },
                    p.span,
                )),
                _ => ok = false,
            }
            if let Some(n) = name {
                done.push(n.name.clone());
            }
        }
        if !named.is_empty() {
            ok &= self.every_component_encoded(&done);
        }
        ok.then_some(out)
    }

    /// A name that is not one of the latent components, with the known ones.
    pub(super) fn unknown_component(&mut self, name: &Ident, label: &str) {
        let names: Vec<&str> = self.components.iter().map(|(c, ..)| c.as_str()).collect();
        let d = msg::unknown(Unknown::Component, &name.name)
            .label(name.span, label)
            .help(unknown_help(&name.name, "components", &names));
        self.err(d);
    }

    /// The encoder must end with exactly `d` coordinates.
    pub(super) fn encoder_end(&mut self, flow: &Flow, d: i64, lspan: Span, pspan: Span) {
        let Some(shape) = &flow.shape else {
            return;
        };
        if shape == &vec![d] {
            return;
        }
        let at = flow.spans.last().copied().unwrap_or(pspan);
        let help = if shape.len() == 1 {
            format!("end the encoder with `linear({d})`")
        } else {
            format!("flatten, then end the encoder with `linear({d})`")
        };
        self.err(
            msg::latent_shape(
                "the encoder's output",
                &format!("[{d}], one value per latent coordinate"),
                &shape_str(shape),
            )
            .label(
                at,
                format!("the encoder ends here with {}", shape_str(shape)),
            )
            .label(lspan, format!("{d} coordinates declared here"))
            .help(help),
        );
    }

    /// A latent whose prior is a prior program of the file: instantiated, and its declared space
    /// matched against the latent's.
    fn program_latent(
        &mut self,
        name: Option<&str>,
        sp: Space,
        space: &SpaceExpr,
        prior: &Call,
    ) -> Option<(ir::Latent, Span)> {
        let pname = name_of(prior);
        // Arguments of an earlier version of the standard library, read in their new form.
        let migrated = super::compat::migrate(prior).map(|(call, d)| {
            self.diags.report(d);
            call
        });
        let prior = migrated.as_ref().unwrap_or(prior);
        // A dimension parameter left out is taken from the latent clause.
        let inferred = self.priors.with_dimension(prior, &sp);
        let call = inferred.as_ref().unwrap_or(prior);
        let (program, declared, dspan) = self.priors.instantiate(call, &mut self.diags)?;
        if declared != sp {
            let curvatures = match (&declared, &sp) {
                (Space::Ball { dim: a, c: ca }, Space::Ball { dim: b, c: cb }) if a == b => {
                    Some((*ca, *cb))
                }
                _ => None,
            };
            let help = match self.priors.dimension_parameter(pname, &sp) {
                _ if curvatures.is_some() => {
                    let (_, want) = curvatures.unwrap_or_default();
                    format!("the curvatures differ: give `{pname}` the latent's curvature, `curvature = {want}`, or leave it out when the prior takes it as a parameter")
                }
                Some((p, v)) => format!(
                    "its dimension is the parameter `{p}`: write `{p} = {v}` (or leave `{p}` out to take it from the latent clause)"
                ),
                None => format!(
                    "`{pname}` is declared on {declared} only; declare the latent on that space, or give the prior a dimension parameter, e.g. `prior {pname}(d: int) on R^d`"
                ),
            };
            self.err(
                msg::prior_space(pname, &declared.to_string(), &sp.to_string())
                    .label(prior.span, format!("samples lie on {declared}"))
                    .label(space.span(), "the latent space is declared here")
                    .label(dspan, "the prior's space")
                    .help(help),
            );
            return None;
        }
        return Some((
            ir::Latent {
                name: name.unwrap_or("z").to_string(),
                space: sp,
                prior: ir::Prior::Program(program),
            },
            space.span(),
        ));
    }

    /// The error for a prior that is neither built in, primitive nor defined, with the best
    /// candidates.
    fn unknown_prior(&mut self, prior: &Call) {
        let pname = name_of(prior);
        let mut cands: Vec<String> = names(PRIORS).iter().map(|n| n.to_string()).collect();
        cands.extend(self.priors.names().iter().map(|n| n.to_string()));
        // Discrete draws make poor latent priors; they are not suggested.
        cands.extend(
            prior::primitive_names()
                .filter(|n| !["categorical", "bernoulli"].contains(n))
                .map(String::from),
        );
        cands.sort();
        cands.dedup();
        let cands: Vec<&str> = cands.iter().map(String::as_str).collect();
        let help = known_as(pname, &cands)
            .or_else(|| stdlib_hint("prior", pname))
            .unwrap_or_else(|| unknown_help(pname, "priors", &cands));
        self.err(
            msg::unknown(Unknown::Prior, pname)
                .label(prior.name.span, "not a known prior")
                .help(help),
        );
    }

    pub(super) fn latent(
        &mut self,
        name: Option<&str>,
        space: &SpaceExpr,
        prior: &Call,
    ) -> Option<(ir::Latent, Span)> {
        let sp = self.space(space);
        let pname = name_of(prior);
        if self.priors.has(pname) {
            return self.program_latent(name, sp?, space, prior);
        }
        if find(PRIORS, pname).is_none() && prior::is_primitive(pname) {
            let sp = sp?;
            let program = self
                .priors
                .primitive(prior, sp, space.span(), &mut self.diags)?;
            return Some(self.latent_of(name, sp, ir::Prior::Program(program), space));
        }
        let params = if find(PRIORS, pname).is_some() {
            self.lookup(prior, PRIORS, Unknown::Prior, "priors")
        } else {
            self.unknown_prior(prior);
            None
        };
        let sp = sp?;
        let b = self.bind(prior, params?, &Env::new())?;
        let d = sp.dim();
        let (prior_ir, needs) = match pname {
            "normal" => (
                ir::Prior::Normal {
                    mean: b.real("mean"),
                    std: b.real("std"),
                },
                "R",
            ),
            "uniform" => {
                if b.real("low") >= b.real("high") {
                    self.err(
                        msg::invalid_value(
                            "`low` of `uniform`",
                            &format!("below `high` ({})", ir::num(b.real("high"))),
                            &ir::num(b.real("low")),
                        )
                        .label(b.span("low"), format!("low = {}", ir::num(b.real("low"))))
                        .label(
                            b.span("high"),
                            format!("high = {}", ir::num(b.real("high"))),
                        )
                        .help("swap the bounds"),
                    );
                    return None;
                }
                (
                    ir::Prior::Uniform {
                        low: b.real("low"),
                        high: b.real("high"),
                    },
                    "R",
                )
            }
            "uniform_sphere" => (ir::Prior::UniformSphere, "S"),
            _ => {
                let alpha = match b.value("alpha") {
                    Value::List(items) => {
                        if items.len() as i64 != d {
                            self.err(
                                msg::invalid_value(
                                    "`alpha` of `dirichlet`",
                                    &format!(
                                        "one number or {d} numbers, one per vertex of the simplex"
                                    ),
                                    &format!("{} numbers", items.len()),
                                )
                                .label(b.span("alpha"), format!("{} values", items.len()))
                                .label(space.span(), format!("{d} vertices"))
                                .help("give one alpha per vertex, or a single number for all"),
                            );
                            return None;
                        }
                        items.iter().filter_map(Value::as_f64).collect()
                    }
                    v => vec![v.as_f64().unwrap_or(1.0); d.max(0) as usize],
                };
                (ir::Prior::Dirichlet { alpha }, "simplex")
            }
        };
        let ok = matches!(
            (needs, sp),
            ("R", Space::Euclidean { .. })
                | ("S", Space::Sphere { .. })
                | ("simplex", Space::Simplex { .. })
        );
        if !ok {
            self.prior_space_mismatch(pname, needs, sp, prior, space);
            return None;
        }
        Some(self.latent_of(name, sp, prior_ir, space))
    }

    /// A checked latent component with the span of its space.
    fn latent_of(
        &self,
        name: Option<&str>,
        space: Space,
        prior: ir::Prior,
        at: &SpaceExpr,
    ) -> (ir::Latent, Span) {
        (
            ir::Latent {
                name: name.unwrap_or("z").to_string(),
                space,
                prior,
            },
            at.span(),
        )
    }

    /// The error for a built-in prior on a space it does not live on (`needs`: R, S or simplex).
    fn prior_space_mismatch(
        &mut self,
        pname: &str,
        needs: &str,
        sp: Space,
        prior: &Call,
        space: &SpaceExpr,
    ) {
        let d = sp.dim();
        let (want, example) = match needs {
            "R" => (
                "Euclidean space R^d",
                format!("latent R^{d} ~ {pname}(...)"),
            ),
            "S" => (
                "sphere S^k",
                format!("latent S^{} ~ uniform_sphere()", d - 1),
            ),
            _ => (
                "simplex",
                format!("latent simplex({d}) ~ dirichlet(alpha = 0.2)"),
            ),
        };
        let fitting = match sp {
            Space::Euclidean { .. } => "`normal` or `uniform`",
            Space::Sphere { .. } => "`uniform_sphere`",
            Space::Simplex { .. } => "`dirichlet`",
            Space::Torus { .. } => "a prior program on T^k, e.g. `torus_uniform()` or `torus_von_mises(...)` of std/priors",
            Space::Ball { .. } => "a prior program on the ball, e.g. `wrapped_normal()` or `hyperbolic_uniform()` of std/priors",
        };
        self.err(
            msg::prior_space(pname, &format!("a {want}"), &sp.to_string())
                .label(prior.span, format!("samples of `{pname}` lie on a {want}"))
                .label(space.span(), "the latent space is declared here")
                .help(format!(
                    "write `{example}`, or use a prior of this space: {fitting}"
                )),
        );
    }

    pub(super) fn space(&mut self, s: &SpaceExpr) -> Option<Space> {
        const SPACES: &[&str] = &["R", "S", "simplex", "T", "ball"];
        let (base, arg, span) = match s {
            SpaceExpr::Pow {
                base,
                exponent,
                span,
            } => (base, Some(exponent), *span),
            SpaceExpr::Call(c) => (&c.name, c.args.first().map(|a| &a.value), c.span),
        };
        let known = match s {
            SpaceExpr::Pow { .. } => ["R", "S", "T"].contains(&base.name.as_str()),
            SpaceExpr::Call(c) => {
                (c.name.name == "simplex" && c.args.len() == 1 && c.args[0].name.is_none())
                    || (c.name.name == "ball" && (1..=2).contains(&c.args.len()))
            }
        };
        if !known {
            let help = match base.name.as_str() {
                "sphere" | "hypersphere" => {
                    "the unit sphere in R^d is written `S^(d-1)`, e.g. `S^9` for codes in R^10"
                        .to_string()
                }
                "simplex" => "write `simplex(d)` with the number of vertices d".to_string(),
                "ball" => "write `ball(d)` or `ball(d, curvature = c)`".to_string(),
                "torus" => "the torus of k circles is written `T^k`".to_string(),
                "R" | "S" => format!("write `{}^d`", base.name),
                // `R8`, `S9`: the exponent written without `^`.
                n if n.len() > 1
                    && (n.starts_with('R') || n.starts_with('S'))
                    && n[1..].chars().all(|c| c.is_ascii_digit()) =>
                {
                    format!("write `{}^{}`", &n[..1], &n[1..])
                }
                n => format!(
                    "{}; spaces are written `R^d`, `S^k`, `simplex(d)`, `T^k` or `ball(d, curvature = 1)`",
                    unknown_help(n, "spaces", SPACES)
                ),
            };
            self.err(
                msg::unknown(Unknown::Space, &base.name)
                    .label(span, "not a latent space")
                    .help(help),
            );
            return None;
        }
        let arg = arg?;
        let v = self.eval(arg, &Env::new())?;
        let Value::Int(n) = v else {
            self.err(
                msg::arg_type("a space dimension", "a constant integer", v.type_name())
                    .label(arg.span, "not an integer"),
            );
            return None;
        };
        let (space, min, what) = match base.name.as_str() {
            "R" => (Space::Euclidean { dim: n }, 1, "R^d needs d >= 1"),
            "S" => (
                Space::Sphere {
                    dim: n.saturating_add(1),
                },
                1,
                "S^k needs k >= 1 (S^1 is the circle)",
            ),
            "T" => (Space::Torus { k: n }, 1, "T^k needs k >= 1 circles"),
            "ball" => {
                let c = match s {
                    SpaceExpr::Call(call) => self.curvature(call)?,
                    SpaceExpr::Pow { .. } => 1.0,
                };
                (Space::Ball { dim: n, c }, 1, "ball(d) needs d >= 1")
            }
            _ => (
                Space::Simplex { dim: n },
                2,
                "a simplex needs at least 2 vertices",
            ),
        };
        if n < min || n as i128 > MAX_ELEMENTS {
            self.err(
                msg::invalid_value(
                    &format!("the dimension of `{}`", base.name),
                    &format!("from {min} to {}", ir::thousands(MAX_ELEMENTS as u64)),
                    &n.to_string(),
                )
                .label(arg.span, "out of range")
                .help(what),
            );
            return None;
        }
        Some(space)
    }

    /// The curvature of `ball(d, c)` or `ball(d, curvature = c)`: a positive constant, 1 when
    /// left out.
    fn curvature(&mut self, call: &Call) -> Option<f64> {
        let Some(a) = call.args.get(1) else {
            return Some(1.0);
        };
        if let Some(n) = a.name.as_ref().filter(|n| n.name != "curvature") {
            self.err(
                msg::unknown_parameter("ball", &n.name)
                    .label(n.span, "unknown parameter")
                    .help("`ball` takes the dimension and `curvature`"),
            );
            return None;
        }
        let v = self.eval(&a.value, &Env::new())?;
        match v.as_f64() {
            Some(c) if c > 0.0 && c.is_finite() => Some(c),
            _ => {
                self.err(
                    msg::invalid_value(
                        "the curvature of `ball`",
                        "a positive number",
                        &v.as_f64().map_or(v.type_name().to_string(), ir::num),
                    )
                    .label(a.value.span, "the ball's curvature is -c with c > 0"),
                );
                None
            }
        }
    }

    /// A Gaussian head may only end an encoder whose latent space is R^d.
    pub(super) fn gaussian_placement(
        &mut self,
        flow: &mut Flow,
        space: Option<(Space, Span)>,
        encoder: bool,
    ) {
        let n = flow.layers.len();
        for i in 0..n {
            if !matches!(flow.layers[i].op, LayerOp::Gaussian { .. }) {
                continue;
            }
            let at = flow.spans[i];
            let (problem, help) = if !encoder {
                (
                    "belongs to the encoder, not the generator".to_string(),
                    "remove it from the generator; a stochastic encoder ends with `gaussian(d)`"
                        .to_string(),
                )
            } else if i + 1 != n {
                (
                    "must be the encoder's last layer".to_string(),
                    "its samples are the codes: move the layers after it before it".to_string(),
                )
            } else if let Some((sp @ (Space::Sphere { .. } | Space::Simplex { .. }), _)) = space {
                (format!("samples in R^d, but the latent space is {sp}"), "use `latent R^d ~ normal()` for a Gaussian encoder, or a deterministic encoder here".to_string())
            } else {
                continue;
            };
            let mut d = msg::gaussian_placement(&problem)
                .label(at, "the Gaussian head")
                .help(help);
            if let (Some((_, lspan)), true) = (space, encoder && i + 1 == n) {
                d = d.label(lspan, "the latent space");
            }
            self.err(d);
            flow.shape = None;
        }
    }

    /// Makes the encoder end on the latent space: inserts the projection with a note, or rejects
    /// a projection onto a different space.
    pub(super) fn project(&mut self, flow: &mut Flow, space: Space, lspan: Span, pspan: Span) {
        let (needed, name) = match space {
            Space::Sphere { .. } => (LayerOp::Normalize, "normalize"),
            Space::Simplex { .. } => (LayerOp::Softmax, "softmax"),
            Space::Torus { .. } => (LayerOp::Torus, "torus"),
            Space::Ball { c, .. } => (LayerOp::Expmap0 { c }, "expmap0"),
            Space::Euclidean { .. } => return,
        };
        let last = flow.layers.last().map(|l| l.op.clone());
        let at = flow.spans.last().copied().unwrap_or(pspan);
        // The layer that feeds the projection (the one written, or the one to be inserted).
        let present = last.as_ref() == Some(&needed);
        let feeding = flow.layers.len().checked_sub(if present { 2 } else { 1 });
        // (A last layer that projects onto another space is an error of its own, below.)
        let wrong_projection = !present
            && matches!(
                last,
                Some(
                    LayerOp::Normalize
                        | LayerOp::Softmax
                        | LayerOp::Torus
                        | LayerOp::Expmap0 { .. }
                )
            );
        if let Some(i) =
            feeding.filter(|_| !matches!(space, Space::Simplex { .. }) && !wrong_projection)
        {
            let act = match flow.layers[i].op {
                LayerOp::Relu => Some("relu"),
                LayerOp::Sigmoid => Some("sigmoid"),
                LayerOp::Softmax => Some("softmax"),
                _ => None,
            };
            if let Some(act) = act {
                self.diags.report(
                    msg::codes_confined(act, name, &space.to_string())
                        .label(flow.spans[i], format!("`{act}` here: outputs >= 0"))
                        .label(lspan, "the latent space"),
                );
            }
        }
        if present {
            return;
        }
        // A projection onto another space (or another ball's curvature).
        let projection = |op: &LayerOp| {
            matches!(
                op,
                LayerOp::Normalize | LayerOp::Softmax | LayerOp::Torus | LayerOp::Expmap0 { .. }
            )
        };
        if let Some(wrong) = last.as_ref().filter(|op| projection(op)) {
            let name = if let Space::Ball { c, .. } = space {
                format!("expmap0(curvature = {})", ir::num(c))
            } else {
                name.to_string()
            };
            self.err(
                msg::encoder_space(&format!("`{wrong}`"), &space.to_string())
                    .label(at, format!("`{wrong}` here"))
                    .label(lspan, "the latent space is declared here")
                    .help(format!(
                        "end the encoder with `{name}` so that codes lie on {space}"
                    )),
            );
            return;
        }
        if let Some(Shape { .. }) = flow.shape.as_ref().filter(|s| s.len() == 1) {
            self.diags.report(
                msg::projection_inserted(name)
                    .label(
                        at,
                        format!("codes leave this layer in R^d; `{name}` maps them onto {space}"),
                    )
                    .label(lspan, "the latent space")
                    .help(format!(
                        "write `{name}` as the encoder's last layer to make this explicit"
                    )),
            );
            let shape = flow.shape.clone().unwrap_or_default();
            flow.layers.push(ir::Layer {
                op: needed,
                input: shape.clone(),
                output: shape,
                params: 0,
                origin: vec![],
                init: None,
            });
            flow.spans.push(at);
        }
    }
}
