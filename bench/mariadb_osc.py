#!/usr/bin/env python3
"""Online ALTER on MariaDB under load: the same `ALTER TABLE acc MODIFY balance BIGINT NOT NULL` on a
1,000,000-row table while 8 clients write, run (a) as written, (b) by `sluice up`, (c) by
pt-online-schema-change. Prints, per run: total time, rows/s, client ops/s, p99/max latency and
errors while the ALTER runs, the server's row lock waits meanwhile, sluice's phases with their own
p99, and the ratios sluice : pt-osc.

    python3 bench/mariadb_osc.py [--rows 1000000] [--clients 8] [--only sluice,ptosc,written] [--release]
                                 [--rate 1900 | --rate 0] [--sluice-args '--chunk-ms 50'] [--rounds 3]
                                 [--sluice PATH --no-build] [--buffer-pool-mb 1024]
                                 [--before PATH] [--paced-args '--copy-commit-factor 3'] [--timeline]

--before runs a second binary (main's) as mode `before`, --paced-args this checkout's binary with
those arguments as mode `paced`. Per phase it prints the p99 by kind twice, from each query's
scheduled time (open loop, the figure the table reports) and from its send (the server's share),
and the server's redo MB/s, fsyncs/s, pages flushed/s, checkpoint age and the machine's CPU.

With --rounds N the modes run N times, alternated (the order reversed every other round), and the
median of each figure and of the per-round ratios sluice : pt-osc is printed at the end.

Needs the local MariaDB (127.0.0.1:3306, root, no password), python3-pymysql and percona-toolkit
(`apt-get install -y python3-pymysql percona-toolkit`). Builds sluice (debug unless --release: the
copy is server-side work, the binary's speed barely matters).
"""
import argparse, os, random, subprocess, sys, tempfile, threading, time

try:
    import pymysql
except ImportError:  # Debian's python3-pymysql, when python3 is not the system interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    import pymysql

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DB = f"sluice_bench_osc_{os.getpid()}"
ALTER = "MODIFY balance BIGINT NOT NULL"


def conn(db=DB, autocommit=True):
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=db,
                           autocommit=autocommit)


def run(c, sql):
    with c.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def fresh_table(rows):
    c = conn()
    run(c, "DROP TABLE IF EXISTS acc, _acc_old, _acc_new, _acc_chg, sluice_online, sluice_migrations, "
           "sluice_events, sluice_snapshots, sluice_meta, sluice_lock")
    run(c, "CREATE TABLE acc (id INT AUTO_INCREMENT PRIMARY KEY, balance INT NULL, note VARCHAR(40) NOT NULL, "
           "updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, KEY (note)) ENGINE=InnoDB")
    run(c, f"INSERT INTO acc (id, balance, note) SELECT seq, seq % 100000, CONCAT('note-', seq) "
           f"FROM seq_1_to_{rows}")
    run(c, "ANALYZE TABLE acc")
    c.close()


