#!/bin/sh
# A copying change (MODIFY balance BIGINT NOT NULL) on a 3-node Galera cluster with an autocommit
# writer (text protocol, one mariadb client per node) updating random rows on every node, side by
# side: the ALTER as written (TOI), `sluice up` (the online copy's Galera mode) and
# pt-online-schema-change if installed. Each runs on its own copy of the same ROWS-row table.
# Prints per method: its duration, each node's errors and longest gap between two writes that
# returned, and whether the three nodes' checksums of the table are equal afterwards.
# Each client error is listed with the server time it returned at and the statement that got it;
# with TRACE=1 sluice's own statements on node 1 (its general log) are kept in $DIR.trace to set
# beside them, and with KEEP=1 the writers' files stay in $DIR.out (TABLE.w1 … per method).
# ONLY=sluice runs the sluice method alone. RETRY=N sets wsrep_retry_autocommit to N on every node
# before the writers connect (the server's default is 1).
# Usage: SLUICE=path/to/sluice sh bench/galera_copy.sh [BASEPORT=16400] [ROWS=300000]
set -eu
BASE=${1:-16400}; ROWS=${2:-300000}
HERE=$(cd "$(dirname "$0")" && pwd)
SLUICE=${SLUICE:-$HERE/../target/release/sluice}
DIR=/tmp/sluice-galera-copy-$$
OUT=$DIR.out; mkdir -p "$OUT"
stop_writers() { for n in 1 2 3; do [ -f "$OUT/p$n" ] && kill "$(cat "$OUT/p$n")" 2>/dev/null; rm -f "$OUT/p$n"; done; true; }
cleanup() { stop_writers; sh "$HERE/../crates/sluice-mysql/tests/galera.sh" stop "$DIR"; [ -n "${KEEP:-}" ] || rm -rf "$OUT"; }
trap cleanup EXIT INT TERM
sh "$HERE/../crates/sluice-mysql/tests/galera.sh" start "$DIR" "$BASE" > /dev/null
q() { mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + $1)) -N -B sluice_bench -e "$2"; }
mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + 1)) -e "CREATE DATABASE sluice_bench"
[ -z "${RETRY:-}" ] || for n in 1 2 3; do q "$n" "SET GLOBAL wsrep_retry_autocommit = $RETRY"; done
for t in plain sluice pt; do
    q 1 "CREATE TABLE $t (id BIGINT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(50), filler CHAR(100) NOT NULL DEFAULT '')"
    q 1 "INSERT INTO $t SELECT seq, seq % 1000, CONCAT('note ', seq * 7919 % 100003), '' FROM seq_1_to_$ROWS"
done

