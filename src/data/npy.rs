//! NumPy sources: `.npy` and `.npz` files read with `ndarray-npy`, and the `.npy` files that
//! evaluation writes.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{NpzReader, ReadNpyError, ReadNpyExt, ReadNpzError, ReadableElement};

use super::DataError;

/// An opened `.npy` or `.npz` file.
pub enum NpFile {
    Npy(PathBuf),
    Npz(PathBuf, Box<NpzReader<BufReader<File>>>),
}

/// Why one read failed: the element type does not match (try another), or the file is bad.
enum ReadFail {
    Descriptor(String),
    Bad(String),
}

fn from_npy(e: ReadNpyError) -> ReadFail {
    match e {
        ReadNpyError::WrongDescriptor(d) => ReadFail::Descriptor(d.to_string()),
        ReadNpyError::MissingData => {
            ReadFail::Bad("the file ends before all the data its header declares".into())
        }
        e => ReadFail::Bad(e.to_string()),
    }
}

/// A numeric array as read, by element type.
pub enum Numbers {
    U8(ArrayD<u8>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

impl Numbers {
    /// The array's shape.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Numbers::U8(a) => a.shape().to_vec(),
            Numbers::F32(a) => a.shape().to_vec(),
            Numbers::F64(a) => a.shape().to_vec(),
        }
    }
}

impl NpFile {
    /// Opens `path` by its extension.
    pub fn open(path: &Path) -> Result<NpFile, DataError> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "npy" => Ok(NpFile::Npy(path.to_path_buf())),
            "npz" => {
                let f = File::open(path).map_err(|e| DataError::Io {
                    path: path.to_path_buf(),
                    source: e,
                })?;
                let z = NpzReader::new(BufReader::new(f)).map_err(|e| DataError::Array {
                    path: path.to_path_buf(),
                    what: format!("not a readable .npz (zip) file: {e}"),
                    help: "write it with numpy.savez or numpy.savez_compressed".into(),
                })?;
                Ok(NpFile::Npz(path.to_path_buf(), Box::new(z)))
            }
            _ => Err(DataError::Array {
                path: path.to_path_buf(),
                what: format!(
                    "`arrays` reads .npy and .npz files, not {}",
                    if ext.is_empty() {
                        "a file without an extension".to_string()
                    } else {
                        format!(".{ext}")
                    }
                ),
                help: "save the arrays with numpy.save (.npy) or numpy.savez (.npz)".into(),
            }),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        match self {
            NpFile::Npy(p) | NpFile::Npz(p, _) => p,
        }
    }

    /// The names of a .npz file's arrays (empty for .npy).
    pub fn keys(&mut self) -> Result<Vec<String>, DataError> {
        match self {
            NpFile::Npy(_) => Ok(vec![]),
            NpFile::Npz(p, z) => z.names().map_err(|e| DataError::Array {
                path: p.clone(),
                what: format!("cannot list its arrays: {e}"),
                help: "write it with numpy.savez or numpy.savez_compressed".into(),
            }),
        }
    }

    /// The array named `key` (a .npz key; "" for a .npy file, or for a .npz holding one array).
    /// Returns the key actually read ("" for .npy).
    fn resolve_key(&mut self, key: &str, what: &str) -> Result<String, DataError> {
        let keys = self.keys()?;
        let path = self.path().to_path_buf();
        match self {
            NpFile::Npy(_) if key.is_empty() => Ok(String::new()),
            NpFile::Npy(_) => Err(DataError::Array {
                path,
                what: format!("a .npy file holds one array; `{what} = \"{key}\"` names an array of a .npz file"),
                help: "leave the key out for a .npy file".into(),
            }),
            NpFile::Npz(..) if key.is_empty() && keys.len() == 1 => Ok(keys[0].clone()),
            NpFile::Npz(..) if !keys.iter().any(|k| k == key) => Err(DataError::MissingKey {
                path,
                key: key.to_string(),
                keys: if keys.is_empty() {
                    "(none)".into()
                } else {
                    keys.join(", ")
                },
                what: what.to_string(),
            }),
            NpFile::Npz(..) => Ok(key.to_string()),
        }
    }

    fn read_as<T: ReadableElement>(&mut self, key: &str) -> Result<ArrayD<T>, ReadFail> {
        match self {
            NpFile::Npy(p) => {
                let f = File::open(&*p).map_err(|e| ReadFail::Bad(e.to_string()))?;
                ArrayD::<T>::read_npy(BufReader::new(f)).map_err(from_npy)
            }
            NpFile::Npz(_, z) => {
                z.by_name::<ndarray::OwnedRepr<T>, IxDyn>(key)
                    .map_err(|e| match e {
                        ReadNpzError::Npy(e) => from_npy(e),
                        e => ReadFail::Bad(e.to_string()),
                    })
            }
        }
    }

    /// Reads the data array `key` as uint8, float32 or float64.
    pub fn numbers(&mut self, key: &str, what: &str) -> Result<(String, Numbers), DataError> {
        let key = self.resolve_key(key, what)?;
        let path = self.path().to_path_buf();
        let bad = |what: String| DataError::Array {
            path: path.clone(),
            what,
            help: "check the file: numpy.load should read it".into(),
        };
        let wrong_type = |found: String| DataError::Array {
            path: path.clone(),
            what: format!("{}holds {found} values", shown_key(&key)),
            help:
                "store images as uint8 (0-255) or float32/float64 (0-1), vectors as float32/float64"
                    .into(),
        };
        match self.read_as::<u8>(&key) {
            Ok(a) => return Ok((key, Numbers::U8(a))),
            Err(ReadFail::Bad(e)) => return Err(bad(e)),
            Err(ReadFail::Descriptor(_)) => {}
        }
        match self.read_as::<f32>(&key) {
            Ok(a) => return Ok((key, Numbers::F32(a))),
            Err(ReadFail::Bad(e)) => return Err(bad(e)),
            Err(ReadFail::Descriptor(_)) => {}
        }
        match self.read_as::<f64>(&key) {
            Ok(a) => Ok((key, Numbers::F64(a))),
            Err(ReadFail::Bad(e)) => Err(bad(e)),
            Err(ReadFail::Descriptor(d)) => Err(wrong_type(dtype_name(&d))),
        }
    }

    /// Reads the label array `key` as integers.
    pub fn integers(&mut self, key: &str, what: &str) -> Result<Vec<i64>, DataError> {
        let key = self.resolve_key(key, what)?;
        let path = self.path().to_path_buf();
        let bad = |what: String| DataError::Array {
            path: path.clone(),
            what,
            help: "labels are one integer per example, e.g. numpy.int64".into(),
        };
        macro_rules! attempt {
            ($($t:ty),*) => {
                $(
                    match self.read_as::<$t>(&key) {
                        Ok(a) => {
                            return Ok(a.iter().map(|v| *v as i64).collect());
                        }
                        Err(ReadFail::Bad(e)) => return Err(bad(e)),
                        Err(ReadFail::Descriptor(_)) => {}
                    }
                )*
            };
        }
        attempt!(i64, i32, u8, i16, u16, u32, i8);
        match self.read_as::<u64>(&key) {
            Ok(a) => Ok(a.iter().map(|v| *v as i64).collect()),
            Err(ReadFail::Bad(e)) => Err(bad(e)),
            Err(ReadFail::Descriptor(d)) => Err(bad(format!(
                "{}holds {} values; labels must be integers",
                shown_key(&key),
                dtype_name(&d)
            ))),
        }
    }
}

