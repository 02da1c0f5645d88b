//! Adam, written here so that its moments can be checkpointed and restored exactly (tch's
//! optimizer does not expose its state). Same update as torch.optim.Adam, or torch.optim.AdamW
//! with `weight_decay` > 0, after torch.nn.utils.clip_grad_norm_ when `clip_norm` > 0.

use std::collections::HashMap;

use tch::{nn, Tensor};

use crate::ir;

/// Adam over the trainable variables of a VarStore, in a fixed (name) order.
pub struct Adam {
    /// Prefix of the state's tensor names (`adam.` for the model, `disc0.adam.` ...).
    prefix: String,
    cfg: ir::Adam,
    eps: f64,
    /// The schedule's factor on `lr` for the next step.
    lr_factor: f64,
    t: i64,
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl Adam {
    pub fn new(vs: &nn::VarStore, cfg: &ir::Adam) -> Adam {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Adam {
            prefix: "adam.".into(),
            cfg: cfg.clone(),
            eps: 1e-8,
            lr_factor: 1.0,
            t: 0,
            params,
            m,
            v,
        }
    }

    /// The same with another prefix for its state's names.
    pub fn with_prefix(mut self, prefix: &str) -> Adam {
        self.prefix = prefix.to_string();
        self
    }

    /// The same with another epsilon in the denominator (1e-8 by default, as torch.optim.Adam).
    pub fn with_eps(mut self, eps: f64) -> Adam {
        self.eps = eps;
        self
    }

    /// Sets the learning-rate factor of the following steps (the schedule's).
    pub fn set_lr_factor(&mut self, factor: f64) {
        self.lr_factor = factor;
    }

    /// The learning rate of the next step.
    pub fn lr(&self) -> f64 {
        self.cfg.lr * self.lr_factor
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in self.params.iter_mut() {
            p.zero_grad();
        }
    }

    /// A scalar on the device: 0 when every gradient is finite, NaN otherwise (no host read, so
    /// that a step does not wait for it).
    pub fn grad_probe(&self) -> Option<Tensor> {
        let mut ok: Option<Tensor> = None;
        for (_, p) in &self.params {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let f = g.isfinite().all();
            ok = Some(match ok {
                Some(o) => o.logical_and(&f),
                None => f,
            });
        }
        let ok = ok?;
        let zero = Tensor::zeros([], (tch::Kind::Float, ok.device()));
        Some(zero.where_self(&ok, &zero.full_like(f64::NAN)))
    }

    /// Fault injection (training's `nan-grad@STEP`): the first gradient becomes NaN.
    pub fn poison_first_gradient(&mut self) {
        if let Some((_, p)) = self.params.first() {
            let mut g = p.grad();
            if g.defined() {
                let _ = tch::no_grad(|| g.fill_(f64::NAN));
            }
        }
    }

    /// One update from the gradients accumulated by `backward`.
    pub fn step(&mut self) {
        let (b1, b2, lr) = (self.cfg.beta1, self.cfg.beta2, self.lr());
        let decay = 1.0 - lr * self.cfg.weight_decay;
        self.t += 1;
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2 = 1.0 - b2.powi(self.t as i32);
        tch::no_grad(|| {
            let clip = self.clip_factor();
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                if let Some(c) = &clip {
                    g = &g * c;
                }
                if self.cfg.weight_decay > 0.0 {
                    let _ = p.g_mul_scalar_(decay);
                }
                let _ = self.m[i].g_mul_scalar_(b1);
                let _ = self.m[i].g_add_(&(&g * (1.0 - b1)));
                let _ = self.v[i].g_mul_scalar_(b2);
                let _ = self.v[i].addcmul_(&(&g * (1.0 - b2)), &g);
                let denom = self.v[i].sqrt() / bc2.sqrt() + self.eps;
                let _ = p.g_sub_(&(&self.m[i] / denom * (lr / bc1)));
            }
        });
    }

    /// The factor that scales the gradients down to `clip_norm` (as clip_grad_norm_:
    /// max_norm / (norm + 1e-6), at most 1), on the device; None when clipping is off.
    fn clip_factor(&self) -> Option<Tensor> {
        if self.cfg.clip_norm <= 0.0 {
            return None;
        }
        let squares: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(|g| g.defined())
            .map(|g| g.to_kind(tch::Kind::Double).square().sum(tch::Kind::Double))
            .collect();
        if squares.is_empty() {
            return None;
        }
        let norm = Tensor::stack(&squares, 0).sum(tch::Kind::Double).sqrt();
        let factor = (norm + 1e-6).reciprocal() * self.cfg.clip_norm;
        Some(factor.clamp_max(1.0))
    }

    /// The state as named tensors: `PREFIXm.NAME`, `PREFIXv.NAME` and `PREFIXt`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let pre = &self.prefix;
        let mut out = vec![(format!("{pre}t"), Tensor::from_slice(&[self.t]))];
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((
                format!("{pre}m.{name}"),
                self.m[i].to_device(tch::Device::Cpu),
            ));
            out.push((
                format!("{pre}v.{name}"),
                self.v[i].to_device(tch::Device::Cpu),
            ));
        }
        out
    }

    /// Restores a state written by [`Adam::state`]; a missing entry is an error.
    pub fn load_state(&mut self, map: &HashMap<String, Tensor>) -> Result<(), String> {
        let get = |k: &str| {
            map.get(k)
                .ok_or_else(|| format!("optimizer state lacks `{k}`"))
        };
        let pre = self.prefix.clone();
        self.t = get(&format!("{pre}t"))?.int64_value(&[0]);
        for (i, (name, p)) in self.params.iter().enumerate() {
            let dev = p.device();
            self.m[i] = get(&format!("{pre}m.{name}"))?.to_device(dev);
            self.v[i] = get(&format!("{pre}v.{name}"))?.to_device(dev);
        }
        Ok(())
    }
}
