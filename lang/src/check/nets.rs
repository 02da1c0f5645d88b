//! Networks: pipelines, net calls expanded with their arguments, built-in and component layers.

use super::*;
use crate::catalogue::*;

impl<'a> Checker<'a> {
    pub(super) fn pipeline(&mut self, p: &Pipeline, input: Option<Shape>) -> Flow {
        let mut flow = Flow {
            shape: input,
            layers: vec![],
            spans: vec![],
            origin: vec![],
            stack: vec![],
        };
        self.expand(p, &Env::new(), &mut flow, None);
        if p.layers.is_empty() {
            self.err(
                msg::missing_clause("this pipeline", "layers")
                    .label(p.span, "empty")
                    .help("write at least one layer, e.g. `linear(8)`"),
            );
            flow.shape = None;
        }
        flow
    }

    /// Expands a pipeline into layers, following nets; `site` is the outermost call's span.
    pub(super) fn expand(&mut self, p: &Pipeline, env: &Env, flow: &mut Flow, site: Option<Span>) {
        self.expand_calls(&p.layers, env, flow, site);
    }

    /// Expands layer and net calls in order into `flow`.
    fn expand_calls(&mut self, calls: &[Call], env: &Env, flow: &mut Flow, site: Option<Span>) {
        for call in calls {
            if flow.layers.len() > super::MAX_LAYERS && flow.shape.is_some() {
                self.err(
                    msg::too_large(&format!(
                        "this network expands into more than {} layers",
                        super::MAX_LAYERS
                    ))
                    .label(site.unwrap_or(call.span), "still expanding here")
                    .help("networks of this tool are at most a few hundred layers deep; repeat fewer times"),
                );
                flow.shape = None;
                return;
            }
            if let Some(why) = crate::syntax::budget::stop() {
                if let Some(d) = crate::syntax::budget_error(why, call.span) {
                    self.err(d);
                }
                flow.shape = None;
                return;
            }
            let at = site.unwrap_or(call.span);
            let name = name_of(call);
            if matches!(name, "residual" | "concat") {
                self.block(call, env, flow, site);
                continue;
            }
            if name == "repeat" {
                self.repeat(call, env, flow, site);
                continue;
            }
            // A user's net of a layer's name is used in its place, except inside the standard
            // library, whose names always mean the built-ins.
            let user_net = self.nets.contains_key(name) && !self.program.is_std(call.span.file);
            if find(LAYERS, name).is_some() && !user_net {
                self.layer(call, env, flow, at);
                continue;
            }
            let Some(net) = self.nets.get(name).copied() else {
                let mut cands = names(LAYERS);
                let nets: Vec<String> = self.nets.keys().cloned().collect();
                cands.extend(nets.iter().map(String::as_str));
                cands.sort();
                let help = stdlib_hint("net", name)
                    .or_else(|| known_as(name, &cands))
                    .unwrap_or_else(|| unknown_help(name, "layers and nets", &cands));
                self.err(
                    msg::unknown(Unknown::Layer, name)
                        .label(call.name.span, "not a layer")
                        .help(help),
                );
                flow.shape = None;
                continue;
            };
            if flow.stack.iter().any(|n| n == name) {
                self.err(
                    msg::recursive_net(name)
                        .label(call.span, "recursive use")
                        .help(format!("a net expands into layers, so it cannot contain itself; chain: {} -> {name}", flow.stack.join(" -> "))),
                );
                flow.shape = None;
                continue;
            }
            let Some(inner_env) = self.bind_net(call, net, env) else {
                flow.shape = None;
                continue;
            };
            flow.stack.push(name.to_string());
            flow.origin.push(name.to_string());
            let params = net.params.iter().map(|p| p.name.name.clone()).collect();
            self.expanding.push((name.to_string(), call.span, params));
            self.expand(&net.body, &inner_env, flow, Some(at));
            self.expanding.pop();
            flow.origin.pop();
            flow.stack.pop();
        }
    }

