"""contact_events' lookback: events that reach Intercom late land in the next run, at every edge.

Each test runs the tap against the fake, adds events with a past `created_at` between runs
(`add_late_event`, as a sender's late batch would) and computes what each run must emit from the
fake's events and the runs' bookmarks: a run reads the events created in (bookmark - lookback,
now - settle], the lookback a day before the bookmark, or, once a day, a week before where the
last week-long lookback ended.
"""

from __future__ import annotations

import typing as t

import pytest

from tests import test_events
from tests.conftest import DAY, NOW, run_tap
from tests.oracle import iso, unix
from tests.test_events import (
    DEEP,
    EVENTS,
    HOUR,
    LOOKBACK,
    SETTLE,
    SUMMARIES,
    active,
    bookmark,
    config,
    expected,
    keys,
)

# The fixtures of tests/test_events.py: a fake whose events end at NOW, and the tap's clock.
events_fake = test_events.events_fake
now = test_events.now

#: The first run's bookmark: it runs at NOW.
FIRST = NOW - SETTLE


class Runs:
    """Runs of the tap one after the other, each from the previous one's state, at set times."""

    def __init__(self, fake: t.Any, clock: t.Any, **settings: t.Any) -> None:
        """Run against `fake` with `settings` over the defaults of tests/test_events.py."""
        self.fake, self.clock, self.settings = fake, clock, settings
        self.done: list[t.Any] = []

    def run(self, at: int, select: tuple[str, ...] = (EVENTS,), *, fails: bool = False) -> t.Any:
        """A run at `at`, from the last run's state (`fails`: it ends in an error)."""
        self.fake.events.now = self.clock.now = at
        state = self.done[-1].state if self.done else None
        cfg = config(self.fake, **self.settings)
        result = run_tap(cfg, state=state, select=list(select), raise_errors=not fails)
        assert (result.error is not None) == fails
        self.done.append(result)
        return result

    def bookmarks(self) -> list[str]:
        """Every contact_events bookmark any STATE of the runs carried, in order."""
        marks = [
            s.get("bookmarks", {}).get(EVENTS, {}).get("replication_key_value")
            for r in self.done
            for s in r.states
        ]
        return [m for m in marks if m]


def emitted(*runs: t.Any) -> list[tuple]:
    """(contact, name, created_at) of every contact_events record the runs emitted, in order."""
    return [k for run in runs for k in keys(run.records(EVENTS))]


def test_events_up_to_a_day_late_land_in_the_next_run(events_fake, now) -> None:
    fake = events_fake(contacts=40)
    runs = Runs(fake, now, events_per_page=50)
    first = runs.run(NOW)
    a, b, c = (fake.events.contacts[i].id for i in (2, 5, 9))
    fake.events.now = NOW + HOUR
    # Sent now with the time they happened: 10 minutes, 3 hours and 20 hours before the first
    # run's upper bound (as the issue tried), and a day ago.
    late = [
        (a, "ordered-item", fake.add_late_event(a, "ordered-item", created_at=FIRST - 600)),
        (b, "signed-up", fake.add_late_event(b, "signed-up", created_at=FIRST - 3 * HOUR)),
        (
            c,
            "viewed-pricing",
            fake.add_late_event(c, "viewed-pricing", created_at=FIRST - 20 * HOUR),
        ),
        (a, "invited-friend", fake.add_late_event(a, "invited-friend", late_by=DAY)),
    ]
    fresh = (b, "ordered-item", fake.add_late_event(b, "ordered-item", late_by=30 * 60))
    assert all(created <= FIRST for _, _, created in late)  # behind the first run's bookmark
    assert not set(late) & set(emitted(first))
    before = len(fake.log)

    second = runs.run(NOW + HOUR)

    got = keys(second.records(EVENTS))
    assert got == expected(fake, FIRST - LOOKBACK, NOW + HOUR - SETTLE)
    assert {(x, n, iso(ts)) for x, n, ts in [*late, fresh]} <= set(got)
    assert len(got) == len(set(got))
    # 50 events a page: no contact has more in the day read again, so no request more.
    event_pages = [r for r in fake.log[before:] if r.path == "/events"]
    assert len(event_pages) == len(fake.events.contacts)
    assert bookmark(second) == iso(NOW + HOUR - SETTLE)


