"""Benchmark the message export path against a standard-library floor, side by side.

    .venv/bin/python bench/bench_export.py                 # 1M receipts (~3M rows), ~2-3 min
    .venv/bin/python bench/bench_export.py --rows 20000    # smoke run, a few seconds
    .venv/bin/python bench/bench_export.py --batch         # also time BATCH (jsonl.gz) output

One run generates a zip export of `--rows` receipts plus the derived files, serves it from the
fake Intercom API on loopback, and times in child processes (stdout to /dev/null, peak RSS from
`wait4`):
  * tap     - `python -m tap_intercom_export` full sync of every stream;
  * raw     - the same archive read with zipfile + csv.reader + json.dumps of a dict per row:
              the floor any tap pays in CPython;
  * tap-10k - the same tap on a `--small-rows` export, to show memory does not grow with size.
Ratios (tap/raw time, RSS 1M/10k) are the numbers to compare across machines.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import typing as t
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from exportgen import write_export  # noqa: E402
from fake_intercom import build  # noqa: E402

T0 = 1_700_000_000 - 1_700_000_000 % 86400  # a midnight UTC, 2023-11-14
TOKEN = "bench-token"


@dataclass
class Run:
    """One timed child process."""

    name: str
    rows: int
    seconds: float
    peak_rss_mb: float

    @property
    def rows_per_s(self) -> float:
        """Throughput."""
        return self.rows / self.seconds if self.seconds else 0.0


def raw_baseline(archive: str) -> None:
    """Read every member with the standard library and write one JSON object per row."""
    out = sys.stdout
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            with zf.open(info) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                reader = csv.reader(text)
                header = next(reader)
                for row in reader:
                    out.write(json.dumps(dict(zip(header, row, strict=True))))
                    out.write("\n")
    out.flush()


def timed(name: str, rows: int, argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run `argv` with stdout to /dev/null; wall time and the child's own peak RSS."""
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as null:  # noqa: PTH123
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=null, stderr=err, env=env)
        # wait4 reports this child's rusage alone; RUSAGE_CHILDREN would be the max over all.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.stderr.write(err.read().decode(errors="replace")[-4000:])
            msg = f"{name} exited with {proc.returncode}"
            raise SystemExit(msg)
    return Run(name, rows, seconds, usage.ru_maxrss / 1024)


def tap_config(url: str, workdir: Path, *, batch: bool, compression: str = "gzip") -> Path:
    """A config for one one-day window of the fake; BATCH output under `workdir` if asked."""
    cfg: dict[str, t.Any] = {
        "access_token": TOKEN,
        "api_url": url,
        "start_date": "2023-11-14T00:00:00Z",
        "end_date": "2023-11-15T00:00:00Z",
        "export_window_days": 1,
        # The smallest interval the settings accept: one 1 s wait before the first poll.
        "export_poll_interval_seconds": 1,
    }
    if batch:
        out = workdir / "batches"
        out.mkdir(exist_ok=True)
        cfg["batch_config"] = {
            "encoding": {"format": "jsonl", "compression": compression},
            "storage": {"root": out.as_uri(), "prefix": "batch-"},
            "batch_size": 100_000,
        }
    path = workdir / ("config-batch.json" if batch else "config.json")
    path.write_text(json.dumps(cfg))
    return path


def export_catalog(config: Path, workdir: Path) -> Path:
    """The discovered catalog with only the message export streams selected (no events)."""
    path = workdir / "catalog.json"
    if path.exists():
        return path
    out = subprocess.run(
        [sys.executable, "-m", "tap_intercom_export", "--config", str(config), "--discover"],
        check=True,
        capture_output=True,
    ).stdout
    catalog = json.loads(out)
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = entry["tap_stream_id"].startswith("message_")
    path.write_text(json.dumps(catalog))
    return path