# Writer on node N against table T: one UPDATE by primary key every ~2 ms (ids = N mod 3: no two
# writers meet on a row), each followed by the server's clock.
writer() {
    perl -e '$| = 1; srand($ARGV[1]); while (1) { my $id = $ARGV[1] + 3 * int(rand($ARGV[0] / 3 - 1));
        print "UPDATE $ARGV[2] SET balance = balance + 1 WHERE id = $id; SELECT UNIX_TIMESTAMP(NOW(6));\n" or exit;
        select(undef, undef, undef, 0.002) }' "$ROWS" "$1" "$2" \
    | tee -a "$OUT/in$1" | mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + $1)) -N -B --unbuffered --force sluice_bench \
        >> "$OUT/w$1" 2>> "$OUT/e$1" &
    echo $! > "$OUT/p$1"
}
now() { q 1 "SELECT UNIX_TIMESTAMP(NOW(6))"; }
wsrep_conflicts() {
    q "$1" "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')" |
        sort | cut -f2 | tr '\n' ' '
}
measure() {
    label=$1; table=$2; shift 2
    for n in 1 2 3; do : > "$OUT/w$n"; : > "$OUT/e$n"; : > "$OUT/in$n"; writer $n "$table"; done
    sleep 2
    conflicts=$(for n in 1 2 3; do wsrep_conflicts $n; done)
    from=$(now)
    if "$@" > "$OUT/run" 2>&1; then ok=ok; else ok="FAILED: $(tail -n 3 "$OUT/run" | tr '\n' ' ')"; fi
    to=$(now)
    sleep 1
    stop_writers
    sleep 0.5
    gaps=""; errs=""
    for n in 1 2 3; do
        g=$(awk -v from="$from" -v to="$to" 'BEGIN { last = from; worst = 0 }
            $1 >= from && $1 <= to + 1 { if ($1 - last > worst) worst = $1 - last; last = $1 }
            END { printf "%d", worst * 1000 }' "$OUT/w$n")
        gaps="$gaps node $n ${g} ms,"
        errs="$errs node $n $(grep -c ERROR "$OUT/e$n" || true),"
    done
    sums=""
    for n in 1 2 3; do
        sums="$sums $(q $n "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS('|', id, balance, note, filler))) FROM $table" | tr '\t' '/')"
    done
    same=$(echo $sums | tr ' ' '\n' | sort -u | wc -l)
    [ "$same" = 1 ] && eq="equal" || eq="DIFFER"
    printf '%s: %s, %.2f s; worst write gap%s errors%s checksums %s (%s); balance is %s\n' "$label" "$ok" \
        "$(echo "$to - $from" | bc)" "${gaps%,}" "${errs%,}" "$eq" "$(echo $sums | cut -d' ' -f1)" \
        "$(q 1 "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'sluice_bench' AND TABLE_NAME = '$table' AND COLUMN_NAME = 'balance'")"
    kinds=$(cat "$OUT/e1" "$OUT/e2" "$OUT/e3" | grep ERROR | sed 's/ at line [0-9]*//' | sort | uniq -c | head -5)
    [ -z "$kinds" ] || echo "$kinds"
    # Which Galera mechanism aborted statements: certification failures (a write set conflicting
    # with one ordered before it) or brute-force aborts (a replicated write set or DDL taking a lock
    # a local statement held), per node over the measurement.
    set -- $conflicts
    for n in 1 2 3; do
        set -- $(wsrep_conflicts $n) "$@"
        printf '  node %s: %s certification failure(s), %s brute-force abort(s)\n' "$n" $(($2 - $4)) $(($1 - $3))
        shift 4
    done
    [ -z "${KEEP:-}" ] || for f in w1 w2 w3 e1 e2 e3 in1 in2 in3; do cp "$OUT/$f" "$OUT/$table.$f"; done
    # Each error: the server time its statement returned (the SELECT right behind it, line N of the
    # writer's output as of its input: --force goes on after an error) and the statement.
    for n in 1 2 3; do
        grep -o 'ERROR [0-9]*.* at line [0-9]*' "$OUT/e$n" | head -20 | while read -r err; do
            line=${err##* }
            printf '  node %s at %s: %s <- %s\n' "$n" "$(sed -n "${line}p" "$OUT/w$n")" \
                "$(sed -n "${line}p" "$OUT/in$n" | cut -d';' -f1)" "$(echo "$err" | cut -c1-60)"
        done
    done
}
sluice_up() {
    proj=$OUT/proj; rm -rf "$proj"; mkdir -p "$proj/migrations"
    printf -- '-- sluice:up\nALTER TABLE sluice MODIFY balance BIGINT NOT NULL;\n' > "$proj/migrations/1_widen.sql"
    [ -z "${TRACE:-}" ] || q 1 "SET GLOBAL log_output = 'TABLE'; TRUNCATE mysql.general_log; SET GLOBAL general_log = 1"
    rc=0
    (cd "$proj" && SLUICE_GALERA_COPY=${SLUICE_GALERA_COPY-1} DATABASE_URL="mysql://root@127.0.0.1:$((BASE + 1))/sluice_bench" "$SLUICE" up) || rc=$?
    if [ -n "${TRACE:-}" ]; then
        q 1 "SET GLOBAL general_log = 0"
        # sluice's statements only (the writer on node 1 sends UPDATE and SELECT UNIX_TIMESTAMP).
        q 1 "SELECT UNIX_TIMESTAMP(event_time), thread_id, LEFT(REPLACE(CONVERT(argument USING utf8mb4), '\n', ' '), 160)
             FROM mysql.general_log WHERE command_type IN ('Query', 'Execute')
             AND argument NOT LIKE 'UPDATE sluice SET balance%' AND argument NOT LIKE 'SELECT UNIX_TIMESTAMP%'" > "$DIR.trace"
    fi
    return $rc
}
pt_osc() {
    pt-online-schema-change --alter "MODIFY balance BIGINT NOT NULL" --execute --no-check-alter \
        --recursion-method=none h=127.0.0.1,P=$((BASE + 1)),u=root,D=sluice_bench,t=pt
}
echo "galera, $ROWS rows, an autocommit writer (text protocol) on each of 3 nodes"
# ONLY=sluice: the sluice run alone (tracing its errors).
[ "${ONLY:-}" = sluice ] || measure "ALTER as written (TOI)" plain q 1 "ALTER TABLE plain MODIFY balance BIGINT NOT NULL"
measure "sluice up (online copy, Galera mode)" sluice sluice_up
if [ "${ONLY:-}" = sluice ]; then
    :
elif command -v pt-online-schema-change > /dev/null; then
    measure "pt-online-schema-change" pt pt_osc
else
    echo "pt-online-schema-change: not installed"
fi
