//! The model as a whole: its clauses in order, the IR they build, and the size limits.

use std::collections::HashMap;

use super::*;

impl<'a> Checker<'a> {
    pub(super) fn model(&mut self, name: &str, clauses: &'a [Clause]) -> Option<ir::Model> {
        let by_kind = self.clauses_by_kind(clauses);
        let data_cl = by_kind.get("data").copied();
        let gen_cl = by_kind.get("generator").copied();
        let data = data_cl.and_then(|c| match &c.kind {
            ClauseKind::Data(call, transforms) => self.data(call, transforms).map(|d| (d, c.span)),
            _ => None,
        });
        let latents = self.latents(clauses);
        self.components = latents
            .iter()
            .flatten()
            .map(|(l, s)| (l.name.clone(), l.space, *s))
            .collect();
        let total_dim: Option<i64> = latents
            .as_ref()
            .map(|ls| ls.iter().map(|(l, _)| l.space.dim()).sum());
        let encoders = self.encoders(clauses, data.as_ref(), latents.as_ref());

        let generator = gen_cl.and_then(|c| self.generator(c, total_dim, data.as_ref()));

        let cost = self.cost(
            by_kind.get("cost").copied(),
            generator.as_ref().map(|(f, _, s)| (f, *s)),
            data.as_ref(),
        );
        let penalties = self.penalties(clauses, latents.as_ref(), encoders.as_ref());
        if let (Some(ls), Some(ps)) = (&latents, &penalties) {
            self.learned_priors_trained(ls, ps);
        }
        let train = self.train(by_kind.get("train").copied());
        if let (Some(t), Some((d, dspan))) = (&train, &data) {
            self.batch_fits(t.batch, d, *dspan, by_kind.get("train").copied());
        }
        let generator = generator.and_then(|(flow, input, _)| {
            Some(ir::Network {
                input: input?,
                output: flow.shape?,
                layers: flow.layers,
            })
        });
        let params = encoders
            .iter()
            .flatten()
            .map(|(e, _)| e.net.params())
            .chain(generator.iter().map(ir::Network::params))
            .map(u128::from)
            .sum();
        self.size_check(params, clauses[0].keyword);

        Some(ir::Model {
            name: name.to_string(),
            data: data?.0,
            latents: latents?.into_iter().map(|(l, _)| l).collect(),
            encoders: encoders?.into_iter().map(|(e, _)| e).collect(),
            generator: generator?,
            cost: cost?,
            penalties: penalties?,
            train: train?,
            constants: self.constant_values(),
        })
    }

    /// An error for each prior with learnable parameters that no penalty trains: only a
    /// penalty comparing codes with prior samples (Sinkhorn, MMD, sliced, exact) with a
    /// positive weight passes a gradient to them.
    fn learned_priors_trained(
        &mut self,
        latents: &[(ir::Latent, Span)],
        penalties: &[ir::Penalty],
    ) {
        for (l, span) in latents {
            let ir::Prior::Program(p) = &l.prior else {
                continue;
            };
            if p.params.is_empty() {
                continue;
            }
            let on: Vec<&ir::Penalty> = penalties
                .iter()
                .filter(|q| q.on == l.name || q.on.is_empty())
                .collect();
            let trains = |q: &&ir::Penalty| {
                q.weight > 0.0
                    && matches!(
                        q.kind,
                        ir::PenaltyKind::Sinkhorn { .. }
                            | ir::PenaltyKind::Mmd { .. }
                            | ir::PenaltyKind::Sliced { .. }
                            | ir::PenaltyKind::Exact { .. }
                    )
            };
            if on.iter().any(trains) {
                continue;
            }
            let why = match on.first() {
                None => "no penalty applies to it".to_string(),
                Some(q) if q.weight <= 0.0 => "its penalty's weight is 0".to_string(),
                Some(q) => format!(
                    "its `{}` penalty does not pass a gradient to the prior's samples",
                    q.kind.name()
                ),
            };
            self.err(msg::untrained_param(&l.name, &why).label(*span, "a prior with `param`s"));
        }
    }

