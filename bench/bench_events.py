"""Benchmark the contact event streams: requests per contact, lookback, and use of the rate limit.

    .venv/bin/python bench/bench_events.py                        # 400 contacts, 40 ms, ~2 min
    .venv/bin/python bench/bench_events.py --no-diet --latency-ms 200 --limit 1000
    .venv/bin/python bench/bench_events.py --no-diet --no-rate-limit --max-rate

Each run is a child process (`python -m tap_intercom_export`, both `contact_events` and
`contact_event_summaries` selected) against a fresh fake Intercom API on loopback that answers
every request after `--latency-ms`.

**Summary diet and lookback**: a first (full) run; then 5 % of the contacts get a new event and
incremental runs follow from the first run's state: as the tap does it by default (a lookback of
a day before the bookmark), without lookback (`events_lookback_hours=0`), with the deep lookback
of a week (`events_deep_lookback_interval_hours=0` makes it due), and with every summary re-read
(`event_summaries_full_refresh_days=0`). Each run's events and summaries, upserted over the
first run's, are compared with what the fake holds.

**Rate limit**: a first run under a fake limit of `--limit` requests per `--window` seconds
(Intercom-style fixed windows). Utilisation is the requests answered from the first to the last
request over what the limit allowed in that time, and per window; 429s are counted by the fake.
Records are compared with the fake's events. Timed runs are made with `PYTHONUNBUFFERED` unset
and set (`--unbuffered`).

**Highest rate** (`--max-rate`): a first run of contact_events alone against a fake with no
latency and a limit it never reaches: the requests per second one tap process sustains.
"""

from __future__ import annotations

import argparse
import json
import os
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
from tap_intercom_export.timeutil import iso, unix

TOKEN = "bench-token"
DAY = 86400
#: The runs' start_date: 30 days before the bench started (the tap's default when unset).
SINCE = int(time.time()) - 30 * DAY
EVENTS = "contact_events"
SUMMARIES = "contact_event_summaries"
#: Settings of the incremental runs compared side by side.
VARIANTS = {
    "incremental, lookback 24 h (default)": {},
    "incremental, no lookback": {"events_lookback_hours": 0, "events_deep_lookback_days": 0},
    "incremental, deep lookback 7 days": {"events_deep_lookback_interval_hours": 0},
    "incremental, every summary": {"event_summaries_full_refresh_days": 0},
}


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
    #: Unix times at which the fake counted each request (rate-limit runs).
    times: list[float] = field(default_factory=list)

    def done(self, stream: str) -> str:
        """The stream's closing progress line."""
        found = re.search(rf"{stream} done: (.*)", self.log)
        return found.group(1) if found else ""

    def requests_of(self, stream: str) -> int:
        """Requests the stream's closing progress line counts (0 when it did not run)."""
        found = re.search(r"([\d,]+) requests", self.done(stream))
        return int(found.group(1).replace(",", "")) if found else 0

    def count(self, stream: str) -> int:
        """Records of a stream."""
        return len(self.records.get(stream, []))


def catalog_for(config: dict, streams: t.Collection[str]) -> dict:
    """The discovered catalog with only `streams` selected."""
    catalog = TapIntercomExport(config=config).catalog_dict
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def child_env(*, unbuffered: bool | None) -> dict[str, str]:
    """This environment with PYTHONUNBUFFERED set (True), removed (False) or as it is (None)."""
    env = dict(os.environ)
    if unbuffered is True:
        env["PYTHONUNBUFFERED"] = "1"
    elif unbuffered is False:
        env.pop("PYTHONUNBUFFERED", None)
    return env


def sync(  # noqa: PLR0913 - the knobs of one run, named at each call
    name: str,
    fake: FakeIntercom,
    *,
    settings: dict | None = None,
    state: dict | None = None,
    streams: t.Collection[str] = (EVENTS, SUMMARIES),
    unbuffered: bool | None = None,
    on_start: t.Callable[[], None] = lambda: None,
) -> Run:
    """One sync of `streams` in a child process against `fake` (`on_start` just before it)."""
    config = {
        "access_token": TOKEN,
        "api_url": fake.url,
        "event_settle_seconds": 0,
        "start_date": iso(SINCE),
    }
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
        on_start()
        started = time.perf_counter()
        proc = subprocess.run(
            argv, stdout=out, stderr=err, check=False, env=child_env(unbuffered=unbuffered)
        )
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


def upsert(stream: str, *runs: Run) -> dict[tuple, dict]:
    """The table a loader holds after loading the runs in order (upserts on the primary key)."""
    table: dict[tuple, dict] = {}
    for run in runs:
        for r in run.records.get(stream, []):
            key = (r["contact_id"], r["event_name"]) if stream == SUMMARIES else (r["event_key"],)
            table[key] = {k: v for k, v in r.items() if k != "time_extracted"}
    return table


def start_fake(**kwargs: t.Any) -> FakeIntercom:
    """A fake Intercom API on loopback with events up to now."""
    return build(token=TOKEN, start=0, end=DAY, **kwargs).start()


