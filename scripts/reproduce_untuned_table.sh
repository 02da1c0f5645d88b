#!/usr/bin/env bash
# The one-seed table of the README: trains every MNIST model of models/ once with its own settings
# (since 2026-12-04 the tuned ones) on all the training images, evaluates it, prints the comparison
# table (Markdown) and writes runs/table/compare.csv. scripts/reproduce_table.sh is the tuning
# (sweeps on a validation split, two seeds).
# Usage: SAE_DSL_DATA=/path/to/data ./scripts/reproduce_untuned_table.sh [extra `sae-dsl run` options]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh >/dev/null
cargo build --release --quiet
bin=target/release/sae-dsl
out=runs/table
mkdir -p "$out"
models=(vae_mnist beta_vae_mnist wae_mmd_normal_mnist wae_mmd_sphere_mnist wae_gan_mnist swae_mnist hae_mnist normal_mnist sphere_mnist dirichlet_mnist)
start=$(date +%s)
for m in "${models[@]}"; do
  t0=$(date +%s)
  "$bin" run "models/$m.sae" --out "$out/$m" --force --quiet "$@"
  echo "$m: $(( $(date +%s) - t0 )) s (training and evaluation)" >&2
done
"$bin" compare "${models[@]/#/$out/}" --csv "$out/compare.csv"
echo "total: $(( $(date +%s) - start )) s" >&2
