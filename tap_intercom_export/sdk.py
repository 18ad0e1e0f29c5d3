"""The seam to the Meltano Singer SDK: every use of its private names or undocumented behaviour.

The rest of the package uses the SDK only through its documented API (Tap, RESTStream and their
documented hooks, `singer_sdk.typing`, `singer_sdk.pagination`, ...). What the SDK does not
document, but this tap needs, is here, each piece with what it relies on;
tests/test_sdk_contract.py checks each reliance against the installed SDK and names the behaviour
that changed when a release breaks one. Written against singer-sdk 0.54.9:
https://github.com/meltano/sdk/blob/v0.54.9/singer_sdk/streams/core.py
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import signal
import sys
import typing as t
import weakref
from datetime import datetime, timezone

import msgspec.json
from singer_sdk import Tap, metrics
from singer_sdk.contrib.msgspec import MsgSpecWriter, enc_hook
from singer_sdk.exceptions import ConfigValidationError

# The types of `Stream.get_batches`/`get_batch_config`; the SDK exports them from no public module.
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers._state import StateWriter
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib.messages import SingerMessageType
from singer_sdk.streams import Stream
from typing_extensions import override

if t.TYPE_CHECKING:
    from types import FrameType

    import requests
    from singer_sdk.helpers.types import Context, Record, TapState
    from singer_sdk.singerlib import RecordMessage
    from singer_sdk.singerlib.encoding.simple import Message
    from singer_sdk.streams import RESTStream

__all__ = [
    "BaseBatchFileEncoding",
    "BatchConfig",
    "BufferedMsgSpecWriter",
    "FlushingStateWriter",
    "Rows",
    "RunEdges",
    "TapHooks",
    "TapRecordLoop",
    "advance_bookmark",
    "commit_state",
    "drop_deselected",
    "maps_change_records",
    "own_output",
    "parent_record",
    "put_state",
    "sdk_batcher_encoding",
    "send",
    "sync_children",
    "sync_children_after",
    "sync_now",
    "write_state_now",
    "writer_encoder",
]


# -- the tap's life: config check, signals, end of run --------------------------------------------


class TapHooks(Tap):
    """The tap's config checked by the tap before the SDK's schema; signals ending in 143/130."""

    def on_config(self) -> None:
        """Called once the config is merged, before it is checked and before any request."""

    def check_settings(self) -> None:
        """Refuse settings that cannot work, in one line (the tap overrides it)."""

    def config_invalid(self, errors: list[str]) -> Exception:
        """The error to raise for what the SDK's JSON-Schema validation found (one line)."""
        return ConfigValidationError("; ".join(errors), errors=errors)

    def stopped(self, signum: int) -> None:
        """Called on SIGTERM/SIGINT once the SDK wrote the last STATE (the tap logs it)."""

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # Relies on: PluginBase.__init__ calling _validate_config(raise_errors=validate_config)
        # once the config (files and, with --config ENV, environment variables) is merged into
        # self.config and the metrics logger's level set, before the tap's first request (its
        # discovery); and the SDK's CLI logging each error of a ConfigValidationError on its
        # own line and then a bare "Config validation failed": the tap's own check runs first
        # and names the setting and what to do, and what the schema still finds (the SDK's
        # built-in settings) is raised as one error of the tap's.
        self.on_config()
        if raise_errors:
            self.check_settings()
        try:
            return super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            raise self.config_invalid(list(exc.errors)) from exc

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # Relies on: the SDK installing this method as the SIGTERM and SIGINT handler (in the
        # main thread) and, in it, writing the tap's state as a STATE message, then calling
        # sys.exit(0). A scheduler must see a stopped run fail: exit 128 + signal, as shells do.
        try:
            super()._handle_termination(signum, frame)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
            self.stopped(signum)
            raise SystemExit(128 + signum) from None


