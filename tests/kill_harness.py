"""Simulated kills of an in-process tap run, shared by the kill-point tests.

A kill is a BaseException (nothing in the tap or the SDK catches it, and no final STATE is
written, as with SIGKILL) raised right after the N-th message written, sleep taken or download
chunk stored. `Tally` counts which rows a series of runs emitted and which of them a STATE
covered ("confirmed"), with expectations from the fake's raw rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest
from fake_intercom.message_stats import timestamp

from tap_intercom_export.content.schemas import FILE_KINDS
from tap_intercom_export.content.streams import MessageExportJobsStream
from tap_intercom_export.jobs.api import ExportClient
from tap_intercom_export.sdk import BufferedMsgSpecWriter


class Killed(BaseException):
    """The simulated SIGKILL."""


class Chaos:
    """Counts interruption points and raises Killed at the chosen one."""

    def __init__(self) -> None:
        """No point passed yet, none chosen."""
        self.n = 0
        self.kill_at: int | None = None
        #: (point, message) of every message written, when `log` is on.
        self.written: list[tuple[int, dict]] = []
        self.log = False

    def tick(self) -> None:
        """Pass one interruption point; raise Killed if it is the chosen one."""
        self.n += 1
        if self.kill_at is not None and self.n == self.kill_at:
            raise Killed


@pytest.fixture
def chaos(monkeypatch, clock) -> Chaos:
    chaos = Chaos()
    # The tap's message writer sees every message: RECORD and SCHEMA through the tap, STATE
    # through the SDK's state writer, which does not go through the tap's write_message.
    write = BufferedMsgSpecWriter.write_message

    def write_then_tick(self, message):
        write(self, message)
        chaos.tick()
        if chaos.log:
            as_dict = message.to_dict()
            as_dict["type"] = getattr(as_dict["type"], "value", as_dict["type"])  # an enum
            chaos.written.append((chaos.n, as_dict))

    monkeypatch.setattr(BufferedMsgSpecWriter, "write_message", write_then_tick)
    sleep = clock.sleep

    def sleep_then_tick(seconds: float) -> None:
        sleep(seconds)
        chaos.tick()

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


def expected_keys(fake, windows: list[tuple[int, int]]) -> Counter:
    keys: Counter = Counter()
    for spec in FILE_KINDS.values():
        for after, end in windows:
            for row in fake.exports.dataset.rows(spec.kind, after, end - 1):
                keys[record_key(spec.stream_name, as_record(row))] += 1
    return keys


def record_key(stream: str, record: dict) -> tuple:
    spec = next(s for s in FILE_KINDS.values() if s.stream_name == stream)
    return (stream, tuple(record[k] for k in spec.primary_keys if k != "export_window_start"))


@dataclass
class Tally:
    """Rows emitted over a series of runs, and those a later STATE of the same run covered."""

    confirmed: Counter = field(default_factory=Counter)
    seen: Counter = field(default_factory=Counter)

    def add(self, messages: list[dict], *, killed: bool) -> None:
        """Count one run's records; a killed run's records after its last STATE are unconfirmed."""
        last_state = max((i for i, m in enumerate(messages) if m["type"] == "STATE"), default=-1)
        for i, m in enumerate(messages):
            if m["type"] == "RECORD" and m["stream"] != "message_export_jobs":
                key = record_key(m["stream"], m["record"])
                self.seen[key] += 1
                if not killed or i < last_state:
                    self.confirmed[key] += 1

    def check(self, expected: Counter) -> int:
        """Every expected row confirmed exactly once (overview once per window); the re-emitted."""
        # Keys are unique per window except overview's, which repeat once per window.
        want = {k: 1 if k[0] != "message_overview" else v for k, v in expected.items()}
        assert dict(self.confirmed) == want
        assert set(self.seen) == set(expected)
        duplicates = sum(self.seen.values()) - sum(expected.values())
        assert duplicates >= 0
        return duplicates
