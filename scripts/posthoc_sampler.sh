#!/usr/bin/env bash
# The FID of decoded prior samples against that of decoded samples from a Gaussian mixture fitted
# to the training codes (pythae's GaussianMixtureSampler), for every run under a folder.
# Usage: scripts/posthoc_sampler.sh [RUNS_DIR (default runs/table)] [K (default 10)]
# Needs finished, evaluated runs (summary.json), e.g. from scripts/reproduce_untuned_table.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
runs="${1:-runs/table}"
k="${2:-10}"
bin="${SAE_DSL_BIN:-target/release/sae-dsl}"
[ -x "$bin" ] || cargo build --release --quiet
printf '| model | FID, prior samples | FID, GMM (K = %s) samples | change |\n|---|---|---|---|\n' "$k"
for d in "$runs"/*/; do
  d="${d%/}"
  [ -f "$d/summary.json" ] || continue
  "$bin" fit-sampler "$d" --gmm "$k" >/dev/null
  "$bin" eval "$d" --sampler gmm --quiet >/dev/null
  python3 - "$d" <<'PY'
import json, sys
d = sys.argv[1]
a = json.load(open(f"{d}/summary.json"))["fid_cnn"]
b = json.load(open(f"{d}/summary.gmm.json"))["fid_cnn"]
name = d.rstrip("/").split("/")[-1]
print(f"| {name} | {a:.1f} | {b:.1f} | {b - a:+.1f} ({(b - a) / a * 100:+.0f}%) |")
PY
done
