"""Parquet BATCH files: what an SDK loader reads back from them is what RECORD messages carry.

The expectations are the RECORD run's records (same fake data), read back the way SDK-based
loaders read batch files (singer_sdk's `Sink.process_batch_files`, which target-postgres uses).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import typing as t
from collections import defaultdict
from datetime import datetime
from urllib.parse import urlsplit

# pyarrow is in the `test` dependency group: a missing one fails here, it does not skip.
import pyarrow.parquet as pq
import pytest
from singer_sdk import Target
from singer_sdk.sinks import BatchSink

from tap_intercom_export.content import parquet
from tap_intercom_export.content.schemas import FILE_KINDS
from tests.conftest import export_config, export_streams, run_tap

STAT_STREAMS = [spec.stream_name for spec in FILE_KINDS.values()]
WEEK_END = "2023-11-01T00:00:00Z"  # one 7-day window: 168 receipts
ALL_EXPORT = [*export_streams(), "message_other_statistics"]


def parquet_config(tmp_path, compression=None, batch_size=50) -> dict:
    encoding = {"format": "parquet"}
    if compression:
        encoding["compression"] = compression
    return {
        "encoding": encoding,
        "storage": {"root": tmp_path.as_uri(), "prefix": "pq-"},
        "batch_size": batch_size,
    }


def batch_files(run, stream: str) -> list[str]:
    return [
        urlsplit(m["manifest"][0]).path
        for m in run.messages
        if m["type"] == "BATCH" and m["stream"] == stream
    ]


def as_text(record: dict) -> dict:
    """A record with times as RFC 3339 text and without the job id (it differs per run)."""
    return {
        k: v.isoformat() if isinstance(v, datetime) else v
        for k, v in record.items()
        if k != "export_job_id"
    }


class Collect(BatchSink):
    """Keeps what the SDK hands a loader, per stream."""

    got: t.ClassVar[dict[str, list[dict]]] = defaultdict(list)

    def process_batch(self, context: dict) -> None:
        """Keep the records."""
        self.got[self.stream_name].extend(context["records"])


class CollectTarget(Target):
    """An SDK loader that keeps what it is given."""

    name = "target-collect"
    config_jsonschema = {"type": "object", "properties": {}}  # noqa: RUF012
    default_sink_class = Collect


def loaded(run) -> dict[str, list[dict]]:
    """What an SDK loader gets from the run's output (its BATCH files, read by the SDK)."""
    Collect.got = defaultdict(list)
    target = CollectTarget(config={})
    target.listen(io.StringIO(run.raw.decode()))
    return {stream: [as_text(r) for r in records] for stream, records in Collect.got.items()}


def test_a_loader_reads_back_the_record_rows(make_fake, clock, tmp_path) -> None:
    fake = make_fake(invent_kind=True)
    records = run_tap(export_config(fake), select=ALL_EXPORT)
    batched = run_tap(export_config(fake, batch_config=parquet_config(tmp_path)), select=ALL_EXPORT)
    got = loaded(batched)
    for stream in [*STAT_STREAMS, "message_other_statistics"]:
        expected = [as_text(r) for r in records.records(stream)]
        assert expected, stream
        assert got[stream] == expected, stream
    assert batched.positions == records.positions
    # The ledger stays RECORD.
    assert len(batched.records("message_export_jobs")) == 3


def test_columns_are_typed(make_fake, clock, tmp_path) -> None:
    fake = make_fake()
    run = run_tap(
        export_config(fake, end_date=WEEK_END, batch_config=parquet_config(tmp_path)),
        select=export_streams(),
    )
    receipts = pq.read_schema(batch_files(run, "message_receipts")[0])
    assert str(receipts.field("received_at").type) == "timestamp[us, tz=UTC]"
    assert str(receipts.field("export_window_start").type) == "timestamp[us, tz=UTC]"
    assert str(receipts.field("receipt_id").type) == "string"
    overview = pq.read_schema(batch_files(run, "message_overview")[0])
    assert str(overview.field("receipt_total").type) == "int64"
    assert str(overview.field("open_rate").type) == "double"


