#!/usr/bin/env bash
# Rehearses the fixed scenario with `sluice rehearse --compare as-written` and prints baseline vs.
# during (p99, max, errors, longest stall), as written vs. the way sluice runs it:
#
#   1,000,000-row table, 8 clients at 2,000 tx/s (80% reads, 15% updates, 5% inserts by key),
#   migration: add a NOT NULL column with a computed default (md5(random()::text)) and index it.
#
#   bench/rehearse.sh            # ROWS=1000000 RATE=2000 CLIENTS=8 PROFILE=release by default
#
# Needs the local PostgreSQL (127.0.0.1:5432, user postgres), psql and python3. Writes the HTML
# report to bench/rehearse-report.html and the JSON to bench/rehearse-report.json.
set -euo pipefail
ROWS=${ROWS:-1000000}
RATE=${RATE:-2000}
CLIENTS=${CLIENTS:-8}
PROFILE=${PROFILE:-release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ "$PROFILE" = release ]; then
  cargo build --release -q -p sluice
else
  cargo build -q -p sluice
fi
SLUICE="$ROOT/target/$PROFILE/sluice"
DB="sluice_bench_rehearse_$$"
WORK=$(mktemp -d)
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qtA)
cleanup() {
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
"${PSQL[@]}" -d "$DB" <<SQL
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id int NOT NULL,
  amount numeric(10,2) NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO orders (customer_id, amount, status, created_at)
  SELECT 1 + g % 50000, (g % 10000) / 100.0, (ARRAY['new','paid','shipped'])[1 + g % 3],
         now() - g * interval '1 second'
  FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE orders;
SQL

mkdir -p "$WORK/migrations"
cat > "$WORK/migrations/20260101000000_order_token.sql" <<'SQL'
-- sluice:up
ALTER TABLE orders ADD COLUMN token text NOT NULL DEFAULT md5(random()::text);
CREATE INDEX orders_token ON orders (token);
-- sluice:down
DROP INDEX orders_token;
ALTER TABLE orders DROP COLUMN token;
SQL

set +e
(cd "$WORK" && DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" "$SLUICE" rehearse \
  --compare as-written --clients "$CLIENTS" --rate "$RATE" --baseline 5s --cooldown 3s \
  --report "$ROOT/bench/rehearse-report.html" --json > "$ROOT/bench/rehearse-report.json")
code=$?
set -e
echo "sluice rehearse exit code: $code (0 pass, 8 users would notice)"

python3 - "$ROOT/bench/rehearse-report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def ms(v):
    return f"{v/1000:.2f} s" if v >= 1000 else (f"{v:.0f} ms" if v >= 10 else f"{v:.2f} ms")
runs = r["runs"]
print(f"{'':28}" + "".join(f"{x['label']:>26}" for x in runs))
print(f"{'':28}" + "".join(f"{'baseline':>13}{'during':>13}" for _ in runs))
rows = [
    ("p99", lambda p: ms(p["p99_ms"])),
    ("max", lambda p: ms(p["max_ms"])),
    ("errors", lambda p: str(p["errors"])),
    ("longest stall", lambda p: ms(p["longest_stall_ms"])),
    ("tx/s", lambda p: f"{p['throughput']:.0f}"),
]
for name, f in rows:
    print(f"  {name:<26}" + "".join(f"{f(x['baseline']):>13}{f(x['during']):>13}" for x in runs))
for x in runs:
    m = x["migration"]["window"]
    print(f"  {x['label']}: migration {ms((m['end_s'] - m['start_s']) * 1000)}, verdict "
          f"{'pass' if x['verdict']['pass'] else 'FAIL'}; generator CPU {x['client_cpu_seconds']:.2f} s "
          f"({x['client_cpu_percent']:.0f}% of one core), {x['achieved_rate']:.0f} tx/s achieved of {x['target_rate']:.0f}")
    for reason in x["verdict"]["reasons"]:
        print(f"      - {reason}")
if len(runs) == 2:
    a, b = runs
    def ratio(k):
        x, y = a["during"][k], b["during"][k]
        return f"{x / y:.1f}x" if y > 0 else ("=" if x == 0 else "inf")
    print(f"  as written / sluice during the migration: p99 {ratio('p99_ms')}, max {ratio('max_ms')}, "
          f"stall {ratio('longest_stall_ms')}")
PY
