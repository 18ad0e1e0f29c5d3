#!/usr/bin/env bash
# The README's first command: on a fresh machine, install Meltano and the plugins, start the
# bundled fake Intercom API on loopback, `meltano run tap-intercom-export target-duckdb`, and
# print the tables that landed with their row counts. Needs python3 (3.10+) and PyPI.
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
        wait "$FAKE_PID" 2>/dev/null || true  # 143: it died of our SIGTERM, as it should
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

step "Starting the fake Intercom API on loopback (28 days of messages)"
"$SYS_DIR/extractors/tap-intercom-export/venv/bin/fake-intercom" \
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
# --full-refresh: each demo starts from scratch rather than from the last demo's state.
if ! "$MELTANO_BIN" run --full-refresh tap-intercom-export target-duckdb >"$WORK/run.log" 2>&1; then
    tail -n 40 "$WORK/run.log" >&2
    exit 1
fi

"$SYS_DIR/loaders/target-duckdb/venv/bin/python" - "$DB" <<'EOF'
import sys

import duckdb

path = sys.argv[1]
con = duckdb.connect(path, read_only=True)
tables = con.execute(
    "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
).fetchall()
print(f"\nLanded in {path}:")
print(f"  {'table':<42} {'rows':>7}")
for schema, table in tables:
    (n,) = con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()
    print(f"  {schema + '.' + table:<42} {n:>7}")
(kind,) = con.execute(
    "SELECT data_type FROM information_schema.columns "
    "WHERE table_name = 'message_receipts' AND column_name = 'received_at'"
).fetchone()
print(f"\n  message_receipts.received_at is {kind}")
EOF
cat <<EOF

Done in $((SECONDS - started)) s. Query it with the loader's DuckDB:
  ${SYS_DIR#"$ROOT/"}/loaders/target-duckdb/venv/bin/python -c "import duckdb; print(duckdb.connect('$DB').sql('FROM intercom.message_receipts LIMIT 5'))"
EOF
