//! A compiled model on one device: encoders, generator and prior sampler.
//!
//! Entry point: [`Compiled::new`], which builds encoder and generator under an `nn::Path`. The
//! device is chosen once by the caller and passed down.

use tch::{nn, Device, Kind, Tensor};

use crate::ir;
use crate::runtime::gmm::Gmm;
use crate::runtime::nets::Net;
use crate::runtime::objective::{
    evaluate_penalty, recon_cost, Discriminator, PenaltyCtx, PenaltyOut,
};
use crate::runtime::sampler::{initial_params, sample_prior};

/// The encoder, generator and prior of a model on one device.
#[derive(Debug)]
pub struct Compiled {
    /// The encoders in the order they run, each with the index of the latent component it
    /// computes (None: the whole code).
    pub encoders: Vec<(Option<usize>, Net)>,
    pub generator: Net,
    pub model: ir::Model,
    pub device: Device,
    /// A post-hoc sampler of codes (`fit-sampler`) that replaces the prior for generation.
    pub code_sampler: Option<Gmm>,
    /// The learnable parameters of each latent's prior program (empty for other priors), as
    /// variables `prior.LATENT.NAME` of the VarStore: trained and saved with the networks.
    pub prior_params: Vec<Vec<Tensor>>,
}

impl Compiled {
    /// Builds the networks' variables in `vs` (root paths `encoder` and `generator`), then the
    /// priors' learnable parameters (`prior`), so that models without any initialise as before.
    pub fn new(vs: &nn::VarStore, model: &ir::Model) -> Compiled {
        let root = vs.root();
        let init = model.train.init;
        let encoders = model
            .encoders
            .iter()
            .map(|e| match &e.component {
                None => (None, Net::new(&(&root / "encoder"), &e.net, init)),
                Some(c) => (
                    model.latents.iter().position(|l| &l.name == c),
                    Net::new(&(&root / "encoder" / c.as_str()), &e.net, init),
                ),
            })
            .collect();
        let generator = Net::new(&(&root / "generator"), &model.generator, init);
        let prior_params = model
            .latents
            .iter()
            .map(|l| match &l.prior {
                ir::Prior::Program(p) if !p.params.is_empty() => {
                    let path = &root / "prior" / l.name.as_str();
                    initial_params(p, vs.device())
                        .iter()
                        .zip(&p.params)
                        .map(|(t, q)| path.var_copy(&q.name, t))
                        .collect()
                }
                _ => vec![],
            })
            .collect();
        Compiled {
            encoders,
            generator,
            model: model.clone(),
            device: vs.device(),
            code_sampler: None,
            prior_params,
        }
    }

    pub fn encode(&self, x: &Tensor, train: bool) -> Tensor {
        self.encode_stats(x, train).0
    }

    /// Codes and, for a Gaussian encoder, its (mean, log-variance). Component encoders run in
    /// order (a later one may crop at an earlier one's output); the code is the components
    /// concatenated in declaration order.
    pub fn encode_stats(&self, x: &Tensor, train: bool) -> (Tensor, Option<(Tensor, Tensor)>) {
        self.encode_noise(x, train, None)
    }

    /// [`Compiled::encode_stats`] with the Gaussian head's standard normal draws given.
    pub fn encode_noise(
        &self,
        x: &Tensor,
        train: bool,
        noise: Option<&Tensor>,
    ) -> (Tensor, Option<(Tensor, Tensor)>) {
        let mut parts: Vec<Option<Tensor>> = (0..self.model.latents.len()).map(|_| None).collect();
        let mut stats = None;
        for (index, net) in &self.encoders {
            let (z, s) = net.forward_parts(x, train, &parts, noise);
            stats = stats.or(s);
            match index {
                None => return (z, stats),
                Some(i) => parts[*i] = Some(z),
            }
        }
        let parts: Vec<Tensor> = parts.into_iter().flatten().collect();
        (Tensor::cat(&parts, 1), stats)
    }

    pub fn decode(&self, z: &Tensor, train: bool) -> Tensor {
        self.generator.forward_t(z, train)
    }

    /// `n` draws of the prior of the whole code (components side by side), or of the post-hoc
    /// sampler when one is set.
    pub fn sample_prior(&self, n: i64) -> Tensor {
        if let Some(g) = &self.code_sampler {
            return g.sample(n, Kind::Float, self.device);
        }
        let parts: Vec<Tensor> = self
            .model
            .latents
            .iter()
            .zip(&self.prior_params)
            .map(|(l, p)| sample_prior(&l.prior, p, n, l.space.dim(), self.device))
            .collect();
        Tensor::cat(&parts, 1)
    }

