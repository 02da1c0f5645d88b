//! The data transforms of a model file (canvas placement, salt noise).

use tch::{Kind, Tensor};

/// Applies the data transforms of a model file. The random positions and noise are drawn from a
/// fixed seed per split (not the model's seed), so that every model sees the same data.
pub fn transform(x: &Tensor, transforms: &[crate::ir::Transform], split: &str) -> Tensor {
    use crate::ir::Transform;
    tch::manual_seed(if split == "test" {
        0x5AE_7E57
    } else {
        0x5AE_7A1
    });
    let mut x = x.shallow_clone();
    tch::no_grad(|| {
        for t in transforms {
            x = match *t {
                Transform::Canvas { size, shift, zoom } => {
                    let n = x.size()[0];
                    let mut out = vec![];
                    let mut i = 0;
                    while i < n {
                        let b = (n - i).min(1000);
                        let chunk = x.narrow(0, i, b);
                        let w = Tensor::randn([b, 3], (Kind::Float, x.device())).clamp(-2.0, 2.0);
                        out.push(crate::runtime::tensor::place(&chunk, &w, size, shift, zoom));
                        i += b;
                    }
                    Tensor::cat(&out, 0)
                }
                Transform::Salt { p } => {
                    let mask = Tensor::rand_like(&x).lt(p).to_kind(x.kind());
                    x.maximum(&mask)
                }
            };
        }
    });
    x
}
