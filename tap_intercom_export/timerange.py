"""Which creation times a run reads: one rule for every source (exports, reporting, events).

Pure: the callers pass the clock, the settings and the bookmark, and apply the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from tap_intercom_export.settings import DEFAULT_START_DAYS

DAY = 86400


@dataclass(frozen=True)
class TimeRange:
    """Rows created in [start, end), unix seconds, and what earlier runs already covered."""

    start: int
    end: int
    #: Every row created before this was emitted by an earlier run (the bookmark; on a first
    #: run, `start`). `start` lies before it by the lookback.
    covered: int

    @property
    def empty(self) -> bool:
        """Nothing to read: the range ends where it starts (or before)."""
        return self.end <= self.start


def plan_range(  # noqa: PLR0913 - every input of the rule, named at the call
    *,
    now: int,
    start_date: int | None,
    end_date: int | None,
    resume: int | None,
    lookback: int = 0,
    settle: int = 0,
) -> TimeRange:
    """The range a run reads.

    - `resume`: the first second no earlier run has read (from the bookmark); None on a first
      run, which starts at `start_date`, else `DEFAULT_START_DAYS` before `now`.
    - `lookback`: seconds before `resume` read again (rows that change or arrive late); never
      before `start_date`.
    - `settle`: how old a row must be to be read: rows created at `now - settle` or before.
      With 0 the second `now` itself is read; a source whose current second is not over yet
      uses 1.
    - `end_date`: exclusive, like `end`.
    """
    end = now - settle + 1
    if end_date is not None:
        end = min(end, end_date)
    if resume is None:
        start = start_date if start_date is not None else now - DEFAULT_START_DAYS * DAY
        return TimeRange(start, end, start)
    return TimeRange(max(resume - lookback, start_date or 0), end, resume)
