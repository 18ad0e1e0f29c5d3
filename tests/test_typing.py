"""CSV typing: timestamps in both of Intercom's spellings, counts, rates, nulls, extras."""

from __future__ import annotations

from tap_intercom_export.content.schemas import (
    FILE_KINDS,
    RowTyper,
    column_type,
    to_datetime,
    to_integer,
    to_number,
)

LINEAGE = {"export_job_id": "j1", "export_window_start": "a", "export_window_end": "b"}


def test_column_types_follow_intercom_names() -> None:
    assert column_type("received_at") == "date-time"
    assert column_type("first_open") == "date-time"
    assert column_type("receipt_total") == "integer"
    assert column_type("open_unique") == "integer"
    assert column_type("open_rate") == "number"
    assert column_type("receipt_id") == "string"
    assert column_type("user_id") == "string"


def test_timestamps_from_unix_seconds_and_utc_text() -> None:
    assert to_datetime("1699920000") == "2023-11-14T00:00:00+00:00"
    assert to_datetime("1699920000.5") == "2023-11-14T00:00:00.500000+00:00"
    assert to_datetime("2023-11-14 00:00:00 UTC") == "2023-11-14T00:00:00+00:00"
    assert to_datetime("2023-11-14T01:00:00+01:00") == "2023-11-14T00:00:00+00:00"
    assert to_datetime("2023-11-14T00:00:00Z") == "2023-11-14T00:00:00+00:00"


def test_numbers() -> None:
    assert to_integer("12") == 12
    assert to_integer("12.0") == 12
    assert to_integer("1,204") == 1204
    assert to_number("0.25") == 0.25
    assert to_number("25%") == 25.0


def test_row_typing_keeps_unknown_columns_and_bad_values() -> None:
    spec = FILE_KINDS["overview"]
    header = ["ruleset_id", "created_at", "open_total", "open_rate", "brand_new_column"]
    typer = RowTyper(spec, header)
    record = typer.type_row(["7", "1699920000", "n/a", "", "surprise"], LINEAGE)
    assert record["ruleset_id"] == "7"
    assert record["created_at"] == "2023-11-14T00:00:00+00:00"
    assert record["open_total"] is None
    assert record["open_rate"] is None
    assert record["extra_columns"] == {"brand_new_column": "surprise", "open_total": "n/a"}
    assert typer.bad_values == {"open_total": 1}
    assert typer.unknown == ["brand_new_column"]
    # Declared columns absent from this file are present as nulls, so every record has the schema.
    assert "click_total" in record and record["click_total"] is None
    assert record["export_job_id"] == "j1"


def test_ragged_rows_keep_what_is_there() -> None:
    typer = RowTyper(FILE_KINDS["open"], ["receipt_id", "opened_at"])
    short = typer.type_row(["r1"], LINEAGE)
    long = typer.type_row(["r2", "1699920000", "spill"], LINEAGE)
    assert short["receipt_id"] == "r1" and short["opened_at"] is None
    assert long["opened_at"] == "2023-11-14T00:00:00+00:00"
    assert long["extra_columns"] == {"column_3": "spill"}
    assert typer.ragged_rows == 2


def test_every_schema_declares_lineage_and_keys() -> None:
    assert len(FILE_KINDS) == 21
    for spec in FILE_KINDS.values():
        props = spec.json_schema()["properties"]
        for key in spec.primary_keys:
            assert key in props, (spec.kind, key)
        assert props["export_window_start"]["format"] == "date-time"
        assert props["extra_columns"]["type"] == ["object", "null"]
        for col in spec.columns:
            if col.endswith("_at") or col.startswith("first_"):
                assert props[col]["format"] == "date-time"


def test_a_rate_that_is_not_a_finite_number_is_kept_as_text() -> None:
    # float() reads these; JSON has no NaN or infinity, so the column is null and the text kept.
    header = ["ruleset_id", "open_rate", "click_rate", "reply_rate", "answer_rate"]
    typer = RowTyper(FILE_KINDS["overview"], header)
    record = typer.type_row(["7", "nan", "inf", "-Infinity", "1e999"], LINEAGE)
    assert [record[c] for c in header[1:]] == [None, None, None, None]
    assert record["extra_columns"] == {
        "open_rate": "nan",
        "click_rate": "inf",
        "reply_rate": "-Infinity",
        "answer_rate": "1e999",
    }
    assert typer.type_row(["7", "12.5%", "", "", ""], LINEAGE)["open_rate"] == 12.5
