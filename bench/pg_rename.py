#!/usr/bin/env python3
"""Benchmark: renaming a hot column (`ALTER TABLE accounts RENAME COLUMN balance TO amount`) on a
1,000,000-row table under load, side by side with reshape.

One command, one run, the modes alternated in each round (sluice and reshape swap places):
  as written   the RENAME verbatim with psql: every client that says `balance` fails from then on
  sluice       `sluice up` of that one-statement migration (the expand phase: `amount` beside
               `balance`, a trigger keeping them equal, paced backfill, NOT NULL proven by a
               validated check), then, timed apart, `sluice complete` (one short transaction)
  reshape      its rename (`alter_column` with `changes.name`, TOML), `reshape migration start`
               (0.11's name for `reshape migrate`), then, timed apart, `reshape migration complete`

The load is pgbench at a fixed rate, open loop: 60% point reads, 30% updates, 10% inserts, in
client sets that each name the column one way:
  old       `balance` on the table itself, from the start until the new version has run
            --overlap seconds (the rolling deploy is then over: this set stops before complete)
  new       `amount` on the table itself, from the end of the expand phase on (the new version)
  new-view  reshape only: `amount` through reshape's versioned views (search_path set to its
            migration schema, as `reshape schema-query` says), from the end of its start phase on
The new sets share half of --rate. pgbench 15 ends a client at its first SQL error, so each set
is several one-client pgbench processes run in short segments: a client that fails reconnects
after 50 ms and tries again, as an application would; each failed attempt counts one error.

Per mode and phase (expand; the overlap of old and new; complete; --after seconds of the new
version alone) it prints the time, the errors by client set, p99/max latency, and each set's
longest stall (its longest time without an answer while it ran, a failed attempt counting as an
answer and as an error) and sluice's hold lines; then the errors of the whole run per set (baseline
and stops included), the ratios sluice : reshape (stalls of the sets that did not fail) and whether
sluice met issue 14's goal (0 errors, longest stall <= lock_timeout + 50 ms, every phase). Every
database it makes is dropped at the end, also on failure (the template too, unless
--keep-template). reshape gets `sslmode=disable`: it verifies the certificate of any server that
offers TLS. Usage:

    python3 bench/pg_rename.py [--rows 1000000] [--rate 2000] [--rounds 1]
                               [--sluice PATH --no-build] [--reshape PATH] [--keep-template]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres), pgbench, a release build of sluice and
reshape (`cargo install reshape --version 0.11.2`; on PATH or --reshape).
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
from pg_add_column import PG, pct, psql, read_tx_logs, window  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = "sluice_bench_rn_tpl"
OLD, NEW = "balance", "amount"
MIGRATION = f"ALTER TABLE accounts RENAME COLUMN {OLD} TO {NEW};\n"
RESHAPE_NAME = "1_rename"  # reshape names a migration after its file (its schema: migration_1_rename)
RESHAPE_MIGRATION = f"""[[actions]]
type = "alter_column"
table = "accounts"
column = "{OLD}"

    [actions.changes]
    name = "{NEW}"
"""
MODES = ["as written", "sluice", "reshape"]
PHASES = ("expand", "overlap", "complete", "after")
RETRY_S = 0.05
RETRY_WINDOW = 1.0


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
        CREATE TABLE accounts (id bigserial PRIMARY KEY, {OLD} int NOT NULL,
                               name text NOT NULL, created timestamptz NOT NULL DEFAULT now());
        INSERT INTO accounts ({OLD}, name) SELECT g % 1000, 'user ' || g FROM generate_series(1, {rows}) g;""")
    psql(TEMPLATE, "VACUUM ANALYZE accounts")


def fresh(db):
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db} TEMPLATE {TEMPLATE}")
    # The copy is WAL-logged: checkpoint now rather than inside the next measured window.
    psql("postgres", "CHECKPOINT")


