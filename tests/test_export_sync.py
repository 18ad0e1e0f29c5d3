"""Message export streams end to end against the fake Intercom API."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING

import pytest

from tap_intercom_export.content.schemas import FILE_KINDS
from tap_intercom_export.errors import ExportError
from tests.conftest import DAY, TOKEN, export_config, run_tap
from tests.oracle import unix

if TYPE_CHECKING:
    from pathlib import Path

START = unix("2023-10-25T00:00:00Z")
END = unix("2023-11-14T00:00:00Z")
WINDOWS = [(START, START + 7 * DAY), (START + 7 * DAY, START + 14 * DAY), (START + 14 * DAY, END)]
KEYS = {spec.stream_name: spec.primary_keys for spec in FILE_KINDS.values()}


def creates(fake) -> list[dict]:
    return [r.body for r in fake.calls("POST", "/export/content/data")]


def expected_rows(fake, kind: str, windows=WINDOWS) -> list[dict]:
    rows = []
    for after, end in windows:
        rows += fake.exports.dataset.rows(kind, after, end - 1)
    return rows


def keys_of(stream: str, records: list[dict]) -> list[tuple]:
    return [tuple(r[k] for k in KEYS[stream]) for r in records]


def test_full_sync_emits_every_row_once(make_fake, waits) -> None:
    fake = make_fake()
    run = run_tap(export_config(fake))

    assert [(b["created_at_after"], b["created_at_before"]) for b in creates(fake)] == [
        (a, b - 1) for a, b in WINDOWS
    ]
    for spec in FILE_KINDS.values():
        records = run.records(spec.stream_name)
        expected = expected_rows(fake, spec.kind)
        assert len(records) == len(expected) > 0, spec.kind
        assert len(set(keys_of(spec.stream_name, records))) == len(records), spec.kind
    receipts = run.records("message_receipts")
    assert [r["receipt_id"] for r in receipts] == [
        r["receipt_id"] for r in expected_rows(fake, "receipt")
    ]
    # Receipts sit exactly on window bounds: the first and last second are both exported once.
    assert receipts[0]["received_at"] == "2023-10-25T00:00:00+00:00"
    assert receipts[-1]["received_at"] == "2023-11-13T23:00:00+00:00"

    jobs = run.records("message_export_jobs")
    assert [j["status"] for j in jobs] == ["completed"] * 3
    assert jobs[0]["rows"]["receipt"] == 7 * 24
    assert jobs[0]["container"] == "zip" and jobs[0]["download_bytes"] > 0
    bookmarks = run.state["bookmarks"]
    for stream in [*KEYS, "message_export_jobs"]:
        assert bookmarks[stream]["replication_key_value"] == "2023-11-14T00:00:00+00:00", stream
    assert bookmarks["message_export_jobs"]["in_flight_jobs"] == []


def test_records_are_typed(make_fake, waits) -> None:
    fake = make_fake(start=START)  # receipt 0 is the first of the run
    run = run_tap(
        export_config(fake, end_date="2023-10-26T00:00:00Z"),
        select=[
            "message_receipts",
            "message_opens",
            "message_answers_combined",
            "message_overview",
        ],
    )
    receipt = run.records("message_receipts")[0]
    assert receipt["received_at"] == "2023-10-25T00:00:00+00:00"  # unix seconds in the CSV
    assert receipt["first_click"] == "2023-10-25T00:02:00+00:00"  # "YYYY-MM-DD HH:MM:SS UTC"
    assert receipt["first_reply"] == "2023-10-25T00:05:00+00:00"
    assert receipt["series_id"] is None  # empty string becomes null
    assert receipt["name"] == 'Smith, "Jo"\nJr'
    assert receipt["export_job_id"].startswith("job")
    assert run.records("message_opens")[0]["opened_at"] == "2023-10-25T00:01:00+00:00"
    answer = run.records("message_answers_combined")[0]
    assert answer["extra_columns"] == {
        "How likely are you to recommend us to family and friends?": "0",
        "What's the main reason for your score?": 'Great, "really"',
    }
    overview = run.records("message_overview")[0]
    assert isinstance(overview["receipt_total"], int) and isinstance(overview["open_rate"], float)


def test_second_run_with_final_state_exports_nothing(make_fake, waits) -> None:
    fake = make_fake()
    first = run_tap(export_config(fake))
    second = run_tap(export_config(fake), state=first.state)
    assert len(creates(fake)) == 3
    assert second.streams("message_") == {}


def test_next_run_exports_only_the_new_window(make_fake, waits) -> None:
    fake = make_fake()
    first = run_tap(export_config(fake, end_date="2023-11-08T00:00:00Z"))
    second = run_tap(export_config(fake), state=first.state)
    assert [(b["created_at_after"], b["created_at_before"]) for b in creates(fake)][2:] == [
        (START + 14 * DAY, END - 1)
    ]
    receipts = first.records("message_receipts") + second.records("message_receipts")
    assert [r["receipt_id"] for r in receipts] == [
        r["receipt_id"] for r in expected_rows(fake, "receipt")
    ]


def test_selecting_only_opens_exports_opens(make_fake, waits) -> None:
    fake = make_fake()
    run = run_tap(export_config(fake), select=["message_opens"])
    assert set(run.streams("message_")) == {"message_opens"}
    assert len(run.records("message_opens")) == len(expected_rows(fake, "open"))
    assert len(creates(fake)) == 3
    assert "message_receipts" not in run.state["bookmarks"] or not run.state["bookmarks"][
        "message_receipts"
    ].get("replication_key_value")


@pytest.mark.parametrize("selected", [[], ["message_export_jobs"]])
def test_no_message_stream_selected_creates_no_job(make_fake, waits, selected) -> None:
    fake = make_fake()
    run = run_tap(export_config(fake), select=selected)
    assert creates(fake) == []
    assert run.streams("message_") == {}


def test_newly_selected_stream_backfills_without_duplicating_others(make_fake, waits) -> None:
    fake = make_fake()
    first = run_tap(export_config(fake), select=["message_opens"])
    second = run_tap(
        export_config(fake), state=first.state, select=["message_opens", "message_clicks"]
    )
    assert second.records("message_opens") == []
    assert len(second.records("message_clicks")) == len(expected_rows(fake, "click"))


@pytest.mark.parametrize("container", ["tar.gz", "csv.gz"])
def test_other_containers(make_fake, waits, container) -> None:
    fake = make_fake(container=container)
    run = run_tap(export_config(fake))
    assert len(run.records("message_receipts")) == len(expected_rows(fake, "receipt"))
    if container == "tar.gz":
        assert len(run.records("message_clicks")) == len(expected_rows(fake, "click"))


def test_requests_carry_token_version_and_accept(make_fake, waits) -> None:
    fake = make_fake()
    run_tap(export_config(fake, end_date="2023-10-26T00:00:00Z"))
    assert fake.log
    for req in fake.log:
        assert req.headers["authorization"] == f"Bearer {TOKEN}"
        assert req.headers["intercom-version"] == "2.14"
    downloads = fake.calls("GET", r"/download/content/data/.*")
    assert [d.headers["accept"] for d in downloads] == ["application/octet-stream"]


def test_wrong_version_is_a_clear_error(make_fake, waits) -> None:
    fake = make_fake()
    with pytest.raises(
        Exception, match="HTTP 400 to POST /export/content/data: intercom_version_invalid"
    ):
        run_tap(export_config(fake, intercom_version="1.0"), select=["message_receipts"])


def test_no_data_window_counts_as_done(make_fake, waits) -> None:
    fake = make_fake(start=START + 8 * DAY)  # nothing in the first window
    run = run_tap(export_config(fake))
    jobs = run.records("message_export_jobs")
    assert [j["status"] for j in jobs] == ["no_data", "completed", "completed"]
    assert jobs[0]["rows"] == {**dict.fromkeys(FILE_KINDS, 0), "other_statistics": 0}
    assert (
        run.state["bookmarks"]["message_receipts"]["replication_key_value"]
        == "2023-11-14T00:00:00+00:00"
    )


def test_unknown_status_names_job_and_status(make_fake, waits) -> None:
    fake = make_fake(status_script=["pending", "exploded"])
    with pytest.raises(ExportError, match=r"job0001 .* has status 'exploded'"):
        run_tap(export_config(fake))


def test_polling_starts_fast_and_settles_on_the_interval(make_fake, waits) -> None:
    fake = make_fake(status_script=["pending"] * 8 + ["completed"])
    run_tap(export_config(fake, end_date="2023-10-26T00:00:00Z", export_poll_interval_seconds=5))
    assert waits[:8] == [0.25, 0.5, 1, 2, 4, 5, 5, 5]


def test_temp_files_are_removed_even_when_the_sync_fails(
    make_fake, waits, monkeypatch, tmp_path
) -> None:
    fake = make_fake()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    run_tap(export_config(fake, end_date="2023-11-01T00:00:00Z"))
    assert list(tmp_path.iterdir()) == []

    from tap_intercom_export.content import schemas

    calls = {"n": 0}
    original = schemas.RowTyper.type_block

    def explode(self, rows, lineage):
        calls["n"] += 1
        if calls["n"] == 5:
            msg = "target went away"
            raise RuntimeError(msg)
        return original(self, rows, lineage)

    monkeypatch.setattr(schemas.RowTyper, "type_block", explode)
    with pytest.raises(RuntimeError):
        run_tap(export_config(fake))
    assert list(tmp_path.iterdir()) == []


# -- interrupted runs ------------------------------------------------------------------------


def _start_tap(config: dict, tmp_path: Path, state: dict | None = None) -> subprocess.Popen:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    args = [sys.executable, "-m", "tap_intercom_export", "--config", str(cfg)]
    if state:
        st = tmp_path / "state.json"
        st.write_text(json.dumps(state))
        args += ["--state", str(st)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


class _TapOutput:
    """A running tap's stdout, read by a thread, so that every wait on it has a deadline."""

    def __init__(self, proc: subprocess.Popen) -> None:
        """Start reading the tap's stdout line by line."""
        self.proc = proc
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _next(self, deadline: float, what: str) -> str | None:
        try:
            return self.lines.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            self.proc.kill()
            msg = f"the tap printed no {what} in time (killed)"
            raise AssertionError(msg) from None

    def until_in_flight(self, timeout: float = 30.0) -> dict:
        """The first STATE naming an open job; fails after `timeout` even if the tap is silent."""
        deadline = time.monotonic() + timeout
        while (line := self._next(deadline, "STATE with an in-flight job")) is not None:
            msg = json.loads(line)
            if msg["type"] == "STATE":
                jobs = (
                    msg["value"]["bookmarks"].get("message_export_jobs", {}).get("in_flight_jobs")
                )
                if jobs:
                    return msg["value"]
        msg = "tap ended without an in-flight state"
        raise AssertionError(msg)

    def rest(self, timeout: float = 30.0) -> list[str]:
        """Every line the tap prints until it exits."""
        deadline = time.monotonic() + timeout
        out = []
        while (line := self._next(deadline, "end of output")) is not None:
            out.append(line)
        self.proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
        return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_while_polling_resumes_the_same_job(make_fake, waits, tmp_path, sig) -> None:
    fake = make_fake(status_script=["pending"] * 10_000)
    config = export_config(fake, export_poll_interval_seconds=0.05)
    proc = _start_tap(config, tmp_path)
    output = _TapOutput(proc)
    state = output.until_in_flight()
    os.kill(proc.pid, sig)
    rest = output.rest()
    if sig == signal.SIGTERM:  # the SDK writes the state once more on its way out
        # A stopped run fails as a shell reports it (128 + 15), so `meltano run` fails too.
        assert proc.returncode == 143
        last = [json.loads(line) for line in rest if '"STATE"' in line]
        state = last[-1]["value"] if last else state
    job_id = state["bookmarks"]["message_export_jobs"]["in_flight_jobs"][0]["job_identifier"]
    assert job_id == "job0001"

    fake.exports.status_script = ["pending", "completed"]
    for job in fake.exports.jobs.values():
        job.script, job.polls = ["pending", "completed"], 0
    run = run_tap(config, state=state)
    assert [b["created_at_after"] for b in creates(fake)] == [
        WINDOWS[0][0],
        WINDOWS[1][0],
        WINDOWS[2][0],
    ]
    jobs = run.records("message_export_jobs")
    assert jobs[0]["job_identifier"] == "job0001" and jobs[0]["resumed"] is True
    assert len(run.records("message_receipts")) == len(expected_rows(fake, "receipt"))


