#!/usr/bin/env bash
# Shows a backfill pausing on replica lag with a real streaming replica of the local PostgreSQL:
# the replica's replay is paused, `sluice backfill --max-replica-lag-ms 1000` must stop sending
# batches, and finish once replay resumes.
#
#   bench/replica_lag.sh
#
# Needs root on a machine like the CI one: it adds `host replication all 127.0.0.1/32 trust` to the
# local server's pg_hba.conf when missing (and reloads it), takes a base backup into a temp dir and
# starts the replica as the postgres user on port 5499. Everything but the pg_hba line is removed
# at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --release -q -p sluice
SLUICE="$ROOT/target/release/sluice"
PORT=5499
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
WORK=$(mktemp -d)
chown postgres "$WORK"
DB=sluice_replica_lag
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qtA)
cleanup() {
  su postgres -c "$BIN/pg_ctl -D $WORK/data stop -m immediate" >/dev/null 2>&1 || true
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

HBA=$("${PSQL[@]}" -d postgres -c "SHOW hba_file")
if ! grep -q "^host replication all 127.0.0.1/32 trust" "$HBA"; then
  echo "host replication all 127.0.0.1/32 trust" >> "$HBA"
  "${PSQL[@]}" -d postgres -c "SELECT pg_reload_conf()" >/dev/null
fi
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
"${PSQL[@]}" -d "$DB" -c "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, pad text)" \
  -c "INSERT INTO t SELECT g, 0, repeat('x', 200) FROM generate_series(1, 300000) g"

echo "taking a base backup and starting the replica on port $PORT ..."
su postgres -c "$BIN/pg_basebackup -h 127.0.0.1 -p 5432 -U postgres -D $WORK/data -R -X stream -c fast"
# Debian keeps the configuration outside the data directory: give the replica a minimal one.
su postgres -c "touch $WORK/data/postgresql.conf; echo 'local all all trust' > $WORK/data/pg_hba.conf; : > $WORK/data/pg_ident.conf"
su postgres -c "$BIN/pg_ctl -D $WORK/data -o '-p $PORT -k $WORK -c hot_standby=on' -l $WORK/log start -w" >/dev/null || { cat "$WORK/log"; exit 1; }
sleep 2
echo "replicas seen by the primary: $("${PSQL[@]}" -d postgres -c 'SELECT count(*) FROM pg_stat_replication')"
psql -h "$WORK" -p $PORT -U postgres -d postgres -qAtc "SELECT pg_wal_replay_pause()" >/dev/null
echo "replay paused on the replica; starting the backfill (limit 1000 ms of lag)"

URL="postgres://postgres@127.0.0.1:5432/$DB"
"$SLUICE" --database-url "$URL" backfill --table t --set "n = n + 1" --pace speed \
  --target-batch-ms 50 --max-replica-lag-ms 1000 > "$WORK/out" 2>&1 &
PID=$!
for s in 2 4 6 8; do
  sleep 2
  done_rows=$("${PSQL[@]}" -d "$DB" -c "SELECT coalesce(max(rows_done), 0) FROM sluice.backfills")
  lag=$("${PSQL[@]}" -d postgres -c "SELECT coalesce(extract(epoch FROM max(replay_lag))::numeric(10,1)::text, 'null') || ' s, ' || coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)) / 1048576, 0)::int || ' MiB behind' FROM pg_stat_replication")
  echo "  after ${s} s: $done_rows rows backfilled; replica: $lag"
done
psql -h "$WORK" -p $PORT -U postgres -d postgres -qAtc "SELECT pg_wal_replay_resume()" >/dev/null
echo "replay resumed"
wait $PID
echo "--- sluice output"
cat "$WORK/out"
echo "--- rows updated exactly once: $("${PSQL[@]}" -d "$DB" -c "SELECT count(*) FILTER (WHERE n = 1) || ' of ' || count(*) FROM t")"
