#!/usr/bin/env bash
# Sets up libtorch (once) and runs the whole test suite. Used by .ci/run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh
# Tests that need MNIST or the Sinkhorn fixtures use these when present and skip visibly otherwise.
if [ -z "${SAE_DSL_DATA:-}" ] && [ -d ../shared/data ]; then export SAE_DSL_DATA="$root/../shared/data"; fi
if [ -z "${SAE_DSL_FIXTURES:-}" ] && [ -d ../shared/fixtures/sinkhorn ]; then export SAE_DSL_FIXTURES="$root/../shared/fixtures/sinkhorn"; fi
# With ../shared present, a test that cannot find its data or fixtures fails instead of skipping.
if [ -d ../shared/data ] && [ -d ../shared/fixtures/sinkhorn ]; then export SAE_DSL_REQUIRE_SHARED="${SAE_DSL_REQUIRE_SHARED:-1}"; fi
export SAE_DSL_OFFLINE=1   # tests never reach the network; downloads are tested on loopback
# The evaluation classifier is cached here between runs (trained once, about 30 s).
export SAE_DSL_CACHE="${SAE_DSL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sae-dsl}"
# Every test binary runs even when one fails (--no-fail-fast), so a red run shows everything that
# failed; the last line sums up the binaries' results and the visible skips.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The bounds must hold on any CPU of our kind: the numerical core again under every ATen CPU
# variant this CPU can run, with one thread (the whole matrix: ./scripts/cpu-variants.sh).
if [ $# -eq 0 ]; then
  ./scripts/cpu-variants.sh --quick 2>&1 | tee -a "$log"
  variants=${PIPESTATUS[0]}
  if [ "$variants" -ne 0 ] && [ "$status" -eq 0 ]; then status=$variants; fi
fi
# The Python package (python/): built into a virtual environment with the cached torch, tested
# with pytest; a part that cannot be installed says SKIPPED.
if [ $# -eq 0 ]; then
  ./scripts/python-tests.sh 2>&1 | tee -a "$log"
  py=${PIPESTATUS[0]}
  if [ "$py" -ne 0 ] && [ "$status" -eq 0 ]; then status=$py; fi
fi
set -e
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) g += $(i-1) } bins++ }
  /SKIPPED/ { s++ }
  # pytest closes with "N failed, N passed, N skipped in T s".
  !/^test result:/ && / in [0-9.]+s( \([0-9:]+\))?$/ && /(passed|failed)/ { for (i = 1; i <= NF; i++) { w = $(i+1); sub(/,$/, "", w); if (w == "passed") p += $(i); if (w == "failed") f += $(i) } bins++ }
  END { printf "test summary: %d passed, %d failed, %d ignored, %d SKIPPED lines, over %d test binaries\n", p, f, g, s, bins }
' "$log"
if [ "$status" -ne 0 ]; then
  echo "test summary: FAILED (cargo test exited with $status); the failing tests are listed above under 'failures:'" >&2
  grep -E '^    [A-Za-z_:0-9]+$|^    `--|^error' "$log" | sort -u >&2 || true
fi
exit "$status"
