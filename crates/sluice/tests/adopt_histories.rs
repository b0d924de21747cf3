//! Real histories run unchanged, on both engines: no-op migrations are applied and reverted
//! (recorded, nothing runs); an empty down part means "nothing to undo"; `down` goes as far as it
//! can and stops at the first irreversible migration, naming why.

mod common;

use common::Project;
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;

/// The tables of the test database, sorted.
async fn tables(p: &Project, _server: Server) -> Vec<String> {
    let mut names = p.table_names().await;
    names.retain(|n| n.starts_with('t'));
    names
}

/// Every way a part can hold nothing.
const EMPTIES: [&str; 6] = [
    "",
    "\n\n   \n",
    "-- placeholder: this change only applies to the other engine\n",
    "\n-- a\n\n   -- b\n",
    "-- sluice:transaction per-statement\n-- nothing\n",
    "-- sluice:ignore some-rule nothing to check\n",
];

fn create(t: &str) -> String {
    format!(
        "-- sluice:up\nCREATE TABLE {t} (id INT PRIMARY KEY);\n-- sluice:down\nDROP TABLE {t};\n"
    )
}

async fn no_ops_and_irreversible_stops(server: Server) {
    let p = Project::new(server).await;
    p.write("1_t1.sql", &create("t1"));
    p.write(
        "2_marked.sql",
        "-- sluice:up\nCREATE TABLE t2 (id INT PRIMARY KEY);\n-- sluice:down\n-- sluice:irreversible t2 holds data nobody can rebuild\n",
    );
    p.write("3_t3.sql", &create("t3"));
    // No `-- sluice:down` at all, and an up part of comments only.
    p.write("4_no_down.sql", "-- kept for the version number\n");
    // Every pairing of empty up and empty down parts.
    let mut noops = Vec::new();
    for (i, up) in EMPTIES.iter().enumerate() {
        let down = EMPTIES[(i + 1) % EMPTIES.len()];
        let name = format!("{}_noop_{i}", 10 + i);
        p.write(
            &format!("{name}.sql"),
            &format!("-- sluice:up\n{up}-- sluice:down\n{down}"),
        );
        noops.push(name);
    }
    p.write("20_t4.sql", &create("t4"));
    let all: Vec<i64> = [1, 2, 3, 4]
        .into_iter()
        .chain(10..10 + EMPTIES.len() as i64)
        .chain([20])
        .collect();
    let states = |applied: &[i64]| -> Vec<(i64, String)> {
        all.iter()
            .map(|&v| {
                let s = if applied.contains(&v) {
                    "applied"
                } else {
                    "pending"
                };
                (v, s.to_string())
            })
            .collect()
    };

    let dry = p.run(&["up", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    for n in &noops {
        assert!(
            dry.stdout
                .contains(&format!("{n}  [single: no SQL: recorded, nothing runs]")),
            "{n}: {dry:?}"
        );
    }
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    for n in noops.iter().chain([&"4_no_down".to_string()]) {
        assert!(
            r.stderr
                .contains(&format!("applying {n} (no SQL: recorded, nothing runs)")),
            "{n}: {r:?}"
        );
    }
    assert_eq!(p.states(), states(&all));
    assert_eq!(tables(&p, server).await, ["t1", "t2", "t3", "t4"]);
    assert_eq!(p.run(&["drift"]).code, 0);

    // Down as far as it can: 20 and the no-ops above 4 are reverted, 4 (no down part) stops it.
    let above_4: Vec<String> = std::iter::once("20_t4".to_string())
        .chain(noops.iter().rev().cloned())
        .collect();
    let stop_4 = "migration 4_no_down is irreversible: it has no `-- sluice:down` part";
    let dry = p.run(&["down", "--to", "0", "--dry-run"]);
    assert_eq!(dry.code, 2, "{dry:?}");
    assert!(
        dry.stdout
            .contains(&format!("would roll back {} migration(s):", above_4.len())),
        "{dry:?}"
    );
    assert!(
        dry.stderr.contains(&format!(
            "{stop_4}; `sluice down` would stop there after rolling back {}",
            above_4.join(", ")
        )),
        "{dry:?}"
    );
    assert_eq!(p.states(), states(&all), "a dry run changes nothing");
    let r = p.run(&["down", "--to", "0"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "{stop_4}; `sluice down` stopped there after rolling back {}",
            above_4.join(", ")
        )),
        "{r:?}"
    );
    assert!(r.stderr.contains("sluice repair"), "{r:?}");
    assert_eq!(p.states(), states(&[1, 2, 3, 4]));
    assert_eq!(tables(&p, server).await, ["t1", "t2", "t3"]);

    // Given an empty down part (and the edit accepted), it goes on to the marked one.
    p.write(
        "4_no_down.sql",
        "-- sluice:up\n-- kept for the version number\n-- sluice:down\n",
    );
    let r = p.run(&["repair"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = p.run(&["down", "--to", "0"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("migration 2_marked is irreversible: it is marked `-- sluice:irreversible` (line 4): t2 holds data nobody can rebuild; `sluice down` stopped there after rolling back 4_no_down, 3_t3"),
        "{r:?}"
    );
    assert_eq!(p.states(), states(&[1, 2]));
    assert_eq!(tables(&p, server).await, ["t1", "t2"]);
    // With nothing above it, the stop is the whole answer, dry run or not.
    for args in [&["down"][..], &["down", "--dry-run"]] {
        let r = p.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("migration 2_marked is irreversible") && !r.stderr.contains("stop"),
            "{args:?}: {r:?}"
        );
        assert_eq!(r.stdout, "", "{args:?}: {r:?}");
    }
    assert_eq!(p.states(), states(&[1, 2]));

    // Up again to the end, and the schema sluice recorded matches.
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(p.states(), states(&all));
    assert_eq!(tables(&p, server).await, ["t1", "t2", "t3", "t4"]);
    assert_eq!(p.run(&["drift"]).code, 0);
}

#[tokio::test]
async fn postgres_no_ops_and_irreversible_stops() {
    no_ops_and_irreversible_stops(Server::Postgres).await;
}

#[tokio::test]
async fn mariadb_no_ops_and_irreversible_stops() {
    no_ops_and_irreversible_stops(Server::MariaDb).await;
}

/// Runs sluice with the small-table threshold given (None: the default, from neither flag nor env).
fn run_below(p: &Project, below: Option<u64>, args: &[&str]) -> common::Run {
    let mut c = p.command(args);
    c.env_remove("SLUICE_AS_WRITTEN_BELOW_ROWS");
    if let Some(n) = below {
        c.env("SLUICE_AS_WRITTEN_BELOW_ROWS", n.to_string());
    }
    c.output().unwrap().into()
}

async fn exec(p: &Project, server: Server, sql: &str) {
    match server {
        Server::Postgres => p.db.pg().await.batch_execute(sql).await.unwrap(),
        Server::MariaDb => p.db.my().await.query_drop(sql).await.unwrap(),
    }
}

async fn scalar(p: &Project, server: Server, sql: &str) -> String {
    match server {
        Server::Postgres => p.db.pg().await.query_one(sql, &[]).await.unwrap().get(0),
        Server::MariaDb => {
            p.db.my()
                .await
                .query_first::<String, _>(sql)
                .await
                .unwrap()
                .unwrap()
        }
    }
}

/// A type change that rewrites (PostgreSQL: staged) or copies (MariaDB: online copy) runs as
/// written exactly when the live table has fewer rows than the threshold, generated on both sides
/// of it; `--dry-run` and the log say so with the real count, and the data is kept.
async fn small_tables_run_as_written(server: Server) {
    let (alter, new_type, type_sql) = match server {
        Server::Postgres => (
            "ALTER TABLE t ALTER COLUMN v TYPE text",
            "text",
            "SELECT data_type::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 't' AND column_name = 'v'",
        ),
        Server::MariaDb => (
            "ALTER TABLE t MODIFY v VARCHAR(20)",
            "varchar",
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND COLUMN_NAME = 'v'",
        ),
    };
    let below = 5u64;
    for rows in [0u64, 1, 4, 5, 6, 9] {
        let p = Project::new(server).await;
        exec(&p, server, "CREATE TABLE t (id INT PRIMARY KEY, v INT)").await;
        for i in 0..rows {
            exec(
                &p,
                server,
                &format!("INSERT INTO t VALUES ({i}, {})", i * 10),
            )
            .await;
        }
        p.write("1_retype.sql", &format!("{alter};\n"));
        let note = format!("runs as written: the table has {rows} rows, below the threshold {below} (as_written_below_rows)");
        let small = rows < below;
        let dry = run_below(&p, Some(below), &["up", "--dry-run"]);
        assert_eq!(dry.code, 0, "{rows}: {dry:?}");
        assert_eq!(dry.stdout.contains(&note), small, "{rows}: {dry:?}");
        // `plan` exits 7 when a lint finding is an error (the rewrite is one on a large table).
        let plan = run_below(&p, Some(below), &["plan"]);
        assert!(plan.code == 0 || plan.code == 7, "{rows}: {plan:?}");
        assert_eq!(plan.stdout.contains(&note), small, "{rows}: {plan:?}");
        let r = run_below(&p, Some(below), &["up"]);
        match (server, small) {
            (_, true) => {
                assert_eq!(r.code, 0, "{rows}: {r:?}");
                assert!(r.stderr.contains(&note), "{rows}: {r:?}");
            }
            // Issue 13: staged (shadow column, trigger, backfill, swap) instead of refused.
            (Server::Postgres, false) => {
                assert_eq!(r.code, 0, "{rows}: {r:?}");
                assert!(r.stderr.contains("staged type change"), "{rows}: {r:?}");
                assert!(!r.stderr.contains("runs as written"), "{rows}: {r:?}");
            }
            (Server::MariaDb, false) => {
                assert_eq!(r.code, 0, "{rows}: {r:?}");
                assert!(!r.stderr.contains("runs as written"), "{rows}: {r:?}");
                assert_eq!(tables(&p, server).await, ["t"], "{rows}");
                assert!(
                    scalar(&p, server, "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_t_old'").await == "1",
                    "{rows}: the online copy keeps the old table: {r:?}"
                );
            }
        }
        assert_eq!(scalar(&p, server, type_sql).await, new_type, "{rows}");
        let sum = match server {
            Server::Postgres => {
                "SELECT COALESCE(string_agg(id || ':' || v, ',' ORDER BY id), '') FROM t"
            }
            Server::MariaDb => "SELECT COALESCE(GROUP_CONCAT(id, ':', v ORDER BY id), '') FROM t",
        };
        let want: Vec<String> = (0..rows).map(|i| format!("{i}:{}", i * 10)).collect();
        assert_eq!(scalar(&p, server, sum).await, want.join(","), "{rows}");
        if small {
            assert_eq!(p.run(&["drift"]).code, 0, "{rows}");
        }
    }

    // The default threshold, and sluice.toml's, on an empty table applied before the run (one
    // created earlier in the same run is new and runs as written without asking its size: see
    // tests/run_tables.rs).
    for (toml, threshold) in [(None, 10_000u64), (Some("as_written_below_rows = 3\n"), 3)] {
        let p = Project::new(server).await;
        if let Some(t) = toml {
            std::fs::write(p.path().join("sluice.toml"), t).unwrap();
        }
        p.write(
            "1_create.sql",
            "CREATE TABLE t (id INT PRIMARY KEY, v INT);\n",
        );
        let r = run_below(&p, None, &["up"]);
        assert_eq!(r.code, 0, "{r:?}");
        p.write("2_retype.sql", &format!("{alter};\n"));
        let r = run_below(&p, None, &["up"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stderr.contains(&format!("runs as written: the table has 0 rows, below the threshold {threshold} (as_written_below_rows)")),
            "{r:?}"
        );
        assert_eq!(scalar(&p, server, type_sql).await, new_type);
        // The flag (here through its environment variable) wins over sluice.toml: 0 turns it off.
        let back = match server {
            Server::Postgres => "ALTER TABLE t ALTER COLUMN v TYPE int USING v::int;\n",
            Server::MariaDb => "ALTER TABLE t MODIFY v INT;\n",
        };
        p.write("3_back.sql", back);
        let r = run_below(&p, Some(0), &["up"]);
        assert!(!r.stderr.contains("runs as written"), "{r:?}");
        match server {
            // Issue 13: staged rather than refused.
            Server::Postgres => {
                assert_eq!(r.code, 0, "{r:?}");
                assert!(r.stderr.contains("staged type change"), "{r:?}");
                assert_eq!(scalar(&p, server, type_sql).await, "integer");
            }
            Server::MariaDb => {
                assert_eq!(r.code, 0, "{r:?}");
                assert_eq!(
                    scalar(&p, server, "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_t_old'").await,
                    "1",
                    "copied online: {r:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn postgres_small_tables_run_as_written() {
    small_tables_run_as_written(Server::Postgres).await;
}

#[tokio::test]
async fn mariadb_small_tables_run_as_written() {
    small_tables_run_as_written(Server::MariaDb).await;
}

/// A MariaDB history written for the plain client, in Flyway's layout (the shape of a dump-based
/// project history): a dump's `LOCK TABLES ... WRITE` / `UNLOCK TABLES` around a data load, a
/// `BEGIN ... COMMIT` around data changes, and a `commit;` with no transaction open. `plan` has no
/// error for them, `up` in the default mode applies the history, and the data equals what the
/// plain client makes of the same files. A failure inside a `BEGIN ... COMMIT` rolls the group
/// back; once fixed, the rerun applies it exactly once.
#[tokio::test]
async fn mariadb_client_brackets_run_as_the_plain_client_runs_them() {
    let files = [
        (
            "V1.0__core.sql",
            "CREATE TABLE menu (id INT PRIMARY KEY, name VARCHAR(20));\n\nLOCK\n    TABLES `menu` WRITE;\nINSERT INTO `menu` VALUES (1, 'a'), (2, 'b');\nUNLOCK\n    TABLES;\nCREATE TABLE setting (id INT PRIMARY KEY, v VARCHAR(20));\ncommit;\n",
        ),
        (
            "V1.1__data.sql",
            "BEGIN;\nINSERT INTO setting VALUES (1, 'x');\nINSERT INTO setting VALUES (2, 'y');\nCOMMIT;\nALTER TABLE menu ADD COLUMN sort INT;\nSTART TRANSACTION;\nUPDATE menu SET sort = id * 10;\nINSERT INTO menu VALUES (3, 'c', 30);\nCOMMIT;\n",
        ),
        (
            "V1.2__more.sql",
            "LOCK TABLES setting WRITE, menu WRITE;\nINSERT INTO setting VALUES (3, 'z');\nUNLOCK TABLES;\n",
        ),
    ];
    let contents = "SELECT CONCAT_WS('|', (SELECT GROUP_CONCAT(id, ':', name, ':', IFNULL(sort, '-') ORDER BY id) FROM menu), (SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM setting))";

    // The plain client: every file as written, in order.
    let twin = Project::new(Server::MariaDb).await;
    let mut c = twin.db.my().await;
    for (_, text) in files {
        c.query_drop(text).await.unwrap();
    }
    let want: String = c.query_first(contents).await.unwrap().unwrap();
    drop(c);

    let p = Project::new(Server::MariaDb).await;
    for (name, text) in files {
        p.write(name, text);
    }
    let plan = p.run(&["plan"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let dry = p.run(&["up", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("runs as: (nothing)"), "{dry:?}");
    let up = p.run(&["up"]);
    assert_eq!(up.code, 0, "{up:?}");
    let mut c = p.db.my().await;
    let got: String = c.query_first(contents).await.unwrap().unwrap();
    assert_eq!(got, want);
    assert_eq!(p.run(&["drift"]).code, 0);

    // A failing statement inside BEGIN ... COMMIT: nothing of the group stays, the migration is
    // failed before its BEGIN; fixed, the rerun applies the group once.
    p.write(
        "V1.3__group.sql",
        "INSERT INTO setting VALUES (4, 'w');\nBEGIN;\nINSERT INTO setting VALUES (5, 'v');\nINSERT INTO nosuch VALUES (1);\nCOMMIT;\n",
    );
    let failed = p.run(&["up"]);
    assert_eq!(failed.code, 1, "{failed:?}");
    let ids = "SELECT GROUP_CONCAT(id ORDER BY id) FROM setting";
    let now: String = c.query_first(ids).await.unwrap().unwrap();
    assert_eq!(now, "1,2,3,4");
    let row: (String, i64) = c
        .query_first("SELECT state, statements_done FROM sluice_migrations WHERE name = 'group'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row, ("failed".to_string(), 1));
    p.write(
        "V1.3__group.sql",
        "INSERT INTO setting VALUES (4, 'w');\nBEGIN;\nINSERT INTO setting VALUES (5, 'v');\nINSERT INTO menu VALUES (4, 'd', 40);\nCOMMIT;\n",
    );
    let fixed = p.run(&["up"]);
    assert_eq!(fixed.code, 0, "{fixed:?}");
    let now: String = c.query_first(ids).await.unwrap().unwrap();
    assert_eq!(now, "1,2,3,4,5");
    assert_eq!(p.states().last().unwrap().1, "applied");
}

/// What a PostgreSQL database holds after migration 2 of the bracket test: columns, indexes and
/// the rows of every user table.
async fn pg_contents(db: &sluice_testkit::TestDb) -> Vec<String> {
    let c = db.pg().await;
    let mut out = Vec::new();
    for q in [
        "SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name NOT LIKE 'sluice%' ORDER BY 1",
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename NOT LIKE 'sluice%' ORDER BY 1",
        "SELECT coalesce(string_agg(t::text, ',' ORDER BY id), '') FROM t",
    ] {
        out.extend(c.query(q, &[]).await.unwrap().iter().map(|r| r.get(0)));
    }
    out
}

/// `psql -v ON_ERROR_STOP=1 -f` of one file: true when it applied it to the end.
fn psql_file(db: &sluice_testkit::TestDb, path: &std::path::Path) -> bool {
    let out = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db.url, "-f"])
        .arg(path)
        .output()
        .expect("psql");
    out.status.success()
}

/// A PostgreSQL file wrapped in BEGIN ... COMMIT (as goose, dbmate and golang-migrate histories
/// often are) runs as psql runs it: each group one transaction, a COMMIT or BEGIN psql only warns
/// of not at all; `up` gives what psql gives. What sluice cannot run faithfully inside the file's
/// transaction is refused with one message naming the statement and the fix, nothing applied, the
/// same on every rerun: a statement `up` stages (as written inside the transaction it would take
/// the lock the staging avoids: `--as-written` runs it, as psql does), one that cannot run in a
/// transaction (psql fails too), a ROLLBACK, an unclosed BEGIN.
#[tokio::test]
async fn postgres_client_brackets_run_as_psql_runs_them() {
    const LIVE: &str = "CREATE TABLE t (id int PRIMARY KEY, v text);\n";
    const INS: &str = "INSERT INTO t VALUES (1, 'a'), (2, 'b');";
    // (file, refused by `up` with this text in its message; None: applied as psql applies it)
    let cases: Vec<(String, Option<&[&str]>)> = vec![
        (format!("BEGIN;\n{INS}\nCREATE TABLE u (id int);\nCOMMIT;\n"), None),
        (format!("BEGIN TRANSACTION;\n{INS}\nEND;\n"), None),
        (format!("START TRANSACTION;\n{INS}\nCOMMIT;\n"), None),
        (format!("begin;\n{}\ncommit;\n", INS.to_lowercase()), None),
        (format!("BEGIN WORK;\n{INS}\nCOMMIT WORK;\n"), None),
        (format!("{INS}\nCOMMIT;\n"), None),
        (format!("BEGIN;\nBEGIN;\n{INS}\nCOMMIT;\nCOMMIT;\n"), None),
        (
            format!("BEGIN;\n{INS}\nCOMMIT;\nALTER TABLE t ADD COLUMN w int;\nBEGIN;\nUPDATE t SET w = id * 10;\nCOMMIT;\n"),
            None,
        ),
        (
            "BEGIN;\nCREATE TABLE n (id int PRIMARY KEY, a int);\nCREATE INDEX n_a ON n (a);\nCOMMIT;\n".into(),
            None,
        ),
        (
            format!("BEGIN;\n{INS}\nCREATE INDEX t_v ON t (v);\nCOMMIT;\n"),
            Some(&["`CREATE INDEX t_v ON t (v)", "is inside BEGIN ... COMMIT, but `sluice up` runs it staged", "move it after the COMMIT"]),
        ),
        (
            format!("BEGIN;\n{INS}\nCREATE INDEX CONCURRENTLY t_v ON t (v);\nCOMMIT;\n"),
            Some(&["`CREATE INDEX CONCURRENTLY t_v", "cannot run inside a transaction block, and it is inside BEGIN ... COMMIT"]),
        ),
        (
            format!("BEGIN;\n{INS}\nROLLBACK;\n"),
            Some(&["`ROLLBACK", "controls transactions"]),
        ),
        (format!("BEGIN;\n{INS}\n"), Some(&["`BEGIN", "controls transactions"])),
        (
            format!("{INS}\nABORT;\n"),
            Some(&["`ABORT", "controls transactions"]),
        ),
    ];
    for (file, refused) in &cases {
        // psql: the live table, then the file.
        let twin = Project::new(Server::Postgres).await;
        twin.write("1_live.sql", LIVE);
        twin.write("2_file.sql", file);
        assert!(psql_file(&twin.db, &twin.migration_path("1_live.sql")));
        let psql_ok = psql_file(&twin.db, &twin.migration_path("2_file.sql"));

        let p = Project::new(Server::Postgres).await;
        p.write("1_live.sql", &format!("-- sluice:up\n{LIVE}"));
        assert_eq!(p.run(&["up"]).code, 0, "{file}");
        p.write("2_file.sql", &format!("-- sluice:up\n{file}"));
        let before = pg_contents(&p.db).await;
        match refused {
            None => {
                assert!(psql_ok, "psql failed on {file}");
                let dry = p.run(&["up", "--dry-run"]);
                assert_eq!(dry.code, 0, "{file}: {dry:?}");
                let up = p.run(&["up"]);
                assert_eq!(up.code, 0, "{file}: {up:?}");
                assert_eq!(p.states().last().unwrap().1, "applied", "{file}");
                assert_eq!(
                    pg_contents(&p.db).await,
                    pg_contents(&twin.db).await,
                    "{file}"
                );
                let again = p.run(&["up"]);
                assert_eq!(again.code, 0, "{file}: {again:?}");
                assert_eq!(p.run(&["drift"]).code, 0, "{file}");
            }
            Some(why) => {
                for _ in 0..2 {
                    let up = p.run(&["up"]);
                    assert_eq!(up.code, 2, "{file}: {up:?}");
                    for w in why.iter().chain(&["2_file.sql"]) {
                        assert!(up.all().contains(w), "{file}: {w}: {up:?}");
                    }
                    assert_eq!(pg_contents(&p.db).await, before, "{file}");
                    assert_eq!(
                        p.states(),
                        vec![(1, "applied".to_string()), (2, "pending".to_string())],
                        "{file}"
                    );
                }
                // What psql does with the statement that stages: `--as-written` does the same.
                if file.contains("CREATE INDEX t_v") {
                    assert!(psql_ok, "{file}");
                    let written = p.run(&["up", "--as-written"]);
                    assert_eq!(written.code, 0, "{file}: {written:?}");
                    assert_eq!(
                        pg_contents(&p.db).await,
                        pg_contents(&twin.db).await,
                        "{file}"
                    );
                }
            }
        }
    }

    // From empty, the same index build inside BEGIN ... COMMIT is on a table the run creates: not
    // staged, so the group runs, and `plan` / `lint` judge it as `up` runs it.
    let file = "BEGIN;\nINSERT INTO t VALUES (1, 'a');\nCREATE INDEX t_v ON t (v);\nCOMMIT;\n";
    let twin = Project::new(Server::Postgres).await;
    twin.write("1_live.sql", LIVE);
    twin.write("2_file.sql", file);
    for f in ["1_live.sql", "2_file.sql"] {
        assert!(psql_file(&twin.db, &twin.migration_path(f)), "{f}");
    }
    let p = Project::new(Server::Postgres).await;
    p.write("1_live.sql", &format!("-- sluice:up\n{LIVE}"));
    p.write("2_file.sql", &format!("-- sluice:up\n{file}"));
    let plan = p.run(&["plan", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan json");
    let errors: Vec<&serde_json::Value> = doc["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["findings"].as_array().unwrap())
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let up = p.run(&["up"]);
    assert_eq!(up.code, 0, "{up:?}");
    assert_eq!(pg_contents(&p.db).await, pg_contents(&twin.db).await);
    assert_eq!(p.run(&["up"]).code, 0);
}
