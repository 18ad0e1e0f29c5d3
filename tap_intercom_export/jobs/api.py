"""The HTTP side of an export job: create, status, cancel, download, through an SDK stream.

`ExportClient` holds what every Intercom export shares (JSON calls through the stream's session,
authenticator and retries; streamed downloads that never leave the API host); each source
subclasses it with its endpoints, its job model and its archive checks.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

from tap_intercom_export.errors import ArchiveError, ExportError
from tap_intercom_export.jobs.archive import Archive

if t.TYPE_CHECKING:
    from pathlib import Path

    from tap_intercom_export.client import IntercomStream
    from tap_intercom_export.jobs.windows import Window

_DOWNLOAD_CHUNK = 1 << 20


class SplitWindow(Exception):  # noqa: N818 - a signal to the engine, not an error
    """This window must be exported as two halves (reason in the message)."""


@dataclass
class Job:
    """What Intercom says about one export job."""

    job_id: str
    status: str
    download_url: str = ""
    download_expires_at: int | None = None
    #: Created before its window's turn (reporting: enqueued ahead), and now taken up.
    enqueued_ahead: bool = False

    @classmethod
    def from_api(cls, body: dict[str, t.Any]) -> Job:
        """Read Intercom's job model (tolerating its `job_identfier` misspelling)."""
        job_id = body.get("job_identifier") or body.get("job_identfier") or body.get("id")
        if not job_id:
            msg = f"Intercom's export answer has no job_identifier: {sorted(body)}"
            raise ExportError(msg)
        expires = body.get("download_expires_at")
        try:
            expires_at = int(float(expires)) if expires not in (None, "") else None
        except (TypeError, ValueError, OverflowError):  # OverflowError: "inf"
            expires_at = None
        return cls(
            job_id=str(job_id),
            status=str(body.get("status") or "").lower(),
            download_url=str(body.get("download_url") or ""),
            download_expires_at=expires_at,
        )


class ExportClient:
    """An export API's create, status, cancel and download endpoints, spoken through an SDK stream."""

    #: Paths relative to the API URL; `{job_id}` is filled in.
    create_path: str = ""
    status_path: str = ""
    cancel_path: str = ""
    download_path: str = ""
    #: Status words of a job still running, and of a job whose download is ready.
    active_statuses: tuple[str, ...] = ("pending", "in_progress")
    done_statuses: tuple[str, ...] = ("completed", "complete")
    #: How log lines and errors name this export, and what its 429 lock means.
    label: str = "message data export"
    lock_rule: str = "Intercom allows one at a time"

    def __init__(self, stream: IntercomStream) -> None:
        """Use the stream's base URL, headers, authenticator, session and retry policy."""
        self.stream = stream
        self.logger = stream.logger
        self.base = stream.url_base

    def _json(
        self, method: str, path: str, body: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        response = self.stream.send(self.stream.prepare(method, self.base + path, json=body))
        try:
            return t.cast("dict[str, t.Any]", response.json())
        except ValueError as exc:
            msg = f"Intercom answered {method} {path} with something that is not JSON"
            raise ExportError(msg) from exc
        finally:
            response.close()

    def create_body(self, window: Window) -> dict[str, t.Any]:
        """The JSON body that asks for one window's job."""
        raise NotImplementedError

    def create(self, window: Window) -> Job:
        """Ask Intercom for one window's job."""
        return Job.from_api(self._json("POST", self.create_path, self.create_body(window)))

    def status(self, job_id: str) -> Job:
        """Intercom's current view of a job."""
        return Job.from_api(self._json("GET", self.status_path.format(job_id=job_id)))

    def cancel(self, job_id: str) -> Job:
        """Cancel a job."""
        return Job.from_api(self._json("POST", self.cancel_path.format(job_id=job_id)))

    def download_url(self, job: Job) -> str:
        """Where to fetch the archive: never a host other than the API's (it gets the token)."""
        own = self.base + self.download_path.format(job_id=job.job_id)
        if not job.download_url:
            return own
        given = urlsplit(job.download_url)
        api = urlsplit(self.base)
        if (given.scheme, given.netloc) == (api.scheme, api.netloc):
            return job.download_url
        self.logger.warning(
            "Export job %s offers its download on %s://%s, not on the API host: "
            "downloading from %s instead so the access token never leaves the API host.",
            job.job_id,
            given.scheme,
            given.hostname,
            own,
        )
        return own

    def download(self, job: Job, dest: t.BinaryIO) -> int:
        """Stream the archive into `dest`, never holding it in memory; return its size."""
        request = self.stream.prepare(
            "GET", self.download_url(job), headers={"Accept": "application/octet-stream"}
        )
        response = self.stream.send(request)
        size = 0
        with response:
            expected = response.headers.get("Content-Length")
            for chunk in response.iter_content(_DOWNLOAD_CHUNK):
                dest.write(chunk)
                size += len(chunk)
            # Intercom's own example downloads with `curl --compressed`: with Content-Encoding
            # gzip/deflate, Content-Length counts the encoded bytes on the wire, which urllib3
            # tracks in tell(), while iter_content hands over decoded bytes. Without a length
            # (chunked) a cut-short body is caught by the archive's own check (CRCs, trailer).
            received = response.raw.tell() if response.raw is not None else size
        if expected and expected.isdigit() and int(expected) != received:
            msg = f"download of job {job.job_id} was cut short: {received} of {expected} bytes"
            raise ArchiveError(msg)
        return size

    def open_archive(self, path: Path) -> Archive:
        """Sniff and check a downloaded archive (every byte read once)."""
        return Archive.open(path)

    def inspect(self, job: Job, window: Window, archive: Archive) -> None:
        """Check a readable archive before any row is emitted; raise SplitWindow to split."""
