//! Paths in the latent spaces: straight lines, great circles, the shortest arc on each circle of
//! a torus, geodesics of the Poincare ball.

use tch::{Kind, Tensor};

use crate::ir::Space;
use crate::runtime::tensor::{mobius_add, row_norm, torus_angles, torus_points};

/// The path between two test examples' codes: linear in R^d, great circle on the sphere,
/// straight on the simplex, the shortest arc on each circle of a torus, the geodesic of the
/// Poincare ball (x (+) tanh(t artanh(sqrt(c)|u|)) u / (sqrt(c)|u|) with u = (-x) (+) y);
/// `steps` points including both ends.
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
        Space::Torus { .. } => {
            let (ta, tb) = (torus_angles(a), torus_angles(b));
            let diff = &tb - &ta;
            // The signed shortest difference, in (-pi, pi].
            let delta = diff.sin().atan2(&diff.cos());
            torus_points(&(ta.unsqueeze(0) + &t * delta.unsqueeze(0)))
        }
        Space::Ball { c, .. } => {
            // In float64: near the boundary Moebius addition loses float32's digits. The end
            // points are the codes themselves.
            let (x, y) = (
                a.to_kind(Kind::Double).unsqueeze(0),
                b.to_kind(Kind::Double).unsqueeze(0),
            );
            let t = t.to_kind(Kind::Double);
            let u = mobius_add(&(-&x), &y, c);
            let sc = c.sqrt();
            let n = row_norm(&u);
            let r = ((&n * sc).clamp_max(1.0 - 1e-12).arctanh() * &t).tanh() / sc;
            let path = mobius_add(&x.expand_as(&(&t * &u)), &(&u * (r / n)), c).to_kind(a.kind());
            if steps < 3 {
                return path;
            }
            Tensor::cat(
                &[a.unsqueeze(0), path.narrow(0, 1, steps - 2), b.unsqueeze(0)],
                0,
            )
        }
        _ => {
            let one_minus_t: Tensor = 1.0 - &t;
            one_minus_t * a.unsqueeze(0) + &t * b.unsqueeze(0)
        }
    }
}
