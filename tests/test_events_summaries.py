"""The summary diet, and the shapes Intercom documents for events: ms `before`, paged summaries, base64 cursors."""

from __future__ import annotations

import typing as t

import pytest
import requests

from tests import test_events
from tests.conftest import DAY, NOW, TOKEN, run_tap
from tests.oracle import iso
from tests.test_events import (
    DEEP,
    EVENTS,
    LOOKBACK,
    SETTLE,
    SUMMARIES,
    active,
    config,
    expected,
    keys,
)

# The fixtures of tests/test_events.py: a fake whose events end at NOW, and the tap's clock.
events_fake = test_events.events_fake
now = test_events.now

HOUR = 3600
#: The first runs' bookmark (the fake's events end at NOW).
BOOKMARK = NOW - SETTLE


def event_calls(fake):
    """The fake's request log without the reporting discovery every catalog-less run makes."""
    return [r for r in fake.log if not r.path.startswith("/export/reporting_data/")]


def summary_calls(fake: t.Any, since: int = 0) -> list:
    return [
        r for r in event_calls(fake)[since:] if r.path == "/events" and r.arg("summary") == "true"
    ]


def upsert(*runs: list[dict]) -> dict[tuple, dict]:
    """What a loader holds after loading the runs in order, keyed on the primary key."""
    table: dict[tuple, dict] = {}
    for records in runs:
        for record in records:
            table[(record["contact_id"], record["event_name"])] = record
    return table


def add_new_events(fake: t.Any, every: int, at: int) -> list[str]:
    """One new event for every `every`-th contact, created at `at`; their ids."""
    changed = [c.id for c in fake.events.contacts[::every]]
    for n, cid in enumerate(changed):
        fake.events.add_event(cid, ["signed-up", "renamed-plan"][n % 2], at)
    return changed


@pytest.mark.parametrize("summary_per_page", [None, 1])
def test_incremental_run_rereads_only_changed_summaries(events_fake, now, summary_per_page) -> None:
    fake = events_fake(contacts=200, summary_per_page=summary_per_page)
    contacts = len(fake.events.contacts)
    first = run_tap(config(fake, events_per_page=50), select=[EVENTS, SUMMARIES])
    assert len(summary_calls(fake)) >= contacts - 1  # a first run reads every summary

    changed = add_new_events(fake, 20, NOW + 600)  # 5 % of the contacts
    fake.events.now = now.now = NOW + HOUR
    before = len(event_calls(fake))
    second = run_tap(
        config(fake, events_per_page=50), state=first.state, select=[EVENTS, SUMMARIES]
    )

    # The contacts with new events, and those with events in the lookback (one may have
    # reached Intercom late: its summary counts it).
    lookback = active(fake, BOOKMARK - LOOKBACK, BOOKMARK)
    assert lookback - set(changed)
    reread = {r.arg("intercom_user_id") for r in summary_calls(fake, before)}
    assert reread == set(changed) | lookback
    requests_made = len(event_calls(fake)) - before
    if summary_per_page is None:
        assert requests_made <= 1.2 * contacts, requests_made
    assert {r["contact_id"] for r in second.records(SUMMARIES)} == reread
    assert keys(second.records(EVENTS)) == expected(fake, BOOKMARK - LOOKBACK, NOW + HOUR - SETTLE)

    # What a loader holds is exactly what a full read now gives.
    full = run_tap(config(fake), select=[SUMMARIES])
    assert upsert(first.records(SUMMARIES), second.records(SUMMARIES)) == upsert(
        full.records(SUMMARIES)
    )
    state = second.state["bookmarks"][SUMMARIES]
    assert state["replication_key_value"] == iso(NOW + HOUR - SETTLE)
    assert state["full_read_at"] == iso(NOW)  # not a full read


