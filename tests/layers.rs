//! Every layer kind built and run in libtorch: the models that use them all (tests/ui/ok's
//! all-layers fixture, a Gaussian encoder, the composite what/where model with select, place and
//! crop) are built on the CPU, their parameter counts compared with what `graph` prints, and a
//! forward pass run through every encoder and the generator.

use std::path::Path;

use sae_dsl::runtime::model::Compiled;
use sae_dsl::{compile_file, ir};
use tch::{nn, Device, Kind, Tensor};

fn model(path: &str) -> ir::Model {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let c = compile_file(&p).expect("readable");
    assert!(!c.has_errors(), "{path} does not compile");
    c.model.expect("a model")
}

/// The number of trainable values under a VarStore path prefix.
fn trainable(vs: &nn::VarStore, prefix: &str) -> i64 {
    let vars = vs.variables();
    let trainable: Vec<Tensor> = vs.trainable_variables();
    vars.iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .filter(|(_, t)| {
            trainable
                .iter()
                .any(|u| u.data_ptr() == t.data_ptr() && u.size() == t.size())
        })
        .map(|(_, t)| t.numel() as i64)
        .sum()
}

fn layer_names(m: &ir::Model) -> Vec<String> {
    m.encoders
        .iter()
        .flat_map(|e| e.net.layers.iter())
        .chain(m.generator.layers.iter())
        .map(|l| l.op.to_string().split('(').next().unwrap_or("").to_string())
        .collect()
}

fn build_and_run(path: &str) -> Vec<String> {
    let m = model(path);
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Compiled::new(&vs, &m);
    assert_eq!(
        trainable(&vs, "generator") as u64,
        m.generator.params(),
        "{path}: generator parameters"
    );
    assert_eq!(
        trainable(&vs, "encoder") as u64,
        m.encoder_params(),
        "{path}: encoder parameters"
    );
    let b = 6;
    let mut shape = vec![b];
    shape.extend(&m.data.shape);
    let x = Tensor::rand(shape.as_slice(), (Kind::Float, Device::Cpu));
    for train in [true, false] {
        let z = net.encode(&x, train);
        assert_eq!(z.size(), [b, m.latent_dim()], "{path}: code shape");
        let y = net.decode(&z, train);
        assert_eq!(y.size(), shape, "{path}: reconstruction shape");
        let finite = y.isfinite().all().int64_value(&[]) == 1;
        assert!(finite, "{path}: the generator's output is not finite");
    }
    layer_names(&m)
}

#[test]
fn every_layer_kind_builds_and_runs_with_the_parameters_graph_prints() {
    let mut seen: Vec<String> = vec![];
    for path in [
        "tests/ui/ok/all_layers.sae",
        "models/vae_mnist.sae",
        "models/what_where_mnist.sae",
    ] {
        seen.extend(build_and_run(path));
    }
    // Every layer of the catalogue ran (reshape and unflatten are one op).
    for want in [
        "linear",
        "conv2d",
        "conv_transpose2d",
        "batch_norm",
        "relu",
        "leaky_relu",
        "tanh",
        "sigmoid",
        "softmax",
        "flatten",
        "reshape",
        "normalize",
        "gaussian",
        "select",
        "place",
        "crop",
    ] {
        assert!(
            seen.iter().any(|s| s == want),
            "no model here runs `{want}`; ran {seen:?}"
        );
    }
}
