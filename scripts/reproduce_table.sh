#!/usr/bin/env bash
# The SAE paper's MNIST table, tuned: for every method of models/ a sweep over three penalty
# weights (the file's gamma / 10, gamma, gamma x 10) and two seeds, each member trained with a
# validation split of 10% of the training images and evaluated; the best weight of each method
# is the one with the lowest mean FID against the validation images (never the test set), and
# the table gives every setting over the test set with the mean and spread over the seeds.
#
# Usage: SAE_DSL_DATA=/path/to/data ./scripts/reproduce_table.sh [--jobs K] [--quick]
#   --jobs K   members trained at once (the cores are split between them)
#   --quick    one epoch per member and two methods: a check that the pipeline works
# Writes runs/table-tuned/<model>/ (one sweep per method) and runs/table-tuned/compare.csv. A stopped run of
# this script continues where it was (finished members are skipped, interrupted ones resumed).
# On a cluster, make the same sweeps and submit each with `sae-dsl sweep slurm DIR --submit`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs=1
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
./scripts/setup.sh >/dev/null
cargo build --release --quiet
bin=target/release/sae-dsl
out=runs/table-tuned
models=(vae_mnist beta_vae_mnist wae_mmd_normal_mnist wae_mmd_sphere_mnist wae_gan_mnist swae_mnist hae_mnist normal_mnist sphere_mnist dirichlet_mnist)
extra=()
if [ "$quick" = 1 ]; then
  out=runs/table-tuned-quick
  models=(normal_mnist vae_mnist)
  extra=(--set epochs=1)
fi
mkdir -p "$out"
start=$(date +%s)
dirs=()
for m in "${models[@]}"; do
  g="$(sed -n 's/^let gamma = \([0-9.e+-]*\).*/\1/p' "models/$m.sae")"
  weights="$(python3 -c "g=float('$g'); print(','.join(f'{w:g}' for w in (g / 10, g, g * 10)))")"
  d="$out/$m"
  if [ ! -f "$d/sweep.json" ]; then
    "$bin" sweep "models/$m.sae" --set 'validation=split(fraction = 0.1)' "${extra[@]}" \
      --grid "gamma=$weights" --grid seed=0,1 --out "$d"
  fi
  t0=$(date +%s)
  "$bin" sweep run "$d" --jobs "$jobs"
  echo "$m: $(( $(date +%s) - t0 )) s for 6 members (training and evaluation)" >&2
  dirs+=("$d")
done
"$bin" compare "${dirs[@]}" --metric fid --csv "$out/compare.csv"
echo "total: $(( $(date +%s) - start )) s with --jobs $jobs" >&2
