#!/usr/bin/env bash
# The fast tests (all but those marked e2e: Meltano, loaders, the demo, installed commands) on
# another Python, in a venv of its own (.venv-py<version>):
#   bash scripts/test-python.sh 3.10 [pytest arguments]
# The interpreter is python<version> on PATH, else pyenv's newest <version>.x.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$1
shift

find_python() {
    if command -v "python$1" >/dev/null && "python$1" -c "" 2>/dev/null; then
        command -v "python$1"
        return
    fi
    if command -v pyenv >/dev/null; then
        local found
        found=$(pyenv versions --bare 2>/dev/null | grep -E "^${1//./\\.}\.[0-9]+$" | sort -V | tail -n 1)
        if [ -n "$found" ]; then
            echo "$(pyenv root)/versions/$found/bin/python"
            return
        fi
    fi
    echo "scripts/test-python.sh: no Python $1 here: install it (or put python$1 on PATH)." >&2
    return 1
}

py=$(find_python "$version")
venv=.venv-py$version
# TEST_PYTHON_INSTALLED=1: the venv is up to date (.ci/run installs first, then runs the tests
# beside others that would build the same packages at the same time).
if [ "${TEST_PYTHON_INSTALLED:-}" != 1 ]; then
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    # pip 25.1 is the first to install PEP 735 dependency groups (--group).
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --group test -e .
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e packages/fake-intercom
fi
echo "==> fast tests on $("$venv/bin/python" --version)"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -n auto --maxprocesses 4 --dist loadfile \
    -m "not e2e" "$@"
