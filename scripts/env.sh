# Sourced by every entry point (scripts/*.sh, scripts/likeness, benchmarks/run_all.sh): the one place that says
# where the virtualenv is and how this checkout is imported. Exports LIKENESS_CACHE, LIKENESS_VENV, PY, and
# PYTHONPATH with .importroot/ first, whose `likeness` links to this checkout (see scripts/importroot.py).
LIKENESS_CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LIKENESS_CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
export LIKENESS_VENV="${LIKENESS_VENV:-$LIKENESS_CACHE/venv}"
export PY="$LIKENESS_VENV/bin/python"
mkdir -p "$LIKENESS_CHECKOUT/.importroot"
[ -L "$LIKENESS_CHECKOUT/.importroot/likeness" ] || ln -sfn .. "$LIKENESS_CHECKOUT/.importroot/likeness"
export PYTHONPATH="$LIKENESS_CHECKOUT/.importroot${PYTHONPATH:+:$PYTHONPATH}"
