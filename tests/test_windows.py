"""Window planning: consecutive, no gap, no overlap, Intercom's inclusive bounds."""

from __future__ import annotations

from itertools import pairwise

import pytest

from tap_intercom_export.jobs.windows import Window, plan_around, plan_windows
from tests.oracle import iso, unix

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


# -- planning around jobs in flight (jobs/windows.py plan_around) -------------------------------


def week(start: int, end: int) -> list[Window]:
    return plan_windows(start, end, 7 * DAY)


def test_no_job_in_flight_is_the_plain_plan() -> None:
    plan = plan_around(0, 20 * DAY, {}, week, after_gap=False)
    assert plan.windows == [
        Window(0, 7 * DAY),
        Window(7 * DAY, 14 * DAY),
        Window(14 * DAY, 20 * DAY),
    ]
    assert plan.reused == {} and plan.stale == {}


def test_jobs_that_continue_the_plan_are_reused_with_their_bounds() -> None:
    # A killed run left [0, 3d) polled and [3d, 9d) created ahead (other settings then).
    jobs = {Window(0, 3 * DAY): "a", Window(3 * DAY, 9 * DAY): "b"}
    plan = plan_around(0, 20 * DAY, jobs, week, after_gap=False)
    assert plan.windows == [Window(0, 3 * DAY), Window(3 * DAY, 9 * DAY), Window(9 * DAY, 16 * DAY),
                            Window(16 * DAY, 20 * DAY)]  # fmt: skip
    assert plan.reused == jobs and plan.stale == {}


def test_a_job_after_a_gap_is_reused_only_where_several_may_be_pending() -> None:
    jobs = {Window(5 * DAY, 9 * DAY): "later"}
    # Message export: one pending job per workspace, so a later one would block [0, 5d).
    one = plan_around(0, 20 * DAY, jobs, week, after_gap=False)
    assert one.windows == week(0, 20 * DAY) and one.reused == {} and one.stale == jobs
    # Reporting: 5 may be pending; the gap before it is planned as usual.
    five = plan_around(0, 20 * DAY, jobs, week, after_gap=True)
    assert five.windows == [Window(0, 5 * DAY), Window(5 * DAY, 9 * DAY), Window(9 * DAY, 16 * DAY),
                            Window(16 * DAY, 20 * DAY)]  # fmt: skip
    assert five.reused == jobs and five.stale == {}


@pytest.mark.parametrize("after_gap", [False, True])
def test_jobs_outside_the_plan_or_overlapping_a_kept_one_are_stale(after_gap) -> None:
    jobs = {
        Window(-7 * DAY, 0): "before",  # already emitted
        Window(0, 7 * DAY): "kept",
        Window(DAY, 8 * DAY): "overlaps",  # starts inside the kept one
        Window(14 * DAY, 21 * DAY): "past the end",
    }
    plan = plan_around(0, 20 * DAY, jobs, week, after_gap=after_gap)
    assert plan.reused == {Window(0, 7 * DAY): "kept"}
    assert sorted(plan.stale.values()) == ["before", "overlaps", "past the end"]
    assert plan.windows == week(0, 20 * DAY)


def test_a_job_ending_exactly_at_the_end_is_reused() -> None:
    jobs = {Window(0, 20 * DAY): "whole"}
    plan = plan_around(0, 20 * DAY, jobs, week, after_gap=False)
    assert plan.windows == [Window(0, 20 * DAY)] and plan.reused == jobs


def test_nothing_to_plan_leaves_every_job_stale() -> None:
    plan = plan_around(5 * DAY, 5 * DAY, {Window(5 * DAY, 6 * DAY): "j"}, week, after_gap=True)
    assert plan.windows == [] and list(plan.stale.values()) == ["j"]


@pytest.mark.parametrize(
    ("window", "halves"),
    [
        # At a whole hour strictly inside the window ...
        ((0, 7200), ((0, 3600), (3600, 7200))),
        ((3000, 7000), ((3000, 3600), (3600, 7000))),
        # ... else at the midpoint, in whole seconds, and never an empty half.
        ((3000, 4000), ((3000, 3500), (3500, 4000))),
        ((0, 1800), ((0, 900), (900, 1800))),
        ((0, 3), ((0, 1), (1, 3))),
        ((3600, 10799), ((3600, 7199), (7199, 10799))),
    ],
)
def test_halves_split_at_an_hour_inside_or_the_midpoint(window, halves) -> None:
    first, second = Window(*window).halves()
    assert ((first.start, first.end), (second.start, second.end)) == halves
    assert isinstance(first.end, int)