def signal_name(signum: int) -> str:
    """SIGTERM, SIGINT, ... for a log line."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class RunEdges(Stream):
    """A stream that knows when it starts syncing, and when the whole run is over."""

    def on_sync_start(self) -> None:
        """Called when a selected stream's sync starts, before any of its records."""

    def on_run_end(self) -> None:
        """Called once, after every stream of the tap has synced (the tap's summary)."""

    @override
    def _write_schema_message(self) -> None:
        # Relies on: Stream.sync writing the stream's SCHEMA through _write_schema_message at
        # the start of every sync of a selected stream, before any of its records.
        self.on_sync_start()
        super()._write_schema_message()

    @override
    def log_sync_costs(self) -> None:
        """The SDK's cost line; after the last stream's, the end of the run."""
        # Relies on: Tap.sync_all calling log_sync_costs once on every stream of `tap.streams`,
        # in that order, after every stream has synced (its "second loop").
        super().log_sync_costs()
        streams = list(self._tap.streams.values())
        if streams and streams[-1] is self:
            self.on_run_end()


# -- requests ----------------------------------------------------------------------------------


def send(stream: RESTStream[t.Any], request: requests.PreparedRequest) -> requests.Response:
    """Send one prepared request through the stream's authenticator, session and retries.

    The export engine and the contact fan-out send requests of their own (downloads, job
    polls, one contact's events), not the SDK's paginated `request_records` loop.
    """
    # Relies on: RESTStream._request(prepared_request, context) authenticating the request,
    # sending it with `stream.requests_session` (read at each call, so a per-thread session
    # works), logging the request metric and calling `stream.validate_response`; and
    # `request_decorator` wrapping it in the SDK's retries.
    return stream.request_decorator(stream._request)(request, None)  # noqa: SLF001


# -- state -------------------------------------------------------------------------------------


def advance_bookmark(stream: Stream, value: str) -> None:
    """Set the stream's bookmark (its replication key's value) to `value`."""
    # Relies on: StreamStateManager.increment_state taking a record of just the replication key:
    # a sorted stream's `replication_key_value` becomes `value` at once; an unsorted stream keeps
    # it in `progress_markers` until the SDK finalizes the stream (capped by its signpost).
    key = t.cast("str", stream.replication_key)
    stream.state_manager.increment_state({key: value}, replication_key=key)


def put_state(stream: Stream, key: str, value: t.Any) -> None:
    """Keep a value of the tap's own (in-flight jobs, last lookback) in the stream's state."""
    # Relies on: keys the SDK does not know surviving in `stream_state` (finalizing only touches
    # progress markers, signpost and starting value) and being written with the next STATE.
    stream.stream_state[key] = value
    stream.state_manager.is_flushed = False


def write_state_now(stream: Stream) -> None:
    """Send a STATE now (a job created, a window done), not when the SDK next would."""
    # Relies on: Stream._write_state_message() writing the whole tap state when
    # `state_manager.is_flushed` is False, then setting it True.
    stream.state_manager.is_flushed = False
    stream._write_state_message()  # noqa: SLF001


def commit_state(stream: Stream) -> None:
    """Make an unsorted stream's bookmark final now and send it, before the stream's sync ends."""
    # Relies on: StreamStateManager.finalize_state(state) promoting `progress_markers` to the
    # bookmark (capped by the signpost) and clearing the signpost and starting value, as the
    # SDK does at the end of a sync; doing it twice changes nothing.
    stream.state_manager.finalize_state(stream.stream_state)
    write_state_now(stream)


def parent_record(record: Record) -> Record:
    """A record for get_records to yield that its child streams complete before it is written."""
    # Relies on: Stream._sync_records syncing the child streams on a record (_process_record)
    # before writing it (_write_record_message): the job ledger's `rows`, which its children
    # count while they emit a window, is complete when its record goes out.
    return record


def sync_children(stream: Stream) -> None:
    """Sync the stream's selected child streams once each, now, without a context."""
    # Relies on: Tap.sync_all leaving streams that declare a `parent_stream_type` to their
    # parent, and Stream.sync() of such a child running a whole unpartitioned sync when called
    # from inside the parent's sync (the SDK's own _sync_children does the same per context).
    for child in stream.child_streams:
        if child.selected or child.has_selected_descendents:
            child.sync()


def sync_now(stream: Stream) -> None:
    """Sync a top-level stream now, from inside another stream's sync, once more than usual."""
    # Relies on: Stream.sync() running a whole unpartitioned sync each time it is called, also
    # from inside another stream's get_records (as for children, above): it writes the stream's
    # SCHEMA, the records its get_records yields and a STATE, and leaves the outer sync going.
    # Tap.sync_all still syncs the stream once more in its turn.
    stream.sync()


