"""The range a run reads (timerange.py): one rule for the export, reporting and event streams."""

from __future__ import annotations

from tap_intercom_export.timerange import TimeRange, plan_range

DAY = 86400
NOW = 1_700_000_000
START = NOW - 10 * DAY  # start_date
END = NOW - DAY  # end_date


def test_first_run_starts_at_start_date_or_30_days_back() -> None:
    assert plan_range(now=NOW, start_date=START, end_date=None, resume=None) == TimeRange(
        START, NOW + 1, START
    )
    assert plan_range(now=NOW, start_date=None, end_date=None, resume=None).start == NOW - 30 * DAY


def test_later_runs_start_at_the_bookmark_less_the_lookback_never_before_start_date() -> None:
    bookmark = NOW - 2 * DAY
    span = plan_range(now=NOW, start_date=START, end_date=None, resume=bookmark, lookback=DAY)
    assert (span.start, span.covered) == (bookmark - DAY, bookmark)
    deep = plan_range(now=NOW, start_date=START, end_date=None, resume=bookmark, lookback=30 * DAY)
    assert deep.start == START
    # The bookmark wins over a start_date moved back: what was read is not read again.
    assert plan_range(now=NOW, start_date=START - DAY, end_date=None, resume=START).start == START


def test_settle_keeps_the_newest_rows_for_the_next_run() -> None:
    # Rows created at `now - settle` or before: 0 reads the second `now`; exports use 1.
    assert plan_range(now=NOW, start_date=START, end_date=None, resume=None).end == NOW + 1
    assert plan_range(now=NOW, start_date=START, end_date=None, resume=None, settle=1).end == NOW
    assert (
        plan_range(now=NOW, start_date=START, end_date=None, resume=None, settle=300).end
        == NOW - 299
    )


def test_end_date_caps_the_range_exclusively() -> None:
    assert plan_range(now=NOW, start_date=START, end_date=END, resume=None).end == END
    assert plan_range(now=NOW, start_date=START, end_date=NOW + DAY, resume=None).end == NOW + 1
    assert plan_range(now=NOW, start_date=START, end_date=NOW + 1, resume=None).end == NOW + 1


def test_a_run_past_end_date_or_up_to_date_is_empty() -> None:
    assert plan_range(now=NOW, start_date=START, end_date=END, resume=END).empty
    assert plan_range(now=NOW, start_date=START, end_date=None, resume=NOW + 1).empty
    assert not plan_range(now=NOW, start_date=START, end_date=None, resume=NOW).empty


def test_an_events_lookback_is_one_more_argument() -> None:
    # contact_events' bookmark is the last second read: it resumes one second later.
    bookmark = NOW - 3600
    plain = plan_range(now=NOW, start_date=START, end_date=None, resume=bookmark + 1, settle=300)
    back = plan_range(
        now=NOW, start_date=START, end_date=None, resume=bookmark + 1, settle=300, lookback=DAY
    )
    assert (plain.start, back.start) == (bookmark + 1, bookmark + 1 - DAY)
    assert plain.end == back.end == NOW - 299
