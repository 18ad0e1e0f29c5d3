"""Ctrl-C's cancel (`ExportRunner.cancel_current`), and how a job's answer is read (`Job.from_api`).

On an interrupt the runner asks Intercom for the status of the job it was polling and of those it
created ahead, and cancels those still running. A job that completed between the last poll and
Ctrl-C, or that found no data, is left alone (its archive may be downloaded by the next run); a
status call that fails falls back to the status the runner last saw.
"""

from __future__ import annotations

import logging

import pytest

from tap_intercom_export.jobs.api import Job
from tap_intercom_export.jobs.engine import ExportRunner
from tap_intercom_export.jobs.model import ExportSettings
from tap_intercom_export.jobs.windows import Window


class Intercom:
    """A client whose status answers are given per job (an exception is raised)."""

    done_statuses = ("completed", "complete")

    def __init__(self, answers: dict[str, str | Exception]) -> None:
        """Answer each job's status call with these."""
        self.answers = answers
        self.asked: list[str] = []
        self.canceled: list[str] = []

    def status(self, job_id: str) -> Job:
        """GET the job's status (recorded)."""
        self.asked.append(job_id)
        answer = self.answers[job_id]
        if isinstance(answer, Exception):
            raise answer
        return Job(job_id, answer)

    def cancel(self, job_id: str) -> None:
        """POST its cancel (recorded)."""
        self.canceled.append(job_id)


def runner(intercom: Intercom, current: Job | None, *ahead: Job) -> ExportRunner:
    settings = ExportSettings(window_seconds=86_400, poll_interval=1, timeout=60)
    run = ExportRunner(intercom, settings, logger=logging.getLogger("test"))  # type: ignore[arg-type]
    run.current_job = current
    run.ahead = {Window(i * 86_400, (i + 1) * 86_400): (job, 0) for i, job in enumerate(ahead)}
    return run


@pytest.mark.parametrize(
    ("now", "canceled"),
    [
        ("pending", True),
        ("in_progress", True),
        ("completed", False),  # completed between the last poll and Ctrl-C
        ("complete", False),  # the reporting export's word for it
        ("no_data", False),
    ],
)
def test_the_polled_job_is_canceled_only_while_intercom_says_it_runs(now, canceled, caplog) -> None:
    intercom = Intercom({"job1": now})
    runner(intercom, Job("job1", "pending")).cancel_current()
    assert intercom.asked == ["job1"]
    assert intercom.canceled == (["job1"] if canceled else [])
    assert ("Canceling export job job1 on interrupt." in caplog.text) is canceled


def test_a_job_left_alone_does_not_stop_the_cancel_of_the_jobs_after_it() -> None:
    intercom = Intercom({"job1": "completed", "job2": "no_data", "job3": "pending"})
    current = Job("job1", "pending")
    runner(intercom, current, Job("job2", "pending"), Job("job3", "pending")).cancel_current()
    assert intercom.asked == ["job1", "job2", "job3"]
    assert intercom.canceled == ["job3"]


@pytest.mark.parametrize(("last_seen", "canceled"), [("pending", True), ("completed", False)])
def test_a_failing_status_call_falls_back_to_the_status_last_seen(last_seen, canceled) -> None:
    intercom = Intercom({"job1": ConnectionError("network is down")})
    runner(intercom, Job("job1", last_seen)).cancel_current()
    assert intercom.canceled == (["job1"] if canceled else [])


def test_nothing_to_cancel_asks_nothing() -> None:
    intercom = Intercom({})
    runner(intercom, None).cancel_current()
    assert intercom.asked == [] and intercom.canceled == []


@pytest.mark.parametrize(
    ("expires", "read"),
    [(1700000000, 1700000000), ("1700000000.5", 1700000000), ("", None), ("soon", None),
     ("inf", None), (None, None)],
)  # fmt: skip
def test_a_download_expiry_that_is_not_a_time_is_read_as_unknown(expires, read) -> None:
    job = Job.from_api(
        {"job_identifier": "j", "status": "completed", "download_expires_at": expires}
    )
    assert job.download_expires_at == read
