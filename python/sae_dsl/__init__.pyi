"""Type stubs of sae_dsl: priors, penalties, checks and runs of sae-dsl in PyTorch code."""

import os
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch

from . import ot as ot

__version__: str

class Diagnostic:
    code: str
    severity: str
    message: str
    file: Optional[str]
    line: Optional[int]
    column: Optional[int]
    help: Optional[str]
    rendered: str
    @property
    def is_error(self) -> bool: ...

class CompileError(Exception):
    diagnostics: List[Diagnostic]
    def __init__(self, diagnostics: List[Diagnostic]) -> None: ...

def check(
    source: Union[str, os.PathLike[str]], overrides: Optional[Dict[str, Any]] = None
) -> List[Diagnostic]: ...
def graph(
    source: Union[str, os.PathLike[str]], overrides: Optional[Dict[str, Any]] = None
) -> str: ...

class Model:
    source: str
    overrides: Dict[str, Any]
    diagnostics: List[Diagnostic]
    def __init__(
        self, source: Union[str, os.PathLike[str]], overrides: Optional[Dict[str, Any]] = None
    ) -> None: ...
    def graph(self) -> str: ...
    def fit(
        self,
        out: Optional[Union[str, os.PathLike[str]]] = None,
        epochs: Optional[int] = None,
        data_dir: Optional[Union[str, os.PathLike[str]]] = None,
        callback: Optional[Callable[[Dict[str, Any]], Optional[bool]]] = None,
        seed: Optional[int] = None,
        evaluate: bool = True,
        device: str = "cpu",
        progress: bool = True,
        force: bool = False,
    ) -> Run: ...

class Prior:
    name: str
    def __init__(
        self, source_or_stdlib_name: str, name: Optional[str] = None, **arguments: Any
    ) -> None: ...
    def sample(self, n: int) -> torch.Tensor: ...
    def parameters(self) -> List[torch.Tensor]: ...
    def named_parameters(self) -> List[Tuple[str, torch.Tensor]]: ...
    @property
    def dim(self) -> int: ...
    @property
    def space(self) -> str: ...
    @property
    def warnings(self) -> List[str]: ...

class Run:
    directory: os.PathLike[str]
    def __init__(self, directory: Union[str, os.PathLike[str]], device: str = "cpu") -> None: ...
    def sample(self, n: int, seed: Optional[int] = None) -> torch.Tensor: ...
    def encode(self, x: torch.Tensor) -> torch.Tensor: ...
    def decode(self, z: torch.Tensor) -> torch.Tensor: ...
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor: ...
    @property
    def metrics(self) -> List[Dict[str, Any]]: ...
    @property
    def summary(self) -> Optional[Dict[str, Any]]: ...
    @property
    def data_shape(self) -> List[int]: ...
    @property
    def source(self) -> str: ...
    def modules(self) -> Tuple[torch.nn.Module, torch.nn.Module]: ...
