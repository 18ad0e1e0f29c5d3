"""What tap_intercom_export/sdk.py relies on, checked against the installed singer-sdk.

One test per reliance. Each builds the smallest tap that exercises the SDK behaviour directly
(never through the tap's own streams), and fails with a message that names the behaviour an SDK
release changed, so an upgrade says what to look at in sdk.py.
"""

from __future__ import annotations

import io
import json
import sys
import typing as t

import pytest
import requests
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.singerlib import RecordMessage, StateMessage
from singer_sdk.streams import RESTStream

from tap_intercom_export import sdk

SDK = "singer-sdk changed: "

SCHEMA = th.PropertiesList(
    th.Property("n", th.IntegerType),
    th.Property("at", th.DateTimeType),
    th.Property("nested", th.ObjectType(th.Property("keep", th.StringType), th.Property("drop", th.StringType))),
).to_dict()  # fmt: skip
ROWS = [{"n": i, "at": f"2024-01-0{i}T00:00:00+00:00", "nested": {"keep": "k", "drop": "d"}} for i in (1, 2, 3)]  # fmt: skip


class Numbers(Stream):
    """Three records, sorted on `at`."""

    name = "numbers"
    schema = SCHEMA
    replication_key = "at"
    is_sorted = True
    calls: t.ClassVar[list[str]] = []

    def get_records(self, context):  # noqa: ARG002, D102 - the SDK's hook
        self.calls.append(f"{self.name}.get_records")
        yield from (dict(r) for r in ROWS)


class Unsorted(Numbers):
    """The same records, not sorted."""

    name = "unsorted"
    is_sorted = False


class Child(Numbers):
    """A child of `numbers` that the parent syncs itself."""

    name = "child"
    parent_stream_type = Numbers


class Web(RESTStream):
    """A REST stream whose session never touches the network."""

    name = "web"
    schema = SCHEMA
    url_base = "https://api.example.com"
    path = "/x"
    validated: t.ClassVar[list[int]] = []

    def validate_response(self, response):  # noqa: D102 - the SDK's hook
        self.validated.append(response.status_code)


def make_tap(*streams: type[Stream], config: dict | None = None) -> Tap:
    class ContractTap(Tap):
        name = "tap-contract"
        config_jsonschema = th.PropertiesList().to_dict()

        def discover_streams(self):
            return [cls(self) for cls in streams]

    return ContractTap(config=config or {}, state={}, setup_mapper=True)


