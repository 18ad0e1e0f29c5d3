"""`reporting_export_jobs`: the audit trail of reporting export jobs, one record per window.

The reporting streams run their own jobs (streams.py); each finished window's job is handed to
this stream, which syncs at once (sdk.sync_now), so its record is out before the window's
bookmark: a killed run never loses the record of a window whose rows went out.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th
from typing_extensions import override

from tap_intercom_export import sdk
from tap_intercom_export.client import IntercomStream
from tap_intercom_export.jobs.model import JOB_KEY, JOB_OUTCOME

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_intercom_export.jobs.model import WindowExport

NAME = "reporting_export_jobs"


class ReportingExportJobsStream(IntercomStream):
    """One record per reporting export job: dataset, window, status, rows, zone and timings."""

    name = NAME
    path = "/export/reporting_data/enqueue"
    primary_keys = ("job_identifier", "window_start")
    replication_key = "window_start"
    # Incremental, so that a loader appends (a full-table stream may be replaced on each sync).
    # Nothing is planned from the bookmark: it is the window of the last record, and records of
    # several datasets interleave, so it is not sorted (an unsorted stream would warn on each of
    # its syncs, one per window).
    is_sorted = True
    check_sorted = False

    schema = th.PropertiesList(
        *JOB_KEY,
        th.Property("dataset", th.StringType, required=True, description="Reporting dataset id"),
        th.Property("start_time", th.IntegerType, description="Intercom's bound, unix s"),
        th.Property("end_time", th.IntegerType, description="Intercom's bound, unix s"),
        *JOB_OUTCOME,
        th.Property("attributes", th.IntegerType, description="Attribute ids requested"),
        th.Property("rows", th.IntegerType, description="Rows emitted"),
        th.Property(
            "time_zone",
            th.StringType,
            description="The zone the job's times were read in (emitted in UTC)",
        ),
        th.Property(
            "rows_outside_window",
            th.IntegerType,
            description="Rows whose time attribute, read in time_zone, falls outside the window",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Nothing to emit yet."""
        super().__init__(*args, **kwargs)
        self.pending: list[dict[str, t.Any]] = []

    def record_job(  # noqa: PLR0913 - the record's parts, named at the call
        self,
        result: WindowExport,
        *,
        dataset: str,
        attributes: int,
        rows: int,
        time_zone: str,
        outside: int,
    ) -> None:
        """Emit the record of one finished window's job now (if this stream is selected)."""
        if not self.selected:
            return
        record = result.job_record()
        for name in ("created_at_after", "created_at_before", "files"):
            record.pop(name, None)
        record.update(
            dataset=dataset,
            start_time=result.window.start,
            end_time=result.window.end,
            attributes=attributes,
            rows=rows,
            time_zone=time_zone,
            rows_outside_window=outside,
        )
        self.pending.append(record)
        sdk.sync_now(self)

    @override
    def get_batch_config(self, config: t.Mapping[str, t.Any]) -> sdk.BatchConfig | None:
        """RECORD even with batch_config: one small record per window, out at once."""
        return None

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The records handed over since the last sync."""
        while self.pending:
            yield self.pending.pop(0)
