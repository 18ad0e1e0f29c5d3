"""Benchmark whole pipelines side by side: where the time goes between Intercom and the warehouse.

    .venv/bin/python bench/bench_pipeline.py                    # 100k receipts (~305k rows), ~8 min
    .venv/bin/python bench/bench_pipeline.py --receipts 5000    # smoke run
    .venv/bin/python bench/bench_pipeline.py --rss-receipts 1000000   # plus tap RSS with BATCH at 1M

One generated export, served by the fake Intercom API on loopback, goes through:
  * tap > /dev/null                            - the tap alone (RECORD);
  * tap | <DuckDB loader of meltano.yml>       - the embedded warehouse;
  * tap | target-postgres (RECORD)             - meltanolabs target-postgres, as meltano.yml pins it;
  * tap | target-postgres (BATCH jsonl.gz)     - the same with batch_config jsonl + gzip;
  * tap | target-postgres (BATCH parquet)      - the same with Parquet batch files;
  * tap (BATCH files only) at --rss-receipts   - the tap's peak RSS with BATCH on a big export.
The tap and the PostgreSQL pipelines run with PYTHONUNBUFFERED unset and set (`--unbuffered`).
Every pipeline is checked to land every row. The loaders are installed once by Meltano (from
meltano.yml) under .cache/bench-meltano and run directly, `tap | target`, so the timing is the
pipeline's and not Meltano's; pyarrow is added to target-postgres' venv (it reads Parquet batch
files only with it). PostgreSQL is a throwaway server on loopback from the machine's server
binaries (as in tests/test_meltano_postgres.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_export import ENVS, T0, TOKEN, child_env, export_catalog, make_archive, tap_config  # noqa: E402
from fake_intercom import build  # noqa: E402

MELTANO = REPO / ".venv-meltano" / "bin" / "meltano"
SYS_DIR = REPO / ".cache" / "bench-meltano"


@dataclass
class Result:
    """One timed pipeline."""

    name: str
    env: str
    rows: int
    seconds: float
    tap_rss_mb: float

    @property
    def rows_per_s(self) -> float:
        """Throughput of the whole pipeline."""
        return self.rows / self.seconds


def postgres_settings() -> dict[str, t.Any]:
    """target-postgres settings meltano.yml gives users (load method, COPY...), without the address."""
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    plugin = next(p for p in project["plugins"]["loaders"] if p["name"] == "target-postgres")
    address = {"host", "port", "user", "password", "database", "default_target_schema"}
    return {k: v for k, v in plugin.get("config", {}).items() if k not in address}


def loaders() -> dict[str, tuple[str, str]]:
    """(name, executable) of the DuckDB and PostgreSQL loaders meltano.yml names.

    The executable is the one Meltano runs: the DuckDB wrapper's venv also holds upstream's
    `target-duckdb` script, which loses rows (README, "Why target-duckdb is wrapped").
    """
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    found = {
        p["name"]: (p["name"], p.get("executable", p["name"]))
        for p in project["plugins"]["loaders"]
    }
    duck = next(n for n in found if "duckdb" in n)
    return {"duckdb": found[duck], "postgres": found["target-postgres"]}


def install(names: list[str]) -> dict[str, Path]:
    """Install the loaders with Meltano once; their executables."""
    env = {
        **{
            k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TARGET_", "TAP_"))
        },
        "MELTANO_PROJECT_ROOT": str(REPO),
        "MELTANO_SYS_DIR_ROOT": str(SYS_DIR),
        "MELTANO_DATABASE_URI": f"sqlite:///{SYS_DIR / 'meltano.db'}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DISABLE_TRACKING": "true",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "1",
    }
    exes = {}
    for name in names:
        venv = SYS_DIR / "loaders" / name / "venv"
        if not (venv / "bin" / "python").exists():
            if not MELTANO.exists():
                msg = f"{MELTANO} is missing: bash scripts/test.sh installs Meltano"
                raise SystemExit(msg)
            SYS_DIR.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(MELTANO), "install", "loader", name], cwd=REPO, env=env, check=True,
                           capture_output=True, timeout=900)  # fmt: skip
        exes[name] = venv / "bin"
    return exes


def add_pyarrow(bindir: Path) -> None:
    """Pyarrow in a loader's venv: SDK loaders read Parquet batch files only with it."""
    python = bindir / "python"
    have = subprocess.run([str(python), "-c", "import pyarrow"], check=False, capture_output=True)
    if have.returncode:
        uv = REPO / ".venv-meltano" / "bin" / "uv"
        subprocess.run([str(uv), "pip", "install", "-q", "--python", str(python), "pyarrow"],
                       check=True, timeout=900)  # fmt: skip


@dataclass
class Postgres:
    """A throwaway server on loopback."""

    port: int
    root: Path
    stop: t.Callable[[], None]


