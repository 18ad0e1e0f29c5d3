"""The fake's contacts and data events: a deterministic workspace, Intercom's 90-day listing cut.

Contacts are listed with cursor pagination (`GET /contacts`) whose cursors are standard base64
(`+`, `/`, `=`, as Intercom's are), each contact's events with
`GET /events?type=user&intercom_user_id=...` newest first, `per_page` honoured and `pages.next`
an absolute link with `before=<milliseconds>` as in Intercom's reference; `summary=true` counts
every event, older than 90 days included, and may itself be paged (`summary_per_page`).
"""

from __future__ import annotations

import base64
import threading
import typing as t
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import unquote, urlencode

from fake_intercom.core import Request, Response, Server, error_body, real_sleep, real_time
from fake_intercom.eventdata import (
    DAY,
    FakeContact,
    FakeEvent,
    free_millis,
    generate,
)

#: Intercom lists only events less than 90 days old.
LISTABLE_SECONDS = 90 * DAY
EVENTS_DEFAULT_PER_PAGE = 15
CONTACTS_DEFAULT_PER_PAGE = 50
CONTACTS_MAX_PER_PAGE = 150

#: `build()` keyword arguments that configure the events routes.
OPTIONS = frozenset(
    {
        "contacts",
        "events_now",
        "events_per_contact",
        "events_days",
        "events_delay",
        "summary_per_page",
    }
)


#: Bytes that make every cursor contain `+`, `/` and `=` once base64-encoded, like real ones.
_CURSOR_PREFIX = b"\xfb\xef\xff"


def _token(i: int) -> str:
    raw = _CURSOR_PREFIX + f"cursor:{i}".encode()
    if len(raw) % 3 == 0:
        raw += b"!"  # keep the `=` padding
    return base64.b64encode(raw).decode()


def _untoken(token: str) -> int | None:
    # Strict, as a server is: a `+` sent unencoded arrives as a space and is refused.
    try:
        raw = base64.b64decode(token.encode(), validate=True)
    except ValueError:
        return None
    if not raw.startswith(_CURSOR_PREFIX):
        return None
    text = raw[len(_CURSOR_PREFIX) :].rstrip(b"!").decode(errors="replace")
    prefix, _, rest = text.partition(":")
    return int(rest) if prefix == "cursor" and rest.isdigit() else None


