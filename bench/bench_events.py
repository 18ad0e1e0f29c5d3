"""Benchmark contact_events: one request at a time vs the default concurrency, same fake API.

    .venv/bin/python bench/bench_events.py                      # 400 contacts, 40 ms a request
    .venv/bin/python bench/bench_events.py --contacts 100       # quicker
    .venv/bin/python bench/bench_events.py --rate-limit 100     # also a run under a low rate limit

Each run is a full first sync of `contact_events` (`python -m tap_intercom_export`, stdout to
/dev/null) against a fresh fake Intercom API on loopback that answers every request after
`--latency` seconds. Times are wall-clock for the whole process, start-up included; the
ratio default/sequential is the number to compare (the issue asks for at most 0.25).
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
from dataclasses import dataclass
from pathlib import Path

from tap_intercom_export.fake_intercom import build
from tap_intercom_export.tap import TapIntercomExport

TOKEN = "bench-token"
STREAM = "contact_events"


@dataclass
class Run:
    """One timed sync."""

    name: str
    seconds: float
    records: int
    requests: int
    rejected: int
    summary: str


def catalog_for(config: dict, stream: str) -> dict:
    """The discovered catalog with only `stream` selected."""
    catalog = TapIntercomExport(config=config).catalog_dict
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = entry["tap_stream_id"] == stream
    return catalog


def run_once(
    name: str, args: argparse.Namespace, workdir: Path, settings: dict, **fake_args: t.Any
) -> Run:
    """Start a fresh fake, run one full sync in a child process, and time it."""
    fake = build(
        token=TOKEN, start=0, end=86400, contacts=args.contacts, latency=args.latency, **fake_args
    )
    fake.start()
    try:
        config = {"access_token": TOKEN, "api_url": fake.url, "event_settle_seconds": 0, **settings}
        config_path = workdir / f"config-{re.sub(r'[^a-z0-9]+', '-', name)}.json"
        catalog_path = workdir / "catalog.json"
        config_path.write_text(json.dumps(config))
        catalog_path.write_text(json.dumps(catalog_for(config, STREAM)))
        argv = [
            sys.executable,
            "-m",
            "tap_intercom_export",
            "--config",
            str(config_path),
            "--catalog",
            str(catalog_path),
        ]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            proc = subprocess.run(argv, stdout=out, stderr=err, check=False)
            seconds = time.perf_counter() - started
            err.seek(0)
            log = err.read().decode(errors="replace")
            if proc.returncode != 0:
                sys.stderr.write(log[-4000:])
                raise SystemExit(f"{name} run exited with {proc.returncode}")
            out.seek(0)
            records = sum(
                1 for line in out if b'"type":"RECORD"' in line or b'"type": "RECORD"' in line
            )
        done = re.search(rf"{STREAM} done: (.*)", log)
        rejected = fake.limiter.rejected if fake.limiter else 0
        return Run(name, seconds, records, len(fake.log), rejected, done.group(1) if done else "")
    finally:
        fake.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the sequential and default syncs and print both times and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=400)
    parser.add_argument(
        "--latency", type=float, default=0.04, help="seconds the fake takes per request"
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="also run the default under this many requests per --rate-window",
    )
    parser.add_argument("--rate-window", type=float, default=1.0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        workdir = Path(tmp)
        print(f"{args.contacts} contacts, {args.latency * 1000:.0f} ms per request", flush=True)
        runs = [
            run_once("sequential", args, workdir, {"max_concurrent_requests": 1}),
            run_once("default", args, workdir, {}),
        ]
        if args.rate_limit:
            runs.append(
                run_once(
                    f"default, {args.rate_limit}/{args.rate_window:g}s limit",
                    args,
                    workdir,
                    {},
                    rate_limit=args.rate_limit,
                    rate_window=args.rate_window,
                )
            )
    for run in runs:
        print(
            f"{run.name:>28}: {run.seconds:6.2f} s  {run.records} records  {run.requests} requests"
            f"  ({run.rejected} answered 429)\n{'':>30}{run.summary}"
        )
    sequential, default = runs[0], runs[1]
    if default.records != sequential.records:
        raise SystemExit("the runs emitted different numbers of records")
    ratio = default.seconds / sequential.seconds
    print(
        f"default / sequential = {ratio:.3f} ({sequential.seconds / default.seconds:.1f}x faster)"
    )


if __name__ == "__main__":
    main()
