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
import threading
import time
import typing as t
import weakref
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import quote

import requests
from typing_extensions import override

from tap_intercom_export import ratelimit, sdk
from tap_intercom_export.client import IntercomStream
from tap_intercom_export.errors import (
    IntercomAPIError,
    IntercomNotFoundError,
    IntercomRetriableError,
)
from tap_intercom_export.events.pages import CursorPaginator, pages
from tap_intercom_export.events.progress import Progress
from tap_intercom_export.ratelimit import RateLimiter
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record

    RequestFunc = t.Callable[[requests.PreparedRequest, Context | None], requests.Response]

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
    #: Records emitted again: events read by the lookback (contact_events only).
    again: int = 0


@dataclass(frozen=True)
class EventRange:
    """Events created in (after, until], unix seconds; those up to `covered` are read again."""

    after: int
    until: int
    #: The bookmark: every event created up to it was emitted by an earlier run, except those
    #: that reached Intercom late, which the lookback (after, covered] is there to catch.
    covered: int
    #: A deep lookback (or a first run): where it ends is remembered in the state.
    deep: bool = False


@dataclass
class NewEvents:
    """The contacts a complete contact_events run saw events of, created in (after, until]."""

    after: int
    until: int
    #: Ids of the contacts with at least one event in the range, its lookback included.
    contacts: set[str] = field(default_factory=set)


# One limiter per tap object (so that each tap run, and each test's tap, starts afresh) for
# both event streams: a stream starting right after the other has used up Intercom's window
# must wait for its reset instead of collecting 429s.
_LIMITERS: weakref.WeakKeyDictionary[t.Any, RateLimiter] = weakref.WeakKeyDictionary()


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
    window_per_worker = 4
    #: How long one request may keep being refused with 429 before the sync gives up.
    rate_limited_give_up_seconds = 900.0
    #: The clock that decides "now" (the 90-day cut, the newest event read); tests replace it.
    wall_clock: t.Callable[[], float] = staticmethod(time.time)
    #: How elapsed time is measured; tests replace it.
    monotonic: t.Callable[[], float] = staticmethod(time.monotonic)
    #: The clock compared with X-RateLimit-Reset, and how the limiter waits; tests replace them.
    rate_clock: t.Callable[[], float] = staticmethod(time.time)
    rate_sleep: t.Callable[[float], None] = staticmethod(ratelimit.sleep)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Set up per-thread sessions and a limiter (replaced at the start of each run)."""
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self.limiter = self.new_limiter()
        self._slots = threading.BoundedSemaphore(1)
        self.progress: Progress | None = None

    def shared_limiter(self) -> RateLimiter:
        """The rate limiter both event streams of this tap run share (made by the first to ask)."""
        limiter = _LIMITERS.get(self.tap)
        if limiter is None:
            limiter = _LIMITERS[self.tap] = self.new_limiter()
        return limiter

    def new_limiter(self) -> RateLimiter:
        """A rate limiter on this stream's clocks."""
        return RateLimiter(clock=self.rate_clock, sleep=self.rate_sleep, logger=self.tap.logger)

    # -- request path shared by the workers ---------------------------------------------------

    @property
    @override
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

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        """The SDK's retries around a send within `max_concurrent_requests` and the rate limit."""

        def limited(
            request: requests.PreparedRequest, context: Context | None
        ) -> requests.Response:
            # The limiter gives each request its start time (ratelimit.py). A 429 is retried
            # here rather than by the SDK's backoff so that it never uses up the tries meant for
            # server errors: the limiter holds every worker until the window resets.
            started = self.monotonic()
            with self._slots:
                while True:
                    self.limiter.acquire()
                    try:
                        return func(request, context)
                    except IntercomRetriableError as exc:
                        if (
                            exc.response is None
                            or exc.response.status_code != HTTPStatus.TOO_MANY_REQUESTS
                        ):
                            raise
                        if self.monotonic() - started > self.rate_limited_give_up_seconds:
                            msg = (
                                f"{exc} — refused for {self.rate_limited_give_up_seconds / 60:.0f} "
                                "min: another app is using this workspace's rate limit; run the "
                                "tap when it is not."
                            )
                            raise IntercomAPIError(msg, 429, "rate_limit_exceeded") from exc
                    finally:
                        self.limiter.release()

        return super().request_decorator(limited)

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Let the shared limiter learn the rate-limit window, then check the status."""
        self.limiter.observe(response.headers, response.status_code)
        super().validate_response(response)

    def fetch(self, path_and_query: str) -> tuple[requests.Response, dict[str, t.Any]]:
        """GET a path of the API (with its query): the response and the JSON object it answers."""
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
        return response, body

    def get_json(self, path_and_query: str) -> dict[str, t.Any]:
        """GET a path of the API (with its query) and return the JSON object it answers."""
        return self.fetch(path_and_query)[1]

    # -- the run -------------------------------------------------------------------------------

    def iter_contacts(self) -> t.Iterator[Contact]:
        """Every user and lead of the workspace, once each, in Intercom's listing order."""
        paginator = CursorPaginator("/contacts", {"per_page": CONTACTS_PER_PAGE})
        seen: set[str] = set()
        for body in pages(self.fetch, paginator):
            if self.progress is not None and self.progress.total is None:
                total = body.get("total_count")
                self.progress.total = total if isinstance(total, int) else None
            for item in body.get("data") or []:
                if not isinstance(item, dict) or not item.get("id"):
                    continue
                cid = str(item["id"])
                # A contact that moves in the listing while it is paged must not be read twice.
                if cid in seen:
                    continue
                seen.add(cid)
                yield Contact(cid, item.get("role"), item.get("external_id"), item.get("email"))
        if paginator.repeated:
            self.logger.warning(
                "%s: Intercom sent a contacts cursor it had already sent; stopped listing "
                "contacts after %d of them.",
                self.name,
                len(seen),
            )

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
        """Read every contact with up to `max_concurrent_requests` requests in flight.

        Then, with RECORD messages (every record is out), make the bookmark final and sync the
        child streams: contact_event_summaries reads what contact_events noted.
        """
        read = self.selected and self.start_run()
        if read:
            yield from self._read_contacts()
        if self.get_batch_config(self.config) is None and self.child_streams:
            if read:
                sdk.commit_state(self)
            sdk.sync_children(self)

    @override
    def get_batch_config(self, config: t.Mapping[str, t.Any]) -> sdk.BatchConfig | None:
        """The base stream's batch_config, announcing the encoding the SDK's batcher writes."""
        batch = super().get_batch_config(config)
        return None if batch is None else sdk.sdk_batcher_encoding(batch)

    @override
    def get_batches(
        self, batch_config: sdk.BatchConfig, context: Context | None = None
    ) -> t.Iterable[tuple[sdk.BaseBatchFileEncoding, list[str]]]:
        """The SDK's batches; once the last is announced (with the final bookmark), the children."""
        return sdk.sync_children_after(self, super().get_batches(batch_config, context))

    def _read_contacts(self) -> t.Iterator[Record]:
        workers = self.settings.max_concurrent_requests
        self.limiter = self.shared_limiter()
        self._slots = threading.BoundedSemaphore(workers)
        self.progress = progress = Progress(self, self.limiter, self.progress_every, workers)
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
        progress.again += result.again
        self.contact_done(result)
        yield from result.records
        progress.maybe_log()