def sync_children_after(
    stream: Stream, batches: t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]
) -> t.Iterator[tuple[BaseBatchFileEncoding, list[str]]]:
    """The stream's batches; once the last is announced, with the final bookmark, its children."""
    # Relies on: Stream._sync_batches writing each BATCH message and then a STATE before it asks
    # get_batches for more, and the SDK's default get_batches finalizing the stream's state when
    # its records run out (before the last batch): so when this resumes after the last batch,
    # the stream's every batch and its final bookmark are out.
    yield from batches
    sync_children(stream)


# -- records and batches -----------------------------------------------------------------------


def sdk_batcher_encoding(batch: BatchConfig) -> BatchConfig:
    """`batch` as the SDK's own batcher really writes it: JSON Lines files are always gzip."""
    # Relies on: contrib/batch_encoder_jsonl.JSONLinesBatcher writing every file through gzip
    # whatever `compression` says (its "TODO: Determine compression from config"), while
    # Stream.get_batches announces the configured encoding: a loader told "none" fails on it.
    if batch.encoding.format == "jsonl" and batch.encoding.compression != "gzip":
        return dataclasses.replace(batch, encoding=BaseBatchFileEncoding("jsonl", "gzip"))
    return batch


def drop_deselected(record: Record, stream: Stream, names: tuple[str, ...] | None) -> None:
    """Remove what the catalog deselects: top-level `names`, or (None) by the selection mask."""
    if names is None:
        # Relies on: helpers._catalog.pop_deselected_record_properties(record, schema, mask)
        # removing every property the mask deselects, nested ones included, in place.
        pop_deselected_record_properties(record, stream.schema, stream.mask)
        return
    for name in names:
        record.pop(name, None)


def maps_change_records(stream: Stream) -> bool:
    """Whether a stream map of the stream changes records (a BATCH file cannot apply it)."""
    # Relies on: a stream without a map configured having only SameRecordTransform maps.
    return any(not isinstance(m, SameRecordTransform) for m in stream.stream_maps)


class Rows(t.Protocol):
    """A block of typed rows (jobs/rows.py `Block`), as the tap's record loop writes it."""

    size: int

    def records(self) -> list[Record]:
        """One dict per row."""

    def column(self, name: str) -> t.Sequence[t.Any]:
        """One property's values, row by row."""

    def slice(self, start: int, stop: int) -> Rows:
        """Rows start..stop."""

    def encode_lines(self, encoder: msgspec.json.Encoder, drop: t.Collection[str] = ()) -> bytes:
        """One JSON line per row, without the properties in `drop`."""


