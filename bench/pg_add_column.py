#!/usr/bin/env python3
"""Benchmark: "add a NOT NULL column with a computed default and index it" on a hot PostgreSQL table.

One command, one run, side by side on the same machine and the same workload:
  as written   the two statements run verbatim with psql
  expert       an expert's staged run by hand: ADD COLUMN (nullable) + SET DEFAULT, a server-side
               procedure that UPDATEs 5000-row key ranges and COMMITs after each, CHECK NOT VALID +
               VALIDATE, SET NOT NULL, DROP the check, CREATE INDEX CONCURRENTLY
  sluice       `sluice up` (staged: add nullable, default for new rows, paced batched backfill,
               CHECK NOT VALID + VALIDATE, SET NOT NULL, index CONCURRENTLY)
  sluice fast  the same with --pace speed (no latency pacing)
  before, before fast   the same two with another binary (--before PATH), for old vs new side by side
  UPDATE       one `UPDATE ... SET c = md5(random()::text)` over the whole table (rows/s reference)

The workload is pgbench (not sluice's own generator): 8 clients at a fixed total rate, open loop
(latency counted from each transaction's scheduled start), 60% point reads, 30% updates, 10%
inserts. Each mode gets a fresh copy of a 1,000,000-row table. Usage:

    python3 bench/pg_add_column.py [--rows 1000000] [--rate 1900] [--clients 8] [--sluice PATH]
                                   [--before PATH --modes expert,before,sluice]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres) and a built sluice (cargo build --release).
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
TEMPLATE = "sluice_bench_tpl"
MIGRATION = (
    "ALTER TABLE accounts ADD COLUMN token text NOT NULL DEFAULT md5(random()::text);\n"
    "CREATE INDEX accounts_token_idx ON accounts (token);\n"
)


EXPERT_PROC = """
CREATE PROCEDURE expert_backfill(hi bigint) LANGUAGE plpgsql AS $$
DECLARE lo bigint := 0;
BEGIN
  WHILE lo < hi LOOP
    UPDATE accounts SET token = md5(random()::text) WHERE id > lo AND id <= lo + 5000 AND token IS NULL;
    lo := lo + 5000;
    COMMIT;
  END LOOP;
