"""Every failure Intercom's export and rate limits throw ends in complete data or a clear error."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from typing import TYPE_CHECKING

import pytest
from fake_intercom.core import error_body, real_sleep
from fake_intercom.exports import FakeJob

from tap_intercom_export.errors import ArchiveError, ConfigError, ExportError
from tap_intercom_export.settings import check_config
from tests.conftest import DAY, export_config, run_tap
from tests.oracle import unix

if TYPE_CHECKING:
    from pathlib import Path

START = unix("2023-10-25T00:00:00Z")
ONE_WINDOW = {"end_date": "2023-11-01T00:00:00Z"}


def creates(fake) -> list[tuple[int, int]]:
    return [
        (r.body["created_at_after"], r.body["created_at_before"])
        for r in fake.calls("POST", "/export/content/data")
    ]


def receipt_ids(run) -> list[str]:
    return [r["receipt_id"] for r in run.records("message_receipts")]


def expected_ids(fake, start=START, end=START + 7 * DAY) -> list[str]:
    return [r["receipt_id"] for r in fake.exports.dataset.rows("receipt", start, end - 1)]


def foreign_job(fake, status="pending") -> FakeJob:
    job = FakeJob("someone-else", 0, 10, [status])
    fake.exports.jobs[job.job_id] = job
    return job


# -- one job at a time -------------------------------------------------------------------------


def test_waits_for_another_workspace_job(make_fake, clock, caplog) -> None:
    fake = make_fake()
    other = foreign_job(fake)
    sleeps = clock.sleeps

    def sleep_and_finish_other(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds
        if len(sleeps) == 3:
            other.status = "completed"

    clock.sleep = sleep_and_finish_other  # type: ignore[method-assign]
    from tap_intercom_export.content.streams import MessageExportJobsStream

    MessageExportJobsStream.sleep = staticmethod(sleep_and_finish_other)  # restored by the fixture
    caplog.set_level(logging.INFO)
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert receipt_ids(run) == expected_ids(fake)
    assert sleeps[:3] == [5, 10, 20]  # backing off while the other job runs
    assert len(creates(fake)) == 4  # three refused, one accepted
    # A job no state of ours names is explained once (README, Troubleshooting), then followed.
    refused = [r.getMessage() for r in caplog.records if "refuses a new" in r.getMessage()]
    assert len(refused) == 1 and re.search(
        r"another one is pending in this workspace .* and the state names no job of ours\. It is "
        r"probably the job of an earlier run that stopped before its loader saved the state, or "
        r"another tool's export\. Waiting for it to finish \(up to export_timeout_seconds=43200",
        refused[0],
    )
    assert sum("Still waiting for the other pending" in r.getMessage() for r in caplog.records) == 2


def test_gives_up_on_another_workspace_job_with_a_clear_error(make_fake, clock) -> None:
    fake = make_fake()
    foreign_job(fake)
    with pytest.raises(
        ExportError,
        match="Another message data export job is active in this Intercom workspace and did not finish within export_timeout_seconds=600",
    ):
        run_tap(export_config(fake, export_timeout_seconds=600, **ONE_WINDOW))
    assert 590 <= clock.now <= 900


def test_our_stale_job_from_state_is_canceled_when_it_blocks(make_fake, clock) -> None:
    fake = make_fake()
    stale = FakeJob("job-old", 0, 10, ["pending"])
    fake.exports.jobs[stale.job_id] = stale
    state = {"bookmarks": {"message_export_jobs": {"in_flight_job": {
        "job_identifier": "job-old", "window_start": "2020-01-01T00:00:00+00:00",
        "window_end": "2020-01-02T00:00:00+00:00"}}}}  # fmt: skip
    run = run_tap(export_config(fake, **ONE_WINDOW), state=state)
    assert stale.status == "canceled"
    assert receipt_ids(run) == expected_ids(fake)


# -- failed, canceled, truncated, expired jobs -------------------------------------------------


def test_failed_job_is_created_again(make_fake, clock) -> None:
    fake = make_fake()
    fake.exports.next_scripts = [["pending", "failed"]]
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert creates(fake) == [(START, START + 7 * DAY - 1)] * 2
    assert receipt_ids(run) == expected_ids(fake)
    assert run.records("message_export_jobs")[0]["attempts"] == 2


def test_job_canceled_by_someone_else_is_created_again(make_fake, clock) -> None:
    fake = make_fake()
    fake.exports.next_scripts = [["pending", "canceled"]]
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert len(creates(fake)) == 2
    assert receipt_ids(run) == expected_ids(fake)


def test_window_failing_twice_is_split_in_halves(make_fake, clock) -> None:
    fake = make_fake()
    fake.exports.next_scripts = [["pending", "failed"], ["failed"]]
    run = run_tap(export_config(fake, **ONE_WINDOW))
    half = START + 7 * DAY // 2
    assert creates(fake)[2:] == [(START, half - 1), (half, START + 7 * DAY - 1)]
    assert receipt_ids(run) == expected_ids(fake)
    assert [j["window_end"] for j in run.records("message_export_jobs")] == [
        "2023-10-28T12:00:00+00:00", "2023-11-01T00:00:00+00:00"]  # fmt: skip


def test_window_that_always_fails_gives_up_at_one_hour(make_fake, clock) -> None:
    fake = make_fake(status_script=["pending", "failed"])
    with pytest.raises(ExportError, match="cannot be split below 60 minutes"):
        run_tap(export_config(fake, **ONE_WINDOW))
    assert min(b - a + 1 for a, b in creates(fake)) <= 3600


def test_504_on_status_is_a_failed_job(make_fake, clock) -> None:
    fake = make_fake()
    fake.exports.next_scripts = [["pending", "in_progress", "failed_504"]]
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert len(creates(fake)) == 2
    assert receipt_ids(run) == expected_ids(fake)


def test_row_limit_splits_until_nothing_is_truncated(make_fake, clock) -> None:
    fake = make_fake(row_limit=50)
    run = run_tap(export_config(fake, export_row_limit=50, **ONE_WINDOW))
    ids = receipt_ids(run)
    assert sorted(ids) == sorted(expected_ids(fake)) and len(ids) == len(set(ids)) == 168
    windows = [(j["window_start"], j["window_end"]) for j in run.records("message_export_jobs")]
    assert len(windows) == 4 and windows[0][0] == "2023-10-25T00:00:00+00:00"
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert all(v < 50 for v in (j["rows"]["receipt"] for j in run.records("message_export_jobs")))


def test_download_404_creates_the_job_again(make_fake, clock) -> None:
    fake = make_fake()
    fake.inject(
        "GET", r"/download/content/data/.*", 404, body=error_body("not_found", "Export not found")
    )
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert len(creates(fake)) == 2
    assert receipt_ids(run) == expected_ids(fake)


def test_resumed_job_whose_download_expired_is_created_again(make_fake, clock) -> None:
    fake = make_fake()
    fake.exports.expire_after = -60  # completed jobs are already past their two days
    state = {"bookmarks": {"message_export_jobs": {"in_flight_job": {
        "job_identifier": "job0001", "window_start": "2023-10-25T00:00:00+00:00",
        "window_end": "2023-11-01T00:00:00+00:00"}}}}  # fmt: skip
    fake.exports.jobs["job0001"] = FakeJob("job0001", START, START + 7 * DAY - 1, ["completed"])
    fake.exports.status({}, type("M", (), {"group": lambda _self, _i: "job0001"})())  # complete it
    fake.exports.expire_after = 2 * DAY
    fake.exports._ids = iter(range(2, 100))
    run = run_tap(export_config(fake, **ONE_WINDOW), state=state)
    jobs = run.records("message_export_jobs")
    assert [j["job_identifier"] for j in jobs] == ["job0002"]
    assert receipt_ids(run) == expected_ids(fake)


def test_cut_short_download_is_downloaded_again(make_fake, clock) -> None:
    fake = make_fake()
    fake.inject("GET", r"/download/content/data/.*", 200, truncate=300)
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert len(fake.calls("GET", r"/download/content/data/.*")) == 2
    assert len(creates(fake)) == 1
    assert receipt_ids(run) == expected_ids(fake)


def test_unreadable_download_fails_clearly_and_emits_nothing(make_fake, clock) -> None:
    def corrupt(job, path: Path) -> None:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("receipt_20231025-000000.csv", b"receipt_id\n" + b"r,\n" * 5000)
        data = bytearray(path.read_bytes())
        data[60] ^= 0xFF
        path.write_bytes(bytes(data))

    fake = make_fake(archive_override=corrupt)
    with pytest.raises(
        ArchiveError, match=r"download of export job job0001 .* could not be read after 3 attempts"
    ):
        run_tap(export_config(fake, **ONE_WINDOW))
    assert len(fake.calls("GET", r"/download/content/data/.*")) == 3


def test_unreadable_download_leaves_the_bookmark_where_it_was(make_fake, clock) -> None:
    fake = make_fake()
    first = run_tap(export_config(fake, **ONE_WINDOW))
    fake.exports.archive_override = lambda _job, path: path.write_bytes(b"\x00\x01 junk")
    run = run_tap(
        export_config(fake, end_date="2023-11-08T00:00:00Z"), state=first.state, raise_errors=False
    )
    assert isinstance(run.error, ArchiveError)
    assert run.streams("message_") == {}
    assert (
        run.state["bookmarks"]["message_receipts"]["replication_key_value"]
        == "2023-11-01T00:00:00+00:00"
    )


# -- HTTP retries and rate limits -------------------------------------------------------------


def test_server_errors_are_retried_with_backoff(make_fake, clock) -> None:
    fake = make_fake()
    fake.inject(
        "POST",
        r"/export/content/data",
        503,
        body=error_body("service_unavailable", "Down"),
        times=2,
    )
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert receipt_ids(run) == expected_ids(fake)
    assert clock.sleeps[:2] == pytest.approx([1.0, 2.2])


def test_429_waits_until_the_rate_limit_resets(make_fake, clock, monkeypatch) -> None:
    from tap_intercom_export.client import IntercomStream

    monkeypatch.setattr(IntercomStream, "clock", staticmethod(lambda: 1_000.0))
    fake = make_fake()
    fake.inject("POST", r"/export/content/data", 429, body=error_body("rate_limit_exceeded", "Rate Limit Exceeded"),
                headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1007"})  # fmt: skip
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert receipt_ids(run) == expected_ids(fake)
    assert clock.sleeps[0] == pytest.approx(7.1 * 1.1)


def test_dropped_connections_are_retried(make_fake, clock) -> None:
    fake = make_fake()
    fake.inject("GET", r"/export/content/data/.*", drop=True, times=2)
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert receipt_ids(run) == expected_ids(fake)


# -- CLI errors, config, security --------------------------------------------------------------


def _run_cli(config: dict, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    return subprocess.run(
        [sys.executable, "-m", "tap_intercom_export", "--config", str(cfg), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_403_is_one_line_naming_the_permission(make_fake, tmp_path) -> None:
    fake = make_fake()
    fake.inject("POST", r"/export/content/data", 403,
                body=error_body("forbidden", "Token lacks scope", request_id="req-42"))  # fmt: skip
    proc = _run_cli(export_config(fake, export_poll_interval_seconds=0.01, **ONE_WINDOW), tmp_path)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "tap-intercom-export: error: Intercom answered HTTP 403 to POST /export/content/data"
    )
    assert "forbidden: Token lacks scope (request_id req-42)" in last
    assert "Export message data" in last
    assert "Traceback" not in proc.stderr


def test_wrong_token_names_the_token(make_fake, tmp_path) -> None:
    fake = make_fake()
    proc = _run_cli(export_config(fake, access_token="wrong-token-xyz", **ONE_WINDOW), tmp_path)
    assert proc.returncode == 1
    assert "unauthorized: Access Token Invalid" in proc.stderr.splitlines()[-1]
    assert "wrong-token-xyz" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"api_url": "http://api.example.com"}, "http:// only for loopback"),
        ({"api_url": "ftp://127.0.0.1"}, "use an https:// URL"),
        ({"region": "mars"}, "Unknown region 'mars'"),
        (
            {"export_window_days": 0},
            "export_window_days=0 must be a whole number of days, 1 or more",
        ),
        (
            {"start_date": "2024-02-01T00:00:00Z", "end_date": "2024-01-01T00:00:00Z"},
            "start_date must be before end_date",
        ),
        ({"start_date": "last tuesday"}, "start_date='last tuesday' is not a date-time"),
    ],
)
def test_bad_config_is_refused_with_the_setting_named(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_config({"access_token": "x", **change})


def test_loopback_http_and_https_are_accepted() -> None:
    for url in (
        "http://127.0.0.1:8080",
        "http://localhost:1",
        "http://[::1]:9",
        "https://proxy.example.com",
    ):
        check_config({"access_token": "x", "api_url": url})


def test_foreign_download_host_never_gets_the_token(make_fake, clock, caplog) -> None:
    fake = make_fake(download_host="https://files.attacker.example")
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert receipt_ids(run) == expected_ids(fake)
    assert len(fake.calls("GET", r"/download/content/data/job0001")) == 1
    assert "so the access token never leaves the API host" in caplog.text


def test_token_never_appears_in_output(make_fake, tmp_path) -> None:
    secret = "tok-SUPER-SECRET-123"
    fake = make_fake(token=secret)
    fake.inject("POST", r"/export/content/data", 500, body=error_body("server_error", "boom"))
    fake.inject("GET", r"/download/content/data/.*", 200, truncate=100)
    proc = _run_cli(
        export_config(fake, access_token=secret, export_poll_interval_seconds=0.01, **ONE_WINDOW),
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"RECORD"' in proc.stdout
    assert secret not in proc.stdout and secret not in proc.stderr


# -- interrupted runs -------------------------------------------------------------------------


def _spawn(config: dict, tmp_path: Path, env: dict | None = None) -> subprocess.Popen:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    return subprocess.Popen(
        [sys.executable, "-m", "tap_intercom_export", "--config", str(cfg)],
        # Files, not pipes: nobody reads while the tap runs, and a full pipe would block it.
        stdout=(tmp_path / "stdout").open("w"), stderr=(tmp_path / "stderr").open("w"), text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        real_sleep(0.02)  # time.sleep is patched by the clock fixture


def test_ctrl_c_while_polling_cancels_our_job(make_fake, tmp_path) -> None:
    fake = make_fake(status_script=["pending"] * 100_000)
    proc = _spawn(export_config(fake, export_poll_interval_seconds=0.05, **ONE_WINDOW), tmp_path)
    _wait_for(lambda: len(fake.calls("GET", r"/export/content/data/job0001")) >= 2)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    assert time.monotonic() - started < 5
    assert fake.exports.jobs["job0001"].status == "canceled"
    assert fake.calls("POST", r"/export/cancel/job0001")


def test_sigterm_mid_download_stops_promptly_and_resumes(make_fake, tmp_path, clock) -> None:
    fake = make_fake()
    fake.exports.download_delay = 30
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    config = export_config(fake, export_poll_interval_seconds=0.05, **ONE_WINDOW)
    proc = _spawn(config, tmp_path, env={"TMPDIR": str(tmp)})
    _wait_for(lambda: fake.calls("GET", r"/download/content/data/job0001"))
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    out = (tmp_path / "stdout").read_text()
    assert time.monotonic() - started < 5
    assert list(tmp.iterdir()) == []  # the partial download is gone
    states = [json.loads(line)["value"] for line in out.splitlines() if '"STATE"' in line]
    assert (
        states[-1]["bookmarks"]["message_export_jobs"]["in_flight_jobs"][0]["job_identifier"]
        == "job0001"
    )
    fake.exports.download_delay = 0
    run = run_tap(config, state=states[-1])
    assert [j["job_identifier"] for j in run.records("message_export_jobs")] == ["job0001"]
    assert len(creates(fake)) == 1
    assert receipt_ids(run) == expected_ids(fake)


# -- CSV quirks through the tap ---------------------------------------------------------------


def test_csv_quirks_keep_every_row(make_fake, clock, caplog) -> None:
    def quirky(kind: str, data: bytes) -> bytes:
        if kind == "open":
            header, _, rest = data.partition(b"\n")
            return (
                b"\xef\xbb\xbf"
                + header
                + b",brand_new\n"
                + rest.replace(b"UTC\n", b"UTC,\xff\n", 1)
                + b"rX\n"
            )
        return data

    fake = make_fake(member_transform=quirky)
    run = run_tap(export_config(fake, **ONE_WINDOW), select=["message_opens"])
    opens = run.records("message_opens")
    expected = fake.exports.dataset.rows("open", START, START + 7 * DAY - 1)
    assert len(opens) == len(expected) + 1
    assert opens[0]["receipt_id"] == expected[0]["receipt_id"]  # BOM did not eat the column name
    assert opens[0]["extra_columns"] == {"brand_new": "\ufffd"}
    assert opens[-1] == {**opens[-1], "receipt_id": "rX", "opened_at": None}
    assert (
        "1 column(s) the schema does not declare, kept in extra_columns: brand_new" in caplog.text
    )
    assert "were not UTF-8 and were replaced" in caplog.text
    assert "did not have 3 fields" in caplog.text
