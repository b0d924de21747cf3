#!/usr/bin/env python3
"""Online ALTER of a PARENT table on MariaDB under load, foreign keys in play: parent `acc`
(N rows) and child `txn` (N rows, `acc_id` -> acc.id ON DELETE CASCADE), 8 clients over both
tables, and `ALTER TABLE acc MODIFY balance BIGINT NOT NULL` (a table copy) run

  written       the ALTER as written (the server copies acc, writes to it wait throughout)
  sluice        `sluice up` (online copy; the child's key is re-pointed at the swap)
  pt-rebuild    pt-online-schema-change --alter-foreign-keys-method=rebuild_constraints
  pt-dropswap   pt-online-schema-change --alter-foreign-keys-method=drop_swap
  pt-auto       pt-online-schema-change --alter-foreign-keys-method=auto (prints which it chose)

    python3 bench/mariadb_fk.py [--rows 1000000] [--clients 8] [--rate 2000] [--rounds 3]
                                [--only written,sluice,pt-rebuild,pt-dropswap,pt-auto]
                                [--sluice PATH --no-build] [--release] [--sluice-args '...']

Every mode gets a fresh database with the same data and the same load (the same seeds). The load,
open loop at --rate ops/s: 25% parent point reads, 10% child reads by acc_id, 35% parent balance
updates, 22% child inserts referencing a random parent from the lower half of the ids (never
deleted, so a refused insert is the tool's doing), 5% parent inserts, 3% parent deletes from the
upper half (each client its own ids, so each delete hits a row; the key cascades to the child).

Per mode: total time, client errors by code, p99 x the pre-window's p99, the longest stall (the
slowest client statement, counted from when it was due), client ops/s. Then the checks a user
cares about: the child's key exists and references `acc` (and its name and delete rule), child
rows without a parent (must be 0), and whether the key was enforced against `acc` throughout:
a watcher reads InnoDB's dictionary (INNODB_SYS_FOREIGN, no metadata lock) every 20 ms and
reports the stretches the child's key named another table or none; such a stretch is a gap
when a parent write to `acc` ran, start to end, while the key certainly pointed elsewhere (the
other table no longer holds acc's rows). A stretch only one sample saw holds no such write: that
is a lower bound, the outer bound of its length is printed.
A probe tries a child row with no parent every 20 ms (accepted = not enforced). drop_swap is
reported not enforced by design (the parent is dropped with foreign_key_checks=0 and renamed
into place after; clients meet the missing table as 1146, a valid child insert as 1452). With
--rounds N the modes alternate order each round and the medians are printed at the end.

Needs the local MariaDB (127.0.0.1:3306, root, no password), python3-pymysql and percona-toolkit.
percona-toolkit 3.2.1 takes a MariaDB whose version_comment does not say MariaDB (Debian's:
'Debian 12') for MySQL 8.0+ and refuses drop_swap; the bench then runs a temporary copy of the
tool with that one check off, and says so.
"""
import argparse, collections, os, random, re, shutil, subprocess, sys, tempfile, threading, time

try:
    import pymysql
except ImportError:  # Debian's python3-pymysql, when python3 is not the system interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    import pymysql

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DB = f"sluice_bench_fk_{os.getpid()}"
ALTER = "MODIFY balance BIGINT NOT NULL"
FK = "txn_acc"
MODES = ["written", "sluice", "pt-rebuild", "pt-dropswap", "pt-auto"]
PT_METHOD = {"pt-rebuild": "rebuild_constraints", "pt-dropswap": "drop_swap", "pt-auto": "auto"}


def conn(db=DB, autocommit=True):
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=db,
                           autocommit=autocommit)


