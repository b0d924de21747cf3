//! Issue 14: a change whose old application version does not see what the new one wrote (a lossy
//! cast, a value nobody wrote, a write that now fails) is stated in `sluice plan` as an
//! `old-version-sees` finding naming the column and what the old version sees; a lossless one (a
//! rename) states nothing. Every shape on each engine it exists on; where the statement makes a
//! claim about values, the claim is then checked against the server after `sluice up`.

mod common;

use common::Project;
use sluice_testkit::Server;

const RULE: &str = "old-version-sees";

/// What the server must do after `sluice up` (the statement's claims, tested).
enum Check {
    /// The write fails with an error whose text holds this.
    Fails(&'static str, &'static str),
    /// The write succeeds.
    Runs(&'static str),
    /// The query's single value, as text ("NULL" for NULL).
    Reads(&'static str, &'static str),
}

struct Shape {
    what: &'static str,
    server: Server,
    setup: &'static str,
    up: &'static str,
    /// Each old-version-sees finding's severity and substrings, in order; empty: none at all.
    sees: &'static [(&'static str, &'static [&'static str])],
    checks: &'static [Check],
}

const PG_T: &str = "CREATE TABLE t (id int PRIMARY KEY, c {old}); INSERT INTO t VALUES (1, {one})";

fn shapes() -> Vec<Shape> {
    use Check::*;
    vec![
        // PostgreSQL: the type change whose old column is kept until complete.
        Shape {
            what: "integer -> bigint: new values beyond integer reach the kept column as NULL",
            server: Server::Postgres,
            setup: "integer|1",
            up: "ALTER TABLE t ALTER COLUMN c TYPE bigint;",
            sees: &[(
                "warning",
                &[
                    "public.t.c as bigint, not integer",
                    "a value outside -2147483648..2147483647 is stored there as NULL",
                    "c_sluice_old",
                ],
            )],
            checks: &[
                Runs("INSERT INTO t (id, c) VALUES (2, 3000000000)"),
                Reads("SELECT c_sluice_old::text FROM t WHERE id = 2", "NULL"),
                Runs("INSERT INTO t (id, c) VALUES (3, 7)"),
                Reads("SELECT c_sluice_old::text FROM t WHERE id = 3", "7"),
                // Without a column list the kept column (in c's old place) gets the value: c
                // takes it, nothing is lost.
                Runs("INSERT INTO t VALUES (4, 8)"),
                Reads("SELECT c::text || ' ' || c_sluice_old::text FROM t WHERE id = 4", "8 8"),
            ],
        },
        Shape {
            what: "bigint -> integer: the old version's writes beyond integer fail",
            server: Server::Postgres,
            setup: "bigint|1",
            up: "ALTER TABLE t ALTER COLUMN c TYPE integer;",
            sees: &[(
                "warning",
                &["a value outside -2147483648..2147483647 fails"],
            )],
            checks: &[Fails(
                "INSERT INTO t (id, c) VALUES (2, 3000000000)",
                "out of range",
            )],
        },
        Shape {
            what: "numeric(12,4) -> numeric(12,2): the old version's writes are rounded",
            server: Server::Postgres,
            setup: "numeric(12,4)|1.5",
            up: "ALTER TABLE t ALTER COLUMN c TYPE numeric(12,2);",
            sees: &[(
                "warning",
                &[
                    "Of what it writes, a value with more than 2 decimal places is rounded to 2",
                    "a value outside -99999999.9999..99999999.9999 is stored there as NULL",
                ],
            )],
            checks: &[
                Runs("INSERT INTO t (id, c) VALUES (2, 1.2345)"),
                Reads("SELECT c::text FROM t WHERE id = 2", "1.23"),
                Runs("INSERT INTO t (id, c) VALUES (3, 1234567890.12)"),
                Reads("SELECT c_sluice_old::text FROM t WHERE id = 3", "NULL"),
            ],
        },
        Shape {
            what: "numeric(12,2) -> numeric(12,4): the kept column rounds what the new version writes",
            server: Server::Postgres,
            setup: "numeric(12,2)|1.5",
            up: "ALTER TABLE t ALTER COLUMN c TYPE numeric(12,4);",
            sees: &[(
                "warning",
                &[
                    "a value outside -99999999.9999..99999999.9999 fails",
                    "a value with more than 2 decimal places is rounded to 2 (and stays so after `sluice rollback`)",
                ],
            )],
            checks: &[
                Runs("INSERT INTO t (id, c) VALUES (2, 1.2345)"),
                Reads("SELECT c_sluice_old::text FROM t WHERE id = 2", "1.23"),
                Fails("INSERT INTO t (id, c) VALUES (3, 1234567890.12)", "overflow"),
            ],
        },
        Shape {
            what: "text -> varchar(5): the old version's longer strings fail",
            server: Server::Postgres,
            setup: "text|'a'",
            up: "ALTER TABLE t ALTER COLUMN c TYPE varchar(5);",
            sees: &[("warning", &["a string longer than 5 characters fails"])],
            checks: &[Fails(
                "INSERT INTO t (id, c) VALUES (2, 'abcdefgh')",
                "too long",
            )],
        },
        // PostgreSQL: a dropped column's value for the new version's rows.
        Shape {
            what: "drop a nullable column: NULL",
            server: Server::Postgres,
            setup: "int|1",
            up: "ALTER TABLE t DROP COLUMN c;",
            sees: &[("info", &["reads public.t.c as NULL in every row the new version inserts"])],
            checks: &[
                Runs("INSERT INTO t (id) VALUES (2)"),
                Reads("SELECT coalesce(c::text, 'NULL') FROM t WHERE id = 2", "NULL"),
            ],
        },
        Shape {
            what: "drop a nullable column of a domain with a default: the domain's default",
            server: Server::Postgres,
            setup: "CREATE DOMAIN dd AS text DEFAULT 'z'; CREATE TABLE t (id int PRIMARY KEY, c dd); INSERT INTO t VALUES (1, 'a')",
            up: "ALTER TABLE t DROP COLUMN c;",
            sees: &[("info", &["reads public.t.c as its type's default ('z'::text, the domain's)"])],
            checks: &[
                Runs("INSERT INTO t (id) VALUES (2)"),
                Reads("SELECT coalesce(c::text, 'NULL') FROM t WHERE id = 2", "z"),
            ],
        },
        Shape {
            what: "drop a NOT NULL column without a default: NULL, its NOT NULL dropped",
            server: Server::Postgres,
            setup: "int NOT NULL|1",
            up: "ALTER TABLE t DROP COLUMN c;",
            sees: &[("info", &["reads public.t.c as NULL (a NOT NULL column"])],
            checks: &[
                Runs("INSERT INTO t (id) VALUES (2)"),
                Reads("SELECT coalesce(c::text, 'NULL') FROM t WHERE id = 2", "NULL"),
            ],
        },
        Shape {
            what: "drop a column with a default: its default",
            server: Server::Postgres,
            setup: "int NOT NULL DEFAULT 42|1",
            up: "ALTER TABLE t DROP COLUMN c;",
            sees: &[("info", &["reads public.t.c as its default (42)"])],
            checks: &[
                Runs("INSERT INTO t (id) VALUES (2)"),
                Reads("SELECT c::text FROM t WHERE id = 2", "42"),
            ],
        },
        Shape {
            what: "drop a generated column: nothing to state (it computes its value)",
            server: Server::Postgres,
            setup: "int GENERATED ALWAYS AS (id * 2) STORED|DEFAULT",
            up: "ALTER TABLE t DROP COLUMN c;",
            sees: &[],
            checks: &[],
        },
        // Lossless, but the row has one more column while expanded: said for prepared `*`
        // statements and COPY without a column list.
        Shape {
            what: "rename column (lossless; one more column while expanded)",
            server: Server::Postgres,
            setup: "int|1",
            up: "ALTER TABLE t RENAME COLUMN c TO d;",
            sees: &[(
                "info",
                &["t has one more column, d", "cached plan must not change result type", "COPY t FROM"],
            )],
            checks: &[],
        },
        // Lossless: nothing is said.
        Shape {
            what: "rename table (lossless)",
            server: Server::Postgres,
            setup: "int|1",
            up: "ALTER TABLE t RENAME TO u;",
            sees: &[],
            checks: &[],
        },
        Shape {
            what: "drop table behind a view (lossless while expanded)",
            server: Server::Postgres,
            setup: "int|1",
            up: "DROP TABLE t;",
            sees: &[],
            checks: &[],
        },
        // Constraints added in one phase: the old version's writes that break them fail.
        Shape {
            what: "SET NOT NULL",
            server: Server::Postgres,
            setup: "int|1",
            up: "ALTER TABLE t ALTER COLUMN c SET NOT NULL;",
            sees: &[("info", &["leaves t.c NULL", "not-null violation"])],
            checks: &[Fails("INSERT INTO t (id) VALUES (2)", "null value")],
        },
        Shape {
            what: "SET NOT NULL of a column already NOT NULL (nothing said)",
            server: Server::Postgres,
            setup: "int NOT NULL|1",
            up: "ALTER TABLE t ALTER COLUMN c SET NOT NULL;",
            sees: &[],
            checks: &[],
        },
        Shape {
            what: "DROP DEFAULT of a NOT NULL column",
            server: Server::Postgres,
            setup: "int NOT NULL DEFAULT 0|1",
            up: "ALTER TABLE t ALTER COLUMN c DROP DEFAULT;",
            sees: &[("info", &["t.c is NOT NULL without a default", "not-null violation"])],
            checks: &[Fails("INSERT INTO t (id) VALUES (2)", "null value")],
        },
        Shape {
            what: "DROP DEFAULT of a nullable column (nothing said)",
            server: Server::Postgres,
            setup: "int DEFAULT 0|1",
            up: "ALTER TABLE t ALTER COLUMN c DROP DEFAULT;",
            sees: &[],
            checks: &[
                Runs("INSERT INTO t (id) VALUES (2)"),
                Reads("SELECT c::text FROM t WHERE id = 2", "NULL"),
            ],
        },
        Shape {
            what: "ADD UNIQUE",
            server: Server::Postgres,
            setup: "int|1",
            up: "ALTER TABLE t ADD CONSTRAINT t_c_key UNIQUE (c);",
            sees: &[("info", &["gives t (c) a value another row has", "unique violation"])],
            checks: &[Fails("INSERT INTO t VALUES (2, 1)", "duplicate key")],
        },
        Shape {
            what: "ADD CHECK",
            server: Server::Postgres,
            setup: "int|1",
            up: "ALTER TABLE t ADD CONSTRAINT c_positive CHECK (c > 0);",
            sees: &[("info", &["check c_positive rejects", "check violation"])],
            checks: &[Fails("INSERT INTO t VALUES (2, -1)", "c_positive")],
        },
        Shape {
            what: "ADD FOREIGN KEY",
            server: Server::Postgres,
            setup: "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1); CREATE TABLE t (id int PRIMARY KEY, c int); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t ADD CONSTRAINT t_c_fk FOREIGN KEY (c) REFERENCES p (id);",
            sees: &[("info", &["gives t (c) a value that matches no row of p", "foreign key violation"])],
            checks: &[
                Fails("INSERT INTO t VALUES (2, 99)", "foreign key"),
                Fails("DELETE FROM p WHERE id = 1", "foreign key"),
            ],
        },
        // MariaDB.
        Shape {
            what: "MariaDB: drop a NOT NULL column without a default: the default sluice gives",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int NOT NULL); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t DROP COLUMN c;",
            sees: &[("info", &["reads t.c as 0 (the default sluice gives it"])],
            checks: &[
                Runs("INSERT INTO t (id) VALUES (2)"),
                Reads("SELECT CAST(c AS CHAR) FROM t WHERE id = 2", "0"),
            ],
        },
        Shape {
            what: "MariaDB: drop a nullable column: NULL",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t DROP COLUMN c;",
            sees: &[("info", &["reads t.c as NULL"])],
            checks: &[
                Runs("INSERT INTO t (id) VALUES (2)"),
                Reads("SELECT CAST(c AS CHAR) FROM t WHERE id = 2", "NULL"),
            ],
        },
        Shape {
            // Lossless, but the server refuses an INSERT without a column list while the
            // new column stands beside the old one: said, and checked.
            what: "MariaDB: rename column (an INSERT without a column list fails)",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t RENAME COLUMN c TO d;",
            sees: &[(
                "info",
                &["t has one more column, d (right after c)", "Column count doesn't match"],
            )],
            checks: &[
                Fails("INSERT INTO t VALUES (2, 2)", "Column count doesn't match"),
                Runs("INSERT INTO t (id, c) VALUES (3, 3)"),
                Reads("SELECT CAST(d AS CHAR) FROM t WHERE id = 3", "3"),
            ],
        },
        Shape {
            // The defaults both names carry while expanded: a missing value is stored, not refused.
            what: "MariaDB: rename a NOT NULL column without a default",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int NOT NULL); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t RENAME COLUMN c TO d;",
            sees: &[
                ("info", &["t has one more column, d (right after c)"]),
                ("info", &["t.c and d have the default 0", "stores 0 instead of failing with 1364"]),
            ],
            checks: &[
                Runs("INSERT INTO t (id) VALUES (2)"),
                Reads("SELECT CONCAT(c, ' ', d) FROM t WHERE id = 2", "0 0"),
            ],
        },
        Shape {
            what: "MariaDB: rename table (lossless)",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int); INSERT INTO t VALUES (1, 1)",
            up: "RENAME TABLE t TO u;",
            sees: &[],
            checks: &[],
        },
        Shape {
            what: "MariaDB: drop table behind a view (lossless while expanded)",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int); INSERT INTO t VALUES (1, 1)",
            up: "DROP TABLE t;",
            sees: &[],
            checks: &[],
        },
        // NOT NULL added, or a default taken from a NOT NULL column: read against the live
        // column (a MODIFY restates the whole column), and against what an earlier statement of
        // the same migration left.
        Shape {
            what: "MariaDB: MODIFY a nullable column NOT NULL",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t MODIFY c int NOT NULL;",
            sees: &[("info", &["leaves t.c NULL", "1048", "1364"])],
            checks: &[
                Fails("INSERT INTO t (id) VALUES (2)", "doesn't have a default value"),
                Fails("INSERT INTO t VALUES (3, NULL)", "cannot be null"),
            ],
        },
        Shape {
            what: "MariaDB: MODIFY restating a NOT NULL column without its default",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int NOT NULL DEFAULT 0); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t MODIFY c int NOT NULL;",
            sees: &[("info", &["t.c is NOT NULL without a default", "1364"])],
            checks: &[Fails("INSERT INTO t (id) VALUES (2)", "doesn't have a default value")],
        },
        Shape {
            what: "MariaDB: CHANGE restating a NOT NULL column without its default",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c varchar(10) NOT NULL DEFAULT 'x'); INSERT INTO t VALUES (1, 'a')",
            up: "ALTER TABLE t CHANGE c c varchar(10) NOT NULL;",
            sees: &[("info", &["t.c is NOT NULL without a default", "1364"])],
            checks: &[Fails("INSERT INTO t (id) VALUES (2)", "doesn't have a default value")],
        },
        Shape {
            what: "MariaDB: ALTER COLUMN DROP DEFAULT of a NOT NULL column",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int NOT NULL DEFAULT 0); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t ALTER COLUMN c DROP DEFAULT;",
            sees: &[("info", &["t.c is NOT NULL without a default", "1364"])],
            checks: &[Fails("INSERT INTO t (id) VALUES (2)", "doesn't have a default value")],
        },
        Shape {
            what: "MariaDB: ADD a NOT NULL column without a default",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t ADD COLUMN d int NOT NULL;",
            sees: &[("info", &["leaves t.d out fails", "1364"])],
            checks: &[
                Fails("INSERT INTO t (id, c) VALUES (2, 2)", "doesn't have a default value"),
                Runs("INSERT INTO t (id, c, d) VALUES (3, 3, 3)"),
            ],
        },
        Shape {
            what: "MariaDB: MODIFY NOT NULL with a default, then DROP DEFAULT: one finding each",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t MODIFY c int NOT NULL DEFAULT 0;\nALTER TABLE t ALTER COLUMN c DROP DEFAULT;",
            sees: &[
                ("info", &["leaves t.c NULL", "1048"]),
                ("info", &["t.c is NOT NULL without a default"]),
            ],
            checks: &[
                Fails("INSERT INTO t (id) VALUES (2)", "doesn't have a default value"),
                Fails("INSERT INTO t VALUES (3, NULL)", "cannot be null"),
            ],
        },
        // Near misses: the column takes NULL and an INSERT leaving it out works as before.
        Shape {
            what: "MariaDB: MODIFY restating a NOT NULL column with its default (nothing said)",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int NOT NULL DEFAULT 0); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t MODIFY c int NOT NULL DEFAULT 0 COMMENT 'count';",
            sees: &[],
            checks: &[Runs("INSERT INTO t (id) VALUES (2)")],
        },
        Shape {
            what: "MariaDB: MODIFY a NOT NULL column NULL (nothing said)",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int NOT NULL); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t MODIFY c int NULL;",
            sees: &[],
            checks: &[Runs("INSERT INTO t (id) VALUES (2)")],
        },
        Shape {
            what: "MariaDB: ADD a NOT NULL column with a default (nothing said)",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t ADD COLUMN d int NOT NULL DEFAULT 7;",
            sees: &[],
            checks: &[
                Runs("INSERT INTO t (id, c) VALUES (2, 2)"),
                Reads("SELECT CAST(d AS CHAR) FROM t WHERE id = 2", "7"),
            ],
        },
        Shape {
            what: "MariaDB: ADD UNIQUE",
            server: Server::MariaDb,
            setup: "CREATE TABLE t (id int PRIMARY KEY, c int); INSERT INTO t VALUES (1, 1)",
            up: "ALTER TABLE t ADD UNIQUE KEY t_c (c);",
            sees: &[("info", &["gives t (c) a value another row has"])],
            checks: &[Fails("INSERT INTO t VALUES (2, 1)", "Duplicate entry")],
        },
    ]
}

