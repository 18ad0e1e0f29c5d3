"""Counts and times read in C for Parquet (`arrow_column`) are what the Python path reads.

Expected values come from the text through `int` and `datetime.strptime`; for the odd values a
column may hold, C must either read exactly what the per-value functions read or step aside
(None), never read something else.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from tap_intercom_export.content import parquet
from tap_intercom_export.content.schemas import FILE_KINDS, RowTyper
from tap_intercom_export.content.values import to_integer, to_timestamp_us

FILLED = 300  # values per column: above the count where C is worth its fixed cost
ODD_TIMES = ["0", "99999999999", "100000000000", "253402300799", "١٦٩٩٩٢٠٠٠٠", "²", "-5", "+5",
             " 1699920000", "1699920000.5", "1_699_920_000", "2023-02-30 00:00:00 UTC",
             "2023-11-14 24:00:00 UTC", "2023-11-14 23:60:00 UTC", "2023-11-14 23:59:60 UTC",
             "0000-01-01 00:00:00 UTC", "0001-01-01 00:00:00 UTC", "9999-12-31 23:59:59 UTC",
             "2023-1-14 00:00:00 UTC", "2023-11-14 00:00:00 utc", "2023-11-14T00:00:00Z",
             "2023-11-14 00:00:00.5 UTC", "n/a"]  # fmt: skip
ODD_COUNTS = ["0", "007", "-5", "+5", "1,234", "12.0", "٣", " 4", "999999999999999999",
              "1000000000000000000", "99999999999999999999999", "n/a"]  # fmt: skip


def micros(text: str) -> int:
    """`YYYY-MM-DD HH:MM:SS UTC` or unix seconds, as microseconds since 1970."""
    if text.isdigit():
        return int(text) * 10**6
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 10**6


def per_value(column: list[str], convert) -> list | None:
    """The Python path, value by value; None if it refuses a value (it keeps it as text)."""
    try:
        return [convert(v) if v else None for v in column]
    except (ValueError, OverflowError):
        return None


def unix_column(rng: random.Random) -> list[str]:
    return [str(1_699_920_000 + rng.randrange(86_400)) for _ in range(FILLED)]


def text_column(rng: random.Random) -> list[str]:
    return [
        datetime.fromtimestamp(1_699_920_000 + rng.randrange(86_400 * 3), timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        )
        for _ in range(FILLED)
    ]


@pytest.mark.parametrize("make", [unix_column, text_column])
def test_a_dense_column_is_read_in_c_with_its_empty_fields_null(make) -> None:
    column = make(random.Random(3))
    column[7] = column[150] = ""
    got = parquet.arrow_column(tuple(column), is_time=True)
    assert got is not None
    assert got.to_pylist() == [micros(v) if v else None for v in column]


def test_counts_are_read_in_c() -> None:
    column = [str(n) for n in range(FILLED)] + ["", "18"]
    got = parquet.arrow_column(tuple(column), is_time=False)
    assert got is not None
    assert got.to_pylist() == [*range(FILLED), None, 18]


def test_a_sparse_column_stays_in_python() -> None:
    # Fewer values than MIN_VALUES: pyarrow's calls would cost more than the values.
    column = ["1699920000"] * (parquet._MIN_VALUES - 1) + [""] * 800
    assert parquet.arrow_column(tuple(column), is_time=True) is None
    column[-1] = "1699920000"
    assert parquet.arrow_column(tuple(column), is_time=True) is not None


@pytest.mark.parametrize("odd", ODD_TIMES)
@pytest.mark.parametrize("make", [unix_column, text_column])
def test_an_odd_time_is_read_as_python_reads_it_or_left_to_python(make, odd: str) -> None:
    column = make(random.Random(11))
    column[42] = odd
    got = parquet.arrow_column(tuple(column), is_time=True)
    if got is not None:
        assert got.to_pylist() == per_value(column, to_timestamp_us), odd


@pytest.mark.parametrize("odd", ODD_COUNTS)
def test_an_odd_count_is_read_as_python_reads_it_or_left_to_python(odd: str) -> None:
    column = [str(n) for n in range(FILLED)]
    column[42] = odd
    got = parquet.arrow_column(tuple(column), is_time=False)
    if got is not None:
        assert got.to_pylist() == per_value(column, to_integer), odd


def test_what_python_refuses_c_does_not_read() -> None:
    # Values the per-value path refuses must reach it (they go to extra_columns there).
    for odd in ["2023-02-30 00:00:00 UTC", "2023-11-14 23:59:60 UTC", "0000-01-01 00:00:00 UTC"]:
        column = text_column(random.Random(1))
        column[0] = odd
        assert per_value(column, to_timestamp_us) is None
        assert parquet.arrow_column(tuple(column), is_time=True) is None, odd


def test_a_typer_reading_in_c_gives_the_records_of_the_python_typer() -> None:
    spec = FILE_KINDS["receipt"]
    header = list(spec.columns)
    rng = random.Random(8)
    times, texts = unix_column(rng), text_column(rng)
    rows = []
    for i in range(FILLED):
        row = [f"v{i}"] * len(header)
        for j, name in enumerate(header):
            if name == "received_at":
                row[j] = times[i]
            elif name == "first_click":
                row[j] = texts[i] if i % 3 else ""
            elif name == "first_open":
                row[j] = "2023-02-30 00:00:00 UTC" if i == 5 else times[i]  # refused: kept as text
            elif name.startswith("first_"):
                row[j] = ""
        rows.append(row)
    lineage = {"export_job_id": "j1"}
    in_python = RowTyper(spec, header, times_us=True).type_block([list(r) for r in rows], lineage)
    in_c = RowTyper(spec, header, times_us=True, in_c=parquet.arrow_column)
    block = in_c.type_block([list(r) for r in rows], lineage)
    assert block.records() == in_python.records()
    assert block.records()[1]["received_at"] == micros(times[1])
    assert block.records()[5]["extra_columns"] == {"first_open": "2023-02-30 00:00:00 UTC"}
    assert in_c.bad_values == {"first_open": 1}


class _Libc:
    """Records mallopt calls instead of making them."""

    def __init__(self, calls: list) -> None:
        self.mallopt = lambda *args: calls.append(args)


def test_glibc_keeps_its_mmap_threshold_unless_the_environment_sets_one(monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(parquet.ctypes, "CDLL", lambda _name: _Libc(calls))
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert parquet._fixed_mmap_threshold()
    assert calls == [(-3, 128 * 1024)]  # M_MMAP_THRESHOLD in glibc's malloc.h, its default
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert not parquet._fixed_mmap_threshold()
    assert len(calls) == 1


def test_without_mallopt_nothing_is_set(monkeypatch) -> None:
    def no_libc(_name):
        raise OSError

    monkeypatch.setattr(parquet.ctypes, "CDLL", no_libc)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert not parquet._fixed_mmap_threshold()  # macOS, musl: no error, nothing set
