"""The rows of a finished export's CSV members as records, with lineage; what did not fit, logged.

Every export stream reads its window the same way: member after member, each row typed by the
source's typer (content/schemas.py `RowTyper`, reporting/schemas.py `RowMapper`, content/other.py
`OtherRows`), tagged with the job and window it came from. Nothing is dropped for its shape:
columns the schema does not know, ragged rows, values that do not fit their type and bytes that
are not UTF-8 are kept (in `extra_columns`, or as U+FFFD) and counted in one warning each.
"""

from __future__ import annotations

import logging
import typing as t

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

    def records(
        self,
        result: WindowExport,
        members: t.Iterable[Member],
        typer: t.Callable[[Member, list[str]], Typer],
        counts: dict[str, int],
        key: str,
    ) -> t.Iterator[dict[str, t.Any]]:
        """Every row of `members` as a record, typed by `typer(member, header)`.

        Rows are counted in `counts[key]` (from 0) as each member ends.
        """
        counts[key] = 0
        if result.archive is None:
            return
        tags = lineage(result)
        counter = DecodeCounter()
        for member in members:
            count = 0
            with result.archive.open_member(member) as raw:
                header, rows = iter_csv(raw, counter)
                typed = typer(member, header)
                self._report_unknown(typed, member.name)
                type_row = typed.type_row
                for row in rows:
                    if row:
                        count += 1
                        yield type_row(row, tags)
            counts[key] += count
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
