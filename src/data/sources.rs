//! The file and procedural sources (`images`, `arrays`, `cifar10`, `shapes`) as data sets: paths
//! resolved, examples chosen (`limit`), the test split held out where the source has none.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Axis, IxDyn};
use tch::{Device, Kind, Tensor};

use super::npy::{NpFile, Numbers};
use super::{cifar, folder, shapes, split, DataError, Dataset};
use crate::ir::{DataSource, DataSpec, Split};

/// The data set of a file or procedural source, or None for the other sources.
pub(super) fn load(
    spec: &DataSpec,
    which: &str,
    data_dir: Option<&Path>,
    device: Device,
) -> Result<Option<Dataset>, DataError> {
    let base = spec.base.as_deref().map(Path::new);
    // The variants' field lists taken apart here and in ir/display.rs: both ends of a stage.
    let set = match &spec.source {
        DataSource::Images {
            path,
            channels,
            size,
            crop,
            split,
            skip_bad,
        } => {
            let root = resolve(path, base, data_dir)?;
            let s = folder::Settings {
                channels: *channels as usize,
                size: *size as usize,
                crop: *crop as usize,
                skip_bad: *skip_bad,
            };
            folder_set(&root, &s, split, which)?
        }
        DataSource::Arrays {
            path,
            key,
            labels,
            test_key,
            test_labels,
            shape,
            split,
        } => {
            let mut f = NpFile::open(&resolve(path, base, data_dir)?)?;
            if test_key.is_empty() {
                let set = array_set(&mut f, key, labels, shape)?;
                held_out(first(set, split.limit), split, which)
            } else if which == "test" {
                array_set(&mut f, test_key, test_labels, shape)?
            } else {
                first(array_set(&mut f, key, labels, shape)?, split.limit)
            }
        }
        DataSource::Cifar10 { split, limit } => {
            let which = if which == "test" {
                "test"
            } else {
                split.as_str()
            };
            first(cifar_set(which, data_dir)?, *limit)
        }
        DataSource::Shapes { n, size, seed } => shapes_set(spec, *n, *size, *seed, which),
        _ => return Ok(None),
    };
    Ok(Some(set.place(device, false)))
}

/// The training or test images of a folder.
fn folder_set(
    root: &Path,
    s: &folder::Settings,
    split: &Split,
    which: &str,
) -> Result<Dataset, DataError> {
    let d = folder::load(root, s)?;
    let shape = [s.channels as i64, s.size as i64, s.size as i64];
    // Rows are chosen before any conversion: only the chosen images become floats.
    let (im, rows, origin) = match &d.test {
        Some(test) => {
            let im = if which == "test" { test } else { &d.train };
            let rows = chosen(im.n, split);
            (im, rows, format!("{} ({which}/)", root.display()))
        }
        None => {
            let origin = root.display().to_string();
            let kept = chosen(d.train.n, split);
            let rows = held_out_rows(kept.len(), split, which, &origin)
                .into_iter()
                .map(|r| kept[r as usize])
                .collect();
            (&d.train, rows, origin)
        }
    };
    let per = shape.iter().product::<i64>() as usize;
    let mut pixels = Vec::with_capacity(rows.len() * per);
    for &r in &rows {
        pixels.extend_from_slice(&im.pixels[r as usize * per..(r as usize + 1) * per]);
    }
    Ok(Dataset::new(
        pixels_u8(&pixels, rows.len(), &shape),
        im.labels
            .as_ref()
            .map(|l| Tensor::from_slice(&rows.iter().map(|&r| l[r as usize]).collect::<Vec<_>>())),
        origin,
    ))
}

/// CIFAR-10's training (all five batches) or test set.
fn cifar_set(which: &str, data_dir: Option<&Path>) -> Result<Dataset, DataError> {
    let files = cifar::find(which, &super::search_path(data_dir))?;
    let (mut pixels, mut labels) = (vec![], vec![]);
    for f in &files {
        let (p, l) = cifar::read(f)?;
        pixels.extend(p);
        labels.extend(l);
    }
    let origin = files[0].parent().unwrap_or(Path::new("."));
    Ok(Dataset::new(
        pixels_u8(&pixels, labels.len(), &[3, 32, 32]),
        Some(Tensor::from_slice(&labels)),
        origin.display().to_string(),
    ))
}

/// The procedural shapes: the test set is a fifth as large, drawn from a stream of its own.
fn shapes_set(spec: &DataSpec, n: usize, size: i64, seed: u64, which: &str) -> Dataset {
    let (count, stream) = if which == "test" {
        ((n / 5).max(1), seed.wrapping_add(0x5EED))
    } else {
        (n, seed)
    };
    let d = shapes::draw(count, size as usize, stream);
    let factors =
        Tensor::from_slice(&d.factors).reshape([count as i64, shapes::FACTORS.len() as i64]);
    Dataset {
        factors: Some((
            shapes::FACTORS.iter().map(|f| f.to_string()).collect(),
            factors,
        )),
        ..Dataset::new(
            Tensor::from_slice(&d.pixels).reshape([count as i64, 3, size, size]),
            Some(Tensor::from_slice(&d.labels)),
            spec.source.to_string(),
        )
    }
}

