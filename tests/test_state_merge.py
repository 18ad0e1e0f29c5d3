"""STATE survives Meltano's merge of a run's state into the stored one.

Meltano merges on `meltano run --full-refresh` and `--state-strategy merge`: no crash, no stale
open job, the right job resumed.
"""

from __future__ import annotations

import copy

from tests.conftest import export_config, export_streams
from tests.conftest import run_tap as run_any


def meltano_merge(src: dict, dest: dict) -> dict:
    """A faithful copy of `meltano.core.utils.merge` (Meltano 4.4.1).

    Used by `MeltanoState.json_merged`/`merge_partial` in meltano/core/state_store/base.py: dicts
    recurse (a stored null under a new object fails), anything else replaces, keys only in `dest`
    stay.
    """
    for key, value in src.items():
        if isinstance(value, dict):
            node = dest.setdefault(key, {})
            meltano_merge(value, node)
        else:
            dest[key] = value
    return dest


def persist(stored: dict, states: list[dict]) -> dict:
    """The stored state after Meltano merged each STATE message of a run into it."""
    stored = copy.deepcopy(stored)
    for state in states:
        stored = meltano_merge(copy.deepcopy(state), stored)
    return stored


def until_job(states: list[dict]) -> list[dict]:
    """The STATE messages a run killed while polling its first job got out."""
    for i, state in enumerate(states):
        if state["bookmarks"].get("message_export_jobs", {}).get("in_flight_jobs"):
            return states[: i + 1]
    msg = "no STATE with an open job"
    raise AssertionError(msg)


def test_meltano_merge_rule_is_what_crashed() -> None:
    with_null = {"bookmarks": {"s": {"in_flight_job": None}}}
    try:
        meltano_merge({"bookmarks": {"s": {"in_flight_job": {"job_identifier": "j"}}}}, with_null)
    except (TypeError, AttributeError):
        pass
    else:
        msg = "the copied merge rule no longer fails on null -> object"
        raise AssertionError(msg)


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
    assert run.records("message_export_jobs")[0]["resumed"] is True
    merged = persist(stored, run.states)["bookmarks"]["message_export_jobs"]
    assert merged["in_flight_job"] is None and merged["in_flight_jobs_ahead"] == []
