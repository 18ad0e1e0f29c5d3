"""BATCH output of the message export streams.

Files hold exactly the RECORD path's rows, one BATCH message per file, and a window's bookmark
moves only after its files are announced.
"""

from __future__ import annotations

import gzip
import json
from urllib.parse import urlsplit

import pytest

from tap_intercom_export.content.schemas import FILE_KINDS
from tap_intercom_export.errors import ConfigError
from tap_intercom_export.tap import TapIntercomExport
from tests.conftest import export_config, export_streams, run_tap, selection_catalog
from tests.oracle import unix

STAT_STREAMS = [spec.stream_name for spec in FILE_KINDS.values()]


def batch_config(tmp_path, compression="gzip", batch_size=100) -> dict:
    return {
        "encoding": {"format": "jsonl", "compression": compression},
        "storage": {"root": tmp_path.as_uri(), "prefix": "test-"},
        "batch_size": batch_size,
    }


def read_file(url: str, compression: str) -> list[dict]:
    path = urlsplit(url).path
    opener = gzip.open if compression == "gzip" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def batches(run) -> list[dict]:
    return [m for m in run.messages if m["type"] == "BATCH"]


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_batch_files_hold_the_record_rows(make_fake, clock, tmp_path, compression) -> None:
    fake = make_fake()
    records = run_tap(export_config(fake), select=export_streams())
    batched = run_tap(
        export_config(fake, batch_config=batch_config(tmp_path, compression)),
        select=export_streams(),
    )
    assert not batched.streams("message_") or set(batched.streams("message_")) == {
        "message_export_jobs"
    }
    for stream in STAT_STREAMS:
        files = [m for m in batches(batched) if m["stream"] == stream]
        assert all(
            len(m["manifest"]) == 1 and m["encoding"]["compression"] == compression for m in files
        )
        rows = [row for m in files for row in read_file(m["manifest"][0], compression)]
        expected = [
            {k: v for k, v in r.items() if k != "export_job_id"} for r in records.records(stream)
        ]
        assert [{k: v for k, v in r.items() if k != "export_job_id"} for r in rows] == expected, (
            stream
        )
        assert all(len(read_file(m["manifest"][0], compression)) <= 100 for m in files)
    # 168, 168 and 144 receipts in the three windows: two files of at most 100 rows each.
    assert len([m for m in batches(batched) if m["stream"] == "message_receipts"]) == 6
    # The job ledger stays RECORD, with the same rows per kind.
    assert [j["rows"] for j in batched.records("message_export_jobs")] == [
        j["rows"] for j in records.records("message_export_jobs")
    ]
    assert batched.positions == records.positions


def test_bookmark_moves_only_after_the_window_files_are_announced(
    make_fake, clock, tmp_path
) -> None:
    fake = make_fake()
    run = run_tap(
        export_config(fake, batch_config=batch_config(tmp_path, batch_size=50)),
        select=export_streams(),
    )
    announced: list[str] = []
    expected = [
        r["receipt_id"]
        for r in fake.exports.dataset.rows("receipt", unix("2023-10-25T00:00:00Z"), 2**40)
    ]
    created = {
        r["receipt_id"]: int(r["received_at"])
        for r in fake.exports.dataset.rows("receipt", 0, 2**40)
    }
    checked = 0
    for m in run.messages:
        if m["type"] == "BATCH" and m["stream"] == "message_receipts":
            announced += [r["receipt_id"] for r in read_file(m["manifest"][0], "gzip")]
        elif m["type"] == "STATE":
            value = m["value"]["bookmarks"].get("message_receipts", {}).get("replication_key_value")
            if value:
                # Every receipt the bookmark claims is in a file announced before this STATE.
                claimed = [rid for rid in expected if created[rid] < unix(value)]
                assert set(claimed) <= set(announced), value
                checked += 1
    assert checked and sorted(announced) == sorted(expected)


def test_deselected_properties_are_not_in_the_files(make_fake, clock, tmp_path) -> None:
    fake = make_fake()
    config = export_config(
        fake, end_date="2023-10-26T00:00:00Z", batch_config=batch_config(tmp_path)
    )
    catalog = selection_catalog(config, {"message_export_jobs", "message_receipts"})
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "message_receipts")
    for md in entry["metadata"]:
        if md["breadcrumb"] == ["properties", "email"]:
            md["metadata"]["selected"] = False
    run = run_tap(config, catalog=catalog)
    rows = [r for m in batches(run) for r in read_file(m["manifest"][0], "gzip")]
    assert len(rows) == 24 and all("email" not in r and r["receipt_id"] for r in rows)


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ({"format": "csv"}, r"batch_config\.encoding\.format='csv' is not supported: set it to 'jsonl' or 'parquet'"),
        ({"format": "jsonl", "compression": "zstd"}, r"batch_config\.encoding\.compression='zstd' is not supported with format 'jsonl': set it to one of 'gzip', 'none'"),
    ],
)  # fmt: skip
def test_unsupported_encoding_is_refused_with_the_setting_named(
    make_fake, tmp_path, encoding, message
) -> None:
    cfg = {**batch_config(tmp_path), "encoding": encoding}
    config = export_config(make_fake(), batch_config=cfg)
    with pytest.raises(ConfigError, match=message):
        TapIntercomExport(config=config)


def test_other_statistics_go_as_batch_files_too(make_fake, clock, tmp_path) -> None:
    """Rows of a file kind without a typed stream land in BATCH files like in RECORDs."""
    fake = make_fake(invent_kind=True)
    selected = [*export_streams(), "message_other_statistics"]
    records = run_tap(export_config(fake), select=selected)
    batched = run_tap(export_config(fake, batch_config=batch_config(tmp_path)), select=selected)
    assert batched.error is None
    files = [m for m in batches(batched) if m["stream"] == "message_other_statistics"]
    rows = [row for m in files for row in read_file(m["manifest"][0], "gzip")]
    expected = records.records("message_other_statistics")
    assert len(expected) > 0
    assert sorted(r["row_key"] for r in rows) == sorted(r["row_key"] for r in expected)
    assert batched.positions == records.positions
