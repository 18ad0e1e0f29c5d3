"""The small decisions of the contact fan-out, on a stub: whom a run reads, when a summary is read again."""

from __future__ import annotations

import typing as t

import pytest

from tap_intercom_export.events.fanout import Contact, ContactFanOutStream
from tap_intercom_export.events.summaries import ContactEventSummariesStream

SINCE = 1_700_000_000
CONTACT = Contact(id="c1", role="user", user_id=None, email=None)


class Answers:
    """Stands in for a stream: `get_json` gives one canned answer and records the path."""

    def __init__(self, answer: dict[str, t.Any]) -> None:
        """Answer every request with `answer`."""
        self.answer = answer
        self.paths: list[str] = []

    def get_json(self, path: str) -> dict[str, t.Any]:
        """The canned answer."""
        self.paths.append(path)
        return self.answer


@pytest.mark.parametrize(
    ("events", "new"),
    [
        ([], False),  # nothing listable in 90 days
        ([{"created_at": SINCE}], False),  # exactly at the bookmark: already read
        ([{"created_at": SINCE - 1}], False),
        ([{"created_at": SINCE + 1}], True),
        ([{"event_name": "no-time"}], True),  # an event we cannot date might be new
        ([{"created_at": "2023-11-14"}], True),
        (["not an object"], True),
        ([None], True),
    ],
)
def test_a_summary_is_read_again_only_after_an_event_newer_than_the_bookmark(events, new) -> None:
    stub = Answers({"type": "event.list", "events": events})
    assert ContactEventSummariesStream.has_new_events(stub, CONTACT, SINCE) is new
    # One request: the newest event only.
    [path] = stub.paths
    assert "per_page=1" in path and "intercom_user_id=c1" in path


def test_a_fan_out_stream_that_says_nothing_reads_everyone_and_asks_nothing_of_its_parent() -> None:
    assert ContactFanOutStream.start_run(object()) is True
    assert ContactFanOutStream.wants_new_events(object()) is False
