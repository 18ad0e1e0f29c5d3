"""Date windows: the unit of work of every export job (end exclusive, split at whole hours)."""

from __future__ import annotations

from dataclasses import dataclass

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
