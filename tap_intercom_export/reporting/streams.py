"""Reporting data export streams: one `reporting_<dataset id>` stream per dataset of the workspace.

Each stream windows its dataset on the dataset's `default_time_attribute_id` and runs one job per
window through the shared engine (jobs/engine.py); the scheduler (scheduler.py) keeps jobs of the
next windows, across datasets, enqueued ahead. A stream's bookmark is the end of the last window
whose rows it has fully emitted; jobs in flight are in its STATE (`in_flight_jobs`).
"""

from __future__ import annotations

import typing as t

from tap_intercom_export.client import DEFAULT_START_DAYS, config_time
from tap_intercom_export.errors import IntercomAuthError
from tap_intercom_export.jobs.archive import DecodeCounter, iter_csv
from tap_intercom_export.jobs.engine import ExportRunner
from tap_intercom_export.jobs.inflight import OpenJobs
from tap_intercom_export.jobs.model import ExportSettings, WindowExport
from tap_intercom_export.jobs.stream import ExportJobStream
from tap_intercom_export.reporting.api import ReportingExportClient, qualified_ids
from tap_intercom_export.reporting.scheduler import ReportingScheduler, chain_windows
from tap_intercom_export.reporting.schemas import Attribute, DatasetSpec, RowMapper
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_intercom_export.jobs.windows import Window


