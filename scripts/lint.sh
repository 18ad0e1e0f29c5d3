#!/usr/bin/env bash
# The checks every change passes: ruff's rules, ruff's formatter, and mypy --strict on the package.
# Needs .venv with the test extras (scripts/test.sh installs them; they pin ruff and mypy).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check --no-cache .
.venv/bin/ruff format --no-cache --check .
.venv/bin/mypy --no-incremental
