//! Issue 12, one operation model: for every statement of a corpus, the steps `sluice plan --json`
//! shows, the steps `sluice up --dry-run --json` shows and the statements `sluice up` actually sends
//! are the same, statement by statement (whitespace aside), on both engines.
//!
//! What `up` sends is read from the server, never from sluice: a private PostgreSQL started with
//! `log_statement=all`, and a private MariaDB with the general log in a table. Both run in temporary
//! directories on their own ports (the shared servers' settings must not change).

mod common;

use common::{PrivatePg, PG_BIN};

use mysql_async::prelude::Queryable;
use sluice_testkit::PrivateMariaDb;
use std::path::{Path, PathBuf};
use std::process::Command;
fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(';')
        .trim()
        .to_string()
}

/// Runs sluice in `dir` against `url`.
fn sluice(dir: &Path, url: &str, args: &[&str]) -> common::Run {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        // The tables here are tiny: the staged and online forms under test need the threshold off.
        .env("SLUICE_AS_WRITTEN_BELOW_ROWS", "0")
        .env_remove("SLUICE_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sluice")
        .into()
}

/// The JSON a run printed; plan exits 7 for an error-level finding and still prints it.
fn json(r: &common::Run, what: &str) -> serde_json::Value {
    assert!(r.code == 0 || r.code == 7, "{what}: {r:?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{what}: {e}: {r:?}"))
}

/// A project directory holding one migration.
fn project(sql: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations").join("1_row.sql"),
        format!("-- sluice:up\n{sql};\n"),
    )
    .unwrap();
    dir
}

