"""The fake's message data export: a deterministic message history and Intercom's job lifecycle."""

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
import uuid
import zipfile
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from fake_intercom import message_stats
from fake_intercom.core import (
    PREVIEW,
    Request,
    Response,
    Server,
    encoded_copy,
    error_body,
    real_sleep,
    real_time,
    version_key,
)
from fake_intercom.filekinds import INVENTED_KIND, KINDS, SURVEY_QUESTIONS, header

_utc_text = message_stats.utc_text


@dataclass
class Dataset:
    """Receipts every `step` seconds from `start` to `end`, and engagement derived from them.

    Receipt i is created at `start + i * step`, so receipts fall exactly on hour and window
    boundaries: a gap or an overlap between windows shows up as a missing or doubled row.
    """

    start: int
    end: int
    receipts_per_day: int = 48
    #: Seconds between a message and its engagement (opens, clicks, ...): days, to test lookback.
    engagement_delay: int = 0

    @property
    def step(self) -> int:
        """Seconds between two receipts."""
        return max(86400 // self.receipts_per_day, 1)

    def receipt_indexes(self, after: int, before: int) -> range:
        """Indexes of receipts created in [after, before] (inclusive, like Intercom)."""
        lo = max(after, self.start)
        hi = min(before, self.end - 1)
        if hi < lo:
            return range(0)
        first = -(-(lo - self.start) // self.step)
        last = (hi - self.start) // self.step
        return range(first, last + 1)

    def rows(
        self, kind: str, after: int, before: int, limit: int | None = None, until: int | None = None
    ) -> list[dict[str, str]]:
        """The CSV rows of one kind for a job over [after, before].

        The job sees engagement up to `until` (None: all of it).
        """
        indexes = self.receipt_indexes(after, before)
        if limit is not None:
            indexes = indexes[:limit]
        if kind == "overview":
            return self._overview(indexes)
        out = []
        for i in indexes:
            row = self._row(kind, i)
            if row is None or (
                until is not None and not message_stats.engaged_by(kind, row, until)
            ):
                continue
            if until is not None and kind == "receipt":
                message_stats.blank_late_firsts(row, until)
            out.append(row)
        return out

    def _row(self, kind: str, i: int) -> dict[str, str] | None:
        c = self.start + i * self.step
        e = c + self.engagement_delay  # engagement times are counted from here
        rid = f"rcpt-{i}"
        if kind in message_stats.RULES:
            return message_stats.row(kind, i, e)
        if kind == "receipt":
            row = dict.fromkeys(KINDS["receipt"], "")
            row.update(
                user_id=f"user-{i % 97}",
                email=f"user{i % 97}@example.com",
                name='Smith, "Jo"\nJr' if i % 11 == 0 else f"User {i % 97}",
                ruleset_id=str(1000 + i % 5),
                content_id=str(2000 + i % 5),
                content_type="email" if i % 2 else "post",
                content_title=f"Campaign {i % 5}",
                created_via="series" if i % 3 == 0 else "manual",
                receipt_id=rid,
                received_at=str(c),
                first_open=str(e + 60) if i % 2 == 0 else "",
                first_click=_utc_text(e + 120) if i % 3 == 0 else "",
                first_reply=str(e + 300) if i % 7 == 0 else "",
                first_fin_step_reached=str(e + 30) if i % 6 == 5 else "",
            )
            return row
        rules: dict[str, tuple[int, int, t.Callable[[], dict[str, str]]]] = {
            "open": (2, 0, lambda: {"opened_at": _utc_text(e + 60)}),
            "click": (3, 0, lambda: {"clicked_at": str(e + 120), "link_type": "link",
                                     "url": f"https://example.com/p?a=1,b={i}"}),
            "reply": (7, 0, lambda: {"replied_at": str(e + 300)}),
            "completion": (5, 0, lambda: {"completed_at": str(e + 400)}),
            "series_completion": (13, 0, lambda: {"completed_at": str(e + 500),
                                                  "completion_node_ruleset_id": "77"}),
            "series_disengagement": (17, 0, lambda: {"disengaged_at": str(e + 600),
                                                     "disengaged_node_ruleset_id": "78"}),
            "dismissal": (4, 1, lambda: {"dismissed_at": _utc_text(e + 90)}),
            "tour_step_view": (6, 0, lambda: {"step_id": str(i % 3), "viewed_at": str(e + 30)}),
            "answer": (9, 0, lambda: {"answered_at": str(e + 700), "question_id": "q1",
                                      "question": SURVEY_QUESTIONS[0], "response_type": "nps",
                                      "response": str(i % 11)}),
            "answer_combined": (9, 0, lambda: {
                "user_id": f"user-{i % 97}", "user_external_id": "", "name": f"User {i % 97}",
                "email": f"user{i % 97}@example.com", "company_id": "", "company_external_id": "",
                "created_via": "manual", "received_at": str(c), "completed_at": str(e + 700),
                SURVEY_QUESTIONS[0]: str(i % 11), SURVEY_QUESTIONS[1]: 'Great, "really"',
            }),
            "checkpoint": (10, 0, lambda: {
                "user_id": f"user-{i % 97}", "company_id": "", "series_entry_record_id": f"ser-{i}",
                "ruleset_id": str(1000 + i % 5), "status_code": "2", "status_name": "completed",
                "created_at": str(c), "last_processed_at": str(c + 60), "expires_at": "",
                "times_processed": "1",
            }),
        }  # fmt: skip
        every, offset, make = rules[kind]
        if i % every != offset:
            return None
        return {"receipt_id": rid, **make()} if kind != "checkpoint" else make()

    def _overview(self, indexes: range) -> list[dict[str, str]]:
        by_ruleset: dict[int, list[int]] = {}
        for i in indexes:
            by_ruleset.setdefault(i % 5, []).append(i)
        out = []
        for r, members in sorted(by_ruleset.items()):
            row = dict.fromkeys(KINDS["overview"], "")
            opens = sum(1 for i in members if i % 2 == 0)
            row.update(
                ruleset_id=str(1000 + r),
                content_id=str(2000 + r),
                content_title=f"Campaign {r}",
                created_at=str(self.start),
                state="live",
                receipt_total=str(len(members)),
                receipt_unique=str(len(members)),
                open_total=str(opens),
                open_unique=str(opens),
                open_rate=f"{opens / len(members):.4f}",
            )
            out.append(row)
        return out


def _csv_bytes(rows: list[dict[str, str]], columns: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


@dataclass
class FakeJob:
    """One export job on the fake."""

    job_id: str
    after: int
    before: int
    script: list[str]
    polls: int = 0
    status: str = "pending"
    archive: Path | None = None
    expires_at: int | None = None
    created: float = 0.0

    def body(self, base_url: str, api: ExportAPI) -> dict[str, t.Any]:
        """Intercom's job model, in the spelling and URL form `api` is set to."""
        url = ""
        if self.status in ("completed", "complete"):
            host = api.download_host or base_url
            if api.download_url_form == "messages":  # the form of Intercom's own examples
                name = f"message-data-export.{self.job_id}.{uuid.uuid5(uuid.NAMESPACE_URL, self.job_id)}"
                url = f"{host}/download/messages/data/{name}.csv"
            else:
                url = f"{host}/download/content/data/{self.job_id}"
        return {
            api.job_key_for(): self.job_id,
            "status": self.status,
            "download_url": url,
            "download_expires_at": str(self.expires_at) if self.expires_at and url else "",
        }


@dataclass
class ExportAPI:
    """Export endpoints of the fake, with knobs tests turn."""

    fake: Server
    dataset: Dataset
    container: str = "zip"
    row_limit: int | None = None
    status_script: list[str] = field(
        default_factory=lambda: ["pending", "in_progress", "completed"]
    )
    download_host: str | None = None
    expire_after: int = 2 * 86400
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    #: Status scripts for the next jobs created, one list per job (then `status_script`).
    next_scripts: list[list[str]] = field(default_factory=list)
    #: Seconds to stall before sending a download (to interrupt a tap mid-download).
    download_delay: float = 0.0
    member_transform: t.Callable[[str, bytes], bytes] | None = None
    archive_override: t.Callable[[FakeJob, Path], None] | None = None
    #: `download_url` form: "content" (`/download/content/data/{id}`) or "messages" (Intercom's
    #: examples: `/download/messages/data/<name>.csv`; the content path then answers 404).
    download_url_form: str = "content"
    #: Key of the job id; None: as the API version spells it (see job_key_for).
    job_key: str | None = None
    #: Send downloads with `Content-Encoding` "gzip" or "deflate" (when the client accepts it).
    content_encoding: str | None = None
    #: Send downloads chunked, without Content-Length.
    chunked: bool = False
    #: How much engagement a job holds: message_stats.ALL_TIME or IN_RANGE (see there).
    first_reading: str = message_stats.ALL_TIME
    #: The fake's "now" for engagement (unix s; engagement after it has not happened yet).
    now: t.Callable[[], float] | None = None
    #: Add a file of a kind no tap knows (message_stats.INVENTED_KIND) to every archive.
    invent_kind: bool = False
    #: When > 0, a job stays pending this many real seconds after its create (benchmarks),
    #: then completes, whatever its status script says.
    job_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        """Keep built archives in a private temporary folder."""
        self.workdir = Path(tempfile.mkdtemp(prefix="fake-intercom-"))
        self._ids = itertools.count(1)

    def close(self) -> None:
        """Remove built archives."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def job_key_for(self) -> str:
        """The job id's key in the job model."""
        if self.job_key:
            return self.job_key
        # The OpenAPI schema spells it `job_identfier` in 2.7 to 2.13 and in Preview.
        version = version_key(self.fake.version)
        misspelled = (2, 7) <= version <= (2, 13) or version >= version_key(PREVIEW)
        return "job_identfier" if misspelled else "job_identifier"

    def active(self) -> FakeJob | None:
        """The job that blocks new ones, if any."""
        return next((j for j in self.jobs.values() if j.status in ("pending", "in_progress")), None)

    def create(self, req: Request, _m: t.Any) -> Response:
        """POST /export/content/data."""
        body = req.body if isinstance(req.body, dict) else {}
        try:
            after, before = int(body["created_at_after"]), int(body["created_at_before"])
        except (KeyError, TypeError, ValueError):
            return Response(
                400,
                error_body(
                    "parameter_invalid", "created_at_after and created_at_before are required"
                ),
            )
        if before < after:
            return Response(
                400,
                error_body("parameter_invalid", "created_at_before must be after created_at_after"),
            )
        with self.lock:
            if self.active():
                return Response(429, error_body("rate_limit_exceeded",
                                                "Exceeded rate limit of 1 pending message data export jobs"))  # fmt: skip
            script = self.next_scripts.pop(0) if self.next_scripts else self.status_script
            job = FakeJob(
                f"job{next(self._ids):04d}", after, before, list(script), created=real_time()
            )
            self.jobs[job.job_id] = job
        return Response(200, job.body(self.fake.url, self))

    def status(self, _req: Request, m: t.Any) -> Response:
        """GET /export/content/data/{id}: each poll moves the job one step along its script."""
        job = self.jobs.get(m.group(1))
        if job is None:
            return Response(404, error_body("not_found", "Export job not found"))
        with self.lock:
            if self.job_seconds and job.status in ("pending", "in_progress"):
                done = real_time() - job.created >= self.job_seconds
                job.script = ["pending", "completed" if done else "pending"]
            if job.status in ("pending", "in_progress") and job.script:
                job.polls += 1
                job.status = job.script[min(job.polls, len(job.script) - 1)]
                if job.status in ("completed", "complete"):
                    if not self.dataset.receipt_indexes(job.after, job.before):
                        job.status = "no_data"
                    else:
                        self._build(job)
        if job.status == "failed_504":
            # How Intercom reports a job that ran over 12 hours: HTTP 504, the job model as body.
            return Response(504, {**job.body(self.fake.url, self), "status": "failed"})
        return Response(200, job.body(self.fake.url, self))

    def cancel(self, _req: Request, m: t.Any) -> Response:
        """POST /export/cancel/{id}."""
        job = self.jobs.get(m.group(1))
        if job is None:
            return Response(404, error_body("not_found", "Export job not found"))
        with self.lock:
            if job.status in ("pending", "in_progress"):
                job.status = "canceled"
        return Response(200, job.body(self.fake.url, self))

    def download(self, req: Request, m: t.Any) -> Response:
        """GET /download/content/data/{id} or /download/messages/data/message-data-export.{id}.<uuid>.csv."""
        job = self.jobs.get(m.group(1))
        if self.download_url_form == "messages" and "/content/" in req.path:
            job = None
        if job is None or job.archive is None or not job.archive.exists():
            return Response(404, error_body("not_found", "Export not found"))
        if job.expires_at is not None and job.expires_at <= real_time():
            return Response(404, error_body("not_found", "Export expired"))
        if req.headers.get("accept") != "application/octet-stream":
            return Response(
                406, error_body("not_acceptable", "Accept: application/octet-stream required")
            )
        if self.download_delay:
            real_sleep(self.download_delay)
        headers = {"Transfer-Encoding": "chunked"} if self.chunked else {}
        encoding = self.content_encoding
        if encoding and encoding in req.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = encoding
            return Response(200, file=str(encoded_copy(job.archive, encoding)), headers=headers)
        return Response(200, file=str(job.archive), headers=headers)

    def _build(self, job: FakeJob) -> None:
        path = self.workdir / f"{job.job_id}.{self.container}"
        job.archive = path
        job.expires_at = int(real_time()) + self.expire_after
        if self.archive_override:
            self.archive_override(job, path)
            return
        stamp = datetime.fromtimestamp(job.after, timezone.utc).strftime("%Y%m%d-%H%M%S")
        members = []
        until = message_stats.cutoff(
            self.first_reading, int(self.now()) if self.now else None, job.before
        )
        kinds = [*KINDS, *([INVENTED_KIND] if self.invent_kind else [])]
        for kind in kinds:
            rows = self.dataset.rows(kind, job.after, job.before, self.row_limit, until)
            if not rows:
                continue  # Intercom leaves out the file of a statistic with no records
            data = _csv_bytes(rows, header(kind))
            if self.member_transform:
                data = self.member_transform(kind, data)
            members.append((f"{kind}_{stamp}.csv", data))
        write_archive(path, members, self.container)


def write_archive(path: Path, members: list[tuple[str, bytes]], container: str) -> None:
    """Write CSV members as a zip, a tar.gz, or (receipts only) a single gzipped CSV."""
    if container == "zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)
    elif container == "tar.gz":
        with tarfile.open(path, "w:gz") as tf:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    elif container == "csv.gz":
        receipts = next((d for n, d in members if n.startswith("receipt")), b"")
        with gzip.open(path, "wb") as gz:
            gz.write(receipts)
    else:
        msg = f"unknown container {container}"
        raise ValueError(msg)


def install(
    fake: Server,
    *,
    start: int,
    end: int,
    receipts_per_day: int = 48,
    engagement_delay: int = 0,
    **kwargs: t.Any,
) -> ExportAPI:
    """Add the export routes to a fake; return the knobs (`OPTIONS` are ExportAPI's)."""
    api = ExportAPI(fake, Dataset(start, end, receipts_per_day, engagement_delay), **kwargs)
    fake.route("POST", r"/export/content/data", api.create)
    fake.route("GET", r"/export/content/data/([\w-]+)", api.status)
    fake.route("POST", r"/export/cancel/([\w-]+)", api.cancel)
    fake.route("GET", r"/download/content/data/([\w-]+)", api.download)
    fake.route(
        "GET", r"/download/messages/data/message-data-export\.([\w-]+)\.[\w-]+\.csv", api.download
    )
    fake.on_stop(api.close)
    return api


#: `build()` keyword arguments that configure the export routes.
OPTIONS = frozenset(
    {"receipts_per_day", "engagement_delay"}
    | {f.name for f in fields(ExportAPI) if f.name not in ("fake", "dataset", "jobs", "lock")}
)
