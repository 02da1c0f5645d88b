"""The Python package against the command line, the Rust core's fixtures and finite differences."""

import json
import subprocess

import numpy as np
import pytest
import torch

import sae_dsl
from conftest import ROOT, cli, fixtures


def test_diagnostics_equal_the_command_lines_output():
    path = ROOT / "tests" / "ui" / "err" / "many_errors.sae"
    diags = sae_dsl.check(path)
    assert sum(d.is_error for d in diags) == 5
    out = subprocess.run([str(cli()), "check", str(path)], capture_output=True, text=True)
    # The command line ends with a count line; before it, exactly the diagnostics' renderings.
    printed = out.stderr[: out.stderr.rindex(f"{path}: ")]
    assert printed == "".join(d.rendered for d in diags)
    first = diags[0]
    assert first.code.startswith("sae::") and first.file == str(path)
    assert first.line >= 1 and first.column >= 1
    assert first.rendered.startswith(first.code)


def test_a_model_that_does_not_check_raises_compile_error():
    text = (ROOT / "tests" / "ui" / "err" / "latent_shape.sae").read_text()
    with pytest.raises(sae_dsl.CompileError) as e:
        sae_dsl.graph(text)
    assert any(d.code == "sae::check::latent_shape" for d in e.value.diagnostics)
    ok = sae_dsl.graph(ROOT / "models" / "rings_2d.sae", overrides={"gamma": 3})
    assert ok.startswith("model ")


def test_overrides_reach_the_constants():
    diags = sae_dsl.check(ROOT / "models" / "rings_2d.sae", overrides={"no_such": 1})
    assert any(d.code == "sae::check::unknown_override" for d in diags)


def _cloud(name):
    return torch.from_numpy(np.load(fixtures() / name))


@pytest.mark.parametrize("pair", ["A", "B"])
def test_sinkhorn_value_and_gradient_equal_the_fixtures(pair):
    ref = json.loads((fixtures() / "reference.json").read_text())["pairs"][pair]
    x, y = _cloud(ref["X"]), _cloud(ref["Y"])
    for eps, r in ref["by_eps"].items():
        eps = float(eps)
        # Converged, envelope gradient: the entropic dual value and its gradient. (Pair B at eps
        # 0.01 converges slowly: after 40,000 iterations its gradient is within 2e-7 of POT's
        # Newton-polished one, as in tests/sinkhorn.rs.)
        xg = x.clone().requires_grad_(True)
        v = sae_dsl.ot.sinkhorn(xg, y, epsilon=eps, iterations=40000, tolerance=1e-13,
                                gradient="envelope")
        v.backward()
        assert abs(v.item() - r["entropic"]) < 1e-8, (eps, v.item(), r["entropic"])
        assert torch.allclose(xg.grad, torch.tensor(r["grad_entropic"], dtype=torch.float64),
                              atol=1e-6)
        # Unrolled for L iterations from zero potentials: <P, C> and its gradient by autograd.
        for L, u in r["unrolled"].items():
            xg = x.clone().requires_grad_(True)
            v = sae_dsl.ot.sinkhorn(xg, y, epsilon=eps, iterations=int(L), gradient="unrolled")
            v.backward()
            assert abs(v.item() - u["sharp"]) < 1e-9, (eps, L, v.item(), u["sharp"])
            assert torch.allclose(xg.grad, torch.tensor(u["grad_sharp"], dtype=torch.float64),
                                  atol=1e-9)
        # The debiased divergence.
        xg = x.clone().requires_grad_(True)
        v = sae_dsl.ot.sinkhorn(xg, y, epsilon=eps, iterations=40000, tolerance=1e-13,
                                gradient="envelope", debiased=True)
        v.backward()
        assert abs(v.item() - r["divergence"]) < 1e-7
        assert torch.allclose(xg.grad, torch.tensor(r["grad_divergence"], dtype=torch.float64),
                              atol=1e-6)


