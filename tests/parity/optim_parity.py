"""PyTorch's side of tests/training.rs: learning-rate schedules and AdamW with clipping.

Reads DIR/job.json (settings and the float64 inputs as nested lists); writes DIR/out.json.
Uses only the torch package (its directory on PYTHONPATH).
"""
import json
import sys

import torch
from torch.optim.lr_scheduler import (CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR,
                                      StepLR)


def lrs(make, steps, per_step=True, per_epoch=1):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = make(opt)
    out = []
    for k in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if per_step or (k + 1) % per_epoch == 0:
            sched.step()
    return out


def main(d):
    job = json.load(open(f"{d}/job.json"))
    total, per_epoch, w = job["total"], job["per_epoch"], job["warmup"]
    schedules = {
        "cosine": lrs(lambda o: CosineAnnealingLR(o, T_max=total, eta_min=job["min"]), total),
        "step": lrs(lambda o: StepLR(o, step_size=job["every"] * per_epoch, gamma=job["factor"]), total),
        "exponential": lrs(lambda o: ExponentialLR(o, gamma=job["factor"]), total, False, per_epoch),
        "warmup": lrs(lambda o: LinearLR(o, start_factor=1.0 / w, total_iters=w - 1), total),
    }
    t = {k: torch.tensor(job[k], dtype=torch.float64) for k in ("w", "x", "y")}
    wgt = torch.nn.Parameter(t["w"].clone())
    opt = torch.optim.AdamW([wgt], lr=job["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=job["weight_decay"])
    factors = job["factors"]
    sched = LambdaLR(opt, lambda k: factors[min(k, len(factors) - 1)])
    losses = []
    for _ in range(len(factors)):
        opt.zero_grad()
        loss = ((t["x"] @ wgt.T - t["y"]) ** 2).sum() * 10.0
        loss.backward()
        torch.nn.utils.clip_grad_norm_([wgt], job["clip_norm"])
        opt.step()
        sched.step()
        losses.append(loss.item())
    json.dump({"schedules": schedules, "losses": losses, "w": wgt.detach().flatten().tolist()},
              open(f"{d}/out.json", "w"))


main(sys.argv[1])