def test_without_lookback_late_events_are_lost(events_fake, now) -> None:
    """What the lookback is for: the behaviour the issue reported, at events_lookback_hours=0."""
    fake = events_fake(contacts=10)
    runs = Runs(fake, now, events_lookback_hours=0, events_deep_lookback_days=0)
    runs.run(NOW)
    contact = fake.events.contacts[2].id
    fake.events.now = NOW + HOUR
    created = fake.add_late_event(contact, "ordered-item", late_by=3 * HOUR)
    second = runs.run(NOW + HOUR)
    assert keys(second.records(EVENTS)) == expected(fake, FIRST, NOW + HOUR - SETTLE)
    assert (contact, "ordered-item", iso(created)) not in keys(second.records(EVENTS))


def test_the_lookback_edge_is_read_once_and_the_second_before_it_by_the_deep_lookback(
    events_fake, now
) -> None:
    fake = events_fake(contacts=10)
    runs = Runs(fake, now)
    runs.run(NOW)
    contact = fake.events.contacts[3].id
    inside = (contact, "edge-inside", iso(FIRST - LOOKBACK + 1))
    outside = (contact, "edge-outside", iso(FIRST - LOOKBACK))
    for name, created in ((inside[1], inside[2]), (outside[1], outside[2])):
        fake.add_late_event(contact, name, created_at=unix(created))

    second = runs.run(NOW + HOUR)
    third = runs.run(NOW + 2 * HOUR)
    # The first second of the lookback (FIRST - LOOKBACK, FIRST] is read, the one before not,
    # and the next run's lookback starts an hour later: once and only once.
    assert emitted(second, third).count(inside) == 1
    assert outside not in emitted(second, third)
    assert keys(third.records(EVENTS)) == expected(
        fake, NOW + HOUR - SETTLE - LOOKBACK, NOW + 2 * HOUR - SETTLE
    )

    # A day after the first run's deep lookback (a first run counts as one), the next one reads
    # the week before where it ended, and finds the event the daily lookback missed.
    deep = runs.run(NOW + DAY)
    assert keys(deep.records(EVENTS)) == expected(fake, FIRST - DEEP, NOW + DAY - SETTLE)
    assert outside in keys(deep.records(EVENTS))
    assert deep.state["bookmarks"][EVENTS]["deep_lookback_until"] == iso(NOW + DAY - SETTLE)


def test_the_deep_lookback_reaches_a_week_before_where_the_last_one_ended(events_fake, now) -> None:
    fake = events_fake(contacts=10)
    runs = Runs(fake, now)
    runs.run(NOW)
    # Hourly runs for a day: none is a deep lookback (the first run was one, a day ago).
    for hour in range(1, 24):
        run = runs.run(NOW + hour * HOUR)
        assert run.state["bookmarks"][EVENTS]["deep_lookback_until"] == iso(FIRST)
    contact = fake.events.contacts[4].id
    edge = FIRST - DEEP  # a week before the last deep lookback's end
    fake.add_late_event(contact, "deep-inside", created_at=edge + 1)
    fake.add_late_event(contact, "deep-outside", created_at=edge)
    deep = runs.run(NOW + DAY)
    got = keys(deep.records(EVENTS))
    # From where the last deep lookback ended, not from the bookmark (an hour ago): the hours
    # in between leave no gap.
    assert got == expected(fake, edge, NOW + DAY - SETTLE)
    assert (contact, "deep-inside", iso(edge + 1)) in got
    assert (contact, "deep-outside", iso(edge)) not in got
    assert runs.done[-2].state["bookmarks"][EVENTS]["replication_key_value"] == iso(
        NOW + 23 * HOUR - SETTLE
    )

    after = runs.run(NOW + DAY + HOUR)
    assert keys(after.records(EVENTS)) == expected(
        fake, NOW + DAY - SETTLE - LOOKBACK, NOW + DAY + HOUR - SETTLE
    )
    assert runs.bookmarks() == sorted(runs.bookmarks())


