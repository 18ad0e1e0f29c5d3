"""Print what the tap emits on a fixed scenario, so two versions of the code can be diffed.

A refactor that claims "behaviour unchanged" runs this on both trees and compares the outputs:

    python scripts/sync_snapshot.py > after.json
    PYTHONPATH=<checkout of the base> python scripts/sync_snapshot.py > before.json
    diff before.json after.json

The scenario: the fake Intercom API with the demo's data (28 days of messages, 48 receipts a
day, an unknown file kind, 50 contacts with events, reporting datasets) at a pinned "now"; a first
sync from no state; a second sync one day later from the first's STATE, after new events for a
few contacts (so contact_event_summaries re-reads only theirs) and with the message lookback due;
each event stream alone, from no state and from the first sync's; and the first sync again with
BATCH output. Printed per run: every record of every stream in
emission order (without `time_extracted` and the job ledger's wall-clock timings), the content of
the BATCH files, the final STATE, and the requests the fake answered, by route.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import tempfile
import time
import typing as t
from pathlib import Path

DAY = 86400
NOW = 1_699_920_000  # 2023-11-14T00:00:00Z
TOKEN = "snapshot-token"  # noqa: S105 - the fake's token
# Timings that depend on how fast this machine polled and downloaded, not on the code.
WALL_CLOCK_FIELDS = ("created_at", "completed_at", "poll_seconds", "download_seconds")


def _build(**kwargs: t.Any) -> t.Any:
    from fake_intercom import build  # noqa: PLC0415 - installed by scripts/test.sh

    return build(**kwargs)


class _Clock:
    """A wall clock the scenario sets, and elapsed time that only sleeping moves (instantly)."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.elapsed = 0.0

    def sleep(self, seconds: float) -> None:
        self.elapsed += seconds


def _pin(now: int) -> _Clock:
    """Pin the tap's "now" (the scenario moves it); polling waits pass instantly."""
    from tap_intercom_export.events.fanout import ContactFanOutStream  # noqa: PLC0415
    from tap_intercom_export.jobs.stream import ExportJobStream  # noqa: PLC0415

    clock = _Clock(float(now))
    for cls in (ExportJobStream, ContactFanOutStream):
        cls.wall_clock = staticmethod(lambda: clock.now)  # type: ignore[method-assign]
        cls.monotonic = staticmethod(lambda: clock.elapsed)  # type: ignore[method-assign]
    ExportJobStream.sleep = staticmethod(clock.sleep)  # type: ignore[method-assign]
    return clock


def _run(
    config: dict[str, t.Any], state: dict[str, t.Any] | None, *, select: set[str] | None = None
) -> list[dict[str, t.Any]]:
    from tap_intercom_export.tap import TapIntercomExport  # noqa: PLC0415

    catalog = None
    if select is not None:
        catalog = TapIntercomExport(config=config).catalog_dict
        for entry in catalog["streams"]:
            for metadata in entry["metadata"]:
                if metadata["breadcrumb"] == []:
                    metadata["metadata"]["selected"] = entry["tap_stream_id"] in select
    buffer = io.BytesIO()
    out = io.TextIOWrapper(buffer, encoding="utf-8")
    old, sys.stdout = sys.stdout, out
    try:
        TapIntercomExport(config=config, state=state, catalog=catalog, setup_mapper=True).sync_all()
    finally:
        out.flush()
        sys.stdout = old
    return [json.loads(line) for line in buffer.getvalue().decode().splitlines() if line.strip()]


def _batch_rows(url: str) -> list[t.Any]:
    path = Path(url.removeprefix("file://"))
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _requests(fake: t.Any, start: int, end: int) -> dict[str, int]:
    """Requests a run sent, by method and route (ids left out), summary reads apart."""
    counts: dict[str, int] = {}
    for request in fake.log[start:end]:
        route = "/".join(p for p in request.path.split("/")[:4] if not any(c.isdigit() for c in p))
        if request.arg("summary") == "true":
            route += "?summary"
        name = f"{request.method} {route}"
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def _summary(messages: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    records: dict[str, list[t.Any]] = {}
    batches: dict[str, list[t.Any]] = {}
    for message in messages:
        if message["type"] == "RECORD":
            record = dict(message["record"])
            if message["stream"] == "message_export_jobs":
                for name in WALL_CLOCK_FIELDS:
                    record.pop(name, None)
            records.setdefault(message["stream"], []).append(record)
        elif message["type"] == "BATCH":
            for url in message["manifest"]:
                batches.setdefault(message["stream"], []).extend(_batch_rows(url))
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return {
        "record_counts": {s: len(r) for s, r in sorted(records.items())},
        "records": dict(sorted(records.items())),
        "batch_rows": dict(sorted(batches.items())),
        "final_state": states[-1] if states else None,
    }


def main() -> None:
    """Run the scenario and print one JSON document."""
    import tap_intercom_export  # noqa: PLC0415

    print(f"code under test: {Path(tap_intercom_export.__file__).parent}", file=sys.stderr)
    clock = _pin(NOW)
    fake = _build(
        token=TOKEN,
        start=NOW - 28 * DAY,
        end=NOW,
        receipts_per_day=48,
        invent_kind=True,
        events_now=NOW,
    ).start()
    config = {
        "access_token": TOKEN,
        "api_url": fake.url,
        "start_date": "2023-10-20T00:00:00Z",
        "export_poll_interval_seconds": 5,
    }
    out: dict[str, t.Any] = {}

    def sync(name: str, state: dict[str, t.Any] | None, **kwargs: t.Any) -> list[dict[str, t.Any]]:
        sent = len(fake.log)
        run = _run(kwargs.pop("config", config), state, **kwargs)
        out[name] = {**_summary(run), "requests": _requests(fake, sent, len(fake.log))}
        return run

    try:
        for alone in ("contact_events", "contact_event_summaries"):
            sync(f"first_sync_{alone}_only", None, select={alone})
        first = sync("first_sync", None)
        state = [m["value"] for m in first if m["type"] == "STATE"][-1]

        clock.now = float(NOW + DAY)
        fake.events.now = NOW + DAY
        for n, contact in enumerate(fake.events.contacts[::7]):
            fake.events.add_event(contact.id, ["signed-up", "renamed-plan"][n % 2], NOW + 3600)
        sync("second_sync", state)
        for alone in ("contact_events", "contact_event_summaries"):
            sync(f"second_sync_{alone}_only", state, select={alone})

        clock.now = float(NOW)
        fake.events.now = NOW
        with tempfile.TemporaryDirectory() as root:
            batch = {
                "encoding": {"format": "jsonl", "compression": "gzip"},
                "storage": {"root": f"file://{root}", "prefix": "snap-"},
                "batch_size": 500,
            }
            sync("first_sync_batch", None, config={**config, "batch_config": batch})
    finally:
        fake.stop()
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"done in {time.monotonic() - started:.1f} s", file=sys.stderr)
