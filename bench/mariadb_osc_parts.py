#!/usr/bin/env python3
"""Where the clients' latency during sluice's MariaDB online copy comes from, one part at a time:
the workload of bench/mariadb_osc.py (8 clients at 1,900 ops/s on a 1M-row table) runs for a few
seconds beside each of these, alternated over rounds, on the same table:

  idle          nothing else
  triggers      only the copy's three change-log triggers on `acc` (what each client write pays)
  copy          key-range chunks INSERT..SELECT into a shadow (BIGINT balance, no secondary index),
                READ COMMITTED, one transaction per chunk, back to back (--chunk rows each)
  copy small    the same with chunks a tenth the size
  copy paced    the same chunks with a pause as long as each chunk after it (half the duty)
  copy N [paced] [+verify]   chunks of N rows
  verify        the verifier's checksum statements over 50,000-row ranges of `acc`, back to back
  copy+verify   both, on two sessions (what sluice's copy phase runs)
  copy+verify flush2   the same with innodb_flush_log_at_trx_commit = 2 for the stretch (restored)

Prints per part: client p99 by kind, p99 x idle, the server's redo MB/s, log fsyncs/s, pages
flushed/s, threads running, the machine's CPU busy and the client process's own CPU.

    python3 bench/mariadb_osc_parts.py [--rounds 3] [--secs 3] [--chunk 20000] [--only idle,copy,...]
"""
import argparse, os, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mariadb_osc as m  # noqa: E402

PARTS = ["idle", "triggers", "copy", "copy small", "copy paced", "verify", "copy+verify", "copy+verify flush2"]
HASH = ("COALESCE(BIT_XOR(CRC32(CRC32(CONCAT_WS('|', `id`, CAST(`balance` AS SIGNED), `note`, `updated_at`, "
        "CONCAT(ISNULL(`id`), ISNULL(`balance`), ISNULL(`note`), ISNULL(`updated_at`)))))), 0)")


def setup(c):
    m.run(c, "DROP TABLE IF EXISTS _acc_new, _acc_chg")
    m.run(c, "CREATE TABLE _acc_new LIKE acc")
    m.run(c, "ALTER TABLE _acc_new MODIFY balance BIGINT NOT NULL, DROP KEY note")
    m.run(c, "CREATE TABLE _acc_chg (_sluice_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
             "k0 INT NOT NULL, KEY k (k0)) ENGINE=InnoDB")


TRIGGERS = [
    "CREATE TRIGGER _acc_ins AFTER INSERT ON acc FOR EACH ROW INSERT INTO _acc_chg (k0) VALUES (NEW.id)",
    "CREATE TRIGGER _acc_upd AFTER UPDATE ON acc FOR EACH ROW BEGIN INSERT INTO _acc_chg (k0) VALUES (OLD.id); "
    "IF NOT (OLD.id <=> NEW.id) THEN INSERT INTO _acc_chg (k0) VALUES (NEW.id); END IF; END",
    "CREATE TRIGGER _acc_del AFTER DELETE ON acc FOR EACH ROW INSERT INTO _acc_chg (k0) VALUES (OLD.id)",
]


