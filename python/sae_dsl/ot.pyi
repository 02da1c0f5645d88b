from typing import Optional

import torch

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
) -> torch.Tensor: ...
def mmd(
    x: torch.Tensor, y: torch.Tensor, kernel: str = "imq", scale: Optional[float] = None
) -> torch.Tensor: ...
def sliced(
    x: torch.Tensor, y: torch.Tensor, projections: int = 50, p: float = 2.0
) -> torch.Tensor: ...