    /// The layer and net calls given to a block as its arguments (`skip` leading ones are
    /// read by the caller); None after reporting what else was given.
    fn block_calls(&mut self, call: &Call, skip: usize) -> Option<Vec<Call>> {
        let name = name_of(call);
        let example = match name {
            "concat" => "concat(conv2d(8, kernel = 1), conv2d(8, kernel = 3, padding = 1))",
            "repeat" => "repeat(2, conv2d(16, kernel = 3, padding = 1), relu)",
            _ => "residual(conv2d(16, kernel = 3, padding = 1), relu)",
        };
        let mut calls = vec![];
        for a in call.args.iter().skip(skip) {
            match (&a.name, &a.value.kind) {
                (None, ExprKind::Call(c)) => calls.push(c.clone()),
                (Some(n), _) => {
                    self.err(
                        msg::unknown_parameter(name, &n.name)
                            .label(n.span, "named argument")
                            .help(format!(
                                "`{name}` takes layers and nets only, e.g. `{example}`"
                            )),
                    );
                    return None;
                }
                (None, _) => {
                    self.err(
                        msg::arg_type(
                            &format!("an argument of `{name}`"),
                            "a layer or net",
                            "a value",
                        )
                        .label(a.value.span, "not a layer")
                        .help(format!("`{name}` takes layers and nets, e.g. `{example}`")),
                    );
                    return None;
                }
            }
        }
        if calls.is_empty() || (name == "concat" && calls.len() < 2) {
            let need = if name == "concat" {
                "at least two branches"
            } else {
                "layers"
            };
            self.err(
                msg::missing_argument(name, need)
                    .label(call.span, "here")
                    .help(format!("e.g. `{example}`")),
            );
            return None;
        }
        Some(calls)
    }

    /// `repeat(n, a, b, ...)`: the layers and nets given, n times in a row (a network's depth
    /// as a parameter); n = 0 adds nothing.
    fn repeat(&mut self, call: &Call, env: &Env, flow: &mut Flow, site: Option<Span>) {
        // 0 is allowed: `repeat(depth - 1, ...)` in a net of depth 1 adds nothing.
        let spec = p(
            "times",
            Ty::Int,
            REQ,
            NonNegative,
            "a count cannot be negative",
        );
        let times = match call.args.first() {
            Some(a) if a.name.is_none() => self
                .eval(&a.value, env)
                .and_then(|v| self.typed(v, &spec, a.value.span, "repeat")),
            _ => {
                self.err(
                    msg::missing_argument("repeat", "a number of times first")
                        .label(call.span, "here")
                        .help("e.g. `repeat(2, conv2d(16, kernel = 3, padding = 1), relu)`"),
                );
                None
            }
        };
        let (Some(Value::Int(times)), Some(calls)) = (times, self.block_calls(call, 1)) else {
            flow.shape = None;
            return;
        };
        if times > super::MAX_LAYERS as i64 {
            let at = call.args.first().map_or(call.span, |a| a.value.span);
            self.err(
                msg::too_large(&format!(
                    "`repeat({times}, ...)` would expand into at least {times} layers (a network holds at most {})",
                    super::MAX_LAYERS
                ))
                .label(at, "too many repetitions")
                .help("networks of this tool are at most a few hundred layers deep; repeat fewer times"),
            );
            flow.shape = None;
            return;
        }
        for _ in 0..times {
            if flow.shape.is_none() {
                return;
            }
            self.expand_calls(&calls, env, flow, Some(site.unwrap_or(call.span)));
        }
    }

