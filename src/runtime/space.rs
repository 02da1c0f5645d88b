//! Paths in the latent spaces: straight lines, great circles.

use tch::{Kind, Tensor};

use crate::ir::Space;

/// The path between two test examples' codes: linear in R^d, great circle on the sphere,
/// straight on the simplex; `steps` points including both ends.
pub fn latent_path(a: &Tensor, b: &Tensor, space: Space, steps: i64) -> Tensor {
    let t = Tensor::linspace(0.0, 1.0, steps, (Kind::Float, a.device())).unsqueeze(1);
    match space {
        Space::Sphere { .. } => {
            let cos = (a * b).sum(Kind::Float).clamp(-1.0 + 1e-6, 1.0 - 1e-6);
            let omega = cos.acos();
            let so = omega.sin();
            let one_minus_t: Tensor = 1.0 - &t;
            let wa = (one_minus_t * &omega).sin() / &so;
            let wb = (&t * &omega).sin() / &so;
            wa * a.unsqueeze(0) + wb * b.unsqueeze(0)
        }
        _ => {
            let one_minus_t: Tensor = 1.0 - &t;
            one_minus_t * a.unsqueeze(0) + &t * b.unsqueeze(0)
        }
    }
}
