#!/bin/sh
# Which DDLs under Galera's TOI make autocommit clients fail (no sluice involved): an autocommit
# writer (text protocol, one mariadb client per node, an UPDATE by primary key every ~2 ms) on each
# of 3 nodes while node 1 runs ROUNDS rounds of each kind of DDL below, 0.4 s apart. Prints per kind
# the statements aborted on each node (certification failures + brute-force aborts; the server
# re-runs an aborted autocommit statement once, wsrep_retry_autocommit = 1) and the 1213s the
# clients got (a re-run aborted again). The online copy's Galera mode runs some of these kinds on
# the table (README "Galera clusters").
# RETRY=N sets wsrep_retry_autocommit to N on every node before the writers connect (default 1).
# Usage: [RETRY=N] sh bench/galera_toi_aborts.sh [BASEPORT=16600] [ROUNDS=10] [ROWS=30000]
set -eu
BASE=${1:-16600}; ROUNDS=${2:-10}; ROWS=${3:-30000}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=/tmp/sluice-galera-aborts-$$
stop_writers() { for n in 1 2 3; do [ -f "$DIR.p$n" ] && kill "$(cat "$DIR.p$n")" 2>/dev/null; rm -f "$DIR.p$n"; done; true; }
cleanup() { stop_writers; sh "$HERE/../crates/sluice-mysql/tests/galera.sh" stop "$DIR"; rm -f "$DIR".e*; }
trap cleanup EXIT INT TERM
sh "$HERE/../crates/sluice-mysql/tests/galera.sh" start "$DIR" "$BASE" > /dev/null
q() { mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + $1)) -N -B sluice_bench -e "$2"; }
mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + 1)) -e "CREATE DATABASE sluice_bench"
q 1 "CREATE TABLE t (id BIGINT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(50))"
q 1 "INSERT INTO t SELECT seq, 1, 'x' FROM seq_1_to_$ROWS"
[ -z "${RETRY:-}" ] || for n in 1 2 3; do q "$n" "SET GLOBAL wsrep_retry_autocommit = $RETRY"; done
# Writer on node N: ids = N mod 3, so no two writers meet on a row.
for n in 1 2 3; do
    perl -e '$| = 1; srand($ARGV[0]); while (1) { my $id = $ARGV[0] + 3 * int(rand($ARGV[1] / 3 - 1));
        print "UPDATE t SET balance = balance + 1 WHERE id = $id;\n" or exit;
        select(undef, undef, undef, 0.002) }' "$n" "$ROWS" \
    | mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + n)) --force sluice_bench 2> "$DIR.e$n" &
    echo $! > "$DIR.p$n"
done
sleep 2
aborts() {
    for n in 1 2 3; do
        q "$n" "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')" |
            cut -f2 | paste -sd+ | bc
    done
}
errors() { for n in 1 2 3; do grep -c ERROR "$DIR.e$n" || true; done; }
probe() {
    label=$1; shift
    a0=$(aborts); e0=$(errors)
    i=0
    while [ $i -lt "$ROUNDS" ]; do q 1 "$1"; sleep 0.4; i=$((i + 1)); done
    a1=$(aborts); e1=$(errors)
    printf '%s (x%s): statements aborted per node %s; client errors per node %s\n' "$label" "$ROUNDS" \
        "$(delta $a0 $a1)" "$(delta $e0 $e1)"
}
# Three counts before, three after: the differences, node 1/node 2/node 3.
delta() { echo "$(($4 - $1))/$(($5 - $2))/$(($6 - $3))"; }
echo "galera TOI aborts: $ROWS rows, an autocommit writer on each of 3 nodes, $ROUNDS rounds per kind"
probe "nothing (control)" "DO 0"
probe "CREATE TABLE x LIKE t; DROP TABLE x" "CREATE TABLE x LIKE t; DROP TABLE x"
probe "CREATE TABLE x (t's columns); DROP TABLE x" "CREATE TABLE x (id BIGINT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(50)); DROP TABLE x"
probe "CREATE TABLE x AS SELECT … FROM t LIMIT 0; DROP TABLE x" "CREATE TABLE x AS SELECT id, balance, note FROM t LIMIT 0; DROP TABLE x"
probe "CREATE TRIGGER on t; DROP TRIGGER" "CREATE TRIGGER tr AFTER UPDATE ON t FOR EACH ROW SET @a = 1; DROP TRIGGER tr"
probe "DROP TRIGGER IF EXISTS (no such trigger)" "DROP TRIGGER IF EXISTS no_such"
# The online copy drops its triggers after the RENAME, on the old table, which no client writes.
q 1 "CREATE TABLE o (id BIGINT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(50))"
sleep 0.5
probe "CREATE TRIGGER on a table no client writes; DROP TRIGGER" "CREATE TRIGGER tr AFTER UPDATE ON o FOR EACH ROW SET @a = 1; DROP TRIGGER tr"
# The copy's cut-over switches its triggers with a row of a control table they read (a row
# update, not a DDL): what that update aborts, the trigger on t reading the row created before.
q 1 "CREATE TABLE ctl (id TINYINT UNSIGNED PRIMARY KEY, direct TINYINT UNSIGNED NOT NULL); INSERT INTO ctl VALUES (1, 0)"
mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + 1)) --delimiter='//' sluice_bench -e \
    "CREATE TRIGGER tr AFTER UPDATE ON t FOR EACH ROW BEGIN IF (SELECT direct FROM ctl WHERE id = 1) = 1 THEN SET @a = 1; ELSE SET @a = 2; END IF; END"
sleep 1
probe "UPDATE of the flag row t's trigger reads" "UPDATE ctl SET direct = 1 - direct WHERE id = 1"
q 1 "DROP TRIGGER tr"
sleep 0.5
probe "RENAME TABLE t TO t2, t2 TO t (one statement)" "RENAME TABLE t TO t2, t2 TO t"
probe "ALTER TABLE t ADD/DROP COLUMN, INSTANT" "ALTER TABLE t ADD COLUMN z INT, ALGORITHM=INSTANT; ALTER TABLE t DROP COLUMN z, ALGORITHM=INSTANT"
probe "ALTER TABLE t FORCE (rebuild)" "ALTER TABLE t FORCE"
