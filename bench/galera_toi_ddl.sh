#!/bin/sh
# How long a DDL under Galera's TOI stops writes on every node: autocommit writers (text protocol,
# one mariadb client per node) update random rows of a ROWS-row table on all three nodes while node 1
# runs each DDL below; prints, per DDL, its duration and each node's longest gap between two
# writes that returned, and the writers' errors.
# Usage: sh bench/galera_toi_ddl.sh [BASEPORT=16000] [ROWS=300000] [METHOD=TOI]
# METHOD=RSU runs each DDL node by node (SET SESSION wsrep_OSU_method = 'RSU' on each node in turn,
# lock_wait_timeout RSU_WAIT seconds (default 1), retried up to 20 times); METHOD=RSU-DRAIN the
# same with each node's writer stopped while its DDL runs (a node taken out of the load balancer).
set -eu
BASE=${1:-16000}; ROWS=${2:-300000}; METHOD=${3:-TOI}; RSU_WAIT=${RSU_WAIT:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=/tmp/sluice-galera-bench-$$
OUT=$DIR.out; mkdir -p "$OUT"
stop_writers() { for n in 1 2 3; do [ -f "$OUT/p$n" ] && kill "$(cat "$OUT/p$n")" 2>/dev/null; rm -f "$OUT/p$n"; done; true; }
cleanup() { stop_writers; sh "$HERE/../crates/sluice-mysql/tests/galera.sh" stop "$DIR"; rm -rf "$OUT"; }
trap cleanup EXIT INT TERM
sh "$HERE/../crates/sluice-mysql/tests/galera.sh" start "$DIR" "$BASE" > /dev/null
q() { mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + $1)) -N -B sluice_bench -e "$2"; }
mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + 1)) -e "CREATE DATABASE sluice_bench"
q 1 "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(50), filler CHAR(100) NOT NULL DEFAULT '')"
q 1 "INSERT INTO accounts SELECT seq, seq % 1000, CONCAT('note ', seq * 7919 % 100003), '' FROM seq_1_to_$ROWS"

# Writer on node N: one UPDATE by primary key every ~2 ms (ids = N mod 3: no two writers meet on
# a row), each followed by the server's clock.
writer() {
    perl -e '$| = 1; srand($ARGV[1]); while (1) { my $id = $ARGV[1] + 3 * int(rand($ARGV[0] / 3 - 1));
        print "UPDATE accounts SET balance = balance + 1 WHERE id = $id; SELECT UNIX_TIMESTAMP(NOW(6));\n" or exit;
        select(undef, undef, undef, 0.002) }' "$ROWS" "$1" \
    | mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + $1)) -N -B --unbuffered --force sluice_bench \
        >> "$OUT/w$1" 2>> "$OUT/e$1" &
    echo $! > "$OUT/p$1"
}
now() { q 1 "SELECT UNIX_TIMESTAMP(NOW(6))"; }
measure() {
    label=$1; ddl=$2
    for n in 1 2 3; do : > "$OUT/w$n"; : > "$OUT/e$n"; writer $n; done
    sleep 2
    from=$(now)
    if [ "$METHOD" != TOI ]; then
        tries=""
        for n in 1 2 3; do
            # RSU pauses the node's provider first: a local commit then waiting for certification
            # holds the table's metadata lock the DDL waits for, until lock_wait_timeout.
            # RSU-DRAIN: the node's clients leave it for its DDL (as a load balancer would take it out),
            # so its own gap is not counted; the others keep writing.
            if [ "$METHOD" = RSU-DRAIN ]; then kill "$(cat "$OUT/p$n")"; sleep 0.2; echo RESUME >> "$OUT/w$n"; fi
            t=1
            until q $n "SET SESSION lock_wait_timeout = $RSU_WAIT; SET SESSION wsrep_OSU_method = 'RSU'; $ddl" 2>> "$OUT/ddl"; do
                t=$((t + 1)); [ $t -le 20 ] || { echo "node $n: gave up after 20 tries" >&2; break; }
                until [ "$(q $n "SHOW STATUS LIKE 'wsrep_local_state_comment'" | cut -f2)" = Synced ]; do sleep 0.05; done
            done
            tries="$tries $t"
            # The next node only once this one is back in sync (it desyncs for the DDL).
            until [ "$(q $n "SHOW STATUS LIKE 'wsrep_local_state_comment'" | cut -f2)" = Synced ]; do sleep 0.05; done
            [ "$METHOD" != RSU-DRAIN ] || writer $n
        done
        echo "tries per node:$tries"
    else
        q 1 "$ddl"
    fi
    to=$(now)
    sleep 1
    stop_writers
    sleep 0.5
    gaps=""
    for n in 1 2 3; do
        g=$(awk -v from="$from" -v to="$to" 'BEGIN { last = from; worst = 0 }
            $1 == "RESUME" { last = -1; next }
            last == -1 { last = $1; next }
            $1 >= from && $1 <= to + 1 { if ($1 - last > worst) worst = $1 - last; last = $1 }
            END { printf "%d", worst * 1000 }' "$OUT/w$n")
        gaps="$gaps node $n ${g} ms,"
    done
    errs=$(cat "$OUT/e1" "$OUT/e2" "$OUT/e3" | grep -c ERROR || true)
    kinds=$(cat "$OUT/e1" "$OUT/e2" "$OUT/e3" | grep ERROR | sed 's/ at line [0-9]*//' | sort | uniq -c | head -5)
    printf '%s (%s): %.2f s; worst write gap%s errors %s\n' "$label" "$METHOD" "$(echo "$to - $from" | bc)" "${gaps%,}" "$errs"
    [ -z "$kinds" ] || echo "$kinds"
}
echo "galera $METHOD, $ROWS rows, writers on 3 nodes"
measure "INSTANT ADD COLUMN (control)" "ALTER TABLE accounts ADD COLUMN flag INT NULL, ALGORITHM=INSTANT"
measure "ADD INDEX (INPLACE, LOCK=NONE)" "ALTER TABLE accounts ADD INDEX note_idx (note), ALGORITHM=INPLACE, LOCK=NONE"
measure "DROP INDEX (NOCOPY)" "ALTER TABLE accounts DROP INDEX note_idx, ALGORITHM=NOCOPY"
