"""Reporting times as true instants: the workspace's zone (GET /me), the setting, DST, the check.

Expectations come from the fake: it writes each time in its CSV zone and `truth()` gives the
instant it wrote, computed by the fake, never by the tap's converter.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tap_intercom_export.reporting.streams import ReportingStream
from tests.conftest import DAY, run_tap
from tests.oracle import unix
from tests.reporting_helpers import STREAMS, expected_records, rclock, reporting_config, windows

__all__ = ["rclock"]

NEW_YORK = "America/New_York"
TIME_KINDS = ("ts", "ts_late")


def time_props(fake, dataset: str) -> list[str]:
    """Properties of the dataset's time attributes (standard ones: named by their id)."""
    return [a.id for a in fake.reporting.dataset(dataset).attributes if a.kind in TIME_KINDS]


def assert_true_instants(fake, run, span: list[tuple[int, int]]) -> int:
    """Every time of every reporting record is the fake's UTC truth; returns how many compared."""
    compared = 0
    for stream in STREAMS:
        dataset = stream.removeprefix("reporting_")
        records = run.records(stream)
        want = [row for window in span for row in expected_records(fake, dataset, window)]
        assert len(records) == len(want) > 0, stream
        for record, row in zip(records, want, strict=True):
            for prop in time_props(fake, dataset):
                assert record[prop] == row[prop], (stream, prop, record[prop], row[prop])
                compared += record[prop] is not None
                assert record[prop] is None or record[prop].endswith("+00:00")
    return compared


def zone_warnings(caplog) -> list[str]:
    """Warnings of the zone check."""
    return [r.getMessage() for r in caplog.records if "outside the window" in r.getMessage()]


@pytest.mark.parametrize("zone", [NEW_YORK, "Asia/Kolkata", "UTC"])
def test_times_are_the_true_instants_in_the_workspace_zone(make_fake, rclock, caplog, zone) -> None:
    # Kolkata: a half-hour offset. The first two windows stay clear of New York's DST change
    # (2023-11-05), which test_dst_* below cover.
    fake = make_fake(timezone=zone)
    config = reporting_config(fake, end_date="2023-11-04T00:00:00Z")
    with caplog.at_level(logging.INFO):
        run = run_tap(config, select=STREAMS)
    assert assert_true_instants(fake, run, windows(end=unix("2023-11-04T00:00:00Z"))) > 100
    assert len(fake.calls("GET", r"/me")) == 1  # once per run, for three streams
    said = [r.getMessage() for r in caplog.records]
    assert (
        f"Reporting times are read in {zone} (the workspace's time zone, from GET /me)"
        in "\n".join(said)
    )
    assert not zone_warnings(caplog)
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and "zone" in r.getMessage()
    ]


def test_kolkata_half_hour_offset_by_hand(make_fake, rclock) -> None:
    fake = make_fake(timezone="Asia/Kolkata")
    run = run_tap(
        reporting_config(fake, end_date="2023-10-26T00:00:00Z"), select=["reporting_tickets"]
    )
    first = run.records("reporting_tickets")[0]
    # The fake's tickets come every 5 hours from 2023-10-01T00:00Z: the window's first is 580 hours
    # later, 2023-10-25T04:00Z, written 09:30 in Kolkata (UTC+05:30).
    (row,) = fake.reporting.rows(
        "tickets", unix("2023-10-25T04:00:00Z"), unix("2023-10-25T04:00:00Z")
    )
    assert row["ticket_created_at"] == "2023-10-25 09:30:00"
    assert first["ticket_created_at"] == "2023-10-25T04:00:00+00:00"


def test_no_me_call_without_a_selected_reporting_stream(make_fake, clock) -> None:
    fake = make_fake(timezone=NEW_YORK)
    run_tap(reporting_config(fake, end_date="2023-10-27T00:00:00Z"), select=["message_receipts"])
    assert fake.calls("GET", r"/me") == []


def test_setting_overrides_the_workspace_zone(make_fake, rclock, caplog) -> None:
    # GET /me says New York, but this workspace's exports come in UTC: the setting says so.
    fake = make_fake(timezone=NEW_YORK, reporting_csv_timezone="UTC")
    config = reporting_config(fake, reporting_timezone="UTC")
    with caplog.at_level(logging.INFO):
        run = run_tap(config, select=STREAMS)
    assert_true_instants(fake, run, windows())
    assert fake.calls("GET", r"/me") == []
    assert "Reporting times are read in UTC (setting reporting_timezone)" in caplog.text
    assert not zone_warnings(caplog)


def test_zone_check_warns_once_per_stream_when_the_csv_is_utc_under_a_new_york_me(
    make_fake, rclock, caplog
) -> None:
    fake = make_fake(timezone=NEW_YORK, reporting_csv_timezone="UTC")
    with caplog.at_level(logging.WARNING):
        run = run_tap(reporting_config(fake), select=[*STREAMS, "reporting_export_jobs"])
    warned = zone_warnings(caplog)
    assert len(warned) == len(STREAMS)  # three windows each, one warning each
    assert {m.split(":")[0] for m in warned} == set(STREAMS)
    for message in warned:
        assert f"read in {NEW_YORK} (the workspace's time zone, from GET /me)" in message
        assert "none when read in UTC" in message and "reporting_timezone" in message
    # Every row kept, each time read in New York: 4 or 5 hours after the truth.
    for stream in STREAMS:
        dataset = stream.removeprefix("reporting_")
        want = [r for w in windows() for r in fake.reporting.truth(dataset, *w)]
        got = run.records(stream)
        assert len(got) == len(want)
        time_attribute = fake.reporting.dataset(dataset).time_attribute
        shifts = {
            unix(g[time_attribute]) - unix(w[time_attribute])
            for g, w in zip(got, want, strict=True)
        }
        assert shifts == {4 * 3600, 5 * 3600}
    ledger = run.records("reporting_export_jobs")
    assert ledger and all(r["time_zone"] == NEW_YORK for r in ledger)
    assert sum(r["rows_outside_window"] for r in ledger) > 0