def scripts(d, rows, col):
    files = {
        "read": f"\\set id random(1, {rows})\nSELECT {col} FROM accounts WHERE id = :id;\n",
        "update": f"\\set id random(1, {rows})\nUPDATE accounts SET {col} = {col} + 1 WHERE id = :id;\n",
        "insert": f"INSERT INTO accounts ({col}, name) VALUES (0, 'new');\n",
    }
    out = []
    for (k, v), w in zip(files.items(), (6, 3, 1)):
        path = os.path.join(d, f"{k}_{col}.sql")
        with open(path, "w") as f:
            f.write(v)
        out += ["-f", f"{path}@{w}"]
    return out


class ClientSet:
    """`procs` one-client pgbench processes naming the column `col`, until stopped.

    Each runs in segments (the first 1..procs s long, so the processes restart staggered, then
    `procs` s each) so the set can be stopped between phases; a process that ends early (its
    client hit an SQL error) is restarted after RETRY_S, one error counted per ending."""

    def __init__(self, name, db, tmp, col, rate, procs, rows, search_path=None):
        self.name = name
        self.dir = os.path.join(tmp, name, "logs")
        os.makedirs(self.dir)
        self.files = scripts(os.path.dirname(self.dir), rows, col)
        self.db, self.rate, self.procs = db, max(1, rate // procs), procs
        self.env = dict(os.environ)
        if search_path:
            self.env["PGOPTIONS"] = f"-c search_path={search_path}"
        self.stop_flag = threading.Event()
        self.stop_called = None
        self.lock = threading.Lock()
        self.errors = []  # time of each failed attempt
        self.last_error = ""
        self.started = time.time()
        self.threads = [threading.Thread(target=self._client, args=(k,)) for k in range(procs)]
        for t in self.threads:
            t.start()

    def _client(self, k):
        seg, i = k + 1, 0
        while not self.stop_flag.is_set():
            cmd = ["pgbench", *PG, "-n", "-c", "1", "-j", "1", "-R", str(self.rate), "-T", str(seg),
                   "-l", "--log-prefix", os.path.join(self.dir, f"tx{k}_{i}"), *self.files, self.db]
            begun = time.time()
            p = subprocess.run(cmd, capture_output=True, text=True, env=self.env)
            ended = time.time()
            failed = len(re.findall(r"aborted in command", p.stderr))
            m = re.search(r"number of failed transactions: (\d+)", p.stdout)
            failed += int(m.group(1)) if m else 0
            if p.returncode != 0 and not failed and ended - begun < seg - 0.5:
                failed = 1  # could not connect, or another early end: the client got nothing done
            if failed:
                with self.lock:
                    self.errors += [ended] * failed
                    err = [ln for ln in p.stderr.splitlines() if "ERROR" in ln or "error" in ln]
                    self.last_error = (err or [p.stderr.strip()])[0][-200:]
                time.sleep(RETRY_S)
            else:
                seg = self.procs
            i += 1

    def stop(self):
        if self.stop_called is None:
            self.stop_called = time.time()
        self.stop_flag.set()
        for t in self.threads:
            t.join()
        self.stopped = time.time()

    def load(self):
        """Reads the set's transaction logs (once it is stopped)."""
        self.txs = read_tx_logs(self.dir)
        # A failed attempt is an answer too (counted as an error, not as a stall).
        self.answers = sorted([t[1] for t in self.txs] + self.errors)
        return self.txs

    def errors_in(self, a, b):
        return len([t for t in self.errors if a <= t < b])

    def stall(self, a, b):
        """Longest time (ms) in [a, b] in which this set got no answer, counted only while it ran:
        from its first answer (a pgbench start is not a stall) to when it was asked to stop."""
        if not self.answers:
            return None
        a, b = max(a, self.answers[0]), min(b, self.stop_called)
        if b <= a:
            return None
        points = [a] + [t for t in self.answers if a < t < b] + [b]
        return max(y - x for x, y in zip(points, points[1:])) * 1000.0


def run_cmd(cmd, t0):
    """Runs a tool, keeping each output line with the second (since t0) it arrived."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [(time.time() - t0, ln.rstrip("\n")) for ln in proc.stdout]
    proc.wait()
    if proc.returncode != 0:
        print("\n".join(ln for _, ln in lines), file=sys.stderr)
        raise SystemExit(f"{' '.join(cmd[:2])} failed (exit {proc.returncode})")
    return lines


def phase(sets, tx, a, b):
    """Time, errors by set, p99/max latency of the transactions in flight in [a, b], and each set's
    longest stall (its own gaps: a set that keeps answering does not hide another set's wait)."""
    lat = window(tx, a, b)
    by_set = {s.name: s.stall(a, b) for s in sets}
    by_set = {k: v for k, v in by_set.items() if v is not None}
    errors = {s.name: s.errors_in(a, b) for s in sets}
    return {"seconds": b - a, "errors": errors, "p99": pct(lat, 0.99), "max": max(lat or [0]),
            "stall": max(by_set.values(), default=0.0), "stalls": by_set,
            # The sets that worked all through, and for RETRY_WINDOW before: a failing set's gaps
            # are its retry pauses (50 ms plus a pgbench start), not waits on the server.
            "stall_working": max((v for s in sets if (v := by_set.get(s.name)) is not None
                                  and not s.errors_in(a - RETRY_WINDOW, b)), default=0.0)}


def run_mode(mode, args, tmp, rnd):
    db = "sluice_bench_rn_" + mode.replace(" ", "_")
    tmp = os.path.join(tmp, f"round{rnd}_{mode.replace(' ', '_')}")
    mig = os.path.join(tmp, "migrations")
    os.makedirs(mig)
    if mode == "reshape":
        with open(os.path.join(mig, RESHAPE_NAME + ".toml"), "w") as f:
            f.write(RESHAPE_MIGRATION)
    else:
        with open(os.path.join(mig, "1_rename.sql"), "w") as f:
            f.write(MIGRATION)
    fresh(db)
    url = f"postgres://postgres@127.0.0.1:5432/{db}"
    sluice = [args.sluice, "--database-url", url, "--migrations-dir", mig]
    reshape = [args.reshape, "migration"]
    # reshape verifies a server certificate whenever the server offers TLS: this one is local.
    reshape_conn = ["--url", url + "?sslmode=disable"]
    sets, view_path = [], None
    try:
        old = ClientSet("old", db, tmp, OLD, args.rate, args.procs, args.rows)
        sets.append(old)
        time.sleep(args.baseline)
        t0 = time.time()
        out = {"expand": [], "complete": []}
        if mode == "as written":
            psql(db, MIGRATION)
        elif mode == "sluice":
            out["expand"] = run_cmd([*sluice, "up", "--app-version", "bench", *args.sluice_args.split()], t0)
        else:
            out["expand"] = run_cmd([*reshape, "start", *reshape_conn, "--dirs", mig], t0)
        t1 = time.time()
        # The new application version starts once the expand phase is done.
        share = args.rate // (4 if mode == "reshape" else 2)
        sets.append(ClientSet("new", db, tmp, NEW, share, max(1, args.procs // 2), args.rows))
        if mode == "reshape":
            # The setting reshape tells the application to use for the new version.
            q = subprocess.run([args.reshape, "schema-query", "--dirs", mig],
                               capture_output=True, text=True, check=True).stdout
            path = re.search(r"SET search_path TO (\S+)", q)
            if not path:
                raise SystemExit(f"reshape schema-query said: {q.strip()}")
            view_path = path.group(1)
            sets.append(ClientSet("new-view", db, tmp, NEW, share, max(1, args.procs // 2),
                                  args.rows, search_path=view_path))
        news = sets[1:]
        time.sleep(args.overlap)
        old.stop()  # the rollout is over: only the new version runs during complete
        t2 = time.time()
        if mode == "sluice":
            out["complete"] = run_cmd([*sluice, "complete", *args.sluice_args.split()], t2)
        elif mode == "reshape":
            out["complete"] = run_cmd([*reshape, "complete", *reshape_conn], t2)
        t3 = time.time()
        time.sleep(args.after)
    finally:
        for s in sets:
            s.stop()
        if sys.exc_info()[0] is not None:
            psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", check=False)
    t4 = min(s.stop_called for s in news)
    tx = [t for s in sets for t in s.load()]
    res = {"mode": mode, "round": rnd, "out": out, "view_path": view_path,
           "base_p99": pct(window(tx, old.started + 2, t0 - 0.5), 0.99),
           "base_stall": phase(sets, tx, old.started + 2, t0 - 0.5)["stall"],
           "expand": phase(sets, tx, t0, t1), "overlap": phase(sets, tx, t1, t2),
           "complete": phase(sets, tx, t2, t3), "after": phase(sets, tx, t3, t4),
           # Every failed attempt of the whole run, the baseline and the stops included.
           "total_errors": {s.name: len(s.errors) for s in sets},
           "last_errors": {s.name: s.last_error for s in sets if s.last_error}}
    # Every mode must end where the rename as written does.
    res["columns"] = psql(db, "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute "
                              "WHERE attrelid = 'accounts'::regclass AND attnum > 0 AND NOT attisdropped").stdout.strip()
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return res


def stalls(p):
    return " ".join(f"{k} {v:.1f}" for k, v in p["stalls"].items()) or "-"


def errs(p):
    return " ".join(f"{k} {v}" for k, v in p["errors"].items() if v) or "0"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=2000, help="tx/s of the old set; the new sets share half of it")
    ap.add_argument("--procs", type=int, default=4, help="pgbench processes (clients) in the old set")
    ap.add_argument("--baseline", type=int, default=10, help="seconds of load before the expand phase")
    ap.add_argument("--overlap", type=int, default=5, help="seconds old and new run side by side")
    ap.add_argument("--after", type=int, default=2, help="seconds the new version runs after complete")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--rounds", type=int, default=1, help="rounds; sluice and reshape swap places each round")
    ap.add_argument("--no-build", action="store_true", help="use the sluice binary as it is")
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    ap.add_argument("--sluice", default=os.path.join(target, "release", "sluice"))
    ap.add_argument("--sluice-args", default="", help="extra flags for sluice up and complete, e.g. '--lock-timeout 500'")
    ap.add_argument("--reshape", default=shutil.which("reshape") or "reshape")
    ap.add_argument("--keep-template", action="store_true",
                    help=f"keep the template database {TEMPLATE} for the next run (dropped by default)")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "sluice"], cwd=ROOT, check=True)
    modes = args.modes.split(",")
    if "reshape" in modes:
        v = subprocess.run([args.reshape, "--version"], capture_output=True, text=True)
        if v.returncode != 0:
            raise SystemExit(f"cannot run reshape ({args.reshape}): install it with "
                             "`cargo install reshape --version 0.11.2` or pass --reshape PATH")
        reshape_version = v.stdout.strip()
    make_template(args.rows)
    tmp = tempfile.mkdtemp(prefix="sluice-bench-rn-")
    results = []
    try:
        for rnd in range(args.rounds):
            order = modes if rnd % 2 == 0 else [m for m in modes if m not in ("sluice", "reshape")] + \
                [m for m in reversed(modes) if m in ("sluice", "reshape")]
            for mode in order:
                print(f"round {rnd + 1}: {mode} ...  (load: {os.getloadavg()[0]:.2f})", flush=True)
                r = run_mode(mode, args, tmp, rnd)
                results.append(r)
                e, c = r["expand"], r["complete"]
                print(f"  expand {e['seconds']:.1f} s, errors {errs(e)}, stall {e['stall']:.0f} ms; "
                      f"overlap errors {errs(r['overlap'])}; complete {c['seconds']:.2f} s, "
                      f"errors {errs(c)}, stall {c['stall']:.0f} ms; after errors {errs(r['after'])}",
                      flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.keep_template:
            psql("postgres", f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", check=False)

    lt = re.search(r"--lock-timeout[ =](\d+)", args.sluice_args)
    lock_timeout = int(lt.group(1)) if lt else 1000
    print(f"\n{args.rows:,} rows; pgbench open loop, old set {args.rate} tx/s ({args.procs} clients), "
          f"new set(s) {args.rate // 2} tx/s in all; overlap {args.overlap} s")
    print(f"migration: {MIGRATION.strip()}" + (f"  (reshape: {reshape_version})" if "reshape" in modes else ""))
    print("errors by client set: old = `balance` on the table, new = `amount` on the table, "
          "new-view = `amount` through reshape's views\n")
    hdr = (f"{'mode':<11} {'phase':<9} {'time s':>7} {'base p99':>9} {'p99':>8} {'p99 x':>6} {'max ms':>8} "
           f"{'stall ms by set':<30} errors")
    print(hdr)
    print("-" * (len(hdr) + 12))
    for r in results:
        for ph in PHASES:
            p = r[ph]
            ratio = p["p99"] / r["base_p99"] if r["base_p99"] else float("nan")
            print(f"{r['mode']:<11} {ph:<9} {p['seconds']:>7.2f} {r['base_p99']:>9.2f} {p['p99']:>8.2f} "
                  f"{ratio:>6.2f} {p['max']:>8.1f} {stalls(p):<30} {errs(p)}")
        print(f"{'':<11} pre-window stall {r['base_stall']:.1f} ms; errors over the whole run: "
              + (", ".join(f"{k} {v}" for k, v in r["total_errors"].items())) + f"; columns after: {r['columns']}"
              + (f"; new-view search_path {r['view_path']}" if r["view_path"] else ""))
    print()
    for r in results:
        for ph in ("expand", "complete"):
            held = [(t, ln) for t, ln in r["out"][ph] if re.search(r"held|(expanded|completed) \S+ in \d+ ms|backfill of \S+ done", ln)]
            for t, ln in held:
                print(f"{r['mode']} round {r['round'] + 1} {ph} @{t:6.1f} s: {ln.strip()[:170]}")
        for k, v in r["last_errors"].items():
            print(f"{r['mode']} round {r['round'] + 1}: a `{k}` client error: {v}")

    med = statistics.median

    def m(mode, ph, key):
        xs = [r[ph][key] for r in results if r["mode"] == mode]
        return med(xs) if xs else None

    def ratio(label, a, b):
        if a is not None and b:
            unit = "s" if "time" in label else "ms"
            print(f"  {label}: {a / b:.2f} ({a:.2f} / {b:.2f} {unit})")
    print(f"\nratios (medians over {args.rounds} round(s); stalls of the sets without errors in the phase "
          f"or the {RETRY_WINDOW:.0f} s before it):")
    ratio("expand time sluice / reshape", m("sluice", "expand", "seconds"), m("reshape", "expand", "seconds"))
    ratio("expand stall sluice / reshape", m("sluice", "expand", "stall_working"),
          m("reshape", "expand", "stall_working"))
    ratio("complete time sluice / reshape", m("sluice", "complete", "seconds"), m("reshape", "complete", "seconds"))
    ratio("complete stall sluice / reshape", m("sluice", "complete", "stall_working"),
          m("reshape", "complete", "stall_working"))
    for mode in modes:
        tot = {}
        for r in results:
            if r["mode"] == mode:
                for k, v in r["total_errors"].items():
                    tot[k] = tot.get(k, 0) + v
        print(f"  {mode}: client errors over the whole run(s): "
              + (", ".join(f"{k} {v}" for k, v in tot.items()) or "0"))
    ss = [r for r in results if r["mode"] == "sluice"]
    if ss:
        worst = max(r[ph]["stall"] for r in ss for ph in PHASES)
        errors = sum(sum(r["total_errors"].values()) for r in ss)
        ok = errors == 0 and worst <= lock_timeout + 50
        print(f"\nsluice, expand to after complete: {errors} errors, longest stall {worst:.0f} ms "
              f"(goal: 0 errors, stall <= lock_timeout {lock_timeout} + 50 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
