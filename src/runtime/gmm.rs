//! A Gaussian mixture with full covariances, fitted by EM: the post-hoc sampler of trained codes
//! (pythae's GaussianMixtureSampler; sklearn's `GaussianMixture` with its defaults: k-means-free
//! initialisation from random codes, `reg_covar` 1e-6, tolerance 1e-3 on the mean log-likelihood).
//!
//! Codes on a curved space are fitted in coordinates where a Gaussian makes sense and mapped
//! back: sphere codes in their ambient R^(k+1) and projected radially onto the sphere; simplex
//! codes in centred log-ratio coordinates (log z minus its mean), mapped back by softmax.

use tch::{Device, Kind, Tensor};

use crate::ir;

/// A fitted mixture (float64, on the CPU).
#[derive(Debug)]
pub struct Gmm {
    /// Mixing weights [K].
    pub weights: Tensor,
    /// Means [K, d].
    pub means: Tensor,
    /// Cholesky factors of the covariances [K, d, d] (lower triangular).
    pub chols: Tensor,
    /// The latent components (offset, space) the coordinates map back to.
    spaces: Vec<(i64, ir::Space)>,
}

/// How a fit went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FitReport {
    pub components: i64,
    pub iterations: usize,
    pub converged: bool,
    /// Mean log-likelihood per code in the fitting coordinates, after each iteration.
    pub log_likelihood: Vec<f64>,
}

/// Each latent component's first coordinate in the code, and its space.
fn spaces(model: &ir::Model) -> Vec<(i64, ir::Space)> {
    let mut out = vec![];
    let mut off = 0;
    for l in &model.latents {
        out.push((off, l.space));
        off += l.space.dim();
    }
    out
}

/// Codes to fitting coordinates: simplex components as centred log-ratios.
fn to_fit(codes: &Tensor, spaces: &[(i64, ir::Space)]) -> Tensor {
    let parts: Vec<Tensor> = spaces
        .iter()
        .map(|(off, s)| {
            let c = codes.narrow(1, *off, s.dim());
            match s {
                ir::Space::Simplex { .. } => {
                    let l = c.clamp_min(1e-30).log();
                    &l - l.mean_dim(-1, true, Kind::Double)
                }
                // The ball's tangent space at the origin; torus pairs stay in R^2k.
                ir::Space::Ball { c: k, .. } => crate::runtime::tensor::logmap0(&c, *k),
                _ => c,
            }
        })
        .collect();
    Tensor::cat(&parts, 1)
}

/// Fitting coordinates back onto the latent space.
fn from_fit(y: &Tensor, spaces: &[(i64, ir::Space)]) -> Tensor {
    let parts: Vec<Tensor> = spaces
        .iter()
        .map(|(off, s)| {
            let c = y.narrow(1, *off, s.dim());
            match s {
                ir::Space::Simplex { .. } => c.softmax(-1, Kind::Double),
                ir::Space::Sphere { .. } => crate::runtime::tensor::normalize(&c),
                ir::Space::Torus { .. } => crate::runtime::tensor::torus(&c),
                ir::Space::Ball { c: k, .. } => crate::runtime::tensor::expmap0(&c, *k),
                ir::Space::Euclidean { .. } => c,
            }
        })
        .collect();
    Tensor::cat(&parts, 1)
}

/// Log densities [N, K] of each point under each component.
fn log_densities(x: &Tensor, means: &Tensor, chols: &Tensor) -> Tensor {
    let d = x.size()[1] as f64;
    let k = means.size()[0];
    let cols: Vec<Tensor> = (0..k)
        .map(|j| {
            let diff = (x - means.get(j)).transpose(0, 1); // [d, N]
            let l = chols.get(j);
            let sol = l.linalg_solve_triangular(&diff, false, true, false); // L^-1 (x - mu)
            let maha = sol.square().sum_dim_intlist(0, false, Kind::Double);
            let logdet = l.diagonal(0, 0, 1).log().sum(Kind::Double) * 2.0;
            (maha + logdet + d * (2.0 * std::f64::consts::PI).ln()) * -0.5
        })
        .collect();
    Tensor::stack(&cols, 1)
}

