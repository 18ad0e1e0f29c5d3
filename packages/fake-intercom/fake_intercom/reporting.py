"""The fake's reporting data export: datasets, deterministic rows and Intercom's job lifecycle.

As Intercom's OpenAPI descriptions (2.14, 2.16, Preview) and the public clients that call it
describe it: `get_datasets` (qualified ids from 2.16 and in Preview), enqueue validation (400
`bad_request` with the reference's messages), at most 5 pending jobs per workspace (429), a job's
first status calls may answer 404 (a client notes it), `pending` then `complete` or `failed`, a
gzipped CSV download that needs `Accept: application/octet-stream`, and 403 for a token without
the "Export reporting data" permission. Times are written `YYYY-MM-DD HH:MM:SS` in the
workspace's zone, without the zone (a public client that reads real exports notes it);
`truth()` gives each row's instants in UTC. The datasets and their rows are in reporting_data.py.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import shutil
import tarfile
import tempfile
import threading
import typing as t
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from fake_intercom.core import Request, Response, Server, error_body
from fake_intercom.reporting_data import (
    TIME_KINDS,
    FakeAttribute,
    FakeDataset,
    datasets,
    value,
)

if t.TYPE_CHECKING:
    from fake_intercom.workspace import Workspace

OPTIONS = frozenset({"reporting_container", "reporting_script", "reporting_forbidden"})
MAX_PENDING = 5


@dataclass
class ReportingJob:
    """One enqueued job and where it is in its status script."""

    job_id: str
    dataset: FakeDataset
    attributes: list[FakeAttribute]
    start: int
    end: int
    script: list[str]
    not_found: int = 0
    polls: int = 0
    status: str = "pending"
    file: Path | None = None

    def body(self, base_url: str) -> dict[str, t.Any]:
        """Intercom's job model."""
        done = self.status == "complete"
        return {
            "job_identifier": self.job_id,
            "status": self.status,
            "download_url": f"{base_url}/download/reporting_data/{self.job_id}" if done else "",
            "download_expires_at": "",
        }


