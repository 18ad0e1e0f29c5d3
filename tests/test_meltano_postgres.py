"""`meltano run` into PostgreSQL: RECORD and BATCH, message and reporting exports.

PostgreSQL is a throwaway server on 127.0.0.1 (tests/pg_server.py); Meltano and the fake come from
tests/e2e_pipeline.py. A file of its own so that it runs beside the DuckDB one (scripts/test.sh
runs whole files per worker).
"""

from __future__ import annotations

import json
import typing as t

import pytest
import yaml

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
from tests.meltano_harness import REPO, meltano_for, py_query
from tests.oracle import unix

if t.TYPE_CHECKING:
    from pathlib import Path

    from fake_intercom import FakeIntercom

    from tests.meltano_harness import Meltano
    from tests.pg_server import Postgres

# `meltano run` into PostgreSQL: minutes; .ci/run runs them on one Python only.
pytestmark = pytest.mark.e2e

PG_SUMMARY = """
import json, sys, psycopg
port, password, schema = sys.argv[1], sys.argv[2], sys.argv[3]
con = psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="warehouse")
cur = con.cursor()
cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
tables = [r[0] for r in cur.fetchall()]
cur.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s", [schema])
cols = {}
for table, column, kind in cur.fetchall():
    cols.setdefault(table, {})[column] = kind
counts = {}
for tb in tables:
    cur.execute(f'SELECT count(*) FROM "{schema}"."{tb}"')
    counts[tb] = cur.fetchone()[0]
cur.execute(f'SELECT count(DISTINCT receipt_id), min(received_at)::text, max(received_at)::text '
            f'FROM "{schema}".message_receipts')
print(json.dumps({"counts": counts, "columns": cols, "receipts": list(cur.fetchone())}))
"""


def pg_env(
    postgres: Postgres, schema: str, *, batches: Path | None = None, size: int = 0
) -> dict[str, str]:
    """target-postgres settings for the throwaway server, into `schema`.

    With `batches`, the tap writes gzipped JSONL batch files of `size` rows there.
    """
    env = {
        "TARGET_POSTGRES_HOST": "127.0.0.1",
        "TARGET_POSTGRES_PORT": str(postgres.port),
        "TARGET_POSTGRES_USER": postgres.user,
        "TARGET_POSTGRES_PASSWORD": postgres.password,
        "TARGET_POSTGRES_DATABASE": postgres.database,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }
    if batches is not None:
        env["TAP_INTERCOM_EXPORT_BATCH_CONFIG"] = json.dumps({
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": batches.as_uri(), "prefix": "e2e-"},
            "batch_size": size,
        })  # fmt: skip
    return env


@pytest.mark.parametrize("batch", [False, True], ids=["RECORD", "BATCH"])
def test_postgres_lands_every_row_typed_and_state_adds_only_new_rows(
    meltano: Meltano,
    fake: FakeIntercom,
    postgres: Postgres,
    tmp_path: Path,
    batch: bool,  # noqa: FBT001 - a parameter
) -> None:
    """RECORD, and BATCH files (batch_config on): the same rows and column types land."""
    schema = "intercom_batch" if batch else "intercom"
    files = tmp_path / "batches"
    env = pg_env(postgres, schema, batches=files if batch else None, size=50)
    pipe = Pipeline(meltano, fake, "target-postgres", tmp_path, env=env)

    def summary() -> dict:
        return py_query(
            meltano.python("target-postgres"),
            PG_SUMMARY,
            str(postgres.port),
            postgres.password,
            schema,
        )

    pipe.run(FIRST_END)
    if batch:
        # 168 receipts in 50-row files: the rows really went through batch files.
        assert len([p for p in files.iterdir() if "message_receipts" in p.name]) == 4
    first = expected_counts(fake, [(START, FIRST_END)])
    assert_first_window(summary(), first, timestamp="timestamp without time zone", integer="bigint")

    pipe.run(FIRST_END)
    assert len(pipe.export_jobs()) == 1
    assert summary()["counts"] == first

    pipe.run(LATER_END)
    assert pipe.export_jobs()[1:] == [(unix(FIRST_END), unix(LATER_END) - 1)]
    both = expected_counts(fake, [(START, FIRST_END), (FIRST_END, LATER_END)])
    got = summary()
    assert got["counts"] == both
    assert got["receipts"][0] == both["message_receipts"]


# -- Contact events ---------------------------------------------------------------------------

