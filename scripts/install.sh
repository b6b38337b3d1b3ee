#!/usr/bin/env bash
# Set up scalinglab on a fresh machine: a virtual environment in .venv with every extra, CPU PyTorch
# pinned (a loose torch pulls a multi-GB CUDA build), and Debian's chromium for the report's browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[all]"
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "note: chromium could not be installed; the report's browser test will be skipped" >&2
fi
echo "scalinglab installed in .venv ($(.venv/bin/scalinglab --version))"
