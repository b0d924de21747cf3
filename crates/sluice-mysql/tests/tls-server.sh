#!/bin/sh
# Starts a throwaway MariaDB with TLS for `tls_modes_against_a_tls_server` (the shared test server
# has no TLS). Usage:  sh tls-server.sh start   then run the printed `export` lines and
#   cargo test -p sluice-mysql --test engine tls_modes
# and finally  sh tls-server.sh stop
set -eu
DIR=${SLUICE_TLS_DIR:-/tmp/sluice-mysql-tls}
PORT=${SLUICE_TLS_PORT:-3317}
case "${1:-}" in
start)
    rm -rf "$DIR"; mkdir -p "$DIR/data" "$DIR/tmp"; cd "$DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj "/CN=sluice test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" > ext.cnf
    # The certificate names only "localhost": 127.0.0.1 is a name mismatch (for VERIFY_CA vs VERIFY_IDENTITY).
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 30 \
        -extfile ext.cnf 2>/dev/null
    # Its own tmpdir: servers sharing /tmp collide on their temporary tables (`#sql-temptable-…`).
    mariadb-install-db --no-defaults --datadir="$DIR/data" --user="$(id -un)" --tmpdir="$DIR/tmp" \
        --auth-root-authentication-method=normal --skip-test-db > install.log 2>&1
    setsid mariadbd --no-defaults --datadir="$DIR/data" --user="$(id -un)" --port="$PORT" \
        --bind-address=127.0.0.1 --socket="$DIR/sock" --pid-file="$DIR/pid" --skip-log-bin --tmpdir="$DIR/tmp" \
        --innodb-buffer-pool-size=32M --ssl-cert="$DIR/server.pem" --ssl-key="$DIR/server.key" \
        --ssl-ca="$DIR/ca.pem" > "$DIR/server.log" 2>&1 &
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S "$DIR/sock" ] && break; sleep 1; done
    echo "export SLUICE_TEST_MYSQL_TLS_URL=mysql://root@localhost:$PORT/mysql"
    echo "export SLUICE_TEST_MYSQL_TLS_CA=$DIR/ca.pem"
    ;;
stop)
    [ -f "$DIR/pid" ] && kill "$(cat "$DIR/pid")" || true
    ;;
*)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
