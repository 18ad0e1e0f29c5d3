"""How far before its bookmark a contact_events run reads again, to catch events that arrive late.

Intercom keeps the `created_at` a sender gives, however old: a backend sending an hour of events
in one batch, a mobile app sending its queue once back online, an import of yesterday's events.
An event whose `created_at` is already behind the bookmark when it reaches Intercom is read only
by a run that reads back past the bookmark. Every run reads back `events_lookback_hours`; once per
`events_deep_lookback_interval_hours` a run reads back `events_deep_lookback_days` from where the
last deep lookback ended (not from the bookmark), so that the runs in between leave no gap: an
event up to that late is read by the first deep lookback after it arrived, however the runs fall.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from tap_intercom_export.timeutil import unix

if t.TYPE_CHECKING:
    from tap_intercom_export.settings import Settings

#: Key in contact_events' state: the upper bound (RFC 3339) of the last run that read back
#: `events_deep_lookback_days`, written once that run has emitted every event.
DEEP_LOOKBACK_UNTIL = "deep_lookback_until"

HOUR = 3600
DAY = 86400


@dataclass(frozen=True)
class EventLookback:
    """The lookback settings of contact_events, in seconds."""

    seconds: int
    deep_seconds: int
    interval_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EventLookback:
        """From `events_lookback_hours` and the `events_deep_lookback_*` settings."""
        return cls(
            seconds=int(settings.events_lookback_hours * HOUR),
            deep_seconds=int(settings.events_deep_lookback_days * DAY),
            interval_seconds=int(settings.events_deep_lookback_interval_hours * HOUR),
        )

    def deep_due(self, deep_until: int | None, until: int) -> bool:
        """Whether a run reading up to `until` does the deep lookback.

        Due when none is recorded (a state from before this setting) or the last one ended at
        least `interval_seconds` before `until`.
        """
        if self.deep_seconds <= 0:
            return False
        return deep_until is None or until - deep_until >= self.interval_seconds

    def reach(self, bookmark: int, deep_until: int | None, *, deep: bool) -> int:
        """Seconds before the bookmark that a run reads again (never less than `seconds`)."""
        if not deep:
            return self.seconds
        since = bookmark if deep_until is None else min(deep_until, bookmark)
        return max(self.seconds, bookmark - since + self.deep_seconds)


def read_deep_until(state: t.Mapping[str, t.Any]) -> int | None:
    """Where the last deep lookback ended, from the stream's state (None: unknown)."""
    value = state.get(DEEP_LOOKBACK_UNTIL)
    try:
        return unix(value) if value else None
    except (TypeError, ValueError):
        return None
