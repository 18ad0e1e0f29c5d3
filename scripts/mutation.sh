#!/usr/bin/env bash
# Mutation testing of the export engine and the three sources (jobs/, content/, events/,
# reporting/; [tool.mutmut] in pyproject.toml): mutmut changes one thing at a time and runs the
# fast tests that reach it; a mutant that every test survives is a bug the tests would miss.
#   bash scripts/mutation.sh                  # everything (many hours on 2 cores: see the README)
#   bash scripts/mutation.sh 'tap_intercom_export.jobs.windows*'   # only these mutants
#   MUTATION_SAMPLE=600 bash scripts/mutation.sh   # a seeded random sample of all the mutants
#       (MUTATION_SEED, default 22; about an hour). Run again after adding tests: only the
#       sample's mutants not caught yet are checked again. rm mutants/sample.txt for a new one.
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
# type_check_command (pyproject) runs the venv's mypy.
export PATH="$PWD/$venv/bin:$PATH"
started=$SECONDS
# mutants/ keeps the test-to-function map and results between runs: rm -rf mutants to start over.
names=()
if [ -n "${MUTATION_SAMPLE:-}" ]; then
  # The names exist once mutmut has written its copies; sample them, seeded, from the sorted list.
  "$venv/bin/python" -c 'import mutmut.__main__ as m; m.copy_src_dir(); m.copy_also_copy_files(); m.setup_source_paths(); m.store_lines_covered_by_tests(); m.create_mutants(2)' >/dev/null
  "$venv/bin/mutmut" results --all true | sed 's/^ *//' >mutants/results.txt
  [ -f mutants/sample.txt ] || sed 's/:.*//' mutants/results.txt | sort \
    | "$venv/bin/python" -c 'import random, sys; names = sys.stdin.read().split(); print("\n".join(sorted(random.Random(int(sys.argv[2])).sample(names, min(int(sys.argv[1]), len(names))))))' \
      "$MUTATION_SAMPLE" "${MUTATION_SEED:-22}" >mutants/sample.txt
  # A rerun checks only what is not caught yet (and what changed: mutmut forgets its results).
  mapfile -t names < <(grep -E ': (not checked|survived|no tests|suspicious)$' mutants/results.txt \
    | sed 's/:.*//' | grep -Fxf mutants/sample.txt || true)
  echo "sample: $(wc -l <mutants/sample.txt) mutants in mutants/sample.txt, ${#names[@]} to check"
else
  rm -f mutants/sample.txt
fi
if [ -z "${MUTATION_SAMPLE:-}" ] || [ "${#names[@]}" -gt 0 ]; then
  "$venv/bin/mutmut" run "${names[@]}" "$@"
fi
"$venv/bin/mutmut" results --all true >mutants/results.txt
# Survivors (and mutants no test reaches) again, each in a fresh interpreter: code run at import
# is mutated only there (scripts/mutation_recheck.py).
sed -n 's/^ *\(.*\): \(survived\|no tests\)$/\1/p' mutants/results.txt \
  | { if [ -f mutants/sample.txt ]; then grep -Fxf mutants/sample.txt || true; else cat; fi; } \
  | "$venv/bin/python" scripts/mutation_recheck.py
"$venv/bin/python" - "$((SECONDS - started))" <<'PY'
import collections
import json
import pathlib
import sys

status = dict(line.strip().split(": ", 1) for line in open("mutants/results.txt") if ": " in line)
sample = pathlib.Path("mutants/sample.txt")
if sample.exists():
    # A name the code no longer has (its function changed shape) leaves the sample.
    status = {name: status[name] for name in sample.read_text().split() if name in status}
recheck = pathlib.Path("mutants/recheck.json")
if recheck.exists():
    for name, again in json.loads(recheck.read_text()).items():
        if status.get(name) in ("survived", "no tests") and again.startswith("caught"):
            status[name] = again
count = collections.Counter(status.values())
# A mutant no fast test reaches counts as surviving: nothing would catch it. mypy --strict
# rejecting a mutant ("caught by type check") is a catch: CI's lint step runs it.
caught = (count["killed"] + count["timeout"] + count["segfault"] + count["caught by type check"]
          + count["caught in a fresh interpreter"])
tested = caught + count["survived"] + count["suspicious"] + count["no tests"]
print(f"mutants: {len(status)}, tested: {tested}, caught: {caught} "
      f"({count['caught by type check']} by mypy, {count['caught in a fresh interpreter']} in a "
      f"fresh interpreter), survived: {count['survived']}, no tests: {count['no tests']}, "
      f"not checked: {count['not checked']}")
if tested:
    print(f"mutation score: {100 * caught / tested:.1f} % in {int(sys.argv[1]) // 60} min")
PY
