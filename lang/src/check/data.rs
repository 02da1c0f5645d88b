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

    // long: a dispatch with one arm per data set.
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
            "tree" => {
                let (depth, branching) = (b.int("depth"), b.int("branching"));
                // Nodes: 1 + b + ... + b^depth, refused before any allocation when too many.
                let nodes = (0..=depth).try_fold(0i128, |acc, l| {
                    let level = (branching as i128).checked_pow(l as u32)?;
                    Some(acc + level).filter(|t| *t <= 1 << 20)
                });
                if nodes.is_none() {
                    self.err(
                        msg::invalid_value(
                            "the size of `tree`",
                            "at most 1,048,576 nodes (branching^depth)",
                            &format!("branching {branching} and depth {depth}"),
                        )
                        .label(call.span, "too many nodes")
                        .help("lower `depth` or `branching`"),
                    );
                    return None;
                }
                (
                    DataSource::Tree {
                        n: b.int("n") as usize,
                        depth: depth as usize,
                        branching: branching as usize,
                        dim: b.int("dim") as usize,
                        noise: b.real("noise"),
                        tree_seed: b.int("tree_seed") as u64,
                    },
                    vec![b.int("dim")],
                    false,
                )
            }
            "donut" => (
                DataSource::Donut {
                    n: b.int("n") as usize,
                    noise: b.real("noise"),
                },
                vec![3],
                false,
            ),
            "images" => {
                let c = b.int("channels");
                let size = b.int("size");
                let path = self.data_path(call, &b)?;
                (
                    DataSource::Images {
                        path,
                        channels: c,
                        size,
                        crop: b.int("crop"),
                        split: split_of(&b),
                        skip_bad: b.str("bad_files") == "skip",
                    },
                    vec![c, size, size],
                    false,
                )
            }
            "arrays" => {
                let path = self.data_path(call, &b)?;
                let (size, dim) = (b.int("size"), b.int("dim"));
                let shape = match (size, dim) {
                    (0, d) if d > 0 => vec![d],
                    (s, 0) if s > 0 => vec![b.int("channels"), s, s],
                    _ => {
                        self.err(
                            msg::invalid_value(
                                "the example shape of `arrays`",
                                "given by `size` (images) or by `dim` (vectors), one of the two",
                                &format!("size = {size}, dim = {dim}"),
                            )
                            .label(call.span, "the example's shape is not declared")
                            .help("declare images with `channels` and `size` (e.g. `arrays(\"x.npz\", key = \"x\", channels = 1, size = 28)`) or vectors with `dim` (e.g. `dim = 10`)"),
                        );
                        return None;
                    }
                };
                (
                    DataSource::Arrays {
                        path,
                        key: b.str("key"),
                        labels: b.str("labels"),
                        test_key: b.str("test_key"),
                        test_labels: b.str("test_labels"),
                        shape: shape.clone(),
                        split: split_of(&b),
                    },
                    shape,
                    false,
                )
            }
            "cifar10" => (
                DataSource::Cifar10 {
                    split: b.str("split"),
                    limit: b.int("limit") as usize,
                },
                vec![3, 32, 32],
                false,
            ),
            "shapes" => (
                DataSource::Shapes {
                    n: b.int("n") as usize,
                    size: b.int("size"),
                    seed: b.int("seed") as u64,
                },
                vec![3, b.int("size"), b.int("size")],
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
            base: None,
        })
    }

    /// The `path` argument of a file source, which must not be empty.
    fn data_path(&mut self, call: &Call, b: &args::Bound) -> Option<String> {
        let path = b.str("path");
        if path.trim().is_empty() {
            self.err(
                msg::invalid_value(&format!("`path` of `{}`", name_of(call)), "a file or folder", "\"\"")
                    .label(call.span, "no path")
                    .help("give the path relative to the model file, absolute, or under the data directory"),
            );
            return None;
        }
        Some(path)
    }
}

/// The `limit`, `test_fraction` and `split_seed` arguments of a source without its own split.
fn split_of(b: &args::Bound) -> ir::Split {
    ir::Split {
        limit: b.int("limit") as usize,
        test_fraction: b.real("test_fraction"),
        seed: b.int("split_seed") as u64,
    }
}
