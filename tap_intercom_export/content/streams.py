"""Message data export streams: the job ledger and one stream per CSV file kind.

`message_export_jobs` drives the export: one Intercom job per date window, shared by every
selected `message_*` stream (its children), so each archive is downloaded once per window.
Each stream's bookmark is the end of the last window whose rows it has fully emitted.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import typing as t
from datetime import datetime, timezone

import requests
from singer_sdk import typing as th
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage

from tap_intercom_export.client import DEFAULT_START_DAYS, IntercomStream, config_time
from tap_intercom_export.content.api import ContentExportClient
from tap_intercom_export.content.lookback import LAST_LOOKBACK, Lookback, describe
from tap_intercom_export.content.batch import BatchFileWriter, selected_only
from tap_intercom_export.content.schemas import FILE_KINDS, FileKind, RowTyper
from tap_intercom_export.jobs.archive import DecodeCounter, iter_csv
from tap_intercom_export.jobs.engine import ExportRunner, ExportSettings, WindowExport
from tap_intercom_export.jobs.inflight import OpenJobs
from tap_intercom_export.jobs.windows import Window, plan_windows
from tap_intercom_export.timeutil import iso, unix

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context


class _ExportStream(IntercomStream):
    """What the job ledger and the CSV streams share: window bookmarks."""

    is_sorted = True
    # Bookmarks move back to a window's start while it is being emitted and forward to its end
    # once done; sort checks would refuse the first move.
    check_sorted = False
    #: Unix seconds this run has every row up to (the saved bookmark, then each window's end).
    high_water: int = 0

    def saved_bookmark(self) -> int | None:
        """Unix seconds up to which a previous run emitted every row, from state."""
        state = self.stream_state
        value = state.get("replication_key_value")
        if value and state.get("replication_key") == self.replication_key:
            return unix(value)
        return None


def advance_bookmark(stream: _ExportStream, window_end: int) -> None:
    """Record that `stream` has every row up to `window_end` (a re-exported window never
    moves the bookmark back)."""
    stream.high_water = max(stream.high_water, window_end)
    stream.state_manager.increment_state(
        {stream.replication_key: iso(stream.high_water)}, replication_key=stream.replication_key
    )


class MessageExportJobsStream(_ExportStream):
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

    #: The clock that decides "now" (the end of the last window); tests replace it.
    wall_clock: t.Callable[[], float] = staticmethod(time.time)
    #: How the runner waits between polls; tests replace it.
    sleep: t.Callable[[float], None] = staticmethod(time.sleep)
    #: How the runner measures elapsed time; tests replace it.
    monotonic: t.Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Start with no window in progress."""
        super().__init__(*args, **kwargs)
        self.current: WindowExport | None = None
        self.runner: ExportRunner | None = None
        #: When this run's lookback began, to be recorded in state once the run is done.
        self.lookback_started: int | None = None
        #: Jobs created and not yet fully emitted (mirrored into the state).
        self.open_jobs = OpenJobs()

    @property
    def requests_session(self) -> requests.Session:
        """The SDK session, set to stream bodies so downloads never sit in memory."""
        session = super().requests_session
        session.stream = True
        return session

    def get_batch_config(self, config: t.Mapping) -> BatchConfig | None:  # noqa: ARG002
        """The job ledger stays RECORD even with batch_config: one small record per window,
        written right after the window's files, so a kill never leaves it in an unsent batch."""
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

    def plan(self, children: list[MessageStatStream]) -> list[Window]:
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
        due = lookback.is_due(self.stream_state, now, has_bookmarks=any(v is not None for v in saved.values()))
        self.lookback_started = now if due or LAST_LOOKBACK not in self.stream_state else None
        back = lookback.seconds if due else 0
        for child in children:
            bookmark = saved[child.name]
            child.high_water = bookmark or default
            child.export_from = default if bookmark is None else max(bookmark - back, start_date or 0)
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
        self.state_manager.is_flushed = False
        self._write_state_message()

    def in_flight(self) -> tuple[Window, str] | None:
        """The job a previous run created but did not finish, from state."""
        return OpenJobs.from_state(self.stream_state, self.logger).first()

    def _remember_job(self, window: Window, job: t.Any) -> None:
        # Written before polling starts so that a run killed while waiting resumes this job
        # (Intercom would answer a new create with 429 while it is pending).
        self.open_jobs.created(window, job.job_id)
        self.open_jobs.write(self.stream_state)
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _commit(self, window: Window) -> None:
        # A job created ahead for a later window stays open: only this window is done.
        self.open_jobs.done(window)
        advance_bookmark(self, window.end)
        self.open_jobs.write(self.stream_state)
        self.state_manager.is_flushed = False
        self._write_state_message()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """Export each planned window and hand its archive to the selected children."""
        children = [c for c in self.child_streams if isinstance(c, MessageStatStream) and c.selected]
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

    def generate_child_contexts(self, record: dict, context: Context | None) -> t.Iterable[dict]:
        """Children read the current window from this stream, so their context stays empty.

        An empty context keeps their state unpartitioned: one bookmark per stream, not one
        per window.
        """
        yield {}


