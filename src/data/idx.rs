//! The IDX format of MNIST and Fashion-MNIST (gzip-compressed).

use std::io::Read;
use std::path::Path;

use super::*;

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

/// Reads an IDX file of `kind` ("image", "label") whose header of `header` bytes starts with
/// `magic`: its bytes, and the error for a corrupt file.
fn read_idx<'p>(
    path: &'p Path,
    magic: usize,
    header: usize,
    kind: &str,
) -> Result<(Vec<u8>, impl Fn(String) -> DataError + 'p), DataError> {
    let b = read_gz(path)?;
    let corrupt = move |what: String| DataError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    if b.len() < header {
        return Err(corrupt(format!(
            "{} bytes is too short for an IDX {kind} header ({header} bytes)",
            b.len()
        )));
    }
    let found = be_u32(&b, 0);
    if found != magic {
        return Err(corrupt(format!(
            "magic number {found}, expected {magic} for IDX {kind}s"
        )));
    }
    Ok((b, corrupt))
}

/// Reads an IDX image file: (count, rows, cols, pixels).
pub fn read_idx_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let (b, corrupt) = read_idx(path, 2051, 16, "image")?;
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
    let (b, corrupt) = read_idx(path, 2049, 8, "label")?;
    let n = be_u32(&b, 4);
    if b.len() - 8 < n {
        return Err(corrupt(format!(
            "truncated: header promises {n} labels, file has {}",
            b.len() - 8
        )));
    }
    Ok(b[8..8 + n].to_vec())
}
