"""Optimal-transport penalties as differentiable torch scalars, for a PyTorch training loop."""

from __future__ import annotations

from typing import Optional

import torch

from . import _native


def sinkhorn(
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float = 0.1,
    iterations: int = 50,
    p: float = 2.0,
    cost: str = "euclidean",
    gradient: str = "unrolled",
    debiased: bool = False,
    tolerance: float = 0.0,
    curvature: float = 1.0,
) -> torch.Tensor:
    """Entropic OT between the rows of ``x`` [n, d] and ``y`` [m, d], uniform weights.

    The cost is ``|x - y|^p`` (``cost="euclidean"``; also ``"geodesic"`` on the sphere,
    ``"fisher_rao"`` on the simplex, ``"torus"``, ``"hyperbolic"`` with ``curvature``).
    ``gradient="unrolled"``: the value is ``<P, C>`` of the plan after ``iterations`` log-domain
    steps from zero potentials, differentiated through the steps (the SAE paper's loss).
    ``gradient="envelope"``: the value is the entropic dual ``<a, f> + <b, g>``, differentiated
    by the envelope theorem (no graph through the iterations: memory O(n m)).
    ``debiased=True``: the Sinkhorn divergence ``OT(x, y) - (OT(x, x) + OT(y, y)) / 2`` on the
    dual values. ``tolerance > 0`` stops once the row-marginal error is below it
    (``iterations`` is then a cap).
    """
    if gradient not in ("unrolled", "envelope"):
        raise ValueError(f'gradient must be "unrolled" or "envelope", found {gradient!r}')
    return _native.sinkhorn(
        x, y, float(epsilon), int(iterations), float(p), cost, gradient == "envelope",
        bool(debiased), float(tolerance), float(curvature),
    )


def mmd(
    x: torch.Tensor, y: torch.Tensor, kernel: str = "imq", scale: Optional[float] = None
) -> torch.Tensor:
    """The unbiased MMD^2 estimator between the rows of ``x`` and ``y`` (the WAE penalty).

    The kernel (``"imq"`` or ``"rbf"``) is summed over ``scale`` times 0.1, 0.2, 0.5, 1, 2, 5,
    10; ``scale`` defaults to ``2 d`` (the WAE paper's ``2 d sigma^2`` for a unit prior).
    """
    c = float(scale) if scale is not None else 2.0 * x.shape[1]
    return _native.mmd(x, y, kernel, c)


def sliced(x: torch.Tensor, y: torch.Tensor, projections: int = 50, p: float = 2.0) -> torch.Tensor:
    """Sliced Wasserstein ``W_p^p`` between equal-sized clouds, averaged over ``projections``
    random directions (drawn from torch's generator: ``torch.manual_seed`` fixes them)."""
    return _native.sliced(x, y, int(projections), float(p))
