#!/usr/bin/env bash
# Run every benchmark in turn and print its figures; the total wall time is printed last.
# Usage: bash benchmarks/run_all.sh [--quick] [--gpu]   (flags are passed to every script)
# Each script starts its own embedded ComfyUI (CPU unless --gpu) with the stand-in models; see benchmarks/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh  # the virtualenv (LIKENESS_CACHE / LIKENESS_VENV) and the import root, as every entry point
start=$(date +%s)
for name in pulid_overhead id_cache crop_vs_whole memory_batch e2e_client; do
  echo "=== benchmarks/$name.py $*"
  t0=$(date +%s)
  "$PY" "benchmarks/$name.py" "$@" 2>"${TMPDIR:-/tmp}/likeness-bench-$name.log" || {
    echo "benchmarks/$name.py failed; its log: ${TMPDIR:-/tmp}/likeness-bench-$name.log" >&2
    tail -n 40 "${TMPDIR:-/tmp}/likeness-bench-$name.log" >&2
    exit 1
  }
  echo "($name: $(( $(date +%s) - t0 )) s)"
  echo
done
echo "all benchmarks: $(( $(date +%s) - start )) s wall"
