"""Reporting datasets as schemas and rows: names, types, keys, catalog round trip, column matching."""

from __future__ import annotations

import hashlib
import json

from tap_intercom_export.jobs.windows import Window, plan_around, plan_windows
from tap_intercom_export.reporting.api import qualified_ids
from tap_intercom_export.reporting.schemas import ROW_KEY, DatasetSpec, RowMapper
from tap_intercom_export.reporting.zone import ReportingZone, parse_time
from tap_intercom_export.settings import Settings

DATASET = {
    "id": "conversation",
    "name": "Conversation",
    "default_time_attribute_id": "conversation_started_at",
    "attributes": [
        {
            "id": "conversation_id",
            "qualified_id": "standard.conversation_id",
            "name": "Conversation ID",
        },
        {
            "id": "conversation_started_at",
            "qualified_id": "timestamp.conversation_started_at",
            "name": "Started",
        },
        {"id": "time_to_close", "qualified_id": "duration.time_to_close", "name": "Time to close"},
        {"id": "channel", "qualified_id": "standard.channel", "name": "Channel"},
        {"id": "p.1", "qualified_id": "people.p.1", "name": "Brand"},
        {"id": "c.2", "qualified_id": "conversation.c.2", "name": "Brand"},
        {"id": "c.3", "qualified_id": "conversation.c.3", "name": "brand"},
        {"id": "c.4", "qualified_id": "conversation.c.4", "name": "export_job_id"},
    ],
}


def test_names_types_and_key_from_get_datasets() -> None:
    spec = DatasetSpec.from_api(DATASET)
    props = [a.prop for a in spec.attributes]
    assert props == ["conversation_id", "conversation_started_at", "time_to_close", "channel",
                     "Brand", "Brand_2", "brand_3", "export_job_id_2"]  # fmt: skip
    assert [a.kind for a in spec.attributes[:4]] == ["string", "date-time", "number", "string"]
    assert spec.key == ("conversation_id",)
    schema = spec.json_schema()
    assert schema["required"] == ["conversation_id", "export_window_start"]
    assert schema["properties"]["time_to_close"]["type"] == ["number", "null"]


def test_before_216_types_come_from_the_ids() -> None:
    plain = {
        **DATASET,
        "attributes": [
            {k: v for k, v in a.items() if k != "qualified_id"} for a in DATASET["attributes"]
        ],
    }
    spec = DatasetSpec.from_api(plain)
    kinds = {a.prop: a.kind for a in spec.attributes}
    assert kinds["conversation_started_at"] == "date-time" and kinds["time_to_close"] == "number"
    # Ids that are not plain snake_case words are custom attributes: named by display name.
    assert [a.prop for a in spec.attributes][4:6] == ["Brand", "Brand_2"]


def test_dataset_without_row_identifier_gets_a_row_key() -> None:
    spec = DatasetSpec.from_api({"id": "conversation_state", "default_time_attribute_id": "t",
                                 "attributes": [{"id": "conversation_id"}, {"id": "t"}]})  # fmt: skip
    assert spec.key == (ROW_KEY,)
    mapper = RowMapper(spec, ["conversation_id", "t"], spec.attributes)
    one, two, other = (mapper.type_row(r, {}) for r in (["1", "x"], ["1", "x"], ["2", "x"]))
    assert one[ROW_KEY] != two[ROW_KEY] != other[ROW_KEY]
    # The key earlier runs wrote to warehouses: the row's hash, then which copy of it this is.
    # Another spelling would make every re-exported row a new one.
    row = json.dumps(["conversation_state", ["conversation_id", "t"], ["1", "x"]])
    digest = hashlib.sha256(row.encode()).hexdigest()[:40]
    assert (one[ROW_KEY], two[ROW_KEY]) == (f"{digest}-1", f"{digest}-2")
    again = RowMapper(spec, ["conversation_id", "t"], spec.attributes)
    assert (
        again.type_row(["1", "x"], {})[ROW_KEY] == one[ROW_KEY]
    )  # deterministic: a re-export upserts


def test_catalog_round_trip_keeps_ids_names_types_and_time_attribute() -> None:
    spec = DatasetSpec.from_api(DATASET)
    rebuilt = DatasetSpec.from_catalog("conversation", spec.json_schema(), spec.key)
    assert rebuilt.attributes == spec.attributes
    assert rebuilt.time_attribute_id == "conversation_started_at"
    assert rebuilt.key == spec.key


def test_columns_matched_one_by_one_duplicates_kept_apart() -> None:
    spec = DatasetSpec.from_api(DATASET)
    header = [
        "conversation_id",
        "conversation_started_at",
        "time_to_close",
        "Brand",
        "Brand",
        "surprise",
        "surprise",
    ]
    mapper = RowMapper(spec, header, spec.attributes)
    record = mapper.type_row(
        ["7", "2024-01-02 03:04:05", "n/a", "people's", "conversation's", "a", "b"],
        {"export_job_id": "j"},
    )
    assert record["Brand"] == "people's" and record["Brand_2"] == "conversation's"
    assert record["conversation_started_at"] == "2024-01-02T03:04:05+00:00"
    assert record["time_to_close"] is None
    assert record["extra_columns"] == {"time_to_close": "n/a", "surprise": "a", "surprise#2": "b"}
    assert mapper.unknown == ["surprise", "surprise#2"] and mapper.bad_values == {
        "time_to_close": 1
    }
    short = mapper.type_row(["8"], {})
    assert short["conversation_id"] == "8" and short["Brand"] is None and mapper.ragged_rows == 1


