#!/usr/bin/env bash
# The SAE paper's MNIST table, tuned. For every method of models/:
#  1. a coordinate sweep around the file's settings, seed 0: the file's own setting, gamma / 10
#     and gamma x 10, the latent size d / 2 and 2 d, and (Sinkhorn models) epsilon / 5 and
#     epsilon x 5, one changed at a time; each member trains on 90% of the training images and is
#     scored by its FID against the held-out 10% (never the test set);
#  2. the winner (lowest validation FID) trained again with seed 1 (seed 0 is the sweep's member,
#     copied, since a CPU run is deterministic), and the table over the test set gives the mean
#     and spread over the two seeds.
#
# Usage: SAE_DSL_DATA=/path/to/data ./scripts/reproduce_table.sh [--jobs K] [--quick]
#   --jobs K   members trained at once (the cores are split between them)
#   --quick    one epoch per member and two methods: a check that the pipeline works
# Writes runs/table-tuned/<model>/ (the coordinate sweeps), runs/table-tuned/final/<model>/ (the
# winners over two seeds), tried.csv and compare.csv. A stopped run of this script continues where
# it was (finished members are skipped, interrupted ones resumed).
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
models=(dirichlet_mnist normal_mnist sphere_mnist hae_mnist swae_mnist wae_mmd_normal_mnist wae_mmd_sphere_mnist wae_gan_mnist beta_vae_mnist vae_mnist)
extra=()
if [ "$quick" = 1 ]; then
  out=runs/table-tuned-quick
  models=(normal_mnist vae_mnist)
  extra=(--set epochs=1)
fi
val='validation=split(fraction = 0.1)'
mkdir -p "$out/final"
# The value of `let NAME = VALUE` in a model file (empty when the file has no such constant).
constant() { sed -n "s/^let $1 = \([0-9.e+-]*\).*/\1/p" "$2"; }
# "A/k,A*k" for a constant A, as integers for the latent size.
around() { python3 -c "a=float('$1'); k=float('$2'); i=$3
print(','.join(str(int(round(v))) if i else f'{v:g}' for v in (a / k, a * k)))"; }
start=$(date +%s)
coords=()
finals=()
for m in "${models[@]}"; do
  f="models/$m.sae"
  d="$out/$m"
  if [ ! -f "$d/sweep.json" ]; then
    vary=(--vary "gamma=$(around "$(constant gamma "$f")" 10 0)" --vary "d=$(around "$(constant d "$f")" 2 1)")
    e="$(constant epsilon "$f")"
    if [ -n "$e" ]; then vary+=(--vary "epsilon=$(around "$e" 5 0)"); fi
    "$bin" sweep "$f" --set "$val" "${extra[@]}" "${vary[@]}" --grid seed=0 --out "$d"
  fi
  t0=$(date +%s)
  "$bin" sweep run "$d" --jobs "$jobs"
  "$bin" compare "$d" --metric fid --csv "$d/compare.csv" >/dev/null
  # The winner's overrides ("" when the file's own setting won) as --set options.
  best="$(awk -F, '$NF == "true" { print $2 }' "$d/compare.csv")"
  sets=()
  for o in $best; do sets+=(--set "$o"); done
  fd="$out/final/$m"
  if [ ! -f "$fd/sweep.json" ]; then
    "$bin" sweep "$f" --set "$val" "${extra[@]}" "${sets[@]}" --grid seed=0,1 --out "$fd"
    # Seed 0 of the winner is the coordinate sweep's member with the same overrides.
    src="$(python3 -c "
import json, sys
m = json.load(open('$d/sweep.json'))
want = sorted(o for o in '$best seed=0'.split())
for x in m['members']:
    if sorted(f'{n}={v}' for n, v in x['overrides'][x.get('fixed', 0):]) == want:
        print(x['dir']); break
")"
    dst="$(python3 -c "import json; print(json.load(open('$fd/sweep.json'))['members'][0]['dir'])")"
    cp -r "$d/$src/run" "$fd/$dst/run"
  fi
  "$bin" sweep run "$fd" --jobs "$jobs"
  echo "$m: $(( $(date +%s) - t0 )) s (best: ${best:-the file as it is})" >&2
  coords+=("$d")
  finals+=("$fd")
done
"$bin" compare "${coords[@]}" --metric fid --csv "$out/tried.csv"
"$bin" compare "${finals[@]}" --metric fid --csv "$out/compare.csv"
echo "total: $(( $(date +%s) - start )) s with --jobs $jobs" >&2
