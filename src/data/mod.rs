//! Data sets: MNIST-format IDX files found on disk (or downloaded and verified), image folders,
//! NumPy arrays, CIFAR-10, the procedural `shapes` set, and small synthetic 2-D sets generated
//! from the seed.
//!
//! Entry point: [`load`]. Search order for IDX folders: `--data-dir`, `$SAE_DSL_DATA`, then
//! [`default_search_path`]. Each data set lives in a sub-folder named like `mnist`.
//!
//! Parts: [`search`] (where files are looked for), [`download`] (canonical mirrors, verified
//! downloads), [`idx`] (the IDX format), [`synthetic`] (2-D sets from a seed), [`transforms`]
//! (transforms of a model file), [`npy`] (NumPy arrays), [`folder`] (image folders and their
//! cache), [`cifar`] (CIFAR-10's binary files), [`shapes`] (the procedural RGB set), [`split`]
//! (seeded shuffles and test splits), [`sources`] (the file sources as data sets).

mod cifar;
mod download;
pub mod folder;
mod idx;
pub mod npy;
pub mod search;
pub mod shapes;
mod sources;
mod split;
mod synthetic;
mod transforms;

pub use download::{fetch_verified, hex};
pub use idx::{read_idx_images, read_idx_labels};
pub use search::{default_search_path, find_file, search_path};
pub use split::{shuffled, test_rows, SplitMix};
pub use synthetic::synthetic_points;
pub use transforms::transform;

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::ir::{DataSource, DataSpec};

/// Environment variable naming a data directory.
pub const DATA_ENV: &str = "SAE_DSL_DATA";
/// Environment variable that replaces the download mirrors (used by tests on loopback).
pub const MIRROR_ENV: &str = "SAE_DSL_MIRROR";
/// Set to 1 to forbid downloads.
pub const OFFLINE_ENV: &str = "SAE_DSL_OFFLINE";

/// Why data could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DataError {
    #[error("cannot find the {name} data set (file {file})")]
    #[diagnostic(code(sae::data::not_found), help("{help}"))]
    NotFound {
        name: String,
        file: String,
        help: String,
    },
    #[error("{path}: {what}")]
    #[diagnostic(
        code(sae::data::corrupt),
        help("delete the file and download it again, or point --data-dir at a good copy")
    )]
    Corrupt { path: PathBuf, what: String },
    #[error("download of {url} failed: {what}")]
    #[diagnostic(
        code(sae::data::download),
        help("check the network, or place the files in one of the searched folders by hand")
    )]
    Download { url: String, what: String },
    #[error("{path}: cannot read: {source}")]
    #[diagnostic(code(sae::data::io))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    #[diagnostic(code(sae::data::array), help("{help}"))]
    Array {
        path: PathBuf,
        what: String,
        help: String,
    },
    #[error("{path} has no array \"{key}\" (the {what}); it has: {keys}")]
    #[diagnostic(
        code(sae::data::array_key),
        help("name one of its arrays, e.g. `key = \"...\"` for the images or `labels = \"...\"`")
    )]
    MissingKey {
        path: PathBuf,
        key: String,
        keys: String,
        what: String,
    },
    #[error("{path} {what}")]
    #[diagnostic(code(sae::data::folder), help("{help}"))]
    Folder {
        path: PathBuf,
        what: String,
        help: String,
    },
    #[error("{path}: cannot decode the image: {what}")]
    #[diagnostic(
        code(sae::data::image),
        help("the run stopped here; fix or remove the file, or pass `bad_files = \"skip\"` to leave unreadable images out with a warning")
    )]
    Image { path: PathBuf, what: String },
    #[error("cannot find the data file or folder \"{path}\"")]
    #[diagnostic(code(sae::data::path), help("{help}"))]
    Path { path: String, help: String },
}

