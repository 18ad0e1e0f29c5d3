"""Message data export streams: one stream per CSV file kind, fed window by window.

The ledger (`message_export_jobs`, ledger.py) hands each finished window over. Each stream's
bookmark is the end of the last window whose rows it has fully emitted.
"""

from __future__ import annotations

import typing as t
from datetime import datetime, timezone

from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage

from tap_intercom_export.content.base import ExportWindowStream
from tap_intercom_export.content.batch import BatchFileWriter, selected_only
from tap_intercom_export.content.ledger import MessageExportJobsStream
from tap_intercom_export.content.schemas import FILE_KINDS, FileKind, RowTyper
from tap_intercom_export.jobs.archive import DecodeCounter, iter_csv
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context

    from tap_intercom_export.jobs.model import WindowExport

__all__ = ["MESSAGE_STAT_STREAMS", "MessageExportJobsStream", "MessageStatStream"]


class MessageStatStream(ExportWindowStream):
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

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Set up the once-per-run log of columns the schema does not know."""
        super().__init__(*args, **kwargs)
        self._reported_columns: set[str] = set()
        self._deselection: tuple[t.Any, tuple[str, ...] | None] = (None, None)
        self._bookmarked: t.Any = None

    def sync(self, context: Context | None = None) -> None:  # type: ignore[misc]  # the SDK marks sync final; the ledger calls it once per window and the per-window marker must reset
        """Sync one window's rows (the parent calls this once per window)."""
        self._bookmarked = None
        super().sync(context)

    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        # Every row of a window carries the same export_window_start, and nothing else touches
        # the state while one sync() emits rows, so repeating the SDK's per-record update (a
        # state lookup and compare per row) after the first row would change nothing.
        value = latest_record.get(self.replication_key)
        if value is not None and value == self._bookmarked:
            return
        super()._increment_stream_state(latest_record, context=context)
        self._bookmarked = value

    def _process_record(
        self,
        record: dict[str, t.Any],
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        # The SDK's version (singer_sdk/streams/core.py, 0.54.9) asks every record for child
        # contexts and copies them, to sync child streams: a tenth of the tap's time, for
        # streams that have no children and no partitions.
        # https://github.com/meltano/sdk/blob/v0.54.9/singer_sdk/streams/core.py#L1151
        if self.child_streams or partition_context:
            super()._process_record(record, child_context, partition_context)

    def _generate_record_messages(
        self, record: dict[str, t.Any]
    ) -> t.Generator[RecordMessage, None, None]:
        # The SDK's version of this per-record hook (singer_sdk/streams/core.py, 0.54.9) walks
        # the selection mask key by key and the schema value by value for every record: with
        # conformance off (see TYPE_CONFORMANCE_LEVEL) the mask walk alone was a fifth of the
        # tap's time. Here deselected properties are worked out once per catalog and popped;
        # stream maps and RECORD messages are the SDK's own.
        # https://github.com/meltano/sdk/blob/v0.54.9/singer_sdk/streams/core.py#L909
        deselected = self._deselected()
        if deselected is None:
            pop_deselected_record_properties(record, self.schema, self.mask)
        else:
            for name in deselected:
                record.pop(name, None)
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=datetime.now(timezone.utc),
                )

    def _deselected(self) -> tuple[str, ...] | None:
        """Top-level properties the catalog deselects, or None if it deselects nested ones."""
        mask = self.mask
        if self._deselection[0] is not mask:
            nested = any(len(crumb) > 2 and not selected for crumb, selected in mask.items())  # noqa: PLR2004
            names = tuple(n for n in self.schema["properties"] if not mask[("properties", n)])
            self._deselection = (mask, None if nested else names)
        return self._deselection[1]

    def _window(self) -> WindowExport | None:
        """The window the parent has on disk, if this stream has rows to emit from it."""
        parent = t.cast("MessageExportJobsStream", self._tap.streams[MessageExportJobsStream.name])
        result = parent.current
        if result is None or result.window.end <= self.export_from:
            return None
        return result

    def _typed_rows(self, result: WindowExport) -> t.Iterator[dict[str, t.Any]]:
        """This kind's rows of the window, typed, member after member; counted in `result.rows`."""
        window = result.window
        kind = self.spec.kind
        result.rows[kind] = 0
        if result.archive is None:
            return
        lineage = {
            "export_job_id": result.job.job_id,
            "export_window_start": iso(window.start),
            "export_window_end": iso(window.end),
        }
        counter = DecodeCounter()
        for member in result.archive.kinds().get(kind, []):
            count = 0
            with result.archive.open_member(member) as raw:
                header, rows = iter_csv(raw, counter)
                typer = RowTyper(self.spec, header)
                self._report_columns(typer, member.name)
                for row in rows:
                    if row:
                        count += 1
                        yield typer.type_row(row, lineage)
            result.rows[kind] += count
            self._report_quirks(typer, counter, member.name)

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:  # noqa: ARG002
        """Emit this kind's rows of the window the parent has on disk, then move the bookmark."""
        result = self._window()
        if result is None:
            return
        yield from self._typed_rows(result)
        self.advance_bookmark(result.window.end)

    def get_batches(
        self,
        batch_config: BatchConfig,
        context: Context | None = None,  # noqa: ARG002
    ) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Write this kind's rows of the window into batch files; one BATCH message per file.

        The SDK writes each BATCH message, then a STATE, before asking for the next file; the
        bookmark moves to the window's end only after the last file is announced.
        """
        result = self._window()
        if result is None:
            return
        writer = BatchFileWriter(batch_config, self.tap_name, self.name)
        rows = selected_only(self._typed_rows(result), self, self._deselected())
        for url, _rows in writer.write(rows):
            yield batch_config.encoding, [url]
            # As with RECORDs: a window partly announced leaves the bookmark at its start.
            self._increment_stream_state({self.replication_key: iso(result.window.start)})
        self.advance_bookmark(result.window.end)

    def _report_columns(self, typer: RowTyper, member: str) -> None:
        new = [c for c in typer.unknown if c not in self._reported_columns]
        if new:
            self._reported_columns.update(new)
            self.logger.warning(
                "%s has %d column(s) the schema does not declare, kept in %s: %s",
                member,
                len(new),
                "extra_columns",
                ", ".join(new),
            )

    def _report_quirks(self, typer: RowTyper, counter: DecodeCounter, member: str) -> None:
        if typer.ragged_rows:
            self.logger.warning(
                "%s: %d row(s) did not have %d fields; kept what was there "
                "(missing fields null, surplus in extra_columns).",
                member,
                typer.ragged_rows,
                typer.width,
            )
        for column, n in typer.bad_values.items():
            self.logger.warning(
                "%s: %d value(s) of %s did not fit its type; kept as text in extra_columns.",
                member,
                n,
                column,
            )
        counter.report(self.logger, member)


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
