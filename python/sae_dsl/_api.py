"""The package's classes and functions; see the package docstring."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch

from . import _native


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the checker, as ``sae-dsl check`` reports it."""

    code: str
    """The code, e.g. ``sae::check::latent_shape``."""
    severity: str
    """``"error"``, ``"warning"`` or ``"advice"``."""
    message: str
    file: Optional[str]
    """The file of the primary label (None when the diagnostic has no place)."""
    line: Optional[int]
    """1-based line of the primary label."""
    column: Optional[int]
    """1-based column of the primary label, in characters."""
    help: Optional[str]
    rendered: str
    """The text the command line prints for it."""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        return self.rendered


class CompileError(Exception):
    """A model that does not check; ``diagnostics`` holds every finding."""

    def __init__(self, diagnostics: List[Diagnostic]):
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.is_error]
        super().__init__(
            f"{len(errors)} error{'s' if len(errors) != 1 else ''}:\n"
            + "".join(d.rendered for d in diagnostics)
        )


def _overrides(overrides: Optional[Dict[str, Any]]) -> List[str]:
    return [f"{k}={_value_text(v)}" for k, v in (overrides or {}).items()]


def _value_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value_text(x) for x in v) + "]"
    if isinstance(v, torch.Tensor):
        return _value_text(v.tolist())
    return repr(v)


def _is_path(source: Union[str, os.PathLike]) -> bool:
    if isinstance(source, os.PathLike):
        return True
    return "\n" not in source and source.endswith(".sae")


def check(
    source: Union[str, os.PathLike], overrides: Optional[Dict[str, Any]] = None
) -> List[Diagnostic]:
    """Checks a model file (a path) or model text: every diagnostic, errors and warnings.

    ``overrides`` sets constants as ``--set NAME=VALUE`` does: ``{"gamma": 10}``.
    """
    found = _native.check(os.fspath(source), _is_path(source), _overrides(overrides))
    return [Diagnostic(**d) for d in found]


def graph(source: Union[str, os.PathLike], overrides: Optional[Dict[str, Any]] = None) -> str:
    """The checked model's graph, as ``sae-dsl graph`` prints it; CompileError when it has errors."""
    diags = check(source, overrides)
    if any(d.is_error for d in diags):
        raise CompileError(diags)
    text = _native.graph(os.fspath(source), _is_path(source), _overrides(overrides))
    if text is None:
        raise CompileError(diags)
    return text


class Prior:
    """A prior program, sampled as ``torch.Tensor``s with gradients reaching its parameters.

    ``Prior("dirichlet_mixture", k=8)`` takes a prior of the standard library (``std/priors``);
    ``Prior(text, name="ring")`` or ``Prior("my_priors.sae", name="ring", k=3)`` one of a
    program text or file (the last prior it defines when ``name`` is not given). Keyword arguments
    are the prior's arguments.
    """

    def __init__(self, source_or_stdlib_name: str, name: Optional[str] = None, **arguments: Any):
        src = source_or_stdlib_name
        directory: Optional[str] = None
        if "{" in src:
            text, file = src, "<prior text>"
        elif src.endswith(".sae"):
            path = Path(src)
            text, file, directory = path.read_text(encoding="utf-8"), str(path), str(path.parent)
        else:
            text, file, name = 'import "std/priors"\n', "<std/priors>", name or src
        if name is None:
            defined = [
                line.split("prior", 1)[1].strip().split("(", 1)[0].strip()
                for line in text.splitlines()
                if line.lstrip().startswith("prior ")
            ]
            if not defined:
                raise ValueError("the text defines no prior (`prior NAME(...) on SPACE { ... }`)")
            name = defined[-1]
        args = ", ".join(f"{k} = {_value_text(v)}" for k, v in arguments.items())
        self._native = _native.NativePrior(file, text, directory, name, args)
        self.name = name

    def sample(self, n: int) -> torch.Tensor:
        """``n`` samples as an [n, d] tensor (differentiable in the learnable parameters)."""
        return self._native.sample(n)

    def parameters(self) -> List[torch.Tensor]:
        """The learnable parameters (``param`` statements), tensors that require gradients."""
        return self._native.parameters()

    def named_parameters(self) -> List[tuple]:
        """(name, tensor) of every learnable parameter."""
        return list(zip(self._native.parameter_names(), self._native.parameters()))

    @property
    def dim(self) -> int:
        """Coordinates per sample."""
        return self._native.dim

    @property
    def space(self) -> str:
        """The space the samples lie on."""
        return self._native.space

    @property
    def warnings(self) -> List[str]:
        return self._native.warnings

    def __repr__(self) -> str:
        return f"Prior({self._native.call} on {self.space})"


