"""CSV text to typed values: times, counts, rates; one value at a time or a whole column at once.

Intercom writes a time as unix seconds in some files and as `YYYY-MM-DD HH:MM:SS UTC` in others;
a time becomes RFC 3339 text in UTC (RECORD, JSONL) or microseconds since 1970 (Parquet). The
column functions give exactly what the value functions give for every value of a column, or
None when a value of the column needs the value functions (tests/test_values.py checks both).
"""

from __future__ import annotations

import math
import re
import typing as t
from datetime import datetime, timedelta, timezone

_UTC = timezone.utc
# `YYYY-MM-DDTHH:MM:` by unix minute: formatting a datetime costs more than the rest of a row's
# typing, and an export's timestamps crowd into few minutes. Bounded, so memory stays flat.
_MINUTES: dict[int, str] = {}
_MINUTES_KEPT = 1 << 14
# Longest unix timestamp taken as one (seconds, with a fraction): anything longer is not a time.
_UNIX_MAX_LEN = 14
_INTERCOM_UTC_LEN = len("YYYY-MM-DD HH:MM:SS UTC")
_SECONDS = [f"{s:02d}+00:00" for s in range(60)]
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = timedelta(microseconds=1)
# 9999-12-31T23:59:59Z: the last whole second a datetime holds (to_datetime refuses later ones).
_UNIX_LAST = 253_402_300_799
# Unix seconds of at most this many digits are before _UNIX_LAST: no range check needed.
_SHORT_UNIX_LEN = len(str(_UNIX_LAST)) - 1


def to_datetime(value: str) -> str:
    """Turn unix seconds or Intercom's `YYYY-MM-DD HH:MM:SS UTC` into RFC 3339 (UTC)."""
    # Fast paths for the two spellings Intercom writes (a few timestamps per row, millions of
    # rows); both give exactly what the general path below gives.
    if value.isdigit() and len(value) <= _UNIX_MAX_LEN:
        minute, second = divmod(int(value), 60)
        return _minute_text(minute) + _SECONDS[second]
    if len(value) == _INTERCOM_UTC_LEN and value.endswith(" UTC"):
        naive = datetime.fromisoformat(value[:19])
        if naive.tzinfo is None:
            return naive.isoformat() + "+00:00"
    return _instant(value).isoformat()


def to_timestamp_us(value: str) -> int:
    """The instant `to_datetime` reads, as microseconds since 1970 UTC (a Parquet timestamp).

    Refuses exactly what `to_datetime` refuses.
    """
    if value.isdigit() and len(value) <= _UNIX_MAX_LEN:
        seconds = int(value)
        if seconds > _UNIX_LAST:
            msg = f"{value} seconds is after the year 9999"
            raise OverflowError(msg)
        return seconds * 1_000_000
    if len(value) == _INTERCOM_UTC_LEN and value.endswith(" UTC"):
        naive = datetime.fromisoformat(value[:19])
        if naive.tzinfo is None:
            return (naive.replace(tzinfo=_UTC) - _EPOCH) // _MICROSECOND
    return (_instant(value) - _EPOCH) // _MICROSECOND


def _minute_text(minute: int) -> str:
    prefix = _MINUTES.get(minute)
    if prefix is None:
        if len(_MINUTES) >= _MINUTES_KEPT:
            _MINUTES.clear()
        # Raises for a minute a datetime cannot hold, as to_datetime must.
        prefix = datetime.fromtimestamp(minute * 60, _UTC).isoformat()[:17]
        _MINUTES[minute] = prefix
    return prefix


def _instant(value: str) -> datetime:
    # Every other spelling: unix seconds with a fraction, RFC 3339 with an offset or Z, naive
    # times (taken as UTC), a trailing " UTC".
    head = value[:1]
    if head.isdigit() and len(value) <= _UNIX_MAX_LEN and value.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), _UTC)
    if value.endswith(" UTC"):
        value = value[:-4]
    elif value.endswith("Z"):
        value = value[:-1]
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_UTC)
    return parsed.astimezone(_UTC)


def to_integer(value: str) -> int:
    """Read a count, tolerating `12.0` and thousands separators."""
    try:
        return int(value)
    except ValueError:
        number = float(value.replace(",", ""))
        if not number.is_integer():
            raise
        return int(number)


def to_number(value: str) -> float:
    """Read a rate; a trailing `%` is dropped and the number kept as written."""
    number = float(value.removesuffix("%"))
    # float() reads "nan" and "inf", which JSON cannot hold: such text is kept in extra_columns.
    if not math.isfinite(number):
        msg = f"{value!r} is not a finite number"
        raise ValueError(msg)
    return number


# -- whole columns -----------------------------------------------------------------------------

# `YYYY-MM-DD HH:MM` of Intercom's text spelling (ASCII digits only), and its `:SS UTC` ends.
_TEXT_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}")
_TEXT_SECONDS = {f":{s:02d} UTC": s for s in range(60)}


def time_column(column: t.Sequence[str], *, micros: bool) -> list[t.Any] | None:
    """A column's times (None where empty) if every value has one spelling Intercom writes.

    RFC 3339 text, or (`micros`) microseconds since 1970. None: some value needs `to_datetime`
    (another spelling, a fraction, an invalid date), which the caller then calls per value.
    """
    values = [v for v in column if v]
    if not values:
        return [None] * len(column)
    if all(map(str.isdigit, values)):
        if max(map(len, values)) > _SHORT_UNIX_LEN:
            return None
        try:
            if micros:
                return [int(v) * 1_000_000 if v else None for v in column]
            seconds = [int(v) if v else None for v in column]
        except ValueError:  # a digit int() does not read (e.g. superscripts)
            return None
        minutes = {s // 60: "" for s in seconds if s is not None}
        for minute in minutes:
            minutes[minute] = _minute_text(minute)
        return [minutes[s // 60] + _SECONDS[s % 60] if s is not None else None for s in seconds]
    return _text_column(column, values, micros=micros)


def _text_column(column: t.Sequence[str], values: list[str], *, micros: bool) -> list[t.Any] | None:
    # Every value `YYYY-MM-DD HH:MM:SS UTC`: each distinct minute is checked (and read) once,
    # and a value is its minute plus its seconds.
    if not {v[16:] for v in values} <= _TEXT_SECONDS.keys():
        return None
    minutes: dict[str, t.Any] = {}
    for prefix in {v[:16] for v in values}:
        if not _TEXT_MINUTE.fullmatch(prefix):
            return None
        try:
            naive = datetime.fromisoformat(prefix + ":00")
        except ValueError:
            return None
        minutes[prefix] = (
            (naive.replace(tzinfo=_UTC) - _EPOCH) // _MICROSECOND
            if micros
            else naive.isoformat()[:17]
        )
    if micros:
        return [minutes[v[:16]] + _TEXT_SECONDS[v[16:]] * 1_000_000 if v else None for v in column]
    return [minutes[v[:16]] + v[17:19] + "+00:00" if v else None for v in column]
