#!/usr/bin/env bash
# The README's first command: on a fresh machine, install Meltano and the plugins, start the
# fake Intercom API (packages/fake-intercom, installed into .venv) on loopback, `meltano run
# tap-intercom-export target-duckdb`, and print the tables that landed with their row counts next
# to the records the tap emitted for each stream (its record_count metrics, turned on for the
# run); any difference fails the demo. Needs python3 (3.10+) and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/meltano-env.sh
. scripts/meltano-env.sh

TOKEN=demo-token  # the demo environment's access_token in meltano.yml
# Overridable so that the test of this script leaves the work tree alone.
SYS_DIR=${MELTANO_SYS_DIR_ROOT:-$ROOT/.meltano}
DB=${DEMO_DB:-output/demo.duckdb}
WORK=$(mktemp -d)
FAKE_PID=
cleanup() {
    if [ -n "$FAKE_PID" ]; then
        kill "$FAKE_PID" 2>/dev/null || true
        wait "$FAKE_PID" 2>/dev/null || true  # it exits 0 on SIGTERM, after removing its archives
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '==> %s\n' "$*"; }
started=$SECONDS

step "Installing Meltano $MELTANO_VERSION into .venv-meltano"
ensure_meltano
export MELTANO_ENVIRONMENT=demo
step "Installing the plugins (tap-intercom-export, target-duckdb)"
"$MELTANO_BIN" install tap-intercom-export target-duckdb >"$WORK/install.log" 2>&1 \
    || { cat "$WORK/install.log" >&2; exit 1; }

step "Installing the fake Intercom API (packages/fake-intercom) into .venv"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Installed once: a test runs this script while other tests import the fake from .venv.
.venv/bin/python -c "import fake_intercom.server" 2>/dev/null \
    || .venv/bin/python -m pip install -q --disable-pip-version-check -e packages/fake-intercom

step "Starting the fake Intercom API on loopback (28 days of messages)"
.venv/bin/python -m fake_intercom \
    --port 0 --token "$TOKEN" --days 28 --receipts-per-day 48 --url-file "$WORK/url" \
    >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 100); do
    [ -s "$WORK/url" ] && break
    kill -0 "$FAKE_PID" 2>/dev/null || { cat "$WORK/fake.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$WORK/url" ] || { echo "the fake Intercom API did not start" >&2; exit 1; }
export TAP_INTERCOM_EXPORT_API_URL
TAP_INTERCOM_EXPORT_API_URL=$(cat "$WORK/url")

step "meltano run tap-intercom-export target-duckdb  (into $DB)"
mkdir -p "$(dirname "$DB")"
rm -f "$DB" "$DB.wal"
export TARGET_DUCKDB_FILEPATH
TARGET_DUCKDB_FILEPATH=$(cd "$(dirname "$DB")" && pwd)/$(basename "$DB")
# Each demo starts from scratch rather than from the last demo's state. Not with --full-refresh:
# that makes Meltano 4.4.1 merge the new state into the stored one, and its merge fails on a
# bookmark that went from null to an object ("Failed to persist state") on the second demo.
"$MELTANO_BIN" state clear --force demo:tap-intercom-export-to-target-duckdb >"$WORK/state.log" 2>&1 \
    || { cat "$WORK/state.log" >&2; exit 1; }
# JSON at level info, with the tap's METRIC lines on for this run only (they are off by default):
# its record_count metrics, with their stream, are what the landed rows are compared with.
if ! TAP_INTERCOM_EXPORT_METRICS_LOG_LEVEL=info \
    "$MELTANO_BIN" --log-level=info --log-format=json run tap-intercom-export target-duckdb \
    >"$WORK/run.log" 2>&1; then
    tail -n 40 "$WORK/run.log" >&2
    exit 1
fi

"$SYS_DIR/loaders/target-duckdb/venv/bin/python" - "$DB" "$WORK/run.log" <<'EOF'
import json
import sys

import duckdb

path, log = sys.argv[1], sys.argv[2]
# The SDK logs a record_count metric per stream (several on long streams, one per context):
# their sum is what the tap emitted. Meltano's JSON log keeps it under "metric_info".
emitted: dict[str, int] = {}
with open(log, encoding="utf-8", errors="replace") as lines:
    for line in lines:
        try:
            metric = json.loads(line).get("metric_info") or {}
        except ValueError:
            continue
        if metric.get("metric") == "record_count":
            stream = metric["tags"]["stream"]
            emitted[stream] = emitted.get(stream, 0) + metric["value"]
if not emitted:
    sys.exit(f"demo FAILED: no record_count metrics in the run's log ({log}), cannot check the load")

con = duckdb.connect(path, read_only=True)
landed = {
    table: con.execute(f'SELECT count(*) FROM intercom."{table}"').fetchone()[0]
    for (table,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'intercom'"
    ).fetchall()
}
print(f"\nLanded in {path}:")
print(f"  {'table':<42} {'rows':>7} {'emitted':>8}")
wrong = []
for table in sorted(set(landed) | {s for s, n in emitted.items() if n}):
    rows, sent = landed.get(table, 0), emitted.get(table, 0)
    print(f"  {'intercom.' + table:<42} {rows:>7} {sent:>8}{'' if rows == sent else '  <-- MISMATCH'}")
    if rows != sent:
        wrong.append(f"intercom.{table} holds {rows} rows, the tap emitted {sent}")
if wrong:
    sys.exit("demo FAILED, the load lost or added rows:\n  " + "\n  ".join(wrong))
print(f"\n  landed = emitted for all {len(landed)} tables ({sum(landed.values())} rows)")
(kind,) = con.execute(
    "SELECT data_type FROM information_schema.columns "
    "WHERE table_name = 'message_receipts' AND column_name = 'received_at'"
).fetchone()
print(f"  message_receipts.received_at is {kind}")
EOF
cat <<EOF

Done in $((SECONDS - started)) s. Query it with the loader's DuckDB:
  ${SYS_DIR#"$ROOT/"}/loaders/target-duckdb/venv/bin/python -c "import duckdb; print(duckdb.connect('$DB').sql('FROM intercom.message_receipts LIMIT 5'))"
EOF
