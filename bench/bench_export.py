"""Benchmark the message export path against a standard-library floor, side by side.

    .venv/bin/python bench/bench_export.py                  # 1M receipts (~3M rows), ~15 min
    .venv/bin/python bench/bench_export.py --rows 20000     # smoke run, well under a minute
    .venv/bin/python bench/bench_export.py --modes record --unbuffered unset   # one mode, one env

One run generates a zip export of `--rows` receipts plus the derived files, serves it from the
fake Intercom API on loopback, and times in child processes (stdout to /dev/null, peak RSS from
`wait4`), once with PYTHONUNBUFFERED unset and once set (some runners set it):
  * raw      - the same archive read with zipfile + csv.reader + json.dumps of a dict per row:
               the floor any tap pays in CPython;
  * record   - `python -m tap_intercom_export`, every message_* stream, RECORD messages;
  * jsonl    - the same with BATCH files, jsonl + gzip;
  * parquet  - the same with BATCH files, Parquet (needs pyarrow: the `parquet` extra);
  * startup  - the tap with no stream selected: imports, settings, catalog, exit (its bytecode
               compiled first, as an installed package has it);
  * small    - RECORD on a `--small-rows` export: memory must not grow with the export's size,
               and its time is mostly start-up and the first poll of the job.
Ratios (mode / raw time of the same environment) are the numbers to compare across machines.
Then every mode's records are checked against the RECORD run's (same rows per stream, same
values: `--no-check` skips it). The load average is printed with each table: the numbers mean
little on a busy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
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
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from exportgen import write_export  # noqa: E402
from fake_intercom import FakeIntercom, build  # noqa: E402

T0 = 1_700_000_000 - 1_700_000_000 % 86400  # a midnight UTC, 2023-11-14
TOKEN = "bench-token"
MODES = ("record", "jsonl", "parquet")
#: What each BATCH mode puts in `batch_config.encoding`.
ENCODINGS = {"jsonl": {"format": "jsonl", "compression": "gzip"}, "parquet": {"format": "parquet"}}
#: The environments a mode is timed in: PYTHONUNBUFFERED unset (None) and set.
ENVS = {"unset": None, "set": "1"}


@dataclass
class Run:
    """One timed child process."""

    name: str
    env: str
    rows: int
    seconds: float
    peak_rss_mb: float
    #: The child's own CPU time (user + system, all its threads): less moved by the machine's
    #: load than wall time.
    cpu_seconds: float = 0.0

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


def child_env(unbuffered: str | None) -> dict[str, str]:
    """This environment with PYTHONUNBUFFERED as asked and a fixed hash seed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered is not None:
        env["PYTHONUNBUFFERED"] = unbuffered
    return {**env, "PYTHONHASHSEED": "0"}


