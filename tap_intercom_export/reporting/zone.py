"""Reporting times as instants: the zone Intercom writes them in, and a check of it on the rows.

Intercom writes reporting times as `YYYY-MM-DD HH:MM:SS` without a zone; public code that reads
real exports takes them in the workspace's time zone, which `GET /me` names (`app.timezone`, an
IANA name). The setting `reporting_timezone` overrides it. Every time is emitted as RFC 3339 in
UTC (docs/intercom-reporting.md has the sources and the rules below).

Daylight saving time, by PEP 495's `fold=0` (zoneinfo's default): a local time that occurs twice
(the hour repeated when clocks go back) is read as its first occurrence, in the offset in force
before the change; a local time that never occurs (the hour skipped when clocks go forward) is
read in the offset in force before the change too. The text alone cannot tell the two
occurrences apart: a row of the second one comes out an hour early, and each window says how many
values fell in a repeated hour.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_intercom_export.client import IntercomStream
from tap_intercom_export.errors import IntercomAPIError, IntercomError
from tap_intercom_export.timeutil import known_zone

if t.TYPE_CHECKING:
    import logging

    from singer_sdk import Tap

    from tap_intercom_export.jobs.windows import Window
    from tap_intercom_export.settings import Settings

ME_PATH = "/me"
SETTING = "reporting_timezone"
#: Offsets a workspace's zone can have (UTC-12:00 to UTC+14:00), in seconds.
_OFFSETS = (-12 * 3600, 14 * 3600)


def parse_time(raw: str) -> datetime | None:
    """A reporting time: naive (local, as Intercom writes it) or aware; None if it is no time.

    Unix seconds and text with an offset or a `UTC`/`GMT` suffix are instants already.
    """
    text = raw.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), timezone.utc)
    utc = text[-4:].upper() in (" UTC", " GMT")
    if utc:
        text = text[:-4]
    elif text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if utc and parsed.tzinfo is None else parsed


def offset_text(seconds: float) -> str:
    """`UTC-05:00`."""
    sign = "-" if seconds < 0 else "+"
    minutes = round(abs(seconds)) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass
class ReportingZone:
    """The zone reporting times are read in, where that came from, and the instants it gives."""

    name: str
    #: How log lines name where the zone came from.
    source: str
    #: The zone GET /me named, when it was read.
    workspace: str | None = None
    #: Values read in a repeated (DST) hour, as their first occurrence, since the last `reset`.
    repeated: int = 0
    zone: tzinfo = field(init=False)

    def __post_init__(self) -> None:
        """Load the zone (the name was checked where it came from)."""
        self.zone = ZoneInfo(self.name)
        self._plain = self.name == "UTC"

    def describe(self) -> str:
        """`America/New_York (the workspace's time zone, from GET /me)`."""
        return f"{self.name} ({self.source})"

    def instant(self, when: datetime) -> str:
        """RFC 3339 in UTC of a reporting time; a naive one is local time in this zone."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.zone)
            if not self._plain:
                other = when.replace(fold=1).utcoffset()
                if other is not None and other < t.cast("timedelta", when.utcoffset()):
                    self.repeated += 1
        return when.astimezone(timezone.utc).isoformat()

    def readings(self) -> dict[str, tzinfo]:
        """The plausible zones of the text: this one, UTC, and the workspace's."""
        names = dict.fromkeys([self.name, "UTC", self.workspace or self.name])
        return {n: self.zone if n == self.name else ZoneInfo(n) for n in names}


class _WorkspaceProbe(IntercomStream):
    """Speaks `GET /me` (never synced)."""

    name = "reporting_workspace"
    path = ME_PATH
    schema: t.ClassVar[dict[str, t.Any]] = {"type": "object", "properties": {}}
    # Only the reading of reporting times waits on it: an unreachable API must not hold the run
    # up for a sync request's retries. Waits of 1 and 2 s: three tries, for a 5xx or a 429.
    max_tries = 3
    network_retry_seconds = 3.0