class TapRecordLoop(Stream):
    """The message_* streams' records, written by the tap a block at a time (issue 23).

    The SDK's loop (`Stream._sync_records`) spends more per record than typing it: hooks, a
    selection walk, a message object and a write each. When nothing needs that per-record
    work, `get_records` hands its rows to `emit`, which encodes and writes each block itself
    and yields nothing to the SDK's loop; the SDK still starts and finalizes the sync (starting
    value, final bookmark, last STATE). The output is the SDK's, byte for byte but for
    `time_extracted` (one per block): tests/test_record_loop.py compares the two.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """The SDK's loop until a sync says otherwise."""
        super().__init__(*args, **kwargs)
        self._tap_loop = False
        self._counter: metrics.Counter | None = None
        self._deselection: tuple[t.Any, tuple[str, ...] | None] = (None, None)

    def deselected(self) -> tuple[str, ...] | None:
        """Top-level properties the catalog deselects, or None if it deselects nested ones."""
        mask = self.mask
        if self._deselection[0] is not mask:
            nested = any(len(crumb) > 2 and not selected for crumb, selected in mask.items())  # noqa: PLR2004
            names = tuple(n for n in self.schema["properties"] if not mask[("properties", n)])
            self._deselection = (mask, None if nested else names)
        return self._deselection[1]

    def tap_loop_applies(self) -> bool:
        """Whether nothing this sync needs is done per record by the SDK only.

        Otherwise the SDK's own loop runs: a dry run or `--test` (it counts records to stop), a
        stream map that changes or copies records, flattening, a `post_process` override,
        child streams, state partitions, type conformance, or a message writer of another kind.
        """
        maps = self.stream_maps
        return (
            self.ABORT_AT_RECORD_COUNT is None
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and type(self).post_process is Stream.post_process
            and not self.child_streams
            and self.partitions is None
            and self.replication_method == "INCREMENTAL"
            and self.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE
            and isinstance(self._tap.message_writer, BufferedMsgSpecWriter)
        )

    @override
    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[Record, t.Any, t.Any]:
        # Relies on: Stream.sync() running a RECORD sync as `for _ in self._sync_records(context)`
        # (Stream.get_batches calls it with write_messages=False, which keeps the SDK's loop);
        # _sync_records calling get_record_counter() once before get_records, then after the
        # records finalizing the state and calling _write_state_message().
        self._tap_loop = write_messages and not context and self.tap_loop_applies()
        try:
            yield from super()._sync_records(context, write_messages=write_messages)
        finally:
            self._tap_loop = False

    @override
    def get_record_counter(
        self, *, endpoint: str | None = None, log_interval: float = metrics.DEFAULT_LOG_INTERVAL
    ) -> metrics.Counter:
        """The SDK's record counter, kept for the blocks `emit` writes."""
        self._counter = super().get_record_counter(endpoint=endpoint, log_interval=log_interval)
        return self._counter

    def emit(self, blocks: t.Iterable[Rows]) -> t.Iterator[Record]:
        """What get_records yields: each block's records, or (tap's loop) nothing: they are written."""
        if not self._tap_loop:
            for block in blocks:
                yield from block.records()
            return
        writer = t.cast("BufferedMsgSpecWriter", self._tap.message_writer)
        counter = t.cast("metrics.Counter", self._counter)
        alias = self.stream_maps[0].stream_alias
        every = self.STATE_MSG_FREQUENCY
        written = 0
        for block in blocks:
            start = 0
            while start < block.size:
                # Parts end where the SDK writes a STATE (every STATE_MSG_FREQUENCY records).
                stop = min(block.size, start + every - written % every)
                part = block if (start, stop) == (0, block.size) else block.slice(start, stop)
                writer.write_records(alias, self._encode(part), self._stream_version)
                # Relies on: _write_record_message marking the state unflushed after each record.
                self.state_manager.is_flushed = False
                self._bookmark(part)
                written += part.size
                if written % every == 0:
                    self._write_state_message()
                counter.increment(part.size)
                start = stop

    def _encode(self, part: Rows) -> bytes:
        drop = self.deselected()
        if drop is not None:
            return part.encode_lines(writer_encoder, drop)
        records = part.records()
        for record in records:
            drop_deselected(record, self, None)
        return writer_encoder.encode_lines(records)

    def _bookmark(self, part: Rows) -> None:
        # Relies on: _sync_records calling _increment_stream_state(record, context=None) once
        # per record, and repeating a value changing nothing (helpers/_state.increment_state).
        # A sorted stream whose part starts and ends on one value has that value throughout:
        # one call does what one per record would.
        values = part.column(t.cast("str", self.replication_key))
        if self.is_sorted and values[0] == values[-1]:
            # The SDK reads nothing from the record but its replication key.
            self._increment_stream_state({t.cast("str", self.replication_key): values[0]})
            return
        records = part.records()
        for i, value in enumerate(values):
            if i == 0 or value != values[i - 1]:
                self._increment_stream_state(records[i])


# -- output ------------------------------------------------------------------------------------

#: msgspec's encoder as MsgSpecWriter configures it: what the tap's loop encodes records with.
writer_encoder = msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")

# RECORDs are written once this much output is waiting (or at the next STATE, SCHEMA, BATCH).
_BUFFER_BYTES = 1 << 18

_WRITERS: weakref.WeakSet[BufferedMsgSpecWriter] = weakref.WeakSet()