impl Gmm {
    /// Fits `k` components to `codes` [N, d] of `model`'s latent space by EM, from `k`
    /// distinct random codes as means (seeded by `seed`), at most `max_iter` iterations.
    pub fn fit(
        codes: &Tensor,
        model: &ir::Model,
        k: i64,
        seed: i64,
        max_iter: usize,
    ) -> Result<(Gmm, FitReport), String> {
        let spaces = spaces(model);
        let x = to_fit(&codes.to_device(Device::Cpu).to_kind(Kind::Double), &spaces);
        let (n, d) = (x.size()[0], x.size()[1]);
        if k < 1 || k > n {
            return Err(format!(
                "{k} components for {n} codes: choose between 1 and the number of codes"
            ));
        }
        tch::manual_seed(seed);
        let pick = Tensor::randperm(n, (Kind::Int64, Device::Cpu)).narrow(0, 0, k);
        let mut means = x.index_select(0, &pick);
        let eye = Tensor::eye(d, (Kind::Double, Device::Cpu)) * 1e-6;
        let centred = &x - x.mean_dim(0, true, Kind::Double);
        let cov = centred.transpose(0, 1).matmul(&centred) / n as f64 + &eye;
        let mut chols = cov.linalg_cholesky(false).unsqueeze(0).repeat([k, 1, 1]);
        let mut weights = Tensor::full([k], 1.0 / k as f64, (Kind::Double, Device::Cpu));
        let mut report = FitReport {
            components: k,
            iterations: 0,
            converged: false,
            log_likelihood: vec![],
        };
        for it in 0..max_iter {
            // E step.
            let lp = log_densities(&x, &means, &chols) + weights.log().unsqueeze(0);
            let norm = lp.logsumexp([1].as_slice(), true);
            let ll = norm.mean(Kind::Double).double_value(&[]);
            let resp = (lp - &norm).exp(); // [N, K]
                                           // M step.
            let nk = resp.sum_dim_intlist(0, false, Kind::Double) + 1e-10 * n as f64;
            means = resp.transpose(0, 1).matmul(&x) / nk.unsqueeze(1);
            let covs: Vec<Tensor> = (0..k)
                .map(|j| {
                    let diff = &x - means.get(j);
                    let r = resp.select(1, j).unsqueeze(1);
                    (&diff * r).transpose(0, 1).matmul(&diff) / nk.get(j) + &eye
                })
                .collect();
            let stacked = Tensor::stack(&covs, 0);
            chols = stacked.linalg_cholesky_ex(false, false).0;
            if !bool::try_from(chols.isfinite().all()).unwrap_or(false) {
                return Err(format!(
                    "a covariance became singular at iteration {}: the codes are too few or degenerate for {k} components; choose fewer",
                    it + 1
                ));
            }
            weights = &nk / nk.sum(Kind::Double);
            report.iterations = it + 1;
            let prev = report.log_likelihood.last().copied();
            report.log_likelihood.push(ll);
            if prev.is_some_and(|p| (ll - p).abs() < 1e-3) {
                report.converged = true;
                break;
            }
        }
        // Contiguous, so that they can be saved as they are.
        Ok((
            Gmm {
                weights: weights.contiguous(),
                means: means.contiguous(),
                chols: chols.contiguous(),
                spaces,
            },
            report,
        ))
    }

    /// `n` draws on the latent space, as `kind` on `device`.
    pub fn sample(&self, n: i64, kind: Kind, device: Device) -> Tensor {
        let d = self.means.size()[1];
        let comp = self.weights.multinomial(n, true);
        let eps = Tensor::randn([n, d, 1], (Kind::Double, Device::Cpu));
        let y = self.means.index_select(0, &comp)
            + self
                .chols
                .index_select(0, &comp)
                .matmul(&eps)
                .squeeze_dim(2);
        from_fit(&y, &self.spaces).to_kind(kind).to_device(device)
    }

    /// The mixture as named tensors (for `sampler_gmm.safetensors`).
    pub fn tensors(&self) -> Vec<(&'static str, &Tensor)> {
        vec![
            ("weights", &self.weights),
            ("means", &self.means),
            ("chols", &self.chols),
        ]
    }