def test_a_late_event_for_a_contact_without_events_and_its_summary(events_fake, now) -> None:
    fake = events_fake(contacts=20)
    fake.events.add_contact("quiet", email="quiet@example.com")
    busy = fake.events.contacts[4].id
    runs = Runs(fake, now)
    first = runs.run(NOW, select=(EVENTS, SUMMARIES))
    assert "quiet" not in {r["contact_id"] for r in first.records(SUMMARIES)}
    fake.events.now = NOW + HOUR
    created = fake.add_late_event("quiet", "signed-up", late_by=5 * HOUR)
    busy_late = fake.add_late_event(busy, "ordered-item", late_by=6 * HOUR)

    second = runs.run(NOW + HOUR, select=(EVENTS, SUMMARIES))

    assert ("quiet", "signed-up", iso(created)) in keys(second.records(EVENTS))
    assert (busy, "ordered-item", iso(busy_late)) in keys(second.records(EVENTS))
    # Both summaries are read again in the same run and count the late event.
    summaries = {(r["contact_id"], r["event_name"]): r for r in second.records(SUMMARIES)}
    assert summaries["quiet", "signed-up"]["count"] == 1
    assert summaries["quiet", "signed-up"]["last"] == iso(created)
    mine = [e.created_at for e in fake.events.events[busy] if e.name == "ordered-item"]
    assert busy_late in mine
    assert summaries[busy, "ordered-item"]["count"] == len(mine)
    assert {r["contact_id"] for r in second.records(SUMMARIES)} == active(
        fake, FIRST - LOOKBACK, NOW + HOUR - SETTLE
    )


@pytest.mark.parametrize("lookback", [0, LOOKBACK], ids=["no-lookback", "lookback"])
def test_events_at_the_bookmark_and_at_the_upper_bound_are_new_once(
    events_fake, now, lookback
) -> None:
    """Without lookback each event is emitted by exactly one run; with it, new exactly once."""
    fake = events_fake(contacts=6)
    contact = fake.events.contacts[1].id
    second_bound, third_bound = NOW + HOUR - SETTLE, NOW + 2 * HOUR - SETTLE
    at_first = (contact, "at-bound", iso(FIRST))  # the first run's upper bound
    at_second = (contact, "at-bound", iso(second_bound))
    past_second = (contact, "past-bound", iso(second_bound + 1))
    for _, name, created in (at_first, at_second, past_second):
        fake.events.add_event(contact, name, unix(created))
    off = {"events_lookback_hours": 0, "events_deep_lookback_days": 0}
    runs = Runs(fake, now, **({} if lookback else off))
    first = runs.run(NOW)
    second = runs.run(NOW + HOUR)
    third = runs.run(NOW + 2 * HOUR)

    assert bookmark(first) == at_first[2]
    assert bookmark(second) == at_second[2]
    assert keys(second.records(EVENTS)) == expected(fake, FIRST - lookback, second_bound)
    assert keys(third.records(EVENTS)) == expected(fake, second_bound - lookback, third_bound)
    # New (after the bookmark) in exactly one run: the one whose upper bound it is at or
    # before; an event at the upper bound is not read again as new by the next run.
    assert at_first in emitted(first)
    new_in = [
        [k for k in keys(r.records(EVENTS)) if k[2] > mark]
        for r, mark in ((second, at_first[2]), (third, at_second[2]))
    ]
    assert at_second in new_in[0] and at_second not in new_in[1]
    assert past_second in new_in[1] and past_second not in new_in[0]
    everything = emitted(first, second, third)
    counts = [everything.count(k) for k in (at_first, at_second, past_second)]
    # The lookback emits them again, with the same key: loaders upsert.
    assert counts == ([3, 2, 1] if lookback else [1, 1, 1])
    assert runs.bookmarks() == sorted(runs.bookmarks())


