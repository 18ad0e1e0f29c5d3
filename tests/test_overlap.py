"""Overlapped export jobs (export_jobs_ahead=1) give what one job after another gives.

The next window's job is created as soon as a
window is downloaded, and everything else (records, STATE, resume, Ctrl-C, lookback, splits,
the row cap) is what one job after another gives.
"""

from __future__ import annotations

import os
import signal

import pytest
from fake_intercom.exports import FakeJob

from tap_intercom_export.tap import TapIntercomExport
from tests.conftest import DAY, VirtualClock, export_config, export_streams
from tests.conftest import run_tap as run_any
from tests.oracle import unix

START = unix("2023-10-25T00:00:00Z")
# Timings follow the virtual clock, which differs between two runs of one test.
TIMINGS = ("poll_seconds", "download_seconds", "created_at", "completed_at")


def run_tap(config, state=None, *, select=None, raise_errors=True):
    """Run the message export streams only (the event streams have nothing to do with jobs)."""
    return run_any(config, state, select=select or export_streams(), raise_errors=raise_errors)


def creates(fake) -> list[int]:
    return [r.body["created_at_after"] for r in fake.calls("POST", "/export/content/data")]


def comparable(run) -> list[dict]:
    """Every RECORD, with the export jobs' timings left out."""
    out = []
    for m in run.messages:
        if m["type"] == "RECORD":
            record = {k: v for k, v in m["record"].items() if k not in TIMINGS}
            out.append({"stream": m["stream"], "record": record})
    return out


def both_ways(make_fake, scenario, fake_kwargs=None, **config):
    """Run `scenario(fake, config)` one job after another and overlapped, on fresh fakes."""
    runs = []
    for ahead in (0, 1):
        fake = make_fake(**(fake_kwargs or {}))
        runs.append((fake, scenario(fake, export_config(fake, export_jobs_ahead=ahead, **config))))
    return runs


def test_next_job_is_created_before_the_window_is_emitted(make_fake, clock) -> None:
    fake = make_fake()
    run = run_tap(export_config(fake))
    # While window 1 is emitted, job 2 exists and is in the state; window 1's bookmark has not
    # moved yet.
    during = [
        s
        for s in run.states
        if len(s["bookmarks"]["message_export_jobs"].get("in_flight_jobs", [])) > 1
    ]
    assert during, "no STATE shows a job created ahead"
    first = during[0]["bookmarks"]
    open_jobs = [j["job_identifier"] for j in first["message_export_jobs"]["in_flight_jobs"]]
    assert open_jobs[:2] == ["job0001", "job0002"]
    assert first["message_receipts"].get("replication_key_value") in (
        None,
        "2023-10-25T00:00:00+00:00",
    )
    # Job 2 was created right after job 1's download, before window 1's first record.
    log = [(r.method, r.path) for r in fake.log]
    assert log.index(("POST", "/export/content/data"), 1) < log.index(
        ("GET", "/export/content/data/job0002")
    )
    receipts = run.records("message_receipts")
    assert len(receipts) == 20 * 24
    end = run.state["bookmarks"]["message_export_jobs"]
    assert (
        end["in_flight_jobs"] == []
        and "in_flight_job" not in end
        and "in_flight_jobs_ahead" not in end
    )


def test_same_records_and_state_as_one_after_another(make_fake, clock) -> None:
    (_, seq), (_, ovl) = both_ways(make_fake, lambda _fake, cfg: run_tap(cfg))
    assert comparable(seq) == comparable(ovl)
    assert seq.positions == ovl.positions


def test_lookback_with_overlap(make_fake, clock) -> None:
    def scenario(fake, cfg):
        streams = ["message_export_jobs", "message_opens", "message_receipts"]
        first = run_tap({**cfg, "end_date": "2023-11-08T00:00:00Z"}, select=streams)
        # interval 0: the lookback is due on the second run (a first sync starts the interval).
        lookback = {"export_lookback_days": 3, "export_lookback_interval_hours": 0}
        return run_tap({**cfg, **lookback}, state=first.state, select=streams)

    (f0, seq), (f1, ovl) = both_ways(make_fake, scenario)
    assert creates(f0) == creates(f1)
    assert comparable(seq) == comparable(ovl)
    assert seq.positions == ovl.positions
    assert ovl.records("message_receipts")[0]["received_at"] == "2023-11-05T00:00:00+00:00"


