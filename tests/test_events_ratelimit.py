"""The pacer of the contact fan-out's requests (ratelimit.py), on a virtual clock.

The unit tests drive `RateLimiter.reserve` step by step. The simulation runs workers against a
server with Intercom's fixed windows in virtual time (a heap of events, no thread, no sleep): it
shows the limit used evenly and whole whatever the latency, with no 429, and the requests in
flight following rate x latency.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import typing as t
from dataclasses import dataclass, field

import pytest

from tap_intercom_export.ratelimit import FALLBACK_PAUSE, RESET_MARGIN, RateLimiter
from tests.conftest import VirtualClock

T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> VirtualClock:
    """Unix time that moves only when told, or when the limiter sleeps."""
    return VirtualClock(T0)


@pytest.fixture
def limiter(clock: VirtualClock) -> RateLimiter:
    """A limiter on the virtual clock, without the first burst (tested on its own)."""
    return RateLimiter(clock=lambda: clock.now, sleep=clock.sleep, burst=0)


def headers(remaining: int, reset: float, limit: int = 167) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


def send(limiter: RateLimiter, answer: dict[str, str], status: int = 200) -> None:
    """One request: take a start time, learn from the answer, free it."""
    limiter.acquire()
    limiter.observe(answer, status)
    limiter.release()


# -- the rule, step by step -------------------------------------------------------------------


def test_requests_flow_freely_until_the_window_is_known(limiter, clock) -> None:
    for _ in range(50):
        limiter.acquire()
        limiter.release()
    assert clock.sleeps == []
    assert limiter.requests == 50


def starts(limiter: RateLimiter, clock: VirtualClock, n: int) -> list[float]:
    """When `n` requests sent one after the other (each answered at once) may start."""
    out = []
    for _ in range(n):
        limiter.acquire()
        out.append(clock.now)
        limiter.release()
    return out


def test_what_is_left_of_the_window_is_spread_over_the_time_left(limiter, clock) -> None:
    # 100 left (3 kept spare of 100), 10 s to go: a request every 10 / 97 s.
    send(limiter, headers(remaining=100, reset=T0 + 10, limit=100))
    times = starts(limiter, clock, 97)
    assert times[0] == T0
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert gaps == {round(10 / 97, 6)}
    assert times[-1] < T0 + 10
    # Used up: the next one waits for the window to reset, then gets a full budget.
    assert starts(limiter, clock, 1) == [pytest.approx(T0 + 10 + RESET_MARGIN)]


def test_a_quarter_of_the_window_may_go_at_once_then_the_even_pace(clock) -> None:
    limiter = RateLimiter(clock=lambda: clock.now, sleep=clock.sleep)
    send(limiter, headers(remaining=100, reset=T0 + 10, limit=100))
    times = starts(limiter, clock, 97)
    # Some of the 97 at once (a quarter of the window ahead of the schedule: about 24), then
    # what is left, evenly spaced over what is left of the window.
    at_once = [x for x in times if x == T0]
    assert 20 <= len(at_once) <= 25
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times[len(at_once) :])}
    assert len(gaps) == 1
    assert times[-1] < T0 + 10
    assert starts(limiter, clock, 1) == [pytest.approx(T0 + 10 + RESET_MARGIN)]


def test_start_times_are_given_at_most_a_little_ahead(limiter, clock) -> None:
    send(limiter, headers(remaining=40, reset=T0 + 10, limit=100))
    ahead = []
    while (slot := limiter.reserve()).granted:
        ahead.append(slot.wait)
    # A request every 10 / 37 s: one now, none taken 0.2 s or more ahead of time.
    assert ahead == [0.0]
    assert slot.wait == pytest.approx(10 / 37 - 0.1)


def test_requests_in_flight_count_against_what_an_answer_says_is_left(limiter, clock) -> None:
    earlier = limiter.reserve()
    first = limiter.reserve()
    limiter.observe(headers(remaining=1000, reset=T0 + 10, limit=1000), 200, first.ticket)
    later = [limiter.reserve() for _ in range(3)]
    assert all(s.granted for s in later)
    # The server may not have counted the four others in flight: 51 - 4 - 30 spare = 17.
    limiter.observe(headers(remaining=51, reset=T0 + 10, limit=1000), 200, first.ticket)
    for slot in (earlier, first, *later):
        limiter.release(slot.ticket)
    assert len(starts(limiter, clock, 18)) == 18
    assert clock.now >= T0 + 10  # the 18th waited for the next window


def test_a_new_window_replaces_the_old_and_stale_answers_are_ignored(limiter, clock) -> None:
    send(limiter, headers(remaining=0, reset=T0 + 1, limit=100))
    limiter.acquire()  # waits for the first window to reset
    assert clock.sleeps == [pytest.approx(1 + RESET_MARGIN)]
    limiter.observe(headers(remaining=90, reset=T0 + 11, limit=100), 200)
    limiter.release()
    limiter.observe(headers(remaining=0, reset=T0 + 1, limit=100), 200)  # late answer, old window
    # 90 - 3 spare, until T0 + 11.
    assert starts(limiter, clock, 87)[-1] < T0 + 11
    # Two resets 10 s apart: the window's length is learnt.
    assert limiter.length == 10


def test_past_the_reset_the_next_window_is_assumed_until_an_answer_tells(limiter, clock) -> None:
    send(limiter, headers(remaining=0, reset=T0 + 10, limit=100))
    clock.now = T0 + 10 + RESET_MARGIN
    # No answer of the new window yet: its whole budget, over the documented 10 s.
    assert starts(limiter, clock, 97)[-1] < T0 + 20
    assert starts(limiter, clock, 1)[0] >= T0 + 20 + RESET_MARGIN


def test_nothing_answered_yet_one_request_at_a_time(limiter, clock) -> None:
    first = limiter.reserve()
    assert first.granted
    assert not limiter.reserve().granted
    limiter.observe({}, 200, first.ticket)  # no rate-limit headers: no limit known
    limiter.release(first.ticket)
    assert all(limiter.reserve().granted for _ in range(20))


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
        ({"Retry-After": "inf"}, FALLBACK_PAUSE + RESET_MARGIN),  # not a wait anyone can serve
        ({"Retry-After": "nan"}, FALLBACK_PAUSE + RESET_MARGIN),
    ],
)
def test_429_without_a_usable_reset_falls_back(limiter, clock, answer, pause) -> None:
    send(limiter, answer, status=429)
    limiter.acquire()
    assert clock.sleeps == [pytest.approx(pause)]


def test_pauses_are_capped_when_the_reset_is_far(clock) -> None:
    limiter = RateLimiter(clock=lambda: clock.now, sleep=clock.sleep, max_pause=12)
    send(limiter, headers(remaining=0, reset=T0 + 3600))
    limiter.acquire()
    assert clock.sleeps[0] == 12


def test_latency_is_measured_from_the_start_time_to_the_answer(limiter, clock) -> None:
    send(limiter, headers(remaining=50, reset=T0 + 10, limit=100))
    slot = limiter.reserve()
    clock.now += slot.wait + 0.25
    limiter.release(slot.ticket)
    assert limiter.answered == 2
    assert limiter.latency == pytest.approx(0.25)


# -- simulation: workers, a fixed-window server and latency in virtual time -------------------


@dataclass
class Server:
    """Intercom's fixed windows: `limit` requests per `window` s, counted on arrival or answer."""

    limit: int
    window: float
    per_window: dict[int, int] = field(default_factory=dict)
    rejected: int = 0

    def take(self, at: float) -> tuple[int, dict[str, str]]:
        """Count a request at `at`: its status and headers."""
        index = math.floor(at / self.window)
        used = self.per_window.get(index, 0)
        status = 200 if used < self.limit else 429
        if status == 200:
            self.per_window[index] = used + 1
        else:
            self.rejected += 1
        remaining = self.limit - self.per_window.get(index, 0)
        return status, headers(remaining, (index + 1) * self.window, self.limit)