def test_mmd_and_sliced_are_differentiable_scalars():
    torch.manual_seed(0)
    x = torch.randn(64, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(48, 3, dtype=torch.float64)
    m = sae_dsl.ot.mmd(x, y)
    m.backward()
    assert m.dim() == 0 and x.grad is not None and torch.isfinite(x.grad).all()
    # The unbiased estimator, written out with the WAE scales.
    def k(a, b):
        d2 = torch.cdist(a, b) ** 2
        return sum((6.0 * s) / (6.0 * s + d2) for s in [0.1, 0.2, 0.5, 1, 2, 5, 10])
    n, mm = 64, 48
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    ref = ((kxx.sum() - kxx.diag().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diag().sum())
           / (mm * (mm - 1)) - 2 * kxy.mean())
    assert abs(m.item() - ref.item()) < 1e-10
    z = torch.randn(64, 3, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(1)
    a = sae_dsl.ot.sliced(z, x.detach(), projections=20)
    torch.manual_seed(1)
    b = sae_dsl.ot.sliced(z, x.detach(), projections=20)
    assert a.item() == b.item(), "torch.manual_seed fixes the directions"
    a.backward()
    assert z.grad is not None


def test_bad_arguments_are_python_errors():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="same d"):
        sae_dsl.ot.sinkhorn(x, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="epsilon"):
        sae_dsl.ot.sinkhorn(x, x, epsilon=0)
    with pytest.raises(ValueError, match="cost must be one of"):
        sae_dsl.ot.sinkhorn(x, x, cost="manhattan")
    with pytest.raises(ValueError, match="gradient must be"):
        sae_dsl.ot.sinkhorn(x, x, gradient="implicit")
    with pytest.raises(ValueError, match="defines no prior `nope`"):
        sae_dsl.Prior("nope")


def test_a_stdlib_prior_samples_on_its_space():
    p = sae_dsl.Prior("symmetric_dirichlet", d=5, alpha=0.5)
    z = p.sample(1000)
    assert z.shape == (1000, 5) and p.dim == 5
    assert torch.allclose(z.sum(1), torch.ones(1000, dtype=z.dtype), atol=1e-5)
    assert (z >= 0).all()
    ring = sae_dsl.Prior("ring_mixture", k=4, radius=3.0, scale=0.01)
    r = ring.sample(2000).norm(dim=1)
    assert abs(r.mean().item() - 3.0) < 0.05


LEARNED = """
prior blob(d: int = 2) on R^d {
  param m = [0.5, -1.0]
  param log_s = -0.3
  e ~ normal(0, 1, dim = d)
  return m + exp(log_s) * e
}
"""


def test_gradients_through_prior_parameters_equal_finite_differences():
    p = sae_dsl.Prior(LEARNED)
    names = [n for n, _ in p.named_parameters()]
    assert names == ["m", "log_s"]
    target = torch.tensor([[1.0, 2.0]], dtype=torch.float32)

    def loss():
        torch.manual_seed(7)
        z = p.sample(4096)
        return ((z - target) ** 2).mean()

    for t in p.parameters():
        t.grad = None
    loss().backward()
    grads = [t.grad.clone() for t in p.parameters()]
    h = 1e-2
    for t, g in zip(p.parameters(), grads):
        flat = t.detach().view(-1)
        for i in range(flat.numel()):
            with torch.no_grad():
                flat[i] += h
                up = loss().item()
                flat[i] -= 2 * h
                down = loss().item()
                flat[i] += h
            fd = (up - down) / (2 * h)
            assert abs(g.view(-1)[i].item() - fd) < 2e-3 * max(1.0, abs(fd)), (i, g, fd)


def test_the_readmes_pytorch_loop_trains():
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    dec = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    prior = sae_dsl.Prior("gaussian", d=2)
    losses = []
    for step in range(120):
        x = torch.randn(256, 2) * torch.tensor([1.0, 0.3])
        z = enc(x)
        loss = ((dec(z) - x) ** 2).sum(1).mean() + sae_dsl.ot.sinkhorn(z, prior.sample(256),
                                                                       epsilon=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10]), losses[::20]
    assert all(p.grad is not None for p in enc.parameters())
