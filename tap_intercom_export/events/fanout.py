"""Reading every contact of the workspace, several at a time: listing, workers, rate limit.

Intercom lists data events only per contact, newest first, and only those less than 90 days old
(https://developers.intercom.com/docs/references/rest-api/api.intercom.io/data-events/lisdataevents),
so a sync makes at least one request per contact. Contacts are listed in the main thread; their
events are fetched by a pool of workers, and records are emitted from the main thread in the
order contacts were listed.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import sys
import threading
import time
import typing as t
import weakref
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import requests

from tap_intercom_export.client import IntercomStream
from tap_intercom_export.errors import (
    ConfigError,
    IntercomAPIError,
    IntercomNotFoundError,
    IntercomRetriableError,
)
from tap_intercom_export.events.progress import Progress
from tap_intercom_export.events.ratelimit import RateLimiter
from tap_intercom_export.timeutil import iso

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record

DAY = 86400
#: Intercom lists only events less than 90 days old; summaries still count older ones.
LISTABLE_DAYS = 90
DEFAULT_CONCURRENCY = 8
DEFAULT_EVENTS_PER_PAGE = 50
DEFAULT_SETTLE_SECONDS = 300
#: Intercom's largest page of contacts.
CONTACTS_PER_PAGE = 150


@dataclass(frozen=True)
class Contact:
    """A user or lead as listed by `GET /contacts`."""

    id: str
    role: str | None
    user_id: str | None
    email: str | None


@dataclass
class ContactResult:
    """What the workers read for one contact."""

    contact: Contact
    records: list[Record] = field(default_factory=list)
    #: The contact was deleted between being listed and being read.
    gone: bool = False
    #: Something the operator should know about this contact (logged as a warning).
    note: str | None = None
    #: Creation time of the contact's newest event in the run's range (contact_events only).
    newest: int | None = None


@dataclass(frozen=True)
class EventRange:
    """Events created in (after, until], unix seconds."""

    after: int
    until: int


@dataclass
class NewEvents:
    """The contacts a complete contact_events run saw events of, created in (after, until]."""

    after: int
    until: int
    #: Contact id -> creation time of its newest event in the range (contacts with none: absent).
    newest: dict[str, int] = field(default_factory=dict)


@dataclass
class SharedRun:
    """What the event streams of one tap run share: the rate limiter and the new events seen."""

    limiter: RateLimiter
    new_events: NewEvents | None = None


# Keyed by the tap object, so that each tap run (and each test's tap) starts afresh.
_SHARED: weakref.WeakKeyDictionary[t.Any, SharedRun] = weakref.WeakKeyDictionary()


def event_key(contact_id: str, event_name: str, created_at: int) -> str:
    """The synthetic primary key of an event: Intercom deduplicates on contact, name and time."""
    text = json.dumps([contact_id, event_name, created_at], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def rfc3339(value: t.Any) -> str | None:
    """RFC 3339 text of an ISO date-time or unix seconds; None when unreadable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return iso(int(value))
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc).isoformat()
    return None


def page_id(path_and_query: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A page link's identity, whatever the order of its query parameters."""
    parts = urlsplit(path_and_query)
    return parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))


def positive_int(config: t.Mapping[str, t.Any], key: str, default: int, minimum: int = 1) -> int:
    """An integer setting that must be at least `minimum`, with an error that names it."""
    value = config.get(key)
    if value in (None, ""):
        return default
    try:
        # Through str() so that 2.5 or true are refused rather than truncated.
        number = int(str(value))
    except ValueError:
        number = minimum - 1
    if number < minimum:
        msg = (
            f"Setting {key}={value!r} is invalid: use a whole number of at least {minimum} "
            f"(default {default})."
        )
        raise ConfigError(msg)
    return number


def settle_seconds(config: t.Mapping[str, t.Any]) -> int:
    """`event_settle_seconds`: how old an event must be before a run counts it as read."""
    settle = config.get("event_settle_seconds")
    settle = DEFAULT_SETTLE_SECONDS if settle in (None, "") else int(settle)
    if settle < 0:
        msg = f"Setting event_settle_seconds={settle} is invalid: use 0 or more seconds."
        raise ConfigError(msg)
    return settle


