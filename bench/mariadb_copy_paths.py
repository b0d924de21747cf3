#!/usr/bin/env python3
"""Why sluice's MariaDB online copy is shaped as it is: the raw cost of the ways to copy a
1,000,000-row table into a shadow with `MODIFY balance BIGINT NOT NULL` applied, on an idle server,
side by side in one run:

  native ALTER            the server's own table copy (blocks writes throughout; the floor)
  one INSERT..SELECT      a single statement, bulk-insert mode (unique_checks=0): no checkpoint,
                          no throttling, one long read view for the whole copy
  chunks, 1 worker        key-range chunks in READ COMMITTED, secondary index maintained row by row
  chunks, 2 workers       the same split over two sessions
  chunks, index after     chunks into a shadow without its secondary index, then one sorted build
                          (what sluice does)

    python3 bench/mariadb_copy_paths.py [--rows 1000000] [--chunk 50000]

Needs the local MariaDB (127.0.0.1:3306, root, no password) and python3-pymysql.
"""
import argparse, os, sys, threading, time

try:
    import pymysql
except ImportError:  # Debian's python3-pymysql, when python3 is not the system interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    import pymysql

DB = f"sluice_bench_copy_{os.getpid()}"


def conn(db=DB):
    c = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=db, autocommit=True)
    c.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    return c


def run(c, sql):
    with c.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def fresh_shadow(c, with_index=True):
    run(c, "DROP TABLE IF EXISTS shadow")
    run(c, "CREATE TABLE shadow LIKE acc")
    run(c, "ALTER TABLE shadow MODIFY balance BIGINT NOT NULL")
    if not with_index:
        run(c, "ALTER TABLE shadow DROP INDEX note")


def chunks(lo, hi, step):
    c = conn()
    for a in range(lo, hi, step):
        run(c, f"INSERT INTO shadow SELECT * FROM acc WHERE id > {a} AND id <= {min(a + step, hi)}")
    c.close()


def timed(f):
    t = time.monotonic()
    f()
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=50_000)
    args = ap.parse_args()
    n, step = args.rows, args.chunk
    root = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    run(root, f"CREATE DATABASE {DB}")
    results = []
    try:
        c = conn()
        run(c, "CREATE TABLE acc (id INT AUTO_INCREMENT PRIMARY KEY, balance INT NULL, note VARCHAR(40) NOT NULL, "
               "updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, KEY (note)) ENGINE=InnoDB")
        run(c, f"INSERT INTO acc (id, balance, note) SELECT seq, seq % 100000, CONCAT('note-', seq) FROM seq_1_to_{n}")
        run(c, "CREATE TABLE victim LIKE acc")
        run(c, "INSERT INTO victim SELECT * FROM acc")
        results.append(("native ALTER (blocks writes)", timed(lambda: run(c, "ALTER TABLE victim MODIFY balance BIGINT NOT NULL"))))

        fresh_shadow(c)

        def bulk():
            run(c, "SET unique_checks = 0, foreign_key_checks = 0")
            run(c, "INSERT INTO shadow SELECT * FROM acc")
            run(c, "SET unique_checks = 1, foreign_key_checks = 1")
        results.append(("one INSERT..SELECT (bulk mode)", timed(bulk)))

        fresh_shadow(c)
        results.append(("chunks, 1 worker", timed(lambda: chunks(0, n, step))))

        fresh_shadow(c)

        def two():
            half = n // 2
            ts = [threading.Thread(target=chunks, args=(0, half, step)),
                  threading.Thread(target=chunks, args=(half, n, step))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        results.append(("chunks, 2 workers", timed(two)))

        fresh_shadow(c, with_index=False)
        copy = timed(lambda: chunks(0, n, step))
        build = timed(lambda: run(c, "ALTER TABLE shadow ADD KEY note (note)"))
        results.append((f"chunks, index after ({copy:.2f} + {build:.2f})", copy + build))
        c.close()
    finally:
        run(root, f"DROP DATABASE IF EXISTS {DB}")
    base = results[0][1]
    print(f"{n:,} rows, chunks of {step:,}; ratio to the native ALTER")
    print(f"{'path':<40}{'seconds':>9}{'ratio':>8}")
    for name, secs in results:
        print(f"{name:<40}{secs:>9.2f}{secs / base:>8.2f}")


if __name__ == "__main__":
    main()
