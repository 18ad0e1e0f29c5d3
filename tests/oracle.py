"""Time conversions for tests' expectations, written apart from the tap's `timeutil`.

Expected records and bookmarks are computed from the fake's raw data with these few lines, so a
bug in the tap's own conversions cannot make a test agree with it (tests/test_timeutil.py tests
those against fixed values).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import time
from datetime import datetime


def iso(ts: float) -> str:
    """`2023-11-14T00:00:00+00:00`: the UTC form the tap's records and bookmarks use."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def unix(value: datetime | str) -> int:
    """Unix seconds of an RFC 3339 text or datetime (`Z`, an offset, or none meaning UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    if value.utcoffset() is None:
        return calendar.timegm(value.timetuple())
    return calendar.timegm(value.utctimetuple())


def event_key(contact_id: str, event_name: str, created_at: int) -> str:
    """contact_events' key as the README defines it (a key that changes breaks upserts)."""
    text = json.dumps([contact_id, event_name, created_at], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
