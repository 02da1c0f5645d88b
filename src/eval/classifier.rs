//! The evaluation classifier: a small CNN trained on a data set's labels, whose penultimate layer
//! gives the features of the FID (as the SAE paper did for MNIST). This is not the Inception FID:
//! every output says so.
//!
//! Entry point: [`Classifier::get`], which trains once per data set with a fixed seed and caches
//! the weights under a content hash of the data, the architecture and the training settings.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// The architecture and training settings for `c x h x w` images and `k` classes; part of the
/// cache key, and the name of the feature network every FID output gives. For MNIST (1 x 28 x
/// 28, 10 classes) it is the text of the first version, so cached classifiers stay valid.
pub fn spec(c: i64, h: i64, w: i64, k: i64) -> String {
    format!(
        "cnn v1: conv({c}->32,k3,p1) relu maxpool2, conv(32->64,k3,p1) relu maxpool2, linear({}->128) relu [features], linear(128->{k}); adam 1e-3 then 2e-4 for the last 4 epochs, batch 128, 12 epochs, seed 1234",
        64 * (h / 4) * (w / 4)
    )
}

/// The input shape [C, H, W] of images `[N, C, H, W]`, and the number of classes of `labels`
/// (the largest label + 1, at least 2).
fn geometry(x: &Tensor, labels: &Tensor) -> (i64, i64, i64, i64) {
    let s = x.size();
    let k = if labels.numel() == 0 {
        2
    } else {
        (labels.max().int64_value(&[]) + 1).max(2)
    };
    (s[1], s[2], s[3], k)
}
const EPOCHS: i64 = 12;
const SEED: i64 = 1234;
/// Dimension of the features.
pub const FEATURES: i64 = 128;

/// A trained classifier and what is known about it.
pub struct Classifier {
    vs: nn::VarStore,
    /// The feature network's description ([`spec`]).
    pub spec: String,
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
    /// Accuracy on the test split.
    pub test_accuracy: f64,
    /// The cache file.
    pub path: PathBuf,
    /// Whether this call trained it (false: loaded from the cache).
    pub trained: bool,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Classifier({}, accuracy {})",
            self.path.display(),
            self.test_accuracy
        )
    }
}

/// The cache folder: `$SAE_DSL_CACHE/classifiers`, else `~/.cache/sae-dsl/classifiers`.
pub fn cache_dir() -> PathBuf {
    crate::util::cache_dir("classifiers")
}

fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.to_device(Device::Cpu).contiguous();
    let mut out = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
    t.copy_data_u8(&mut out, t.numel());
    out
}

/// The content hash of a data set (train and test images and labels) and the classifier spec.
pub fn content_hash(name: &str, train: (&Tensor, &Tensor), test: (&Tensor, &Tensor)) -> String {
    let mut h = Sha256::new();
    let (c, ht, w, k) = geometry(train.0, train.1);
    h.update(spec(c, ht, w, k).as_bytes());
    h.update(name.as_bytes());
    for t in [train.0, train.1, test.0, test.1] {
        h.update(
            t.size()
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x")
                .as_bytes(),
        );
        h.update(tensor_bytes(t));
    }
    crate::data::hex(&h.finalize())[..16].to_string()
}

impl Classifier {
    fn build(device: Device, (c, h, w, k): (i64, i64, i64, i64)) -> Classifier {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let conv = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        Classifier {
            conv1: nn::conv2d(&root / "conv1", c, 32, 3, conv),
            conv2: nn::conv2d(&root / "conv2", 32, 64, 3, conv),
            fc1: nn::linear(
                &root / "fc1",
                64 * (h / 4) * (w / 4),
                FEATURES,
                Default::default(),
            ),
            fc2: nn::linear(&root / "fc2", FEATURES, k, Default::default()),
            spec: spec(c, h, w, k),
            vs,
            test_accuracy: 0.0,
            path: PathBuf::new(),
            trained: false,
        }
    }

    /// The penultimate-layer features of images `[N, C, H, W]` in [0, 1].
    pub fn features(&self, x: &Tensor) -> Tensor {
        let mut out = vec![];
        let n = x.size()[0];
        let mut i = 0;
        tch::no_grad(|| {
            while i < n {
                let b = (n - i).min(1000);
                out.push(self.features_t(&x.narrow(0, i, b)));
                i += b;
            }
        });
        Tensor::cat(&out, 0)
    }

