"""Bookmarks never move back, and the lookback's stamp comes only after the lookback's rows.

Read off every STATE message of real runs against the fake (message export with a lookback due,
reporting with its lookback), not off the planner: a bookmark that moved back in one STATE, then
forward again, is what a kill between the two would leave behind.
"""

from __future__ import annotations

import pytest

from tests.conftest import DAY, export_config, export_streams, run_tap
from tests.oracle import iso, unix
from tests.reporting_helpers import rclock, reporting_config  # noqa: F401 - rclock: a fixture

LEDGER = "message_export_jobs"


def bookmark_steps(states: list[dict]) -> dict[str, list[int]]:
    """Each stream's replication_key_value, as unix seconds, in the order the STATEs gave them."""
    steps: dict[str, list[int]] = {}
    for state in states:
        for stream, bookmark in state.get("bookmarks", {}).items():
            value = bookmark.get("replication_key_value")
            if value is not None and (not steps.get(stream) or steps[stream][-1] != unix(value)):
                steps.setdefault(stream, []).append(unix(value))
    return steps


def assert_never_back(states: list[dict], before: dict | None = None) -> None:
    """Every bookmark only ever moves forward, from where `before` left it."""
    start = bookmark_steps([before]) if before else {}
    for stream, values in bookmark_steps(states).items():
        seq = start.get(stream, [])[-1:] + values
        assert seq == sorted(seq), f"{stream}: bookmark moved back: {[iso(v) for v in seq]}"


def test_export_bookmarks_never_move_back_while_a_lookback_re_exports(make_fake, clock) -> None:
    fake = make_fake()
    first = run_tap(export_config(fake, end_date="2023-11-08T00:00:00Z"), select=export_streams())
    assert_never_back(first.states)
    config = export_config(fake, export_lookback_days=5, export_lookback_interval_hours=0)
    second = run_tap(config, state=first.state, select=export_streams())
    # The lookback's job starts 5 days before the bookmark: its rows carry that window start.
    assert min(unix(r["export_window_start"]) for r in second.records("message_receipts")) == (
        unix("2023-11-08T00:00:00Z") - 5 * DAY
    )
    assert_never_back(second.states, before=first.state)


def test_a_split_lookback_window_does_not_move_bookmarks_back(make_fake, clock) -> None:
    # 24 receipts a day: the lookback's one window (5 days before the bookmark to the end,
    # 11 days, 264 receipts) hits a row cap of 100 and is exported again in halves; the first
    # half ends before the bookmark, and must not take the bookmark there.
    fake = make_fake(row_limit=100)
    first_config = export_config(fake, end_date="2023-11-08T00:00:00Z", export_window_days=1)
    first = run_tap({**first_config, "export_row_limit": 100}, select=export_streams())
    config = export_config(
        fake, export_lookback_days=5, export_lookback_interval_hours=0, export_row_limit=100
    )
    second = run_tap(config, state=first.state, select=export_streams())
    ends = [unix(j["window_end"]) for j in second.records(LEDGER) if j["status"] == "completed"]
    assert min(ends) < unix("2023-11-08T00:00:00Z")  # a half ended before the bookmark
    assert_never_back(second.states, before=first.state)


def test_lookback_stamp_is_written_after_the_lookback_rows(make_fake, clock) -> None:
    fake = make_fake()
    first = run_tap(export_config(fake, end_date="2023-11-08T00:00:00Z"), select=export_streams())
    stamp = first.state["bookmarks"][LEDGER].get("last_lookback_at")
    config = export_config(fake, export_lookback_days=5, export_lookback_interval_hours=0)
    second = run_tap(config, state=first.state, select=export_streams())
    lookback_job = second.records(LEDGER)[0]["job_identifier"]
    stamped = next(
        i
        for i, m in enumerate(second.messages)
        if m["type"] == "STATE" and m["value"]["bookmarks"][LEDGER].get("last_lookback_at") != stamp
    )
    last_row = max(
        i
        for i, m in enumerate(second.messages)
        if m["type"] == "RECORD"
        and m["stream"] != LEDGER
        and m["record"].get("export_job_id") == lookback_job
    )
    assert last_row < stamped


@pytest.mark.usefixtures("rclock")
def test_reporting_bookmarks_never_move_back_with_their_lookback(make_fake) -> None:
    fake = make_fake()
    select = ["reporting_tickets"]
    base = reporting_config(fake, reporting_datasets=["tickets"])
    first = run_tap({**base, "end_date": "2023-11-08T00:00:00Z"}, select=select)
    later = run_tap({**base, "reporting_lookback_days": 3}, state=first.state, select=select)
    # The lookback re-exported rows from before the first run's bookmark.
    bookmark = unix(first.state["bookmarks"]["reporting_tickets"]["replication_key_value"])
    assert (
        min(unix(r["export_window_start"]) for r in later.records("reporting_tickets")) < bookmark
    )
    assert_never_back(first.states)
    assert_never_back(later.states, before=first.state)