def run(c, sql):
    with c.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def fresh_db(rows):
    """A new database per mode: nothing a previous mode left (old tables, renamed keys, sluice's
    tables) can touch the next."""
    c = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    run(c, f"DROP DATABASE IF EXISTS {DB}")
    run(c, f"CREATE DATABASE {DB}")
    c.close()
    c = conn()
    run(c, "CREATE TABLE acc (id INT AUTO_INCREMENT PRIMARY KEY, balance INT NULL, note VARCHAR(40) NOT NULL, "
           "updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, KEY (note)) ENGINE=InnoDB")
    run(c, f"CREATE TABLE txn (id BIGINT AUTO_INCREMENT PRIMARY KEY, acc_id INT NOT NULL, amount INT NOT NULL, "
           f"created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, "
           f"CONSTRAINT {FK} FOREIGN KEY (acc_id) REFERENCES acc (id) ON DELETE CASCADE) ENGINE=InnoDB")
    run(c, f"INSERT INTO acc (id, balance, note) SELECT seq, seq % 100000, CONCAT('note-', seq) "
           f"FROM seq_1_to_{rows}")
    # Children spread over every parent (7919 is prime, so acc_id runs through all ids).
    run(c, f"INSERT INTO txn (id, acc_id, amount) SELECT seq, 1 + (seq * 7919) % {rows}, seq % 1000 "
           f"FROM seq_1_to_{rows}")
    run(c, "ANALYZE TABLE acc, txn")
    c.close()


def code_of(e):
    return e.args[0] if getattr(e, "args", None) and isinstance(e.args[0], int) else type(e).__name__


class Workload:
    """N clients over both tables, open loop: each sends at rate/N per second on a fixed schedule
    and latency counts from the scheduled time (waiting behind a lock is not hidden)."""

    def __init__(self, n, rows, rate):
        self.n, self.rows = n, rows
        self.interval = n / rate if rate > 0 else 0.0
        self.stop = threading.Event()
        self.lat = []  # (start, seconds, writes the parent)
        self.errors = []  # (start, code, message)
        self.lock = threading.Lock()
        self.due = [0.0] * n  # each client's schedule, read to drain a backlog

    def client(self, seed):
        rnd = random.Random(seed)
        c = conn()
        local, errs = [], []
        half = self.rows // 2
        # Parent deletes: this client's own ids from the top down, so every delete hits a row.
        victim = self.rows - seed
        due = time.monotonic()
        while not self.stop.is_set():
            if self.interval:
                due += self.interval
                self.due[seed] = due
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
            k = rnd.random()
            i = rnd.randint(1, self.rows)
            p = rnd.randint(1, half)
            if k < 0.25:
                sql = f"SELECT balance FROM acc WHERE id = {i}"
            elif k < 0.35:
                sql = f"SELECT COUNT(*) FROM txn WHERE acc_id = {p}"
            elif k < 0.70:
                sql = f"UPDATE acc SET balance = balance + 1, updated_at = NOW() WHERE id = {i}"
            elif k < 0.92:
                sql = f"INSERT INTO txn (acc_id, amount) VALUES ({p}, {rnd.randint(1, 1000)})"
            elif k < 0.97:
                sql = f"INSERT INTO acc (balance, note) VALUES ({rnd.randint(0, 100000)}, 'new')"
            elif victim > half:
                sql = f"DELETE FROM acc WHERE id = {victim}"
                victim -= self.n
            else:
                sql = f"SELECT balance FROM acc WHERE id = {i}"
            t0 = due if self.interval else time.monotonic()
            ok = True
            try:
                run(c, sql)
            except pymysql.MySQLError as e:
                ok = False
                errs.append((t0, code_of(e), str(e)[:140]))
                try:
                    c.close()
                except Exception:
                    pass
                c = conn()
            local.append((t0, time.monotonic() - t0, ok and " acc " in sql and not sql.startswith("SELECT")))
        with self.lock:
            self.lat.extend(local)
            self.errors.extend(errs)

    def start(self):
        self.threads = [threading.Thread(target=self.client, args=(s,)) for s in range(self.n)]
        for t in self.threads:
            t.start()

    def finish(self, until):
        """Stops once every client has sent what was due by `until` (on a busy machine the
        clients can fall behind their schedule: what was due in the window is measured too)."""
        give_up = time.monotonic() + 60
        while self.interval and min(self.due) < until and time.monotonic() < give_up:
            time.sleep(0.05)
        self.stop.set()
        for t in self.threads:
            t.join()

    def parent_writes_within(self, t0, t1):
        """Parent writes that ran entirely between t0 and t1 (a statement is sent at its due
        time or later, and has committed when it returns)."""
        return sum(1 for s, l, w in self.lat if w and t0 <= s and s + l <= t1)

    def window(self, t0, t1):
        lats = sorted(l for s, l, _ in self.lat if t0 <= s <= t1)
        errs = [(c, m) for s, c, m in self.errors if t0 <= s <= t1]
        if not lats:
            return 0.0, 0.0, 0.0, errs
        p99 = lats[min(len(lats) - 1, int(len(lats) * 0.99))]
        return len(lats) / max(t1 - t0, 1e-9), p99 * 1000, lats[-1] * 1000, errs