def messages(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def states(capsys) -> list[dict]:
    return [m["value"] for m in messages(capsys) if m["type"] == "STATE"]


# -- requests -----------------------------------------------------------------------------------


class _Session(requests.Session):
    """A session that never touches the network: answers 200, records what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **_kwargs) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code = 200
        response.request = request
        response.url = request.url
        return response


def test_request_sends_with_the_session_of_the_moment_and_validates(monkeypatch) -> None:
    tap = make_tap(Web)
    stream = tap.streams["web"]
    sessions = [_Session(), _Session()]
    monkeypatch.setattr(Web, "requests_session", property(lambda _self: sessions[0]))
    prepared = stream.build_prepared_request(method="GET", url="https://api.example.com/x")
    first = sdk.send(stream, prepared)
    sessions.reverse()
    sdk.send(stream, prepared)
    assert first.status_code == 200 and first.request is prepared, (
        SDK + "RESTStream._request(prepared_request, context) no longer returns the response "
        "of the request it is given (sdk.send)"
    )
    assert [len(s.sent) for s in sessions] == [1, 1], (
        SDK + "RESTStream._request no longer sends through `self.requests_session` read at each "
        "call (the contact fan-out gives each worker thread its own session)"
    )
    assert Web.validated == [200, 200], (
        SDK + "RESTStream._request no longer calls validate_response (sdk.send relies on it for "
        "Intercom's errors)"
    )


# -- state --------------------------------------------------------------------------------------


def test_bookmark_of_a_sorted_stream_moves_at_once() -> None:
    class Windowed(Numbers):
        name = "windowed"
        check_sorted = False  # as jobs/stream.py ExportJobStream

    stream = make_tap(Windowed).streams["windowed"]
    sdk.advance_bookmark(stream, "2024-02-01T00:00:00+00:00")
    assert stream.stream_state.get("replication_key_value") == "2024-02-01T00:00:00+00:00", (
        SDK + "state_manager.increment_state({key: value}, replication_key=key) no longer sets "
        "a sorted stream's replication_key_value (sdk.advance_bookmark)"
    )
    sdk.advance_bookmark(stream, "2024-01-15T00:00:00+00:00")
    assert stream.stream_state["replication_key_value"] == "2024-01-15T00:00:00+00:00", (
        SDK + "a sorted stream with check_sorted off no longer takes a bookmark that moves back "
        "(export streams move it back to a window's start while the window is emitted)"
    )


def test_bookmark_of_an_unsorted_stream_waits_for_the_end_of_its_sync(capsys) -> None:
    tap = make_tap(Unsorted)
    stream = tap.streams["unsorted"]
    stream.stream_state["replication_key_signpost"] = "2024-02-01T00:00:00+00:00"
    sdk.advance_bookmark(stream, "2024-03-01T00:00:00+00:00")
    assert "replication_key_value" not in stream.stream_state, (
        SDK + "an unsorted stream's bookmark no longer waits in progress_markers until its "
        "sync ends (contact_events must not claim a range before every contact is read)"
    )
    sdk.commit_state(stream)
    assert stream.stream_state.get("replication_key_value") == "2024-02-01T00:00:00+00:00", (
        SDK + "StreamStateManager.finalize_state no longer promotes progress_markers to the "
        "bookmark capped by the signpost (sdk.commit_state)"
    )
    assert not {"progress_markers", "replication_key_signpost"} & set(stream.stream_state), (
        SDK + "finalize_state no longer clears progress markers and the signpost"
    )
    sdk.commit_state(stream)
    assert stream.stream_state["replication_key_value"] == "2024-02-01T00:00:00+00:00", (
        SDK + "finalizing a stream's state twice now changes it"
    )
    assert states(capsys)[-1]["bookmarks"]["unsorted"]["replication_key_value"] == (
        "2024-02-01T00:00:00+00:00"
    ), SDK + "commit_state's STATE does not carry the final bookmark"


def test_own_state_keys_survive_and_are_written(capsys) -> None:
    tap = make_tap(Numbers)
    stream = tap.streams["numbers"]
    sdk.put_state(stream, "in_flight_jobs", [{"job_identifier": "j"}])
    sdk.write_state_now(stream)
    assert states(capsys) == [{"bookmarks": {"numbers": {"in_flight_jobs": [{"job_identifier": "j"}]}}}], (
        SDK + "Stream._write_state_message no longer writes the tap state, with the keys the tap "
        "keeps in stream_state, when state_manager.is_flushed is False (sdk.write_state_now)"
    )  # fmt: skip
    sdk.write_state_now(stream)
    stream.sync()
    final = states(capsys)[-1]["bookmarks"]["numbers"]
    assert final.get("in_flight_jobs") == [{"job_identifier": "j"}], (
        SDK + "a sync (finalizing the state) no longer keeps keys the SDK does not know "
        "(in_flight_jobs, last_lookback_at, full_read_at: sdk.put_state)"
    )


def test_state_is_written_only_when_not_flushed(capsys) -> None:
    stream = make_tap(Numbers).streams["numbers"]
    stream.state_manager.is_flushed = True
    stream._write_state_message()
    assert states(capsys) == [], (
        SDK + "Stream._write_state_message now writes even when state_manager.is_flushed is "
        "True: sdk.write_state_now's reset of the flag is no longer what makes it write"
    )
    sdk.write_state_now(stream)
    assert len(states(capsys)) == 1 and stream.state_manager.is_flushed, (
        SDK + "_write_state_message no longer sets state_manager.is_flushed once it has written"
    )


# -- streams the tap syncs itself ---------------------------------------------------------------


def test_child_streams_are_left_to_their_parent(capsys) -> None:
    Numbers.calls = []

    class Parent(Numbers):
        def generate_child_contexts(self, record, context):  # noqa: ARG002 - the SDK's hook
            return ()

        def get_records(self, context):
            yield from super().get_records(context)
            sdk.sync_children(self)

    Child.parent_stream_type = Parent
    try:
        tap = make_tap(Parent, Child)
        tap.sync_all()
    finally:
        Child.parent_stream_type = Numbers
    assert Numbers.calls == ["numbers.get_records", "child.get_records"], (
        SDK + "Tap.sync_all now syncs a stream that declares parent_stream_type itself, or a "
        "child's sync() no longer runs when its parent calls it (sdk.sync_children: "
        "contact_event_summaries after contact_events)"
    )
    out = messages(capsys)
    child_records = [m for m in out if m["type"] == "RECORD" and m["stream"] == "child"]
    assert len(child_records) == 3, SDK + "a child synced by sdk.sync_children lost records"
    assert (
        out[-1]["type"] == "STATE"
        and out[-1]["value"]["bookmarks"]["child"]["replication_key_value"] == ROWS[-1]["at"]
    ), SDK + "a child synced by sdk.sync_children has no final bookmark"


def test_a_stream_synced_from_inside_another_writes_at_once(capsys) -> None:
    class Ledger(Numbers):
        name = "tally"  # synced after "numbers" (Tap.sync_all goes by name)
        pending: t.ClassVar[list[dict]] = []

        def get_records(self, context):  # noqa: ARG002 - the SDK's hook
            while self.pending:
                yield self.pending.pop(0)

    class Outer(Numbers):
        def get_records(self, context):
            for record in super().get_records(context):
                yield record
                Ledger.pending.append(dict(record))
                sdk.sync_now(self._tap.streams["tally"])

    tap = make_tap(Outer, Ledger)
    tap.sync_all()
    out = messages(capsys)
    kinds = [(m["type"], m.get("stream")) for m in out if m["type"] in ("RECORD", "SCHEMA")]
    # Each outer record, then at once the ledger's SCHEMA and its record; then the ledger's turn.
    each = [("RECORD", "numbers"), ("SCHEMA", "tally"), ("RECORD", "tally")]
    assert kinds == [("SCHEMA", "numbers"), *each * 3, ("SCHEMA", "tally")], (
        SDK + "Stream.sync() called from inside another stream's sync no longer writes the "
        "stream's records at once, or Tap.sync_all no longer syncs it in its turn (sdk.sync_now: "
        "reporting_export_jobs)"
    )
    ledger_states = [
        i for i, m in enumerate(out) if m["type"] == "STATE" and "tally" in m["value"]["bookmarks"]
    ]
    first_ledger_record = next(
        i for i, m in enumerate(out) if m.get("stream") == "tally" and m["type"] == "RECORD"
    )
    assert ledger_states and ledger_states[0] > first_ledger_record, (
        SDK + "a stream synced by sdk.sync_now writes no STATE after its records"
    )
    last = [m["value"] for m in out if m["type"] == "STATE"][-1]
    assert last["bookmarks"]["numbers"]["replication_key_value"] == ROWS[-1]["at"], (
        SDK + "the outer stream's sync no longer ends normally after sdk.sync_now"
    )


def test_children_sync_on_a_record_before_it_is_written(capsys) -> None:
    counted: dict[str, int] = {"rows": 0}

    class Ledger(Numbers):
        name = "ledger"

        def get_records(self, context):  # noqa: ARG002 - the SDK's hook
            yield sdk.parent_record({"n": 1, "at": ROWS[0]["at"], "nested": counted})

        def generate_child_contexts(self, record, context):  # noqa: ARG002 - the SDK's hook
            yield {}

    class Counted(Numbers):
        name = "counted"
        parent_stream_type = Ledger

        def get_records(self, context):  # noqa: ARG002 - the SDK's hook
            for row in ROWS:
                counted["rows"] += 1
                yield dict(row)

    make_tap(Ledger, Counted).sync_all()
    [ledger] = [
        m["record"] for m in messages(capsys) if m["type"] == "RECORD" and m["stream"] == "ledger"
    ]
    assert ledger["nested"] == {"rows": 3}, (
        SDK + "Stream._sync_records now writes a record before it syncs the child streams on it "
        "(sdk.parent_record: message_export_jobs' `rows` would miss its children's counts)"
    )


def test_children_run_once_every_batch_and_the_final_bookmark_are_out(capsys, tmp_path) -> None:
    seen: list[dict] = []

    class Batched(Unsorted):  # unsorted, as contact_events: its bookmark waits for the end
        name = "batched"

        def get_batches(self, batch_config, context=None):
            return sdk.sync_children_after(self, super().get_batches(batch_config, context))

        def generate_child_contexts(self, record, context):  # noqa: ARG002 - the SDK's hook
            return ()

    class After(Numbers):
        name = "after"
        parent_stream_type = Batched

        def get_records(self, context):  # noqa: ARG002 - the SDK's hook
            seen.extend(messages(capsys))
            return ()

    config = {
        "batch_config": {
            "encoding": {"format": "jsonl", "compression": "none"},
            "storage": {"root": f"file://{tmp_path}", "prefix": "c-"},
        }
    }
    make_tap(Batched, After, config=config).streams["batched"].sync()
    # What was out when the child started: ..., the last BATCH, a STATE, the child's SCHEMA.
    assert [m["type"] for m in seen][-3:] == ["BATCH", "STATE", "SCHEMA"], (
        SDK + "Stream._sync_batches no longer writes each BATCH message and a STATE before it "
        "asks get_batches for more (sdk.sync_children_after: contact_events' child runs then)"
    )
    final = [m for m in seen if m["type"] == "STATE"][-1]["value"]["bookmarks"]["batched"]
    assert final.get("replication_key_value") == ROWS[-1]["at"], (
        SDK + "the default get_batches no longer finalizes the stream's state before its last "
        "batch is announced: a child synced after it would run before the final bookmark is out"
    )


# -- the per-record path of the message_* streams ---------------------------------------------


def test_record_hooks_are_called_once_per_record(capsys, monkeypatch) -> None:
    calls: list[str] = []
    for hook in ("_increment_stream_state", "_process_record", "_generate_record_messages"):
        original = getattr(Stream, hook)

        def spy(self, *args, _hook=hook, _original=original, **kwargs):
            calls.append(_hook)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Stream, hook, spy)
    stream = make_tap(Numbers).streams["numbers"]
    stream.sync()
    assert calls.count("_process_record") == 3, (
        SDK + "Stream._sync_records no longer calls _process_record(record, child_context, "
        "partition_context) once per record (sdk.ExportRecordPath skips it)"
    )
    assert calls.count("_increment_stream_state") == 3, (
        SDK + "Stream._sync_records no longer calls _increment_stream_state(record, context=) "
        "once per record (sdk.ExportRecordPath skips the repeats of a window)"
    )
    assert calls.count("_generate_record_messages") == 3, (
        SDK
        + "Stream._write_record_message no longer writes what _generate_record_messages(record) "
        "yields (sdk.ExportRecordPath yields its own RecordMessages)"
    )
    records = [m for m in messages(capsys) if m["type"] == "RECORD"]
    assert len(records) == 3 and isinstance(stream._stream_version, (int, type(None))), (
        SDK + "Stream._stream_version is gone (the version RECORD messages carry)"
    )


def test_deselected_properties_are_popped_in_place() -> None:
    stream = make_tap(Numbers).streams["numbers"]
    stream.metadata[("properties", "n")].selected = False
    stream.metadata[("properties", "nested", "properties", "drop")].selected = False
    stream._mask = None
    record = {**ROWS[0], "nested": dict(ROWS[0]["nested"])}
    sdk.drop_deselected(record, stream, None)
    assert record == {"at": ROWS[0]["at"], "nested": {"keep": "k"}}, (
        SDK + "helpers._catalog.pop_deselected_record_properties(record, schema, mask) no longer "
        "removes deselected properties, nested ones included, in place"
    )


def test_a_stream_without_maps_has_only_same_record_transforms() -> None:
    assert not sdk.maps_change_records(make_tap(Numbers).streams["numbers"]), (
        SDK + "a stream without a stream map configured no longer has only SameRecordTransform "
        "maps (BATCH output would refuse every stream)"
    )
    mapped = make_tap(Numbers, config={"stream_maps": {"numbers": {"n": "n * 2"}}})
    assert sdk.maps_change_records(mapped.streams["numbers"]), (
        SDK + "a stream map that changes records is now a SameRecordTransform"
    )


def test_batch_config_has_what_the_batch_writer_uses(tmp_path) -> None:
    config = sdk.BatchConfig.from_dict(
        {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{tmp_path}", "prefix": "p-"},
            "batch_size": 7,
        }
    )
    assert (config.encoding.format, config.encoding.compression, config.batch_size) == (
        "jsonl",
        "gzip",
        7,
    ), SDK + "helpers._batch.BatchConfig lost encoding.format/compression or batch_size"
    assert isinstance(config.encoding, sdk.BaseBatchFileEncoding)
    with config.storage.open("p-x.json", "wb") as fh:
        fh.write(b"{}\n")
    assert config.storage.prefix == "p-" and config.storage.get_url("p-x.json").endswith(
        "p-x.json"
    ), SDK + "helpers._batch.StorageTarget lost open/get_url/prefix (content/batch.py)"
    assert (tmp_path / "p-x.json").read_bytes() == b"{}\n"


# -- output -------------------------------------------------------------------------------------


def test_msgspec_writer_formats_one_json_line() -> None:
    message = RecordMessage(stream="s", record={"a": 1}, time_extracted=None)
    line = sdk.BufferedMsgSpecWriter().format_message(message)
    assert bytes(line).endswith(b"\n") and json.loads(bytes(line))["record"] == {"a": 1}, (
        SDK + "contrib.msgspec.MsgSpecWriter.format_message no longer returns one JSON line "
        "as bytes, newline included (sdk.BufferedMsgSpecWriter writes it as is)"
    )


def test_buffered_writer_flushes_at_state_only(monkeypatch) -> None:
    class Out(io.TextIOWrapper):
        pass

    sink = io.BytesIO()
    out = Out(sink, encoding="utf-8")
    flushes: list[int] = []
    monkeypatch.setattr(out.buffer, "flush", lambda: flushes.append(len(sink.getvalue())))
    monkeypatch.setattr(sys, "stdout", out)
    writer = sdk.BufferedMsgSpecWriter()
    writer.write_message(RecordMessage(stream="s", record={"a": 1}))
    assert flushes == []
    writer.write_message(StateMessage(value={"bookmarks": {}}))
    assert len(flushes) == 1 and flushes[0] == len(sink.getvalue())


@pytest.mark.parametrize("hook", ["_request", "_write_state_message", "_increment_stream_state",
                                  "_process_record", "_generate_record_messages"])  # fmt: skip
def test_private_hooks_still_exist(hook: str) -> None:
    owner = RESTStream if hook == "_request" else Stream
    assert callable(getattr(owner, hook, None)), f"{SDK}{owner.__name__}.{hook} is gone (sdk.py)"


# -- the tap's life: config check, signals, end of run -------------------------------------------


class _Hooked(sdk.TapHooks):
    """A tap that records what the seam's hooks saw."""

    name = "tap-hooked"
    config_jsonschema = th.PropertiesList(th.Property("n", th.IntegerType)).to_dict()
    seen: t.ClassVar[list[str]] = []

    def discover_streams(self):
        return [Numbers(self)]

    def on_config(self) -> None:
        self.seen.append(f"config n={self.config.get('n')}")

    def check_settings(self) -> None:
        self.seen.append("check")
        if self.config.get("n") == 0:
            raise ValueError("the tap's own line")  # noqa: EM101, TRY003

    def config_invalid(self, errors: list[str]) -> Exception:
        return RuntimeError(" | ".join(errors))

    def stopped(self, signum: int) -> None:
        self.seen.append(f"stopped {signum}")


def test_config_is_merged_before_the_tap_checks_it_ahead_of_the_schema(monkeypatch) -> None:
    _Hooked.seen.clear()
    monkeypatch.setenv("TAP_HOOKED_N", "4")
    _Hooked(config={}, parse_env_config=True, catalog={"streams": []})
    assert _Hooked.seen == ["config n=4", "check"], (
        f"{SDK}_validate_config is not called once the config (env included) is merged"
    )
    with pytest.raises(ValueError, match="the tap's own line"):
        _Hooked(config={"n": 0}, catalog={"streams": []})
    with pytest.raises(RuntimeError, match=r"'x' is not of type 'integer'"):
        _Hooked(config={"n": "x"}, catalog={"streams": []})


def test_termination_writes_the_state_then_exits_with_the_signal(capsys) -> None:
    import signal

    _Hooked.seen.clear()
    tap = _Hooked(config={}, state={"bookmarks": {"numbers": {"replication_key_value": "x"}}})
    assert signal.getsignal(signal.SIGTERM) == tap._handle_termination, (
        f"{SDK}SIGTERM is not the tap's _handle_termination"
    )
    with pytest.raises(SystemExit) as stop:
        tap._handle_termination(signal.SIGTERM, None)
    assert stop.value.code == 143
    assert _Hooked.seen[-1] == "stopped 15"
    assert states(capsys)[-1]["bookmarks"]["numbers"]["replication_key_value"] == "x", (
        f"{SDK}no STATE written on termination"
    )


class _Edges(sdk.RunEdges, Numbers):
    """Numbers, noting the edges of its sync and of the run."""

    name = "edges"
    edges: t.ClassVar[list[str]] = []

    def on_sync_start(self) -> None:
        self.edges.append(f"{self.name} start")

    def on_run_end(self) -> None:
        self.edges.append("run end")

    def get_records(self, context):
        self.edges.append(f"{self.name} records")
        yield from super().get_records(context)


class _LastEdges(_Edges):
    name = "last"


def test_sync_start_comes_before_records_and_run_end_after_every_stream(capsys) -> None:
    _Edges.edges.clear()
    make_tap(_Edges, _LastEdges).sync_all()
    assert _Edges.edges == [
        "edges start",
        "edges records",
        "last start",
        "last records",
        "run end",
    ], (
        f"{SDK}SCHEMA is not written before records, or log_sync_costs not called per stream in order after all syncs"
    )
