//! The `train` clause: optimiser, batch, epochs, seed.

use std::collections::HashMap;

use super::*;
use crate::catalogue::*;

impl<'a> Checker<'a> {
    pub(super) fn train(&mut self, cl: Option<&Clause>) -> Option<ir::TrainConfig> {
        let mut t = ir::TrainConfig {
            optimizer: ir::Adam {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
            },
            batch: 128,
            epochs: 10,
            seed: 0,
        };
        let Some(cl) = cl else { return Some(t) };
        let ClauseKind::Train(settings) = &cl.kind else {
            return None;
        };
        let mut ok = true;
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for (name, value) in settings {
            if let Some(prev) = seen.insert(name.name.as_str(), name.span) {
                self.err(
                    Diag::error(
                        Code::DuplicateArgument,
                        format!("`{}` is set twice", name.name),
                    )
                    .label(name.span, "set again here")
                    .label(prev, "first set here"),
                );
                ok = false;
                continue;
            }
            match name.name.as_str() {
                "optimizer" => {
                    let ExprKind::Call(call) = &value.kind else {
                        self.err(
                            Diag::error(
                                Code::ArgType,
                                "the optimizer is written as a call, e.g. `adam(lr = 1e-3)`",
                            )
                            .label(value.span, "not an optimizer"),
                        );
                        ok = false;
                        continue;
                    };
                    match self
                        .lookup(call, OPTIMIZERS, Code::UnknownOptimizer, "optimizers")
                        .and_then(|ps| self.bind(call, ps, &Env::new()))
                    {
                        Some(b) => {
                            t.optimizer = ir::Adam {
                                lr: b.real("lr"),
                                beta1: b.real("beta1"),
                                beta2: b.real("beta2"),
                            }
                        }
                        None => ok = false,
                    }
                }
                s @ ("batch" | "epochs" | "seed") => {
                    let range = if s == "seed" { NonNegative } else { Positive };
                    let sname: &'static str = match s {
                        "batch" => "batch",
                        "epochs" => "epochs",
                        _ => "seed",
                    };
                    let spec = p(
                        sname,
                        Ty::Int,
                        REQ,
                        range,
                        if s == "seed" {
                            "seeds are non-negative integers"
                        } else {
                            SIZE
                        },
                    );
                    match self
                        .eval(value, &Env::new())
                        .and_then(|v| self.typed(v, &spec, value.span, s))
                    {
                        Some(Value::Int(v)) => match s {
                            "batch" => t.batch = v,
                            "epochs" => t.epochs = v,
                            _ => t.seed = v,
                        },
                        _ => ok = false,
                    }
                }
                other => {
                    self.err(
                        Diag::error(
                            Code::UnknownSetting,
                            format!("unknown training setting `{other}`"),
                        )
                        .label(name.span, "not a setting")
                        .help(unknown_help(other, "settings", SETTINGS)),
                    );
                    ok = false;
                }
            }
        }
        if t.batch < 2 && ok {
            let span = seen.get("batch").copied().unwrap_or(cl.keyword);
            self.err(
                Diag::error(Code::InvalidValue, "a batch needs at least 2 examples")
                    .label(span, "too small")
                    .help("the latent penalty compares a batch of codes with a batch of prior samples"),
            );
            ok = false;
        }
        ok.then_some(t)
    }

    // ---- pipelines -----------------------------------------------------------------------------
}
