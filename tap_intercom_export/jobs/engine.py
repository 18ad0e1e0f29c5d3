"""The export-job engine: one job per window, from creation to a verified archive on disk.

Each job is created, polled, downloaded, verified, retried, split, resumed and canceled as
Intercom's asynchronous exports require.

The download step (stream to disk, open, check, fetch again) is jobs/download.py.

Everything that waits takes an injected `clock`/`sleep`, so tests drive hours of polling in
milliseconds. All HTTP goes through an `ExportClient` (jobs/api.py), which speaks through the
stream's SDK session, authenticator and retry path; what differs between Intercom's exports
(endpoints, job model, archive checks) lives in each source's client.

Intercom's rules this engine is built around (https://developers.intercom.com/docs/references/
rest-api/api.intercom.io/data-export):
- one active export job per workspace: a second create is answered 429;
- jobs fail after about 12 hours (status `failed`, HTTP 504 on the status call);
- a completed job's download expires two days after completion;
- a job returns at most the first 10 million rows;
- window bounds are inclusive unix seconds on the messages' creation time.

Overlap (`ExportSettings.jobs_ahead`): Intercom's lock is on *pending* jobs only, so once a
window's job is complete and its archive is on disk, the next window's job is created before the
finished window is handed to the consumer: Intercom works on it while the rows are emitted.
"""

from __future__ import annotations

import time
import typing as t
from collections import deque

import requests

from tap_intercom_export.errors import (
    ExportError,
    ExportJobActiveError,
    ExportJobFailedError,
    IntercomAPIError,
    IntercomNotFoundError,
    IntercomRetriableError,
)
from tap_intercom_export.jobs.api import ExportClient, Job, SplitWindow
from tap_intercom_export.jobs.download import DownloadGoneError, download_archive
from tap_intercom_export.jobs.model import ExportSettings, WindowExport
from tap_intercom_export.logs import duration
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    import logging

    from tap_intercom_export.jobs.windows import Window


#: While a job is pending: a progress line this long after it started, then every PROGRESS_EVERY.
PROGRESS_FIRST = 30.0
PROGRESS_EVERY = 180.0


class _RetryJobError(Exception):
    """Internal: the job for this window must be created again (reason in the message)."""


