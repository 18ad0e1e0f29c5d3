"""A kill at every step between a window's commit and the STATE that names the next job.

Those few steps decide whether the next run resumes the job already created for the next window
or leaves it orphaned (Intercom runs one message export job at a time, so an orphan blocks the
next run's create until it finishes). The random kills of test_kill_points.py rarely land there:
here every step of that stretch is killed in turn, found from a clean run's messages.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import DAY, export_config, export_streams, run_tap
from tests.kill_harness import Killed, Tally, expected_keys
from tests.oracle import iso, unix

START = unix("2023-10-25T00:00:00Z")
SECOND = START + 7 * DAY  # the first window's end, the second window's start
WINDOWS = [(START, SECOND), (SECOND, SECOND + 7 * DAY)]


def _config(fake, ahead: int) -> dict:
    return export_config(
        fake, end_date=iso(WINDOWS[-1][1]), export_jobs_ahead=ahead, export_lookback_days=0
    )


def _stretch(written: list[tuple[int, dict]]) -> range:
    """Points from the STATE naming the second window's job to the first window's commit, +1.

    The commit is the job ledger's STATE that no longer lists the first window's job; with jobs
    ahead the second job is named before it, without them after it.
    """
    named = committed = None
    for point, msg in written:
        if msg["type"] != "STATE":
            continue
        ledger = msg["value"]["bookmarks"].get("message_export_jobs", {})
        starts = [j["window_start"] for j in ledger.get("in_flight_jobs") or []]
        if named is None and iso(SECOND) in starts:
            named = point
        if committed is None and ledger.get("replication_key_value") == iso(SECOND):
            committed = point
    assert named is not None, f"no STATE names the second window's job in {len(written)} messages"
    assert committed is not None, "no STATE commits the first window"
    return range(min(committed, named), max(committed, named) + 2)


@pytest.mark.parametrize("ahead", [1, 0])
def test_every_kill_between_commit_and_next_job_resumes_that_job(make_fake, chaos, ahead) -> None:
    fake = make_fake(receipts_per_day=1)
    chaos.log = True
    run_tap(_config(fake, ahead), select=export_streams())
    chaos.log = False
    stretch = _stretch(chaos.written)
    assert len(stretch) >= 2

    for point in stretch:
        fake = make_fake(receipts_per_day=1)
        config = _config(fake, ahead)
        chaos.n, chaos.kill_at = 0, point
        killed = run_tap(config, select=export_streams(), raise_errors=False)
        assert isinstance(killed.error, Killed), f"point {point}: the run was not killed"
        chaos.kill_at = None
        resumed = run_tap(config, state=killed.state, select=export_streams())

        tally = Tally()
        tally.add(killed.messages, killed=True)
        tally.add(resumed.messages, killed=False)
        tally.check(expected_keys(fake, WINDOWS))
        # One job per window over both runs: the second window's job, once created, is resumed.
        creates = Counter(
            r.body["created_at_after"] for r in fake.calls("POST", "/export/content/data")
        )
        assert creates == {START: 1, SECOND: 1}, f"kill at point {point}: jobs created {creates}"
        assert resumed.state["bookmarks"]["message_export_jobs"]["in_flight_jobs"] == []


def test_a_receipt_on_the_shared_second_is_emitted_once_in_the_later_window(
    make_fake, clock
) -> None:
    # The fake puts a receipt on every window boundary (receipt i at START + i * step).
    fake = make_fake(receipts_per_day=1)
    run = run_tap(_config(fake, 1), select=["message_receipts"])
    at_boundary = [r for r in run.records("message_receipts") if r["received_at"] == iso(SECOND)]
    assert len(at_boundary) == 1
    assert at_boundary[0]["export_window_start"] == iso(SECOND)
    assert [
        (b.body["created_at_after"], b.body["created_at_before"])
        for b in fake.calls("POST", "/export/content/data")
    ] == [(START, SECOND - 1), (SECOND, WINDOWS[1][1] - 1)]