def test_a_number_that_is_not_finite_is_kept_as_text() -> None:
    spec = DatasetSpec.from_api(DATASET)
    mapper = RowMapper(spec, ["conversation_id", "time_to_close"], spec.attributes)
    for text in ("nan", "inf", "-inf", "1e999"):
        record = mapper.type_row(["7", text], {})
        assert record["time_to_close"] is None
        assert record["extra_columns"] == {"time_to_close": text}
    assert mapper.type_row(["7", "1e3"], {})["time_to_close"] == 1000.0


def test_values_are_typed_without_loss() -> None:
    spec = DatasetSpec.from_api(DATASET)
    mapper = RowMapper(spec, ["conversation_started_at", "time_to_close"], spec.attributes)
    assert (
        mapper.type_row(["1700000000", "12"], {})["conversation_started_at"]
        == "2023-11-14T22:13:20+00:00"
    )
    assert mapper.type_row(["", "12.5"], {})["time_to_close"] == 12.5
    assert (
        mapper.type_row(["2024-01-02T03:04:05Z", "1e3"], {})["conversation_started_at"]
        == "2024-01-02T03:04:05+00:00"
    )
    odd = mapper.type_row(["yesterday", ""], {})
    assert odd["conversation_started_at"] is None and odd["extra_columns"] == {
        "conversation_started_at": "yesterday"
    }


def test_qualified_ids_from_216() -> None:
    assert [qualified_ids(v) for v in ("2.14", "2.15", "2.16", "2.17", "Preview", "3.0")] == [
        False, False, True, True, True, True,
    ]  # fmt: skip


def chain_windows(start: int, end: int, seconds: int, in_flight: list[Window]) -> list[Window]:
    """The reporting streams' plan: 7-day windows around jobs in flight (5 may be pending)."""
    jobs = {w: f"job-{n}" for n, w in enumerate(in_flight)}
    fill = lambda a, b: plan_windows(a, b, seconds)  # noqa: E731
    return plan_around(start, end, jobs, fill, after_gap=True).windows


def test_windows_keep_in_flight_bounds() -> None:
    day = 86400
    assert chain_windows(0, 20 * day, 7 * day, []) == [
        Window(0, 7 * day),
        Window(7 * day, 14 * day),
        Window(14 * day, 20 * day),
    ]
    # A job in flight for [3d, 9d) from a killed run with other settings: kept, planned around.
    assert chain_windows(0, 20 * day, 7 * day, [Window(3 * day, 9 * day)]) == [
        Window(0, 3 * day), Window(3 * day, 9 * day), Window(9 * day, 16 * day), Window(16 * day, 20 * day),
    ]  # fmt: skip
    # One that no longer fits the plan (before its start, or past its end) is left out.
    assert chain_windows(5 * day, 6 * day, 7 * day, [Window(0, day), Window(5 * day, 8 * day)]) == [
        Window(5 * day, 6 * day)
    ]


def local(zone: str, text: str) -> str:
    """The instant the tap emits for `text` written in `zone`."""
    when = parse_time(text)
    assert when is not None
    return ReportingZone(zone, "test").instant(when)


def test_local_times_become_utc_instants() -> None:
    assert local("America/New_York", "2023-10-25 08:00:00") == "2023-10-25T12:00:00+00:00"  # EDT
    assert local("America/New_York", "2023-12-25 08:00:00") == "2023-12-25T13:00:00+00:00"  # EST
    assert local("Asia/Kolkata", "2023-10-25 05:30:00") == "2023-10-25T00:00:00+00:00"
    assert local("UTC", "2023-10-25 05:30:00") == "2023-10-25T05:30:00+00:00"
    # Instants already: unix seconds, an offset, Z, a UTC suffix; whatever the zone.
    for text in (
        "1698235200",
        "2023-10-25T08:00:00-04:00",
        "2023-10-25T12:00:00Z",
        "2023-10-25 12:00:00 UTC",
    ):
        assert local("Asia/Kolkata", text) == "2023-10-25T12:00:00+00:00", text
    assert parse_time("25/10/2023 08:00") is None  # kept as text by the row mapper


def test_dst_rule_first_occurrence_and_offset_before_the_change() -> None:
    new_york = ReportingZone("America/New_York", "test")
    # 2023-11-05 01:30 happens twice in New York (EDT, then EST): read as the first, in EDT.
    assert new_york.instant(parse_time("2023-11-05 01:30:00")) == "2023-11-05T05:30:00+00:00"
    assert new_york.repeated == 1
    assert new_york.instant(parse_time("2023-11-05 02:30:00")) == "2023-11-05T07:30:00+00:00"
    # 2024-03-10 02:30 never happens (02:00 EST jumps to 03:00 EDT): read in EST, the offset
    # before the change, as if the clock had not moved yet (= 03:30 EDT).
    assert new_york.instant(parse_time("2024-03-10 02:30:00")) == "2024-03-10T07:30:00+00:00"
    assert new_york.instant(parse_time("2024-03-10 03:30:00")) == "2024-03-10T07:30:00+00:00"
    assert new_york.repeated == 1


def test_reporting_timezone_setting_reads_iana_names_and_utc() -> None:
    base = {"access_token": "t"}
    assert Settings.from_config(base).reporting_timezone is None
    assert Settings.from_config({**base, "reporting_timezone": "utc"}).reporting_timezone == "UTC"
    tz = Settings.from_config({**base, "reporting_timezone": " Asia/Kolkata "}).reporting_timezone
    assert tz == "Asia/Kolkata"
    assert Settings.from_config(base).reporting_retention_days == 730
