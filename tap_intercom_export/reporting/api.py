"""Intercom's reporting data export endpoints, spoken through the shared export-job engine.

`POST /export/reporting_data/enqueue`, `GET /export/reporting_data/{job_identifier}`,
`GET /download/reporting_data/{job_identifier}`, and `GET /export/reporting_data/get_datasets`
(API 2.14 and later). https://developers.intercom.com/docs/references/rest-api/api.intercom.io/
reporting-data-export
"""

from __future__ import annotations

import typing as t
from http import HTTPStatus

from typing_extensions import override

from tap_intercom_export.errors import ExportError, IntercomAPIError, IntercomNotFoundError
from tap_intercom_export.jobs.api import ExportClient, Job
from tap_intercom_export.jobs.archive import Archive, member_stem
from tap_intercom_export.reporting.schemas import Attribute, DatasetSpec

if t.TYPE_CHECKING:
    from pathlib import Path

    from tap_intercom_export.client import IntercomStream
    from tap_intercom_export.jobs.windows import Window

DATASETS_PATH = "/export/reporting_data/get_datasets"
#: The first API version with the reporting data export.
SINCE_VERSION = "2.14"
#: Status calls answered 404 that are taken for "not visible yet" right after an enqueue.
NOT_FOUND_GRACE = 5


class ReportingNamer:
    """Every CSV of a reporting download holds the dataset's rows, whatever its file name."""

    def kind_of_member(self, name: str) -> str | None:
        """`data` for a CSV member; None for anything else (skipped)."""
        return "data" if member_stem(name) is not None else None

    def kind_from_header(self, header: list[str]) -> str:  # noqa: ARG002 - the Namer interface
        """A lone CSV is the dataset's rows."""
        return "data"


class Claims(t.Protocol):
    """Where a client finds a job enqueued ahead for a window (see scheduler.py)."""

    def claim(self, stream: str, window: Window) -> str | None:
        """The id of a job enqueued earlier for this window, handed out once."""


def qualified_ids(version: str) -> bool:
    """Whether `attribute_ids` take qualified ids: from API 2.16 on, and in Preview."""
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        return version.lower() in ("preview", "unstable")
    return (major, minor) >= (2, 16)


