//! Training on one's own data (issue 14): image folders, NumPy arrays, CIFAR-10's binary format
//! and the procedural `shapes` set, each checked against the data written; and every bad input
//! with the message a user sees (through the real binary).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{Array1, Array2, Array3, Array4};
use ndarray_npy::{NpzWriter, WriteNpyExt};
use sae_dsl::data;
use tch::{Device, Kind, Tensor};

const BIN: &str = env!("CARGO_BIN_EXE_sae-dsl");

/// Tests that point `SAE_DSL_CACHE` of this process somewhere hold this lock.
static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn env_lock() -> std::sync::MutexGuard<'static, ()> {
    ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tiny model on `data` whose examples are `shape` ([C, S, S] or [D]).
fn model(data: &str, shape: &[i64]) -> String {
    let out: i64 = shape.iter().product();
    let generator = if shape.len() == 3 {
        format!(
            "linear({out}) sigmoid reshape({}, {}, {})",
            shape[0], shape[1], shape[2]
        )
    } else {
        format!("linear({out})")
    };
    format!(
        "data {data}\nlatent R^2 ~ normal()\nencoder {{ flatten linear(2) }}\ngenerator {{ {generator} }}\npenalty 1 * sinkhorn(epsilon = 1, iterations = 5)\ntrain {{ batch 8 epochs 1 }}\n"
    )
}

struct Outcome {
    ok: bool,
    stderr: String,
    run: PathBuf,
}

