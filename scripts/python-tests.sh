#!/usr/bin/env bash
# Builds the Python package (python/, PyO3 + maturin) into a virtual environment whose torch is
# the wheel scripts/setup.sh cached (a .pth file points at it: one libtorch for both), then runs
# its pytest suite. A part that cannot be installed says SKIPPED with the reason; a build or a
# test that fails fails the run.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SAE_DSL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sae-dsl}"
torch_dir="$cache/torch-2.11.0"
venv="$cache/venv"
python=$(command -v python3 || command -v python || true)
skip() { echo "SKIPPED: python package: $1"; exit 0; }
[ -n "$python" ] || skip "no python3 on this machine"
[ -f "$torch_dir/.complete" ] || skip "the cached torch wheel is missing (run scripts/setup.sh)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" >/dev/null 2>&1 || skip "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$torch_dir" > "$site/sae_dsl_torch.pth"
pip_quiet() { "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"; }
if ! [ -x "$venv/bin/maturin" ] || ! "$venv/bin/python" -c 'import pytest, numpy' >/dev/null 2>&1; then
  pip_quiet maturin pytest numpy || skip "pip could not install maturin, pytest and numpy"
fi
# For the notebook's test; without them that test says SKIPPED.
if ! "$venv/bin/python" -c 'import nbclient, nbformat, ipykernel, matplotlib' >/dev/null 2>&1; then
  pip_quiet nbclient nbformat ipykernel matplotlib \
    || echo "SKIPPED: python package: pip could not install nbclient, nbformat, ipykernel and matplotlib (the notebook is not run)"
fi
echo "python package: building with maturin into $venv"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! ( cd "$root/python" && env LIBTORCH_USE_PYTORCH=1 VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
      CARGO_TARGET_DIR="$root/python/target" maturin develop --quiet ) >"$log" 2>&1; then
  tail -40 "$log" >&2
  echo "python package: maturin develop failed (the lines above)" >&2
  exit 1
fi
export SAE_DSL_BIN="${SAE_DSL_BIN:-$root/target/debug/sae-dsl}"
cd "$root/python"
"$venv/bin/python" -m pytest -q -rs tests
