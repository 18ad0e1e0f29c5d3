"""Every statistic a real export holds, however Intercom sends it.

Covers 21 kinds plus unknown ones, encoded or chunked downloads, gateway 504s, both download_url
forms, `job_identfier`.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from fake_intercom.filekinds import INVENTED_KIND

from tap_intercom_export.content.other import column_names
from tap_intercom_export.content.schemas import FILE_KINDS
from tests.conftest import DAY, export_config, run_tap
from tests.oracle import unix

START = unix("2023-10-25T00:00:00Z")
END = unix("2023-11-14T00:00:00Z")
WINDOWS = [(START, START + 7 * DAY), (START + 7 * DAY, START + 14 * DAY), (START + 14 * DAY, END)]
ONE_WINDOW = {"end_date": "2023-11-01T00:00:00Z"}
GATEWAY_PAGE = b"<html><body><h1>504 Gateway Time-out</h1></body></html>"


def expected(fake, kind: str, windows=WINDOWS) -> list[dict]:
    rows = []
    for after, end in windows:
        rows += fake.exports.dataset.rows(kind, after, end - 1)
    return rows


def creates(fake) -> list[tuple[int, int]]:
    return [
        (r.body["created_at_after"], r.body["created_at_before"])
        for r in fake.calls("POST", "/export/content/data")
    ]


def assert_every_row_landed(fake, run, windows=WINDOWS) -> None:
    """Each of the 21 typed streams and message_other_statistics has every row of the archives."""
    for spec in FILE_KINDS.values():
        records = run.records(spec.stream_name)
        assert len(records) == len(expected(fake, spec.kind, windows)) > 0, spec.kind
        keys = {tuple(r[k] for k in spec.primary_keys) for r in records}
        assert len(keys) == len(records), spec.kind
    others = run.records("message_other_statistics")
    invented = expected(fake, INVENTED_KIND, windows)
    assert len(others) == len(invented) > 0
    assert [o["data"] for o in others] == invented
    assert len({(o["kind"], o["row_key"]) for o in others}) == len(others)


def test_every_kind_lands_every_row_and_a_rerun_emits_none(make_fake, waits, caplog) -> None:
    fake = make_fake(invent_kind=True)
    run = run_tap(export_config(fake))
    assert len(FILE_KINDS) == 21
    assert len(creates(fake)) == 3  # one job per window serves all 22 streams
    assert_every_row_landed(fake, run)
    bounce = run.records("message_soft_bounces")[0]
    assert bounce["soft_bounced_at"].endswith("+00:00") and bounce["export_job_id"] == "job0001"
    failure = run.records("message_tour_step_failures")[0]
    assert (
        failure["failed_selector"] == '#cta > button[data-x="1"]' and "," in failure["failure_url"]
    )
    assert {r["reaction"] for r in run.records("message_reactions")} == {"😀", "👍"}
    receipts = {r["receipt_id"]: r for r in run.records("message_receipts")}
    fin = run.records("message_fin_steps_reached")[0]
    assert receipts[fin["receipt_id"]]["first_fin_step_reached"] is not None
    other = run.records("message_other_statistics")[0]
    assert other["kind"] == "spam_complaint" and other["receipt_id"] == other["data"]["receipt_id"]
    assert (
        other["file"].startswith("spam_complaint_")
        and other["export_window_start"] == "2023-10-25T00:00:00+00:00"
    )
    jobs = run.records("message_export_jobs")
    assert [j["rows"]["other_statistics"] for j in jobs] == [
        len(expected(fake, "spam_complaint", [w])) for w in WINDOWS
    ]
    assert all(j["rows"]["fin_step_reached"] > 0 for j in jobs)
    # One warning per new kind, not one per job.
    assert caplog.text.count("kind 'spam_complaint'") == 1
    assert "message_other_statistics" in caplog.text

    again = run_tap(export_config(fake), state=run.state)
    assert again.streams("message_") == {}
    assert len(creates(fake)) == 3


def test_a_re_exported_unknown_row_keeps_its_key(make_fake, waits) -> None:
    fake = make_fake(invent_kind=True)
    first = run_tap(export_config(fake, **ONE_WINDOW), select=["message_other_statistics"])
    second = run_tap(export_config(fake, **ONE_WINDOW), select=["message_other_statistics"])
    keys = [(o["kind"], o["row_key"]) for o in first.records("message_other_statistics")]
    assert keys == [(o["kind"], o["row_key"]) for o in second.records("message_other_statistics")]
    assert {o["export_job_id"] for o in second.records("message_other_statistics")} == {"job0002"}


def test_unknown_rows_keep_every_column_and_repeats() -> None:
    assert column_names(["receipt_id", "", "x", "x"]) == ["receipt_id", "column_2", "x", "x_2"]


def test_unknown_file_with_odd_header_and_repeated_rows_loses_nothing(make_fake, waits) -> None:
    from fake_intercom.exports import write_archive

    body = b"receipt_id,,x,x\nr1,a,b,c\nr1,a,b,c\nr2,a\nr3,a,b,c,spill\n"
    fake = make_fake(
        archive_override=lambda _job, path: write_archive(
            path, [("keyword_reply_20231025-000000.csv", body)], "zip"
        )
    )
    run = run_tap(export_config(fake, **ONE_WINDOW), select=["message_other_statistics"])
    rows = run.records("message_other_statistics")
    assert [r["data"] for r in rows] == [
        {"receipt_id": "r1", "column_2": "a", "x": "b", "x_2": "c"},
        {"receipt_id": "r1", "column_2": "a", "x": "b", "x_2": "c"},
        {"receipt_id": "r2", "column_2": "a", "x": None, "x_2": None},
        {"receipt_id": "r3", "column_2": "a", "x": "b", "x_2": "c", "column_5": "spill"},
    ]
    assert rows[1]["row_key"] == rows[0]["row_key"] + "-2"  # a repeat is a second occurrence
    digest = hashlib.sha256(
        json.dumps(["keyword_reply", rows[0]["data"]], sort_keys=True).encode()
    ).hexdigest()[:32]
    assert rows[0]["row_key"] == digest


@pytest.mark.parametrize(
    "options",
    [
        {"content_encoding": "gzip"},
        {"content_encoding": "deflate"},
        {"chunked": True},
        {"content_encoding": "gzip", "chunked": True},
        {"job_key": "job_identfier"},
        {"download_url_form": "messages"},
        {"container": "tar.gz", "content_encoding": "gzip"},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_same_sync_whatever_the_transfer(make_fake, waits, options) -> None:
    fake = make_fake(invent_kind=True, **options)
    run = run_tap(export_config(fake))
    assert len(creates(fake)) == 3
    assert_every_row_landed(fake, run)
    jobs = run.records("message_export_jobs")
    # download_bytes is the archive as written to disk (decoded), whatever went over the wire.
    assert [j["download_bytes"] for j in jobs] == [
        fake.exports.jobs[j["job_identifier"]].archive.stat().st_size for j in jobs
    ]
    if options.get("download_url_form") == "messages":
        assert (
            len(
                fake.calls(
                    "GET", r"/download/messages/data/message-data-export\.job\d+\.[\w-]+\.csv"
                )
            )
            == 3
        )
        assert not fake.calls("GET", r"/download/content/data/.*")
    if options.get("content_encoding"):
        assert all(
            "gzip" in r.headers.get("accept-encoding", "")
            for r in fake.calls("GET", r"/download/.*")
        )


def test_api_version_spelling_job_identfier(make_fake, waits) -> None:
    fake = make_fake(version="2.10", invent_kind=True)
    assert fake.exports.job_key_for() == "job_identfier"
    run = run_tap(export_config(fake, intercom_version="2.10"))
    assert [j["job_identifier"] for j in run.records("message_export_jobs")] == [
        "job0001",
        "job0002",
        "job0003",
    ]
    assert_every_row_landed(fake, run)


@pytest.mark.parametrize("chunked", [False, True])
def test_cut_short_encoded_download_is_fetched_again(make_fake, waits, chunked) -> None:
    fake = make_fake(content_encoding="gzip", chunked=chunked, invent_kind=True)
    fake.inject("GET", r"/download/content/data/.*", 200, truncate=300)
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert len(fake.calls("GET", r"/download/content/data/.*")) == 2
    assert len(creates(fake)) == 1
    assert_every_row_landed(fake, run, WINDOWS[:1])


def test_gateway_504_while_polling_is_retried_on_the_same_job(make_fake, waits) -> None:
    fake = make_fake(
        invent_kind=True, status_script=["pending", "in_progress", "in_progress", "completed"]
    )
    fake.inject("GET", r"/export/content/data/job0001", 504, body=GATEWAY_PAGE)
    run = run_tap(export_config(fake))
    assert len(creates(fake)) == 3  # one per window: the 504 did not create a second job
    assert len(fake.calls("GET", r"/export/content/data/job0001")) == 4  # 504, then polling went on
    assert [j["attempts"] for j in run.records("message_export_jobs")] == [1, 1, 1]
    assert_every_row_landed(fake, run)


def test_job_model_504_is_a_failed_job(make_fake, waits, caplog) -> None:
    fake = make_fake(invent_kind=True)
    fake.exports.next_scripts = [["pending", "in_progress", "failed_504"]]
    run = run_tap(export_config(fake, **ONE_WINDOW))
    assert len(creates(fake)) == 2
    assert "job0001" in caplog.text and "failed on Intercom's side" in caplog.text
    assert_every_row_landed(fake, run, WINDOWS[:1])


@pytest.mark.parametrize(
    ("member", "kind"),
    [("replies_20240101-000000.csv", "reply"), ("goal_successes_20240101-000000.csv", "goal_success"),
     ("hard_bounces.csv", "hard_bounce"), ("series_exits.csv", "series_exit"),
     ("answers_combined.csv", "answer_combined"), ("fin_steps_reached.csv", "fin_step_reached"),
     ("reply.csv", "reply"), ("opens.csv", "open")],
)  # fmt: skip
def test_members_named_in_the_plural_are_their_kind(member, kind) -> None:
    from tap_intercom_export.content.kinds import kind_of_member

    assert kind_of_member(member) == kind
