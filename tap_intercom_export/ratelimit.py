"""Intercom's rate-limit headers, and the pacer the contact fan-out's requests go through.

Intercom counts requests per app in fixed 10-second windows and reports the window on every
response: `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (unix seconds);
a 429 may carry `Retry-After` instead.
https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting
Every request waits on a 429 until the reset it names (client.py). The contact fan-out's
requests also take a start time from a `RateLimiter` that spreads what is left of the window
evenly over the time left in it (after a first burst of a quarter of it): however long Intercom
takes to answer, the window's budget is spent by its end and not before, and the requests in
flight are as many as that rate and the answers' latency make (up to `max_concurrent_requests`,
the number of workers).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import typing as t
from dataclasses import dataclass
from http import HTTPStatus

#: Longest single pause: a window is 10 s, so more only comes from a skewed clock.
MAX_PAUSE = 60.0
#: Waited past a reset before trusting that the server opened the new window.
RESET_MARGIN = 0.1
#: Pause after a 429 that names no usable reset (none sent, or already past on our clock).
FALLBACK_PAUSE = 1.0
#: Shortest wait before asking again: a clock's rounding must not make it a busy loop.
MIN_WAIT = 0.001
#: How often a request asks again while the first one, sent alone, is not answered yet.
PROBE_WAIT = 0.02
#: How far ahead a request may be given its start time.
HORIZON = 0.2
#: Intercom's window, until two resets tell the length of the server's.
WINDOW = 10.0
#: How far ahead of the even schedule requests may go, in windows: a quarter of a window's
#: budget at once, then the window's rate. Runs that need less than that are not slowed down.
BURST = 0.25
#: Share of each window's budget left unused: room for clocks that differ and for requests
#: that the server counts in another window than the one we sent them in.
SPARE = 0.03


def sleep(seconds: float) -> None:
    """Wait `seconds` (time.sleep looked up at each call: tests patching it reach the limiter)."""
    time.sleep(seconds)


def _header_float(headers: t.Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None  # "inf" would wait forever


@dataclass(frozen=True)
class RateLimitHeaders:
    """What a response says about the rate-limit window (None: header absent or unreadable)."""

    limit: float | None
    remaining: float | None
    reset: float | None
    retry_after: float | None

    @classmethod
    def read(cls, headers: t.Mapping[str, str]) -> RateLimitHeaders:
        """Read the X-RateLimit-* and Retry-After headers of a response."""
        return cls(
            limit=_header_float(headers, "X-RateLimit-Limit"),
            remaining=_header_float(headers, "X-RateLimit-Remaining"),
            reset=_header_float(headers, "X-RateLimit-Reset"),
            retry_after=_header_float(headers, "Retry-After"),
        )

    def resets_at(self, now: float) -> float | None:
        """When the window resets: X-RateLimit-Reset while ahead of `now`, else `now` + Retry-After."""
        if self.reset is not None and self.reset > now:
            return self.reset
        if self.retry_after is not None:
            return now + max(self.retry_after, 0.0)
        return None

    def wait(self, now: float, max_wait: float = MAX_PAUSE) -> float | None:
        """Seconds to wait before trying again (just past the reset), None if no header says."""
        at = self.resets_at(now)
        return None if at is None else min(at - now + RESET_MARGIN, max_wait)


@dataclass(frozen=True)
class Slot:
    """A limiter's answer: send after `wait` seconds (granted), or ask again after `wait`."""

    granted: bool
    wait: float
    #: The request's number, to `observe` its answer and `release` it with (granted only).
    ticket: int = 0