/// Writes `text` as DIR/model.sae and runs it (1 epoch, CPU, no evaluation unless `eval`), with
/// the cache under DIR/cache and DIR/data as the data directory.
fn run(dir: &Path, text: &str, eval: bool) -> Outcome {
    std::fs::write(dir.join("model.sae"), text).expect("model");
    let out_dir = dir.join("run");
    let mut args = vec![
        "run".to_string(),
        dir.join("model.sae").display().to_string(),
        "--out".into(),
        out_dir.display().to_string(),
        "--force".into(),
        "--device".into(),
        "cpu".into(),
        "--quiet".into(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
    ];
    if !eval {
        args.push("--no-eval".into());
    }
    let out = Command::new(BIN)
        .args(&args)
        .env("SAE_DSL_CACHE", dir.join("cache"))
        .env("SAE_DSL_OFFLINE", "1")
        .env_remove("SAE_DSL_DATA")
        .output()
        .expect("runs");
    Outcome {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        run: out_dir,
    }
}

/// The data set a model text loads (split "train" or "test"), through the library.
fn load(dir: &Path, text: &str, split: &str) -> Result<data::Dataset, data::DataError> {
    let c = sae_dsl::compile_source("model.sae", text, Some(dir));
    let m = c.model.expect("the model compiles");
    data::load(&m.data, split, Some(&dir.join("data")), 0, Device::Cpu)
}

/// Grey 8x8 images of `classes` kinds (class k: a bright row k), `per` of each, as PNG files
/// in class sub-folders; returns the pixels written, in path order.
fn write_png_folder(root: &Path, classes: usize, per: usize) -> Vec<Vec<u8>> {
    let mut all = vec![];
    for k in 0..classes {
        let d = root.join(format!("class{k}"));
        std::fs::create_dir_all(&d).expect("dir");
        for i in 0..per {
            let px: Vec<u8> = (0..64)
                .map(|p| {
                    if p / 8 == k {
                        255
                    } else {
                        ((p * 7 + i * 13) % 90) as u8
                    }
                })
                .collect();
            image::GrayImage::from_raw(8, 8, px.clone())
                .expect("image")
                .save(d.join(format!("img{i:03}.png")))
                .expect("png");
            all.push(px);
        }
    }
    all
}

#[test]
fn an_image_folder_loads_exactly_splits_by_seed_and_is_cached() {
    let _env = env_lock();
    let dir = common::tempdir("folder");
    std::env::set_var("SAE_DSL_CACHE", dir.join("cache"));
    let written = write_png_folder(&dir.join("pngs"), 3, 10);
    let text = model(
        "images(\"pngs\", channels = 1, size = 8, test_fraction = 0.2, split_seed = 1)",
        &[1, 8, 8],
    );
    let t0 = std::time::Instant::now();
    let train = load(&dir, &text, "train").expect("loads");
    let first = t0.elapsed();
    let test = load(&dir, &text, "test").expect("loads");
    assert_eq!((train.len(), test.len()), (24, 6));
    assert_eq!(train.x().size(), [24, 1, 8, 8]);
    // Every loaded image is one written, with the label of its folder.
    let all = Tensor::cat(&[&train.x(), &test.x()], 0);
    let labels = Tensor::cat(
        &[
            train.labels.as_ref().expect("labels"),
            test.labels.as_ref().expect("labels"),
        ],
        0,
    );
    let mut seen = vec![false; written.len()];
    for i in 0..30 {
        let img: Vec<f32> = Vec::try_from(all.get(i).flatten(0, -1)).expect("values");
        let px: Vec<u8> = img.iter().map(|v| (v * 255.0).round() as u8).collect();
        let j = written
            .iter()
            .position(|w| *w == px)
            .expect("a written image");
        assert!(!seen[j], "image {j} loaded twice");
        seen[j] = true;
        assert_eq!(
            labels.int64_value(&[i]),
            (j / 10) as i64,
            "the label is the folder"
        );
    }
    // The cache is used the second time: same tensors, no decoding.
    let t1 = std::time::Instant::now();
    let again = load(&dir, &text, "train").expect("loads");
    assert!(again.x().equal(&train.x()));
    let cached = std::fs::read_dir(dir.join("cache/images"))
        .expect("cache")
        .count();
    assert_eq!(cached, 1, "one cache entry for one file list and settings");
    eprintln!("first load {first:?}, cached {:?}", t1.elapsed());
    // Another seed holds out other images.
    let other = load(
        &dir,
        &text.replace("split_seed = 1", "split_seed = 2"),
        "test",
    )
    .expect("loads");
    assert!(!other.x().equal(&test.x()));
    // A colour reading of the same folder: three equal planes.
    let rgb_text = model(
        "images(\"pngs\", channels = 3, size = 8, test_fraction = 0.2, split_seed = 1)",
        &[3, 8, 8],
    );
    let rgb = load(&dir, &rgb_text, "train").expect("loads");
    assert_eq!(rgb.x().size(), [24, 3, 8, 8]);
    assert!(rgb.x().narrow(1, 0, 1).equal(&rgb.x().narrow(1, 2, 1)));
    std::env::remove_var("SAE_DSL_CACHE");
}

#[test]
fn uint8_images_are_stored_as_bytes_and_batches_are_the_float_values() {
    let _env = env_lock();
    let dir = common::tempdir("u8store");
    std::env::set_var("SAE_DSL_CACHE", dir.join("cache"));
    write_png_folder(&dir.join("pngs"), 2, 10);
    let text = model("images(\"pngs\", channels = 1, size = 8)", &[1, 8, 8]);
    let train = load(&dir, &text, "train").expect("loads");
    std::env::remove_var("SAE_DSL_CACHE");
    assert!(train.is_u8(), "PNG pixels are kept as uint8");
    assert_eq!(
        train.bytes(),
        (train.len() * 64) as f64,
        "one byte per value"
    );
    let x = train.x();
    assert_eq!(x.kind(), Kind::Float);
    let rows = Tensor::from_slice(&[5i64, 0, 3]);
    let batch = train.batch(&rows);
    assert_eq!(batch.kind(), Kind::Float);
    // Bit for bit the floats of the whole set: the same division by 255.
    assert!(batch.equal(&x.index_select(0, &rows)));
    assert!(train.head(4).equal(&x.narrow(0, 0, 4)));
    // Kept in host memory for training (a GPU's fallback), the batches are the same.
    let host = train.shallow_clone().place(Device::Cpu, true);
    assert!(host.batch(&rows).equal(&batch));
    // Float arrays stay floats; uint8 image arrays are bytes too.
    let d = dir.join("data");
    std::fs::create_dir_all(&d).expect("dir");
    let f = Array3::<f32>::from_shape_fn((6, 4, 4), |(n, i, j)| (n + i + j) as f32 / 20.0);
    f.write_npy(std::fs::File::create(d.join("f.npy")).expect("f"))
        .expect("npy");
    let u = Array3::<u8>::from_shape_fn((6, 4, 4), |(n, i, j)| (n * 16 + i * 4 + j) as u8);
    u.write_npy(std::fs::File::create(d.join("u.npy")).expect("u"))
        .expect("npy");
    let floats = load(
        &dir,
        &model("arrays(\"f.npy\", channels = 1, size = 4)", &[1, 4, 4]),
        "train",
    )
    .expect("loads");
    assert!(!floats.is_u8());
    let bytes = load(
        &dir,
        &model("arrays(\"u.npy\", channels = 1, size = 4)", &[1, 4, 4]),
        "train",
    )
    .expect("loads");
    assert!(bytes.is_u8());
    let v: Vec<f32> = Vec::try_from(bytes.x().flatten(0, -1)).expect("values");
    assert!(v
        .iter()
        .all(|p| (p * 255.0 - (p * 255.0).round()).abs() < 1e-4 && *p <= 1.0));
}

#[test]
fn train_and_test_sub_folders_are_the_splits_and_crop_then_resize_is_applied() {
    let _env = env_lock();
    let dir = common::tempdir("folder-split");
    std::env::set_var("SAE_DSL_CACHE", dir.join("cache"));
    write_png_folder(&dir.join("set/train"), 2, 4);
    write_png_folder(&dir.join("set/test"), 2, 2);
    let text = model("images(\"set\", channels = 1, size = 8)", &[1, 8, 8]);
    assert_eq!(load(&dir, &text, "train").expect("loads").len(), 8);
    assert_eq!(load(&dir, &text, "test").expect("loads").len(), 4);
    // A 12 x 6 image: the centre 6 x 6 square, resized to 3 x 3 (2 x 2 blocks averaged).
    let img = dir.join("wide");
    std::fs::create_dir_all(&img).expect("dir");
    let px: Vec<u8> = (0..72)
        .map(|p| if p % 12 < 3 || p % 12 >= 9 { 0 } else { 200 })
        .collect();
    image::GrayImage::from_raw(12, 6, px)
        .expect("image")
        .save(img.join("a.png"))
        .expect("png");
    let t = model(
        "images(\"wide\", channels = 1, size = 3, test_fraction = 0)",
        &[1, 3, 3],
    );
    let x = load(&dir, &t, "train").expect("loads").x();
    let v: Vec<f32> = Vec::try_from(x.flatten(0, -1)).expect("values");
    assert!(
        v.iter().all(|p| (p * 255.0 - 200.0).abs() < 1.0),
        "{v:?}: the black borders are cut"
    );
    std::env::remove_var("SAE_DSL_CACHE");
}

#[test]
fn arrays_load_in_every_layout_with_labels() {
    let dir = common::tempdir("arrays");
    let d = dir.join("data");
    std::fs::create_dir_all(&d).expect("dir");
    let n = 20;
    let grey = Array3::<u8>::from_shape_fn((n, 4, 4), |(i, r, c)| (i * 16 + r * 4 + c) as u8);
    let labels = Array1::<i64>::from_shape_fn(n, |i| (i % 3) as i64);
    let mut w = NpzWriter::new(std::fs::File::create(d.join("grey.npz")).expect("file"));
    w.add_array("x", &grey).expect("add");
    w.add_array("y", &labels).expect("add");
    w.add_array("x_test", &grey.slice(ndarray::s![..5, .., ..]).to_owned())
        .expect("add");
    w.finish().expect("npz");
    let text = model(
        "arrays(\"grey.npz\", key = \"x\", labels = \"y\", channels = 1, size = 4, test_fraction = 0.25)",
        &[1, 4, 4],
    );
    let train = load(&dir, &text, "train").expect("loads");
    let test = load(&dir, &text, "test").expect("loads");
    assert_eq!((train.len(), test.len()), (15, 5));
    let all = Tensor::cat(&[&train.x(), &test.x()], 0);
    let sum = (all.sum(Kind::Double).double_value(&[]) * 255.0).round() as i64;
    assert_eq!(
        sum,
        grey.iter().map(|v| *v as i64).sum::<i64>(),
        "uint8 / 255, every example once"
    );
    // A declared test array instead of a split.
    let t = text.replace("test_fraction = 0.25", "test_key = \"x_test\"");
    assert_eq!(load(&dir, &t, "test").expect("loads").len(), 5);
    assert_eq!(load(&dir, &t, "train").expect("loads").len(), 20);

    // [N, H, W, C] float images are moved to [N, C, H, W].
    let hwc = Array4::<f32>::from_shape_fn((6, 2, 2, 3), |(i, r, c, ch)| {
        (ch as f32 * 0.25) + (i + r + c) as f32 * 0.01
    });
    hwc.write_npy(std::fs::File::create(d.join("rgb.npy")).expect("file"))
        .expect("npy");
    let t = model(
        "arrays(\"rgb.npy\", channels = 3, size = 2, test_fraction = 0)",
        &[3, 2, 2],
    );
    let x = load(&dir, &t, "train").expect("loads").x();
    assert_eq!(x.size(), [6, 3, 2, 2]);
    for ch in 0..3 {
        let plane = x.narrow(1, ch, 1);
        let lo = plane.min().double_value(&[]);
        assert!(
            (lo - ch as f64 * 0.25).abs() < 1e-6,
            "channel {ch} starts at {lo}"
        );
    }

    // Vectors [N, D] are points.
    let vecs = Array2::<f64>::from_shape_fn((10, 5), |(i, j)| (i * 5 + j) as f64 - 20.0);
    vecs.write_npy(std::fs::File::create(d.join("table.npy")).expect("file"))
        .expect("npy");
    let t = model("arrays(\"table.npy\", dim = 5, test_fraction = 0)", &[5]);
    let x = load(&dir, &t, "train").expect("loads").x();
    assert_eq!(x.size(), [10, 5]);
    assert_eq!(
        x.double_value(&[0, 0]),
        -20.0,
        "vectors are used as they are"
    );
}

#[test]
fn cifar_batches_are_read_record_by_record() {
    let dir = common::tempdir("cifar");
    let d = dir.join("data/cifar-10-batches-bin");
    std::fs::create_dir_all(&d).expect("dir");
    let record = |label: u8, fill: u8| {
        let mut r = vec![label];
        r.extend((0..3072).map(|i| if i < 1024 { fill } else { (i % 256) as u8 }));
        r
    };
    for k in 1..=5u8 {
        let bytes: Vec<u8> = (0..4)
            .flat_map(|i| record((k + i) % 10, k * 10 + i))
            .collect();
        std::fs::write(d.join(format!("data_batch_{k}.bin")), bytes).expect("write");
    }
    std::fs::write(d.join("test_batch.bin"), record(7, 99)).expect("write");
    let text = model("cifar10()", &[3, 32, 32]);
    let train = load(&dir, &text, "train").expect("loads");
    assert_eq!(train.x().size(), [20, 3, 32, 32]);
    // Example 5 is batch 2's second record: label 3, red plane 21.
    assert_eq!(train.labels.as_ref().expect("labels").int64_value(&[5]), 3);
    assert!((train.x().double_value(&[5, 0, 10, 10]) * 255.0 - 21.0).abs() < 1e-3);
    assert!(
        (train.x().double_value(&[5, 1, 0, 1]) * 255.0 - 1.0).abs() < 1e-3,
        "green follows red"
    );
    let test = load(&dir, &text, "test").expect("loads");
    assert_eq!(test.len(), 1);
}

#[test]
fn a_folder_and_an_npz_array_train_from_the_command_line_and_evaluate() {
    let dir = common::tempdir("own-run");
    write_png_folder(&dir.join("pngs"), 3, 12);
    let o = run(
        &dir,
        &model("images(\"pngs\", channels = 1, size = 8)", &[1, 8, 8]),
        true,
    );
    assert!(o.ok, "{}", o.stderr);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(o.run.join("summary.json")).expect("summary"),
    )
    .expect("json");
    assert!(summary["test_mse"].as_f64().is_some());
    assert!(
        summary["fid_cnn"].as_f64().is_some(),
        "labelled images get a FID"
    );
    let features = summary["fid_features"]
        .as_str()
        .expect("the FID names its features");
    assert!(
        features.contains("conv(1->32") && features.contains("linear(128->3)"),
        "{features}"
    );
    assert!(o.run.join("reconstructions.png").is_file());
    // Evaluated again from the run directory: the relative path still starts from the model's
    // folder (recorded in config.json).
    let eval_with = |extra: &[&Path]| {
        Command::new(BIN)
            .args([
                "eval",
                &o.run.display().to_string(),
                "--device",
                "cpu",
                "--samples",
                "500",
            ])
            .args(extra.iter().flat_map(|p| [Path::new("--features"), p]))
            .env("SAE_DSL_CACHE", dir.join("cache"))
            .output()
            .expect("runs")
    };
    let out = eval_with(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("features of a CNN trained on the data's labels"),
        "{shown}"
    );

    // A user's TorchScript feature network gives a second FID, named by its file. Features
    // that ignore the image make every set look alike: FID 0, where the CNN's is not.
    let probe = || Tensor::rand([2, 1, 8, 8], (Kind::Float, Device::Cpu));
    let constant = dir.join("constant.pt");
    tch::CModule::create_by_tracing("Constant", "forward", &[probe()], &mut |t| {
        vec![t[0].flatten(1, -1).narrow(1, 0, 3) * 0.0]
    })
    .expect("traced")
    .save(&constant)
    .expect("saved");
    let out = eval_with(&[&constant]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(o.run.join("summary.json")).expect("summary"),
    )
    .expect("json");
    assert!(
        summary["fid_external"]
            .as_f64()
            .expect("external FID")
            .abs()
            < 1e-6
    );
    assert!(summary["fid_cnn"].as_f64().expect("CNN FID") > 1e-3);
    let named = summary["fid_external_features"].as_str().expect("named");
    assert!(
        named.starts_with("TorchScript ")
            && named.contains("constant.pt")
            && named.contains("sha256"),
        "{named}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(features of TorchScript"));
    // Features of the wrong shape, and a file that is not TorchScript.
    let flat = dir.join("flat.pt");
    tch::CModule::create_by_tracing("Flat", "forward", &[probe()], &mut |t| {
        vec![t[0].flatten(0, -1)]
    })
    .expect("traced")
    .save(&flat)
    .expect("saved");
    let out = eval_with(&[&flat]);
    assert!(!out.status.success());
    let err = words(&String::from_utf8_lossy(&out.stderr));
    assert!(
        err.contains("sae::eval::features")
            && err.contains("for 4 images; features must be [4, F]"),
        "{err}"
    );
    // Samples as a folder of PNG files, for external FID tools.
    let out = Command::new(BIN)
        .args(["sample", &o.run.display().to_string(), "-n", "3", "--out"])
        .arg(dir.join("samples"))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..3 {
        let img = image::open(dir.join(format!("samples/{i:06}.png"))).expect("a PNG");
        assert_eq!(
            (img.width(), img.height(), img.color()),
            (8, 8, image::ColorType::L8)
        );
    }
    assert!(!dir.join("samples/000003.png").exists());
    std::fs::write(dir.join("junk.pt"), "not a module").expect("write");
    let out = eval_with(&[&dir.join("junk.pt")]);
    let err = words(&String::from_utf8_lossy(&out.stderr));
    assert!(
        !out.status.success() && err.contains("junk.pt: not a TorchScript module"),
        "{err}"
    );

    let d = dir.join("data");
    std::fs::create_dir_all(&d).expect("dir");
    let x = Array4::<u8>::from_shape_fn((40, 1, 8, 8), |(i, _, r, c)| {
        ((i * 3 + r * 8 + c) % 256) as u8
    });
    let mut w = NpzWriter::new_compressed(std::fs::File::create(d.join("set.npz")).expect("file"));
    w.add_array("images", &x).expect("add");
    w.finish().expect("npz");
    // Found under --data-dir, since it is not beside the model file.
    let o = run(
        &dir,
        &model(
            "arrays(\"set.npz\", key = \"images\", channels = 1, size = 8)",
            &[1, 8, 8],
        ),
        false,
    );
    assert!(o.ok, "{}", o.stderr);
    assert!(o.run.join("checkpoint.safetensors").is_file());
}

