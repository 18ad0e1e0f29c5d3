"""`meltano run` end to end: the fake Intercom API into DuckDB and JSONL, and the demo script.

The pieces shared with tests/test_meltano_postgres.py (Meltano installed once per test process,
the fake, the pipeline) are in tests/e2e_pipeline.py; the demo test installs into its own system
dir. The loader command itself is tested in tests/test_duckdb_loader.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import typing as t
from pathlib import Path

import pytest

from tests.e2e_pipeline import (
    EVENTS_SQL,
    FIRST_END,
    LATER_END,
    REPORTING_ENV,
    REPORTING_QUERY,
    START,
    Pipeline,
    assert_events_landed,
    assert_first_window,
    expected_counts,
    reporting_expected,
    run_with_late_events,
)
from tests.meltano_harness import py_query
from tests.oracle import unix

if t.TYPE_CHECKING:
    from fake_intercom import FakeIntercom

    from tests.meltano_harness import Meltano

# -- DuckDB -----------------------------------------------------------------------------------

# `meltano run` into the loaders: minutes; .ci/run runs them on one Python only.
pytestmark = pytest.mark.e2e

DUCKDB_SUMMARY = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
schema = sys.argv[2]
tables = [r[0] for r in con.execute(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]).fetchall()]
cols = {}
for table, column, kind in con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ?", [schema]).fetchall():
    cols.setdefault(table, {})[column] = kind
counts = {tb: con.execute(f'SELECT count(*) FROM "{schema}"."{tb}"').fetchone()[0] for tb in tables}
receipts = con.execute(
    f'SELECT count(DISTINCT receipt_id), CAST(min(received_at) AS VARCHAR), '
    f'CAST(max(received_at) AS VARCHAR) FROM "{schema}".message_receipts').fetchone()
extra = {}
for query in sys.argv[3:]:
    extra[query] = [list(map(str, r)) for r in con.execute(query).fetchall()]
print(json.dumps({"counts": counts, "columns": cols, "receipts": receipts, "extra": extra}))
"""


def duckdb_summary(meltano: Meltano, path: Path, *queries: str, schema: str = "intercom") -> dict:
    """Row counts, column types and receipt facts of a DuckDB file, read with a query."""
    return py_query(meltano.python("target-duckdb"), DUCKDB_SUMMARY, str(path), schema, *queries)


@pytest.fixture
def duck(meltano: Meltano, fake: FakeIntercom, tmp_path: Path) -> Pipeline:
    """A pipeline into a fresh DuckDB file."""
    return Pipeline(
        meltano,
        fake,
        "target-duckdb",
        tmp_path,
        env={
            "TARGET_DUCKDB_FILEPATH": str(tmp_path / "warehouse.duckdb"),
            "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "intercom",
        },
    )


def test_duckdb_lands_every_row_typed_and_state_adds_only_new_rows(
    duck: Pipeline, tmp_path: Path
) -> None:
    db = tmp_path / "warehouse.duckdb"
    duck.run(FIRST_END)
    first = expected_counts(duck.fake, [(START, FIRST_END)])
    # Every stream has rows in this window: a loader losing the first row of a batch shows.
    assert all(n > 0 for n in first.values())
    # target-duckdb maps JSON-schema integers to HUGEINT.
    assert_first_window(
        duckdb_summary(duck.meltano, db), first, timestamp="TIMESTAMP", integer="HUGEINT"
    )

    # Same end date: Meltano's state says everything is there, so no export job and no rows.
    duck.run(FIRST_END)
    assert len(duck.export_jobs()) == 1
    assert duckdb_summary(duck.meltano, db)["counts"] == first

    # Later end date: one job for the new days only, and only their rows are added.
    duck.run(LATER_END)
    assert duck.export_jobs()[1:] == [(unix(FIRST_END), unix(LATER_END) - 1)]
    both = expected_counts(duck.fake, [(START, FIRST_END), (FIRST_END, LATER_END)])
    got = duckdb_summary(duck.meltano, db)
    assert got["counts"] == both
    assert got["receipts"][0] == both["message_receipts"]  # no duplicate keys

    # --full-refresh exports everything again; rows are upserted on their keys, while the job
    # ledger keeps the new jobs too (its key is the job).
    duck.run(LATER_END, "--full-refresh")
    assert len(duck.export_jobs()) == 4
    assert duckdb_summary(duck.meltano, db)["counts"] == {**both, "message_export_jobs": 4}


def test_stream_map_and_flattening_through_meltano_run(duck: Pipeline, tmp_path: Path) -> None:
    duck.select = ["message_export_jobs.*", "message_receipts.*", "message_answers_combined.*"]
    duck.env.update(
        {
            # Hash the e-mail address and drop the name: a typical PII map.
            "TAP_INTERCOM_EXPORT_STREAM_MAPS": json.dumps(
                {"message_receipts": {"email": "md5(email) if email else None", "name": "__NULL__"}}
            ),
            "TAP_INTERCOM_EXPORT_FLATTENING_ENABLED": "true",
            "TAP_INTERCOM_EXPORT_FLATTENING_MAX_DEPTH": "1",
        }
    )
    duck.run(FIRST_END)
    got = duckdb_summary(
        duck.meltano,
        tmp_path / "warehouse.duckdb",
        "SELECT receipt_id, email FROM intercom.message_receipts ORDER BY receipt_id",
        "SELECT extra_columns FROM intercom.message_answers_combined LIMIT 1",
        "SELECT files FROM intercom.message_export_jobs",
    )
    counts = expected_counts(duck.fake, [(START, FIRST_END)])
    assert got["counts"] == {
        k: counts[k]
        for k in ("message_export_jobs", "message_receipts", "message_answers_combined")
    }

    receipts = got["columns"]["message_receipts"]
    assert "name" not in receipts and "email" in receipts
    served = duck.fake.exports.dataset.rows("receipt", unix(START), unix(FIRST_END) - 1)
    hashed = sorted([r["receipt_id"], hashlib.md5(r["email"].encode()).hexdigest()] for r in served)  # noqa: S324
    assert (
        sorted(
            got["extra"][
                "SELECT receipt_id, email FROM intercom.message_receipts ORDER BY receipt_id"
            ]
        )
        == hashed
    )

    # Flattening turns the nested values into JSON text columns the warehouse can parse.
    (answers,) = got["extra"]["SELECT extra_columns FROM intercom.message_answers_combined LIMIT 1"]
    assert any(q.startswith("How likely") for q in json.loads(answers[0]))
    assert got["columns"]["message_export_jobs"]["files"] == "VARCHAR"
    (files,) = got["extra"]["SELECT files FROM intercom.message_export_jobs"]
    assert {f["kind"] for f in json.loads(files[0])} >= {"receipt", "answer_combined"}