/// uint8 pixels as a [n, C, H, W] uint8 tensor (values 0..255: a quarter of float32's memory).
fn pixels_u8(pixels: &[u8], n: usize, shape: &[i64]) -> Tensor {
    let mut dims = vec![n as i64];
    dims.extend_from_slice(shape);
    Tensor::from_slice(pixels).reshape(dims)
}

/// The first `limit` examples (all for 0).
fn first(set: Dataset, limit: usize) -> Dataset {
    let n = set.len() as usize;
    if limit == 0 || limit >= n {
        if limit > n {
            crate::util::warn_once(&format!(
                "warning: limit {limit} is more than the {n} examples of {}; all {n} are used",
                set.origin
            ));
        }
        return set;
    }
    let origin = set.origin.clone();
    set.rows(
        &Tensor::arange(limit as i64, (Kind::Int64, Device::Cpu)),
        origin,
    )
}

/// `limit` examples of an image folder chosen by the split's seed (a folder sorted by class
/// would otherwise give the first classes only), in their original order.
fn chosen(n: usize, s: &Split) -> Vec<i64> {
    if s.limit == 0 || s.limit >= n {
        return (0..n as i64).collect();
    }
    let mut rows = split::shuffled(n, s.seed.wrapping_add(1))[..s.limit].to_vec();
    rows.sort_unstable();
    rows
}

/// The rows (of `n`) of the training or test part of a source without a test split of its own.
fn held_out_rows(n: usize, s: &Split, which: &str, origin: &str) -> Vec<i64> {
    if s.test_fraction == 0.0 {
        if which == "test" {
            eprintln!(
                "warning: test_fraction = 0 holds out no test set; evaluation measures on the training examples of {origin}"
            );
        }
        return (0..n as i64).collect();
    }
    let (test, train) = split::test_rows(n, s.test_fraction, s.seed);
    if s.limit > 0 && s.limit == n {
        crate::util::warn_once(&format!(
            "note: limit {} is applied before the test split of {origin}: {} of these examples train and {} test",
            s.limit,
            train.len(),
            test.len()
        ));
    }
    if which == "test" {
        test
    } else {
        train
    }
}

/// The training or test part of a source without a test split of its own.
fn held_out(set: Dataset, s: &Split, which: &str) -> Dataset {
    let origin = set.origin.clone();
    let rows = held_out_rows(set.len() as usize, s, which, &origin);
    if rows.len() as i64 == set.len() {
        return set;
    }
    set.rows(&Tensor::from_slice(&rows), origin)
}

/// Where a data path is: absolute (or `~/...`) as given; relative paths from the model file's
/// folder, then `--data-dir`, `$SAE_DSL_DATA` and the default data folders.
fn resolve(path: &str, base: Option<&Path>, data_dir: Option<&Path>) -> Result<PathBuf, DataError> {
    let p = match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    };
    let candidates: Vec<PathBuf> = if p.is_absolute() {
        vec![p]
    } else {
        base.into_iter()
            .map(Path::to_path_buf)
            .chain(super::search_path(data_dir))
            .map(|d| d.join(&p))
            .collect()
    };
    if let Some(found) = candidates.iter().find(|c| c.exists()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates
        .iter()
        .map(|c| format!("  {}", c.display()))
        .collect();
    Err(DataError::Path {
        path: path.to_string(),
        help: format!(
            "looked for:\n{}\na relative path starts from the model file's folder, then --data-dir, ${} and the default data folders",
            looked.join("\n"),
            super::DATA_ENV
        ),
    })
}

