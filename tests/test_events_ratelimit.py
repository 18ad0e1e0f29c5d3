"""The client-side rate limiter shared by the event streams' workers, on a virtual clock."""

from __future__ import annotations

import threading
import time

import pytest

from tap_intercom_export.ratelimit import FALLBACK_PAUSE, RESET_MARGIN, RateLimiter

T0 = 1_700_000_000.0


class Clock:
    """Unix time that moves only when the limiter sleeps."""

    def __init__(self) -> None:
        """Start at T0 with no sleeps."""
        self.now = T0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        """Note the pause and move the clock past it at once."""
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> RateLimiter:
    return RateLimiter(clock=lambda: clock.now, monotonic=lambda: clock.now, sleep=clock.sleep)


def headers(remaining: int, reset: float, limit: int = 167) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


def send(limiter: RateLimiter, answer: dict[str, str], status: int = 200) -> None:
    """One request: take a slot, learn from the answer, free the slot."""
    limiter.acquire()
    limiter.observe(answer, status)
    limiter.release()


def test_requests_flow_freely_until_the_window_is_known(limiter, clock) -> None:
    for _ in range(50):
        limiter.acquire()
        limiter.release()
    assert clock.sleeps == []
    assert limiter.requests == 50


def test_used_up_window_holds_requests_until_its_reset(limiter, clock) -> None:
    send(limiter, headers(remaining=2, reset=T0 + 5))
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()  # the window is used up: wait for its reset
    assert clock.sleeps == [pytest.approx(5 + RESET_MARGIN)]
    assert limiter.pauses == 1
    assert limiter.waited == pytest.approx(5 + RESET_MARGIN)
    assert limiter.limit == 167


def test_requests_in_flight_count_against_the_remaining_budget(limiter, clock) -> None:
    for _ in range(3):
        limiter.acquire()
    # The server may not have counted the two others in flight yet: 4 - 2 = 2 left.
    limiter.observe(headers(remaining=4, reset=T0 + 10), 200)
    limiter.release()
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()
    assert clock.sleeps == [pytest.approx(10 + RESET_MARGIN)]


def test_a_new_window_replaces_the_old_and_stale_answers_are_ignored(limiter, clock) -> None:
    send(limiter, headers(remaining=0, reset=T0 + 1))
    limiter.acquire()  # waits for the first window to reset
    limiter.observe(headers(remaining=100, reset=T0 + 11), 200)
    limiter.release()
    limiter.observe(headers(remaining=0, reset=T0 + 1), 200)  # late answer of the old window
    before = len(clock.sleeps)
    for _ in range(50):
        limiter.acquire()
        limiter.release()
    assert len(clock.sleeps) == before


def test_429_holds_everyone_until_the_reset_it_names(limiter, clock) -> None:
    send(limiter, headers(remaining=0, reset=T0 + 3), status=429)
    assert limiter.rate_limited == 1
    limiter.acquire()
    assert clock.sleeps == [pytest.approx(3 + RESET_MARGIN)]


@pytest.mark.parametrize(
    ("answer", "pause"),
    [
        ({"Retry-After": "2"}, 2 + RESET_MARGIN),
        ({"X-RateLimit-Reset": str(T0 - 30), "Retry-After": "4"}, 4 + RESET_MARGIN),  # skewed clock
        ({}, FALLBACK_PAUSE + RESET_MARGIN),
    ],
)
def test_429_without_a_usable_reset_falls_back(limiter, clock, answer, pause) -> None:
    send(limiter, answer, status=429)
    limiter.acquire()
    assert clock.sleeps == [pytest.approx(pause)]


def test_pauses_are_capped_when_the_reset_is_far(clock) -> None:
    limiter = RateLimiter(
        clock=lambda: clock.now, monotonic=lambda: clock.now, sleep=clock.sleep, max_pause=12
    )
    send(limiter, headers(remaining=0, reset=T0 + 3600))
    limiter.acquire()
    assert clock.sleeps[0] == 12


def test_waiting_workers_count_the_wall_time_once() -> None:
    limiter = RateLimiter()
    limiter.observe(headers(remaining=0, reset=time.time() + 0.2), 200)
    workers = [threading.Thread(target=limiter.acquire) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=5)
    assert limiter.requests == 3
    # Three workers waited ~0.3 s together: counted once, not three times.
    assert 0.2 <= limiter.waited < 0.6
    assert limiter.pauses == 1
