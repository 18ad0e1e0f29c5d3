"""Run each mutant mutmut says survived again, in a fresh interpreter (scripts/mutation.sh runs it).

mutmut forks its test runs from a process that has already imported the package, so code that
runs at import (the file kinds, their schemas, the stream classes built from them) is never
mutated there: its mutants "survive" whatever the tests check. Here each survivor is imported
anew with `MUTANT_UNDER_TEST` set, and runs the tests mutmut chose for it plus the tests that
read what is built at import. Those it fails are caught; the rest still survive. The outcome is
written to mutants/recheck.json; the score in scripts/mutation.sh counts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: The tests of what the package builds at import: file kinds, schemas, the catalog.
IMPORT_TIME_TESTS = [
    "tests/test_catalog_snapshot.py",
    "tests/test_export_kinds.py",
    "tests/test_typing.py",
    "tests/test_fake_fidelity.py",
]
#: A mutant that makes the tests loop is caught (mutmut counts a timeout as caught too).
TIMEOUT_SECONDS = 600


def run_tests(mutant: str, tests: list[str]) -> int:
    """Pytest's exit code for these tests with this mutant (an empty name: none) imported anew."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "-p", "no:xdist", "-p", "no:randomly", "-m", "not e2e", *IMPORT_TIME_TESTS, *tests]  # fmt: skip
    try:
        return subprocess.run(
            command, cwd="mutants", env={**os.environ, "MUTANT_UNDER_TEST": mutant},
            capture_output=True, timeout=TIMEOUT_SECONDS, check=False,
        ).returncode  # fmt: skip
    except subprocess.TimeoutExpired:
        return 1


def main() -> int:
    """Recheck the survivors named on stdin, one per line; print one line per mutant."""
    names = sys.stdin.read().split()
    if not names:
        return 0
    if run_tests("", []) != 0:  # a catch below must be the mutant's doing
        print("the import-time tests fail without any mutant: fix them first", file=sys.stderr)
        return 1
    stats = json.loads(Path("mutants/mutmut-stats.json").read_text())
    tests_of = stats["tests_by_mangled_function_name"]
    outcome: dict[str, str] = {}
    for name in names:
        started = time.monotonic()
        code = run_tests(name, sorted(tests_of.get(name.partition("__mutmut_")[0], ())))
        # 1: a test failed; 2 and 3: collection or pytest itself broke (the import did).
        outcome[name] = "caught in a fresh interpreter" if code in (1, 2, 3) else "survived"
        print(f"{outcome[name]}: {name} ({time.monotonic() - started:.0f} s)", flush=True)
    Path("mutants/recheck.json").write_text(json.dumps(outcome, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