def test_a_failed_run_keeps_the_deep_lookback_due(events_fake, now) -> None:
    fake = events_fake(contacts=30)
    runs = Runs(fake, now)
    runs.run(NOW)
    contact = fake.events.contacts[2].id
    fake.events.now = NOW + DAY
    late = fake.add_late_event(contact, "ordered-item", late_by=4 * DAY)
    fake.events.failing[fake.events.contacts[20].id] = 403
    failed = runs.run(NOW + DAY, fails=True)
    assert failed.state["bookmarks"][EVENTS] == runs.done[0].state["bookmarks"][EVENTS]
    del fake.events.failing[fake.events.contacts[20].id]
    retry = runs.run(NOW + DAY + HOUR)
    assert (contact, "ordered-item", iso(late)) in keys(retry.records(EVENTS))
    assert retry.state["bookmarks"][EVENTS]["deep_lookback_until"] == iso(NOW + DAY + HOUR - SETTLE)
    assert runs.bookmarks() == sorted(runs.bookmarks())


@pytest.mark.parametrize("batch", [False, True], ids=["RECORD", "BATCH"])
def test_the_deep_lookback_is_remembered_only_after_its_rows_are_out(
    events_fake, now, tmp_path, batch
) -> None:
    fake = events_fake(contacts=20)
    settings = {}
    if batch:
        settings["batch_config"] = {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": tmp_path.as_uri(), "prefix": "test-"},
            "batch_size": 10,
        }
    runs = Runs(fake, now, **settings)
    runs.run(NOW)
    deep = runs.run(NOW + DAY)
    stamp = iso(NOW + DAY - SETTLE)
    messages = deep.messages
    rows = [
        i
        for i, m in enumerate(messages)
        if m["type"] in ("RECORD", "BATCH") and m["stream"] == EVENTS
    ]
    stamped = [
        i
        for i, m in enumerate(messages)
        if m["type"] == "STATE"
        and m["value"]["bookmarks"].get(EVENTS, {}).get("deep_lookback_until") == stamp
    ]
    assert rows and stamped
    assert max(rows) < min(stamped)
    assert any(m["type"] == "BATCH" for m in messages) == batch


@pytest.mark.parametrize(
    "case",
    [
        # Every run: the daily lookback, until a day has passed since the last deep one ended.
        (24, 7, 24, FIRST, FIRST + 23 * HOUR, False, LOOKBACK),
        (24, 7, 24, FIRST, FIRST + DAY, True, 7 * DAY + 23 * HOUR),
        # No deep lookback recorded (a state from before the setting): due, from the bookmark.
        (24, 7, 24, None, FIRST + HOUR, True, 7 * DAY),
        # Interval 0: every run is a deep one; days 0: never.
        (24, 7, 0, FIRST, FIRST + HOUR, True, 7 * DAY),
        (24, 0, 24, None, FIRST + DAY, False, LOOKBACK),
        # The daily lookback is never shortened by a deep one.
        (200, 7, 24, FIRST, FIRST + DAY, True, 200 * HOUR),
        (0, 0, 24, None, FIRST + DAY, False, 0),
    ],
)
def test_lookback_reach(case) -> None:
    """(hours, days, interval hours, last deep lookback's end, run's end) -> (due, reach)."""
    hours, days, interval, deep_until, until, due, reach = case
    from tap_intercom_export.events.lookback import EventLookback
    from tap_intercom_export.settings import Settings

    settings = Settings.from_config(
        {
            "access_token": "t",
            "events_lookback_hours": hours,
            "events_deep_lookback_days": days,
            "events_deep_lookback_interval_hours": interval,
        }
    )
    lookback = EventLookback.from_settings(settings)
    # The bookmark is an hour before `until`: the runs are hourly.
    assert lookback.deep_due(deep_until, until) == due
    assert lookback.reach(until - HOUR, deep_until, deep=due) == reach