class Watch:
    """Is the child's key enforced against `acc` all along? Two observers, every 20 ms:
    InnoDB's dictionary (where each key of `txn` points; no metadata lock taken), and a probe
    that inserts a child row whose parent exists nowhere (id 0) — accepted means not enforced."""

    def __init__(self):
        self.stop = threading.Event()
        self.seen = collections.Counter()  # target of the child's key -> samples
        self.first_off = None
        # Each stretch the key named another table or none: (outer start, outer end, inner start,
        # inner end). Outer: from the last sample that saw acc to the first that saw it again (the
        # most it can have lasted); inner: from the first such sample's answer to the last one's
        # question (when it certainly did; empty for a stretch one sample saw).
        self.off_runs = []
        self.accepted = 0
        self.probe_errors = collections.Counter()
        self.samples = 0

    def dictionary(self):
        c = conn("information_schema")
        child = f"{DB}/txn"
        off, last_ok = None, None
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                refs = run(c, "SELECT f.REF_NAME, t.NAME IS NOT NULL FROM INNODB_SYS_FOREIGN f "
                              "LEFT JOIN INNODB_SYS_TABLES t ON t.NAME = f.REF_NAME "
                              f"WHERE f.FOR_NAME = '{child}'")
            except pymysql.MySQLError:
                refs = None
            done = time.monotonic()
            if refs is not None:
                self.samples += 1
                where = ",".join(sorted(r.split("/", 1)[1] + ("" if there else " (no such table)")
                                        for r, there in refs)) or "(no key)"
                self.seen[where] += 1
                # A moment without the table inside one DDL statement is no gap (its metadata
                # lock keeps every client out); only a key naming another table, or none, is.
                ok = where in ("acc", "acc (no such table)")
                if not ok and off is None:
                    off = [last_ok if last_ok is not None else now, None, done, now]
                elif not ok:
                    off[3] = now
                elif off is not None:
                    off[1] = done
                    self.off_runs.append(tuple(off))
                    off = None
                if ok:
                    last_ok = now
            time.sleep(0.02)
        if off is not None:
            off[1] = time.monotonic()
            self.off_runs.append(tuple(off))
        c.close()

    def probe(self):
        c = conn()
        while not self.stop.is_set():
            try:
                run(c, "INSERT INTO txn (acc_id, amount) VALUES (0, -1)")
                self.accepted += 1
                run(c, "DELETE FROM txn WHERE acc_id = 0")
            except pymysql.MySQLError as e:
                self.probe_errors[code_of(e)] += 1
                if code_of(e) not in (1452,):
                    try:
                        c.close()
                    except Exception:
                        pass
                    c = conn()
            time.sleep(0.02)
        c.close()

    def start(self):
        self.threads = [threading.Thread(target=self.dictionary), threading.Thread(target=self.probe)]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def summary(self):
        off = sum(b - a for a, b, _, _ in self.off_runs)
        where = ", ".join(f"{k}: {v}" for k, v in self.seen.most_common())
        return off, where


def as_written():
    c = conn()
    run(c, f"ALTER TABLE acc {ALTER}")
    c.close()