@dataclass
class Simulation:
    """What a simulated run did."""

    server: Server
    #: (time, requests in flight) at each send.
    in_flight: list[tuple[float, int]]
    first: float
    last: float

    def in_flight_after(self, start: float) -> list[int]:
        """Requests in flight at each send from `start` on."""
        return [n for at, n in self.in_flight if at >= start]

    def utilisation(self) -> float:
        """Requests counted per window over the limit, windows the run spans whole."""
        inner = [
            n
            for i, n in self.server.per_window.items()
            if i * self.server.window >= self.first and (i + 1) * self.server.window <= self.last
        ]
        assert len(inner) >= 3
        return sum(inner) / (len(inner) * self.server.limit)


def simulate(  # noqa: PLR0913 - the knobs of a run
    latency: t.Callable[[float], float],
    *,
    limit: int = 1000,
    window: float = 10.0,
    workers: int = 64,
    requests: int = 6000,
    on_arrival: bool = True,
    start: float = T0 + 3.3,
) -> Simulation:
    """`workers` send `requests` requests through one limiter; the server counts them."""
    clock = VirtualClock(start)
    limiter = RateLimiter(clock=lambda: clock.now, sleep=clock.sleep)
    server = Server(limit, window)
    order = itertools.count()
    events: list[tuple[float, int, str, int, int]] = []  # (time, order, kind, worker, ticket)
    answers: dict[int, tuple[int, dict[str, str]]] = {}
    left = requests
    in_flight = 0
    samples: list[tuple[float, int]] = []
    sent: list[float] = []
    for worker in range(workers):
        heapq.heappush(events, (clock.now, next(order), "ask", worker, 0))
    while events:
        now, _, kind, worker, ticket = heapq.heappop(events)
        clock.now = now
        if kind == "ask":
            if left <= 0:
                continue
            slot = limiter.reserve()
            if not slot.granted:
                heapq.heappush(events, (now + slot.wait, next(order), "ask", worker, 0))
                continue
            left -= 1
            start = now + slot.wait
            delay = latency(start)
            counted = start + 0.001 if on_arrival else start + delay
            heapq.heappush(events, (start, next(order), "send", worker, slot.ticket))
            heapq.heappush(events, (counted, next(order), "count", worker, slot.ticket))
            heapq.heappush(
                events, (start + delay + 0.002, next(order), "answer", worker, slot.ticket)
            )
        elif kind == "send":
            in_flight += 1
            samples.append((now, in_flight))
            sent.append(now)
        elif kind == "count":
            answers[ticket] = server.take(now)
        else:
            in_flight -= 1
            status, answer = answers.pop(ticket)
            limiter.observe(answer, status, ticket)
            limiter.release(ticket)
            if status == 429:
                left += 1  # retried
            heapq.heappush(events, (now, next(order), "ask", worker, 0))
    return Simulation(server, samples, min(sent), max(sent))