    /// A mixture read back for `model`'s latent space; an error names what is missing.
    pub fn from_tensors(
        mut named: std::collections::HashMap<String, Tensor>,
        model: &ir::Model,
    ) -> Result<Gmm, String> {
        let mut take = |k: &str| named.remove(k).ok_or_else(|| format!("no `{k}` tensor"));
        let (weights, means, chols) = (take("weights")?, take("means")?, take("chols")?);
        let spaces = spaces(model);
        let d = model.latent_dim();
        let have = means.size().get(1).copied().unwrap_or(0);
        if have != d {
            return Err(format!(
                "its means have {have} coordinates, the model's code has {d}"
            ));
        }
        Ok(Gmm {
            weights: weights.to_kind(Kind::Double),
            means: means.to_kind(Kind::Double),
            chols: chols.to_kind(Kind::Double),
            spaces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(latent: &str) -> ir::Model {
        let (dim, end) = match latent {
            l if l.starts_with("S^2") => (3, " normalize"),
            l if l.starts_with("simplex(4)") => (4, " softmax"),
            _ => (2, ""),
        };
        let text = format!(
            "data rings()\nlatent {latent}\nencoder {{ linear({dim}){end} }}\ngenerator {{ linear(2) }}\npenalty mmd()\n"
        );
        crate::compile_source("m.sae", &text, None)
            .model
            .expect("model")
    }

    /// Two well separated Gaussians with known weights, means and covariances are recovered,
    /// and EM never lowers the likelihood.
    #[test]
    fn em_recovers_a_known_mixture() {
        tch::manual_seed(1);
        let o = (Kind::Double, Device::Cpu);
        let a = Tensor::randn([3000, 2], o) * Tensor::from_slice(&[0.5, 0.2])
            + Tensor::from_slice(&[-4.0, 0.0]);
        let l = Tensor::from_slice(&[1.0, 0.0, 0.8, 0.6]).reshape([2, 2]);
        let b = Tensor::randn([1000, 2], o).matmul(&l.tr()) + Tensor::from_slice(&[4.0, 3.0]);
        let x = Tensor::cat(&[a, b], 0);
        let (g, r) = Gmm::fit(&x, &model("R^2 ~ normal()"), 2, 0, 200).expect("fit");
        assert!(r.converged, "{r:?}");
        for w in r.log_likelihood.windows(2) {
            assert!(w[1] >= w[0] - 1e-9, "EM lowered the likelihood: {r:?}");
        }
        let order = if g.means.double_value(&[0, 0]) < 0.0 {
            [0, 1]
        } else {
            [1, 0]
        };
        let w = g.weights.double_value(&[order[0]]);
        assert!((w - 0.75).abs() < 0.02, "weight {w}");
        let m1 = Vec::<f64>::try_from(g.means.get(order[1])).expect("mean");
        assert!(
            (m1[0] - 4.0).abs() < 0.1 && (m1[1] - 3.0).abs() < 0.1,
            "{m1:?}"
        );
        // The second covariance is L L^T = [[1, 0.8], [0.8, 1]].
        let c = g.chols.get(order[1]);
        let cov = Vec::<f64>::try_from(c.matmul(&c.tr()).flatten(0, -1)).expect("cov");
        for (got, want) in cov.iter().zip([1.0, 0.8, 0.8, 1.0]) {
            assert!((got - want).abs() < 0.1, "{cov:?}");
        }
        let s = g.sample(4000, Kind::Double, Device::Cpu);
        let right = s
            .select(1, 0)
            .gt(0.0)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]);
        assert!((right - 0.25).abs() < 0.03, "{right}");
    }

    #[test]
    fn samples_of_curved_spaces_lie_on_them() {
        tch::manual_seed(2);
        let o = (Kind::Double, Device::Cpu);
        let sphere = crate::runtime::tensor::normalize(&Tensor::randn([500, 3], o));
        let (g, _) = Gmm::fit(&sphere, &model("S^2 ~ uniform_sphere()"), 3, 0, 50).expect("fit");
        let s = g.sample(200, Kind::Double, Device::Cpu);
        let norms = s.square().sum_dim_intlist(1, false, Kind::Double).sqrt();
        assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-9);
        let simplex = Tensor::rand([500, 4], o).softmax(-1, Kind::Double);
        let (g, _) =
            Gmm::fit(&simplex, &model("simplex(4) ~ dirichlet(1)"), 2, 0, 50).expect("fit");
        let s = g.sample(200, Kind::Double, Device::Cpu);
        assert!(s.min().double_value(&[]) > 0.0);
        let sums = s.sum_dim_intlist(1, false, Kind::Double);
        assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-12);
    }

    #[test]
    fn more_components_than_codes_is_an_error() {
        let x = Tensor::randn([5, 2], (Kind::Double, Device::Cpu));
        let e = Gmm::fit(&x, &model("R^2 ~ normal()"), 6, 0, 10).expect_err("too many");
        assert!(e.contains("6 components for 5 codes"), "{e}");
    }
}