def fake_events(fake: FakeIntercom) -> set[tuple[str, str, int]]:
    """(contact, name, created_at) of every event the fake lists, from the runs' start date."""
    return {
        (c.id, e.name, e.created_at)
        for c in fake.events.contacts
        for e in fake.events.listable(c.id)
        if e.created_at >= SINCE
    }


def event_keys(*runs: Run) -> set[tuple[str, str, int]]:
    """(contact, name, created_at) of every event the runs emitted."""
    return {
        (r["contact_id"], r["event_name"], unix(r["created_at"]))
        for run in runs
        for r in run.records.get(EVENTS, [])
    }


@dataclass
class DietResult:
    """Requests per contact of a first run and of incremental runs side by side."""

    contacts: int
    changed: int
    late: int
    full: Run
    incremental: list[Run]
    #: Per incremental run: whether the summaries loaded equal a full read, and how many of
    #: the fake's events the first and this run together never emitted.
    checks: dict[str, tuple[bool, int]]


def bench_diet(args: argparse.Namespace) -> DietResult:
    """First run; 5 % of contacts get an event, a few an event hours late; incremental runs."""
    fake = start_fake(
        contacts=args.contacts,
        latency=args.latency_ms / 1000,
        summary_per_page=args.summary_per_page,
    )
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
        # One contact in a hundred gets an event that reaches Intercom three hours late.
        late = fake.events.contacts[1::100]
        for contact in late:
            fake.events.add_late_event(contact.id, "late-event", 3 * 3600)
        time.sleep(1.1)
        runs = [sync(name, fake, settings=s, state=full.state) for name, s in VARIANTS.items()]
        reference = sync("full read of summaries", fake, streams=[SUMMARIES])
        listed = fake_events(fake)
    finally:
        fake.stop()
    checks = {
        run.name: (
            upsert(SUMMARIES, full, run) == upsert(SUMMARIES, reference),
            len(listed - event_keys(full, run)),
        )
        for run in runs
    }
    return DietResult(len(fake.events.contacts), len(changed), len(late), full, runs, checks)


@dataclass
class RateResult:
    """One run under a fake rate limit, with the requests answered in each of its windows."""

    run: Run
    limit: int
    window: float
    latency_ms: float
    unbuffered: bool
    per_window: list[int]
    same_records: bool

    @property
    def span(self) -> float:
        """Seconds from the first request the fake counted to the last."""
        return max(self.run.times) - min(self.run.times) if self.run.times else float("nan")

    @property
    def rate_share(self) -> float:
        """Requests per second from the first request to the last, over the limit's average rate.

        More than 1 when the run starts within a window: the pacer spends that window's whole
        budget over the time left in it.
        """
        n = len(self.run.times)
        # n requests span n - 1 gaps: the time allowed for them is one gap more than the span.
        seconds = self.span * n / max(n - 1, 1)
        return n / seconds / (self.limit / self.window) if seconds else float("nan")

    @property
    def before_last(self) -> float:
        """Requests per window over the limit, every window but the last (where the run ends)."""
        used = self.per_window[:-1]
        return sum(used) / (len(used) * self.limit) if used else float("nan")

    @property
    def inner(self) -> float:
        """Requests per window over the limit, the windows cut by the run's start and end left out."""
        inner = self.per_window[1:-1]
        return sum(inner) / (len(inner) * self.limit) if inner else float("nan")


def bench_rate_limit(args: argparse.Namespace, unbuffered: bool) -> RateResult:  # noqa: FBT001
    """A first run of both streams under `--limit` requests per `--window` seconds."""
    fake = start_fake(
        contacts=args.contacts,
        latency=args.latency_ms / 1000,
        rate_limit=args.limit,
        rate_window=args.window,
    )
    limiter = fake.limiter
    windows: dict[float, int] = {}
    times: list[float] = []
    take = limiter.take

    def counting_take() -> tuple[bool, dict[str, str]]:
        allowed, headers = take()
        if allowed:
            windows[limiter.window_start] = windows.get(limiter.window_start, 0) + 1
            times.append(time.time())
        return allowed, headers

    limiter.take = counting_take  # type: ignore[method-assign]
    settings = {"max_concurrent_requests": args.ceiling} if args.ceiling else {}
    name = f"first run, {args.limit}/{args.window:g} s, {args.latency_ms:g} ms"

    def forget() -> None:  # the bench's own discovery request is not the run's
        windows.clear()
        times.clear()

    try:
        run = sync(name, fake, settings=settings, unbuffered=unbuffered, on_start=forget)
        listed = fake_events(fake)
    finally:
        fake.stop()
    run.times = times
    # Window starts are floats: index them by their distance from the first. A window in
    # which no request was answered counts as 0.
    per_window: list[int] = []
    if windows:
        first = min(windows)
        for start, count in sorted(windows.items()):
            index = round((start - first) / args.window)
            per_window += [0] * (index + 1 - len(per_window))
            per_window[index] += count
    same = event_keys(run) == listed and len(upsert(SUMMARIES, run)) == run.count(SUMMARIES)
    return RateResult(run, args.limit, args.window, args.latency_ms, unbuffered, per_window, same)