class BufferedMsgSpecWriter(MsgSpecWriter):
    """Holds RECORDs in a buffer of the tap's own; writes it out at every other message.

    MsgSpecWriter flushes after every message: one write syscall (and, through a pipe, one
    wake-up of the target) per record, and with PYTHONUNBUFFERED (which some runners set)
    stdout has no buffer at all. Records only matter to a target once the STATE that covers
    them arrives, and that STATE goes out through the same buffer after them: writing the
    buffer there (and at SCHEMA, BATCH, at every point the SDK would write a STATE, and at
    exit) keeps the order and loses nothing a kill would not lose anyway.
    """

    def __init__(self) -> None:
        """An empty buffer, written out at exit if anything is left; no record written yet."""
        super().__init__()
        self._buffer = bytearray()
        self._out: t.TextIO | None = None
        self._unsynced = False
        #: RECORDs written per stream, for the run's summary line.
        self.records: dict[str, int] = {}
        _WRITERS.add(self)

    @override
    def write_message(self, message: Message) -> None:
        """Buffer one message; write the buffer out unless it is a RECORD."""
        # Relies on: MsgSpecWriter.format_message returning one JSON line (newline included)
        # as bytes, valid until the next call.
        self._hold(self.format_message(message))
        if message.type != SingerMessageType.RECORD:
            self.flush()
            return
        stream = t.cast("RecordMessage", message).stream
        self.records[stream] = self.records.get(stream, 0) + 1
        if len(self._buffer) >= _BUFFER_BYTES:
            self.flush(sync=False)

    def write_records(self, stream: str, lines: bytes, version: int | None) -> None:
        """Buffer one RECORD per line of `lines` (encoded records), as RecordMessage would write."""
        # The envelope RecordMessage.to_dict gives, in its key order, around each encoded
        # record; JSON text never holds a raw newline, so each b"\n" ends one record.
        head = b'{"type":"RECORD","stream":' + writer_encoder.encode(stream) + b',"record":'
        tail = b',"version":' + writer_encoder.encode(version) if version is not None else b""
        tail += b',"time_extracted":' + writer_encoder.encode(datetime.now(timezone.utc)) + b"}\n"
        body = lines.replace(b"\n", tail + head)  # one copy; the last `head` is cut below
        self.records[stream] = self.records.get(stream, 0) + lines.count(b"\n")
        self._hold(head)
        with memoryview(body) as view:
            self._buffer += view[: len(body) - len(head)]
        if len(self._buffer) >= _BUFFER_BYTES:
            self.flush(sync=False)

    def _hold(self, data: bytes | bytearray) -> None:
        if not self._buffer:
            # Where these bytes are meant to go, even if stdout is swapped before they are out.
            self._out = sys.stdout
        self._buffer += data

    def flush(self, *, sync: bool = True) -> None:
        """Write what is buffered to stdout (and, `sync`, flush stdout's own buffer)."""
        out = self._out or sys.stdout
        if self._buffer:
            out.flush()  # anything written to the text layer first goes first
            with memoryview(self._buffer) as view:
                done = 0
                while done < len(view):
                    # An unbuffered stdout (FileIO) may take part of a large write.
                    done += out.buffer.write(view[done:]) or 0
            self._buffer.clear()
            self._unsynced = True
        if sync and self._unsynced:
            out.buffer.flush()
            self._unsynced = False


class FlushingStateWriter(StateWriter):
    """The SDK's STATE writer, which also writes out buffered RECORDs where it skips a STATE."""

    def __init__(self, message_writer: BufferedMsgSpecWriter) -> None:
        """Write STATEs through `message_writer`."""
        super().__init__(message_writer)
        self.output = message_writer

    @override
    def write_state(self, state: TapState) -> None:
        """Write the state if it changed; write out the records before it in any case."""
        # Relies on: StateWriter.write_state skipping a STATE equal to the last one written: the
        # records buffered since would otherwise wait (the end of a sync whose bookmark did not
        # move, a dry run stopped at its record limit).
        super().write_state(state)
        self.output.flush()


def own_output(tap: Tap) -> None:
    """Make the tap's STATE points write out the records buffered before them."""
    # Relies on: Tap keeping the StateWriter every STATE goes through in `_state_writer`
    # (streams reach it as `tap.state_writer`), built on the tap's message writer.
    writer = tap.message_writer
    if isinstance(writer, BufferedMsgSpecWriter):
        tap._state_writer = FlushingStateWriter(writer)  # noqa: SLF001


@atexit.register
def _flush_at_exit() -> None:
    for writer in list(_WRITERS):
        with contextlib.suppress(OSError, ValueError):
            writer.flush()
