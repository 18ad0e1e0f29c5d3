"""Message data export streams: one stream per CSV file kind, fed window by window.

The ledger (`message_export_jobs`, ledger.py) hands each finished window over. Each stream's
bookmark is the end of the last window whose rows it has fully emitted.
"""

from __future__ import annotations

import functools
import typing as t

from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_intercom_export import sdk
from tap_intercom_export.content.base import ExportWindowStream
from tap_intercom_export.content.batch import BatchFiles, JsonlFiles
from tap_intercom_export.content.ledger import MessageExportJobsStream
from tap_intercom_export.content.schemas import FILE_KINDS, ColumnReader, FileKind, RowTyper
from tap_intercom_export.errors import ConfigError
from tap_intercom_export.jobs.rows import MemberReader, Typer
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.streams import Stream

    from tap_intercom_export.jobs.archive import Member
    from tap_intercom_export.jobs.model import WindowExport
    from tap_intercom_export.jobs.rows import Block

__all__ = ["MESSAGE_STAT_STREAMS", "MessageExportJobsStream", "MessageStatStream"]


class MessageStatStream(ExportWindowStream, sdk.TapRecordLoop):
    """Rows of one CSV file kind of the export archive, typed by `schemas.FILE_KINDS`."""

    parent_stream_type = MessageExportJobsStream
    spec: FileKind
    replication_key = "export_window_start"
    path = "/export/content/data"
    # RowTyper already emits JSON-ready values (str, int, float, None) for exactly the schema's
    # properties, so the SDK's per-record schema walk only re-checks them: it was half of the
    # tap's CPU time. Its other job, dropping properties the schema does not declare, cannot
    # happen here (unknown columns go into extra_columns), as tests/test_perf_paths.py checks.
    # https://sdk.meltano.com/en/latest/classes/singer_sdk.Stream.html#singer_sdk.Stream.TYPE_CONFORMANCE_LEVEL
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: Key of the `rows` object of `message_export_jobs` that counts this stream's records.
    rows_key = ""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Set up the once-per-run warning about columns the schema does not know."""
        super().__init__(*args, **kwargs)
        self.reader = MemberReader(self.logger, self.name, "the schema does not declare")

    def _window(self) -> WindowExport | None:
        """The window the parent has on disk, if this stream has rows to emit from it."""
        parent = t.cast("MessageExportJobsStream", self.tap.streams[MessageExportJobsStream.name])
        result = parent.current
        if result is None or result.window.end <= self.export_from:
            return None
        return result

    def members(self, result: WindowExport) -> list[Member]:
        """The archive members this stream reads: its file kind's."""
        return result.archive.kinds().get(self.spec.kind, []) if result.archive else []

    def typer(
        self,
        member: Member,  # noqa: ARG002 - the reader's interface
        header: list[str],
        *,
        times_us: bool = False,
        in_c: ColumnReader | None = None,
    ) -> Typer:
        """How one member's rows become records (`times_us`, `in_c`: as RowTyper takes them)."""
        return RowTyper(self.spec, header, times_us=times_us, in_c=in_c)

    def _blocks(self, result: WindowExport, writer: BatchFiles | None = None) -> t.Iterator[Block]:
        """This stream's rows of the window, typed, member after member; counted in `result.rows`.

        Typed as `writer` wants them (a Parquet writer: times as microseconds, read in C).
        """
        typer = (
            functools.partial(self.typer, times_us=writer.times_us, in_c=writer.in_c)
            if writer is not None
            else self.typer
        )
        return self.reader.blocks(
            result,
            self.members(result),
            typer,
            result.rows,
            self.rows_key or self.spec.kind,
            block_rows=writer.block_rows if writer is not None else 0,
        )

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Emit this kind's rows of the window the parent has on disk, then move the bookmark.

        The tap writes them itself when it can (sdk.TapRecordLoop.emit): then none is yielded.
        """
        result = self._window()
        if result is None:
            return
        yield from self.emit(self._blocks(result))
        self.advance_bookmark(result.window.end)

    @override
    def get_batches(
        self,
        batch_config: sdk.BatchConfig,
        context: Context | None = None,
    ) -> t.Iterable[tuple[sdk.BaseBatchFileEncoding, list[str]]]:
        """Write this kind's rows of the window into batch files; one BATCH message per file.

        The SDK writes each BATCH message, then a STATE, before asking for the next file; the
        bookmark moves to the window's end only after the last file is announced.
        """
        result = self._window()
        if result is None:
            return
        writer = batch_files(batch_config, self.tap_name, self, self.deselected())
        blocks = self._blocks(result, writer)
        for url, _rows in writer.write(blocks):
            yield batch_config.encoding, [url]
            # As with RECORDs: a window partly announced leaves the bookmark at its start.
            sdk.advance_bookmark(self, iso(result.window.start))
        self.advance_bookmark(result.window.end)


def batch_files(
    config: sdk.BatchConfig, tap_name: str, stream: Stream, deselected: tuple[str, ...] | None
) -> BatchFiles:
    """The writer of `config`'s format for `stream`; refused if a stream map would change rows.

    `deselected` are top-level names to drop, or None to walk the stream's selection mask.
    """
    # The SDK writes a batch's manifest once per stream map without applying it to the files,
    # so a map that changes rows (e.g. hashes e-mails) would silently not happen.
    if sdk.maps_change_records(stream):
        msg = (
            f"Stream maps that change {stream.name} cannot be applied to BATCH files: "
            "remove batch_config or the stream map of this stream."
        )
        raise ConfigError(msg)
    if config.encoding.format == "parquet":
        # pyarrow (the `parquet` extra) is imported only when Parquet is asked for.
        from tap_intercom_export.content.parquet import ParquetFiles  # noqa: PLC0415

        return ParquetFiles(config, tap_name, stream, deselected)
    return JsonlFiles(config, tap_name, stream, deselected)


def _stat_stream(spec: FileKind) -> type[MessageStatStream]:
    camel = "".join(part.title() for part in spec.stream_name.split("_"))
    return type(
        f"{camel}Stream",
        (MessageStatStream,),
        {
            "__doc__": f"Rows of the `{spec.kind}` CSV files of Intercom's message data export.",
            "name": spec.stream_name,
            "spec": spec,
            "primary_keys": spec.primary_keys,
            "schema": spec.json_schema(),
        },
    )


MESSAGE_STAT_STREAMS: list[type[MessageStatStream]] = [_stat_stream(s) for s in FILE_KINDS.values()]
