"""How the message data export names its CSV files: `opens_20240101-000000.csv` is kind `open`."""

from __future__ import annotations

from tap_intercom_export.content.schemas import FILE_KINDS
from tap_intercom_export.jobs.archive import member_stem


def _aliases() -> dict[str, str]:
    names: dict[str, str] = {}
    for kind in FILE_KINDS:
        head, _, tail = kind.rpartition("_")
        plural_tail = _plural(tail)
        for name in (kind, kind + "s", f"{head}_{plural_tail}" if head else plural_tail):
            names[name] = kind
    names["answers_combined"] = "answer_combined"
    names["fin_steps_reached"] = "fin_step_reached"
    return names


def _plural(word: str) -> str:
    if word.endswith("y"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"  # goal_success -> goal_successes
    return word + "s"


_KIND_ALIASES = _aliases()


def kind_of_member(name: str) -> str | None:
    """Map a member file name (`open_20240101-000000.csv`, `opens_...`) to its file kind."""
    stem = member_stem(name)
    if stem is None:
        return None
    return _KIND_ALIASES.get(stem, stem)


def kind_from_header(header: list[str]) -> str:
    """Guess the kind of a lone CSV (Intercom's documented single gzipped CSV) from its columns."""
    cols = set(header)
    if {"receipt_id", "received_at", "content_id"} <= cols:
        return "receipt"
    return max(FILE_KINDS, key=lambda kind: len(cols & set(FILE_KINDS[kind].columns)))


class ContentNamer:
    """The message data export's member naming, for `Archive.open`."""

    kind_of_member = staticmethod(kind_of_member)
    kind_from_header = staticmethod(kind_from_header)
