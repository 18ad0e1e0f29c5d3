"""Intercom's rate-limit headers, and a client-side limiter shared by the workers of a stream.

Intercom counts requests per app in fixed 10-second windows and reports the window on every
response: `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (unix seconds);
a 429 may carry `Retry-After` instead.
https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting
Every request waits on a 429 until the reset it names (client.py); the contact fan-out's workers
also take a slot before each request, so when the window is used up they all wait for its reset
instead of collecting 429s.
"""

from __future__ import annotations

import logging
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


def _sleep(seconds: float) -> None:
    # Looked up at call time so that tests patching time.sleep reach the limiter too.
    time.sleep(seconds)


def _header_float(headers: t.Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        return None


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


class RateLimiter:
    """Hands out request slots within the current rate-limit window; thread-safe."""

    def __init__(
        self,
        *,
        clock: t.Callable[[], float] = time.time,
        monotonic: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = _sleep,
        logger: logging.Logger | None = None,
        max_pause: float = MAX_PAUSE,
    ) -> None:
        """Use `clock` (unix seconds, compared with X-RateLimit-Reset) and `sleep` to wait."""
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.logger = logger or logging.getLogger(__name__)
        self.max_pause = max_pause
        self._lock = threading.Lock()
        # What is left of the current window once every request in flight is counted;
        # None while unknown (no response of this window seen yet).
        self._remaining: int | None = None
        self._reset: float | None = None
        self._in_flight = 0
        self._sleepers = 0
        self._sleep_started = 0.0
        self._announced_reset: float | None = None
        #: Requests sent (every attempt, 429s included).
        self.requests = 0
        #: Responses that were 429.
        self.rate_limited = 0
        #: Times the workers were held until a window reset.
        self.pauses = 0
        #: Wall seconds during which at least one request was held back.
        self.waited = 0.0
        #: The last X-RateLimit-Limit seen.
        self.limit: int | None = None

    def acquire(self) -> None:
        """Block until a request may be sent in the current window, then count it in flight."""
        while True:
            with self._lock:
                now = self.clock()
                if self._reset is not None and now >= self._reset + RESET_MARGIN:
                    self._remaining = None
                    self._reset = None
                if self._remaining is None or self._remaining > 0:
                    if self._remaining is not None:
                        self._remaining -= 1
                    self._in_flight += 1
                    self.requests += 1
                    return
                reset = t.cast("float", self._reset)
                pause = min(max(reset - now, 0.0) + RESET_MARGIN, self.max_pause)
                if self._announced_reset != reset:
                    self._announced_reset = reset
                    self.pauses += 1
                    self.logger.debug(
                        "Rate-limit window used up (limit %s): holding requests %.1f s until it "
                        "resets.",
                        self.limit,
                        pause,
                    )
                self._start_sleep()
            try:
                self.sleep(pause)
            finally:
                with self._lock:
                    self._end_sleep()

    def release(self) -> None:
        """Count a request as no longer in flight (answered or failed)."""
        with self._lock:
            self._in_flight = max(self._in_flight - 1, 0)

    def observe(self, headers: t.Mapping[str, str], status: int) -> None:
        """Learn the window from a response's headers; on 429, hold every worker until reset."""
        window = RateLimitHeaders.read(headers)
        remaining, reset = window.remaining, window.reset
        with self._lock:
            now = self.clock()
            if window.limit is not None:
                self.limit = int(window.limit)
            # The server may not have counted our other requests in flight yet: assume it will.
            others = max(self._in_flight - 1, 0)
            if status == HTTPStatus.TOO_MANY_REQUESTS:
                self.rate_limited += 1
                until = window.resets_at(now)
                if until is None:
                    until = now + FALLBACK_PAUSE
                self._reset = max(self._reset or 0.0, until)
                self._remaining = 0
                if self._announced_reset != self._reset:
                    self._announced_reset = self._reset
                    self.pauses += 1
                    of_limit = f" of {self.limit} requests per window" if self.limit else ""
                    self.logger.warning(
                        "Intercom answered 429 (rate limit%s): holding every request %.2f s until "
                        "the window resets, then retrying.",
                        of_limit,
                        self._reset - now + RESET_MARGIN,
                    )
                return
            if remaining is None or reset is None:
                return
            if self._reset is None or reset > self._reset:
                self._reset = reset
                self._remaining = int(remaining) - others
            elif reset == self._reset and self._remaining is not None:
                self._remaining = min(self._remaining, int(remaining) - others)
            # An answer from an older window says nothing about the current one.

    def _start_sleep(self) -> None:
        if self._sleepers == 0:
            self._sleep_started = self.monotonic()
        self._sleepers += 1

    def _end_sleep(self) -> None:
        self._sleepers -= 1
        if self._sleepers == 0:
            self.waited += self.monotonic() - self._sleep_started

    def waited_now(self) -> float:
        """Seconds waited so far, including a pause still under way."""
        with self._lock:
            ongoing = self.monotonic() - self._sleep_started if self._sleepers else 0.0
            return self.waited + ongoing