/// "array \"x\" " for a .npz key, nothing for a .npy file.
fn shown_key(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("array \"{key}\" ")
    }
}

/// NumPy's name of a descriptor such as '<i4' or '<c16'.
fn dtype_name(descr: &str) -> String {
    let d = descr.trim_matches(|c| c == '\'' || c == '"');
    let code = d.trim_start_matches(['<', '>', '|', '=']);
    let name = match code {
        "b1" => "bool",
        "f2" => "float16",
        "c8" => "complex64",
        "c16" => "complex128",
        "i8" => "int64",
        "i4" => "int32",
        "i2" => "int16",
        "i1" => "int8",
        "u8" => "uint64",
        "u4" => "uint32",
        "u2" => "uint16",
        c if c.starts_with('U') || c.starts_with('S') => "string",
        c if c.starts_with('O') => "object",
        _ => "",
    };
    if name.is_empty() {
        format!("dtype {d}")
    } else {
        format!("{name} ({d})")
    }
}

/// An array read from a `.npy` file, converted to f64 (tests and benchmarks read fixtures so).
#[derive(Debug, Clone)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Reads a uint8, float32 or float64 `.npy` file as f64.
pub fn read(path: &Path) -> Result<Array, String> {
    let (_, a) = NpFile::open(path)
        .and_then(|mut f| f.numbers("", "array"))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let shape = a.shape();
    let data = match a {
        Numbers::U8(a) => a.iter().map(|v| f64::from(*v)).collect(),
        Numbers::F32(a) => a.iter().map(|v| f64::from(*v)).collect(),
        Numbers::F64(a) => a.into_iter().collect(),
    };
    Ok(Array { shape, data })
}

