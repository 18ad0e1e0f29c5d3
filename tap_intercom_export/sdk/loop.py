"""The message export's records and batch files, where they rely on the SDK (see __init__.py)."""

from __future__ import annotations

import dataclasses
import typing as t

from singer_sdk import metrics
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.streams import Stream
from typing_extensions import override

from tap_intercom_export.sdk.output import BufferedMsgSpecWriter, writer_encoder

if t.TYPE_CHECKING:
    import msgspec.json
    from singer_sdk.helpers.types import Context, Record


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
