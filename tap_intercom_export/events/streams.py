"""Contact data events and event summaries: one record per event, one per (contact, event name).

Intercom lists data events only per contact, newest first, and only those less than 90 days old
(https://developers.intercom.com/docs/references/rest-api/api.intercom.io/data-events/lisdataevents);
the fan-out over contacts lives in fanout.py.
"""

from __future__ import annotations

import sys
import typing as t
from urllib.parse import urlencode

from singer_sdk import typing as th

from tap_intercom_export.client import DEFAULT_START_DAYS, config_time
from tap_intercom_export.events.fanout import (
    DAY,
    DEFAULT_EVENTS_PER_PAGE,
    LISTABLE_DAYS,
    Contact,
    ContactFanOutStream,
    ContactResult,
    EventRange,
    NewEvents,
    event_key,
    page_id,
    positive_int,
    settle_seconds,
)
from tap_intercom_export.events.summaries import (
    CONTACT_EVENT_PROPERTIES,
    ContactEventSummariesStream,
)
from tap_intercom_export.timeutil import iso

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk import Stream
    from singer_sdk.helpers.types import Context, Record


class ContactEventsStream(ContactFanOutStream):
    """Every contact's data events, incremental on `created_at` with one bookmark for the stream."""

    # The bookmark moves only once a run has read every contact, to the upper bound of what
    # the run covered (see plan). Until then the SDK keeps the run's progress in
    # progress_markers and STATE carries the previous bookmark, so a run killed at any moment
    # (SIGTERM, periodic STATE every STATE_MSG_FREQUENCY records) resumes from it: events it
    # had already emitted are emitted again with the same event_key, none is lost.

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

    def per_page(self) -> int:
        """Events asked for per page (`events_per_page`)."""
        return positive_int(self.config, "events_per_page", DEFAULT_EVENTS_PER_PAGE)

    def plan(self) -> EventRange:
        """The creation times this run reads: after the bookmark (or start_date) to now - settle."""
        # The upper bound is fixed when the run starts and lags the clock by
        # event_settle_seconds. Events newer than it are left for the next run even when a
        # worker sees them: contacts are read at different moments of a long run, so the newest
        # event seen says nothing about contacts read earlier, while every event created up to
        # the run's start is listable by the time its contact is read. The lag covers
        # Intercom's ingestion delay and clock differences. Each run covers (bookmark, upper
        # bound]: no gap and no overlap between runs.
        if self.range is not None:
            return self.range
        now = int(self.wall_clock())
        until = now - settle_seconds(self.config)
        end = config_time(self.config, "end_date")
        if end is not None:
            until = min(until, end - 1)
        start = config_time(self.config, "start_date")
        bookmark = self.saved_bookmark()
        listable_from = now - LISTABLE_DAYS * DAY
        if bookmark is not None:
            after = bookmark
            if start is not None and start - 1 > after:
                after = start - 1
            if after + 1 < listable_from:
                self.logger.warning(
                    "%s: the bookmark %s is older than the %d days Intercom lists events for: "
                    "events created from %s to %s can no longer be read (contact_event_summaries "
                    "still counts them). Run the tap at least every %d days to avoid such gaps.",
                    self.name,
                    iso(after),
                    LISTABLE_DAYS,
                    iso(after),
                    iso(listable_from),
                    LISTABLE_DAYS,
                )
        else:
            first = start if start is not None else now - DEFAULT_START_DAYS * DAY
            after = first - 1
            if first < listable_from:
                self.logger.warning(
                    "%s: start_date %s is older than the %d days Intercom lists events for: this "
                    "first run reads events from %s; older ones cannot be listed (their counts are "
                    "in contact_event_summaries).",
                    self.name,
                    iso(first),
                    LISTABLE_DAYS,
                    iso(listable_from),
                )
        self.range = EventRange(after, until)
        return self.range

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> str | None:
        """The run's upper bound: no bookmark may claim events newer than it."""
        return iso(self.plan().until)

    def start_run(self) -> bool:
        """Log the planned range; skip the run when it is empty."""
        rng = self.plan()
        if rng.until <= rng.after:
            self.range = None
            self.logger.info(
                "%s: nothing to read, up to date until %s (events newer than "
                "event_settle_seconds are read by the next run).",
                self.name,
                iso(rng.after),
            )
            return False
        listable_from = int(self.wall_clock()) - LISTABLE_DAYS * DAY
        self.logger.info(
            "%s: reading events created from %s to %s, every contact with "
            "max_concurrent_requests=%d; the bookmark moves to %s once every contact is read.",
            self.name,
            iso(max(rng.after + 1, listable_from)),
            iso(rng.until),
            self.concurrency(),
            iso(rng.until),
        )
        # contact_event_summaries re-reads only the summaries of contacts with new events:
        # note them while reading, so that it need not list every contact's events again.
        wanted = any(
            isinstance(s, ContactFanOutStream) and s.wants_new_events()
            for s in self._tap.streams.values()
        )
        self.new_events = NewEvents(rng.after, rng.until) if wanted else None
        return True

    def contact_done(self, result: ContactResult) -> None:
        """Note a contact with events in the range (for contact_event_summaries)."""
        if self.new_events is not None and result.newest is not None:
            self.new_events.newest[result.contact.id] = result.newest

    def finish_run(self) -> None:
        """Every contact is read: the bookmark may now claim the whole range."""
        rng = t.cast("EventRange", self.range)
        self.state_manager.increment_state(
            {self.replication_key: iso(rng.until)}, replication_key=self.replication_key
        )
        self.range = None
        # Only a run that read every contact may tell which contacts have nothing new.
        self.shared().new_events, self.new_events = self.new_events, None

    def read_contact(self, contact: Contact) -> ContactResult:
        """One contact's events in range, newest first, paging until they are older than it."""
        rng = self.plan()
        result = ContactResult(contact)
        url = "/events?" + urlencode(
            {"type": "user", "intercom_user_id": contact.id, "per_page": self.per_page()}
        )
        seen = {page_id(url)}
        unreadable = 0
        while True:
            body = self.get_json(url)
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
            if older:
                break
            nxt = (body.get("pages") or {}).get("next")
            if not nxt or not isinstance(nxt, str):
                break
            url = self.api_path(nxt)
            if page_id(url) in seen:
                result.note = (
                    "Intercom sent an events page link it had already sent; "
                    "stopped paging this contact."
                )
                break
            seen.add(page_id(url))
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


EVENT_STREAMS: list[type[ContactFanOutStream]] = [ContactEventsStream, ContactEventSummariesStream]


def sync_order(stream: Stream) -> tuple[str, int]:
    """Sort key: by name, but contact_event_summaries right after contact_events."""
    # The summaries stream re-reads only contacts with new events, which contact_events notes
    # while it reads them, so it must run first (the SDK sorts by name: summaries first).
    if isinstance(stream, ContactEventSummariesStream):
        return ContactEventsStream.name, 1
    return stream.name, 0
