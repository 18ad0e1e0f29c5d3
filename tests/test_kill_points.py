"""Kill the tap at random points; the states it left must lead to complete data.

A kill is simulated in-process by raising a BaseException (nothing in the tap or the SDK
catches it, and no final STATE is written, as with SIGKILL) right after the N-th message
written (a block of records, for the tap's own record loop), sleep taken or download chunk
stored. What the tap's stdout buffer held at the kill is lost, as it would be; every STATE the
tap wrote before the kill must be in the output all the same. Each next run starts from the last STATE the
killed run wrote. Over all runs, every expected row must be emitted and covered by a STATE
exactly once ("confirmed"); a row may appear again only if its earlier copy was emitted after
the killed run's last STATE (the target got it, but the state did not cover it yet).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime, timezone

import pytest
from fake_intercom.message_stats import timestamp

from tap_intercom_export import sdk
from tap_intercom_export.content.schemas import FILE_KINDS
from tap_intercom_export.jobs.api import ExportClient
from tap_intercom_export.tap import TapIntercomExport
from tap_intercom_export.timeutil import unix
from tests.conftest import DAY, export_config, export_streams, run_tap

START = unix("2023-10-25T00:00:00Z")
WINDOWS = [(START, START + 7 * DAY), (START + 7 * DAY, START + 14 * DAY)]
SEEDS = 40


class Killed(BaseException):
    """The simulated SIGKILL."""


class Chaos:
    """Counts interruption points and raises Killed at the chosen one."""

    def __init__(self) -> None:
        """No point passed yet, none chosen."""
        self.n = 0
        self.kill_at: int | None = None
        #: STATE values the tap handed to its writer in this run.
        self.states: list[dict] = []

    def tick(self) -> None:
        """Pass one interruption point; raise Killed if it is the chosen one."""
        self.n += 1
        if self.kill_at is not None and self.n == self.kill_at:
            raise Killed


@pytest.fixture
def chaos(monkeypatch, clock) -> Chaos:
    chaos = Chaos()
    write = TapIntercomExport.write_message

    def write_then_tick(self, message):
        write(self, message)
        chaos.tick()

    monkeypatch.setattr(TapIntercomExport, "write_message", write_then_tick)
    write_records = sdk.BufferedMsgSpecWriter.write_records

    def write_records_then_tick(self, stream, lines, version):
        write_records(self, stream, lines, version)
        chaos.tick()

    monkeypatch.setattr(sdk.BufferedMsgSpecWriter, "write_records", write_records_then_tick)
    write_state = sdk.BufferedMsgSpecWriter.write_message

    def note_states(self, message):
        write_state(self, message)
        if message.type == "STATE":
            chaos.states.append(json.loads(json.dumps(message.value)))

    monkeypatch.setattr(sdk.BufferedMsgSpecWriter, "write_message", note_states)
    sleep = clock.sleep

    def sleep_then_tick(seconds: float) -> None:
        sleep(seconds)
        chaos.tick()

    from tap_intercom_export.content.streams import MessageExportJobsStream

    monkeypatch.setattr(MessageExportJobsStream, "sleep", staticmethod(sleep_then_tick))
    download = ExportClient.download

    def download_with_ticks(self, job, dest):
        class Ticking:
            def write(self, chunk):
                dest.write(chunk)
                chaos.tick()

        return download(self, job, Ticking())

    monkeypatch.setattr(ExportClient, "download", download_with_ticks)
    return chaos


def as_record(raw: dict[str, str]) -> dict:
    """A raw fake row as the tap should type its key columns: times RFC 3339 UTC, "" null."""

    def typed(name: str, value: str):
        if not value:
            return None
        if name.endswith("_at"):
            return datetime.fromtimestamp(timestamp(value), timezone.utc).isoformat()
        return value

    return {name: typed(name, value) for name, value in raw.items()}


def expected_keys(fake) -> Counter:
    keys: Counter = Counter()
    for spec in FILE_KINDS.values():
        for after, end in WINDOWS:
            for row in fake.exports.dataset.rows(spec.kind, after, end - 1):
                keys[record_key(spec.stream_name, as_record(row))] += 1
    return keys


def record_key(stream: str, record: dict) -> tuple:
    spec = next(s for s in FILE_KINDS.values() if s.stream_name == stream)
    return (stream, tuple(record[k] for k in spec.primary_keys if k != "export_window_start"))


# Overlapped jobs (the default) at every seed; one job after another at a few.
@pytest.mark.parametrize(
    ("seed", "ahead"), [(s, 1) for s in range(SEEDS)] + [(s, 0) for s in range(10)]
)
def test_random_kills_never_lose_a_row(make_fake, chaos, seed, ahead) -> None:
    rng = random.Random(seed)
    fake = make_fake(
        receipts_per_day=6, status_script=["pending", "pending", "in_progress", "completed"]
    )
    config = export_config(
        fake,
        end_date="2023-11-08T00:00:00Z",
        export_poll_interval_seconds=2,
        export_jobs_ahead=ahead,
    )
    streams = export_streams()
    state = None
    confirmed: Counter = Counter()
    seen: Counter = Counter()
    kills = 0
    for _ in range(30):
        chaos.n = 0
        chaos.states = []
        chaos.kill_at = rng.randint(1, 250) if rng.random() < 0.75 else None
        run = run_tap(config, state=state, select=streams, raise_errors=False)
        killed = isinstance(run.error, Killed)
        assert run.error is None or killed, run.error
        # Every STATE the tap wrote is out, with the records before it.
        assert run.states == chaos.states
        last_state = max(
            (i for i, m in enumerate(run.messages) if m["type"] == "STATE"), default=-1
        )
        for i, m in enumerate(run.messages):
            if m["type"] == "RECORD" and m["stream"] != "message_export_jobs":
                key = record_key(m["stream"], m["record"])
                seen[key] += 1
                if not killed or i < last_state:
                    confirmed[key] += 1
        state = run.state or state
        if not killed:
            break
        kills += 1
    else:
        pytest.fail("the tap never finished")

    expected = expected_keys(fake)
    # Keys are unique per window except overview's, which repeat once per window.
    expected_confirmed = {k: 1 if k[0] != "message_overview" else v for k, v in expected.items()}
    assert dict(confirmed) == expected_confirmed
    assert set(seen) == set(expected)
    duplicates = sum(seen.values()) - sum(expected.values())
    assert duplicates >= 0
    # The end state covers everything: a run from it exports nothing.
    chaos.kill_at = None
    again = run_tap(config, state=state, select=streams)
    assert again.streams("message_") == {}
    print(f"seed {seed}: {kills} kills, {duplicates} duplicate rows re-emitted")