def _workspace_zone(tap: Tap) -> str:
    probe = _WorkspaceProbe(tap)
    response = probe.send(probe.prepare("GET", probe.url_base + ME_PATH))
    try:
        body = response.json()
    except ValueError as exc:
        msg = "GET /me answered something that is not JSON"
        raise IntercomError(msg) from exc
    finally:
        response.close()
    app = body.get("app") if isinstance(body, dict) else None
    name = app.get("timezone") if isinstance(app, dict) else None
    zone = known_zone(name) if name else None
    if zone is None:
        msg = f"GET /me named no time zone this machine knows (app.timezone: {name!r})"
        raise IntercomError(msg)
    return zone


def resolve(tap: Tap, settings: Settings, logger: logging.Logger) -> ReportingZone:
    """The zone of this run's reporting times: the setting, else the workspace's, else UTC."""
    if settings.reporting_timezone:
        zone = ReportingZone(settings.reporting_timezone, f"setting {SETTING}")
    else:
        try:
            name = _workspace_zone(tap)
        except (
            IntercomAPIError,
            IntercomError,
            RetriableAPIError,
            requests.RequestException,
        ) as exc:
            # The reporting streams still sync: their times are then read as UTC, which the
            # zone check (ZoneCheck) tests against the rows of every window.
            response = getattr(exc, "response", None)
            status = getattr(exc, "status", None) or getattr(response, "status_code", None)
            reason = f"GET /me answered HTTP {status}" if status else str(exc)
            logger.warning(
                "Reading reporting times as UTC: the workspace's time zone could not be read "
                "(%s). If the workspace is not on UTC (Intercom: Settings > Workspace > "
                "General), set %s to its zone, e.g. America/New_York.",
                reason,
                SETTING,
            )
            return ReportingZone("UTC", "assumed: GET /me failed")
        zone = ReportingZone(name, "the workspace's time zone, from GET /me", workspace=name)
    logger.info("Reporting times are read in %s and emitted in UTC.", zone.describe())
    return zone


class ZoneCheck:
    """Where one window's time-attribute values fall when read in each plausible zone.

    Intercom selects a window's rows by their time attribute: read in the right zone, every one
    falls inside the window (bounds included: Intercom does not say whether `end_time` is).
    """

    def __init__(self, window: Window, zone: ReportingZone) -> None:
        """Count nothing yet."""
        self.window = window
        self.zone = zone
        self.readings = zone.readings()
        self.outside = dict.fromkeys(self.readings, 0)
        self.values = 0
        #: Earliest and latest value read as if in UTC (unix seconds).
        self.naive_range: tuple[float, float] | None = None

    def add(self, when: datetime) -> None:
        """Count one value of the time attribute."""
        self.values += 1
        start, end = self.window.start, self.window.end
        if when.tzinfo is not None:
            inside = start <= when.timestamp() <= end
            for name in self.readings:
                self.outside[name] += not inside
            return
        for name, zone in self.readings.items():
            if not start <= when.replace(tzinfo=zone).timestamp() <= end:
                self.outside[name] += 1
        seconds = when.replace(tzinfo=timezone.utc).timestamp()
        low, high = self.naive_range or (seconds, seconds)
        self.naive_range = (min(low, seconds), max(high, seconds))

    def fitting_offsets(self) -> tuple[float, float] | None:
        """The fixed UTC offsets under which every local value falls inside the window."""
        if self.naive_range is None:
            return None
        low = max(self.naive_range[1] - self.window.end, _OFFSETS[0])
        high = min(self.naive_range[0] - self.window.start, _OFFSETS[1])
        return (low, high) if low <= high else None

    def misread(self) -> str | None:
        """What reads the values better than the chosen zone, if the chosen one misplaces some."""
        chosen = self.zone.name
        if not self.outside[chosen]:
            return None
        better = next((n for n, out in self.outside.items() if n != chosen and not out), None)
        if better is not None:
            return f"none when read in {better}"
        offsets = self.fitting_offsets()
        own = datetime.fromtimestamp(self.window.start, self.zone.zone).utcoffset()
        if offsets is None or (own is not None and offsets[0] <= own.total_seconds() <= offsets[1]):
            return None
        low, high = (offset_text(o) for o in offsets)
        span = low if low == high else f"any offset from {low} to {high}"
        return f"none when read at {span}"
