#!/bin/sh
# A Galera copy by an older sluice (OLD, e.g. a build of the 10-DDL Galera mode) killed at each of
# its cut-over points, then `sluice up` by NEW twice, with a writer on node 2; prints what is left,
# the column type after each and the three nodes' checksums at the end (writer stopped).
# Usage: OLD=path/to/old/sluice NEW=path/to/sluice sh bench/galera_legacy_rerun.sh [BASEPORT=24200]
set -u
BASE=${1:-24200}; DIR=/tmp/sluice-galera-legacy-$$
: "${OLD:?set OLD}" "${NEW:?set NEW}"
G=$(cd "$(dirname "$0")" && pwd)/../crates/sluice-mysql/tests/galera.sh
sh $G start $DIR $BASE > /dev/null || exit 1
trap 'kill $WP 2>/dev/null; sh $G stop $DIR' EXIT
q() { mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + $1)) -N -B sluice_legacy -e "$2"; }
mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + 1)) -e "CREATE DATABASE sluice_legacy"
q 1 "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(50), KEY note_idx (note))"
q 1 "INSERT INTO accounts SELECT seq, 100, CONCAT('n', seq % 97) FROM seq_1_to_30000"
# A writer on node 2 throughout.
perl -e '$| = 1; while (1) { my $id = 1 + int(rand(30000)); print "UPDATE accounts SET balance = balance + 1 WHERE id = $id;\n" or exit; select(undef, undef, undef, 0.003) }' \
  | mariadb --no-defaults -uroot -h127.0.0.1 -P$((BASE + 2)) --force sluice_legacy 2> $DIR.werr &
WP=$!
P=$DIR.proj; rm -rf $P; mkdir -p $P/migrations
URL="mysql://root@127.0.0.1:$((BASE + 1))/sluice_legacy"
types="BIGINT DECIMAL(20,0) BIGINT DECIMAL(21,0)"
n=1
for point in galera-direct galera-unlogged galera-verified cutover-renamed; do
  ty=$(echo $types | cut -d' ' -f$n)
  printf -- '-- sluice:up\nALTER TABLE accounts MODIFY balance %s NOT NULL;\n' "$ty" > $P/migrations/${n}_m.sql
  echo "--- old code killed at $point ($ty)"
  (cd $P && SLUICE_GALERA_COPY=1 SLUICE_CRASH_AT=$point DATABASE_URL=$URL $OLD up 2>&1 | tail -2)
  echo "triggers: $(q 1 "SELECT GROUP_CONCAT(TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")"
  for r in 1 2; do
    echo "--- new code, rerun $r"
    (cd $P && SLUICE_GALERA_COPY=1 DATABASE_URL=$URL $NEW up 2>&1 | grep -E 'starts again|swapped|done|error|nothing to apply' )
  done
  echo "type now: $(q 1 "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'accounts' AND COLUMN_NAME = 'balance'")"
  echo "left: $(q 1 "SELECT GROUP_CONCAT(x) FROM (SELECT TABLE_NAME x FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT IN ('accounts') AND TABLE_NAME NOT LIKE 'sluice%' UNION ALL SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()) z")"
  n=$((n + 1))
done
kill $WP; sleep 2
for k in 1 2 3; do echo "node $k: $(q $k "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS('|', id, balance, note))) FROM accounts")"; done
echo "writer errors: $(grep -c ERROR $DIR.werr)"; grep ERROR $DIR.werr | head -3
