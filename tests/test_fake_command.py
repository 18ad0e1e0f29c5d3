"""The `fake-intercom` command the demo runs: it serves, and cleans up when stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

# The installed `fake-intercom` command, as the demo runs it.
pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopped_fake_removes_the_archives_it_built(tmp_path: Path, stop: signal.Signals) -> None:
    """scripts/demo.sh stops it with SIGTERM; leftover archives would pile up in the temp dir."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    url_file = tmp_path / "url"
    # The installed command (scripts/test.sh installs packages/fake-intercom into .venv).
    command = [str(Path(sys.executable).parent / "fake-intercom"), "--days", "3",
               "--url-file", str(url_file), "--token", "t"]  # fmt: skip
    proc = subprocess.Popen(command, env={**os.environ, "TMPDIR": str(temp)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        for _ in range(200):
            if url_file.exists() and url_file.read_text():
                break
            time.sleep(0.05)
        url = url_file.read_text()
        # One export job, so the fake builds an archive on disk.
        job = requests.post(f"{url}/export/content/data", timeout=10,
                            headers={"Authorization": "Bearer t", "Intercom-Version": "2.14"},
                            json={"created_at_after": int(time.time()) - 86400,
                                  "created_at_before": int(time.time())}).json()  # fmt: skip
        assert "job_identifier" in job, job
        assert any(temp.iterdir())
        proc.send_signal(stop)
        assert proc.wait(timeout=10) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
    assert list(temp.iterdir()) == []
