"""`meltano run` end to end, shared by the DuckDB/JSONL and PostgreSQL test files.

Meltano comes from .venv-meltano (scripts/test.sh installs it) and the plugins are installed once
per test process into a temporary Meltano system directory that the tests only read; each test
gets its own system database, so Meltano's state is per test. A missing piece is installed
(Meltano) or fails the test saying how to get it (PostgreSQL's binaries): nothing skips.
"""

from __future__ import annotations

import json
import re
import time
import typing as t
from dataclasses import dataclass, field

import pytest
from fake_intercom import FakeIntercom, build
from fake_intercom.filekinds import INVENTED_KIND

from tap_intercom_export.content.schemas import FILE_KINDS
from tests.meltano_harness import Meltano, meltano_for
from tests.oracle import iso, unix

if t.TYPE_CHECKING:
    from pathlib import Path

DAY = 86400
TOKEN = "e2e-token"
START = "2023-10-25T00:00:00Z"
FIRST_END = "2023-11-01T00:00:00Z"  # one 7-day window
LATER_END = "2023-11-04T00:00:00Z"  # plus one 3-day window
EXPORT_STREAMS = ["message_export_jobs", *(spec.stream_name for spec in FILE_KINDS.values())]


@pytest.fixture(scope="session")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    """Meltano with every plugin of meltano.yml installed (once per session, only read after)."""
    base = tmp_path_factory.mktemp("meltano")
    m = meltano_for(base)
    m("install", db=base / "install.db")
    return m


# -- The fake and the pipeline ----------------------------------------------------------------


@pytest.fixture
def fake() -> t.Iterator[FakeIntercom]:
    """The fake Intercom API on loopback, with messages from before START to after LATER_END."""
    api = build(token=TOKEN, start=unix(START) - 3 * DAY, end=unix(LATER_END) + 3 * DAY, receipts_per_day=24,
                invent_kind=True)  # fmt: skip
    api.start()
    yield api
    api.stop()


@dataclass
class Pipeline:
    """`meltano run tap-intercom-export <loader>` with the tap pointed at the fake."""

    meltano: Meltano
    fake: FakeIntercom
    loader: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    select: list[str] = field(default_factory=lambda: ["message_*.*"])

    def run(self, end_date: str, *extra: str) -> str:
        """One run up to `end_date`, with Meltano's state from the previous runs of this test."""
        return self.meltano(
            "run",
            *extra,
            "tap-intercom-export",
            self.loader,
            db=self.workdir / "meltano.db",
            env=self.env_for(end_date),
        )

    def env_for(self, end_date: str) -> dict[str, str]:
        """The tap's settings for a run up to `end_date`, as Meltano reads them from the environment."""
        return {
            "TAP_INTERCOM_EXPORT_ACCESS_TOKEN": TOKEN,
            "TAP_INTERCOM_EXPORT_API_URL": self.fake.url,
            "TAP_INTERCOM_EXPORT_START_DATE": START,
            "TAP_INTERCOM_EXPORT_END_DATE": end_date,
            "TAP_INTERCOM_EXPORT_EXPORT_WINDOW_DAYS": "7",
            "TAP_INTERCOM_EXPORT_EXPORT_POLL_INTERVAL_SECONDS": "1",
            # Only the export streams: the fake's other routes are other tests' business.
            "TAP_INTERCOM_EXPORT__SELECT": json.dumps(self.select),
            **self.env,
        }

    def export_jobs(self) -> list[tuple[int, int]]:
        """(created_at_after, created_at_before) of every export job the fake was asked for."""
        return [
            (r.body["created_at_after"], r.body["created_at_before"])
            for r in self.fake.calls("POST", "/export/content/data")
        ]


def expected_counts(fake: FakeIntercom, windows: list[tuple[str, str]]) -> dict[str, int]:
    """Rows per table that the fake serves for these export windows (one job each)."""
    counts = {"message_export_jobs": len(windows)}
    for spec in FILE_KINDS.values():
        counts[spec.stream_name] = sum(
            len(fake.exports.dataset.rows(spec.kind, unix(a), unix(b) - 1)) for a, b in windows
        )
    counts["message_other_statistics"] = sum(
        len(fake.exports.dataset.rows(INVENTED_KIND, unix(a), unix(b) - 1)) for a, b in windows
    )
    return counts


