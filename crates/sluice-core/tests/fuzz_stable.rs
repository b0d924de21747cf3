//! The fuzz targets' checks (`fuzz/checks.rs`) run on stable Rust in every test run: a seeded
//! mutator (byte flips, inserts of dictionary tokens, deletions, splices between seeds) feeds each
//! check thousands of inputs grown from the cases that mattered before (marker near-misses, the
//! malformed URLs that once printed a password). libFuzzer goes deeper (`cd fuzz && cargo fuzz run
//! <target>`, nightly); this keeps the same guards standing in CI.
//!
//! `SLUICE_FUZZ_ITERS` (default 20000 per target) and `SLUICE_FUZZ_SEED` replay or extend a run;
//! a failure prints the seed, the iteration and the input.

#[path = "../../../fuzz/checks.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// xorshift64*: small, deterministic from its seed, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[&[u8]], dict: &[&[u8]], mut input: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 | 3 => {
                let tok = dict[rng.below(dict.len())];
                input.splice(at..at, tok.iter().copied());
            }
            4 if !input.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(input.len());
                input.drain(at.min(end)..end);
            }
            5 => {
                let other = seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(other.len() + 1)).min(other.len());
                input.splice(at..at, other[from..to].iter().copied());
            }
            _ => {
                // A multi-byte or control character, where parsers split on bytes.
                let odd: &[&str] = &["\u{a0}", "\u{200b}", "é", "\u{1b}", "\t", "\r", "\0", "𝔰"];
                let s = odd[rng.below(odd.len())].as_bytes();
                input.splice(at..at, s.iter().copied());
            }
        }
    }
    input.truncate(4096);
    input
}

fn run(name: &str, seeds: &[&[u8]], dict: &[&[u8]], check: impl Fn(&[u8])) {
    let iters: usize = std::env::var("SLUICE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("SLUICE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    let mut rng = Rng(seed);
    // The seeds themselves first: each is a case that mattered.
    for (i, s) in seeds.iter().enumerate() {
        if catch_unwind(AssertUnwindSafe(|| check(s))).is_err() {
            panic!(
                "{name}: seed input {i} fails: {:?}",
                String::from_utf8_lossy(s)
            );
        }
    }
    let mut pool: Vec<Vec<u8>> = seeds.iter().map(|s| s.to_vec()).collect();
    for i in 0..iters {
        let base = pool[rng.below(pool.len())].clone();
        let input = mutate(&mut rng, seeds, dict, base);
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            panic!(
                "{name}: iteration {i} fails (replay with SLUICE_FUZZ_SEED={seed} \
                 SLUICE_FUZZ_ITERS={}): {:?}",
                i + 1,
                String::from_utf8_lossy(&input)
            );
        }
        // Keep some mutants as new bases, so mutations compound.
        if rng.below(8) == 0 {
            let slot = rng.below(pool.len() + 1);
            if slot == pool.len() && pool.len() < 256 {
                pool.push(input);
            } else if slot < pool.len() && slot >= seeds.len() {
                pool[slot] = input;
            }
        }
    }
}

#[test]
fn directive_near_misses_never_become_comments() {
    let seeds: &[&[u8]] = &[
        b"-- sluice:down",
        b"--sluice:down",
        b"--  sluice:down",
        b"-- SLUICE:down",
        b"-- sluice: down",
        b"-- sluice:Down",
        b"# sluice:down",
        b"/* sluice:down */",
        b"-- sluice down",
        b"-- sluice-down",
        b"-- sluicedown",
        b"SELECT 2; -- sluice:down",
        b"-- sluice:up",
        b"-- a comment",
        b"-- sluice:no-transaction",
        // Found by this runner once: invisible or stray marks before or inside the marker.
        "--  \u{200b}sluice:down".as_bytes(),
        b"-- ; sluice:down",
        "--sluice\u{fffd}\u{fffd}:down".as_bytes(),
    ];
    let dict: &[&[u8]] = &[
        b"--",
        b"#",
        b"/*",
        b"*/",
        b"sluice",
        b"SLUICE",
        b"Sluice",
        b":",
        b"up",
        b"down",
        b"DOWN",
        b" ",
        b"  ",
        b"-",
        b"_",
        b"=",
        b";",
        b"'",
        b"\"",
        b"$$",
        b"no-transaction",
    ];
    run(
        "directive_near_miss",
        seeds,
        dict,
        checks::directive_near_miss,
    );
}