async fn exec(p: &Project, sql: &str) -> Result<(), String> {
    match p.db.server {
        Server::Postgres => p.db.pg().await.batch_execute(sql).await.map_err(|e| {
            e.as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string())
        }),
        Server::MariaDb => {
            use mysql_async::prelude::Queryable;
            let mut c = p.db.my().await;
            c.query_drop(sql).await.map_err(|e| e.to_string())
        }
    }
}

async fn read(p: &Project, sql: &str) -> String {
    match p.db.server {
        Server::Postgres => {
            let row = p.db.pg().await.query_one(sql, &[]).await.unwrap();
            row.get::<_, Option<String>>(0)
                .unwrap_or_else(|| "NULL".into())
        }
        Server::MariaDb => {
            use mysql_async::prelude::Queryable;
            let mut c = p.db.my().await;
            let v: Option<mysql_async::Value> = c.query_first(sql).await.unwrap();
            match v {
                None | Some(mysql_async::Value::NULL) => "NULL".into(),
                Some(v) => mysql_async::from_value::<String>(v),
            }
        }
    }
}

#[tokio::test]
async fn plan_states_what_the_old_version_sees_for_every_lossy_shape_and_nothing_for_lossless_ones()
{
    for s in shapes() {
        let p = Project::new(s.server).await;
        let setup = match s.setup.split_once('|') {
            Some((old, one)) => PG_T.replace("{old}", old).replace("{one}", one),
            None => s.setup.to_string(),
        };
        exec(&p, &setup)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", s.what));
        p.write("1_change.sql", &format!("-- sluice:up\n{}\n", s.up));

        let r = p.run(&["plan", "--json"]);
        let j: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{}: {e}: {r:?}", s.what));
        let found: Vec<(String, String)> = j["migrations"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == RULE)
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().to_string(),
                    f["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(found.len(), s.sees.len(), "{}: {found:#?}", s.what);
        for ((severity, message), (want_sev, parts)) in found.iter().zip(s.sees) {
            assert_eq!(severity, want_sev, "{}: {message}", s.what);
            for part in *parts {
                assert!(
                    message.contains(part),
                    "{}: no `{part}` in: {message}",
                    s.what
                );
            }
        }
        // `up --dry-run` says it on the steps of a statement that runs in phases.
        let phased = ["DROP COLUMN", " TYPE ", "RENAME COLUMN"]
            .iter()
            .any(|k| s.up.contains(k));
        let dry = p.run(&["up", "--dry-run"]);
        assert_eq!(dry.code, 0, "{}: {dry:?}", s.what);
        assert_eq!(
            dry.stdout.contains("what the old version sees"),
            phased && !s.sees.is_empty(),
            "{}: {dry:?}",
            s.what
        );
        // The human plan says it too, and the statement can silence it as a rule's finding.
        let human = p.run(&["plan"]);
        assert_eq!(
            human.stdout.contains(RULE),
            !s.sees.is_empty(),
            "{}: {human:?}",
            s.what
        );
        if !s.sees.is_empty() {
            p.write(
                "1_change.sql",
                &format!(
                    "-- sluice:up\n{}\n",
                    // One statement per line: the directive is each statement's own.
                    s.up.lines()
                        .map(|l| format!("-- sluice:ignore {RULE} known and accepted\n{l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            );
            let quiet = p.run(&["plan", "--json"]);
            let q: serde_json::Value = serde_json::from_str(&quiet.stdout)
                .unwrap_or_else(|e| panic!("{}: {e}: {quiet:?}", s.what));
            let left: Vec<&serde_json::Value> = q["migrations"][0]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["rule"] == RULE || f["rule"] == "unused-ignore")
                .collect();
            assert!(left.is_empty(), "{}: {left:?}", s.what);
        }

        // The claims, against the server.
        if s.checks.is_empty() {
            continue;
        }
        let up = p.run(&["up"]);
        assert_eq!(up.code, 0, "{}: {up:?}", s.what);
        for c in s.checks {
            match c {
                Check::Runs(sql) => exec(&p, sql)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {sql}: {e}", s.what)),
                Check::Fails(sql, why) => {
                    let e = exec(&p, sql)
                        .await
                        .expect_err(&format!("{}: {sql} must fail", s.what));
                    assert!(e.contains(why), "{}: {sql}: {e}", s.what);
                }
                Check::Reads(sql, want) => {
                    assert_eq!(read(&p, sql).await, *want, "{}: {sql}", s.what)
                }
            }
        }
    }
}
