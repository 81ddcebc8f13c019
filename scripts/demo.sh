#!/usr/bin/env bash
# README command 1: the end-to-end demo on an embedded headless ComfyUI (sets itself up).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh
exec "$PY" -m likeness.client demo "$@"
