"""A run trained by the command line, opened from Python: samples and codes equal the CLI's."""

import subprocess

import numpy as np
import pytest
import torch

import sae_dsl
from conftest import cli

MODEL = """data arrays("pts.npz", key = "x", test_key = "x_test", dim = 2)
latent R^2 ~ normal()
encoder { linear(16) relu linear(2) }
generator { linear(16) relu linear(2) }
penalty 1 * sinkhorn(epsilon = 0.1, iterations = 10)
train { batch 32 epochs 2 seed 3 }
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    np.savez(d / "pts.npz", x=rng.normal(size=(256, 2)).astype(np.float32),
             x_test=rng.normal(size=(64, 2)).astype(np.float32))
    (d / "m.sae").write_text(MODEL)
    out = subprocess.run([str(cli()), "run", str(d / "m.sae"), "--out", str(d / "r"), "--device",
                          "cpu", "--quiet", "--no-eval"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return d


def test_samples_and_codes_equal_the_command_lines(run):
    r = sae_dsl.Run(run / "r")
    subprocess.run([str(cli()), "sample", str(run / "r"), "-n", "32", "--seed", "5", "--out",
                    str(run / "s.npy"), "--device", "cpu"], check=True, capture_output=True)
    ours = r.sample(32, seed=5)
    theirs = torch.from_numpy(np.load(run / "s.npy"))
    assert ours.shape == theirs.shape == (32, 2)
    assert torch.equal(ours, theirs)

    subprocess.run([str(cli()), "encode", str(run / "r"), "--out", str(run / "c.npy"), "--device",
                    "cpu"], check=True, capture_output=True)
    x_test = torch.from_numpy(np.load(run / "pts.npz")["x_test"])
    codes = r.encode(x_test)
    assert torch.allclose(codes, torch.from_numpy(np.load(run / "c.npy")), atol=1e-6)
    back = r.decode(codes)
    assert torch.allclose(r.reconstruct(x_test), back, atol=1e-6)
    assert [m["epoch"] for m in r.metrics] == [1, 2]
    assert isinstance(r.summary["test_recon"], float)  # written at the end of training
    assert r.data_shape == [2] and "arrays(" in r.source


def test_a_run_is_refused_with_the_reason(run, tmp_path):
    with pytest.raises(ValueError):
        sae_dsl.Run(tmp_path)
    r = sae_dsl.Run(run / "r")
    with pytest.raises(ValueError, match=r"data must be \[n, 2\]"):
        r.encode(torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"codes must be \[n, 2\]"):
        r.decode(torch.zeros(3, 7))
