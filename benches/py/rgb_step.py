"""One training step of a 64x64 RGB Sinkhorn autoencoder in plain PyTorch: the network of
sae-dsl's std/rgb `wae_rgb_encoder(64, width = 32)` / `wae_rgb_decoder(64, size = 64, width = 32)`
(the WAE paper's CelebA networks at a quarter width), squared error summed over values, a
64-dimensional normal prior, 1 * Sinkhorn (epsilon 1, 50 unrolled log-domain iterations, cost
|z - w|^2), Adam 1e-3, batch 64. Prints the median step time in ms as JSON.

Run by `cargo bench --bench rgb_step` with the set-up's torch wheel on PYTHONPATH."""
import json
import sys
import time

import torch
from torch import nn

W, D, B, SIZE = 32, 64, 64, 64


def encoder():
    layers, c = [], 3
    for k in range(4):
        out = W * 2 ** k
        layers += [nn.Conv2d(c, out, 5, stride=2, padding=2), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(8 * W * (SIZE // 16) ** 2, D))


def decoder():
    s = SIZE // 8
    layers = [nn.Linear(D, 8 * W * s * s), nn.ReLU(), nn.Unflatten(1, (8 * W, s, s))]
    c = 8 * W
    for out in (4 * W, 2 * W, W):
        layers += [nn.ConvTranspose2d(c, out, 5, stride=2, padding=2, output_padding=1),
                   nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    layers += [nn.ConvTranspose2d(c, 3, 5, stride=1, padding=2), nn.Sigmoid()]
    return nn.Sequential(*layers)


def sinkhorn(x, y, eps, iters):
    c = torch.cdist(x, y) ** 2
    n, m = c.shape
    log_a = torch.full((n,), -torch.log(torch.tensor(float(n))))
    log_b = torch.full((m,), -torch.log(torch.tensor(float(m))))
    f, g = torch.zeros(n), torch.zeros(m)
    for _ in range(iters):
        f = -eps * torch.logsumexp(log_b[None, :] + (g[None, :] - c) / eps, dim=1)
        g = -eps * torch.logsumexp(log_a[:, None] + (f[:, None] - c) / eps, dim=0)
    log_p = log_a[:, None] + log_b[None, :] + (f[:, None] + g[None, :] - c) / eps
    return (log_p.exp() * c).sum()


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    torch.manual_seed(0)
    enc, dec = encoder(), decoder()
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)
    x = torch.rand(B, 3, SIZE, SIZE)

    def step():
        z = enc(x)
        rec = ((dec(z) - x) ** 2).flatten(1).sum(1).mean()
        loss = rec + 1.0 * sinkhorn(z, torch.randn(B, D), 1.0, 50)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(10):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    print(json.dumps({"ms": times[len(times) // 2], "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
