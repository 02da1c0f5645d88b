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
        for call in &p.layers {
            let at = site.unwrap_or(call.span);
            let name = name_of(call);
            if find(LAYERS, name).is_some() {
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
            self.expand(&net.body, &inner_env, flow, Some(at));
            flow.origin.pop();
            flow.stack.pop();
        }
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
