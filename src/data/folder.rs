//! Image folders: PNG and JPEG files found recursively, decoded in parallel, converted to the
//! declared channels, centre-cropped and resized; labels from the first-level sub-folders. The
//! decoded pixels are cached, keyed by the file list (sizes, modification times) and settings.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::GenericImageView;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::DataError;

/// How images are decoded: the declared channels and size, the crop, what a bad file does.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub channels: usize,
    pub size: usize,
    /// The side of the centre square cut before resizing; 0 takes the largest.
    pub crop: usize,
    pub skip_bad: bool,
}

/// One split's images: uint8 pixels [n, C, S, S] and a class per image when there are labels.
pub struct Images {
    pub pixels: Vec<u8>,
    pub n: usize,
    pub labels: Option<Vec<i64>>,
    /// The files the images came from (skipped ones left out), for messages and the origin.
    pub files: Vec<PathBuf>,
}

/// A folder's images: the training split, the test split when the folder has `train/` and
/// `test/` sub-folders, and the class names (sub-folder names) when there are labels.
pub struct Decoded {
    pub train: Images,
    pub test: Option<Images>,
    pub classes: Vec<String>,
}

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The last folder this process loaded, with its settings: a run loads the training set and
/// then the test set of one folder, and the second load takes the first's result.
static LAST: std::sync::Mutex<Option<(PathBuf, String, Arc<Decoded>)>> =
    std::sync::Mutex::new(None);

/// Forgets the entry kept in memory, so that the next load reads the cache file (benchmarks).
pub fn forget() {
    if let Ok(mut l) = LAST.lock() {
        *l = None;
    }
}
const CACHE_MAGIC: &[u8; 8] = b"SAEIMG02";

/// An image file with its size and modification time (nanoseconds), the cache key's parts.
#[derive(Clone, Debug)]
struct File {
    path: PathBuf,
    size: u64,
    mtime: u128,
}

