"""A smoke run of bench/bench_events.py: the counts it reports, not its timings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_events.py"


def load_bench():
    """bench/bench_events.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_events", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# A child process per run of the bench script: with the end-to-end tests.
@pytest.mark.e2e
def test_bench_smoke_run_counts(capsys) -> None:
    bench = load_bench()
    argv = ["--contacts", "60", "--latency-ms", "0", "--limit", "20", "--window", "1"]
    diet, rates = bench.main([*argv, "--unbuffered", "unset"])
    out = capsys.readouterr().out
    assert "utilisation of the limit" in out

    assert diet.changed == 3  # 5 % of 60 contacts
    assert diet.full.requests >= 2 * diet.contacts
    default, no_lookback, deep, every = diet.incremental
    # The lookback catches the late event; without it, it is never emitted.
    assert diet.checks[default.name] == (True, 0)
    assert diet.checks[deep.name] == (True, 0)
    assert diet.checks[every.name] == (True, 0)
    summaries_ok, missing = diet.checks[no_lookback.name]
    assert missing == diet.late == 1 and not summaries_ok
    assert every.requests >= 2 * diet.contacts
    assert no_lookback.requests <= 1.15 * diet.contacts
    assert no_lookback.requests <= default.requests <= deep.requests

    (rate,) = rates
    assert rate.run.rejected == 0
    assert rate.same_records
    assert rate.run.requests >= 2 * diet.contacts
    assert len(rate.per_window) >= 4  # several windows, so the limiter had to hold requests
    assert max(rate.per_window) <= 20