def sluice(binary, extra_args):
    d = tempfile.mkdtemp(prefix="sluice-bench-")
    os.mkdir(os.path.join(d, "migrations"))
    with open(os.path.join(d, "migrations", "1_balance_bigint.sql"), "w") as f:
        f.write(f"ALTER TABLE acc {ALTER};\n")
    env = dict(os.environ, DATABASE_URL=f"mysql://root@127.0.0.1:3306/{DB}")
    p = subprocess.run([binary, "up"] + extra_args, cwd=d, env=env, stderr=subprocess.PIPE, text=True)
    shutil.rmtree(d, ignore_errors=True)
    for line in p.stderr.splitlines():
        print(f"    | {line}", flush=True)
    if p.returncode != 0:
        return f"FAILED (exit {p.returncode})"
    held = [l for l in p.stderr.splitlines() if "(writes held" in l]
    return f"writes held {held[0].split('(writes held ')[1].split(')')[0]}" if held else ""


GATE = "$vp->cmp('8.0') > -1 && $vp->flavor() !~ m/maria/i && $alter_fk_method eq 'drop_swap'"


def ptosc_binary():
    """pt-online-schema-change, or, where it would take this MariaDB for MySQL 8.0+ (it reads the
    flavor from version_comment, which a distribution's build sets to e.g. 'Debian 12') and refuse
    drop_swap for a MySQL 8.0 bug, a copy of it in a temporary directory with only that gate
    turned off. Returns the path and a note saying so."""
    path = subprocess.run(["which", "pt-online-schema-change"], capture_output=True, text=True).stdout.strip()
    if not path:
        sys.exit("pt-online-schema-change not found (apt-get install -y percona-toolkit)")
    c = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    version, comment = run(c, "SELECT @@version, @@version_comment")[0]
    c.close()
    text = open(path).read()
    if "mariadb" not in version.lower() or "maria" in comment.lower() or GATE not in text:
        return path, ""
    d = tempfile.mkdtemp(prefix="sluice-bench-ptosc-")
    patched = os.path.join(d, "pt-online-schema-change")
    with open(patched, "w") as f:
        f.write(text.replace(GATE, "0"))
    os.chmod(patched, 0o755)
    return patched, (f"note: {path} reads this server ({version}, version_comment '{comment}') as MySQL 8.0+ "
                     f"and refuses drop_swap; run from a copy with that one check off ({patched})")


def ptosc(method, binary):
    r = subprocess.run([binary, "--alter", ALTER, f"D={DB},t=acc,h=127.0.0.1,u=root",
                        "--execute", "--recursion-method=none", "--no-check-alter", "--preserve-triggers",
                        f"--alter-foreign-keys-method={method}", "--set-vars", "lock_wait_timeout=1"],
                       capture_output=True, text=True)
    out = r.stdout + r.stderr
    shown = r.stdout.splitlines() if r.returncode != 0 else [
        l for l in r.stdout.splitlines()
        if re.search(r"foreign key|rows; |must use|can use|Drop-swapping|Swapped|Rebuil|rror|arning", l)]
    for line in shown + r.stderr.splitlines():
        print(f"    | {line.strip()}", flush=True)
    note = ""
    if method == "auto":
        chose = ("drop_swap" if "must use drop_swap" in out or "Drop-swapping" in out
                 else "rebuild_constraints" if "Rebuilding foreign key" in out else "?")
        note = f"auto chose {chose}"
    if r.returncode != 0:
        return f"FAILED (exit {r.returncode}) {note}".strip()
    return note


