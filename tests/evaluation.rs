//! Evaluation: FID of the test set against itself is near zero and far below that of noise; the
//! classifier cache is reused and invalidated when the data change; the compare table is
//! snapshotted from fixed summaries; every picture is produced and decodes as a PNG of the
//! expected size.

mod common;

use std::path::{Path, PathBuf};

use sae_dsl::eval::classifier::{cached_path, frechet_distance, Classifier};
use sae_dsl::{compile_source, eval, pipeline, train};
use tch::{Device, Kind, Tensor};

fn png_size(path: &Path) -> (u32, u32) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dec = png::Decoder::new(std::io::BufReader::new(f));
    let mut r = dec
        .read_info()
        .unwrap_or_else(|e| panic!("{} is not a PNG: {e}", path.display()));
    let mut buf = vec![0; r.output_buffer_size()];
    r.next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (r.info().width, r.info().height)
}

#[test]
fn fid_of_a_set_with_itself_is_near_zero_and_far_below_noise() {
    tch::manual_seed(0);
    // Features with structure: a random linear map of clustered points.
    let centres = Tensor::randn([10, 16], (Kind::Double, Device::Cpu)) * 3.0;
    let labels = Tensor::randint(10, [4000], (Kind::Int64, Device::Cpu));
    let a =
        centres.index_select(0, &labels) + Tensor::randn([4000, 16], (Kind::Double, Device::Cpu));
    let itself = frechet_distance(&a, &a);
    assert!(itself.abs() < 1e-6, "FID(a, a) = {itself}");
    let noise = Tensor::rand([4000, 16], (Kind::Double, Device::Cpu));
    let far = frechet_distance(&a, &noise);
    assert!(far > 10.0, "FID(a, noise) = {far}");
    // Two Gaussians with known moments: |mu1 - mu2|^2 + sum (s1 - s2)^2 for diagonal covariances.
    let g1 = Tensor::randn([200_000, 2], (Kind::Double, Device::Cpu));
    let g2 = Tensor::randn([200_000, 2], (Kind::Double, Device::Cpu)) * 2.0 + 1.0;
    let want = 2.0 + 2.0 * (1.0f64 - 2.0).powi(2);
    let got = frechet_distance(&g1, &g2);
    assert!((got - want).abs() < 0.05, "closed form {want}, got {got}");
}

/// The real classifier on MNIST: trained once (cached), >= 98% test accuracy; FID of the test set
/// with itself 0, against noise large; a changed data set gets a new cache entry.
#[test]
fn mnist_classifier_is_cached_by_content_and_fid_separates_noise() {
    let Some(data) = common::data() else { return };
    let cache = std::env::var("SAE_DSL_CACHE").ok();
    let spec = sae_dsl::ir::DataSpec {
        source: sae_dsl::ir::DataSource::Idx {
            dir: "mnist".into(),
            split: "train".into(),
            limit: 0,
        },
        shape: vec![1, 28, 28],
        binarize: false,
        transforms: vec![],
        base: None,
    };
    let train = sae_dsl::data::load(&spec, "train", Some(&data), 0, Device::Cpu).expect("train");
    let test = sae_dsl::data::load(&spec, "test", Some(&data), 0, Device::Cpu).expect("test");
    let (ty, sy) = (
        train.labels.as_ref().expect("labels"),
        test.labels.as_ref().expect("labels"),
    );
    let c = Classifier::get(
        "mnist",
        (&train.x(), ty),
        (&test.x(), sy),
        Device::Cpu,
        true,
    )
    .expect("classifier");
    assert!(c.test_accuracy >= 0.98, "test accuracy {}", c.test_accuracy);
    let again = Classifier::get(
        "mnist",
        (&train.x(), ty),
        (&test.x(), sy),
        Device::Cpu,
        true,
    )
    .expect("classifier");
    assert!(
        !again.trained,
        "the second call loads from the cache ({})",
        again.path.display()
    );
    assert_eq!(again.path, c.path);
    assert!((again.test_accuracy - c.test_accuracy).abs() < 1e-12);

    let ft = c.features(&test.x());
    assert!(frechet_distance(&ft, &ft).abs() < 1e-6);
    let noise = c.features(&Tensor::rand(
        [10_000, 1, 28, 28],
        (Kind::Float, Device::Cpu),
    ));
    let train_f = c.features(&train.x());
    let (real, far) = (
        frechet_distance(&ft, &train_f),
        frechet_distance(&ft, &noise),
    );
    assert!(far > 50.0 * real, "FID test/train {real}, test/noise {far}");

    // Changed data: another content hash, another cache file.
    let changed = train.x().copy();
    let _ = changed.get(0).fill_(0.5);
    let p1 = cached_path("mnist", (&train.x(), ty), (&test.x(), sy));
    let p2 = cached_path("mnist", (&changed, ty), (&test.x(), sy));
    assert_ne!(p1, p2, "the cache key follows the data");
    assert!(p1.is_file() && !p2.is_file());
    let _ = cache;
}

