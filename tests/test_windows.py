"""Window planning: consecutive, no gap, no overlap, Intercom's inclusive bounds."""

from __future__ import annotations

from itertools import pairwise

import pytest

from tap_intercom_export.jobs.windows import Window, plan_windows
from tap_intercom_export.timeutil import iso, unix

DAY = 86400


def test_windows_cover_the_range_without_gap_or_overlap() -> None:
    start, end = 1_700_000_000, 1_700_000_000 + 23 * DAY + 5
    windows = plan_windows(start, end, 7 * DAY)
    assert [w.seconds for w in windows] == [7 * DAY, 7 * DAY, 7 * DAY, 2 * DAY + 5]
    assert windows[0].start == start and windows[-1].end == end
    for a, b in pairwise(windows):
        assert a.end == b.start
        # Intercom's bounds are inclusive seconds: consecutive jobs share no second.
        assert a.created_at_before + 1 == b.created_at_after


def test_empty_range_plans_nothing() -> None:
    assert plan_windows(10, 10, DAY) == []
    with pytest.raises(ValueError, match="longer than zero"):
        plan_windows(0, 10, 0)


def test_halves_split_at_a_whole_hour() -> None:
    w = Window(1_699_920_000, 1_699_920_000 + 7 * DAY)
    first, second = w.halves()
    assert (first.start, first.end, second.end) == (w.start, w.start + 302400, w.end)
    assert first.end % 3600 == 0 and first.end == second.start
    odd = Window(0, 7201)
    a, b = odd.halves()
    assert a.end == b.start == 3600


def test_iso_and_unix_round_trip() -> None:
    assert iso(0) == "1970-01-01T00:00:00+00:00"
    assert unix("2023-11-14T00:00:00Z") == 1_699_920_000
    assert unix("2023-11-14T01:00:00+01:00") == 1_699_920_000
    assert unix("2023-11-14T00:00:00") == 1_699_920_000