def checks():
    """What a user checks after the change."""
    c = conn()
    t = run(c, "SELECT COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
               "AND TABLE_NAME = 'acc' AND COLUMN_NAME = 'balance'")
    fks = run(c, "SELECT CONSTRAINT_NAME, REFERENCED_TABLE_NAME, DELETE_RULE FROM "
                 "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() "
                 "AND TABLE_NAME = 'txn'")
    orphans = run(c, "SELECT COUNT(*) FROM txn WHERE NOT EXISTS (SELECT 1 FROM acc WHERE acc.id = txn.acc_id)")[0][0]
    tables = sorted(r[0] for r in run(c, "SHOW TABLES") if not r[0].startswith("sluice_"))
    # The key is enforced now: a child row with no parent is refused.
    try:
        run(c, "INSERT INTO txn (acc_id, amount) VALUES (0, -2)")
        enforced_now = "NO (accepted)"
        run(c, "DELETE FROM txn WHERE acc_id = 0")
    except pymysql.MySQLError as e:
        enforced_now = "yes" if code_of(e) == 1452 else f"error {code_of(e)}"
    c.close()
    col = f"{t[0][0]} {'NULL' if t[0][1] == 'YES' else 'NOT NULL'}" if t else "?"
    return dict(col=col, fks=fks, orphans=orphans, tables=tables, enforced_now=enforced_now)


def one(name, args, binary):
    fresh_db(args.rows)
    w = Workload(args.clients, args.rows, args.rate)
    watch = Watch()
    watch.start()
    w.start()
    b0 = time.monotonic()
    time.sleep(3)
    b1 = t0 = time.monotonic()
    if name == "written":
        as_written()
        note = ""
    elif name == "sluice":
        note = sluice(binary, args.sluice_args.split())
    else:
        note = ptosc(PT_METHOD[name], args.ptosc)
    t1 = time.monotonic()
    time.sleep(1)
    w.finish(t1 + 1)
    watch.finish()
    ops, p99, mx, errs = w.window(t0, t1)
    base = w.window(b0, b1)
    off, where = watch.summary()
    r = dict(secs=t1 - t0, ops=ops, p99=p99, max=mx, errs=errs, base_p99=base[1], note=note,
             check=checks(), off=off, where=where, accepted=watch.accepted,
             off_writes=sum(w.parent_writes_within(a, b) for _, _, a, b in watch.off_runs),
             probe_errors=dict(watch.probe_errors), samples=watch.samples)
    ck = r["check"]
    fk = "; ".join(f"{n} -> {ref} ON DELETE {rule}" for n, ref, rule in ck["fks"]) or "NONE"
    by_code = collections.Counter(c for c, _ in errs)
    print(f"{name}: done in {r['secs']:.1f} s {note}", flush=True)
    print(f"    balance now {ck['col']}; tables {', '.join(ck['tables'])}", flush=True)
    print(f"    client errors during the change: {len(errs)}"
          + (f" ({', '.join(f'{c}: {n}' for c, n in by_code.most_common())})" if errs else ""), flush=True)
    for code in by_code:
        print(f"      e.g. {next(m for c, m in errs if c == code)}", flush=True)
    print(f"    child key: {fk}; references acc: {'yes' if any(ref == 'acc' for _, ref, _ in ck['fks']) else 'NO'}; "
          f"enforced now: {ck['enforced_now']}; orphan child rows: {ck['orphans']}", flush=True)
    dropswap = name == "pt-dropswap" or "drop_swap" in note
    r["dropswap"] = dropswap
    print(f"    enforced against acc throughout: "
          f"{verdict(r)} — the key pointed at {where} "
          f"({watch.samples} dictionary samples); parentless probe rows "
          f"accepted {watch.accepted}, refused {dict(watch.probe_errors)}", flush=True)
    if dropswap:
        print("    drop_swap by design: foreign_key_checks=0, DROP TABLE acc, then RENAME _acc_new TO acc — "
              "in between the child's key references a table that does not exist", flush=True)
    if name == "pt-rebuild" or "rebuild_constraints" in note:
        print("    rebuild_constraints by design: after the RENAME the child's key follows the old table "
              "(_acc_old) until its ALTER re-points it (a table copy of txn)", flush=True)
    return r