/// Image files under `dir`, recursively, sorted by path; one `stat` each.
fn image_files(dir: &Path) -> Result<Vec<File>, DataError> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| DataError::Io {
            path: d.clone(),
            source: e,
        })?;
        for e in entries.flatten() {
            let p = e.path();
            // The entry's type comes with the directory listing; follow links with a stat.
            let dir = match e.file_type() {
                Ok(t) if t.is_symlink() => p.is_dir(),
                Ok(t) => t.is_dir(),
                Err(_) => false,
            };
            if dir {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| EXTENSIONS.contains(&x.to_string_lossy().to_lowercase().as_str()))
            {
                let meta = std::fs::metadata(&p).ok();
                let size = meta.as_ref().map_or(0, |m| m.len());
                let mtime = meta
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                out.push(File {
                    path: p,
                    size,
                    mtime,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The first-level sub-folder of `file` under `root`, when it lies in one.
fn class_of(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let mut parts = rel.components();
    let first = parts.next()?;
    parts.next()?; // a file directly in root has no class
    Some(first.as_os_str().to_string_lossy().into_owned())
}

/// Loads the image folder `root`: `train/` and `test/` sub-folders are the splits when both
/// exist, otherwise every image is in one set (the caller splits it).
pub fn load(root: &Path, s: &Settings) -> Result<Arc<Decoded>, DataError> {
    let settings = format!("{s:?}");
    if let Some((r, k, d)) = LAST.lock().ok().and_then(|l| l.clone()) {
        if r == root && k == settings {
            return Ok(d);
        }
    }
    let d = Arc::new(load_fresh(root, s)?);
    if let Ok(mut l) = LAST.lock() {
        *l = Some((root.to_path_buf(), settings, d.clone()));
    }
    Ok(d)
}

fn load_fresh(root: &Path, s: &Settings) -> Result<Decoded, DataError> {
    if !root.is_dir() {
        return Err(DataError::Folder {
            path: root.to_path_buf(),
            what: "is not a folder".into(),
            help: "`images` reads a folder of PNG/JPEG files; for NumPy files use `arrays`".into(),
        });
    }
    let (train_root, test_root) = (root.join("train"), root.join("test"));
    let split = train_root.is_dir() && test_root.is_dir();
    let roots: Vec<PathBuf> = if split {
        vec![train_root, test_root]
    } else {
        vec![root.to_path_buf()]
    };
    let lists: Vec<Vec<File>> = roots
        .iter()
        .map(|r| image_files(r))
        .collect::<Result<_, _>>()?;
    for (r, l) in roots.iter().zip(&lists) {
        if l.is_empty() {
            return Err(DataError::Folder {
                path: r.clone(),
                what: "holds no PNG or JPEG images".into(),
                help: "the folder is searched recursively for .png, .jpg and .jpeg files; check the path".into(),
            });
        }
    }
    // Labels when every image lies in a first-level sub-folder of its split.
    let classes_of: Vec<Vec<Option<String>>> = roots
        .iter()
        .zip(&lists)
        .map(|(r, l)| l.iter().map(|f| class_of(r, &f.path)).collect())
        .collect();
    let in_folders = classes_of.iter().flatten().filter(|c| c.is_some()).count();
    let total: usize = lists.iter().map(Vec::len).sum();
    if in_folders > 0 && in_folders < total {
        eprintln!(
            "warning: {} of the {total} images under {} lie in sub-folders and {} directly in the folder; labels come from sub-folders only when every image is in one, so the images have no labels",
            in_folders,
            root.display(),
            total - in_folders
        );
    }
    let classes: Vec<String> = if in_folders == total {
        let set: std::collections::BTreeSet<&String> =
            classes_of.iter().flatten().flatten().collect();
        set.into_iter().cloned().collect()
    } else {
        vec![]
    };
    let mut sets = vec![];
    for (list, cls) in lists.into_iter().zip(classes_of) {
        let (pixels, kept) = decode_cached(&list, s)?;
        let labels = (!classes.is_empty()).then(|| {
            kept.iter()
                .filter_map(|&i| cls[i].as_ref())
                .map(|c| classes.iter().position(|k| k == c).unwrap_or(0) as i64)
                .collect()
        });
        sets.push(Images {
            pixels,
            n: kept.len(),
            labels,
            files: kept.iter().map(|&i| list[i].path.clone()).collect(),
        });
    }
    let test = if split { sets.pop() } else { None };
    let train = sets.pop().ok_or_else(|| DataError::Folder {
        path: root.to_path_buf(),
        what: "holds no images".into(),
        help: String::new(),
    })?;
    Ok(Decoded {
        train,
        test,
        classes,
    })
}

/// The cache key of decoding `files` with `s`: every path with its size and modification
/// time, and the settings.
fn cache_key(files: &[File], s: &Settings) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "images v1 {} {} {} {}\n",
        s.channels, s.size, s.crop, s.skip_bad
    ));
    for f in files {
        h.update(format!("{}\t{}\t{}\n", f.path.display(), f.size, f.mtime));
    }
    super::hex(&h.finalize())
}

/// The decoded pixels of `files` and the indices of the files kept, from the cache when a
/// complete entry exists, otherwise decoded and cached.
fn decode_cached(files: &[File], s: &Settings) -> Result<(Vec<u8>, Vec<usize>), DataError> {
    let dir = crate::util::cache_dir("images");
    let path = dir.join(format!("{}.bin", cache_key(files, s)));
    let per = s.channels * s.size * s.size;
    if let Ok(bytes) = std::fs::read(&path) {
        match read_entry(&bytes, files.len(), per) {
            Some(hit) => return Ok(hit),
            None => eprintln!(
                "warning: the cache entry {} is incomplete or damaged (an interrupted write?); decoding the images again",
                path.display()
            ),
        }
    }
    let (pixels, kept) = decode_all(files, s)?;
    let entry = write_entry(files.len(), &kept, &pixels, per);
    // A cache that cannot be written costs time, not correctness.
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|_| crate::util::write_atomic(&path, &entry))
    {
        eprintln!(
            "note: cannot cache the decoded images in {}: {e}",
            dir.display()
        );
    }
    Ok((pixels, kept))
}