def test_row_cap_splits_with_overlap(make_fake, clock) -> None:
    (_f0, seq), (_f1, ovl) = both_ways(
        make_fake, lambda _fake, cfg: run_tap(cfg), {"row_limit": 50}, export_row_limit=50,
        end_date="2023-11-08T00:00:00Z",
    )  # fmt: skip
    assert comparable(seq) == comparable(ovl)
    assert seq.positions == ovl.positions
    ids = [r["receipt_id"] for r in ovl.records("message_receipts")]
    assert len(ids) == len(set(ids)) == 14 * 24
    assert len(ovl.records("message_export_jobs")) == 8


def test_failed_job_split_with_overlap(make_fake, clock) -> None:
    def scenario(fake, cfg):
        # Window 2's jobs fail twice (the first created ahead): it is split in halves.
        fake.exports.next_scripts = [["completed"], ["failed"], ["failed"]]
        return run_tap(cfg)

    (_, seq), (_, ovl) = both_ways(make_fake, scenario, end_date="2023-11-08T00:00:00Z")
    assert comparable(seq) == comparable(ovl)
    assert seq.positions == ovl.positions
    windows = [j["window_start"][:10] for j in ovl.records("message_export_jobs")]
    assert windows == ["2023-10-25", "2023-11-01", "2023-11-04"]


def test_resume_after_kill_reuses_the_job_created_ahead(make_fake, clock) -> None:
    fake = make_fake()
    config = export_config(fake, end_date="2023-11-08T00:00:00Z")
    first = run_tap(config)
    # The STATE a run killed in window 1's emission leaves: window 1 not done, job 2 ahead.
    killed = next(
        s
        for s in first.states
        if len(s["bookmarks"]["message_export_jobs"].get("in_flight_jobs", [])) > 1
    )
    again = run_tap(config, state=killed)
    jobs = [(j["job_identifier"], j["resumed"]) for j in again.records("message_export_jobs")]
    assert jobs == [("job0001", True), ("job0002", True)]
    assert len(creates(fake)) == 2  # nothing created again
    assert [r["receipt_id"] for r in again.records("message_receipts")] == [
        r["receipt_id"] for r in first.records("message_receipts")
    ]
    assert again.positions == first.positions


def test_stale_ahead_job_is_canceled_when_it_blocks(make_fake, clock) -> None:
    fake = make_fake()
    fake.exports.jobs["job0099"] = FakeJob("job0099", 0, 10, ["pending"])
    state = {"bookmarks": {"message_export_jobs": {
        "in_flight_job": None,
        "in_flight_jobs_ahead": [{"job_identifier": "job0099", "window_start": "2020-01-01T00:00:00+00:00",
                                  "window_end": "2020-01-08T00:00:00+00:00"}],
    }}}  # fmt: skip
    run = run_tap(export_config(fake, end_date="2023-11-01T00:00:00Z"), state=state)
    assert fake.exports.jobs["job0099"].status == "canceled"
    assert len(run.records("message_receipts")) == 7 * 24


def test_someone_elses_pending_job_only_skips_the_ahead_create(
    make_fake, clock, monkeypatch
) -> None:
    fake = make_fake()
    other = FakeJob("someone-else", 0, 10, ["pending"])
    from tap_intercom_export.content import streams

    remember = streams.MessageExportJobsStream.remember_job

    def someone_else_starts_a_job(self, window, job) -> None:
        # Another export starts while our job 1 is polled: the job for window 2 cannot be
        # created ahead, and is created in turn once the other job is done.
        fake.exports.jobs.setdefault(other.job_id, other)
        remember(self, window, job)

    def sleep_and_finish_other(seconds: float) -> None:
        clock.sleeps.append(seconds)
        clock.now += seconds
        if len(clock.sleeps) > 6:
            other.status = "completed"

    monkeypatch.setattr(streams.MessageExportJobsStream, "remember_job", someone_else_starts_a_job)
    monkeypatch.setattr(
        streams.MessageExportJobsStream, "sleep", staticmethod(sleep_and_finish_other)
    )
    run = run_tap(export_config(fake, end_date="2023-11-08T00:00:00Z"))
    assert [j["job_identifier"] for j in run.records("message_export_jobs")] == [
        "job0001",
        "job0002",
    ]
    assert fake.calls("POST", "/export/content/data")[1].body["created_at_after"] == START + 7 * DAY
    assert len(run.records("message_receipts")) == 14 * 24
    assert (
        run.state["bookmarks"]["message_receipts"]["replication_key_value"]
        == "2023-11-08T00:00:00+00:00"
    )


