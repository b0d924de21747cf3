#!/usr/bin/env python3
"""`sluice refs` vs ripgrep on the same generated code tree, searching the same names.

    python3 bench/refs.py [--files 100000] [--pairs 5] [--dir DIR] [--sluice BIN] [--no-build]

Builds sluice in release mode ($CARGO_TARGET_DIR when set), generates a tree of --files files
(Rust, Python, TypeScript, Go, Ruby, Java, SQL, YAML, Markdown; ~40 lines each, a few hundred
naming what the migrations change, a .gitignored directory too) once into DIR (default: a
directory under the system temp dir, reused when it already holds a tree of that size), then
runs `sluice refs --json` and `rg` alternately, --pairs times each after one untimed warm-up of
each, output discarded. rg searches the very pattern sluice searches with (each change's
`pattern` from `sluice refs --json`: the database's spelling in any case, the ORM spellings as
written), with line numbers, honouring .gitignore like sluice. Prints each tool's median wall time and the ratio
(goal: sluice within 2x of rg, while it also reads every hit's file to classify it).
ripgrep: `apt-get install ripgrep`.
"""
import argparse, json, os, random, re, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MIGRATIONS = {
    "1_orders.sql": "-- sluice:up\nALTER TABLE orders DROP COLUMN legacy_code;\n"
    "ALTER TABLE orders ALTER COLUMN total_cents TYPE bigint;\n",
    "2_users.sql": "-- sluice:up\nALTER TABLE users RENAME COLUMN user_name TO display_name;\n",
    "3_items.sql": "-- sluice:up\nDROP TABLE line_items;\n",
}

WORDS = ("account customer invoice payment shipment product price amount status created updated "
         "deleted token session request response handler service config value result error "
         "index count total name label title body item entry record event queue batch").split()

# One file of each language: (extension, line templates). {a}/{b} are filler identifiers.
LANGS = [
    ("rs", ["    let {a} = {b}.iter().map(|x| x + 1).collect::<Vec<_>>();",
            "fn {a}_{b}(input: &str) -> Option<String> {{ None }}",
            "    // {a} {b}: keep the {a} in sync with the {b}"]),
    ("py", ["    {a} = {b}.get('{a}', None)", "def {a}_{b}(self, value):",
            "    return [x for x in self.{a} if x.{b}]"]),
    ("ts", ["  const {a} = await {b}.find({{ where: {{ id }} }});",
            "export function {a}{B}(x: number): number {{ return x; }}",
            "  // {a} then {b}"]),
    ("go", ["\t{a} := {b}.Load(ctx)", "func {A}{B}(ctx context.Context) error {{ return nil }}",
            "\tif err != nil {{ return fmt.Errorf(\"{a}: %w\", err) }}"]),
    ("rb", ["  def {a}_{b} = @{a}.map(&:{b})", "    {a} = {b}.find_by(id: id)", "  # {a} {b}"]),
    ("java", ["    private final {A} {a} = new {A}();", "    public {B} get{A}() {{ return {b}; }}",
              "        {a}.{b}();"]),
    ("sql", ["SELECT {a}, {b} FROM {a}s WHERE {b} > 0;", "-- {a} by {b}",
             "UPDATE {b}s SET {a} = 1 WHERE id = 2;"]),
    ("yml", ["  {a}: {b}", "  - name: {a}_{b}", "    description: the {a} of a {b}"]),
    ("md", ["The {a} keeps its {b}.", "- {a}: {b}", "## {A} and {B}"]),
]

# Lines that name what the migrations change (the hits), by extension.
HITS = {
    "rs": ["    sqlx::query!(\"SELECT legacy_code FROM orders WHERE id = $1\", id)",
           "    pub user_name: String,", "    let total_cents = o.total_cents;"],
    "py": ["    legacy_code = Column(String)", "    cur.execute('SELECT user_name FROM users')",
           "class LineItem(Base):"],
    "ts": ["  legacyCode?: string;", "  @Column({ name: \"total_cents\" })", "const items = LineItems;"],
    "go": ["\tUserName string `gorm:\"column:user_name\"`", "\tdb.Raw(\"SELECT total_cents FROM orders\")"],
    "rb": ["  create_table \"line_items\" do |t|", "    t.string \"legacy_code\""],
    "java": ["        return ctx.select(ORDERS.LEGACY_CODE).from(ORDERS).fetch();"],
    "sql": ["SELECT sum(total_cents) FROM orders;", "SELECT * FROM line_items;"],
    "yml": ["      - name: legacy_code"],
    "md": ["The user_name column is renamed."],
}


