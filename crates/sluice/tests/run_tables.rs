//! A real history applied from an empty database: a table created by an earlier pending
//! migration of the same run is new for the later ones. `plan` and connected `lint` judge it so
//! (the rules for live tables do not fire, the plan says why) and `up` runs its statements as
//! written; the same statements on a table that existed before the run keep their findings.

mod common;

use common::Project;
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;

/// What `plan` says of a statement on a table created earlier in the run.
const NEW_IN_RUN: &str = "table created earlier in this run";

/// Migration 1 of every history: the tables the later ones change.
fn create(server: Server) -> &'static str {
    match server {
        Server::Postgres => "-- sluice:up\nCREATE TABLE par (id bigint PRIMARY KEY);\nCREATE TABLE t (id bigint PRIMARY KEY, a int, b text, c int, p bigint);\n-- sluice:down\nDROP TABLE t;\nDROP TABLE par;\n",
        Server::MariaDb => "-- sluice:up\nCREATE TABLE par (id bigint PRIMARY KEY);\nCREATE TABLE t (id bigint PRIMARY KEY, a int, b varchar(100), c int, p bigint);\n-- sluice:down\nDROP TABLE t;\nDROP TABLE par;\n",
    }
}

/// Each breaking, locking, rewriting or copying statement kind of the engine, one migration each,
/// in an order where each is valid after the ones before.
fn kinds(server: Server) -> &'static [&'static str] {
    match server {
        Server::Postgres => &[
            "CREATE INDEX t_b ON t (b);",
            // An index the run made: new on a new table, live (locks t) on a live one.
            "DROP INDEX t_b;",
            "CREATE INDEX t_b ON t (b);",
            "ALTER TABLE t ALTER COLUMN a TYPE bigint;",
            "ALTER TABLE t RENAME COLUMN c TO c2;",
            "ALTER TABLE t ALTER COLUMN b SET NOT NULL;",
            "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0);",
            "ALTER TABLE t ADD CONSTRAINT t_p_fk FOREIGN KEY (p) REFERENCES par (id);",
            "ALTER TABLE t ADD COLUMN d int NOT NULL;",
            "ALTER TABLE t ALTER COLUMN d DROP NOT NULL;",
            "ALTER TABLE t DROP COLUMN c2;",
            "ALTER TABLE t ADD CONSTRAINT t_b_u UNIQUE (b);",
            "ALTER TABLE t ADD COLUMN e timestamptz DEFAULT clock_timestamp();",
            "ALTER TABLE t ADD COLUMN g serial;",
            "VACUUM FULL t;",
            "ALTER TABLE t RENAME TO t2;",
            "ALTER TABLE t2 ALTER COLUMN b TYPE varchar(200);",
        ],
        Server::MariaDb => &[
            "CREATE INDEX t_b ON t (b);",
            "ALTER TABLE t MODIFY a bigint;",
            "ALTER TABLE t RENAME COLUMN c TO c2;",
            "ALTER TABLE t CHANGE c2 c3 int;",
            "ALTER TABLE t ADD FULLTEXT INDEX t_ft (b);",
            "ALTER TABLE t DROP COLUMN c3;",
            "ALTER TABLE t ADD CONSTRAINT t_p_fk FOREIGN KEY (p) REFERENCES par (id);",
            "ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, p);",
            "ALTER TABLE t ADD COLUMN e int NOT NULL AFTER id;",
            "ALTER TABLE t ENGINE=InnoDB;",
            "ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4;",
            "ALTER TABLE t ALGORITHM=COPY, ADD COLUMN g int;",
            "ALTER TABLE t ADD COLUMN h int DEFAULT (rand());",
            "ALTER TABLE t RENAME TO t2;",
            "ALTER TABLE t2 MODIFY b varchar(200) NOT NULL;",
        ],
    }
}

async fn history(server: Server) -> Project {
    let p = Project::new(server).await;
    p.write("1_tables.sql", create(server));
    for (i, s) in kinds(server).iter().enumerate() {
        p.write(
            &format!("{}_kind.sql", i + 2),
            &format!("-- sluice:up\n{s}\n"),
        );
    }
    p
}

