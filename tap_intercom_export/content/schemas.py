"""Columns, types and keys of each CSV file kind in Intercom's message data export.

The column lists are those seen in real exports (see the README's Streams section). Types follow
the column names: `*_at` and `first_*` are timestamps (Intercom writes unix seconds in some files
and `YYYY-MM-DD HH:MM:SS UTC` in others), `*_total`/`*_unique` are counts, `*_rate` are numbers,
everything else (ids included) is text. An empty field is null.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from tap_intercom_export.content.values import (
    time_column,
    to_datetime,
    to_integer,
    to_number,
    to_timestamp_us,
)
from tap_intercom_export.jobs.rows import Block

DATETIME = "date-time"
INTEGER = "integer"
NUMBER = "number"
STRING = "string"

_RECEIPT = """user_id user_external_id company_id company_external_id email name ruleset_id
content_id content_type content_title created_via device ruleset_version_id receipt_id received_at
conversation_id series_id series_title node_id first_reply first_completion first_series_completion
first_series_disengagement first_series_exit first_goal_success first_tour_step_failure
first_tour_step_view first_reaction first_open first_click first_dismissal first_collected_email
first_unsubscribe first_hard_bounce first_soft_bounce first_spam_complaint first_permission_grant
first_button_tap first_screen_view first_webhook_failure first_sms_failure first_whatsapp_failure
first_push_failure first_answer first_keyword_reply first_people_reached_receipt
first_checklist_step_receipt first_checklist_step_open first_checklist_step_click
first_checklist_step_completion first_fin_helpful_answer first_fin_step_reached"""

_OVERVIEW_HEAD = """ruleset_id created_at audience_type content_title content_id content_type series_id
series_title state last_sent_at last_state_change_by last_state_change_at last_edited_by
last_edited_at url"""

# (statistic, has a *_rate column) in the order Intercom writes them in the overview file.
_OVERVIEW_STATS = [
    ("receipt", False), ("reply", True), ("completion", True), ("goal_success", True),
    ("tour_step_failure", True), ("tour_step_view", False), ("reaction", True), ("open", True),
    ("click", True), ("dismissal", True), ("collected_email", True), ("unsubscribe", True),
    ("hard_bounce", True), ("spam_complaint", True), ("permission_grant", True),
    ("button_tap", True), ("screen_view", True), ("webhook_failure", True), ("sms_failure", True),
    ("whatsapp_failure", True), ("push_failure", True), ("answer", True), ("keyword_reply", False),
    ("people_reached_receipt", True), ("checklist_step_receipt", True),
    ("checklist_step_open", True), ("checklist_step_click", True),
    ("checklist_step_completion", True), ("fin_helpful_answer", True), ("email_failure", True),
]  # fmt: skip


def _overview_columns() -> list[str]:
    cols = _OVERVIEW_HEAD.split()
    for stat, has_rate in _OVERVIEW_STATS:
        cols += [f"{stat}_total", f"{stat}_unique"] + ([f"{stat}_rate"] if has_rate else [])
    return cols


_INTEGER_COLUMNS = {"times_processed", "status_code"}


def column_type(name: str) -> str:
    """The JSON type of a CSV column, from Intercom's naming conventions."""
    if name.endswith("_at") or name.startswith("first_"):
        return DATETIME
    if name.endswith(("_total", "_unique")) or name in _INTEGER_COLUMNS:
        return INTEGER
    if name.endswith("_rate"):
        return NUMBER
    return STRING


@dataclass(frozen=True)
class FileKind:
    """One statistic's CSV file in the export archive, and the stream it feeds."""

    kind: str
    stream_name: str
    columns: tuple[str, ...]
    primary_keys: tuple[str, ...]

    def json_schema(self) -> dict[str, t.Any]:
        """The stream's JSON schema: typed CSV columns plus the export lineage columns."""
        props: dict[str, dict[str, t.Any]] = {}
        for col in self.columns:
            props[col] = _json_type(column_type(col))
        props.update(LINEAGE_PROPERTIES)
        return {"type": "object", "properties": props, "additionalProperties": False}


