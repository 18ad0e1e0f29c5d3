"""STATE survives Meltano's merge of a run's state into the stored one.

Meltano merges on `meltano run --full-refresh` and `--state-strategy merge`: no crash, no stale
open job, the right job resumed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import export_config, export_streams
from tests.conftest import run_tap as run_any
from tests.meltano_harness import REPO, ensure_meltano

pytestmark = pytest.mark.e2e

MELTANO_PYTHON = REPO / ".venv-meltano" / "bin" / "python"


@pytest.fixture(autouse=True, scope="module")
def _meltano() -> None:
    ensure_meltano(Path(MELTANO_PYTHON).with_name("meltano"))


# Meltano's own merge, run by the installed Meltano: `meltano.core.utils.merge`, which
# `MeltanoState.merge_partial`/`json_merged` (meltano/core/state_store/base.py) apply to each
# STATE a run emits: dicts recurse (a stored null under a new object fails), anything else
# replaces, keys only in the stored state stay.
_MERGE = """
import json, sys
from meltano.core.utils import merge
stored, states = json.load(sys.stdin)
for state in states:
    stored = merge(state, stored)
json.dump(stored, sys.stdout)
"""


def persist(stored: dict, states: list[dict]) -> dict:
    """The stored state after Meltano merged each STATE message of a run into it."""
    proc = subprocess.run(
        [str(MELTANO_PYTHON), "-c", _MERGE], input=json.dumps([stored, states]),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"Meltano's merge failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def until_job(states: list[dict]) -> list[dict]:
    """The STATE messages a run killed while polling its first job got out."""
    for i, state in enumerate(states):
        if state["bookmarks"].get("message_export_jobs", {}).get("in_flight_jobs"):
            return states[: i + 1]
    msg = "no STATE with an open job"
    raise AssertionError(msg)


def test_meltano_merge_rule_is_what_crashed() -> None:
    with_null = {"bookmarks": {"s": {"in_flight_job": None}}}
    new = {"bookmarks": {"s": {"in_flight_job": {"job_identifier": "j"}}}}
    with pytest.raises(AssertionError, match=r"AttributeError|TypeError"):
        persist(with_null, [new])


def test_killed_completed_and_new_job_runs_merge_cleanly(make_fake, clock) -> None:
    fake = make_fake()
    config = export_config(fake, end_date="2023-11-08T00:00:00Z")
    # What Meltano stored from a run of an older version that ended with no job open.
    stored = {"bookmarks": {"message_export_jobs": {"in_flight_job": None}}}

    killed = run_any(config, stored, select=export_streams())
    stored = persist(stored, until_job(killed.states))
    (open_job,) = stored["bookmarks"]["message_export_jobs"]["in_flight_jobs"]

    completed = run_any(config, stored, select=export_streams())
    jobs = [(j["job_identifier"], j["resumed"]) for j in completed.records("message_export_jobs")]
    assert jobs[0] == (open_job["job_identifier"], True)
    stored = persist(stored, completed.states)
    assert stored["bookmarks"]["message_export_jobs"]["in_flight_jobs"] == []
    assert stored["bookmarks"]["message_export_jobs"]["in_flight_job"] is None

    later = {**config, "end_date": "2023-11-14T00:00:00Z"}
    again = run_any(later, stored, select=export_streams())
    stored = persist(stored, until_job(again.states))
    (new_job,) = stored["bookmarks"]["message_export_jobs"]["in_flight_jobs"]
    assert new_job["job_identifier"] != open_job["job_identifier"]
    assert new_job["window_start"] == "2023-11-08T00:00:00+00:00"

    resumed = run_any(later, stored, select=export_streams())
    jobs = [(j["job_identifier"], j["resumed"]) for j in resumed.records("message_export_jobs")]
    assert jobs[0] == (new_job["job_identifier"], True)
    assert (
        persist(stored, resumed.states)["bookmarks"]["message_export_jobs"]["in_flight_jobs"] == []
    )


def test_legacy_open_jobs_are_resumed_and_do_not_come_back(make_fake, clock) -> None:
    fake = make_fake()
    config = export_config(fake, end_date="2023-11-08T00:00:00Z")
    first = run_any(config, None, select=export_streams())
    job = first.records("message_export_jobs")[0]
    stored = {"bookmarks": {"message_export_jobs": {
        "in_flight_job": {"job_identifier": job["job_identifier"], "window_start": "2023-10-25T00:00:00+00:00",
                          "window_end": "2023-11-01T00:00:00+00:00"},
        "in_flight_jobs_ahead": [{"job_identifier": "job0099", "window_start": "2023-11-01T00:00:00+00:00",
                                  "window_end": "2023-11-08T00:00:00+00:00"}],
    }}}  # fmt: skip
    fake.exports.jobs.pop("job0099", None)
    run = run_any(config, stored, select=export_streams(), raise_errors=False)
    assert run.error is None
    assert run.records("message_export_jobs")[0]["resumed"] is True
    merged = persist(stored, run.states)["bookmarks"]["message_export_jobs"]
    assert merged["in_flight_job"] is None and merged["in_flight_jobs_ahead"] == []