    /// `residual(a, b, ...)`: x + (a then b ...)(x), with a projection of x when the body
    /// changes the shape; `concat(a, b, ...)`: each argument a branch on the same input, the
    /// outputs joined along the first axis. Arguments are layers or net calls.
    fn block(&mut self, call: &Call, env: &Env, flow: &mut Flow, site: Option<Span>) {
        let at = site.unwrap_or(call.span);
        let Some(calls) = self.block_calls(call, 0) else {
            flow.shape = None;
            return;
        };
        let Some(input) = flow.shape.clone() else {
            return;
        };
        let built = if name_of(call) == "residual" {
            self.residual_op(&calls, env, &input, flow, (site, at))
        } else {
            self.concat_op(&calls, env, &input, flow, (site, at))
        };
        let Some((op, output, params)) = built else {
            flow.shape = None;
            return;
        };
        flow.layers.push(ir::Layer {
            op,
            input,
            output: output.clone(),
            params,
            origin: flow.origin.clone(),
            init: None,
        });
        flow.spans.push(at);
        self.record_site(call, at, flow);
        flow.shape = Some(output);
    }

    /// `calls` expanded on `input` into a flow of their own, inside `outer`'s nets.
    fn sub_flow(
        &mut self,
        calls: &[Call],
        env: &Env,
        input: &Shape,
        outer: &Flow,
        (site, at): (Option<Span>, Span),
        block: &str,
    ) -> Option<Flow> {
        let mut f = Flow {
            shape: Some(input.clone()),
            layers: vec![],
            spans: vec![],
            origin: outer.origin.clone(),
            stack: outer.stack.clone(),
        };
        self.expand_calls(calls, env, &mut f, site);
        (f.shape.is_some() && self.block_layers_allowed(block, &f, at)).then_some(f)
    }

    /// A residual block's IR, output shape and parameter count.
    fn residual_op(
        &mut self,
        calls: &[Call],
        env: &Env,
        input: &Shape,
        flow: &Flow,
        (site, at): (Option<Span>, Span),
    ) -> Option<(LayerOp, Shape, u64)> {
        let body = self.sub_flow(calls, env, input, flow, (site, at), "residual")?;
        let out = body.shape.clone()?;
        let projection = self.projection(input, &out, at, flow)?;
        let params = body.layers.iter().map(|l| l.params).sum::<u64>()
            + projection.as_ref().map_or(0, |p| p.params);
        Some((
            LayerOp::Residual {
                body: body.layers,
                projection: projection.map(Box::new),
            },
            out,
            params,
        ))
    }

    /// A concatenation's IR, output shape and parameter count; branches whose outputs do not
    /// fit together are reported with each one's output.
    fn concat_op(
        &mut self,
        calls: &[Call],
        env: &Env,
        input: &Shape,
        flow: &Flow,
        (site, at): (Option<Span>, Span),
    ) -> Option<(LayerOp, Shape, u64)> {
        let mut branches = vec![];
        for c in calls {
            let b = self.sub_flow(
                std::slice::from_ref(c),
                env,
                input,
                flow,
                (site, at),
                "concat",
            )?;
            branches.push((site.unwrap_or(c.span), b.shape.clone()?, b.layers));
        }
        let first = branches[0].1.clone();
        let agree = branches
            .iter()
            .all(|(_, o, _)| o.len() == first.len() && o[1..] == first[1..]);
        if !agree {
            let outs: Vec<String> = branches.iter().map(|(_, o, _)| shape_str(o)).collect();
            let mut d = msg::shape_mismatch(
                "the branches of `concat`",
                "outputs that agree in all but their first size",
                &outs.join(" and "),
            );
            for (k, (span, o, _)) in branches.iter().enumerate() {
                d = d.label(*span, format!("branch {}: output {}", k + 1, shape_str(o)));
            }
            self.err(d.help("down-sample or flatten the branches to the same size"));
            return None;
        }
        let mut out = first;
        out[0] = branches.iter().map(|(_, o, _)| o[0]).sum();
        let params = branches
            .iter()
            .flat_map(|(_, _, ls)| ls.iter().map(|l| l.params))
            .sum();
        let branches = branches.into_iter().map(|(_, _, ls)| ls).collect();
        Some((LayerOp::Concat { branches }, out, params))
    }

