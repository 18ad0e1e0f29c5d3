"""Parquet BATCH files, written from the typed columns of each block (pyarrow, the `parquet` extra).

Each stream's JSON schema gives the Parquet schema: `date-time` strings become UTC timestamps
(microseconds), integers int64, numbers float64, text strings. Rows are gathered into row groups
of at most `ROW_GROUP_ROWS`, so memory stays flat however many rows a file holds.

SDK-based loaders read a Parquet batch file with `pyarrow.parquet.read_table(...).to_pylist()`
(singer_sdk/sinks/core.py `process_batch_files`, 0.54.9, which target-postgres 0.8.1 uses
unchanged): a value reaches the loader as that gives it back. So an object column (`extra_columns`,
`data`: keys that vary from file to file) is a struct whose fields are exactly the keys of its
rows: a struct gives back every field of its type, and a row with other keys than the file's
first (or a first key where the file started without any) starts a new file instead. Rows of one
member share their keys, so this splits a window's files only where a row has a value that did
not fit its type. A number that is not finite is null, as msgspec writes it in JSON.

Members are read by pyarrow's CSV reader (`ArrowReader.read_member`): the text stays in Arrow,
and counts and times are cast in C (pyarrow.compute) when every value of a block's column is plain
digits or Intercom's `YYYY-MM-DD HH:MM:SS UTC`, which is most of an export; any other column goes
through the typer's Python path (content/values.py), so the values are the same either way
(tests/test_parquet_columns.py). Where Arrow would read a row otherwise than `csv.reader` it stops
with an error instead, and the reader goes on in Python from there (jobs/rows.py). Date-times are
microseconds since 1970.
"""

from __future__ import annotations

import ctypes
import functools
import os
import typing as t
from datetime import date, datetime, timedelta, timezone

# The C library's allocator, not pyarrow's default (mimalloc), which keeps what it freed: with a
# row group encoded in a second thread, the tap's peak was ~20 MB higher (bench/README.md).
# Chosen before pyarrow is first imported, which is only when Parquet files are written; an
# ARROW_DEFAULT_MEMORY_POOL of the environment wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from typing_extensions import override

from tap_intercom_export import batchformat as fmt
from tap_intercom_export import sdk
from tap_intercom_export.content.batch import BatchFiles
from tap_intercom_export.jobs.rows import Block