def timed(
    name: str, env: str, rows: int, argv: list[str], stdout: t.IO[bytes] | None = None
) -> Run:
    """Run `argv` with stdout to /dev/null (or `stdout`); wall time and the child's own peak RSS."""
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as null:  # noqa: PTH123
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout or null, stderr=err, env=child_env(ENVS[env]))
        # wait4 reports this child's rusage alone; RUSAGE_CHILDREN would be the max over all.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.stderr.write(err.read().decode(errors="replace")[-4000:])
            msg = f"{name} exited with {proc.returncode}"
            raise SystemExit(msg)
    return Run(name, env, rows, seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def tap_config(
    url: str, workdir: Path, *, batch: bool, compression: str = "gzip", fmt: str = "jsonl"
) -> Path:
    """A config for one one-day window of the fake; BATCH output under `workdir` if asked."""
    cfg: dict[str, t.Any] = {
        "access_token": TOKEN,
        "api_url": url,
        "start_date": "2023-11-14T00:00:00Z",
        "end_date": "2023-11-15T00:00:00Z",
        "export_window_days": 1,
        # The smallest interval the settings accept: the first polls come sooner anyway.
        "export_poll_interval_seconds": 1,
    }
    if batch:
        out = workdir / "batches"
        out.mkdir(exist_ok=True)
        encoding = {**ENCODINGS[fmt]}
        if fmt == "jsonl":
            encoding["compression"] = compression
        cfg["batch_config"] = {
            "encoding": encoding,
            "storage": {"root": out.as_uri(), "prefix": "batch-"},
            "batch_size": 100_000,
        }
    path = workdir / (f"config-{fmt}.json" if batch else "config.json")
    path.write_text(json.dumps(cfg))
    return path


def export_catalog(config: Path, workdir: Path, *, select: bool = True) -> Path:
    """The discovered catalog with only the message export streams selected (or none)."""
    path = workdir / ("catalog.json" if select else "catalog-none.json")
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
                md["metadata"]["selected"] = select and entry["tap_stream_id"].startswith(
                    "message_"
                )
    path.write_text(json.dumps(catalog))
    return path


@contextlib.contextmanager
def served(archive: Path) -> t.Iterator[FakeIntercom]:
    """The fake Intercom API serving `archive` for every export job, stopped afterwards."""
    fake = build(token=TOKEN, start=T0, end=T0 + 86400, receipts_per_day=24)
    fake.exports.status_script = ["completed"]
    fake.exports.archive_override = lambda _job, path: os.link(archive, path)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def tap_argv(config: Path, catalog: Path, profile: str = "") -> list[str]:
    """The tap's command line."""
    argv = [sys.executable, "-m", "tap_intercom_export", "--config", str(config),
            "--catalog", str(catalog)]  # fmt: skip
    if profile:
        argv[1:1] = ["-m", "pyinstrument", "--show-all", "-o", profile]
    return argv


def run_mode(  # noqa: PLR0913 - one bench run's full description, mostly keywords
    mode: str,
    env: str,
    archive: Path,
    rows: int,
    workdir: Path,
    *,
    name: str = "",
    profile: str = "",
    stdout: t.IO[bytes] | None = None,
) -> Run:
    """Serve `archive` for every export job of a fresh fake and time a full sync in `mode`."""
    shutil.rmtree(workdir / "batches", ignore_errors=True)
    with served(archive) as fake:
        config = tap_config(fake.url, workdir, batch=mode != "record", fmt=mode)
        catalog = export_catalog(config, workdir)
        return timed(name or mode, env, rows, tap_argv(config, catalog, profile), stdout)


def run_startup(env: str, archive: Path, workdir: Path) -> Run:
    """Time the tap with nothing selected: start-up and shutdown only."""
    with served(archive) as fake:
        config = tap_config(fake.url, workdir, batch=False)
        catalog = export_catalog(config, workdir, select=False)
        return timed("startup", env, 0, tap_argv(config, catalog))


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


# -- same records --------------------------------------------------------------------------


class Digest:
    """Rows per stream and an order-free hash of their values (job id aside: it differs)."""

    def __init__(self) -> None:
        """Nothing seen."""
        self.rows: Counter[str] = Counter()
        self.hashes: Counter[str] = Counter()

    def add(self, stream: str, record: dict[str, t.Any]) -> None:
        """Count one record; times as RFC 3339 text (Parquet gives them back as datetimes)."""
        values = {
            k: v.isoformat() if isinstance(v, datetime) else v
            for k, v in record.items()
            if k != "export_job_id"
        }
        text = json.dumps(values, sort_keys=True, separators=(",", ":"))
        self.rows[stream] += 1
        self.hashes[stream] += int.from_bytes(
            hashlib.blake2b(text.encode(), digest_size=8).digest()
        )

    def same_as(self, other: Digest) -> bool:
        """Same rows and values in every stream."""
        return self.rows == other.rows and self.hashes == other.hashes


def record_digest(archive: Path, rows: int, workdir: Path) -> Digest:
    """The RECORD run's records, read from a file (an untimed run)."""
    digest = Digest()
    with tempfile.TemporaryFile(dir=workdir) as out:
        run_mode("record", "unset", archive, rows, workdir, stdout=out)
        out.seek(0)
        for line in out:
            message = json.loads(line)
            if message["type"] == "RECORD" and message["stream"] != "message_export_jobs":
                digest.add(message["stream"], message["record"])
    return digest


def batch_digest(mode: str, archive: Path, rows: int, workdir: Path) -> Digest:
    """A BATCH run's records, read back from its files as SDK loaders read them."""
    digest = Digest()
    with tempfile.TemporaryFile(dir=workdir) as out:
        run_mode(mode, "unset", archive, rows, workdir, stdout=out)
        out.seek(0)
        batches = [json.loads(line) for line in out if b'"BATCH"' in line]
    for message in batches:
        path = urlsplit(message["manifest"][0]).path
        if mode == "parquet":
            import pyarrow.parquet as pq  # noqa: PLC0415 - only for this mode

            records = pq.read_table(path).to_pylist()
        else:
            import gzip  # noqa: PLC0415

            with gzip.open(path, "rt", encoding="utf-8") as fh:
                records = [json.loads(line) for line in fh]
        for record in records:
            digest.add(message["stream"], record)
    return digest


# -- the run -------------------------------------------------------------------------------


def precompile() -> None:
    """Write the tap's bytecode once, as installing a package does.

    With PYTHONDONTWRITEBYTECODE set (this machine sets it) an editable install compiles every
    module again at each start, which is not what start-up costs once installed.
    """
    code = "import tap_intercom_export, pathlib; print(pathlib.Path(tap_intercom_export.__file__).parent)"
    where = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run([sys.executable, "-m", "compileall", "-q", where], check=True,
                   capture_output=True)  # fmt: skip


def have_pyarrow() -> bool:
    """Whether the Parquet mode can run."""
    return subprocess.run([sys.executable, "-c", "import pyarrow"], check=False).returncode == 0


def print_table(runs: list[Run], result: dict[str, t.Any], args: argparse.Namespace) -> None:
    """The runs and the ratios, one environment after the other."""
    print(
        f"{'run':<9} {'PYTHONUNBUFFERED':<17} {'rows':>11} {'seconds':>8} {'rows/s':>10} {'RSS MB':>7} {'CPU s':>7}"
    )
    for r in runs:
        print(f"{r.name:<9} {r.env:<17} {r.rows:>11,} {r.seconds:>8.2f} {r.rows_per_s:>10,.0f} {r.peak_rss_mb:>7.1f} {r.cpu_seconds:>7.2f}")  # fmt: skip
    for env, ratios in result["over_raw"].items():
        text = ", ".join(f"{mode} {ratio:.2f}x" for mode, ratio in ratios.items())
        print(f"time / raw, PYTHONUNBUFFERED {env}: {text}")
    for env, ratios in result["cpu_over_raw"].items():
        text = ", ".join(f"{mode} {ratio:.2f}x" for mode, ratio in ratios.items())
        print(f"CPU time / raw CPU time, PYTHONUNBUFFERED {env}: {text}")
    print(f"record peak RSS {args.rows:,} / {args.small_rows:,} receipts: {result['rss_big_over_small']:.2f}x")  # fmt: skip
    if "same_records" in result:
        print("same records as RECORD: " + ", ".join(f"{m} {'yes' if ok else 'NO'}" for m, ok in result["same_records"].items()))  # fmt: skip
    print("load average (1, 5, 15 min) before / after: {} / {}".format(*result["load_average"]))


def main(argv: list[str] | None = None) -> dict[str, t.Any]:
    """Run the benchmark and print its table; return the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="receipts in the big export")
    parser.add_argument("--small-rows", type=int, default=10_000, help="receipts in the small one")
    parser.add_argument("--modes", default=",".join(MODES), help="record,jsonl,parquet (any of)")
    parser.add_argument("--unbuffered", choices=["both", *ENVS], default="both",
                        help="time with PYTHONUNBUFFERED unset, set or both")  # fmt: skip
    parser.add_argument("--no-check", action="store_true", help="skip the same-records check")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--profile", metavar="FILE", help="profile one run of the first mode (pyinstrument)"
    )
    parser.add_argument("--raw", help=argparse.SUPPRESS)  # child mode: the raw baseline
    args = parser.parse_args(argv)
    if args.raw:
        raw_baseline(args.raw)
        return {}
    modes = [m for m in args.modes.split(",") if m]
    if "parquet" in modes and not have_pyarrow():
        sys.stderr.write("parquet: pyarrow is not installed (pip install '.[parquet]'): skipped\n")
        modes.remove("parquet")
    envs = list(ENVS) if args.unbuffered == "both" else [args.unbuffered]
    precompile()
    load_before = [round(x, 1) for x in os.getloadavg()]

    runs: list[Run] = []
    same: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        workdir = Path(tmp)
        small, small_rows = make_archive(workdir, args.small_rows)
        big, big_rows = make_archive(workdir, args.rows)
        here = str(Path(__file__).resolve())
        if args.profile:
            run = run_mode(modes[0], envs[0], big, big_rows, workdir,
                           profile=str(Path(args.profile).resolve()))  # fmt: skip
            sys.stderr.write(f"profiled {run.rows:,} rows in {run.seconds:.1f} s: {args.profile}\n")
            return {}
        for env in envs:
            runs.append(run_startup(env, small, workdir))
            runs.append(run_mode("record", env, small, small_rows, workdir, name="small"))
            runs.append(timed("raw", env, big_rows, [sys.executable, here, "--raw", str(big)]))
            runs.extend(run_mode(mode, env, big, big_rows, workdir) for mode in modes)
        if not args.no_check:
            reference = record_digest(big, big_rows, workdir)
            assert sum(reference.rows.values()) == big_rows, "RECORD lost rows"
            same["record"] = True
            for mode in modes:
                if mode != "record":
                    same[mode] = batch_digest(mode, big, big_rows, workdir).same_as(reference)
    by = {(r.name, r.env): r for r in runs}
    result: dict[str, t.Any] = {
        "rows": big_rows,
        "receipts": args.rows,
        "runs": [{**asdict(r), "rows_per_s": round(r.rows_per_s)} for r in runs],
        "over_raw": {
            env: {m: by[m, env].seconds / by["raw", env].seconds for m in modes} for env in envs
        },
        "cpu_over_raw": {
            env: {m: by[m, env].cpu_seconds / by["raw", env].cpu_seconds for m in modes}
            for env in envs
        },
        "rss_big_over_small": by["record", envs[0]].peak_rss_mb / by["small", envs[0]].peak_rss_mb
        if "record" in modes
        else float("nan"),
        "load_average": [load_before, [round(x, 1) for x in os.getloadavg()]],
    }
    if same:
        result["same_records"] = same
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(runs, result, args)
    return result


if __name__ == "__main__":
    main()
