#!/usr/bin/env bash
# The workload generator's own cost and the highest rate it sustains against the local
# PostgreSQL: rehearses a trivial migration (ADD COLUMN, nullable) on a 100,000-row table at rising
# rates and prints asked vs. done tx/s, p99, and the generator's CPU (getrusage of sluice itself).
#
#   bench/rehearse-rate.sh            # RATES="2000 5000 10000 20000" CLIENTS=8 PROFILE=release
set -euo pipefail
RATES=${RATES:-"2000 5000 10000 20000"}
CLIENTS=${CLIENTS:-8}
PROFILE=${PROFILE:-release}
MIX=${MIX:-read=80,update=15,insert=5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ "$PROFILE" = release ]; then cargo build --release -q -p sluice; else cargo build -q -p sluice; fi
SLUICE="$ROOT/target/$PROFILE/sluice"
DB="sluice_bench_rate_$$"
WORK=$(mktemp -d)
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qtA)
cleanup() {
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
"${PSQL[@]}" -d "$DB" -c "CREATE TABLE items (id bigserial PRIMARY KEY, n int NOT NULL, s text NOT NULL);
  INSERT INTO items (n, s) SELECT g % 1000, md5(g::text) FROM generate_series(1, 100000) g;"
"${PSQL[@]}" -d "$DB" -c "VACUUM ANALYZE items"
mkdir -p "$WORK/migrations"
printf -- '-- sluice:up\nALTER TABLE items ADD COLUMN note text;\n' > "$WORK/migrations/20260101000000_note.sql"
printf "%8s %8s %10s %10s %12s %14s %10s\n" asked done "p50" "p99" "cpu s" "cpu % of core" "µs/tx"
for rate in $RATES; do
  out=$(cd "$WORK" && DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" "$SLUICE" -q rehearse \
    --clients "$CLIENTS" --rate "$rate" --mix "$MIX" --baseline 5s --cooldown 0s --json || true)
  python3 -c '
import json, sys
r = json.loads(sys.stdin.read())["runs"][0]
b = r["baseline"]
tx = b["transactions"] + r["during"]["transactions"] + r["cooldown"]["transactions"]
cpu = r["client_cpu_seconds"]
print("%8.0f %8.0f %8.2fms %8.1fms %12.2f %13.0f%% %10.1f" % (r["target_rate"], r["achieved_rate"], b["p50_ms"], b["p99_ms"], cpu, r["client_cpu_percent"], 1e6 * cpu / max(tx, 1)))
' <<<"$out"
done
