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

import pytest

pq = pytest.importorskip("pyarrow.parquet")

from singer_sdk import Target  # noqa: E402
from singer_sdk.sinks import BatchSink  # noqa: E402

from tap_intercom_export.content import parquet  # noqa: E402
from tap_intercom_export.content.schemas import FILE_KINDS  # noqa: E402
from tap_intercom_export.errors import ConfigError  # noqa: E402
from tap_intercom_export.jobs import rows  # noqa: E402
from tests.conftest import export_config, export_streams, run_tap  # noqa: E402

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


def test_row_groups_keep_memory_bounded(make_fake, clock, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 30)
    monkeypatch.setattr(rows, "BLOCK_ROWS", 20)
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


def test_contact_events_cannot_go_to_parquet(make_fake, clock, tmp_path) -> None:
    fake = make_fake()
    config = export_config(fake, batch_config=parquet_config(tmp_path))
    with pytest.raises(ConfigError, match=r"cannot hold contact_events\.metadata .* 'jsonl'"):
        run_tap(config, select=["contact_events"])


def test_summaries_and_reporting_go_through_the_sdk_batcher(make_fake, clock, tmp_path) -> None:
    """Streams without a batch writer of their own: the SDK's Parquet batcher, same rows."""
    fake = make_fake(events_now=1_699_920_000)
    selected = ["contact_event_summaries", "reporting_tickets"]
    records = run_tap(export_config(fake), select=selected)
    batched = run_tap(export_config(fake, batch_config=parquet_config(tmp_path)), select=selected)
    got = loaded(batched)
    for stream in selected:
        expected = [as_text(r) for r in records.records(stream)]
        assert expected, stream
        key = "contact_id" if stream.startswith("contact") else "ticket_id"
        assert sorted(r[key] for r in got[stream]) == sorted(r[key] for r in expected), stream
        # The SDK infers each file's types from its rows: an extra_columns key of one row is
        # null in the others; everything else is as in RECORDs.
        trimmed = [{k: v for k, v in r.items() if k != "extra_columns"} for r in got[stream]]
        assert sorted(map(json.dumps, trimmed)) == sorted(
            json.dumps({k: v for k, v in r.items() if k != "extra_columns"}) for r in expected
        ), stream