/// One array (and its labels) of a NumPy file as a data set of examples shaped `shape`.
fn array_set(f: &mut NpFile, key: &str, labels: &str, shape: &[i64]) -> Result<Dataset, DataError> {
    let path = f.path().to_path_buf();
    let (key, a) = f.numbers(key, "images")?;
    let shown = if key.is_empty() {
        String::new()
    } else {
        format!("array \"{key}\" ")
    };
    let bad = |what: String, help: &str| DataError::Array {
        path: path.clone(),
        what,
        help: help.to_string(),
    };
    let found = a.shape();
    let mismatch = || {
        let dims = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>();
        let expected = if shape.len() == 1 {
            format!("[N, {}]", shape[0])
        } else {
            let (c, s) = (shape[0], shape[1]);
            let grey = if c == 1 {
                format!("[N, {s}, {s}], ")
            } else {
                String::new()
            };
            format!("{grey}[N, {c}, {s}, {s}] or [N, {s}, {s}, {c}]")
        };
        bad(
            format!(
                "{shown}has shape {found:?}; the model declares examples [{}], so it must be {expected}",
                dims.join(", ")
            ),
            "declare the shape the file holds (`channels` and `size` for images, `dim` for vectors), or reshape the array",
        )
    };
    let none = || {
        bad(
            format!("{shown}holds no examples"),
            "the first axis counts the examples",
        )
    };
    let mut dims = vec![0i64];
    dims.extend_from_slice(shape);
    let x = match a {
        // uint8 images stay uint8 (divided by 255 batch by batch); uint8 vectors are numbers.
        Numbers::U8(a) if shape.len() == 3 => {
            let values = arranged(a, shape).ok_or_else(mismatch)?;
            dims[0] = values.shape()[0] as i64;
            if dims[0] == 0 {
                return Err(none());
            }
            let flat: Vec<u8> = values.iter().copied().collect();
            Tensor::from_slice(&flat).reshape(&dims)
        }
        a => {
            let values = match a {
                Numbers::U8(a) => a.mapv(f32::from),
                Numbers::F32(a) => a,
                Numbers::F64(a) => a.mapv(|v| v as f32),
            };
            let values = arranged(values, shape).ok_or_else(mismatch)?;
            let n = values.shape()[0];
            if n == 0 {
                return Err(none());
            }
            dims[0] = n as i64;
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                let count = values.iter().filter(|v| !v.is_finite()).count();
                let per = values.len() / n;
                return Err(bad(
                    format!("{shown}holds {count} NaN or infinite value{} (the first, {v}, in example {})", if count == 1 { "" } else { "s" }, i / per),
                    "remove or repair the examples with NaN or infinite values; nothing is replaced silently",
                ));
            }
            let flat: Vec<f32> = values.iter().copied().collect();
            if shape.len() == 3 {
                float_image_range(&flat, &path, &shown)?;
            }
            Tensor::from_slice(&flat).reshape(&dims)
        }
    };
    let labels = if labels.is_empty() {
        None
    } else {
        Some(label_array(f, labels, dims[0] as usize)?)
    };
    Ok(Dataset::new(
        x,
        labels.map(|l| Tensor::from_slice(&l)),
        path.display().to_string(),
    ))
}

/// Float images must lie in [0, 1]: 0-255 pixels stored as floats (values above 2) stop with
/// the fix, values slightly outside are a warning (said once: both splits read the array).
fn float_image_range(flat: &[f32], path: &Path, shown: &str) -> Result<(), DataError> {
    let (lo, hi) = flat
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    // Pixels of 0..255 stored as floats would train on values 255 times too large: a clear
    // stop, not a warning that scrolls away.
    if hi > 2.0 {
        return Err(DataError::Array {
            path: path.to_path_buf(),
            what: format!("{shown}holds float images with values up to {hi} (and down to {lo}); images are read as they are and must lie in [0, 1]"),
            help: "these look like 0-255 pixel values stored as floats: divide them by 255, or store them as uint8 (uint8 images are divided by 255 when read)".to_string(),
        });
    }
    if lo < 0.0 || hi > 1.0 {
        crate::util::warn_once(&format!(
            "warning: {}: {shown}float images span [{lo}, {hi}]; images are expected in [0, 1] (uint8 arrays are divided by 255, floats are used as they are)",
            path.display()
        ));
    }
    Ok(())
}

/// The examples of `a` as [N, ...shape]: [N, S, S] for grey images gains a channel axis,
/// [N, S, S, C] is moved to [N, C, S, S]; None when the array holds no such examples.
fn arranged<T: Copy>(a: ArrayD<T>, shape: &[i64]) -> Option<ArrayD<T>> {
    let s: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let d = a.shape().to_vec();
    match (s.as_slice(), d.as_slice()) {
        ([dim], [_, got]) if got == dim => Some(a),
        ([1, h, w], [_, gh, gw]) if (gh, gw) == (h, w) => Some(a.insert_axis(Axis(1))),
        ([c, h, w], [_, gc, gh, gw]) if (gc, gh, gw) == (c, h, w) => Some(a),
        ([c, h, w], [n, gh, gw, gc]) if (gc, gh, gw) == (c, h, w) => {
            let moved = a.permuted_axes(IxDyn(&[0, 3, 1, 2]));
            let v: Vec<T> = moved.iter().copied().collect();
            ArrayD::from_shape_vec(IxDyn(&[*n, *c, *h, *w]), v).ok()
        }
        _ => None,
    }
}

/// The labels named `key`: of the same .npz, or a .npy file beside the data when it ends so.
fn label_array(f: &mut NpFile, key: &str, n: usize) -> Result<Vec<i64>, DataError> {
    let labels = if key.ends_with(".npy") {
        let p = f.path().parent().unwrap_or(Path::new(".")).join(key);
        NpFile::open(&p)?.integers("", "labels")?
    } else {
        f.integers(key, "labels")?
    };
    let path = f.path().to_path_buf();
    if labels.len() != n {
        return Err(DataError::Array {
            path,
            what: format!("{} labels (\"{key}\") for {n} examples", labels.len()),
            help: "the labels need one entry per example, in the same order".into(),
        });
    }
    if let Some(v) = labels.iter().find(|v| **v < 0) {
        return Err(DataError::Array {
            path,
            what: format!("the labels (\"{key}\") include {v}; labels are classes 0, 1, 2, ..."),
            help: "number the classes from 0".into(),
        });
    }
    Ok(labels)
}
