//! The validation split: examples held out of training, the cheap metrics measured on them, and
//! the best-so-far and patience that choose the best checkpoint and stop a run early.

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::data::{DataError, Dataset};
use crate::ir;
use crate::runtime::model::{reconstruction, Compiled, PenaltyDraws};
use crate::runtime::ot;

/// Splits `train` into (training, validation): a shuffle seeded by the validation's own seed
/// chooses round(n x fraction) examples; both parts keep the data's order.
pub(crate) fn split(train: Dataset, v: &ir::Validation) -> Result<(Dataset, Dataset), DataError> {
    let n = train.len() as usize;
    let held = (n as f64 * v.fraction).round() as usize;
    if held == 0 || n - held < 2 {
        return Err(DataError::Corrupt {
            path: train.origin.clone().into(),
            what: format!(
                "a validation fraction of {} of {n} examples leaves {held} for validation and {} for training; both need examples (training at least 2)",
                ir::num(v.fraction),
                n - held
            ),
        });
    }
    let idx = crate::data::shuffled(n, v.seed as u64);
    let (mut val, mut rest) = (idx[..held].to_vec(), idx[held..].to_vec());
    val.sort_unstable();
    rest.sort_unstable();
    let take = |rows: &[i64], what: &str| {
        train.rows(
            &Tensor::from_slice(rows),
            format!("{} ({what})", train.origin),
        )
    };
    let (t, va) = (take(&rest, "training part"), take(&val, "validation part"));
    // The origin names the file (the data's SHA-256 is taken from it): keep it as it was.
    Ok((
        Dataset {
            origin: train.origin.clone(),
            ..t
        },
        va,
    ))
}

/// The cheap metrics on the validation split.
#[derive(Clone, Debug, Serialize)]
pub struct ValMetrics {
    /// Mean reconstruction cost per example (evaluation mode).
    pub recon: f64,
    /// Weighted penalties between the codes and as many prior samples, batch by batch (a GAN
    /// penalty counts 0: its value needs the discriminator's training).
    pub penalty: f64,
    pub total: f64,
    /// MMD x 1000 (IMQ kernel, C = 2d) between all validation codes and as many prior samples.
    pub latent_mmd: f64,
}

impl ValMetrics {
    /// The metric named in the model's `validation` (lower is better).
    pub fn get(&self, name: &str) -> f64 {
        match name {
            "penalty" => self.penalty,
            "total" => self.total,
            "latent_mmd" => self.latent_mmd,
            _ => self.recon,
        }
    }
}

/// Measures the validation metrics of `net` on `x`, in batches of `batch`.
pub(crate) fn measure(net: &Compiled, x: &Tensor, batch: i64) -> ValMetrics {
    tch::no_grad(|| {
        let model = &net.model;
        let (recon, _) = reconstruction(net, x);
        let n = x.size()[0];
        let b = batch.min(n).max(1);
        let (mut pen, mut count, mut codes) = (0.0, 0, vec![]);
        let mut i = 0;
        while i < n {
            let len = b.min(n - i);
            let (z, stats) = net.encode_stats(&x.narrow(0, i, len), false);
            // A penalty needs a full batch to compare with as many prior samples; the last
            // partial one only adds its codes to the MMD.
            if len == b && len >= 2 {
                let w = net.sample_prior(len).to_kind(z.kind());
                let draws = PenaltyDraws {
                    stats: stats.as_ref(),
                    projections: None,
                    measure: false,
                    poison_disc: false,
                };
                let outs = net.penalty_terms(&z, &w, draws, &mut []);
                pen += model
                    .penalties
                    .iter()
                    .zip(outs)
                    .map(|(p, o)| o.value.double_value(&[]) * p.weight)
                    .sum::<f64>();
                count += 1;
            }
            codes.push(z);
            i += len;
        }
        let penalty = if count > 0 { pen / count as f64 } else { 0.0 };
        let codes = Tensor::cat(&codes, 0).to_kind(Kind::Double);
        let prior = net.sample_prior(n).to_kind(Kind::Double);
        let d = model.space().dim() as f64;
        let latent_mmd = ot::mmd_blocked(&codes, &prior, ot::Kernel::Imq, 2.0 * d, 2000) * 1000.0;
        ValMetrics {
            recon,
            penalty,
            total: recon + penalty,
            latent_mmd,
        }
    })
}

