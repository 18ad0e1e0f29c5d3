"""Kill the tap at random points of reporting syncs; the states it leaves must lead to every row.

As tests/test_kill_points.py does for the message export: a kill is a BaseException raised right
after the N-th message written or wait taken (no final STATE, as with SIGKILL); each next run
starts from the last STATE of the killed one. Every row the fake serves must be emitted before
some STATE covers it, and no run may enqueue a job for a window whose job is still in flight.
"""

from __future__ import annotations

import random

import pytest

from tap_intercom_export.reporting.streams import ReportingStream
from tap_intercom_export.tap import TapIntercomExport
from tests.conftest import run_tap
from tests.oracle import unix
from tests.reporting_helpers import START, enqueues, rclock, reporting_config, windows

__all__ = ["rclock"]
END = START + 14 * 86400
KEYS = {"reporting_conversation": "conversation_id", "reporting_tickets": "ticket_id"}


class Killed(BaseException):
    """The simulated SIGKILL."""


@pytest.mark.parametrize("seed", range(12))
def test_random_kills_never_lose_a_reporting_row(make_fake, rclock, monkeypatch, seed) -> None:
    rng = random.Random(seed)
    fake = make_fake()
    ticks = {"n": 0, "at": None}

    def tick() -> None:
        ticks["n"] += 1
        if ticks["at"] is not None and ticks["n"] == ticks["at"]:
            raise Killed

    write = TapIntercomExport.write_message

    def write_then_tick(self, message):
        write(self, message)
        tick()

    def sleep_then_tick(seconds: float) -> None:
        rclock.sleep(seconds)
        tick()

    monkeypatch.setattr(TapIntercomExport, "write_message", write_then_tick)
    monkeypatch.setattr(ReportingStream, "sleep", staticmethod(sleep_then_tick))
    config = reporting_config(
        fake, end_date="2023-11-08T00:00:00Z", reporting_max_concurrent_jobs=3
    )
    streams = ["reporting_conversation", "reporting_tickets"]
    state = None
    confirmed: set[tuple] = set()
    kills = 0
    for _ in range(40):
        ticks["n"], ticks["at"] = 0, (rng.randint(1, 60) if rng.random() < 0.85 else None)
        before = len(enqueues(fake))
        run = run_tap(config, state=state, select=streams, raise_errors=False)
        killed = isinstance(run.error, Killed)
        assert run.error is None or killed, run.error
        # Jobs a killed run left in flight are resumed, never enqueued again.
        in_flight = {
            (s, e["window_start"])
            for s, b in (state or {}).get("bookmarks", {}).items()
            for e in b.get("in_flight_jobs", [])
        }
        again = {(f"reporting_{b['dataset_id']}", b["start_time"]) for b in enqueues(fake)[before:]}
        assert not {(s, unix(w)) for s, w in in_flight} & again
        last_state = max(
            (i for i, m in enumerate(run.messages) if m["type"] == "STATE"), default=-1
        )
        for i, m in enumerate(run.messages):
            if m["type"] == "RECORD" and (not killed or i < last_state):
                confirmed.add((m["stream"], m["record"][KEYS[m["stream"]]]))
        state = run.state or state
        if not killed:
            break
        kills += 1
    else:
        pytest.fail("the tap never finished")

    expected = {
        (stream, row[key])
        for stream, key in KEYS.items()
        for a, b in windows(end=END)
        for row in fake.reporting.rows(stream.removeprefix("reporting_"), a, b)
    }
    assert confirmed == expected
    ticks["at"] = None
    final = run_tap(config, state=state, select=streams)
    assert not final.streams("reporting_")
    assert all(not b.get("in_flight_jobs") for b in final.state["bookmarks"].values())
    print(f"seed {seed}: {kills} kills")
