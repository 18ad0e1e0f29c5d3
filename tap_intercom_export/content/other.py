"""`message_other_statistics`: the rows of every archive member whose file kind has no typed stream.

Intercom's list of statistics is not closed (the receipt file's `first_*` columns and the overview's
`*_total` columns name more than any file we have seen), so a file of a new kind must still land
somewhere: one record per CSV row, every column kept as text under its header.
"""

from __future__ import annotations

import hashlib
import json
import typing as t

from typing_extensions import override

from tap_intercom_export.content.schemas import FILE_KINDS, LINEAGE_PROPERTIES
from tap_intercom_export.content.streams import MessageStatStream

if t.TYPE_CHECKING:
    from tap_intercom_export.jobs.archive import Member
    from tap_intercom_export.jobs.model import WindowExport

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


class OtherRows:
    """One member's rows as records of `message_other_statistics`: every column kept as text."""

    def __init__(self, member: Member, header: list[str]) -> None:
        """Name the columns (unique, none empty) of this member's header."""
        self.member = member
        self.names = column_names(header)
        self.width = len(self.names)
        # Every column has a place (`data`) and every value stays text: nothing to report.
        self.unknown: list[str] = []
        self.ragged_rows = 0
        self.bad_values: dict[str, int] = {}
        self._previous, self._repeat = "", 0

    def type_row(self, row: list[str], lineage: dict[str, t.Any]) -> dict[str, t.Any]:
        """The record of one row, keyed by a hash of its kind and values."""
        names, width = self.names, self.width
        data: dict[str, str | None] = dict.fromkeys(names)
        for i, value in enumerate(row):
            data[names[i] if i < width else f"column_{i + 1}"] = value or None
        digest = hashlib.sha256(
            json.dumps([self.member.kind, data], sort_keys=True).encode()
        ).hexdigest()[:32]
        # An identical row right after another is a second occurrence, not a re-send: it gets
        # its own key (stable as long as the file repeats it the same way).
        self._repeat = self._repeat + 1 if digest == self._previous else 0
        self._previous = digest
        return {
            "kind": self.member.kind,
            "row_key": f"{digest}-{self._repeat + 1}" if self._repeat else digest,
            "file": self.member.name,
            "receipt_id": data.get("receipt_id"),
            "data": data,
            **lineage,
        }


class MessageOtherStatisticsStream(MessageStatStream):
    """Rows of the export's CSV files of a kind this tap has no typed stream for."""

    name = "message_other_statistics"
    primary_keys = ("kind", "row_key")
    schema = _schema()
    rows_key = "other_statistics"

    @override
    def members(self, result: WindowExport) -> list[Member]:
        """Every member of a kind without a typed stream."""
        members = result.archive.members if result.archive else []
        return [m for m in members if m.kind not in FILE_KINDS]

    @override
    def typer(self, member: Member, header: list[str], **_kinds: t.Any) -> OtherRows:
        """Every column of the row under its header, in `data` (all text: no typing to choose)."""
        return OtherRows(member, header)