/// A 64-bit checksum of `b` (four multiply-xorshift lanes over 8-byte words): catches a damaged
/// or partly copied entry at memory speed, where SHA-256 of a large entry took longer than
/// reading it.
fn checksum(b: &[u8]) -> [u8; 32] {
    const K: [u64; 4] = [
        0x9E37_79B9_7F4A_7C15,
        0xC2B2_AE3D_27D4_EB4F,
        0x1656_67B1_9E37_79F9,
        0x85EB_CA77_C2B2_AE63,
    ];
    let mut lanes = [1u64, 2, 3, 4];
    let words = b.chunks_exact(32);
    let rest = words.remainder();
    for c in words {
        for (l, (w, k)) in lanes.iter_mut().zip(c.chunks_exact(8).zip(K)) {
            let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            *l = (*l ^ v).wrapping_mul(k).rotate_left(29);
        }
    }
    let mut tail = [0u8; 32];
    tail[..rest.len()].copy_from_slice(rest);
    let mut out = [0u8; 32];
    for (i, (l, k)) in lanes.iter().zip(K).enumerate() {
        let v = u64::from_le_bytes(tail[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let x = (*l ^ v ^ b.len() as u64).wrapping_mul(k);
        out[i * 8..i * 8 + 8].copy_from_slice(&(x ^ (x >> 31)).to_le_bytes());
    }
    out
}

/// A cache entry: magic, file count, kept count, kept indices, pixels, then a checksum of
/// everything before it (so a damaged or partly written entry is never used).
fn write_entry(files: usize, kept: &[usize], pixels: &[u8], per: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + 8 * kept.len() + pixels.len() + 32);
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(&(files as u64).to_le_bytes());
    out.extend_from_slice(&(kept.len() as u64).to_le_bytes());
    out.extend_from_slice(&(per as u64).to_le_bytes());
    for &k in kept {
        out.extend_from_slice(&(k as u64).to_le_bytes());
    }
    out.extend_from_slice(pixels);
    let digest = checksum(&out);
    out.extend_from_slice(&digest);
    out
}

/// The pixels and kept indices of a cache entry, when it is complete and matches.
fn read_entry(b: &[u8], files: usize, per: usize) -> Option<(Vec<u8>, Vec<usize>)> {
    let body = b.get(..b.len().checked_sub(32)?)?;
    if checksum(body)[..] != b[body.len()..] || body.get(..8)? != CACHE_MAGIC {
        return None;
    }
    let word = |i: usize| -> Option<usize> {
        Some(u64::from_le_bytes(body.get(i..i + 8)?.try_into().ok()?) as usize)
    };
    let (f, k, p) = (word(8)?, word(16)?, word(24)?);
    if f != files || p != per || k > files {
        return None;
    }
    let kept: Vec<usize> = (0..k).map(|i| word(32 + 8 * i)).collect::<Option<_>>()?;
    let pixels = body.get(32 + 8 * k..)?;
    (pixels.len() == k * per).then(|| (pixels.to_vec(), kept))
}

/// Decodes every file in parallel with a progress bar (on a terminal). A bad file stops the
/// load, or with `skip_bad` is left out with a warning that names it.
fn decode_all(files: &[File], s: &Settings) -> Result<(Vec<u8>, Vec<usize>), DataError> {
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    if std::io::stderr().is_terminal() && files.len() >= 1000 {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "decoding {pos}/{len} images [{bar:30}] {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let decoded: Vec<Result<(Vec<u8>, (u32, u32), bool), String>> = files
        .par_iter()
        .map(|f| {
            let r = decode(&f.path, s);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    let mut pixels = Vec::with_capacity(files.len() * s.channels * s.size * s.size);
    let (mut kept, mut skipped) = (vec![], vec![]);
    let mut sizes: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    let mut alpha = 0;
    for (i, r) in decoded.into_iter().enumerate() {
        match r {
            Ok((p, dims, a)) => {
                pixels.extend_from_slice(&p);
                kept.push(i);
                *sizes.entry(dims).or_default() += 1;
                alpha += a as usize;
            }
            Err(e) if s.skip_bad => skipped.push(format!("  {}: {e}", files[i].path.display())),
            Err(e) => {
                return Err(DataError::Image {
                    path: files[i].path.clone(),
                    what: e,
                })
            }
        }
    }
    if !skipped.is_empty() {
        eprintln!(
            "warning: skipped {} unreadable image{} (bad_files = \"skip\"):\n{}",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" },
            skipped.join("\n")
        );
    }
    if kept.is_empty() {
        return Err(DataError::Folder {
            path: files[0]
                .path
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            what: "holds no readable image: every file was skipped".into(),
            help: "check the files (the warning above names each one)".into(),
        });
    }
    if sizes.len() > 1 {
        let listed: Vec<String> = sizes
            .iter()
            .take(5)
            .map(|((w, h), n)| format!("{w}x{h}: {n}"))
            .collect();
        eprintln!(
            "warning: the images have {} different sizes ({}{}); each is centre-cropped to a square and resized to {}x{}",
            sizes.len(),
            listed.join(", "),
            if sizes.len() > 5 { ", ..." } else { "" },
            s.size,
            s.size
        );
    }
    if alpha > 0 {
        eprintln!(
            "note: {alpha} image{} an alpha channel; it is dropped (transparent pixels keep their colour)",
            if alpha == 1 { " has" } else { "s have" }
        );
    }
    Ok((pixels, kept))
}

/// One image as [C, S, S] uint8, its original size and whether it had alpha.
fn decode(path: &Path, s: &Settings) -> Result<(Vec<u8>, (u32, u32), bool), String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?;
    let (w, h) = img.dimensions();
    let alpha = img.color().has_alpha();
    let side = if s.crop > 0 { s.crop as u32 } else { w.min(h) };
    if side > w.min(h) || side == 0 {
        return Err(format!(
            "it is {w}x{h}, smaller than the crop of {side}x{side}"
        ));
    }
    let img = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    let size = s.size as u32;
    let img = if side == size {
        img
    } else {
        img.resize_exact(size, size, image::imageops::FilterType::Triangle)
    };
    let out = if s.channels == 1 {
        img.to_luma8().into_raw()
    } else {
        // HWC -> CHW
        let rgb = img.to_rgb8().into_raw();
        let plane = (size * size) as usize;
        let mut out = vec![0u8; 3 * plane];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = px[c];
            }
        }
        out
    };
    Ok((out, (w, h), alpha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_entry_reads_back_and_a_damaged_one_is_refused() {
        let pixels: Vec<u8> = (0..24).map(|i| i as u8).collect();
        let e = write_entry(5, &[0, 2, 4], &pixels, 8);
        assert_eq!(read_entry(&e, 5, 8), Some((pixels.clone(), vec![0, 2, 4])));
        assert_eq!(read_entry(&e[..e.len() - 1], 5, 8), None, "truncated");
        let mut flipped = e.clone();
        flipped[40] ^= 1;
        assert_eq!(read_entry(&flipped, 5, 8), None, "damaged");
        assert_eq!(read_entry(&e, 6, 8), None, "another file list");
        assert_eq!(read_entry(&[], 5, 8), None);
        // Every single bit flip of a longer entry is caught.
        let pixels: Vec<u8> = (0..200).map(|i| (i * 7) as u8).collect();
        let e = write_entry(25, &[3], &pixels, 200);
        for byte in 0..e.len() {
            let mut f = e.clone();
            f[byte] ^= 1 << (byte % 8);
            assert_eq!(read_entry(&f, 25, 200), None, "flip at {byte}");
        }
    }
}
