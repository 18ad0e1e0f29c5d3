"""Benchmark overlapped export jobs: a backfill of 8 windows, one job after another vs overlapped.

    .venv/bin/python bench/bench_overlap.py                   # 8 windows of 20k receipts, ~1 min
    .venv/bin/python bench/bench_overlap.py --receipts 2000   # smoke run

The fake serves the same generated archive for every window's job, and each job stays pending
on the fake for as long as the tap takes to emit one window (measured first, from the tap's
own log lines of a run whose jobs complete at once), as the issue asks: "a fake whose jobs
take as long as their emission". Both runs write to a file; their records (less the jobs' timings) and their
final STATE must be identical. The ratio overlapped / one-after-another is the number to read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import typing as t
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_export import T0, TOKEN, export_catalog, make_archive  # noqa: E402
from fake_intercom import build  # noqa: E402

from tap_intercom_export.timeutil import iso  # noqa: E402

# Fields of message_export_jobs records that are timings, not data.
TIMINGS = ("poll_seconds", "download_seconds", "created_at", "completed_at")


def config(url: str, windows: int, ahead: int) -> dict[str, t.Any]:
    """One-day windows from T0; a quick poll so the poll interval does not hide the overlap."""
    return {
        "access_token": TOKEN,
        "api_url": url,
        "start_date": iso(T0),
        "end_date": iso(T0 + windows * 86400),
        "export_window_days": 1,
        "export_poll_interval_seconds": 0.05,
        "export_jobs_ahead": ahead,
    }


def emission_seconds(log: bytes) -> list[float]:
    """Per window, seconds from its download to its last row (from the tap's log lines)."""
    spans, begun = [], None
    for line in log.decode(errors="replace").splitlines():
        if "Downloaded export job" in line or ("Window " in line and " done: " in line):
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # noqa: DTZ007
            if "Downloaded" in line:
                begun = stamp
            elif begun is not None:
                spans.append(stamp - begun)
    return spans


def run(
    archive: Path, workdir: Path, windows: int, ahead: int, job_seconds: float
) -> tuple[float, str, dict, list[float]]:
    """Time one full sync; return (seconds, digest of the records, final STATE, emission spans)."""
    import subprocess  # noqa: PLC0415 - child processes only here

    fake = build(token=TOKEN, start=T0, end=T0 + windows * 86400, receipts_per_day=24)
    fake.exports.archive_override = lambda _job, path: os.link(archive, path)
    fake.exports.job_seconds = job_seconds
    fake.start()
    try:
        cfg = workdir / f"config-{ahead}.json"
        cfg.write_text(json.dumps(config(fake.url, windows, ahead)))
        catalog = export_catalog(cfg, workdir)
        out = workdir / "out.jsonl"
        with out.open("wb") as sink, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "tap_intercom_export", "--config", str(cfg), "--catalog", str(catalog)],
                stdout=sink, stderr=err, check=False,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            err.seek(0)
            log = err.read()
            if proc.returncode:
                sys.stderr.write(log.decode(errors="replace")[-3000:])
                raise SystemExit(proc.returncode)
    finally:
        fake.stop()
    digest = hashlib.sha256()
    state: dict = {}
    with out.open("rb") as lines:
        for line in lines:
            msg = json.loads(line)
            if msg["type"] == "RECORD":
                record = {k: v for k, v in msg["record"].items() if k not in TIMINGS}
                digest.update(json.dumps([msg["stream"], record], sort_keys=True).encode())
            elif msg["type"] == "STATE":
                # When the lookback last ran is wall-clock time: the one part that may differ.
                state = json.loads(json.dumps(msg["value"]))
                state.get("bookmarks", {}).get("message_export_jobs", {}).pop(
                    "last_lookback_at", None
                )
    return seconds, digest.hexdigest(), state, emission_seconds(log)


def main(argv: list[str] | None = None) -> dict[str, t.Any]:
    """Calibrate the job time, run both ways, print the table and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=20_000, help="receipts per window")
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-overlap-") as tmp:
        workdir = Path(tmp)
        archive, rows = make_archive(workdir, args.receipts)
        *_, spans = run(archive, workdir, 2, 0, 0.0)
        job_seconds = max(sum(spans) / len(spans), 0.1)
        # Other work on a shared machine stretches emission (not the fake's jobs): when the
        # one-after-another run emitted much slower than calibrated, calibrate on it and redo.
        for _ in range(3):
            sys.stderr.write(f"one window takes {job_seconds:.2f} s to emit: jobs take as long\n")
            seq, seq_digest, seq_state, seq_spans = run(
                archive, workdir, args.windows, 0, job_seconds
            )
            emitted = sum(seq_spans) / len(seq_spans)
            if abs(emitted - job_seconds) <= 0.2 * job_seconds:
                break
            job_seconds = emitted
        ovl, ovl_digest, ovl_state, ovl_spans = run(archive, workdir, args.windows, 1, job_seconds)
    result = {
        "windows": args.windows,
        "rows_per_window": rows,
        "job_seconds": round(job_seconds, 2),
        "emission_s_one_after_another": round(emitted, 2),
        "emission_s_overlapped": round(sum(ovl_spans) / len(ovl_spans), 2),
        "one_after_another_s": round(seq, 2),
        "overlapped_s": round(ovl, 2),
        "ratio": round(ovl / seq, 3),
        "same_records": seq_digest == ovl_digest,
        "same_state": seq_state == ovl_state,
        # Other work on the machine slows emission but not the fake's jobs: report it.
        "load_average": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.windows} windows x {rows:,} rows, jobs pending {job_seconds:.2f} s each")
        print(
            f"one after another: {seq:8.2f} s  (emission {result['emission_s_one_after_another']:.2f} s a window)"
        )
        print(
            f"overlapped:        {ovl:8.2f} s  (emission {result['emission_s_overlapped']:.2f} s a window)"
        )
        print(f"overlapped / one after another: {result['ratio']:.2f}x "
              f"(records identical: {result['same_records']}, final state identical: {result['same_state']})")  # fmt: skip
        print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*result["load_average"]))
    if not (result["same_records"] and result["same_state"]):
        msg = "the overlapped run differs from the one-after-another run"
        raise SystemExit(msg)
    return result


if __name__ == "__main__":
    main()
