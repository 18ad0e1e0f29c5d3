"""What an export run is given (settings) and what it hands back per window (the finished export)."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from singer_sdk import typing as th

from tap_intercom_export.jobs.windows import MIN_WINDOW_SECONDS, Window
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from tap_intercom_export.jobs.api import Job
    from tap_intercom_export.jobs.archive import Archive


@dataclass
class ExportSettings:
    """The knobs of an export run: from the tap's settings (settings.py), then the engine's own."""

    window_seconds: int
    poll_interval: float
    timeout: float
    #: Jobs of the next windows created while a finished window is emitted (0 = one after another).
    jobs_ahead: int = 0
    download_attempts: int = 3
    create_attempts: int = 2
    max_jobs_per_window: int = 5
    min_window_seconds: int = MIN_WINDOW_SECONDS


#: The job ledgers' (message_export_jobs, reporting_export_jobs) key: a job and its window.
JOB_KEY = (
    th.Property("job_identifier", th.StringType, required=True),
    th.Property("window_start", th.DateTimeType, required=True),
    th.Property("window_end", th.DateTimeType, required=True),
)
#: What the ledgers say of a job's run, as `WindowExport.job_record` fills it.
JOB_OUTCOME = (
    th.Property("status", th.StringType),
    th.Property("attempts", th.IntegerType),
    th.Property("resumed", th.BooleanType),
    th.Property("created_at", th.DateTimeType),
    th.Property("completed_at", th.DateTimeType),
    th.Property("poll_seconds", th.NumberType),
    th.Property("download_seconds", th.NumberType),
    th.Property("download_bytes", th.IntegerType),
    th.Property("container", th.StringType),
)


@dataclass
class WindowExport:
    """One window's finished export: the job, its archive on disk, and what it took."""

    window: Window
    job: Job
    archive: Archive | None
    attempts: int = 1
    resumed: bool = False
    created_at: int | None = None
    completed_at: int | None = None
    poll_seconds: float = 0.0
    download_seconds: float = 0.0
    download_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)

    def job_record(self) -> dict[str, t.Any]:
        """The `message_export_jobs` record of this window."""
        return {
            "job_identifier": self.job.job_id,
            "window_start": iso(self.window.start),
            "window_end": iso(self.window.end),
            "created_at_after": self.window.created_at_after,
            "created_at_before": self.window.created_at_before,
            "status": self.job.status,
            "attempts": self.attempts,
            "resumed": self.resumed,
            "created_at": iso(self.created_at) if self.created_at else None,
            "completed_at": iso(self.completed_at) if self.completed_at else None,
            "poll_seconds": round(self.poll_seconds, 3),
            "download_seconds": round(self.download_seconds, 3),
            "download_bytes": self.download_bytes,
            "container": self.archive.container if self.archive else None,
            "files": (
                [{"name": m.name, "kind": m.kind, "bytes": m.size} for m in self.archive.members]
                if self.archive
                else []
            ),
            "rows": self.rows,
        }
