"""Shared paths for the tests: the repository, the command-line binary, the shared fixtures."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli() -> Path:
    """The `sae-dsl` binary built by the test script (SAE_DSL_BIN), or the debug build."""
    path = Path(os.environ.get("SAE_DSL_BIN", ROOT / "target" / "debug" / "sae-dsl"))
    if not path.is_file():
        pytest.skip(f"the sae-dsl binary is not built at {path}")
    return path


def fixtures() -> Path:
    """../shared/fixtures/sinkhorn, through SAE_DSL_FIXTURES."""
    d = os.environ.get("SAE_DSL_FIXTURES")
    if not d or not Path(d, "reference.json").is_file():
        if os.environ.get("SAE_DSL_REQUIRE_SHARED") == "1":
            pytest.fail("SAE_DSL_FIXTURES does not name the Sinkhorn fixtures")
        pytest.skip("the Sinkhorn fixtures are not here (set SAE_DSL_FIXTURES)")
    return Path(d)
