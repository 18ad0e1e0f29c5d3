"""Reporting datasets as JSON schemas: one property per attribute, typed from what is knowable.

Intercom's `get_datasets` lists each dataset's attributes with an id, a display name and (from
API 2.16) a qualified id such as `timestamp.conversation_started_at`, but no types. The CSV heads
a column with the plain id of a standard attribute and with the display name of a custom one,
and the same name can head two columns (a custom attribute of the person and of the
conversation), so columns are matched to attributes one by one, never by name alone.
https://developers.intercom.com/docs/references/rest-api/api.intercom.io/reporting-data-export
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import typing as t
from dataclasses import dataclass, field

from tap_intercom_export.reporting.zone import ReportingZone, ZoneCheck, parse_time

LINEAGE = ("export_job_id", "export_window_start", "export_window_end")
EXTRA = "extra_columns"
ROW_KEY = "_row_key"
RESERVED = frozenset({*LINEAGE, EXTRA, ROW_KEY})

# Namespaces of standard attributes in qualified ids: their column is headed by the plain id.
_STANDARD_NAMESPACES = frozenset({"standard", "timestamp", "duration"})
_PLAIN_ID = re.compile(r"^[a-z][a-z0-9_]*$")
# Names of durations before 2.16 (no `duration.` namespace): Intercom writes them in seconds.
_DURATION_HINT = re.compile(
    r"(^|_)(time_to|duration|handling_time|seconds|response_time|wait_time)"
)
_DESCRIPTION = re.compile(r"^Intercom attribute `([^`]+)`(?: \(`([^`]+)`\))?")
# Row identifiers seen in public sources; any other dataset gets a hashed `_row_key`.
KNOWN_KEYS: dict[str, str] = {
    "conversation": "conversation_id",
    "tickets": "ticket_id",
    "call": "call_id",
}


@dataclass(frozen=True)
class Attribute:
    """One attribute of a reporting dataset, and the property that holds it."""

    id: str
    name: str
    prop: str
    kind: str  # "date-time", "number" or "string"
    qualified_id: str | None = None

    def request_id(self, *, qualified: bool) -> str:
        """The id to send in `attribute_ids` (qualified from 2.16 when Intercom gives one)."""
        return self.qualified_id if qualified and self.qualified_id else self.id

    def json_schema(self, *, time_attribute: bool) -> dict[str, t.Any]:
        """The property: nullable, typed, with the attribute's ids in its description."""
        ids = f"`{self.id}` (`{self.qualified_id}`)" if self.qualified_id else f"`{self.id}`"
        note = " The dataset's time attribute." if time_attribute else ""
        schema: dict[str, t.Any] = {
            "type": ["number" if self.kind == "number" else "string", "null"],
            "title": self.name,
            "description": f"Intercom attribute {ids}: {self.name}.{note}",
        }
        if self.kind == "date-time":
            schema["format"] = "date-time"
        return schema


def _kind(attr_id: str, qualified: str | None) -> str:
    namespace = qualified.split(".", 1)[0] if qualified and "." in qualified else None
    if namespace == "timestamp" or (namespace is None and attr_id.endswith("_at")):
        return "date-time"
    if namespace == "duration" or (namespace is None and _DURATION_HINT.search(attr_id)):
        return "number"
    return "string"


def _header_name(attr_id: str, name: str, qualified: str | None) -> str:
    """How Intercom heads the attribute's CSV column: plain id if standard, else display name."""
    if qualified and "." in qualified:
        standard = qualified.split(".", 1)[0] in _STANDARD_NAMESPACES
    else:
        # Before 2.16 there is no namespace: a snake_case id is taken for a standard attribute.
        standard = bool(_PLAIN_ID.match(attr_id))
    return attr_id if standard or not name.strip() else name.strip()