/// `plan --json` of a project: exit code and document.
fn plan(p: &Project) -> (i32, serde_json::Value) {
    let r = p.run(&["plan", "--json"]);
    assert!(r.code == 0 || r.code == 7, "{r:?}");
    (r.code, serde_json::from_str(&r.stdout).expect("plan json"))
}

/// A planned migration: its version, its findings as (rule, severity), and whether every action
/// of its statements carries the run note.
type Judged = (i64, Vec<(String, String)>, bool);

/// [`Judged`] for each planned migration from 2 on.
fn per_kind(doc: &serde_json::Value) -> Vec<Judged> {
    doc["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["version"].as_i64().unwrap() >= 2)
        .map(|m| {
            let findings = m["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["rule"].as_str().unwrap().to_string(),
                        f["severity"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let actions: Vec<&serde_json::Value> = m["statements"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["actions"].as_array().unwrap())
                .collect();
            let noted = !actions.is_empty()
                && actions.iter().all(|a| {
                    a["impact"]["note"]
                        .as_str()
                        .unwrap()
                        .starts_with(NEW_IN_RUN)
                });
            (m["version"].as_i64().unwrap(), findings, noted)
        })
        .collect()
}

/// The user's schema as the server shows it: tables, columns, indexes and constraints.
async fn schema(p: &Project) -> Vec<String> {
    match p.db.server {
        Server::Postgres => {
            let c = p.db.pg().await;
            let mut out = Vec::new();
            for q in [
                "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1",
                "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1",
                "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = current_schema()::regnamespace ORDER BY 1",
            ] {
                out.extend(c.query(q, &[]).await.unwrap().iter().map(|r| r.get(0)));
            }
            out
        }
        Server::MariaDb => {
            let mut c = p.db.my().await;
            let mut out = Vec::new();
            for t in p
                .table_names()
                .await
                .into_iter()
                .filter(|t| !t.starts_with("sluice_"))
            {
                let (_, def): (String, String) = c
                    .query_first(format!("SHOW CREATE TABLE `{t}`"))
                    .await
                    .unwrap()
                    .unwrap();
                out.push(def);
            }
            out
        }
    }
}

async fn a_run_from_empty_judges_its_own_tables_as_new(server: Server) {
    let n = kinds(server).len();

    // The whole history pending: every kind is on a table migration 1 creates in the same run.
    let fresh = history(server).await;
    let (code, doc) = plan(&fresh);
    let in_run = per_kind(&doc);
    assert_eq!(in_run.len(), n, "{doc}");
    for (v, findings, noted) in &in_run {
        let kind = kinds(server)[*v as usize - 2];
        assert!(
            noted,
            "{kind}: the plan does not say the table is new in this run: {doc}"
        );
        assert!(
            findings.iter().all(|(_, s)| s == "info"),
            "{kind}: {findings:?}"
        );
    }
    assert_eq!(code, 0, "{doc}");
    let lint = fresh.run(&["lint", "--connect"]);
    assert_eq!(lint.code, 0, "{lint:?}");
    assert!(
        lint.stdout.contains(&format!(
            "{n} statement(s) on tables created earlier in this run"
        )),
        "{lint:?}"
    );
    // Offline nothing says which migrations are pending: a table an earlier file creates may be
    // live, so lint judges it so.
    let target = match server {
        Server::Postgres => "postgres:15",
        Server::MariaDb => "mariadb:10.11",
    };
    let offline = fresh.run(&["lint", "--target", target, "migrations"]);
    assert_eq!(offline.code, 7, "{offline:?}");

    // `up` runs every statement as written: nothing staged, nothing online, nothing expanded.
    let dry = fresh.run(&["up", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(!dry.stdout.contains("runs as:"), "{dry:?}");
    let up = fresh.run(&["up"]);
    assert_eq!(up.code, 0, "{up:?}");
    assert!(
        fresh.states().iter().all(|(_, s)| s == "applied"),
        "{:?}",
        fresh.states()
    );
    let drift = fresh.run(&["drift"]);
    assert_eq!(drift.code, 0, "{drift:?}");
    // The same as the plain statements give.
    let twin = history(server).await;
    let written = twin.run(&["up", "--as-written"]);
    assert_eq!(written.code, 0, "{written:?}");
    let got = schema(&fresh).await;
    assert!(got.iter().any(|l| l.contains("t2")), "{got:?}");
    assert_eq!(got, schema(&twin).await);

    // The tables existed before the run (migration 1 applied): every kind keeps the findings it
    // had as a statement on a live table, and the plan exits 7.
    let live = history(server).await;
    let first = live.run(&["up", "--to", "1"]);
    assert_eq!(first.code, 0, "{first:?}");
    let (code, doc) = plan(&live);
    let before_run = per_kind(&doc);
    assert_eq!(before_run.len(), n, "{doc}");
    for ((v, fresh_findings, _), (_, live_findings, noted)) in in_run.iter().zip(&before_run) {
        let kind = kinds(server)[*v as usize - 2];
        assert!(!noted, "{kind}: {doc}");
        let only_live: Vec<&(String, String)> = live_findings
            .iter()
            .filter(|f| !fresh_findings.iter().any(|g| g.0 == f.0))
            .collect();
        assert!(
            !only_live.is_empty(),
            "{kind}: no finding for a live table beyond the new table's {fresh_findings:?}: {live_findings:?}"
        );
    }
    assert_eq!(code, 7, "{doc}");
    let lint = live.run(&["lint", "--connect"]);
    assert_eq!(lint.code, 7, "{lint:?}");
    assert!(
        !lint.stdout.contains("created earlier in this run"),
        "{lint:?}"
    );
}

#[tokio::test]
async fn postgres_run_from_empty_judges_its_own_tables_as_new() {
    a_run_from_empty_judges_its_own_tables_as_new(Server::Postgres).await;
}

#[tokio::test]
async fn mariadb_run_from_empty_judges_its_own_tables_as_new() {
    a_run_from_empty_judges_its_own_tables_as_new(Server::MariaDb).await;
}

/// `CREATE TABLE IF NOT EXISTS` of a table the database had before the run creates nothing new:
/// a later statement on it keeps its findings and runs staged or online. Dropped and created
/// again by the run, the table is new.
async fn if_not_exists_of_a_live_table_is_not_new(server: Server) {
    let (table, later) = match server {
        Server::Postgres => (
            "t (id bigint PRIMARY KEY, a int, b text, c int, p bigint)",
            "CREATE INDEX t_b ON t (b);",
        ),
        Server::MariaDb => (
            "t (id bigint PRIMARY KEY, a int, b varchar(100), c int, p bigint)",
            "ALTER TABLE t MODIFY a bigint;",
        ),
    };
    for (second, new) in [
        (format!("CREATE TABLE IF NOT EXISTS {table};"), false),
        (format!("DROP TABLE t;\nCREATE TABLE {table};"), true),
    ] {
        let p = Project::new(server).await;
        p.write("1_tables.sql", create(server));
        assert_eq!(p.run(&["up"]).code, 0);
        p.write("2_again.sql", &format!("-- sluice:up\n{second}\n"));
        p.write("3_later.sql", &format!("-- sluice:up\n{later}\n"));
        let plan = p.run(&["plan"]);
        assert_eq!(plan.stdout.contains(NEW_IN_RUN), new, "{second}: {plan:?}");
        let dry = p.run(&["up", "--dry-run"]);
        assert_eq!(dry.code, 0, "{dry:?}");
        assert_eq!(!dry.stdout.contains("runs as:"), new, "{second}: {dry:?}");
        let up = p.run(&["up"]);
        assert_eq!(up.code, 0, "{up:?}");
    }
}

#[tokio::test]
async fn postgres_if_not_exists_of_a_live_table_is_not_new() {
    if_not_exists_of_a_live_table_is_not_new(Server::Postgres).await;
}

#[tokio::test]
async fn mariadb_if_not_exists_of_a_live_table_is_not_new() {
    if_not_exists_of_a_live_table_is_not_new(Server::MariaDb).await;
}

/// Whether `plan --json` judges a DROP INDEX of migration `v` as locking a live table: the rule
/// asking for CONCURRENTLY fires (as info: `up` stages it) and the plan shows the concurrent step.
fn drop_index_judged_live(doc: &serde_json::Value, v: i64) -> (bool, bool) {
    let m = doc["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["version"].as_i64() == Some(v))
        .unwrap();
    let finding = m["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "require-concurrent-index-deletion");
    let step = m["statements"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["actions"].as_array().unwrap())
        .flat_map(|a| a["safe_steps"].as_array().unwrap())
        .any(|s| {
            s["sql"]
                .as_str()
                .unwrap()
                .starts_with("DROP INDEX CONCURRENTLY")
        });
    (finding, step)
}

/// A `DROP INDEX` of an index made earlier in the same file or by an earlier migration of the
/// run: on a table the run created it locks nothing in use and runs as written; on a table that
/// existed before the run it locks that live table, so it is still dropped CONCURRENTLY (and lint
/// still asks for it). Each case's `up` gives the schema `--as-written` gives, and a rerun is a
/// no-op.
#[tokio::test]
async fn postgres_drop_of_an_index_made_in_the_run() {
    const LIVE: &str = "-- sluice:up\nCREATE TABLE t (id bigint PRIMARY KEY, c int);\n";
    const NEW: &str = "CREATE TABLE n (id bigint PRIMARY KEY, a int);";
    // (case, migrations after the live table, the version whose DROP INDEX is judged, staged)
    let cases: Vec<(&str, Vec<String>, i64, bool)> = vec![
        (
            "same file, new table",
            vec![format!(
                "{NEW}\nCREATE INDEX n_a ON n (a);\nDROP INDEX n_a;"
            )],
            2,
            false,
        ),
        (
            "same file, live table",
            vec!["CREATE INDEX t_c ON t (c);\nDROP INDEX t_c;".into()],
            2,
            true,
        ),
        (
            "earlier migration, new table",
            vec![
                format!("{NEW}\nCREATE INDEX n_a ON n (a);"),
                "DROP INDEX IF EXISTS n_a;".into(),
            ],
            3,
            false,
        ),
        (
            "earlier migration, live table",
            vec![
                "CREATE INDEX t_c ON t (c);".into(),
                "DROP INDEX t_c;".into(),
            ],
            3,
            true,
        ),
        (
            "new table renamed in between",
            vec![
                format!("{NEW}\nCREATE INDEX n_a ON n (a);"),
                "ALTER TABLE n RENAME TO n2;".into(),
                "DROP INDEX n_a;".into(),
            ],
            4,
            false,
        ),
        (
            "the name made again on the live table",
            vec![
                format!("{NEW}\nCREATE INDEX n_a ON n (a);"),
                "DROP INDEX n_a;\nCREATE INDEX n_a ON t (c);".into(),
                "DROP INDEX n_a;".into(),
            ],
            4,
            true,
        ),
        (
            "its new table dropped, the name made on the live table",
            vec![
                format!("{NEW}\nCREATE INDEX n_a ON n (a);"),
                "DROP TABLE n;".into(),
                "CREATE INDEX n_a ON t (c);".into(),
                "DROP INDEX n_a;".into(),
            ],
            5,
            true,
        ),
    ];
    for (case, later, judged, staged) in cases {
        let project = || async {
            let p = Project::new(Server::Postgres).await;
            p.write("1_live.sql", LIVE);
            assert_eq!(p.run(&["up"]).code, 0, "{case}");
            for (i, sql) in later.iter().enumerate() {
                p.write(
                    &format!("{}_m.sql", i + 2),
                    &format!("-- sluice:up\n{sql}\n"),
                );
            }
            p
        };
        let p = project().await;
        let (_, doc) = plan(&p);
        assert_eq!(
            drop_index_judged_live(&doc, judged),
            (staged, staged),
            "{case}: {doc}"
        );
        let dry = p.run(&["up", "--dry-run"]);
        assert_eq!(dry.code, 0, "{case}: {dry:?}");
        let concurrent = dry.stdout.matches("DROP INDEX CONCURRENTLY").count();
        assert_eq!(concurrent > 0, staged, "{case}: {dry:?}");
        let up = p.run(&["up"]);
        assert_eq!(up.code, 0, "{case}: {up:?}");
        assert!(
            p.states().iter().all(|(_, s)| s == "applied"),
            "{case}: {:?}",
            p.states()
        );
        let again = p.run(&["up"]);
        assert_eq!(again.code, 0, "{case}: {again:?}");
        let twin = project().await;
        let written = twin.run(&["up", "--as-written"]);
        assert_eq!(written.code, 0, "{case}: {written:?}");
        assert_eq!(schema(&p).await, schema(&twin).await, "{case}");
    }
}

/// A column added by an earlier pending migration of the same run is new too: no deployed
/// application version uses it, so renaming or dropping it in a later migration of the run runs
/// as written (applied, not expanded); a column from before the run still runs in two phases.
/// Each case from a live table with rows, `up` run twice, schema equal to a twin run with
/// `--as-written`.
#[tokio::test]
async fn postgres_columns_added_in_the_run_are_new() {
    const LIVE: &str = "-- sluice:up\nCREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL DEFAULT 0);\nINSERT INTO t (id) SELECT g FROM generate_series(1, 500) g;\n";
    // (case, migrations after the live table, expanded versions after `up`)
    let cases: Vec<(&str, Vec<&str>, Vec<i64>)> = vec![
        (
            "added, then renamed",
            vec![
                "ALTER TABLE t ADD COLUMN c text;",
                "ALTER TABLE t RENAME COLUMN c TO d;",
            ],
            vec![],
        ),
        (
            "added, then dropped",
            vec![
                "ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT 'x';",
                "ALTER TABLE t DROP COLUMN c;",
            ],
            vec![],
        ),
        (
            "added, renamed, then the new name dropped",
            vec![
                "ALTER TABLE t ADD COLUMN c text;",
                "ALTER TABLE t RENAME COLUMN c TO d;",
                "ALTER TABLE t DROP COLUMN d;",
            ],
            vec![],
        ),
        (
            "a column from before the run",
            vec![
                "ALTER TABLE t ADD COLUMN c text;",
                "ALTER TABLE t RENAME COLUMN a TO b;",
            ],
            vec![3],
        ),
        (
            "added, dropped, a column of that name from before the run is not it",
            vec![
                "ALTER TABLE t ADD COLUMN c int;",
                "ALTER TABLE t DROP COLUMN c;",
                "ALTER TABLE t DROP COLUMN a;",
            ],
            vec![4],
        ),
    ];
    for (case, later, expanded) in cases {
        let mut schemas = Vec::new();
        for as_written in [false, true] {
            let p = Project::new(Server::Postgres).await;
            p.write("1_live.sql", LIVE);
            assert_eq!(p.run(&["up"]).code, 0, "{case}");
            for (i, sql) in later.iter().enumerate() {
                p.write(
                    &format!("{}_m.sql", i + 2),
                    &format!("-- sluice:up\n{sql}\n"),
                );
            }
            if !as_written && expanded.is_empty() {
                // plan agrees with up: no error for what up runs as written.
                let (code, doc) = plan(&p);
                let errors: Vec<&serde_json::Value> = doc["migrations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|m| m["findings"].as_array().unwrap())
                    .filter(|f| f["severity"] == "error")
                    .collect();
                assert!(code == 0 && errors.is_empty(), "{case}: {errors:?}");
            }
            let args: &[&str] = if as_written {
                &["up", "--as-written"]
            } else {
                &["up"]
            };
            for run in 0..2 {
                let r = p.run(args);
                assert_eq!(r.code, 0, "{case}, run {run}: {r:?}");
            }
            let status = p.run(&["status", "--json"]);
            let doc: serde_json::Value = serde_json::from_str(&status.stdout).expect("status json");
            let open: Vec<i64> = doc["migrations"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["status"] == "expanded")
                .map(|m| m["version"].as_i64().unwrap())
                .collect();
            if !as_written {
                assert_eq!(open, expanded, "{case}: {}", status.stdout);
                if !expanded.is_empty() {
                    assert_eq!(p.run(&["complete"]).code, 0, "{case}");
                }
            }
            schemas.push(schema(&p).await);
        }
        assert_eq!(schemas[0], schemas[1], "{case}");
    }
}
