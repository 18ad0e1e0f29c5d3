"""Settings (settings.py): defaults filled in, and every bound enforced alike by the SDK and the tap."""

from __future__ import annotations

import dataclasses

import jsonschema
import pytest

from tap_intercom_export.errors import ConfigError
from tap_intercom_export.settings import CONFIG_SCHEMA, SETTINGS, Settings, check_config
from tap_intercom_export.tap import TapIntercomExport

BASE = {"access_token": "t", "api_url": "http://127.0.0.1:9"}
NO_STREAMS: dict = {"streams": []}
BOUNDED = [s for s in SETTINGS if s.kind in ("integer", "number")]


def test_defaults_are_filled_in() -> None:
    settings = check_config({"access_token": "t"})
    assert settings.api_url == "https://api.intercom.io"
    assert settings.intercom_version == "2.14"
    assert (settings.export_window_days, settings.export_jobs_ahead) == (7, 1)
    assert (settings.event_settle_seconds, settings.max_concurrent_requests) == (300, 64)
    assert settings.reporting_max_concurrent_jobs == 2
    assert settings.start_date is None and settings.reporting_datasets is None


def test_every_setting_has_a_field_and_a_schema_property() -> None:
    names = [s.name for s in SETTINGS]
    assert names == [f.name for f in dataclasses.fields(Settings)]
    # The SDK appends its built-in settings (stream_maps, batch_config, ...) after ours.
    assert list(CONFIG_SCHEMA["properties"])[: len(names)] == names


def _bounds(setting) -> list[tuple[float, bool]]:
    """Values at and just past each bound of `setting`, with whether they are valid."""
    step = 1 if setting.kind == "integer" else 0.5
    cases = []
    if setting.minimum is not None:
        cases += [(setting.minimum, True), (setting.minimum - step, False)]
    if setting.exclusive_minimum is not None:
        cases += [(setting.exclusive_minimum + step, True), (setting.exclusive_minimum, False)]
    if setting.maximum is not None:
        cases += [(setting.maximum, True), (setting.maximum + step, False)]
    return cases


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [(s.name, v, ok) for s in BOUNDED for v, ok in _bounds(s)],
)
def test_the_sdk_and_the_tap_agree_on_every_bound(name, value, valid) -> None:
    config = {**BASE, name: value}
    if valid:
        check_config(config)
        TapIntercomExport(config=config, catalog=NO_STREAMS)  # a catalog: no discovery request
        return
    with pytest.raises(ConfigError, match=rf"^Setting {name}={value!r} must be "):
        check_config(config)
    # The tap checks its settings before the SDK's schema does: the error is the tap's line.
    with pytest.raises(ConfigError, match=rf"^Setting {name}={value!r} must be "):
        TapIntercomExport(config=config, catalog=NO_STREAMS)
    # And the schema that --about and Meltano see refuses the value too.
    errors = jsonschema.Draft7Validator(TapIntercomExport.config_jsonschema).iter_errors(config)
    assert [e for e in errors if list(e.path) == [name]]


@pytest.mark.parametrize(
    ("name", "value"),
    [("export_window_days", 1.5), ("export_jobs_ahead", "1"), ("events_per_page", True)],
)
def test_a_whole_number_setting_takes_only_whole_numbers(name, value) -> None:
    with pytest.raises(ConfigError, match=f"Setting {name}="):
        check_config({**BASE, name: value})


def test_json_numbers_read_as_decimal_are_numbers() -> None:
    from decimal import Decimal

    settings = check_config(
        {**BASE, "export_lookback_days": Decimal("0.5"), "events_per_page": Decimal(20)}
    )
    assert (settings.export_lookback_days, settings.events_per_page) == (0.5, 20)
