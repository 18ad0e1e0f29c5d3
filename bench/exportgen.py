"""Write a large, realistic message export archive straight to disk, in constant memory.

The fake's own `Dataset.rows` builds every row as a dict in memory, which is fine for tests but
far too slow for millions of rows; this writes the same shapes (see packages/fake-intercom/fake_intercom/exports.py)
row by row into the zip.
"""

from __future__ import annotations

import csv
import io
import typing as t
import zipfile
from datetime import datetime, timezone

from fake_intercom.filekinds import SURVEY_QUESTIONS, header

if t.TYPE_CHECKING:
    from pathlib import Path

# (kind, every, offset): receipt i has a row of that kind when i % every == offset, as in the fake.
DERIVED: list[tuple[str, int, int]] = [
    ("open", 2, 0),
    ("click", 3, 0),
    ("reply", 7, 0),
    ("completion", 5, 0),
    ("series_completion", 13, 0),
    ("series_disengagement", 17, 0),
    ("dismissal", 4, 1),
    ("tour_step_view", 6, 0),
    ("answer", 9, 0),
    ("answer_combined", 9, 0),
    ("checkpoint", 10, 0),
]


def _utc_text(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _receipt(i: int, c: int, pos: dict[str, int], width: int) -> list[str]:
    row = [""] * width
    row[pos["user_id"]] = f"user-{i % 9973}"
    row[pos["email"]] = f"user{i % 9973}@example.com"
    row[pos["name"]] = 'Smith, "Jo"\nJr' if i % 11 == 0 else f"User {i % 9973}"
    row[pos["ruleset_id"]] = str(1000 + i % 50)
    row[pos["content_id"]] = str(2000 + i % 50)
    row[pos["content_type"]] = "email" if i % 2 else "post"
    row[pos["content_title"]] = f"Campaign {i % 50}"
    row[pos["created_via"]] = "series" if i % 3 == 0 else "manual"
    row[pos["receipt_id"]] = f"rcpt-{i}"
    row[pos["received_at"]] = str(c)
    if i % 2 == 0:
        row[pos["first_open"]] = str(c + 60)
    if i % 3 == 0:
        row[pos["first_click"]] = _utc_text(c + 120)
    if i % 7 == 0:
        row[pos["first_reply"]] = str(c + 300)
    return row


def _derived(kind: str, i: int, c: int) -> list[str]:  # noqa: C901, PLR0911 - a branch per kind
    rid = f"rcpt-{i}"
    if kind == "open":
        return [rid, _utc_text(c + 60)]
    if kind == "click":
        return [rid, str(c + 120), "link", f"https://example.com/p?a=1,b={i}"]
    if kind == "reply":
        return [rid, str(c + 300)]
    if kind == "completion":
        return [rid, str(c + 400)]
    if kind == "series_completion":
        return [rid, str(c + 500), "77"]
    if kind == "series_disengagement":
        return [rid, str(c + 600), "78"]
    if kind == "dismissal":
        return [rid, _utc_text(c + 90)]
    if kind == "tour_step_view":
        return [rid, str(i % 3), str(c + 30)]
    if kind == "answer":
        return [rid, str(c + 700), "q1", SURVEY_QUESTIONS[0], "nps", str(i % 11)]
    if kind == "answer_combined":
        n = i % 9973
        return [rid, f"user-{n}", "", f"User {n}", f"user{n}@example.com", "", "", "manual",
                str(c), str(c + 700), str(i % 11), 'Great, "really"']  # fmt: skip
    # checkpoint
    return [f"user-{i % 9973}", "", f"ser-{i}", str(1000 + i % 50), "2", "completed", str(c),
            str(c + 60), "", "1"]  # fmt: skip


def _overview(start: int, receipts: int) -> list[list[str]]:
    cols = header("overview")
    out = []
    for r in range(min(receipts, 50)):
        members = len(range(r, receipts, 50))
        opens = len(range(r if r % 2 == 0 else r + 50, receipts, 100))
        row = dict.fromkeys(cols, "")
        row.update(ruleset_id=str(1000 + r), content_id=str(2000 + r), content_title=f"Campaign {r}",
                   created_at=str(start), state="live", receipt_total=str(members),
                   receipt_unique=str(members), open_total=str(opens), open_unique=str(opens),
                   open_rate=f"{opens / members:.4f}")  # fmt: skip
        out.append([row[c] for c in cols])
    return out


def _write_member(
    zf: zipfile.ZipFile, name: str, header: list[str], rows: t.Iterable[list[str]]
) -> int:
    count = 0
    with zf.open(name, "w", force_zip64=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=False)
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
        text.flush()
        text.detach()
    return count


def write_export(path: Path, receipts: int, start: int, step: int = 1) -> dict[str, int]:
    """Write a zip export of `receipts` receipts (created every `step` s from `start`); rows per kind."""
    counts: dict[str, int] = {}
    stamp = datetime.fromtimestamp(start, timezone.utc).strftime("%Y%m%d-%H%M%S")
    # Level 1 keeps generation quick; the tap's read cost barely depends on the level.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        cols = header("receipt")
        pos = {c: n for n, c in enumerate(cols)}
        counts["receipt"] = _write_member(
            zf,
            f"receipt_{stamp}.csv",
            cols,
            (_receipt(i, start + i * step, pos, len(cols)) for i in range(receipts)),
        )
        for kind, every, offset in DERIVED:
            counts[kind] = _write_member(
                zf,
                f"{kind}_{stamp}.csv",
                header(kind),
                (_derived(kind, i, start + i * step) for i in range(offset, receipts, every)),
            )
        counts["overview"] = _write_member(zf, f"overview_{stamp}.csv", header("overview"),
                                           _overview(start, receipts))  # fmt: skip
    return counts
