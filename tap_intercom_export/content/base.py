"""What every message export stream shares: a bookmark at the end of the last fully emitted window."""

from __future__ import annotations

import typing as t

from tap_intercom_export.client import IntercomStream
from tap_intercom_export.timeutil import iso


class ExportWindowStream(IntercomStream):
    """What the job ledger and the CSV streams share: window bookmarks."""

    #: Unix seconds from which this run emits rows (set by the ledger's plan).
    export_from: int = 0

    is_sorted = True
    # Bookmarks move back to a window's start while it is being emitted and forward to its end
    # once done; sort checks would refuse the first move.
    check_sorted = False
    #: Unix seconds this run has every row up to (the saved bookmark, then each window's end).
    high_water: int = 0


def advance_bookmark(stream: ExportWindowStream, window_end: int) -> None:
    """Record that `stream` has every row up to `window_end`.

    A re-exported window never moves the bookmark back.
    """
    stream.high_water = max(stream.high_water, window_end)
    key = t.cast("str", stream.replication_key)  # every export stream declares one
    stream.state_manager.increment_state({key: iso(stream.high_water)}, replication_key=key)
