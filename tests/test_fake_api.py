"""The fake's own behaviours that other tests rely on: /me, zones, rate-limit headers, late events."""

from __future__ import annotations

import time

import pytest
import requests
from fake_intercom import exports
from fake_intercom.server import options

from tests.conftest import DAY, NOW, TOKEN

HEADERS = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
# 2023-11-05 in New York: EDT (UTC-4) until 06:00 UTC, EST (UTC-5) after.
DST_END = 1_699_164_000


def get(fake, path: str, **params) -> requests.Response:
    return requests.get(f"{fake.url}{path}", headers=HEADERS, params=params, timeout=10)


def test_me_names_the_workspace_zone(make_fake) -> None:
    fake = make_fake(timezone="America/New_York")
    me = get(fake, "/me").json()
    assert me["type"] == "admin"
    assert me["app"]["type"] == "app"
    assert me["app"]["timezone"] == "America/New_York"
    assert make_fake().workspace.timezone == "UTC"  # the default


@pytest.mark.parametrize("status", [401, 403])
def test_me_refuses_a_token_without_that_permission(make_fake, status) -> None:
    answer = get(make_fake(me_status=status), "/me")
    assert answer.status_code == status
    assert answer.json()["type"] == "error.list"


def test_reporting_times_are_written_in_the_workspace_zone(make_fake) -> None:
    ny = make_fake(timezone="America/New_York")
    # Conversations start every 2 hours from 2023-10-01T00:00Z: 04:00Z and 06:00Z straddle the
    # end of daylight saving time (06:00Z is 01:00 EST, 04:00Z is 00:00 EDT).
    rows = ny.reporting.rows("conversation", DST_END - 7200, DST_END)
    truth = ny.reporting.truth("conversation", DST_END - 7200, DST_END)
    assert [r["conversation_started_at"] for r in rows] == [
        "2023-11-05 00:00:00",
        "2023-11-05 01:00:00",
    ]
    assert [r["conversation_started_at"] for r in truth] == [
        "2023-11-05T04:00:00+00:00",
        "2023-11-05T06:00:00+00:00",
    ]
    kolkata = make_fake(timezone="Asia/Kolkata")
    (row,) = kolkata.reporting.rows("conversation", NOW - 44 * DAY, NOW - 44 * DAY)
    assert row["conversation_started_at"] == "2023-10-01 05:30:00"  # UTC+05:30
    # Times the CSV leaves empty are None in the truth; other values are the same text.
    both = zip(rows, truth, strict=True)
    assert all(
        t["conversation_closed_at"] is None for r, t in both if not r["conversation_closed_at"]
    )
    assert [r["channel"] for r in rows] == [t["channel"] for t in truth]
    assert ny.reporting.time_attributes("tickets") == ["ticket_created_at"]


def test_reporting_times_can_be_written_in_utc_while_me_says_new_york(make_fake) -> None:
    fake = make_fake(timezone="America/New_York", reporting_csv_timezone="UTC")
    assert get(fake, "/me").json()["app"]["timezone"] == "America/New_York"
    (row,) = fake.reporting.rows("conversation", DST_END, DST_END)
    assert row["conversation_started_at"] == "2023-11-05 06:00:00"


def test_rate_limit_headers_by_default_per_10_second_window(make_fake) -> None:
    fake = make_fake()
    first, second = get(fake, "/me"), get(fake, "/me")
    assert first.headers["X-RateLimit-Limit"] == "1667"  # 10,000 a minute, per 10 s
    remaining = int(second.headers["X-RateLimit-Remaining"])
    # One less, unless a new window began between the two requests.
    assert remaining in (int(first.headers["X-RateLimit-Remaining"]) - 1, 1666)
    reset = int(second.headers["X-RateLimit-Reset"])
    assert reset % 10 == 0 and time.time() < reset <= time.time() + 10
    # No rate-limit headers for a request without valid credentials, as Intercom.
    refused = requests.get(f"{fake.url}/me", headers={**HEADERS, "Authorization": "x"}, timeout=10)
    assert refused.status_code == 401 and "X-RateLimit-Limit" not in refused.headers
    assert "X-RateLimit-Limit" not in get(make_fake(rate_limit=None), "/me").headers


def test_command_line_sets_latency_limit_and_zone() -> None:
    built, args = options(
        ["--latency-ms", "200", "--rate-limit", "1000", "--timezone", "Asia/Kolkata", "--port", "0"]
    )
    assert built["latency"] == 0.2 and built["rate_limit"] == 1000
    assert built["timezone"] == "Asia/Kolkata" and args.port == 0
    assert options(["--rate-limit", "0"])[0]["rate_limit"] is None


def test_late_events_are_listed_where_their_created_at_puts_them(make_fake) -> None:
    fake = make_fake(contacts=3, events_now=NOW)
    contact = fake.events.contacts[0].id
    created = fake.add_late_event(contact, "late-order", late_by=3 * 3600)
    assert created == NOW - 3 * 3600
    assert fake.add_late_event(contact, "late-order", created_at=NOW - DAY) == NOW - DAY
    # Intercom ignores a second event with the same name and created_at.
    assert fake.events.add_event(contact, "late-order", NOW - DAY) is False
    listed = [(e.name, e.created_at) for e in fake.events.listable(contact)]
    assert listed == sorted(listed, key=lambda e: -e[1])  # newest first
    assert ("late-order", NOW - 3 * 3600) in listed and ("late-order", NOW - DAY) in listed

    # Over HTTP, for a fake in another process: a new contact, then its first (late) event.
    admin = {"Authorization": f"Bearer {TOKEN}"}
    new = {"id": "6newcontact", "email": "new@example.com"}
    assert requests.post(f"{fake.url}/_fake/contacts", json=new, headers=admin, timeout=10).ok
    event = {"intercom_user_id": "6newcontact", "event_name": "late", "created_at": NOW - 600}
    added = requests.post(f"{fake.url}/_fake/events", json=event, headers=admin, timeout=10)
    assert added.json() == {"added": True}
    page = get(fake, "/events", type="user", intercom_user_id="6newcontact").json()
    assert [(e["event_name"], e["created_at"]) for e in page["events"]] == [("late", NOW - 600)]
    assert not any(r.path.startswith("/_fake/") for r in fake.log)  # admin calls are not logged


def test_an_archive_removed_while_its_download_starts_is_a_404(make_fake, monkeypatch) -> None:
    fake = make_fake()
    fake.exports.next_scripts.append(["completed"])
    window = {"created_at_after": NOW - 2 * DAY, "created_at_before": NOW - DAY}
    answer = requests.post(
        f"{fake.url}/export/content/data", json=window, headers=HEADERS, timeout=10
    )
    job = answer.json().get("job_identifier") or answer.json()["job_identfier"]
    assert get(fake, f"/export/content/data/{job}").json()["status"] == "completed"
    # As when a test stops the fake (removing its archives) between the download's checks and its
    # first byte: the fake's download delay is where that happens, without a real sleep.
    fake.exports.download_delay = 1
    monkeypatch.setattr(exports, "real_sleep", lambda _: fake.exports.jobs[job].archive.unlink())
    octet = {**HEADERS, "Accept": "application/octet-stream"}
    gone = requests.get(f"{fake.url}/download/content/data/{job}", headers=octet, timeout=10)
    assert gone.status_code == 404 and gone.content == b""
