#!/usr/bin/env bash
# Runs the numerical tests under every ATen CPU variant this CPU can run (ATEN_CPU_CAPABILITY =
# default, avx2, and avx512 where /proc/cpuinfo has avx512f) and with 1 and 2 threads
# (OMP_NUM_THREADS), so that a bound that holds on one kind of CPU only fails here (issue 31).
#
#   ./scripts/cpu-variants.sh           # the numerical test binaries, 3 x 2 settings (~25 min)
#   ./scripts/cpu-variants.sh --quick   # parity, penalties, costs and geometries (~2 min; test.sh runs it)
#
# The test binaries are built once and copied aside, so a rebuild during the run changes nothing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh >/dev/null
if [ -z "${SAE_DSL_DATA:-}" ] && [ -d ../shared/data ]; then export SAE_DSL_DATA="$root/../shared/data"; fi
if [ -z "${SAE_DSL_FIXTURES:-}" ] && [ -d ../shared/fixtures/sinkhorn ]; then export SAE_DSL_FIXTURES="$root/../shared/fixtures/sinkhorn"; fi
export SAE_DSL_OFFLINE=1
# cargo sets LIBTORCH from .cargo/config.toml; the binaries run here need it too (parity.rs finds
# the torch package through it).
LIBTORCH="$(sed -n 's/^LIBTORCH = "\(.*\)"$/\1/p' .cargo/config.toml)"
export LIBTORCH
export SAE_DSL_CACHE="${SAE_DSL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sae-dsl}"

if [ "${1:-}" = "--quick" ]; then
  tests=(parity penalties costs geometries)
  threads=(1)
else
  tests=(parity penalties costs geometries geometry sinkhorn prior_programs priors distributions
         learnable_priors training evaluation init sampler invariants)
  threads=(1 2)
fi
caps=(default avx2)
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then caps+=(avx512); fi

python=$(command -v python3 || command -v python)
bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done
# The executables cargo built, by test name.
cargo test --no-run "${args[@]}" --message-format=json 2>/dev/null |
  "$python" -c '
import json, sys, shutil, os
out = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        shutil.copy2(m["executable"], os.path.join(out, m["target"]["name"]))
' "$bins"

failed=()
for cap in "${caps[@]}"; do
  for th in "${threads[@]}"; do
    for t in "${tests[@]}"; do
      if [ ! -x "$bins/$t" ]; then
        echo "cpu-variants: no test binary for $t" >&2
        failed+=("$t (not built)")
        continue
      fi
      start=$(date +%s)
      if ATEN_CPU_CAPABILITY=$cap OMP_NUM_THREADS=$th "$bins/$t" -q >"$bins/log" 2>&1; then
        printf 'ok      %-8s %s threads  %-18s %4ss\n' "$cap" "$th" "$t" "$(( $(date +%s) - start ))"
      else
        printf 'FAILED  %-8s %s threads  %s\n' "$cap" "$th" "$t"
        tail -40 "$bins/log"
        failed+=("$t ($cap, $th threads)")
      fi
    done
  done
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'cpu-variants: %d failed: %s\n' "${#failed[@]}" "${failed[*]}" >&2
  exit 1
fi
echo "cpu-variants: ${#tests[@]} test binaries passed under ${caps[*]} with ${threads[*]} thread(s)"
