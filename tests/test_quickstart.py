"""The README's "Quick start with Meltano", run as written: its code blocks, read from README.md.

The blocks run in one bash (as a person pastes them one after the other) from this clone, with
HOME in a temporary folder (the project lands in ~/intercom-project), the pinned Meltano first on
PATH, and the fake Intercom API standing in for api.intercom.io (TAP_INTERCOM_EXPORT_API_URL,
which Meltano maps onto the setting). What landed is checked against the fake's own data.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import pytest
from fake_intercom import build

from tests.meltano_harness import REPO, clean_env, meltano_for
from tests.test_plugin_definition import definition
from tests.test_readme import README, section

if TYPE_CHECKING:
    from pathlib import Path

TOKEN = "quickstart-token"
DAY = 86400


def quickstart_blocks() -> list[str]:
    """The bash blocks of the README's quick start section, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", section(README.read_text(), "quickstart"), re.DOTALL)
    assert len(blocks) >= 2, "the quick start has its commands and the incremental run"
    return blocks


def test_quickstart_uses_the_committed_definitions_and_no_placeholder() -> None:
    text = "\n".join(quickstart_blocks())
    assert "plugin/extractors/tap-intercom-export.yml" in text
    assert "plugin/loaders/target-duckdb.yml" in text
    assert "<" not in text.replace("<<", ""), "a placeholder would not run as written"


@pytest.mark.e2e
def test_quickstart_runs_as_written(tmp_path: Path) -> None:
    import subprocess
    import time

    meltano = meltano_for(tmp_path)  # skips (fails in CI) without the pinned Meltano
    now = int(time.time())
    api = build(token=TOKEN, start=now - 40 * DAY, end=now, receipts_per_day=4).start()
    try:
        env = {
            **clean_env(),
            "HOME": str(tmp_path),
            "PATH": f"{meltano.bin.parent}{os.pathsep}{os.environ['PATH']}",
            "INTERCOM_ACCESS_TOKEN": TOKEN,
            "TAP_INTERCOM_EXPORT_API_URL": api.url,
            "TAP_INTERCOM_EXPORT_EXPORT_POLL_INTERVAL_SECONDS": "1",
            "UV_CACHE_DIR": meltano.env["UV_CACHE_DIR"],
            **{k: v for k, v in meltano.env.items() if k.startswith("MELTANO_") and k not in (
                "MELTANO_PROJECT_ROOT", "MELTANO_SYS_DIR_ROOT", "MELTANO_ENVIRONMENT")},
        }  # fmt: skip
        script = "set -euo pipefail\n" + "\n".join(quickstart_blocks())
        proc = subprocess.run(
            ["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
            timeout=1200, check=False,
        )  # fmt: skip
        receipts = len(api.exports.dataset.rows("receipt", 0, now))
        # The definition as Meltano read it: every setting with its label, description and env.
        listed = subprocess.run(
            ["meltano", "config", "list", "tap-intercom-export", "--all"],
            cwd=tmp_path / "intercom-project", env=env, capture_output=True, text=True,
            timeout=300, check=False,
        ).stdout  # fmt: skip
    finally:
        api.stop()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    project = tmp_path / "intercom-project"
    assert (project / "warehouse.duckdb").is_file()
    assert f"INTERCOM_EXPORT_CLONE={REPO}" in (project / ".env").read_text()
    assert TOKEN not in (project / "meltano.yml").read_text()
    # The last block's query: every receipt the fake holds for the 30 days read, once, after
    # two runs (the second incremental, upserting what it re-read).
    counts = [int(n) for n in re.findall(r"│\s+(\d+)\s+│", proc.stdout)]
    assert counts and 0 < counts[-1] <= receipts, proc.stdout[-2000:]
    assert "in_flight_jobs" in proc.stdout  # `meltano state get` shows the tap's state
    for s in definition()["settings"]:
        assert f"\t{s['label']}: {s['description']}" in listed, s["name"]
        assert re.search(
            rf"^{s['name']} \[env: TAP_INTERCOM_EXPORT_{s['name'].upper()}\]", listed, re.MULTILINE
        ), s["name"]
    assert re.search(r"^access_token .* current value: \(redacted\)", listed, re.MULTILINE)
    assert TOKEN not in listed
