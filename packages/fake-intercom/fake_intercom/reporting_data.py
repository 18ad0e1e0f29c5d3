"""The fake's reporting datasets: attributes as Intercom lists them, and deterministic rows.

Dataset ids, their time attributes and the attribute namespaces are those public client code
sends to real workspaces (`conversation` on `conversation_started_at`, `tickets` on
`ticket_created_at`, `admin_status_change` on `teammate_status_period_started_at`); an
attribute's shape (`id`, `qualified_id` from 2.16 and in Preview, `name`) is the `get_datasets`
response of the OpenAPI descriptions (github.com/intercom/Intercom-OpenAPI).
Which ids custom attributes have is not documented: here they are `<ns>_custom_attribute.<n>`,
headed in the CSV by their display name (standard attributes by their plain id).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

STANDARD = ("standard", "timestamp", "duration")
CHANNELS = ["Chat", "Email", "Phone", "WhatsApp"]
TEAMS = ["Unassigned", "Support, EMEA", 'Billing "Tier 2"']


@dataclass(frozen=True)
class FakeAttribute:
    """An attribute: its ids, display name and what its values look like."""

    id: str
    namespace: str
    name: str
    kind: str  # id, ts, ts_late, dur, label, team, text, custom

    @property
    def qualified_id(self) -> str:
        """`timestamp.conversation_started_at`."""
        return f"{self.namespace}.{self.id}"

    @property
    def header(self) -> str:
        """How the CSV heads its column: plain id if standard, else the display name."""
        return self.id if self.namespace in STANDARD else self.name


def _attr(qualified: str, name: str, kind: str) -> FakeAttribute:
    namespace, attr_id = qualified.split(".", 1)
    return FakeAttribute(attr_id, namespace, name, kind)


def _custom(namespace: str, n: int, name: str) -> FakeAttribute:
    return FakeAttribute(f"{namespace}_custom_attribute.{n}", namespace, name, "custom")


@dataclass
class FakeDataset:
    """A dataset whose row i has its time attribute at `start + i * step`."""

    id: str
    name: str
    time_attribute: str
    step: int
    attributes: list[FakeAttribute]

    def api(self, *, qualified: bool) -> dict[str, t.Any]:
        """The `get_datasets` entry."""
        attrs = []
        for a in self.attributes:
            entry = {"id": a.id, "name": a.name}
            if qualified:
                entry = {"id": a.id, "qualified_id": a.qualified_id, "name": a.name}
            attrs.append(entry)
        return {
            "id": self.id,
            "name": self.name,
            "description": f"{self.name} data",
            "default_time_attribute_id": self.time_attribute,
            "attributes": attrs,
        }


def datasets() -> list[FakeDataset]:
    """The workspace's datasets: one with over a hundred attributes, one without row id."""
    conversation_std = [
        _attr("standard.conversation_id", "Conversation ID", "id"),
        _attr("timestamp.conversation_started_at", "Conversation started at", "ts"),
        _attr("timestamp.conversation_closed_at", "Conversation closed at", "ts_late"),
        _attr("timestamp.first_response_at", "First response at", "ts_late"),
        _attr("duration.time_to_first_response", "Time to first response", "dur"),
        _attr("duration.time_to_close", "Time to close", "dur"),
        _attr("standard.channel", "Channel", "label"),
        _attr("standard.state", "State", "label"),
        _attr("team.team_assigned", "Team currently assigned", "team"),
        _attr("teammate.teammate_assigned", "Teammate currently assigned", "team"),
        _attr("standard.conversation_rating", "Conversation rating", "label"),
        _attr("standard.conversation_remark", "Conversation rating remark", "text"),
        *(_attr(f"standard.fin_metric_{n}", f"Fin metric {n}", "label") for n in range(1, 21)),
    ]
    custom = [
        _custom("people", 1, "Account tier"),
        _custom("people", 2, "Brand"),
        _custom("conversation", 3, "Brand"),  # the same display name, on the conversation
        *(_custom("conversation", n, f"Custom field {n}") for n in range(4, 84)),
    ]
    return [
        FakeDataset(
            "conversation",
            "Conversation",
            "conversation_started_at",
            7200,
            conversation_std + custom,
        ),
        FakeDataset(
            "tickets",
            "Tickets",
            "ticket_created_at",
            5 * 3600,
            [
                _attr("standard.ticket_id", "Ticket ID", "id"),
                _attr("timestamp.ticket_created_at", "Ticket created at", "ts"),
                _attr("standard.ticket_type", "Ticket type", "label"),
                _attr("standard.ticket_state", "Ticket state", "label"),
                _attr("duration.time_to_resolve", "Time to resolve", "dur"),
                _custom("ticket", 1, "Priority level"),
            ],
        ),
        FakeDataset(
            "admin_status_change",
            "Teammate status",
            "teammate_status_period_started_at",
            3 * 3600,
            [
                _attr("teammate.teammate", "Teammate", "team"),
                _attr(
                    "timestamp.teammate_status_period_started_at", "Status period started at", "ts"
                ),
                _attr("duration.teammate_status_period_duration", "Status period duration", "dur"),
                _attr("standard.away_status_reason", "Away reason", "label"),
            ],
        ),
    ]


#: Kinds of attribute whose values are instants (written as local text, see reporting.py).
TIME_KINDS = frozenset({"ts", "ts_late"})


def value(attr: FakeAttribute, i: int, ts: int) -> str | int | None:
    """The value of `attr` in row i: text, or for a time its unix seconds (None: empty)."""
    kind = attr.kind
    if kind == "id":
        return str(100000 + i)
    if kind == "ts":
        return ts
    if kind == "ts_late":
        return None if i % 3 == 0 else ts + 600 + i % 7 * 60
    if kind == "dur":
        # Intercom writes durations in seconds; one row in 13 has a value that is not a number.
        return "n/a" if i % 13 == 5 else str(60 + i % 50 * 30)
    if kind == "label":
        return CHANNELS[(i + len(attr.id)) % len(CHANNELS)]
    if kind == "team":
        return TEAMS[i % len(TEAMS)]
    if kind == "text":
        return "" if i % 2 else f'Great, thanks!\n"Row {i}", really'
    return "" if i % 4 == 0 else f"{attr.name} {(i + len(attr.id)) % 5}"
