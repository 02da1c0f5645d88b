//! CIFAR-10's binary format: records of one label byte and 3,072 pixel bytes (1,024 red, then
//! green, then blue, row-major), 10,000 per `data_batch_K.bin` and in `test_batch.bin`.

use std::path::{Path, PathBuf};

use super::DataError;

/// The folder CIFAR-10's binary archive unpacks to.
pub const DIR: &str = "cifar-10-batches-bin";
/// Bytes per record.
pub const RECORD: usize = 1 + 3 * 32 * 32;

/// The files of a split, in order.
pub fn files(split: &str) -> Vec<String> {
    if split == "test" {
        vec!["test_batch.bin".into()]
    } else {
        (1..=5).map(|k| format!("data_batch_{k}.bin")).collect()
    }
}

/// Reads one batch file: pixels [n, 3, 32, 32] as uint8 and labels.
pub fn read(path: &Path) -> Result<(Vec<u8>, Vec<i64>), DataError> {
    let b = std::fs::read(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if b.is_empty() || b.len() % RECORD != 0 {
        return Err(DataError::Corrupt {
            path: path.to_path_buf(),
            what: format!(
                "{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records (a truncated file?)",
                b.len()
            ),
        });
    }
    let n = b.len() / RECORD;
    let mut pixels = Vec::with_capacity(n * (RECORD - 1));
    let mut labels = Vec::with_capacity(n);
    for (i, r) in b.chunks_exact(RECORD).enumerate() {
        if r[0] > 9 {
            return Err(DataError::Corrupt {
                path: path.to_path_buf(),
                what: format!("record {i} has label {}; CIFAR-10 labels are 0-9", r[0]),
            });
        }
        labels.push(i64::from(r[0]));
        pixels.extend_from_slice(&r[1..]);
    }
    Ok((pixels, labels))
}

/// Finds the split's files in the data folders (`DIR/cifar-10-batches-bin/...`).
pub fn find(split: &str, folders: &[PathBuf]) -> Result<Vec<PathBuf>, DataError> {
    let names = files(split);
    for f in folders {
        let d = f.join(DIR);
        if names.iter().all(|n| d.join(n).is_file()) {
            return Ok(names.iter().map(|n| d.join(n)).collect());
        }
    }
    let looked: Vec<String> = folders
        .iter()
        .map(|f| format!("  {}", f.join(DIR).display()))
        .collect();
    Err(DataError::NotFound {
        name: "cifar10".into(),
        file: names.join(", "),
        help: format!(
            "looked in:\n{}\ndownload the CIFAR-10 binary version (cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html), unpack it into one of these folders' parents, pass --data-dir DIR (DIR/{DIR}/...), or set {}",
            looked.join("\n"),
            super::DATA_ENV
        ),
    })
}
