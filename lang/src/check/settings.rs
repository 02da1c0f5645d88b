//! The `train` clause: optimiser, batch, epochs, seed.

use std::collections::HashMap;

use super::*;
use crate::catalogue::*;

impl<'a> Checker<'a> {
    pub(super) fn train(&mut self, cl: Option<&Clause>) -> Option<ir::TrainConfig> {
        let mut t = default_train();
        let Some(cl) = cl else { return Some(t) };
        let ClauseKind::Train(settings) = &cl.kind else {
            return None;
        };
        let mut ok = true;
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for (name, value) in settings {
            if let Some(prev) = seen.insert(name.name.as_str(), name.span) {
                self.err(
                    msg::duplicate_argument(&name.name)
                        .label(name.span, "given again here")
                        .label(prev, "first given here"),
                );
                ok = false;
                continue;
            }
            let set = match name.name.as_str() {
                "optimizer" => self.optimizer(value).map(|o| t.optimizer = o),
                s @ ("batch" | "epochs" | "seed") => self.int_setting(s, value).map(|v| match s {
                    "batch" => t.batch = v,
                    "epochs" => t.epochs = v,
                    _ => t.seed = v,
                }),
                "init" => self.init_setting(value).map(|i| t.init = i),
                other => {
                    self.err(
                        msg::unknown(Unknown::Setting, other)
                            .label(name.span, "not a setting")
                            .help(unknown_help(other, "settings", SETTINGS)),
                    );
                    None
                }
            };
            ok &= set.is_some();
        }
        if t.batch < 2 && ok {
            let span = seen.get("batch").copied().unwrap_or(cl.keyword);
            self.err(
                msg::invalid_value("`batch`", "at least 2", &t.batch.to_string())
                    .label(span, "too small")
                    .help("the latent penalty compares a batch of codes with a batch of prior samples"),
            );
            ok = false;
        }
        ok.then_some(t)
    }

    /// `optimizer adam(...)`.
    fn optimizer(&mut self, value: &Expr) -> Option<ir::Adam> {
        let ExprKind::Call(call) = &value.kind else {
            self.err(
                msg::arg_type("the optimizer", "a call", "a value")
                    .label(value.span, "not an optimizer")
                    .help("write it as a call, e.g. `adam(lr = 1e-3)`"),
            );
            return None;
        };
        let params = self.lookup(call, OPTIMIZERS, Unknown::Optimizer, "optimizers")?;
        let b = self.bind(call, params, &Env::new())?;
        Some(ir::Adam {
            lr: b.real("lr"),
            beta1: b.real("beta1"),
            beta2: b.real("beta2"),
        })
    }

    /// `init "NAME"`, checked against [`TRAIN_SETTINGS`].
    fn init_setting(&mut self, value: &Expr) -> Option<ir::Init> {
        let spec = TRAIN_SETTINGS.iter().find(|p| p.name == "init")?;
        match self
            .eval(value, &Env::new())
            .and_then(|v| self.typed(v, spec, value.span, "train"))
        {
            Some(Value::Str(s)) => ir::Init::from_name(&s),
            _ => None,
        }
    }

    /// `batch N`, `epochs N`, `seed N`, checked against [`TRAIN_SETTINGS`].
    fn int_setting(&mut self, name: &str, value: &Expr) -> Option<i64> {
        let spec = TRAIN_SETTINGS.iter().find(|p| p.name == name)?;
        match self
            .eval(value, &Env::new())
            .and_then(|v| self.typed(v, spec, value.span, "train"))
        {
            Some(Value::Int(v)) => Some(v),
            _ => None,
        }
    }

    // ---- pipelines -----------------------------------------------------------------------------
}

/// The training settings when the file gives none: the catalogue's defaults.
fn default_train() -> ir::TrainConfig {
    let adam = find(OPTIMIZERS, "adam").map_or(&[][..], |b| b.params);
    let int = |name| default_int(TRAIN_SETTINGS, name).unwrap_or_default();
    let real = |name| default_real(adam, name).unwrap_or_default();
    ir::TrainConfig {
        optimizer: ir::Adam {
            lr: real("lr"),
            beta1: real("beta1"),
            beta2: real("beta2"),
        },
        batch: int("batch"),
        epochs: int("epochs"),
        seed: int("seed"),
        init: ir::Init::default(),
    }
}
