//! The training loop as a session: [`Session::train`] runs epochs, [`Session::epoch`] runs the
//! steps of one epoch and writes its metrics and state, [`Session::step`] is one optimiser step.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use tch::{nn, Device, Kind, Tensor};

use super::fault::{fault_from_env, Fault};
use super::state::{save_state, Position};
use super::track::{grids, Tracker};
use super::validate::{self, Best};
use super::{io_err, EpochMetrics, Interrupter, RunSummary, TrainError};
use crate::data::Dataset;
use crate::ir::{self, PenaltyKind};
use crate::rundir;
use crate::runtime::model::{reconstruction, Compiled, Draws};
use crate::runtime::objective::{Discriminator, PenaltyOut};
use crate::runtime::optim::Adam;
use crate::runtime::sampler::first_non_finite;

/// Everything a training loop needs.
pub(super) struct Session<'a> {
    pub model: &'a ir::Model,
    pub net: &'a Compiled,
    pub vs: &'a nn::VarStore,
    pub opt: Adam,
    pub discs: Vec<Option<Discriminator>>,
    pub dir: &'a Path,
    pub json: bool,
    pub epochs: i64,
    pub seed: i64,
    pub quiet: bool,
    pub device: Device,
    pub interrupter: &'a Interrupter,
    pub allow_divergence: bool,
    /// The model file's text (TensorBoard shows it).
    pub source: &'a str,
    /// The validation split, when the model declares one.
    pub validation: Option<&'a Dataset>,
    /// Run the networks under bf16 autocast (CUDA only; checked before).
    pub bf16: bool,
}

/// A loss that stops being finite within this many steps of the start names the learning rate.
const EARLY_STEPS: i64 = 100;

/// How many times its best the epoch loss may grow before the run is stopped as diverged.
const DIVERGENCE: f64 = 1000.0;

/// What the loop keeps across epochs.
struct Loop {
    steps: i64,
    batch: i64,
    fault: Option<Fault>,
    terms: Vec<String>,
    /// A convergence warning was shown (once per run).
    warned: bool,
    /// Largest Sinkhorn marginal error seen at the logging points.
    max_err: f64,
    /// The first and the best epoch's mean total loss of this session, for divergence.
    first_total: Option<f64>,
    best_total: f64,
    /// The lowest step loss read at a logging point in this session (divergence within an
    /// epoch, the first one included).
    best_step: f64,
    bar: Option<indicatif::ProgressBar>,
    /// The best validation so far and the patience used up.
    best: Best,
    /// TensorBoard's events.
    tracker: Tracker,
}

/// One epoch's sums, kept on the device so that no step waits for the host.
struct Sums {
    rec: Tensor,
    pen: Tensor,
    /// Per tracked term, the first step (1-based) at which it was not finite, and its value.
    bad: Vec<(Tensor, Tensor)>,
    iter_sum: i64,
    iter_count: i64,
}

impl Sums {
    fn new(start: (f64, f64), terms: usize, device: Device) -> Sums {
        Sums {
            rec: Tensor::from(start.0 as f32).to_device(device),
            pen: Tensor::from(start.1 as f32).to_device(device),
            bad: (0..terms)
                .map(|_| {
                    (
                        Tensor::full([], -1, (Kind::Int64, device)),
                        Tensor::zeros([], (Kind::Float, device)),
                    )
                })
                .collect(),
            iter_sum: 0,
            iter_count: 0,
        }
    }

    /// Records the first non-finite value of each tracked term.
    fn track(&mut self, tracked: &[Tensor], step: i64) {
        for ((first_bad, val), term) in self.bad.iter_mut().zip(tracked) {
            let keep = first_bad.ge(0).logical_or(&term.isfinite());
            *val = val.where_self(&keep, term);
            *first_bad = first_bad.where_self(&keep, &first_bad.full_like(step + 1));
        }
    }

