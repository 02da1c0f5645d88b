"""sae-dsl from Python: check model files, use our priors and optimal-transport penalties in
PyTorch code, and open trained runs.

The package shares libtorch with the installed ``torch`` (it must be 2.11): tensors pass both
ways without copies, and gradients flow through our penalties and prior programs.
"""

from __future__ import annotations

import torch as _torch

_NEEDED = "2.11"
if not _torch.__version__.startswith(_NEEDED + ".") and _torch.__version__ != _NEEDED:
    raise ImportError(
        f"sae_dsl is built against torch {_NEEDED}.*, but torch {_torch.__version__} is installed; "
        f"install torch=={_NEEDED}.* in this environment (pip install 'torch=={_NEEDED}.*'), "
        "or rebuild sae_dsl against your torch"
    )

from . import _native  # noqa: E402  (after the version check: it links torch's libraries)
from . import ot  # noqa: E402
from ._api import CompileError, Diagnostic, Model, Prior, Run, check, graph  # noqa: E402

__all__ = ["check", "graph", "CompileError", "Diagnostic", "Model", "Prior", "Run", "ot"]
__version__ = "0.1.0"
