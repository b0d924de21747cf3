#!/bin/sh
# The open problem of README "Galera clusters", reduced: a client on node 2 updates `accounts`
# through a server-side prepared statement (SQL PREPARE/EXECUTE: the same server path as the binary
# protocol's) while node 1 creates a log table and an AFTER UPDATE trigger writing into it. Counts
# the client's errors by kind, for the trigger created under TOI (replicated; node 2 applies it) and
# created on each node locally under RSU (no node applies it from replication), and under TOI then
# replaced (CREATE OR REPLACE TRIGGER) by one writing into a second table, as the tried copy did.
# Usage: sh bench/galera_trigger_ps.sh [BASEPORT=16000] [ROUNDS=5]
set -eu
BASE=${1:-16000}; ROUNDS=${2:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=/tmp/sluice-galera-trig-$$
OUT=$DIR.out; mkdir -p "$OUT"
stop_writer() { [ -f "$OUT/pid" ] && kill "$(cat "$OUT/pid")" 2>/dev/null; rm -f "$OUT/pid"; true; }
cleanup() { stop_writer; sh "$HERE/../crates/sluice-mysql/tests/galera.sh" stop "$DIR"; rm -rf "$OUT"; }
trap cleanup EXIT INT TERM
sh "$HERE/../crates/sluice-mysql/tests/galera.sh" start "$DIR" "$BASE" > /dev/null
q() { mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + $1)) -N -B sluice_trig -e "$2"; }
mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + 1)) -e "CREATE DATABASE sluice_trig"
q 1 "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance INT NOT NULL)"
q 1 "INSERT INTO accounts SELECT seq, 100 FROM seq_1_to_30000"

# MODE: PS (PREPARE once, EXECUTE each time) or TEXT (the same UPDATE as a plain statement).
writer() {
    perl -e '$| = 1; print "PREPARE s FROM \x27UPDATE accounts SET balance = balance + 1 WHERE id = ?\x27;\n" if $ARGV[0] eq "PS";
        my $i = 0; while (1) { $i++; my $id = 1 + ($i * 7) % 30000;
        if ($ARGV[0] eq "PS") { print "SET \@id = $id; EXECUTE s USING \@id;\n" or exit }
        else { print "UPDATE accounts SET balance = balance + 1 WHERE id = $id;\n" or exit }
        select(undef, undef, undef, 0.002) }' "$1" \
    | mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + 2)) -N -B --unbuffered --force sluice_trig \
        > /dev/null 2>> "$OUT/err" &
    echo $! > "$OUT/pid"
}
trigger="CREATE TRIGGER accounts_log AFTER UPDATE ON accounts FOR EACH ROW INSERT INTO accounts_chg (id) VALUES (NEW.id)"
round() {
    how=$1; mode=$2
    : > "$OUT/err"
    writer "$mode"
    sleep 1
    q 1 "CREATE TABLE accounts_chg (n BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL)"
    if [ "$how" = TOI ]; then
        q 1 "$trigger"
    elif [ "$how" = TOI-REPLACE ]; then
        # As the tried copy did: the log trigger, then a second table and the trigger replaced by
        # one writing there.
        q 1 "$trigger"
        sleep 1
        q 1 "CREATE TABLE accounts_shadow (id BIGINT PRIMARY KEY, balance INT NOT NULL)"
        q 1 "CREATE OR REPLACE TRIGGER accounts_log AFTER UPDATE ON accounts FOR EACH ROW REPLACE INTO accounts_shadow (id, balance) VALUES (NEW.id, NEW.balance)"
    else
        # Each node creates it for itself; the next one once this one is back in sync.
        for n in 1 2 3; do
            q $n "SET SESSION lock_wait_timeout = 5; SET SESSION wsrep_OSU_method = 'RSU'; $trigger" 2>> "$OUT/ddl" \
                || echo "node $n: the trigger under RSU failed: $(tail -n 1 "$OUT/ddl")"
            until [ "$(q $n "SHOW STATUS LIKE 'wsrep_local_state_comment'" | cut -f2)" = Synced ]; do sleep 0.05; done
        done
    fi
    sleep 2
    stop_writer
    sleep 0.3
    logged=$(q 2 "SELECT COUNT(*) FROM accounts_chg")
    errs=$(grep ERROR "$OUT/err" | sed 's/ at line [0-9]*//' | sort | uniq -c | tr '\n' ';' || true)
    echo "trigger via $how, client $mode: errors: ${errs:-none}; rows logged $logged"
    q 1 "DROP TRIGGER IF EXISTS accounts_log" 2>/dev/null || true
    for n in 1 2 3; do q $n "SET SESSION wsrep_OSU_method = 'RSU'; DROP TRIGGER IF EXISTS accounts_log" 2>/dev/null || true
        until [ "$(q $n "SHOW STATUS LIKE 'wsrep_local_state_comment'" | cut -f2)" = Synced ]; do sleep 0.05; done; done
    q 1 "DROP TABLE accounts_chg"
    q 1 "DROP TABLE IF EXISTS accounts_shadow"
}
for r in $(seq 1 "$ROUNDS"); do
    round TOI PS
    round TOI-REPLACE PS
    round RSU PS
done
round TOI TEXT
round RSU TEXT
