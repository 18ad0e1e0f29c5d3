#!/usr/bin/env bash
# Install the tap with its development tools (the `dev` dependency group of pyproject.toml: pytest,
# ruff, mypy) and the fake Intercom API (packages/fake-intercom, not part of the tap) into .venv,
# Meltano into .venv-meltano (for the `meltano run` end-to-end tests), and run the whole suite. The PostgreSQL end-to-end test starts its own server from the
# machine's PostgreSQL binaries (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# pip 25.1 is the first to install PEP 735 dependency groups (--group).
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
.venv/bin/python -m pip install -q --disable-pip-version-check --group dev -e .
# After the tap: an older tap installed a `fake-intercom` script that its reinstall removes.
.venv/bin/python -m pip install -q --disable-pip-version-check -e packages/fake-intercom
# shellcheck source=scripts/meltano-env.sh
. scripts/meltano-env.sh
ensure_meltano
# Lint, format and types first: a finding fails the run before any test (scripts/lint.sh).
bash scripts/lint.sh
# One worker per core (at most 4), whole files per worker: a file's Meltano install and fake
# server are set up once, and the Meltano end-to-end files run beside the in-process tests.
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n auto --maxprocesses 4 --dist loadfile "$@"
