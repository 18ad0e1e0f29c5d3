"""Contact data events and event summaries: one record per event, one per (contact, event name).

Intercom lists data events only per contact, newest first, and only those less than 90 days old
(https://developers.intercom.com/docs/references/rest-api/api.intercom.io/data-events/lisdataevents);
the fan-out over contacts lives in fanout.py.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlencode

from singer_sdk import typing as th
from typing_extensions import override

from tap_intercom_export import sdk
from tap_intercom_export.events.fanout import (
    Contact,
    ContactFanOutStream,
    ContactResult,
    EventRange,
    NewEvents,
    event_key,
)
from tap_intercom_export.events.lookback import DEEP_LOOKBACK_UNTIL, EventLookback, read_deep_until
from tap_intercom_export.events.pages import NextLinkPaginator, pages
from tap_intercom_export.settings import LISTABLE_DAYS
from tap_intercom_export.timerange import DAY, plan_range
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record

#: Who the event (or summary) belongs to, and its name: shared by both event streams.
CONTACT_EVENT_PROPERTIES = (
    th.Property("contact_id", th.StringType, required=True, description="Intercom's contact id"),
    th.Property("contact_role", th.StringType, description="user or lead"),
    th.Property("user_id", th.StringType, description="Your id for the user (external_id)"),
    th.Property("email", th.StringType),
    th.Property("event_name", th.StringType, required=True),
)


class ContactEventsStream(ContactFanOutStream):
    """Every contact's data events, incremental on `created_at` with one bookmark for the stream."""

    # The bookmark moves only once a run has read every contact, to the upper bound of what
    # the run covered (see plan). Until then the SDK keeps the run's progress in
    # progress_markers and STATE carries the previous bookmark, so a run killed at any moment
    # (SIGTERM, periodic STATE every STATE_MSG_FREQUENCY records) resumes from it: events it
    # had already emitted are emitted again with the same event_key, none is lost.
    # contact_event_summaries is its child stream: it runs once this stream has read every
    # contact, and re-reads only the summaries of the contacts this stream saw new events of.

    name = "contact_events"
    path = "/events"
    primary_keys = ("event_key",)
    replication_key = "created_at"
    # Events of different contacts interleave in time: records are not sorted by created_at.
    is_sorted = False
    record_label = "events"

    schema = th.PropertiesList(
        th.Property(
            "event_key",
            th.StringType,
            required=True,
            description="Synthetic key: a hash of contact_id, event_name and created_at, the "
            "fields Intercom deduplicates events on (events have no id of their own).",
        ),
        *CONTACT_EVENT_PROPERTIES,
        th.Property("created_at", th.DateTimeType, required=True),
        th.Property(
            "metadata",
            th.ObjectType(),
            description="As Intercom stores it: strings, numbers, unix seconds for keys ending in "
            "_date, links, rich links {url, value}, amounts {amount (cents), currency}.",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """No range is planned until the run starts."""
        super().__init__(*args, **kwargs)
        self.range: EventRange | None = None
        self.new_events: NewEvents | None = None
        #: What the last complete run saw (for contact_event_summaries, its child).
        self.noted: NewEvents | None = None

    def plan(self) -> EventRange:
        """The creation times this run reads: from the lookback before the bookmark to now - settle."""
        # The upper bound is fixed when the run starts and lags the clock by
        # event_settle_seconds. Events newer than it are left for the next run even when a
        # worker sees them: contacts are read at different moments of a long run, so the newest
        # event seen says nothing about contacts read earlier, while every event created up to
        # the run's start is listable by the time its contact is read. The lag covers
        # Intercom's ingestion delay and clock differences. Each run covers (bookmark, upper
        # bound] as new, with no gap and no overlap between runs, plus the lookback before the
        # bookmark (lookback.py) for events that reached Intercom late.
        now = int(self.wall_clock())
        settings = self.settings
        bookmark = self.saved_bookmark()
        lookback = EventLookback.from_settings(settings)
        deep_until = read_deep_until(self.stream_state)
        # A first run reads everything there is: it counts as a deep lookback.
        deep = bookmark is None or lookback.deep_due(
            deep_until, now - settings.event_settle_seconds
        )
        span = plan_range(
            now=now,
            start_date=settings.start_date,
            end_date=settings.end_date,
            # The bookmark is the last second read (events are read up to `now - settle`).
            resume=None if bookmark is None else bookmark + 1,
            lookback=0 if bookmark is None else lookback.reach(bookmark, deep_until, deep=deep),
            settle=settings.event_settle_seconds,
        )
        return EventRange(span.start - 1, span.end - 1, span.covered - 1, deep=deep)

    def _range(self) -> EventRange:
        if self.range is None:
            self.range = self.plan()
        return self.range

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> str | None:
        """The run's upper bound: no bookmark may claim events newer than it."""
        return iso(self._range().until) if self.selected else None

    @override
    def start_run(self) -> bool:
        """Log the planned range; skip the run when no new event can have settled."""
        rng = self._range()
        if rng.until <= rng.covered:
            self.range = None
            self.logger.info(
                "%s: nothing to read, up to date until %s (events newer than "
                "event_settle_seconds are read by the next run).",
                self.name,
                iso(rng.covered),
            )
            return False
        listable_from = int(self.wall_clock()) - LISTABLE_DAYS * DAY
        self._warn_unlistable(rng, listable_from)
        lookback = ""
        if rng.after < rng.covered:
            kind = "deep lookback" if rng.deep else "lookback"
            lookback = (
                f" (the {kind} re-reads those created up to {iso(rng.covered)}, the bookmark, "
                "for events that reached Intercom late)"
            )
        self.logger.info(
            "%s: reading events created from %s to %s%s, every contact with "
            "max_concurrent_requests=%d; the bookmark moves to %s once every contact is read.",
            self.name,
            iso(max(rng.after + 1, listable_from)),
            iso(rng.until),
            lookback,
            self.settings.max_concurrent_requests,
            iso(rng.until),
        )
        # contact_event_summaries re-reads only the summaries of contacts with new events:
        # note them while reading, so that it need not list every contact's events again.
        wanted = any(
            isinstance(s, ContactFanOutStream) and s.wants_new_events() for s in self.child_streams
        )
        self.new_events = NewEvents(rng.after, rng.until) if wanted else None
        return True

    def _warn_unlistable(self, rng: EventRange, listable_from: int) -> None:
        # Only what this run reads as new: a lookback reaching past the 90 days loses nothing.
        if rng.covered + 1 >= listable_from:
            return
        if self.saved_bookmark() is not None:
            self.logger.warning(
                "%s: the bookmark %s is older than the %d days Intercom lists events for: "
                "events created from %s to %s can no longer be read (contact_event_summaries "
                "still counts them). Run the tap at least every %d days to avoid such gaps.",
                self.name,
                iso(rng.covered),
                LISTABLE_DAYS,
                iso(rng.covered),
                iso(listable_from),
                LISTABLE_DAYS,
            )
        else:
            self.logger.warning(
                "%s: start_date %s is older than the %d days Intercom lists events for: this "
                "first run reads events from %s; older ones cannot be listed (their counts are "
                "in contact_event_summaries).",
                self.name,
                iso(rng.after + 1),
                LISTABLE_DAYS,
                iso(listable_from),
            )

    @override
    def generate_child_contexts(
        self, record: Record, context: Context | None
    ) -> t.Iterable[Context | None]:
        """None per event: contact_event_summaries runs once, after every contact is read."""
        return ()

    @override
    def contact_done(self, result: ContactResult) -> None:
        """Note a contact with events in the range (for contact_event_summaries)."""
        if self.new_events is not None and result.newest is not None:
            self.new_events.contacts.add(result.contact.id)

    @override
    def finish_run(self) -> None:
        """Every contact is read: the bookmark may now claim the whole range."""
        rng = self._range()
        sdk.advance_bookmark(self, iso(rng.until))
        if rng.deep:
            # Like the summaries' full read: a key of our own in the stream's state, written
            # out with the bookmark once every event of the run is out, so a run that dies
            # leaves the deep lookback due.
            sdk.put_state(self, DEEP_LOOKBACK_UNTIL, iso(rng.until))
        self.range = None
        # Only a run that read every contact may tell which contacts have nothing new.
        self.noted, self.new_events = self.new_events, None

    @override
    def read_contact(self, contact: Contact) -> ContactResult:
        """One contact's events in range, newest first, paging until they are older than it."""
        rng = self._range()
        result = ContactResult(contact)
        query = {
            "type": "user",
            "intercom_user_id": contact.id,
            "per_page": self.settings.events_per_page,
        }
        paginator = NextLinkPaginator(f"/events?{urlencode(query)}", self.url_base, "events")
        unreadable = 0
        for body in pages(self.fetch, paginator):
            older = False
            for event in body.get("events") or []:
                created = event.get("created_at") if isinstance(event, dict) else None
                if not isinstance(created, int) or isinstance(created, bool):
                    unreadable += 1
                    continue
                if created > rng.until:
                    continue
                if created <= rng.after:
                    # Events come newest first: the rest of this contact's events are older.
                    # The page is still checked to the end, which costs nothing.
                    older = True
                    continue
                result.records.append(self.record(contact, event, created))
                result.newest = max(result.newest or created, created)
                result.again += created <= rng.covered
            if older:
                break
        result.note = paginator.note
        if unreadable:
            result.note = f"{unreadable} event(s) without a unix created_at were skipped."
        return result

    def record(self, contact: Contact, event: dict[str, t.Any], created: int) -> Record:
        """The record of one event."""
        name = str(event.get("event_name") or "")
        metadata = event.get("metadata")
        return {
            "event_key": event_key(contact.id, name, created),
            "contact_id": contact.id,
            "contact_role": contact.role,
            "user_id": event.get("user_id") or contact.user_id,
            "email": event.get("email") or contact.email,
            "event_name": name,
            "created_at": iso(created),
            "metadata": metadata if isinstance(metadata, dict) else None,
        }
