//! How far the components of a learned Gaussian-mixture prior (std/priors `learned_mixture`,
//! parameters `means` and `log_scales`) specialise to the data's classes: each test code goes to
//! the component with the highest density, and each component is described by its share of the
//! codes and its most common label. Purity is the share of codes whose label is their
//! component's most common one (the largest class's share is what one component would reach).
//!
//! `cargo run --release --example mixture_specialisation -- RUN_DIR [LATENT]`
//! (data from the run's settings; `$SAE_DSL_DATA` or `--data-dir` as for `sae-dsl eval`).

use std::path::PathBuf;

use sae_dsl::data;
use sae_dsl::eval::{encode_all, open_run};
use sae_dsl::ir::Prior;
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: mixture_specialisation RUN_DIR [LATENT]")?,
    );
    let latent = args.next().unwrap_or_else(|| "z".to_string());
    let run = open_run(&dir, Device::Cpu).map_err(|e| e.to_string())?;
    let i = run
        .model
        .latents
        .iter()
        .position(|l| l.name == latent)
        .ok_or(format!("no latent component `{latent}`"))?;
    let Prior::Program(p) = &run.model.latents[i].prior else {
        return Err(format!("the prior of `{latent}` is not a program"));
    };
    let param = |name: &str| -> Result<Tensor, String> {
        p.params
            .iter()
            .position(|q| q.name == name)
            .map(|k| run.net.prior_params[i][k].detach().to_kind(Kind::Double))
            .ok_or(format!("the prior of `{latent}` has no parameter `{name}`"))
    };
    let (means, log_scales) = (param("means")?, param("log_scales")?);
    let test = data::load(
        &run.model.data,
        "test",
        run.data_dir().as_deref(),
        run.seed(),
        Device::Cpu,
    )
    .map_err(|e| e.to_string())?;
    let labels = test.labels.as_ref().ok_or("the test set has no labels")?;
    let labels: Vec<i64> =
        Vec::<i64>::try_from(labels.to_kind(Kind::Int64)).map_err(|e| e.to_string())?;
    let codes = encode_all(&run.net, &test.x()).to_kind(Kind::Double);
    // Offset of this component in the whole code.
    let off: i64 = run.model.latents[..i].iter().map(|l| l.space.dim()).sum();
    let d = run.model.latents[i].space.dim();
    let z = codes.narrow(1, off, d);
    // log N(z; mean_c, diag(exp(2 log_scale_c))) up to a constant, [n, k].
    let diff = (z.unsqueeze(1) - means.unsqueeze(0)) / log_scales.exp().unsqueeze(0);
    let logp = diff.square().sum_dim_intlist(-1, false, Kind::Double) * -0.5
        - log_scales
            .sum_dim_intlist(-1, false, Kind::Double)
            .unsqueeze(0);
    let assigned: Vec<i64> =
        Vec::<i64>::try_from(logp.argmax(1, false)).map_err(|e| e.to_string())?;
    let k = means.size()[0] as usize;
    let classes = labels.iter().copied().max().unwrap_or(0).max(0) as usize + 1;
    let mut counts = vec![vec![0usize; classes]; k];
    for (&c, &l) in assigned.iter().zip(&labels) {
        counts[c as usize][l.max(0) as usize] += 1;
    }
    let n = labels.len();
    println!("component  codes  share  top label  its share of the component");
    let mut pure = 0;
    for (c, row) in counts.iter().enumerate() {
        let total: usize = row.iter().sum();
        let (top, &m) = row
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| **v)
            .unwrap_or((0, &0));
        pure += m;
        println!(
            "{c:>9}  {total:>5}  {:>5.1}%  {top:>9}  {:>5.1}%",
            100.0 * total as f64 / n as f64,
            100.0 * m as f64 / total.max(1) as f64
        );
    }
    let mut by_class = vec![0usize; classes];
    labels
        .iter()
        .for_each(|&l| by_class[l.max(0) as usize] += 1);
    let largest = by_class.iter().copied().max().unwrap_or(0);
    let used = counts
        .iter()
        .filter(|r| r.iter().sum::<usize>() > 0)
        .count();
    println!(
        "purity {:.1}% over {n} test codes, {used} of {k} components used (one component for all: {:.1}%)",
        100.0 * pure as f64 / n as f64,
        100.0 * largest as f64 / n as f64
    );
    Ok(())
}
