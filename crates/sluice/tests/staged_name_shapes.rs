//! The staged PostgreSQL forms on tables whose names need quoting (issue 13 review): a quoted
//! mixed-case table or schema, names with a space or a double quote. `plan` and `up` must stage
//! each form exactly as they do for a lowercase table (the live catalog looked up by the name as
//! the statement wrote it, never by its unquoted spelling), and `up` under a writer must leave
//! what the statement as written leaves on a twin.

mod common;

use common::pg_clients::{bound, Clients, Round};
use common::Project;
use sluice_testkit::Server;
use std::time::Duration;
use tokio_postgres::Client;

const ROWS: i64 = 2000;
/// The writer's new keys start above the table's own.
const WRITTEN: i64 = 1_000_000;

/// (what, schema to create or None, the table as SQL).
const SHAPES: &[(&str, Option<&str>, &str)] = &[
    ("a mixed-case table", None, "\"Orders\""),
    ("a mixed-case schema", Some("\"App\""), "\"App\".t"),
    ("both mixed case", Some("\"App\""), "\"App\".\"Orders\""),
    (
        "a space and a double quote",
        Some("\"my app\""),
        "\"my app\".\"we\"\"ird Orders\"",
    ),
];

/// (form, the migration's up with `{t}` for the table, what `up --dry-run` shows of its staged
/// form).
const FORMS: &[(&str, &str, &str)] = &[
    (
        "type change",
        "ALTER TABLE {t} ALTER COLUMN v TYPE bigint;",
        "\"v_sluice_new\"",
    ),
    (
        "set not null",
        "ALTER TABLE {t} ALTER COLUMN v SET NOT NULL;",
        "IS NOT NULL) NOT VALID",
    ),
    (
        "foreign key",
        "ALTER TABLE {t} ADD CONSTRAINT self_fk FOREIGN KEY (ref) REFERENCES {t} (id);",
        "NOT VALID",
    ),
    ("index", "CREATE INDEX v_ix ON {t} (v);", "CONCURRENTLY"),
    (
        "add column with a default the server cannot store",
        "ALTER TABLE {t} ADD COLUMN w int NOT NULL DEFAULT seven();",
        "NOT VALID",
    ),
];

async fn prepare(p: &Project, schema: Option<&str>, t: &str, up: &str) {
    let mut sql = String::new();
    if let Some(s) = schema {
        sql.push_str(&format!("CREATE SCHEMA {s};"));
    }
    sql.push_str(&format!(
        "CREATE FUNCTION seven() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 7';
         CREATE TABLE {t} (id int PRIMARY KEY, k int NOT NULL UNIQUE, v int, ref int);
         INSERT INTO {t} SELECT g, g, g, nullif(g - 1, 0) FROM generate_series(1, {ROWS}) g;"
    ));
    p.db.pg().await.batch_execute(&sql).await.unwrap();
    p.write(
        "1_shape.sql",
        &format!("-- sluice:up\n{}\n", up.replace("{t}", t)),
    );
}

/// Inserts and updates on the table throughout; its committed statements in order.
struct Writer {
    t: &'static str,
    x: u64,
    /// Its inserts' keys start above this.
    base: i64,
    log: Vec<String>,
}

