"""The export fast paths give exactly what the general paths give, and the benchmark runs."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_intercom_export.content.schemas import (
    CONVERTERS,
    EXTRA_COLUMNS,
    FILE_KINDS,
    RowTyper,
    column_type,
    to_datetime,
)
from tap_intercom_export.content.streams import MessageStatStream
from tests.conftest import export_config, run_tap, selection_catalog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from exportgen import write_export  # noqa: E402

LINEAGE = {"export_job_id": "j1", "export_window_start": "a", "export_window_end": "b"}


def reference_to_datetime(value: str) -> str:
    """to_datetime as it was before its fast paths."""
    head = value[:1]
    if head.isdigit() and len(value) <= 14 and value.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), timezone.utc).isoformat()
    if value.endswith(" UTC"):
        value = value[:-4]
    elif value.endswith("Z"):
        value = value[:-1]
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).isoformat()


def outcome(fn, value):
    try:
        return fn(value)
    except (ValueError, OverflowError) as exc:
        return type(exc)


def test_timestamp_fast_paths_match_the_general_parser() -> None:
    rng = random.Random(6)
    values = ["0", "59", "60", "1699920000", "253402300799", "253402300800", "99999999999999",
              "2023-11-14 00:00:00 UTC", "2023-02-30 00:00:00 UTC", "2023-11-14 24:00:00 UTC",
              "2023-11-14T00:00+01 UTC", "2023-11-14 00:00:00.5 UTC", "1699920000.5"]  # fmt: skip
    for _ in range(3000):
        ts = rng.randrange(0, 253402300799)
        values += [
            str(ts),
            datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        ]
    for value in values:
        assert outcome(to_datetime, value) == outcome(reference_to_datetime, value), value


def reference_type_row(spec, header: list[str], row: list[str]) -> dict:
    """RowTyper.type_row as it was before its fast path (one plan walk per row)."""
    known = set(spec.columns)
    record: dict = dict.fromkeys(c for c in spec.columns if c not in set(header))
    extra: dict = {}
    for j in range(len(header), len(row)):
        extra[f"column_{j + 1}"] = row[j]
    for i, name in enumerate(header):
        value = row[i] if i < len(row) else ""
        convert = CONVERTERS[column_type(name)]
        if name not in known:
            extra[name] = value or None
        elif value == "":
            record[name] = None
        elif convert is None:
            record[name] = value
        else:
            try:
                record[name] = convert(value)
            except (ValueError, OverflowError):
                record[name] = None
                extra[name] = value
    record[EXTRA_COLUMNS] = extra or None
    record.update(LINEAGE)
    return record


def random_value(rng: random.Random, name: str) -> str:
    kind = column_type(name)
    pick = rng.random()
    if pick < 0.3:
        return ""
    if pick < 0.35:
        return rng.choice(["n/a", "-", "2023-13-01 00:00:00 UTC", "1e999", "12.5", "7%"])
    if kind == "date-time":
        ts = rng.randrange(1_600_000_000, 1_800_000_000)
        return (
            str(ts)
            if rng.random() < 0.5
            else datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        )
    if kind in ("integer", "number"):
        return str(rng.randrange(0, 10_000))
    return rng.choice(["x", 'Smith, "Jo"\nJr', "0", "  spaced  "])


@pytest.mark.parametrize("kind", sorted(FILE_KINDS))
def test_row_typing_matches_the_reference(kind: str) -> None:
    spec = FILE_KINDS[kind]
    rng = random.Random(kind)
    cols = list(spec.columns)
    shuffled = rng.sample(cols, len(cols))
    headers = [
        cols,  # as Intercom writes it
        [*shuffled[: max(1, len(cols) - 2)], "Survey question?"],  # reordered, missing, unknown
        ["Survey question?", *cols, cols[0]],  # unknown first, a repeated column
    ]
    for header in headers:
        typer = RowTyper(spec, header)
        for n in range(300):
            row = [random_value(rng, name) for name in header]
            if n % 50 == 0:  # ragged rows, both ways
                row = row[:-1] if n % 100 == 0 else [*row, "spill"]
            assert typer.type_row(list(row), LINEAGE) == reference_type_row(spec, header, row), (
                header,
                row,
            )


def test_deselected_properties_are_not_emitted(make_fake, waits) -> None:
    fake = make_fake()
    config = export_config(fake, end_date="2023-10-26T00:00:00Z")
    catalog = selection_catalog(config, {"message_receipts", "message_answers_combined"})
    question = "How likely are you to recommend us to family and friends?"
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            crumb = tuple(md["breadcrumb"])
            if entry["tap_stream_id"] == "message_receipts" and crumb in (
                ("properties", "email"),
                ("properties", "extra_columns"),
            ):
                md["metadata"]["selected"] = False
        if entry["tap_stream_id"] == "message_answers_combined":
            # A nested deselection goes through the SDK's own record walk.
            entry["metadata"].append(
                {
                    "breadcrumb": ["properties", "extra_columns", "properties", question],
                    "metadata": {"selected": False},
                }
            )
    run = run_tap(config, catalog=catalog)
    receipts = run.records("message_receipts")
    assert receipts and all("email" not in r and "extra_columns" not in r for r in receipts)
    assert all(r["receipt_id"] and "name" in r for r in receipts)
    answers = run.records("message_answers_combined")
    assert answers
    for record in answers:
        assert question not in (record["extra_columns"] or {})
        assert (
            record["extra_columns"]["What's the main reason for your score?"] == 'Great, "really"'
        )


def test_records_and_states_match_the_sdk_record_path(make_fake, waits, monkeypatch) -> None:
    fake = make_fake()
    config = export_config(fake)
    fast = run_tap(config)
    # The SDK's own loop, with its schema walk back on: it finds nothing to change.
    monkeypatch.setattr(MessageStatStream, "TYPE_CONFORMANCE_LEVEL", TypeConformanceLevel.RECURSIVE)
    sdk = run_tap(config)
    stat_streams = [spec.stream_name for spec in FILE_KINDS.values()]

    def rows(run) -> dict[str, list[dict]]:
        # Job ids and timings differ from run to run; every other value must be identical.
        return {s: [{**r, "export_job_id": None} for r in run.records(s)] for s in stat_streams}

    def bookmarks(run) -> list[dict]:
        return [{s: b for s, b in v["bookmarks"].items() if s in stat_streams} for v in run.states]

    assert sum(len(r) for r in rows(fast).values()) > 1000
    assert rows(fast) == rows(sdk)
    assert bookmarks(fast) == bookmarks(sdk)


def test_bench_archive_syncs_every_row(make_fake, waits, tmp_path) -> None:
    archive = tmp_path / "export.zip"
    counts = write_export(archive, 3000, 1_698_192_000)
    fake = make_fake()
    fake.exports.archive_override = lambda _job, path: os.link(archive, path)
    run = run_tap(export_config(fake, end_date="2023-10-26T00:00:00Z", export_window_days=1))
    emitted = run.streams()
    for kind, n in counts.items():
        assert emitted.get(FILE_KINDS[kind].stream_name, 0) == n, kind
    receipts = run.records("message_receipts")
    assert receipts[0]["received_at"] == "2023-10-25T00:00:00+00:00"
    assert receipts[11]["name"] == 'Smith, "Jo"\nJr'


# A child process per run of the bench script: with the end-to-end tests.
@pytest.mark.e2e
def test_bench_smoke_run_reports_ratios() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_export.py"), "--rows", "3000",
         "--small-rows", "500", "--unbuffered", "set", "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    result = json.loads(out.stdout)
    runs = {r["name"]: r for r in result["runs"]}
    assert set(runs) == {"startup", "small", "raw", "record", "jsonl", "parquet"}
    assert all(r["env"] == "set" for r in runs.values())
    assert runs["record"]["rows"] == runs["raw"]["rows"] == result["rows"] > 9000
    assert all(r["seconds"] > 0 and r["peak_rss_mb"] > 0 for r in runs.values())
    assert set(result["over_raw"]["set"]) == {"record", "jsonl", "parquet"}
    assert result["same_records"] == {"record": True, "jsonl": True, "parquet": True}