class Workload:
    """N clients: 50% update, 20% insert, 10% delete, 20% point read; autocommit. With a rate, each
    client sends at rate/N per second on a fixed schedule and latency counts from the scheduled
    time (open loop, so waiting behind a lock is not hidden); rate 0 sends as fast as it can."""

    def __init__(self, n, rows, rate=0.0):
        self.n, self.rows = n, rows
        self.interval = n / rate if rate > 0 else 0.0
        self.stop = threading.Event()
        self.lat = []  # (start, seconds, kind, service seconds: from the send, not the schedule)
        self.errors = []
        self.lock = threading.Lock()

    def client(self, seed):
        rnd = random.Random(seed)
        c = conn()
        local, errs = [], []
        due = time.monotonic()
        while not self.stop.is_set():
            if self.interval:
                due += self.interval
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
            k = rnd.random()
            i = rnd.randint(1, self.rows)
            if k < 0.5:
                kind, sql = "update", f"UPDATE acc SET balance = balance + 1, updated_at = NOW() WHERE id = {i}"
            elif k < 0.7:
                kind, sql = "insert", f"INSERT INTO acc (balance, note) VALUES ({rnd.randint(0, 100000)}, 'new')"
            elif k < 0.8:
                kind, sql = "delete", f"DELETE FROM acc WHERE id = {i}"
            else:
                kind, sql = "read", f"SELECT balance FROM acc WHERE id = {i}"
            sent = time.monotonic()
            t0 = due if self.interval else sent
            try:
                run(c, sql)
            except pymysql.MySQLError as e:
                errs.append((t0, str(e)[:120]))
                try:
                    c.close()
                except Exception:
                    pass
                c = conn()
            done = time.monotonic()
            local.append((t0, done - t0, kind, done - sent))
        with self.lock:
            self.lat.extend(local)
            self.errors.extend(errs)

    def start(self):
        self.threads = [threading.Thread(target=self.client, args=(s,)) for s in range(self.n)]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def window(self, t0, t1, kind=None, service=False):
        """(ops/s, p99 ms, max ms, errors, n) of the queries scheduled in [t0, t1]; with `service`,
        over the time from each query's send to its answer (the server's share, without the wait
        behind the same client's earlier queries that the open loop counts)."""
        lats = sorted(v if service else l for s, l, k, v in self.lat if t0 <= s <= t1 and kind in (None, k))
        errs = [e for s, e in self.errors if t0 <= s <= t1]
        if not lats:
            return 0.0, 0.0, 0.0, errs, 0
        p99 = lats[min(len(lats) - 1, int(len(lats) * 0.99))]
        return len(lats) / max(t1 - t0, 1e-9), p99 * 1000, lats[-1] * 1000, errs, len(lats)


STATUS = ("Innodb_os_log_written", "Innodb_data_fsyncs", "Innodb_log_waits", "Innodb_buffer_pool_pages_flushed",
          "Innodb_checkpoint_age", "Threads_running", "Innodb_row_lock_waits", "Innodb_buffer_pool_wait_free")


def cpu_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


class Sampler:
    """The server's redo, flushing and thread counters and the machine's CPU every `every` s, so a
    stretch of slow client queries can be set against what the server did then (redo written,
    log fsyncs, checkpoint age, pages flushed, threads running, CPU busy)."""

    def __init__(self, every=0.1):
        self.every, self.samples, self.stop = every, [], threading.Event()

    def run(self):
        c = conn()
        q = "SHOW GLOBAL STATUS WHERE Variable_name IN (" + ", ".join(f"'{v}'" for v in STATUS) + ")"
        while not self.stop.is_set():
            st = {k: int(v) for k, v in run(c, q)}
            self.samples.append((time.monotonic(), st, cpu_busy()))
            self.stop.wait(self.every)
        c.close()

    def start(self):
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def finish(self):
        self.stop.set()
        self.thread.join()

    def rates(self, t0, t1):
        """Over [t0, t1]: redo MB/s, log fsyncs/s, pages flushed/s, log waits, max checkpoint age
        MB, mean threads running, CPU busy %."""
        ss = [x for x in self.samples if t0 - self.every <= x[0] <= t1 + self.every]
        if len(ss) < 2:
            return None
        (a, sa, ca), (b, sb, cb) = ss[0], ss[-1]
        d = lambda k: (sb[k] - sa[k]) / max(b - a, 1e-9)
        return dict(redo=d("Innodb_os_log_written") / 1e6, fsyncs=d("Innodb_data_fsyncs"),
                    flushed=d("Innodb_buffer_pool_pages_flushed"), log_waits=sb["Innodb_log_waits"] - sa["Innodb_log_waits"],
                    wait_free=sb["Innodb_buffer_pool_wait_free"] - sa["Innodb_buffer_pool_wait_free"],
                    ckpt=max(s["Innodb_checkpoint_age"] for _, s, _ in ss) / 1e6,
                    running=sum(s["Threads_running"] for _, s, _ in ss) / len(ss),
                    cpu=100.0 * (cb[0] - ca[0]) / max(cb[1] - ca[1], 1))