def test_rows_with_other_extra_keys_go_to_a_file_of_their_own(make_fake, clock, tmp_path) -> None:
    """A value that does not fit its type adds a key to extra_columns for its row only."""

    def garble(kind: str, data: bytes) -> bytes:
        if kind != "receipt":
            return data
        table = list(csv.reader(io.StringIO(data.decode())))
        for i, column in ((5, "received_at"), (6, "received_at"), (40, "first_open")):
            table[i][table[0].index(column)] = "n/a"
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(table)
        return out.getvalue().encode()

    fake = make_fake()
    fake.exports.member_transform = garble
    config = export_config(fake, end_date=WEEK_END)
    records = run_tap(config, select=export_streams())
    batched = run_tap({**config, "batch_config": parquet_config(tmp_path, batch_size=1000)},
                      select=export_streams())  # fmt: skip
    expected = [as_text(r) for r in records.records("message_receipts")]
    extras = [r["extra_columns"] for r in expected]
    assert extras.count({"received_at": "n/a"}) == 2 and extras.count({"first_open": "n/a"}) == 1
    assert loaded(batched)["message_receipts"] == expected
    # Rows 1-4 (no extras), 5-39 (received_at, or none), 40-168 (first_open, or none): a file
    # where a row's extra_columns keys differ from the file's.
    assert len(batch_files(batched, "message_receipts")) == 3


def _late_quirk(quirk: str):
    """A member transform putting `quirk` in the receipts file, 150 rows in (of 168)."""

    def transform(kind: str, data: bytes) -> bytes:
        if kind != "receipt":
            return data
        table = list(csv.reader(io.StringIO(data.decode())))
        if quirk == "ragged":
            table[150].append("surplus")
        elif quirk == "not utf-8":
            table[150][0] = "MARK"
        elif quirk == "blank line of spaces":
            table.insert(150, ["   "])
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(table)
        raw = out.getvalue().encode().replace(b"MARK", b"\xffMARK")
        return raw + b'"open' if quirk == "unterminated quote" else raw

    return transform


@pytest.mark.parametrize(
    "quirk", ["ragged", "not utf-8", "blank line of spaces", "unterminated quote"]
)
def test_where_arrow_stops_python_reads_on_from_the_next_row(
    make_fake, clock, tmp_path, monkeypatch, quirk
) -> None:
    # Small blocks so Arrow has read some rows before it meets the quirk.
    monkeypatch.setattr(parquet, "_CSV_BLOCK", 4096)
    in_arrow: list[int] = []
    type_batch = parquet._type_batch
    monkeypatch.setattr(parquet, "_type_batch", lambda *a: in_arrow.append(a[2]) or type_batch(*a))
    fake = make_fake()
    fake.exports.member_transform = _late_quirk(quirk)
    config = export_config(fake, end_date=WEEK_END)
    records = run_tap(config, select=["message_export_jobs", "message_receipts"])
    batched = run_tap(
        {**config, "batch_config": parquet_config(tmp_path, batch_size=1000)},
        select=["message_export_jobs", "message_receipts"],
    )
    expected = [as_text(r) for r in records.records("message_receipts")]
    # The line of spaces and the unterminated quote are rows of one field each (kept).
    assert len(expected) == 24 * 7 + (quirk in {"blank line of spaces", "unterminated quote"})
    assert loaded(batched)["message_receipts"] == expected
    assert 0 < sum(in_arrow) < len(expected)


def test_row_groups_keep_memory_bounded(make_fake, clock, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 30)
    monkeypatch.setattr(parquet.ParquetFiles, "block_rows", 20)
    monkeypatch.setattr(parquet, "_CSV_BLOCK", 2048)  # Arrow's blocks: ~10 receipts
    fake = make_fake()
    run = run_tap(
        export_config(
            fake,
            end_date=WEEK_END,
            batch_config=parquet_config(tmp_path, batch_size=1000),
        ),
        select=export_streams(),
    )
    [path] = batch_files(run, "message_receipts")
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 24 * 7 and meta.num_row_groups > 3
    assert all(meta.row_group(i).num_rows <= 30 + 20 for i in range(meta.num_row_groups))


