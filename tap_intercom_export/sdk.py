"""The seam to the Meltano Singer SDK: every use of its private names or undocumented behaviour.

The rest of the package uses the SDK only through its documented API (Tap, RESTStream and their
documented hooks, `singer_sdk.typing`, `singer_sdk.pagination`, ...). What the SDK does not
document, but this tap needs, is here, each piece with what it relies on;
tests/test_sdk_contract.py checks each reliance against the installed SDK and names the behaviour
that changed when a release breaks one. Written against singer-sdk 0.54.9:
https://github.com/meltano/sdk/blob/v0.54.9/singer_sdk/streams/core.py
"""

from __future__ import annotations

import signal
import sys
import typing as t
from datetime import datetime, timezone

from singer_sdk import Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError

# The types of `Stream.get_batches`/`get_batch_config`; the SDK exports them from no public module.
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage
from singer_sdk.singerlib.messages import SingerMessageType
from singer_sdk.streams import Stream
from typing_extensions import override

if t.TYPE_CHECKING:
    from types import FrameType

    import requests
    from singer_sdk.helpers.types import Context, Record
    from singer_sdk.singerlib.encoding.simple import Message
    from singer_sdk.streams import RESTStream

__all__ = [
    "BaseBatchFileEncoding",
    "BatchConfig",
    "BufferedMsgSpecWriter",
    "ExportRecordPath",
    "RunEdges",
    "TapHooks",
    "advance_bookmark",
    "commit_state",
    "drop_deselected",
    "maps_change_records",
    "parent_record",
    "put_state",
    "send",
    "sync_children",
    "sync_children_after",
    "sync_now",
    "write_state_now",
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


class ExportRecordPath(Stream):
    """The per-record path of the message_* streams: rows already typed, no children, no schema walk.

    The SDK's per-record steps cost more than reading the rows (bench/bench_export.py): the
    overrides here skip what cannot matter for a stream whose records are typed by the tap, all
    carry one bookmark value per window, and have no child streams. A tap-owned loop that
    encodes records in chunks (issue 23) belongs here too.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Nothing bookmarked yet; deselection not worked out yet."""
        super().__init__(*args, **kwargs)
        self._bookmarked: t.Any = None
        self._deselection: tuple[t.Any, tuple[str, ...] | None] = (None, None)

    def new_window(self) -> None:
        """A window's rows start: the next record moves the bookmark again."""
        self._bookmarked = None

    def deselected(self) -> tuple[str, ...] | None:
        """Top-level properties the catalog deselects, or None if it deselects nested ones."""
        mask = self.mask
        if self._deselection[0] is not mask:
            nested = any(len(crumb) > 2 and not selected for crumb, selected in mask.items())  # noqa: PLR2004
            names = tuple(n for n in self.schema["properties"] if not mask[("properties", n)])
            self._deselection = (mask, None if nested else names)
        return self._deselection[1]

    @override
    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        # Relies on: _sync_records calling this once per record of a selected stream. Every row
        # of a window carries the same export_window_start and nothing else touches the state
        # while one window's rows are emitted, so after the first row the SDK's per-record update
        # (a state lookup and compare per row) would change nothing.
        value = latest_record.get(t.cast("str", self.replication_key))
        if value is not None and value == self._bookmarked:
            return
        super()._increment_stream_state(latest_record, context=context)
        self._bookmarked = value

    @override
    def _process_record(
        self,
        record: Record,
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        # Relies on: _process_record only adding partition keys to the record and syncing child
        # streams: the SDK asks every record for child contexts and copies them, a tenth of the
        # tap's time, for streams that have no children and no partitions.
        if self.child_streams or partition_context:
            super()._process_record(record, child_context, partition_context)

    @override
    def _generate_record_messages(self, record: Record) -> t.Generator[RecordMessage, None, None]:
        # Relies on: _write_record_message writing what this yields, and `_stream_version` being
        # the version RECORD messages carry. The SDK's version walks the selection mask key by
        # key and the schema value by value for every record: with conformance off
        # (TYPE_CONFORMANCE_LEVEL NONE) the mask walk alone was a fifth of the tap's time. Here
        # deselected properties are worked out once per catalog; stream maps are the SDK's own.
        drop_deselected(record, self, self.deselected())
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=datetime.now(timezone.utc),
                )


# -- output ------------------------------------------------------------------------------------


class BufferedMsgSpecWriter(MsgSpecWriter):
    """Writes RECORDs into stdout's buffer and flushes on every other message (STATE, SCHEMA...).

    It counts the RECORDs of each stream on the way, for the run's summary line.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """No record written yet."""
        super().__init__(*args, **kwargs)
        self.records: dict[str, int] = {}

    @override
    def write_message(self, message: Message) -> None:
        """Write one message; flush unless it is a RECORD."""
        # Relies on: MsgSpecWriter.format_message returning one JSON line (newline included) as
        # bytes, valid until the next call. MsgSpecWriter flushes after every message: one write
        # syscall (and, through a pipe, one wake-up of the target) per record. Records only
        # matter to a target once the STATE that covers them arrives, and that STATE goes
        # through the same buffer after them, so flushing there keeps the order and loses
        # nothing a crash would not lose anyway.
        out = sys.stdout.buffer
        out.write(self.format_message(message))
        if message.type == SingerMessageType.RECORD:
            stream = t.cast("RecordMessage", message).stream
            self.records[stream] = self.records.get(stream, 0) + 1
        else:
            out.flush()
