"""When and how a run re-exports recent messages to pick up their later engagement.

A window's job selects messages SENT in it; how far its engagement rows and `first_*` columns
reach is contradictory in Intercom's own texts (export_csv_columns.md): the help center says
"all time", the API reference (since mid-2026) counts "only events within the export job's
requested date range". Under the second reading re-exporting the same windows recovers nothing:
an open after a window's end is in no export of that window. So a lookback re-export is planned
as ONE job whose requested range runs from the lookback start up to the run's end, which holds
that engagement under both readings. It runs at most once per `export_lookback_interval_hours`
(the state remembers when), so its cost stays a fixed multiple of the daily volume.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from tap_intercom_export.jobs.windows import Window, plan_windows
from tap_intercom_export.timeutil import iso, unix

if t.TYPE_CHECKING:
    from tap_intercom_export.settings import Settings

#: Key under the `message_export_jobs` state: when the last lookback re-export began (RFC 3339).
LAST_LOOKBACK = "last_lookback_at"


@dataclass(frozen=True)
class Lookback:
    """The lookback settings: how many days are re-read, and how often."""

    seconds: int
    interval_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Lookback:
        """From `export_lookback_days` and `export_lookback_interval_hours`."""
        return cls(
            seconds=int(settings.export_lookback_days * 86400),
            interval_seconds=int(settings.export_lookback_interval_hours * 3600),
        )

    def is_due(self, state: t.Mapping[str, t.Any], now: int, *, has_bookmarks: bool) -> bool:
        """Whether this run re-exports: on, something exported before, and the interval is up.

        With no record of a lookback yet (first sync, or a state from before this setting)
        the interval starts now: a first sync exports everything fresh anyway.
        """
        if self.seconds <= 0 or not has_bookmarks:
            return False
        if self.interval_seconds <= 0:
            return True
        last = state.get(LAST_LOOKBACK)
        try:
            return last is not None and now - unix(last) >= self.interval_seconds
        except (TypeError, ValueError):
            return True

    def windows(self, start: int, end: int, window_seconds: int) -> list[Window]:
        """Windows for a lookback run: the last one reaches from the lookback start to `end`.

        What lies before `end - seconds` (a run that fell behind) is planned as usual; the
        rest is one window, even if longer than `export_window_days`, so its job's requested
        range covers all engagement up to the run's end. Intercom's row cap may still split
        it (each half then reaches only its own end under the reference's reading).
        """
        if end <= start:
            return []
        tail = start if end - start <= self.seconds + window_seconds else end - self.seconds
        return [*plan_windows(start, tail, window_seconds), Window(tail, end)]


def describe(windows: list[Window], bookmark: int, end: int) -> str:
    """One log line naming what a lookback re-reads."""
    reread = [w for w in windows if w.start < bookmark]
    return (
        f"Lookback: re-exporting messages sent from {iso(reread[0].start) if reread else iso(bookmark)} "
        f"(already exported up to {iso(bookmark)}) in window(s) {', '.join(str(w) for w in reread)}; "
        f"the last one reaches the run's end {iso(end)}, so engagement up to then is inside its "
        "job's requested range. Re-read rows keep their primary keys (loaders upsert them)."
    )
