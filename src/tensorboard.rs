//! TensorBoard event files, written (and read back) without a protobuf dependency.
//!
//! An event file is a sequence of records: the data's length (u64, little-endian), the masked
//! CRC-32C of those 8 bytes, the data, the masked CRC-32C of the data. Each record's data is an
//! `Event` protobuf message; the few fields used here are encoded by hand:
//!
//! | message | fields |
//! |---|---|
//! | Event | 1 wall_time (double), 2 step (int64), 3 file_version (string), 5 summary |
//! | Summary | 1 value (repeated) |
//! | Summary.Value | 1 tag, 2 simple_value (float), 4 image, 8 tensor, 9 metadata |
//! | Summary.Image | 1 height, 2 width, 3 colorspace, 4 encoded_image_string (PNG) |
//! | TensorProto | 1 dtype (7 = string), 2 tensor_shape, 8 string_val |
//! | SummaryMetadata | 1 plugin_data { 1 plugin_name, 2 content } |

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// CRC-32C (Castagnoli), bitwise: event files are small, so no table is needed.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

/// TensorFlow's masked CRC: rotated right by 15 bits plus a constant.
fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xA282_EAD8)
}

// ---- protobuf encoding ---------------------------------------------------------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, ((field as u64) << 3) | wire as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    key(out, field, 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn int_field(out: &mut Vec<u8>, field: u32, v: i64) {
    key(out, field, 0);
    varint(out, v as u64);
}

/// One value of a summary.
pub enum Value<'a> {
    Scalar(f32),
    /// A PNG image of the given height and width with 1 (grey) or 3 (RGB) channels.
    Png {
        height: usize,
        width: usize,
        channels: usize,
        png: &'a [u8],
    },
    /// Text shown by TensorBoard's text plugin (Markdown).
    Text(&'a str),
}

fn summary_value(tag: &str, value: &Value) -> Vec<u8> {
    let mut v = vec![];
    bytes_field(&mut v, 1, tag.as_bytes());
    match value {
        Value::Scalar(x) => {
            key(&mut v, 2, 5);
            v.extend_from_slice(&x.to_le_bytes());
        }
        Value::Png {
            height,
            width,
            channels,
            png,
        } => {
            let mut img = vec![];
            int_field(&mut img, 1, *height as i64);
            int_field(&mut img, 2, *width as i64);
            int_field(&mut img, 3, *channels as i64);
            bytes_field(&mut img, 4, png);
            bytes_field(&mut v, 4, &img);
        }
        Value::Text(text) => {
            let mut shape = vec![];
            let mut dim = vec![];
            int_field(&mut dim, 1, 1);
            bytes_field(&mut shape, 2, &dim);
            let mut tensor = vec![];
            int_field(&mut tensor, 1, 7); // DT_STRING
            bytes_field(&mut tensor, 2, &shape);
            bytes_field(&mut tensor, 8, text.as_bytes());
            bytes_field(&mut v, 8, &tensor);
            let mut plugin = vec![];
            bytes_field(&mut plugin, 1, b"text");
            let mut meta = vec![];
            bytes_field(&mut meta, 1, &plugin);
            bytes_field(&mut v, 9, &meta);
        }
    }
    v
}

fn event(wall_time: f64, step: i64, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut e = vec![];
    key(&mut e, 1, 1);
    e.extend_from_slice(&wall_time.to_le_bytes());
    int_field(&mut e, 2, step);
    body(&mut e);
    e
}

/// Appends events to one `events.out.tfevents.*` file.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl EventWriter {
    /// Creates a new event file in `dir` (one per training session, as TensorFlow does; a
    /// resumed run adds a file and TensorBoard merges them by step).
    pub fn create(dir: &Path) -> std::io::Result<EventWriter> {
        let t = now();
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let path = dir.join(format!(
            "events.out.tfevents.{}.{host}.{}",
            t as u64,
            std::process::id()
        ));
        let mut w = EventWriter {
            out: BufWriter::new(File::create(&path)?),
            path,
        };
        let first = event(t, 0, |e| bytes_field(e, 3, b"brain.Event:2"));
        w.record(&first)?;
        Ok(w)
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&mut self, data: &[u8]) -> std::io::Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        self.out.write_all(&len)?;
        self.out.write_all(&masked_crc(&len).to_le_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(&masked_crc(data).to_le_bytes())
    }

    /// Writes one event with the given tagged values at `step`.
    pub fn write(&mut self, step: i64, values: &[(&str, Value)]) -> std::io::Result<()> {
        let mut summary = vec![];
        for (tag, v) in values {
            bytes_field(&mut summary, 1, &summary_value(tag, v));
        }
        let e = event(now(), step, |e| bytes_field(e, 5, &summary));
        self.record(&e)
    }

    /// Writes the buffered events to the file.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

// ---- reading (tests, and `sae-dsl` users who want the numbers back) ------------------------------

/// One value read back from an event file.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadValue {
    Scalar(f32),
    /// (height, width, channels, PNG bytes).
    Image(usize, usize, usize, Vec<u8>),
    Text(String),
}

/// One event read back: its step and tagged values (the file-version event has none).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadEvent {
    pub step: i64,
    pub wall_time: f64,
    pub values: Vec<(String, ReadValue)>,
}

