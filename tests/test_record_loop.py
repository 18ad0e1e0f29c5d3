"""The message_* streams' own record loop writes what the SDK's loop writes, byte for byte.

Each comparison runs the same sync twice against fakes with the same data: once as the tap runs
(its loop, sdk.TapRecordLoop), once with the SDK's loop forced (`tap_loop_applies` False). The
whole stdout must be the same bytes but for `time_extracted` (the moment a record is read) and
the job ledger's signpost (the moment the run starts).
"""

from __future__ import annotations

import io
import json
import re
import sys

import pytest
from singer_sdk.singerlib import RecordMessage, SchemaMessage, StateMessage

from tap_intercom_export import sdk
from tap_intercom_export.content.streams import MessageStatStream
from tap_intercom_export.tap import TapIntercomExport
from tests.conftest import export_config, export_streams, run_tap, selection_catalog

TIME_EXTRACTED = re.compile(rb',"time_extracted":"[0-9T:.+-]+Z?"')
# The SDK's signpost of the job ledger is the moment the run starts.
SIGNPOST = re.compile(rb'"replication_key_signpost":"[0-9T:.+-]+"')
ONE_WINDOW = "2023-10-26T00:00:00Z"
QUESTION = "How likely are you to recommend us to family and friends?"


@pytest.fixture
def loops(monkeypatch):
    """Count the blocks the tap's loop writes; `force_sdk()` makes every stream use the SDK's."""
    written: list[str] = []
    original = sdk.BufferedMsgSpecWriter.write_records

    def spy(self, stream, lines, version):
        written.append(stream)
        return original(self, stream, lines, version)

    monkeypatch.setattr(sdk.BufferedMsgSpecWriter, "write_records", spy)

    class Loops:
        blocks = written

        @staticmethod
        def force_sdk() -> None:
            monkeypatch.setattr(sdk.TapRecordLoop, "tap_loop_applies", lambda _self: False)

    return Loops


def both_paths(make_fake, loops, clock, config_overrides=None, *, catalog_edit=None):
    """The tap's run and the SDK loop's run of the same sync: (tap run, SDK run)."""
    runs = []
    for forced in (False, True):
        clock.now = 0.0  # both runs at the same virtual times
        fake = make_fake(invent_kind=True)
        config = export_config(fake, **(config_overrides or {}))
        catalog = selection_catalog(config, {*export_streams(), "message_other_statistics"})
        if catalog_edit:
            catalog_edit(catalog)
        if forced:
            loops.force_sdk()
        before = len(loops.blocks)
        runs.append(run_tap(config, catalog=catalog))
        assert (len(loops.blocks) > before) is not forced, "the loop that ran is not the one asked"
    return runs


def without_time_extracted(raw: bytes) -> bytes:
    return SIGNPOST.sub(b"", TIME_EXTRACTED.sub(b"", raw))


def test_the_tap_loop_writes_the_sdk_loop_bytes(make_fake, clock, loops) -> None:
    tap, sdk_run = both_paths(make_fake, loops, clock)
    assert len(tap.records("message_receipts")) > 400
    assert tap.records("message_other_statistics")
    assert without_time_extracted(tap.raw) == without_time_extracted(sdk_run.raw)
    # Every RECORD of the tap's loop says when it was read, as the SDK's do.
    records = [m for m in tap.messages if m["type"] == "RECORD"]
    assert all(m["time_extracted"].endswith(("Z", "+00:00")) for m in records)
    assert len(TIME_EXTRACTED.findall(tap.raw)) == len(records)


def test_periodic_states_come_after_the_same_records(make_fake, clock, loops, monkeypatch) -> None:
    """A STATE every 7 records: the tap's blocks are cut exactly where the SDK writes one."""
    monkeypatch.setattr(MessageStatStream, "STATE_MSG_FREQUENCY", 7)
    tap, sdk_run = both_paths(make_fake, loops, clock)
    assert without_time_extracted(tap.raw) == without_time_extracted(sdk_run.raw)
    states = [i for i, m in enumerate(tap.messages) if m["type"] == "STATE"]
    assert len(states) > 100