def test_ctrl_c_while_emitting_cancels_the_job_created_ahead(make_fake, clock, monkeypatch) -> None:
    fake = make_fake(status_script=["pending", "completed"])
    fake.exports.next_scripts = [["pending", "completed"], ["pending"] * 1000]
    write = TapIntercomExport.write_message

    def interrupt_on_first_receipt(self, message) -> None:
        write(self, message)
        if getattr(message, "stream", None) == "message_receipts":
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(TapIntercomExport, "write_message", interrupt_on_first_receipt)
    run = run_tap(export_config(fake, end_date="2023-11-08T00:00:00Z"), raise_errors=False)
    # The SDK answers SIGINT by exiting; our handler cancels on the way out.
    assert isinstance(run.error, (KeyboardInterrupt, SystemExit))
    assert fake.exports.jobs["job0002"].status == "canceled"
    assert fake.exports.jobs["job0001"].status == "completed"
    assert fake.calls("POST", r"/export/cancel/job0002")


def interrupt_on_second_poll(monkeypatch: pytest.MonkeyPatch, clock: VirtualClock) -> None:
    """Ctrl-C (SIGINT to this process) during the export's second wait between polls."""
    from tap_intercom_export.content import streams

    def sleep_then_interrupt(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(
        streams.MessageExportJobsStream, "sleep", staticmethod(sleep_then_interrupt)
    )


@pytest.mark.parametrize("ahead", [0, 1])
def test_ctrl_c_while_polling_cancels_the_job_being_polled(
    make_fake, clock, monkeypatch, caplog, ahead
) -> None:
    # In process (tests/test_reliability.py does it to the installed command), where mutation
    # testing reaches: the job pending when Ctrl-C came is canceled, with or without one ahead.
    fake = make_fake(status_script=["pending"] * 1000)

    interrupt_on_second_poll(monkeypatch, clock)
    config = export_config(fake, end_date="2023-11-08T00:00:00Z", export_jobs_ahead=ahead)
    run = run_tap(config, raise_errors=False)
    assert isinstance(run.error, (KeyboardInterrupt, SystemExit))
    assert fake.exports.jobs["job0001"].status == "canceled"
    assert fake.calls("POST", r"/export/cancel/job0001")
    assert "Canceling export job job0001 on interrupt." in caplog.text


# A child process per run of the bench script: with the end-to-end tests.
@pytest.mark.e2e
def test_bench_overlap_smoke_run() -> None:
    """bench/bench_overlap.py runs and finds the same records and state both ways."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_overlap.py"
    out = subprocess.run(
        [sys.executable, str(bench), "--receipts", "300", "--windows", "3", "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert result["same_records"] and result["same_state"]
    assert result["windows"] == 3 and result["one_after_another_s"] > 0 and result["ratio"] > 0


@pytest.mark.parametrize("value", [2, -1, "1"])
def test_export_jobs_ahead_other_than_0_or_1_is_refused(value) -> None:
    from tap_intercom_export.errors import ConfigError
    from tap_intercom_export.settings import check_config

    with pytest.raises(ConfigError, match="export_jobs_ahead"):
        check_config({"access_token": "x", "export_jobs_ahead": value})


def test_a_failed_create_ahead_is_retried_in_turn(make_fake, clock, monkeypatch) -> None:
    from fake_intercom.core import error_body

    from tap_intercom_export.content import streams

    fake = make_fake()
    remember = streams.MessageExportJobsStream.remember_job

    def refuse_the_next_create(self, window, job) -> None:
        if job.job_id == "job0001":
            fake.inject(
                "POST", r"/export/content/data", 400, body=error_body("server_error", "try later")
            )
        remember(self, window, job)

    monkeypatch.setattr(streams.MessageExportJobsStream, "remember_job", refuse_the_next_create)
    run = run_tap(export_config(fake, end_date="2023-11-08T00:00:00Z"))
    assert [j["job_identifier"] for j in run.records("message_export_jobs")] == [
        "job0001",
        "job0002",
    ]
    assert len(fake.calls("POST", "/export/content/data")) == 3
    assert len(run.records("message_receipts")) == 14 * 24


def test_a_cancel_that_fails_is_a_warning_and_the_run_still_stops(
    make_fake, clock, monkeypatch, caplog
) -> None:
    fake = make_fake(status_script=["pending"] * 1000)
    fake.inject("POST", r"/export/cancel/.*", status=400, times=99)

    interrupt_on_second_poll(monkeypatch, clock)
    run = run_tap(export_config(fake, end_date="2023-11-08T00:00:00Z"), raise_errors=False)
    assert isinstance(run.error, (KeyboardInterrupt, SystemExit))
    assert fake.exports.jobs["job0001"].status == "pending"  # Intercom finishes it; resumed later
    assert "Could not cancel export job job0001: " in caplog.text