/// A protobuf message as (field, wire type, payload) triples: varints and fixed-width values
/// as their bits, length-delimited fields as bytes.
fn fields(mut b: &[u8]) -> Result<Vec<(u32, Vec<u8>, u64)>, String> {
    fn read_varint(b: &mut &[u8]) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first().ok_or("truncated varint")?;
            *b = rest;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    let mut out = vec![];
    while !b.is_empty() {
        let k = read_varint(&mut b)?;
        let (field, wire) = ((k >> 3) as u32, (k & 7) as u8);
        match wire {
            0 => out.push((field, vec![], read_varint(&mut b)?)),
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if b.len() < n {
                    return Err("truncated fixed field".into());
                }
                let mut buf = [0u8; 8];
                buf[..n].copy_from_slice(&b[..n]);
                b = &b[n..];
                out.push((field, vec![], u64::from_le_bytes(buf)));
            }
            2 => {
                let n = read_varint(&mut b)? as usize;
                if b.len() < n {
                    return Err("truncated length-delimited field".into());
                }
                out.push((field, b[..n].to_vec(), 0));
                b = &b[n..];
            }
            w => return Err(format!("unsupported wire type {w}")),
        }
    }
    Ok(out)
}

fn read_value(b: &[u8]) -> Result<(String, Option<ReadValue>), String> {
    let mut tag = String::new();
    let mut value = None;
    for (f, bytes, bits) in fields(b)? {
        match f {
            1 => tag = String::from_utf8_lossy(&bytes).into_owned(),
            2 => value = Some(ReadValue::Scalar(f32::from_bits(bits as u32))),
            4 => {
                let (mut h, mut w, mut c, mut png) = (0, 0, 0, vec![]);
                for (f, bytes, bits) in fields(&bytes)? {
                    match f {
                        1 => h = bits as usize,
                        2 => w = bits as usize,
                        3 => c = bits as usize,
                        4 => png = bytes,
                        _ => {}
                    }
                }
                value = Some(ReadValue::Image(h, w, c, png));
            }
            8 => {
                for (f, bytes, _) in fields(&bytes)? {
                    if f == 8 {
                        value = Some(ReadValue::Text(String::from_utf8_lossy(&bytes).into()));
                    }
                }
            }
            _ => {}
        }
    }
    Ok((tag, value))
}

/// Reads every event of an event file, checking both CRCs of every record.
pub fn read_events(path: &Path) -> Result<Vec<ReadEvent>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut b = &data[..];
    let mut events = vec![];
    while !b.is_empty() {
        if b.len() < 12 {
            return Err("truncated record header".into());
        }
        let len_bytes = &b[..8];
        let n = u64::from_le_bytes(len_bytes.try_into().map_err(|_| "header")?) as usize;
        let crc = u32::from_le_bytes(b[8..12].try_into().map_err(|_| "header")?);
        if crc != masked_crc(len_bytes) {
            return Err("bad length CRC".into());
        }
        if b.len() < 12 + n + 4 {
            return Err("truncated record".into());
        }
        let body = &b[12..12 + n];
        let crc = u32::from_le_bytes(b[12 + n..16 + n].try_into().map_err(|_| "footer")?);
        if crc != masked_crc(body) {
            return Err("bad data CRC".into());
        }
        b = &b[16 + n..];
        let mut ev = ReadEvent {
            step: 0,
            wall_time: 0.0,
            values: vec![],
        };
        for (f, bytes, bits) in fields(body)? {
            match f {
                1 => ev.wall_time = f64::from_bits(bits),
                2 => ev.step = bits as i64,
                5 => {
                    for (f, bytes, _) in fields(&bytes)? {
                        if f == 1 {
                            if let (tag, Some(v)) = read_value(&bytes)? {
                                ev.values.push((tag, v));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        events.push(ev);
    }
    Ok(events)
}

/// The event files of a run directory, oldest first.
pub fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("events.out.tfevents."))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value of "123456789" (RFC 3720, B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn events_written_are_read_back() {
        let dir = std::env::temp_dir().join(format!("sae-tb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut w = EventWriter::create(&dir).expect("create");
        w.write(3, &[("train/recon", Value::Scalar(1.5))])
            .expect("scalar");
        w.write(
            4,
            &[
                ("model", Value::Text("data mnist()")),
                (
                    "samples",
                    Value::Png {
                        height: 2,
                        width: 3,
                        channels: 3,
                        png: &[1, 2, 3],
                    },
                ),
            ],
        )
        .expect("text");
        w.flush().expect("flush");
        let ev = read_events(w.path()).expect("read");
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[1].step, 3);
        assert_eq!(
            ev[1].values,
            vec![("train/recon".into(), ReadValue::Scalar(1.5))]
        );
        assert_eq!(ev[2].values[0].1, ReadValue::Text("data mnist()".into()));
        assert_eq!(ev[2].values[1].1, ReadValue::Image(2, 3, 3, vec![1, 2, 3]));
        // A flipped byte is caught by the CRC.
        let mut bytes = std::fs::read(w.path()).expect("bytes");
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        std::fs::write(w.path(), bytes).expect("write");
        assert!(read_events(w.path()).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
