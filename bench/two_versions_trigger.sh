#!/usr/bin/env bash
# Issue 14: write throughput of a table while a rename is expanded (two-way sync trigger) vs the
# same table without it, in the same run: pgbench, alternating rounds, same database.
#   [ROUNDS=4] bench/two_versions_trigger.sh [ROWS] [SECONDS] [CLIENTS]
# Needs the local PostgreSQL (postgres@127.0.0.1:5432), pgbench and a built sluice
# (target/release/sluice, else target/debug/sluice).
set -euo pipefail
ROWS=${1:-100000}
SECS=${2:-10}
CLIENTS=${3:-4}
ADMIN=${SLUICE_BENCH_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
DB=sluice_bench_2v_$$
URL=${ADMIN%/*}/$DB
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SLUICE=${SLUICE:-$ROOT/target/release/sluice}
[ -x "$SLUICE" ] || SLUICE=${CARGO_TARGET_DIR:-$ROOT/target}/debug/sluice
WORK=$(mktemp -d)
cleanup() { psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
psql -q "$ADMIN" -c "CREATE DATABASE $DB" >/dev/null
mkdir "$WORK/migrations"
cat > "$WORK/migrations/1_t.sql" <<SQL
CREATE TABLE t (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT 'anon', note int);
CREATE INDEX t_name_idx ON t (name);
INSERT INTO t (name, note) SELECT 'n' || g, g FROM generate_series(1, $ROWS) g;
SQL
cat > "$WORK/migrations/2_rename.sql" <<'SQL'
-- sluice:up
ALTER TABLE t RENAME COLUMN name TO full_name;
-- sluice:down
ALTER TABLE t RENAME COLUMN full_name TO name;
SQL
cat > "$WORK/old.sql" <<SQL
\set id random(1, $ROWS)
UPDATE t SET name = 'u' || :id WHERE id = :id;
INSERT INTO t (name, note) VALUES ('i' || :id, :id);
SQL
cd "$WORK"
run() { # label
  if ! pgbench -n -c "$CLIENTS" -j 2 -T "$SECS" -f old.sql "$URL" >"$WORK/pgbench.out" 2>"$WORK/pgbench.err"; then
    cat "$WORK/pgbench.err" >&2
    exit 1
  fi
  awk -v l="$1" '/^tps/ {printf "%-26s %10.0f tps\n", l, $3}' "$WORK/pgbench.out" | tee -a "$WORK/tps"
}
"$SLUICE" up --database-url "$URL" --to 1 -q
echo "rows=$ROWS seconds=$SECS clients=$CLIENTS (each transaction: one UPDATE and one INSERT through the old name)"
# The order alternates (plain first in odd rounds, expanded first in even ones): every run grows the
# table, so the later run of a round always meets a bigger one.
ROUNDS=${ROUNDS:-4}
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    run "round $round: no trigger"
    "$SLUICE" up --database-url "$URL" -q
    run "round $round: expanded"
    "$SLUICE" rollback --database-url "$URL" -q
  else
    "$SLUICE" up --database-url "$URL" -q
    run "round $round: expanded"
    "$SLUICE" rollback --database-url "$URL" -q
    run "round $round: no trigger"
  fi
done
# Per round: expanded / no trigger; the median of those ratios is the figure to quote.
awk '/no trigger/ {plain[$2]=$(NF-1)} /expanded/ {exp_[$2]=$(NF-1)}
  END {n=0; for (r in plain) if (r in exp_) {q[++n]=exp_[r]/plain[r]; printf "round %s expanded : no trigger %.3f\n", r, q[n]}
       for (i=1;i<=n;i++) for (j=i+1;j<=n;j++) if (q[j]<q[i]) {t=q[i]; q[i]=q[j]; q[j]=t}
       m = (n%2) ? q[(n+1)/2] : (q[n/2]+q[n/2+1])/2
       printf "median expanded : no trigger %.3f (write throughput %.1f%% lower with the sync trigger; goal <= 20%%)\n", m, (1-m)*100}' "$WORK/tps"
