"""Training from Python: the same trainer as `sae-dsl run` (the same checkpoint), a callback that
stops it, Ctrl-C that leaves a resumable run, and the networks as torch.nn modules."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import sae_dsl
from conftest import cli

MODEL = """data rings(n = 512, k = 2)
latent R^2 ~ normal()
encoder { linear(16) relu linear(2) }
generator { linear(16) relu linear(2) }
penalty 1 * sinkhorn(epsilon = 0.1, iterations = 10)
train { batch 64 epochs 2 seed 4 }
"""


def test_a_model_trained_from_python_gives_the_command_lines_checkpoint(tmp_path):
    path = tmp_path / "m.sae"
    path.write_text(MODEL)
    seen = []
    run = sae_dsl.Model(path).fit(out=tmp_path / "py", evaluate=False, progress=False,
                                  callback=seen.append)
    assert [m["epoch"] for m in seen] == [1, 2]
    out = subprocess.run([str(cli()), "run", str(path), "--out", str(tmp_path / "cli"),
                          "--device", "cpu", "--quiet", "--no-eval"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    ours = (tmp_path / "py" / "checkpoint.safetensors").read_bytes()
    theirs = (tmp_path / "cli" / "checkpoint.safetensors").read_bytes()
    assert ours == theirs, "CPU training is deterministic: the same weights, byte for byte"
    ours_m = [(m["recon"], m["penalty"]) for m in run.metrics]
    theirs_m = [(m["recon"], m["penalty"]) for m in sae_dsl.Run(tmp_path / "cli").metrics]
    assert ours_m == theirs_m


def test_a_model_that_does_not_check_is_a_compile_error(tmp_path):
    with pytest.raises(sae_dsl.CompileError) as e:
        sae_dsl.Model(MODEL.replace("linear(2) }\ngenerator", "linear(3) }\ngenerator"))
    assert any(d.code == "sae::check::latent_shape" for d in e.value.diagnostics)
    assert "model " in sae_dsl.Model(MODEL).graph()


def test_a_callback_stops_the_run_and_resume_finishes_it(tmp_path):
    # Epochs of about half a second, so that the stop lands long before the last one.
    text = MODEL.replace("epochs 2", "epochs 40").replace("n = 512", "n = 4096")
    run = sae_dsl.Model(text).fit(out=tmp_path / "r", evaluate=False, progress=False,
                                  callback=lambda m: m["epoch"] < 1)
    done = len(run.metrics)
    assert 1 <= done < 40, "stopped soon after the callback said so"
    out = subprocess.run([str(cli()), "resume", str(tmp_path / "r"), "--epochs", str(done + 1),
                          "--device", "cpu", "--quiet", "--no-eval"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert [m["epoch"] for m in sae_dsl.Run(tmp_path / "r").metrics] == list(range(1, done + 2))


def test_ctrl_c_during_fit_leaves_a_resumable_run(tmp_path):
    text = MODEL.replace("epochs 2", "epochs 200").replace("n = 512", "n = 4096")
    (tmp_path / "m.sae").write_text(text)
    script = textwrap.dedent(
        f"""
        import sae_dsl
        sae_dsl.Model({str(tmp_path / "m.sae")!r}).fit(out={str(tmp_path / "r")!r},
                                                   evaluate=False, progress=False)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "r" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.is_file() and metrics.read_text().strip()):
        assert time.time() < deadline and p.poll() is None, p.communicate()
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert "training stopped with its state saved in" in err, err
    assert "KeyboardInterrupt" in err
    done = len(sae_dsl.Run(tmp_path / "r").metrics)
    assert 1 <= done < 200
    out = subprocess.run([str(cli()), "resume", str(tmp_path / "r"), "--epochs", str(done + 1),
                          "--device", "cpu", "--quiet", "--no-eval"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(sae_dsl.Run(tmp_path / "r").metrics) == done + 1


def test_the_networks_as_torch_modules_hold_the_trained_weights(tmp_path):
    run = sae_dsl.Model(MODEL).fit(out=tmp_path / "r", evaluate=False, progress=False)
    encoder, generator = run.modules()
    assert isinstance(encoder, torch.nn.Module) and isinstance(generator, torch.nn.Module)
    assert len(list(encoder.parameters())) == 4 and len(list(generator.parameters())) == 4
    x = torch.randn(32, 2)
    with torch.no_grad():
        assert torch.allclose(encoder(x), run.encode(x), atol=1e-5)
        z = torch.randn(32, 2)
        assert torch.allclose(generator(z), run.decode(z), atol=1e-5)
    # Fine-tunable in PyTorch: gradients reach the parameters, .double() converts them.
    generator.train()
    generator(torch.randn(8, 2)).pow(2).sum().backward()
    assert all(p.grad is not None for p in generator.parameters())
    assert all(p.dtype == torch.float64 for p in encoder.double().parameters())
    # And as TorchScript (traced), with the parameters kept as parameters.
    traced = torch.jit.trace(generator.float().eval(), torch.randn(4, 2))
    assert len(list(traced.parameters())) == 4
