#!/usr/bin/env bash
# One-time set-up for sae-dsl: installs libtorch from the PyPI wheel torch==2.11.0 into a cache
# directory (skipped when already present) and points cargo at it through .cargo/config.toml,
# so that plain `cargo build`, `cargo test` and `cargo run` work afterwards.
#
# Cache location: $SAE_DSL_CACHE, else $XDG_CACHE_HOME/sae-dsl, else ~/.cache/sae-dsl.
set -euo pipefail

TORCH_VERSION=2.11.0
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SAE_DSL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sae-dsl}"
target="$cache/torch-$TORCH_VERSION"
libtorch="$target/torch"

if [ -f "$target/.complete" ] && [ -f "$libtorch/lib/libtorch.so" ]; then
  echo "setup: libtorch $TORCH_VERSION already in $target"
else
  echo "setup: installing torch==$TORCH_VERSION (libtorch) into $target (one time, a few GB)"
  python=$(command -v python3 || command -v python || true)
  if [ -z "$python" ]; then
    echo "setup: error: python3 with pip is needed to fetch the torch wheel from PyPI" >&2
    exit 1
  fi
  tmp="$target.partial.$$"
  rm -rf "$tmp"
  mkdir -p "$cache"
  # --target keeps the install out of any environment; the CUDA build runs on CPU-only machines.
  "$python" -m pip install --quiet --no-warn-script-location --target "$tmp" "torch==$TORCH_VERSION"
  rm -rf "$target"
  mv "$tmp" "$target"
  touch "$target/.complete"
fi

mkdir -p "$root/.cargo"
cat > "$root/.cargo/config.toml" <<TOML
# Written by scripts/setup.sh; not tracked. Points torch-sys at the cached libtorch.
[env]
LIBTORCH = "$libtorch"
TOML
echo "setup: LIBTORCH=$libtorch (recorded in .cargo/config.toml)"
