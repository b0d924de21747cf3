#!/usr/bin/env python3
"""Lint throughput: sluice vs squawk on the same generated PostgreSQL migrations.

    python3 bench/lint.py [--statements 100000] [--per-file 100] [--big-files 20] [--sluice BIN]

Builds sluice in release mode, generates two corpora of the same statement count in a temporary
directory, runs both linters on each (output discarded), and prints statements/s, CPU seconds, peak
memory and the ratios:

- "many small": files of --per-file short statements (one of TEMPLATES each);
- "few big": --big-files files, each a long part mixing wide CREATE TABLEs, ALTER TABLEs of many
  clauses and plpgsql function bodies with the short statements (what a squashed schema dump or a
  large seed migration looks like).

It also runs sluice on a tenth of the small-file corpus to show its memory does not grow with corpus
size. squawk comes from the npm package squawk-cli (`npm install -g squawk-cli`). The build uses
$CARGO_TARGET_DIR when set.
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


def wide_table(n):
    cols = ", ".join(f"c{i} {t}" for i, t in enumerate(
        ["text NOT NULL DEFAULT ''", "bigint", "numeric(12,2) CHECK (c2 >= 0)", "timestamptz DEFAULT now()",
         "boolean NOT NULL DEFAULT false", "jsonb", "uuid DEFAULT gen_random_uuid()", "integer REFERENCES customers (id)"] * 4))
    return f"CREATE TABLE wide_{n} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {cols}, UNIQUE (c0, c1));"


def many_clauses(n):
    clauses = [f"ADD COLUMN e{n}_{i} text" for i in range(6)]
    clauses += [f"ALTER COLUMN status SET DEFAULT 'v{n}'", f"DROP COLUMN IF EXISTS old_{n}",
                f"ADD CONSTRAINT chk_w{n} CHECK (amount >= 0) NOT VALID", "ALTER COLUMN note DROP NOT NULL"]
    return f"ALTER TABLE accounts {', '.join(clauses)};"


def function_body(n):
    return (f"CREATE OR REPLACE FUNCTION touch_{n}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "DECLARE\n  v integer;\nBEGIN\n"
            "  IF NEW.updated_at IS NULL THEN\n    NEW.updated_at := now();  -- ; inside the body\n  END IF;\n"
            "  SELECT count(*) INTO v FROM accounts WHERE id = NEW.id;\n"
            "  RAISE NOTICE 'touched %; rows %', NEW.id, v;\n  RETURN NEW;\nEND;\n$$;")


BIG_TEMPLATES = [wide_table, many_clauses, function_body]


def generate_big(dirname, statements, files):
    """Few big files: a quarter of the statements are long (wide tables, many clauses, plpgsql)."""
    random.seed(7)
    os.makedirs(dirname, exist_ok=True)
    per_file = (statements + files - 1) // files
    n = 0
    for f in range(files):
        lines = ["SET lock_timeout = '2s';", "SET statement_timeout = '5min';"]
        count = min(per_file, statements - n)
        for _ in range(count - 2):
            if random.random() < 0.25:
                lines.append(random.choice(BIG_TEMPLATES)(n))
            else:
                lines.append(random.choice(TEMPLATES).format(n=n))
            n += 1
        n += 2
        with open(os.path.join(dirname, f"{f + 1:08d}_big{f + 1}.sql"), "w") as fh:
            fh.write("\n".join(lines) + "\n")
    return files


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
    """Runs cmd with output discarded; returns (seconds, CPU seconds, peak RSS in MiB, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def compare(label, sluice, squawk, corpus, statements, nfiles):
    """Runs both linters on one corpus; prints a table; returns the sluice row and the squawk row."""
    rows = [("sluice",) + measure([sluice, "lint", "--target", "postgres:15", "--format", "json", corpus])]
    if squawk:
        files = sorted(os.path.join(corpus, f) for f in os.listdir(corpus))
        rows.append(("squawk",) + measure([squawk, "--pg-version", "15", *files]))
    print(f"\n{label}: {statements} PostgreSQL statements in {nfiles} files")
    print(f"{'tool':<22} {'seconds':>9} {'cpu s':>8} {'stmts/s':>10} {'peak MiB':>9} {'exit':>5}")
    for name, secs, cpu, mib, code in rows:
        print(f"{name:<22} {secs:>9.2f} {cpu:>8.2f} {statements / secs:>10.0f} {mib:>9.1f} {code:>5}")
    if squawk:
        (_, t, c, m, _), (_, ts, cs, ms, _) = rows
        print(f"sluice / squawk: {ts / t:.2f}x the throughput (wall), {cs / c:.2f}x by CPU, "
              f"{m / ms:.2f}x the peak memory")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--statements", type=int, default=100_000)
    ap.add_argument("--per-file", type=int, default=100)
    ap.add_argument("--big-files", type=int, default=20)
    ap.add_argument("--sluice", help="a sluice binary to measure instead of building this tree's")
    args = ap.parse_args()

    sluice = args.sluice
    if not sluice:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "sluice"], cwd=ROOT, check=True)
        target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        sluice = os.path.join(target_dir, "release", "sluice")
    squawk = shutil.which("squawk")
    tmp = tempfile.mkdtemp(prefix="sluice-lint-bench-")
    try:
        big, small = os.path.join(tmp, "big"), os.path.join(tmp, "small")
        few = os.path.join(tmp, "few")
        nfiles = generate(big, args.statements, args.per_file)
        generate(small, args.statements // 10, args.per_file)
        nbig = generate_big(few, args.statements, args.big_files)
        rows = compare("many small files", sluice, squawk, big, args.statements, nfiles)
        compare("few big files", sluice, squawk, few, args.statements, nbig)
        _, _, mem2, _ = measure([sluice, "lint", "--target", "postgres:15", "--format", "json", small])
        if not squawk:
            print("squawk not found: npm install -g squawk-cli")
        print(f"\nsluice memory, many small files, full corpus vs 1/10: {rows[0][3]:.1f} MiB vs {mem2:.1f} MiB")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
