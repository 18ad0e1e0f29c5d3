"""Reporting export faults: 429, 400, transient 404, failed jobs, timeouts, kills, 403, settings."""

from __future__ import annotations

import logging

import pytest
from fake_intercom.core import error_body

from tap_intercom_export.errors import ConfigError, ExportError
from tap_intercom_export.reporting.streams import ReportingStream
from tap_intercom_export.tap import TapIntercomExport
from tests.conftest import run_tap, selection_catalog
from tests.reporting_helpers import STREAMS, enqueues, rclock, reporting_config, windows

__all__ = ["rclock"]
ENQUEUE = r"/export/reporting_data/enqueue"
BUSY = "Exceeded rate limit of 5 pending reporting dataset export jobs"


def tickets_config(fake, **overrides):
    """Only the tickets dataset: three windows."""
    return reporting_config(fake, reporting_datasets=["tickets"], **overrides)


def expected_tickets(fake) -> int:
    return sum(len(fake.reporting.rows("tickets", a, b)) for a, b in windows())


def test_five_pending_429_is_waited_out(make_fake, rclock) -> None:
    fake = make_fake()
    fake.inject("POST", ENQUEUE, 429, body=error_body("rate_limit_exceeded", BUSY), times=3)
    run = run_tap(tickets_config(fake), select=["reporting_tickets"])

    assert len(run.records("reporting_tickets")) == expected_tickets(fake)
    assert len(enqueues(fake)) == 3 + 3  # three refused, then one per window
    # The engine's own backoff, not the SDK's ten quick retries of a rate limit.
    assert rclock.sleeps[:3] == [5.0, 10.0, 20.0]


def test_five_pending_429_gives_up_after_the_timeout(make_fake, rclock) -> None:
    fake = make_fake()
    fake.reporting.foreign_pending = 5
    with pytest.raises(
        ExportError, match=r"Another reporting data export job .* export_timeout_seconds=600"
    ):
        run_tap(tickets_config(fake, export_timeout_seconds=600), select=["reporting_tickets"])


def test_enqueue_validation_400_says_what_to_do(make_fake, rclock) -> None:
    fake = make_fake()
    config = tickets_config(fake)
    catalog = selection_catalog(config, {"reporting_tickets"})
    # The workspace drops a custom attribute after the catalog was made.
    ds = fake.reporting.dataset("tickets")
    ds.attributes = [a for a in ds.attributes if a.name != "Priority level"]
    with pytest.raises(
        ExportError,
        match=r"attribute_ids invalid for tickets dataset: ticket_custom_attribute.1.*--discover",
    ):
        run_tap(config, catalog=catalog)


def test_transient_404_after_enqueue_is_tolerated(make_fake, rclock) -> None:
    fake = make_fake()
    fake.reporting.not_found_polls = 2
    run = run_tap(tickets_config(fake), select=["reporting_tickets"])
    assert len(run.records("reporting_tickets")) == expected_tickets(fake)
    assert len(enqueues(fake)) == 3


def test_lasting_404_of_a_fresh_job_fails(make_fake, rclock) -> None:
    fake = make_fake()
    fake.reporting.not_found_polls = 50
    with pytest.raises(Exception, match="Export job not found"):
        run_tap(tickets_config(fake), select=["reporting_tickets"])


def test_failed_job_is_retried(make_fake, rclock) -> None:
    fake = make_fake()
    fake.reporting.next_scripts = [["pending", "failed"]]
    run = run_tap(
        tickets_config(fake, reporting_max_concurrent_jobs=1), select=["reporting_tickets"]
    )
    assert len(run.records("reporting_tickets")) == expected_tickets(fake)
    assert [(b["start_time"], b["end_time"]) for b in enqueues(fake)] == [windows()[0], *windows()]


def test_window_failing_twice_is_split(make_fake, rclock) -> None:
    fake = make_fake()
    fake.reporting.next_scripts = [["pending", "failed"], ["pending", "failed"]]
    run = run_tap(
        tickets_config(fake, reporting_max_concurrent_jobs=1), select=["reporting_tickets"]
    )
    first = windows()[0]
    middle = first[0] + (first[1] - first[0]) // 2
    spans = [(b["start_time"], b["end_time"]) for b in enqueues(fake)]
    assert spans[:4] == [first, first, (first[0], middle), (middle, first[1])]
    got = {r["ticket_id"] for r in run.records("reporting_tickets")}
    assert got == {
        r["ticket_id"] for a, b in windows() for r in fake.reporting.rows("tickets", a, b)
    }


def test_timeout_leaves_the_job_for_the_next_run(make_fake, rclock) -> None:
    fake = make_fake(reporting_script=["pending"] * 1000)
    config = tickets_config(fake, export_timeout_seconds=120, reporting_window_days=30)
    failed = run_tap(config, select=["reporting_tickets"], raise_errors=False)
    assert isinstance(failed.error, ExportError) and "still pending" in str(failed.error)
    (job,) = failed.state["bookmarks"]["reporting_tickets"]["in_flight_jobs"]

    fake.reporting.jobs[job["job_identifier"]].script = ["pending", "complete"]
    again = run_tap(config, state=failed.state, select=["reporting_tickets"])
    assert len(enqueues(fake)) == 1
    assert len(again.records("reporting_tickets")) == len(
        fake.reporting.rows("tickets", *windows(days=30)[0])
    )


class Killed(BaseException):
    """The simulated SIGKILL."""