def test_summaries_alone_check_each_contacts_newest_event(events_fake, now) -> None:
    fake = events_fake(contacts=60)
    first = run_tap(config(fake), select=[SUMMARIES])
    changed = add_new_events(fake, 10, NOW + 60)
    fake.events.now = now.now = NOW + HOUR
    before = len(event_calls(fake))
    second = run_tap(config(fake), state=first.state, select=[SUMMARIES])

    checks = [
        r for r in event_calls(fake)[before:] if r.path == "/events" and r.arg("per_page") == "1"
    ]
    assert len(checks) == len(fake.events.contacts)
    # A contact whose newest event lies in the lookback may have got it late.
    newest_in_lookback = {
        c.id
        for c in fake.events.contacts
        if fake.events.listable(c.id)
        and fake.events.listable(c.id)[0].created_at > BOOKMARK - LOOKBACK
    }
    assert newest_in_lookback - set(changed)
    reread = {r.arg("intercom_user_id") for r in summary_calls(fake, before)}
    assert reread == set(changed) | newest_in_lookback
    full = run_tap(config(fake), select=[SUMMARIES])
    assert upsert(first.records(SUMMARIES), second.records(SUMMARIES)) == upsert(
        full.records(SUMMARIES)
    )


def test_nothing_new_rereads_only_the_summaries_in_the_lookback(events_fake, now) -> None:
    fake = events_fake(contacts=30)
    first = run_tap(config(fake), select=[EVENTS, SUMMARIES])
    fake.events.now = now.now = NOW + HOUR
    before = len(event_calls(fake))
    second = run_tap(config(fake), state=first.state, select=[EVENTS, SUMMARIES])
    lookback = active(fake, BOOKMARK - LOOKBACK, BOOKMARK)
    assert {r["contact_id"] for r in second.records(SUMMARIES)} == lookback
    assert len(summary_calls(fake, before)) == len(lookback)
    # contact_events lists the contacts and reads one page of events each; summaries lists
    # them again and reads the summary of each contact with events in the lookback.
    contacts = len(fake.events.contacts)
    assert len(event_calls(fake)) - before == (1 + contacts) + (1 + len(lookback))


def test_nothing_new_reads_no_summary_without_lookback(events_fake, now) -> None:
    fake = events_fake(contacts=30)
    cfg = config(fake, events_lookback_hours=0, events_deep_lookback_days=0)
    first = run_tap(cfg, select=[EVENTS, SUMMARIES])
    fake.events.now = now.now = NOW + HOUR
    before = len(event_calls(fake))
    second = run_tap(cfg, state=first.state, select=[EVENTS, SUMMARIES])
    assert second.records(SUMMARIES) == []
    assert summary_calls(fake, before) == []
    assert len(event_calls(fake)) - before == len(fake.events.contacts) + 1


@pytest.mark.parametrize(
    ("days", "after", "full"),
    [(7, 6 * DAY, False), (7, 7 * DAY, True), (1, DAY, True), (0, HOUR, True)],
)
def test_full_read_every_n_days(events_fake, now, days, after, full) -> None:
    fake = events_fake(contacts=20)
    cfg = config(fake, event_summaries_full_refresh_days=days)
    first = run_tap(cfg, select=[EVENTS, SUMMARIES])
    fake.events.now = now.now = NOW + after
    before = len(event_calls(fake))
    second = run_tap(cfg, state=first.state, select=[EVENTS, SUMMARIES])
    with_summaries = {c.id for c in fake.events.contacts if fake.events.events[c.id]}
    read = {r["contact_id"] for r in second.records(SUMMARIES)}
    # Not a full read: a day or more later, the deep lookback re-reads the week before the
    # bookmark, and the summaries of the contacts with events there.
    deep = active(fake, BOOKMARK - DEEP, NOW + after - SETTLE)
    assert read == (with_summaries if full else deep)
    assert len(summary_calls(fake, before)) == (len(fake.events.contacts) if full else len(deep))
    want_full_at = iso(NOW + after) if full else iso(NOW)
    assert second.state["bookmarks"][SUMMARIES]["full_read_at"] == want_full_at


def test_failed_incremental_run_keeps_the_bookmark(events_fake, now) -> None:
    fake = events_fake(contacts=30)
    first = run_tap(config(fake), select=[EVENTS, SUMMARIES])
    changed = add_new_events(fake, 3, NOW + 60)
    fake.events.now = now.now = NOW + HOUR
    fake.events.failing[changed[-1]] = 403
    failed = run_tap(
        config(fake), state=first.state, select=[EVENTS, SUMMARIES], raise_errors=False
    )
    assert failed.error is not None
    del fake.events.failing[changed[-1]]
    retry = run_tap(config(fake), state=failed.state, select=[EVENTS, SUMMARIES])
    lookback = active(fake, BOOKMARK - LOOKBACK, BOOKMARK)
    assert {r["contact_id"] for r in retry.records(SUMMARIES)} == set(changed) | lookback