/// A data set: images or points, labels when the set has them.
///
/// Images of uint8 sources (IDX, folders, uint8 arrays, CIFAR) are stored as uint8, a quarter of
/// float32's memory, and become floats in [0, 1] batch by batch (the same division by 255 as
/// before, so the values are bit for bit those of a float copy). The store may stay in host
/// memory while training runs on a GPU: [`Dataset::batch`] then copies each batch over.
pub struct Dataset {
    /// The examples as stored: uint8 pixel values or float32.
    pub(crate) store: Tensor,
    /// The device that batches and [`Dataset::x`] are on (the training device).
    pub(crate) device: Device,
    pub labels: Option<Tensor>,
    /// Where the examples came from, for the run's configuration record.
    pub origin: String,
    /// The generating factors of a procedural set ([n, F] floats), with their names.
    pub factors: Option<(Vec<String>, Tensor)>,
}

impl Dataset {
    /// A data set of `x` (uint8 pixel values or floats) on `x`'s device.
    pub fn new(x: Tensor, labels: Option<Tensor>, origin: String) -> Dataset {
        Dataset {
            device: x.device(),
            store: x,
            labels,
            origin,
            factors: None,
        }
    }

    pub fn len(&self) -> i64 {
        self.store.size()[0]
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape of one example.
    pub fn example_shape(&self) -> Vec<i64> {
        self.store.size()[1..].to_vec()
    }

    /// All examples as floats on the set's device (a new tensor for a uint8 store: evaluation
    /// uses it; training takes [`Dataset::batch`]es).
    pub fn x(&self) -> Tensor {
        as_float(self.store.to_device(self.device))
    }

    /// The examples at `rows` (1-D int64) as floats on the set's device.
    pub fn batch(&self, rows: &Tensor) -> Tensor {
        let picked = self
            .store
            .index_select(0, &rows.to_device(self.store.device()));
        as_float(picked.to_device(self.device))
    }

    /// The first `k` examples (at most all) as floats on the set's device.
    pub fn head(&self, k: i64) -> Tensor {
        as_float(
            self.store
                .narrow(0, 0, k.min(self.len()))
                .to_device(self.device),
        )
    }

    /// The bytes its examples take as stored.
    pub fn bytes(&self) -> f64 {
        (self.store.numel() * self.store.kind().elt_size_in_bytes()) as f64
    }

    /// Whether the examples are stored as uint8.
    pub fn is_u8(&self) -> bool {
        self.store.kind() == Kind::Uint8
    }

    /// Whether the examples are kept in host memory while batches go to another device.
    pub fn on_host(&self) -> bool {
        self.store.device() == Device::Cpu && self.device != Device::Cpu
    }

    /// The set for training on `device`: labels and factors moved there, the examples too
    /// unless `host` keeps them in host memory (batches are then copied over one by one).
    pub fn place(self, device: Device, host: bool) -> Dataset {
        let store = if host {
            host_store(self.store, device)
        } else {
            match self.store.f_to_device(device) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "note: the examples of {} ({}) do not fit on {device:?} ({}); they stay in host memory and each batch is copied over",
                        self.origin,
                        crate::runtime::device::bytes(self.bytes()),
                        e.to_string().lines().next().unwrap_or_default()
                    );
                    host_store(self.store, device)
                }
            }
        };
        Dataset {
            store,
            device,
            labels: self.labels.map(|l| l.to_device(device)),
            origin: self.origin,
            factors: self.factors.map(|(n, f)| (n, f.to_device(device))),
        }
    }

    /// The examples at `rows` (a 1-D int64 tensor), labels and factors with them.
    pub fn rows(&self, rows: &Tensor, origin: String) -> Dataset {
        let i = rows.to_device(self.store.device());
        Dataset {
            store: self.store.index_select(0, &i),
            device: self.device,
            labels: self
                .labels
                .as_ref()
                .map(|l| l.index_select(0, &i.to_device(l.device()))),
            origin,
            factors: self
                .factors
                .as_ref()
                .map(|(n, f)| (n.clone(), f.index_select(0, &i.to_device(f.device())))),
        }
    }

    /// The same data set, sharing its tensors.
    pub fn shallow_clone(&self) -> Dataset {
        Dataset {
            store: self.store.shallow_clone(),
            device: self.device,
            labels: self.labels.as_ref().map(Tensor::shallow_clone),
            origin: self.origin.clone(),
            factors: self
                .factors
                .as_ref()
                .map(|(n, f)| (n.clone(), f.shallow_clone())),
        }
    }
}