@pytest.mark.parametrize("latency", [0.05, 0.2, 0.3, 0.8])
def test_the_limit_is_used_whole_whatever_the_latency(latency) -> None:
    # Enough workers for the rate at this latency (100/s x 0.8 s = 80 in flight); the run
    # starts with a window, so its rate is the limit's throughout.
    run = simulate(lambda _: latency, workers=128, start=T0)
    assert run.server.rejected == 0
    # Every window whole but the share kept spare (3 %).
    assert run.utilisation() >= 0.96
    assert max(run.server.per_window.values()) <= 1000
    # As many in flight as the rate and the latency make (Little's law), once the first burst
    # (a quarter of the first window) is over; at most the requests of the pause past each
    # reset (RESET_MARGIN) more, as the schedule catches up on it.
    steady = run.in_flight_after(T0 + 10)
    typical = sorted(steady)[len(steady) // 2]
    assert 0.9 * 100 * latency <= typical <= 1.1 * 100 * latency + 1
    assert max(steady) <= 1.1 * 100 * latency + 100 * RESET_MARGIN + 3


@pytest.mark.parametrize("latency", [0.05, 0.2, 0.8])
def test_a_server_counting_requests_when_it_answers_them(latency) -> None:
    # The fake counts a request after its latency: those in flight when a window ends count
    # in the next one, so a window's requests stop short by about the latency's share of it.
    run = simulate(lambda _: latency, workers=128, on_arrival=False)
    assert run.server.rejected == 0
    assert run.utilisation() >= 0.96 - latency / 10 - 0.01


def test_too_few_workers_for_the_latency_cap_the_rate() -> None:
    run = simulate(lambda _: 0.8, workers=40, requests=3000)
    assert run.server.rejected == 0
    assert max(n for _, n in run.in_flight) == 40
    assert run.utilisation() == pytest.approx(40 / 0.8 / 100, rel=0.05)


@pytest.mark.parametrize("on_arrival", [True, False], ids=["counted-on-arrival", "on-answer"])
def test_changing_latency_brings_no_429(on_arrival) -> None:
    rng = random.Random(7)

    def latency(at: float) -> float:
        # 800 ms for 25 s, then 50 ms, each answer up to 50 % slower or faster.
        base = 0.8 if at < T0 + 28 else 0.05
        return base * rng.uniform(0.5, 1.5)

    run = simulate(latency, workers=128, on_arrival=on_arrival)
    assert run.server.rejected == 0
    assert run.utilisation() >= 0.9


def test_a_short_window_is_learnt() -> None:
    # Until two resets tell, the next window is assumed to be Intercom's 10 s: the first answer
    # of the real one (0.5 s) replaces that plan at once, so no window after the first waits.
    run = simulate(lambda _: 0.02, limit=40, window=0.5, workers=8, requests=800)
    assert run.server.rejected == 0
    windows = [n for _, n in sorted(run.server.per_window.items())]
    assert min(windows[1:-1]) >= 0.9 * 40