    /// Layers that read beside their input (`gaussian`, `select`, `place`, `crop`) stay outside
    /// blocks.
    fn block_layers_allowed(&mut self, block: &str, f: &Flow, at: Span) -> bool {
        let inner = f.layers.iter().zip(&f.spans).find(|(l, _)| {
            matches!(
                l.op,
                LayerOp::Gaussian { .. }
                    | LayerOp::Select { .. }
                    | LayerOp::Place { .. }
                    | LayerOp::Crop { .. }
            )
        });
        let Some((l, span)) = inner else {
            return true;
        };
        let what = l.op.to_string();
        let what = what.split('(').next().unwrap_or_default().to_string();
        self.err(
            msg::layer_input(
                &what,
                "a place in the pipeline itself",
                &format!("one inside `{block}`"),
            )
            .label(*span, "inside a block")
            .label(at, format!("the `{block}`"))
            .help(format!("move `{what}` out of the `{block}`")),
        );
        false
    }

    /// The projection of a residual block's input onto its body's output shape: none when they
    /// agree, a 1x1 convolution (stride: the body's down-sampling) for images, a linear map
    /// for vectors.
    fn projection(
        &mut self,
        input: &Shape,
        out: &Shape,
        at: Span,
        flow: &Flow,
    ) -> Option<Option<ir::Layer>> {
        if input == out {
            return Some(None);
        }
        let op = match (input.as_slice(), out.as_slice()) {
            (&[c, h, w], &[oc, oh, ow])
                if oh <= h && h % oh == 0 && h / oh == w / ow && w % ow == 0 =>
            {
                let stride = h / oh;
                LayerOp::Conv2d {
                    input: c,
                    output: oc,
                    kernel: 1,
                    stride,
                    padding: 0,
                    bias: true,
                    dilation: 1,
                    groups: 1,
                }
            }
            (&[f], &[of]) => LayerOp::Linear {
                input: f,
                output: of,
                bias: true,
            },
            _ => {
                self.err(
                    msg::shape_mismatch(
                        "the output of `residual`'s body",
                        &format!(
                            "a shape its input {} can be projected to (the same rank; for images the same size, or the size divided by a whole stride)",
                            shape_str(input)
                        ),
                        &shape_str(out),
                    )
                    .label(at, format!("input {}, body output {}", shape_str(input), shape_str(out)))
                    .help("keep the body's size, or down-sample by a whole factor in both directions"),
                );
                return None;
            }
        };
        let params = match &op {
            LayerOp::Conv2d { input, output, .. } | LayerOp::Linear { input, output, .. } => {
                (*input as u64) * (*output as u64) + *output as u64
            }
            _ => 0,
        };
        Some(Some(ir::Layer {
            op,
            input: input.clone(),
            output: out.clone(),
            params,
            origin: flow.origin.clone(),
            init: None,
        }))
    }

