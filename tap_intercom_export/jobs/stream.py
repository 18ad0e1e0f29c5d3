"""What every stream fed by the export-job engine shares (message export and reporting export).

Window bookmarks (a stream has every row up to the end of the last window it fully emitted),
the engine's injectable clocks, a session that streams downloads, and STATE written at once
when a job is created or a window is done.
"""

from __future__ import annotations

import time
import typing as t

from tap_intercom_export.client import IntercomStream
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    import requests


class ExportJobStream(IntercomStream):
    """A stream whose rows come from export jobs, one window at a time."""

    is_sorted = True
    # Bookmarks move back to a window's start while it is being emitted and forward to its end
    # once done; sort checks would refuse the first move.
    check_sorted = False
    #: Unix seconds this run has every row up to (the saved bookmark, then each window's end).
    high_water: int = 0

    #: The clock that decides "now" (the end of the last window); tests replace it.
    wall_clock: t.Callable[[], float] = staticmethod(time.time)
    #: How the engine waits between polls; tests replace it.
    sleep: t.Callable[[float], None] = staticmethod(time.sleep)
    #: How the engine measures elapsed time; tests replace it.
    monotonic: t.Callable[[], float] = staticmethod(time.monotonic)

    @property
    def requests_session(self) -> requests.Session:
        """The SDK session, set to stream bodies so downloads never sit in memory."""
        session = super().requests_session
        session.stream = True
        return session

    def advance_bookmark(self, window_end: int) -> None:
        """Record that this stream has every row up to `window_end`.

        A re-exported window never moves the bookmark back.
        """
        self.high_water = max(self.high_water, window_end)
        key = t.cast("str", self.replication_key)  # every export stream declares one
        self.state_manager.increment_state({key: iso(self.high_water)}, replication_key=key)

    def write_state_now(self) -> None:
        """Send this stream's STATE now (a job created, a window done), not at the stream's end."""
        self.state_manager.is_flushed = False
        self._write_state_message()
