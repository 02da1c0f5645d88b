#!/usr/bin/env bash
# Sets up libtorch (once), builds, and trains a model (default models/dirichlet_mnist.sae).
# Extra arguments go to `sae-dsl run`, e.g. --epochs 5 --device cpu --out runs/mine.
# Data: --data-dir DIR, $SAE_DSL_DATA, ./data, ~/.cache/sae-dsl/data or /usr/share/datasets.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh
model="models/dirichlet_mnist.sae"
if [ $# -gt 0 ] && [[ "$1" == *.sae ]]; then model="$1"; shift; fi
cargo run --quiet -- run "$model" "$@"