    /// One clause of each kind (penalties, latents and named encoders may repeat), and an error
    /// for each duplicate and each missing clause.
    fn clauses_by_kind(&mut self, clauses: &'a [Clause]) -> HashMap<&'static str, &'a Clause> {
        // One clause of each kind (penalties may repeat).
        let mut by_kind: HashMap<&'static str, &'a Clause> = HashMap::new();
        for cl in clauses {
            let kw = cl.keyword_name();
            if kw == "penalty" || kw == "latent" {
                continue;
            }
            if let ClauseKind::Encoder(Some(_), _) = cl.kind {
                continue;
            }
            if let Some(prev) = by_kind.get(kw) {
                let d = msg::duplicate_clause(&format!("`{kw}` clauses"))
                    .label(cl.keyword, "second one here")
                    .label(prev.keyword, "first one here")
                    .help(if kw == "encoder" {
                        "keep one, or name the latent components and give each its own: `encoder what { ... }`"
                    } else {
                        "keep one of them"
                    });
                self.err(d);
            } else {
                by_kind.insert(kw, cl);
            }
        }
        let first_kw = clauses[0].keyword;
        let missing = |s: &mut Self, kw: &str, example: &str| {
            s.err(
                msg::missing_clause("the model", &format!("`{kw}` clause"))
                    .label(first_kw, format!("this model needs a `{kw}` clause"))
                    .help(format!("add one, for example: {example}")),
            );
        };
        let data_cl = by_kind.get("data").copied();
        let latent_cl = clauses
            .iter()
            .find(|c| matches!(c.kind, ClauseKind::Latent { .. }));
        let enc_cl = clauses
            .iter()
            .find(|c| matches!(c.kind, ClauseKind::Encoder(..)));
        let gen_cl = by_kind.get("generator").copied();
        if data_cl.is_none() {
            missing(self, "data", "`data mnist()`");
        }
        if latent_cl.is_none() {
            missing(self, "latent", "`latent R^8 ~ normal()`");
        }
        if enc_cl.is_none() {
            missing(
                self,
                "encoder",
                "`encoder { flatten linear(256) relu linear(8) }`",
            );
        }
        if gen_cl.is_none() {
            missing(
                self,
                "generator",
                "`generator { linear(256) relu linear(784) sigmoid reshape(1, 28, 28) }`",
            );
        }
        if !clauses
            .iter()
            .any(|c| matches!(c.kind, ClauseKind::Penalty { .. }))
        {
            missing(
                self,
                "penalty",
                "`penalty 10 * sinkhorn(epsilon = 0.1, iterations = 50)`",
            );
        }

        by_kind
    }

