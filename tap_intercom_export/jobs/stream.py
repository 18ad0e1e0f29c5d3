"""What every stream fed by the export-job engine shares (message export and reporting export).

Window bookmarks (a stream has every row up to the end of the last window it fully emitted),
the jobs in flight (jobs/inflight.py), the engine's injectable clocks, a session that streams
downloads, and STATE written at once when a job is created or a window is done.
"""

from __future__ import annotations

import time
import typing as t

from typing_extensions import override

from tap_intercom_export import sdk
from tap_intercom_export.client import IntercomStream
from tap_intercom_export.jobs.engine import ExportRunner
from tap_intercom_export.jobs.inflight import OpenJobs
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    import requests

    from tap_intercom_export.jobs.api import ExportClient, Job
    from tap_intercom_export.jobs.model import ExportSettings
    from tap_intercom_export.jobs.windows import Window


class ExportJobStream(IntercomStream):
    """A stream whose rows come from export jobs, one window at a time."""

    is_sorted = True
    # Bookmarks move back to a window's start while it is being emitted and forward to its end
    # once done; sort checks would refuse the first move.
    check_sorted = False
    #: Unix seconds this run has every row up to (the saved bookmark, then each window's end).
    high_water: int = 0

    #: The clock that decides "now" (the end of the last window); tests replace it.
    wall_clock: t.Callable[[], float] = staticmethod(time.time)
    #: How the engine waits between polls; tests replace it.
    sleep: t.Callable[[float], None] = staticmethod(time.sleep)
    #: How the engine measures elapsed time; tests replace it.
    monotonic: t.Callable[[], float] = staticmethod(time.monotonic)

    @property
    @override
    def requests_session(self) -> requests.Session:
        """The SDK session, set to stream bodies so downloads never sit in memory."""
        session = super().requests_session
        session.stream = True
        return session

    def advance_bookmark(self, window_end: int) -> None:
        """Record that this stream has every row up to `window_end`.

        A re-exported window never moves the bookmark back.
        """
        self.high_water = max(self.high_water, window_end)
        sdk.advance_bookmark(self, iso(self.high_water))

    def runner(
        self,
        client: ExportClient,
        settings: ExportSettings,
        on_job_created: t.Callable[[Window, Job], None],
    ) -> ExportRunner:
        """The export-job engine for this stream, on its clocks."""
        return ExportRunner(
            client,
            settings,
            logger=self.logger,
            on_job_created=on_job_created,
            clock=self.monotonic,
            wall=self.wall_clock,
            sleep=self.sleep,
        )

    def open_jobs(self) -> OpenJobs:
        """Jobs created and not yet fully emitted, as this stream's state holds them."""
        return OpenJobs.from_state(self.stream_state, self.logger)

    def remember_job(self, window: Window, job: Job) -> None:
        """Write a new job to STATE before it is polled, so that a killed run's next run resumes it.

        Intercom would answer a new create with 429 while it is pending.
        """
        jobs = self.open_jobs()
        jobs.created(window, job.job_id)
        self._write_jobs(jobs)

    def window_done(self, window: Window) -> None:
        """Every row of `window` is emitted: move the bookmark; later windows' jobs stay open."""
        jobs = self.open_jobs()
        jobs.done(window)
        self.advance_bookmark(window.end)
        self._write_jobs(jobs)

    def _write_jobs(self, jobs: OpenJobs) -> None:
        for key, value in jobs.state_values(self.stream_state).items():
            sdk.put_state(self, key, value)
        sdk.write_state_now(self)
