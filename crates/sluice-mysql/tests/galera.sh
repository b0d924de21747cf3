#!/bin/sh
# Starts (and stops) a throwaway 3-node MariaDB Galera cluster on loopback, for the Galera tests.
# Usage:  sh galera.sh start DIR BASEPORT   prints the three client URLs, one a line, once the cluster
#                                           reports wsrep_cluster_size = 3
#         sh galera.sh stop DIR             stops the nodes and removes DIR
# Node N (1..3) listens for clients on BASEPORT+N, for group traffic on BASEPORT+10+N for IST on BASEPORT+20+N
# and for state transfers on BASEPORT+30+N. Keep BASEPORT+33 below 32768: ephemeral ports above that collide.
set -eu
PROVIDER=${SLUICE_GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}
cmd=${1:-}; DIR=${2:-}
[ -n "$DIR" ] || { echo "usage: $0 start DIR BASEPORT | stop DIR" >&2; exit 2; }
# As root the servers run as `mysql`: the rsync state transfer's daemon drops root privileges and could
# not write into a root-owned data directory.
user=$(id -un)
if [ "$user" = root ]; then user=mysql; fi

stop() {
    for n in 3 2 1; do
        pidf="$DIR/n$n/pid"
        if [ -f "$pidf" ]; then kill "$(cat "$pidf")" 2>/dev/null || true; fi
    done
    # Wait for the processes to leave so the ports and files are free before DIR goes.
    for _ in $(seq 1 100); do
        alive=0
        for n in 1 2 3; do
            pidf="$DIR/n$n/pid"
            [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null && alive=1
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for n in 1 2 3; do
        pidf="$DIR/n$n/pid"
        [ -f "$pidf" ] && kill -9 "$(cat "$pidf")" 2>/dev/null || true
    done
    [ -n "${SLUICE_GALERA_KEEP:-}" ] || rm -rf "$DIR"
}

case "$cmd" in
start)
    BASE=${3:?base port}
    rm -rf "$DIR"; mkdir -p "$DIR"
    [ "$user" = "$(id -un)" ] || chown "$user" "$DIR"
    addr="gcomm://127.0.0.1:$((BASE + 11)),127.0.0.1:$((BASE + 12)),127.0.0.1:$((BASE + 13))"
    for n in 1 2 3; do
        mkdir -p "$DIR/n$n/data" "$DIR/n$n/tmp"
        [ "$user" = "$(id -un)" ] || chown -R "$user" "$DIR/n$n"
        # One at a time, checked: under load a bootstrap can fail and leave no system tables.
        for attempt in 1 2 3; do
            # Its own tmpdir: servers sharing /tmp collide on their temporary tables.
            if mariadb-install-db --no-defaults --datadir="$DIR/n$n/data" --user="$user" --tmpdir="$DIR/n$n/tmp" \
                --auth-root-authentication-method=normal --skip-test-db > "$DIR/n$n/install.log" 2>&1; then
                break
            fi
            [ $attempt = 3 ] && { echo "mariadb-install-db failed for node $n:" >&2; tail -n 20 "$DIR/n$n/install.log" >&2; stop; exit 1; }
            rm -rf "$DIR/n$n/data"; mkdir -p "$DIR/n$n/data" "$DIR/n$n/tmp"
            [ "$user" = "$(id -un)" ] || chown -R "$user" "$DIR/n$n"
        done
    done
    node() {
        n=$1; shift
        setsid mariadbd --no-defaults --datadir="$DIR/n$n/data" --user="$user" \
            --port=$((BASE + n)) --bind-address=127.0.0.1 --socket="$DIR/n$n/sock" --pid-file="$DIR/n$n/server.pid" --tmpdir="$DIR/n$n/tmp" \
            --innodb-buffer-pool-size=32M --innodb-log-file-size=16M --skip-log-bin \
            --binlog-format=ROW --innodb-autoinc-lock-mode=2 --innodb-flush-log-at-trx-commit=0 \
            --wsrep-on=ON --wsrep-provider="$PROVIDER" --wsrep-cluster-name=sluice_test \
            --wsrep-cluster-address="$addr" --wsrep-node-address=127.0.0.1:$((BASE + 10 + n)) \
            --wsrep-node-name=n$n --wsrep-sst-method=rsync \
            --wsrep-sst-receive-address=127.0.0.1:$((BASE + 30 + n)) \
            --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$((BASE + 10 + n));ist.recv_addr=127.0.0.1:$((BASE + 20 + n));gcache.size=32M" \
            "$@" > "$DIR/n$n/server.log" 2>&1 < /dev/null &
        echo $! > "$DIR/n$n/pid"
    }
    q() { mariadb --no-defaults -uroot --socket="$DIR/n$1/sock" -N -B -e "$2" 2>/dev/null; }
    size() { q "$1" "SHOW STATUS LIKE 'wsrep_cluster_size'" | cut -f2; }
    ready() { [ "$(q "$1" "SHOW STATUS LIKE 'wsrep_ready'" | cut -f2)" = ON ]; }
    # A node that exited stays a zombie until this shell reaps it, so read its state, not kill -0.
    alive() { [ -f "$DIR/n$1/pid" ] && ! grep -qs '^State:.*Z' "/proc/$(cat "$DIR/n$1/pid")/status" && [ -d "/proc/$(cat "$DIR/n$1/pid")" ]; }
    # Starts node N and waits until it is synced. The provider sometimes fails to open its group
    # channel on this kind of host ("Failed to set thread schedparams ... No such process") and the
    # node exits at once; a fresh start succeeds, so try a few times before giving up.
    up() {
        n=$1; shift
        for attempt in 1 2 3 4 5; do
            rm -f "$DIR/n$n/pid"
            node "$n" "$@"
            for _ in $(seq 1 ${SLUICE_GALERA_WAIT:-600}); do
                ready "$n" && return 0
                alive "$n" || break
                sleep 0.1
            done
            ready "$n" && return 0
            if alive "$n"; then kill -9 "$(cat "$DIR/n$n/pid")" 2>/dev/null || true; sleep 0.5; fi
            cp "$DIR/n$n/server.log" "$DIR/n$n/server.$attempt.log" 2>/dev/null || true
        done
        echo "node $n did not join; see its log:" >&2; tail -n 25 "$DIR/n$n/server.log" >&2
        return 1
    }
    up 1 --wsrep-new-cluster || { SLUICE_GALERA_KEEP=${SLUICE_GALERA_KEEP:-} stop; exit 1; }
    # One at a time: a donor serves one state transfer at once.
    up 2 || { stop; exit 1; }
    up 3 || { stop; exit 1; }
    [ "$(size 1)" = 3 ] || { echo "the cluster has $(size 1) nodes, not 3" >&2; stop; exit 1; }
    for n in 1 2 3; do echo "mysql://root@127.0.0.1:$((BASE + n))/mysql"; done
    ;;
stop)
    stop ;;
*)
    echo "usage: $0 start DIR BASEPORT | stop DIR" >&2; exit 2 ;;
esac
