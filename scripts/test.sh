#!/usr/bin/env bash
# README command 2: run the test suite (sets itself up on a fresh machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh
"$PY" -m ruff check . >&2
exec "$PY" -m pytest "$@"