    /// The generator: latent coordinates to one example of the data's shape.
    fn generator(
        &mut self,
        c: &'a Clause,
        total_dim: Option<i64>,
        data: Option<&(ir::DataSpec, Span)>,
    ) -> Option<(Flow, Option<Shape>, Span)> {
        match &c.kind {
            ClauseKind::Generator(p) => {
                let input = total_dim.map(|d| vec![d]);
                self.role = Role::Generator;
                let mut flow = self.pipeline(p, input.clone());
                self.role = Role::Other;
                self.gaussian_placement(&mut flow, None, false);
                if let (Some(shape), Some((d, dspan))) = (&flow.shape, data) {
                    if shape != &d.shape {
                        let at = flow.spans.last().copied().unwrap_or(p.span);
                        let n: i64 = d.shape.iter().product();
                        let help = if d.shape.len() == 3 && shape.len() == 1 && shape[0] == n {
                            format!(
                                "add `reshape({})` at the end",
                                d.shape
                                    .iter()
                                    .map(|x| x.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        } else {
                            format!(
                                "the generator must produce one example of shape {}",
                                shape_str(&d.shape)
                            )
                        };
                        self.err(
                            msg::output_shape(
                                "the generator's output",
                                &format!("the data's shape {}", shape_str(&d.shape)),
                                &shape_str(shape),
                            )
                            .label(
                                at,
                                format!("the generator ends here with {}", shape_str(shape)),
                            )
                            .label(*dspan, format!("the data are {}", shape_str(&d.shape)))
                            .help(help),
                        );
                    } else {
                        self.generator_range(&flow, d, *dspan);
                    }
                }
                Some((flow, input, p.span))
            }
            _ => None,
        }
    }

    /// A warning when the generator's last activation cannot produce the data: outputs in (0, 1)
    /// for points with negative coordinates, a softmax or a unit vector for images.
    fn generator_range(&mut self, flow: &Flow, data: &ir::DataSpec, dspan: Span) {
        let last = flow.last_value_layer();
        let Some((layer, at)) = last else { return };
        let (name, range) = match layer.op {
            LayerOp::Sigmoid => ("sigmoid", "(0, 1)"),
            LayerOp::Relu => ("relu", "[0, inf)"),
            LayerOp::Softmax => ("softmax", "the simplex (non-negative, summing to 1)"),
            LayerOp::Normalize => ("normalize", "the unit sphere"),
            _ => return,
        };
        let (covers, data_range) = if data.is_image() {
            (
                !matches!(layer.op, LayerOp::Softmax | LayerOp::Normalize),
                "[0, 1] per pixel",
            )
        } else {
            (
                false,
                "about [-1, 1] per coordinate, negative values included",
            )
        };
        if covers {
            return;
        }
        self.diags.report(
            msg::generator_range(name, range, data_range)
                .label(*at, format!("outputs in {range}"))
                .label(dspan, format!("data in {data_range}"))
                .help("end the generator with a layer whose range covers the data: no activation (a `linear`) for points, `sigmoid` for images in [0, 1]"),
        );
    }

    /// A warning when the batch is larger than the training set (when its size is known here):
    /// training then uses the whole set in each step.
    fn batch_fits(&mut self, batch: i64, data: &ir::DataSpec, dspan: Span, train: Option<&Clause>) {
        let n = match data.source {
            DataSource::Rings { n, .. }
            | DataSource::GaussianGrid { n, .. }
            | DataSource::SwissRoll { n, .. }
            | DataSource::Tree { n, .. }
            | DataSource::Donut { n, .. }
            | DataSource::Shapes { n, .. } => n,
            DataSource::Idx { limit, .. } | DataSource::Cifar10 { limit, .. } if limit > 0 => limit,
            _ => return,
        };
        if batch <= n as i64 {
            return;
        }
        let set_at = train.and_then(|c| match &c.kind {
            ClauseKind::Train(settings) => settings
                .iter()
                .find(|(name, _)| name.name == "batch")
                .map(|(_, v)| v.span),
            _ => None,
        });
        let mut d = msg::batch_larger_than_data(batch, n).label(dspan, format!("{n} examples"));
        d = match set_at {
            Some(s) => d
                .label(s, format!("batch {batch}"))
                .help(format!("set `batch {n}` or less, or use more data")),
            None => d.help(format!(
                "the default batch is {batch}; set `batch {n}` or less in `train {{ ... }}`, or use more data"
            )),
        };
        self.err(d);
    }

    pub(super) fn size_check(&mut self, total: u128, at: Span) {
        if total > MAX_ELEMENTS as u128 {
            self.err(
                msg::too_large(&format!(
                    "the model has {} parameters",
                    ir::thousands(total as u64)
                ))
                .label(at, "in this model")
                .help(format!(
                    "at most {} parameters fit; use smaller layers",
                    ir::thousands(MAX_ELEMENTS as u64)
                )),
            );
        }
    }

    // ---- clauses -------------------------------------------------------------------------------
}
