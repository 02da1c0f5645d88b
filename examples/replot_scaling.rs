//! Redraws the scaling charts of `cargo bench --bench compare` from its JSON:
//! `cargo run --example replot_scaling -- bench-out/compare.json OUT_DIR`.
use sae_dsl::plot::{line_chart, Series, PALETTE};

fn pts(v: &serde_json::Value) -> Vec<(f64, f64)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p[0].as_f64()?.log10(), p[1].as_f64()?.log10())))
                .collect()
        })
        .unwrap_or_default()
}

fn slope(p: &[(f64, f64)]) -> f64 {
    let n = p.len() as f64;
    let (mx, my) = (
        p.iter().map(|q| q.0).sum::<f64>() / n,
        p.iter().map(|q| q.1).sum::<f64>() / n,
    );
    p.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum::<f64>()
        / p.iter().map(|q| (q.0 - mx).powi(2)).sum::<f64>()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&args[1]).expect("json")).expect("json");
    let out = std::path::PathBuf::from(&args[2]);
    let (a, b, c) = (
        pts(&v["scaling"]["sinkhorn_sweep"]),
        pts(&v["scaling"]["sinkhorn_envelope"]),
        pts(&v["scaling"]["training_step"]),
    );
    line_chart(
        &out.join("scaling_sinkhorn.png"),
        "Sinkhorn loss + gradient vs n (d 16, eps 0.1)",
        "log10 n",
        "log10 ms",
        &[
            Series {
                name: format!("unrolled L50, reverse sweep (slope {:.2})", slope(&a)),
                color: PALETTE[0],
                points: a,
            },
            Series {
                name: format!("envelope, tolerance 1e-3 (slope {:.2})", slope(&b)),
                color: PALETTE[1],
                points: b,
            },
        ],
        false,
    )
    .expect("png");
    line_chart(
        &out.join("scaling_step.png"),
        "training step vs batch (dirichlet_mnist)",
        "log10 batch",
        "log10 ms",
        &[Series {
            name: format!("training step (slope {:.2})", slope(&c)),
            color: PALETTE[2],
            points: c,
        }],
        false,
    )
    .expect("png");
}
