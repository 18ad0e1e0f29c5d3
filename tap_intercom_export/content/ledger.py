"""`message_export_jobs`: the job ledger that drives the message data export.

One Intercom job per date window, shared by every selected `message_*` stream (its children), so
each archive is downloaded once per window. The ledger plans the windows from the children's
bookmarks, runs the export-job engine, hands each finished window to the children and records
the job (window, status, files, rows, timings) as its own record.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import typing as t
from dataclasses import dataclass

from singer_sdk import typing as th
from typing_extensions import override

from tap_intercom_export import sdk
from tap_intercom_export.content.api import ContentExportClient
from tap_intercom_export.content.base import ExportWindowStream
from tap_intercom_export.content.lookback import LAST_LOOKBACK, Lookback, describe
from tap_intercom_export.content.schemas import FILE_KINDS
from tap_intercom_export.jobs.model import JOB_KEY, JOB_OUTCOME, ExportSettings, WindowExport
from tap_intercom_export.jobs.windows import JobPlan, plan_around, plan_windows
from tap_intercom_export.timerange import TimeRange, plan_range
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_intercom_export.jobs.engine import ExportRunner
    from tap_intercom_export.jobs.windows import Window

# Messages are exported once a whole second old: the current second may still get some.
SETTLE_SECONDS = 1


@dataclass(frozen=True)
class ExportPlan:
    """What one run of the message export does; `get_records` applies it."""

    jobs: JobPlan
    #: Per selected child stream: what it emits from (`start`) and already has (`covered`).
    ranges: dict[str, TimeRange]
    #: When this run's lookback began (recorded once the run is done), if it runs one.
    lookback_started: int | None
    #: A log line naming what the lookback re-reads.
    lookback_note: str | None


class MessageExportJobsStream(ExportWindowStream):
    """One record per export job: window, status, files, rows and timings (the audit trail)."""

    name = "message_export_jobs"
    path = "/export/content/data"
    primary_keys = ("job_identifier", "window_start")
    replication_key = "window_start"

    schema = th.PropertiesList(
        *JOB_KEY,
        th.Property("created_at_after", th.IntegerType, description="Intercom's bound, unix s"),
        th.Property("created_at_before", th.IntegerType, description="Intercom's bound, unix s"),
        *JOB_OUTCOME,
        th.Property(
            "files",
            th.ArrayType(
                th.ObjectType(
                    th.Property("name", th.StringType),
                    th.Property("kind", th.StringType),
                    th.Property("bytes", th.IntegerType),
                )
            ),
        ),
        # Declared per kind (not as a free-form map) so that flattening yields rows__receipt, ...
        th.Property(
            "rows",
            th.ObjectType(
                *(th.Property(kind, th.IntegerType) for kind in FILE_KINDS),
                th.Property("other_statistics", th.IntegerType),
            ),
            description="Rows emitted per file kind (selected streams only); other_statistics: "
            "rows of kinds without a typed stream, emitted to message_other_statistics.",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Start with no window in progress."""
        super().__init__(*args, **kwargs)
        self.current: WindowExport | None = None
        self.engine: ExportRunner | None = None

    @override
    def get_batch_config(self, config: t.Mapping[str, t.Any]) -> sdk.BatchConfig | None:
        """The job ledger stays RECORD even with batch_config.

        One small record per window, written right after the window's files, so a kill never
        leaves it in an unsent batch.
        """
        return None

    def export_settings(self) -> ExportSettings:
        """The export knobs from the tap's settings."""
        settings = self.settings
        return ExportSettings(
            window_seconds=settings.export_window_days * 86400,
            poll_interval=settings.export_poll_interval_seconds,
            timeout=settings.export_timeout_seconds,
            jobs_ahead=settings.export_jobs_ahead,
        )

    def plan(self, children: list[ExportWindowStream]) -> ExportPlan:
        """Windows from the oldest selected stream's bookmark (less the lookback, when due) to now.

        In-flight jobs of earlier runs are reused when their window starts the plan (jobs/
        windows.py `plan_around`: Intercom allows one pending message export job).
        """
        now = int(self.wall_clock())
        settings = self.settings
        saved = {child.name: child.saved_bookmark() for child in children}
        # Engagement (opens, clicks, ...) of a message keeps arriving after it was sent: a due
        # lookback re-exports the last `export_lookback_days` in one job reaching the run's end
        # (see lookback.py for why one job, and why not on every run).
        lookback = Lookback.from_settings(settings)
        due = lookback.is_due(
            self.stream_state, now, has_bookmarks=any(v is not None for v in saved.values())
        )
        ranges = {
            name: plan_range(
                now=now,
                start_date=settings.start_date,
                end_date=settings.end_date,
                resume=bookmark,
                lookback=lookback.seconds if due else 0,
                settle=SETTLE_SECONDS,
            )
            for name, bookmark in saved.items()
        }
        start = min(r.start for r in ranges.values())
        end = next(iter(ranges.values())).end
        window_seconds = self.export_settings().window_seconds

        def windows(a: int, b: int) -> list[Window]:
            return (
                lookback.windows(a, b, window_seconds)
                if due
                else plan_windows(a, b, window_seconds)
            )

        jobs = plan_around(start, end, self.open_jobs().jobs, windows, after_gap=False)
        note = None
        if due and jobs.windows:
            note = describe(jobs.windows, min(v for v in saved.values() if v is not None), end)
        return ExportPlan(
            jobs=jobs,
            ranges=ranges,
            lookback_started=now if due or LAST_LOOKBACK not in self.stream_state else None,
            lookback_note=note,
        )

    def _remember_lookback(self, started: int | None) -> None:
        # Written once every window of the run is done: a run that dies mid-lookback leaves
        # the lookback due, so the next run does it again.
        if started is not None:
            sdk.put_state(self, LAST_LOOKBACK, iso(started))
            sdk.write_state_now(self)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Export each planned window and hand its archive to the selected children."""
        children = [
            c for c in self.child_streams if isinstance(c, ExportWindowStream) and c.selected
        ]
        if not children:
            self.logger.info("No message_* stream is selected: no export job is created.")
            return
        plan = self.plan(children)
        for child in children:
            child.export_from = plan.ranges[child.name].start
            child.high_water = plan.ranges[child.name].covered
        self.high_water = max(self.saved_bookmark() or 0, min(c.high_water for c in children))
        windows = plan.jobs.windows
        if not windows:
            self.logger.info("Every selected message_* stream is up to date: nothing to export.")
            self._remember_lookback(plan.lookback_started)
            return
        if plan.lookback_note:
            self.logger.info(plan.lookback_note)
        for window, job_id in plan.jobs.stale.items():
            self.logger.info(
                "Ignoring in-flight export job %s from state: its window %s is not the next one "
                "to export (%s).",
                job_id,
                window,
                windows[0],
            )
        names = [c.name for c in children]
        self.logger.info(
            "Message data export: %d window(s) from %s to %s, one Intercom job each, for %s.",
            len(windows),
            iso(windows[0].start),
            iso(windows[-1].end),
            ", ".join(names) if len(names) <= 3 else f"{len(names)} message_* streams",  # noqa: PLR2004
        )
        self.engine = self.runner(
            ContentExportClient(self), self.export_settings(), self.remember_job
        )
        with self._cancel_job_on_ctrl_c():
            for result in self.engine.run(windows, plan.jobs.reused, plan.jobs.stale.values()):
                self.current = result
                try:
                    yield sdk.parent_record(result.job_record())
                finally:
                    self.current = None
                self.window_done(result.window)
                self.logger.info(
                    "Window %s done: job %s, %s.",
                    result.window,
                    result.job.job_id,
                    ", ".join(f"{k} {v} rows" for k, v in result.rows.items()) or "no rows",
                )
        self._remember_lookback(plan.lookback_started)

    @contextlib.contextmanager
    def _cancel_job_on_ctrl_c(self) -> t.Iterator[None]:
        # The SDK answers SIGINT and SIGTERM alike (write state, exit). A scheduler's SIGTERM
        # should leave our job running so the next run resumes it; a person's Ctrl-C means
        # "stop", so the pending job is canceled rather than left blocking the workspace.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        interrupted: list[int] = []
        previous = signal.getsignal(signal.SIGINT)

        def on_sigint(signum: int, frame: t.Any) -> None:
            interrupted.append(signum)
            if callable(previous):
                previous(signum, frame)
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        except BaseException:
            if interrupted and self.engine is not None:
                self.engine.cancel_current()
            raise
        finally:
            signal.signal(signal.SIGINT, previous)

    @override
    def generate_child_contexts(
        self,
        record: dict[str, t.Any],
        context: Context | None,
    ) -> t.Iterable[dict[str, t.Any]]:
        """Children read the current window from this stream, so their context stays empty.

        An empty context keeps their state unpartitioned: one bookmark per stream, not one
        per window.
        """
        yield {}