def start_postgres() -> Postgres:
    """Initdb + pg_ctl as an unprivileged account; fsync off (a benchmark, not a bank)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    bindir = (
        Path(os.environ["PG_BIN"])
        if os.environ.get("PG_BIN")
        else found[-1].parent
        if found
        else None
    )
    if bindir is None:
        msg = "PostgreSQL server binaries not found (set PG_BIN)"
        raise SystemExit(msg)
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    (root / "pw").write_text("bench")
    if as_user:
        shutil.chown(root / "pw", user="postgres")

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "-A", "scram-sha-256",
        f"--pwfile={root / 'pw'}", "--no-sync", "-E", "UTF8")  # fmt: skip
    run("mkdir", str(root / "sock"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root / 'sock'} -c fsync=off -c full_page_writes=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(root / "data"),
        "-l",
        str(root / "log"),
        "-o",
        opts,
        "-w",
        "start",
    )
    subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "warehouse"],
                   check=True, env={**os.environ, "PGPASSWORD": "bench"}, capture_output=True)  # fmt: skip

    def stop() -> None:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
                       capture_output=True, check=False)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)

    return Postgres(port, root, stop)


def timed_pipeline(
    name: str, rows: int, tap: list[str], target: list[str] | None, env: str = "unset"
) -> Result:
    """Run `tap | target` (or tap > /dev/null); wall time and the tap's own peak RSS."""
    with tempfile.TemporaryFile() as tap_err, tempfile.TemporaryFile() as target_err, \
            open(os.devnull, "wb") as null:  # noqa: PTH123  # fmt: skip
        started = time.perf_counter()
        producer = subprocess.Popen(tap, stdout=subprocess.PIPE if target else null,
                                    stderr=tap_err, env=child_env(ENVS[env]))  # fmt: skip
        consumer = None
        if target:
            consumer = subprocess.Popen(
                target, stdin=producer.stdout, stdout=null, stderr=target_err
            )
            producer.stdout.close()  # type: ignore[union-attr]
        _, status, usage = os.wait4(producer.pid, 0)
        producer.returncode = os.waitstatus_to_exitcode(status)
        if consumer:
            consumer.wait()
        seconds = time.perf_counter() - started
        for proc, err in ((producer, tap_err), (consumer, target_err)):
            if proc and proc.returncode:
                err.seek(0)
                sys.stderr.write(err.read().decode(errors="replace")[-3000:])
                msg = f"{name}: {proc.args[0]} exited with {proc.returncode}"
                raise SystemExit(msg)
    return Result(name, env, rows, seconds, usage.ru_maxrss / 1024)


PG_COUNT = """
import json, sys, psycopg
con = psycopg.connect(host="127.0.0.1", port=sys.argv[1], user="postgres", password="bench", dbname="warehouse")
cur = con.cursor()
cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [sys.argv[2]])
total = 0
for (table,) in cur.fetchall():
    if table.startswith("message_") and table != "message_export_jobs":
        cur.execute(f'SELECT count(*) FROM "{sys.argv[2]}"."{table}"')
        total += cur.fetchone()[0]
print(json.dumps(total))
"""

