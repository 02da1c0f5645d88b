//! Probe: torch logsumexp vs an exponent-floored LSE at eps 0.01 (C/eps up to ~400).
use tch::{Device, Kind, Tensor};
fn lse_clamped(a: &Tensor, dim: i64) -> Tensor {
    let m = a.detach().amax(dim, true);
    (a - &m)
        .clamp_min(-80.0)
        .exp()
        .sum_dim_intlist(dim, false, Kind::Float)
        .log()
        + m.squeeze_dim(dim)
}
fn main() {
    for (n, eps) in [(256i64, 0.1), (256, 0.01), (1024, 0.1), (1024, 0.01)] {
        let c = Tensor::rand([n, n], (Kind::Float, Device::Cpu)) * 4.0 / eps;
        let g = Tensor::zeros([n], (Kind::Float, Device::Cpu));
        for (name, clamp) in [("logsumexp", false), ("clamped", true)] {
            let t = std::time::Instant::now();
            for _ in 0..20 {
                let a = g.unsqueeze(0) - &c;
                let _ = if clamp {
                    lse_clamped(&a, 1)
                } else {
                    a.logsumexp(1, false)
                };
            }
            println!(
                "n {n} eps {eps} {name}: {:.3} ms per LSE",
                t.elapsed().as_secs_f64() * 1e3 / 20.0
            );
        }
    }
}
