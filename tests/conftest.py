"""Shared test harness: a fake Intercom API on loopback and an in-process tap runner."""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field

import pytest
from fake_intercom import FakeIntercom, build

from tap_intercom_export.content.streams import MessageExportJobsStream
from tap_intercom_export.events.fanout import ContactFanOutStream
from tap_intercom_export.reporting.streams import ReportingStream
from tap_intercom_export.tap import TapIntercomExport

# Fixtures of the `meltano run` test files (test_meltano_e2e.py, test_meltano_postgres.py):
# Meltano with the project's plugins installed once per test process, the fake they run
# against, and a throwaway PostgreSQL server. Only started by the tests that ask for them.
from tests.e2e_pipeline import fake, meltano  # noqa: F401
from tests.kill_harness import chaos  # noqa: F401
from tests.pg_server import postgres  # noqa: F401

#: time.sleep as it is before the `clock` fixture replaces it.
REAL_SLEEP = time.sleep

#: Seconds an `e2e` test may take (Meltano installs plugins, runs loaders): every other test has
#: pyproject.toml's `timeout` (pytest-timeout).
E2E_TIMEOUT = 900

DAY = 86400
# A fixed "now" for export tests: midnight UTC, 2023-11-14.
NOW = 1_699_920_000
TOKEN = "fake-token"


@dataclass
class TapRun:
    """The Singer messages one tap run wrote, and helpers to read them."""

    messages: list[dict]
    error: BaseException | None = None
    waits: list[float] = field(default_factory=list)
    #: Every byte the run wrote to stdout.
    raw: bytes = b""

    def records(self, stream: str) -> list[dict]:
        """Records of one stream, in order."""
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def streams(self, prefix: str = "") -> dict[str, int]:
        """Record count per stream (only streams whose name starts with `prefix`)."""
        out: dict[str, int] = {}
        for m in self.messages:
            if m["type"] == "RECORD" and m["stream"].startswith(prefix):
                out[m["stream"]] = out.get(m["stream"], 0) + 1
        return out

    @property
    def states(self) -> list[dict]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def state(self) -> dict:
        """The last STATE value."""
        return self.states[-1] if self.states else {}

    @property
    def positions(self) -> dict:
        """The last STATE without the wall-clock stamps (when a lookback or full read ran)."""
        stamps = ("last_lookback_at", "full_read_at")
        bookmarks = self.state.get("bookmarks", {})
        return {
            name: {k: v for k, v in b.items() if k not in stamps} for name, b in bookmarks.items()
        }


class _Stdout(io.TextIOWrapper):
    pass


def run_tap(
    config: dict,
    state: dict | None = None,
    catalog: dict | None = None,
    *,
    select: t.Iterable[str] | None = None,
    raise_errors: bool = True,
) -> TapRun:
    """Run a full sync in this process and collect what it writes to stdout."""
    buffer = io.BytesIO()
    fake_stdout = _Stdout(buffer, encoding="utf-8")
    old = sys.stdout
    sys.stdout = fake_stdout
    error = None
    try:
        if select is not None:
            catalog = selection_catalog(config, set(select))
        tap = TapIntercomExport(config=config, state=state, catalog=catalog, setup_mapper=True)
        try:
            tap.sync_all()
        except BaseException as exc:  # a simulated kill is a BaseException, like SystemExit
            if isinstance(exc, (Exception, SystemExit, KeyboardInterrupt)):
                # The process would exit now, writing out what the tap's writer holds (sdk/output.py,
                # at exit); a simulated SIGKILL (kill_harness.Killed) would not.
                tap.message_writer.flush()
            if raise_errors:
                raise
            error = exc
    finally:
        fake_stdout.flush()
        sys.stdout = old
    raw = buffer.getvalue()
    lines = raw.decode().splitlines()
    return TapRun([json.loads(line) for line in lines if line.strip()], error, raw=raw)


def export_streams() -> list[str]:
    """Names of the export streams: the job ledger and one per CSV file kind."""
    from tap_intercom_export.content.schemas import FILE_KINDS

    return ["message_export_jobs", *(spec.stream_name for spec in FILE_KINDS.values())]


