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
