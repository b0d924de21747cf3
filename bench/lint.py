#!/usr/bin/env python3
"""Lint throughput: sluice vs squawk on the same generated PostgreSQL migrations.

    python3 bench/lint.py [--statements 100000] [--per-file 100]

Builds sluice in release mode, generates the corpus in a temporary directory, runs both linters on
it (each output discarded), and prints statements/s, peak memory and the ratio. It also runs sluice
on a tenth of the corpus to show its memory does not grow with corpus size. squawk comes from the
npm package squawk-cli (`npm install -g squawk-cli`).
"""
import argparse, os, random, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEMPLATES = [
    "CREATE TABLE t{n} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());",
    "ALTER TABLE accounts ADD COLUMN c{n} text;",
    "ALTER TABLE accounts ADD COLUMN d{n} text NOT NULL DEFAULT md5(random()::text);",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_{n} ON accounts (email, created_at);",
    "CREATE INDEX idx_b{n} ON orders (customer_id);",
    "ALTER TABLE orders ADD CONSTRAINT fk_{n} FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;",
    "ALTER TABLE orders VALIDATE CONSTRAINT fk_{n};",
    "ALTER TABLE accounts ALTER COLUMN email TYPE varchar(255);",
    "UPDATE accounts SET status = 'active' WHERE id BETWEEN {n} AND {n} + 1000;",
    "INSERT INTO audit (kind, payload) VALUES ('migration', '{{\"n\": {n}}}');",
    "ALTER TABLE accounts ALTER COLUMN status SET DEFAULT 'active';",
    "DROP INDEX CONCURRENTLY IF EXISTS old_idx_{n};",
    "COMMENT ON TABLE accounts IS 'accounts of customers, revision {n}';",
    "ALTER TABLE orders ADD CONSTRAINT chk_{n} CHECK (amount >= 0) NOT VALID;",
    "CREATE TABLE IF NOT EXISTS log_{n} (id bigserial PRIMARY KEY, at timestamp, body json);",
]


def generate(dirname, statements, per_file):
    random.seed(42)
    os.makedirs(dirname, exist_ok=True)
    files = (statements + per_file - 1) // per_file
    n = 0
    for f in range(files):
        lines = ["SET lock_timeout = '2s';", "SET statement_timeout = '5min';"]
        count = min(per_file, statements - n)
        for _ in range(count - 2):
            lines.append(random.choice(TEMPLATES).format(n=n))
            n += 1
        n += 2
        with open(os.path.join(dirname, f"{f + 1:08d}_m{f + 1}.sql"), "w") as fh:
            fh.write("\n".join(lines) + "\n")
    return files


def measure(cmd):
    """Runs cmd with output discarded; returns (seconds, peak RSS in MiB, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    return elapsed, usage.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--statements", type=int, default=100_000)
    ap.add_argument("--per-file", type=int, default=100)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "sluice"], cwd=ROOT, check=True)
    sluice = os.path.join(ROOT, "target", "release", "sluice")
    squawk = shutil.which("squawk")
    tmp = tempfile.mkdtemp(prefix="sluice-lint-bench-")
    try:
        big, small = os.path.join(tmp, "big"), os.path.join(tmp, "small")
        nfiles = generate(big, args.statements, args.per_file)
        generate(small, args.statements // 10, args.per_file)
        rows = []
        t, mem, code = measure([sluice, "lint", "--target", "postgres:15", "--format", "json", big])
        rows.append(("sluice", args.statements, t, mem, code))
        t2, mem2, code2 = measure([sluice, "lint", "--target", "postgres:15", "--format", "json", small])
        rows.append(("sluice (1/10 corpus)", args.statements // 10, t2, mem2, code2))
        if squawk:
            files = sorted(os.path.join(big, f) for f in os.listdir(big))
            ts, mems, codes = measure([squawk, "--pg-version", "15", *files])
            rows.append(("squawk", args.statements, ts, mems, codes))
        print(f"lint throughput, {args.statements} PostgreSQL statements in {nfiles} files")
        print(f"{'tool':<22} {'statements':>10} {'seconds':>9} {'stmts/s':>10} {'peak MiB':>9} {'exit':>5}")
        for name, n, secs, mib, code in rows:
            print(f"{name:<22} {n:>10} {secs:>9.2f} {n / secs:>10.0f} {mib:>9.1f} {code:>5}")
        if squawk:
            print(f"sluice / squawk: {ts / t:.2f}x the throughput, {mem / mems:.2f}x the peak memory")
        else:
            print("squawk not found: npm install -g squawk-cli")
        print(f"sluice memory, full corpus vs 1/10: {mem:.1f} MiB vs {mem2:.1f} MiB")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