#[test]
fn the_shapes_set_is_reproducible_and_labelled_with_its_factors() {
    let dir = common::tempdir("shapes");
    let text = model("shapes(n = 50, size = 16, seed = 3)", &[3, 16, 16]);
    let a = load(&dir, &text, "train").expect("draws");
    let b = load(&dir, &text, "train").expect("draws");
    assert!(a.x().equal(&b.x()));
    assert_eq!(a.x().size(), [50, 3, 16, 16]);
    let (names, f) = a.factors.as_ref().expect("factors");
    assert_eq!(names.len(), 6);
    assert_eq!(f.size(), [50, 6]);
    assert!(f
        .narrow(1, 0, 1)
        .squeeze_dim(1)
        .to_kind(Kind::Int64)
        .equal(a.labels.as_ref().expect("labels")));
    let test = load(&dir, &text, "test").expect("draws");
    assert_eq!(test.len(), 10);
    assert!(
        !test.x().equal(&a.x().narrow(0, 0, 10)),
        "the test set is another draw"
    );
}

// ---- bad input: the message a user sees -------------------------------------------------

/// Text as words: the rendered message wraps long lines and draws a margin (`│`).
fn words(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn fails_with(dir: &Path, text: &str, expect: &[&str]) -> String {
    let o = run(dir, text, false);
    assert!(!o.ok, "should fail:\n{}", o.stderr);
    for e in expect {
        assert!(
            words(&o.stderr).contains(&words(e)),
            "missing {e:?} in:\n{}",
            o.stderr
        );
    }
    o.stderr
}

#[test]
fn bad_image_folders_say_what_is_wrong() {
    let dir = common::tempdir("bad-folder");
    std::fs::create_dir_all(dir.join("empty/sub")).expect("dir");
    std::fs::write(dir.join("empty/sub/readme.txt"), "not an image").expect("write");
    let shown = fails_with(
        &dir,
        &model("images(\"empty\", channels = 1, size = 8)", &[1, 8, 8]),
        &[
            "sae::data::folder",
            "empty",
            "holds no PNG or JPEG images",
            "searched recursively",
        ],
    );
    eprintln!("{shown}");
    fails_with(
        &dir,
        &model("images(\"nowhere\", channels = 1, size = 8)", &[1, 8, 8]),
        &[
            "sae::data::path",
            "cannot find the data file or folder \"nowhere\"",
            "looked for:",
            "model file's folder",
        ],
    );

    // A corrupt file stops the run by default, and is skipped on request.
    write_png_folder(&dir.join("pngs"), 2, 8);
    std::fs::write(
        dir.join("pngs/class1/broken.png"),
        b"\x89PNG\r\n\x1a\n garbage",
    )
    .expect("write");
    let text = model("images(\"pngs\", channels = 1, size = 8)", &[1, 8, 8]);
    let shown = fails_with(
        &dir,
        &text,
        &[
            "sae::data::image",
            "broken.png",
            "cannot decode the image",
            "bad_files = \"skip\"",
        ],
    );
    eprintln!("{shown}");
    let o = run(
        &dir,
        &text.replace("size = 8)", "size = 8, bad_files = \"skip\")"),
        false,
    );
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stderr.contains("skipped 1 unreadable image") && o.stderr.contains("broken.png"),
        "{}",
        o.stderr
    );
    std::fs::remove_file(dir.join("pngs/class1/broken.png")).expect("remove");

    // Mixed sizes are legal (each is cropped and resized) but said.
    image::GrayImage::from_raw(10, 12, vec![128; 120])
        .expect("image")
        .save(dir.join("pngs/class0/big.png"))
        .expect("png");
    let o = run(&dir, &text, false);
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stderr.contains("warning: the images have 2 different sizes (8x8: 16, 10x12: 1); each is centre-cropped to a square and resized to 8x8"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_damaged_cache_entry_is_never_used() {
    let _env = env_lock();
    let dir = common::tempdir("cache");
    std::env::set_var("SAE_DSL_CACHE", dir.join("cache"));
    write_png_folder(&dir.join("pngs"), 2, 5);
    let text = model(
        "images(\"pngs\", channels = 1, size = 8, test_fraction = 0)",
        &[1, 8, 8],
    );
    let good = load(&dir, &text, "train").expect("loads");
    let entry = std::fs::read_dir(dir.join("cache/images"))
        .expect("cache")
        .flatten()
        .next()
        .expect("an entry")
        .path();
    // An interrupted write: the first half of the entry.
    let bytes = std::fs::read(&entry).expect("read");
    std::fs::write(&entry, &bytes[..bytes.len() / 2]).expect("truncate");
    let o = run(&dir, &text, false);
    assert!(o.ok, "{}", o.stderr);
    let again = load(&dir, &text, "train").expect("loads");
    assert!(again.x().equal(&good.x()), "decoded again, the same images");
    std::env::remove_var("SAE_DSL_CACHE");
    // The binary used its own cache folder (DIR/cache too): its message.
    std::fs::write(&entry, &bytes[..10]).expect("truncate");
    let o = run(&dir, &text, false);
    assert!(
        o.stderr.contains(
            "is incomplete or damaged (an interrupted write?); decoding the images again"
        ),
        "{}",
        o.stderr
    );
}

#[test]
fn bad_arrays_say_what_is_wrong() {
    let dir = common::tempdir("bad-arrays");
    let d = dir.join("data");
    std::fs::create_dir_all(&d).expect("dir");
    let img = |name: &str, a: &ndarray::ArrayD<f32>| {
        a.write_npy(std::fs::File::create(d.join(name)).expect("file"))
            .expect("npy");
    };
    // Wrong rank / shape.
    img("flat.npy", &ndarray::ArrayD::zeros(vec![10, 16]));
    fails_with(
        &dir,
        &model("arrays(\"flat.npy\", channels = 1, size = 4)", &[1, 4, 4]),
        &[
            "sae::data::array",
            "flat.npy",
            "has shape [10, 16]",
            "[N, 4, 4], [N, 1, 4, 4] or [N, 4, 4, 1]",
        ],
    );
    // NaN.
    let mut nan = ndarray::ArrayD::<f32>::zeros(vec![10, 4, 4]);
    nan[[3, 1, 1]] = f32::NAN;
    img("nan.npy", &nan);
    fails_with(
        &dir,
        &model("arrays(\"nan.npy\", channels = 1, size = 4)", &[1, 4, 4]),
        &[
            "holds 1 NaN or infinite value (the first, NaN, in example 3)",
            "nothing is replaced silently",
        ],
    );
    // Integer images of an unsupported type.
    Array3::<i32>::zeros((10, 4, 4))
        .write_npy(std::fs::File::create(d.join("int.npy")).expect("file"))
        .expect("npy");
    fails_with(
        &dir,
        &model("arrays(\"int.npy\", channels = 1, size = 4)", &[1, 4, 4]),
        &[
            "int.npy",
            "holds int32 (<i4) values",
            "uint8 (0-255) or float32",
        ],
    );
    // Labels of another length, and a missing key.
    let mut w = NpzWriter::new(std::fs::File::create(d.join("set.npz")).expect("file"));
    w.add_array("x", &Array3::<u8>::zeros((10, 4, 4)))
        .expect("add");
    w.add_array("y", &Array1::<i64>::zeros(9)).expect("add");
    w.finish().expect("npz");
    fails_with(
        &dir,
        &model(
            "arrays(\"set.npz\", key = \"x\", labels = \"y\", channels = 1, size = 4)",
            &[1, 4, 4],
        ),
        &["9 labels (\"y\") for 10 examples", "one entry per example"],
    );
    fails_with(
        &dir,
        &model(
            "arrays(\"set.npz\", key = \"images\", channels = 1, size = 4)",
            &[1, 4, 4],
        ),
        &[
            "sae::data::array_key",
            "has no array \"images\" (the images); it has: x, y",
        ],
    );
    // More than one array and no key.
    fails_with(
        &dir,
        &model("arrays(\"set.npz\", channels = 1, size = 4)", &[1, 4, 4]),
        &["has no array \"\"", "it has: x, y"],
    );
    // A truncated .npy.
    let mut bytes = Vec::new();
    Array3::<u8>::zeros((10, 4, 4))
        .write_npy(&mut bytes)
        .expect("npy");
    std::fs::write(d.join("cut.npy"), &bytes[..bytes.len() - 20]).expect("write");
    fails_with(
        &dir,
        &model("arrays(\"cut.npy\", channels = 1, size = 4)", &[1, 4, 4]),
        &["cut.npy", "ends before all the data its header declares"],
    );
    // Another format.
    std::fs::write(d.join("x.csv"), "1,2\n").expect("write");
    fails_with(
        &dir,
        &model("arrays(\"x.csv\", dim = 2)", &[2]),
        &["`arrays` reads .npy and .npz files, not .csv"],
    );
}

#[test]
fn a_truncated_cifar_file_is_named() {
    let dir = common::tempdir("bad-cifar");
    let d = dir.join("data/cifar-10-batches-bin");
    std::fs::create_dir_all(&d).expect("dir");
    for k in 1..=5 {
        std::fs::write(d.join(format!("data_batch_{k}.bin")), vec![1u8; 3073 * 2]).expect("write");
    }
    std::fs::write(d.join("data_batch_3.bin"), vec![1u8; 3073 + 100]).expect("write");
    std::fs::write(d.join("test_batch.bin"), vec![1u8; 3073]).expect("write");
    let shown = fails_with(
        &dir,
        &model("cifar10()", &[3, 32, 32]),
        &[
            "sae::data::corrupt",
            "data_batch_3.bin",
            "3173 bytes is not a whole number of 3073-byte CIFAR-10 records",
        ],
    );
    eprintln!("{shown}");
    std::fs::remove_dir_all(&d).expect("remove");
    fails_with(
        &dir,
        &model("cifar10()", &[3, 32, 32]),
        &[
            "sae::data::not_found",
            "cifar-10-batches-bin",
            "cifar-10-binary.tar.gz",
        ],
    );
}
