"""Intercom's message data export endpoints and the checks its archives need.

https://developers.intercom.com/docs/references/rest-api/api.intercom.io/data-export
"""

from __future__ import annotations

import typing as t

from typing_extensions import override

from tap_intercom_export.content.kinds import ContentNamer
from tap_intercom_export.content.schemas import FILE_KINDS
from tap_intercom_export.jobs.api import ExportClient, Job, SplitWindow
from tap_intercom_export.jobs.archive import Archive, DecodeCounter, Member, iter_csv

if t.TYPE_CHECKING:
    from pathlib import Path

    from tap_intercom_export.client import IntercomStream
    from tap_intercom_export.jobs.windows import Window


class ContentExportClient(ExportClient):
    """`POST /export/content/data`, poll, `GET /download/content/data/{id}`, `POST /export/cancel/{id}`."""

    create_path = "/export/content/data"
    status_path = "/export/content/data/{job_id}"
    cancel_path = "/export/cancel/{job_id}"
    download_path = "/download/content/data/{job_id}"

    def __init__(self, stream: IntercomStream) -> None:
        """Speak through `stream`, with Intercom's cap on the rows of one job from its settings."""
        super().__init__(stream)
        self.row_limit = stream.settings.export_row_limit
        #: Unknown file kinds already named in a warning (once per kind and run).
        self.reported_kinds: set[str] = set()

    @override
    def create_body(self, window: Window) -> dict[str, t.Any]:
        """Intercom's bounds are inclusive unix seconds on the messages' creation time."""
        return {
            "created_at_after": window.created_at_after,
            "created_at_before": window.created_at_before,
        }

    @override
    def open_archive(self, path: Path) -> Archive:
        """Name members by the message statistic they hold (`opens_...csv` -> `open`)."""
        return Archive.open(path, ContentNamer())

    @override
    def inspect(self, job: Job, window: Window, archive: Archive) -> None:
        """Name each new unknown file kind once; split a window whose receipts reach the row cap."""
        for member in archive.members:
            if member.kind not in FILE_KINDS and member.kind not in self.reported_kinds:
                self.reported_kinds.add(member.kind)
                self.logger.warning(
                    "Export job %s has a file of kind %r (%s), which has no typed stream: its rows "
                    "go to message_other_statistics (select it to keep them). Report the kind so "
                    "it gets a stream of its own.",
                    job.job_id,
                    member.kind,
                    member.name,
                )
        lines = sum(m.newlines for m in archive.members if m.kind == "receipt")
        # Newlines bound the row count from above (header and quoted newlines included), so
        # only a file that could have reached the cap is counted exactly.
        if lines < self.row_limit:
            return
        rows = sum(_count_rows(archive, m) for m in archive.members if m.kind == "receipt")
        if rows >= self.row_limit:
            msg = (
                f"its {rows} receipts reach export_row_limit={self.row_limit} "
                "(Intercom cuts a job there), so the export was truncated"
            )
            raise SplitWindow(msg)


def _count_rows(archive: Archive, member: Member) -> int:
    with archive.open_member(member) as stream:
        _, rows = iter_csv(stream, DecodeCounter())
        return sum(1 for _ in rows)