@pytest.mark.parametrize("compression", [None, "gzip", "none"])
def test_compression_is_the_codec_asked_for(make_fake, clock, tmp_path, compression) -> None:
    fake = make_fake()
    run = run_tap(
        export_config(fake, end_date=WEEK_END, batch_config=parquet_config(tmp_path, compression)),
        select=export_streams(),
    )  # fmt: skip
    path = batch_files(run, "message_receipts")[0]
    codec = pq.ParquetFile(path).metadata.row_group(0).column(0).compression
    assert codec == {None: "SNAPPY", "gzip": "GZIP", "none": "UNCOMPRESSED"}[compression]
    assert pq.read_table(path).num_rows == 50


# -- refused in one line -----------------------------------------------------------------------


def test_without_pyarrow_the_command_says_what_to_install(make_fake, tmp_path) -> None:
    fake = make_fake()
    config = tmp_path / "config.json"
    config.write_text(json.dumps(export_config(fake, batch_config=parquet_config(tmp_path))))
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from tap_intercom_export.cli import main\n"
        f"sys.argv = ['tap-intercom-export', '--config', {str(config)!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stdout == ""
    [line] = [x for x in proc.stderr.splitlines() if "error:" in x]
    assert "batch_config.encoding.format='parquet' needs pyarrow" in line
    assert "pip install 'tap-intercom-export[parquet]'" in line
    assert "Traceback" not in proc.stderr


#: Every `batch_config.encoding` a user can ask for.
ENCODINGS = [
    {"format": "jsonl", "compression": "gzip"},
    {"format": "jsonl", "compression": "none"},
    {"format": "parquet"},
    {"format": "parquet", "compression": "gzip"},
]
EVENTS_AND_REPORTING = ["contact_events", "contact_event_summaries", "reporting_tickets"]


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: "-".join(e.values()))
def test_events_and_reporting_work_with_every_batch_format(
    make_fake, clock, tmp_path, encoding
) -> None:
    """What a loader gets (RECORDs and batch files) is the RECORD run's rows, in any format."""
    fake = make_fake(events_now=1_699_920_000)
    # The fake's reports are of 2023: older than Intercom's default retention on today's clock.
    config = export_config(fake, reporting_retention_days=100_000)
    records = run_tap(config, select=EVENTS_AND_REPORTING)
    cfg = {**parquet_config(tmp_path), "encoding": encoding}
    batched = run_tap({**config, "batch_config": cfg}, select=EVENTS_AND_REPORTING)
    got = loaded(batched)
    for stream in EVENTS_AND_REPORTING:
        expected = [as_text(r) for r in records.records(stream)]
        assert expected, stream
        if stream == "reporting_tickets":
            # RECORD whatever batch_config says (reporting/streams.py get_batch_config).
            assert not batch_files(batched, stream)
            assert [as_text(r) for r in batched.records(stream)] == expected
            continue
        assert batch_files(batched, stream) and not batched.records(stream), stream

        # The SDK's Parquet batcher infers each file's types from its rows: an extra_columns key
        # of one row is null in the others; everything else is as in RECORDs.
        # (The SDK reads JSON numbers as Decimal.)
        def canon(r):
            return json.dumps({k: v for k, v in r.items() if k != "extra_columns"}, default=float)

        assert sorted(map(canon, got[stream])) == sorted(map(canon, expected)), stream
    # contact_events' metadata (any JSON value) has no Parquet column: JSON Lines files, which
    # its BATCH messages name; the other streams' files are in the format asked for.
    announced = {m["stream"]: m["encoding"]["format"] for m in batched.messages if m["type"] == "BATCH"}  # fmt: skip
    assert announced == {
        "contact_events": "jsonl",
        "contact_event_summaries": encoding["format"],
    }
