"""Kill the tap at random points; the states it left must lead to complete data.

A kill is simulated in-process by raising a BaseException (nothing in the tap or the SDK
catches it, and no final STATE is written, as with SIGKILL) right after the N-th message
written (a block of records, for the tap's own record loop), sleep taken or download chunk
stored. What the tap's stdout buffer held at the kill is lost, as it would be; every STATE the
tap wrote before the kill must be in the output all the same. Each next run starts from the
last STATE the killed run wrote. Over all runs, every expected row must be emitted and covered
by a STATE exactly once ("confirmed"); a row may appear again only if its earlier copy was
emitted after the killed run's last STATE (the target got it, but the state did not cover it
yet).
"""

from __future__ import annotations

import random

import pytest

from tests.conftest import DAY, export_config, export_streams, run_tap
from tests.kill_harness import Killed, Tally, expected_keys
from tests.oracle import unix

START = unix("2023-10-25T00:00:00Z")
WINDOWS = [(START, START + 7 * DAY), (START + 7 * DAY, START + 14 * DAY)]
SEEDS = 40


# Overlapped jobs (the default) at every seed; one job after another at a few.
@pytest.mark.parametrize(
    ("seed", "ahead"), [(s, 1) for s in range(SEEDS)] + [(s, 0) for s in range(10)]
)
def test_random_kills_never_lose_a_row(make_fake, chaos, seed, ahead) -> None:
    rng = random.Random(seed)
    fake = make_fake(
        receipts_per_day=6, status_script=["pending", "pending", "in_progress", "completed"]
    )
    config = export_config(
        fake,
        end_date="2023-11-08T00:00:00Z",
        export_poll_interval_seconds=2,
        export_jobs_ahead=ahead,
    )
    streams = export_streams()
    state = None
    tally = Tally()
    kills = 0
    for _ in range(30):
        chaos.n = 0
        chaos.states = []
        chaos.kill_at = rng.randint(1, 250) if rng.random() < 0.75 else None
        run = run_tap(config, state=state, select=streams, raise_errors=False)
        killed = isinstance(run.error, Killed)
        assert run.error is None or killed, run.error
        # Every STATE the tap wrote is out, with the records before it.
        assert run.states == chaos.states
        tally.add(run.messages, killed=killed)
        state = run.state or state
        if not killed:
            break
        kills += 1
    else:
        pytest.fail("the tap never finished")

    duplicates = tally.check(expected_keys(fake, WINDOWS))
    # The end state covers everything: a run from it exports nothing.
    chaos.kill_at = None
    again = run_tap(config, state=state, select=streams)
    assert again.streams("message_") == {}
    print(f"seed {seed}: {kills} kills, {duplicates} duplicate rows re-emitted")
