//! `sae-dsl fit-sampler` and `--sampler gmm`: the mixture is fitted to a run's training codes,
//! saved beside the run, and used by `sample`; without it, `--sampler gmm` says what to run.

mod common;

#[test]
fn a_fitted_mixture_samples_a_run_and_a_missing_one_is_named() {
    let root = common::tempdir("gmm");
    let m = root.join("model.sae");
    std::fs::write(
        &m,
        "import \"std/nets\"\ndata rings(n = 1024)\nlatent S^1 ~ uniform_sphere()\n\
         encoder { mlp(2, hidden = 16) normalize }\ngenerator { mlp(2, hidden = 16) }\n\
         penalty sinkhorn(epsilon = 0.1, iterations = 10)\ntrain { batch 64 epochs 1 }\n",
    )
    .expect("model");
    let run = root.join("run");
    common::train_quiet(&m, &run, None);
    let rs = run.to_str().expect("utf8");

    let npy = root.join("s.npy");
    let ns = npy.to_str().expect("utf8");
    let sample_gmm = || {
        common::sae(&[
            "sample",
            rs,
            "-n",
            "10",
            "--out",
            ns,
            "--sampler",
            "gmm",
            "--device",
            "cpu",
        ])
    };
    let out = sample_gmm();
    let err = common::flat_stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("has no fitted sampler (sampler_gmm.safetensors); run `sae-dsl fit-sampler"),
        "{err}"
    );

    let out = common::sae(&["fit-sampler", rs, "--gmm", "4", "--device", "cpu"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    assert!(
        text.contains("fitted 4 components to 1024 training codes"),
        "{text}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("sampler_gmm.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(report["components"], 4);

    let out = sample_gmm();
    assert!(out.status.success(), "{}", common::flat_stderr(&out));
    assert!(npy.is_file());

    // A mixture of another model's code (5 coordinates, not 2) is refused, not sampled.
    let o = (tch::Kind::Double, tch::Device::Cpu);
    let (w, mu, l) = (
        tch::Tensor::ones([1], o),
        tch::Tensor::zeros([1, 5], o),
        tch::Tensor::eye(5, o).unsqueeze(0),
    );
    tch::Tensor::write_safetensors(
        &[("weights", &w), ("means", &mu), ("chols", &l)],
        run.join("sampler_gmm.safetensors"),
    )
    .expect("write");
    let out = sample_gmm();
    let err = common::flat_stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("does not fit this run's model: its means have 5 coordinates, the model's code has 2; fit it again"),
        "{err}"
    );

    let out = common::sae(&["fit-sampler", rs, "--gmm", "5000", "--device", "cpu"]);
    let err = common::flat_stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("5000 components for 1024 codes"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}