def _unique(name: str, taken: set[str]) -> str:
    # Compared without case: several loaders fold column names to lower case.
    candidate, n = name, 1
    while candidate.lower() in taken or candidate in RESERVED:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate.lower())
    return candidate


@dataclass
class DatasetSpec:
    """A reporting dataset: its attributes as properties, its time attribute and its key."""

    id: str
    name: str
    time_attribute_id: str
    attributes: list[Attribute]
    description: str = ""
    key: tuple[str, ...] = field(default=())

    @property
    def stream_name(self) -> str:
        """`reporting_<dataset id>`."""
        return f"reporting_{self.id}"

    @classmethod
    def from_api(cls, body: dict[str, t.Any]) -> DatasetSpec:
        """Read one entry of `get_datasets` (attributes in Intercom's order, names made unique)."""
        taken: set[str] = set()
        attributes = []
        for raw in body.get("attributes") or []:
            if not isinstance(raw, dict) or not raw.get("id"):
                continue
            attr_id, name = str(raw["id"]), str(raw.get("name") or raw["id"])
            qualified = str(raw["qualified_id"]) if raw.get("qualified_id") else None
            prop = _unique(_header_name(attr_id, name, qualified), taken)
            attributes.append(Attribute(attr_id, name, prop, _kind(attr_id, qualified), qualified))
        spec = cls(
            id=str(body["id"]),
            name=str(body.get("name") or body["id"]),
            time_attribute_id=str(body.get("default_time_attribute_id") or ""),
            attributes=attributes,
            description=str(body.get("description") or ""),
        )
        known = KNOWN_KEYS.get(spec.id) or f"{spec.id.removesuffix('s')}_id"
        by_id = {a.id: a for a in attributes}
        spec.key = (by_id[known].prop,) if known in by_id else (ROW_KEY,)
        return spec

    @classmethod
    def from_catalog(
        cls, dataset_id: str, schema: dict[str, t.Any], key: t.Sequence[str]
    ) -> DatasetSpec:
        """Rebuild a dataset from the schema a catalog carries (its descriptions hold the ids)."""
        attributes, time_attribute = [], ""
        for prop, sub in (schema.get("properties") or {}).items():
            match = _DESCRIPTION.match(str(sub.get("description") or ""))
            if prop in RESERVED or not match:
                continue
            types = sub.get("type") or []
            kind = (
                "date-time"
                if sub.get("format") == "date-time"
                else "number"
                if "number" in types
                else "string"
            )
            attributes.append(
                Attribute(match[1], str(sub.get("title") or prop), prop, kind, match[2])
            )
            if "time attribute" in str(sub.get("description")):
                time_attribute = match[1]
        return cls(
            dataset_id,
            dataset_id,
            time_attribute,
            attributes,
            str(schema.get("description") or ""),
            tuple(key),
        )

    def json_schema(self) -> dict[str, t.Any]:
        """Properties in Intercom's attribute order, then lineage and what did not fit."""
        props: dict[str, t.Any] = {
            a.prop: a.json_schema(time_attribute=a.id == self.time_attribute_id)
            for a in self.attributes
        }
        if ROW_KEY in self.key:
            props[ROW_KEY] = {
                "type": ["string"],
                "description": "Hash of the row's values and its rank among equal rows of the window "
                "(this dataset has no row identifier): a re-export upserts instead of duplicating.",
            }
        props["export_job_id"] = {"type": ["string", "null"]}
        props["export_window_start"] = {"type": ["string"], "format": "date-time"}
        props["export_window_end"] = {"type": ["string", "null"], "format": "date-time"}
        props[EXTRA] = {
            "type": ["object", "null"],
            "additionalProperties": {"type": ["string", "null"]},
            "description": "Columns no attribute matched, and values that did not fit their "
            "attribute's type, as Intercom wrote them.",
        }
        return {
            "type": "object",
            "description": f"Intercom reporting dataset {self.id}: {self.description or self.name}",
            "properties": props,
            "required": [*self.key, "export_window_start"],
        }


