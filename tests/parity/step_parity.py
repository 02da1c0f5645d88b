#!/usr/bin/env python3
"""The PyTorch side of tests/parity.rs: the reference autoencoder of ../shared/bench/sae_reference.py
written as a PyTorch user writes it, trained for a few Adam steps on given batches and draws.

Usage: step_parity.py DIR. Reads DIR/job.json and DIR/<case>.inputs.safetensors (written by the
Rust test), writes for each case DIR/<case>.init.safetensors (PyTorch's default initial weights,
under sae-dsl's variable names) and DIR/<case>.out.safetensors (per-step losses and the final
weights; for float32 cases with "nudges": n, also DIR/<case>.nudged<k>.safetensors, k = 1..n, the
same training from weights moved by one rounding), and DIR/init_stats.safetensors (freshly initialised layers of every kind). Needs only
the torch package: safetensors files are read and written here with the standard library.

Every penalty below is written from its definition, independently of sae-dsl's code.
"""
import ctypes
import itertools
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[start:end]), dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


class SAE(nn.Module):
    """sae_reference.py's network; `head` is the encoder's end: linear, softmax, normalize or gaussian."""

    def __init__(self, d, head, act="relu"):
        super().__init__()
        Act = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}[act]
        self.act = Act()
        self.head = head
        self.enc = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), Act(),
            nn.Conv2d(32, 64, 4, 2, 1), Act(), nn.Flatten())
        if head == "gaussian":
            self.mean = nn.Linear(64 * 7 * 7, d)
            self.log_var = nn.Linear(64 * 7 * 7, d)
        else:
            self.out = nn.Linear(64 * 7 * 7, d)
        self.dec_fc = nn.Linear(d, 64 * 7 * 7)
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, 2, 1), Act(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Sigmoid())

    # PyTorch's parameter names -> sae-dsl's (layer index in the declared pipeline).
    def sae_names(self):
        m = {"enc.0": "encoder.l0", "enc.2": "encoder.l2", "out": "encoder.l5",
             "mean": "encoder.l5.mean", "log_var": "encoder.l5.log_var",
             "dec_fc": "generator.l0", "dec.0": "generator.l3", "dec.2": "generator.l5"}
        out = {}
        for name in self.state_dict():
            mod, _, leaf = name.rpartition(".")
            out[name] = m[mod] + "." + leaf
        return out

    def encode(self, x, noise):
        h = self.enc(x)
        if self.head == "gaussian":
            mu, lv = self.mean(h), self.log_var(h).clamp(-30.0, 20.0)
            return mu + torch.exp(lv / 2) * noise, (mu, lv)
        z = self.out(h)
        if self.head == "softmax":
            z = torch.softmax(z, dim=1)
        elif self.head == "normalize":
            z = z / z.norm(dim=1, keepdim=True)
        return z, None

    def decode(self, z):
        return self.dec(self.act(self.dec_fc(z)).view(-1, 64, 7, 7))


def sqdist(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def sinkhorn_potentials(c, eps, iters):
    n, m = c.shape
    la, lb = -math.log(n), -math.log(m)
    f = torch.zeros(n, dtype=c.dtype)
    g = torch.zeros(m, dtype=c.dtype)
    for _ in range(iters):
        f = -eps * torch.logsumexp((g[None, :] - c) / eps + lb, dim=1)
        g = -eps * torch.logsumexp((f[:, None] - c) / eps + la, dim=0)
    plan = torch.exp((f[:, None] + g[None, :] - c) / eps + la + lb)
    return f, g, plan


def penalty(spec, z, w, stats, theta):
    kind = spec["kind"]
    if kind == "sinkhorn":
        c = sqdist(z, w)
        if spec["gradient"] == "unrolled":
            _, _, plan = sinkhorn_potentials(c, spec["epsilon"], spec["iterations"])
            return (plan * c).sum()
        with torch.no_grad():
            f, g, plan = sinkhorn_potentials(c.detach(), spec["epsilon"], spec["iterations"])
        # The entropic dual's value, with the envelope gradient sum_ij P_ij dC_ij.
        surrogate = (plan * c).sum()
        return (f.mean() + g.mean()) + surrogate - surrogate.detach()
    if kind == "mmd":
        d = z.shape[1]
        base = 2.0 * d * spec["sigma"] ** 2
        def k(a, b):
            d2 = sqdist(a, b)
            return sum(base * s / (base * s + d2) for s in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0))
        n = z.shape[0]
        kzz, kww = k(z, z), k(w, w)
        off = lambda m: (m.sum() - m.diagonal().sum()) / (n * (n - 1))
        return off(kzz) + off(kww) - 2.0 * k(z, w).mean()
    if kind == "sliced":
        pz, _ = torch.sort(z @ theta.T, dim=0)
        pw, _ = torch.sort(w @ theta.T, dim=0)
        return ((pz - pw).abs() ** spec["p"]).mean()
    if kind == "exact":
        c = sqdist(z, w)
        n = c.shape[0]
        perms = torch.tensor(list(itertools.permutations(range(n))))
        totals = c.detach()[torch.arange(n)[None, :], perms].sum(1)
        best = perms[int(torch.argmin(totals))]
        return c[torch.arange(n), best].mean()
    if kind == "kl":
        mu, lv = stats
        return ((lv.exp() + mu ** 2) / 2 - lv / 2 - 0.5).sum() / mu.shape[0]
    raise ValueError(kind)


