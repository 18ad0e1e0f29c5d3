"""`message_other_statistics`: the rows of every archive member whose file kind has no typed stream.

Intercom's list of statistics is not closed (the receipt file's `first_*` columns and the overview's
`*_total` columns name more than any file we have seen), so a file of a new kind must still land
somewhere: one record per CSV row, every column kept as text under its header.
"""

from __future__ import annotations

import hashlib
import json
import typing as t

from tap_intercom_export.content.schemas import FILE_KINDS, LINEAGE_PROPERTIES
from tap_intercom_export.content.streams import MessageStatStream
from tap_intercom_export.jobs.archive import DecodeCounter, iter_csv
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from tap_intercom_export.jobs.archive import Archive, Member
    from tap_intercom_export.jobs.model import WindowExport

#: Key of the `rows` object of `message_export_jobs` that counts this stream's records.
ROWS_KEY = "other_statistics"

_TEXT = {"type": ["string", "null"]}


def _schema() -> dict[str, t.Any]:
    lineage = {k: v for k, v in LINEAGE_PROPERTIES.items() if k != "extra_columns"}
    return {
        "type": "object",
        "properties": {
            "kind": {"type": ["string"], "description": "File kind, e.g. spam_complaint."},
            "row_key": {
                "type": ["string"],
                "description": "Hash of the kind and the row's columns: the same row re-exported "
                "gets the same key, so loaders upsert it.",
            },
            "file": {"type": ["string"], "description": "Archive member the row was read from."},
            "receipt_id": {**_TEXT, "description": "The row's receipt_id, when the file has one."},
            "data": {
                "type": ["object"],
                "additionalProperties": _TEXT,
                "description": "Every column of the row, as text, keyed by its header.",
            },
            **lineage,
        },
        "additionalProperties": False,
    }


def column_names(header: list[str]) -> list[str]:
    """Unique, non-empty names for a header, so no column overwrites another in `data`."""
    names: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(header):
        base = name or f"column_{i + 1}"
        unique, n = base, 1
        while unique in seen:
            n += 1
            unique = f"{base}_{n}"
        seen.add(unique)
        names.append(unique)
    return names


class MessageOtherStatisticsStream(MessageStatStream):
    """Rows of the export's CSV files of a kind this tap has no typed stream for."""

    name = "message_other_statistics"
    primary_keys = ("kind", "row_key")
    schema = _schema()

    def _typed_rows(self, result: WindowExport) -> t.Iterator[dict[str, t.Any]]:
        """Every row of the unknown kinds in the window, as records (RECORD and BATCH alike)."""
        result.rows[ROWS_KEY] = 0
        if result.archive is None:
            return
        window = result.window
        lineage = {
            "export_job_id": result.job.job_id,
            "export_window_start": iso(window.start),
            "export_window_end": iso(window.end),
        }
        for member in result.archive.members:
            if member.kind not in FILE_KINDS:
                for record in self._member_rows(result.archive, member):
                    result.rows[ROWS_KEY] += 1
                    yield {**record, **lineage}

    def _member_rows(self, archive: Archive, member: Member) -> t.Iterator[dict[str, t.Any]]:
        counter = DecodeCounter()
        with archive.open_member(member) as raw:
            header, rows = iter_csv(raw, counter)
            names = column_names(header)
            width = len(names)
            previous, repeat = "", 0
            for row in rows:
                if not row:
                    continue
                data: dict[str, str | None] = dict.fromkeys(names)
                for i, value in enumerate(row):
                    data[names[i] if i < width else f"column_{i + 1}"] = value or None
                digest = hashlib.sha256(
                    json.dumps([member.kind, data], sort_keys=True).encode()
                ).hexdigest()[:32]
                # An identical row right after another is a second occurrence, not a re-send:
                # it gets its own key (stable as long as the file repeats it the same way).
                repeat = repeat + 1 if digest == previous else 0
                previous = digest
                yield {
                    "kind": member.kind,
                    "row_key": f"{digest}-{repeat + 1}" if repeat else digest,
                    "file": member.name,
                    "receipt_id": data.get("receipt_id"),
                    "data": data,
                }
        counter.report(self.logger, member.name)
