"""The README's first command, `bash scripts/demo.sh`, run twice in a row on one system dir.

Its own file so that the test runner can run it beside the other `meltano run` files: it installs
its own plugins (minutes on a cold cache).
"""

from __future__ import annotations

import subprocess
import typing as t

import pytest

from tap_intercom_export.tap import TapIntercomExport
from tests.e2e_pipeline import EXPORT_STREAMS, TOKEN
from tests.meltano_harness import REPO, meltano_for

if t.TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e


def test_demo_script_lands_every_emitted_row_twice_in_a_row(tmp_path: Path) -> None:
    """The README's first command, run twice on one system dir (the second on warm caches)."""
    meltano = meltano_for(tmp_path)  # its own plugins: the demo installs them
    env = {
        **meltano.env,
        "MELTANO_BIN": str(meltano.bin),
        "MELTANO_VENV": str(meltano.bin.parent.parent),
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "DEMO_DB": str(tmp_path / "demo.duckdb"),
    }
    env.pop("MELTANO_ENVIRONMENT")
    streams = {
        e["tap_stream_id"]
        for e in TapIntercomExport(config={"access_token": TOKEN}).catalog_dict["streams"]
    }
    assert set(EXPORT_STREAMS) <= streams
    for _ in range(2):
        proc = subprocess.run(
            ["bash", str(REPO / "scripts" / "demo.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rows = {
            line.split()[0]: line.split()[1:]
            for line in proc.stdout.splitlines()
            if line.startswith("  intercom.")
        }
        # The demo selects message_* and contact_*: every such stream of the tap lands a table.
        assert set(rows) == {
            f"intercom.{s}" for s in streams if s.startswith(("message_", "contact_"))
        }
        # Landed = emitted (the tap's record_count metrics), for every table, and none is empty.
        assert all(landed == emitted and int(landed) > 0 for landed, emitted in rows.values()), rows
        assert f"landed = emitted for all {len(rows)} tables" in proc.stdout
        # 28 days of 48 receipts a day, all of them inside the tap's default 30-day lookback.
        assert rows["intercom.message_receipts"] == [str(28 * 48)] * 2
        assert "message_receipts.received_at is TIMESTAMP" in proc.stdout
