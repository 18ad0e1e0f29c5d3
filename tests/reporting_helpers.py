"""Shared pieces of the reporting tests: clocks, config, and the rows the fake should yield."""

from __future__ import annotations

import typing as t

import pytest

from tap_intercom_export.reporting.schemas import DatasetSpec
from tap_intercom_export.reporting.streams import ReportingStream
from tests.conftest import NOW, TOKEN, VirtualClock
from tests.oracle import unix

START = unix("2023-10-25T00:00:00Z")
END = unix("2023-11-14T00:00:00Z")
DATASETS = ("conversation", "tickets", "admin_status_change")
STREAMS = tuple(f"reporting_{d}" for d in DATASETS)


@pytest.fixture
def rclock(clock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """The virtual clock, driving the reporting streams' waits too."""
    monkeypatch.setattr(ReportingStream, "sleep", staticmethod(clock.sleep))
    monkeypatch.setattr(ReportingStream, "monotonic", staticmethod(lambda: clock.now))
    monkeypatch.setattr(
        ReportingStream, "wall_clock", staticmethod(lambda: float(NOW + 3600) + clock.now)
    )
    return clock


def reporting_config(fake: t.Any, **overrides: t.Any) -> dict:
    """A config for the reporting streams: 20 days in 7-day windows, no lookback."""
    cfg = {
        "access_token": TOKEN,
        "api_url": fake.url,
        "start_date": "2023-10-25T00:00:00Z",
        "end_date": "2023-11-14T00:00:00Z",
        "export_poll_interval_seconds": 5,
        "reporting_window_days": 7,
        "reporting_lookback_days": 0,
    }
    cfg.update(overrides)
    return cfg


def enqueues(fake: t.Any, dataset: str | None = None) -> list[dict]:
    """Bodies of the enqueue calls (of one dataset)."""
    bodies = [r.body for r in fake.calls("POST", "/export/reporting_data/enqueue")]
    return [b for b in bodies if dataset is None or b["dataset_id"] == dataset]


def windows(start: int = START, end: int = END, days: int = 7) -> list[tuple[int, int]]:
    """The windows a run plans."""
    out, cursor = [], start
    while cursor < end:
        out.append((cursor, min(cursor + days * 86400, end)))
        cursor = out[-1][1]
    return out


def spec_of(fake, dataset: str) -> DatasetSpec:
    """The dataset as the tap reads it from the fake's get_datasets."""
    ds = fake.reporting.dataset(dataset)
    return DatasetSpec.from_api(ds.api(qualified=False))


UNFIT = object()  # a duration that is not a number: null, its text kept in extra_columns


def typed(kind: str, raw: str, true: str | None):
    """A CSV value of the fake as the record should hold it, by the fake's attribute kind.

    A time is its instant in UTC, as the fake computes it (`true`), whatever the CSV's zone.
    """
    if kind in ("ts", "ts_late"):
        return true
    if raw == "":
        return None
    if kind == "dur":
        return int(raw) if raw.isdigit() else UNFIT
    return raw


def expected_records(fake, dataset: str, window: tuple[int, int]) -> list[dict]:
    """The fake's rows of one window, by the tap's property names."""
    kinds = {a.id: a.kind for a in fake.reporting.dataset(dataset).attributes}
    spec = spec_of(fake, dataset)
    raw = fake.reporting.rows(dataset, window[0], window[1])
    truth = fake.reporting.truth(dataset, window[0], window[1])
    return [
        {a.prop: typed(kinds[a.id], row[a.id], true[a.id]) for a in spec.attributes}
        for row, true in zip(raw, truth, strict=True)
    ]
