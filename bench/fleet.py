#!/usr/bin/env python3
"""`sluice fleet up` vs `sluice up` run once per database in sequence, on N local PostgreSQL
databases, with one target made to fail in the middle.

    python3 bench/fleet.py [--targets 100] [--concurrency 8] [--sluice BIN] [--no-build]

Creates N databases `sluice_fleet_bench_<k>` on the local PostgreSQL (postgres://postgres@127.0.0.1),
writes three small migrations (a table with 2,000 rows, an added column, an index), and makes target
N/2 fail (a table of another shape is already there). Then, alternating, twice each:
  * fleet:      `sluice fleet up --keep-going` over all N (concurrency C), then the failed target
                repaired and `sluice fleet up` again (the resume: finished targets are up to date);
  * sequential: `sluice up` on each database in turn (the failed one reported and skipped), then
                the repaired one again.
Every run starts from freshly created databases. Prints each phase's wall time, the fleet's
report line, and the ratio sequential / fleet.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN = "postgres://postgres@127.0.0.1:5432"
PREFIX = "sluice_fleet_bench_"

MIGRATIONS = {
    "1_create.sql": "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY, v int);\n"
    "INSERT INTO t SELECT g, g FROM generate_series(1, 2000) g;\n",
    "2_add.sql": "-- sluice:up\nALTER TABLE t ADD COLUMN w int;\n",
    "3_index.sql": "-- sluice:up\nCREATE INDEX t_v_idx ON t (v);\n",
}


def psql(db, sql):
    subprocess.run(["psql", f"{ADMIN}/{db}", "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))


def fresh(n, failing):
    for k in range(n):
        psql("postgres", f"DROP DATABASE IF EXISTS {PREFIX}{k} WITH (FORCE)")
        psql("postgres", f"CREATE DATABASE {PREFIX}{k}")
    psql(f"{PREFIX}{failing}", "CREATE TABLE t (other text)")


def repair(failing):
    psql(f"{PREFIX}{failing}", "DROP TABLE t")


def timed(cmd, cwd, env=None):
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       text=True)
    return time.monotonic() - t0, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--sluice")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    sluice = os.path.abspath(a.sluice or os.path.join(target_dir, "release", "sluice"))
    if not a.no_build and not a.sluice:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "sluice"], cwd=ROOT, check=True)
    n, failing = a.targets, a.targets // 2
    work = tempfile.mkdtemp(prefix="sluice-fleet-bench-")
    os.mkdir(os.path.join(work, "migrations"))
    for name, text in MIGRATIONS.items():
        with open(os.path.join(work, "migrations", name), "w") as f:
            f.write(text)
    rest = ", ".join(f'"{PREFIX}{k}"' for k in range(1, n))
    with open(os.path.join(work, "fleet.toml"), "w") as f:
        f.write(f'url = "{ADMIN}/{{target}}"\nconcurrency = {a.concurrency}\n'
                f'[[group]]\nname = "canary"\ntargets = ["{PREFIX}0"]\n'
                f'[[group]]\nname = "rest"\ntargets = [{rest}]\n')
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    results = {"fleet": [], "sequential": []}
    for round_ in range(2):
        for kind in ("fleet", "sequential") if round_ % 2 == 0 else ("sequential", "fleet"):
            fresh(n, failing)
            if kind == "fleet":
                first, r = timed([sluice, "fleet", "up", "--keep-going"], work, env)
                report = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
                assert r.returncode == 1, r.returncode
                repair(failing)
                resume, r2 = timed([sluice, "fleet", "up"], work, env)
                assert r2.returncode == 0, r2.returncode
                print(f"fleet      first {first:6.2f} s ({report}); resume {resume:5.2f} s")
            else:
                t0 = time.monotonic()
                failed = 0
                for k in range(n):
                    e = dict(env, DATABASE_URL=f"{ADMIN}/{PREFIX}{k}")
                    r = subprocess.run([sluice, "up"], cwd=work, env=e, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                    failed += r.returncode != 0
                first = time.monotonic() - t0
                repair(failing)
                e = dict(env, DATABASE_URL=f"{ADMIN}/{PREFIX}{failing}")
                resume, _ = timed([sluice, "up"], work, e)
                print(f"sequential first {first:6.2f} s ({failed} failed); resume {resume:5.2f} s")
            results[kind].append(first + resume)
    for k in range(n):
        psql("postgres", f"DROP DATABASE IF EXISTS {PREFIX}{k} WITH (FORCE)")
    f, s = statistics.median(results["fleet"]), statistics.median(results["sequential"])
    print(f"\n{n} targets, concurrency {a.concurrency}: fleet {f:.2f} s, sequential {s:.2f} s "
          f"(median of {len(results['fleet'])} each, including the resume): sequential / fleet = {s / f:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
