"""Loads a run's exports (TorchScript and safetensors + model.py) and compares their encodings and
decodings with sae-dsl's own, written by tests/export.rs. Prints a JSON object of max differences.

Usage: export_check.py TORCHSCRIPT_DIR SAFETENSORS_DIR EXPECTED.safetensors
"""
import importlib.util
import json
import sys

import torch

ts_dir, st_dir, expected = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("model", f"{st_dir}/model.py")
model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model)
want = model.read_safetensors(expected)
x, z = want["x"], want["z"]
enc = torch.jit.load(f"{ts_dir}/encoder.pt")
gen = torch.jit.load(f"{ts_dir}/generator.pt")
m = model.load()  # weights.safetensors next to model.py
with torch.no_grad():
    out = {
        "torchscript_encode": (enc(x) - want["codes"]).abs().max().item(),
        "torchscript_decode": (gen(z) - want["decoded"]).abs().max().item(),
        "python_encode": (m.encode(x) - want["codes"]).abs().max().item(),
        "python_decode": (m.decode(z) - want["decoded"]).abs().max().item(),
        "batch": x.shape[0],
    }
print(json.dumps(out))