def selection_catalog(config: dict, selected: set[str]) -> dict:
    """The discovered catalog with only `selected` streams (all their fields) selected."""
    catalog = TapIntercomExport(config=config).catalog_dict
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = entry["tap_stream_id"] in selected
    return catalog


def export_config(api: FakeIntercom, **overrides: t.Any) -> dict:
    """A tap config pointing at the fake with a fast poll interval."""
    cfg = {
        "access_token": TOKEN,
        "api_url": api.url,
        "start_date": "2023-10-25T00:00:00Z",
        "end_date": "2023-11-14T00:00:00Z",
        "export_window_days": 7,
        "export_poll_interval_seconds": 5,
    }
    cfg.update(overrides)
    return cfg


class VirtualClock:
    """Time that only moves when the tap sleeps: hours of polling pass in microseconds."""

    def __init__(self, start: float = 0.0) -> None:
        """Start at `start` (seconds; unix time for a rate-limit window) with nothing slept."""
        self.now = start
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def time(self) -> float:
        """The virtual now."""
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        """Record the wait and move time forward by it (whichever thread waits)."""
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """Make every tap-side sleep instant and make the export runner's clocks follow them."""
    virtual = VirtualClock()
    monkeypatch.setattr(time, "sleep", virtual.sleep)
    monkeypatch.setattr(MessageExportJobsStream, "sleep", staticmethod(virtual.sleep))
    monkeypatch.setattr(MessageExportJobsStream, "monotonic", staticmethod(lambda: virtual.now))
    monkeypatch.setattr(
        MessageExportJobsStream, "wall_clock", staticmethod(lambda: float(NOW + 3600) + virtual.now)
    )
    # The reporting streams sync too when a test selects nothing: their polls wait on a clock of
    # their own, instant as well, so that `waits` stays the message export's (the reporting tests
    # put them on this clock with `rclock`). Real sleeps here cost ~11 s a test.
    reporting = VirtualClock()
    monkeypatch.setattr(ReportingStream, "sleep", staticmethod(reporting.sleep))
    monkeypatch.setattr(ReportingStream, "monotonic", staticmethod(lambda: reporting.now))
    # The contact event streams pace their requests to the fake's real-time rate-limit windows:
    # they keep sleeping for real (rarely: a small run goes at once), so `waits` stays the
    # message export's (tests/test_events.py puts them and the fake on one virtual clock).
    monkeypatch.setattr(ContactFanOutStream, "rate_sleep", staticmethod(REAL_SLEEP))
    return virtual


@pytest.fixture
def waits(clock: VirtualClock) -> list[float]:
    """The waits the tap would have slept, in order (sleeping itself is instant)."""
    return clock.sleeps


@pytest.fixture
def make_fake() -> t.Iterator[t.Callable[..., FakeIntercom]]:
    """Start fakes on loopback (export data from 2023-10-01 to NOW by default); stop them after."""
    started: list[FakeIntercom] = []

    def factory(**kwargs: t.Any) -> FakeIntercom:
        kwargs.setdefault("start", NOW - 44 * DAY)
        kwargs.setdefault("end", NOW)
        kwargs.setdefault("receipts_per_day", 24)
        api = build(**kwargs).start()
        started.append(api)
        return api

    yield factory
    for api in started:
        api.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the files with end-to-end tests first; give those tests the longer time limit.

    pytest-xdist hands whole files to its workers in this order: the long `meltano run` files
    start at once, side by side, and the short ones fill in around them instead of leaving one
    long file running alone at the end.
    """
    slow = {item.path for item in items if item.get_closest_marker("e2e")}
    items.sort(key=lambda item: item.path not in slow)
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))


#: Address space a test may use while mutmut runs a mutant (scripts/mutation.sh): a mutant that
#: loops while growing a list must fail, not take the machine's memory.
MUTANT_MEMORY = 3 << 30


@pytest.fixture(autouse=True)
def _mutant_memory_cap() -> None:
    """Under mutation testing only, cap this process's memory."""
    if os.environ.get("MUTANT_UNDER_TEST") not in (None, "", "stats", "list_all_tests"):
        resource.setrlimit(resource.RLIMIT_AS, (MUTANT_MEMORY, MUTANT_MEMORY))
