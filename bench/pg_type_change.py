#!/usr/bin/env python3
"""Benchmark: `integer -> bigint` on a hot primary key that a 1,000,000-row child table references.

One command, one run, side by side on the same machine and the same workload:
  as written   `ALTER TABLE items ALTER COLUMN order_id TYPE bigint` then `ALTER TABLE orders
               ALTER COLUMN id TYPE bigint`, verbatim with psql (each rewrites its table and
               indexes under ACCESS EXCLUSIVE: the end state sluice reaches)
  sluice       `sluice up` of the one statement a team writes (`ALTER TABLE orders ALTER COLUMN id
               TYPE bigint`): the child's referencing column is widened first, then the parent,
               each staged (shadow column kept equal by a trigger, paced backfill, indexes built
               CONCURRENTLY, constraints NOT VALID + VALIDATE, one short swap)
  UPDATE       one `UPDATE orders SET id_new = id` over the whole parent (rows/s reference for the
               backfill: the issue's goal is >= 60% of it)

The workload is pgbench: 8 clients at a fixed total rate, open loop, 50% point reads of orders,
20% updates of orders, 20% inserts into items (a random existing order), 10% reads of items by
order. Each mode gets a fresh copy of the tables. Usage:

    python3 bench/pg_type_change.py [--rows 1000000] [--rate 2000] [--rounds 1]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres) and a release build of sluice.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_add_column import Workload, pct, psql, stall, window  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = "sluice_bench_tc_tpl"
MIGRATION = "ALTER TABLE orders ALTER COLUMN id TYPE bigint;\n"
AS_WRITTEN = [
    "ALTER TABLE items ALTER COLUMN order_id TYPE bigint",
    "ALTER TABLE orders ALTER COLUMN id TYPE bigint",
]


def make_template(rows):
    have = psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{TEMPLATE}'").stdout.strip()
    if have:
        n = psql(TEMPLATE, "SELECT count(*) FROM items", check=False).stdout.strip()
        if n == str(rows):
            return
        psql("postgres", f"DROP DATABASE {TEMPLATE} WITH (FORCE)")
    print(f"creating the {rows:,}-row parent and child template tables ...", flush=True)
    psql("postgres", f"CREATE DATABASE {TEMPLATE}")
    psql(TEMPLATE, f"""
        CREATE TABLE orders (id serial PRIMARY KEY, amount int NOT NULL, note text NOT NULL);
        CREATE TABLE items (id bigserial PRIMARY KEY,
                            order_id int NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
                            qty int NOT NULL);
        CREATE INDEX items_order_id_idx ON items (order_id);
        INSERT INTO orders (amount, note) SELECT g % 1000, 'order ' || g FROM generate_series(1, {rows}) g;
        INSERT INTO items (order_id, qty) SELECT g, g % 7 FROM generate_series(1, {rows}) g;""")
    psql(TEMPLATE, "VACUUM ANALYZE orders")
    psql(TEMPLATE, "VACUUM ANALYZE items")


def fresh(db):
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db} TEMPLATE {TEMPLATE}")
    # The copy is WAL-logged (PostgreSQL 15): without a checkpoint now, the one it brings on
    # would land in the measured window of whichever mode runs next.
    psql("postgres", "CHECKPOINT")


def scripts(tmp, rows):
    files = {
        "read": f"\\set id random(1, {rows})\nSELECT amount FROM orders WHERE id = :id;\n",
        "update": f"\\set id random(1, {rows})\nUPDATE orders SET amount = amount + 1 WHERE id = :id;\n",
        "insert": f"\\set id random(1, {rows})\nINSERT INTO items (order_id, qty) VALUES (:id, 1);\n",
        "child": f"\\set id random(1, {rows})\nSELECT count(*) FROM items WHERE order_id = :id;\n",
    }
    paths = {}
    for k, v in files.items():
        paths[k] = os.path.join(tmp, k + ".sql")
        with open(paths[k], "w") as f:
            f.write(v)
    return ["-f", paths["read"] + "@5", "-f", paths["update"] + "@2",
            "-f", paths["insert"] + "@2", "-f", paths["child"] + "@1"]


def run_mode(mode, args, tmp, sluice, rnd):
    db = "sluice_bench_tc_" + mode.replace(" ", "_").lower()
    tmp = os.path.join(tmp, f"round{rnd}")
    os.makedirs(tmp, exist_ok=True)
    fresh(db)
    proj = os.path.join(tmp, db + "_proj")
    os.makedirs(os.path.join(proj, "migrations"))
    with open(os.path.join(proj, "migrations", "1_widen.sql"), "w") as f:
        f.write(MIGRATION)
    seconds = args.baseline + {"as written": 40, "UPDATE": 40}.get(mode, args.budget)
    w = Workload(db, tmp, mode.replace(" ", "_"), args, seconds, scripts(tmp, args.rows))
    time.sleep(args.baseline)
    t0 = time.time()
    res = {"mode": mode, "round": rnd, "backfills": []}
    lines = []
    if mode == "as written":
        for stmt in AS_WRITTEN:
            psql(db, stmt)
    elif mode == "UPDATE":
        psql(db, "ALTER TABLE orders ADD COLUMN id_new bigint")
        t0 = time.time()
        psql(db, "UPDATE orders SET id_new = id")
    else:
        cmd = [sluice, "up", "--database-url", f"postgres://postgres@127.0.0.1:5432/{db}",
               "--migrations-dir", os.path.join(proj, "migrations"), "--app-version", "bench",
               *args.sluice_args.split()]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out_box = []
        reader = threading.Thread(target=lambda: out_box.append(proc.stdout.read()))
        reader.start()
        for line in proc.stderr:
            lines.append((time.time() - t0, line.rstrip("\n")))
        proc.wait()
        reader.join()
        if proc.returncode != 0:
            print(out_box[0] if out_box else "", "\n".join(l for _, l in lines), file=sys.stderr)
            raise SystemExit(f"sluice failed in mode {mode}")
        text = "\n".join(l for _, l in lines) + "\n" + (out_box[0] if out_box else "")
        for m in re.finditer(r"backfill of (\S+) done: (\d+) rows in \d+ batches, ([\d.]+) s \((\d+) rows/s\)", text):
            res["backfills"].append((m.group(1), int(m.group(2)), float(m.group(3)), int(m.group(4))))
    t1 = time.time()
    if t1 > w.started + seconds:
        print(f"warning: {mode} outlasted the workload ({t1 - t0:.0f} s); raise --budget", file=sys.stderr)
    tx, errors, err = w.finish()
    base = window(tx, w.started + 2, t0 - 0.5)
    during = window(tx, t0, t1)
    res.update({
        "seconds": t1 - t0, "errors": errors, "stderr": err, "lines": lines,
        "base_p99": pct(base, 0.99), "p50": pct(during, 0.5), "p99": pct(during, 0.99),
        "max": max(during or [0]), "stall": stall(tx, t0, t1),
        "tps": len([1 for t in tx if t0 <= t[1] < t1]) / max(0.1, t1 - t0),
    })
    if mode == "UPDATE":
        res["rows_s"] = args.rows / max(0.001, t1 - t0)
    elif res["backfills"]:
        rows = sum(b[1] for b in res["backfills"])
        secs = sum(b[2] for b in res["backfills"])
        res["rows_s"] = rows / max(0.001, secs)
    # The schema sluice left must be the as-written one: both columns bigint, the key in place.
    types = psql(db, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                     "(attrelid, attname) IN (('orders'::regclass, 'id'), ('items'::regclass, 'order_id')) "
                     "ORDER BY attrelid::regclass::text").stdout.split()
    res["types"] = types
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--baseline", type=int, default=10)
    ap.add_argument("--budget", type=int, default=90, help="seconds the workload runs for a sluice mode")
    ap.add_argument("--modes", default="as written,sluice,UPDATE")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-build", action="store_true", help="use target/release/sluice as it is")
    ap.add_argument("--sluice", default=os.path.join(ROOT, "target", "release", "sluice"))
    ap.add_argument("--sluice-args", default="")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "sluice"], cwd=ROOT, check=True)
    make_template(args.rows)
    tmp = tempfile.mkdtemp(prefix="sluice-bench-tc-")
    results = []
    try:
        for rnd in range(args.rounds):
            for mode in args.modes.split(","):
                print(f"round {rnd + 1}: {mode} ...  (load: {os.getloadavg()[0]:.2f})", flush=True)
                r = run_mode(mode, args, tmp, args.sluice, rnd)
                results.append(r)
                print(f"  {r['seconds']:.1f} s, {r['errors']} errors, p99 {r['p99']:.2f} ms vs "
                      f"{r['base_p99']:.2f} before, stall {r['stall']:.0f} ms, rows/s {r.get('rows_s', 0):.0f}",
                      flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.rows:,}-row parent + {args.rows:,}-row child, {args.clients} clients at {args.rate} tx/s (pgbench, open loop)")
    print(f"migration: {MIGRATION.strip()}\n")
    hdr = (f"{'mode':<11} {'time s':>7} {'errors':>6} {'base p99':>9} {'p99':>8} {'p99 x':>6} "
           f"{'max ms':>8} {'stall ms':>9} {'tps':>6} {'rows/s':>8}  types")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        ratio = r["p99"] / r["base_p99"] if r["base_p99"] else float("nan")
        print(f"{r['mode']:<11} {r['seconds']:>7.1f} {r['errors']:>6} {r['base_p99']:>9.2f} {r['p99']:>8.2f} "
              f"{ratio:>6.2f} {r['max']:>8.1f} {r['stall']:>9.1f} {r['tps']:>6.0f} "
              f"{r.get('rows_s', 0):>8.0f}  {'/'.join(r['types'])}")
    print()
    for r in results:
        for b in r["backfills"]:
            print(f"{r['mode']} round {r['round'] + 1}: backfill {b[0]}: {b[1]} rows, {b[2]:.1f} s, {b[3]} rows/s")
    med = statistics.median
    for rnd in range(args.rounds):
        s = next((r for r in results if r["mode"] == "sluice" and r["round"] == rnd), None)
        u = next((r for r in results if r["mode"] == "UPDATE" and r["round"] == rnd), None)
        if s and u and s.get("rows_s"):
            print(f"round {rnd + 1}: sluice backfill {s['rows_s'] / u['rows_s']:.0%} of one UPDATE's rows/s (goal >= 60%)")
    ss = [r for r in results if r["mode"] == "sluice"]
    if ss:
        print(f"sluice: median stall {med([r['stall'] for r in ss]):.0f} ms, errors {sum(r['errors'] for r in ss)}"
              " (goal: 0 errors, stall <= lock_timeout + 50 ms)")
    for r in ss:
        # Each step that blocks every query says how long it held its lock (the attempt that
        # succeeded); the swaps are the "swap step's duration".
        held = [re.match(r"(?:sluice: )?(?:(referencing column \S+): )?(.*): held ACCESS EXCLUSIVE for ([0-9.]+) ms"
                         r"(?:, after waiting ([0-9.]+) ms for the locks)?", l)
                for _, l in r["lines"]]
        held = [(m.group(1) or "parent", m.group(2), float(m.group(3)), float(m.group(4) or 0))
                for m in held if m]
        # The wait counts too: queries queue behind a waiting lock request as behind a granted one.
        swaps = [f"{who} {ms:.1f} ms (+{wait:.1f} ms waiting)" for who, what, ms, wait in held
                 if what.startswith("swap")]
        print(f"sluice round {r['round'] + 1}: swap held ACCESS EXCLUSIVE: {', '.join(swaps) or '?'}; "
              f"longest hold of any step {max((ms for _, _, ms, _ in held), default=0):.1f} ms")
    for r in ss:
        print(f"\nsluice round {r['round'] + 1}, where the seconds went (progress lines, s from start):")
        for t, l in r["lines"]:
            if re.search(r"backfill .* done|swap|index|VALIDATE|applied|widen|shadow|trigger|held", l, re.I):
                print(f"  {t:7.1f}  {l[:160]}")
    bad = [r for r in results if r["mode"] == "sluice" and r["errors"]]
    if bad:
        print("client errors in sluice mode:", [r["stderr"][-500:] for r in bad])


if __name__ == "__main__":
    main()
