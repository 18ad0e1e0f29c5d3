"""Progress lines of a fan-out run: contacts done, records, requests per second, share of the limit."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    import logging

    from tap_intercom_export.ratelimit import RateLimiter

#: Estimates of a minute or more are given in whole minutes.
MINUTE = 60


class Counted(t.Protocol):
    """What a progress line reads from the fan-out stream it counts (imports run fanout -> here)."""

    @property
    def name(self) -> str:
        """The stream's name."""

    @property
    def logger(self) -> logging.Logger:
        """Where the lines go."""

    @property
    def record_label(self) -> str:
        """What a record is, in a person's words (`events`)."""

    def monotonic(self) -> float:
        """The stream's clock, seconds."""


class Progress:
    """Counts a fan-out run and logs a line a person can follow every `every` seconds."""

    def __init__(self, stream: Counted, limiter: RateLimiter, every: float, ceiling: int) -> None:
        """Start counting now; the limiter's counts so far belong to the streams before."""
        # Both event streams share one limiter (it must know the window the other used up),
        # so this run's numbers are the limiter's counts minus where they stood at the start.
        self.stream = stream
        self.limiter = limiter
        self.every = every
        self.ceiling = ceiling
        self.started = stream.monotonic()
        self.next_log = self.started + every
        self.total: int | None = None
        self.contacts = 0
        self.records = 0
        #: Records emitted again (contact_events' lookback).
        self.again = 0
        self.gone = 0
        self._base = (limiter.requests, limiter.rate_limited, limiter.answered, limiter.latency)
        # Where the counts stood at the last line: rates are given since then.
        self._last = (self.started, limiter.requests, limiter.answered, limiter.latency)

    @property
    def requests(self) -> int:
        """Requests this run sent (429s included)."""
        return self.limiter.requests - self._base[0]

    @property
    def rate_limited(self) -> int:
        """429 answers this run received."""
        return self.limiter.rate_limited - self._base[1]

    def until_next(self) -> float:
        """Seconds until the next progress line is due."""
        return max(self.next_log - self.stream.monotonic(), 0.01)

    def maybe_log(self) -> None:
        """Log a progress line when one is due."""
        if self.stream.monotonic() >= self.next_log:
            self.log()

    def log(self, *, final: bool = False) -> None:
        """Log contacts done/total, records, requests per second and the share of the limit."""
        now = self.stream.monotonic()
        self.next_log = now + self.every
        elapsed = max(now - self.started, 1e-9)
        done = f"{self.contacts:,}"
        eta = ""
        if self.total:
            done += f"/{self.total:,} contacts ({100 * self.contacts / self.total:.1f} %)"
            if not final and self.contacts:
                left = elapsed / self.contacts * max(self.total - self.contacts, 0)
                eta = (
                    f", about {left / MINUTE:.0f} min left"
                    if left >= MINUTE
                    else f", about {left:.0f} s left"
                )
        else:
            done += " contacts"
        again = f" ({self.again:,} again: lookback)" if self.again else ""
        self.stream.logger.info(
            "%s %s: %s, %s %s%s, %s requests in %.1f s (%s), %d 429(s), %d contact(s) gone%s.",
            self.stream.name,
            "done" if final else "progress",
            done,
            f"{self.records:,}",
            self.stream.record_label,
            again,
            f"{self.requests:,}",
            elapsed,
            self.pace(now, since_start=final),
            self.rate_limited,
            self.gone,
            eta,
        )

    def pace(self, now: float, *, since_start: bool) -> str:
        """Requests per second, the share of the rate limit, the answers' latency (and a hint)."""
        start, requests, answered, latency = self._last
        limiter = self.limiter
        if since_start:
            start, (requests, _, answered, latency) = self.started, self._base
        self._last = (now, limiter.requests, limiter.answered, limiter.latency)
        rate = (limiter.requests - requests) / max(now - start, 1e-9)
        text = f"{rate:.1f}/s"
        allowed = limiter.allowed_rate()
        if allowed:
            text += (
                f", {100 * rate / allowed:.0f} % of the rate limit of {limiter.limit:,} per "
                f"{limiter.length:g} s"
            )
        if limiter.answered > answered:
            seconds = (limiter.latency - latency) / (limiter.answered - answered)
            text += f", {1000 * seconds:.0f} ms an answer"
            # The workers cap the rate at ceiling / latency: say so when that is what holds
            # it (nearly every worker busy, under the limit).
            capped = self.ceiling / seconds if seconds > 0 else None
            if allowed and capped and rate < 0.9 * allowed and rate >= 0.8 * capped:
                text += (
                    f"; max_concurrent_requests={self.ceiling} allows about {capped:.0f}/s at "
                    "that latency"
                )
        return text
