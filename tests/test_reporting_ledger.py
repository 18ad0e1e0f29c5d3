"""reporting_export_jobs (one record per reporting job) and Intercom's reporting retention."""

from __future__ import annotations

import logging

import pytest

from tap_intercom_export.reporting.streams import ReportingStream
from tests.conftest import DAY, NOW, run_tap
from tests.oracle import iso, unix
from tests.reporting_helpers import STREAMS, enqueues, rclock, reporting_config, windows

__all__ = ["rclock"]

LEDGER = "reporting_export_jobs"


def test_one_ledger_record_per_job_before_its_window_is_bookmarked(make_fake, rclock) -> None:
    fake = make_fake(timezone="Asia/Kolkata")
    run = run_tap(reporting_config(fake), select=[*STREAMS, LEDGER])

    records = run.records(LEDGER)
    bodies = enqueues(fake)
    assert len(records) == len(bodies) == len(STREAMS) * len(windows())
    assert len({r["job_identifier"] for r in records}) == len(records)
    for record in records:
        stream = f"reporting_{record['dataset']}"
        start, end = unix(record["window_start"]), unix(record["window_end"])
        assert (start, end) in windows() and (record["start_time"], record["end_time"]) == (
            start,
            end,
        )
        assert record["job_identifier"].startswith("rep") and record["status"] == "complete"
        rows = [r for r in run.records(stream) if r["export_window_start"] == iso(start)]
        assert (
            record["rows"] == len(rows) == len(fake.reporting.rows(record["dataset"], start, end))
        )
        assert {r["export_job_id"] for r in rows} == {record["job_identifier"]}
        assert record["time_zone"] == "Asia/Kolkata" and record["rows_outside_window"] == 0
        assert record["attributes"] == len(fake.reporting.dataset(record["dataset"]).attributes)
        assert record["container"] == "csv.gz" and record["download_bytes"] > 0

    # Kill-safe order: a window's ledger record goes out before the STATE that moves its stream's
    # bookmark past the window.
    for i, message in enumerate(run.messages):
        if message["type"] != "RECORD" or message["stream"] != LEDGER:
            continue
        record = message["record"]
        stream = f"reporting_{record['dataset']}"
        earlier = [m["value"] for m in run.messages[:i] if m["type"] == "STATE"]
        bookmarks = [
            s.get("bookmarks", {}).get(stream, {}).get("replication_key_value") for s in earlier
        ]
        assert all(b is None or unix(b) < unix(record["window_end"]) for b in bookmarks), record


def test_ledger_not_selected_costs_nothing(make_fake, rclock) -> None:
    fake = make_fake()
    run = run_tap(reporting_config(fake), select=STREAMS)
    assert not run.records(LEDGER)
    assert LEDGER not in run.state.get("bookmarks", {})
    assert all(run.records(s) for s in STREAMS)


def test_reporting_streams_and_ledger_stay_record_with_batch_config(
    make_fake, rclock, tmp_path
) -> None:
    fake = make_fake()
    batch = {
        "encoding": {"format": "jsonl", "compression": "none"},
        "storage": {"root": f"file://{tmp_path}"},
    }
    config = reporting_config(fake, reporting_datasets=["tickets"], batch_config=batch)
    run = run_tap(config, select=["reporting_tickets", LEDGER])
    assert len(run.records(LEDGER)) == len(windows())
    assert len(run.records("reporting_tickets")) == sum(r["rows"] for r in run.records(LEDGER)) > 0
    assert not [m for m in run.messages if m["type"] == "BATCH"]


def test_ledger_alone_emits_nothing_and_fails_nothing(make_fake, rclock) -> None:
    fake = make_fake()
    run = run_tap(reporting_config(fake), select=[LEDGER])
    assert not run.records(LEDGER) and enqueues(fake) == []
    assert fake.calls("GET", r"/me") == []


# -- retention ---------------------------------------------------------------------------------


def floor(days: int) -> int:
    """The first second a run may start from: a day inside `days` before the (virtual) now."""
    now = NOW + 3600  # rclock's wall clock
    return now - days * DAY + DAY


@pytest.mark.parametrize(("before", "cut"), [(0, False), (1, True), (30 * DAY, True)])
def test_start_older_than_the_retention_moves_forward_with_one_warning(
    make_fake, rclock, caplog, before, cut
) -> None:
    fake = make_fake()
    days = 10
    start = floor(days) - before
    config = reporting_config(fake, start_date=iso(start), reporting_retention_days=days)
    with caplog.at_level(logging.WARNING):
        run = run_tap(config, select=STREAMS)
    starts = {b["start_time"] for b in enqueues(fake)}
    assert min(starts) == (floor(days) if cut else start)
    said = [r.getMessage() for r in caplog.records if "reporting_retention_days" in r.getMessage()]
    if not cut:
        assert said == []
        return
    (warning,) = said  # one for every stream
    assert all(s in warning for s in STREAMS)
    assert (
        f"would start at {iso(start)}" in warning and f"starting at {iso(floor(days))}" in warning
    )
    assert "reporting_retention_days=1095" in warning
    assert all(run.records(s) for s in STREAMS)


def test_retention_defaults_to_two_years(make_fake, rclock, monkeypatch, caplog) -> None:
    fake = make_fake()
    # Now is two years and a week after START (2023-10-25): the first week is gone.
    now = unix("2025-11-01T00:00:00Z")
    monkeypatch.setattr(ReportingStream, "wall_clock", staticmethod(lambda: float(now)))
    config = reporting_config(fake, reporting_datasets=["tickets"])
    with caplog.at_level(logging.WARNING):
        run_tap(config, select=["reporting_tickets"])
    assert min(b["start_time"] for b in enqueues(fake)) == now - 729 * DAY
    assert "before the 730 days Intercom keeps reporting data" in caplog.text
