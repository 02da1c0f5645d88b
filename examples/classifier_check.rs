//! Trains (or loads) the MNIST evaluation classifier and reports accuracy, time and FIDs:
//! `cargo run --example classifier_check -- DATA_DIR`.
use sae_dsl::eval::classifier::{frechet_distance, Classifier};
use sae_dsl::ir::{DataSource, DataSpec};
use tch::{Device, Kind, Tensor};

fn main() {
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from);
    let spec = DataSpec {
        source: DataSource::Idx {
            dir: "mnist".into(),
            split: "train".into(),
            limit: 0,
        },
        shape: vec![1, 28, 28],
        binarize: false,
        transforms: vec![],
        base: None,
    };
    let train = sae_dsl::data::load(&spec, "train", dir.as_deref(), 0, Device::Cpu).expect("train");
    let test = sae_dsl::data::load(&spec, "test", dir.as_deref(), 0, Device::Cpu).expect("test");
    let (ty, sy) = (
        train.labels.as_ref().expect("labels"),
        test.labels.as_ref().expect("labels"),
    );
    let t = std::time::Instant::now();
    let c = Classifier::get(
        "mnist",
        (&train.x(), ty),
        (&test.x(), sy),
        Device::Cpu,
        false,
    )
    .expect("classifier");
    println!(
        "accuracy {:.4}, trained {}, {:.1} s",
        c.test_accuracy,
        c.trained,
        t.elapsed().as_secs_f64()
    );
    let ft = c.features(&test.x());
    let half = |f: &Tensor, a: i64| f.narrow(0, a, 5000);
    println!(
        "FID test[0:5k] vs test[5k:10k]: {:.3}",
        frechet_distance(&half(&ft, 0), &half(&ft, 5000))
    );
    println!(
        "FID test vs train: {:.3}",
        frechet_distance(&ft, &c.features(&train.x()))
    );
    let noise = Tensor::rand([10000, 1, 28, 28], (Kind::Float, Device::Cpu));
    println!(
        "FID test vs uniform noise: {:.3}",
        frechet_distance(&ft, &c.features(&noise))
    );
}
