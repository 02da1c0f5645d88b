//! Data sets: MNIST-format IDX files found on disk (or downloaded and verified), and small
//! synthetic 2-D sets generated from the seed.
//!
//! Entry point: [`load`]. Search order for IDX folders: `--data-dir`, `$SAE_DSL_DATA`, then
//! [`default_search_path`]. Each data set lives in a sub-folder named like `mnist`.

pub mod npy;

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
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
}

/// A data set on the device: images or points as one float tensor in [0, 1] (points unscaled),
/// and labels when the set has them.
pub struct Dataset {
    pub x: Tensor,
    pub labels: Option<Tensor>,
    /// Where the examples came from, for the run's configuration record.
    pub origin: String,
}

impl Dataset {
    pub fn len(&self) -> i64 {
        self.x.size()[0]
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Folders searched after `--data-dir` and `$SAE_DSL_DATA`.
pub fn default_search_path() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("data")];
    if let Some(home) = std::env::var_os("HOME") {
        v.push(PathBuf::from(home).join(".cache/sae-dsl/data"));
    }
    v.push(PathBuf::from("/usr/share/datasets"));
    v
}

/// The folders to search, in order.
pub fn search_path(data_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut v = vec![];
    if let Some(d) = data_dir {
        v.push(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os(DATA_ENV) {
        v.push(PathBuf::from(d));
    }
    v.extend(default_search_path());
    v
}

/// Canonical file names and SHA-256 digests of the official releases.
struct Remote {
    dir: &'static str,
    mirrors: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
}

const REMOTES: &[Remote] = &[
    Remote {
        dir: "mnist",
        mirrors: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        files: &[
            (
                "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            (
                "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        ],
    },
    Remote {
        dir: "fashion-mnist",
        mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        files: &[
            (
                "train-images-idx3-ubyte.gz",
                "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            ),
            (
                "train-labels-idx1-ubyte.gz",
                "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            ),
        ],
    },
];

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
        set.x = transform(&set.x, &spec.transforms, split);
        let names: Vec<String> = spec.transforms.iter().map(|t| t.to_string()).collect();
        set.origin = format!("{} -> {}", set.origin, names.join(" -> "));
    }
    Ok(set)
}

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

fn load_source(
    spec: &DataSpec,
    split: &str,
    data_dir: Option<&Path>,
    seed: i64,
    device: Device,
) -> Result<Dataset, DataError> {
    let source_shape = spec.source_shape();
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
            let x = Tensor::from_slice(&pixels[..keep * rows * cols])
                .reshape([keep as i64, 1, rows as i64, cols as i64])
                .to_device(device)
                .to_kind(Kind::Float)
                / 255.0;
            let y = Tensor::from_slice(&lab[..keep].iter().map(|&l| l as i64).collect::<Vec<_>>())
                .to_device(device);
            Ok(Dataset {
                x,
                labels: Some(y),
                origin: images.display().to_string(),
            })
        }
        synthetic => {
            // The test split is an independent draw from the same distribution.
            let s = if split == "test" {
                seed.wrapping_add(7919)
            } else {
                seed
            };
            let (x, y) = synthetic_points(synthetic, s);
            Ok(Dataset {
                x: x.to_device(device),
                labels: Some(y.to_device(device)),
                origin: synthetic.to_string(),
            })
        }
    }
}

/// Draws a synthetic 2-D data set on the CPU from `seed`; labels are the ring or blob index.
pub fn synthetic_points(source: &DataSource, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let opts = (Kind::Float, Device::Cpu);
    match *source {
        DataSource::Rings { n, k, noise } => {
            let n = n as i64;
            let ring = Tensor::randint(k as i64, [n], (Kind::Int64, Device::Cpu));
            let radius = (ring.to_kind(Kind::Float) + 1.0) / k as f64;
            let angle = Tensor::rand([n], opts) * (2.0 * std::f64::consts::PI);
            let x = Tensor::stack(&[&radius * angle.cos(), &radius * angle.sin()], 1)
                + Tensor::randn([n, 2], opts) * noise;
            (x, ring)
        }
        DataSource::GaussianGrid { n, k, std } => {
            let n = n as i64;
            let k = k as i64;
            let cell = Tensor::randint(k * k, [n], (Kind::Int64, Device::Cpu));
            let step = if k > 1 { 2.0 / (k - 1) as f64 } else { 0.0 };
            let cx = cell.remainder(k).to_kind(Kind::Float) * step - if k > 1 { 1.0 } else { 0.0 };
            let cy = cell.floor_divide_scalar(k).to_kind(Kind::Float) * step
                - if k > 1 { 1.0 } else { 0.0 };
            let x = Tensor::stack(&[cx, cy], 1) + Tensor::randn([n, 2], opts) * std;
            (x, cell)
        }
        DataSource::SwissRoll { n, noise } => {
            let n = n as i64;
            let t = (Tensor::rand([n], opts) * 2.0 + 1.0) * (1.5 * std::f64::consts::PI);
            let scale = 1.0 / (4.5 * std::f64::consts::PI);
            let x = Tensor::stack(&[&t * t.cos() * scale, &t * t.sin() * scale], 1)
                + Tensor::randn([n, 2], opts) * noise;
            let label = (&t / (std::f64::consts::PI)).floor().to_kind(Kind::Int64);
            (x, label)
        }
        DataSource::Idx { .. } => (
            Tensor::zeros([0, 2], opts),
            Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
        ),
    }
}

/// Finds `file` of data set `dir` in the search path, downloading it when allowed.
pub fn find_file(dir: &str, file: &str, data_dir: Option<&Path>) -> Result<PathBuf, DataError> {
    let folders = search_path(data_dir);
    for f in &folders {
        let p = f.join(dir).join(file);
        if p.is_file() {
            return Ok(p);
        }
    }
    let looked: Vec<String> = folders
        .iter()
        .map(|f| format!("  {}", f.join(dir).display()))
        .collect();
    let offline = std::env::var(OFFLINE_ENV).is_ok_and(|v| v == "1");
    let remote = REMOTES.iter().find(|r| r.dir == dir);
    let cache = folders
        .iter()
        .find(|f| f.ends_with(".cache/sae-dsl/data"))
        .cloned()
        .or_else(|| data_dir.map(Path::to_path_buf));
    let mut tried = String::new();
    if let (false, Some(remote), Some(cache)) = (offline, remote, cache) {
        match download(remote, file, &cache.join(dir)) {
            Ok(p) => return Ok(p),
            Err(e) => tried = format!("\ndownload failed: {e}"),
        }
    }
    Err(DataError::NotFound {
        name: dir.to_string(),
        file: file.to_string(),
        help: format!(
            "looked in:\n{}{tried}\nput the IDX files in one of these folders, pass --data-dir DIR (DIR/{dir}/{file}), or set {DATA_ENV}",
            looked.join("\n")
        ),
    })
}

fn download(remote: &Remote, file: &str, dest_dir: &Path) -> Result<PathBuf, DataError> {
    let sha = remote
        .files
        .iter()
        .find(|(f, _)| *f == file)
        .map(|(_, s)| *s)
        .ok_or_else(|| DataError::Download {
            url: file.to_string(),
            what: "not a file of this data set".into(),
        })?;
    let custom = std::env::var(MIRROR_ENV).ok();
    let mirrors: Vec<String> = match &custom {
        Some(m) => vec![format!("{}/", m.trim_end_matches('/'))],
        None => remote.mirrors.iter().map(|s| s.to_string()).collect(),
    };
    let mut last = None;
    for m in mirrors {
        let url = format!("{m}{file}");
        match fetch_verified(&url, sha, &dest_dir.join(file)) {
            Ok(p) => return Ok(p),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(DataError::Download {
        url: file.into(),
        what: "no mirror".into(),
    }))
}

/// Downloads `url`, checks its SHA-256 and moves it into place atomically.
pub fn fetch_verified(url: &str, sha256: &str, dest: &Path) -> Result<PathBuf, DataError> {
    let err = |what: String| DataError::Download {
        url: url.to_string(),
        what,
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(60))
        .build();
    let resp = agent.get(url).call().map_err(|e| err(e.to_string()))?;
    let mut body = vec![];
    resp.into_reader()
        .take(200 << 20)
        .read_to_end(&mut body)
        .map_err(|e| err(e.to_string()))?;
    let got = hex(&Sha256::digest(&body));
    if got != sha256 {
        return Err(err(format!(
            "checksum mismatch: expected SHA-256 {sha256}, got {got}; the file was not kept"
        )));
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DataError::Io {
            path: parent.to_path_buf(),
            source: e,
        })?;
    }
    crate::util::write_atomic(dest, &body).map_err(|e| DataError::Io {
        path: dest.to_path_buf(),
        source: e,
    })?;
    Ok(dest.to_path_buf())
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let f = std::fs::File::open(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut out = vec![];
    let mut head = [0u8; 2];
    let mut r = std::io::BufReader::new(f);
    r.read_exact(&mut head).map_err(|_| DataError::Corrupt {
        path: path.to_path_buf(),
        what: "file is empty or too short".into(),
    })?;
    let chained = std::io::Cursor::new(head).chain(r);
    if head == [0x1f, 0x8b] {
        flate2::read::GzDecoder::new(chained)
            .read_to_end(&mut out)
            .map_err(|e| DataError::Corrupt {
                path: path.to_path_buf(),
                what: format!("corrupt or truncated gzip: {e}"),
            })?;
    } else {
        let mut c = chained;
        c.read_to_end(&mut out).map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
    }
    Ok(out)
}

fn be_u32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// Reads an IDX image file: (count, rows, cols, pixels).
pub fn read_idx_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let b = read_gz(path)?;
    let corrupt = |what: String| DataError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    if b.len() < 16 {
        return Err(corrupt(format!(
            "{} bytes is too short for an IDX image header (16 bytes)",
            b.len()
        )));
    }
    let magic = be_u32(&b, 0);
    if magic != 2051 {
        return Err(corrupt(format!(
            "magic number {magic}, expected 2051 for IDX images"
        )));
    }
    let (n, r, c) = (be_u32(&b, 4), be_u32(&b, 8), be_u32(&b, 12));
    let need = n
        .checked_mul(r)
        .and_then(|x| x.checked_mul(c))
        .ok_or_else(|| corrupt("header sizes overflow".into()))?;
    if b.len() - 16 < need {
        return Err(corrupt(format!(
            "truncated: header promises {n} images of {r}x{c} ({need} bytes), file has {}",
            b.len() - 16
        )));
    }
    Ok((n, r, c, b[16..16 + need].to_vec()))
}

/// Reads an IDX label file.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let b = read_gz(path)?;
    let corrupt = |what: String| DataError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    if b.len() < 8 {
        return Err(corrupt(format!(
            "{} bytes is too short for an IDX label header (8 bytes)",
            b.len()
        )));
    }
    let magic = be_u32(&b, 0);
    if magic != 2049 {
        return Err(corrupt(format!(
            "magic number {magic}, expected 2049 for IDX labels"
        )));
    }
    let n = be_u32(&b, 4);
    if b.len() - 8 < n {
        return Err(corrupt(format!(
            "truncated: header promises {n} labels, file has {}",
            b.len() - 8
        )));
    }
    Ok(b[8..8 + n].to_vec())
}