END $$;
"""


def psql(db, sql, check=True):
    return subprocess.run(
        ["psql", *PG, "-d", db, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True, text=True, check=check,
    )


def fresh(db):
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db} TEMPLATE {TEMPLATE}")
    # The copy is WAL-logged (PostgreSQL 15): without a checkpoint now, the one it brings on
    # would land in the measured window of whichever mode runs next.
    psql("postgres", "CHECKPOINT")


def make_template(rows):
    have = psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{TEMPLATE}'").stdout.strip()
    if have:
        n = psql(TEMPLATE, "SELECT count(*) FROM accounts", check=False).stdout.strip()
        if n == str(rows):
            return
        psql("postgres", f"DROP DATABASE {TEMPLATE} WITH (FORCE)")
    print(f"creating the {rows:,}-row template table ...", flush=True)
    psql("postgres", f"CREATE DATABASE {TEMPLATE}")
    psql(TEMPLATE, f"""
        CREATE TABLE accounts (id bigserial PRIMARY KEY, balance int NOT NULL,
                               name text NOT NULL, created timestamptz NOT NULL DEFAULT now());
        INSERT INTO accounts (balance, name) SELECT g % 1000, 'user ' || g FROM generate_series(1, {rows}) g;""")
    psql(TEMPLATE, "VACUUM ANALYZE accounts")


def scripts(tmp, rows):
    files = {
        "read": f"\\set id random(1, {rows})\nSELECT balance FROM accounts WHERE id = :id;\n",
        "update": f"\\set id random(1, {rows})\nUPDATE accounts SET balance = balance + 1 WHERE id = :id;\n",
        "insert": "INSERT INTO accounts (balance, name) VALUES (0, 'new');\n",
    }
    paths = {}
    for k, v in files.items():
        paths[k] = os.path.join(tmp, k + ".sql")
        with open(paths[k], "w") as f:
            f.write(v)
    return ["-f", paths["read"] + "@6", "-f", paths["update"] + "@3", "-f", paths["insert"] + "@1"]


class Workload:
    """pgbench in the background, logging every transaction."""

    def __init__(self, db, tmp, name, args, seconds, script_args=None):
        """`script_args`: pgbench's `-f file@weight` list (default: this benchmark's own mix)."""
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        cmd = ["pgbench", *PG, "-n", "-c", str(args.clients), "-j", "2", "-R", str(args.rate),
               "-T", str(seconds), "-l", "--log-prefix", os.path.join(self.dir, "tx"),
               *(script_args or scripts(tmp, args.rows)), db]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.started = time.time()

    def finish(self):
        out, err = self.proc.communicate()
        failed = 0
        m = re.search(r"number of failed transactions: (\d+)", out)
        if m:
            failed += int(m.group(1))
        aborted = len(re.findall(r"aborted in command|client \d+ aborted", err))
        errors = failed + aborted
        return read_tx_logs(self.dir), errors, err.strip()


def read_tx_logs(d):
    """Every completed transaction in the pgbench `-l` logs in directory `d`, as (start s, end s,
    latency ms, script number); skipped and failed ones are left out."""
    tx = []
    for fn in os.listdir(d):
        with open(os.path.join(d, fn)) as f:
            for line in f:
                p = line.split()
                if len(p) < 6 or p[2] == "skipped" or p[2] == "failed":
                    continue
                end = int(p[4]) + int(p[5]) / 1e6
                lat = int(p[2]) / 1000.0
                tx.append((end - lat / 1000.0, end, lat, int(p[3])))
    return tx


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


def window(tx, a, b):
    """Latencies of transactions that were in flight at some point in [a, b]."""
    return [t[2] for t in tx if t[0] < b and t[1] > a]


def stall(tx, a, b):
    """Longest time in [a, b] in which no transaction completed (ms)."""
    ends = sorted(t[1] for t in tx if a <= t[1] <= b)
    points = [a] + ends + [b]
    return max((y - x) for x, y in zip(points, points[1:])) * 1000.0


def sluice_phases(lines, t0):
    """Where sluice's seconds went, from when its progress lines arrived: up to the backfill's
    first line (add), the backfill (from its pacing line to its `done` line, the idle probe
    included), validate (up to the index build's first line) and the index build."""
    def first(pat, after=0.0):
        return next((t for t, l in lines if t >= after and re.search(pat, l)), None)
    end = lines[-1][0] if lines else t0
    b0 = first(r"^backfill public\.accounts") or first(r"backfill")
    b1 = first(r"backfill of public\.accounts done", b0 or 0)
    i0 = first(r"(?i)index|CONCURRENTLY", b1 or 0)
    if not (b0 and b1):
        return [("total", end - t0)]
    out = [("add", b0 - t0), ("backfill", b1 - b0)]
    if i0:
        out += [("validate", i0 - b1), ("index", end - i0)]
    else:
        out += [("rest", end - b1)]
    return out


def run_mode(mode, args, tmp, sluice, rnd=0):
    db = "sluice_bench_" + mode.replace(" ", "_").lower()
    tmp = os.path.join(tmp, f"round{rnd}")
    os.makedirs(tmp, exist_ok=True)
    fresh(db)
    proj = os.path.join(tmp, db + "_proj")
    os.makedirs(os.path.join(proj, "migrations"))
    with open(os.path.join(proj, "migrations", "1_token.sql"), "w") as f:
        f.write(MIGRATION)
    seconds = args.baseline + {"as written": 30, "UPDATE": 30}.get(mode, args.budget)
    w = Workload(db, tmp, mode.replace(" ", "_"), args, seconds)
    time.sleep(args.baseline)
    t0 = time.time()
    note = ""
    phases = []  # (name, seconds)
    if mode == "expert":
        def timed(name, *stmts):
            a = time.time()
            for q in stmts:
                psql(db, q)
            phases.append((name, time.time() - a))
        psql(db, EXPERT_PROC)
        t0 = time.time()
        timed("add", "ALTER TABLE accounts ADD COLUMN token text",
              "ALTER TABLE accounts ALTER COLUMN token SET DEFAULT md5(random()::text)")
        hi = psql(db, "SELECT max(id) FROM accounts").stdout.strip()
        timed("backfill", f"CALL expert_backfill({hi})")
        res_rows = args.rows / phases[-1][1]
        timed("validate", "ALTER TABLE accounts ADD CONSTRAINT token_nn CHECK (token IS NOT NULL) NOT VALID",
              "ALTER TABLE accounts VALIDATE CONSTRAINT token_nn",
              "ALTER TABLE accounts ALTER COLUMN token SET NOT NULL",
              "ALTER TABLE accounts DROP CONSTRAINT token_nn")
        timed("index", "CREATE INDEX CONCURRENTLY accounts_token_idx ON accounts (token)")
    elif mode == "as written":
        for stmt in MIGRATION.strip().splitlines():
            psql(db, stmt)
    elif mode == "UPDATE":
        psql(db, "ALTER TABLE accounts ADD COLUMN token text")
        t0 = time.time()
        r = psql(db, "UPDATE accounts SET token = md5(random()::text)")
        note = r.stdout.strip()
    else:
        binary = args.before if mode.startswith("before") else sluice
        if not binary:
            raise SystemExit(f"mode {mode} needs --before PATH")
        cmd = [binary, "up", "--database-url", f"postgres://postgres@127.0.0.1:5432/{db}",
               "--migrations-dir", os.path.join(proj, "migrations"), "--app-version", "bench"]
        if mode.endswith(" fast"):
            cmd += ["--pace", "speed"]
        cmd += args.sluice_args.split()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []  # (time, line): when each progress line arrived says where the seconds went
        out_box = []
        reader = threading.Thread(target=lambda: out_box.append(proc.stdout.read()))
        reader.start()
        for line in proc.stderr:
            lines.append((time.time(), line.rstrip("\n")))
        proc.wait()
        reader.join()
        note = "\n".join(l for _, l in lines)
        if proc.returncode != 0:
            print(out_box[0] if out_box else "", note, file=sys.stderr)
            raise SystemExit(f"sluice failed in mode {mode}")
        phases = sluice_phases(lines, t0)
    t1 = time.time()
    if t1 > w.started + seconds:
        print(f"warning: {mode} outlasted the workload ({t1 - t0:.0f} s); raise --budget", file=sys.stderr)
    tx, errors, err = w.finish()
    base = window(tx, w.started + 2, t0 - 0.5)
    during = window(tx, t0, t1)
    res = {
        "mode": mode,
        "seconds": t1 - t0,
        "errors": errors,
        "base_p50": pct(base, 0.5), "base_p99": pct(base, 0.99),
        "p50": pct(during, 0.5), "p99": pct(during, 0.99), "max": max(during or [0]),
        "stall": stall(tx, t0, t1),
        "tps_base": len([1 for t in tx if w.started + 2 <= t[1] < t0 - 0.5]) / max(0.1, t0 - 0.5 - w.started - 2),
        "tps": len([1 for t in tx if t0 <= t[1] < t1]) / max(0.1, t1 - t0),
        "by_kind": {k: pct([t[2] for t in tx if t[3] == i and t[0] < t1 and t[1] > t0], 0.99)
                    for i, k in enumerate(["read", "update", "insert"])},
        "note": note,
        "phases": phases,
        "stderr": err,
    }
    m = re.search(r"backfill of public\.accounts done: (\d+) rows in \d+ batches, ([\d.]+) s \((\d+) rows/s\)", note)
    if m:
        res["backfill_rows_s"] = int(m.group(3))
    if mode == "UPDATE":
        res["backfill_rows_s"] = args.rows / max(0.001, t1 - t0)
    if mode == "expert":
        res["backfill_rows_s"] = res_rows
    m = re.search(r"probe p90 ([\d.]+) ms during batches, paused ([\d.]+) s", note)
    if m:
        res["pacing"] = f"probe p90 {m.group(1)} ms in batches, paused {m.group(2)} s"
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return res


def summary(results, args):
    """Medians per mode, and the medians of the per-round ratios."""
    med = statistics.median
    modes = args.modes.split(",")
    print(f"\nmedians over {args.rounds} round(s), modes alternated:")
    print(f"{'mode':<12} {'time s':>7} {'p99 x':>6} {'rows/s':>8} {'errors':>6}  phases (s)")
    for m in modes:
        rs = [r for r in results if r["mode"] == m]
        ratios = [r["p99"] / r["base_p99"] for r in rs if r["base_p99"]]
        rows = [r["backfill_rows_s"] for r in rs if r.get("backfill_rows_s")]
        names = [k for k, _ in rs[0]["phases"]]
        ph = ", ".join(f"{k} {med([dict(r['phases']).get(k, 0) for r in rs]):.1f}" for k in names)
        print(f"{m:<12} {med([r['seconds'] for r in rs]):>7.1f} {med(ratios) if ratios else float('nan'):>6.2f} "
              f"{med(rows) if rows else 0:>8.0f} {sum(r['errors'] for r in rs):>6}  {ph}")

    def ratio(a, b):
        xs = []
        for rnd in range(args.rounds):
            ra = next((r for r in results if r["mode"] == a and r["round"] == rnd), None)
            rb = next((r for r in results if r["mode"] == b and r["round"] == rnd), None)
            if ra and rb and ra.get("backfill_rows_s") and rb.get("backfill_rows_s"):
                xs.append(ra["backfill_rows_s"] / rb["backfill_rows_s"])
        if xs:
            print(f"rows/s {a} : {b}: median {med(xs):.2f} (per round: {', '.join(f'{x:.2f}' for x in xs)})")
    ratio("sluice", "expert")
    ratio("sluice fast", "expert")
    ratio("sluice fast", "UPDATE")
    ratio("sluice", "UPDATE")
    ratio("sluice", "before")
    ratio("sluice fast", "before fast")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=1900)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--baseline", type=int, default=10)
    ap.add_argument("--budget", type=int, default=40, help="seconds the workload runs for an expert or sluice mode")
    ap.add_argument("--modes", default="as written,expert,sluice,sluice fast,UPDATE")
    ap.add_argument("--no-build", action="store_true", help="use the sluice binary as it is")
    ap.add_argument("--sluice", default=os.path.join(ROOT, "target", "release", "sluice"),
                    help="the sluice binary (default target/release/sluice, built first unless --no-build)")
    ap.add_argument("--before", default="",
                    help="another sluice binary (e.g. an older build), run as the extra modes "
                         "`before` and `before fast` when named in --modes: old and new side by side")
    ap.add_argument("--rounds", type=int, default=1, help="run the modes this many times, alternated")
    ap.add_argument("--sluice-args", default="", help="extra flags for sluice up, e.g. '--target-batch-ms 50'")
    args = ap.parse_args()
    sluice = args.sluice
    if not args.no_build and args.sluice == ap.get_default("sluice"):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "sluice"], cwd=ROOT, check=True)
    make_template(args.rows)
    tmp = tempfile.mkdtemp(prefix="sluice-bench-")
    results = []
    try:
        for rnd in range(args.rounds):
            for mode in args.modes.split(","):
                print(f"round {rnd + 1}: {mode} ...  (load: {os.getloadavg()[0]:.2f})", flush=True)
                r = run_mode(mode, args, tmp, sluice, rnd)
                r["round"] = rnd
                results.append(r)
                print(f"  {r['seconds']:.1f} s, p99 {r['p99']:.2f} ms vs {r['base_p99']:.2f} before, "
                      f"rows/s {r.get('backfill_rows_s') or 0:.0f}; "
                      + ", ".join(f"{k} {v:.1f} s" for k, v in r["phases"]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.rows:,} rows, {args.clients} clients at {args.rate} tx/s (pgbench, open loop)")
    print(f"migration: {MIGRATION.strip()}\n")
    hdr = f"{'mode':<12} {'time s':>7} {'errors':>6} {'base p99':>9} {'p50':>7} {'p99':>8} {'p99 x':>6} {'max ms':>8} {'stall ms':>9} {'tps':>6} {'rows/s':>8}"
    print(hdr)
    print("-" * len(hdr))
    upd = next((r.get("backfill_rows_s") for r in results if r["mode"] == "UPDATE"), None)
    for r in results:
        if args.rounds > 1 and r["mode"] == args.modes.split(",")[0]:
            print(f"  round {r['round'] + 1}")
        ratio = r["p99"] / r["base_p99"] if r["base_p99"] else float("nan")
        rows = r.get("backfill_rows_s")
        print(f"{r['mode']:<12} {r['seconds']:>7.1f} {r['errors']:>6} {r['base_p99']:>9.2f} {r['p50']:>7.2f} {r['p99']:>8.2f} {ratio:>6.2f} {r['max']:>8.1f} {r['stall']:>9.1f} {r['tps']:>6.0f} {('%.0f' % rows) if rows else '-':>8}")
    print()
    for r in results:
        if r.get("pacing"):
            print(f"{r['mode']}: {r['pacing']}")
        print(f"{r['mode']}: p99 during by kind: " + ", ".join(f"{k} {v:.2f} ms" for k, v in r["by_kind"].items()))
        if upd and r.get("backfill_rows_s") and r["mode"] != "UPDATE":
            print(f"{r['mode']}: backfill {r['backfill_rows_s'] / upd:.0%} of one UPDATE's rows/s")
    if args.rounds > 1 or "expert" in args.modes:
        summary(results, args)
    print("\np99 x: client p99 during the migration / before it (goal <= 1.5); stall: longest time no transaction completed")
    bad = [r for r in results if r["mode"].startswith(("sluice", "before")) and r["errors"]]
    if bad:
        print("client errors in sluice modes:", [(r["mode"], r["stderr"][-500:]) for r in bad])


if __name__ == "__main__":
    main()