/// `up --dry-run --json`: for each statement, the steps it runs as (the statement itself when it
/// runs as written).
fn dry_run_steps(j: &serde_json::Value) -> Vec<Vec<String>> {
    let m = &j[0];
    m["statements"]
        .as_array()
        .unwrap()
        .iter()
        .zip(m["runs_as"].as_array().unwrap())
        .map(|(s, r)| match r.as_object() {
            // An expand phase with no step (a DROP COLUMN that needs no change before complete).
            Some(r) if r["sql"].as_str().unwrap().starts_with("-- nothing now") => vec![],
            Some(r) => std::iter::once(r["sql"].as_str().unwrap().to_string())
                .chain(
                    r["then"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t.as_str().unwrap().to_string()),
                )
                .collect(),
            None => vec![s.as_str().unwrap().to_string()],
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A private PostgreSQL logging every statement with its database (`@@db@@ ` starts an entry).
fn start_logging_pg() -> Option<PrivatePg> {
    PrivatePg::start_with(
        "-c log_statement=all -c log_line_prefix=@@%d@@\\  -c log_min_messages=warning",
    )
}

fn pg_log(pg: &PrivatePg) -> PathBuf {
    pg.dir.path().join("log")
}

/// The statements logged for `db` after byte `from` of the log.
fn statements(pg: &PrivatePg, db: &str, from: usize) -> Vec<String> {
    let text = std::fs::read_to_string(pg_log(pg)).unwrap();
    let tag = format!("@@{db}@@ ");
    let mut entries: Vec<String> = Vec::new();
    let mut mine = false;
    for line in text[from..].lines() {
        if let Some(rest) = line.strip_prefix("@@") {
            mine = line.starts_with(&tag);
            if mine {
                let _ = rest;
                entries.push(line[tag.len()..].to_string());
            }
        } else if mine {
            if let Some(last) = entries.last_mut() {
                last.push('\n');
                last.push_str(line);
            }
        }
    }
    let sent: Vec<String> = entries
        .iter()
        .filter_map(|e| {
            let e = e.strip_prefix("LOG:  ")?;
            if let Some(s) = e.strip_prefix("statement: ") {
                return Some(s.to_string());
            }
            let s = e.strip_prefix("execute ")?;
            Some(s.split_once(": ")?.1.to_string())
        })
        // The backfill pacer's latency probe (its own session, by key): not a step. On a loaded
        // machine its last one can be logged inside the swap.
        .filter(|s| !(s.starts_with("SELECT 1 FROM ") && s.contains("$1")))
        .collect();
    // A swap sends its leading `LOCK TABLE` statements apart from the rest (to time the wait for
    // them): one step, as planned.
    let mut out: Vec<String> = Vec::new();
    for s in sent {
        match out.last_mut() {
            Some(last) if last.trim_end().ends_with("IN ACCESS EXCLUSIVE MODE;") => {
                last.push_str(&s)
            }
            _ => out.push(s),
        }
    }
    out
}

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c
}

/// A backfill batch: one statement that finds the batch's end key, updates the key range of the
/// user's table and records the checkpoint (in sluice's own table).
fn pg_batch(s: &str) -> bool {
    s.starts_with("WITH bound AS (") && s.contains(" upd AS (UPDATE ")
}

/// Statements that change the user's tables (sluice's own bookkeeping, reads, session settings and
/// the DO blocks that check a name is free are not steps).
fn pg_change(s: &str) -> bool {
    if pg_batch(s) {
        return true;
    }
    let first = s
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    // The fill's NOT NULL (issue 14): DO blocks that add, validate and prove its helper check.
    if first == "DO" && s.contains("_sluice_not_null") {
        return true;
    }
    let change = matches!(
        first.as_str(),
        "CREATE"
            | "ALTER"
            | "DROP"
            | "UPDATE"
            | "INSERT"
            | "DELETE"
            | "COMMENT"
            | "TRUNCATE"
            | "ANALYZE"
            | "LOCK"
    ) || s.starts_with("WITH upd AS (UPDATE ")
        // A step that holds one table while it waits for another (a foreign key copy's ADD, a
        // swap that locks the referencing tables) first shortens its own lock wait.
        || s.starts_with("SELECT set_config('lock_timeout', least(");
    // The staged type change names its shadow column and trigger `*_sluice_new`/`*_sluice_sync`
    // (and the kept old column and reverse trigger `*_sluice_old`/`*_sluice_back`):
    // those are steps on the user's table, not bookkeeping.
    change
        && !s
            .to_ascii_lowercase()
            .replace("_sluice_new", "")
            .replace("_sluice_sync", "")
            // The old column a type change keeps until complete, and its reverse trigger.
            .replace("_sluice_old", "")
            .replace("_sluice_back", "")
            // The two phases of a rename (issue 14): its trigger, function and index copies.
            .replace("_sluice_rename", "")
            // The fill's trigger and function (issue 14).
            .replace("_sluice_fill", "")
            // The name a DROP TABLE's table has until complete (issue 14).
            .replace("_sluice_dropped", "")
            .contains("sluice")
}

/// What `up` sent, matched against the expected steps: a backfill step stands for its batches
/// (`WITH bound AS (<end key>), upd AS (UPDATE t SET <set> WHERE <key range> AND <filter> ...)`,
/// or `WITH upd AS (UPDATE ...)` by ctid), at least one.
fn pg_sent_as_steps(expected: &[String], sent: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    for step in expected {
        if let Some(update) = step.strip_prefix("backfill in batches: ") {
            let (head, filter) = update.rsplit_once(" WHERE ").unwrap_or((update, ""));
            let set = head.split_once(" SET ").map(|x| x.1).unwrap_or("");
            let start = i;
            while i < sent.len()
                && (pg_batch(&sent[i]) || sent[i].starts_with("WITH upd AS (UPDATE "))
                && sent[i].contains(&format!(" SET {set} WHERE "))
                && sent[i].contains(filter)
            {
                i += 1;
            }
            if i > start {
                out.push(step.clone());
            }
            continue;
        }
        if i < sent.len() {
            out.push(norm(&sent[i]));
            i += 1;
        }
    }
    out.extend(sent[i..].iter().map(|s| norm(s)));
    out
}

const PG_SETUP: &str = r#"
CREATE SCHEMA app;
CREATE TABLE p (id bigint PRIMARY KEY);
INSERT INTO p VALUES (1), (2);
CREATE TABLE t (id bigint PRIMARY KEY, a int, b text, c int NOT NULL DEFAULT 0, "Mixed" text,
                email text, n int, v varchar(10), parent_id bigint);
INSERT INTO t SELECT g, g, 'b' || g, g, 'm' || g, 'e' || g || '@x', g, 'v', 1 FROM generate_series(1, 5) g;
CREATE INDEX t_a_idx ON t (a);
CREATE INDEX t_b_idx ON t (b);
CREATE INDEX "T_Mixed_Idx" ON t ("Mixed");
ALTER TABLE t ADD CONSTRAINT t_c_nv CHECK (c >= 0) NOT VALID;
ALTER TABLE t ADD CONSTRAINT t_n_nn CHECK (n IS NOT NULL);
CREATE TABLE app.u (id bigint PRIMARY KEY, v int, "Wert" text);
INSERT INTO app.u SELECT g, g, 'w' || g FROM generate_series(1, 3) g;
CREATE INDEX u_v_idx ON app.u (v);
CREATE TABLE nopk (a int, b int);
INSERT INTO nopk VALUES (1, 1), (2, 2);
CREATE UNIQUE INDEX nopk_a_uidx ON nopk (a);
CREATE TABLE pi (id int PRIMARY KEY);
INSERT INTO pi VALUES (1), (2);
CREATE TABLE ci (k int PRIMARY KEY, pi_id int REFERENCES pi (id) ON DELETE CASCADE);
INSERT INTO ci VALUES (1, 1), (2, 2);
CREATE INDEX ci_pi_id_idx ON ci (pi_id);
"#;

/// One corpus row: the migration's SQL and, for the disagreements issue 12 listed (regressions),
/// the exact steps `up` must run for it.
struct Row {
    sql: &'static str,
    expect: Option<&'static [&'static str]>,
    /// Runs as written although its kind is usually staged: the plan must say why.
    why: Option<&'static str>,
}

const fn row(sql: &'static str) -> Row {
    Row {
        sql,
        expect: None,
        why: None,
    }
}

const fn reg(sql: &'static str, expect: &'static [&'static str]) -> Row {
    Row {
        sql,
        expect: Some(expect),
        why: None,
    }
}

/// A regression row that runs as written, with the reason the plan gives.
const fn as_written(sql: &'static str, why: &'static str) -> Row {
    Row {
        sql,
        expect: None,
        why: Some(why),
    }
}

fn pg_corpus() -> Vec<Row> {
    vec![
        // ADD COLUMN: catalog only, or staged with a backfill.
        row("ALTER TABLE t ADD COLUMN x int"),
        row("ALTER TABLE t ADD COLUMN x int DEFAULT 5"),
        row("ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT 5"),
        row("ALTER TABLE t ADD COLUMN x timestamptz DEFAULT now()"),
        reg(
            "ALTER TABLE t ADD COLUMN x text DEFAULT md5(random()::text)",
            &[
                "ALTER TABLE t ADD COLUMN IF NOT EXISTS \"x\" TEXT",
                "ALTER TABLE t ALTER COLUMN \"x\" SET DEFAULT md5(random()::TEXT)",
                "backfill in batches: UPDATE t SET \"x\" = md5(random()::TEXT) WHERE \"x\" IS NULL",
                "ANALYZE t (\"x\")",
            ],
        ),
        reg(
            "ALTER TABLE t ADD COLUMN x text NOT NULL DEFAULT md5(random()::text)",
            &[
                "ALTER TABLE t ADD COLUMN IF NOT EXISTS \"x\" TEXT",
                "ALTER TABLE t ALTER COLUMN \"x\" SET DEFAULT md5(random()::TEXT)",
                "backfill in batches: UPDATE t SET \"x\" = md5(random()::TEXT) WHERE \"x\" IS NULL",
                "ANALYZE t (\"x\")",
                "ALTER TABLE t ADD CONSTRAINT \"t_x_not_null_check\" CHECK (\"x\" IS NOT NULL) NOT VALID",
                "ALTER TABLE t VALIDATE CONSTRAINT \"t_x_not_null_check\"",
                "ALTER TABLE t ALTER COLUMN \"x\" SET NOT NULL; ALTER TABLE t DROP CONSTRAINT \"t_x_not_null_check\"",
            ],
        ),
        row("ALTER TABLE t ADD COLUMN x uuid DEFAULT gen_random_uuid()"),
        row("ALTER TABLE t ADD COLUMN x double precision NOT NULL DEFAULT random()"),
        row("ALTER TABLE t ADD COLUMN IF NOT EXISTS x int DEFAULT 1"),
        row("ALTER TABLE t ADD COLUMN \"Neu\" text DEFAULT clock_timestamp()::text"),
        row("ALTER TABLE app.u ADD COLUMN x text DEFAULT md5(random()::text)"),
        row("ALTER TABLE t ADD COLUMN x bigserial"),
        row("ALTER TABLE t ADD COLUMN x int GENERATED ALWAYS AS (a * 2) STORED"),
        as_written(
            "ALTER TABLE ONLY t ADD COLUMN x text DEFAULT md5(random()::text)",
            "`sluice up` runs it as written: the staged steps name the table plainly, which for ONLY or IF EXISTS would change what the statement does; write it without them",
        ),
        as_written(
            "ALTER TABLE t ADD COLUMN x int, ADD COLUMN y int DEFAULT (random() * 10)::int",
            "`sluice up` runs it as written: several changes in one ALTER TABLE: write the one to stage as a statement of its own",
        ),
        // CREATE INDEX with every option.
        row("CREATE INDEX i ON t (a)"),
        row("CREATE UNIQUE INDEX i ON t (id, a)"),
        reg(
            "CREATE INDEX i ON t (a) WHERE a > 2",
            &["CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t(a) WHERE a > 2"],
        ),
        reg(
            "CREATE INDEX i ON t USING hash (b)",
            &["CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t USING HASH (b)"],
        ),
        reg(
            "CREATE INDEX i ON t (a) INCLUDE (b)",
            &["CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t(a) INCLUDE (b)"],
        ),
        row("CREATE INDEX i ON t (b text_pattern_ops)"),
        row("CREATE INDEX i ON t (lower(b))"),
        row("CREATE INDEX IF NOT EXISTS i ON t (a)"),
        row("CREATE INDEX i ON app.u (v)"),
        row("CREATE INDEX \"Idx_Mixed\" ON t (\"Mixed\")"),
        row("CREATE INDEX ON t (a)"),
        row("CREATE UNIQUE INDEX i ON t (lower(email)) WHERE email IS NOT NULL"),
        row("CREATE INDEX i ON t USING btree (a DESC NULLS LAST, b)"),
        row("CREATE INDEX i ON t (a) WITH (fillfactor = 70)"),
        row("CREATE INDEX CONCURRENTLY i ON t (a)"),
        row("CREATE INDEX i ON t USING gin (to_tsvector('simple', b))"),
        row("CREATE INDEX i ON t (b COLLATE \"C\")"),
        row("CREATE INDEX i ON t (a); DROP INDEX i"),
        // DROP INDEX forms.
        row("DROP INDEX t_a_idx"),
        row("DROP INDEX IF EXISTS t_a_idx"),
        as_written(
            "DROP INDEX t_a_idx, t_b_idx",
            "`sluice up` runs it as written: DROP INDEX CONCURRENTLY drops one index at a time: write one DROP INDEX per index",
        ),
        as_written(
            "DROP INDEX t_a_idx CASCADE",
            "`sluice up` runs it as written: DROP INDEX CONCURRENTLY cannot CASCADE: drop what depends on the index first, then the index on its own",
        ),
        row("DROP INDEX app.u_v_idx"),
        row("DROP INDEX \"T_Mixed_Idx\""),
        row("DROP INDEX CONCURRENTLY t_a_idx"),
        row("DROP INDEX IF EXISTS missing_idx"),
        // ADD CONSTRAINT.
        row("ALTER TABLE t ADD CONSTRAINT t_a_check CHECK (a > 0)"),
        row("ALTER TABLE t ADD CHECK (a > 0)"),
        row("ALTER TABLE t ADD CONSTRAINT t_p_fk FOREIGN KEY (parent_id) REFERENCES p (id)"),
        row("ALTER TABLE t ADD FOREIGN KEY (parent_id) REFERENCES p (id) ON DELETE CASCADE"),
        row("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID"),
        row("ALTER TABLE t ADD CONSTRAINT t_email_key UNIQUE (email)"),
        row("ALTER TABLE t ADD UNIQUE (email)"),
        row("ALTER TABLE t ADD UNIQUE NULLS NOT DISTINCT (email)"),
        row("ALTER TABLE t ADD CONSTRAINT k UNIQUE (a) INCLUDE (b)"),
        row("ALTER TABLE t ADD CONSTRAINT k UNIQUE (a) DEFERRABLE INITIALLY DEFERRED"),
        reg(
            "ALTER TABLE nopk ADD PRIMARY KEY (a)",
            &[
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"nopk_pkey\" ON nopk (a)",
                "ALTER TABLE nopk ADD CONSTRAINT \"nopk_a_not_null_check\" CHECK (a IS NOT NULL) NOT VALID",
                "ALTER TABLE nopk VALIDATE CONSTRAINT \"nopk_a_not_null_check\"",
                "ALTER TABLE nopk ALTER COLUMN a SET NOT NULL; ALTER TABLE nopk ADD CONSTRAINT \"nopk_pkey\" PRIMARY KEY USING INDEX \"nopk_pkey\"; ALTER TABLE nopk DROP CONSTRAINT \"nopk_a_not_null_check\"",
            ],
        ),
        row("ALTER TABLE nopk ADD CONSTRAINT nopk_pk PRIMARY KEY (a, b)"),
        row("ALTER TABLE nopk ADD CONSTRAINT nopk_pk PRIMARY KEY USING INDEX nopk_a_uidx"),
        // Not read by sluice's parser: planned from its words, run as written.
        row("ALTER TABLE t ADD CONSTRAINT k UNIQUE (a) WITH (fillfactor = 70)"),
        as_written(
            "ALTER TABLE ONLY t ADD CONSTRAINT k UNIQUE (a)",
            "`sluice up` runs it as written: the staged steps name the table plainly, which for ONLY or IF EXISTS would change what the statement does; write it without them",
        ),
        row("ALTER TABLE app.u ADD CONSTRAINT u_v_check CHECK (v >= 0)"),
        row("ALTER TABLE t ADD CONSTRAINT \"Mixed_Check\" CHECK (\"Mixed\" <> '')"),
        row("ALTER TABLE app.u ADD CONSTRAINT \"U_Wert_Key\" UNIQUE (\"Wert\")"),
        // SET NOT NULL, also where a validated check proves it already.
        row("ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
        row("ALTER TABLE t ALTER COLUMN \"Mixed\" SET NOT NULL"),
        row("ALTER TABLE app.u ALTER COLUMN v SET NOT NULL"),
        // Proven by a valid check in the live table only (not in the migration): staged again.
        row("ALTER TABLE t ALTER COLUMN n SET NOT NULL"),
        // Issue 12 regression: proven by a valid check of an earlier statement, lint was silent
        // while plan and up staged it again (another helper check and scan).
        reg(
            "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL); ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            &[
                "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID",
                "ALTER TABLE t VALIDATE CONSTRAINT \"t_a_nn\"",
                "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            ],
        ),
        reg(
            "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT t_a_nn; ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            &[
                "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID",
                "ALTER TABLE t VALIDATE CONSTRAINT t_a_nn",
                "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            ],
        ),
        // A NOT VALID check proves nothing: staged.
        row("ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID; ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
        // Type changes that are catalog only.
        row("ALTER TABLE t ALTER COLUMN v TYPE varchar(20)"),
        row("ALTER TABLE t ALTER COLUMN v TYPE text"),
        // Issue 13: rewriting type changes, staged from the live catalog.
        row("ALTER TABLE t ALTER COLUMN a TYPE bigint"),
        row("ALTER TABLE t ALTER COLUMN c TYPE bigint"),
        row("ALTER TABLE t ALTER COLUMN n TYPE numeric(12,2) USING n * 1.5"),
        row("ALTER TABLE t ALTER COLUMN \"Mixed\" TYPE varchar(5) USING left(\"Mixed\", 5)"),
        row("ALTER TABLE app.u ALTER COLUMN id TYPE int"),
        row("ALTER TABLE nopk ALTER COLUMN a TYPE bigint"),
        // Issue 13 point 2: the referencing column ci.pi_id is widened first, its own staged
        // change; then the parent.
        row("ALTER TABLE pi ALTER COLUMN id TYPE bigint"),
        // The user wrote the child's change too: done once, by the user's statement.
        row("ALTER TABLE pi ALTER COLUMN id TYPE bigint; ALTER TABLE ci ALTER COLUMN pi_id TYPE bigint"),
        reg(
            "ALTER TABLE t ALTER COLUMN id TYPE int",
            &[
                "ALTER TABLE \"public\".\"t\" ADD COLUMN IF NOT EXISTS \"id_sluice_new\" INT",
                "CREATE OR REPLACE FUNCTION \"public\".\"t_id_sluice_sync\"() RETURNS trigger LANGUAGE plpgsql SET \"TimeZone\" FROM CURRENT SET \"DateStyle\" FROM CURRENT SET \"IntervalStyle\" FROM CURRENT SET extra_float_digits FROM CURRENT SET search_path FROM CURRENT AS 'BEGIN NEW.\"id_sluice_new\" := NEW.\"id\"; RETURN NEW; END'; CREATE TRIGGER \"zz_t_id_sluice_sync\" BEFORE INSERT OR UPDATE ON \"public\".\"t\" FOR EACH ROW EXECUTE FUNCTION \"public\".\"t_id_sluice_sync\"()",
                "backfill in batches: UPDATE \"public\".\"t\" SET \"id_sluice_new\" = \"id\" WHERE \"id_sluice_new\" IS NULL AND \"id\" IS NOT NULL",
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"t_pkey_sluice_new\" ON \"public\".\"t\" USING btree (\"id_sluice_new\")",
                "ANALYZE \"public\".\"t\" (\"id_sluice_new\")",
                "ALTER TABLE \"public\".\"t\" ADD CONSTRAINT \"t_id_sluice_new_not_null\" CHECK (\"id_sluice_new\" IS NOT NULL) NOT VALID",
                "ALTER TABLE \"public\".\"t\" VALIDATE CONSTRAINT \"t_id_sluice_new_not_null\"",
                // The migration is this statement alone: the swap keeps the old column (stripped
                // of its key and NOT NULL) with a reverse trigger until `sluice complete`.
                "LOCK TABLE \"public\".\"t\" IN ACCESS EXCLUSIVE MODE; DROP TRIGGER \"zz_t_id_sluice_sync\" ON \"public\".\"t\"; ALTER TABLE \"public\".\"t\" ALTER COLUMN \"id_sluice_new\" SET NOT NULL; ALTER TABLE \"public\".\"t\" DROP CONSTRAINT \"t_pkey\"; ALTER TABLE \"public\".\"t\" ALTER COLUMN \"id\" DROP NOT NULL; ALTER TABLE \"public\".\"t\" RENAME COLUMN \"id\" TO \"id_sluice_old\"; ALTER TABLE \"public\".\"t\" RENAME COLUMN \"id_sluice_new\" TO \"id\"; ALTER TABLE \"public\".\"t\" ADD CONSTRAINT \"t_pkey\" PRIMARY KEY USING INDEX \"t_pkey_sluice_new\"; ALTER TABLE \"public\".\"t\" DROP CONSTRAINT \"t_id_sluice_new_not_null\"; DROP FUNCTION \"public\".\"t_id_sluice_sync\"(); CREATE OR REPLACE FUNCTION \"public\".\"t_id_sluice_back\"() RETURNS trigger LANGUAGE plpgsql SET \"TimeZone\" FROM CURRENT SET \"DateStyle\" FROM CURRENT SET \"IntervalStyle\" FROM CURRENT SET extra_float_digits FROM CURRENT SET search_path FROM CURRENT AS 'BEGIN IF TG_OP = ''INSERT'' AND NEW.\"id_sluice_old\" IS NOT NULL THEN NEW.\"id\" := NEW.\"id_sluice_old\"; END IF; NEW.\"id_sluice_old\" := NEW.\"id\"; RETURN NEW; END'; CREATE TRIGGER \"zz_t_id_sluice_back\" BEFORE INSERT OR UPDATE ON \"public\".\"t\" FOR EACH ROW EXECUTE FUNCTION \"public\".\"t_id_sluice_back\"()",
            ],
        ),
        // A breaking rename: `up` runs its expand phase (issue 14).
        row("ALTER TABLE t RENAME COLUMN b TO b2"),
        // A breaking DROP COLUMN: its expand phase changes nothing for a nullable column (`up`
        // sends nothing; complete drops it), and drops NOT NULL of one without a default
        // (tests/two_versions_drop.rs).
        row("ALTER TABLE t DROP COLUMN b"),
        row("ALTER TABLE t DROP COLUMN IF EXISTS b, DROP COLUMN \"Mixed\""),
        // The fill of a column's NULLs and its SET NOT NULL: `up` runs the expand phase (a fill
        // trigger, the UPDATE as a backfill, NOT NULL through a validated check), the UPDATE's
        // own statement runs nothing of its own (tests/two_versions_fill.rs).
        row("UPDATE t SET a = n * 2 WHERE a IS NULL; ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
        // A breaking table rename: `up` renames it and stands a view in for the old name in one
        // transaction (tests/two_versions_rename_table.rs).
        reg(
            "ALTER TABLE t RENAME TO t2",
            &["ALTER TABLE \"public\".\"t\" RENAME TO \"t2\"; CREATE VIEW \"public\".\"t\" WITH (security_invoker = true) AS SELECT \"id\", \"a\", \"b\", \"c\", \"Mixed\", \"email\", \"n\", \"v\", \"parent_id\" FROM \"public\".\"t2\""],
        ),
        row("ALTER TABLE app.u RENAME TO \"U 2\""),
        row("ALTER TABLE nopk RENAME TO \"NoPk\""),
        // Run as written: the part keeps the old name working itself.
        row("ALTER TABLE nopk RENAME TO nopk2; CREATE VIEW nopk AS SELECT * FROM nopk2"),
        // A lone DROP TABLE: `up` renames it to sluice's name behind a view with its name, in one
        // transaction (tests/two_versions_drop_table.rs); CASCADE takes what depends on it at
        // complete; IF EXISTS of a missing table sends nothing.
        reg(
            "DROP TABLE nopk",
            &["ALTER TABLE \"public\".\"nopk\" RENAME TO \"nopk_sluice_dropped\"; CREATE VIEW \"public\".\"nopk\" WITH (security_invoker = true) AS SELECT \"a\", \"b\" FROM \"public\".\"nopk_sluice_dropped\""],
        ),
        row("DROP TABLE IF EXISTS app.u"),
        row("DROP TABLE p CASCADE"),
        row("DROP TABLE IF EXISTS missing"),
        // Run as written.
        row("ALTER TABLE t ALTER COLUMN c DROP NOT NULL"),
        row("ALTER TABLE t ALTER COLUMN c SET DEFAULT 7"),
        row("COMMENT ON TABLE t IS 'x'"),
        row("CREATE TABLE n (id int PRIMARY KEY); CREATE INDEX n_idx ON n (id)"),
        row("UPDATE t SET a = a + 1 WHERE id = 1"),
        row("ALTER TABLE t VALIDATE CONSTRAINT t_c_nv"),
        row("ALTER TABLE t DROP CONSTRAINT t_c_nv"),
    ]
}

#[tokio::test]
async fn postgres_plan_dry_run_and_what_up_sends_are_the_same_steps() {
    let Some(pg) = start_logging_pg() else {
        eprintln!(
            "skipped: no PostgreSQL 15 binaries in {PG_BIN} (or root without a postgres user)"
        );
        return;
    };
    let admin = pg_client(&pg.url("postgres")).await;
    let corpus = pg_corpus();
    let mut failures = Vec::new();
    let mut staged = 0;
    for (n, row) in corpus.iter().enumerate() {
        let db = format!("row{n}");
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        let url = pg.url(&db);
        {
            let c = pg_client(&url).await;
            c.batch_execute(PG_SETUP).await.unwrap();
        }
        let dir = project(row.sql);
        let plan = json(&sluice(dir.path(), &url, &["plan", "--json"]), row.sql);
        let dry_json = json(
            &sluice(dir.path(), &url, &["up", "--dry-run", "--json"]),
            row.sql,
        );
        let planned: Vec<Vec<String>> = plan["migrations"][0]["statements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let steps: Vec<String> = s["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|a| a["safe_steps"].as_array().unwrap())
                    .map(|st| st["sql"].as_str().unwrap().to_string())
                    .collect();
                // A breaking migration runs its expand phase, which may have no step.
                if steps.is_empty() && !plan["migrations"][0]["lifecycle"].is_object() {
                    vec![s["sql"].as_str().unwrap().to_string()]
                } else {
                    steps
                }
            })
            .collect();
        let dry = dry_run_steps(&dry_json);
        let from = std::fs::metadata(pg_log(&pg)).unwrap().len() as usize;
        let up = sluice(dir.path(), &url, &["up"]);
        assert_eq!(up.code, 0, "{}: {up:?}", row.sql);
        let sent: Vec<String> = statements(&pg, &db, from)
            .into_iter()
            .filter(|s| pg_change(s))
            .collect();
        let plan_flat: Vec<String> = planned.iter().flatten().map(|s| norm(s)).collect();
        let dry_flat: Vec<String> = dry.iter().flatten().map(|s| norm(s)).collect();
        let sent_steps = pg_sent_as_steps(&dry_flat, &sent);
        if dry_json[0]["runs_as"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| !r.is_null())
        {
            staged += 1;
        }
        // Every reason the plan gives for running a statement as written (at most one here).
        let reasons: Vec<&str> = plan["migrations"][0]["statements"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["actions"].as_array().unwrap())
            .filter_map(|a| a["refused"].as_str())
            .collect();
        if let Some(why) = row.why {
            if reasons != [why] {
                failures.push(format!(
                    "{}\n  plan's reason: {reasons:?}\n  expected: {why}",
                    row.sql
                ));
            }
        }
        if plan_flat != dry_flat || dry_flat != sent_steps {
            failures.push(format!(
                "{}\n  plan:    {plan_flat:?}\n  dry-run: {dry_flat:?}\n  sent:    {sent_steps:?}",
                row.sql
            ));
        } else if let Some(expect) = row.expect {
            let expect: Vec<String> = expect.iter().map(|s| norm(s)).collect();
            if plan_flat != expect {
                failures.push(format!(
                    "{} (issue 12 regression)\n  expected: {expect:?}\n  all three: {plan_flat:?}",
                    row.sql
                ));
            }
        }
        admin
            .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
            .await
            .unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} of {} statements disagree:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    assert!(staged >= 30, "only {staged} rows were staged");
    eprintln!("{} PostgreSQL rows agree ({staged} staged)", corpus.len());
}

// ---------------------------------------------------------------------------------------------
// MariaDB

/// A private server with the general log in `mysql.general_log` (a global setting: never on the
/// shared server).
async fn private_maria() -> Option<PrivateMariaDb> {
    PrivateMariaDb::start(&["--general-log=1", "--log-output=TABLE"]).await
}

/// [`private_maria`] with an admin connection and its id (whose own statements the log readers
/// leave out).
async fn private_maria_admin() -> Option<(PrivateMariaDb, mysql_async::Conn, u64)> {
    let server = private_maria().await?;
    let mut admin = mysql_async::Conn::from_url(server.url("mysql"))
        .await
        .unwrap();
    let me: u64 = admin
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    Some((server, admin, me))
}

/// Every statement connections other than `me` sent since the general log was last truncated,
/// normalised, in order.
async fn maria_sent(admin: &mut mysql_async::Conn, me: u64) -> Vec<String> {
    let logged: Vec<(u64, String)> = admin
        .query("SELECT thread_id, CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE command_type IN ('Query', 'Execute')")
        .await
        .unwrap();
    logged
        .into_iter()
        .filter(|(thread, _)| *thread != me)
        .map(|(_, s)| norm(&s))
        .collect()
}

const MARIA_SETUP: &str = "CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(20), c VARCHAR(100), d INT DEFAULT 1, e INT NULL, KEY k_a (a)) ENGINE=InnoDB; \
     INSERT INTO t VALUES (1, 1, 'b1', 'c1', 1, 1), (2, 2, 'b2', 'c2', 2, 2), (3, 3, 'b3', 'c3', 3, 3)";

fn maria_corpus() -> Vec<&'static str> {
    vec![
        // INSTANT.
        "ALTER TABLE t ADD COLUMN x INT",
        "ALTER TABLE t ADD COLUMN x INT FIRST",
        "ALTER TABLE t ADD COLUMN x INT AFTER a",
        "ALTER TABLE t ADD COLUMN x VARCHAR(10) NOT NULL DEFAULT 'z'",
        "ALTER TABLE t ADD COLUMN `Mixed Col` INT",
        // A lone RENAME COLUMN or DROP COLUMN runs in two phases (their own tests below); a CHANGE
        // that renames, or a DROP COLUMN with other clauses, is refused (exit 11,
        // tests/two_versions_mariadb.rs, tests/two_versions_drop_mariadb.rs).
        "ALTER TABLE t ALTER COLUMN d SET DEFAULT 5",
        "ALTER TABLE t ALTER COLUMN d DROP DEFAULT",
        "ALTER TABLE t MODIFY b VARCHAR(60)",
        "ALTER TABLE t MODIFY c VARCHAR(200)",
        "ALTER TABLE t COMMENT = 'hello'",
        // INPLACE / NOCOPY.
        "ALTER TABLE t MODIFY e INT NOT NULL",
        "ALTER TABLE t ADD INDEX k_b (b)",
        "ALTER TABLE t ADD UNIQUE KEY u_c (c)",
        "ALTER TABLE t DROP INDEX k_a",
        "ALTER TABLE t RENAME INDEX k_a TO k_a2",
        "ALTER TABLE t ENGINE=InnoDB",
        "ALTER TABLE t FORCE",
        // Issue 12 regressions: planned NOCOPY, the server refused it and up fell back to INPLACE.
        // (The two rows with a DROP COLUMN are refused since issue 14; the online path's
        // prediction for them is judged in sluice-mysql's tests/path_judged_by_server.rs.)
        "ALTER TABLE t MODIFY b VARCHAR(60), ADD INDEX k_d (d)",
        // Copy path.
        "ALTER TABLE t MODIFY a BIGINT",
        "ALTER TABLE t MODIFY b TEXT",
        "ALTER TABLE t MODIFY d INT UNSIGNED",
        "ALTER TABLE t CONVERT TO CHARACTER SET latin1",
        "ALTER TABLE t ADD CONSTRAINT ck CHECK (a >= 0)",
        // As written.
        "ALTER TABLE t ADD COLUMN x INT, ALGORITHM=COPY",
        "ALTER TABLE t ADD COLUMN x INT, LOCK=SHARED",
        "CREATE INDEX k_b ON t (b)",
        "DROP INDEX k_a ON t",
        // (RENAME TABLE runs in two phases since issue 14: two_versions_rename_table_mariadb.)
        "UPDATE t SET a = a + 1 WHERE id = 1",
    ]
}

#[tokio::test]
async fn mariadb_plan_dry_run_and_what_up_sends_are_the_same_steps() {
    let Some((server, mut admin, me)) = private_maria_admin().await else {
        eprintln!("skipped: no mariadbd / mariadb-install-db");
        return;
    };
    let corpus = maria_corpus();
    let mut failures = Vec::new();
    let mut paths = std::collections::BTreeMap::<String, usize>::new();
    for (n, sql) in corpus.iter().enumerate() {
        let db = format!("row{n}");
        admin
            .query_drop(format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        {
            let mut c = mysql_async::Conn::from_url(server.url(&db)).await.unwrap();
            c.query_drop(MARIA_SETUP).await.unwrap();
            c.disconnect().await.unwrap();
        }
        let url = server.url(&db);
        let dir = project(sql);
        let plan = json(&sluice(dir.path(), &url, &["plan", "--json"]), sql);
        let dry = json(
            &sluice(dir.path(), &url, &["up", "--dry-run", "--json"]),
            sql,
        );
        // The online path in the plan, and what the dry run says the statement runs as.
        let online: Option<Vec<String>> = plan["migrations"][0]["statements"][0]["online"]
            .as_array()
            .map(|a| a.iter().map(|l| norm(l.as_str().unwrap())).collect());
        let dry_steps: Vec<String> = dry_run_steps(&dry)
            .remove(0)
            .iter()
            .map(|s| norm(s))
            .collect();
        let as_planned = online.clone().unwrap_or_else(|| vec![norm(sql)]);
        admin
            .query_drop("TRUNCATE mysql.general_log")
            .await
            .unwrap();
        let up = sluice(dir.path(), &url, &["up"]);
        assert_eq!(up.code, 0, "{sql}: {up:?}");
        let sent = maria_sent(&mut admin, me).await;
        // The statements sent to the user's table itself (not the twin, shadow or sluice's own).
        let on_t: Vec<&String> = sent
            .iter()
            .filter(|s| {
                let u = s.to_ascii_uppercase();
                [
                    "ALTER TABLE `T`",
                    "ALTER TABLE T ",
                    "CREATE INDEX",
                    "DROP INDEX",
                    "RENAME TABLE",
                    "UPDATE T ",
                ]
                .iter()
                .any(|p| u.starts_with(p))
            })
            .collect();
        let line = |prefix: &str| {
            as_planned
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
        };
        let path = match (line("sends: "), line("shadow: ")) {
            (Some(x), _) => {
                // The fast path: the first statement sent to the table is the one planned.
                if on_t.first().map(|s| s.as_str()) != Some(x.as_str()) {
                    failures.push(format!(
                        "{sql}\n  planned to send: {x}\n  sent to `t`: {on_t:?}"
                    ));
                }
                if on_t.len() > 1 {
                    failures.push(format!(
                        "{sql}\n  the server refused the planned algorithm; sent: {on_t:?}"
                    ));
                }
                as_planned[0].split(" — ").next().unwrap_or("").to_string()
            }
            (None, Some(y)) => {
                if !sent.contains(&y) {
                    failures.push(format!(
                        "{sql}\n  planned shadow ALTER: {y}\n  sent: {sent:?}"
                    ));
                }
                // The table itself is only swapped, never altered.
                if on_t != ["RENAME TABLE `t` TO `_t_old`, `_t_new` TO `t`"] {
                    failures.push(format!("{sql}\n  the copy path sent to `t`: {on_t:?}"));
                }
                "online copy".into()
            }
            (None, None) => {
                if on_t != [&norm(sql)] {
                    failures.push(format!(
                        "{sql}\n  runs as written, but sent to `t`: {on_t:?}"
                    ));
                }
                "as written".into()
            }
        };
        *paths.entry(path).or_default() += 1;
        if dry_steps != as_planned {
            failures.push(format!(
                "{sql}\n  plan:    {as_planned:?}\n  dry-run: {dry_steps:?}"
            ));
        }
        admin
            .query_drop(format!("DROP DATABASE {db}"))
            .await
            .unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} of {} statements disagree:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    eprintln!("{} MariaDB rows agree, by path: {paths:?}", corpus.len());
    // Every path is exercised.
    for p in [
        "online: instant",
        "online: nocopy",
        "online: inplace",
        "online copy",
        "as written",
    ] {
        assert!(paths.contains_key(p), "no row took {p}: {paths:?}");
    }
}

/// The two-phase rename on MariaDB (issue 14): the expand steps `plan` shows (as the statement's
/// safe steps and in its lifecycle section), the steps `up --dry-run` lists and the statements `up`
/// sends to the table are the same; so are the contract `plan` shows and what `complete` sends.
#[tokio::test]
async fn mariadb_two_phase_rename_plan_dry_run_and_up_are_the_same_steps() {
    let Some((server, mut admin, me)) = private_maria_admin().await else {
        eprintln!("skipped: no mariadbd / mariadb-install-db");
        return;
    };
    for (n, sql) in [
        // With an index on the column (rebuilt on the copy), and without.
        "ALTER TABLE t RENAME COLUMN a TO a2",
        "ALTER TABLE t RENAME COLUMN `c` TO `Mixed Col`",
    ]
    .iter()
    .enumerate()
    {
        let db = format!("rename{n}");
        admin
            .query_drop(format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        {
            let mut c = mysql_async::Conn::from_url(server.url(&db)).await.unwrap();
            c.query_drop(MARIA_SETUP).await.unwrap();
            c.disconnect().await.unwrap();
        }
        let url = server.url(&db);
        let dir = project(sql);
        let plan = json(&sluice(dir.path(), &url, &["plan", "--json"]), sql);
        let life = &plan["migrations"][0]["lifecycle"];
        assert!(life.is_object(), "{sql}: {plan}");
        let shown: Vec<String> = life["expand"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| norm(s["sql"].as_str().unwrap()))
            .collect();
        let safe: Vec<String> = plan["migrations"][0]["statements"][0]["actions"][0]["safe_steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| norm(s["sql"].as_str().unwrap()))
            .collect();
        let dry: Vec<String> = dry_run_steps(&json(
            &sluice(dir.path(), &url, &["up", "--dry-run", "--json"]),
            sql,
        ))
        .remove(0)
        .iter()
        .map(|s| norm(s))
        .collect();
        assert_eq!(shown, safe, "{sql}");
        assert_eq!(shown, dry, "{sql}");
        admin
            .query_drop("TRUNCATE mysql.general_log")
            .await
            .unwrap();
        let up = sluice(dir.path(), &url, &["up"]);
        assert_eq!(up.code, 0, "{sql}: {up:?}");
        let sent = maria_sent_to_t(&mut admin, me).await;
        let want: Vec<String> = shown
            .iter()
            .map(|s| {
                if s.starts_with("backfill in batches: ") {
                    "backfill".to_string()
                } else {
                    s.clone()
                }
            })
            .collect();
        assert_eq!(sent, want, "{sql}");
        admin
            .query_drop("TRUNCATE mysql.general_log")
            .await
            .unwrap();
        let complete = sluice(dir.path(), &url, &["complete"]);
        assert_eq!(complete.code, 0, "{sql}: {complete:?}");
        assert_eq!(
            maria_sent_to_t(&mut admin, me).await,
            vec![norm(life["complete"]["sql"].as_str().unwrap())],
            "{sql}"
        );
        admin
            .query_drop(format!("DROP DATABASE {db}"))
            .await
            .unwrap();
    }
}

/// The two-phase table rename and DROP TABLE on MariaDB (issue 14): the expand steps `plan` shows (as the
/// statement's safe steps and in its lifecycle section), the steps `up --dry-run` lists and the
/// statements `up` sends are the same; so are the rollback `plan` shows and what `rollback` sends,
/// and the contract and what `complete` sends.
#[tokio::test]
async fn mariadb_two_phase_table_rename_plan_dry_run_and_up_are_the_same_steps() {
    let Some((server, mut admin, me)) = private_maria_admin().await else {
        eprintln!("skipped: no mariadbd / mariadb-install-db");
        return;
    };
    // What sluice sends for the phases (not its history or catalog reads).
    let sent = |all: Vec<String>, new: &str| -> Vec<String> {
        let new = new.to_ascii_uppercase();
        all.into_iter()
            .filter(|s| {
                let u = s.to_ascii_uppercase();
                [
                    format!("CREATE TABLE `{new}`"),
                    format!("DROP TABLE `{new}`"),
                    "RENAME TABLE `T`".into(),
                    "DROP VIEW".into(),
                    "BEGIN NOT ATOMIC IF EXISTS".into(),
                ]
                .iter()
                .any(|p| u.starts_with(p.as_str()))
            })
            .collect()
    };
    for (n, (sql, new)) in [
        ("RENAME TABLE t TO t2", "t2"),
        ("ALTER TABLE t RENAME TO t2", "t2"),
        ("DROP TABLE t", "t_sluice_dropped"),
    ]
    .iter()
    .enumerate()
    {
        let db = format!("trename{n}");
        admin
            .query_drop(format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        {
            let mut c = mysql_async::Conn::from_url(server.url(&db)).await.unwrap();
            c.query_drop(MARIA_SETUP).await.unwrap();
            c.disconnect().await.unwrap();
        }
        let url = server.url(&db);
        let dir = project(sql);
        let plan = json(&sluice(dir.path(), &url, &["plan", "--json"]), sql);
        let life = &plan["migrations"][0]["lifecycle"];
        assert!(life.is_object(), "{sql}: {plan}");
        let shown: Vec<String> = life["expand"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| norm(s["sql"].as_str().unwrap()))
            .collect();
        assert_eq!(shown.len(), 2, "{sql}: {shown:?}");
        let safe: Vec<String> = plan["migrations"][0]["statements"][0]["actions"][0]["safe_steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| norm(s["sql"].as_str().unwrap()))
            .collect();
        let dry: Vec<String> = dry_run_steps(&json(
            &sluice(dir.path(), &url, &["up", "--dry-run", "--json"]),
            sql,
        ))
        .remove(0)
        .iter()
        .map(|s| norm(s))
        .collect();
        assert_eq!(shown, safe, "{sql}");
        assert_eq!(shown, dry, "{sql}");
        for phase in [["up"], ["rollback"], ["up"], ["complete"]] {
            admin
                .query_drop("TRUNCATE mysql.general_log")
                .await
                .unwrap();
            let r = sluice(dir.path(), &url, &phase);
            assert_eq!(r.code, 0, "{sql} {phase:?}: {r:?}");
            let got = sent(maria_sent(&mut admin, me).await, new);
            let want = match phase[0] {
                "up" => shown.clone(),
                "rollback" => vec![norm(life["rollback"]["sql"].as_str().unwrap())],
                _ => vec![norm(life["complete"]["sql"].as_str().unwrap())],
            };
            // A phase of several statements is sent one by one, shown as one step.
            let got = if phase[0] == "up" {
                got
            } else {
                vec![got.join("; ")]
            };
            assert_eq!(got, want, "{sql} {phase:?}");
        }
        admin
            .query_drop(format!("DROP DATABASE {db}"))
            .await
            .unwrap();
    }
}

/// The two-phase DROP COLUMN on MariaDB (issue 14): the expand steps `plan` shows (as the
/// statement's safe steps and in its lifecycle section), the steps `up --dry-run` lists and the
/// statements `up` sends are the same, and so are the contract `plan` shows and what `complete`
/// sends, and the rollback `plan` shows and what `rollback` sends.
#[tokio::test]
async fn mariadb_two_phase_drop_plan_dry_run_and_up_are_the_same_steps() {
    let Some((server, mut admin, me)) = private_maria_admin().await else {
        eprintln!("skipped: no mariadbd / mariadb-install-db");
        return;
    };
    for (n, (sql, expand_steps)) in [
        // NOT NULL without a default: a default first; complete INSTANT.
        ("ALTER TABLE t DROP COLUMN f", 1),
        // Nullable, one of them with an index of its own: nothing first; complete NOCOPY.
        ("ALTER TABLE t DROP COLUMN a, DROP COLUMN e", 0),
        // Both at once, one of them with an index.
        ("ALTER TABLE t DROP COLUMN `F`, DROP COLUMN a", 1),
    ]
    .iter()
    .enumerate()
    {
        let db = format!("drop{n}");
        admin
            .query_drop(format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        {
            let mut c = mysql_async::Conn::from_url(server.url(&db)).await.unwrap();
            c.query_drop(MARIA_SETUP).await.unwrap();
            c.query_drop("ALTER TABLE t ADD COLUMN f VARCHAR(10) NOT NULL")
                .await
                .unwrap();
            c.disconnect().await.unwrap();
        }
        let url = server.url(&db);
        let dir = project(sql);
        let plan = json(&sluice(dir.path(), &url, &["plan", "--json"]), sql);
        let life = &plan["migrations"][0]["lifecycle"];
        assert!(life.is_object(), "{sql}: {plan}");
        let shown: Vec<String> = life["expand"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| norm(s["sql"].as_str().unwrap()))
            .collect();
        assert_eq!(shown.len(), *expand_steps, "{sql}: {shown:?}");
        let safe: Vec<String> = plan["migrations"][0]["statements"][0]["actions"][0]["safe_steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| norm(s["sql"].as_str().unwrap()))
            .collect();
        assert_eq!(shown, safe, "{sql}");
        let dry: Vec<String> = dry_run_steps(&json(
            &sluice(dir.path(), &url, &["up", "--dry-run", "--json"]),
            sql,
        ))
        .remove(0)
        .iter()
        .map(|s| norm(s))
        .filter(|s| !s.starts_with("-- nothing now"))
        .collect();
        assert_eq!(shown, dry, "{sql}");
        let phase = |name: &str| -> Vec<String> {
            life[name]["sql"]
                .as_str()
                .unwrap()
                .split("; ")
                .filter(|s| !s.is_empty())
                .map(norm)
                .collect()
        };
        let (complete, rollback) = (phase("complete"), phase("rollback"));
        // up, rollback, up again, complete: each sends what plan showed.
        for (args, want) in [
            (&["up"][..], shown.join("; ")),
            (&["rollback"][..], rollback.join("; ")),
            (&["up"][..], shown.join("; ")),
            (&["complete"][..], complete.join("; ")),
        ] {
            admin
                .query_drop("TRUNCATE mysql.general_log")
                .await
                .unwrap();
            let r = sluice(dir.path(), &url, args);
            assert_eq!(r.code, 0, "{sql} {args:?}: {r:?}");
            assert_eq!(
                maria_sent_to_t(&mut admin, me).await.join("; "),
                want,
                "{sql} {args:?}"
            );
        }
        admin
            .query_drop(format!("DROP DATABASE {db}"))
            .await
            .unwrap();
    }
}

/// What connections other than `me` sent to table `t` (general log): LOCK TABLES blocks and
/// ALTERs as sent, a backfill's batches as one `backfill`, and sluice's notes of a two-phase
/// DROP COLUMN's defaults.
async fn maria_sent_to_t(admin: &mut mysql_async::Conn, me: u64) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in maria_sent(admin, me).await {
        let u = s.to_ascii_uppercase();
        if u.starts_with("SET STATEMENT MAX_STATEMENT_TIME") && u.contains(" FOR UPDATE `T` SET ") {
            if out.last().is_none_or(|l| l != "backfill") {
                out.push("backfill".into());
            }
        } else if u.starts_with("LOCK TABLES `T`")
            || u.starts_with("ALTER TABLE `T`")
            || u.starts_with("INSERT IGNORE INTO `SLUICE_META` (`K`, `V`) VALUES ('DROP ")
            || u.starts_with("DELETE FROM `SLUICE_META` WHERE `K` LIKE 'DROP ")
            // The rename's first step forgets a stale backfill checkpoint before it locks `t`.
            || (u.starts_with("DELETE FROM `SLUICE_META` WHERE `K` = 'BACKFILL ")
                && u.contains("; LOCK TABLES `T`"))
        {
            out.push(s);
        }
    }
    out
}