    pub(super) fn bind_net(&mut self, call: &Call, net: &NetDef, env: &Env) -> Option<Env> {
        let names: Vec<&str> = net.params.iter().map(|p| p.name.name.as_str()).collect();
        let required: Vec<bool> = net.params.iter().map(|p| p.default.is_none()).collect();
        let sig = format!(
            "{}({})",
            net.name.name,
            net.params
                .iter()
                .map(|p| if p.default.is_some() {
                    format!("{} = ...", p.name.name)
                } else {
                    p.name.name.clone()
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let slots = self.match_args(call, &names, &required, &sig, "net")?;
        let mut out = Env::new();
        let mut ok = true;
        for (i, slot) in slots.iter().enumerate() {
            let v = match slot {
                Some(arg) => self.eval(&arg.value, env),
                None => net.params[i]
                    .default
                    .as_ref()
                    .and_then(|e| self.eval(e, &out)),
            };
            match v {
                Some(v) => {
                    out.insert(names[i].to_string(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The component a component layer names first (`place(where, ...)`).
    fn component_arg(&mut self, call: &Call) -> Option<Ident> {
        let name = name_of(call);
        let usage = match name {
            "select" => "select(COMPONENT)",
            "place" => "place(COMPONENT, size = 64, shift = 0.3, zoom = 0.2)",
            _ => "crop(COMPONENT, size = 28, shift = 0.3, zoom = 0.2)",
        };
        match call.args.first() {
            Some(Arg {
                name: None,
                value:
                    Expr {
                        kind: ExprKind::Call(c),
                        ..
                    },
                ..
            }) if !c.parens => Some(c.name.clone()),
            _ => {
                self.err(
                    msg::missing_argument(name, "a latent component first")
                        .label(call.span, "no component named")
                        .help(format!("write `{usage}`")),
                );
                None
            }
        }
    }

    /// Whether component layer `name` may use component `index` here: `select` and `place` in
    /// the generator, `crop` in an encoder after that component's own; `place` and `crop` need a
    /// position of 3 coordinates.
    fn component_usable(&mut self, name: &str, comp: &Ident, index: usize, at: Span) -> bool {
        let (cname, space, lspan) = self.components[index].clone();
        let wrong_place = match (&self.role, name) {
            (Role::Generator, "select" | "place") => None,
            (Role::Encoder(done, _), "crop") if done.contains(&cname) => None,
            // A component without any encoder is reported once, as such (missing_clause).
            (Role::Encoder(_, declared), "crop") if !declared.contains(&cname) => return false,
            (Role::Encoder(..), "crop") => Some((
                format!("`{cname}` encoded first"),
                format!("an encoder placed before `encoder {cname}`"),
                format!("put `encoder {cname} {{ ... }}` before this encoder"),
            )),
            (_, "crop") => Some((
                "the data".to_string(),
                "the latent code (in the generator)".to_string(),
                "`crop` cuts a window out of the data in an encoder".to_string(),
            )),
            _ => Some((
                "the latent code".to_string(),
                "the data (in an encoder)".to_string(),
                format!("`{name}` reads the code, so it belongs in the generator"),
            )),
        };
        if let Some((need, got, help)) = wrong_place {
            self.err(
                msg::layer_input(&format!("{name}({cname})"), &need, &got)
                    .label(at, "here")
                    .help(help),
            );
            return false;
        }
        if name != "select" && space.dim() != 3 {
            self.err(
                msg::latent_shape(
                    &format!("component `{cname}` of `{name}`"),
                    "3 coordinates (x, y, log-scale)",
                    &format!("{} coordinates", space.dim()),
                )
                .label(comp.span, "not a position")
                .label(lspan, format!("{space}")),
            );
            return false;
        }
        true
    }

    /// `select(c)`, `place(c, size)` (generator) and `crop(c, size)` (encoder): layers that read
    /// the latent component `c`.
    pub(super) fn component_layer(&mut self, call: &Call, env: &Env, flow: &mut Flow, at: Span) {
        let name = name_of(call);
        let Some(comp) = self.component_arg(call) else {
            flow.shape = None;
            return;
        };
        let rest = Call {
            args: call.args[1..].to_vec(),
            ..call.clone()
        };
        let params = if name == "select" { &[][..] } else { PLACEMENT };
        let Some(b) = self.bind(&rest, params, env) else {
            flow.shape = None;
            return;
        };
        if self.role == Role::Library {
            flow.shape = None;
            return;
        }
        let index = self.components.iter().position(|(n, ..)| *n == comp.name);
        let Some(index) = index else {
            self.unknown_component(&comp, "not a component");
            flow.shape = None;
            return;
        };
        let (cname, space, _) = self.components[index].clone();
        let offset: i64 = self.components[..index]
            .iter()
            .map(|(_, s, _)| s.dim())
            .sum();
        if !self.component_usable(name, &comp, index, at) {
            flow.shape = None;
            return;
        }
        let Some(input) = flow.shape.clone() else {
            return;
        };
        let (op, output) = match name {
            "select" => (
                LayerOp::Select {
                    component: cname,
                    offset,
                    len: space.dim(),
                },
                vec![space.dim()],
            ),
            _ => {
                if input.len() != 3 {
                    self.err(
                        msg::layer_input(
                            name,
                            "an image [channels, height, width]",
                            &shape_str(&input),
                        )
                        .label(at, format!("input {}", shape_str(&input)))
                        .help("reshape to an image before it"),
                    );
                    flow.shape = None;
                    return;
                }
                let size = b.int("size");
                let op = if name == "place" {
                    LayerOp::Place {
                        component: cname,
                        offset,
                        size,
                        shift: b.real("shift"),
                        zoom: b.real("zoom"),
                    }
                } else {
                    LayerOp::Crop {
                        component: cname,
                        index,
                        size,
                        shift: b.real("shift"),
                        zoom: b.real("zoom"),
                    }
                };
                (op, vec![input[0], size, size])
            }
        };
        flow.layers.push(ir::Layer {
            op,
            input,
            output: output.clone(),
            params: 0,
            origin: flow.origin.clone(),
            init: None,
        });
        flow.spans.push(at);
        self.record_site(call, at, flow);
        flow.shape = Some(output);
    }

    /// `reshape(64, 7, 7)` / `unflatten(...)`: positive sizes, positional only.
    fn reshape_op(&mut self, call: &Call, env: &Env) -> Option<LayerOp> {
        let name = name_of(call);
        let mut dims = vec![];
        for a in &call.args {
            if let Some(n) = &a.name {
                self.err(
                    msg::unknown_parameter(name, &n.name)
                    .label(n.span, "named argument")
                    .help(format!("`{name}` takes sizes only: write them in order, e.g. `{name}(64, 7, 7)`")),
                );
                return None;
            }
            let spec = p("size", Ty::Int, REQ, Positive, SIZE);
            match self
                .eval(&a.value, env)
                .and_then(|v| self.typed(v, &spec, a.value.span, name))
            {
                Some(Value::Int(d)) => dims.push(d),
                _ => return None,
            }
        }
        if dims.is_empty() {
            self.err(
                msg::missing_argument(name, "the target sizes")
                    .label(call.span, "no sizes")
                    .help(format!("e.g. `{name}(64, 7, 7)`")),
            );
            return None;
        }
        Some(LayerOp::Reshape { shape: dims })
    }

    /// A built-in layer's IR form from its bound arguments; the sizes that depend on the input
    /// are filled in by shape inference.
    // long: one arm per built-in layer, each reading its bound parameters.
    fn layer_op(&mut self, call: &Call, env: &Env) -> Option<(LayerOp, Option<ir::Init>)> {
        let name = name_of(call);
        let params = find(LAYERS, name).map_or(&[][..], |b| b.params);
        let b = self.bind(call, params, env)?;
        // "model" (the default) names no initialisation: the model's applies.
        let init = params
            .iter()
            .any(|p| p.name == "init")
            .then(|| ir::Init::from_name(&b.str("init")))
            .flatten();
        let op = match name {
            "linear" => LayerOp::Linear {
                input: 0,
                output: b.int("out"),
                bias: b.bool("bias"),
            },
            "conv2d" => LayerOp::Conv2d {
                input: 0,
                output: b.int("out"),
                kernel: b.int("kernel"),
                stride: b.int("stride"),
                padding: b.int("padding"),
                bias: b.bool("bias"),
                dilation: b.int("dilation"),
                groups: b.int("groups"),
            },
            "conv_transpose2d" => LayerOp::ConvTranspose2d {
                input: 0,
                output: b.int("out"),
                kernel: b.int("kernel"),
                stride: b.int("stride"),
                padding: b.int("padding"),
                output_padding: b.int("output_padding"),
                bias: b.bool("bias"),
                dilation: b.int("dilation"),
                groups: b.int("groups"),
            },
            "batch_norm" => LayerOp::BatchNorm { features: 0 },
            "relu" => LayerOp::Relu,
            "leaky_relu" => LayerOp::LeakyRelu {
                slope: b.real("slope"),
            },
            "tanh" => LayerOp::Tanh,
            "sigmoid" => LayerOp::Sigmoid,
            "softmax" => LayerOp::Softmax,
            "flatten" => LayerOp::Flatten,
            "identity" => LayerOp::Identity,
            "gelu" => LayerOp::Gelu,
            "silu" => LayerOp::Silu,
            "elu" => LayerOp::Elu {
                alpha: b.real("alpha"),
            },
            "softplus" => LayerOp::Softplus {
                beta: b.real("beta"),
                threshold: b.real("threshold"),
            },
            "dropout" => LayerOp::Dropout { p: b.real("p") },
            "layer_norm" => LayerOp::LayerNorm { shape: vec![] },
            "group_norm" => LayerOp::GroupNorm {
                groups: b.int("groups"),
                channels: 0,
            },
            "avg_pool2d" | "max_pool2d" => {
                let kernel = b.int("kernel");
                // PyTorch's default stride is the kernel size.
                let stride = match b.int("stride") {
                    0 => kernel,
                    s => s,
                };
                let padding = b.int("padding");
                if name == "avg_pool2d" {
                    LayerOp::AvgPool2d {
                        kernel,
                        stride,
                        padding,
                    }
                } else {
                    LayerOp::MaxPool2d {
                        kernel,
                        stride,
                        padding,
                    }
                }
            }
            "adaptive_avg_pool2d" => LayerOp::AdaptiveAvgPool2d {
                size: b.int("size"),
            },
            "upsample" => LayerOp::Upsample {
                scale: b.int("scale"),
                mode: resample(&b.str("mode")),
            },
            "interpolate" => LayerOp::Interpolate {
                size: b.int("size"),
                mode: resample(&b.str("mode")),
            },
            "gaussian" => LayerOp::Gaussian {
                input: 0,
                output: b.int("out"),
            },
            "normalize" => LayerOp::Normalize,
            "torus" => LayerOp::Torus,
            "expmap0" => LayerOp::Expmap0 {
                c: b.real("curvature"),
            },
            // Every other name of the catalogue is handled before (component layers, reshape);
            // check::tests compiles every layer, so this is unreachable from any input.
            other => panic!("internal error: layer `{other}` has no IR form"),
        };
        Some((op, init))
    }

    /// Remembers the layer just added to `flow` with its call and site (for editors' hover).
    fn record_site(&mut self, call: &Call, at: Span, flow: &Flow) {
        if let Some(layer) = flow.layers.last() {
            self.sites.push(LayerSite {
                call: call.span,
                site: at,
                layer: layer.clone(),
            });
        }
    }

    pub(super) fn layer(&mut self, call: &Call, env: &Env, flow: &mut Flow, at: Span) {
        let name = name_of(call);
        if matches!(name, "select" | "place" | "crop") {
            self.component_layer(call, env, flow, at);
            return;
        }
        let op = if name == "reshape" || name == "unflatten" {
            self.reshape_op(call, env).map(|op| (op, None))
        } else {
            self.layer_op(call, env)
        };
        let Some((op, init)) = op else {
            flow.shape = None;
            return;
        };
        let Some(input) = flow.shape.clone() else {
            return;
        };
        match infer(op, &input) {
            Ok((op, output, params)) => {
                flow.layers.push(ir::Layer {
                    op,
                    input,
                    output: output.clone(),
                    params,
                    origin: flow.origin.clone(),
                    init,
                });
                flow.spans.push(at);
                self.record_site(call, at, flow);
                flow.shape = Some(output);
            }
            Err((d, help)) => {
                let input = shape_str(&input);
                let mut d = match flow.origin.last() {
                    Some(net) => d.label(at, format!("input {input}, in net `{net}`")),
                    None => d.label(at, format!("input {input}")),
                };
                if at != call.span && at.file == call.span.file {
                    d = d.label(call.span, "this layer of the net");
                }
                self.err(d.help(help));
                flow.shape = None;
            }
        }
    }

    // ---- arguments -----------------------------------------------------------------------------
}

/// A bound `mode` (checked against the catalogue's choices) as the IR's resampling mode.
fn resample(mode: &str) -> ir::Resample {
    if mode == "bilinear" {
        ir::Resample::Bilinear
    } else {
        ir::Resample::Nearest
    }
}
