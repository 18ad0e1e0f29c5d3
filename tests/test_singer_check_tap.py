"""singer-io's `singer-check-tap` accepts a sync of every stream, and the rerun from its STATE.

`singer-check-tap` (PyPI `singer-tools` 0.4.1) is the Singer project's own conformance checker:
it validates every RECORD against its stream's latest SCHEMA (JSON Schema draft 4, with a strict
RFC 3339 parser for `format: date-time`, so a time without an offset fails). It is installed as a
user would, with pip, into a venv of its own on Python 3.11 under the work tree's .cache (made
once, then reused). The installed `tap-intercom-export` command runs against the fake on loopback,
in real time (polls every 50 ms), with reporting times written in New York's zone, and its output
is piped into the checker; then again from the last STATE.

The checker's own `--tap` mode is not used: it reads its summary without waiting for the thread
that parses the tap's output, so once a tap writes more than a pipe buffer holds, it fails with
`AttributeError: 'NoneType' object has no attribute 'num_messages'` while that thread still parses
the last 64 KiB (check_tap.py `run_and_summarize`). Reading from stdin has no such race.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_intercom import build

from tests.meltano_harness import REPO, require
from tests.oracle import iso

pytestmark = pytest.mark.e2e

DAY = 86400
TOKEN = "check-token"
SINGER_TOOLS = "singer-tools==0.4.1"
VENV = REPO / ".cache" / "singer-tools-py3.11"
#: Written once pip has installed singer-tools whole: a venv without it is made again.
DONE = VENV / "installed.txt"


def python311() -> str | None:
    """Python 3.11: on PATH, else pyenv's newest 3.11.x."""
    found = shutil.which("python3.11")
    if found:
        return found
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    versions = sorted(root.glob("3.11.*/bin/python"), key=lambda p: [int(n) for n in p.parts[-3].split(".")])  # fmt: skip
    return str(versions[-1]) if versions else None


def singer_check_tap() -> Path:
    """`singer-check-tap` from a venv of its own (made the first time)."""
    check = VENV / "bin" / "singer-check-tap"
    if DONE.exists() and check.exists():
        return check
    python = python311()
    require(python is not None, "no Python 3.11 for singer-tools")
    shutil.rmtree(VENV, ignore_errors=True)
    steps = (
        [str(python), "-m", "venv", str(VENV)],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", SINGER_TOOLS],
    )  # fmt: skip
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)
        require(proc.returncode == 0, f"{' '.join(step)} failed: {proc.stderr[-2000:]}")
    DONE.write_text(SINGER_TOOLS + "\n")
    return check


def summary(output: str) -> list[dict[str, int]]:
    """Records per stream of each run singer-check-tap reports (its ASCII tables)."""
    runs = []
    for table in output.split("Details by stream:")[1:]:
        rows = re.findall(r"^\| (\S+) +\| (\d+) +\| (\d+) +\|$", table, flags=re.MULTILINE)
        runs.append({name: int(records) for name, records, _schemas in rows})
    return runs


def test_singer_check_tap_accepts_a_sync_of_every_stream(tmp_path: Path) -> None:
    check = singer_check_tap()
    tap = Path(sys.executable).with_name("tap-intercom-export")
    require(tap.exists(), f"{tap} is not installed (scripts/test.sh installs the tap)")
    now = int(time.time())
    fake = build(
        token=TOKEN,
        start=now - 20 * DAY,
        end=now,
        receipts_per_day=12,
        invent_kind=True,  # message_other_statistics gets rows too
        timezone="America/New_York",
    ).start()
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({
            "access_token": TOKEN,
            "api_url": fake.url,
            "start_date": iso(now - 14 * DAY),
            "export_poll_interval_seconds": 0.05,
        })
    )  # fmt: skip
    runs = []
    try:
        for n, state in enumerate((None, tmp_path / "state.json")):
            output = tmp_path / f"run{n}.jsonl"
            args = [str(tap), "--config", str(config)] + (["--state", str(state)] if state else [])
            with output.open("wb") as out, (tmp_path / f"run{n}.log").open("wb") as log:
                done = subprocess.run(args, stdout=out, stderr=log, cwd=tmp_path, timeout=600, check=False)  # fmt: skip
            assert done.returncode == 0, (tmp_path / f"run{n}.log").read_text()[-4000:]
            with output.open("rb") as messages:
                checked = subprocess.run(
                    [str(check)], stdin=messages, capture_output=True, text=True, cwd=tmp_path,
                    timeout=600, check=False,
                )  # fmt: skip
            assert checked.returncode == 0, (checked.stdout + checked.stderr)[-4000:]
            assert "The output is valid." in checked.stdout
            runs.append(summary(checked.stdout)[0])
            states = [
                m for m in map(json.loads, output.read_text().splitlines()) if m["type"] == "STATE"
            ]
            (tmp_path / "state.json").write_text(json.dumps(states[-1]["value"]))
    finally:
        fake.stop()
    every = {
        "message_export_jobs", "message_receipts", "message_other_statistics", "contact_events",
        "contact_event_summaries", "reporting_conversation", "reporting_tickets",
        "reporting_admin_status_change", "reporting_export_jobs",
    }  # fmt: skip
    assert every <= {name for name, records in runs[0].items() if records > 0}, runs[0]
    # The rerun re-exports the reporting lookback: its records are checked too.
    assert runs[1].get("reporting_conversation", 0) > 0, runs[1]
