"""Shared pieces of the reporting tests: clocks, config, and the rows the fake should yield."""

from __future__ import annotations

import typing as t

import pytest

from tap_intercom_export.reporting.streams import ReportingStream
from tap_intercom_export.timeutil import unix
from tests.conftest import NOW, TOKEN, VirtualClock

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
