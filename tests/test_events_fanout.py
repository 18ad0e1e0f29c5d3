"""The contact fan-out's workers and its rate limit, end to end against the fake.

In-flight counts come from a barrier in the fake, not from timing; the rate-limit runs put the
tap's limiter and the fake's windows on one virtual clock (the pacing rule itself is simulated
in tests/test_events_ratelimit.py).
"""

from __future__ import annotations

import logging
import threading
import typing as t
from dataclasses import dataclass, field

import pytest
from fake_intercom import core as fake_core
from fake_intercom.events import LISTABLE_SECONDS

from tap_intercom_export.events.fanout import ContactFanOutStream
from tests import test_events
from tests.conftest import NOW, VirtualClock, run_tap
from tests.test_events import EVENTS, SETTLE, SUMMARIES, config, expected, keys

# The fixtures of tests/test_events.py: a fake whose events end at NOW, and the tap's clock.
events_fake = test_events.events_fake
now = test_events.now


@pytest.fixture
def rate_clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """Put the limiter and the fake's rate-limit windows on one virtual clock (mid-window)."""
    clock = VirtualClock(start=1_700_000_000.05)
    monkeypatch.setattr(fake_core, "real_time", clock.time)
    monkeypatch.setattr(ContactFanOutStream, "rate_clock", staticmethod(clock.time))
    monkeypatch.setattr(ContactFanOutStream, "rate_sleep", staticmethod(clock.sleep))
    return clock


@dataclass
class Gate:
    """Event requests in the fake at once: the first few held until all of them are in."""

    parties: int
    met: bool = False
    in_flight: int = 0
    most: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def gate_events(fake: t.Any, parties: int) -> Gate:
    """Hold the first `parties` event requests in the fake until that many are in it at once."""
    gate = Gate(parties)
    barrier = threading.Barrier(parties, timeout=10)
    index = next(i for i, route in enumerate(fake.routes) if route[1].pattern == "/events")
    method, pattern, handler = fake.routes[index]

    def gated(req: t.Any, match: t.Any) -> t.Any:
        with gate.lock:
            gate.in_flight += 1
            gate.most = max(gate.most, gate.in_flight)
            held = not gate.met
        try:
            if held:
                barrier.wait()  # raises (the request fails) unless `parties` arrive together
                gate.met = True
            return handler(req, match)
        finally:
            with gate.lock:
                gate.in_flight -= 1

    fake.routes[index] = (method, pattern, gated)
    return gate


def test_concurrent_run_emits_the_sequential_order(events_fake) -> None:
    fake = events_fake(contacts=30)
    sequential = run_tap(config(fake, max_concurrent_requests=1), select=[EVENTS, SUMMARIES])
    assert fake.events.max_in_flight == 1
    gate = gate_events(fake, 4)
    concurrent = run_tap(config(fake, max_concurrent_requests=4), select=[EVENTS, SUMMARIES])
    # Four requests were in the fake at once, and never more.
    assert gate.met
    assert gate.most == 4

    assert concurrent.records(EVENTS) == sequential.records(EVENTS)
    assert concurrent.records(SUMMARIES) == sequential.records(SUMMARIES)
    assert keys(concurrent.records(EVENTS)) == expected(fake, NOW - LISTABLE_SECONDS, NOW - SETTLE)


def test_low_rate_limit_spreads_requests_over_the_windows(events_fake, rate_clock, caplog) -> None:
    fake = events_fake(contacts=40, rate_limit=12, rate_window=1)
    counted: dict[float, int] = {}
    take = fake.limiter.take

    def counting_take() -> tuple[bool, dict[str, str]]:
        allowed, answer = take()
        if allowed:
            counted[fake.limiter.window_start] = counted.get(fake.limiter.window_start, 0) + 1
        return allowed, answer

    fake.limiter.take = counting_take
    caplog.set_level(logging.INFO)
    # One worker: on a clock that only sleeping moves, a second one waiting would move time
    # under a request between its start time and its arrival (tests/test_events_ratelimit.py
    # runs many workers in a simulation instead).
    run = run_tap(config(fake, max_concurrent_requests=1), select=[EVENTS])

    assert keys(run.records(EVENTS)) == expected(fake, NOW - LISTABLE_SECONDS, NOW - SETTLE)
    requests = len([r for r in fake.log if r.path in ("/events", "/contacts")])
    # 12 a window, 11 of them used (1 kept spare): the windows it took, and no 429.
    assert fake.limiter.rejected == 0
    assert max(counted.values()) <= 12
    assert len(counted) >= requests / 12
    assert sum(rate_clock.sleeps) >= (len(counted) - 2) * 1.0
    done = next(r.getMessage() for r in caplog.records if f"{EVENTS} done" in r.getMessage())
    assert "of the rate limit of 12 per 1 s" in done
    assert ", 0 429(s)" in done


def test_429s_are_retried_past_max_tries(events_fake, rate_clock) -> None:
    fake = events_fake(contacts=10)
    # One request at a time: the same request is refused 12 times, more than max_tries (10).
    fault = fake.inject(
        "GET",
        "/events",
        429,
        times=12,
        headers={"Retry-After": "0.01"},
        body={"type": "error.list", "errors": [{"code": "rate_limit_exceeded"}]},
    )
    run = run_tap(config(fake, max_concurrent_requests=1), select=[EVENTS])
    assert fault.times == 0
    assert keys(run.records(EVENTS)) == expected(fake, NOW - LISTABLE_SECONDS, NOW - SETTLE)


def test_server_errors_are_retried(events_fake, waits) -> None:
    fake = events_fake(contacts=10)
    fake.inject("GET", "/events", 503, times=3)
    fake.inject("GET", "/contacts", 500, times=1)
    run = run_tap(config(fake), select=[EVENTS])
    assert keys(run.records(EVENTS)) == expected(fake, NOW - LISTABLE_SECONDS, NOW - SETTLE)
