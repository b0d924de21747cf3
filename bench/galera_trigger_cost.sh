#!/bin/sh
# What the Galera copy's trigger costs a writer (issue 15), on one server (no Galera needed): the
# same UPDATE-by-key load (a stored procedure, N updates of random rows of a ROWS-row table) under
#   log     the copy's log trigger as on one server (INSERT INTO _t_chg),
#   flag0   the Galera trigger with its flag row saying "log" (reads _t_ctl, then logs),
#   direct  an earlier version's direct trigger (REPLACE into the shadow, no flag),
#   flag1   the Galera trigger with its flag saying "direct" (reads _t_ctl, then REPLACEs),
# each pair alternated in every round, once with every update its own transaction (autocommit)
# and once with all in one transaction (the trigger's CPU without the commits). Prints each run
# and the median ratio of flag0/log and flag1/direct over the rounds.
# Usage: sh bench/galera_trigger_cost.sh [PORT=3306] [ROUNDS=7] [N=20000] [ROWS=100000]
set -eu
PORT=${1:-3306}; ROUNDS=${2:-7}; N=${3:-20000}; ROWS=${4:-100000}
DB=ha_trigger_cost
q() { mariadb --no-defaults -uroot -h127.0.0.1 -P"$PORT" -N -B "$DB" -e "$1"; }
mariadb --no-defaults -uroot -h127.0.0.1 -P"$PORT" -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
trap 'mariadb --no-defaults -uroot -h127.0.0.1 -P"$PORT" -e "DROP DATABASE IF EXISTS $DB"' EXIT INT TERM
q "CREATE TABLE t (id BIGINT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(50), filler CHAR(100) NOT NULL DEFAULT '')"
q "INSERT INTO t SELECT seq, seq % 1000, CONCAT('note ', seq), '' FROM seq_1_to_$ROWS"
q "CREATE TABLE _t_new (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, note VARCHAR(50), filler CHAR(100) NOT NULL DEFAULT '')"
q "INSERT INTO _t_new SELECT * FROM t"
q "CREATE TABLE _t_chg (_sluice_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, k0 BIGINT NOT NULL, KEY k (k0))"
q "CREATE TABLE _t_ctl (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, direct TINYINT UNSIGNED NOT NULL)"
q "INSERT INTO _t_ctl VALUES (1, 0)"
mariadb --no-defaults -uroot -h127.0.0.1 -P"$PORT" "$DB" <<SQL
DELIMITER //
CREATE PROCEDURE load_auto(n INT)
BEGIN
  DECLARE i, k INT DEFAULT 0;
  WHILE i < n DO
    SET k = 1 + FLOOR(RAND() * $ROWS);
    UPDATE t SET balance = balance + 1 WHERE id = k;
    SET i = i + 1;
  END WHILE;
END//
CREATE PROCEDURE load_tx(n INT)
BEGIN
  DECLARE i, k INT DEFAULT 0;
  START TRANSACTION;
  WHILE i < n DO
    SET k = 1 + FLOOR(RAND() * $ROWS);
    UPDATE t SET balance = balance + 1 WHERE id = k;
    SET i = i + 1;
  END WHILE;
  COMMIT;
END//
DELIMITER ;
SQL
# The trigger bodies as sluice makes them (Job::galera_triggers, setup's log triggers), UPDATE only.
log="INSERT INTO _t_chg (k0) VALUES (OLD.id); IF NOT (OLD.id <=> NEW.id) THEN INSERT INTO _t_chg (k0) VALUES (NEW.id); END IF"
put="REPLACE LOW_PRIORITY INTO _t_new (id, balance, note, filler) VALUES (NEW.id, NEW.balance, NEW.note, NEW.filler)"
del="DELETE LOW_PRIORITY FROM _t_new WHERE id = OLD.id"
body() {
    case $1 in
    log) echo "BEGIN $log; END" ;;
    direct) echo "BEGIN IF NOT (OLD.id <=> NEW.id) THEN $del; END IF; $put; END" ;;
    flag*) echo "BEGIN IF (SELECT direct FROM _t_ctl WHERE id = 1) = 1 THEN IF NOT (OLD.id <=> NEW.id) THEN $del; END IF; $put; ELSE $log; END IF; END" ;;
    esac
}
run() { # shape procedure -> seconds
    q "DROP TRIGGER IF EXISTS tr; TRUNCATE _t_chg; UPDATE _t_ctl SET direct = $([ "$1" = flag1 ] && echo 1 || echo 0)"
    mariadb --no-defaults -uroot -h127.0.0.1 -P"$PORT" --delimiter='//' "$DB" -e "CREATE TRIGGER tr AFTER UPDATE ON t FOR EACH ROW $(body "$1")"
    q "SELECT UNIX_TIMESTAMP(NOW(6)) INTO @a; CALL $2($N); SELECT ROUND(UNIX_TIMESTAMP(NOW(6)) - @a, 3)"
}
echo "trigger cost: $N updates by key of $ROWS rows, $ROUNDS rounds, pairs alternated; $(uptime)"
for proc in load_auto load_tx; do
    : > "/tmp/$DB.ratios"
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        # Alternate which of each pair goes first.
        if [ $((r % 2)) = 1 ]; then order="log flag0 direct flag1"; else order="flag0 log flag1 direct"; fi
        line=""
        for s in $order; do eval "t_$s=$(run "$s" "$proc")"; line="$line $s $(eval echo \$t_$s) s"; done
        echo "$proc round $r:$line"
        echo "$(echo "$t_flag0 / $t_log" | bc -l) $(echo "$t_flag1 / $t_direct" | bc -l)" >> "/tmp/$DB.ratios"
        r=$((r + 1))
    done
    m1=$(cut -d' ' -f1 "/tmp/$DB.ratios" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")
    m2=$(cut -d' ' -f2 "/tmp/$DB.ratios" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")
    printf '%s: median time ratio flag0/log %.3f, flag1/direct %.3f\n' "$proc" "$m1" "$m2"
done
rm -f "/tmp/$DB.ratios"
echo "$(uptime)"