class ReportingExportClient(ExportClient):
    """One dataset's enqueue, status and download; `get_datasets` for discovery."""

    create_path = "/export/reporting_data/enqueue"
    status_path = "/export/reporting_data/{job_id}"
    download_path = "/download/reporting_data/{job_id}"
    # Intercom's job goes `pending` -> `complete` (some sources say `completed`) or `failed`.
    active_statuses = ("pending",)
    done_statuses = ("complete", "completed")
    label = "reporting data export"
    lock_rule = "Intercom allows 5 pending reporting jobs per workspace, shared with other tools"

    def __init__(
        self,
        stream: IntercomStream,
        dataset: DatasetSpec | None = None,
        attributes: t.Sequence[Attribute] = (),
        *,
        qualified: bool = False,
        claims: Claims | None = None,
    ) -> None:
        """Speak through `stream` for `dataset`, asking for `attributes` in that order."""
        super().__init__(stream)
        self.dataset = dataset
        self.attributes = list(attributes)
        self.qualified = qualified
        self.claims = claims
        self.stream_name = dataset.stream_name if dataset else ""
        #: Jobs this run enqueued, with the 404s tolerated so far.
        self.fresh: dict[str, int] = {}

    def datasets(self) -> list[DatasetSpec]:
        """The workspace's reporting datasets (`GET /export/reporting_data/get_datasets`)."""
        body = self._json("GET", DATASETS_PATH)
        data = body.get("data") if isinstance(body, dict) else None
        return [DatasetSpec.from_api(d) for d in data or [] if isinstance(d, dict) and d.get("id")]

    @override
    def create_body(self, window: Window) -> dict[str, t.Any]:
        """The enqueue body: the dataset, its attributes and the window in unix seconds.

        The end is sent as is (a row on the bound may come in both windows, and its key dedupes
        it: Intercom does not say whether `end_time` is inclusive).
        """
        if self.dataset is None:
            msg = f"{self.stream_name}: no dataset to export (discovery found none)"
            raise ExportError(msg)
        return {
            "dataset_id": self.dataset.id,
            "attribute_ids": [a.request_id(qualified=self.qualified) for a in self.attributes],
            "start_time": window.start,
            "end_time": window.end,
        }

    def enqueue(self, window: Window) -> Job:
        """Enqueue a new job for `window` (never one enqueued ahead)."""
        try:
            job = super().create(window)
        except IntercomAPIError as exc:
            if exc.status != HTTPStatus.BAD_REQUEST:
                raise
            msg = (
                f"{exc}. Intercom refused the reporting job for {self.stream_name} {window}: if it "
                "names attributes, the workspace's attributes changed since the catalog was made "
                "(run --discover again); if it names the time, start_date lies outside the "
                "workspace's reporting retention (2 years, 3 with extended retention)."
            )
            raise ExportError(msg) from exc
        self.fresh[job.job_id] = 0
        return job

    @override
    def create(self, window: Window) -> Job:
        """The job enqueued ahead for this window (this run or a killed one), else a new one."""
        job_id = self.claims.claim(self.stream_name, window) if self.claims else None
        if job_id:
            job = self._adopt(job_id, window)
            if job is not None:
                return job
        return self.enqueue(window)

    def _adopt(self, job_id: str, window: Window) -> Job | None:
        try:
            job = self.status(job_id)
        except IntercomNotFoundError:
            self.logger.warning(
                "Reporting job %s enqueued earlier for %s %s no longer exists: enqueueing a new one.",
                job_id,
                self.stream_name,
                window,
            )
            return None
        if job.status in self.active_statuses + self.done_statuses:
            self.logger.debug(
                "Using reporting job %s (%s) enqueued earlier for %s %s.",
                job_id,
                job.status,
                self.stream_name,
                window,
            )
            job.enqueued_ahead = True
            return job
        self.logger.warning(
            "Reporting job %s enqueued earlier for %s %s is %s: enqueueing a new one.",
            job_id,
            self.stream_name,
            window,
            job.status or "without status",
        )
        return None

    @override
    def status(self, job_id: str) -> Job:
        """Intercom's view of a job; a 404 right after enqueue means "not visible yet"."""
        try:
            return super().status(job_id)
        except IntercomNotFoundError:
            # Intercom can answer a job's first status calls with 404 "Export job not found"
            # while the enqueue propagates; a job from an earlier run that 404s is gone.
            seen = self.fresh.get(job_id)
            if seen is None or seen >= NOT_FOUND_GRACE:
                raise
            self.fresh[job_id] = seen + 1
            self.logger.info(
                "Reporting job %s is not visible yet (HTTP 404): polling again.", job_id
            )
            return Job(job_id=job_id, status="pending")

    @override
    def cancel(self, job_id: str) -> Job:
        """Intercom has no cancel endpoint for reporting jobs: they stay for the next run."""
        msg = f"reporting job {job_id} cannot be canceled (Intercom has no endpoint for it)"
        raise ExportError(msg)

    @override
    def open_archive(self, path: Path) -> Archive:
        """Sniff the download (gzip, tar.gz, zip or plain CSV); every CSV holds rows."""
        return Archive.open(path, ReportingNamer())

    @override
    def inspect(self, job: Job, window: Window, archive: Archive) -> None:
        """A finished job without any CSV is suspicious: say so (no row can be emitted)."""
        if not archive.members:
            self.logger.warning(
                "Reporting job %s for %s %s has no CSV file in its %s download: no rows emitted.",
                job.job_id,
                self.stream_name,
                window,
                archive.container,
            )
