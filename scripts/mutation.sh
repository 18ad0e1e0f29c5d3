#!/usr/bin/env bash
# Mutation testing of the export engine and the three sources (jobs/, content/, events/,
# reporting/; [tool.mutmut] in pyproject.toml): mutmut changes one thing at a time and runs the
# fast tests that reach it; a mutant that every test survives is a bug the tests would miss.
#   bash scripts/mutation.sh                  # everything (hours on 2 cores: see the README)
#   bash scripts/mutation.sh 'tap_intercom_export.jobs.windows*'   # only these mutants
# Then: .venv-mutation/bin/mutmut results (survivors), .venv-mutation/bin/mutmut show <name>.
# Known equivalent survivors, with why, are in tests/mutation-survivors.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
venv=.venv-mutation
[ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --group mutation -e .
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e packages/fake-intercom
# mutants/ keeps the test-to-function map and results between runs: rm -rf mutants to start over.
started=$SECONDS
"$venv/bin/mutmut" run "$@"
"$venv/bin/mutmut" export-cicd-stats >/dev/null
"$venv/bin/python" - "$((SECONDS - started))" <<'PY'
import json
import sys

s = json.load(open("mutants/mutmut-cicd-stats.json"))
# A mutant no fast test reaches counts as surviving: nothing would catch it.
tested = s["killed"] + s["survived"] + s["timeout"] + s["suspicious"] + s["segfault"] + s["no_tests"]
caught = s["killed"] + s["timeout"] + s["segfault"]
print(f"mutants: {s['total']}, tested: {tested}, caught: {caught}, survived: {s['survived']}, "
      f"no tests: {s['no_tests']}, skipped: {s['skipped']}")
if tested:
    print(f"mutation score: {100 * caught / tested:.1f} % in {int(sys.argv[1]) // 60} min")
PY