def bench_max_rate(args: argparse.Namespace, unbuffered: bool) -> tuple[Run, float]:  # noqa: FBT001
    """contact_events alone, no latency, a limit never reached: requests/s and the tap's CPU."""
    fake = start_fake(contacts=args.max_rate_contacts, rate_limit=10**9)
    settings = {"max_concurrent_requests": args.ceiling} if args.ceiling else {}
    cpu_before = os.times()
    try:
        run = sync("highest rate", fake, settings=settings, streams=[EVENTS], unbuffered=unbuffered)
    finally:
        fake.stop()
    cpu = os.times()
    child_cpu = (cpu.children_user - cpu_before.children_user) + (
        cpu.children_system - cpu_before.children_system
    )
    return run, child_cpu


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=400)
    parser.add_argument("--latency-ms", type=float, default=40.0, help="added to every answer")
    parser.add_argument("--changed-percent", type=float, default=5.0)
    parser.add_argument(
        "--summary-per-page", type=int, default=None, help="page summaries in the fake"
    )
    parser.add_argument("--limit", type=int, default=1000, help="requests per --window")
    parser.add_argument("--window", type=float, default=10.0, help="rate-limit window, seconds")
    parser.add_argument("--ceiling", type=int, default=None, help="max_concurrent_requests")
    parser.add_argument("--no-diet", action="store_true", help="skip the diet and lookback runs")
    parser.add_argument("--no-rate-limit", action="store_true", help="skip the rate-limit run")
    parser.add_argument("--max-rate", action="store_true", help="also the highest rate")
    parser.add_argument("--max-rate-contacts", type=int, default=3000)
    parser.add_argument(
        "--unbuffered",
        choices=["both", "set", "unset"],
        default="both",
        help="PYTHONUNBUFFERED for the timed runs",
    )
    return parser.parse_args(argv)


def print_diet(diet: DietResult) -> None:
    """The diet and lookback table."""
    n = diet.contacts
    print(f"\nSummary diet and lookback: {diet.changed} of {n} contacts "
          f"({100 * diet.changed / n:.1f} %) have new events, {diet.late} an event 3 h late")  # fmt: skip
    print(f"{'run':>38} {'requests':>9} {'per contact':>12} {'(events':>8} {'summaries)':>11} "
          f"{'events':>7} {'summaries':>10} {'seconds':>8}  summaries = full read, "
          "events never emitted")  # fmt: skip
    for run in (diet.full, *diet.incremental):
        summaries, missing = diet.checks.get(run.name, ("", ""))
        print(
            f"{run.name:>38} {run.requests:>9} {run.requests / n:>12.3f} "
            f"{run.requests_of(EVENTS) / n:>8.3f} {run.requests_of(SUMMARIES) / n:>11.3f} "
            f"{run.count(EVENTS):>7} {run.count(SUMMARIES):>10} {run.seconds:>8.2f}  "
            f"{summaries}, {missing}"
        )


def print_rate(rate: RateResult) -> None:
    """One rate-limit run's line."""
    run = rate.run
    env = "PYTHONUNBUFFERED=1" if rate.unbuffered else "PYTHONUNBUFFERED unset"
    print(
        f"\n{rate.latency_ms:g} ms, limit {rate.limit}/{rate.window:g} s, {env}: {run.requests} "
        f"requests in {rate.span:.1f} s ({run.seconds:.1f} s with start-up), {run.rejected} "
        f"answered 429, records as the fake's: {rate.same_records}"
    )
    print(f"  requests per window: {rate.per_window}")
    print(
        f"  utilisation of the limit: every window but the last {100 * rate.before_last:.1f} %, "
        f"whole windows {100 * rate.inner:.1f} %; requests/s over the limit's average rate "
        f"{100 * rate.rate_share:.1f} %"
    )
    for stream in (EVENTS, SUMMARIES):
        print(f"  {stream}: {run.done(stream)}")


def main(argv: list[str] | None = None) -> tuple[DietResult | None, list[RateResult]]:
    """Run the benchmarks and print their numbers side by side."""
    args = parse(argv)
    modes = {"both": [False, True], "set": [True], "unset": [False]}[args.unbuffered]
    print(
        f"{args.contacts} contacts, {args.latency_ms:g} ms per request; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    diet = None if args.no_diet else bench_diet(args)
    rates = [] if args.no_rate_limit else [bench_rate_limit(args, mode) for mode in modes]
    maxed = [(mode, *bench_max_rate(args, mode)) for mode in modes] if args.max_rate else []

    if diet is not None:
        print_diet(diet)
    for rate in rates:
        print_rate(rate)
    for mode, run, cpu in maxed:
        env = "PYTHONUNBUFFERED=1" if mode else "PYTHONUNBUFFERED unset"
        print(
            f"\nhighest rate, {args.max_rate_contacts} contacts, no latency, {env}: "
            f"{run.requests} requests in {run.seconds:.1f} s with start-up; tap CPU {cpu:.1f} s"
            f"\n  {EVENTS}: {run.done(EVENTS)}"
        )
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return diet, rates


if __name__ == "__main__":
    main()