def test_killed_while_jobs_pending_resumes_them_without_enqueueing(
    make_fake, rclock, monkeypatch
) -> None:
    fake = make_fake()
    config = reporting_config(fake, reporting_window_days=30, reporting_max_concurrent_jobs=3)

    def kill(seconds: float) -> None:
        raise Killed

    monkeypatch.setattr(ReportingStream, "sleep", staticmethod(kill))
    killed = run_tap(config, select=STREAMS, raise_errors=False)
    assert isinstance(killed.error, Killed)
    # One job per dataset: the first polled, the other two enqueued ahead; all in STATE.
    in_flight = {s: b["in_flight_jobs"] for s, b in killed.state["bookmarks"].items()}
    assert sorted(len(v) for v in in_flight.values()) == [1, 1, 1]
    assert len(enqueues(fake)) == 3

    monkeypatch.setattr(ReportingStream, "sleep", staticmethod(rclock.sleep))
    again = run_tap(config, state=killed.state, select=STREAMS)
    assert len(enqueues(fake)) == 3  # nothing new enqueued
    for stream in STREAMS:
        dataset = stream.removeprefix("reporting_")
        records = again.records(stream)
        assert {r["export_job_id"] for r in records} == {in_flight[stream][0]["job_identifier"]}
        assert len(records) == len(fake.reporting.rows(dataset, *windows(days=30)[0]))
        assert again.state["bookmarks"][stream]["in_flight_jobs"] == []


def test_jobs_in_flight_stay_within_the_setting(make_fake, rclock) -> None:
    fake = make_fake()
    seen: list[int] = []
    enqueue = fake.reporting.enqueue

    def counting(req, m):
        seen.append(fake.reporting.pending())
        return enqueue(req, m)

    fake.routes = [(mth, pat, counting if h == enqueue else h) for mth, pat, h in fake.routes]
    run = run_tap(reporting_config(fake, reporting_max_concurrent_jobs=2), select=STREAMS)
    assert max(seen) == 1  # one other job pending when one is enqueued, never two
    assert len(enqueues(fake)) == 9 and sum(run.streams("reporting_").values()) > 0


def test_token_without_permission_warns_once_and_other_streams_work(
    make_fake, rclock, caplog
) -> None:
    fake = make_fake(reporting_forbidden=True)
    config = reporting_config(fake, end_date="2023-10-27T00:00:00Z")
    with caplog.at_level(logging.WARNING):
        names = [
            e["tap_stream_id"] for e in TapIntercomExport(config=config).catalog_dict["streams"]
        ]
    # Only the (empty) job ledger, offered whatever the token may do.
    assert [n for n in names if n.startswith("reporting_")] == ["reporting_export_jobs"]
    assert "message_receipts" in names
    warnings = [r.getMessage() for r in caplog.records if "Export reporting data" in r.getMessage()]
    assert len(warnings) == 1 and "403" in warnings[0]

    # A catalog made while the token had the permission: the sync still runs the other streams.
    fake.reporting.forbidden = False
    catalog = selection_catalog(config, {*STREAMS, "message_receipts"})
    fake.reporting.forbidden = True
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run = run_tap(config, catalog=catalog)
    assert run.records("message_receipts")
    assert not run.streams("reporting_")
    warnings = [r.getMessage() for r in caplog.records if "Export reporting data" in r.getMessage()]
    assert len(warnings) == 1


def test_catalog_rebuilds_streams_without_discovery(make_fake, rclock) -> None:
    fake = make_fake()
    config = tickets_config(fake)
    catalog = selection_catalog(config, {"reporting_tickets"})
    discoveries = len(fake.calls("GET", r"/export/reporting_data/get_datasets"))
    fake.inject("GET", r"/export/reporting_data/get_datasets", 500, times=100)
    run = run_tap(config, catalog=catalog)
    assert len(run.records("reporting_tickets")) == expected_tickets(fake)
    assert len(fake.calls("GET", r"/export/reporting_data/get_datasets")) == discoveries


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        (
            "reporting_window_days",
            0,
            "reporting_window_days=0 must be a number of days greater than zero",
        ),
        (
            "reporting_lookback_days",
            -1,
            "reporting_lookback_days=-1 must be a number of days, 0 or more",
        ),
        (
            "reporting_max_concurrent_jobs",
            6,
            "reporting_max_concurrent_jobs=6 must be a whole number from 1 to 5",
        ),
        (
            "reporting_datasets",
            "conversation",
            "reporting_datasets='conversation' must be a list of dataset ids",
        ),
        (
            "reporting_timezone",
            "EST-5",
            "reporting_timezone='EST-5' is not a time zone: use an IANA name such as America/",
        ),
        ("reporting_timezone", "America", "reporting_timezone='America' is not a time zone"),
        (
            "reporting_retention_days",
            0,
            "reporting_retention_days=0 must be a whole number of days, 1 or more",
        ),
        (
            "reporting_datasets",
            ["nope"],
            "reporting_datasets names dataset\\(s\\) this workspace does not list: nope",
        ),
    ],
)
def test_settings_are_validated_in_one_line(make_fake, setting, value, message) -> None:
    fake = make_fake()
    with pytest.raises(ConfigError, match=message) as err:
        _ = TapIntercomExport(
            config=reporting_config(fake, **{setting: value}), validate_config=False
        ).streams
    assert "\n" not in str(err.value)