/// A store in host memory for batches on `device`: pinned for a GPU when the pages can be
/// pinned (the per-batch copies then skip a staging copy).
fn host_store(store: Tensor, device: Device) -> Tensor {
    let s = store.to_device(Device::Cpu);
    if device.is_cuda() {
        s.f_pin_memory(device).unwrap_or(s)
    } else {
        s
    }
}

/// uint8 pixel values as floats in [0, 1]; floats as they are.
fn as_float(x: Tensor) -> Tensor {
    if x.kind() == Kind::Uint8 {
        x.to_kind(Kind::Float) / 255.0
    } else {
        x
    }
}

/// Loads the data set of `spec` for `split` ("train" or "test") onto `device`.
pub fn load(
    spec: &DataSpec,
    split: &str,
    data_dir: Option<&Path>,
    seed: i64,
    device: Device,
) -> Result<Dataset, DataError> {
    let mut set = load_source(spec, split, data_dir, seed, device)?;
    if !spec.transforms.is_empty() {
        // Transforms work on floats: the transformed set is stored as float32.
        set.store = transform(&set.x(), &spec.transforms, split);
        let names: Vec<String> = spec.transforms.iter().map(|t| t.to_string()).collect();
        set.origin = format!("{} -> {}", set.origin, names.join(" -> "));
    }
    Ok(set)
}

// The same parameters as `load`: this is its step before the transforms.
fn load_source(
    spec: &DataSpec,
    split: &str,
    data_dir: Option<&Path>,
    seed: i64,
    device: Device,
) -> Result<Dataset, DataError> {
    let source_shape = spec.source_shape();
    if let Some(set) = sources::load(spec, split, data_dir, device)? {
        return Ok(set);
    }
    match &spec.source {
        DataSource::Idx {
            dir,
            limit,
            split: train_split,
        } => {
            let split = if split == "train" {
                train_split.as_str()
            } else {
                split
            };
            let prefix = if split == "test" { "t10k" } else { "train" };
            let images = find_file(dir, &format!("{prefix}-images-idx3-ubyte.gz"), data_dir)?;
            let labels = find_file(dir, &format!("{prefix}-labels-idx1-ubyte.gz"), data_dir)?;
            let (n, rows, cols, pixels) = read_idx_images(&images)?;
            let lab = read_idx_labels(&labels)?;
            if lab.len() != n {
                return Err(DataError::Corrupt {
                    path: labels.clone(),
                    what: format!(
                        "{} labels for {n} images in {}",
                        lab.len(),
                        images.display()
                    ),
                });
            }
            if (rows, cols) != (source_shape[1] as usize, source_shape[2] as usize) {
                return Err(DataError::Corrupt {
                    path: images.clone(),
                    what: format!(
                        "images are {rows}x{cols}, the model expects {}x{}",
                        source_shape[1], source_shape[2]
                    ),
                });
            }
            if n == 0 {
                return Err(DataError::Corrupt {
                    path: images,
                    what: "the file holds no images".into(),
                });
            }
            let keep = if *limit > 0 { (*limit).min(n) } else { n };
            if split == "test" && keep < n {
                crate::util::warn_once(&format!(
                    "note: limit {limit} also applies to the test set: {keep} of the {n} test images of {} are evaluated",
                    images.display()
                ));
            }
            if *limit > n {
                crate::util::warn_once(&format!(
                    "warning: limit {limit} is more than the {n} images of {}; all {n} are used",
                    images.display()
                ));
            }
            let x = Tensor::from_slice(&pixels[..keep * rows * cols])
                .reshape([keep as i64, 1, rows as i64, cols as i64])
                .to_device(device);
            let y = Tensor::from_slice(&lab[..keep].iter().map(|&l| l as i64).collect::<Vec<_>>())
                .to_device(device);
            Ok(Dataset::new(x, Some(y), images.display().to_string()))
        }
        synthetic => {
            // The test split is an independent draw from the same distribution.
            let s = if split == "test" {
                seed.wrapping_add(7919)
            } else {
                seed
            };
            let (x, y) = synthetic_points(synthetic, s);
            Ok(Dataset::new(
                x.to_device(device),
                Some(y.to_device(device)),
                synthetic.to_string(),
            ))
        }
    }
}
