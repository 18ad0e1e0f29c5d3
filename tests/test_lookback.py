"""Engagement that arrives after its window was exported, and what the lookback costs.

Under both readings of Intercom's texts, on an hourly schedule.
"""

from __future__ import annotations

import logging

import pytest
from fake_intercom import message_stats

from tap_intercom_export.content.lookback import Lookback
from tap_intercom_export.content.streams import MessageExportJobsStream
from tap_intercom_export.jobs.windows import Window
from tests.conftest import DAY, NOW, export_config, run_tap
from tests.oracle import iso

HOUR = 3600
SELECT = ["message_opens", "message_receipts"]


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch, clock) -> dict[str, int]:
    """The tap's wall clock (and the fake's "now" for engagement), moved by the test."""
    now = {"t": NOW}
    monkeypatch.setattr(
        MessageExportJobsStream, "wall_clock", staticmethod(lambda: float(now["t"]))
    )
    return now


def creates(fake) -> list[tuple[int, int]]:
    return [
        (r.body["created_at_after"], r.body["created_at_before"])
        for r in fake.calls("POST", "/export/content/data")
    ]


def config(fake, **overrides) -> dict:
    cfg = export_config(fake, start_date=iso(NOW - 5 * DAY), **overrides)
    del cfg["end_date"]  # run up to "now", as on a schedule
    return cfg


@pytest.mark.parametrize("reading", message_stats.READINGS)
def test_lookback_captures_engagement_after_the_window_under_both_readings(
    make_fake, wall, caplog, reading
) -> None:
    caplog.set_level(logging.INFO)
    fake = make_fake(start=NOW - 10 * DAY, end=NOW + 3 * DAY, engagement_delay=2 * DAY,
                     first_reading=reading, now=lambda: wall["t"])  # fmt: skip
    # Day-long windows: re-exporting each of them again would, under the reference's reading,
    # never hold an open that came after the window's end.
    runs = [run_tap(config(fake, export_window_days=1), select=SELECT)]
    assert creates(fake) == [(NOW - d * DAY, NOW - (d - 1) * DAY - 1) for d in range(5, 0, -1)]
    assert runs[0].state["bookmarks"]["message_export_jobs"]["last_lookback_at"] == iso(NOW)

    wall["t"] = NOW + HOUR  # an hour later: the interval is not up, only the new hour is exported
    runs.append(run_tap(config(fake, export_window_days=1), state=runs[-1].state, select=SELECT))
    assert creates(fake)[5:] == [(NOW, NOW + HOUR - 1)]

    wall["t"] = (
        NOW + 25 * HOUR
    )  # a day after the last lookback: one job from the lookback start to now
    runs.append(run_tap(config(fake, export_window_days=1), state=runs[-1].state, select=SELECT))
    assert creates(fake)[6:] == [(NOW - 5 * DAY, NOW + 25 * HOUR - 1)]
    assert "Lookback: re-exporting messages sent from 2023-11-09T00:00:00+00:00" in caplog.text
    # What the operator needs to know about the rows read twice, in the same line.
    assert (
        "inside its job's requested range. Re-read rows keep their primary keys (loaders upsert them)."
        in caplog.text
    )

    opens = {
        (r["receipt_id"], r["opened_at"]) for run in runs for r in run.records("message_opens")
    }
    everything = fake.exports.dataset.rows(
        "open", NOW - 5 * DAY, NOW + 25 * HOUR - 1, until=NOW + 25 * HOUR - 1
    )
    assert len(opens) == len(everything) > 0
    # What the first run could not have: opens after the end of the window their message was
    # sent in, which only a requested range reaching past them holds under the reference's reading.
    first_window = {r["receipt_id"] for r in runs[0].records("message_receipts")}
    late = [
        r
        for r in runs[2].records("message_opens")
        if r["receipt_id"] in first_window and r["opened_at"] >= iso(NOW)
    ]
    assert late
    receipts = {
        r["receipt_id"]: r for run in runs for r in run.records("message_receipts")
    }  # upserted: last wins
    assert {rid for rid, r in receipts.items() if r["first_open"]} == {rid for rid, _ in opens}
    final = runs[2].state["bookmarks"]
    assert final["message_export_jobs"]["last_lookback_at"] == iso(NOW + 25 * HOUR)
    for stream in [*SELECT, "message_export_jobs"]:
        assert final[stream]["replication_key_value"] == iso(NOW + 25 * HOUR)


