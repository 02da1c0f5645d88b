//! Data loading: IDX parsing errors name the file and what was expected; the search path is
//! listed when nothing is found; downloads are verified by SHA-256 (loopback HTTP server).

mod common;

use std::io::{Read, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use sae_dsl::data::{self, DataError};
use sae_dsl::ir::{DataSource, DataSpec};
use tch::Device;

fn gz(path: &Path, bytes: &[u8]) {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    std::fs::write(path, e.finish().expect("gzip")).expect("write");
}

fn images(n: u32, r: u32, c: u32, magic: u32, pixels: usize) -> Vec<u8> {
    let mut v = vec![];
    for x in [magic, n, r, c] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend((0..pixels).map(pixel));
    v
}

/// The value of pixel `k` of the written files: varied, so that order and scaling show.
fn pixel(k: usize) -> u8 {
    ((k * 37 + k / 784 * 11) % 256) as u8
}

fn labels(n: u32) -> Vec<u8> {
    let mut v = 2049u32.to_be_bytes().to_vec();
    v.extend_from_slice(&n.to_be_bytes());
    v.extend((0..n).map(|i| (i * 7 % 10) as u8));
    v
}

fn spec() -> DataSpec {
    DataSpec {
        source: DataSource::Idx {
            dir: "mnist".into(),
            split: "train".into(),
            limit: 0,
        },
        shape: vec![1, 28, 28],
        binarize: false,
        transforms: vec![],
        base: None,
    }
}

/// Writes an mnist folder with the given train files and loads it.
fn load_with(
    img: Option<Vec<u8>>,
    lab: Option<Vec<u8>>,
    raw_img: Option<Vec<u8>>,
) -> Result<data::Dataset, DataError> {
    let root = common::tempdir("idx");
    let dir = root.join("mnist");
    std::fs::create_dir_all(&dir).expect("dir");
    if let Some(i) = img {
        gz(&dir.join("train-images-idx3-ubyte.gz"), &i);
    }
    if let Some(r) = raw_img {
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), r).expect("write");
    }
    if let Some(l) = lab {
        gz(&dir.join("train-labels-idx1-ubyte.gz"), &l);
    }
    data::load(&spec(), "train", Some(&root), 0, Device::Cpu)
}

fn corrupt_message(r: Result<data::Dataset, DataError>) -> String {
    match r {
        Err(DataError::Corrupt { path, what }) => format!("{}: {what}", path.display()),
        Err(e) => panic!("expected a corrupt-data error, got {e}"),
        Ok(_) => panic!("expected a corrupt-data error, got data"),
    }
}

#[test]
fn good_files_load() {
    let d = load_with(
        Some(images(3, 28, 28, 2051, 3 * 784)),
        Some(labels(3)),
        None,
    )
    .expect("loads");
    assert_eq!(d.x().size(), vec![3, 1, 28, 28]);
    // Every pixel in its place, scaled to [0, 1]; every label.
    let got: Vec<f32> = Vec::<f32>::try_from(d.x().flatten(0, -1)).expect("pixels");
    let want: Vec<f32> = (0..3 * 784).map(|k| f32::from(pixel(k)) / 255.0).collect();
    assert_eq!(got, want);
    let labels: Vec<i64> =
        Vec::<i64>::try_from(d.labels.as_ref().expect("labels")).expect("labels");
    assert_eq!(labels, vec![0, 7, 4]);
}

#[test]
fn wrong_magic() {
    let m = corrupt_message(load_with(
        Some(images(3, 28, 28, 2049, 3 * 784)),
        Some(labels(3)),
        None,
    ));
    assert!(
        m.contains("train-images") && m.contains("magic number 2049, expected 2051"),
        "{m}"
    );
}

#[test]
fn truncated_images() {
    let m = corrupt_message(load_with(
        Some(images(3, 28, 28, 2051, 2 * 784)),
        Some(labels(3)),
        None,
    ));
    assert!(m.contains("truncated") && m.contains("3 images"), "{m}");
}

#[test]
fn corrupt_gzip() {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&images(3, 28, 28, 2051, 3 * 784))
        .expect("gzip");
    let mut bytes = e.finish().expect("gzip");
    bytes.truncate(bytes.len() / 2);
    let m = corrupt_message(load_with(None, Some(labels(3)), Some(bytes)));
    assert!(m.contains("gzip"), "{m}");
}

#[test]
fn label_count_mismatch() {
    let m = corrupt_message(load_with(
        Some(images(3, 28, 28, 2051, 3 * 784)),
        Some(labels(2)),
        None,
    ));
    assert!(m.contains("2 labels for 3 images"), "{m}");
}

#[test]
fn wrong_image_size() {
    let m = corrupt_message(load_with(
        Some(images(2, 32, 32, 2051, 2 * 1024)),
        Some(labels(2)),
        None,
    ));
    assert!(m.contains("32x32") && m.contains("28x28"), "{m}");
}

#[test]
fn empty_data_set() {
    let m = corrupt_message(load_with(
        Some(images(0, 28, 28, 2051, 0)),
        Some(labels(0)),
        None,
    ));
    assert!(m.contains("no images"), "{m}");
}

#[test]
fn missing_files_list_the_search_path() {
    let root = common::tempdir("missing");
    match data::find_file("no-such-set", "train-images-idx3-ubyte.gz", Some(&root)) {
        Err(DataError::NotFound { help, .. }) => {
            assert!(
                help.contains(&root.join("no-such-set").display().to_string()),
                "{help}"
            );
            assert!(help.contains("/usr/share/datasets"), "{help}");
            assert!(
                help.contains("--data-dir") && help.contains(data::DATA_ENV),
                "{help}"
            );
        }
        other => panic!(
            "expected not found, got {:?}",
            other.map(|p| p.display().to_string())
        ),
    }
}

/// Serves `body` to every request on a loopback port; returns the base URL.
fn serve(body: Vec<u8>, requests: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn download_is_verified_and_atomic() {
    use sha2::Digest;
    let body = b"some idx bytes".to_vec();
    let sha = data::hex(&sha2::Sha256::digest(&body));
    let dir = common::tempdir("dl");
    let dest = dir.join("sub").join("file.gz");

    let url = serve(body.clone(), 1);
    let p = data::fetch_verified(&format!("{url}/file.gz"), &sha, &dest).expect("download");
    assert_eq!(std::fs::read(p).expect("file"), body);

    let bad = dir.join("bad.gz");
    let url = serve(b"tampered".to_vec(), 1);
    match data::fetch_verified(&format!("{url}/file.gz"), &sha, &bad) {
        Err(DataError::Download { what, .. }) => {
            assert!(what.contains("checksum mismatch"), "{what}")
        }
        other => panic!(
            "expected a checksum error, got {:?}",
            other.map(|p| p.display().to_string())
        ),
    }
    assert!(!bad.exists(), "a file with the wrong checksum is not kept");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files are left behind");

    // A server that is not there: a download error, not a panic.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let r = data::fetch_verified(&format!("http://{closed}/x"), &sha, &dir.join("never.gz"));
    assert!(matches!(r, Err(DataError::Download { .. })));
}
