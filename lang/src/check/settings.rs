//! The `train` clause: optimiser, schedule, validation, batch, epochs, seed, init, precision.

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
                "schedule" => self.schedule(value).map(|s| t.schedule = s),
                "validation" => self.validation(value).map(|v| t.validation = Some(v)),
                s @ ("batch" | "epochs" | "seed" | "images_every") => {
                    self.int_setting(s, value).map(|v| match s {
                        "batch" => t.batch = v,
                        "epochs" => t.epochs = v,
                        "images_every" => t.images_every = v,
                        _ => t.seed = v,
                    })
                }
                s @ ("init" | "precision") => self.str_setting(s, value).map(|v| match s {
                    "init" => t.init = ir::Init::from_name(&v).unwrap_or_default(),
                    _ => {
                        t.precision = if v == "bf16" {
                            ir::Precision::Bf16
                        } else {
                            ir::Precision::Float32
                        }
                    }
                }),
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
        let call = self.setting_call(value, "the optimizer", "adam(lr = 1e-3)")?;
        let params = self.lookup(call, OPTIMIZERS, Unknown::Optimizer, "optimizers")?;
        let b = self.bind(call, params, &Env::new())?;
        Some(adam(&b))
    }

    /// `schedule cosine(...)`, one of [`SCHEDULES`].
    fn schedule(&mut self, value: &Expr) -> Option<ir::LrSchedule> {
        let call = self.setting_call(value, "the schedule", "cosine(warmup = 100)")?;
        let params = self.lookup(call, SCHEDULES, Unknown::Schedule, "schedules")?;
        let b = self.bind(call, params, &Env::new())?;
        let kind = match call.name.name.as_str() {
            "step" => ir::ScheduleKind::Step {
                every: b.int("every"),
                factor: b.real("factor"),
            },
            "cosine" => ir::ScheduleKind::Cosine { min: b.real("min") },
            "exponential" => ir::ScheduleKind::Exponential {
                factor: b.real("factor"),
            },
            _ => ir::ScheduleKind::Constant,
        };
        // Legal, but a schedule is there to lower the rate: a factor above 1 compounds upwards.
        let rises = match kind {
            ir::ScheduleKind::Step { factor, every } if factor > 1.0 => Some(format!(
                "it multiplies it by {} every {every} epochs",
                ir::num(factor)
            )),
            ir::ScheduleKind::Exponential { factor } if factor > 1.0 => Some(format!(
                "it multiplies it by {} every epoch ({} times the starting rate after 20 epochs)",
                ir::num(factor),
                ir::num(factor.powi(20).round())
            )),
            ir::ScheduleKind::Cosine { min } if min > 1.0 => Some(format!(
                "it ends at {} times the rate it starts with",
                ir::num(min)
            )),
            _ => None,
        };
        if let Some(how) = rises {
            self.err(
                msg::schedule_rises(call.name.name.as_str(), &how)
                    .label(call.span, "here")
                    .help("a factor (or `min`) below 1 lowers the rate; to train at a higher rate, raise `lr` in `adam(...)`"),
            );
        }
        Some(ir::LrSchedule {
            kind,
            warmup: b.int("warmup"),
        })
    }

    /// `validation split(...)`, the one entry of [`VALIDATIONS`].
    fn validation(&mut self, value: &Expr) -> Option<ir::Validation> {
        let call = self.setting_call(value, "the validation", "split(fraction = 0.1)")?;
        let params = self.lookup(call, VALIDATIONS, Unknown::Validation, "validations")?;
        let b = self.bind(call, params, &Env::new())?;
        let fraction = b.real("fraction");
        if fraction <= 0.0 {
            self.err(
                msg::invalid_value("`fraction`", "in (0, 1)", &ir::num(fraction))
                    .label(b.span("fraction"), "nothing would be held out")
                    .help("hold out a part of the training examples, e.g. `fraction = 0.1`; leave `validation` out to train on all of them"),
            );
            return None;
        }
        Some(ir::Validation {
            fraction,
            seed: b.int("seed"),
            every: b.int("every"),
            metric: b.str("metric"),
            patience: b.int("patience"),
        })
    }

    /// The call a setting's value must be, or an error saying so.
    fn setting_call<'e>(&mut self, value: &'e Expr, what: &str, example: &str) -> Option<&'e Call> {
        match &value.kind {
            ExprKind::Call(call) => Some(call),
            _ => {
                self.err(
                    msg::arg_type(what, "a call", "a value")
                        .label(
                            value.span,
                            format!("not {}", what.replacen("the ", "a ", 1)),
                        )
                        .help(format!("write it as a call, e.g. `{example}`")),
                );
                None
            }
        }
    }

    /// `init "NAME"`, `precision "NAME"`, checked against [`TRAIN_SETTINGS`].
    fn str_setting(&mut self, name: &str, value: &Expr) -> Option<String> {
        let spec = TRAIN_SETTINGS.iter().find(|p| p.name == name)?;
        match self
            .eval(value, &Env::new())
            .and_then(|v| self.typed(v, spec, value.span, "train"))
        {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// `batch N`, `epochs N`, `seed N`, `images_every N`, checked against [`TRAIN_SETTINGS`].
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
            weight_decay: real("weight_decay"),
            clip_norm: real("clip_norm"),
        },
        batch: int("batch"),
        epochs: int("epochs"),
        seed: int("seed"),
        init: ir::Init::default(),
        schedule: ir::LrSchedule::default(),
        validation: None,
        precision: ir::Precision::default(),
        images_every: int("images_every"),
    }
}

/// The optimiser settings bound by an `adam(...)` or `gan(...)` call.
pub(super) fn adam(b: &super::args::Bound) -> ir::Adam {
    ir::Adam {
        lr: b.real("lr"),
        beta1: b.real("beta1"),
        beta2: b.real("beta2"),
        weight_decay: b.real("weight_decay"),
        clip_norm: b.real("clip_norm"),
    }
}
