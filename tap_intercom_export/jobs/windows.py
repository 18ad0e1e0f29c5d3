"""Date windows: the unit of work of every export job (end exclusive, split at whole hours)."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from typing_extensions import override

from tap_intercom_export.timeutil import iso

MIN_WINDOW_SECONDS = 3600


@dataclass(frozen=True, order=True)
class Window:
    """Messages created in [start, end): unix seconds, end exclusive."""

    start: int
    end: int

    @property
    def created_at_after(self) -> int:
        """Intercom's inclusive lower bound."""
        return self.start

    @property
    def created_at_before(self) -> int:
        """Intercom's inclusive upper bound: the last second of the window."""
        return self.end - 1

    @property
    def seconds(self) -> int:
        """Length of the window."""
        return self.end - self.start

    def halves(self) -> tuple[Window, Window]:
        """Split in two at a whole hour when possible (so split windows stay readable)."""
        mid = self.start + self.seconds // 2
        rounded = mid - mid % 3600
        if self.start < rounded < self.end:
            mid = rounded
        return Window(self.start, mid), Window(mid, self.end)

    @override
    def __str__(self) -> str:
        """`2024-01-01T00:00:00+00:00 .. 2024-01-08T00:00:00+00:00`."""
        return f"{iso(self.start)} .. {iso(self.end)}"


def plan_windows(start: int, end: int, window_seconds: int) -> list[Window]:
    """Consecutive windows from start to end, with no gap and no overlap."""
    if window_seconds <= 0:
        msg = "export window must be longer than zero seconds"
        raise ValueError(msg)
    windows = []
    cursor = start
    while cursor < end:
        windows.append(Window(cursor, min(cursor + window_seconds, end)))
        cursor = windows[-1].end
    return windows


@dataclass(frozen=True)
class JobPlan:
    """The windows of a run, and what becomes of the jobs earlier runs left in flight."""

    windows: list[Window]
    #: Jobs in flight whose window is in the plan: reused instead of created again.
    reused: dict[Window, str]
    #: Jobs in flight no window of the plan uses.
    stale: dict[Window, str]


def plan_around(
    start: int,
    end: int,
    in_flight: t.Mapping[Window, str],
    plan: t.Callable[[int, int], list[Window]],
    *,
    after_gap: bool,
) -> JobPlan:
    """Windows from start to end, keeping the bounds of jobs in flight so those jobs are reused.

    A job's window is kept where it fits without gap or overlap; `plan(a, b)` fills what lies
    between. `after_gap`: whether a job is kept even when windows before it still need new
    jobs. Intercom allows 5 pending reporting jobs, but one pending message export job: there a
    later job would block the create of every window before it.
    """
    windows: list[Window] = []
    reused: dict[Window, str] = {}
    cursor = start
    for window, job_id in sorted(in_flight.items()):
        placed = window.start >= cursor if after_gap else window.start == cursor
        if placed and window.end <= end:
            windows += plan(cursor, window.start)
            windows.append(window)
            reused[window] = job_id
            cursor = window.end
    windows += plan(cursor, end)
    stale = {w: job_id for w, job_id in sorted(in_flight.items()) if w not in reused}
    return JobPlan(windows, reused, stale)