def deselect(catalog: dict, stream: str, *crumbs: tuple[str, ...]) -> None:
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)
    for crumb in crumbs:
        entry["metadata"].append({"breadcrumb": list(crumb), "metadata": {"selected": False}})


@pytest.mark.parametrize("nested", [False, True], ids=["top-level", "nested"])
def test_deselected_properties_are_left_out_alike(make_fake, clock, loops, nested) -> None:
    def edit(catalog: dict) -> None:
        deselect(catalog, "message_receipts", ("properties", "email"), ("properties", "name"))
        if nested:
            crumb = ("properties", "extra_columns", "properties", QUESTION)
            deselect(catalog, "message_answers_combined", crumb)

    tap, sdk_run = both_paths(make_fake, loops, clock, {"end_date": ONE_WINDOW}, catalog_edit=edit)
    assert without_time_extracted(tap.raw) == without_time_extracted(sdk_run.raw)
    receipts = tap.records("message_receipts")
    assert receipts and all("email" not in r and "name" not in r for r in receipts)
    answers = tap.records("message_answers_combined")
    assert answers and all((QUESTION in r["extra_columns"]) is not nested for r in answers)


# -- when the SDK's loop runs ------------------------------------------------------------------


def stream_of(config: dict, name: str = "message_receipts"):
    tap = TapIntercomExport(config=config, catalog=selection_catalog(config, set(export_streams())))
    return tap.streams[name]


@pytest.mark.parametrize(
    "extra",
    [
        {"stream_maps": {"message_receipts": {"email": "None"}}},
        {"stream_maps": {"receipts_copy": {"__source__": "message_receipts"}}},
        {"flattening_enabled": True, "flattening_max_depth": 1},
    ],
    ids=["map changes records", "map copies the stream", "flattening"],
)
def test_per_record_sdk_features_keep_the_sdk_loop(make_fake, extra) -> None:
    fake = make_fake()
    assert stream_of(export_config(fake)).tap_loop_applies()
    assert not stream_of(export_config(fake, **extra)).tap_loop_applies()


def test_a_dry_run_keeps_the_sdk_loop(make_fake) -> None:
    stream = stream_of(export_config(make_fake()))
    stream.ABORT_AT_RECORD_COUNT = 1
    assert not stream.tap_loop_applies()


def test_maps_and_flattening_apply_through_the_sdk_loop(make_fake, waits, loops) -> None:
    fake = make_fake()
    config = export_config(
        fake,
        end_date=ONE_WINDOW,
        stream_maps={"message_receipts": {"email": "None"}},
        flattening_enabled=True,
        flattening_max_depth=1,
    )
    run = run_tap(
        config, select=["message_export_jobs", "message_receipts", "message_answers_combined"]
    )
    assert "message_receipts" not in loops.blocks and "message_answers_combined" not in loops.blocks
    receipts = run.records("message_receipts")
    assert receipts and all(r["email"] is None for r in receipts)
    # Flattening writes an object without declared properties as JSON text.
    answers = run.records("message_answers_combined")
    assert answers and all(json.loads(r["extra_columns"])[QUESTION] for r in answers)


# -- stdout ------------------------------------------------------------------------------------


class Unbuffered(io.RawIOBase):
    """A raw stdout, as PYTHONUNBUFFERED gives: every write reaches it; it takes at most 4 KiB."""

    def __init__(self) -> None:
        """Nothing written yet."""
        self.data = bytearray()
        self.writes = 0

    def writable(self) -> bool:
        """A stdout."""
        return True

    def write(self, b) -> int:
        """Take the first 4 KiB."""
        self.writes += 1
        taken = bytes(b[:4096])
        self.data += taken
        return len(taken)