def cap(w):
    return w[:1].upper() + w[1:]


def generate(root, files, seed=16):
    rnd = random.Random(seed)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "migrations"))
    for name, text in MIGRATIONS.items():
        with open(os.path.join(root, "migrations", name), "w") as f:
            f.write(text)
    with open(os.path.join(root, ".gitignore"), "w") as f:
        f.write("generated/\n")
    hits = 0
    for n in range(files):
        ext, templates = LANGS[n % len(LANGS)]
        # 1000 files to a directory, as a big monorepo's packages; one in 500 is .gitignored.
        top = "generated" if n % 500 == 499 else f"pkg{n // 1000:03d}"
        d = os.path.join(root, top, f"m{(n // 100) % 10}")
        os.makedirs(d, exist_ok=True)
        lines = []
        for _ in range(40):
            a, b = rnd.choice(WORDS), rnd.choice(WORDS)
            lines.append(rnd.choice(templates).format(a=a, b=b, A=cap(a), B=cap(b)))
        # One file in 250 names a changed table or column.
        if n % 250 == 7 and ext in HITS:
            lines.insert(rnd.randrange(len(lines)), rnd.choice(HITS[ext]))
            hits += 1
        with open(os.path.join(d, f"f{n}.{ext}"), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(root, ".bench-files"), "w") as f:
        f.write(str(files))
    return hits


def timed(cmd, cwd):
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    # sluice exits 10 when it finds references to dropped names; rg 0 when it finds any.
    if p.returncode not in (0, 10):
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "sluice-bench-refs"))
    ap.add_argument("--sluice", help="the sluice binary (default: build it in release mode)")
    ap.add_argument("--no-build", action="store_true", help="use the release binary as it is")
    args = ap.parse_args()
    if shutil.which("rg") is None:
        sys.exit("rg (ripgrep) is not installed: apt-get install ripgrep")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    sluice = args.sluice or os.path.join(target, "release", "sluice")
    if not args.sluice and not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "sluice"], cwd=ROOT, check=True)

    marker = os.path.join(args.dir, ".bench-files")
    if not (os.path.exists(marker) and open(marker).read() == str(args.files)):
        t = time.perf_counter()
        hits = generate(args.dir, args.files)
        print(f"generated {args.files} files ({hits} with a reference) in {args.dir} "
              f"in {time.perf_counter() - t:.1f}s")

    refs = [sluice, "refs", "--target", "postgres:15", "--json"]
    out = subprocess.run(refs, cwd=args.dir, capture_output=True, text=True)
    if out.returncode not in (0, 10):
        sys.exit(f"sluice refs failed: {out.stderr}")
    report = json.loads(out.stdout)
    changes = [c for m in report["migrations"] for c in m["changes"]]
    # The very pattern sluice searches: every change's (`pattern` in its JSON).
    pattern = "|".join(sorted({f"(?:{c['pattern']})" for c in changes}))
    rg = ["rg", "--line-number", "--no-heading", "-e", pattern, "."]
    rg_lines = subprocess.run(rg, cwd=args.dir, capture_output=True, text=True).stdout.count("\n")
    print(f"sluice: {report['references']} reference(s) ({report['certain_references']} certain) "
          f"in {len(changes)} change(s); rg: {rg_lines} matching line(s)")
    print(f"pattern: {pattern}")

    times = {"sluice": [], "rg": []}
    timed(refs, args.dir), timed(rg, args.dir)  # warm the page cache
    for _ in range(args.pairs):
        times["sluice"].append(timed(refs, args.dir))
        times["rg"].append(timed(rg, args.dir))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:7} median {med[k] * 1000:8.1f} ms   runs: {' '.join(f'{x * 1000:.0f}' for x in v)}")
    ratio = med["sluice"] / med["rg"]
    print(f"sluice / rg = {ratio:.2f}x ({'within' if ratio <= 2 else 'above'} the 2x goal) "
          f"on {args.files} files, {os.cpu_count()} CPU(s)")


if __name__ == "__main__":
    main()
