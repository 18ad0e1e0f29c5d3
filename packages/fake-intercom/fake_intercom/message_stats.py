"""The fake's rows for the file kinds beyond the reference's list, and what a job holds.

Covers the kinds seen in real archives, an invented kind, and which engagement an export job
holds under each reading of Intercom's texts.

Columns: filekinds.py, with their sources.
"""

from __future__ import annotations

import typing as t
from datetime import datetime, timezone

from fake_intercom.filekinds import INVENTED_KIND, header

#: How the fake reads the `first_*` columns: the API reference since mid-2026 counts "only
#: events within the export job's requested date range"; the help center says "all time".
IN_RANGE = "in_range"
ALL_TIME = "all_time"
READINGS = (IN_RANGE, ALL_TIME)

# Kinds whose rows are not engagement (they exist as soon as the message does).
_NOT_ENGAGEMENT = {"receipt", "overview", "checkpoint"}


def utc_text(ts: int) -> str:
    """`YYYY-MM-DD HH:MM:SS UTC`, the other timestamp spelling of real exports."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def timestamp(value: str) -> int:
    """Unix seconds from either spelling the fake writes."""
    if value.isdigit():
        return int(value)
    return int(
        datetime.strptime(value, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc).timestamp()
    )


Rule = tuple[int, int, t.Callable[[int, int], dict[str, str]]]

# kind -> (every, offset, row maker(i, engagement base time)): receipt i has a row when
# i % every == offset.
RULES: dict[str, Rule] = {
    "goal_success": (8, 3, lambda _i, e: {"goal_hit_at": str(e + 800)}),
    "hard_bounce": (19, 2, lambda _i, e: {"hard_bounced_at": str(e + 5)}),
    "soft_bounce": (15, 1, lambda _i, e: {"soft_bounced_at": utc_text(e + 10)}),
    "unsubscribe": (12, 5, lambda _i, e: {"unsubscribed_at": str(e + 900)}),
    "series_exit": (14, 0, lambda _i, e: {"exited_at": str(e + 1000)}),
    "reaction": (5, 2, lambda i, e: {"reacted_at": str(e + 200), "reaction": "😀" if i % 2 else "👍"}),
    "tour_step_failure": (11, 4, lambda i, e: {
        "step_id": str(i % 3), "failed_selector": '#cta > button[data-x="1"]',
        "failure_url": f"https://example.com/tour?step={i % 3},x", "failed_at": str(e + 45)}),
    "fin_step_reached": (6, 5, lambda i, e: {
        "involved_at": str(e + 30), "content_id": str(3000 + i % 4), "content_type": "fin_workflow",
        "ruleset_id": str(1000 + i % 5), "conversation_id": f"conv-{i}"}),
    INVENTED_KIND: (9, 7, lambda _i, e: {"complained_at": str(e + 1200), "feedback_loop": "yahoo"}),
}  # fmt: skip


def row(kind: str, i: int, engaged: int) -> dict[str, str] | None:
    """Receipt i's row of one of the kinds above, or None when it has none."""
    every, offset, make = RULES[kind]
    if i % every != offset:
        return None
    return {"receipt_id": f"rcpt-{i}", **make(i, engaged)}


def _time_column(kind: str) -> str | None:
    if kind in _NOT_ENGAGEMENT:
        return None
    return next((c for c in reversed(header(kind)) if c.endswith("_at")), None)


def engaged_by(kind: str, record: dict[str, str], until: int) -> bool:
    """Whether a row of `kind` exists for a job that sees engagement up to `until`."""
    column = _time_column(kind)
    return column is None or not record.get(column) or timestamp(record[column]) <= until


def blank_late_firsts(record: dict[str, str], until: int) -> None:
    """Empty a receipt's `first_*` columns whose engagement comes after `until`."""
    for name, value in record.items():
        if name.startswith("first_") and value and timestamp(value) > until:
            record[name] = ""


def cutoff(reading: str, now: int | None, before: int) -> int | None:
    """Up to when a job over [.., before] sees engagement: None when it sees all of it."""
    if reading == IN_RANGE:
        return before if now is None else min(now, before)
    return now
