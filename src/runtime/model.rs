//! A compiled model on one device: encoders, generator and prior sampler.
//!
//! Entry point: [`Compiled::new`], which builds encoder and generator under an `nn::Path`. The
//! device is chosen once by the caller and passed down.

use tch::{nn, Device, Kind, Tensor};

use crate::ir;
use crate::runtime::nets::Net;
use crate::runtime::objective::recon_cost;
use crate::runtime::sampler::sample_prior;

/// The encoder, generator and prior of a model on one device.
#[derive(Debug)]
pub struct Compiled {
    /// The encoders in the order they run, each with the index of the latent component it
    /// computes (None: the whole code).
    pub encoders: Vec<(Option<usize>, Net)>,
    pub generator: Net,
    pub model: ir::Model,
    pub device: Device,
}

impl Compiled {
    /// Builds the networks' variables in `vs` (root paths `encoder` and `generator`).
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
        Compiled {
            encoders,
            generator: Net::new(&(&root / "generator"), &model.generator, init),
            model: model.clone(),
            device: vs.device(),
        }
    }

    pub fn encode(&self, x: &Tensor, train: bool) -> Tensor {
        self.encode_stats(x, train).0
    }

    /// Codes and, for a Gaussian encoder, its (mean, log-variance). Component encoders run in
    /// order (a later one may crop at an earlier one's output); the code is the components
    /// concatenated in declaration order.
    pub fn encode_stats(&self, x: &Tensor, train: bool) -> (Tensor, Option<(Tensor, Tensor)>) {
        let mut parts: Vec<Option<Tensor>> = (0..self.model.latents.len()).map(|_| None).collect();
        let mut stats = None;
        for (index, net) in &self.encoders {
            let (z, s) = net.forward_parts(x, train, &parts);
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

    /// `n` draws of the prior of the whole code (components side by side).
    pub fn sample_prior(&self, n: i64) -> Tensor {
        let parts: Vec<Tensor> = self
            .model
            .latents
            .iter()
            .map(|l| sample_prior(&l.prior, n, l.space.dim(), self.device))
            .collect();
        Tensor::cat(&parts, 1)
    }

    /// The reconstruction cost, summed over an example's features and averaged over the batch.
    pub fn recon_cost(&self, xhat: &Tensor, x: &Tensor) -> Tensor {
        recon_cost(self.model.cost, xhat, x)
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
