"""Time in the two forms the tap speaks: unix seconds (Intercom) and RFC 3339 text (Singer)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


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


def known_zone(name: object) -> str | None:
    """The IANA time zone `name` as zoneinfo loads it (`UTC` in any case), or None if unknown."""
    text = str(name).strip()
    if text.upper() in ("UTC", "Z"):
        return "UTC"
    try:
        ZoneInfo(text)
    # A folder such as `America` is an OSError (IsADirectoryError) from the tzdata package.
    except (ValueError, OSError, ZoneInfoNotFoundError):
        return None
    return text