# -- Contact events ---------------------------------------------------------------------------

DUCKDB_QUERIES = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
print(json.dumps({q: [list(map(str, r)) for r in con.execute(q).fetchall()] for q in sys.argv[2:]}))
"""


def test_events_read_again_by_the_lookback_land_once_in_duckdb(
    duck: Pipeline, tmp_path: Path
) -> None:
    _, second = run_with_late_events(duck)
    queries = [q.format(schema="intercom") for q in EVENTS_SQL]
    rows = py_query(
        duck.meltano.python("target-duckdb"),
        DUCKDB_QUERIES,
        str(tmp_path / "warehouse.duckdb"),
        *queries,
    )
    assert_events_landed(duck.fake, dict(zip(EVENTS_SQL, rows.values(), strict=True)), second)


# -- JSONL and the demo -----------------------------------------------------------------------


def test_jsonl_writes_one_line_per_record(
    meltano: Meltano, fake: FakeIntercom, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    pipe = Pipeline(
        meltano,
        fake,
        "target-jsonl",
        tmp_path,
        env={"TARGET_JSONL_DESTINATION_PATH": str(out), "TARGET_JSONL_DO_TIMESTAMP_FILE": "false"},
    )
    pipe.run(FIRST_END)
    landed = {p.stem: len(p.read_text().splitlines()) for p in out.glob("*.jsonl")}
    assert landed == expected_counts(fake, [(START, FIRST_END)])


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below `pid`, read from /proc (Linux)."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:  # ended while we looked
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            commands[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    below, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                below.append((child, commands[child]))
                todo.append(child)
    return below


def test_meltano_run_fails_visibly_when_the_tap_is_stopped(
    meltano: Meltano, fake: FakeIntercom, tmp_path: Path
) -> None:
    """SIGTERM to the tap (a scheduler stopping it) while a job is pending: `meltano run` fails."""
    fake.exports.status_script = ["pending"] * 100_000
    out = tmp_path / "out"
    out.mkdir()
    pipe = Pipeline(meltano, fake, "target-jsonl", tmp_path,
                    env={"TARGET_JSONL_DESTINATION_PATH": str(out)})  # fmt: skip
    with (tmp_path / "meltano.log").open("w") as log:
        proc = meltano.start("run", "tap-intercom-export", "target-jsonl",
                             db=tmp_path / "meltano.db", env=pipe.env_for(FIRST_END), out=log)  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while len(fake.calls("GET", r"/export/content/data/job0001")) < 2:
                assert proc.poll() is None, (tmp_path / "meltano.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the tap never polled its job"
                time.sleep(0.1)
            taps = [pid for pid, cmd in children(proc.pid) if "bin/tap-intercom-export" in cmd]
            assert len(taps) == 1, children(proc.pid)
            os.kill(taps[0], signal.SIGTERM)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    log_text = (tmp_path / "meltano.log").read_text()
    assert code != 0, log_text[-3000:]
    assert "Stopped by SIGTERM: the last STATE above lets the next run resume" in log_text
    assert "Extractor failed" in log_text, log_text[-3000:]
    assert "Traceback" not in log_text.split("Stopped by SIGTERM")[1]


# -- Reporting data export --------------------------------------------------------------------


def test_reporting_stream_into_duckdb(duck: Pipeline, tmp_path: Path) -> None:
    duck.select = ["reporting_conversation.*"]
    duck.env.update(REPORTING_ENV)
    duck.run(FIRST_END)
    duck.run(LATER_END)
    summary = py_query(
        duck.meltano.python("target-duckdb"),
        """
        import duckdb, json, sys
        con = duckdb.connect(sys.argv[1], read_only=True)
        cols = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = 'reporting_conversation'").fetchall())
        row = con.execute(sys.argv[2]).fetchone()
        print(json.dumps({"columns": cols, "row": list(row)}))
        """,
        str(tmp_path / "warehouse.duckdb"),
        REPORTING_QUERY,
    )
    assert summary["row"][:2] == reporting_expected(duck.fake, LATER_END)
    assert summary["row"][2] > 0
    assert summary["columns"]["conversation_started_at"] == "TIMESTAMP"
    assert "account tier" in summary["columns"]  # target-duckdb lowercases column names
    enqueued = [
        (r.body["start_time"], r.body["end_time"])
        for r in duck.fake.calls("POST", "/export/reporting_data/enqueue")
    ]
    assert enqueued == [(unix(START), unix(FIRST_END)), (unix(FIRST_END), unix(LATER_END))]