/// The bytes of a `.npy` file of uint8 values with shape `shape` (`data` in C order).
pub fn encode_u8(shape: &[usize], data: &[u8]) -> std::io::Result<Vec<u8>> {
    let a = ndarray::ArrayViewD::from_shape(IxDyn(shape), data).map_err(std::io::Error::other)?;
    let mut out = vec![];
    ndarray_npy::WriteNpyExt::write_npy(&a, &mut out).map_err(std::io::Error::other)?;
    Ok(out)
}

/// The bytes of a `.npy` file of float32 values with shape `shape` (`data` in C order).
pub fn encode_f32(shape: &[usize], data: &[f32]) -> std::io::Result<Vec<u8>> {
    let a = ndarray::ArrayViewD::from_shape(IxDyn(shape), data).map_err(std::io::Error::other)?;
    let mut out = vec![];
    ndarray_npy::WriteNpyExt::write_npy(&a, &mut out).map_err(std::io::Error::other)?;
    Ok(out)
}

/// The bytes of a `.npz` file holding one uint8 array under the key `arr_0` (numpy's
/// `savez` name, the one FID evaluators read).
pub fn encode_npz_u8(shape: &[usize], data: &[u8]) -> std::io::Result<Vec<u8>> {
    let a = ndarray::ArrayViewD::from_shape(IxDyn(shape), data).map_err(std::io::Error::other)?;
    npz_with(|z| z.add_array("arr_0", &a))
}

/// The bytes of a `.npz` file holding one float32 array under the key `arr_0`.
pub fn encode_npz_f32(shape: &[usize], data: &[f32]) -> std::io::Result<Vec<u8>> {
    let a = ndarray::ArrayViewD::from_shape(IxDyn(shape), data).map_err(std::io::Error::other)?;
    npz_with(|z| z.add_array("arr_0", &a))
}

/// The bytes of a `.npy` file of int64 values with shape `shape`.
pub fn encode_i64(shape: &[usize], data: &[i64]) -> std::io::Result<Vec<u8>> {
    let a = ndarray::ArrayViewD::from_shape(IxDyn(shape), data).map_err(std::io::Error::other)?;
    let mut out = vec![];
    ndarray_npy::WriteNpyExt::write_npy(&a, &mut out).map_err(std::io::Error::other)?;
    Ok(out)
}

/// The bytes of a `.npz` file with `codes` (float32, shape `shape`) and, when given, `labels`
/// (int64).
pub fn encode_npz_codes(
    shape: &[usize],
    codes: &[f32],
    labels: Option<&[i64]>,
) -> std::io::Result<Vec<u8>> {
    let c = ndarray::ArrayViewD::from_shape(IxDyn(shape), codes).map_err(std::io::Error::other)?;
    let l = labels
        .map(|l| ndarray::ArrayViewD::from_shape(IxDyn(&[l.len()]), l))
        .transpose()
        .map_err(std::io::Error::other)?;
    npz_with(|z| {
        z.add_array("codes", &c)?;
        match &l {
            Some(l) => z.add_array("labels", l),
            None => Ok(()),
        }
    })
}

fn npz_with(
    add: impl FnOnce(
        &mut ndarray_npy::NpzWriter<std::io::Cursor<Vec<u8>>>,
    ) -> Result<(), ndarray_npy::WriteNpzError>,
) -> std::io::Result<Vec<u8>> {
    let mut z = ndarray_npy::NpzWriter::new(std::io::Cursor::new(vec![]));
    add(&mut z).map_err(std::io::Error::other)?;
    Ok(z.finish().map_err(std::io::Error::other)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_and_f32_arrays_read_back() {
        let dir = std::env::temp_dir().join(format!("sae-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("a.npy");
        std::fs::write(
            &p,
            encode_u8(&[2, 3], &[0, 1, 2, 127, 128, 255]).expect("encodes"),
        )
        .expect("write");
        let a = read(&p).expect("reads u8");
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![0.0, 1.0, 2.0, 127.0, 128.0, 255.0]);
        std::fs::write(&p, encode_f32(&[2], &[0.5, -1.25]).expect("encodes")).expect("write");
        assert_eq!(read(&p).expect("reads f32").data, vec![0.5, -1.25]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