    /// The term that went bad first (after it, the weights poison the others): its index, step
    /// and value.
    fn first_bad(&self) -> Option<(usize, i64, f64)> {
        self.bad
            .iter()
            .enumerate()
            .map(|(i, (s, v))| (s.int64_value(&[]), i, v))
            .filter(|(s, _, _)| *s >= 0)
            .min_by_key(|(s, i, _)| (*s, *i))
            .map(|(s, i, v)| (i, s, v.double_value(&[])))
    }
}

/// What one step reports to its epoch.
struct StepOut {
    rec: Tensor,
    pen: Tensor,
    /// Reconstruction, discriminator loss, then each weighted penalty, detached.
    tracked: Vec<Tensor>,
    marginal_error: Option<f64>,
}

impl Session<'_> {
    /// Trains from `start` to the last epoch; returns the summary (test reconstruction included).
    pub fn train(
        mut self,
        start: Position,
        train: &Dataset,
        test: &Dataset,
    ) -> Result<RunSummary, TrainError> {
        let n = train.len();
        let batch = self.model.train.batch.min(n);
        // The checker warns where the size is known from the file; here, for files on disk.
        let known = !matches!(self.model.data.source, ir::DataSource::Idx { limit: 0, .. });
        if self.model.train.batch > n && !known && !self.quiet {
            eprintln!(
                "warning: batch {} is larger than the {n} training examples; each step uses all {n}",
                self.model.train.batch
            );
        }
        let steps = n / batch; // the last partial batch is dropped: every step sees a full batch
        let mut lp = Loop {
            steps,
            batch,
            fault: fault_from_env(),
            terms: term_names(self.model),
            warned: false,
            max_err: 0.0,
            first_total: None,
            best_total: f64::INFINITY,
            best_step: f64::INFINITY,
            bar: progress_bar(self.quiet || self.json, steps as u64),
            best: start.best,
            tracker: Tracker::open(self.dir, self.source),
        };
        let mut history = vec![];
        for epoch in start.epoch..=self.epochs {
            let from = if epoch == start.epoch {
                start
            } else {
                Position {
                    best: lp.best,
                    ..Position::start_of(epoch)
                }
            };
            history.push(self.epoch(from, train, &mut lp)?);
            if lp.best.stopped_at > 0 {
                if !self.quiet {
                    eprintln!(
                        "stopping early at epoch {epoch}: no better validation for {} evaluations; the best (epoch {}) is in {}",
                        lp.best.waited,
                        lp.best.epoch,
                        rundir::BEST
                    );
                }
                break;
            }
        }
        lp.tracker.flush();
        let (test_recon, test_mse) = tch::no_grad(|| reconstruction(self.net, &test.x()));
        let validated = self.validation.is_some() && lp.best.epoch > 0;
        Ok(RunSummary {
            dir: self.dir.to_path_buf(),
            epochs: history,
            test_recon,
            test_mse,
            device: format!("{:?}", self.device),
            sinkhorn_marginal_error_max: lp.max_err,
            best_epoch: validated.then_some(lp.best.epoch),
            stopped_early_at: (lp.best.stopped_at > 0).then_some(lp.best.stopped_at),
        })
    }

    /// Runs one epoch from `from` (its start, or a resumed step with its sums), then appends its
    /// metrics and saves the state.
    fn epoch(
        &mut self,
        from: Position,
        train: &Dataset,
        lp: &mut Loop,
    ) -> Result<EpochMetrics, TrainError> {
        let (epoch, steps, model) = (from.epoch, lp.steps, self.model);
        let t0 = Instant::now();
        tch::manual_seed(step_seed(self.seed, epoch, -1));
        let perm = Tensor::randperm(train.len(), (Kind::Int64, self.device));
        let mut sums = Sums::new((from.sum_rec, from.sum_pen), lp.terms.len(), self.device);
        let first = from.step.min(steps);
        let mut data_seconds = 0.0;
        if let Some(b) = &lp.bar {
            b.reset();
            b.set_prefix(format!("epoch {epoch}/{}", self.epochs));
            b.set_position(first as u64);
        }
        for step in first..steps {
            if self.interrupter.take() {
                return Err(self.interrupted(epoch, step, &sums, lp));
            }
            tch::manual_seed(step_seed(self.seed, epoch, step));
            let log_point = step % 10 == 9 || step + 1 == steps;
            let global = (epoch - 1) * steps + step + 1;
            self.set_lr(global - 1, steps);
            let t_data = Instant::now();
            let idx = perm.narrow(0, step * lp.batch, lp.batch);
            let mut x = train.batch(&idx);
            if model.data.binarize {
                x = x.bernoulli();
            }
            data_seconds += t_data.elapsed().as_secs_f64();
            let out = self.step(&x, global, log_point, (epoch, step), &mut sums, lp);
            sums.rec += out.rec.detach();
            sums.pen += out.pen.detach();
            sums.track(&out.tracked, step);
            // Host reads only at logging points: every 10 steps and at the end of the epoch.
            if log_point {
                self.log_point(&out, &sums, (epoch, step), lp)?;
            }
        }
        let k = steps.max(1) as f64;
        let (sr, sp) = (sums.rec.double_value(&[]), sums.pen.double_value(&[]));
        let mut m = EpochMetrics {
            epoch,
            recon: sr / k,
            penalty: sp / k,
            total: (sr + sp) / k,
            seconds: t0.elapsed().as_secs_f64(),
            data_seconds,
            sinkhorn_iterations: (sums.iter_count > 0)
                .then(|| sums.iter_sum as f64 / sums.iter_count as f64),
            lr: self.opt.lr(),
            validation: None,
        };
        check_finite(m.recon, m.penalty, epoch, steps, model)?;
        self.check_divergence(m.total, epoch, lp)?;
        self.validate(&mut m, lp)?;
        append_line(
            &self.dir.join(rundir::METRICS),
            &serde_json::to_string(&m).unwrap_or_default(),
        )?;
        let next = Position {
            best: lp.best,
            ..Position::start_of(epoch + 1)
        };
        save_state(self.dir, self.vs, &self.opt, &self.discs, next)?;
        if let Some(b) = &lp.bar {
            b.finish_and_clear();
        }
        lp.tracker.epoch(&m, epoch * steps);
        let every = self.model.train.images_every;
        if m.epoch % every == 0 || m.epoch == self.epochs {
            let (net, seed) = (self.net, step_seed(self.seed, 0, -3));
            lp.tracker.images(epoch * steps, || grids(net, train, seed));
        }
        self.report(&m);
        Ok(m)
    }

    /// The schedule's learning rate for the step with 0-based index `index`, on the model's
    /// optimiser and every discriminator's.
    fn set_lr(&mut self, index: i64, steps: i64) {
        let f = self
            .model
            .train
            .schedule
            .factor(index, steps, self.epochs * steps);
        self.opt.set_lr_factor(f);
        for d in self.discs.iter_mut().flatten() {
            d.opt.set_lr_factor(f);
        }
    }

    /// Measures the validation split when this epoch is due (every `every` epochs and the
    /// last), and keeps the best checkpoint.
    fn validate(&self, m: &mut EpochMetrics, lp: &mut Loop) -> Result<(), TrainError> {
        let (Some(v), Some(data)) = (&self.model.train.validation, self.validation) else {
            return Ok(());
        };
        if m.epoch % v.every != 0 && m.epoch != self.epochs {
            return Ok(());
        }
        // Seeded like a step, so that a resumed run validates with the same prior draws.
        tch::manual_seed(step_seed(self.seed, m.epoch, -2));
        let vm = validate::measure(self.net, &data.x(), self.model.train.batch);
        let value = vm.get(&v.metric);
        if lp.best.update(value, m.epoch, v.patience) {
            rundir::save_weights(self.vs, self.dir, rundir::BEST)?;
            let best = serde_json::json!({"epoch": m.epoch, "metric": v.metric, "value": value, "validation": vm});
            rundir::write_json(self.dir, rundir::BEST_JSON, &best)
                .map_err(io_err(&self.dir.join(rundir::BEST_JSON)))?;
        }
        m.validation = Some(vm);
        Ok(())
    }

    /// One optimiser step on the batch `x`: reconstruction, the discriminator updates (their NaN
    /// poisons the GAN penalty of the same step), penalties, in that order, which breaks ties.
    fn step(
        &mut self,
        x: &Tensor,
        global: i64,
        log_point: bool,
        (epoch, step): (i64, i64),
        sums: &mut Sums,
        lp: &mut Loop,
    ) -> StepOut {
        let (model, device) = (self.model, self.device);
        let poison = lp.fault == Some(Fault::NanDisc(global));
        let draws = Draws {
            batch: lp.batch,
            ..Default::default()
        };
        let (net, discs) = (self.net, &mut self.discs);
        let terms = if self.bf16 {
            tch::autocast(true, || net.step_terms(x, &draws, discs, log_point, poison))
        } else {
            net.step_terms(x, &draws, discs, log_point, poison)
        };
        let (mut rec, w) = (terms.rec, terms.w);
        if lp.fault == Some(Fault::NanRecon(global)) {
            rec = rec * f64::NAN;
        }
        if matches!(lp.fault, Some(Fault::GrowRecon(s)) if global >= s) {
            rec = rec * 1e6;
        }
        // The prior samples as a tracked term: inf or NaN when a draw is, 0 otherwise (no host
        // read here; the logging point reads it with the others).
        let zero = Tensor::zeros([], (Kind::Float, device));
        let mut tracked = vec![rec.detach(), non_finite_probe(&w), zero.shallow_clone()];
        let gradient_at = tracked.len() + model.penalties.len();
        let mut pen_total = Tensor::zeros([], (Kind::Float, device));
        let mut disc_total = Tensor::zeros([], (Kind::Float, device));
        let mut marginal_error = None;
        for (p, out) in model.penalties.iter().zip(terms.penalties) {
            marginal_error = marginal_error.or(out.marginal_error);
            self.count_iterations(p, &out, (epoch, step), sums, lp);
            if let Some(dl) = out.disc_loss {
                disc_total = disc_total + dl;
            }
            let mut v = out.value * p.weight;
            if lp.fault == Some(Fault::NanPenalty(global)) {
                v = v * f64::NAN;
            }
            tracked.push(v.detach());
            pen_total = pen_total + v;
        }
        tracked[2] = disc_total;
        let loss = &rec + &pen_total;
        self.opt.zero_grad();
        loss.backward();
        if lp.fault == Some(Fault::NanGrad(global)) {
            self.opt.poison_first_gradient();
        }
        // After the terms: a NaN gradient of finite terms is named as such.
        tracked.push(self.opt.grad_probe().unwrap_or(zero));
        debug_assert_eq!(tracked.len(), gradient_at + 1);
        self.opt.step();
        StepOut {
            rec,
            pen: pen_total,
            tracked,
            marginal_error,
        }
    }

    /// Counts a Sinkhorn penalty's iterations and warns once when it hit its cap before its
    /// tolerance.
    fn count_iterations(
        &self,
        p: &ir::Penalty,
        out: &PenaltyOut,
        (epoch, step): (i64, i64),
        sums: &mut Sums,
        lp: &mut Loop,
    ) {
        if out.iterations == 0 {
            return;
        }
        sums.iter_sum += out.iterations;
        sums.iter_count += 1;
        if let (
            PenaltyKind::Sinkhorn {
                tolerance,
                iterations,
                ..
            },
            Some(e),
        ) = (&p.kind, out.marginal_error)
        {
            if *tolerance > 0.0 && e > *tolerance && out.iterations >= *iterations && !lp.warned {
                lp.warned = true;
                eprintln!(
                    "warning: Sinkhorn reached its cap of {iterations} iterations without the tolerance {} (marginal error {e:.2e} at epoch {epoch}, step {}); raise `iterations` or `epsilon`. Shown once per run.",
                    ir::num(*tolerance),
                    step + 1
                );
            }
        }
    }

    /// The host reads of a logging point: a term gone bad stops the run; the convergence
    /// warning; the progress bar.
    fn log_point(
        &self,
        out: &StepOut,
        sums: &Sums,
        (epoch, step): (i64, i64),
        lp: &mut Loop,
    ) -> Result<(), TrainError> {
        let (r, pv) = (out.rec.double_value(&[]), out.pen.double_value(&[]));
        if let Some((i, s, v)) = sums.first_bad() {
            return Err(non_finite(
                &lp.terms[i],
                v,
                epoch,
                s,
                self.model,
                &self.net.prior_params,
            ));
        }
        self.check_explosion(r + pv, (epoch, step), lp)?;
        if let Some(e) = out.marginal_error {
            lp.max_err = lp.max_err.max(e);
            let fixed = self.model.penalties.iter().any(
                |p| matches!(p.kind, PenaltyKind::Sinkhorn { tolerance, .. } if tolerance == 0.0),
            );
            if fixed && e > 0.05 && !lp.warned {
                lp.warned = true;
                eprintln!("{}", convergence_warning(self.model, e, epoch, step + 1));
            }
        }
        if let Some(b) = &lp.bar {
            b.set_position(step as u64 + 1);
            b.set_message(format!("recon {r:.4}  penalty {pv:.4}"));
        }
        let global = (epoch - 1) * lp.steps + step + 1;
        let values = [
            ("train/recon", r),
            ("train/penalty", pv),
            ("train/lr", self.opt.lr()),
        ];
        lp.tracker.scalars(global, &values);
        Ok(())
    }

    /// Stops a run whose step loss, read at a logging point, grew over [`DIVERGENCE`] times the
    /// lowest read so far: a learning rate far too large shows in the first steps, before any
    /// epoch ends (the epoch check cannot see it in a one-epoch run).
    fn check_explosion(
        &self,
        total: f64,
        (epoch, step): (i64, i64),
        lp: &mut Loop,
    ) -> Result<(), TrainError> {
        let best = lp.best_step;
        lp.best_step = best.min(total);
        if !(best > 0.0 && best.is_finite() && total > DIVERGENCE * best) || self.allow_divergence {
            return Ok(());
        }
        let lr = self.model.train.optimizer.lr;
        let kept = if epoch > 1 {
            format!("the checkpoint of epoch {} is kept", epoch - 1)
        } else {
            "no epoch had finished, so there is no checkpoint to keep".to_string()
        };
        Err(TrainError::Exploded {
            epoch,
            step: step + 1,
            total: format!("{total:.4e}"),
            best: if best.abs() >= 1e4 {
                format!("{best:.4e}")
            } else {
                format!("{best:.4}")
            },
            factor: DIVERGENCE,
            lr: ir::num(lr),
            lower: ir::num(lr / 10.0),
            kept,
        })
    }

    /// Stops a run whose epoch loss grew over [`DIVERGENCE`] times its best and beyond ten times
    /// where it started, before this epoch's state replaces the last good one.
    fn check_divergence(&self, total: f64, epoch: i64, lp: &mut Loop) -> Result<(), TrainError> {
        let first = *lp.first_total.get_or_insert(total);
        let best = lp.best_total;
        lp.best_total = best.min(total);
        let diverged = best > 0.0 && total > DIVERGENCE * best && total > 10.0 * first.abs();
        if diverged && !self.allow_divergence {
            return Err(TrainError::Diverged {
                epoch,
                total: format!("{total:.4e}"),
                best: format!("{best:.4}"),
                factor: DIVERGENCE,
                lr: ir::num(self.model.train.optimizer.lr),
                kept: epoch - 1,
            });
        }
        Ok(())
    }

    /// Saves the state at (epoch, step) and returns the interruption.
    fn interrupted(&self, epoch: i64, step: i64, sums: &Sums, lp: &Loop) -> TrainError {
        let pos = Position {
            epoch,
            step,
            sum_rec: sums.rec.double_value(&[]),
            sum_pen: sums.pen.double_value(&[]),
            best: lp.best,
        };
        if let Err(e) = save_state(self.dir, self.vs, &self.opt, &self.discs, pos) {
            return e;
        }
        if let Some(b) = &lp.bar {
            b.finish_and_clear();
        }
        TrainError::Interrupted {
            dir: self.dir.display().to_string(),
            epoch,
            step,
        }
    }

    /// The epoch's line: JSON on standard output, or words on standard error.
    fn report(&self, m: &EpochMetrics) {
        if self.json {
            let mut v = serde_json::to_value(m).unwrap_or_default();
            v["event"] = "epoch".into();
            v["epochs"] = self.epochs.into();
            println!("{v}");
        } else if !self.quiet {
            eprintln!(
                "epoch {:>3}/{}  recon {:.4}  penalty {:.5}  total {:.4}  ({:.1} s)",
                m.epoch, self.epochs, m.recon, m.penalty, m.total, m.seconds
            );
        }
    }
}