#[test]
fn compare_table_from_fixed_summaries() {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compare");
    let dirs: Vec<PathBuf> = ["sae_dirichlet", "wae_mmd", "vae"]
        .iter()
        .map(|d| base.join(d))
        .collect();
    let (md, csv) = eval::compare(&dirs).expect("table");
    insta::assert_snapshot!("compare_markdown", md);
    insta::assert_snapshot!("compare_csv", csv);
    // A directory without a summary is an error that says what to do.
    let missing = eval::compare(&[base.join("no_such_run")])
        .err()
        .expect("an error")
        .to_string();
    assert!(
        missing.contains("summary.json") && missing.contains("sae-dsl eval"),
        "{missing}"
    );
}

/// A 2-D model with a 2-D latent: every picture of a run, including the decoded manifold, is a
/// PNG of the expected size; `sample` writes .npy and .png.
#[test]
fn every_picture_is_a_png_of_the_expected_size() {
    let text = "import \"std/nets\"\ndata gaussian_grid(n = 512, k = 2)\nlatent R^2 ~ normal()\nencoder { mlp(2, hidden = 16) }\ngenerator { mlp(2, hidden = 16) }\npenalty sinkhorn(iterations = 10)\ntrain { batch 64 epochs 2 }\n";
    let c = compile_source("pics.sae", text, None);
    let model = c.model.expect("model");
    let root = common::tempdir("pics");
    let dir = root.join("run");
    let opts = train::RunOptions {
        out: Some(dir.clone()),
        quiet: true,
        evaluate: true,
        ..Default::default()
    };
    pipeline::run(&model, text, Device::Cpu, &opts).expect("trains");
    for (f, w, h) in [
        ("samples.png", 680, 640),
        ("reconstructions.png", 680, 640),
        ("latent.png", 680, 640),
        ("manifold.png", 680, 640),
        ("loss_curves.png", 720, 440),
    ] {
        assert_eq!(png_size(&dir.join(f)), (w, h), "{f}");
    }
    let s: eval::Summary =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("summary"))
            .expect("an evaluation summary");
    assert_eq!(s.method, "SAE");
    assert!(s.fid_cnn.is_none(), "no FID for 2-D points");
    assert!(s.latent_mmd_x1000.is_finite() && s.data_sinkhorn.is_finite());
    assert_eq!(s.model_sha256.len(), 64);
    let run = eval::open_run(&dir, Device::Cpu).expect("opens");
    assert_eq!(run.model.name, "pics");
    eval::write_samples(&run.net, &run.model, 10, &root.join("s.npy")).expect("npy");
    let arr = sae_dsl::data::npy::read(&root.join("s.npy")).expect("readable npy");
    assert_eq!(arr.shape, vec![10, 2]);
    let _ = std::fs::remove_dir_all(root);
}

