//! The `data` clause: data sets and their transforms.

use super::*;
use crate::catalogue::*;

impl<'a> Checker<'a> {
    pub(super) fn data(&mut self, call: &Call, transforms: &[Call]) -> Option<ir::DataSpec> {
        let spec = self.data_set(call);
        let mut out = vec![];
        let mut ok = true;
        for t in transforms {
            let Some(params) = self.lookup(t, TRANSFORMS, Unknown::Transform, "data transforms")
            else {
                ok = false;
                continue;
            };
            let Some(b) = self.bind(t, params, &Env::new()) else {
                ok = false;
                continue;
            };
            out.push((
                name_of(t),
                match name_of(t) {
                    "canvas" => ir::Transform::Canvas {
                        size: b.int("size"),
                        shift: b.real("shift"),
                        zoom: b.real("zoom"),
                    },
                    _ => ir::Transform::Salt { p: b.real("p") },
                },
                t.span,
            ));
        }
        let mut spec = spec?;
        for (tname, t, span) in out {
            if !spec.is_image() {
                self.err(
                    msg::layer_input(
                        tname,
                        "image data",
                        &format!("points {}", shape_str(&spec.shape)),
                    )
                    .label(span, "an image transform")
                    .label(
                        call.span,
                        format!("these data are points {}", shape_str(&spec.shape)),
                    )
                    .help("`canvas` and `salt` apply to MNIST-like image data"),
                );
                return None;
            }
            if let ir::Transform::Canvas { size, .. } = t {
                spec.shape = vec![spec.shape[0], size, size];
            }
            spec.transforms.push(t);
        }
        ok.then_some(spec)
    }

    pub(super) fn data_set(&mut self, call: &Call) -> Option<ir::DataSpec> {
        let params = self.lookup(call, DATASETS, Unknown::Dataset, "data sets")?;
        let b = self.bind(call, params, &Env::new())?;
        let n = name_of(call);
        let (source, shape, binarize) = match n {
            "mnist" | "fashion_mnist" => (
                DataSource::Idx {
                    dir: n.replace('_', "-"),
                    split: b.str("split"),
                    limit: b.int("limit") as usize,
                },
                vec![1, 28, 28],
                b.bool("binarize"),
            ),
            "rings" => (
                DataSource::Rings {
                    n: b.int("n") as usize,
                    k: b.int("k") as usize,
                    noise: b.real("noise"),
                },
                vec![2],
                false,
            ),
            // One arm per synthetic set: the same shape, other fields.
            "gaussian_grid" => (
                DataSource::GaussianGrid {
                    n: b.int("n") as usize,
                    k: b.int("k") as usize,
                    std: b.real("std"),
                },
                vec![2],
                false,
            ),
            _ => (
                DataSource::SwissRoll {
                    n: b.int("n") as usize,
                    noise: b.real("noise"),
                },
                vec![2],
                false,
            ),
        };
        Some(ir::DataSpec {
            source,
            shape,
            binarize,
            transforms: vec![],
        })
    }
}