def _fixed_mmap_threshold() -> bool:
    """Keep glibc's mmap threshold at its default (128 KiB) instead of letting it grow.

    glibc raises the threshold each time a large block is freed (up to 32 MB); after that the
    ~1 MB blocks the CSV reader and the writer allocate and free come from the heap, which keeps
    them: the tap's peak RSS went 182 -> 142 MB at the same speed (bench/README.md). glibc only;
    MALLOC_MMAP_THRESHOLD_ in the environment wins. Whether it was set.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt)
        mallopt = None
    if mallopt is None:
        return False
    mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    return True


_M_MMAP_THRESHOLD = -3  # glibc malloc.h
_fixed_mmap_threshold()

if t.TYPE_CHECKING:
    from tap_intercom_export.content.schemas import RowTyper

#: Rows per row group: a few MB of Arrow data for the widest file kind (receipts), which with
#: pyarrow's own ~70 MB keeps the tap under 150 MB (bench/bench_export.py).
ROW_GROUP_ROWS = 10_000

_TIMESTAMP = pa.timestamp("us", tz="UTC")
_FLOAT = pa.float64()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Arrow types of the Parquet kinds (a text object's struct fields are per file).
_ARROW = {
    fmt.TIMESTAMP: _TIMESTAMP,
    fmt.TEXT: pa.string(),
    fmt.INTEGER: pa.int64(),
    fmt.NUMBER: _FLOAT,
    fmt.BOOLEAN: pa.bool_(),
}


#: Intercom's text spelling of a time with hour, minute and second in range; the date is checked
#: once per distinct day, because strptime alone reads 2023-02-30 as March 2nd and year 0 as one.
_INTERCOM_TIME = pc.MatchSubstringOptions(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9] UTC$"
)
_STRPTIME = pc.StrptimeOptions("%Y-%m-%d %H:%M:%S UTC", "us")
_DAY = pc.SliceOptions(0, 10)
_MILLION = pa.scalar(1_000_000, pa.int64())  # a Python int would be converted at every call
_NO_TEXT = pa.scalar(None, pa.string())
#: Largest unix time (seconds) or count read in C; larger ones take the Python path, which
#: checks their range (values.to_timestamp_us) or makes big ints (values.to_integer).
_TIME_MAX = 10**11 - 1
_COUNT_MAX = 10**18 - 1
#: Values below which a column costs less in Python than pyarrow's ~0.1 ms of calls (a receipt's
#: `first_*` columns are mostly empty).
_MIN_VALUES = 128


def arrow_column(column: t.Sequence[str], *, is_time: bool) -> pa.Array | None:
    """A column of counts (int64) or times (microseconds since 1970, int64) read in C, or None.

    None when a value is neither plain ASCII digits nor, for a time, Intercom's text spelling,
    or the column has few values: the typer then reads it in Python. Empty fields are null.
    """
    empty = column.count("")
    if len(column) - empty < _MIN_VALUES:
        return None
    text = pa.array([v or None for v in column] if empty else column, pa.string())
    joined = "".join(column)
    return _read_text(text, is_time=is_time, digits=joined.isascii() and joined.isdigit())


def _read_text(text: pa.Array, *, is_time: bool, digits: bool) -> pa.Array | None:  # noqa: PLR0911 - each return is a reason to leave the column to Python
    """`arrow_column` of text already in Arrow (null where empty); `digits`: all ASCII digits."""
    if digits:
        try:
            numbers = pc.cast(text, pa.int64())
        except pa.ArrowInvalid:  # more than int64 holds
            return None
        if pc.max(numbers).as_py() > (_TIME_MAX if is_time else _COUNT_MAX):
            return None
        return pc.multiply(numbers, _MILLION) if is_time else numbers
    if not is_time:
        return None
    if not pc.all(pc.call_function("match_substring_regex", [text], _INTERCOM_TIME)).as_py():
        return None
    days = pc.unique(pc.call_function("utf8_slice_codeunits", [text], _DAY))
    try:
        for day in days.drop_null().to_pylist():
            date.fromisoformat(day)
    except ValueError:
        return None
    return pc.call_function("strptime", [text], _STRPTIME).cast(pa.int64())


#: How Arrow reads a member: as Python's csv module does with its default dialect (quoted
#: fields may hold newlines); where the two would differ (a row of another width, bytes that
#: are not UTF-8, an unterminated quote) Arrow stops with an error and Python reads on.
_PARSE = pcsv.ParseOptions(newlines_in_values=True)
#: Bytes of CSV per block Arrow reads (~2,000 receipts): larger blocks are a little faster and
#: cost ~40 MB more peak memory per MB (bench/README.md).
_CSV_BLOCK = 1 << 19


class ArrowReader:
    """Reads count and time columns, or whole members, in C (content/schemas.py ColumnReader)."""

    def __call__(self, column: t.Sequence[str], *, is_time: bool) -> pa.Array | None:
        """`arrow_column`."""
        return arrow_column(column, is_time=is_time)

    def read_member(
        self,
        typer: RowTyper,
        opener: t.Callable[[], t.ContextManager[t.BinaryIO]],
        lineage: dict[str, t.Any],
    ) -> t.Iterator[Block]:
        """Typed blocks of a member's rows (its header skipped), read by pyarrow's CSV reader.

        Stops quietly at the first block Arrow cannot read (`typer.complete` stays False): the
        caller reads the rest in Python, from the first row not yielded.
        """
        typer.complete = False
        names = [f"c{i}" for i in range(typer.width)]
        convert = pcsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        read = pcsv.ReadOptions(
            column_names=names, skip_rows=1, block_size=_CSV_BLOCK, use_threads=False
        )
        try:
            with opener() as stream, pcsv.open_csv(stream, read, _PARSE, convert) as reader:
                for batch in reader:
                    yield _type_batch(typer, batch.columns, batch.num_rows, lineage)
        except pa.ArrowInvalid:
            return
        typer.complete = True


def _type_batch(typer: RowTyper, cells: list[pa.Array], n: int, lineage: dict[str, t.Any]) -> Block:
    """RowTyper.type_block for a block Arrow read: text stays in Arrow, empty fields null."""
    nulls: list[t.Any] = [None] * n
    columns: dict[str, t.Sequence[t.Any]] = dict.fromkeys(typer.missing, nulls)
    uniform = {*typer.missing, *lineage}
    extras = typer.extras([cells[i].to_pylist() for i, _ in typer.unknown_at], n)
    for i, name, is_text, is_time, readable in typer.known:
        empty = pc.equal(cells[i], "")
        blanks = empty.true_count
        if blanks == n:
            columns[name] = nulls
            uniform.add(name)
            continue
        text = pc.if_else(empty, _NO_TEXT, cells[i]) if blanks else cells[i]
        if is_text:
            columns[name] = text
            continue
        typed = None
        if readable:
            digits = pc.all(pc.ascii_is_decimal(text)).as_py()
            typed = _read_text(text, is_time=is_time, digits=digits)
        columns[name] = (
            typed if typed is not None else typer.type_column(name, cells[i].to_pylist(), extras)
        )
    return typer.finish_block(n, columns, uniform, extras, lineage)


class ParquetFiles(BatchFiles):
    """Parquet files of one stream's selected properties, one row group per ROW_GROUP_ROWS rows."""

    suffix = ".parquet"
    times_us = True
    in_c = ArrowReader()
    block_rows = 4000

    def __init__(self, *args: t.Any) -> None:
        """The base's files; columns: the schema's properties the catalog selects."""
        super().__init__(*args)
        stream, config = self.stream, self.config
        mask = stream.mask
        kinds = {
            name: t.cast("str", fmt.parquet_kind(prop))
            for name, prop in stream.schema["properties"].items()
            if mask[("properties", name)]
        }
        #: Arrow type per column (None: a text object, a struct per file).
        self.types = {name: _ARROW.get(kind) for name, kind in kinds.items()}
        self.objects = [name for name, kind in self.types.items() if kind is None]
        # pyarrow's default codec (snappy) unless a codec is named, as the SDK's batcher does.
        compression = config.encoding.compression
        self.compression = compression or "snappy"
        self._raw: t.BinaryIO | None = None
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        #: Per object column, the keys of this file's struct (None: the file has none).
        self._keys: dict[str, tuple[str, ...] | None] = {}
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    @override
    def open(self, raw: t.BinaryIO) -> None:
        """Start a file; its schema waits for its first rows (the keys of its object columns)."""
        self._raw = raw
        self._writer = None

    @override
    def append(self, part: Block) -> int:
        """Add the leading rows of `part` whose object keys match this file's (0: none do)."""
        if self.deselected is None:
            records = part.records()
            for record in records:
                sdk.drop_deselected(record, self.stream, None)
            part = Block.of_records(records)
        keys = {name: _keys(part.column(name)) for name in self.objects}
        if self._writer is None:
            self._start({name: rows[0] if rows else None for name, rows in keys.items()})
        taken = part.size
        for name, rows in keys.items():
            if rows:
                mine = self._keys[name]
                taken = min(
                    taken,
                    next((i for i, k in enumerate(rows) if k is not None and k != mine), taken),
                )
        if not taken:
            return 0
        if taken < part.size:
            part = part.slice(0, taken)
        schema = t.cast("pa.Schema", self._schema)
        arrays = [
            _repeat(part.column(f.name)[0], f.type, taken)
            if f.name in part.uniform
            else _array(part.column(f.name), f.type)
            for f in schema
        ]
        self._pending.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
        self._pending_rows += taken
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._write_group()
        return taken

    def _start(self, keys: dict[str, tuple[str, ...] | None]) -> None:
        self._keys = keys
        fields = []
        for name, kind in self.types.items():
            if kind is None:
                mine = keys[name]
                fields.append(
                    pa.field(
                        name, pa.struct([(k, pa.string()) for k in mine]) if mine else pa.null()
                    )
                )
            else:
                fields.append(pa.field(name, kind))
        self._schema = pa.schema(fields)
        # No dictionary pages: a batch file is read once, whole; without them it is written
        # and read about twice as fast and, for these columns, is no bigger.
        self._writer = pq.ParquetWriter(
            self._raw,
            self._schema,
            compression=self.compression,
            use_dictionary=False,
        )

    def _write_group(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending)
            writer = t.cast("pq.ParquetWriter", self._writer)
            # Encoded and compressed beside the typing of the next rows (pyarrow lets go of
            # the GIL); one row group in flight, one gathering.
            self.beside.call(writer.write_table, table, row_group_size=table.num_rows)
            self._pending = []
            self._pending_rows = 0

    @override
    def close(self) -> None:
        """Write the last row group and the footer."""
        self._write_group()
        self.beside.wait()
        if self._writer is not None:
            self._writer.close()
        self._writer = None