    /// The terms of the training objective on the batch `x`, in training mode: the
    /// reconstruction cost and each penalty (unweighted) between its component of the codes and
    /// of the prior samples. A GAN penalty updates its discriminator first. Training calls this
    /// at every step; the parity tests call it with `draws` fixed.
    pub fn step_terms(
        &self,
        x: &Tensor,
        draws: &Draws,
        discs: &mut [Option<Discriminator>],
        measure: bool,
        poison_disc: bool,
    ) -> Terms {
        let (z, stats) = self.encode_noise(x, true, draws.noise.as_ref());
        let xhat = self.decode(&z, true);
        let rec = self.recon_cost(&full_precision(&xhat), x);
        let w = match &draws.prior {
            Some(w) => w.shallow_clone(),
            None => self
                .sample_prior(draws.batch)
                .to_kind(full_precision(&z).kind()),
        };
        let ctx = PenaltyDraws {
            stats: stats.as_ref(),
            projections: draws.projections.as_ref(),
            measure,
            poison_disc,
        };
        // Under bf16 autocast the codes arrive in bf16; the transport solve runs in float32.
        let penalties = tch::autocast(false, || {
            let z32 = full_precision(&z);
            self.penalty_terms(&z32, &w, ctx, discs)
        });
        Terms { rec, w, penalties }
    }

    /// Each penalty (unweighted) between its component of the codes `z` and of the prior
    /// samples `w`. A GAN penalty with a discriminator updates it first; without one (`discs`
    /// empty: validation) its value is 0.
    pub fn penalty_terms(
        &self,
        z: &Tensor,
        w: &Tensor,
        draws: PenaltyDraws,
        discs: &mut [Option<Discriminator>],
    ) -> Vec<PenaltyOut> {
        let model = &self.model;
        let mut penalties = vec![];
        for (i, p) in model.penalties.iter().enumerate() {
            // Each penalty matches its own component of the code.
            let (zc, wc) = match model.component(&p.on) {
                Some((off, l)) if model.is_composite() => {
                    let d = l.space.dim();
                    (z.narrow(1, off, d), w.narrow(1, off, d))
                }
                _ => (z.shallow_clone(), w.shallow_clone()),
            };
            let ctx = PenaltyCtx {
                stats: draws.stats,
                disc: discs.get_mut(i).and_then(Option::as_mut),
                projections: draws.projections,
                measure: draws.measure,
                poison_disc: draws.poison_disc,
            };
            penalties.push(evaluate_penalty(p, &zc, &wc, ctx));
        }
        penalties
    }

    /// The reconstruction cost, summed over an example's features and averaged over the batch.
    pub fn recon_cost(&self, xhat: &Tensor, x: &Tensor) -> Tensor {
        recon_cost(&self.model.cost, xhat, x)
    }
}

/// What [`Compiled::penalty_terms`] needs besides the codes and prior samples.
#[derive(Clone, Copy)]
pub struct PenaltyDraws<'a> {
    /// The Gaussian encoder's (mean, log-variance), for KL.
    pub stats: Option<&'a (Tensor, Tensor)>,
    /// Given unit directions for `sliced`.
    pub projections: Option<&'a Tensor>,
    /// Measure a Sinkhorn plan's marginal error.
    pub measure: bool,
    /// Inject a NaN into a discriminator loss (tests).
    pub poison_disc: bool,
}

/// `t` in float32 when autocast made it bf16 or float16; unchanged otherwise (float64 stays).
fn full_precision(t: &Tensor) -> Tensor {
    match t.kind() {
        Kind::BFloat16 | Kind::Half => t.to_kind(Kind::Float),
        _ => t.shallow_clone(),
    }
}

/// The random inputs of a training step: drawn when None, given otherwise (parity tests).
#[derive(Debug, Default)]
pub struct Draws {
    /// How many prior samples to draw when `prior` is None.
    pub batch: i64,
    /// Prior samples of the whole code, one row per example.
    pub prior: Option<Tensor>,
    /// Standard normal draws of a Gaussian encoder head.
    pub noise: Option<Tensor>,
    /// Unit directions of a sliced penalty (rows).
    pub projections: Option<Tensor>,
}

/// The objective's terms at one step (see [`Compiled::step_terms`]).
pub struct Terms {
    /// The reconstruction cost.
    pub rec: Tensor,
    /// The prior samples the penalties compared the codes with.
    pub w: Tensor,
    /// One result per penalty, unweighted, in the model's order.
    pub penalties: Vec<PenaltyOut>,
}

impl Terms {
    /// The loss: the reconstruction plus each penalty times its weight (discriminator losses,
    /// which train a critic, are not part of it).
    pub fn loss(self, model: &ir::Model) -> Tensor {
        model
            .penalties
            .iter()
            .zip(self.penalties)
            .fold(self.rec, |loss, (p, out)| loss + out.value * p.weight)
    }
}

/// Test reconstruction: (mean cost per example in the model's cost, mean squared error per value).
pub fn reconstruction(net: &Compiled, x: &Tensor) -> (f64, f64) {
    let n = x.size()[0];
    let (mut cost, mut se) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let b = (n - i).min(1000);
        let xb = x.narrow(0, i, b);
        let xh = net.decode(&net.encode(&xb, false), false);
        cost += net.recon_cost(&xh, &xb).double_value(&[]) * b as f64;
        se += (&xh - &xb).square().sum(Kind::Double).double_value(&[]);
        i += b;
    }
    let numel = x.numel().max(1) as f64;
    (cost / n.max(1) as f64, se / numel)
}
