"""The rows of a finished export's CSV members as records, with lineage; what did not fit, logged.

Every export stream reads its window the same way: member after member, each row typed by the
source's typer (content/schemas.py `RowTyper`, reporting/schemas.py `RowMapper`, content/other.py
`OtherRows`), tagged with the job and window it came from. Nothing is dropped for its shape:
columns the schema does not know, ragged rows, values that do not fit their type and bytes that
are not UTF-8 are kept (in `extra_columns`, or as U+FFFD) and counted in one warning each.

Rows travel in blocks of up to `BLOCK_ROWS`: a typer that types a whole block column by column
(`RowTyper.type_block`) does per column what it would do per row, and the writers (RECORD, JSONL,
Parquet) take a block at a time, so no per-row Python call sits between the CSV reader and the
output. A typer that can read a whole member in C (`read_at_once`: Parquet's pyarrow reader) reads
it first; where it stops, csv.reader reads on from the first row it did not give.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gc
import itertools
import logging
import typing as t

import msgspec

from tap_intercom_export.jobs.archive import DecodeCounter, iter_csv
from tap_intercom_export.timeutil import iso

if t.TYPE_CHECKING:
    from tap_intercom_export.jobs.archive import Member
    from tap_intercom_export.jobs.model import WindowExport


class Typer(t.Protocol):
    """Turns the rows of one CSV member into records, counting what did not fit."""

    #: Header columns the schema has no property for (kept in `extra_columns`).
    unknown: list[str]
    #: Fields a row should have (the header's).
    width: int
    #: Rows with another number of fields.
    ragged_rows: int
    #: Per property, values that did not fit its type (kept as text in `extra_columns`).
    bad_values: dict[str, int]

    def type_row(self, row: list[str], lineage: dict[str, t.Any]) -> dict[str, t.Any]:
        """The record of one row."""


#: Rows typed and written at once: enough to amortise each call, few enough to keep memory flat.
BLOCK_ROWS = 1000
#: Container objects allocated between two collections of the youngest generation while rows
#: are read (Python's default is 700).
_GC_YOUNG = 50_000


class Block:
    """Typed rows, held as columns or as records: whichever the typer made, the other on demand."""

    def __init__(
        self,
        size: int,
        columns: dict[str, t.Sequence[t.Any]] | None = None,
        records: list[dict[str, t.Any]] | None = None,
        uniform: frozenset[str] = frozenset(),
    ) -> None:
        """`columns` (name -> values, in record key order) or `records`, of `size` rows.

        `uniform`: columns whose every value is their first (a Parquet writer repeats it).
        """
        self.size = size
        self._columns = columns
        self._records = records
        self.uniform = uniform

    @classmethod
    def of_records(cls, records: list[dict[str, t.Any]]) -> Block:
        """A block of records already built."""
        return cls(len(records), records=records)

    def records(self) -> list[dict[str, t.Any]]:
        """One dict per row, keys in column order."""
        if self._records is None:
            columns = t.cast("dict[str, t.Sequence[t.Any]]", self._columns)
            names = list(columns)
            # A column read in C (content/parquet.py `arrow_column`) is an Arrow array.
            values = [v.to_pylist() if hasattr(v, "to_pylist") else v for v in columns.values()]
            self._records = [
                dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)
            ]
        return self._records

    def column(self, name: str) -> t.Sequence[t.Any]:
        """The values of one property, row by row (None where a row has no such key)."""
        if self._columns is not None:
            values = self._columns.get(name)
            return [None] * self.size if values is None else values
        return [record.get(name) for record in t.cast("list[dict[str, t.Any]]", self._records)]

    def slice(self, start: int, stop: int) -> Block:
        """Rows start..stop of this block."""
        if self._columns is not None:
            return Block(stop - start, columns={k: v[start:stop] for k, v in self._columns.items()})
        return Block.of_records(self.records()[start:stop])

    def encode_lines(self, encoder: msgspec.json.Encoder, drop: t.Collection[str] = ()) -> bytes:
        """Every row as one line of JSON (keys in column order), without the properties in `drop`."""
        if self._columns is None:
            records = self.records()
            for record in records:
                for name in drop:
                    record.pop(name, None)
            return encoder.encode_lines(records)
        names = tuple(name for name in self._columns if name not in drop)
        columns = [self._columns[name] for name in names]
        row_type = _row_type(names) if names else None
        if row_type is None:
            return encoder.encode_lines(
                [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
                if names
                else [{}] * self.size
            )
        # A msgspec Struct per row instead of a dict: built without hashing a key, encoded from
        # pre-encoded field names, in the same key order, so the bytes are what the dict gives.
        return encoder.encode_lines(list(map(row_type, *columns)))


@functools.lru_cache(maxsize=256)
def _row_type(names: tuple[str, ...]) -> type[msgspec.Struct] | None:
    # Field names need not be identifiers (CSV headers): positional fields, renamed on output.
    # msgspec refuses to rename to a name with a quote, backslash or control character: such
    # a header is written through dicts (None).
    fields = [f"f{i}" for i in range(len(names))]
    try:
        return msgspec.defstruct(
            "Row", [(f, object) for f in fields], rename=dict(zip(fields, names, strict=True))
        )
    except ValueError:
        return None


def type_block(typer: Typer, rows: list[list[str]], lineage: dict[str, t.Any]) -> Block:
    """Type a block of rows: by column when the typer can, else row by row."""
    by_columns = getattr(typer, "type_block", None)
    if by_columns is not None:
        return t.cast("Block", by_columns(rows, lineage))
    type_row = typer.type_row
    return Block.of_records([type_row(row, lineage) for row in rows])


def lineage(result: WindowExport) -> dict[str, t.Any]:
    """The columns that say which job and window a row came from."""
    return {
        "export_job_id": result.job.job_id,
        "export_window_start": iso(result.window.start),
        "export_window_end": iso(result.window.end),
    }


class MemberReader:
    """Reads members for one stream; names each unknown column once per run."""

    def __init__(self, logger: logging.Logger, name: str, unknown_means: str) -> None:
        """Log through `logger` as `name`; `unknown_means` says why a column is unknown."""
        self.logger = logger
        self.name = name
        self.unknown_means = unknown_means
        self._reported: set[str] = set()
        self._misfits: set[str] = set()

    def records(self, *args: t.Any) -> t.Iterator[dict[str, t.Any]]:
        """Every row of `blocks(*args)` as a record, one block after another."""
        for block in self.blocks(*args):
            yield from block.records()

    def blocks(  # noqa: PLR0913 - the window, what to read, how, where to count, how many at once
        self,
        result: WindowExport,
        members: t.Iterable[Member],
        typer: t.Callable[[Member, list[str]], Typer],
        counts: dict[str, int],
        key: str,
        *,
        block_rows: int = 0,
    ) -> t.Iterator[Block]:
        """Every row of `members` in typed blocks (`typer(member, header)`) of `block_rows` at most.

        Rows are counted in `counts[key]` (from 0) as they are typed. `block_rows`: BLOCK_ROWS
        unless given.
        """
        size = block_rows or BLOCK_ROWS
        counts[key] = 0
        if result.archive is None:
            return
        tags = lineage(result)
        counter = DecodeCounter()
        with _fewer_collections():
            for member in members:
                with result.archive.open_member(member) as raw:
                    header, rows = iter_csv(raw, counter)
                    typed = typer(member, header)
                    self._report_unknown(typed, member.name)
                    read = 0
                    at_once = getattr(typed, "read_at_once", None)
                    again = functools.partial(result.archive.open_member, member)
                    blocks = at_once(again, tags) if at_once is not None else None
                    if blocks is not None:
                        for block in blocks:
                            read += block.size
                            counts[key] += block.size
                            yield block
                        if getattr(typed, "complete", False):
                            self._report_quirks(typed, counter, member.name)
                            continue
                    # Blank lines (csv gives []) are not rows. Rows read at once are skipped.
                    nonblank = filter(None, rows)
                    collections.deque(itertools.islice(nonblank, read), maxlen=0)
                    while chunk := list(itertools.islice(nonblank, size)):
                        counts[key] += len(chunk)
                        yield type_block(typed, chunk, tags)
                self._report_quirks(typed, counter, member.name)

    def _report_unknown(self, typed: Typer, member: str) -> None:
        new = [c for c in typed.unknown if c not in self._reported]
        if new:
            self._reported.update(new)
            self.logger.warning(
                "%s: %s has %d column(s) %s, kept in extra_columns: %s",
                self.name,
                member,
                len(new),
                self.unknown_means,
                ", ".join(new),
            )

    def _report_quirks(self, typed: Typer, counter: DecodeCounter, member: str) -> None:
        if typed.ragged_rows:
            self.logger.warning(
                "%s: %s: %d row(s) did not have %d fields; kept what was there "
                "(missing fields null, surplus in extra_columns).",
                self.name,
                member,
                typed.ragged_rows,
                typed.width,
            )
        for column, n in typed.bad_values.items():
            # Once per column and run a WARNING; later windows only count (Intercom writes
            # `n/a` in durations on every reporting window: nothing for a person to do twice).
            first = column not in self._misfits
            self._misfits.add(column)
            self.logger.log(
                logging.WARNING if first else logging.INFO,
                "%s: %s: %d value(s) of %s did not fit its type; kept as text in extra_columns%s.",
                self.name,
                member,
                n,
                column,
                " (later windows: at INFO)" if first else "",
            )
        counter.report(self.logger, member)


@contextlib.contextmanager
def _fewer_collections() -> t.Iterator[None]:
    # Every CSV row is a list of strings and every block a few thousand more containers, all
    # freed by reference counting as soon as the block is written: the cyclic collector finds
    # nothing in them, yet at its default pace it ran thousands of times per million receipts
    # and, through the tap's long-lived objects, cost about a quarter of the export's CPU time
    # (bench/README.md). Collections are made rarer while rows are read, not turned off.
    young, *older = gc.get_threshold()
    gc.set_threshold(max(young, _GC_YOUNG), *older)
    try:
        yield
    finally:
        gc.set_threshold(young, *older)