def copier(stop, chunk, pace, out):
    c = m.conn()
    m.run(c, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    m.run(c, "TRUNCATE _acc_new")
    lo, took = 0, []
    while not stop.is_set():
        if lo >= 1_000_000:  # copied: start again, so every part runs as long
            m.run(c, "TRUNCATE _acc_new")
            lo = 0
        t = time.monotonic()
        m.run(c, "BEGIN")
        m.run(c, f"INSERT INTO _acc_new (id, balance, note, updated_at) SELECT id, balance, note, updated_at "
                 f"FROM acc FORCE INDEX (PRIMARY) WHERE id > {lo} AND id <= {lo + chunk} "
                 f"ON DUPLICATE KEY UPDATE _acc_new.id = _acc_new.id")
        m.run(c, "COMMIT")
        took.append(time.monotonic() - t)
        lo += chunk
        if pace:
            stop.wait(took[-1])
    out["chunk ms"] = 1000 * sorted(took)[len(took) // 2] if took else 0
    c.close()


def verifier(stop, out):
    c = m.conn()
    lo, took = 0, []
    while not stop.is_set():
        t = time.monotonic()
        m.run(c, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        m.run(c, f"SELECT COUNT(*), {HASH} FROM acc WHERE id > {lo} AND id <= {lo + 50000}")
        m.run(c, f"SELECT COUNT(*), {HASH} FROM acc WHERE id > {lo} AND id <= {lo + 50000}")
        m.run(c, "COMMIT")
        took.append(time.monotonic() - t)
        lo = (lo + 50000) % 1_000_000
    out["check ms"] = 1000 * sorted(took)[len(took) // 2] if took else 0
    c.close()


def proc_cpu():
    with open(f"/proc/{os.getpid()}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def part(name, args, admin):
    stop, out, threads = threading.Event(), {}, []
    if name == "triggers":
        for t in TRIGGERS:
            m.run(admin, t)
    if name.endswith("flush2"):
        m.run(admin, "SET GLOBAL innodb_flush_log_at_trx_commit = 2")
    w = m.Workload(args.clients, args.rows, args.rate)
    s = m.Sampler()
    s.start()
    w.start()
    time.sleep(0.5)
    if name.startswith("copy"):
        # "copy 5000 paced": the chunk size may follow the name.
        words = name.replace("+", " ").split()
        sized = [int(x) for x in words if x.isdigit()]
        chunk = sized[0] if sized else args.chunk // 10 if name == "copy small" else args.chunk
        threads.append(threading.Thread(target=copier, args=(stop, chunk, "paced" in words, out)))
    if name.startswith("verify") or "+verify" in name:
        threads.append(threading.Thread(target=verifier, args=(stop, out)))
    for t in threads:
        t.start()
    t0, c0 = time.monotonic(), proc_cpu()
    time.sleep(args.secs)
    t1, c1 = time.monotonic(), proc_cpu()
    stop.set()
    for t in threads:
        t.join()
    w.finish()
    s.finish()
    if name.endswith("flush2"):
        m.run(admin, "SET GLOBAL innodb_flush_log_at_trx_commit = 1")
    if name == "triggers":
        for t in ("_acc_ins", "_acc_upd", "_acc_del"):
            m.run(admin, f"DROP TRIGGER {t}")
    _, p99, mx, errs, n = w.window(t0, t1)
    kinds = {k: w.window(t0, t1, k)[1] for k in m.KINDS}
    service = {k: w.window(t0, t1, k, True)[1] for k in m.KINDS}
    return dict(p99=p99, max=mx, n=n, kinds=kinds, service=service, rates=s.rates(t0, t1), client_cpu=100 * (c1 - c0) / (t1 - t0), **out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rate", type=float, default=1900.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=3.0)
    ap.add_argument("--chunk", type=int, default=20000)
    ap.add_argument("--only", default=",".join(PARTS))
    ap.add_argument("--buffer-pool-mb", type=int, default=1024)
    args = ap.parse_args()
    parts = args.only.split(",")
    c = m.pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    pool_before = m.run(c, "SELECT @@innodb_buffer_pool_size")[0][0]
    flush_before = m.run(c, "SELECT @@innodb_flush_log_at_trx_commit")[0][0]
    m.run(c, f"SET GLOBAL innodb_buffer_pool_size = {args.buffer_pool_mb * 1024 * 1024}")
    m.run(c, f"CREATE DATABASE {m.DB}")
    res = {p: [] for p in parts}
    try:
        m.fresh_table(args.rows)
        admin = m.conn()
        setup(admin)
        for k in range(args.rounds):
            for p in (parts if k % 2 == 0 else list(reversed(parts))):
                res[p].append(part(p, args, admin))
                r = res[p][-1]
                print(f"round {k + 1} {p:<20} p99 {r['p99']:6.1f} ms  " + " ".join(f"{a} {b:.1f}" for a, b in r["kinds"].items())
                      + f"  {r.get('chunk ms', '')} {r.get('check ms', '')}", flush=True)
    finally:
        m.run(c, f"SET GLOBAL innodb_flush_log_at_trx_commit = {flush_before}")
        m.run(c, f"DROP DATABASE IF EXISTS {m.DB}")
        m.run(c, f"SET GLOBAL innodb_buffer_pool_size = {pool_before}")
    idle = m.median([r["p99"] for r in res["idle"]]) if "idle" in res else None
    print(f"\nmedians of {args.rounds} round(s), {args.secs:.0f} s each, {args.clients} clients at {args.rate:.0f} ops/s:")
    print("(read..delete: p99 by kind, from the schedule; svc: p99 from the send, the server's share)")
    print(f"{'part':<20}{'p99 ms':>8}{'x idle':>8}{'read':>7}{'update':>7}{'insert':>7}{'delete':>7}"
          f"{'svc r':>7}{'svc u':>7}{'svc i':>7}{'svc d':>7}{'max':>7}"
          f"{'redo MB/s':>10}{'fsync/s':>8}{'flush/s':>8}{'run':>5}{'cpu%':>6}{'py cpu%':>8}{'chunk ms':>9}{'check ms':>9}")
    for p in parts:
        rs = res[p]
        md = lambda f: m.median([f(r) for r in rs])
        print(f"{p:<20}{md(lambda r: r['p99']):>8.1f}{md(lambda r: r['p99']) / idle if idle else 0:>8.1f}"
              + "".join(f"{md(lambda r: r['kinds'][k]):>7.1f}" for k in m.KINDS)
              + "".join(f"{md(lambda r: r['service'][k]):>7.1f}" for k in m.KINDS)
              + f"{md(lambda r: r['max']):>7.0f}{md(lambda r: r['rates']['redo']):>10.1f}{md(lambda r: r['rates']['fsyncs']):>8.0f}"
              f"{md(lambda r: r['rates']['flushed']):>8.0f}{md(lambda r: r['rates']['running']):>5.1f}{md(lambda r: r['rates']['cpu']):>6.0f}"
              f"{md(lambda r: r['client_cpu']):>8.0f}{md(lambda r: r.get('chunk ms', 0)):>9.0f}{md(lambda r: r.get('check ms', 0)):>9.0f}")


if __name__ == "__main__":
    main()