def _keys(values: t.Sequence[t.Any]) -> list[tuple[str, ...] | None] | None:
    """Each row's object keys, or None when no row has an object."""
    if values.count(None) == len(values):
        return None
    return [None if v is None else tuple(v) for v in values]


def _array(values: t.Sequence[t.Any], kind: pa.DataType) -> pa.Array:
    """One column of a block as Arrow (the typer's values, as a loader would read them)."""
    if isinstance(values, pa.Array):  # read in C: int64 counts or microseconds
        return values.cast(kind)
    if kind == _TIMESTAMP:
        first = next((v for v in values if v is not None), None)
        if isinstance(first, str):
            # The typer gives microseconds (RowTyper times_us); other typers give RFC 3339.
            values = [_micros(v) if v is not None else None for v in values]
    return pa.array(values, kind)


def _repeat(value: t.Any, kind: pa.DataType, size: int) -> pa.Array:
    """A column of one repeated value (lineage, or null throughout)."""
    if value is None:
        return pa.nulls(size, kind)
    if kind == _TIMESTAMP and isinstance(value, str):
        value = _micros(value)
    return pa.repeat(pa.scalar(value, kind), size)


@functools.lru_cache(maxsize=1024)
def _micros(value: str) -> int:
    """Microseconds since 1970 of an RFC 3339 time with an offset (as the typers write them)."""
    return (datetime.fromisoformat(value) - _EPOCH) // timedelta(microseconds=1)
