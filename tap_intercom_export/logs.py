"""What the tap says at INFO: a person's account of the run, the SDK's routine lines at DEBUG.

The SDK logs at INFO what a reader of a long run does not need: every child stream it wires
("Added ... as child stream", 22 per run), every child sync it starts (twice per stream per export
window), its stream selection, and a WARNING that an unsorted stream's progress is not resumable,
which the README explains and no one can act on. Those lines are shown at DEBUG only; the tap's
own lines say what a run does instead. The SDK's METRIC lines are off unless the setting
`metrics_log_level` is `info` (or the log level is DEBUG).
"""

from __future__ import annotations

import logging
import typing as t

from singer_sdk.metrics import get_metrics_logger
from typing_extensions import override

# The SDK's message templates (singer-sdk 0.54.9), as given to the logger: shown at DEBUG only.
ROUTINE = frozenset(
    {
        "Added '%s' as child stream to '%s'",
        "Beginning sync of '%s' in %s mode",
        "Beginning sync of '%s' in %s mode with context keys: %s",
        "Starting incremental sync of '%s' with bookmark value: %s",
        "Skipping deselected stream '%s'.",
        "Skipping parse of env var settings...",
        "Stream is assumed to be unsorted, progress is not resumable if interrupted",
        # Logged as the error goes up; the error's own line (cli.py) says what happened.
        "An unhandled error occurred while syncing '%s'",
    }
)


class RoutineToDebug(logging.Filter):
    """Shows the SDK's routine lines as DEBUG lines, and only when DEBUG is on."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a routine line; drop it unless its logger is enabled for DEBUG."""
        if record.msg not in ROUTINE or record.levelno <= logging.DEBUG:
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


_FILTER = RoutineToDebug()


def quiet(logger: logging.Logger) -> None:
    """Put the routine-line filter on a logger (filters see only a logger's own records)."""
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


def quiet_sdk(tap_logger: logging.Logger) -> None:
    """The filter on the tap's logger and on the SDK's own (its state helper's warning)."""
    quiet(tap_logger)
    quiet(logging.getLogger("singer_sdk"))


def set_metrics(level: str, plugin_logger: logging.Logger) -> None:
    """METRIC lines on at `level` info, or when the tap logs at DEBUG; else off."""
    on = level == "info" or plugin_logger.isEnabledFor(logging.DEBUG)
    get_metrics_logger().setLevel(logging.INFO if on else logging.WARNING)


def duration(seconds: float) -> str:
    """`42 s`, `3 min 5 s`, `2 h 4 min`: elapsed time as a person reads it."""
    seconds = int(seconds)
    if seconds < 60:  # noqa: PLR2004
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:  # noqa: PLR2004
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def summary(counts: t.Mapping[str, int], selected: t.Sequence[str], seconds: float) -> str:
    """The run's last line: records per stream, and the selected streams that had none."""
    total = sum(counts.values())
    parts = [f"{name} {counts[name]}" for name in sorted(counts) if counts[name]]
    empty = [name for name in selected if not counts.get(name)]
    line = f"Run done in {duration(seconds)}: {total} records"
    if parts:
        line += f" ({', '.join(parts)})"
    if empty:
        line += f"; no records for {len(empty)} selected stream(s)"
    return line + "."


def start(selected: t.Sequence[str], bookmarked: t.Collection[str]) -> str:
    """The run's first line: what is selected, per source, and where it starts from."""
    groups = (
        ("message data export", "message_"),
        ("contact events", "contact_"),
        ("reporting data export", "reporting_"),
    )
    parts = []
    for label, prefix in groups:
        names = [n for n in selected if n.startswith(prefix)]
        if names:
            shown = ", ".join(names) if len(names) <= 3 else f"{len(names)} streams"  # noqa: PLR2004
            parts.append(f"{label} ({shown})")
    if not parts:
        return "Run starts: no stream is selected."
    ours = [n for n in selected if n in bookmarked]
    origin = (
        f"from the state's bookmarks ({len(ours)} of {len(selected)} streams have one)"
        if ours
        else "without bookmarks: from start_date (default 30 days ago)"
    )
    return f"Run starts: {'; '.join(parts)}; {origin}."