class ContactFanOutStream(IntercomStream):
    """Base of streams that read every contact: listing, worker pool, rate limiter, progress."""

    # Workers share the SDK's request path (authenticator, validate_response, retries with
    # backoff) but each has its own requests.Session, which is not thread-safe. Workers only
    # build records; the main thread emits them (the SDK's writer is not thread-safe) in the
    # order contacts were listed, with a bounded window of contacts in memory.

    path = "/events"
    #: What the progress line calls this stream's records.
    record_label = "records"
    #: Seconds between two progress lines.
    progress_every = 30.0
    #: Contacts fetched ahead of the oldest unfinished one, per worker (bounds memory).
    window_per_worker = 8
    #: How long one request may keep being refused with 429 before the sync gives up.
    rate_limited_give_up_seconds = 900.0
    #: The clock that decides "now" (the 90-day cut, the newest event read); tests replace it.
    wall_clock: t.Callable[[], float] = staticmethod(time.time)
    #: How elapsed time is measured; tests replace it.
    monotonic: t.Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Set up per-thread sessions and a limiter (replaced at the start of each run)."""
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self.limiter = RateLimiter(logger=self.logger)
        self._slots = threading.BoundedSemaphore(1)
        self.progress: Progress | None = None

    def shared(self) -> SharedRun:
        """The state both event streams of this tap share (created by the first to ask)."""
        # One limiter for both streams: a stream starting right after the other has used up
        # Intercom's window must wait for its reset instead of collecting 429s.
        shared = _SHARED.get(self._tap)
        if shared is None:
            shared = _SHARED[self._tap] = SharedRun(RateLimiter(logger=self._tap.logger))
        return shared

    # -- request path shared by the workers ---------------------------------------------------

    @property
    def requests_session(self) -> requests.Session:
        """One session per thread: `requests.Session` is not guaranteed thread-safe."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _close_sessions(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def _request(
        self, prepared_request: requests.PreparedRequest, context: Context | None
    ) -> requests.Response:
        """Send within `max_concurrent_requests` and the rate limit; retry 429s after the reset."""
        # A 429 is retried here rather than by the SDK's backoff so that it never uses up the
        # tries meant for server errors: the limiter holds every worker until the window resets.
        started = self.monotonic()
        with self._slots:
            while True:
                self.limiter.acquire()
                try:
                    return super()._request(prepared_request, context)
                except IntercomRetriableError as exc:
                    if (
                        exc.response is None
                        or exc.response.status_code != HTTPStatus.TOO_MANY_REQUESTS
                    ):
                        raise
                    if self.monotonic() - started > self.rate_limited_give_up_seconds:
                        msg = (
                            f"{exc} — refused for {self.rate_limited_give_up_seconds / 60:.0f} "
                            "min: another app is using this workspace's rate limit; run later or "
                            "lower max_concurrent_requests."
                        )
                        raise IntercomAPIError(msg, 429, "rate_limit_exceeded") from exc
                finally:
                    self.limiter.release()

    def validate_response(self, response: requests.Response) -> None:
        """Let the shared limiter learn the rate-limit window, then check the status."""
        self.limiter.observe(response.headers, response.status_code)
        super().validate_response(response)

    def get_json(self, path_and_query: str) -> dict[str, t.Any]:
        """GET a path of the API (with its query) and return the JSON object it answers."""
        response = self.send(self.prepare("GET", f"{self.url_base}{path_and_query}"))
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            path = path_and_query.split("?", 1)[0]
            msg = (
                f"Intercom answered GET {path} with a body that is not a JSON object: "
                f"{response.text[:120]!r}."
            )
            raise IntercomAPIError(msg, response.status_code)
        return body

    def api_path(self, link: str) -> str:
        """Path and query of a `pages.next` link, to be sent to our configured API URL."""
        # Intercom's links name api.intercom.io: following them verbatim would bypass an
        # api_url proxy and could send the token to a host we were not configured for.
        base = self.url_base
        if link.startswith(base + "/"):
            return link[len(base) :]
        parts = urlsplit(link)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    # -- the run -------------------------------------------------------------------------------

    def concurrency(self) -> int:
        """Requests in flight at most (`max_concurrent_requests`)."""
        return positive_int(self.config, "max_concurrent_requests", DEFAULT_CONCURRENCY)

    def iter_contacts(self) -> t.Iterator[Contact]:
        """Every user and lead of the workspace, once each, in Intercom's listing order."""
        # Cursor pagination: https://developers.intercom.com/docs/build-an-integration/learn-more/rest-apis/pagination-cursor
        seen_cursors: set[str] = set()
        seen_ids: set[str] = set()
        cursor: str | None = None
        while True:
            query: dict[str, t.Any] = {"per_page": CONTACTS_PER_PAGE}
            if cursor:
                query["starting_after"] = cursor
            body = self.get_json(f"/contacts?{urlencode(query)}")
            if self.progress is not None and self.progress.total is None:
                total = body.get("total_count")
                self.progress.total = total if isinstance(total, int) else None
            for item in body.get("data") or []:
                if not isinstance(item, dict) or not item.get("id"):
                    continue
                cid = str(item["id"])
                # A contact that moves in the listing while it is paged must not be read twice.
                if cid in seen_ids:
                    continue
                seen_ids.add(cid)
                yield Contact(cid, item.get("role"), item.get("external_id"), item.get("email"))
            nxt = (body.get("pages") or {}).get("next")
            cursor = nxt.get("starting_after") if isinstance(nxt, dict) else None
            if not cursor:
                return
            if cursor in seen_cursors:
                self.logger.warning(
                    "%s: Intercom sent a contacts cursor it had already sent; stopped listing "
                    "contacts after %d of them.",
                    self.name,
                    len(seen_ids),
                )
                return
            seen_cursors.add(cursor)

    def read_contact(self, contact: Contact) -> ContactResult:
        """Fetch one contact's records (runs in a worker thread)."""
        raise NotImplementedError

    def _read_or_skip(self, contact: Contact) -> ContactResult:
        try:
            return self.read_contact(contact)
        except IntercomNotFoundError as exc:
            # Intercom answers 404 for a contact deleted since it was listed. Make sure that is
            # what happened before skipping it: a 404 for a contact that exists means the
            # request is wrong, and skipping would silently lose its events.
            try:
                self.get_json(f"/contacts/{quote(contact.id, safe='')}")
            except IntercomNotFoundError:
                return ContactResult(contact, gone=True)
            msg = f"{exc}; contact {contact.id} still exists, so its events cannot be skipped."
            raise IntercomAPIError(msg, 404, exc.code) from exc

    def start_run(self) -> bool:
        """Log what the run will read; False when there is nothing to read."""
        return True

    def contacts_to_read(self) -> t.Iterator[Contact]:
        """The contacts this run reads: every contact unless a stream narrows it."""
        return self.iter_contacts()

    def contact_done(self, result: ContactResult) -> None:
        """Called in the main thread, in listing order, as each contact's records go out."""

    def wants_new_events(self) -> bool:
        """Whether this stream, selected, would use what contact_events sees this run."""
        return False

    def finish_run(self) -> None:
        """Called once every contact has been read and its records emitted."""

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        """Read every contact with up to `max_concurrent_requests` requests in flight."""
        workers = self.concurrency()
        if not self.start_run():
            return
        self.limiter = self.shared().limiter
        self._slots = threading.BoundedSemaphore(workers)
        self.progress = progress = Progress(self, self.limiter, self.progress_every)
        pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=self.name)
        pending: deque[cf.Future[ContactResult]] = deque()
        depth = workers * self.window_per_worker
        try:
            for contact in self.contacts_to_read():
                pending.append(pool.submit(self._read_or_skip, contact))
                while pending and (len(pending) >= depth or pending[0].done()):
                    yield from self._emit(pending.popleft(), progress)
            while pending:
                yield from self._emit(pending.popleft(), progress)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._close_sessions()
        progress.log(final=True)
        self.finish_run()

    def _emit(self, future: cf.Future[ContactResult], progress: Progress) -> t.Iterator[Record]:
        while True:
            try:
                result = future.result(timeout=progress.until_next())
                break
            except cf.TimeoutError:
                progress.maybe_log()
        contact = result.contact
        if result.gone:
            progress.gone += 1
            self.logger.warning(
                "%s: contact %s was deleted after it was listed (404); skipped.",
                self.name,
                contact.id,
            )
        if result.note:
            self.logger.warning("%s: contact %s: %s", self.name, contact.id, result.note)
        progress.contacts += 1
        progress.records += len(result.records)
        self.contact_done(result)
        yield from result.records
        progress.maybe_log()