    fn features_t(&self, x: &Tensor) -> Tensor {
        x.apply(&self.conv1)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.conv2)
            .relu()
            .max_pool2d_default(2)
            .flatten(1, -1)
            .apply(&self.fc1)
            .relu()
    }

    fn logits(&self, x: &Tensor) -> Tensor {
        self.features_t(x).apply(&self.fc2)
    }

    /// Predicted labels.
    pub fn predict(&self, x: &Tensor) -> Tensor {
        let f = self.features(x);
        tch::no_grad(|| f.apply(&self.fc2).argmax(1, false))
    }

    fn accuracy(&self, x: &Tensor, y: &Tensor) -> f64 {
        let p = self.predict(x);
        p.eq_tensor(y)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
    }

    /// The classifier for a data set: loaded from the cache when its content hash matches,
    /// trained (and cached) otherwise. `name` names the data set (for the file name).
    pub fn get(
        name: &str,
        train: (&Tensor, &Tensor),
        test: (&Tensor, &Tensor),
        device: Device,
        quiet: bool,
    ) -> Result<Classifier, String> {
        let hash = content_hash(name, train, test);
        let dir = cache_dir();
        let path = dir.join(format!("{name}-{hash}.safetensors"));
        let geometry = geometry(train.0, train.1);
        let mut c = Classifier::build(device, geometry);
        if path.is_file() {
            if c.vs.load(&path).is_ok() {
                c.test_accuracy = c.accuracy(test.0, test.1);
                c.path = path;
                return Ok(c);
            }
            if !quiet {
                eprintln!(
                    "note: the cached classifier {} is unreadable; training it again",
                    path.display()
                );
            }
        }
        if !quiet {
            eprintln!(
                "training the evaluation classifier for {name} (once; cached in {})",
                dir.display()
            );
        }
        tch::manual_seed(SEED);
        let mut c = Classifier::build(device, geometry);
        let mut opt = nn::Adam::default()
            .build(&c.vs, 1e-3)
            .map_err(|e| e.to_string())?;
        let n = train.0.size()[0];
        for epoch in 0..EPOCHS {
            if epoch == EPOCHS - 4 {
                opt.set_lr(2e-4);
            }
            let perm = Tensor::randperm(n, (Kind::Int64, device));
            let mut i = 0;
            while i + 128 <= n {
                if crate::signals::stop_requested() {
                    // Nothing is cached; the evaluation stops at its next check.
                    return Err("interrupted while training the evaluation classifier".into());
                }
                let idx = perm.narrow(0, i, 128);
                let loss = c
                    .logits(&train.0.index_select(0, &idx))
                    .cross_entropy_for_logits(&train.1.index_select(0, &idx));
                opt.backward_step(&loss);
                i += 128;
            }
        }
        c.test_accuracy = c.accuracy(test.0, test.1);
        let tmp = dir.join(format!(
            ".{name}-{hash}.tmp{}.safetensors",
            std::process::id()
        ));
        // A classifier that cannot be cached is still good for this evaluation.
        let saved = crate::util::fault::before_write("cache")
            .and_then(|()| std::fs::create_dir_all(&dir))
            .map_err(|e| e.to_string())
            .and_then(|()| c.vs.save(&tmp).map_err(|e| e.to_string()))
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()));
        if let Err(e) = saved {
            let _ = std::fs::remove_file(&tmp);
            eprintln!(
                "warning: could not cache the evaluation classifier in {}: {e}; it is used now and trained again next time",
                path.display()
            );
        }
        c.path = path;
        c.trained = true;
        Ok(c)
    }
}

/// Fréchet distance between Gaussians fitted to two feature sets (rows): |mu1 - mu2|^2 +
/// Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), in float64.
pub fn frechet_distance(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
    let stats = |x: &Tensor| {
        let mu = x.mean_dim(0, false, Kind::Double);
        let xc = x - &mu;
        let cov = xc.tr().matmul(&xc) / (x.size()[0] - 1).max(1) as f64;
        (mu, cov)
    };
    let (m1, s1) = stats(&a);
    let (m2, s2) = stats(&b);
    let sqrt_psd = |s: &Tensor| {
        let (vals, vecs) = s.linalg_eigh("L");
        let r = vals.clamp_min(0.0).sqrt();
        vecs.matmul(&r.diag_embed(0, -2, -1)).matmul(&vecs.tr())
    };
    let r1 = sqrt_psd(&s1);
    let inner = r1.matmul(&s2).matmul(&r1);
    let inner = (&inner + inner.tr()) / 2.0;
    let (vals, _) = inner.linalg_eigh("L");
    let tr_sqrt = vals
        .clamp_min(0.0)
        .sqrt()
        .sum(Kind::Double)
        .double_value(&[]);
    let d = (&m1 - &m2).square().sum(Kind::Double).double_value(&[]);
    d + s1.trace().double_value(&[]) + s2.trace().double_value(&[]) - 2.0 * tr_sqrt
}

/// Whether a cache file exists for these data (for tests and messages).
pub fn cached_path(name: &str, train: (&Tensor, &Tensor), test: (&Tensor, &Tensor)) -> PathBuf {
    cache_dir().join(format!(
        "{name}-{}.safetensors",
        content_hash(name, train, test)
    ))
}