class ReportingStream(ExportJobStream):
    """Rows of one reporting dataset, one export job per window of its time attribute."""

    spec: DatasetSpec
    scheduler: ReportingScheduler
    path = "/export/reporting_data/enqueue"
    replication_key = "export_window_start"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Start with nothing emitted this run."""
        super().__init__(*args, **kwargs)
        self._reported: set[str] = set()

    # -- plan -------------------------------------------------------------------------------

    def requested_attributes(self) -> list[Attribute]:
        """Selected attributes, plus the time attribute and the key (always requested)."""
        mask = self.mask
        return [
            a
            for a in self.spec.attributes
            if mask.get(("properties", a.prop), True)
            or a.id == self.spec.time_attribute_id
            or a.prop in self.spec.key
        ]

    def make_client(self) -> ReportingExportClient:
        """This dataset's client, asking for the selected attributes."""
        version = str(self.config.get("intercom_version") or "2.14")
        return ReportingExportClient(
            self,
            self.spec,
            self.requested_attributes(),
            qualified=qualified_ids(version),
            claims=self.scheduler,
        )

    def export_settings(self) -> ExportSettings:
        """The engine's knobs from the tap's settings."""
        cfg = self.config
        return ExportSettings(
            window_seconds=int(float(cfg.get("reporting_window_days", 7)) * 86400),
            poll_interval=float(cfg.get("export_poll_interval_seconds", 30)),
            timeout=float(cfg.get("export_timeout_seconds", 43200)),
        )

    def open_jobs(self) -> OpenJobs:
        """Jobs a previous run enqueued and did not finish, from state (jobs/inflight.py)."""
        return OpenJobs.from_state(self.stream_state, self.logger)

    def plan(self) -> list[Window]:
        """Windows from the bookmark (less the lookback) to now, keeping in-flight jobs' bounds."""
        now = int(self.wall_clock())
        start_date = config_time(self.config, "start_date")
        saved = self.saved_bookmark()
        lookback = int(float(self.config.get("reporting_lookback_days", 3)) * 86400)
        # Reporting rows change after the fact (a conversation closes days after it started):
        # each run exports the last `reporting_lookback_days` again; keys make it an upsert.
        start = (
            (start_date or now - DEFAULT_START_DAYS * 86400)
            if saved is None
            else max(saved - lookback, start_date or 0)
        )
        end = min(config_time(self.config, "end_date") or now, now)
        self.high_water = saved or start
        return chain_windows(
            start, end, self.export_settings().window_seconds, self.open_jobs().jobs
        )

    def _prepare(self) -> None:
        """Plan every selected reporting stream once, so jobs can be enqueued ahead in order."""
        if self.scheduler.prepared:
            return
        self.scheduler.prepared = True
        for stream in self._tap.streams.values():
            if isinstance(stream, ReportingStream) and stream.selected:
                self.scheduler.add(
                    stream.name,
                    stream.make_client(),
                    stream.plan(),
                    stream.open_jobs().jobs,
                    stream.remember_job,
                )

    # -- state ------------------------------------------------------------------------------

    def remember_job(self, window: Window, job: t.Any) -> None:
        """Write a job to STATE before it is polled, so a killed run's next run resumes it."""
        jobs = self.open_jobs()
        jobs.created(window, job.job_id)
        jobs.write(self.stream_state)
        self.write_state_now()

    def _job_created(self, window: Window, job: t.Any) -> None:
        self.remember_job(window, job)
        self.scheduler.started(self.name, window, job)

    def _commit(self, window: Window) -> None:
        jobs = self.open_jobs()
        jobs.done(window)
        jobs.write(self.stream_state)
        self.advance_bookmark(window.end)
        self.write_state_now()
        self.scheduler.finished(self.name, window)

    # -- sync -------------------------------------------------------------------------------

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:  # noqa: ARG002 - SDK hook signature
        """Export each planned window of this dataset and emit its rows."""
        self._prepare()
        if self.scheduler.forbidden:
            self.logger.info("%s skipped: the token may not export reporting data.", self.name)
            return
        windows = self.scheduler.windows(self.name)
        if not windows:
            self.logger.info("%s is up to date: nothing to export.", self.name)
            return
        client = self.scheduler.clients[self.name]
        self.logger.info(
            "Exporting %s in %d window(s) from %s to %s on %s, %d attribute(s).",
            self.name,
            len(windows),
            iso(windows[0].start),
            iso(windows[-1].end),
            self.spec.time_attribute_id,
            len(client.attributes),
        )
        runner = ExportRunner(
            client,
            self.export_settings(),
            logger=self.logger,
            on_job_created=self._job_created,
            clock=self.monotonic,
            wall=self.wall_clock,
            sleep=self.sleep,
        )
        try:
            for result in runner.run(windows):
                count = yield from self._rows(result, client)
                self._commit(result.window)
                self.logger.info(
                    "%s window %s done: job %s, %d rows.",
                    self.name,
                    result.window,
                    result.job.job_id,
                    count,
                )
        except IntercomAuthError as exc:
            self.scheduler.forbid(exc)

    def _rows(
        self, result: WindowExport, client: ReportingExportClient
    ) -> t.Generator[dict[str, t.Any], None, int]:
        count = 0
        if result.archive is None:
            return count
        lineage = {
            "export_job_id": result.job.job_id,
            "export_window_start": iso(result.window.start),
            "export_window_end": iso(result.window.end),
        }
        counter = DecodeCounter()
        for member in result.archive.kinds().get("data", []):
            with result.archive.open_member(member) as raw:
                header, rows = iter_csv(raw, counter)
                mapper = RowMapper(self.spec, header, client.attributes)
                self._report(mapper, counter, member.name, before=True)
                for row in rows:
                    if row:
                        count += 1
                        yield mapper.record(row, lineage)
            self._report(mapper, counter, member.name, before=False)
        return count

    def _report(
        self, mapper: RowMapper, counter: DecodeCounter, member: str, *, before: bool
    ) -> None:
        if before:
            new = [c for c in mapper.unmatched if c not in self._reported]
            if new:
                self._reported.update(new)
                self.logger.warning(
                    "%s: %s has column(s) no requested attribute matches, kept in extra_columns: %s",
                    self.name,
                    member,
                    ", ".join(new),
                )
            return
        for prop, n in mapper.unfit.items():
            self.logger.warning(
                "%s: %d value(s) of %s did not fit its type; kept as text in extra_columns.",
                self.name,
                n,
                prop,
            )
        if mapper.ragged:
            self.logger.warning(
                "%s: %d row(s) of %s had a different number of fields.",
                self.name,
                mapper.ragged,
                member,
            )
        counter.report(self.logger, member)


def stream_class(spec: DatasetSpec, scheduler: ReportingScheduler) -> type[ReportingStream]:
    """The stream class of one dataset (built at discovery: datasets vary per workspace)."""
    camel = "".join(part.title() for part in spec.id.replace("-", "_").split("_"))
    return type(
        f"Reporting{camel}Stream",
        (ReportingStream,),
        {
            "__doc__": f"Rows of Intercom's `{spec.id}` reporting dataset.",
            "name": spec.stream_name,
            "spec": spec,
            "scheduler": scheduler,
            "primary_keys": list(spec.key),
            "schema": spec.json_schema(),
        },
    )