/// The best validation so far and the evaluations since it improved; saved in the training
/// state so that a resumed run keeps both.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Best {
    pub value: f64,
    pub epoch: i64,
    pub waited: i64,
    /// Early stopping ended the run at this epoch (0: it did not).
    pub stopped_at: i64,
}

impl Default for Best {
    fn default() -> Best {
        Best {
            value: f64::INFINITY,
            epoch: 0,
            waited: 0,
            stopped_at: 0,
        }
    }
}

impl Best {
    /// Records a validation at `epoch`; true when it is the new best.
    pub fn update(&mut self, value: f64, epoch: i64, patience: i64) -> bool {
        if value < self.value {
            *self = Best {
                value,
                epoch,
                waited: 0,
                stopped_at: 0,
            };
            return true;
        }
        self.waited += 1;
        if patience > 0 && self.waited >= patience {
            self.stopped_at = epoch;
        }
        false
    }

    /// As four numbers for the state file.
    pub fn to_vec(self) -> Vec<f64> {
        vec![
            self.value,
            self.epoch as f64,
            self.waited as f64,
            self.stopped_at as f64,
        ]
    }

    pub fn from_slice(v: &[f64]) -> Option<Best> {
        match v {
            [value, epoch, waited, stopped] => Some(Best {
                value: *value,
                epoch: *epoch as i64,
                waited: *waited as i64,
                stopped_at: *stopped as i64,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_counts_evaluations_without_improvement() {
        let mut b = Best::default();
        assert!(b.update(3.0, 1, 2));
        assert!(!b.update(3.5, 2, 2));
        assert_eq!(b.stopped_at, 0);
        assert!(b.update(2.0, 3, 2));
        assert_eq!(b.waited, 0);
        assert!(!b.update(2.0, 4, 2)); // equal is no improvement
        assert!(!b.update(2.5, 5, 2));
        assert_eq!((b.epoch, b.stopped_at), (3, 5));
        assert_eq!(Best::from_slice(&b.to_vec()), Some(b));
    }

    #[test]
    fn the_split_is_disjoint_seeded_and_complete() {
        let x = Tensor::arange(100, (Kind::Float, tch::Device::Cpu)).reshape([100, 1]);
        let d = || Dataset::new(x.shallow_clone(), None, "f".into());
        let v = ir::Validation {
            fraction: 0.2,
            seed: 3,
            every: 1,
            metric: "recon".into(),
            patience: 0,
        };
        let (t, va) = split(d(), &v).expect("split");
        assert_eq!((t.len(), va.len()), (80, 20));
        let mut all: Vec<f32> = Vec::<f32>::try_from(t.x().flatten(0, -1)).expect("t");
        all.extend(Vec::<f32>::try_from(va.x().flatten(0, -1)).expect("v"));
        all.sort_by(f32::total_cmp);
        assert_eq!(all, (0..100).map(|i| i as f32).collect::<Vec<_>>());
        let (_, again) = split(d(), &v).expect("again");
        assert_eq!(
            Vec::<f32>::try_from(again.x().flatten(0, -1)).expect("a"),
            Vec::<f32>::try_from(va.x().flatten(0, -1)).expect("v")
        );
        let tiny = ir::Validation {
            fraction: 0.001,
            ..v
        };
        let Err(e) = split(d(), &tiny) else {
            panic!("nothing held out, yet split")
        };
        assert!(e.to_string().contains("leaves 0 for validation"), "{e}");
    }
}
