"""The fake workspace's contacts and data events: deterministic, every metadata type Intercom stores."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

DAY = 86400

EVENT_NAMES = ["signed-up", "ordered-item", "invited-friend", "viewed-pricing"]
#: Every third generated contact is a lead (no external_id), the others users.
LEAD_EVERY = 3
#: Every seventh generated contact has no email.
NO_EMAIL_EVERY = 7


@dataclass
class FakeContact:
    """A user or lead of the workspace."""

    id: str
    role: str
    external_id: str | None
    email: str | None
    created_at: int

    def body(self) -> dict[str, t.Any]:
        """The contact object as `GET /contacts` returns it."""
        return {
            "type": "contact",
            "id": self.id,
            "workspace_id": "fakews",
            "external_id": self.external_id,
            "role": self.role,
            "email": self.email,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass
class FakeEvent:
    """One data event of a contact."""

    name: str
    created_at: int
    metadata: dict[str, t.Any] | None = None
    #: Intercom keeps milliseconds: `before` links name them. Unique per contact in the fake.
    millis: int = 0

    @property
    def created_ms(self) -> int:
        """Creation time in milliseconds, what `before` compares with."""
        return self.created_at * 1000 + self.millis


def free_millis(events: list[FakeEvent], created_at: int) -> int:
    """A millisecond within `created_at` that no event of the contact has yet."""
    taken = {e.millis for e in events if e.created_at == created_at}
    return next(ms for ms in range(1000) if ms not in taken)


def _metadata(name: str, created_at: int, n: int) -> dict[str, t.Any] | None:
    """Metadata of every type Intercom stores: text, numbers, dates, links, rich links, money."""
    if name == "signed-up":
        return {
            "plan": ["free", "pro", "team"][n % 3],
            "seats": n % 5 + 1,
            "trial_end_date": created_at + 14 * DAY,
        }
    if name == "ordered-item":
        return {
            "order_number": f"ord-{n:05d}",
            "invoice": f"https://shop.example.com/invoices/{n}",
            "price": {"amount": 3499 + n, "currency": "eur"},
            "ratio": 0.25 + n % 4,
        }
    if name == "invited-friend":
        return {
            "invitee_email": f"friend{n}+invite@example.org",
            "article": {"url": f"https://help.example.com/a/{n}", "value": "Inviting your team"},
        }
    return None


def generate(
    now: int, contacts: int, per_contact: int, days: int
) -> tuple[list[FakeContact], dict[str, list[FakeEvent]]]:
    """A deterministic workspace: every third contact a lead, events over `days` before `now`."""
    people: list[FakeContact] = []
    events: dict[str, list[FakeEvent]] = {}
    span = days * DAY
    for i in range(contacts):
        cid = f"6{i:023x}"
        lead = i % LEAD_EVERY == LEAD_EVERY - 1
        email = (
            None
            if i % NO_EMAIL_EVERY == NO_EMAIL_EVERY - 1
            else (f"person{i}+tag@example.com" if i % 2 else f"person{i}@example.com")
        )
        contact = FakeContact(
            cid, "lead" if lead else "user", None if lead else f"user-{i}", email, now - span - i
        )
        people.append(contact)
        count = (i * 5) % (per_contact + 1)
        seen: set[tuple[str, int]] = set()
        mine: list[FakeEvent] = []
        for j in range(count):
            name = EVENT_NAMES[(i + j) % len(EVENT_NAMES)]
            # Knuth's multiplicative hash spreads events evenly over the span, deterministically.
            created = now - 1 - ((i * 1_000_003 + j * 7_919) * 2_654_435_761 % 2**32) % span
            if (name, created) in seen:
                continue
            seen.add((name, created))
            event = FakeEvent(name, created, _metadata(name, created, i * 100 + j))
            event.millis = free_millis(mine, created)
            mine.append(event)
        events[cid] = mine
    return people, events
