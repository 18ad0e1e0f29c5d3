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

from singer_sdk import typing as th

from tap_intercom_export.client import DEFAULT_START_DAYS, config_time
from tap_intercom_export.content.api import ContentExportClient
from tap_intercom_export.content.base import ExportWindowStream
from tap_intercom_export.content.lookback import LAST_LOOKBACK, Lookback, describe
from tap_intercom_export.content.schemas import FILE_KINDS
from tap_intercom_export.jobs.engine import ExportRunner
from tap_intercom_export.jobs.inflight import OpenJobs
from tap_intercom_export.jobs.model import ExportSettings, WindowExport
from tap_intercom_export.jobs.windows import Window, plan_windows
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BatchConfig
    from singer_sdk.helpers.types import Context


class MessageExportJobsStream(ExportWindowStream):
    """One record per export job: window, status, files, rows and timings (the audit trail)."""

    name = "message_export_jobs"
    path = "/export/content/data"
    primary_keys = ("job_identifier", "window_start")
    replication_key = "window_start"

    schema = th.PropertiesList(
        th.Property("job_identifier", th.StringType, required=True),
        th.Property("window_start", th.DateTimeType, required=True),
        th.Property("window_end", th.DateTimeType, required=True),
        th.Property("created_at_after", th.IntegerType, description="Intercom's bound, unix s"),
        th.Property("created_at_before", th.IntegerType, description="Intercom's bound, unix s"),
        th.Property("status", th.StringType),
        th.Property("attempts", th.IntegerType),
        th.Property("resumed", th.BooleanType),
        th.Property("created_at", th.DateTimeType),
        th.Property("completed_at", th.DateTimeType),
        th.Property("poll_seconds", th.NumberType),
        th.Property("download_seconds", th.NumberType),
        th.Property("download_bytes", th.IntegerType),
        th.Property("container", th.StringType),
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
        self.runner: ExportRunner | None = None
        #: When this run's lookback began, to be recorded in state once the run is done.
        self.lookback_started: int | None = None
        #: Jobs created and not yet fully emitted (mirrored into the state).
        self.open_jobs = OpenJobs()

    def get_batch_config(self, config: t.Mapping[str, t.Any]) -> BatchConfig | None:  # noqa: ARG002
        """The job ledger stays RECORD even with batch_config.

        One small record per window, written right after the window's files, so a kill never
        leaves it in an unsent batch.
        """
        return None

    def export_settings(self) -> ExportSettings:
        """The export knobs from the tap's settings."""
        cfg = self.config
        return ExportSettings(
            window_seconds=int(float(cfg.get("export_window_days", 7)) * 86400),
            poll_interval=float(cfg.get("export_poll_interval_seconds", 30)),
            timeout=float(cfg.get("export_timeout_seconds", 43200)),
            row_limit=int(cfg.get("export_row_limit", 10_000_000)),
            # Intercom allows one pending message export job per workspace: one job ahead.
            jobs_ahead=min(int(cfg.get("export_jobs_ahead", 1)), 1),
        )

    def plan(self, children: list[ExportWindowStream]) -> list[Window]:
        """Windows from the oldest selected stream's bookmark (less the lookback, when due) to now."""
        now = int(self.wall_clock())
        start_date = config_time(self.config, "start_date")
        default = start_date or now - DEFAULT_START_DAYS * 86400
        end = min(config_time(self.config, "end_date") or now, now)
        saved = {child.name: child.saved_bookmark() for child in children}
        # Engagement (opens, clicks, ...) of a message keeps arriving after it was sent: a due
        # lookback re-exports the last `export_lookback_days` in one job reaching the run's end
        # (see lookback.py for why one job, and why not on every run).
        lookback = Lookback.from_config(self.config)
        due = lookback.is_due(
            self.stream_state, now, has_bookmarks=any(v is not None for v in saved.values())
        )
        self.lookback_started = now if due or LAST_LOOKBACK not in self.stream_state else None
        back = lookback.seconds if due else 0
        for child in children:
            bookmark = saved[child.name]
            child.high_water = bookmark or default
            child.export_from = (
                default if bookmark is None else max(bookmark - back, start_date or 0)
            )
        self.high_water = max(self.saved_bookmark() or 0, min(c.high_water for c in children))
        start = min(child.export_from for child in children)
        window_seconds = self.export_settings().window_seconds
        if not due:
            return plan_windows(start, end, window_seconds)
        windows = lookback.windows(start, end, window_seconds)
        if windows:
            bookmark = min(v for v in saved.values() if v is not None)
            self.logger.info(describe(windows, bookmark, end))
        return windows

    def _remember_lookback(self) -> None:
        # Written once every window of the run is done: a run that dies mid-lookback leaves
        # the lookback due, so the next run does it again.
        if self.lookback_started is None:
            return
        self.stream_state[LAST_LOOKBACK] = iso(self.lookback_started)
        self.lookback_started = None
        self.write_state_now()

    def _remember_job(self, window: Window, job: t.Any) -> None:
        # Written before polling starts so that a run killed while waiting resumes this job
        # (Intercom would answer a new create with 429 while it is pending).
        self.open_jobs.created(window, job.job_id)
        self.open_jobs.write(self.stream_state)
        self.write_state_now()

    def _commit(self, window: Window) -> None:
        # A job created ahead for a later window stays open: only this window is done.
        self.open_jobs.done(window)
        self.advance_bookmark(window.end)
        self.open_jobs.write(self.stream_state)
        self.write_state_now()

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:  # noqa: ARG002 - SDK hook
        """Export each planned window and hand its archive to the selected children."""
        children = [
            c for c in self.child_streams if isinstance(c, ExportWindowStream) and c.selected
        ]
        if not children:
            self.logger.info("No message_* stream is selected: no export job is created.")
            return
        windows = self.plan(children)
        if not windows:
            self.logger.info("Every selected message_* stream is up to date: nothing to export.")
            self._remember_lookback()
            return
        self.logger.info(
            "Exporting %d window(s) from %s to %s for %s.",
            len(windows),
            iso(windows[0].start),
            iso(windows[-1].end),
            ", ".join(c.name for c in children),
        )
        settings = self.export_settings()
        self.runner = ExportRunner(
            ContentExportClient(self, settings.row_limit),
            settings,
            logger=self.logger,
            on_job_created=self._remember_job,
            clock=self.monotonic,
            wall=self.wall_clock,
            sleep=self.sleep,
        )
        self.open_jobs = OpenJobs.from_state(self.stream_state, self.logger)
        with self._cancel_job_on_ctrl_c():
            for result in self.runner.run(windows, self.open_jobs.first(), self.open_jobs.ahead()):
                self.current = result
                try:
                    # The SDK syncs the children on this record before writing it, so `rows`
                    # (filled by the children) is complete when the record is emitted.
                    yield result.job_record()
                finally:
                    self.current = None
                self._commit(result.window)
                self.logger.info(
                    "Window %s done: job %s, %s.",
                    result.window,
                    result.job.job_id,
                    ", ".join(f"{k} {v} rows" for k, v in result.rows.items()) or "no rows",
                )
        self._remember_lookback()

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
            if interrupted and self.runner is not None:
                self.runner.cancel_current()
            raise
        finally:
            signal.signal(signal.SIGINT, previous)

    def generate_child_contexts(
        self,
        record: dict[str, t.Any],  # noqa: ARG002 - SDK hook
        context: Context | None,  # noqa: ARG002 - SDK hook
    ) -> t.Iterable[dict[str, t.Any]]:
        """Children read the current window from this stream, so their context stays empty.

        An empty context keeps their state unpartitioned: one bookmark per stream, not one
        per window.
        """
        yield {}