def _json_type(kind: str) -> dict[str, t.Any]:
    # Every CSV column is nullable, keys included: Intercom leaves fields empty (a click with no
    # URL), and a NOT NULL key column would make the loader reject the row.
    schema: dict[str, t.Any] = {"type": ["string" if kind == DATETIME else kind, "null"]}
    if kind == DATETIME:
        schema["format"] = "date-time"
    return schema


EXTRA_COLUMNS = "extra_columns"

LINEAGE_PROPERTIES: dict[str, dict[str, t.Any]] = {
    "export_job_id": {
        "type": ["string"],
        "description": "Intercom export job that produced the row.",
    },
    "export_window_start": {
        "type": ["string"],
        "format": "date-time",
        "description": "Start (inclusive) of the message creation window of that job; the bookmark.",
    },
    "export_window_end": {
        "type": ["string"],
        "format": "date-time",
        "description": "End (exclusive) of the message creation window of that job.",
    },
    EXTRA_COLUMNS: {
        "type": ["object", "null"],
        "additionalProperties": {"type": ["string", "null"]},
        "description": (
            "Columns the schema does not declare (survey questions, columns Intercom adds later) "
            "and values that did not fit their column's type, as text."
        ),
    },
}


def _kind(kind: str, stream: str, columns: str | list[str], keys: str) -> FileKind:
    cols = columns.split() if isinstance(columns, str) else columns
    return FileKind(kind, stream, tuple(cols), tuple(keys.split()))


FILE_KINDS: dict[str, FileKind] = {
    k.kind: k
    for k in [
        _kind("receipt", "message_receipts", _RECEIPT, "receipt_id"),
        _kind("open", "message_opens", "receipt_id opened_at", "receipt_id opened_at"),
        _kind("click", "message_clicks", "receipt_id clicked_at link_type url",
              "receipt_id clicked_at url"),
        _kind("reply", "message_replies", "receipt_id replied_at", "receipt_id replied_at"),
        _kind("completion", "message_completions", "receipt_id completed_at",
              "receipt_id completed_at"),
        _kind("series_completion", "message_series_completions",
              "receipt_id completed_at completion_node_ruleset_id", "receipt_id completed_at"),
        _kind("series_disengagement", "message_series_disengagements",
              "receipt_id disengaged_at disengaged_node_ruleset_id", "receipt_id disengaged_at"),
        _kind("dismissal", "message_dismissals", "receipt_id dismissed_at",
              "receipt_id dismissed_at"),
        _kind("tour_step_view", "message_tour_step_views", "receipt_id step_id viewed_at",
              "receipt_id step_id viewed_at"),
        _kind("answer", "message_answers",
              "receipt_id answered_at question_id question response_type response",
              "receipt_id question_id answered_at"),
        _kind("answer_combined", "message_answers_combined",
              "receipt_id user_id user_external_id name email company_id company_external_id "
              "created_via received_at completed_at", "receipt_id"),
        _kind("checkpoint", "message_checkpoints",
              "user_id company_id series_entry_record_id ruleset_id status_code status_name "
              "created_at last_processed_at expires_at times_processed",
              "series_entry_record_id ruleset_id created_at"),
        _kind("overview", "message_overview", _overview_columns(),
              "ruleset_id content_id export_window_start"),
        # Kinds seen in real archives beyond the reference's list (see export_csv_columns.md):
        # each file holds one row per occurrence of its statistic.
        _kind("goal_success", "message_goal_successes", "receipt_id goal_hit_at",
              "receipt_id goal_hit_at"),
        _kind("hard_bounce", "message_hard_bounces", "receipt_id hard_bounced_at",
              "receipt_id hard_bounced_at"),
        _kind("soft_bounce", "message_soft_bounces", "receipt_id soft_bounced_at",
              "receipt_id soft_bounced_at"),
        _kind("unsubscribe", "message_unsubscribes", "receipt_id unsubscribed_at",
              "receipt_id unsubscribed_at"),
        _kind("series_exit", "message_series_exits", "receipt_id exited_at",
              "receipt_id exited_at"),
        _kind("reaction", "message_reactions", "receipt_id reacted_at reaction",
              "receipt_id reacted_at"),
        _kind("tour_step_failure", "message_tour_step_failures",
              "receipt_id step_id failed_selector failure_url failed_at",
              "receipt_id step_id failed_at"),
        _kind("fin_step_reached", "message_fin_steps_reached",
              "receipt_id involved_at content_id content_type ruleset_id conversation_id",
              "receipt_id content_id involved_at"),
    ]
}  # fmt: skip