def test_the_tap_owns_its_buffer_whatever_stdout_is(make_fake, waits, monkeypatch) -> None:
    raw = Unbuffered()
    # `python -u`'s stdout: a text layer writing through to the raw file, no buffer between.
    stdout = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    monkeypatch.setattr(sys, "stdout", stdout)
    fake = make_fake()
    config = export_config(fake, end_date="2023-11-01T00:00:00Z")
    tap = TapIntercomExport(config=config, catalog=selection_catalog(config, set(export_streams())))
    tap.sync_all()
    messages = [json.loads(line) for line in raw.data.decode().splitlines()]
    records = [m for m in messages if m["type"] == "RECORD"]
    states = [m for m in messages if m["type"] == "STATE"]
    assert len(records) > 400
    # Partial writes are completed; the writes are a few per STATE, not one per record.
    assert raw.writes < len(records) / 4
    assert raw.writes <= 3 * len(states) + len(raw.data) // 4096 + 30


class Sink(io.BytesIO):
    """A stdout buffer that remembers what it held at each flush."""

    def __init__(self) -> None:
        """Nothing flushed yet."""
        super().__init__()
        self.flushed: list[bytes] = []

    def flush(self) -> None:
        """Remember what is here now."""
        self.flushed.append(self.getvalue())


def test_records_wait_for_the_next_state_and_states_go_out_at_once(monkeypatch) -> None:
    sink = Sink()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(sink, encoding="utf-8"))
    writer = sdk.BufferedMsgSpecWriter()
    writer.write_message(RecordMessage(stream="s", record={"a": 1}))
    writer.write_records("s", b'{"a":2}\n{"a":3}\n', None)
    assert sink.getvalue() == b""
    writer.write_message(StateMessage(value={"bookmarks": {}}))
    lines = [json.loads(line) for line in sink.flushed[-1].splitlines()]
    assert [m["type"] for m in lines] == ["RECORD", "RECORD", "RECORD", "STATE"]
    assert [m["record"]["a"] for m in lines[:3]] == [1, 2, 3]
    writer.write_message(SchemaMessage("s", {"type": "object"}, []))
    assert json.loads(sink.flushed[-1].splitlines()[-1])["type"] == "SCHEMA"


def test_a_skipped_state_still_writes_out_the_records_before_it(monkeypatch) -> None:
    sink = Sink()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(sink, encoding="utf-8"))
    writer = sdk.BufferedMsgSpecWriter()
    states = sdk.FlushingStateWriter(writer)
    states.write_state({"bookmarks": {"s": {"x": 1}}})
    writer.write_records("s", b'{"a":1}\n', None)
    states.write_state({"bookmarks": {"s": {"x": 1}}})  # unchanged: no STATE, records out
    lines = [json.loads(line)["type"] for line in sink.getvalue().splitlines()]
    assert lines == ["STATE", "RECORD"]


def test_records_left_at_exit_go_to_the_stdout_they_were_written_for(monkeypatch) -> None:
    first, later = Sink(), Sink()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(first, encoding="utf-8"))
    writer = sdk.BufferedMsgSpecWriter()
    writer.write_records("s", b'{"a":1}\n', 7)
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(later, encoding="utf-8"))
    sdk.output._flush_at_exit()
    message = json.loads(first.getvalue())
    assert (message["type"], message["stream"], message["record"], message["version"]) == (
        "RECORD",
        "s",
        {"a": 1},
        7,
    )
    assert later.getvalue() == b""


def test_the_envelope_is_the_one_the_sdk_writes() -> None:
    message = RecordMessage(stream='s"é', record={"a": [1, None]}, version=3)
    expected = sdk.BufferedMsgSpecWriter().format_message(message)
    sink = Sink()
    out = io.TextIOWrapper(sink, encoding="utf-8")
    old, sys.stdout = sys.stdout, out
    try:
        writer = sdk.BufferedMsgSpecWriter()
        writer.write_records('s"é', sdk.writer_encoder.encode_lines([{"a": [1, None]}]), 3)
        writer.flush()
    finally:
        sys.stdout = old
    assert TIME_EXTRACTED.sub(b"", sink.getvalue()) == bytes(expected)
