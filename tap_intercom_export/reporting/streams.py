"""Reporting data export streams: one `reporting_<dataset id>` stream per dataset of the workspace.

Each stream windows its dataset on the dataset's `default_time_attribute_id` and runs one job per
window through the shared engine (jobs/engine.py); the scheduler (scheduler.py) keeps jobs of the
next windows, across datasets, enqueued ahead. A stream's bookmark is the end of the last window
whose rows it has fully emitted; jobs in flight are in its STATE (`in_flight_jobs`).
"""

from __future__ import annotations

import typing as t

from typing_extensions import override

from tap_intercom_export.errors import IntercomAuthError
from tap_intercom_export.jobs.model import ExportSettings
from tap_intercom_export.jobs.rows import MemberReader
from tap_intercom_export.jobs.stream import ExportJobStream
from tap_intercom_export.jobs.windows import JobPlan, plan_around, plan_windows
from tap_intercom_export.reporting import zone
from tap_intercom_export.reporting.api import ReportingExportClient, qualified_ids
from tap_intercom_export.reporting.ledger import NAME as LEDGER
from tap_intercom_export.reporting.ledger import ReportingExportJobsStream
from tap_intercom_export.reporting.schemas import Attribute, DatasetSpec, RowMapper
from tap_intercom_export.timerange import DAY, TimeRange, plan_range
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_intercom_export import sdk
    from tap_intercom_export.jobs.archive import Member
    from tap_intercom_export.jobs.model import WindowExport
    from tap_intercom_export.jobs.windows import Window
    from tap_intercom_export.reporting.scheduler import ReportingScheduler

# Reporting data is exported once a whole second old, like message data (content/ledger.py).
SETTLE_SECONDS = 1


def retention_floor(now: int, retention_days: int) -> int:
    """The earliest start a run asks for: a day inside Intercom's reporting retention.

    Intercom refuses a `start_time` outside it (HTTP 400); the day's margin covers the time
    between planning and the enqueue of the first window.
    """
    return now - (retention_days - 1) * DAY