def test_paged_summaries_lose_no_row(events_fake) -> None:
    fake = events_fake(contacts=30)
    whole = run_tap(config(fake), select=[SUMMARIES]).records(SUMMARIES)
    fake.events.summary_per_page = 1
    before = len(event_calls(fake))
    paged = run_tap(config(fake), select=[SUMMARIES]).records(SUMMARIES)
    assert paged == whole
    assert len(summary_calls(fake, before)) == len(whole) + sum(
        1 for c in fake.events.contacts if not fake.events.events[c.id]
    )
    assert any(r.arg("page") == "3" for r in summary_calls(fake, before))


def test_event_pages_use_millisecond_before_links(events_fake) -> None:
    fake = events_fake(contacts=30)
    # Two events in the same second on either side of a page boundary.
    busy = fake.events.contacts[3].id
    fake.events.add_event(busy, "viewed-pricing", NOW - DAY)
    fake.events.add_event(busy, "signed-up", NOW - DAY)
    run = run_tap(config(fake, events_per_page=2), select=[EVENTS])
    assert keys(run.records(EVENTS)) == expected(fake, NOW - 90 * DAY, NOW - SETTLE)
    befores = [r.arg("before") for r in fake.log if r.path == "/events" and r.arg("before")]
    assert befores and all(b.isdigit() and len(b) == 13 for b in befores)


def test_base64_contact_cursors_are_url_encoded(events_fake) -> None:
    fake = events_fake(contacts=320)  # three pages of 150
    run = run_tap(config(fake), select=[SUMMARIES])
    cursors = [r.arg("starting_after") for r in fake.log if r.path == "/contacts"]
    assert len(cursors) == 3 and all(c and set("+/=") <= set(c) for c in cursors[1:])
    with_summaries = {c.id for c in fake.events.contacts if fake.events.events[c.id]}
    assert {r["contact_id"] for r in run.records(SUMMARIES)} == with_summaries
    # The fake is as strict as a server: an unencoded `+` arrives as a space and is refused.
    raw = requests.get(
        f"{fake.url}/contacts?per_page=150&starting_after={cursors[1]}",
        headers={"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"},
        timeout=5,
    )
    assert raw.status_code == 400


def test_odd_summary_pages_are_reported(events_fake, caplog) -> None:
    fake = events_fake(contacts=5)
    cid = fake.events.contacts[0].id  # read first, one request at a time
    fake.inject(
        "GET",
        "/events",
        200,
        body={"type": "event.summary", "events": [{"name": "a", "count": 1}, {"count": 2}],
              "pages": {"next": {"page": 2}}},
    )  # fmt: skip
    run = run_tap(config(fake, max_concurrent_requests=1), select=[SUMMARIES])
    assert [r["event_name"] for r in run.records(SUMMARIES)][:1] == ["a"]
    assert (
        f"contact {cid}: summary pages.next is not a link ({{'page': 2}}): later pages not read. "
        "1 summary item(s) without an event name were skipped." in caplog.text
    )


def test_full_table_in_the_catalog_reads_every_summary(events_fake, now) -> None:
    from tests.conftest import selection_catalog

    fake = events_fake(contacts=10)
    cfg = config(fake)
    catalog = selection_catalog(cfg, {SUMMARIES})
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == SUMMARIES:
            entry["replication_method"] = "FULL_TABLE"
            for md in entry["metadata"]:
                if md["breadcrumb"] == []:
                    md["metadata"]["forced-replication-method"] = "FULL_TABLE"
    first = run_tap(cfg, catalog=catalog)
    fake.events.now = now.now = NOW + HOUR
    before = len(event_calls(fake))
    run_tap(cfg, state=first.state, catalog=catalog)
    assert len(summary_calls(fake, before)) == len(fake.events.contacts)