@pytest.mark.parametrize("status", [401, 403, 500])
def test_me_refused_or_failing_reads_utc_with_one_warning(
    make_fake, rclock, caplog, status
) -> None:
    fake = make_fake(me_status=status)  # the workspace and its CSVs are on UTC
    with caplog.at_level(logging.WARNING):
        run = run_tap(reporting_config(fake), select=STREAMS)
    assert_true_instants(fake, run, windows())
    said = [
        r.getMessage() for r in caplog.records if "Reading reporting times as UTC" in r.getMessage()
    ]
    assert len(said) == 1
    assert f"GET /me answered HTTP {status}" in said[0] and "reporting_timezone" in said[0]
    assert len(fake.calls("GET", r"/me")) == (3 if status == 500 else 1)  # retried, then given up
    assert not zone_warnings(caplog)


def test_me_refused_with_new_york_csv_says_which_offset_fits(make_fake, rclock, caplog) -> None:
    fake = make_fake(timezone=NEW_YORK, me_status=403)
    config = reporting_config(
        fake, end_date="2023-11-01T00:00:00Z", reporting_datasets=["conversation"]
    )
    with caplog.at_level(logging.WARNING):
        run_tap(config, select=["reporting_conversation"])
    (warned,) = zone_warnings(caplog)
    # 2023-10-25 .. 2023-11-01: New York is on daylight time, UTC-04:00.
    assert "read in UTC (assumed: GET /me failed)" in warned
    assert "none when read at UTC-04:00" in warned


def first_occurrence(instant: str) -> str:
    """The instant the local text of `instant` denotes by the fold=0 rule (PEP 495)."""
    ts = unix(instant)
    if datetime.fromtimestamp(ts, ZoneInfo(NEW_YORK)).fold:  # the second 01:xx of the day
        ts -= 3600
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def test_dst_fall_back_window_is_exact_by_the_first_occurrence_rule(
    make_fake, rclock, caplog
) -> None:
    # 2023-11-01 .. 2023-11-08 holds 2023-11-05, when New York's 01:00-02:00 comes twice. The text
    # `01:30:00` cannot say which: the tap reads the first (EDT), so a time of the second (EST)
    # comes out exactly an hour early, and the window's log line counts the ambiguous ones.
    fake = make_fake(timezone=NEW_YORK)
    config = reporting_config(
        fake, start_date="2023-11-01T00:00:00Z", end_date="2023-11-08T00:00:00Z"
    )
    with caplog.at_level(logging.INFO):
        run = run_tap(config, select=STREAMS)
    window = (unix("2023-11-01T00:00:00Z"), unix("2023-11-08T00:00:00Z"))
    first, second = 0, 0
    for stream in STREAMS:
        dataset = stream.removeprefix("reporting_")
        want = expected_records(fake, dataset, window)
        got = run.records(stream)
        assert len(got) == len(want)
        ambiguous = 0
        for record, row in zip(got, want, strict=True):
            for prop in time_props(fake, dataset):
                if row[prop] is None:
                    continue
                assert record[prop] == first_occurrence(row[prop]), (prop, row[prop])
                local = datetime.fromtimestamp(unix(row[prop]), ZoneInfo(NEW_YORK))
                if local.date().isoformat() == "2023-11-05" and local.hour == 1:
                    ambiguous += 1
                    first += record[prop] == row[prop]
                    second += record[prop] != row[prop]
        done = next(
            r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{stream} window ")
        )
        assert (f"({ambiguous} time(s) in a repeated DST hour" in done) == (ambiguous > 0), done
    assert first > 0 and second > 0  # both readings of the repeated hour are in the data
    assert not zone_warnings(caplog)


def test_dst_spring_forward_window_is_exact(make_fake, rclock, monkeypatch) -> None:
    # 2024-03-10: New York skips 02:00-03:00; no instant is written in the skipped hour, so every
    # time of a window across the change is its exact instant.
    start, end = unix("2024-03-06T00:00:00Z"), unix("2024-03-13T00:00:00Z")
    monkeypatch.setattr(ReportingStream, "wall_clock", staticmethod(lambda: float(end + DAY)))
    fake = make_fake(timezone=NEW_YORK, start=start - 5 * DAY, end=end + DAY)
    config = reporting_config(
        fake, start_date="2024-03-06T00:00:00Z", end_date="2024-03-13T00:00:00Z"
    )
    run = run_tap(config, select=STREAMS)
    assert assert_true_instants(fake, run, [(start, end)]) > 100
    offsets = {
        datetime.fromtimestamp(unix(r["conversation_started_at"]), ZoneInfo(NEW_YORK)).utcoffset()
        for r in run.records("reporting_conversation")
    }
    assert offsets == {timedelta(hours=-5), timedelta(hours=-4)}  # the window crosses the change
