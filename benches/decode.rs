//! Decoding image folders (issue 14): `cargo bench --bench decode`.
//!
//! Writes a folder of 60,000 28x28 grey PNGs (Fashion-MNIST's training images in class folders
//! when `$SAE_DSL_DATA` has them, else the procedural shapes in grey) and one of 20,000 64x64
//! colour JPEGs (the procedural shapes), then loads each twice with a fresh cache: the first load
//! decodes (images per second, on every core); then a run's loading of its training and test
//! sets reads the cache (target: under 1 s for the 60,000). Prints the figures and writes bench-out/decode.json.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sae_dsl::data::{self, folder, shapes};

fn write_pngs(root: &Path) -> &'static str {
    let fashion = std::env::var_os("SAE_DSL_DATA")
        .map(PathBuf::from)
        .map(|d| d.join("fashion-mnist/train-images-idx3-ubyte.gz"))
        .filter(|p| p.is_file());
    let (pixels, labels, what): (Vec<u8>, Vec<u8>, &str) = match fashion {
        Some(images) => {
            let (_, _, _, px) = data::read_idx_images(&images).expect("Fashion-MNIST images");
            let lab = data::read_idx_labels(&images.with_file_name("train-labels-idx1-ubyte.gz"))
                .expect("labels");
            (px, lab, "Fashion-MNIST training images")
        }
        None => {
            let d = shapes::draw(60_000, 28, 1);
            let grey = d
                .pixels
                .chunks(3 * 28 * 28)
                .flat_map(|im| {
                    (0..784)
                        .map(|i| ((im[i] + im[784 + i] + im[1568 + i]) / 3.0 * 255.0) as u8)
                        .collect::<Vec<_>>()
                })
                .collect();
            (
                grey,
                d.labels.iter().map(|l| *l as u8).collect(),
                "procedural shapes in grey",
            )
        }
    };
    (0..60_000usize).into_par_iter().for_each(|i| {
        let d = root.join(format!("class{}", labels[i]));
        let _ = std::fs::create_dir_all(&d);
        image::GrayImage::from_raw(28, 28, pixels[i * 784..(i + 1) * 784].to_vec())
            .expect("image")
            .save(d.join(format!("{i:05}.png")))
            .expect("png");
    });
    what
}

fn write_jpegs(root: &Path) {
    let d = shapes::draw(20_000, 64, 2);
    let plane = 64 * 64;
    (0..20_000usize).into_par_iter().for_each(|i| {
        let im = &d.pixels[i * 3 * plane..(i + 1) * 3 * plane];
        let rgb: Vec<u8> = (0..plane)
            .flat_map(|p| (0..3).map(move |c| (im[c * plane + p] * 255.0) as u8))
            .collect();
        let dir = root.join(shapes::SHAPES[d.labels[i] as usize]);
        let _ = std::fs::create_dir_all(&dir);
        image::RgbImage::from_raw(64, 64, rgb)
            .expect("image")
            .save(dir.join(format!("{i:05}.jpg")))
            .expect("jpeg");
    });
}

/// The first load (decoding), then a run's loading of its training and test sets from the
/// cache file alone (what a second run does).
fn timed(root: &Path, s: &folder::Settings, cache: &Path) -> (f64, f64, usize) {
    std::env::set_var("SAE_DSL_CACHE", cache);
    let t = Instant::now();
    let a = folder::load(root, s).expect("decodes");
    let cold = t.elapsed().as_secs_f64();
    folder::forget();
    let text = format!(
        "data images(\"{}\", channels = {}, size = {})\nlatent R^2 ~ normal()\nencoder {{ flatten linear(2) }}\ngenerator {{ linear({}) sigmoid reshape({}, {}, {}) }}\npenalty 1 * sinkhorn(epsilon = 1)\n",
        root.display(), s.channels, s.size, s.channels * s.size * s.size, s.channels, s.size, s.size
    );
    let c = sae_dsl::compile_source("bench.sae", &text, None);
    let spec = c.model.expect("compiles").data;
    let t = Instant::now();
    let train = data::load(&spec, "train", None, 0, tch::Device::Cpu).expect("train");
    let test = data::load(&spec, "test", None, 0, tch::Device::Cpu).expect("test");
    let warm = t.elapsed().as_secs_f64();
    assert_eq!(
        (train.len() + test.len()) as usize,
        a.train.n,
        "the cache gives every image"
    );
    (cold, warm, a.train.n)
}

fn main() {
    let root = std::env::temp_dir().join(format!("sae-dsl-decode-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let t = Instant::now();
    let what = write_pngs(&root.join("png"));
    write_jpegs(&root.join("jpg"));
    eprintln!("wrote the folders in {:.1} s", t.elapsed().as_secs_f64());
    let threads = rayon::current_num_threads();
    let grey = folder::Settings {
        channels: 1,
        size: 28,
        crop: 0,
        skip_bad: false,
    };
    let colour = folder::Settings {
        channels: 3,
        size: 64,
        crop: 0,
        skip_bad: false,
    };
    let (pc, pw, pn) = timed(&root.join("png"), &grey, &root.join("cache1"));
    let (jc, jw, jn) = timed(&root.join("jpg"), &colour, &root.join("cache2"));
    println!(
        "decode ({threads} threads)          images  first load (decode)      a run's train + test sets from the cache"
    );
    println!(
        "28x28 grey PNG ({what}) {pn:>7}  {pc:>6.2} s  {:>8.0} img/s  {pw:>6.3} s",
        pn as f64 / pc
    );
    println!(
        "64x64 colour JPEG (shapes)       {jn:>7}  {jc:>6.2} s  {:>8.0} img/s  {jw:>6.3} s",
        jn as f64 / jc
    );
    let json = serde_json::json!({
        "threads": threads,
        "png_28": {"images": pn, "source": what, "decode_s": pc, "images_per_s": pn as f64 / pc, "cached_s": pw},
        "jpeg_64": {"images": jn, "decode_s": jc, "images_per_s": jn as f64 / jc, "cached_s": jw},
    });
    let _ = std::fs::create_dir_all("bench-out");
    let _ = std::fs::write(
        "bench-out/decode.json",
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    );
    let _ = std::fs::remove_dir_all(&root);
}