def row_locks():
    """The server's row lock waits and their total ms so far: a log apply waiting for the copy's
    chunk (or pt-osc's copy for clients) shows here, not in the clients' latency alone."""
    c = conn()
    st = dict(run(c, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_row_lock_waits', 'Innodb_row_lock_time')"))
    c.close()
    return int(st["Innodb_row_lock_waits"]), int(st["Innodb_row_lock_time"])


def as_written():
    c = conn()
    run(c, f"ALTER TABLE acc {ALTER}")
    c.close()


def sluice(binary, extra_args):
    """Runs `sluice up`; returns the writes-held figure and its progress lines with the time each
    arrived, so the client latency can be split by phase."""
    d = tempfile.mkdtemp(prefix="sluice-bench-")
    os.mkdir(os.path.join(d, "migrations"))
    with open(os.path.join(d, "migrations", "1_balance_bigint.sql"), "w") as f:
        f.write(f"ALTER TABLE acc {ALTER};\n")
    # Progress every 250 ms: the chunk size and copy rate over time, for the timeline.
    env = dict(os.environ, DATABASE_URL=f"mysql://root@127.0.0.1:3306/{DB}", SLUICE_PROGRESS_INTERVAL_MS="250")
    p = subprocess.Popen([binary, "up"] + extra_args, cwd=d, env=env, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stderr:
        lines.append((time.monotonic(), line.rstrip("\n")))
    if p.wait() != 0:
        sys.exit("sluice up failed:\n" + "\n".join(l for _, l in lines))
    for _, line in lines:
        print(f"    | {line}", flush=True)
    held = [l for _, l in lines if "(writes held" in l]
    return (held[0].split("(writes held ")[1].split(")")[0] if held else "?"), lines


# sluice's phases, each ending at the first progress line containing the marker.
PHASES = [("setup", "copying `"), ("copy + verify", "copied and verified"), ("index build", "secondary index"),
          ("catch-up", "logged change(s) and verified"), ("cut-over", "swapped with its online copy")]
KINDS = ("read", "update", "insert", "delete")


def ptosc():
    r = subprocess.run(["pt-online-schema-change", "--alter", ALTER, f"D={DB},t=acc,h=127.0.0.1,u=root",
                        "--execute", "--recursion-method=none", "--no-check-alter", "--preserve-triggers",
                        "--set-vars", "lock_wait_timeout=1"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"pt-online-schema-change failed: {r.stdout}\n{r.stderr}")


def verify(rows):
    c = conn()
    t = run(c, "SELECT COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
               "AND TABLE_NAME = 'acc' AND COLUMN_NAME = 'balance'")
    n = run(c, "SELECT COUNT(*) FROM acc")[0][0]
    c.close()
    return f"{t[0][0]} {'NULL' if t[0][1] == 'YES' else 'NOT NULL'}, {n} rows"


def one(name, args, binary):
    """One mode on a fresh table under the workload: its figures, against the same run's pre-window."""
    fresh_table(args.rows)
    w = Workload(args.clients, args.rows, args.rate)
    sampler = Sampler()
    sampler.start()
    w.start()
    b0 = time.monotonic()
    time.sleep(3)
    locks0 = row_locks()
    b1 = t0 = time.monotonic()
    extra, phases = "", []
    if name == "written":
        as_written()
    elif name in ("sluice", "before", "paced"):
        held, lines = sluice(args.before if name == "before" else binary,
                             args.sluice_args.split() + (args.paced_args.split() if name == "paced" else []))
        extra = f"writes held {held}"
        start = t0
        for label, marker in PHASES:
            end = next((t for t, l in lines if marker in l), None)
            if end is not None:
                phases.append((label, start, end))
                start = end
    elif name == "ptosc":
        ptosc()
    t1 = time.monotonic()
    locks = [b - a for a, b in zip(locks0, row_locks())]
    time.sleep(1)
    w.finish()
    sampler.finish()
    ops, p99, mx, errs, n = w.window(t0, t1)
    base = w.window(b0, b1)
    kinds = lambda a, b: {k: (w.window(a, b, k)[1], w.window(a, b, k, True)[1]) for k in KINDS}
    r = dict(secs=t1 - t0, ops=ops, p99=p99, max=mx, errors=len(errs), base=base, sample=errs[:3], extra=extra,
             check=verify(args.rows), locks=locks, base_kinds=kinds(b0, b1), base_rates=sampler.rates(b0, b1),
             kinds=kinds(t0, t1), rates=sampler.rates(t0, t1),
             phases=[(label, b - a, w.window(a, b), kinds(a, b), sampler.rates(a, b)) for label, a, b in phases])
    print(f"{name}: done in {t1 - t0:.1f} s ({r['check']}) {extra}", flush=True)
    if args.timeline:
        timeline(w, sampler, t0, t1, base[1], phases, lines if name in ("sluice", "before", "paced") else [])
    return r


def timeline(w, sampler, t0, t1, base_p99, phases, lines, step=0.1):
    """Every 100 ms stretch (by the queries' scheduled start) in which some query took over 5x the
    pre-window p99: its queries, p99 and max, the slow ones by kind, what the server did then and
    the progress lines sluice printed then."""
    print(f"  timeline (100 ms stretches with a query over {5 * base_p99:.1f} ms; server rates over the stretch):")
    t = t0 - 0.5
    while t < t1 + 0.5:
        lat = [(l, k) for s, l, k, _ in w.lat if t <= s < t + step]
        slow = [(l, k) for l, k in lat if l * 1000 > 5 * base_p99]
        said = [l for at, l in lines if t <= at < t + step]
        if slow or said:
            phase = next((label for label, a, b in phases if a <= t < b), "-")
            ls = sorted(l for l, _ in lat)
            by = ", ".join(f"{k} {sum(1 for _, kk in slow if kk == k)}" for k in KINDS if any(kk == k for _, kk in slow))
            r = sampler.rates(t, t + step) or {}
            print(f"   {t - t0:+6.2f} {phase:<14} n {len(lat):>3} p99 {ls[min(len(ls) - 1, int(len(ls) * 0.99))] * 1000 if ls else 0:>6.1f}"
                  f" max {ls[-1] * 1000 if ls else 0:>6.1f} ms slow[{by}] redo {r.get('redo', 0):5.1f} MB/s fsync {r.get('fsyncs', 0):5.0f}/s"
                  f" flushed {r.get('flushed', 0):6.0f}/s ckpt {r.get('ckpt', 0):5.1f} MB run {r.get('running', 0):4.1f}"
                  f" cpu {r.get('cpu', 0):3.0f}%" + "".join(f"\n        | {l[:110]}" for l in said))
        t += step


def table(rows, clients, results):
    print(f"{'run':<10}{'total s':>9}{'rows/s':>10}{'client ops/s':>14}{'p99 ms':>9}{'max ms':>10}{'errors':>8}"
          f"{'(pre p99 ms)':>14}{'p99 x pre':>11}")
    for name, r in results.items():
        print(f"{name:<10}{r['secs']:>9.1f}{rows / r['secs']:>10.0f}{r['ops']:>14.0f}{r['p99']:>9.1f}"
              f"{r['max']:>10.1f}{r['errors']:>8}{r['base'][1]:>14.1f}{r['p99'] / max(r['base'][1], 1e-9):>11.1f}")
        for e in r["sample"]:
            print(f"    error: {e}")
        print(f"    row lock waits {r['locks'][0]} ({r['locks'][1]} ms; server-wide, other sessions count too)")
        rows_ = [("pre-window", 3.0, r["base"], r["base_kinds"], r["base_rates"]),
                 ("whole change", r["secs"], (0, r["p99"], r["max"], [], 0), r["kinds"], r["rates"])] + r.get("phases", [])
        for label, secs, (pops, pp99, pmax, perrs, _), ks, rt in rows_:
            by = " ".join(f"{k[0]} {v:5.1f}/{sv:4.1f}" for k, (v, sv) in ks.items())
            srv = (f"  redo {rt['redo']:5.1f} MB/s fsync {rt['fsyncs']:4.0f}/s flushed {rt['flushed']:5.0f}/s "
                   f"log waits {rt['log_waits']} ckpt {rt['ckpt']:5.1f} MB run {rt['running']:4.1f} cpu {rt['cpu']:3.0f}%") if rt else ""
            print(f"    {label:<14}{secs:>5.1f} s p99 {pp99:>6.1f} max {pmax:>6.1f} ms [p99 scheduled/service r/u/i/d {by}] "
                  f"err {len(perrs)}{srv}")


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rate", type=float, default=1900.0, help="total client ops/s (0: as fast as they can)")
    ap.add_argument("--only", default="written,sluice,ptosc")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--release", action="store_true")
    ap.add_argument("--sluice", help="the sluice binary to run (default: the one this checkout builds)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--before", help="a second sluice binary (e.g. main's), run as mode `before` beside `sluice`")
    ap.add_argument("--paced-args", default="",
                    help="with it, mode `paced` runs this binary with these arguments too, e.g. '--copy-commit-factor 3'")
    ap.add_argument("--timeline", action="store_true",
                    help="print, per run, the 100 ms stretches with slow client queries and the server's counters then")
    ap.add_argument("--sluice-args", default="", help="extra arguments for `sluice up`, e.g. '--chunk-ms 50'")
    ap.add_argument("--buffer-pool-mb", type=int, default=0,
                    help="set innodb_buffer_pool_size for the run (restored after); 0 leaves the server's")
    args = ap.parse_args()
    prof = ["--release"] if args.release else []
    if not args.no_build:
        subprocess.run(["cargo", "build", "-q", "-p", "sluice"] + prof, cwd=ROOT, check=True)
    binary = args.sluice or os.path.join(ROOT, "target", "release" if args.release else "debug", "sluice")
    c = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    pool_before = run(c, "SELECT @@innodb_buffer_pool_size")[0][0]
    if args.buffer_pool_mb:
        # Resized online by the server; both tools then run from memory, as on a production
        # server whose pool holds the table (the default 128 MiB holds neither it nor its copy).
        run(c, f"SET GLOBAL innodb_buffer_pool_size = {args.buffer_pool_mb * 1024 * 1024}")
        time.sleep(2)
    pool_mb = run(c, "SELECT @@innodb_buffer_pool_size")[0][0] // (1024 * 1024)
    run(c, f"CREATE DATABASE {DB}")
    modes = args.only.split(",")
    if args.paced_args and "paced" not in modes:
        modes.insert(modes.index("sluice") + 1 if "sluice" in modes else len(modes), "paced")
    if args.before and "before" not in modes:
        modes.insert(modes.index("sluice") if "sluice" in modes else len(modes), "before")
    rounds = []
    try:
        for k in range(args.rounds):
            order = modes if k % 2 == 0 else list(reversed(modes))
            results = {name: one(name, args, binary) for name in order}
            rounds.append({name: results[name] for name in modes})
            print(f"\nround {k + 1}: {args.rows:,} rows, {args.clients} clients at "
                  f"{'full speed' if args.rate == 0 else f'{args.rate:.0f} ops/s'}, ALTER TABLE acc {ALTER}, "
                  f"innodb_buffer_pool_size {pool_mb} MiB")
            table(args.rows, args.clients, rounds[-1])
            print(flush=True)
    finally:
        run(c, f"DROP DATABASE IF EXISTS {DB}")
        if args.buffer_pool_mb:
            run(c, f"SET GLOBAL innodb_buffer_pool_size = {pool_before}")
    print(f"median of {len(rounds)} round(s):")
    print(f"{'run':<10}{'total s':>9}{'p99 x pre':>11}{'errors':>8}{'client ops/s':>14}{'p99 ms':>9}{'pre p99 ms':>12}")
    for name in modes:
        rs = [r[name] for r in rounds]
        print(f"{name:<10}{median([r['secs'] for r in rs]):>9.2f}"
              f"{median([r['p99'] / max(r['base'][1], 1e-9) for r in rs]):>11.1f}"
              f"{median([r['errors'] for r in rs]):>8}{median([r['ops'] for r in rs]):>14.0f}"
              f"{median([r['p99'] for r in rs]):>9.1f}{median([r['base'][1] for r in rs]):>12.1f}")
    for mine in ("sluice", "paced"):
        for other, label in (("ptosc", "pt-osc"), ("before", "before"), ("written", "as written")):
            if mine in modes and other in modes:
                t = [r[mine]["secs"] / r[other]["secs"] for r in rounds]
                p = [r[mine]["p99"] / max(r[other]["p99"], 1e-9) for r in rounds]
                print(f"{mine} / {label}: time {median(t):.2f}x (per round {', '.join(f'{x:.2f}' for x in t)}), "
                      f"p99 {median(p):.2f}x")


if __name__ == "__main__":
    main()
