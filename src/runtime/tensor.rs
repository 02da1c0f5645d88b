//! Tensor helpers shared by the nets, the samplers, OT and evaluation: row normalisation and the
//! spatial transformer's place/crop.

use tch::Tensor;

/// Centre and scale of a `where` code `w` ([B, 3]): (tx, ty) = shift * (w0, w1) in the canvas's
/// [-1, 1] coordinates, and the factor exp(zoom * w2).
fn position(w: &Tensor, shift: f64, zoom: f64) -> (Tensor, Tensor, Tensor) {
    (
        w.select(1, 0) * shift,
        w.select(1, 1) * shift,
        (w.select(1, 2) * zoom).exp(),
    )
}

/// Spatial transformer: draws images `img` ([B, C, h, w]) onto `size x size` canvases at the
/// positions `w`; an image keeps its native size relative to the canvas times exp(zoom w2).
/// Affine grid + bilinear sampling, differentiable in the image and the position.
pub fn place(img: &Tensor, w: &Tensor, size: i64, shift: f64, zoom: f64) -> Tensor {
    let dims = img.size();
    let (b, c, h) = (dims[0], dims[1], dims[2]);
    let (tx, ty, f) = position(w, shift, zoom);
    let inv = (f * (h as f64 / size as f64)).reciprocal();
    let zero = inv.zeros_like();
    // Canvas point u maps to image point (u - t) / s.
    let row0 = Tensor::stack(&[&inv, &zero, &(-&tx * &inv)], 1);
    let row1 = Tensor::stack(&[&zero, &inv, &(-&ty * &inv)], 1);
    let theta = Tensor::stack(&[row0, row1], 1);
    let grid = Tensor::affine_grid_generator(&theta, [b, c, size, size], false);
    img.grid_sampler(&grid.to_kind(img.kind()), 0, 0, false)
}

/// The inverse of [`place`]: cuts `size x size` windows out of canvases `img` at the positions
/// `w`, rescaled to the native size.
pub fn crop(img: &Tensor, w: &Tensor, size: i64, shift: f64, zoom: f64) -> Tensor {
    let dims = img.size();
    let (b, c, big) = (dims[0], dims[1], dims[2]);
    let (tx, ty, f) = position(w, shift, zoom);
    let s = f * (size as f64 / big as f64);
    let zero = s.zeros_like();
    // Window point v maps to canvas point t + s v.
    let row0 = Tensor::stack(&[&s, &zero, &tx], 1);
    let row1 = Tensor::stack(&[&zero, &s, &ty], 1);
    let theta = Tensor::stack(&[row0, row1], 1);
    let grid = Tensor::affine_grid_generator(&theta, [b, c, size, size], false);
    img.grid_sampler(&grid.to_kind(img.kind()), 0, 0, false)
}

/// Projects rows onto the unit sphere.
pub fn normalize(z: &Tensor) -> Tensor {
    let norm = z
        .square()
        .sum_dim_intlist(-1, true, z.kind())
        .sqrt()
        .clamp_min(1e-12);
    z / norm
}

/// Each consecutive pair of coordinates normalised: `[.., 2k]` onto the torus (S^1)^k.
pub fn torus(z: &Tensor) -> Tensor {
    let last = z.size().last().copied().unwrap_or(0);
    if z.dim() == 2 {
        // A batch of codes: sizes written with -1, so that a traced module keeps the batch free.
        return normalize(&z.reshape([-1, last / 2, 2])).reshape([-1, last]);
    }
    let mut pairs = z.size();
    pairs.pop();
    pairs.extend([last / 2, 2]);
    normalize(&z.reshape(pairs.as_slice())).reshape(z.size().as_slice())
}

/// The angles of points of the torus, `[.., 2k]` -> `[.., k]` in (-pi, pi].
pub fn torus_angles(z: &Tensor) -> Tensor {
    let mut shape = z.size();
    let last = shape.pop().unwrap_or(0);
    shape.extend([last / 2, 2]);
    let p = z.reshape(shape.as_slice());
    p.select(-1, 1).atan2(&p.select(-1, 0))
}

/// The exponential map at the origin of the Poincare ball of curvature -c,
/// tanh(sqrt(c)|v|) v / (sqrt(c)|v|), with the norm kept below (1 - 1e-5) / sqrt(c) so that
/// distances stay finite in float32.
pub fn expmap0(v: &Tensor, c: f64) -> Tensor {
    let sc = c.sqrt();
    let n = row_norm(v);
    let r = (&n * sc).tanh().clamp_max(1.0 - 1e-5) / sc;
    v * (r / n)
}

/// The logarithmic map at the origin of the Poincare ball, the inverse of [`expmap0`]:
/// artanh(sqrt(c)|x|) x / (sqrt(c)|x|).
pub fn logmap0(x: &Tensor, c: f64) -> Tensor {
    let sc = c.sqrt();
    let n = row_norm(x);
    let a = (&n * sc).clamp_max(1.0 - 1e-7).arctanh() / sc;
    x * (a / n)
}

/// Angles `[.., k]` to points of the torus `[.., 2k]`: (cos t, sin t) for each.
pub fn torus_points(angles: &Tensor) -> Tensor {
    let mut shape = angles.size();
    let k = shape.pop().unwrap_or(1);
    shape.push(2 * k);
    Tensor::stack(&[angles.cos(), angles.sin()], -1).reshape(shape.as_slice())
}

/// Moebius addition x (+) y of the Poincare ball of curvature -c, rows of `x` and `y` of one
/// shape (or broadcast): the ball's "translation" taking the origin to x.
pub fn mobius_add(x: &Tensor, y: &Tensor, c: f64) -> Tensor {
    let k = x.kind();
    let xy = (x * y).sum_dim_intlist(-1, true, k);
    let xx = x.square().sum_dim_intlist(-1, true, k);
    let yy = y.square().sum_dim_intlist(-1, true, k);
    let a: Tensor = 1.0 + &xy * (2.0 * c) + &yy * c;
    let b: Tensor = 1.0 - &xx * c;
    let den: Tensor = 1.0 + &xy * (2.0 * c) + &xx * &yy * (c * c);
    (a * x + b * y) / den.clamp_min(1e-15)
}

/// The Euclidean norm along the last axis, kept as an axis of size 1 and floored at 1e-15 (a
/// zero vector divides safely).
pub fn row_norm(v: &Tensor) -> Tensor {
    v.square()
        .sum_dim_intlist(-1, true, v.kind())
        .clamp_min(1e-30)
        .sqrt()
}