DUCK_COUNT = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
tables = [r[0] for r in con.execute(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'intercom'").fetchall()]
print(json.dumps(sum(con.execute(f'SELECT count(*) FROM intercom."{t}"').fetchone()[0]
                     for t in tables if t.startswith("message_") and t != "message_export_jobs")))
"""


def landed(python: Path, script: str, *args: str) -> int:
    """Rows a loader wrote, counted with the loader's own driver."""
    out = subprocess.run(
        [str(python), "-c", script, *args], check=True, capture_output=True, text=True
    )
    return int(json.loads(out.stdout))


def main(argv: list[str] | None = None) -> dict[str, t.Any]:  # noqa: PLR0915
    """Run every pipeline on one export and print rows/s side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=100_000)
    parser.add_argument(
        "--rss-receipts", type=int, default=0, help="also measure tap RSS with BATCH at this size"
    )
    parser.add_argument(
        "--pg", action="append", default=[], metavar="KEY=JSON",
        help="override a target-postgres setting of meltano.yml, e.g. --pg use_copy=false",
    )  # fmt: skip
    parser.add_argument("--unbuffered", choices=["both", *ENVS], default="both",
                        help="run the tap with PYTHONUNBUFFERED unset, set or both")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    envs = list(ENVS) if args.unbuffered == "both" else [args.unbuffered]
    names = loaders()
    pg_settings = postgres_settings()
    for item in args.pg:
        key, _, value = item.partition("=")
        pg_settings[key] = json.loads(value)
    bins = install([name for name, _ in names.values()])
    (duck_name, duck_cmd), (pg_name, pg_cmd) = names["duckdb"], names["postgres"]
    duck_bin, pg_bin = bins[duck_name], bins[pg_name]
    add_pyarrow(pg_bin)
    load_before = [round(x, 1) for x in os.getloadavg()]
    pg = start_postgres()
    fake = build(token=TOKEN, start=T0, end=T0 + 86400, receipts_per_day=24)
    fake.exports.status_script = ["completed"]
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            workdir = Path(tmp)
            archive, rows = make_archive(workdir, args.receipts)
            fake.exports.archive_override = lambda _job, path: os.link(archive, path)
            fake.start()
            configs = {
                "RECORD": tap_config(fake.url, workdir, batch=False),
                "BATCH jsonl.gz": tap_config(fake.url, workdir, batch=True, fmt="jsonl"),
                "BATCH parquet": tap_config(fake.url, workdir, batch=True, fmt="parquet"),
            }
            catalog = export_catalog(configs["RECORD"], workdir)
            tap = [sys.executable, "-m", "tap_intercom_export", "--catalog", str(catalog),
                   "--config"]  # fmt: skip
            duck_cfg = workdir / "duck.json"
            duck_db = workdir / "bench.duckdb"
            duck_cfg.write_text(
                json.dumps({"filepath": str(duck_db), "default_target_schema": "intercom"})
            )
            results.append(timed_pipeline(f"tap | {duck_cmd}", rows, [*tap, str(configs["RECORD"])],
                                          [str(duck_bin / duck_cmd), "--config", str(duck_cfg)]))  # fmt: skip
            assert landed(duck_bin / "python", DUCK_COUNT, str(duck_db)) == rows, "DuckDB lost rows"
            for env in envs:
                results.append(timed_pipeline("tap > /dev/null", rows, [*tap, str(configs["RECORD"])],
                                              None, env))  # fmt: skip
                for mode, cfg in configs.items():
                    schema = f"bench_{mode.split()[-1].replace('.', '_').lower()}_{env}"
                    pg_cfg = workdir / f"pg-{schema}.json"
                    pg_cfg.write_text(json.dumps({
                        **pg_settings, "host": "127.0.0.1", "port": pg.port, "user": "postgres",
                        "password": "bench", "database": "warehouse", "default_target_schema": schema,
                    }))  # fmt: skip
                    results.append(timed_pipeline(f"tap | target-postgres ({mode})", rows, [*tap, str(cfg)],
                                                  [str(pg_bin / pg_cmd), "--config", str(pg_cfg)], env))  # fmt: skip
                    assert landed(pg_bin / "python", PG_COUNT, str(pg.port), schema) == rows, (
                        f"{mode} lost rows"
                    )
                    shutil.rmtree(workdir / "batches", ignore_errors=True)
            archive.unlink()
            if args.rss_receipts:
                big, big_rows = make_archive(workdir, args.rss_receipts)
                fake.exports.archive_override = lambda _job, path: os.link(big, path)
                for mode in ("BATCH jsonl.gz", "BATCH parquet"):
                    results.append(timed_pipeline(f"tap {mode} files, {args.rss_receipts:,} receipts",
                                                  big_rows, [*tap, str(configs[mode])], None))  # fmt: skip
                    shutil.rmtree(workdir / "batches", ignore_errors=True)
    finally:
        fake.stop()
        pg.stop()
    by = {(r.name, r.env): r for r in results}
    ratios = {
        env: {
            mode: by[f"tap | target-postgres ({mode})", env].rows_per_s
            / by["tap | target-postgres (RECORD)", env].rows_per_s
            for mode in ("BATCH jsonl.gz", "BATCH parquet")
        }
        for env in envs
    }
    out = {
        "receipts": args.receipts,
        "runs": [{"name": r.name, "PYTHONUNBUFFERED": r.env, "rows": r.rows, "seconds": round(r.seconds, 2),
                  "rows_per_s": round(r.rows_per_s), "tap_peak_rss_mb": round(r.tap_rss_mb, 1)} for r in results],
        "postgres_throughput_over_record": ratios,
        "target_postgres_settings": pg_settings,
        "load_average": [load_before, [round(x, 1) for x in os.getloadavg()]],
    }  # fmt: skip
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{'pipeline':<44} {'PYTHONUNBUFFERED':<17} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'tap RSS MB':>11}")  # fmt: skip
        for r in results:
            print(f"{r.name:<44} {r.env:<17} {r.rows:>10,} {r.seconds:>8.2f} {r.rows_per_s:>9,.0f} {r.tap_rss_mb:>11.1f}")  # fmt: skip
        print(f"target-postgres settings (meltano.yml + --pg): {json.dumps(pg_settings)}")
        for env, by_mode in ratios.items():
            text = ", ".join(f"{mode} {ratio:.2f}x" for mode, ratio in by_mode.items())
            print(
                f"PostgreSQL throughput / RECORD, PYTHONUNBUFFERED {env}: {text}; same row counts"
            )
        print("load average (1, 5, 15 min) before / after: {} / {}".format(*out["load_average"]))
    return out


if __name__ == "__main__":
    main()