def run_tap(  # noqa: PLR0913 - one bench run's full description, mostly keywords
    name: str, archive: Path, rows: int, workdir: Path, *, batch: bool = False, profile: str = ""
) -> Run:
    """Serve `archive` for every export job of a fresh fake and time a full sync."""
    fake = build(token=TOKEN, start=T0, end=T0 + 86400, receipts_per_day=24)
    fake.exports.status_script = ["completed"]
    fake.exports.archive_override = lambda _job, path: os.link(archive, path)
    fake.start()
    try:
        config = tap_config(fake.url, workdir, batch=batch)
        catalog = export_catalog(config, workdir)
        argv = [sys.executable, "-m", "tap_intercom_export", "--config", str(config),
                "--catalog", str(catalog)]  # fmt: skip
        if profile:
            argv[1:1] = ["-m", "pyinstrument", "--show-all", "-o", profile]
        run = timed(name, rows, argv, env={**os.environ, "PYTHONHASHSEED": "0"})
    finally:
        fake.stop()
    if batch:
        shutil.rmtree(workdir / "batches", ignore_errors=True)
    return run


def make_archive(workdir: Path, receipts: int) -> tuple[Path, int]:
    """Generate the export; its path and its total data rows."""
    path = workdir / f"export-{receipts}.zip"
    started = time.perf_counter()
    counts = write_export(path, receipts, T0)
    total = sum(counts.values())
    sys.stderr.write(
        f"generated {path.name}: {total:,} rows ({counts['receipt']:,} receipts), "
        f"{path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s\n"
    )
    return path, total


def main(argv: list[str] | None = None) -> dict[str, t.Any]:
    """Run the benchmark and print its table; return the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="receipts in the big export")
    parser.add_argument("--small-rows", type=int, default=10_000, help="receipts in the small one")
    parser.add_argument("--batch", action="store_true", help="also time BATCH (jsonl.gz) output")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--profile", metavar="FILE", help="profile one tap run (pyinstrument) to FILE"
    )
    parser.add_argument("--raw", help=argparse.SUPPRESS)  # child mode: the raw baseline
    args = parser.parse_args(argv)
    if args.raw:
        raw_baseline(args.raw)
        return {}

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        workdir = Path(tmp)
        small, small_rows = make_archive(workdir, args.small_rows)
        big, big_rows = make_archive(workdir, args.rows)
        here = str(Path(__file__).resolve())
        if args.profile:
            run = run_tap("tap", big, big_rows, workdir, profile=str(Path(args.profile).resolve()))
            sys.stderr.write(f"profiled {run.rows:,} rows in {run.seconds:.1f} s: {args.profile}\n")
            return {}
        runs = [
            run_tap("tap-small", small, small_rows, workdir),
            timed("raw", big_rows, [sys.executable, here, "--raw", str(big)]),
            run_tap("tap", big, big_rows, workdir),
        ]
        if args.batch:
            runs.append(run_tap("tap-batch", big, big_rows, workdir, batch=True))
    by = {r.name: r for r in runs}
    result = {
        "rows": big_rows,
        "receipts": args.rows,
        "runs": [{**asdict(r), "rows_per_s": round(r.rows_per_s)} for r in runs],
        "tap_over_raw": by["tap"].seconds / by["raw"].seconds,
        "rss_big_over_small": by["tap"].peak_rss_mb / by["tap-small"].peak_rss_mb,
    }
    if "tap-batch" in by:
        result["batch_over_raw"] = by["tap-batch"].seconds / by["raw"].seconds
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'run':<10} {'rows':>11} {'seconds':>8} {'rows/s':>10} {'peak RSS MB':>12}")
        for r in runs:
            print(
                f"{r.name:<10} {r.rows:>11,} {r.seconds:>8.2f} {r.rows_per_s:>10,.0f} {r.peak_rss_mb:>12.1f}"
            )
        print(f"tap / raw time: {result['tap_over_raw']:.2f}x")
        if "batch_over_raw" in result:
            print(f"tap-batch / raw time: {result['batch_over_raw']:.2f}x")
        print(
            f"tap peak RSS {args.rows:,} / {args.small_rows:,} receipts: {result['rss_big_over_small']:.2f}x"
        )
    return result


if __name__ == "__main__":
    main()