def test_lookback_re_exports_recent_windows_for_late_engagement(make_fake, waits) -> None:
    fake = make_fake()
    first = run_tap(
        export_config(fake, end_date="2023-11-08T00:00:00Z"),
        select=["message_opens", "message_receipts"],
    )
    second = run_tap(
        export_config(fake, export_lookback_days=3, export_lookback_interval_hours=0),
        state=first.state,
        select=["message_opens", "message_receipts"],
    )
    # The second run starts three days before the bookmark (2023-11-08) and, in one job, runs
    # to the end (tests/test_lookback.py has why).
    assert [(b["created_at_after"], b["created_at_before"]) for b in creates(fake)][2:] == [
        (START + 11 * DAY, END - 1),
    ]
    receipts = second.records("message_receipts")
    assert receipts[0]["received_at"] == "2023-11-05T00:00:00+00:00"
    assert len(receipts) == 9 * 24
    for stream in ("message_opens", "message_receipts"):
        assert (
            second.state["bookmarks"][stream]["replication_key_value"]
            == "2023-11-14T00:00:00+00:00"
        )
    # A lookback window never moves a bookmark back, even in the STATEs written mid-run.
    values = [
        s["bookmarks"]["message_receipts"].get("replication_key_value") for s in second.states
    ]
    assert "2023-11-08T00:00:00+00:00" in values and min(v for v in values if v) >= "2023-11-05"


def test_unknown_file_kind_is_logged_and_kept(make_fake, waits, caplog) -> None:
    from fake_intercom.exports import write_archive

    def with_new_kind(job, path) -> None:
        write_archive(path, [("open_20231025-000000.csv", b"receipt_id,opened_at\nr1,1698192000\n"),
                             ("hologram_view_20231025-000000.csv", b"receipt_id,viewed_at\nr1,1\n")], "zip")  # fmt: skip

    fake = make_fake(archive_override=with_new_kind)
    run = run_tap(
        export_config(fake, end_date="2023-10-26T00:00:00Z"),
        select=["message_opens", "message_other_statistics"],
    )
    assert [r["receipt_id"] for r in run.records("message_opens")] == ["r1"]
    [other] = run.records("message_other_statistics")
    assert (other["kind"], other["receipt_id"], other["data"]) == (
        "hologram_view",
        "r1",
        {"receipt_id": "r1", "viewed_at": "1"},
    )
    assert (
        "kind 'hologram_view' (hologram_view_20231025-000000.csv), which has no typed stream"
        in caplog.text
    )
