"""Benchmark the contact event streams: requests per contact, and use of Intercom's rate limit.

    .venv/bin/python bench/bench_events.py                      # 400 contacts, ~3 min
    .venv/bin/python bench/bench_events.py --contacts 100       # quicker
    .venv/bin/python bench/bench_events.py --concurrency        # also 1 vs 8 requests in flight

Each run is a child process (`python -m tap_intercom_export`, both `contact_events` and
`contact_event_summaries` selected) against a fresh fake Intercom API on loopback that answers
every request after `--latency` seconds.

**Summary diet**: a first (full) run; then 5 % of the contacts get a new event and an incremental
run follows, once as the tap does it now and once with `event_summaries_full_refresh_days=0`
(every summary re-read, as before the diet: 2 requests per contact). The incremental run's
summaries, upserted over the first run's, are compared with a full read made afterwards.

**Rate limit**: a first run under a fake limit of `--limit` requests per `--window` seconds
(Intercom-style fixed windows). Utilisation is the requests answered in each window the run
spanned from start to end, over the limit; the first and last windows, cut by the run's start
and end, are left out. 429s are counted by the fake.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from fake_intercom import FakeIntercom, build

from tap_intercom_export.tap import TapIntercomExport

TOKEN = "bench-token"
EVENTS = "contact_events"
SUMMARIES = "contact_event_summaries"


@dataclass
class Run:
    """One sync in a child process: what it wrote and what it cost."""

    name: str
    seconds: float
    requests: int
    rejected: int
    records: dict[str, list[dict]] = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    log: str = ""

    def done(self, stream: str) -> str:
        """The stream's closing progress line."""
        found = re.search(rf"{stream} done: (.*)", self.log)
        return found.group(1) if found else ""


