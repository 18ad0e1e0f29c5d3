"""What an operator meets: every bad input ends in one line and exit 1, a stopped run fails, logs.

The `e2e` tests run the installed command (`.venv/bin/tap-intercom-export`) as a scheduler does;
each expectation is the line the README's troubleshooting table promises. Nothing waits for real:
the network retry budget is a setting (a second here), export waits run on a virtual clock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_intercom.core import error_body, real_sleep

from tests.conftest import export_config, run_tap, selection_catalog

COMMAND = Path(sys.executable).parent / "tap-intercom-export"
ONE_WINDOW = {"end_date": "2023-11-01T00:00:00Z"}
NO_STREAMS = {"streams": []}


def tap(
    tmp_path: Path, *args: str, config: dict | None = None, **files: object
) -> subprocess.CompletedProcess:
    """Run the installed command with --config (and any of state=, catalog= as files)."""
    argv = [str(COMMAND)]
    for name, value in {"config": config, **files}.items():
        if value is None:
            continue
        path = tmp_path / f"{name}.json"
        path.write_text(value if isinstance(value, str) else json.dumps(value))
        argv += [f"--{name}", str(path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_INTERCOM_EXPORT_")}
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The error line; the run must have exited 1 without a traceback or the SDK's bare line."""
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "Config validation failed" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("tap-intercom-export: error: "), proc.stderr[-3000:]
    return last


OK = {"access_token": "t", "api_url": "http://127.0.0.1:9"}

