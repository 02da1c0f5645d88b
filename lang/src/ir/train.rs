//! The `train` clause as compiled: optimiser, schedule, validation, precision. Pure data and
//! arithmetic (the learning-rate factor at a step), so that the runtime and the tests agree.

use serde::{Deserialize, Serialize};

use super::Init;

/// Adam (AdamW when `weight_decay` > 0), with optional gradient clipping by global norm.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Decoupled weight decay (AdamW): each step multiplies the weights by 1 - lr x decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// The largest global gradient norm; larger gradients are scaled down to it. 0: off.
    #[serde(default)]
    pub clip_norm: f64,
}

impl Adam {
    /// `lr = 0.001, beta1 = 0.9, beta2 = 0.999`, then decay and clipping where set.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "lr = {}, beta1 = {}, beta2 = {}",
            super::num(self.lr),
            super::num(self.beta1),
            super::num(self.beta2)
        );
        if self.weight_decay > 0.0 {
            s += &format!(", weight_decay = {}", super::num(self.weight_decay));
        }
        if self.clip_norm > 0.0 {
            s += &format!(", clip_norm = {}", super::num(self.clip_norm));
        }
        s
    }
}

/// How the learning rate moves over a run: a factor on every optimiser's `lr` (the model's and a
/// discriminator's alike), after a linear warm-up of `warmup` steps.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LrSchedule {
    pub kind: ScheduleKind,
    /// Steps of linear warm-up: the factor grows from 1/warmup to 1 over them.
    pub warmup: i64,
}

/// The decay after warm-up.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    #[default]
    Constant,
    /// Multiplied by `factor` every `every` epochs.
    Step { every: i64, factor: f64 },
    /// Half a cosine from 1 down to `min` over the run's steps.
    Cosine { min: f64 },
    /// Multiplied by `factor` after every epoch.
    Exponential { factor: f64 },
}

impl LrSchedule {
    /// The learning-rate factor of the step with 0-based index `step` in a run of `total` steps
    /// with `per_epoch` steps an epoch. A pure function of the step, so that a resumed run
    /// continues the schedule exactly.
    pub fn factor(&self, step: i64, per_epoch: i64, total: i64) -> f64 {
        let warm = if step < self.warmup {
            (step + 1) as f64 / self.warmup as f64
        } else {
            1.0
        };
        let epoch = (step / per_epoch.max(1)) as i32;
        let decay = match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Step { every, factor } => factor.powi(epoch / every.max(1) as i32),
            ScheduleKind::Exponential { factor } => factor.powi(epoch),
            ScheduleKind::Cosine { min } => {
                let t = step as f64 / (total.max(1)) as f64;
                min + (1.0 - min) * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
        };
        warm * decay
    }

    /// `cosine(min = 0, warmup = 100)`, as written in a model file.
    pub fn describe(&self) -> String {
        let mut args = match &self.kind {
            ScheduleKind::Constant => vec![],
            ScheduleKind::Step { every, factor } => {
                vec![
                    format!("every = {every}"),
                    format!("factor = {}", super::num(*factor)),
                ]
            }
            ScheduleKind::Cosine { min } => vec![format!("min = {}", super::num(*min))],
            ScheduleKind::Exponential { factor } => {
                vec![format!("factor = {}", super::num(*factor))]
            }
        };
        if self.warmup > 0 {
            args.push(format!("warmup = {}", self.warmup));
        }
        format!("{}({})", self.kind.name(), args.join(", "))
    }
}

impl ScheduleKind {
    /// Its name in model files.
    pub fn name(&self) -> &'static str {
        match self {
            ScheduleKind::Constant => "constant",
            ScheduleKind::Step { .. } => "step",
            ScheduleKind::Cosine { .. } => "cosine",
            ScheduleKind::Exponential { .. } => "exponential",
        }
    }
}

/// A validation split held out from the training data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Validation {
    /// The fraction of the training examples held out (never trained on).
    pub fraction: f64,
    /// The seed of the shuffle that chooses them (independent of the training seed, so that
    /// runs with different seeds validate on the same examples).
    pub seed: i64,
    /// Evaluate every this many epochs (and after the last).
    pub every: i64,
    /// The metric that chooses the best checkpoint: lower is better.
    pub metric: String,
    /// Stop after this many evaluations without improvement; 0: never.
    pub patience: i64,
}

/// The metrics a validation can rank by.
pub const VALIDATION_METRICS: &[&str] = &["recon", "penalty", "total", "latent_mmd"];

/// The floating-point precision of the networks.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Float32,
    /// bf16 autocast for the networks (CUDA only); the transport solve stays in float32.
    Bf16,
}

impl Precision {
    /// Its name in model files.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// The compiled `train` clause.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    pub optimizer: Adam,
    pub batch: i64,
    pub epochs: i64,
    pub seed: i64,
    /// The initialisation of layers that do not name one.
    #[serde(default)]
    pub init: Init,
    #[serde(default)]
    pub schedule: LrSchedule,
    #[serde(default)]
    pub validation: Option<Validation>,
    #[serde(default)]
    pub precision: Precision,
    /// Sample and reconstruction grids go to TensorBoard every this many epochs.
    #[serde(default = "default_images_every")]
    pub images_every: i64,
}

fn default_images_every() -> i64 {
    5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: ScheduleKind, warmup: i64) -> LrSchedule {
        LrSchedule { kind, warmup }
    }

    #[test]
    fn warmup_is_linear_then_the_decay_takes_over() {
        let c = s(ScheduleKind::Constant, 4);
        let f: Vec<f64> = (0..6).map(|i| c.factor(i, 10, 100)).collect();
        assert_eq!(f, vec![0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn step_and_exponential_change_at_epoch_boundaries() {
        let st = s(
            ScheduleKind::Step {
                every: 2,
                factor: 0.1,
            },
            0,
        );
        assert_eq!(st.factor(19, 10, 100), 1.0); // epoch index 1
        assert!((st.factor(20, 10, 100) - 0.1).abs() < 1e-15); // epoch index 2
        assert!((st.factor(45, 10, 100) - 0.01).abs() < 1e-15);
        let ex = s(ScheduleKind::Exponential { factor: 0.5 }, 0);
        assert_eq!(ex.factor(9, 10, 100), 1.0);
        assert_eq!(ex.factor(10, 10, 100), 0.5);
        assert_eq!(ex.factor(35, 10, 100), 0.125);
    }

    #[test]
    fn cosine_goes_from_one_to_min_as_pytorch_cosine_annealing() {
        let c = s(ScheduleKind::Cosine { min: 0.1 }, 0);
        assert_eq!(c.factor(0, 10, 100), 1.0);
        assert!((c.factor(50, 10, 100) - 0.55).abs() < 1e-12);
        assert!((c.factor(100, 10, 100) - 0.1).abs() < 1e-12);
        // CosineAnnealingLR: eta_min + (eta_max - eta_min)(1 + cos(pi t / T)) / 2 at t = 25, T = 100.
        let want = 0.1 + 0.9 * (1.0 + (std::f64::consts::PI * 0.25).cos()) / 2.0;
        assert!((c.factor(25, 10, 100) - want).abs() < 1e-15);
    }
}