impl Round for Writer {
    async fn round(&mut self, db: &Client, n: u64, errors: &mut Vec<String>) -> bool {
        self.x = self
            .x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let key = 1 + (self.x >> 33) as i64 % ROWS;
        let k = self.base + n as i64;
        let t = self.t;
        for sql in [
            format!("INSERT INTO {t} (id, k, v, ref) VALUES ({k}, {k}, {k}, {key})"),
            format!("UPDATE {t} SET v = v + 1 WHERE k = {key}"),
        ] {
            match db.batch_execute(&sql).await {
                Ok(()) => self.log.push(sql),
                Err(e) => errors.push(format!("{sql}: {e:?}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        true
    }
}

/// `pg_dump --schema-only`, each CREATE TABLE's column lines sorted (a staged type change moves
/// the column to the end of the table), the login named alike in both twins.
fn dump(p: &Project) -> String {
    let o = std::process::Command::new("pg_dump")
        .args([
            "--schema-only",
            "--no-owner",
            "--exclude-schema=sluice",
            &p.db.url,
        ])
        .output()
        .expect("pg_dump");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let mut out = Vec::new();
    let mut table: Option<Vec<String>> = None;
    for l in text.lines() {
        if l.starts_with("\\restrict") || l.starts_with("\\unrestrict") || l.starts_with("--") {
            continue;
        }
        match &mut table {
            Some(cols) if l.starts_with(')') => {
                cols.sort();
                out.append(cols);
                out.push(l.to_string());
                table = None;
            }
            Some(cols) => cols.push(l.trim_end_matches(',').to_string()),
            None => {
                out.push(l.to_string());
                if l.starts_with("CREATE TABLE ") {
                    table = Some(Vec::new());
                }
            }
        }
    }
    out.join("\n").replace(&p.db.name, "LOGIN")
}

async fn rows(p: &Project, t: &str) -> String {
    p.db.pg()
        .await
        .query_one(
            &format!("SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY k)::text, '') FROM {t} x"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Every name shape × every staged form: `plan` and `up --dry-run` stage it, `up` under the
/// writer (0 errors) runs staged and equals the migration as written on a twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quoted_names_stage_every_form_and_equal_the_migration_as_written() {
    let mut failures = Vec::new();
    for &(shape, schema, t) in SHAPES {
        for (form, up, staged_sql) in FORMS {
            let name = format!("{form} on {shape}");
            let written = Project::new(Server::Postgres).await;
            let staged = Project::new(Server::Postgres).await;
            prepare(&written, schema, t, up).await;
            prepare(&staged, schema, t, up).await;

            let plan = staged.run(&["plan"]);
            assert!(
                !plan.all().contains("no safe form") && !plan.all().contains("[single]"),
                "{name}: plan stages it: {plan:?}"
            );
            let dry = staged.run(&["up", "--dry-run"]);
            assert_eq!(dry.code, 0, "{name}: {dry:?}");
            assert!(
                dry.all().contains(staged_sql),
                "{name}: the dry run shows the staged form ({staged_sql}): {dry:?}"
            );

            let mut clients = Clients::default();
            let c = staged.db.pg().await;
            bound(&c, "60s").await;
            clients.spawn(
                Writer {
                    t,
                    x: 7,
                    base: WRITTEN,
                    log: Vec::new(),
                },
                c,
            );
            let r = staged.run(&["up", "--pace", "speed", "--complete"]);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (writer, errors) = clients.stop().await.pop().unwrap();
            assert_eq!(r.code, 0, "{name}: staged up: {r:?}");
            assert!(
                errors.is_empty(),
                "{name}: {} writer errors, first: {:?}",
                errors.len(),
                &errors[..errors.len().min(3)]
            );
            assert!(writer.log.len() > 5, "{name}: the writer ran");
            assert_eq!(staged.states(), vec![(1, "applied".to_string())], "{name}");

            let w = written.db.pg().await;
            for sql in &writer.log {
                w.batch_execute(sql).await.unwrap();
            }
            let rw = written.run(&["up", "--as-written"]);
            assert_eq!(rw.code, 0, "{name}: as written: {rw:?}");
            let (a, b) = (dump(&written), dump(&staged));
            if a != b {
                failures.push(format!(
                    "{name}: schema differs {}",
                    common::first_difference(&a, &b, 200)
                ));
            }
            let (a, b) = (rows(&written, t).await, rows(&staged, t).await);
            if a != b {
                failures.push(format!(
                    "{name}: rows differ {}",
                    common::first_difference(&a, &b, 120)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The kept type change of every name shape through its lifecycle under the writer: `up` leaves
/// it expanded, `rollback` restores the table as before (the twin: the same writes, no
/// migration), `up` again and `complete` equal the migration as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quoted_names_roll_a_kept_type_change_back_and_complete_it() {
    let up = FORMS[0].1;
    let mut failures = Vec::new();
    for &(shape, schema, t) in SHAPES {
        let written = Project::new(Server::Postgres).await;
        let staged = Project::new(Server::Postgres).await;
        prepare(&written, schema, t, up).await;
        prepare(&staged, schema, t, up).await;
        for (round, (what, args, as_written, state)) in [
            (
                "up",
                &["up", "--pace", "speed"][..],
                &["status"][..],
                "expanded",
            ),
            ("rollback", &["rollback"][..], &["status"][..], "pending"),
            ("up again", &["up"][..], &["status"][..], "expanded"),
            (
                "complete",
                &["complete"][..],
                &["up", "--as-written"][..],
                "applied",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let name = format!("{shape} ({what})");
            let mut clients = Clients::default();
            let c = staged.db.pg().await;
            bound(&c, "60s").await;
            clients.spawn(
                Writer {
                    t,
                    x: 7 + round as u64,
                    base: WRITTEN * (round as i64 + 1),
                    log: Vec::new(),
                },
                c,
            );
            let r = staged.run(args);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (mut writer, errors) = clients.stop().await.pop().unwrap();
            assert_eq!(r.code, 0, "{name}: {r:?}");
            assert!(
                errors.is_empty(),
                "{name}: {} writer errors, first: {:?}",
                errors.len(),
                &errors[..errors.len().min(3)]
            );
            assert_eq!(staged.states(), vec![(1, state.to_string())], "{name}");
            let w = written.db.pg().await;
            for sql in writer.log.drain(..) {
                w.batch_execute(&sql).await.unwrap();
            }
            let rw = written.run(as_written);
            assert_eq!(rw.code, 0, "{name}: as written: {rw:?}");
            if what == "rollback" || what == "complete" {
                let (a, b) = (dump(&written), dump(&staged));
                if a != b {
                    failures.push(format!(
                        "{name}: schema differs {}",
                        common::first_difference(&a, &b, 200)
                    ));
                }
                let (a, b) = (rows(&written, t).await, rows(&staged, t).await);
                if a != b {
                    failures.push(format!(
                        "{name}: rows differ {}",
                        common::first_difference(&a, &b, 120)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