def run_case(case, folder, nudge=None):
    """Trains one case; with `nudge` (a seed), from the same weights moved by one unit in the
    last place each, in random directions: a run that differs from the first only by rounding."""
    dtype = {"float32": torch.float32, "float64": torch.float64}[case["dtype"]]
    inputs = read_safetensors(os.path.join(folder, case["name"] + ".inputs.safetensors"))
    torch.manual_seed(case["seed"])
    model = SAE(case["latent"], case["head"], case.get("act", "relu"))  # PyTorch's default initialisation
    model = model.to(dtype)
    names = model.sae_names()
    if nudge is None:
        write_safetensors(os.path.join(folder, case["name"] + ".init.safetensors"),
                          {names[k]: v for k, v in model.state_dict().items()})
    else:
        g = torch.Generator().manual_seed(nudge)
        with torch.no_grad():
            for p in model.parameters():
                up = torch.rand(p.shape, generator=g) < 0.5
                towards = torch.where(up, torch.full_like(p, float("inf")),
                                      torch.full_like(p, float("-inf")))
                p.copy_(torch.nextafter(p, towards))
    opt = torch.optim.Adam(model.parameters(), lr=case["lr"], betas=(0.9, 0.999), eps=case.get("adam_eps", 1e-8))
    losses, recs, pens = [], [], []
    for s in range(case["steps"]):
        x = inputs["x"][s]
        noise = inputs["noise"][s] if "noise" in inputs else None
        theta = inputs["theta"][s] if "theta" in inputs else None
        z, stats = model.encode(x, noise)
        xh = model.decode(z)
        rec = ((xh - x) ** 2).flatten(1).sum(1).mean()
        pen = penalty(case["penalty"], z, inputs["w"][s], stats, theta)
        loss = rec + case["gamma"] * pen
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        recs.append(rec.item())
        pens.append(pen.item())
    out = {names[k]: v for k, v in model.state_dict().items()}
    out["loss"] = torch.tensor(losses, dtype=torch.float64)
    out["rec"] = torch.tensor(recs, dtype=torch.float64)
    out["pen"] = torch.tensor(pens, dtype=torch.float64)
    suffix = ".out" if nudge is None else ".nudged%d" % nudge
    write_safetensors(os.path.join(folder, case["name"] + suffix + ".safetensors"), out)


def init_stats(folder):
    """Fresh layers of every kind with PyTorch's defaults, for the distribution test."""
    torch.manual_seed(1)
    out = {}
    for name, layer in [
        ("linear", nn.Linear(300, 200)),
        ("conv2d", nn.Conv2d(16, 32, 3)),
        ("conv_transpose2d", nn.ConvTranspose2d(32, 8, 4)),
        ("batch_norm", nn.BatchNorm2d(12)),
    ]:
        for k, v in layer.state_dict().items():
            out[name + "." + k] = v
    write_safetensors(os.path.join(folder, "init_stats.safetensors"), out)


def main():
    folder = sys.argv[1]
    torch.set_num_threads(1)
    with open(os.path.join(folder, "job.json")) as f:
        job = json.load(f)
    for case in job["cases"]:
        run_case(case, folder)
        for nudge in range(case.get("nudges", 0)):
            run_case(case, folder, nudge + 1)
    init_stats(folder)
    print("ok")


if __name__ == "__main__":
    main()
