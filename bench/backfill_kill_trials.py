#!/usr/bin/env python3
"""kill -9 during `sluice backfill`, at random points, many times; then check every row was updated
exactly once (the backfill adds 1 to a counter, so a double update or a miss shows).

    python3 bench/backfill_kill_trials.py [--trials 20] [--rows 200000]

Needs the local PostgreSQL (127.0.0.1:5432, user postgres) and psql; builds sluice in release mode.
"""
import argparse, os, random, signal, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def psql(db, sql):
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAqc", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--rows", type=int, default=200_000)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "sluice"], cwd=ROOT, check=True)
    sluice = os.path.join(ROOT, "target", "release", "sluice")
    db = f"sluice_kill_trials_{os.getpid()}"
    psql("postgres", f"CREATE DATABASE {db}")
    try:
        psql(db, f"CREATE TABLE t (a int, b int, n int NOT NULL DEFAULT 0, PRIMARY KEY (a, b)); "
                 f"INSERT INTO t SELECT g % 97, g, 0 FROM generate_series(1, {args.rows}) g")
        env = dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db}")
        cmd = [sluice, "-q", "backfill", "--table", "t", "--set", "n = n + 1", "--batch-rows", "500", "--pause-ms", "5", "--pace", "speed"]
        rng = random.Random(7)
        killed = 0
        for trial in range(args.trials):
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.05, 0.6))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                killed += 1
            p.wait()
            # The checkpoint must always equal the rows actually updated, and no row twice.
            for _ in range(100):
                if psql(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'sluice%'") == "0":
                    break
                time.sleep(0.05)
            done = int(psql(db, "SELECT coalesce(max(rows_done), 0) FROM sluice.backfills") or 0)
            updated = int(psql(db, "SELECT count(*) FROM t WHERE n = 1"))
            twice = int(psql(db, "SELECT count(*) FROM t WHERE n > 1"))
            print(f"trial {trial + 1:2}: checkpoint {done:7} rows, updated {updated:7}, updated twice {twice}")
            if done != updated or twice:
                print("FAIL: the checkpoint and the table disagree")
                return 1
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wrong = int(psql(db, "SELECT count(*) FROM t WHERE n <> 1"))
        print(f"{killed} of {args.trials} runs killed mid-way; after the final run {wrong} of {args.rows} rows are not updated exactly once")
        return 1 if wrong else 0
    finally:
        psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