def test_lookback_interval_zero_re_reads_on_every_run_and_days_zero_never(make_fake, wall) -> None:
    fake = make_fake(start=NOW - 10 * DAY, end=NOW + 3 * DAY)
    first = run_tap(
        config(fake, export_lookback_days=3, export_lookback_interval_hours=0), select=SELECT
    )
    wall["t"] = NOW + HOUR
    run_tap(
        config(fake, export_lookback_days=3, export_lookback_interval_hours=0),
        state=first.state,
        select=SELECT,
    )
    assert creates(fake)[1:] == [(NOW - 3 * DAY, NOW + HOUR - 1)]
    wall["t"] = NOW + 30 * DAY
    run_tap(
        config(fake, export_lookback_days=0, export_window_days=60),
        state=first.state,
        select=SELECT,
    )
    assert creates(fake)[2:] == [(NOW, NOW + 30 * DAY - 1)]


def test_lookback_after_a_long_gap_plans_windows_then_one_reaching_the_end() -> None:
    lookback = Lookback(seconds=7 * DAY, interval_seconds=DAY)
    # Behind by three weeks: 7-day windows up to the last 7 days, then one window to the end.
    assert lookback.windows(0, 28 * DAY, 7 * DAY) == [
        Window(0, 7 * DAY), Window(7 * DAY, 14 * DAY), Window(14 * DAY, 21 * DAY), Window(21 * DAY, 28 * DAY)
    ]  # fmt: skip
    assert lookback.windows(0, 26 * DAY, 7 * DAY)[-1] == Window(19 * DAY, 26 * DAY)
    # On schedule: the bookmark is an hour old, so one job covers the lookback and the new hour.
    assert lookback.windows(0, 7 * DAY + HOUR, 7 * DAY) == [Window(0, 7 * DAY + HOUR)]
    state = {"last_lookback_at": iso(NOW)}
    assert not lookback.is_due(state, NOW + DAY - 1, has_bookmarks=True)
    assert lookback.is_due(state, NOW + DAY, has_bookmarks=True)
    assert not lookback.is_due({}, NOW, has_bookmarks=True)  # the interval starts now
    assert not lookback.is_due(
        state, NOW + DAY, has_bookmarks=False
    )  # a first sync exports all anyway


def test_cost_of_the_default_on_an_hourly_schedule(make_fake, wall) -> None:
    """One day of hourly runs with the defaults (7 days, every 24 hours), 24 receipts a day."""
    fake = make_fake(start=NOW - 10 * DAY, end=NOW + 3 * DAY, receipts_per_day=24)
    cfg = export_config(fake, start_date=iso(NOW - 8 * DAY))
    del cfg["end_date"]
    state = run_tap(cfg, select=["message_receipts"]).state
    jobs_before = len(creates(fake))
    rows = 0
    for hour in range(1, 25):
        wall["t"] = NOW + hour * HOUR
        run = run_tap(cfg, state=state, select=["message_receipts"])
        rows += len(run.records("message_receipts"))
        state = run.state
    assert len(creates(fake)) - jobs_before == 24  # the lookback job replaces that hour's job
    assert creates(fake)[-1] == (NOW + 24 * HOUR - 7 * DAY - HOUR, NOW + 24 * HOUR - 1)
    assert rows == 8 * 24  # 23 new hours + 7 days and 1 hour re-read: 8 days' rows per day