class RowMapper:
    """Turns CSV rows into records: columns matched to attributes one by one, values typed."""

    def __init__(
        self,
        spec: DatasetSpec,
        header: list[str],
        requested: list[Attribute],
        zone: ReportingZone | None = None,
        check: ZoneCheck | None = None,
    ) -> None:
        """Match each column to a requested attribute by id, then display name, then property.

        Times are read in `zone` (default UTC); `check` counts where the time attribute falls.
        """
        self.spec = spec
        self.zone = zone or ReportingZone("UTC", "default")
        self.check = check
        self.header = header
        remaining = list(requested)
        self.columns: list[Attribute | None] = []
        seen: dict[str, int] = {}
        self.extra_names: list[str] = []
        for col in header:
            attr = next((a for a in remaining if a.id == col), None)
            attr = attr or next((a for a in remaining if a.name == col), None)
            attr = attr or next((a for a in remaining if a.prop == col), None)
            if attr is not None:
                remaining.remove(attr)
            self.columns.append(attr)
            seen[col] = seen.get(col, 0) + 1
            self.extra_names.append(col if seen[col] == 1 else f"{col}#{seen[col]}")
        #: Columns no requested attribute matches (kept in `extra_columns`).
        self.unknown = [n for n, a in zip(self.extra_names, self.columns, strict=True) if a is None]
        self.width = len(header)
        #: Per property, values that did not fit its type (kept as text in `extra_columns`).
        self.bad_values: dict[str, int] = {}
        self.ragged_rows = 0
        self._ranks: dict[str, int] = {}
        self.time_column = next(
            (i for i, a in enumerate(self.columns) if a and a.id == spec.time_attribute_id), None
        )

    def type_row(self, row: list[str], lineage: dict[str, t.Any]) -> dict[str, t.Any]:
        """One record: typed values, lineage, unmatched or unfit values in `extra_columns`."""
        out: dict[str, t.Any] = {}
        extra: dict[str, str | None] = {}
        if len(row) != len(self.columns):
            self.ragged_rows += 1
        for i, raw in enumerate(row):
            attr = self.columns[i] if i < len(self.columns) else None
            if attr is None:
                extra[self.extra_names[i] if i < len(self.extra_names) else f"column_{i + 1}"] = raw
                continue
            if i == self.time_column and self.check is not None:
                when = parse_time(raw)
                if when is not None:
                    self.check.add(when)
            value = convert(attr.kind, raw, self.zone)
            if value is _UNFIT:
                out[attr.prop] = None
                extra[attr.prop] = raw
                self.bad_values[attr.prop] = self.bad_values.get(attr.prop, 0) + 1
            else:
                out[attr.prop] = value
        for attr in self.columns[len(row) :]:
            if attr is not None:
                out[attr.prop] = None
        if ROW_KEY in self.spec.key:
            out[ROW_KEY] = self._row_key(row)
        out.update(lineage)
        out[EXTRA] = extra or None
        return out

    def _row_key(self, row: list[str]) -> str:
        digest = hashlib.sha256(json.dumps([self.spec.id, self.header, row]).encode()).hexdigest()[
            :40
        ]
        rank = self._ranks[digest] = self._ranks.get(digest, 0) + 1
        return f"{digest}-{rank}"


_UNFIT = object()


def convert(kind: str, raw: str, zone: ReportingZone) -> t.Any:
    """A CSV value as its property's type; `_UNFIT` when it does not fit (kept by the caller)."""
    text = raw.strip()
    if text == "":
        return None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return _UNFIT
        if not math.isfinite(number):  # "nan", "inf", 1e999: not a JSON number
            return _UNFIT
        return (
            int(number)
            if number.is_integer() and "." not in text and "e" not in text.lower()
            else number
        )
    if kind == "date-time":
        when = parse_time(text)
        return _UNFIT if when is None else zone.instant(when)
    return raw
