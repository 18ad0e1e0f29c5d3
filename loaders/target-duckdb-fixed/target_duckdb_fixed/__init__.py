r"""target-duckdb 0.8.0, with its CSV COPY told that the temporary file has no header row.

target-duckdb writes each batch to a header-less CSV and loads it with
`COPY t FROM 'f' WITH (new_line '\r\n')`. From DuckDB 1.3 on, the CSV sniffer may decide that
line 1 is a header (it depends on the column types), and that row is silently dropped: one row
per stream per batch, so a one-row batch leaves the table empty (duckdb/duckdb#21653).
The upstream fix (jwills/target-duckdb#58, `HEADER 0`) is merged but not released; this wrapper
applies the same fix and is to be dropped once a release carries it.
"""

from __future__ import annotations

import re
import typing as t

_COPY = re.compile(r"^\s*COPY\s", re.IGNORECASE)
_OPTIONS = re.compile(r"\bWITH\s*\(", re.IGNORECASE)
_HEADER = re.compile(r"\bheader\b", re.IGNORECASE)


def fix_copy(sql: str) -> str:
    """The statement with `header false` added when it is a COPY that does not say."""
    if not isinstance(sql, str) or not _COPY.match(sql) or _HEADER.search(sql):
        return sql
    fixed, n = _OPTIONS.subn("WITH (header false, ", sql, count=1)
    if n != 1:
        # A COPY shaped unlike 0.8.0's would load rows under the sniffer's guess: refuse loudly.
        msg = f"target-duckdb-fixed: unexpected COPY statement, cannot add header false: {sql}"
        raise RuntimeError(msg)
    return fixed


class FixedConnection:
    """A DuckDB connection whose `execute` applies `fix_copy`; everything else is passed on."""

    def __init__(self, conn: t.Any) -> None:
        """Wrap an open DuckDB connection."""
        self._conn = conn

    def execute(self, sql: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Run a statement, COPY fixed."""
        return self._conn.execute(fix_copy(sql), *args, **kwargs)

    def __getattr__(self, name: str) -> t.Any:
        """Anything but `execute` is the connection's own."""
        return getattr(self._conn, name)


def main() -> None:
    """`target-duckdb-intercom`: the upstream entry point with the fixed connection."""
    # Imported here so that `fix_copy` can be tested without the target installed.
    import target_duckdb  # noqa: PLC0415

    connect = target_duckdb.duckdb_connect
    # `main` looks `duckdb_connect` up in its module at call time, so this is all it takes.
    target_duckdb.duckdb_connect = lambda config: FixedConnection(connect(config))
    target_duckdb.main()
