"""Contact event summaries: per contact and event name, count, first and last time (all time).

A summary changes only when its contact gets a new event, so an incremental run re-reads only
the summaries of contacts whose event list shows an event created since the bookmark or in the
lookback before it (an event that reached Intercom late); a full read (first run, no state, or
every `event_summaries_full_refresh_days`) reads them all.
https://developers.intercom.com/docs/references/rest-api/api.intercom.io/data-events/lisdataevents
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from urllib.parse import urlencode

from singer_sdk import typing as th
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL
from typing_extensions import override

from tap_intercom_export import sdk
from tap_intercom_export.events.fanout import (
    Contact,
    ContactFanOutStream,
    ContactResult,
    rfc3339,
)
from tap_intercom_export.events.lookback import EventLookback
from tap_intercom_export.events.pages import NextLinkPaginator, pages
from tap_intercom_export.events.streams import CONTACT_EVENT_PROPERTIES, ContactEventsStream
from tap_intercom_export.settings import LISTABLE_DAYS
from tap_intercom_export.timerange import DAY, plan_range
from tap_intercom_export.timeutil import iso, unix

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record

#: State key: when the last run that read every contact's summary started.
FULL_READ_AT = "full_read_at"


@dataclass(frozen=True)
class SummaryPlan:
    """What one run of contact_event_summaries reads."""

    #: Unix seconds when the run was planned.
    now: int
    #: The bookmark once the run has read every contact it had to.
    until: int
    #: Re-read contacts with events created after this; None: read every contact (full read).
    since: int | None
    #: Why the run reads what it reads (logged).
    reason: str


class ContactEventSummariesStream(ContactFanOutStream):
    """Per contact and event name: count, first and last time (older than 90 days included)."""

    # Incremental on `last` with one bookmark for the stream, moved (like contact_events') to
    # the run's upper bound once the run is complete: rows not emitted again are unchanged
    # (as far as new events tell), which a full-table stream could not say to its loaders.
    # A child of contact_events, which syncs it once every contact's events are read (the SDK
    # would sync it first, by name), so that it can read the contacts contact_events saw.

    parent_stream_type = ContactEventsStream
    name = "contact_event_summaries"
    primary_keys = ("contact_id", "event_name")
    replication_key = "last"
    is_sorted = False
    record_label = "summaries"

    schema = th.PropertiesList(
        *CONTACT_EVENT_PROPERTIES,
        th.Property("count", th.IntegerType, description="Events of this name, all time"),
        th.Property("first", th.DateTimeType, description="When the first one was created"),
        th.Property("last", th.DateTimeType, description="When the last one was created"),
        th.Property("description", th.StringType),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Nothing is planned until the run starts."""
        super().__init__(*args, **kwargs)
        self._plan: SummaryPlan | None = None
        #: Contacts whose summary this run re-reads, when contact_events told which; None when
        #: the run reads every contact, or checks each one's newest event itself.
        self.changed: set[str] | None = None

    def plan(self) -> SummaryPlan:
        """Full read or only changed contacts, decided from state and settings."""
        now = int(self.wall_clock())
        # Up to `now - event_settle_seconds`, like contact_events (and not capped by end_date:
        # a summary counts every event of all time).
        until = (
            plan_range(
                now=now,
                start_date=None,
                end_date=None,
                resume=None,
                settle=self.settings.event_settle_seconds,
            ).end
            - 1
        )
        state = self.stream_state
        days = self.settings.event_summaries_full_refresh_days
        bookmark = full_at = None
        try:
            bookmark = self.saved_bookmark()
            full_at = unix(state[FULL_READ_AT]) if state.get(FULL_READ_AT) else None
        except (TypeError, ValueError):
            self.logger.warning(
                "%s: unreadable bookmark in state %s: reading all.", self.name, state
            )
            bookmark = None
        since: int | None = None
        if bookmark is None:
            reason = "no bookmark (first run, or run without state such as --full-refresh)"
        elif days == 0:
            reason = "event_summaries_full_refresh_days is 0"
        elif self.replication_method != REPLICATION_INCREMENTAL:
            reason = f"replication method {self.replication_method} in the catalog"
        elif full_at is None or now - full_at >= days * DAY:
            last = iso(full_at) if full_at is not None else "never"
            reason = f"last full read {last}, event_summaries_full_refresh_days={days}"
        elif bookmark < now - LISTABLE_DAYS * DAY:
            # Events created since the bookmark may be too old to be listed any more.
            reason = f"the bookmark {iso(bookmark)} is older than the {LISTABLE_DAYS} days listed"
        else:
            since = bookmark
            reason = f"events created since {iso(bookmark)}"
        return SummaryPlan(now, until, since, reason)

    def _current(self) -> SummaryPlan:
        if self._plan is None:
            self._plan = self.plan()
        return self._plan

    @override
    def wants_new_events(self) -> bool:
        """Selected and incremental: contact_events should note the contacts it sees events of."""
        return self.selected and self._current().since is not None

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> str | None:
        """The run's upper bound: no bookmark may claim events newer than it."""
        return iso(self._current().until)

    @override
    def start_run(self) -> bool:
        """Decide whom to read: everyone, the contacts contact_events saw, or each one checked."""
        plan = self._current()
        self.changed = None
        if plan.since is None:
            self.logger.info(
                "%s: reading every contact's event summary (%s), max_concurrent_requests=%d.",
                self.name,
                plan.reason,
                self.settings.max_concurrent_requests,
            )
            return True
        events = self.tap.streams[ContactEventsStream.name]
        seen = events.noted if isinstance(events, ContactEventsStream) else None
        if seen is not None and seen.after <= plan.since < seen.until:
            # contact_events has just read every contact's events since our bookmark, and
            # those of its lookback before it: a contact with an event there may have one
            # that reached Intercom late, which its summary counts now.
            self.changed = set(seen.contacts)
            self._plan = SummaryPlan(plan.now, seen.until, plan.since, plan.reason)
            self.logger.info(
                "%s: re-reading the summaries of %d contact(s) with events created since %s "
                "(seen by contact_events, its lookback included); the others have nothing new. "
                "Full read every %d day(s).",
                self.name,
                len(self.changed),
                iso(seen.after),
                self.settings.event_summaries_full_refresh_days,
            )
            return True
        if plan.until <= plan.since:
            self.logger.info(
                "%s: nothing to read, up to date until %s.", self.name, iso(plan.since)
            )
            self._plan = None
            return False
        self.logger.info(
            "%s: checking each contact's newest event and re-reading the summaries of those with "
            "events created since %s (events_lookback_hours before the bookmark). Full read "
            "every %d day(s).",
            self.name,
            iso(self._check_since(plan.since)),
            self.settings.event_summaries_full_refresh_days,
        )
        return True

    def _check_since(self, since: int) -> int:
        # A contact whose newest event lies in the lookback may have got it late: its summary
        # counts it now. (An event that is not its newest has a newer one, also checked.)
        return since - EventLookback.from_settings(self.settings).seconds

    @override
    def contacts_to_read(self) -> t.Iterator[Contact]:
        """Every contact, or only those contact_events saw new events of."""
        if self.changed is None:
            yield from self.iter_contacts()
            return
        left = set(self.changed)
        if self.progress is not None:
            self.progress.total = len(left)
        for contact in self.iter_contacts() if left else ():
            if contact.id in left:
                left.discard(contact.id)
                yield contact
                if not left:
                    return

    @override
    def finish_run(self) -> None:
        """Every contact is read: move the bookmark, and remember a full read."""
        plan = self._current()
        sdk.advance_bookmark(self, iso(plan.until))
        if plan.since is None:
            # Like the in-flight jobs of the export streams: a key of our own in the stream's
            # state, written out by the SDK with the bookmark at the end of the stream.
            sdk.put_state(self, FULL_READ_AT, iso(plan.now))
        self._plan = None
        self.changed = None

    def has_new_events(self, contact: Contact, since: int) -> bool:
        """Whether the contact's newest listed event was created after `since`."""
        query = urlencode({"type": "user", "intercom_user_id": contact.id, "per_page": 1})
        events = self.get_json(f"/events?{query}").get("events") or []
        if not events:
            return False  # nothing listed in 90 days, so nothing since a younger bookmark
        created = events[0].get("created_at") if isinstance(events[0], dict) else None
        # An event we cannot date might be new: reading the summary is the safe side.
        return not isinstance(created, int) or created > since

    @override
    def read_contact(self, contact: Contact) -> ContactResult:
        """One contact's summary, every page of it: one record per event name."""
        result = ContactResult(contact)
        since = self._current().since
        if (
            since is not None
            and self.changed is None
            and not self.has_new_events(contact, self._check_since(since))
        ):
            return result
        query = urlencode({"type": "user", "intercom_user_id": contact.id, "summary": "true"})
        # Intercom's example of this response carries pages.next: a contact with many event
        # names may have several pages of summaries.
        paginator = NextLinkPaginator(f"/events?{query}", self.url_base, "summary")
        nameless = 0
        for body in pages(self.fetch, paginator):
            for item in body.get("events") or []:
                if not isinstance(item, dict) or not item.get("name"):
                    nameless += 1
                    continue
                result.records.append(self.record(contact, body, item))
        notes = [paginator.note] if paginator.note else []
        if nameless:
            notes.append(f"{nameless} summary item(s) without an event name were skipped.")
        result.note = " ".join(notes) or None
        return result

    def record(self, contact: Contact, body: dict[str, t.Any], item: dict[str, t.Any]) -> Record:
        """The record of one event name's summary."""
        return {
            "contact_id": contact.id,
            "contact_role": contact.role,
            "user_id": body.get("user_id") or contact.user_id,
            "email": body.get("email") or contact.email,
            "event_name": str(item["name"]),
            "count": item.get("count"),
            "first": rfc3339(item.get("first")),
            "last": rfc3339(item.get("last")),
            "description": item.get("description"),
        }
