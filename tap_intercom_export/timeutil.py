"""Time in the two forms the tap speaks: unix seconds (Intercom) and RFC 3339 text (Singer)."""

from __future__ import annotations

from datetime import datetime, timezone


def iso(ts: int) -> str:
    """RFC 3339 (UTC) text of unix seconds: the form bookmarks and records use."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def unix(value: datetime | str) -> int:
    """Unix seconds of an aware datetime or RFC 3339 text (naive means UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp())