CONVERTERS: dict[str, t.Callable[[str], t.Any] | None] = {
    DATETIME: to_datetime,
    INTEGER: to_integer,
    NUMBER: to_number,
    STRING: None,
}


class ColumnReader(t.Protocol):
    """Reads a column of counts or times in one call, or says it cannot (None)."""

    def __call__(self, column: t.Sequence[str], *, is_time: bool) -> t.Sequence[t.Any] | None:
        """Counts as ints, times as microseconds since 1970, empty fields null; or None."""


class RowTyper:
    """Turns the CSV rows of one member into typed records, keeping whatever does not fit."""

    def __init__(
        self,
        spec: FileKind,
        header: list[str],
        *,
        times_us: bool = False,
        in_c: ColumnReader | None = None,
    ) -> None:
        """Plan one converter per column of this member's header.

        `times_us`: date-times as microseconds since 1970 (for Parquet), not RFC 3339 text.
        `in_c`: reads a whole count or time column in C when it can (Parquet: pyarrow).
        """
        converters = {**CONVERTERS, DATETIME: to_timestamp_us} if times_us else CONVERTERS
        self.spec = spec
        self.header = header
        known = set(spec.columns)
        self.unknown = [h for h in header if h not in known]
        self.missing = [c for c in spec.columns if c not in set(header)]
        self.width = len(header)
        self.ragged_rows = 0
        self.bad_values: dict[str, int] = {}
        #: Known columns as (position, name, converter, whether it is a time, whether `in_c`
        #: may read it), in header order.
        self._known = [
            (i, name, converters[kind], kind == DATETIME, kind in {DATETIME, INTEGER})
            for i, name in enumerate(header)
            if name in known
            for kind in [column_type(name)]
        ]
        #: Positions and names of the columns the schema does not know (to `extra_columns`).
        self.unknown_at = [(i, name) for i, name in enumerate(header) if name not in known]
        #: Known columns as (position, name, whether text, whether a time, whether `in_c` may
        #: read it), for readers that type a block themselves (content/parquet.py).
        self.known = [(i, name, c is None, is_time, ok) for i, name, c, is_time, ok in self._known]
        self._converters = {
            name: (convert, is_time) for _, name, convert, is_time, _ in self._known
        }
        self._times_us = times_us
        self._in_c = in_c
        #: Whether `read_at_once` read every row of its member.
        self.complete = False

    def type_row(self, row: list[str], lineage: dict[str, t.Any]) -> dict[str, t.Any]:
        """Build one record: typed known columns, extras as text, lineage columns."""
        return self.type_block([row], lineage).records()[0]

    def type_block(self, rows: list[list[str]], lineage: dict[str, t.Any]) -> Block:
        """Type rows column by column: missing columns, known ones, extra_columns, lineage.

        Each column is converted in one comprehension (a column that is empty in every row costs
        one scan), which is what makes the export's CSV-to-output path cheaper than a row loop.
        """
        n = len(rows)
        surplus = self._square(rows) if set(map(len, rows)) != {self.width} else {}
        cells = list(zip(*rows, strict=True)) if self.width else []
        nulls: list[t.Any] = [None] * n
        columns: dict[str, t.Sequence[t.Any]] = dict.fromkeys(self.missing, nulls)
        uniform = {*self.missing, *lineage}
        extras = self.extras([cells[i] for i, _ in self.unknown_at], n)
        for i, name, convert, _, readable in self._known:
            column = cells[i]
            if not any(column):
                columns[name] = nulls
                uniform.add(name)
                continue
            if convert is None:
                # Text as it is, but empty fields null (a full column is kept as it came).
                columns[name] = column if all(column) else [v or None for v in column]
                continue
            in_c = self._in_c if readable else None
            columns[name] = self.type_column(name, column, extras, in_c=in_c)
        for r, spill in surplus.items():
            extras[r] = {**(extras[r] or {}), **spill}
        return self.finish_block(n, columns, uniform, extras, lineage)

    def finish_block(
        self,
        n: int,
        columns: dict[str, t.Sequence[t.Any]],
        uniform: set[str],
        extras: list[dict[str, str | None] | None],
        lineage: dict[str, t.Any],
    ) -> Block:
        """The block of `n` typed rows: `columns`, then extra_columns, then the lineage columns."""
        columns[EXTRA_COLUMNS] = extras
        for key, value in lineage.items():
            columns[key] = [value] * n
        return Block(n, columns=columns, uniform=frozenset(uniform))

    def extras(self, columns: list[t.Sequence[str]], n: int) -> list[dict[str, str | None] | None]:
        """Each row's `extra_columns`: the unknown columns' text (`columns`, in header order)."""
        if not self.unknown_at:
            return [None] * n
        names = [name for _, name in self.unknown_at]
        texts = [[v or None for v in column] for column in columns]
        return [dict(zip(names, values, strict=True)) for values in zip(*texts, strict=True)]

    def type_column(
        self,
        name: str,
        column: t.Sequence[str],
        extras: list[dict[str, str | None] | None],
        *,
        in_c: ColumnReader | None = None,
    ) -> t.Sequence[t.Any]:
        """One known, non-text column typed; a value that does not fit goes to `extras`."""
        known, is_time = self._converters[name]
        convert = t.cast("t.Callable[[str], t.Any]", known)  # text columns never get here
        typed = in_c(column, is_time=is_time) if in_c is not None else None
        if typed is None and is_time:
            typed = time_column(column, micros=self._times_us)
        if typed is None:
            try:
                typed = [convert(v) if v else None for v in column]
            except (ValueError, OverflowError):
                typed = self._convert_keeping_bad(name, convert, column, extras)
        return typed

    def read_at_once(
        self, opener: t.Callable[[], t.ContextManager[t.BinaryIO]], lineage: dict[str, t.Any]
    ) -> t.Iterator[Block] | None:
        """The member's rows read by `in_c` (in C) from `opener()`, or None if it reads columns only.

        The iterator stops at the first row it cannot read as csv.reader would; `complete` says
        whether it read them all (content/parquet.py `ArrowReader.read_member`).
        """
        read_member = getattr(self._in_c, "read_member", None)
        if read_member is None or any(set(h) & {'"', "\n", "\r"} for h in self.header):
            return None
        return t.cast("t.Iterator[Block]", read_member(self, opener, lineage))

    def _square(self, rows: list[list[str]]) -> dict[int, dict[str, str]]:
        # A ragged row keeps what it has: missing fields become empty (null), surplus fields
        # go to extra_columns as column_<n>. Rows are padded or cut in place.
        width, surplus = self.width, {}
        for r, row in enumerate(rows):
            if len(row) == width:
                continue
            self.ragged_rows += 1
            if len(row) > width:
                surplus[r] = {f"column_{j + 1}": row[j] for j in range(width, len(row))}
            rows[r] = [*row[:width], *[""] * (width - len(row))]
        return surplus

    def _convert_keeping_bad(
        self,
        name: str,
        convert: t.Callable[[str], t.Any],
        column: t.Sequence[str],
        extras: list[dict[str, str | None] | None],
    ) -> list[t.Any]:
        # A value that does not fit its type is null in its column and kept as text in
        # extra_columns, counted for the member's warning.
        out: list[t.Any] = []
        for r, value in enumerate(column):
            if not value:
                out.append(None)
                continue
            try:
                out.append(convert(value))
            except (ValueError, OverflowError):
                out.append(None)
                extras[r] = {**(extras[r] or {}), name: value}
                self.bad_values[name] = self.bad_values.get(name, 0) + 1
        return out
