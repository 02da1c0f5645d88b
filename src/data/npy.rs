//! Minimal NumPy `.npy` reading (little-endian f64/f32, C order) and writing (u8, f32).

use std::path::Path;

/// An array read from a `.npy` file, converted to f64.
#[derive(Debug, Clone)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Reads a little-endian float or 8-bit unsigned `.npy` file.
pub fn read(path: &Path) -> Result<Array, String> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(format!("{}: not a .npy file", path.display()));
    }
    let (hlen, start) = if b[6] == 1 {
        (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(b.get(start..start + hlen).ok_or("truncated header")?)
        .map_err(|e| e.to_string())?;
    if header.contains("'fortran_order': True") {
        return Err("Fortran order is not supported".into());
    }
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .ok_or("no descr")?;
    let shape_txt = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or("no shape")?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    let body = &b[start + hlen..];
    let data: Vec<f64> = match descr {
        "<f8" => body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        "<f4" => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64)
            .collect(),
        "|u1" | "<u1" => body.iter().map(|&x| f64::from(x)).collect(),
        d => return Err(format!("unsupported dtype {d}")),
    };
    if data.len() != shape.iter().product::<usize>() {
        return Err(format!(
            "{}: {} values for shape {shape:?}",
            path.display(),
            data.len()
        ));
    }
    Ok(Array { shape, data })
}

fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out
}

/// Encodes a `u8` array.
pub fn encode_u8(shape: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = header("|u1", shape);
    out.extend_from_slice(data);
    out
}

/// Encodes an `f32` array.
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let mut out = header("<f4", shape);
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_and_f32_arrays_read_back() {
        let dir = std::env::temp_dir().join(format!("sae-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("a.npy");
        std::fs::write(&p, encode_u8(&[2, 3], &[0, 1, 2, 127, 128, 255])).expect("write");
        let a = read(&p).expect("reads u8");
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![0.0, 1.0, 2.0, 127.0, 128.0, 255.0]);
        std::fs::write(&p, encode_f32(&[2], &[0.5, -1.25])).expect("write");
        assert_eq!(read(&p).expect("reads f32").data, vec![0.5, -1.25]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