/// A scalar on the device that is inf or NaN when a value of `t` is, 0 otherwise.
fn non_finite_probe(t: &Tensor) -> Tensor {
    let zero = Tensor::zeros([], (Kind::Float, t.device()));
    zero.where_self(
        &t.isinf().any().logical_not(),
        &zero.full_like(f64::INFINITY),
    )
    .where_self(&t.isnan().any().logical_not(), &zero.full_like(f64::NAN))
}

/// A deterministic seed for (seed, epoch, step): splitmix64, kept non-negative.
fn step_seed(seed: i64, epoch: i64, step: i64) -> i64 {
    let mut x = (seed as u64)
        ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (step as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((x ^ (x >> 31)) >> 1) as i64
}

fn convergence_warning(model: &ir::Model, err: f64, epoch: i64, step: i64) -> String {
    let (eps, iters) = model
        .penalties
        .iter()
        .find_map(|p| match p.kind {
            PenaltyKind::Sinkhorn {
                epsilon,
                iterations,
                ..
            } => Some((epsilon, iterations)),
            _ => None,
        })
        .unwrap_or((0.0, 0));
    format!(
        "warning: Sinkhorn did not converge in {iters} iterations (row-marginal error {err:.3} at epoch {epoch}, step {step}); \
         the loss uses the plan as it stands after {iters} iterations, as the SAE paper does. For a converged plan raise \
         `iterations` or `epsilon` (now {}), or set `tolerance`. Shown once per run.",
        ir::num(eps)
    )
}

/// Names of the tracked terms: reconstruction, the prior samples, the discriminators, each
/// penalty (in this order, which breaks ties within a step).
fn term_names(model: &ir::Model) -> Vec<String> {
    let mut v = vec![
        "reconstruction cost".to_string(),
        "prior samples".to_string(),
        "discriminator loss".to_string(),
    ];
    let many = model.penalties.len() > 1;
    for (i, p) in model.penalties.iter().enumerate() {
        let kind = p.kind.name();
        v.push(if many {
            format!("latent penalty `{kind}` (penalty {})", i + 1)
        } else {
            "latent penalty".to_string()
        });
    }
    v.push("gradient".to_string());
    v
}

/// The error for a term that became NaN or infinite, with what to change.
fn non_finite(
    term: &str,
    value: f64,
    epoch: i64,
    step: i64,
    model: &ir::Model,
    prior_params: &[Vec<Tensor>],
) -> TrainError {
    let help = if term == "prior samples" {
        prior_help(model, prior_params)
    } else if term == "gradient" {
        format!(
            "the loss was finite but its gradient was not (a square root or logarithm at 0, or an overflow in a layer); lower the learning rate (now {}) or check the model's last layers; the last good checkpoint is kept",
            ir::num(model.train.optimizer.lr)
        )
    } else if term.starts_with("latent penalty") {
        let eps: Vec<String> = model
            .penalties
            .iter()
            .filter_map(|p| match p.kind {
                PenaltyKind::Sinkhorn { epsilon, .. } => Some(ir::num(epsilon)),
                _ => None,
            })
            .collect();
        if eps.is_empty() {
            "lower the penalty weight or the learning rate; the last good checkpoint is kept"
                .to_string()
        } else {
            format!("the Sinkhorn penalty (epsilon {}) overflowed; raise epsilon or lower the penalty weight; the last good checkpoint is kept", eps.join(", "))
        }
    } else if term.starts_with("discriminator") {
        "lower the discriminator's learning rate (`gan(lr = ...)`); the last good checkpoint is kept".to_string()
    } else {
        format!(
            "lower the learning rate (now {}); the last good checkpoint is kept",
            ir::num(model.train.optimizer.lr)
        )
    };
    // Within the first steps of a run, the usual cause is a learning rate far too large, whatever
    // term overflowed first; say so before the term's own advice.
    let help = if epoch == 1 && step <= EARLY_STEPS && term != "prior samples" {
        let lr = model.train.optimizer.lr;
        format!(
            "this happened in the first {step} steps, which usually means the learning rate (now {}) is too large: lower it, e.g. to {}. Otherwise: {help}",
            ir::num(lr),
            ir::num(lr / 10.0)
        )
    } else {
        help
    };
    TrainError::NonFinite {
        term: term.into(),
        value: format!("{value}"),
        epoch,
        step,
        help,
    }
}

fn progress_bar(quiet: bool, steps: u64) -> Option<indicatif::ProgressBar> {
    if quiet {
        return None;
    }
    let b = indicatif::ProgressBar::new(steps);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    b.set_style(style);
    Some(b)
}

fn check_finite(
    rec: f64,
    pen: f64,
    epoch: i64,
    step: i64,
    model: &ir::Model,
) -> Result<(), TrainError> {
    if !rec.is_finite() {
        return Err(non_finite(
            "reconstruction cost",
            rec,
            epoch,
            step,
            model,
            &[],
        ));
    }
    if !pen.is_finite() {
        return Err(non_finite("latent penalty", pen, epoch, step, model, &[]));
    }
    Ok(())
}

fn append_line(path: &Path, line: &str) -> Result<(), TrainError> {
    crate::util::fault::before_write("metrics").map_err(io_err(path))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    writeln!(f, "{line}").map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ir::Model {
        let text = "data rings()\nlatent R^2 ~ normal()\nencoder { linear(2) }\ngenerator { linear(2) }\npenalty sinkhorn(epsilon = 0.001)\n";
        crate::compile_source("m.sae", text, None)
            .model
            .expect("model")
    }

    #[test]
    fn non_finite_losses_name_term_epoch_and_step() {
        let m = model();
        assert!(check_finite(1.0, 2.0, 1, 1, &m).is_ok());
        let e = check_finite(f64::NAN, 1.0, 3, 7, &m).expect_err("NaN reconstruction");
        assert_eq!(
            e.to_string(),
            "the reconstruction cost became NaN at epoch 3, step 7"
        );
        assert!(
            format!("{:?}", miette::Report::new(e)).contains("lower the learning rate (now 0.001)")
        );
        let e = check_finite(1.0, f64::INFINITY, 2, 40, &m).expect_err("infinite penalty");
        assert_eq!(
            e.to_string(),
            "the latent penalty became inf at epoch 2, step 40"
        );
        assert!(format!("{:?}", miette::Report::new(e)).contains("epsilon 0.001"));
    }
}

/// What to change when a prior drew a value that is not finite: the prior program and the first
/// of its statements whose values are not finite in fresh draws.
fn prior_help(model: &ir::Model, prior_params: &[Vec<Tensor>]) -> String {
    const DRAWS: i64 = 4096;
    for (i, l) in model.latents.iter().enumerate() {
        let ir::Prior::Program(p) = &l.prior else {
            continue;
        };
        tch::manual_seed(0);
        // The learned values of its parameters, as training left them.
        let params: Vec<Tensor> = prior_params
            .get(i)
            .map(|v| {
                v.iter()
                    .map(|t| t.detach().to_device(Device::Cpu))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(var) = first_non_finite(p, &params, DRAWS, Device::Cpu) {
            return format!(
                "the prior `{}` of `{}` draws values that are not finite: the statement that binds `{var}` is the first to give them in {DRAWS} draws; bound it (smaller scales, no nested exp); the last good checkpoint is kept",
                p.call, l.name
            );
        }
    }
    "a prior sample was not finite; check the prior's parameters; the last good checkpoint is kept"
        .to_string()
}