#[test]
fn passwords_never_show_in_any_message() {
    let seeds: &[&[u8]] = &[
        b"postgres://u:{p}@h/db",
        b"postgres:/u:{p}@h",
        b"postgres//u:{p}@h",
        b"u:{p}@h/db",
        b"postgres://u@h:bad/db?password={p}",
        b"mysql://u:{p}@h:99999/db",
        b"postgresql://u:{p}@[::1]:5432/db?sslmode=require&sslrootcert=/x",
        b"mysql://u:{p}@h/db?ssl-mode=REQUIRED",
        b"postgres://u:{p}@h1,h2/db",
        b"postgres://u:{p}@/db?host=/run/postgresql",
        b"postgres://{p}:{p}@h/db\0u",
        b"mysql://root:{p}@127.0.0.1:3306/app\0a+b",
        // Found by this runner once: a password that ends the authority early (`/`, `?`), a
        // URL inside a parameter, two URLs run together.
        b"mysql://h?host=/run/postgresql/u:{p}@h/db",
        b"postgresst=/run/postgresql//u:{p}@h/d://b",
        b"pos:{p}@h1,h2/dbtgres://u@h:bad/db?popassword={bp}",
        b"mysql://u:{p}@h/db\0/db?ssl-mode=REQUIRED",
        b"postgresql://u:{p}@[::1]:5\x00432/db?sslmode=require&sslrootcert=/x",
        b"postgres://u:{p}@h/db\0/x?password=:y&port=z",
        b"mysql:9//u:{p}@h/db?ssl-mode://u@h:badhost=/@db?pass=x",
        // A password parameter in the path (`;` for `?`) behind a malformed user name.
        b"postgres://u@\xef\xbf\xbd:ba@d/db;password={p}",
    ];
    let dict: &[&[u8]] = &[
        b":",
        b"@",
        b"/",
        b"//",
        b"?",
        b"&",
        b"=",
        b"password",
        b"{p}",
        b"%40",
        b"%",
        b"+",
        b"#",
        b"[",
        b"]",
        b"postgres",
        b"mysql",
        b"mariadb",
        b"://",
        b"user",
        b"host=",
        b"port=",
    ];
    run("url_redaction", seeds, dict, checks::url_redaction);
}

#[test]
fn the_sql_front_end_never_panics() {
    let seeds: &[&[u8]] = &[
        b"-- sluice:up\nALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0;\n-- sluice:down\nALTER TABLE t DROP COLUMN c;\n",
        b"CREATE INDEX CONCURRENTLY i ON t (a) WHERE b > 0;",
        b"ALTER TABLE t ALTER COLUMN id TYPE bigint USING id::bigint;",
        b"ALTER TABLE t MODIFY balance BIGINT NOT NULL, ALGORITHM=INPLACE, LOCK=NONE;",
        b"ALTER TABLE t /*!100000 , MODIFY c int */ ADD d int;",
        b"CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql;",
        b"ALTER TABLE \"Wert\" ADD CONSTRAINT u UNIQUE NULLS NOT DISTINCT (\"a b\") DEFERRABLE;",
        b"BEGIN; UPDATE t SET a = 1 WHERE id < 5; COMMIT;",
        b"ALTER TABLE t RENAME COLUMN a TO b; DROP TABLE x CASCADE;",
    ];
    let dict: &[&[u8]] = &[
        b";",
        b"'",
        b"\"",
        b"`",
        b"$$",
        b"$a$",
        b"--",
        b"/*",
        b"*/",
        b"(",
        b")",
        b",",
        b" ",
        b"\n",
        b"ALTER TABLE ",
        b"ADD ",
        b"DROP ",
        b"COLUMN ",
        b"INDEX ",
        b"CONCURRENTLY ",
        b"NOT NULL ",
        b"DEFAULT ",
        b"TYPE ",
        b"USING ",
        b"CHECK ",
        b"UNIQUE ",
        b"-- sluice:down\n",
    ];
    run("sql_front_end", seeds, dict, checks::sql_front_end);
}

#[test]
fn the_file_loader_never_panics() {
    let dir = std::env::temp_dir().join(format!("sluice-fuzz-stable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seeds: &[&[u8]] = &[
        b"1_a.sql\0-- sluice:up\nSELECT 1;\n-- sluice:down\nSELECT 2;\n",
        b"20240101000000_x.up.sql\0SELECT 1;",
        b"R_views.sql\0-- sluice:up\nCREATE VIEW v AS SELECT 1;\n",
        b"V1.2__x.sql\0SELECT 1;",
        b"1_a.postgres.sql\0-- sluice:up\n-- sluice:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
        b"0001_a.SQL\0",
    ];
    let dict: &[&[u8]] = &[
        b"\0",
        b"_",
        b".",
        b"sql",
        b"up",
        b"down",
        b"-- sluice:up\n",
        b"-- sluice:down\n",
        b"R_",
        b"V",
        b"__",
        b"\xff\xfe",
        b"\n",
        b"9999999999999999999",
    ];
    run("migration_file", seeds, dict, |d| {
        checks::migration_file(d, &dir)
    });
    let _ = std::fs::remove_dir_all(&dir);
}