def catalog_for(config: dict, streams: t.Collection[str]) -> dict:
    """The discovered catalog with only `streams` selected."""
    catalog = TapIntercomExport(config=config).catalog_dict
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def sync(
    name: str,
    fake: FakeIntercom,
    *,
    settings: dict | None = None,
    state: dict | None = None,
    streams: t.Collection[str] = (EVENTS, SUMMARIES),
) -> Run:
    """One sync of `streams` in a child process against `fake`."""
    config = {"access_token": TOKEN, "api_url": fake.url, "event_settle_seconds": 0}
    config.update(settings or {})
    inputs = {"config": config, "catalog": catalog_for(config, streams), "state": state}
    requests_before = len(fake.log)
    rejected_before = fake.limiter.rejected if fake.limiter else 0
    run = Run(name, 0.0, 0, 0)
    with (
        tempfile.TemporaryDirectory(prefix="bench-events-") as tmp,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        argv = [sys.executable, "-m", "tap_intercom_export"]
        for option, value in inputs.items():
            if value:
                path = Path(tmp) / f"{option}.json"
                path.write_text(json.dumps(value))
                argv += [f"--{option}", str(path)]
        started = time.perf_counter()
        proc = subprocess.run(argv, stdout=out, stderr=err, check=False)
        run.seconds = time.perf_counter() - started
        err.seek(0)
        run.log = err.read().decode(errors="replace")
        if proc.returncode != 0:
            sys.stderr.write(run.log[-4000:])
            msg = f"{name} run exited with {proc.returncode}"
            raise SystemExit(msg)
        out.seek(0)
        for line in out:
            message = json.loads(line)
            if message["type"] == "RECORD":
                run.records.setdefault(message["stream"], []).append(message["record"])
            elif message["type"] == "STATE":
                run.state = message["value"]
    run.requests = len(fake.log) - requests_before
    run.rejected = (fake.limiter.rejected if fake.limiter else 0) - rejected_before
    return run


def upsert(*runs: Run) -> dict[tuple, dict]:
    """The summaries table a loader holds after loading the runs in order."""
    table: dict[tuple, dict] = {}
    for run in runs:
        for record in run.records.get(SUMMARIES, []):
            table[(record["contact_id"], record["event_name"])] = record
    return table


@dataclass
class DietResult:
    """Requests per contact of a first run and of incremental runs with and without the diet."""

    contacts: int
    changed: int
    full: Run
    diet: Run
    every_summary: Run
    same_records: bool


def bench_diet(args: argparse.Namespace) -> DietResult:
    """First run, 5 % of contacts get an event, incremental run with and without the diet."""
    fake = build(
        token=TOKEN,
        start=0,
        end=86400,
        contacts=args.contacts,
        latency=args.latency,
        summary_per_page=args.summary_per_page,
    ).start()
    try:
        full = sync("first run (full)", fake)
        changed = fake.events.contacts[:: max(round(100 / args.changed_percent), 1)]
        # Created after the first run's upper bounds and before the next one's. With
        # event_settle_seconds=0 an event created in the second the summaries' bookmark names
        # counts as already read, so let that second pass first.
        time.sleep(1.1)
        created = int(time.time())
        for n, contact in enumerate(changed):
            fake.events.add_event(contact.id, ["signed-up", "renamed-plan"][n % 2], created)
        time.sleep(1.1)
        diet = sync("incremental", fake, state=full.state)
        every = sync(
            "incremental, every summary",
            fake,
            settings={"event_summaries_full_refresh_days": 0},
            state=full.state,
        )
        reference = sync("full read of summaries", fake, streams=[SUMMARIES])
    finally:
        fake.stop()
    same = upsert(full, diet) == upsert(reference) and upsert(full, every) == upsert(reference)
    return DietResult(len(fake.events.contacts), len(changed), full, diet, every, same)


@dataclass
class RateResult:
    """One run under a fake rate limit, with the requests answered in each of its windows."""

    run: Run
    limit: int
    window: float
    per_window: list[int]

    @property
    def utilisation(self) -> float:
        """Requests per window over the limit, windows cut by the run's start and end left out."""
        inner = self.per_window[1:-1]
        return sum(inner) / (len(inner) * self.limit) if inner else float("nan")


def bench_rate_limit(args: argparse.Namespace) -> RateResult:
    """A first run of both streams under `--limit` requests per `--window` seconds."""
    fake = build(
        token=TOKEN,
        start=0,
        end=86400,
        contacts=args.contacts,
        latency=args.latency,
        rate_limit=args.limit,
        rate_window=args.window,
    ).start()
    limiter = fake.limiter
    windows: dict[float, int] = {}
    take = limiter.take

    def counting_take() -> tuple[bool, dict[str, str]]:
        allowed, headers = take()
        if allowed:
            windows[limiter.window_start] = windows.get(limiter.window_start, 0) + 1
        return allowed, headers

    limiter.take = counting_take  # type: ignore[method-assign]
    try:
        run = sync(f"first run, {args.limit}/{args.window:g} s limit", fake)
    finally:
        fake.stop()
    # Window starts are floats: index them by their distance from the first. A window in
    # which no request was answered counts as 0.
    per_window: list[int] = []
    if windows:
        first = min(windows)
        for start, count in windows.items():
            index = round((start - first) / args.window)
            per_window += [0] * (index + 1 - len(per_window))
            per_window[index] += count
    return RateResult(run, args.limit, args.window, per_window)


def bench_concurrency(args: argparse.Namespace) -> tuple[Run, Run]:
    """A first run of contact_events one request at a time, then with the default concurrency."""
    runs = []
    for name, settings in (("sequential", {"max_concurrent_requests": 1}), ("default", {})):
        fake = build(token=TOKEN, start=0, end=86400, contacts=args.contacts, latency=args.latency)
        fake.start()
        try:
            runs.append(sync(name, fake, settings=settings, streams=[EVENTS]))
        finally:
            fake.stop()
    return runs[0], runs[1]


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.04, help="seconds per request")
    parser.add_argument("--changed-percent", type=float, default=5.0)
    parser.add_argument(
        "--summary-per-page", type=int, default=None, help="page summaries in the fake"
    )
    parser.add_argument("--limit", type=int, default=100, help="requests per --window")
    parser.add_argument("--window", type=float, default=10.0, help="rate-limit window, seconds")
    parser.add_argument("--no-rate-limit", action="store_true", help="skip the rate-limit run")
    parser.add_argument("--concurrency", action="store_true", help="also 1 vs 8 in flight")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> tuple[DietResult, RateResult | None]:
    """Run the benchmarks and print their numbers side by side."""
    args = parse(argv)
    print(f"{args.contacts} contacts, {args.latency * 1000:.0f} ms per request", flush=True)
    diet = bench_diet(args)
    rate = None if args.no_rate_limit else bench_rate_limit(args)
    concurrency = bench_concurrency(args) if args.concurrency else None

    n = diet.contacts
    print(f"\nSummary diet: {diet.changed} of {n} contacts ({100 * diet.changed / n:.1f} %) "
          "have new events since the first run")  # fmt: skip
    print(f"{'run':>34} {'requests':>9} {'per contact':>12} {'summary records':>16} {'seconds':>8}")
    for run in (diet.full, diet.every_summary, diet.diet):
        print(
            f"{run.name:>34} {run.requests:>9} {run.requests / n:>12.3f} "
            f"{len(run.records.get(SUMMARIES, [])):>16} {run.seconds:>8.2f}"
        )
    print(
        f"incremental / every summary = {diet.diet.requests / diet.every_summary.requests:.3f}; "
        f"summaries after the incremental run equal a full read: {diet.same_records}"
    )
    if rate is not None:
        run = rate.run
        print(
            f"\nRate limit {rate.limit} per {rate.window:g} s: {run.requests} requests in "
            f"{run.seconds:.1f} s, {run.rejected} answered 429"
        )
        print(f"requests per window: {rate.per_window}")
        print(
            f"utilisation of the limit (windows cut by start and end left out): "
            f"{100 * rate.utilisation:.1f} %"
        )
        for stream in (EVENTS, SUMMARIES):
            print(f"  {stream}: {run.done(stream)}")
    if concurrency is not None:
        sequential, default = concurrency
        print(
            f"\ncontact_events alone: sequential {sequential.seconds:.2f} s, default "
            f"{default.seconds:.2f} s, default / sequential = "
            f"{default.seconds / sequential.seconds:.3f}"
        )
    return diet, rate


if __name__ == "__main__":
    main()