class Run:
    """A trained run directory: its networks with the trained weights, its metrics and summary."""

    def __init__(self, directory: Union[str, os.PathLike], device: str = "cpu"):
        self.directory = Path(directory)
        self._native = _native.NativeRun(os.fspath(self.directory), device)

    def sample(self, n: int, seed: Optional[int] = None) -> torch.Tensor:
        """``n`` decoded prior samples (from ``seed`` when given)."""
        return self._native.sample(n, seed)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The codes of a batch [n, *data shape]."""
        return self._native.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decodings of a batch of codes [n, latent size]."""
        return self._native.decode(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x))."""
        return self._native.reconstruct(x)

    @property
    def metrics(self) -> List[Dict[str, Any]]:
        """Every epoch's line of ``metrics.jsonl``."""
        path = self.directory / "metrics.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    @property
    def summary(self) -> Optional[Dict[str, Any]]:
        """``summary.json`` (None before the evaluation has run)."""
        path = self.directory / "summary.json"
        return json.loads(path.read_text()) if path.is_file() else None

    @property
    def data_shape(self) -> List[int]:
        return self._native.data_shape

    def modules(self) -> Tuple[torch.nn.Module, torch.nn.Module]:
        """The encoder and the generator as ``torch.nn.Module``s holding the trained weights as
        parameters (in evaluation mode), ready to fine-tune in PyTorch: the layers of
        ``sae-dsl export --format safetensors``, loaded."""
        import importlib.util
        import tempfile

        # The generated source stays on disk (a few kilobytes): torch.jit.script and inspect
        # read the classes' source from it.
        d = tempfile.mkdtemp(prefix="sae-dsl-modules-")
        _native.export_modules(self._native, d)
        spec = importlib.util.spec_from_file_location("sae_dsl_exported_model", Path(d) / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.load(str(Path(d) / "weights.safetensors"))
        return model.encoder, model.generator

    @property
    def source(self) -> str:
        """The model text the run was trained from."""
        return self._native.source

    def __repr__(self) -> str:
        return f"Run({str(self.directory)!r})"


class Model:
    """A model file (or text), checked: ``graph()`` shows it, ``fit()`` trains it with the same
    trainer as ``sae-dsl run``. Raises CompileError when it does not check."""

    def __init__(self, source: Union[str, os.PathLike], overrides: Optional[Dict[str, Any]] = None):
        self.source = os.fspath(source)
        self.overrides = dict(overrides or {})
        self.diagnostics = check(self.source, self.overrides)
        if any(d.is_error for d in self.diagnostics):
            raise CompileError(self.diagnostics)

    def graph(self) -> str:
        """The checked model's graph, as ``sae-dsl graph`` prints it."""
        return graph(self.source, self.overrides)

    def fit(
        self,
        out: Optional[Union[str, os.PathLike]] = None,
        epochs: Optional[int] = None,
        data_dir: Optional[Union[str, os.PathLike]] = None,
        callback: Optional[Callable[[Dict[str, Any]], Optional[bool]]] = None,
        seed: Optional[int] = None,
        evaluate: bool = True,
        device: str = "cpu",
        progress: bool = True,
        force: bool = False,
    ) -> "Run":
        """Trains into the run directory ``out`` (default ``runs/NAME-DATE``) and returns it.

        ``callback(metrics)`` sees each epoch's line of ``metrics.jsonl`` (read every 0.1 s);
        returning ``False`` stops the run at the trainer's next step (its state saved,
        resumable). Ctrl-C, or a notebook's interrupt
        button, stops at the next step with the state saved, then raises KeyboardInterrupt: the
        run is resumable (``sae-dsl resume DIR``). ``evaluate=False`` skips the evaluation.
        """
        t = _native.start_fit(
            self.source, _is_path(self.source), _overrides(self.overrides),
            os.fspath(out) if out is not None else None, epochs, seed,
            os.fspath(data_dir) if data_dir is not None else None, evaluate, device, force,
        )
        seen = 0
        asked_stop = False
        total = epochs

        def report() -> None:
            nonlocal seen, asked_stop
            path = Path(t.dir) / "metrics.jsonl"
            if not path.is_file():
                return
            lines = [line for line in path.read_text().splitlines() if line.strip()]
            for line in lines[seen:]:
                m = json.loads(line)
                if progress:
                    _progress(m, total)
                if callback is not None and callback(m) is False and not asked_stop:
                    asked_stop = True
                    t.stop()
            seen = len(lines)

        try:
            while not t.wait(0.1):
                report()
        except KeyboardInterrupt:
            t.stop()
            while not t.wait(0.5):
                pass
            report()
            raise KeyboardInterrupt(
                f"training stopped with its state saved in {t.dir}; `sae-dsl resume {t.dir}` finishes it"
            ) from None
        report()
        kind, text = t.outcome()
        if kind == "error" or (kind == "interrupted" and not asked_stop):
            raise RuntimeError(text)
        if progress:
            print(f"run {'stopped by the callback' if asked_stop else 'finished'}: {t.dir}", flush=True)
        return Run(t.dir, device="cpu" if device == "auto" else device)


def _progress(m: Dict[str, Any], total: Optional[int]) -> None:
    """One line per epoch, which a terminal and a notebook both show."""
    e = m.get("epoch", 0)
    bar = ""
    if total:
        done = int(20 * e / total)
        bar = "[" + "=" * done + " " * (20 - done) + f"] {e}/{total} "
    else:
        bar = f"epoch {e} "
    print(
        f"{bar}recon {m.get('recon', float('nan')):.4f}  penalty {m.get('penalty', float('nan')):.4f}"
        f"  ({m.get('seconds', 0):.1f} s)",
        file=sys.stdout,
        flush=True,
    )
