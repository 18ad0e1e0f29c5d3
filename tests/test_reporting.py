"""Reporting data export streams end to end against the fake: discovery, sync, selection, state."""

from __future__ import annotations

import pytest

from tap_intercom_export.tap import TapIntercomExport
from tests.conftest import DAY, run_tap, selection_catalog
from tests.reporting_helpers import (
    END,
    START,
    STREAMS,
    UNFIT,
    enqueues,
    expected_records,
    rclock,
    reporting_config,
    windows,
)

__all__ = ["rclock"]


def test_discover_lists_every_dataset(make_fake) -> None:
    fake = make_fake()
    catalog = TapIntercomExport(config=reporting_config(fake)).catalog_dict
    entries = {e["tap_stream_id"]: e for e in catalog["streams"]}
    assert {n for n in entries if n.startswith("reporting_")} == {*STREAMS, "reporting_export_jobs"}
    assert "message_receipts" in entries and "contact_events" in entries

    conversation = entries["reporting_conversation"]
    props = conversation["schema"]["properties"]
    assert len(props) > 100
    # Standard attributes by plain id, custom ones by display name; the second "Brand" kept apart.
    assert {"conversation_id", "Account tier", "Brand", "Brand_2", "Custom field 4"} <= set(props)
    assert props["conversation_started_at"]["format"] == "date-time"
    assert props["time_to_first_response"]["type"] == ["number", "null"]
    assert props["channel"]["type"] == ["string", "null"]
    assert props["Brand_2"]["title"] == "Brand"
    assert {"export_job_id", "export_window_start", "export_window_end", "extra_columns"} <= set(
        props
    )
    assert conversation["key_properties"] == ["conversation_id"]
    assert entries["reporting_tickets"]["key_properties"] == ["ticket_id"]
    assert entries["reporting_admin_status_change"]["key_properties"] == ["_row_key"]
    assert entries["reporting_conversation"]["replication_key"] == "export_window_start"


def test_discover_from_216_uses_the_same_names(make_fake) -> None:
    fake = make_fake(version="2.16")
    catalog = TapIntercomExport(config=reporting_config(fake, intercom_version="2.16")).catalog_dict
    props = next(e for e in catalog["streams"] if e["tap_stream_id"] == "reporting_conversation")[
        "schema"
    ]["properties"]
    assert {"conversation_id", "Account tier", "Brand", "Brand_2"} <= set(props)
    assert "`timestamp.conversation_started_at`" in props["conversation_started_at"]["description"]


def test_reporting_datasets_setting_narrows_discovery(make_fake) -> None:
    fake = make_fake()
    catalog = TapIntercomExport(
        config=reporting_config(fake, reporting_datasets=["tickets"])
    ).catalog_dict
    assert {
        e["tap_stream_id"]
        for e in catalog["streams"]
        if e["tap_stream_id"].startswith("reporting_")
    } == {"reporting_tickets", "reporting_export_jobs"}


def test_sync_lands_exactly_the_fakes_rows(make_fake, rclock) -> None:
    fake = make_fake()
    run = run_tap(reporting_config(fake), select=STREAMS)

    for stream in STREAMS:
        dataset = stream.removeprefix("reporting_")
        bodies = enqueues(fake, dataset)
        assert [(b["start_time"], b["end_time"]) for b in bodies] == windows(), dataset
        records = run.records(stream)
        for window in windows():
            got = [r for r in records if r["export_window_start"] == run_window_start(window)]
            want = expected_records(fake, dataset, window)
            assert len(got) == len(want) > 0, (dataset, window)
            for record, row in zip(got, want, strict=True):
                for prop, value in row.items():
                    if value is UNFIT:
                        assert record[prop] is None and record["extra_columns"][prop] == "n/a"
                    else:
                        assert record[prop] == value, (dataset, prop)
        bookmark = run.state["bookmarks"][stream]
        assert bookmark["replication_key_value"] == "2023-11-14T00:00:00+00:00"
        assert bookmark["in_flight_jobs"] == []
    conversation = run.records("reporting_conversation")
    assert conversation[0]["conversation_started_at"] == "2023-10-25T00:00:00+00:00"
    assert conversation[0]["conversation_remark"] == 'Great, thanks!\n"Row 288", really'
    assert conversation[1]["conversation_remark"] is None
    assert any(r["Brand"] != r["Brand_2"] for r in conversation if r["Brand"])
    # A row on a window bound comes in both windows (Intercom does not say whether end_time is
    # inclusive; the fake takes it as inclusive): the same deterministic key makes it an upsert.
    keys = [r["_row_key"] for r in run.records("reporting_admin_status_change")]
    assert (
        len(set(keys))
        == len(fake.reporting.rows("admin_status_change", START, END))
        == len(keys) - 2
    )


def run_window_start(window: tuple[int, int]) -> str:
    from tests.oracle import iso

    return iso(window[0])


def test_rerun_from_final_state_exports_only_the_lookback(make_fake, rclock) -> None:
    fake = make_fake()
    config = reporting_config(fake, reporting_lookback_days=2)
    first = run_tap(config, select=STREAMS)
    before = len(enqueues(fake))
    again = run_tap(config, state=first.state, select=STREAMS)

    bodies = enqueues(fake)[before:]
    assert sorted(b["dataset_id"] for b in bodies) == sorted(
        s.removeprefix("reporting_") for s in STREAMS
    )
    assert {(b["start_time"], b["end_time"]) for b in bodies} == {(END - 2 * DAY, END)}
    for stream in STREAMS:
        records = again.records(stream)
        assert records and all(
            r["export_window_start"] == "2023-11-12T00:00:00+00:00" for r in records
        )
        assert (
            again.state["bookmarks"][stream]["replication_key_value"] == "2023-11-14T00:00:00+00:00"
        )


@pytest.mark.parametrize("version", ["2.14", "2.16", "Preview"])
def test_three_selected_properties_send_three_attribute_ids(make_fake, rclock, version) -> None:
    fake = make_fake(version=version)
    config = reporting_config(fake, intercom_version=version, end_date="2023-10-27T00:00:00Z")
    catalog = selection_catalog(config, {"reporting_conversation"})
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "reporting_conversation")
    chosen = {"conversation_id", "channel", "Brand_2"}
    for md in entry["metadata"]:
        if len(md["breadcrumb"]) == 2 and md["metadata"].get("inclusion") != "automatic":
            md["metadata"]["selected"] = md["breadcrumb"][1] in chosen
    run = run_tap(config, catalog=catalog)

    (body,) = enqueues(fake)
    if version != "2.14":  # qualified ids from 2.16, and in Preview
        expected = ["standard.conversation_id", "timestamp.conversation_started_at", "standard.channel",
                    "conversation.conversation_custom_attribute.3"]  # fmt: skip
    else:
        expected = [
            "conversation_id",
            "conversation_started_at",
            "channel",
            "conversation_custom_attribute.3",
        ]
    assert body["attribute_ids"] == expected
    record = run.records("reporting_conversation")[1]
    # The time attribute is requested but, deselected, not emitted.
    assert set(record) == {*chosen, "export_window_start"}
    assert record["Brand_2"].startswith("Brand ") and record["channel"]


def test_rows_land_whatever_the_download_container(make_fake, rclock) -> None:
    for container in ("csv.gz", "tar.gz", "zip", "csv"):
        fake = make_fake(reporting_container=container)
        run = run_tap(
            reporting_config(fake, reporting_datasets=["tickets"]), select=["reporting_tickets"]
        )
        want = sum(len(fake.reporting.rows("tickets", a, b)) for a, b in windows())
        assert len(run.records("reporting_tickets")) == want > 0, container
