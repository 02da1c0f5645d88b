//! The objective: reconstruction cost, latent penalties, latent costs and the GAN's critic.

use super::args::Bound;
use super::*;
use crate::catalogue::*;

impl<'a> Checker<'a> {
    /// A penalty's weight gamma: a non-negative constant, 1 when none is written.
    fn penalty_weight(&mut self, weight: Option<&Expr>) -> Option<f64> {
        let Some(e) = weight else {
            return Some(1.0);
        };
        let v = self.eval(e, &Env::new())?;
        match v.as_f64() {
            Some(w) if w >= 0.0 && w.is_finite() => Some(w),
            Some(w) => {
                self.err(
                    msg::invalid_value("a penalty weight", "a finite number >= 0", &ir::num(w))
                    .label(e.span, "must be >= 0")
                    .help("gamma trades reconstruction against matching the prior; it cannot be negative"),
                );
                None
            }
            None => {
                self.err(
                    msg::arg_type("a penalty weight", "a number", v.type_name())
                        .label(e.span, "not a number"),
                );
                None
            }
        }
    }

    pub(super) fn penalties(
        &mut self,
        clauses: &[Clause],
        latents: Option<&Vec<(ir::Latent, Span)>>,
        encoders: Option<&Vec<(ir::Encoder, Span)>>,
    ) -> Option<Vec<ir::Penalty>> {
        let mut out = vec![];
        let mut ok = true;
        for cl in clauses {
            let ClauseKind::Penalty { weight, call, on } = &cl.kind else {
                continue;
            };
            let Some(w) = self.penalty_weight(weight.as_ref()) else {
                ok = false;
                continue;
            };
            // The component it matches: named with `on`, or the only one.
            let all: Vec<&(ir::Latent, Span)> = latents.into_iter().flatten().collect();
            let latent: Option<&(ir::Latent, Span)> = match on {
                Some(on) => match all.iter().find(|(l, _)| l.name == on.name) {
                    Some(l) => Some(*l),
                    None if latents.is_none() => None,
                    None => {
                        self.unknown_component(on, "unknown component");
                        ok = false;
                        continue;
                    }
                },
                None if all.len() > 1 && has_weights(call) => {
                    match self.joint_penalty(call, &all) {
                        Some(kind) => out.push(ir::Penalty {
                            weight: w,
                            kind,
                            on: String::new(),
                        }),
                        None => ok = false,
                    }
                    continue;
                }
                None if all.len() > 1 => {
                    let names: Vec<String> = all
                        .iter()
                        .map(|(l, _)| format!("`on {}`", l.name))
                        .collect();
                    self.err(
                        msg::missing_argument(name_of(call), "a latent component (`on NAME`)")
                            .label(call.span, "no `on NAME`")
                            .help(format!(
                                "each component has its own penalty; add {}, or give `sinkhorn` `weights = [...]` (one per component) for one joint problem over all of them",
                                names.join(" or ")
                            )),
                    );
                    ok = false;
                    continue;
                }
                None => all.first().copied(),
            };
            let lat_name = latent
                .map(|(l, _)| l.name.clone())
                .unwrap_or_else(|| "z".into());
            // The encoder that computes this component.
            let encoder = encoders.and_then(|es| {
                es.iter()
                    .find(|(e, _)| e.component.as_deref() == Some(lat_name.as_str()))
                    .or_else(|| es.iter().find(|(e, _)| e.component.is_none()))
                    .map(|(e, s)| (e.net.clone(), *s))
            });
            let encoder = encoder.as_ref();
            match self.penalty_kind(call, latent, encoder) {
                Some(kind) => out.push(ir::Penalty {
                    weight: w,
                    kind,
                    on: lat_name,
                }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `sinkhorn(..., weights = [w1, w2, ...])` without `on` in a composite model: one Sinkhorn
    /// problem over the whole code whose cost is the weighted sum of each component's own cost.
    fn joint_penalty(
        &mut self,
        call: &Call,
        all: &[&(ir::Latent, Span)],
    ) -> Option<ir::PenaltyKind> {
        if name_of(call) != "sinkhorn" {
            self.err(
                msg::penalty_space(&format!("`weights` of `{}`", name_of(call)), "the `sinkhorn` penalty", name_of(call))
                    .label(call.span, "a joint problem over components")
                    .help("only `sinkhorn` solves one joint problem over a product of components; give the others `on NAME`"),
            );
            return None;
        }
        let params = self.lookup(call, PENALTIES, Unknown::Penalty, "penalties")?;
        let b = self.bind(call, params, &Env::new())?;
        let weights: Vec<f64> = match b.value("weights") {
            Value::List(items) => items.iter().filter_map(Value::as_f64).collect(),
            v => vec![v.as_f64().unwrap_or(0.0)],
        };
        if weights.len() != all.len() || weights.iter().all(|w| *w == 0.0) {
            let names: Vec<&str> = all.iter().map(|(l, _)| l.name.as_str()).collect();
            self.err(
                msg::shape_mismatch(
                    "the `weights` of a joint `sinkhorn`",
                    &format!("one number per component ({}), not all 0", names.join(", ")),
                    &format!("{} numbers", weights.len()),
                )
                .label(b.span("weights"), format!("{} weights", weights.len()))
                .help(format!(
                    "e.g. `weights = [{}]`",
                    vec!["1"; all.len()].join(", ")
                )),
            );
            return None;
        }
        let mut factors = vec![];
        let mut offset = 0;
        for ((l, lspan), weight) in all.iter().map(|x| (&x.0, x.1)).zip(&weights) {
            let cost = self.metric_cost(&b, Some(l.space), lspan)?;
            factors.push(ir::Factor {
                name: l.name.clone(),
                offset,
                dim: l.space.dim(),
                weight: *weight,
                cost,
            });
            offset += l.space.dim();
        }
        let mut kind = self.penalty_kind(call, None, None)?;
        if let ir::PenaltyKind::Sinkhorn { factors: f, .. } = &mut kind {
            *f = factors;
        }
        Some(kind)
    }

    /// One penalty call: its parameters, and whether it fits the latent space and encoder.
    pub(super) fn penalty_kind(
        &mut self,
        call: &Call,
        latent: Option<&(ir::Latent, Span)>,
        encoder: Option<&(ir::Network, Span)>,
    ) -> Option<ir::PenaltyKind> {
        let space = latent.map(|(l, _)| l.space);
        let lspan = latent.map(|(_, s)| *s).unwrap_or(call.span);
        if name_of(call) == "gan" {
            return self.gan(call, space);
        }
        let params = self.lookup(call, PENALTIES, Unknown::Penalty, "penalties")?;
        let b = self.bind(call, params, &Env::new())?;
        let kind = match name_of(call) {
            "sinkhorn" => {
                let scaling = b.real("scaling");
                if !(scaling > 0.0 && scaling <= 1.0) {
                    self.err(
                        msg::invalid_value("`scaling` of `sinkhorn`", "in (0, 1]", &ir::num(scaling))
                            .label(b.span("scaling"), "out of range")
                            .help("epsilon is multiplied by `scaling` at each annealing stage; 1 turns scaling off"),
                    );
                    return None;
                }
                ir::PenaltyKind::Sinkhorn {
                    epsilon: b.real("epsilon"),
                    iterations: b.int("iterations"),
                    cost: self.metric_cost(&b, space, lspan)?,
                    debiased: b.bool("debiased"),
                    envelope: b.str("gradient") == "envelope",
                    tolerance: b.real("tolerance"),
                    scaling,
                    factors: vec![],
                }
            }
            "mmd" => {
                let d = space.map_or(1, |s| s.dim()) as f64;
                let sigma = b.real("sigma");
                ir::PenaltyKind::Mmd {
                    imq: b.str("kernel") == "imq",
                    sigma,
                    scale: 2.0 * d * sigma * sigma,
                }
            }
            "sliced" => ir::PenaltyKind::Sliced {
                projections: b.int("projections"),
                p: b.real("p"),
            },
            "exact" => ir::PenaltyKind::Exact {
                cost: self.metric_cost(&b, space, lspan)?,
            },
            _ => {
                // KL needs a Gaussian encoder and a normal prior on R^d.
                let prior = latent.map(|(l, _)| l.prior.clone());
                let (mean, std) = match (space, prior) {
                    (Some(Space::Euclidean { .. }), Some(ir::Prior::Normal { mean, std })) => {
                        (mean, std)
                    }
                    (Some(sp), Some(pr)) => {
                        self.err(
                            msg::penalty_space("the KL penalty", "a normal prior on R^d", &format!("`{pr}` on {sp}"))
                                .label(call.span, "KL is computed in closed form between Gaussians")
                                .label(lspan, "the latent space and prior")
                                .help("use `latent R^d ~ normal()` with `kl()`, or a sample-based penalty (sinkhorn, mmd, sliced, exact, gan) for this prior"),
                        );
                        return None;
                    }
                    _ => return None,
                };
                if let Some((enc, espan)) = encoder {
                    if !matches!(
                        enc.layers.last().map(|l| &l.op),
                        Some(LayerOp::Gaussian { .. })
                    ) {
                        let d = space.map_or(8, |s| s.dim());
                        self.err(
                            msg::penalty_space("the KL penalty", "a Gaussian encoder", "a deterministic one")
                                .label(call.span, "KL between the encoder's Gaussian and the prior")
                                .label(*espan, "this encoder is deterministic")
                                .help(format!("end the encoder with `gaussian({d})`: mean and log-variance heads, sampled with the reparameterisation")),
                        );
                        return None;
                    }
                }
                ir::PenaltyKind::Kl { mean, std }
            }
        };
        Some(kind)
    }

    /// The latent cost of a penalty with `metric` and `p` parameters (sinkhorn, exact).
    fn metric_cost(
        &mut self,
        b: &Bound,
        space: Option<Space>,
        lspan: Span,
    ) -> Option<ir::LatentCost> {
        self.latent_cost(
            &b.str("metric"),
            b.real("p"),
            space,
            b.span("metric"),
            lspan,
        )
    }

    /// The ground cost named by a penalty's `cost` argument ("auto" picks the space's metric).
    pub(super) fn latent_cost(
        &mut self,
        name: &str,
        p: f64,
        space: Option<Space>,
        at: Span,
        lspan: Span,
    ) -> Option<ir::LatentCost> {
        let cost = match (name, space) {
            ("auto", Some(Space::Sphere { .. })) | ("geodesic", Some(Space::Sphere { .. })) => {
                ir::LatentCost::Geodesic { p }
            }
            ("auto" | "geodesic", Some(Space::Torus { .. })) => ir::LatentCost::Torus { p },
            ("auto" | "geodesic", Some(Space::Ball { c, .. })) => {
                ir::LatentCost::Hyperbolic { p, c }
            }
            ("auto" | "euclidean", _) => ir::LatentCost::Euclidean { p },
            ("fisher_rao", Some(Space::Simplex { .. })) => ir::LatentCost::FisherRao { p },
            (_, None) => return None,
            (other, Some(sp)) => {
                let fits = if other == "geodesic" {
                    "the sphere S^k, the torus T^k or the ball"
                } else {
                    "the simplex"
                };
                self.err(
                    msg::penalty_space(&format!("the `{other}` metric"), fits, &sp.to_string())
                        .label(at, "this metric")
                        .label(lspan, "the latent space")
                        .help("use `metric = \"euclidean\"`, or leave `metric` out to use the space's own metric"),
                );
                return None;
            }
        };
        Some(cost)
    }

    /// `gan(discriminator = NET(...), lr, beta1, beta2)`: the discriminator is a net applied to
    /// latent codes and must output one logit.
    pub(super) fn gan(&mut self, call: &Call, space: Option<Space>) -> Option<ir::PenaltyKind> {
        let pos = call
            .args
            .iter()
            .position(|a| a.name.as_ref().is_some_and(|n| n.name == "discriminator"))
            .or_else(|| call.args.iter().position(|a| a.name.is_none()));
        let Some(pos) = pos else {
            self.err(
                msg::missing_argument("gan", "`discriminator`")
                    .label(call.span, "`discriminator` missing")
                    .help("declare a net and pass it: `net critic(h = 256) { linear(h) relu linear(h) relu linear(1) }` and `gan(discriminator = critic())`"),
            );
            return None;
        };
        let arg = &call.args[pos];
        let mut rest = call.clone();
        rest.args.remove(pos);
        let b = self.bind(&rest, GAN_PARAMS, &Env::new());
        let ExprKind::Call(net_call) = &arg.value.kind else {
            self.err(
                msg::arg_type("the discriminator", "a net, e.g. `critic()`", "a value")
                    .label(arg.value.span, "not a net")
                    .help("declare it with `net critic(h = 256) { linear(h) relu linear(1) }`"),
            );
            return None;
        };
        let d = space?.dim();
        let pipe = Pipeline {
            layers: vec![net_call.clone()],
            span: net_call.span,
        };
        let flow = self.pipeline(&pipe, Some(vec![d]));
        let out = flow.shape.clone()?;
        if out != vec![1] {
            self.err(
                msg::output_shape(
                    "the discriminator's output",
                    "one logit, [1]",
                    &shape_str(&out),
                )
                .label(net_call.span, format!("ends with {}", shape_str(&out)))
                .help("end the discriminator with `linear(1)`; its sigmoid is part of the loss"),
            );
            return None;
        }
        let last = flow.last_value_layer();
        if last.is_some_and(|(l, _)| l.op == LayerOp::Sigmoid) {
            self.diags
                .report(msg::discriminator_sigmoid().label(net_call.span, "ends in `sigmoid`"));
        }
        let b = b?;
        let discriminator = ir::Network {
            input: vec![d],
            output: out,
            layers: flow.layers,
        };
        Some(ir::PenaltyKind::Gan {
            discriminator,
            opt: super::settings::adam(&b),
        })
    }
}

/// Whether a penalty call gives `weights` (a joint problem over components).
fn has_weights(call: &Call) -> bool {
    call.args
        .iter()
        .any(|a| a.name.as_ref().is_some_and(|n| n.name == "weights"))
}
