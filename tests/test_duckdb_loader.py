"""The DuckDB loader Meltano runs is the fixed one, however often and from whatever cache it is installed.

target-duckdb 0.8.0 loses the first row of every batch (DuckDB takes it for a CSV header); the
wrapper in loaders/target-duckdb-fixed carries the upstream fix under a command of its own,
because upstream installs a `target-duckdb` script into the same bin/ and uv's parallel install
decides which of two same-named scripts survives. These tests install the loader twice into a
system dir of their own, sharing the uv cache (so the second install meets a warm cache), and
feed a one-row batch to exactly what meltano.yml makes Meltano run.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.meltano_harness import Meltano, meltano_for, py_query

if TYPE_CHECKING:
    from pathlib import Path

# `meltano install` of the loader: minutes; .ci/run runs them on one Python only.
pytestmark = pytest.mark.e2e

ONE_ROW = [
    {"type": "SCHEMA", "stream": "s", "key_properties": ["id"],
     "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                 "at": {"type": ["string", "null"], "format": "date-time"}}}},
    {"type": "RECORD", "stream": "s", "record": {"id": 1, "at": "2023-10-25T00:00:00+00:00"}},
    {"type": "STATE", "value": {"done": True}},
]  # fmt: skip
BATCH = "".join(json.dumps(m) + "\n" for m in ONE_ROW)

COUNT = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
print(json.dumps(con.execute("SELECT count(*) FROM t.s").fetchone()[0]))
"""

OWNERS = """
import json, sys
from importlib.metadata import distributions
name = sys.argv[1]
print(json.dumps(sorted({d.metadata["Name"] for d in distributions()
                         for e in d.entry_points if e.group == "console_scripts" and e.name == name})))
"""


def load_one_row(meltano: Meltano, command: Path, db: Path) -> int:
    """Rows that `command --config ...` lands in a new DuckDB file `db` from a one-row batch."""
    config = db.with_suffix(".json")
    config.write_text(json.dumps({"filepath": str(db), "default_target_schema": "t"}))
    proc = subprocess.run(
        [str(command), "--config", str(config)],
        input=BATCH,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return py_query(meltano.python("target-duckdb"), COUNT, str(db))


@dataclass
class Installed:
    """The loader installed twice into one system dir, and what its command landed after each."""

    meltano: Meltano
    command: Path
    rows_after_each_install: list[int]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """`meltano install loader target-duckdb` twice, the one-row batch loaded after each."""
    base = tmp_path_factory.mktemp("duckdb-loader")
    meltano = meltano_for(base)
    command = meltano.executable("loaders", "target-duckdb")
    rows = []
    for n in range(2):
        meltano("install", "loader", "target-duckdb", db=base / "meltano.db")
        rows.append(load_one_row(meltano, command, base / f"after-install-{n}.duckdb"))
    return Installed(meltano, command, rows)


def test_meltano_install_twice_on_a_warm_uv_cache_keeps_the_fixed_loader(
    installed: Installed,
) -> None:
    assert installed.rows_after_each_install == [1, 1]
    assert installed.command.name == "target-duckdb-intercom"


def test_only_the_wrapper_provides_the_command_meltano_runs(installed: Installed) -> None:
    # Another package with a console script of this name could overwrite it in bin/.
    owners = py_query(installed.meltano.python("target-duckdb"), OWNERS, installed.command.name)
    assert owners == ["target-duckdb-fixed"]


def test_meltano_invoke_lands_a_one_row_batch(installed: Installed, tmp_path: Path) -> None:
    db = tmp_path / "invoke.duckdb"
    env = {"TARGET_DUCKDB_FILEPATH": str(db), "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "t"}
    installed.meltano("invoke", "target-duckdb", db=tmp_path / "meltano.db", env=env, stdin=BATCH)
    assert py_query(installed.meltano.python("target-duckdb"), COUNT, str(db)) == 1


def test_upstream_target_duckdb_080_still_loses_the_row(
    installed: Installed, tmp_path: Path
) -> None:
    """Why the wrapper exists; once this lands the row, a fixed release is out: drop the wrapper."""
    upstream = installed.command.parent / "target-duckdb"
    assert load_one_row(installed.meltano, upstream, tmp_path / "upstream.duckdb") == 0