class RateLimiter:
    """Gives each request a start time that spreads the window's budget evenly; thread-safe.

    `reserve` is the whole rule and never blocks (tests drive it on a virtual clock); `acquire`
    sleeps until the time it gives. A request's answer is read by `observe` and its end told by
    `release`: with its ticket, or in the thread that acquired it.
    """

    def __init__(  # noqa: PLR0913 - the rule's knobs, and its clock and sleep for tests
        self,
        *,
        clock: t.Callable[[], float] = time.time,
        sleep: t.Callable[[float], None] = sleep,
        logger: logging.Logger | None = None,
        max_pause: float = MAX_PAUSE,
        spare: float = SPARE,
        burst: float = BURST,
    ) -> None:
        """Use `clock` (unix seconds, compared with X-RateLimit-Reset) and `sleep` to wait."""
        self.clock = clock
        self.sleep = sleep
        self.logger = logger or logging.getLogger(__name__)
        self.max_pause = max_pause
        self.spare = spare
        self.burst = burst
        self._lock = threading.Lock()
        self._local = threading.local()
        # The window requests are paced in: its end (X-RateLimit-Reset; past it, assumed one
        # window length later until an answer tells), and how many more requests may start in
        # it (None: no limit known, requests go out as they come).
        self._end: float | None = None
        self._budget: int | None = None
        #: The latest X-RateLimit-Reset the server sent.
        self._confirmed: float | None = None
        self._learned = False
        self._next_at = 0.0
        self._tickets = 0
        # Requests given a start time and not released yet: ticket -> start time.
        self._in_flight: dict[int, float] = {}
        self._announced: float | None = None
        self._probing = True
        #: The window's length in seconds, learnt from two successive resets.
        self.length = WINDOW
        #: The last X-RateLimit-Limit seen.
        self.limit: int | None = None
        #: Requests sent (every attempt, 429s included).
        self.requests = 0
        #: Responses that were 429.
        self.rate_limited = 0
        #: Requests answered, and the seconds they took from being sent to being answered.
        self.answered = 0
        self.latency = 0.0

    # -- the rule ------------------------------------------------------------------------------

    def reserve(self) -> Slot:
        """A start time for one request within the limit, or how long to wait before asking."""
        with self._lock:
            now = self.clock()
            self._roll(now)
            if self._budget is None or self._end is None:
                if self._probing and self._in_flight:
                    # Nothing answered yet: one request at a time until the limit is known.
                    return Slot(granted=False, wait=PROBE_WAIT)
                return self._grant(now, now)
            # The next start on an even schedule, less a tolerance: a run that has sent little
            # (a small workspace, or after a pause) may go that far ahead of it (GCRA).
            slot = max(self._next_at - self.burst * self.length, now)
            if self._budget > 0 and slot - now > HORIZON:
                # Not taken ahead of time: what an answer tells by then may change the plan.
                return Slot(granted=False, wait=slot - now - HORIZON / 2)
            if self._budget > 0 and slot < self._end:
                # What is left of the window, spread evenly over the time left in it.
                self._next_at = max(self._next_at, slot) + (self._end - slot) / self._budget
                self._budget -= 1
                return self._grant(now, slot)
            # Used up, or no time left in this window: ask again once the next one starts.
            until = self._end + RESET_MARGIN
            if self._budget <= 0 and self._announced != self._end and until - now > 1.0:
                self._announced = self._end
                self.logger.debug(
                    "Rate-limit window used up %.1f s before its end (limit %s): another app may "
                    "be using it; holding requests until it resets.",
                    until - now,
                    self.limit,
                )
            return Slot(granted=False, wait=min(max(until - now, MIN_WAIT), self.max_pause))

    def _grant(self, now: float, slot: float) -> Slot:
        self._tickets += 1
        self._in_flight[self._tickets] = slot
        self.requests += 1
        return Slot(granted=True, wait=slot - now, ticket=self._tickets)

    def _roll(self, now: float) -> None:
        # Past the end of the window (and the margin): the next one starts with a full budget.
        if self._end is None or now + MIN_WAIT < self._end + RESET_MARGIN:
            return
        if self.limit is None:
            self._end = self._budget = None
            return
        periods = max(math.floor((now - self._end - RESET_MARGIN) / self.length) + 1, 1)
        self._end += periods * self.length
        self._budget = self.limit - self._spare()

    def _spare(self) -> int:
        return math.ceil((self.limit or 0) * self.spare)

    # -- what requests tell --------------------------------------------------------------------

    def acquire(self) -> None:
        """Block until this thread's request may be sent, then count it in flight."""
        while True:
            slot = self.reserve()
            if slot.wait > 0:
                self.sleep(slot.wait)
            if slot.granted:
                self._local.ticket = slot.ticket
                return

    def release(self, ticket: int | None = None) -> None:
        """A request is answered (or failed): no longer in flight."""
        ticket = self._ticket(ticket)
        with self._lock:
            self._probing = False
            sent = self._in_flight.pop(ticket, None)
            if sent is not None:
                self.answered += 1
                self.latency += max(self.clock() - sent, 0.0)

    def _ticket(self, ticket: int | None) -> int:
        return ticket if ticket is not None else getattr(self._local, "ticket", 0)

    def observe(self, headers: t.Mapping[str, str], status: int, ticket: int | None = None) -> None:
        """Learn the window from a response's headers; on 429, hold every request until reset."""
        window = RateLimitHeaders.read(headers)
        mine = self._ticket(ticket)
        with self._lock:
            now = self.clock()
            self._probing = False
            if window.limit is not None:
                self.limit = int(window.limit)
            if status == HTTPStatus.TOO_MANY_REQUESTS:
                self._refused(window, now)
            elif window.remaining is not None and window.reset is not None:
                # The other requests in flight may not be counted in Remaining yet: they will
                # be. (Those sent later are not, wherever the server counts; those sent before
                # are, if it counts on arrival, and are then mostly answered already.)
                others = len(self._in_flight) - (mine in self._in_flight)
                self._learn(window.reset, int(window.remaining) - self._spare() - others)

    def _learn(self, reset: float, left: int) -> None:
        if self._confirmed is not None and reset < self._confirmed:
            return  # an answer from an older window says nothing about the current one
        new = self._confirmed is None or reset > self._confirmed
        if new and self._confirmed is not None and 0 < reset - self._confirmed <= self.max_pause:
            # Two resets a window apart, or more when one went unused: the least seen.
            gap = reset - self._confirmed
            self.length = min(self.length, gap) if self._learned else gap
            self._learned = True
        self._confirmed = reset
        if self._end is None or self._budget is None or (new and reset != self._end):
            # Not the window requests were paced in: start its schedule afresh.
            self._end, self._budget, self._next_at = reset, left, 0.0
        elif reset == self._end:
            self._budget = min(self._budget, left)
        # Else an answer from the window before the one requests are paced in now.

    def _refused(self, window: RateLimitHeaders, now: float) -> None:
        self.rate_limited += 1
        until = window.resets_at(now)
        if until is None:
            until = now + FALLBACK_PAUSE
        # Hold until the later of that and the end of the window the server last named (not
        # one assumed past it: a Retry-After would otherwise wait a whole assumed window).
        told = self._end if self._end is not None and self._end == self._confirmed else 0.0
        self._end = max(told, until)
        self._budget = 0
        if self._announced != self._end:
            self._announced = self._end
            of_limit = f" of {self.limit} requests per window" if self.limit else ""
            self.logger.warning(
                "Intercom answered 429 (rate limit%s): holding every request %.2f s until the "
                "window resets, then retrying.",
                of_limit,
                self._end - now + RESET_MARGIN,
            )

    # -- for progress lines --------------------------------------------------------------------

    def allowed_rate(self) -> float | None:
        """Requests per second the limit allows (None: no limit seen)."""
        return self.limit / self.length if self.limit else None