BAD_INPUTS = [
    ("state not JSON", {"state": "{not json"}, r"--state \S+state.json is not JSON .*\(leave --state out for a first run\)"),
    ("state a number", {"state": "5"}, r"--state \S+ holds a number, not a JSON object"),
    ("state of the wrong shape", {"state": {"bookmarks": 5}}, r"The state is not a Singer state: it must be \{\"bookmarks\""),
    ("bookmark of the wrong shape", {"state": {"bookmarks": {"message_receipts": 7}}}, "The state is not a Singer state"),
    ("catalog not JSON", {"catalog": "[1, 2"}, r"--catalog \S+ is not JSON .* --discover"),
    ("catalog without streams", {"catalog": {"stream": []}}, r'--catalog \S+ has no "streams" list'),
    ("catalog of unknown streams", {"catalog": {"streams": [{"tap_stream_id": "conversations", "stream": "conversations", "schema": {}, "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}]}]}},
     r"The catalog selects no stream of this tap \(it selects conversations\): run `tap-intercom-export --config \.\.\. --discover`"),
]  # fmt: skip


@pytest.mark.e2e
@pytest.mark.parametrize(("case", "files", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_files_end_in_one_line(tmp_path, case, files, message) -> None:
    files.setdefault("catalog", NO_STREAMS)
    line = one_line_error(tap(tmp_path, config=OK, **files))
    assert re.search(message, line), line


BAD_CONFIGS = [
    ("config not JSON", "{'access_token': 't'}", r"--config \S+ is not JSON .* e\.g\. \{\"access_token\""),
    ("missing token", {"api_url": "http://127.0.0.1:9"}, r"Setting access_token is missing: set it to an Intercom access token \(TAP_INTERCOM_EXPORT_ACCESS_TOKEN"),
    ("region mars", {**OK, "region": "mars"}, r"Unknown region 'mars': set region to one of us, eu, au\.$"),
    ("window in words", {**OK, "export_window_days": "seven"}, r"Setting export_window_days='seven' must be a whole number of days, 1 or more\.$"),
    ("too many requests at once", {**OK, "max_concurrent_requests": 10000}, r"max_concurrent_requests=10000 must be a whole number from 1 to 256 \(one worker thread each"),
    ("too many reporting jobs", {**OK, "reporting_max_concurrent_jobs": 6}, r"reporting_max_concurrent_jobs=6 must be a whole number from 1 to 5 \(Intercom allows 5"),
    ("jobs ahead past one", {**OK, "export_jobs_ahead": 2}, r"export_jobs_ahead=2 must be a whole number from 0 to 1"),
    ("a batch format", {**OK, "batch_config": {"encoding": {"format": "xml"}}}, r"batch_config\.encoding\.format='xml' is not supported: set it to 'jsonl' or 'parquet'"),
    ("an SDK setting", {**OK, "flattening_max_depth": "deep"}, r"Invalid config: 'deep' is not of type 'integer'.*flattening_max_depth"),
]  # fmt: skip


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("case", "config", "message"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_settings_end_in_one_line_naming_the_setting(tmp_path, case, config, message) -> None:
    line = one_line_error(tap(tmp_path, config=config, catalog=NO_STREAMS))
    assert re.search(message, line), line


@pytest.mark.e2e
def test_state_of_another_tap_is_a_warning(tmp_path) -> None:
    # singer-io's tap-intercom keeps its bookmarks like this.
    state = {"bookmarks": {"conversations": {"updated_at": "2024-01-01T00:00:00Z"}}}
    proc = tap(tmp_path, config=OK, state=state, catalog=NO_STREAMS)
    assert proc.returncode == 0, proc.stderr
    assert re.search(
        r"WARNING .*The state holds no bookmark of this tap \(it has conversations\): probably "
        r"another tap's state\. This run starts from start_date",
        proc.stderr,
    )


@pytest.mark.e2e
def test_catalog_naming_unknown_streams_besides_ours_warns(tmp_path, make_fake) -> None:
    fake = make_fake()
    entry = {"tap_stream_id": "tickets", "stream": "tickets", "schema": {},
             "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}]}  # fmt: skip
    catalog = selection_catalog(export_config(fake), {"message_export_jobs"})
    catalog["streams"].append(entry)
    proc = tap(
        tmp_path,
        config=export_config(fake, export_poll_interval_seconds=0.01, **ONE_WINDOW),
        catalog=catalog,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "The catalog selects stream(s) this tap does not have, ignored: tickets." in proc.stderr


# -- the network ---------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.e2e
def test_a_host_that_never_answers_is_named_after_the_retry_budget(tmp_path) -> None:
    config = {"access_token": "t", "api_url": f"http://127.0.0.1:{free_port()}",
              "network_retry_seconds": 1}  # fmt: skip
    started = time.monotonic()
    line = one_line_error(tap(tmp_path, config=config))
    assert time.monotonic() - started < 30
    assert re.search(
        r"127\.0\.0\.1 never answered \(connection refused\), for 1 s of retries\. Check the "
        r"network and the setting api_url=http://127\.0\.0\.1:\d+: region must be where",
        line,
    ), line


@pytest.mark.e2e
def test_a_host_that_stops_answering_mid_export_leaves_the_job_in_state(
    tmp_path, make_fake
) -> None:
    fake = make_fake(status_script=["pending"] * 100_000)
    config = export_config(
        fake, export_poll_interval_seconds=0.05, network_retry_seconds=1, **ONE_WINDOW
    )
    (tmp_path / "config.json").write_text(json.dumps(config))
    catalog = selection_catalog(config, {"message_export_jobs", "message_receipts"})
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
        proc = subprocess.Popen(
            [str(COMMAND), "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")],
            stdout=out, stderr=err,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while len(fake.calls("GET", r"/export/content/data/job0001")) < 2:
            assert time.monotonic() < deadline and proc.poll() is None
            real_sleep(0.02)
        fake.stop()
        proc.wait(timeout=60)
    stderr = (tmp_path / "err").read_text()
    assert proc.returncode == 1 and "Traceback" not in stderr
    assert re.search(
        r"error: 127\.0\.0\.1 stopped answering: GET /export/content/data/job0001 got no answer "
        r"\(connection refused\) for 1 s of retries\. An export job in flight stays in the state",
        stderr.strip().splitlines()[-1],
    ), stderr[-2000:]
    states = [
        json.loads(line)["value"]
        for line in (tmp_path / "out").read_text().splitlines()
        if '"STATE"' in line
    ]
    jobs = states[-1]["bookmarks"]["message_export_jobs"]["in_flight_jobs"]
    assert [j["job_identifier"] for j in jobs] == ["job0001"]


def test_a_blip_shorter_than_the_budget_costs_nothing(make_fake, clock, caplog) -> None:
    fake = make_fake()
    fake.inject("GET", r"/export/content/data/.*", drop=True, times=5)
    fake.inject(
        "POST",
        r"/export/content/data",
        503,
        body=error_body("service_unavailable", "Down"),
        times=3,
    )
    caplog.set_level(logging.INFO)
    run = run_tap(
        export_config(fake, **ONE_WINDOW), select=["message_export_jobs", "message_receipts"]
    )
    assert len(run.records("message_export_jobs")) == 1
    retries = [r for r in caplog.records if r.getMessage().startswith("Retry ")]
    # One INFO line per retry, none from the backoff library, no WARNING: nobody needs to act.
    assert len(retries) == 8 and {r.levelname for r in retries} == {"INFO"}
    assert (
        sum("no answer from the API (connection dropped)" in r.getMessage() for r in retries) == 5
    )
    assert not [r for r in caplog.records if r.name == "backoff"]


def test_5xx_past_the_budget_is_one_line_saying_intercom_has_trouble(make_fake, clock) -> None:
    from tap_intercom_export.errors import IntercomAPIError

    fake = make_fake()
    fake.inject(
        "POST",
        r"/export/content/data",
        503,
        body=error_body("service_unavailable", "Down"),
        times=99,
    )
    with pytest.raises(
        IntercomAPIError,
        match=r"HTTP 503 .* \(still failing after 2 min 2 s of retries\): Intercom is having trouble",
    ):
        run_tap(export_config(fake, **ONE_WINDOW))
    # Waits 1, 2, 4, 8, 16, 30, 30, then the 20 s left of 120 s (jitter adds 10 % above 1 s:
    # 122 s in all).
    assert clock.sleeps[:7] == pytest.approx([1.0, 2.2, 4.4, 8.8, 17.6, 33.0, 33.0])
    assert len(clock.sleeps) == 8


# -- signals -------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_fails_with_the_shells_code_after_its_state(
    tmp_path, make_fake, sig, code
) -> None:
    fake = make_fake(status_script=["pending"] * 100_000)
    config = export_config(fake, export_poll_interval_seconds=0.05, **ONE_WINDOW)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
        proc = subprocess.Popen(
            [str(COMMAND), "--config", str(tmp_path / "config.json")], stdout=out, stderr=err
        )
        deadline = time.monotonic() + 30
        while len(fake.calls("GET", r"/export/content/data/job0001")) < 2:
            assert time.monotonic() < deadline and proc.poll() is None
            real_sleep(0.02)
        stopped = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=20)
    assert proc.returncode == code
    assert time.monotonic() - stopped < 5
    stderr = (tmp_path / "err").read_text()
    assert f"Stopped by {sig.name}: the last STATE above lets the next run resume" in stderr
    assert "Traceback" not in stderr
    last = [json.loads(line) for line in (tmp_path / "out").read_text().splitlines()][-1]
    assert last["type"] == "STATE"
    assert (
        last["value"]["bookmarks"]["message_export_jobs"]["in_flight_jobs"][0]["job_identifier"]
        == "job0001"
    )


# -- what a person reads -------------------------------------------------------------------------


def test_a_long_wait_shows_progress_soon_and_then_every_few_minutes(
    make_fake, clock, caplog
) -> None:
    fake = make_fake(status_script=["pending"] * 40 + ["completed"])
    caplog.set_level(logging.INFO)
    run_tap(
        export_config(fake, export_poll_interval_seconds=30, **ONE_WINDOW),
        select=["message_export_jobs", "message_receipts"],
    )
    notes = [
        r.getMessage()
        for r in caplog.records
        if "Intercom still reports pending after" in r.getMessage()
    ]
    # 40 polls: after 1, 2, 4, 8 and 16 s, then 35 x 30 s: 18 min 1 s pending; a line at 30 s,
    # then every 3 min (the first check past each mark).
    assert [re.search(r"after (.*?) \(", n).group(1) for n in notes] == [
        "31 s", "3 min 31 s", "6 min 31 s", "9 min 31 s", "12 min 31 s", "15 min 31 s",
    ]  # fmt: skip


@pytest.mark.e2e
def test_info_is_a_person_s_account_and_debug_shows_everything(tmp_path, make_fake) -> None:
    fake = make_fake()
    config = export_config(fake, export_poll_interval_seconds=0.01, end_date="2023-11-08T00:00:00Z")
    catalog = selection_catalog(
        config, {"message_export_jobs", "message_receipts", "message_opens"}
    )
    info = tap(tmp_path, config=config, catalog=catalog)
    assert info.returncode == 0, info.stderr[-2000:]
    lines = info.stderr.splitlines()
    assert not [
        line
        for line in lines
        if "METRIC" in line or "Beginning sync" in line or "as child stream" in line
    ]
    assert re.search(
        r"Run starts: message data export \(message_export_jobs, message_opens, message_receipts\); without bookmarks",
        info.stderr,
    )
    receipts = len(fake.exports.dataset.rows("receipt", 1698192000, 1699401600 - 1))
    assert re.search(
        rf"Run done in \d+ s: \d+ records \(.*message_receipts {receipts}\)\.", lines[-1]
    ), lines[-1]
    assert len(lines) < 25

    metrics = tap(tmp_path, config={**config, "metrics_log_level": "info"}, catalog=catalog)
    assert re.search(
        r'METRIC: .*"metric":"record_count".*"stream":"message_receipts"', metrics.stderr
    )

    debug_env = {**os.environ, "TAP_INTERCOM_EXPORT_LOGLEVEL": "debug"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    debug = subprocess.run([str(COMMAND), "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")],
                           capture_output=True, text=True, timeout=120, check=False, env=debug_env)  # fmt: skip
    for routine in (
        "Beginning sync of 'message_receipts'",
        "Added 'message_receipts' as child stream",
        "METRIC",
    ):
        assert routine in debug.stderr, routine