class ReportingStream(ExportJobStream):
    """Rows of one reporting dataset, one export job per window of its time attribute."""

    spec: DatasetSpec
    scheduler: ReportingScheduler
    path = "/export/reporting_data/enqueue"
    replication_key = "export_window_start"

    #: Where this run's range started before Intercom's retention cut it (None: not cut).
    retention_cut: int | None = None

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Set up the once-per-run warnings: unmatched columns, times that misread the zone."""
        super().__init__(*args, **kwargs)
        self.reader = MemberReader(self.logger, self.name, "no requested attribute matches")
        self.zone_warned = False

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
        return ReportingExportClient(
            self,
            self.spec,
            self.requested_attributes(),
            qualified=qualified_ids(self.settings.intercom_version),
            claims=self.scheduler,
        )

    def export_settings(self) -> ExportSettings:
        """The engine's knobs from the tap's settings."""
        settings = self.settings
        return ExportSettings(
            window_seconds=int(settings.reporting_window_days * 86400),
            poll_interval=settings.export_poll_interval_seconds,
            timeout=settings.export_timeout_seconds,
        )

    def plan(self) -> tuple[TimeRange, JobPlan]:
        """Windows from the bookmark (less the lookback) to now, keeping in-flight jobs' bounds.

        Never before Intercom's reporting retention (`retention_floor`).
        """
        settings = self.settings
        now = int(self.wall_clock())
        # Reporting rows change after the fact (a conversation closes days after it started):
        # each run exports the last `reporting_lookback_days` again; keys make it an upsert.
        span = plan_range(
            now=now,
            start_date=settings.start_date,
            end_date=settings.end_date,
            resume=self.saved_bookmark(),
            lookback=int(settings.reporting_lookback_days * DAY),
            settle=SETTLE_SECONDS,
        )
        floor = retention_floor(now, settings.reporting_retention_days)
        self.retention_cut = span.start if span.start < floor else None
        if self.retention_cut is not None:
            span = TimeRange(floor, span.end, max(span.covered, floor))
        seconds = self.export_settings().window_seconds

        def windows(start: int, end: int) -> list[Window]:
            return plan_windows(start, end, seconds)

        jobs = plan_around(span.start, span.end, self.open_jobs().jobs, windows, after_gap=True)
        return span, jobs

    def _prepare(self) -> None:
        """Once per run: read the zone, plan every selected reporting stream (jobs go ahead)."""
        if self.scheduler.prepared:
            return
        self.scheduler.prepared = True
        self.scheduler.zone = zone.resolve(self.tap, self.settings, self.logger)
        cut: list[ReportingStream] = []
        for stream in self.tap.streams.values():
            if isinstance(stream, ReportingStream) and stream.selected:
                span, jobs = stream.plan()
                stream.high_water = span.covered
                self.scheduler.add(stream.name, stream.make_client(), jobs, stream.remember_job)
                cut += [stream] if stream.retention_cut is not None else []
        if cut:
            self._warn_retention(cut)

    def _warn_retention(self, cut: list[ReportingStream]) -> None:
        days = self.settings.reporting_retention_days
        floor = retention_floor(int(self.wall_clock()), days)
        self.logger.warning(
            "%s would start at %s, before the %d days Intercom keeps reporting data "
            "(reporting_retention_days): starting at %s instead; older rows cannot be exported. "
            "With Intercom's extended retention (3 years), set reporting_retention_days=1095.",
            ", ".join(s.name for s in cut),
            iso(min(t.cast("int", s.retention_cut) for s in cut)),
            days,
            iso(floor),
        )

    def _job_created(self, window: Window, job: t.Any) -> None:
        self.remember_job(window, job)
        self.scheduler.started(self.name, window, job)

    # -- sync -------------------------------------------------------------------------------

    @override
    def get_batch_config(self, config: t.Mapping[str, t.Any]) -> sdk.BatchConfig | None:
        """RECORD even with batch_config.

        Each window's bookmark is written as soon as its rows are emitted (window_done); the
        SDK's default BATCH path announces a file only once it is full, after that STATE, so a
        kill in between would lose rows behind the bookmark.
        """
        return None

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
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
        engine = self.runner(client, self.export_settings(), self._job_created)
        times = t.cast("zone.ReportingZone", self.scheduler.zone)
        check: zone.ZoneCheck | None = None

        def typer(member: Member, header: list[str]) -> RowMapper:  # noqa: ARG001 - every member is rows
            return RowMapper(self.spec, header, client.attributes, times, check)

        try:
            for result in engine.run(windows):
                rows: dict[str, int] = {}
                check = zone.ZoneCheck(result.window, times)
                times.repeated = 0
                yield from self.reader.records(
                    result, result.archive.kinds().get("data", []) if result.archive else [],
                    typer, rows, "data",
                )  # fmt: skip
                self._window_checked(result, rows["data"], len(client.attributes), check)
                self.window_done(result.window)
                self.scheduler.finished(self.name, result.window)
        except IntercomAuthError as exc:
            self.scheduler.forbid(exc)

    def _window_checked(
        self, result: WindowExport, rows: int, attributes: int, check: zone.ZoneCheck
    ) -> None:
        """Say how the window's times read in the chosen zone, and record its job."""
        times = check.zone
        outside = check.outside[times.name]
        notes = []
        if outside:
            notes.append(f"{outside} with {self.spec.time_attribute_id} outside the window")
        if times.repeated:
            notes.append(
                f"{times.repeated} time(s) in a repeated DST hour read as its first occurrence"
            )
        self.logger.info(
            "%s window %s done: job %s, %d rows%s.",
            self.name,
            result.window,
            result.job.job_id,
            rows,
            f" ({'; '.join(notes)})" if notes else "",
        )
        better = check.misread()
        if better is not None and not self.zone_warned:
            self.zone_warned = True
            self.logger.warning(
                "%s: %d of %d rows of window %s have %s outside the window when read in %s, %s: "
                "the export seems written in another zone than the one assumed. Every row is "
                "kept, its times read in %s; if that is wrong, set reporting_timezone.",
                self.name,
                outside,
                check.values,
                result.window,
                self.spec.time_attribute_id,
                times.describe(),
                better,
                times.name,
            )
        ledger = self.tap.streams.get(LEDGER)
        if isinstance(ledger, ReportingExportJobsStream):
            ledger.record_job(
                result,
                dataset=self.spec.id,
                attributes=attributes,
                rows=rows,
                time_zone=times.name,
                outside=outside,
            )


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