def _iso_ms(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class EventsAPI:
    """Contacts and events endpoints of the fake, with knobs tests turn."""

    fake: Server
    contacts: list[FakeContact]
    events: dict[str, list[FakeEvent]]
    #: The fake's "now" (unix seconds) for the 90-day cut; None means the real clock.
    now: int | None = None
    #: Seconds each events/contacts answer takes inside the route (counted as in flight).
    delay: float = 0.0
    #: Contacts still listed but gone when fetched (deleted between listing and fetching).
    deleted: set[str] = field(default_factory=set)
    #: Status to answer for a contact's events (e.g. 403, 500), per contact id.
    failing: dict[str, int] = field(default_factory=dict)
    #: Contacts whose `pages.next` always points back at their first page.
    looping: set[str] = field(default_factory=set)
    #: Answer the last page of contacts with a `next` cursor that was already sent.
    looping_contacts: bool = False
    #: Event names per page of a summary (Intercom's example pages them); None: one page.
    summary_per_page: int | None = None
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current_time(self) -> int:
        """The fake's now."""
        return int(real_time()) if self.now is None else self.now

    def add_contact(
        self,
        contact_id: str,
        *,
        role: str = "user",
        external_id: str | None = None,
        email: str | None = None,
    ) -> FakeContact:
        """Append a contact to the workspace."""
        contact = FakeContact(contact_id, role, external_id, email, self.current_time())
        with self.lock:
            self.contacts.append(contact)
            self.events.setdefault(contact_id, [])
        return contact

    def add_event(
        self, contact_id: str, name: str, created_at: int, metadata: dict[str, t.Any] | None = None
    ) -> bool:
        """Record an event for a contact as submitted to Intercom now, with any `created_at`.

        Intercom keeps the `created_at` the sender gives, however old (a late arrival), and
        ignores an event with the same name and `created_at` as one the contact has: False then.
        """
        with self.lock:
            mine = self.events.setdefault(contact_id, [])
            if any(e.name == name and e.created_at == created_at for e in mine):
                return False
            mine.append(FakeEvent(name, created_at, metadata, free_millis(mine, created_at)))
        return True

    def add_late_event(
        self,
        contact_id: str,
        name: str,
        late_by: int,
        metadata: dict[str, t.Any] | None = None,
    ) -> int:
        """Submit now an event created `late_by` seconds before the fake's now; its created_at."""
        created_at = self.current_time() - late_by
        self.add_event(contact_id, name, created_at, metadata)
        return created_at

    # -- admin routes (scripts add data to a fake running in another process) ----------------

    def admin_add_contact(self, req: Request, _m: t.Any) -> Response:
        """POST /_fake/contacts `{"id", "role"?, "external_id"?, "email"?}`."""
        body = req.body if isinstance(req.body, dict) else {}
        if not isinstance(body.get("id"), str):
            return Response(400, error_body("parameter_invalid", "id is required"))
        contact = self.add_contact(
            body["id"],
            role=str(body.get("role") or "user"),
            external_id=body.get("external_id"),
            email=body.get("email"),
        )
        return Response(200, contact.body())

    def admin_add_event(self, req: Request, _m: t.Any) -> Response:
        """POST /_fake/events `{"intercom_user_id", "event_name", "created_at", "metadata"?}`."""
        body = req.body if isinstance(req.body, dict) else {}
        contact = body.get("intercom_user_id")
        created_at = body.get("created_at")
        if not isinstance(contact, str) or self.contact(contact) is None:
            return Response(404, error_body("not_found", "User Not Found"))
        if not isinstance(body.get("event_name"), str) or not isinstance(created_at, int):
            return Response(
                400, error_body("parameter_invalid", "event_name and created_at are required")
            )
        added = self.add_event(contact, body["event_name"], created_at, body.get("metadata"))
        return Response(200, {"added": added})

    def contact(self, contact_id: str) -> FakeContact | None:
        """A contact that still exists."""
        if contact_id in self.deleted:
            return None
        return next((c for c in self.contacts if c.id == contact_id), None)

    def listable(self, contact_id: str) -> list[FakeEvent]:
        """A contact's events the list endpoint returns, newest first (less than 90 days old)."""
        now = self.current_time()
        with self.lock:
            mine = list(self.events.get(contact_id, []))
        shown = [e for e in mine if now - LISTABLE_SECONDS < e.created_at <= now]
        return sorted(shown, key=lambda e: -e.created_ms)

    def event_body(self, contact: FakeContact, event: FakeEvent) -> dict[str, t.Any]:
        """An event object as Intercom lists it."""
        body: dict[str, t.Any] = {
            "type": "event",
            "event_name": event.name,
            "created_at": event.created_at,
            "user_id": contact.external_id,
            "intercom_user_id": contact.id,
            "email": contact.email,
        }
        if event.metadata is not None:
            body["metadata"] = event.metadata
        return body

    # -- routes -----------------------------------------------------------------------------

    def _enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.delay:
            real_sleep(self.delay)

    def _leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def list_contacts(self, req: Request, _m: t.Any) -> Response:
        """GET /contacts: cursor pagination, `starting_after` from `pages.next`."""
        self._enter()
        try:
            per_page = int(req.arg("per_page") or CONTACTS_DEFAULT_PER_PAGE)
            if not 1 <= per_page <= CONTACTS_MAX_PER_PAGE:
                return Response(
                    400, error_body("parameter_invalid", "per_page must be between 1 and 150")
                )
            start = 0
            cursor = req.arg("starting_after")
            if cursor:
                after = _untoken(cursor)
                if after is None:
                    return Response(
                        400, error_body("parameter_invalid", "starting_after is invalid")
                    )
                start = after
            with self.lock:
                everyone = list(self.contacts)
            page = everyone[start : start + per_page]
            total_pages = max(-(-len(everyone) // per_page), 1)
            pages: dict[str, t.Any] = {
                "type": "pages",
                "page": start // per_page + 1,
                "per_page": per_page,
                "total_pages": total_pages,
            }
            if start + per_page < len(everyone):
                pages["next"] = {
                    "page": start // per_page + 2,
                    "starting_after": _token(start + per_page),
                }
            elif self.looping_contacts and start:
                pages["next"] = {"page": start // per_page + 1, "starting_after": _token(start)}
            body = {
                "type": "list",
                "data": [c.body() for c in page],
                "total_count": len(everyone),
                "pages": pages,
            }
            return Response(200, body)
        finally:
            self._leave()

    def get_contact(self, _req: Request, match: t.Any) -> Response:
        """GET /contacts/{id}."""
        contact = self.contact(unquote(match.group(1)))
        if contact is None:
            return Response(404, error_body("not_found", "User Not Found"))
        return Response(200, contact.body())

    def list_events(self, req: Request, _m: t.Any) -> Response:
        """GET /events: a contact's events newest first, or its summary with `summary=true`."""
        self._enter()
        try:
            if req.arg("type") != "user":
                return Response(400, error_body("parameter_invalid", "type must be user"))
            contact = self._identify(req)
            if contact is None:
                return Response(404, error_body("not_found", "User Not Found"))
            if contact.id in self.failing:
                status = self.failing[contact.id]
                code = "server_error" if status >= HTTPStatus.INTERNAL_SERVER_ERROR else "forbidden"
                return Response(status, error_body(code, "Refused"))
            if req.arg("summary") == "true":
                return Response(200, self._summary(req, contact))
            per_page = int(req.arg("per_page") or EVENTS_DEFAULT_PER_PAGE)
            shown = self.listable(contact.id)
            before = req.arg("before")
            if before is not None:
                if not before.isdigit():
                    return Response(400, error_body("parameter_invalid", "before is invalid"))
                shown = [e for e in shown if e.created_ms < int(before)]
            page = shown[:per_page]
            pages: dict[str, t.Any] = {
                "since": self._link(req, since=str(self.current_time() * 1000), drop="before")
            }
            if contact.id in self.looping and before is None:
                pages["next"] = self._link(req, drop="before")
            elif len(shown) > per_page:
                pages["next"] = self._link(req, before=str(page[-1].created_ms))
            body = {
                "type": "event.list",
                "events": [self.event_body(contact, e) for e in page],
                "pages": pages,
            }
            return Response(200, body)
        finally:
            self._leave()

    def _identify(self, req: Request) -> FakeContact | None:
        with self.lock:
            everyone = list(self.contacts)
        for key, attr in (
            ("intercom_user_id", "id"),
            ("user_id", "external_id"),
            ("email", "email"),
        ):
            value = req.arg(key)
            if value is not None:
                found = next((c for c in everyone if getattr(c, attr) == value), None)
                return None if found is None or found.id in self.deleted else found
        return None

    def _link(self, req: Request, drop: str = "", **params: str) -> str:
        """An absolute `/events` link: the request's parameters, some replaced or dropped."""
        query = {k: v[0] for k, v in req.query.items() if k != drop}
        query.update(params)
        return f"{self.fake.url}/events?{urlencode(query)}"

    def _summary(self, req: Request, contact: FakeContact) -> dict[str, t.Any]:
        with self.lock:
            mine = [
                e for e in self.events.get(contact.id, []) if e.created_at <= self.current_time()
            ]
        by_name: dict[str, list[int]] = {}
        for event in mine:
            by_name.setdefault(event.name, []).append(event.created_at)
        items = [
            {
                "name": name,
                "first": _iso_ms(min(times)),
                "last": _iso_ms(max(times)),
                "count": len(times),
                "description": None,
            }
            for name, times in sorted(by_name.items())
        ]
        body: dict[str, t.Any] = {
            "type": "event.summary",
            "email": contact.email,
            "intercom_user_id": contact.id,
            "user_id": contact.external_id,
            "events": items,
        }
        size = self.summary_per_page
        if size:
            page = int(req.arg("page") or 1)
            body["events"] = items[(page - 1) * size : page * size]
            if page * size < len(items):
                body["pages"] = {"type": "pages", "next": self._link(req, page=str(page + 1))}
        return body


def install(  # noqa: PLR0913 - one keyword-only knob per build() option (OPTIONS)
    fake: Server,
    *,
    contacts: int = 50,
    events_now: int | None = None,
    events_per_contact: int = 12,
    events_days: int = 120,
    events_delay: float = 0.0,
    summary_per_page: int | None = None,
) -> EventsAPI:
    """Add the contacts and events routes to a fake; return the knobs."""
    anchor = int(real_time()) if events_now is None else events_now
    people, events = generate(anchor, contacts, events_per_contact, events_days)
    api = EventsAPI(fake, people, events, now=events_now, delay=events_delay)
    api.summary_per_page = summary_per_page
    fake.route("GET", r"/contacts", api.list_contacts)
    fake.route("GET", r"/contacts/([^/]+)", api.get_contact)
    fake.route("GET", r"/events", api.list_events)
    fake.admin_route("POST", "contacts", api.admin_add_contact)
    fake.admin_route("POST", "events", api.admin_add_event)
    return api