def assert_first_window(got: dict, first: dict[str, int], *, timestamp: str, integer: str) -> None:
    """The first window landed whole, typed with the loader's `timestamp` and `integer` types."""
    assert got["counts"] == first
    assert got["receipts"] == [
        first["message_receipts"],
        "2023-10-25 00:00:00",
        "2023-10-31 23:00:00",
    ]
    receipts = got["columns"]["message_receipts"]
    assert receipts["received_at"] == receipts["first_open"] == timestamp
    assert got["columns"]["message_export_jobs"]["window_start"] == timestamp
    assert got["columns"]["message_overview"]["receipt_total"] == integer


# -- Reporting data export --------------------------------------------------------------------

REPORTING_ENV = {
    "TAP_INTERCOM_EXPORT_REPORTING_WINDOW_DAYS": "7",
    "TAP_INTERCOM_EXPORT_REPORTING_LOOKBACK_DAYS": "0",
    # The fake's reports are of 2023, older than Intercom's 2 years before today: as for a
    # workspace that keeps them longer, the setting lets the tap ask for them.
    "TAP_INTERCOM_EXPORT_REPORTING_RETENTION_DAYS": "36500",
}
REPORTING_QUERY = 'SELECT count(DISTINCT conversation_id), count(*), count("Brand_2") FROM intercom.reporting_conversation'


def reporting_expected(fake: FakeIntercom, end: str) -> list[int]:
    """Distinct conversations the fake serves from START to `end` (bound rows come twice, upserted)."""
    ids = {
        r["conversation_id"] for r in fake.reporting.rows("conversation", unix(START), unix(end))
    }
    return [len(ids), len(ids)]


# -- Contact events ---------------------------------------------------------------------------

EVENT_STREAMS = ["contact_events.*", "contact_event_summaries.*"]
EVENTS_SQL = (
    "SELECT count(*), count(DISTINCT event_key) FROM {schema}.contact_events",
    (
        "SELECT count(*), count(DISTINCT contact_id || '/' || event_name) "
        "FROM {schema}.contact_event_summaries"
    ),
    "SELECT contact_id, event_name, count FROM {schema}.contact_event_summaries",
)


def run_with_late_events(pipe: Pipeline) -> tuple[str, str]:
    """Two runs of the event streams; between them, events reach the fake hours late.

    Before the first run, an event two hours old (the first run emits it, the second's lookback
    emits it again); after it, events three and five hours old, one for a contact that had none.
    The fake's events end at the real now, so the runs have no end date; settle 0 lets the
    second run read up to its start.
    """
    fake = pipe.fake
    contacts = fake.events.contacts
    pipe.select = EVENT_STREAMS
    pipe.env["TAP_INTERCOM_EXPORT_EVENT_SETTLE_SECONDS"] = "0"
    end = iso(int(time.time()) + DAY)  # later than both runs: the range ends at each run's start
    fake.add_late_event(contacts[1].id, "viewed-pricing", late_by=2 * 3600)
    first = pipe.run(end)
    fake.add_late_event(contacts[2].id, "ordered-item", late_by=3 * 3600)
    fake.events.add_contact("late-contact", email="late@example.com")
    fake.add_late_event("late-contact", "signed-up", late_by=5 * 3600)
    return first, pipe.run(end)


def expected_events(fake: FakeIntercom) -> dict[str, t.Any]:
    """What the warehouse must hold after `run_with_late_events`: each event and summary once."""
    events = sum(len(fake.events.listable(c.id)) for c in fake.events.contacts)
    counts: dict[tuple[str, str], int] = {}
    for contact in fake.events.contacts:
        for event in fake.events.events[contact.id]:
            key = (contact.id, event.name)
            counts[key] = counts.get(key, 0) + 1
    return {"events": [events, events], "summaries": [len(counts), len(counts)], "counts": counts}


def assert_events_landed(fake: FakeIntercom, rows: dict[str, list[list[str]]], log: str) -> None:
    """Row counts by key equal the distinct events and summaries; late events counted."""
    events_sql, summaries_sql, counts_sql = EVENTS_SQL
    want = expected_events(fake)
    assert [int(v) for v in rows[events_sql][0]] == want["events"]
    assert [int(v) for v in rows[summaries_sql][0]] == want["summaries"]
    landed = {(c, n): int(k) for c, n, k in rows[counts_sql]}
    assert landed == want["counts"]
    assert landed["late-contact", "signed-up"] == 1
    # The second run emitted events of the first again (its lookback): the keys absorbed them.
    again = re.search(r"contact_events done: .* \(([\d,]+) again: lookback\)", log)
    assert again and int(again.group(1).replace(",", "")) >= 1, log[-3000:]