class ExportRunner:
    """Runs one export job per window, resuming, retrying and splitting as Intercom requires."""

    def __init__(  # noqa: PLR0913 - the clocks and hooks are injected for tests
        self,
        client: ExportClient,
        settings: ExportSettings,
        *,
        logger: logging.Logger,
        on_job_created: t.Callable[[Window, Job], None] | None = None,
        clock: t.Callable[[], float] = time.monotonic,
        wall: t.Callable[[], float] = time.time,
        sleep: t.Callable[[float], None] = time.sleep,
        temp_dir: str | None = None,
    ) -> None:
        """Wire the runner to its client, settings, logger and (injectable) clocks."""
        self.client = client
        self.settings = settings
        self.logger = logger
        self.on_job_created = on_job_created or (lambda _window, _job: None)
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.temp_dir = temp_dir
        self.current_job: Job | None = None
        self._stale_jobs: list[str] = []
        #: Jobs created ahead by this run, not yet polled: window -> (job, wall time created).
        self.ahead: dict[Window, tuple[Job, int]] = {}

    # -- the plan ---------------------------------------------------------------------------

    def run(
        self,
        windows: t.Iterable[Window],
        reused: t.Mapping[Window, str] | None = None,
        stale: t.Iterable[str] = (),
    ) -> t.Iterator[WindowExport]:
        """Export each window in order; yield each one with its archive still on disk.

        The archive is removed as soon as the consumer asks for the next window (or stops).
        `reused` are jobs earlier runs left in flight for windows of this plan (jobs/windows.py
        `plan_around`); `stale` are their other jobs, canceled if they block a create.
        """
        queue = deque(windows)
        known = dict(reused or {})
        self._stale_jobs = list(stale)
        while queue:
            window = queue.popleft()
            try:
                result = self._export_window(
                    window, known.pop(window, None), self.ahead.pop(window, None)
                )
            except SplitWindow as why:
                if window.seconds <= self.settings.min_window_seconds:
                    msg = (
                        f"Export window {window} {why}, and it cannot be split below "
                        f"{self.settings.min_window_seconds // 60} minutes: export it later "
                        "or contact Intercom support."
                    )
                    raise ExportError(msg) from why
                first, second = window.halves()
                self.logger.warning("Splitting export window %s: %s.", window, why)
                queue.appendleft(second)
                queue.appendleft(first)
                continue
            try:
                self._create_ahead(queue, known)
                yield result
            finally:
                if result.archive:
                    result.archive.path.unlink(missing_ok=True)

    def _create_ahead(self, queue: t.Sequence[Window], known: t.Mapping[Window, str]) -> None:
        """Create the jobs of the next `jobs_ahead` windows, as far as Intercom lets us now."""
        for window in list(queue)[: self.settings.jobs_ahead]:
            if window in self.ahead or window in known:
                continue
            try:
                job = self.client.create(window)
            except ExportJobActiveError:
                # Another job is pending (ours or someone else's): this window's job is
                # created in turn, when it is this window's turn to be exported.
                self.logger.info(
                    "Not creating the job for %s ahead: another export job is pending.", window
                )
                return
            except (
                IntercomAPIError,
                IntercomRetriableError,
                ExportError,
                requests.RequestException,
            ) as exc:
                # The finished window's rows come first; creating in turn retries, or fails
                # with its own clear error, after they are emitted and bookmarked.
                self.logger.warning(
                    "Could not create the job for %s ahead (%s): creating it in turn.", window, exc
                )
                return
            self.ahead[window] = (job, int(self.wall()))
            self.logger.info(
                "Created export job %s ahead for window %s (created_at %d..%d).",
                job.job_id,
                window,
                window.created_at_after,
                window.created_at_before,
            )
            self.on_job_created(window, job)

    # -- one window -------------------------------------------------------------------------

    def _export_window(
        self, window: Window, resume_id: str | None, ahead: tuple[Job, int] | None = None
    ) -> WindowExport:
        attempts = failures = 0
        while True:
            attempts += 1
            if ahead:
                job, resumed, created_at = ahead[0], False, t.cast("int | None", ahead[1])
                ahead = None
            else:
                job, resumed, created_at = self._create_or_resume(window, resume_id)
            resume_id = None
            try:
                return self._finish(window, job, resumed, created_at, attempts)
            except _RetryJobError as why:
                failures += why.args[0] in ("failed", "canceled")
                if failures >= self.settings.create_attempts:
                    msg = f"its job failed or was canceled {failures} times (last: {job.job_id})"
                    raise SplitWindow(msg) from why
                if attempts >= self.settings.max_jobs_per_window:
                    msg = (
                        f"Export window {window} needed {attempts} jobs and still has no "
                        f"readable download (last job {job.job_id} {why.args[-1]}): "
                        "check the workspace's exports in Intercom, then run the tap again."
                    )
                    raise ExportError(msg) from why
                self.logger.warning(
                    "Export job %s for window %s %s: creating it again.",
                    job.job_id,
                    window,
                    why.args[1] if len(why.args) > 1 else why,
                )

    def _create_or_resume(
        self, window: Window, resume_id: str | None
    ) -> tuple[Job, bool, int | None]:
        if resume_id:
            try:
                job = self.client.status(resume_id)
            except IntercomNotFoundError:
                self.logger.warning(
                    "In-flight export job %s from state no longer exists: creating a new one.",
                    resume_id,
                )
            except ExportJobFailedError:
                self.logger.warning(
                    "In-flight export job %s from state failed: creating a new one.", resume_id
                )
            else:
                if job.status in self.client.active_statuses + self.client.done_statuses + (
                    "no_data",
                ):
                    self.logger.info(
                        "Resuming export job %s for window %s (status %s) from state.",
                        job.job_id,
                        window,
                        job.status,
                    )
                    return job, True, None
                self.logger.warning(
                    "In-flight export job %s from state is %s: creating a new one.",
                    resume_id,
                    job.status,
                )
        job = self._create(window)
        return job, False, int(self.wall())

    def _create(self, window: Window) -> Job:
        started = self.clock()
        deadline = started + self.settings.timeout
        wait = min(self.settings.poll_interval, 30.0) or 1.0
        refused = False
        while True:
            try:
                job = self.client.create(window)
            except ExportJobActiveError:
                if self._stale_jobs:
                    stale = self._stale_jobs.pop(0)
                    self.logger.warning(
                        "Another export job is active; canceling our own stale job %s from state.",
                        stale,
                    )
                    self._cancel_quietly(stale)
                    continue
                now = self.clock()
                if now >= deadline:
                    msg = (
                        f"Another {self.client.label} job is active in this Intercom workspace "
                        f"and did not finish within export_timeout_seconds={self.settings.timeout:g}: "
                        "wait for it to finish (or cancel it in Intercom), then run the tap again."
                    )
                    raise ExportError(msg) from None
                if not refused:
                    refused = True
                    # The state names no job of ours that could be the pending one: it is not
                    # ours to cancel (README, Troubleshooting: "waits for another export job").
                    self.logger.warning(
                        "Intercom refuses a new %s job: another one is pending in this workspace "
                        "(%s) and the state names no job of ours. It is probably the job of an "
                        "earlier run that stopped before its loader saved the state, or another "
                        "tool's export. Waiting for it to finish (up to export_timeout_seconds="
                        "%g, checking every %.0f s to 5 min), then creating the job for %s.",
                        self.client.label,
                        self.client.lock_rule,
                        self.settings.timeout,
                        wait,
                        window,
                    )
                else:
                    self.logger.info(
                        "Still waiting for the other pending %s job (%s so far); next try in "
                        "%.0f s.",
                        self.client.label,
                        duration(now - started),
                        wait,
                    )
                self.sleep(wait)
                wait = min(wait * 2, 300.0)
                continue
            self.current_job = job
            self.logger.info(
                "%s export job %s for window %s (created_at %d..%d).",
                "Using the" if job.enqueued_ahead else "Created",
                job.job_id,
                window,
                window.created_at_after,
                window.created_at_before,
            )
            self.on_job_created(window, job)
            return job

    def _cancel_quietly(self, job_id: str) -> None:
        try:
            self.client.cancel(job_id)
        except Exception as exc:  # noqa: BLE001 - canceling is best effort
            self.logger.warning("Could not cancel export job %s: %s", job_id, exc)

    def _finish(
        self,
        window: Window,
        job: Job,
        resumed: bool,  # noqa: FBT001 - private, called in one place with a named variable
        created_at: int | None,
        attempts: int,
    ) -> WindowExport:
        self.current_job = job
        started = self.clock()
        job = self._poll(window, job)
        result = WindowExport(
            window=window,
            job=job,
            archive=None,
            attempts=attempts,
            resumed=resumed,
            created_at=created_at,
            completed_at=int(self.wall()),
            poll_seconds=self.clock() - started,
        )
        if job.status == "no_data":
            self.logger.info("Export job %s for window %s: no data.", job.job_id, window)
            self.current_job = None
            return result
        if job.download_expires_at is not None and job.download_expires_at <= self.wall():
            raise _RetryJobError(
                "expired",  # noqa: EM101 - a reason code, not a message
                f"has a download that expired at {iso(job.download_expires_at)}",
            )
        self._download(result)
        self.current_job = None
        return result

    def _poll(self, window: Window, job: Job) -> Job:
        started = self.clock()
        deadline = started + self.settings.timeout
        last = None
        # Small windows finish in seconds: poll quickly first, then settle on the interval.
        wait = 1.0
        # A person watching a wait of hours sees it move: each new status, and in between a
        # line soon after the start, then every few minutes.
        note_at = started + PROGRESS_FIRST
        while True:
            now = self.clock()
            if job.status != last:
                self.logger.info(
                    "Export job %s for window %s is %s (after %s).",
                    job.job_id,
                    window,
                    job.status or "without status",
                    duration(now - started),
                )
                last = job.status
            elif now >= note_at:
                self.logger.info(
                    "Export job %s for window %s: Intercom still reports %s after %s "
                    "(checking every %s; jobs can take hours, a stopped run resumes this one).",
                    job.job_id,
                    window,
                    job.status,
                    duration(now - started),
                    duration(self.settings.poll_interval),
                )
                note_at = now + PROGRESS_EVERY
            if job.status in self.client.done_statuses or job.status == "no_data":
                return job
            if job.status == "failed":
                raise _RetryJobError("failed", "failed on Intercom's side")  # noqa: EM101 - a reason code, not a message
            if job.status in ("canceled", "cancelled"):
                raise _RetryJobError("canceled", "was canceled (not by this tap)")  # noqa: EM101 - a reason code, not a message
            if job.status not in self.client.active_statuses:
                msg = (
                    f"Export job {job.job_id} for window {window} has status {job.status!r}, "
                    "which this tap does not know: check the job in Intercom and report it."
                )
                raise ExportError(msg)
            if self.clock() >= deadline:
                msg = (
                    f"Export job {job.job_id} for window {window} is still {job.status} after "
                    f"export_timeout_seconds={self.settings.timeout:g}. It keeps running in "
                    "Intercom and the next run resumes it from the state."
                )
                raise ExportError(msg)
            self.sleep(min(wait, self.settings.poll_interval, max(deadline - self.clock(), 0)))
            wait = min(wait * 2, self.settings.poll_interval)
            try:
                job = self.client.status(job.job_id)
            except ExportJobFailedError as exc:
                raise _RetryJobError("failed", f"failed on Intercom's side ({exc})") from exc  # noqa: EM101 - a reason code, not a message

    def _download(self, result: WindowExport) -> None:
        try:
            download_archive(
                self.client,
                result,
                attempts=self.settings.download_attempts,
                temp_dir=self.temp_dir,
                clock=self.clock,
                logger=self.logger,
            )
        except DownloadGoneError as exc:
            raise _RetryJobError("expired", "has no download any more (HTTP 404)") from exc  # noqa: EM101 - a reason code, not a message

    def cancel_current(self) -> None:
        """Cancel the job being polled and those created ahead (used on Ctrl-C).

        Completed jobs are left alone.
        """
        jobs = [self.current_job] if self.current_job else []
        jobs += [job for job, _ in self.ahead.values()]
        for job in jobs:
            try:
                status = self.client.status(job.job_id)
            except Exception:  # noqa: BLE001 - we are shutting down
                status = job
            if status.status in self.client.done_statuses or status.status == "no_data":
                continue
            self.logger.warning("Canceling export job %s on interrupt.", job.job_id)
            self._cancel_quietly(job.job_id)
