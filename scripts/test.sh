#!/usr/bin/env bash
# Run the whole test suite (about 10 minutes on 2 cores) and the linter.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest -q --timeout=900 "$@"
