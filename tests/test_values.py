"""Times read a whole column at once, or as microseconds, are exactly what `to_datetime` reads."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from tap_intercom_export.content.values import time_column, to_datetime, to_timestamp_us

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The edges: the first and last second a datetime holds, one past it, 11 and 12 digits, the
# spellings Intercom writes and others to_datetime reads or refuses.
EDGES = ["0", "59", "60", "99999999999", "253402300799", "253402300800", "99999999999999",
         "000001699920000", "1699920000.5", "1699920000.", "١٦٩٩٩٢٠٠٠٠", "²",
         "2023-11-14 00:00:00 UTC", "2023-02-30 00:00:00 UTC", "2023-11-14 24:00:00 UTC",
         "2023-11-14 23:59:60 UTC", "2023-11-14T00:00:00 UTC", "2023-11-14 00:00:00.5 UTC",
         "2023-11-14T00:00+01 UTC", "2023-W46-2 00:00:00 UTC", "0001-01-01 00:00:00 UTC",
         "9999-12-31 23:59:59 UTC", "2023-11-14T00:00:00Z", "2023-11-14T01:00:00+01:00",
         "2023-11-14", "n/a", " 1699920000", "+1699920000", "1_699_920_000"]  # fmt: skip


def micros(text: str) -> int:
    """The instant of to_datetime's RFC 3339 text, in microseconds since 1970."""
    return (datetime.fromisoformat(text) - EPOCH) // timedelta(microseconds=1)


def outcome(fn, value: str):
    try:
        return fn(value)
    except (ValueError, OverflowError):
        return "refused"


def random_values(rng: random.Random, n: int) -> list[str]:
    values = []
    for _ in range(n):
        ts = rng.randrange(0, 253402300800)
        pick = rng.random()
        if pick < 0.3:
            values.append("")
        elif pick < 0.6:
            values.append(str(ts))
        elif pick < 0.9:
            values.append(
                datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            )
        else:
            values.append(rng.choice(EDGES))
    return values


@pytest.mark.parametrize("value", EDGES)
def test_microseconds_are_the_instant_of_the_text(value: str) -> None:
    text = outcome(to_datetime, value)
    expected = text if text == "refused" else micros(text)
    assert outcome(to_timestamp_us, value) == expected


def test_microseconds_agree_on_random_times() -> None:
    rng = random.Random(23)
    for value in filter(None, random_values(rng, 5000)):
        text = outcome(to_datetime, value)
        assert outcome(to_timestamp_us, value) == (text if text == "refused" else micros(text))


def per_value(column: list[str], *, as_micros: bool) -> list | str:
    convert = to_timestamp_us if as_micros else to_datetime
    try:
        return [convert(v) if v else None for v in column]
    except (ValueError, OverflowError):
        return "refused"


@pytest.mark.parametrize("as_micros", [False, True], ids=["text", "micros"])
def test_a_column_at_once_is_every_value_alone(as_micros: bool) -> None:  # noqa: FBT001
    rng = random.Random(5)
    columns = [
        [str(1_699_920_000 + i) for i in range(500)],  # one spelling: unix seconds
        ["", *(str(1_699_920_000 + 7 * i) for i in range(300)), ""],
        [
            datetime.fromtimestamp(1_699_920_000 + 13 * i, timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S UTC"
            )
            for i in range(400)
        ],
        ["", "", ""],
    ]
    columns += [random_values(rng, rng.randrange(1, 40)) for _ in range(400)]
    columns += [[rng.choice(EDGES)] for _ in range(60)]
    read_at_once = 0
    for column in columns:
        at_once = time_column(column, micros=as_micros)
        if at_once is not None:
            read_at_once += 1
            assert at_once == per_value(column, as_micros=as_micros), column
    # The spellings Intercom writes, one per column, are read at once.
    assert read_at_once > 4
    assert time_column(columns[0], micros=as_micros) is not None
    assert time_column(columns[2], micros=as_micros) is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Unix seconds are read up to 14 characters, a fraction included; longer is not a time.
        ("1699920000.125", "2023-11-14T00:00:00.125000+00:00"),
        ("1699920000.1250", "refused"),
        ("99999999999999", "refused"),  # 14 digits: after the year 9999
        ("253402300799", "9999-12-31T23:59:59+00:00"),
    ],
)
def test_unix_seconds_are_read_up_to_fourteen_characters(value: str, expected: str) -> None:
    assert outcome(to_datetime, value) == expected
    assert outcome(to_timestamp_us, value) == (
        expected if expected == "refused" else micros(expected)
    )


def test_a_time_after_the_year_9999_is_refused_saying_so() -> None:
    with pytest.raises(OverflowError, match="253402300800 seconds is after the year 9999"):
        to_timestamp_us("253402300800")
