"""Sinkhorn from Python, side by side in one run: sae_dsl.ot.sinkhorn against GeomLoss's
SamplesLoss("sinkhorn") (tensorized backend) and a hand-written PyTorch log-domain Sinkhorn,
value and gradient, at n = 256, 1,024 and 4,096 (d = 16, float32, CPU), each set to reach the
same accuracy. Prints a Markdown table for BENCHMARKS.md.

    python python/bench/sinkhorn_bench.py          # in the environment where sae_dsl is installed

The problem: uniform weights, cost |x - y|^2, epsilon 0.1 (GeomLoss writes the cost |x - y|^2 / 2
with blur^2 = epsilon / 2, so its value is half of ours). The value compared is the entropic dual
OT_eps(x, y) (not debiased), the gradient is with respect to x (envelope theorem in all three).
The reference is sae_dsl's solver run in float64 to a marginal error of 1e-7.
"""

import statistics
import sys
import time

import torch

import sae_dsl

EPS = 0.1
D = 16
TARGET = 1e-3  # relative error of the value every method must reach


def timed(fn, repeats=5):
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def ours(x, y, tol):
    xg = x.clone().requires_grad_(True)
    v = sae_dsl.ot.sinkhorn(xg, y, epsilon=EPS, iterations=10000, tolerance=tol, gradient="envelope")
    v.backward()
    return v.item(), xg.grad


def geomloss_fn(scaling):
    from geomloss import SamplesLoss

    loss = SamplesLoss("sinkhorn", p=2, blur=(EPS / 2) ** 0.5, scaling=scaling, debias=False,
                       backend="tensorized")

    def run(x, y):
        xg = x.clone().requires_grad_(True)
        v = loss(xg, y)
        v.backward()
        # GeomLoss's cost is |x - y|^2 / 2: twice its value and gradient are ours.
        return 2 * v.item(), 2 * xg.grad

    return run


def handwritten(x, y, iterations):
    """Log-domain Sinkhorn in plain PyTorch: iterations without a graph, then one differentiable
    step (the envelope gradient), as a careful user would write it."""
    n, m = x.shape[0], y.shape[0]
    la, lb = -torch.log(torch.tensor(float(n))), -torch.log(torch.tensor(float(m)))
    xg = x.clone().requires_grad_(True)
    with torch.no_grad():
        c = torch.cdist(x, y) ** 2 / EPS
        g = torch.zeros(m, dtype=x.dtype)
        for _ in range(iterations):
            f = -torch.logsumexp(g + lb - c, dim=1)
            g = -torch.logsumexp(f[:, None] + la - c, dim=0)
    c = ((xg[:, None, :] - y[None, :, :]) ** 2).sum(-1) / EPS
    f = -torch.logsumexp(g + lb - c, dim=1)
    v = EPS * (f.mean() + g.mean())
    v.backward()
    return v.item(), xg.grad


def main():
    torch.manual_seed(0)
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads())
    rows = []
    for n in (256, 1024, 4096):
        # Clouds whose costs are about 1, so that epsilon 0.1 is a typical latent-space setting.
        x = torch.randn(n, D) * 0.15
        y = torch.randn(n, D) * 0.15 + 0.05
        ref, ref_grad = ours(x.double(), y.double(), 1e-7)
        gl = geomloss_fn
        # Each method's cheapest setting that reaches TARGET: more iterations or finer scaling.
        candidates = {
            "sae_dsl.ot.sinkhorn (envelope, tolerance)": [
                (f"tolerance {t:g}", lambda t=t: ours(x, y, t)) for t in (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
            ],
            "GeomLoss SamplesLoss tensorized": [
                (f"scaling {s}", lambda s=s: gl(s)(x, y)) for s in (0.5, 0.7, 0.8, 0.9, 0.95)
            ],
            "hand-written PyTorch (log domain)": [
                (f"{k} iterations", lambda k=k: handwritten(x, y, k)) for k in (10, 20, 50, 100, 200, 500)
            ],
        }
        for name, settings in candidates.items():
            for label, fn in settings:
                v, g = fn()
                err = abs(v - ref) / abs(ref)
                gerr = (g.double() - ref_grad).abs().max().item() / ref_grad.abs().max().item()
                if err <= TARGET:
                    t = timed(fn)
                    rows.append((n, name, label, err, gerr, t))
                    break
            else:
                rows.append((n, name, "did not reach the target", err, gerr, float("nan")))
    print(f"| n | method | setting | value rel. error | grad rel. error | value + gradient |")
    print("|---|---|---|---|---|---|")
    for n, name, label, err, gerr, t in rows:
        print(f"| {n:,} | {name} | {label} | {err:.1e} | {gerr:.1e} | {t * 1e3:.1f} ms |")
    # The Python call's own cost: a call that crosses into Rust with two tensors and returns one.
    a, b = torch.randn(2, 2), torch.randn(2, 2)
    calls = 20000
    t = time.perf_counter()
    for _ in range(calls):
        sae_dsl._native._roundtrip(a, b)
    per = (time.perf_counter() - t) / calls
    print(f"\nPython call overhead (two tensors in, one out, no work): {per * 1e6:.1f} us per call")


if __name__ == "__main__":
    main()