PG_QUERIES = """
import json, sys, psycopg
con = psycopg.connect(host="127.0.0.1", port=sys.argv[1], user="postgres", password=sys.argv[2], dbname="warehouse")
cur = con.cursor()
out = {}
for query in sys.argv[3:]:
    cur.execute(query)
    out[query] = [list(map(str, r)) for r in cur.fetchall()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("batch", [False, True], ids=["RECORD", "BATCH"])
def test_events_read_again_by_the_lookback_land_once_in_postgres(
    meltano: Meltano,
    fake: FakeIntercom,
    postgres: Postgres,
    tmp_path: Path,
    batch: bool,  # noqa: FBT001 - a parameter
) -> None:
    schema = "events_batch" if batch else "events"
    env = pg_env(postgres, schema, batches=tmp_path / "batches" if batch else None, size=100)
    pipe = Pipeline(meltano, fake, "target-postgres", tmp_path, env=env)
    _, second = run_with_late_events(pipe)
    queries = [q.format(schema=schema) for q in EVENTS_SQL]
    rows = py_query(
        meltano.python("target-postgres"),
        PG_QUERIES,
        str(postgres.port),
        postgres.password,
        *queries,
    )
    assert_events_landed(fake, dict(zip(EVENTS_SQL, rows.values(), strict=True)), second)


# -- Reporting data export --------------------------------------------------------------------


def test_reporting_stream_into_postgres(
    meltano: Meltano,
    fake: FakeIntercom,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    pipe = Pipeline(
        meltano,
        fake,
        "target-postgres",
        tmp_path,
        env={**pg_env(postgres, "intercom"), **REPORTING_ENV},
        select=["reporting_conversation.*"],
    )
    pipe.run(FIRST_END)
    pipe.run(LATER_END)
    summary = py_query(
        meltano.python("target-postgres"),
        """
        import json, sys, psycopg
        con = psycopg.connect(host="127.0.0.1", port=sys.argv[1], user="postgres", password=sys.argv[2], dbname="warehouse")
        cur = con.cursor()
        cur.execute("SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'intercom' AND table_name = 'reporting_conversation'")
        cols = dict(cur.fetchall())
        cur.execute(sys.argv[3])
        print(json.dumps({"columns": cols, "row": list(cur.fetchone())}))
        """,
        str(postgres.port),
        postgres.password,
        REPORTING_QUERY,
    )
    assert summary["row"][:2] == reporting_expected(fake, LATER_END)
    assert summary["row"][2] > 0
    assert summary["columns"]["conversation_started_at"] == "timestamp without time zone"
    assert "Account tier" in summary["columns"]


# -- Parquet BATCH ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parquet_meltano(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    """This project with pyarrow in the tap's venv (the `parquet` extra) and in target-postgres'.

    target-postgres reads Parquet batch files only where pyarrow is installed (the SDK's
    `Sink.process_batch_files`), so its pip_url names it, as a user's meltano.yml would.
    """
    base = tmp_path_factory.mktemp("meltano-parquet")
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    [tap] = project["plugins"]["extractors"]
    tap["pip_url"] = f"-e {REPO}[parquet]"
    loader = next(p for p in project["plugins"]["loaders"] if p["name"] == "target-postgres")
    loader["pip_url"] += " pyarrow"
    project["plugins"]["loaders"] = [loader]
    (base / "project").mkdir()
    (base / "project" / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    m = meltano_for(base, project=base / "project")
    m("install", db=base / "install.db")
    return m


TABLES = [
    "message_receipts",
    "message_answers_combined",
    "message_overview",
    "message_other_statistics",
]

PG_ROWS = """
import json, sys, psycopg
port, password, schema, table = sys.argv[1:5]
con = psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="warehouse")
cur = con.cursor()
cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = %s ORDER BY column_name", [schema, table])
# Job ids and the loader's _sdc_ columns differ from run to run; every other value must not.
cols = [r[0] for r in cur.fetchall() if r[0] != "export_job_id" and not r[0].startswith("_sdc_")]
listed = ", ".join(f'"{c}"' for c in cols)
cur.execute(f'SELECT {listed} FROM "{schema}"."{table}"')
rows = sorted(json.dumps([str(v) for v in row]) for row in cur.fetchall())
print(json.dumps({"columns": cols, "rows": rows}))
"""


def test_parquet_batch_lands_the_record_rows(
    parquet_meltano: Meltano, fake: FakeIntercom, postgres: Postgres, tmp_path: Path
) -> None:
    """RECORD and Parquet BATCH files, same export, two schemas: the same rows, typed alike."""
    select = ["message_*.*"]
    files = tmp_path / "batches"
    parquet = {
        "TAP_INTERCOM_EXPORT_BATCH_CONFIG": json.dumps({
            "encoding": {"format": "parquet"},
            "storage": {"root": files.as_uri(), "prefix": "e2e-"},
            "batch_size": 50,
        }),
    }  # fmt: skip
    for schema, extra in (("intercom_record", {}), ("intercom_parquet", parquet)):
        pipe = Pipeline(parquet_meltano, fake, "target-postgres", tmp_path / schema,
                        env={**pg_env(postgres, schema), **extra}, select=select)  # fmt: skip
        (tmp_path / schema).mkdir()
        pipe.run(FIRST_END)
    assert len([p for p in files.iterdir() if "message_receipts" in p.name]) == 4
    python = parquet_meltano.python("target-postgres")

    def table(schema: str, name: str) -> dict:
        return py_query(python, PG_ROWS, str(postgres.port), postgres.password, schema, name)

    for name in TABLES:
        record, batched = table("intercom_record", name), table("intercom_parquet", name)
        assert record["rows"], name
        assert batched == record, name
    summary = py_query(
        python, PG_SUMMARY, str(postgres.port), postgres.password, "intercom_parquet"
    )
    first = expected_counts(fake, [(START, FIRST_END)])
    assert_first_window(summary, first, timestamp="timestamp without time zone", integer="bigint")
