"""Reporting jobs in flight across datasets, up to `reporting_max_concurrent_jobs`.

The SDK syncs one stream after the other, and the engine (jobs/engine.py) runs one window at a
time. Reporting jobs are cheap for Intercom to run side by side (5 pending per workspace), so
while one dataset's job is polled, the next windows in sync order are enqueued ahead; when the
engine reaches such a window, the client claims the job instead of enqueueing another. Every
job enqueued ahead is written to its stream's STATE at once, so a killed run's next run resumes
it. Polling, downloading and retrying stay the engine's.
"""

from __future__ import annotations

import typing as t

from tap_intercom_export.errors import (
    ExportError,
    ExportJobActiveError,
    IntercomAPIError,
    IntercomAuthError,
)
from tap_intercom_export.jobs.windows import Window

if t.TYPE_CHECKING:
    import logging

    from tap_intercom_export.jobs.api import Job
    from tap_intercom_export.jobs.windows import JobPlan
    from tap_intercom_export.reporting.api import ReportingExportClient
    from tap_intercom_export.reporting.zone import ReportingZone

Key = tuple[str, Window]
PERMISSION_HINT = (
    "grant the access token the 'Export reporting data' permission (OAuth scope "
    "export_reporting_data) in Intercom's Developer Hub to get the reporting_* streams"
)


class ReportingScheduler:
    """Keeps up to `max_jobs` reporting jobs enqueued, in the order the streams will use them."""

    def __init__(self, max_jobs: int, logger: logging.Logger) -> None:
        """Start empty; streams `add` their plans when the first reporting stream syncs."""
        self.max_jobs = max(1, max_jobs)
        self.logger = logger
        self.prepared = False
        self.forbidden = False
        #: The zone this run reads reporting times in (zone.py), set when the first one syncs.
        self.zone: ReportingZone | None = None
        self.order: list[Key] = []
        self.clients: dict[str, ReportingExportClient] = {}
        self.recorders: dict[str, t.Callable[[Window, Job], None]] = {}
        #: Every window with a live job (enqueued ahead, or in the engine's hands).
        self.active: dict[Key, str] = {}
        #: Windows whose job was enqueued ahead and not claimed yet.
        self.unclaimed: set[Key] = set()
        self._full = False

    def add(
        self,
        stream: str,
        client: ReportingExportClient,
        plan: JobPlan,
        record: t.Callable[[Window, Job], None],
    ) -> None:
        """Plan one stream's windows, with the jobs a previous run left in flight for them."""
        self.clients[stream] = client
        self.recorders[stream] = record
        self.order += [(stream, w) for w in plan.windows]
        for window, job_id in plan.reused.items():
            self.active[(stream, window)] = job_id
            self.unclaimed.add((stream, window))

    def windows(self, stream: str) -> list[Window]:
        """The windows planned for `stream`."""
        return [w for s, w in self.order if s == stream]

    def claim(self, stream: str, window: Window) -> str | None:
        """The job enqueued ahead for this window, handed out once."""
        key = (stream, window)
        if key not in self.unclaimed:
            return None
        self.unclaimed.discard(key)
        return self.active.get(key)

    def started(self, stream: str, window: Window, job: Job) -> None:
        """The engine has a job for this window (a split window's parent is done with)."""
        for other in [k for k in self.active if k[0] == stream and k[1] != window]:
            if (
                other[1].start < window.end
                and window.start < other[1].end
                and other not in self.unclaimed
            ):
                self.active.pop(other)
        self.active[(stream, window)] = job.job_id
        self.top_up()

    def finished(self, stream: str, window: Window) -> None:
        """This window's rows are emitted: its job no longer counts."""
        self.active.pop((stream, window), None)
        self.unclaimed.discard((stream, window))
        if (stream, window) in self.order:
            self.order.remove((stream, window))
        self._full = False

    def forbid(self, exc: IntercomAuthError) -> None:
        """Intercom refused the token: say once what to grant, and stop every reporting stream."""
        if not self.forbidden:
            self.logger.warning("Reporting streams skipped: %s; %s.", exc, PERMISSION_HINT)
        self.forbidden = True

    def top_up(self) -> None:
        """Enqueue the next windows in sync order until `max_jobs` jobs are in flight."""
        for stream, window in list(self.order):
            if self._full or self.forbidden or len(self.active) >= self.max_jobs:
                return
            if (stream, window) in self.active:
                continue
            try:
                job = self.clients[stream].enqueue(window)
            except ExportJobActiveError:
                # Other jobs of the workspace hold the 5 slots: the engine waits when it needs one.
                self._full = True
                return
            except IntercomAuthError as exc:
                self.forbid(exc)
                return
            except (IntercomAPIError, ExportError) as exc:
                # The stream meets this error itself when it gets there, with its own message.
                self.logger.info("Not enqueueing %s %s ahead: %s", stream, window, exc)
                self._full = True
                return
            self.logger.info(
                "Enqueued reporting job %s ahead for %s %s.", job.job_id, stream, window
            )
            self.active[(stream, window)] = job.job_id
            self.unclaimed.add((stream, window))
            self.recorders[stream](window, job)