@dataclass
class ReportingAPI:
    """Reporting endpoints of the fake, with knobs tests turn."""

    fake: Server
    workspace: Workspace
    start: int
    end: int
    container: str = "csv.gz"
    script: list[str] = field(default_factory=lambda: ["pending", "pending", "complete"])
    forbidden: bool = False
    datasets: list[FakeDataset] = field(default_factory=datasets)
    jobs: dict[str, ReportingJob] = field(default_factory=dict)
    #: Status scripts for the next jobs enqueued, one list per job (then `script`).
    next_scripts: list[list[str]] = field(default_factory=list)
    #: The next jobs' first status calls answer 404 this many times.
    not_found_polls: int = 0
    #: Pending jobs other tools of the workspace hold (they count against the 5).
    foreign_pending: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        """Keep built files in a private temporary folder."""
        self.workdir = Path(tempfile.mkdtemp(prefix="fake-intercom-reporting-"))
        self._ids = itertools.count(1)

    # -- data -------------------------------------------------------------------------------

    def dataset(self, dataset_id: str) -> FakeDataset | None:
        """A dataset by id."""
        return next((d for d in self.datasets if d.id == dataset_id), None)

    def _values(self, dataset_id: str, start: int, end: int) -> list[dict[str, str | int | None]]:
        ds = self.dataset(dataset_id)
        if ds is None:
            msg = f"no dataset {dataset_id!r} in the fake"
            raise KeyError(msg)
        first = max(0, -(-(max(start, self.start) - self.start) // ds.step))
        out = []
        i = first
        while (ts := self.start + i * ds.step) <= min(end, self.end - 1):
            out.append({a.id: value(a, i, ts) for a in ds.attributes})
            i += 1
        return out

    def rows(self, dataset_id: str, start: int, end: int) -> list[dict[str, str]]:
        """Rows whose time attribute lies in [start, end] (both inclusive), as the CSV writes them.

        Keyed by attribute id; times are local text in the workspace's CSV zone.
        """
        local = self.workspace.local_text
        return [
            {k: local(v) if isinstance(v, int) else (v or "") for k, v in row.items()}
            for row in self._values(dataset_id, start, end)
        ]

    def truth(self, dataset_id: str, start: int, end: int) -> list[dict[str, str | None]]:
        """The same rows with every time as its instant in RFC 3339 UTC (None when empty).

        What a tap should emit for the time attributes, whatever zone the CSV was written in.
        """
        utc = self.workspace.utc_text
        return [
            {k: utc(v) if isinstance(v, int) else v for k, v in row.items()}
            for row in self._values(dataset_id, start, end)
        ]

    def time_attributes(self, dataset_id: str) -> list[str]:
        """Ids of a dataset's attributes whose values are instants."""
        ds = self.dataset(dataset_id)
        return [a.id for a in ds.attributes if a.kind in TIME_KINDS] if ds else []

    def pending(self) -> int:
        """Pending jobs of the workspace (ours and other tools')."""
        return self.foreign_pending + sum(1 for j in self.jobs.values() if j.status == "pending")

    # -- routes -----------------------------------------------------------------------------

    def _qualified(self) -> bool:
        return self.fake.at_least(2, 16)

    def _refuse(self) -> Response | None:
        if not self.fake.at_least(2, 14):
            return Response(404, error_body("not_found", "Resource not found"))
        if self.forbidden:
            return Response(
                403,
                error_body(
                    "token_unauthorized", "Not authorized to access resource: export_reporting_data"
                ),
            )
        return None

    def get_datasets(self, _req: Request, _m: t.Any) -> Response:
        """GET /export/reporting_data/get_datasets."""
        refused = self._refuse()
        if refused:
            return refused
        return Response(
            200,
            {"type": "list", "data": [d.api(qualified=self._qualified()) for d in self.datasets]},
        )

    def enqueue(self, req: Request, _m: t.Any) -> Response:
        """POST /export/reporting_data/enqueue."""
        refused = self._refuse()
        if refused:
            return refused
        body = req.body if isinstance(req.body, dict) else {}
        invalid = self._invalid(body)
        if invalid:
            return Response(400, error_body("bad_request", invalid))
        ds = self.dataset(str(body["dataset_id"]))
        if ds is None:  # _invalid said so already
            return Response(400, error_body("bad_request", "dataset_id is invalid"))
        by_id = self._attributes(ds)
        ids, start, end = body["attribute_ids"], int(body["start_time"]), int(body["end_time"])
        with self.lock:
            if self.pending() >= MAX_PENDING:
                msg = f"Exceeded rate limit of {MAX_PENDING} pending reporting dataset export jobs"
                return Response(429, error_body("rate_limit_exceeded", msg))
            script = self.next_scripts.pop(0) if self.next_scripts else self.script
            job = ReportingJob(
                f"rep{next(self._ids):04d}",
                ds,
                [by_id[i] for i in ids],
                start,
                end,
                list(script),
                self.not_found_polls,
            )
            self.jobs[job.job_id] = job
        return Response(200, job.body(self.fake.url))

    def _attributes(self, ds: FakeDataset) -> dict[str, FakeAttribute]:
        return {(a.qualified_id if self._qualified() else a.id): a for a in ds.attributes}

    def _invalid(self, body: dict[str, t.Any]) -> str | None:
        """What is wrong with an enqueue body, in the words of the OpenAPI's 400 examples."""
        for name in ("dataset_id", "attribute_ids", "start_time", "end_time"):
            if name not in body:
                return f"'{name}' is a required parameter"
        ds = self.dataset(str(body["dataset_id"]))
        if ds is None:
            return f"{body['dataset_id']} is not a valid dataset_id"
        ids = body["attribute_ids"]
        if not isinstance(ids, list):
            return "'attribute_ids' not an array must be of type Array"
        if not ids:
            return "attribute_ids must contain at least one attribute_id"
        bad = [str(i) for i in ids if i not in self._attributes(ds)]
        if bad:
            return f"attribute_ids invalid for {ds.id} dataset: {', '.join(bad)}"
        try:
            start, end = int(body["start_time"]), int(body["end_time"])
        except (TypeError, ValueError):
            return "start_time and end_time must be unix timestamps"
        # Not in the reference's examples: a range that ends before it starts.
        return "end_time must be after start_time" if end <= start else None

    def status(self, _req: Request, m: t.Any) -> Response:
        """GET /export/reporting_data/{id}: each call moves the job one step along its script."""
        refused = self._refuse()
        if refused:
            return refused
        job = self.jobs.get(m.group(1))
        with self.lock:
            if job is not None and job.not_found > 0:
                job.not_found -= 1
                job = None
            if job is None:
                return Response(
                    404,
                    error_body("not_found", f"Export job not found for identifier: {m.group(1)}"),
                )
            if job.status == "pending":
                job.polls += 1
                job.status = job.script[min(job.polls, len(job.script) - 1)]
                if job.status == "complete":
                    self._build(job)
        return Response(200, job.body(self.fake.url))

    def download(self, req: Request, m: t.Any) -> Response:
        """GET /download/reporting_data/{id}."""
        refused = self._refuse()
        if refused:
            return refused
        job = self.jobs.get(m.group(1))
        if job is None or job.file is None:
            return Response(
                404, error_body("not_found", f"Export job not found for identifier: {m.group(1)}")
            )
        if req.headers.get("accept") != "application/octet-stream":
            return Response(
                406, error_body("not_acceptable", "Accept: application/octet-stream required")
            )
        return Response(200, file=str(job.file))

    def _build(self, job: ReportingJob) -> None:
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow([a.header for a in job.attributes])
        for row in self.rows(job.dataset.id, job.start, job.end):
            writer.writerow([row[a.id] for a in job.attributes])
        data = buf.getvalue().encode("utf-8")
        name = f"{job.dataset.id}_{job.job_id}.csv"
        job.file = self.workdir / f"{job.job_id}.{self.container}"
        write_file(job.file, name, data, self.container)

    def close(self) -> None:
        """Remove built files."""
        shutil.rmtree(self.workdir, ignore_errors=True)


def write_file(path: Path, name: str, data: bytes, container: str) -> None:
    """One CSV as gzip (default), tar.gz, zip, or plain CSV with a UTF-8 BOM."""
    if container == "csv.gz":
        with gzip.open(path, "wb") as gz:
            gz.write(data)
    elif container == "tar.gz":
        with tarfile.open(path, "w:gz") as tf:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    elif container == "zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(name, data)
    elif container == "csv":
        path.write_bytes(b"\xef\xbb\xbf" + data)
    else:
        msg = f"unknown container {container}"
        raise ValueError(msg)


def install(
    fake: Server, workspace: Workspace, *, start: int, end: int, **kwargs: t.Any
) -> ReportingAPI:
    """Add the reporting routes to a fake; return the knobs (see OPTIONS)."""
    api = ReportingAPI(
        fake,
        workspace,
        start,
        end,
        container=kwargs.get("reporting_container", "csv.gz"),
        script=list(kwargs.get("reporting_script") or ["pending", "pending", "complete"]),
        forbidden=bool(kwargs.get("reporting_forbidden")),
    )
    fake.route("GET", r"/export/reporting_data/get_datasets", api.get_datasets)
    fake.route("POST", r"/export/reporting_data/enqueue", api.enqueue)
    fake.route("GET", r"/export/reporting_data/([\w-]+)", api.status)
    fake.route("GET", r"/download/reporting_data/([\w-]+)", api.download)
    fake.on_stop(api.close)
    return api
