"""contact_events and contact_event_summaries end to end against the fake Intercom API."""

from __future__ import annotations

import logging
import re
import typing as t
from dataclasses import dataclass

import pytest
from fake_intercom.events import LISTABLE_SECONDS

from tap_intercom_export.errors import ConfigError, IntercomAPIError, IntercomAuthError
from tap_intercom_export.events.fanout import ContactFanOutStream
from tap_intercom_export.tap import TapIntercomExport
from tests.conftest import DAY, NOW, TOKEN, run_tap
from tests.oracle import event_key, iso

SETTLE = 300
HOUR = 3600
#: The default lookbacks: every run re-reads a day before its bookmark, a deep one a week.
LOOKBACK = 24 * HOUR
DEEP = 7 * DAY
EVENTS = "contact_events"
SUMMARIES = "contact_event_summaries"
ODD_ID = "odd+id/ä 1"
ODD_EMAIL = "a+b@example.com"


@dataclass
class Clock:
    """The tap's "now" for the event streams; tests move it."""

    now: int


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Pin the event streams' clock to NOW (the fake's too, via `events_fake`)."""
    clock = Clock(NOW)
    monkeypatch.setattr(ContactFanOutStream, "wall_clock", staticmethod(lambda: float(clock.now)))
    return clock


@pytest.fixture
def events_fake(make_fake: t.Callable[..., t.Any], now: Clock) -> t.Callable[..., t.Any]:
    """A fake whose events end at NOW, with a contact whose id and email need URL-encoding."""

    def factory(**kwargs: t.Any) -> t.Any:
        kwargs.setdefault("contacts", 30)
        kwargs.setdefault("events_now", NOW)
        # A limit the tests never reach, so that pacing to it costs them no time (the pace
        # itself: test_low_rate_limit_spreads_requests_over_the_windows, test_events_ratelimit).
        kwargs.setdefault("rate_limit", 100_000)
        fake = make_fake(**kwargs)
        fake.events.add_contact(ODD_ID, email=ODD_EMAIL, external_id="ext+1")
        fake.events.add_event(ODD_ID, "signed-up", NOW - 2 * DAY, {"plan": "pro"})
        fake.events.add_event(
            ODD_ID, "ordered-item", NOW - 3 * DAY, {"price": {"amount": 100, "currency": "usd"}}
        )
        return fake

    return factory


def config(fake: t.Any, **overrides: t.Any) -> dict:
    """Tap settings for the event streams: small pages so paging is exercised."""
    cfg = {
        "access_token": TOKEN,
        "api_url": fake.url,
        "start_date": "2023-07-01T00:00:00Z",  # older than the 90 days before NOW
        "events_per_page": 5,
        "event_settle_seconds": SETTLE,
    }
    cfg.update(overrides)
    return cfg


def expected(fake: t.Any, after: int, until: int, skip: t.Collection[str] = ()) -> list[tuple]:
    """(contact, name, created_at) of every listable event in (after, until], in emit order."""
    return [
        (contact.id, event.name, iso(event.created_at))
        for contact in fake.events.contacts
        if contact.id not in skip
        for event in fake.events.listable(contact.id)
        if after < event.created_at <= until
    ]


def active(fake: t.Any, after: int, until: int) -> set[str]:
    """Ids of the contacts with a listable event created in (after, until]."""
    return {contact for contact, _, _ in expected(fake, after, until)}


def keys(records: list[dict]) -> list[tuple]:
    return [(r["contact_id"], r["event_name"], r["created_at"]) for r in records]


def event_calls(fake: t.Any, since: int = 0) -> list:
    return [r for r in fake.log[since:] if r.path == "/events"]


def bookmark(run: t.Any) -> str | None:
    return run.state.get("bookmarks", {}).get(EVENTS, {}).get("replication_key_value")


def test_full_sync_emits_exactly_the_listable_events(events_fake, caplog) -> None:
    fake = events_fake()
    fake.events.add_event(fake.events.contacts[1].id, "viewed-pricing", NOW - 60)  # not settled yet
    caplog.set_level(logging.INFO)
    run = run_tap(config(fake), select=[EVENTS])

    records = run.records(EVENTS)
    want = expected(fake, NOW - LISTABLE_SECONDS, NOW - SETTLE)
    assert keys(records) == want
    assert len(want) > 100
    assert any(name == "ordered-item" for _, name, _ in want)
    # Events older than 90 days exist in the fake but cannot be listed.
    everything = sum(len(v) for v in fake.events.events.values())
    assert everything > len(want) + 20
    assert len({r["event_key"] for r in records}) == len(records)

    odd = [r for r in records if r["contact_id"] == ODD_ID]
    assert odd == [
        {
            "event_key": event_key(ODD_ID, "signed-up", NOW - 2 * DAY),
            "contact_id": ODD_ID,
            "contact_role": "user",
            "user_id": "ext+1",
            "email": ODD_EMAIL,
            "event_name": "signed-up",
            "created_at": iso(NOW - 2 * DAY),
            "metadata": {"plan": "pro"},
        },
        {
            "event_key": event_key(ODD_ID, "ordered-item", NOW - 3 * DAY),
            "contact_id": ODD_ID,
            "contact_role": "user",
            "user_id": "ext+1",
            "email": ODD_EMAIL,
            "event_name": "ordered-item",
            "created_at": iso(NOW - 3 * DAY),
            "metadata": {"price": {"amount": 100, "currency": "usd"}},
        },
    ]
    # Typed metadata comes through untouched: dates, links, rich links, money, numbers.
    by_name = {
        r["event_name"]: r["metadata"]
        for r in records
        if r["metadata"] and r["contact_id"] != ODD_ID
    }
    assert isinstance(by_name["ordered-item"]["price"], dict)
    assert by_name["ordered-item"]["invoice"].startswith("https://")
    assert set(by_name["invited-friend"]["article"]) == {"url", "value"}
    assert isinstance(by_name["signed-up"]["trial_end_date"], int)
    assert any(r["contact_role"] == "lead" for r in records)

    assert bookmark(run) == iso(NOW - SETTLE)
    assert "older than the 90 days Intercom lists events for" in caplog.text
    assert f"{EVENTS} done: 31/31 contacts (100.0 %), {len(want)} events" in caplog.text
    # Ids are URL-encoded: the fake decoded exactly the id it was given.
    assert any(r.arg("intercom_user_id") == ODD_ID for r in event_calls(fake))
    # Contacts with more events than a page were paged.
    assert len(event_calls(fake)) > len(fake.events.contacts)


def test_second_run_reads_new_events_and_the_lookback_before_the_bookmark(events_fake, now) -> None:
    fake = events_fake()
    first_contact, second_contact = fake.events.contacts[1].id, fake.events.contacts[4].id
    fake.events.add_event(first_contact, "viewed-pricing", NOW - 60)  # after the first run's bound
    first = run_tap(config(fake), select=[EVENTS])
    assert (first_contact, "viewed-pricing", iso(NOW - 60)) not in keys(first.records(EVENTS))

    fake.events.add_event(first_contact, "signed-up", NOW + 100, {"plan": "team"})
    fake.events.add_event(second_contact, "ordered-item", NOW + 500)
    fake.events.add_event(second_contact, "ordered-item", NOW + 3590)  # too fresh again
    fake.events.now = now.now = NOW + 3600
    calls_before = len(fake.log)
    second = run_tap(config(fake), state=first.state, select=[EVENTS])

    new = [
        (first_contact, "signed-up", iso(NOW + 100)),
        (first_contact, "viewed-pricing", iso(NOW - 60)),
        (second_contact, "ordered-item", iso(NOW + 500)),
    ]
    got = keys(second.records(EVENTS))
    # The events of the day before the bookmark come again, with the same keys.
    assert got == expected(fake, NOW - SETTLE - LOOKBACK, NOW + 3600 - SETTLE)
    assert [k for k in got if k[2] > iso(NOW - SETTLE)] == new
    again = {r["event_key"] for r in second.records(EVENTS)} & {
        r["event_key"] for r in first.records(EVENTS)
    }
    assert len(again) == len(got) - len(new) > 0
    # Newest first, 5 a page: one page per contact reaches events older than the lookback.
    assert len(event_calls(fake, calls_before)) == len(fake.events.contacts)
    assert bookmark(second) == iso(NOW + 3600 - SETTLE)

    # Nothing has settled since: the third run does not even list contacts.
    calls_before = len(fake.log)
    third = run_tap(config(fake), state=second.state, select=[EVENTS])
    assert third.records(EVENTS) == []
    # (The only request is the harness's discovery of reporting datasets for the catalog.)
    assert not [
        r for r in fake.log[calls_before:] if r.path != "/export/reporting_data/get_datasets"
    ]
    assert bookmark(third) == bookmark(second)


def test_run_without_new_events_still_moves_the_bookmark(events_fake, now) -> None:
    fake = events_fake(contacts=5)
    first = run_tap(config(fake), select=[EVENTS])
    fake.events.now = now.now = NOW + DAY
    second = run_tap(config(fake), state=first.state, select=[EVENTS])
    # A day later the deep lookback is due: the week before the bookmark is read again.
    assert keys(second.records(EVENTS)) == expected(fake, NOW - SETTLE - DEEP, NOW - SETTLE)
    assert bookmark(second) == iso(NOW + DAY - SETTLE)


def test_repeated_contacts_cursor_ends_listing_with_a_warning(events_fake, caplog) -> None:
    fake = events_fake(contacts=160)
    fake.events.looping_contacts = True
    run = run_tap(config(fake), select=[SUMMARIES])
    assert len({r["contact_id"] for r in run.records(SUMMARIES)}) == len(
        {c.id for c in fake.events.contacts if fake.events.events[c.id]}
    )
    assert "Intercom sent a contacts cursor it had already sent" in caplog.text
    assert len([r for r in fake.log if r.path == "/contacts"]) == 2


def test_deleted_contact_is_skipped_with_a_warning(events_fake, caplog) -> None:
    fake = events_fake()
    gone = fake.events.contacts[4].id
    assert fake.events.listable(gone)
    fake.events.deleted.add(gone)  # still listed, 404 when read
    run = run_tap(config(fake), select=[EVENTS, SUMMARIES])

    assert keys(run.records(EVENTS)) == expected(
        fake, NOW - LISTABLE_SECONDS, NOW - SETTLE, skip={gone}
    )
    assert gone not in {r["contact_id"] for r in run.records(SUMMARIES)}
    assert f"contact {gone} was deleted after it was listed (404); skipped" in caplog.text
    assert bookmark(run) == iso(NOW - SETTLE)


def test_404_for_a_contact_that_still_exists_stops_the_sync(events_fake) -> None:
    fake = events_fake()
    fake.events.failing[fake.events.contacts[2].id] = 404
    run = run_tap(config(fake), select=[EVENTS], raise_errors=False)
    assert isinstance(run.error, IntercomAPIError)
    assert "still exists, so its events cannot be skipped" in str(run.error)
    assert bookmark(run) is None


def test_failed_run_never_moves_the_bookmark(events_fake, now) -> None:
    fake = events_fake(contacts=60)
    first = run_tap(config(fake), select=[EVENTS])
    for contact in fake.events.contacts[:50]:
        fake.events.add_event(contact.id, "signed-up", NOW + 600)
    fake.events.now = now.now = NOW + 3600
    fake.events.failing[fake.events.contacts[40].id] = 403

    failed = run_tap(
        config(fake, max_concurrent_requests=3),
        state=first.state,
        select=[EVENTS],
        raise_errors=False,
    )
    assert isinstance(failed.error, IntercomAuthError)
    assert "read events" in str(failed.error)
    assert failed.records(EVENTS)  # events of contacts read before the failure went out
    assert {s["bookmarks"][EVENTS].get("replication_key_value") for s in failed.states} == {
        bookmark(first)
    }

    del fake.events.failing[fake.events.contacts[40].id]
    retry = run_tap(config(fake), state=failed.state, select=[EVENTS])
    assert keys(retry.records(EVENTS)) == expected(
        fake, NOW - SETTLE - LOOKBACK, NOW + 3600 - SETTLE
    )
    new = [r["created_at"] for r in retry.records(EVENTS) if r["created_at"] > iso(NOW - SETTLE)]
    assert new == [iso(NOW + 600)] * 50
    assert bookmark(retry) == iso(NOW + 3600 - SETTLE)


def test_repeated_page_link_ends_paging_with_a_warning(events_fake, caplog) -> None:
    fake = events_fake()
    looping = fake.events.contacts[7].id
    assert len(fake.events.listable(looping)) > 5
    fake.events.looping.add(looping)
    run = run_tap(config(fake), select=[EVENTS])

    mine = [r for r in run.records(EVENTS) if r["contact_id"] == looping]
    assert keys(mine) == [
        (looping, e.name, iso(e.created_at)) for e in fake.events.listable(looping)[:5]
    ]
    assert (
        f"contact {looping}: Intercom sent an events page link it had already sent" in caplog.text
    )


def test_summaries_count_every_event_including_older_than_90_days(events_fake) -> None:
    fake = events_fake()
    run = run_tap(config(fake), select=[SUMMARIES])
    records = run.records(SUMMARIES)

    want = []
    for contact in fake.events.contacts:
        names: dict[str, list[int]] = {}
        for event in fake.events.events[contact.id]:
            names.setdefault(event.name, []).append(event.created_at)
        want += [
            (contact.id, n, len(ts), iso(min(ts)), iso(max(ts))) for n, ts in sorted(names.items())
        ]
    assert [
        (r["contact_id"], r["event_name"], r["count"], r["first"], r["last"]) for r in records
    ] == want
    assert any(r["first"] < iso(NOW - LISTABLE_SECONDS) for r in records)
    # A first run reads every summary and remembers that it did (tests/test_events_summaries.py).
    assert run.state["bookmarks"][SUMMARIES] == {
        "replication_key": "last",
        "replication_key_value": iso(NOW - SETTLE),
        "full_read_at": iso(NOW),
    }


def test_end_date_caps_the_range_and_the_bookmark(events_fake) -> None:
    fake = events_fake()
    run = run_tap(config(fake, end_date=iso(NOW - 10 * DAY)), select=[EVENTS])
    assert keys(run.records(EVENTS)) == expected(fake, NOW - LISTABLE_SECONDS, NOW - 10 * DAY - 1)
    assert bookmark(run) == iso(NOW - 10 * DAY - 1)


def test_bookmark_older_than_90_days_warns_of_the_gap(events_fake, caplog) -> None:
    fake = events_fake(contacts=5)
    state = {
        "bookmarks": {
            EVENTS: {"replication_key": "created_at", "replication_key_value": iso(NOW - 100 * DAY)}
        }
    }
    run = run_tap(config(fake), state=state, select=[EVENTS])
    assert keys(run.records(EVENTS)) == expected(fake, NOW - LISTABLE_SECONDS, NOW - SETTLE)
    assert "can no longer be read" in caplog.text
    assert "Run the tap at least every 90 days" in caplog.text


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("max_concurrent_requests", 0, "max_concurrent_requests=0 must be a whole number from 1 to 256"),
        ("events_per_page", 0, "events_per_page=0 must be a whole number, 1 or more"),
        ("event_settle_seconds", -5, "event_settle_seconds=-5 must be a whole number of seconds, 0 or more"),
        ("event_summaries_full_refresh_days", -1, "event_summaries_full_refresh_days=-1 must be a whole number of days, 0 or more"),
    ],
)  # fmt: skip
def test_bad_settings_fail_with_a_line_naming_them(events_fake, setting, value, message) -> None:
    fake = events_fake(contacts=2)
    cfg = config(fake, **{setting: value})
    # The tap refuses it before the SDK's schema does, in one line naming the setting ...
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_tap(cfg, select=[EVENTS])
    # ... and so does discovery, where the SDK only warns.
    with pytest.raises(ConfigError, match=re.escape(message)):
        TapIntercomExport(config=cfg, validate_config=False).discover_streams()