def verdict(r):
    if r["dropswap"]:
        return "NO (by design: drop_swap)"
    if r["accepted"] > 0:
        return f"NO ({r['accepted']} rows without a parent accepted)"
    if r["off"] > 0 and r["off_writes"] > 0:
        return (f"NO (up to {r['off'] * 1000:.0f} ms on another table; {r['off_writes']} parent "
                f"write(s) to acc ran start to end while it certainly was)")
    if r["off"] > 0:
        # Pointing at another table while acc takes no write is no gap if that table holds
        # acc's rows; the tool must guarantee that (sluice: the drained shadow, writes held).
        return f"yes (up to {r['off'] * 1000:.0f} ms on another table, no parent write seen inside that)"
    return "yes"


def table(results):
    print(f"{'mode':<13}{'total s':>9}{'ops/s':>8}{'p99 ms':>9}{'x pre':>7}{'stall ms':>10}{'errors':>8}"
          f"{'orphans':>9}{'key->acc':>10}{'enforced':>12}  note")
    for name, r in results.items():
        ck = r["check"]
        enforced = ("no: design" if r["dropswap"] else "yes" if verdict(r).startswith("yes")
                    else f"no {r['off'] * 1000:.0f}ms")
        print(f"{name:<13}{r['secs']:>9.1f}{r['ops']:>8.0f}{r['p99']:>9.1f}{r['p99'] / max(r['base_p99'], 1e-9):>7.1f}"
              f"{r['max']:>10.0f}{len(r['errs']):>8}{ck['orphans']:>9}"
              f"{'yes' if any(ref == 'acc' for _, ref, _ in ck['fks']) else 'NO':>10}{enforced:>12}  {r['note']}")


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rate", type=float, default=2000.0, help="total client ops/s (0: as fast as they can)")
    ap.add_argument("--only", default=",".join(MODES))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--release", action="store_true")
    ap.add_argument("--sluice", help="the sluice binary to run (default: the one this checkout builds)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--sluice-args", default="", help="extra arguments for `sluice up`")
    args = ap.parse_args()
    modes = args.only.split(",")
    for m in modes:
        if m not in MODES:
            sys.exit(f"unknown mode {m!r} (modes: {', '.join(MODES)})")
    prof = ["--release"] if args.release else []
    if "sluice" in modes and not args.no_build and not args.sluice:
        subprocess.run(["cargo", "build", "-q", "-p", "sluice"] + prof, cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = args.sluice or os.path.join(target, "release" if args.release else "debug", "sluice")
    if any(m in PT_METHOD for m in modes):
        args.ptosc, gate_note = ptosc_binary()
        if gate_note:
            print(gate_note, flush=True)
    rounds = []
    try:
        for k in range(args.rounds):
            order = modes if k % 2 == 0 else list(reversed(modes))
            results = {name: one(name, args, binary) for name in order}
            rounds.append({name: results[name] for name in modes})
            print(f"\nround {k + 1}: {args.rows:,} parents + {args.rows:,} children, {args.clients} clients at "
                  f"{'full speed' if args.rate == 0 else f'{args.rate:.0f} ops/s'}, ALTER TABLE acc {ALTER}")
            table(rounds[-1])
            print(flush=True)
    finally:
        c = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        run(c, f"DROP DATABASE IF EXISTS {DB}")
        c.close()
        if getattr(args, "ptosc", "").startswith(tempfile.gettempdir()):
            shutil.rmtree(os.path.dirname(args.ptosc), ignore_errors=True)
    if args.rounds > 1:
        print(f"median of {len(rounds)} rounds:")
        print(f"{'mode':<13}{'total s':>9}{'x pre':>7}{'stall ms':>10}{'errors':>8}{'ops/s':>8}{'orphans':>9}")
        for name in modes:
            rs = [r[name] for r in rounds]
            print(f"{name:<13}{median([r['secs'] for r in rs]):>9.2f}"
                  f"{median([r['p99'] / max(r['base_p99'], 1e-9) for r in rs]):>7.1f}"
                  f"{median([r['max'] for r in rs]):>10.0f}{median([len(r['errs']) for r in rs]):>8}"
                  f"{median([r['ops'] for r in rs]):>8.0f}{median([r['check']['orphans'] for r in rs]):>9}")


if __name__ == "__main__":
    main()