class MessageStatStream(_ExportStream):
    """Rows of one CSV file kind of the export archive, typed by `schemas.FILE_KINDS`."""

    parent_stream_type = MessageExportJobsStream
    spec: FileKind
    replication_key = "export_window_start"
    #: Unix seconds from which this run emits rows (set by the parent's plan).
    export_from: int = 0
    path = "/export/content/data"
    # RowTyper already emits JSON-ready values (str, int, float, None) for exactly the schema's
    # properties, so the SDK's per-record schema walk only re-checks them: it was half of the
    # tap's CPU time. Its other job, dropping properties the schema does not declare, cannot
    # happen here (unknown columns go into extra_columns), as tests/test_perf_paths.py checks.
    # https://sdk.meltano.com/en/latest/classes/singer_sdk.Stream.html#singer_sdk.Stream.TYPE_CONFORMANCE_LEVEL
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Set up the once-per-run log of columns the schema does not know."""
        super().__init__(*args, **kwargs)
        self._reported_columns: set[str] = set()
        self._deselection: tuple[t.Any, tuple[str, ...] | None] = (None, None)
        self._bookmarked: t.Any = None

    def sync(self, context: Context | None = None) -> None:
        """Sync one window's rows (the parent calls this once per window)."""
        self._bookmarked = None
        super().sync(context)

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        # Every row of a window carries the same export_window_start, and nothing else touches
        # the state while one sync() emits rows, so repeating the SDK's per-record update (a
        # state lookup and compare per row) after the first row would change nothing.
        value = latest_record.get(self.replication_key)
        if value is not None and value == self._bookmarked:
            return
        super()._increment_stream_state(latest_record, context=context)
        self._bookmarked = value

    def _process_record(
        self, record: dict, child_context: Context | None = None, partition_context: Context | None = None
    ) -> None:
        # The SDK's version (singer_sdk/streams/core.py, 0.54.9) asks every record for child
        # contexts and copies them, to sync child streams: a tenth of the tap's time, for
        # streams that have no children and no partitions.
        # https://github.com/meltano/sdk/blob/v0.54.9/singer_sdk/streams/core.py#L1151
        if self.child_streams or partition_context:
            super()._process_record(record, child_context, partition_context)

    def _generate_record_messages(self, record: dict) -> t.Generator[RecordMessage, None, None]:
        # The SDK's version of this per-record hook (singer_sdk/streams/core.py, 0.54.9) walks
        # the selection mask key by key and the schema value by value for every record: with
        # conformance off (see TYPE_CONFORMANCE_LEVEL) the mask walk alone was a fifth of the
        # tap's time. Here deselected properties are worked out once per catalog and popped;
        # stream maps and RECORD messages are the SDK's own.
        # https://github.com/meltano/sdk/blob/v0.54.9/singer_sdk/streams/core.py#L909
        deselected = self._deselected()
        if deselected is None:
            pop_deselected_record_properties(record, self.schema, self.mask)
        else:
            for name in deselected:
                record.pop(name, None)
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=datetime.now(timezone.utc),
                )

    def _deselected(self) -> tuple[str, ...] | None:
        """Top-level properties the catalog deselects, or None if it deselects nested ones."""
        mask = self.mask
        if self._deselection[0] is not mask:
            nested = any(len(crumb) > 2 and not selected for crumb, selected in mask.items())  # noqa: PLR2004
            names = tuple(n for n in self.schema["properties"] if not mask[("properties", n)])
            self._deselection = (mask, None if nested else names)
        return self._deselection[1]


    def _window(self) -> WindowExport | None:
        """The window the parent has on disk, if this stream has rows to emit from it."""
        parent = t.cast(MessageExportJobsStream, self._tap.streams[MessageExportJobsStream.name])
        result = parent.current
        if result is None or result.window.end <= self.export_from:
            return None
        return result

    def _typed_rows(self, result: WindowExport) -> t.Iterator[dict]:
        """This kind's rows of the window, typed, member after member; counted in `result.rows`."""
        window = result.window
        kind = self.spec.kind
        result.rows[kind] = 0
        if result.archive is None:
            return
        lineage = {
            "export_job_id": result.job.job_id,
            "export_window_start": iso(window.start),
            "export_window_end": iso(window.end),
        }
        counter = DecodeCounter()
        for member in result.archive.kinds().get(kind, []):
            count = 0
            with result.archive.open_member(member) as raw:
                header, rows = iter_csv(raw, counter)
                typer = RowTyper(self.spec, header)
                self._report_columns(typer, member.name)
                for row in rows:
                    if row:
                        count += 1
                        yield typer.type_row(row, lineage)
            result.rows[kind] += count
            self._report_quirks(typer, counter, member.name)

    def get_records(self, context: Context | None) -> t.Iterable[dict]:  # noqa: ARG002
        """Emit this kind's rows of the window the parent has on disk, then move the bookmark."""
        result = self._window()
        if result is None:
            return
        yield from self._typed_rows(result)
        advance_bookmark(self, result.window.end)

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None  # noqa: ARG002
    ) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Write this kind's rows of the window into batch files; one BATCH message per file.

        The SDK writes each BATCH message, then a STATE, before asking for the next file; the
        bookmark moves to the window's end only after the last file is announced.
        """
        result = self._window()
        if result is None:
            return
        writer = BatchFileWriter(batch_config, self.tap_name, self.name)
        rows = selected_only(self._typed_rows(result), self, self._deselected())
        for url, _rows in writer.write(rows):
            yield batch_config.encoding, [url]
            # As with RECORDs: a window partly announced leaves the bookmark at its start.
            self._increment_stream_state({self.replication_key: iso(result.window.start)})
        advance_bookmark(self, result.window.end)

    def _report_columns(self, typer: RowTyper, member: str) -> None:
        new = [c for c in typer.unknown if c not in self._reported_columns]
        if new:
            self._reported_columns.update(new)
            self.logger.warning(
                "%s has %d column(s) the schema does not declare, kept in %s: %s",
                member,
                len(new),
                "extra_columns",
                ", ".join(new),
            )

    def _report_quirks(self, typer: RowTyper, counter: DecodeCounter, member: str) -> None:
        if typer.ragged_rows:
            self.logger.warning(
                "%s: %d row(s) did not have %d fields; kept what was there "
                "(missing fields null, surplus in extra_columns).",
                member,
                typer.ragged_rows,
                typer.width,
            )
        for column, n in typer.bad_values.items():
            self.logger.warning(
                "%s: %d value(s) of %s did not fit its type; kept as text in extra_columns.",
                member,
                n,
                column,
            )
        if counter.replaced:
            self.logger.warning(
                "%s: %d byte(s) were not UTF-8 and were replaced by U+FFFD.", member, counter.replaced
            )
            counter.replaced = 0


def _stat_stream(spec: FileKind) -> type[MessageStatStream]:
    camel = "".join(part.title() for part in spec.stream_name.split("_"))
    return type(
        f"{camel}Stream",
        (MessageStatStream,),
        {
            "__doc__": f"Rows of the `{spec.kind}` CSV files of Intercom's message data export.",
            "name": spec.stream_name,
            "spec": spec,
            "primary_keys": spec.primary_keys,
            "schema": spec.json_schema(),
        },
    )


MESSAGE_STAT_STREAMS: list[type[MessageStatStream]] = [_stat_stream(s) for s in FILE_KINDS.values()]