/// A composite code: latent.png has one panel per named component, each in its own space's
/// projection (a circle for S^1, a scatter for R^3's first two coordinates).
#[test]
fn the_latent_picture_has_a_panel_per_component() {
    let text = "import \"std/nets\"\ndata gaussian_grid(n = 512, k = 2)\nlatent a: S^1 ~ uniform_sphere()\nlatent b: R^3 ~ normal()\n\
                encoder a { mlp(2, hidden = 16) normalize }\nencoder b { mlp(3, hidden = 16) }\ngenerator { mlp(2, hidden = 16) }\n\
                penalty sinkhorn(iterations = 10) on a\npenalty sinkhorn(iterations = 10) on b\ntrain { batch 64 epochs 1 }\n";
    let c = compile_source("panels.sae", text, None);
    let model = c.model.expect("model");
    let root = common::tempdir("panels");
    let dir = root.join("run");
    let opts = train::RunOptions {
        out: Some(dir.clone()),
        quiet: true,
        evaluate: true,
        ..Default::default()
    };
    pipeline::run(&model, text, Device::Cpu, &opts).expect("trains");
    // Two 400-pixel panels side by side under a 30-pixel title.
    assert_eq!(png_size(&dir.join("latent.png")), (800, 430));
    let img = image::open(dir.join("latent.png")).expect("png").to_rgb8();
    // Each panel has coloured points (not only white, grey and black).
    for panel in 0..2u32 {
        let coloured = (panel * 400..(panel + 1) * 400)
            .flat_map(|x| (30..430u32).map(move |y| (x, y)))
            .filter(|&(x, y)| {
                let p = img.get_pixel(x, y).0;
                let (lo, hi) = (
                    p.iter().min().copied().unwrap_or(0),
                    p.iter().max().copied().unwrap_or(0),
                );
                hi - lo > 60
            })
            .count();
        assert!(
            coloured > 200,
            "panel {panel} has {coloured} coloured pixels"
        );
    }
    let _ = std::fs::remove_dir_all(root);
}

/// MNIST: image pictures (samples, reconstructions, vertices, interpolation) at their sizes, and
/// the sample command's uint8 .npy.
#[test]
fn image_pictures_and_samples() {
    let Some(data) = common::data() else { return };
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/dirichlet_mnist.sae"
    ))
    .expect("model");
    let text = text.replace(
        "data mnist(split = \"train\")",
        "data mnist(split = \"train\", limit = 512)",
    );
    let c = compile_source("dirichlet_mnist.sae", &text, None);
    let model = c.model.expect("model");
    let root = common::tempdir("mnistpics");
    let dir = root.join("run");
    let opts = train::RunOptions {
        out: Some(dir.clone()),
        quiet: true,
        epochs: Some(1),
        data_dir: Some(data),
        ..Default::default()
    };
    pipeline::run(&model, &text, Device::Cpu, &opts).expect("trains");
    // 8 columns of 56-pixel images with 2-pixel frames, after the labels, under a 40-pixel title.
    assert_eq!(png_size(&dir.join("samples.png")).1, 40 + 8 * 58 + 8);
    assert_eq!(
        png_size(&dir.join("reconstructions.png")).1,
        40 + 8 * 58 + 8
    );
    assert_eq!(png_size(&dir.join("vertices.png")).1, 40 + 2 * 58 + 8);
    assert_eq!(png_size(&dir.join("interpolation.png")).1, 40 + 2 * 58 + 8);
    assert_eq!(png_size(&dir.join("latent.png")), (680, 640));
    let run = eval::open_run(&dir, Device::Cpu).expect("opens");
    tch::manual_seed(5);
    eval::write_samples(&run.net, &run.model, 12, &root.join("s.npy")).expect("npy");
    let bytes = std::fs::read(root.join("s.npy")).expect("npy");
    assert!(
        String::from_utf8_lossy(&bytes[..80]).contains("'descr': '|u1'")
            && String::from_utf8_lossy(&bytes[..80]).contains("(12, 28, 28)")
    );
    // The same draws as .npz: key arr_0, with the channel axis FID evaluators expect.
    tch::manual_seed(5);
    eval::write_samples(&run.net, &run.model, 12, &root.join("s.npz")).expect("npz");
    let mut z = sae_dsl::data::npy::NpFile::open(&root.join("s.npz")).expect("opens");
    assert_eq!(z.keys().expect("keys"), vec!["arr_0".to_string()]);
    let (_, a) = z.numbers("arr_0", "samples").expect("reads");
    assert_eq!(a.shape(), vec![12, 28, 28, 1]);
    let npy = sae_dsl::data::npy::read(&root.join("s.npy")).expect("npy");
    let sae_dsl::data::npy::Numbers::U8(a) = a else {
        panic!("uint8 samples")
    };
    let a: Vec<f64> = a.iter().map(|v| f64::from(*v)).collect();
    assert_eq!(a, npy.data, "the .npz holds the .npy's values");
    eval::write_samples(&run.net, &run.model, 9, &root.join("s.png")).expect("png");
    assert_eq!(png_size(&root.join("s.png")).1, 40 + 3 * 58 + 8);
    let _ = std::fs::remove_dir_all(root);
}
