//! Issue 14, versioned schemas (opt-in, PostgreSQL): `-- sluice:versioned down <expr>` before a
//! type change one column cannot serve to two application versions (`text → jsonb` under the same
//! name). The old version keeps the table (text), the new one puts `sluice_v<version>` first in its
//! search_path and sees a view whose `body` is jsonb; a trigger translates writes both ways.
//!
//! An old-version client and a new-version client write and read concurrently through before →
//! expand → between → complete: 0 errors on both, every write by either visible to the other,
//! final rows as the writes give them and the schema as the ALTER as written leaves it (a twin).
//! Rollback restores the schema exactly (pg_dump), a kill at every expand step converges on rerun,
//! each command run twice is safe, row-level security applies through the view, and every form
//! of the directive that does not apply is an error with its fix (exit 2), on MariaDB too.

mod common;

use common::pg_clients::{run_rounds, session, wait_ops, Round};
use common::{wait_bounded, Project, Run};
use sluice_testkit::Server;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio_postgres::Client as PgClient;

const CREATE: &str = "-- sluice:up\nCREATE TABLE docs (id bigserial PRIMARY KEY, body text NOT NULL, note int);\nCREATE INDEX docs_body_idx ON docs (body);\nINSERT INTO docs (body, note) SELECT format('{\"s\": %s}', g), g FROM generate_series(1, 3000) g;\n-- sluice:down\nDROP TABLE docs;\n";

const VERSIONED: &str = "-- sluice:up\n-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n-- sluice:down\nALTER TABLE docs ALTER COLUMN body TYPE text USING body::text;\n";

/// The version schema of migration 2.
const V2: &str = "sluice_v2";

fn ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what}: {r:?}");
}

fn state_of(p: &Project, v: i64) -> Option<String> {
    p.state_of(v)
}

fn pg_dump_schema(p: &Project) -> String {
    p.pg_dump_schema()
}

/// Columns (name, type, NOT NULL, default), indexes, constraints, triggers, views and schemas of
/// the test database, column order aside.
async fn schema_facts(db: &PgClient) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT format('column %s.%s %s%s default %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, pg_get_expr(d.adbin, d.adrelid)) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped",
        "SELECT format('index %s %s', indexname, indexdef) FROM pg_indexes WHERE schemaname = 'public'",
        "SELECT format('constraint %s %s', conname, pg_get_constraintdef(k.oid)) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = 'public'",
        "SELECT format('trigger %s', tgname) FROM pg_trigger WHERE NOT tgisinternal",
        "SELECT format('view %s.%s %s', schemaname, viewname, definition) FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
        "SELECT format('schema %s', nspname) FROM pg_namespace WHERE nspname LIKE 'sluice_v%'",
    ] {
        for r in db.query(sql, &[]).await.unwrap() {
            out.push(r.get::<_, String>(0));
        }
    }
    out.sort();
    out
}

/// The `SET search_path TO ...` that `sluice up` printed for the new version.
fn printed_setting(up: &Run) -> String {
    let all = up.all();
    let at = all
        .find("SET search_path TO ")
        .unwrap_or_else(|| panic!("no setting printed: {up:?}"));
    all[at..].split(';').next().unwrap().to_string()
}

/// One application version's client. The old one (`new: false`) uses the table with its
/// default search_path and writes text; the new one runs the printed setting and writes jsonb
/// through `docs`, the version's view until complete, then the table. Each owns the rows of its
/// parity and the rows it inserts; after each write it reads the row back as it wrote it, and
/// through the other version while both exist. Values are canonical JSON, so their text and
/// jsonb forms print alike.
struct Client {
    new: bool,
    /// Both versions exist: read back through the other one too.
    cross: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
    owned: Vec<i64>,
    written: BTreeMap<i64, String>,
}

impl Client {
    fn new(new: bool, cross: Arc<AtomicBool>, counter: Arc<AtomicU64>) -> Client {
        Client {
            new,
            cross,
            counter,
            owned: (1..=3000).filter(|i| i % 2 == i64::from(new)).collect(),
            written: BTreeMap::new(),
        }
    }
}

impl Round for Client {
    async fn round(&mut self, db: &PgClient, i: u64, errors: &mut Vec<String>) -> bool {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let (value, ty, who) = match self.new {
            true => (format!("{{\"n\": {n}}}"), "jsonb", "new"),
            false => (format!("{{\"o\": {n}}}"), "text", "old"),
        };
        let write = if i.is_multiple_of(3) {
            db.query_one(
                &format!("INSERT INTO docs (body, note) VALUES ($1::text::{ty}, $2) RETURNING id"),
                &[&value, &(n as i32)],
            )
            .await
            .map(|r| {
                let id: i64 = r.get(0);
                self.owned.push(id);
                Some(id)
            })
        } else {
            let id = self.owned[(n as usize * 7919) % self.owned.len()];
            // Every 5th update changes another column only: the body stays as it was.
            let sql = if i.is_multiple_of(5) {
                "UPDATE docs SET note = $2::text::int WHERE id = $3 AND $1::text IS NOT NULL"
                    .to_string()
            } else {
                format!("UPDATE docs SET body = $1::text::{ty}, note = $2::text::int WHERE id = $3")
            };
            db.execute(&sql, &[&value, &(n % 1000).to_string(), &id])
                .await
                .map(|k| {
                    if k != 1 {
                        errors.push(format!("{who}: update of {id} touched {k} rows"));
                    }
                    (!i.is_multiple_of(5)).then_some(id)
                })
        };
        let id = match write {
            Ok(Some(id)) => {
                self.written.insert(id, value);
                id
            }
            Ok(None) => return true,
            Err(e) => {
                errors.push(format!("{who}: write: {}", common::pg_clients::msg(&e)));
                return false;
            }
        };
        let want = self.written[&id].clone();
        let mut reads = vec!["docs".to_string()];
        if self.cross.load(Ordering::SeqCst) {
            reads.push(match self.new {
                true => "public.docs".into(),
                false => format!("{V2}.docs"),
            });
        }
        for rel in reads {
            match db
                .query_one(
                    &format!("SELECT body::text FROM {rel} WHERE id = $1"),
                    &[&id],
                )
                .await
            {
                Ok(row) => {
                    let got: String = row.get(0);
                    if got != want {
                        errors.push(format!(
                            "{who}: row {id} through {rel}: {got}, wrote {want}"
                        ));
                    }
                }
                Err(e) => errors.push(format!(
                    "{who}: read {rel}: {}",
                    common::pg_clients::msg(&e)
                )),
            }
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_and_new_versions_run_concurrently_through_expand_and_complete() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", CREATE);
    ok(&p.run(&["up"]), "create");
    p.write("2_versioned.sql", VERSIONED);
    let db = p.db.pg().await;
    let counter = Arc::new(AtomicU64::new(0));

    let (stop_old, stop_new) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (old_ops, new_ops) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (old_cross, new_cross) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(true)),
    );
    let old = tokio::spawn(run_rounds(
        Client::new(false, old_cross.clone(), counter.clone()),
        session(&p.db.url, "20s").await,
        stop_old.clone(),
        old_ops.clone(),
    ));
    wait_ops(&old_ops, 100).await;
    // Expand while the old version writes.
    let up = wait_bounded(p.spawn(&["up"]), 300, "sluice up");
    ok(&up, "expand");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    let setting = printed_setting(&up);
    assert!(
        setting.starts_with(&format!("SET search_path TO {V2}, ")),
        "{setting}"
    );
    assert!(up.all().contains("sluice.search_path_for('2')"), "{up:?}");
    old_cross.store(true, Ordering::SeqCst);
    let before_new = old_ops.load(Ordering::SeqCst);

    // The new version, deployed beside it, selects its schema with the printed setting (and the
    // SQL function gives the same value).
    let new_db = session(&p.db.url, "20s").await;
    new_db.batch_execute(&setting).await.unwrap();
    let (from_fn, now): (String, String) = {
        let r = db
            .query_one(
                "SELECT sluice.search_path_for('2'), current_setting('search_path')",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(from_fn, format!("{V2}, {now}"));
    let ty: String = new_db
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'docs'::regclass AND attname = 'body'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ty, "jsonb", "the new version's docs.body");
    let new = tokio::spawn(run_rounds(
        Client::new(true, new_cross.clone(), counter.clone()),
        new_db,
        stop_new.clone(),
        new_ops.clone(),
    ));
    // Between: both versions write concurrently.
    wait_ops(&new_ops, 300).await;
    wait_ops(&old_ops, before_new + 300).await;
    let diff: i64 = db
        .query_one(
            "SELECT count(*) FROM docs WHERE body_sluice_versioned IS DISTINCT FROM body::jsonb",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(diff, 0, "rows whose two columns disagree");
    // The table at this moment, both columns in one snapshot, for the twin below.
    type Mid = (
        Vec<i64>,
        Vec<String>,
        Vec<Option<i32>>,
        Vec<(i64, String, Option<i32>)>,
    );
    let mid: Mid = {
        let rows = db
            .query(
                "SELECT id, body, body_sluice_versioned::text, note FROM docs ORDER BY id",
                &[],
            )
            .await
            .unwrap();
        (
            rows.iter().map(|r| r.get(0)).collect(),
            rows.iter().map(|r| r.get(1)).collect(),
            rows.iter().map(|r| r.get(3)).collect(),
            rows.iter()
                .map(|r| (r.get(0), r.get(2), r.get(3)))
                .collect(),
        )
    };
    // The rollout is done: the old version stops, complete runs while the new version writes.
    stop_old.store(true, Ordering::SeqCst);
    let (old, old_errors) = old.await.unwrap();
    new_cross.store(false, Ordering::SeqCst);
    let at_complete = new_ops.load(Ordering::SeqCst);
    let complete = wait_bounded(p.spawn(&["complete"]), 120, "sluice complete");
    ok(&complete, "complete");
    // The same session and setting: the schema is gone, `docs` is the table now.
    wait_ops(&new_ops, at_complete + 200).await;
    stop_new.store(true, Ordering::SeqCst);
    let (new, new_errors) = new.await.unwrap();
    assert_eq!(old_errors, Vec::<String>::new(), "old version");
    assert_eq!(new_errors, Vec::<String>::new(), "new version");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));

    // The rows are what the writes give, applied to one column as written.
    let mut want: BTreeMap<i64, String> = (1..=3000)
        .map(|id| (id, format!("{{\"s\": {id}}}")))
        .collect();
    want.extend(old.written);
    want.extend(new.written);
    let got: BTreeMap<i64, String> = db
        .query("SELECT id, body::text FROM docs", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "rows differ from the as-written result");
    // A twin holding the old column's rows of the snapshot, changed by the ALTER as written,
    // has the rows the new version saw then; and its schema equals this one, column order aside.
    let twin = Project::new(Server::Postgres).await;
    twin.write("1_create.sql", CREATE);
    twin.write("2_versioned.sql", VERSIONED);
    ok(&twin.run(&["up", "--to", "1"]), "twin create");
    let tdb = twin.db.pg().await;
    tdb.execute("TRUNCATE docs", &[]).await.unwrap();
    tdb.execute(
        "INSERT INTO docs (id, body, note) SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[])",
        &[&mid.0, &mid.1, &mid.2],
    )
    .await
    .unwrap();
    ok(&twin.run(&["up", "--as-written"]), "twin");
    let as_written: Vec<(i64, String, Option<i32>)> = tdb
        .query("SELECT id, body::text, note FROM docs ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(as_written.len(), mid.3.len());
    assert!(
        as_written == mid.3,
        "the new version's rows differ from the ALTER as written on the old version's"
    );
    assert_eq!(
        schema_facts(&db).await,
        schema_facts(&twin.db.pg().await).await
    );
    // complete again: nothing to do; `down` after complete runs the down part as today.
    let again = p.run(&["complete"]);
    ok(&again, "complete again");
    assert!(again.stderr.contains("nothing is expanded"), "{again:?}");
    ok(&p.run(&["down", "--as-written"]), "down");
    assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
}

#[tokio::test]
async fn plan_rollback_and_reruns() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", CREATE);
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    p.write("2_versioned.sql", VERSIONED);
    let db = p.db.pg().await;

    // The plan shows both phases, what each version sees, the setting and the claim.
    let plan = p.run(&["plan"]);
    ok(&plan, "plan");
    for part in [
        "runs in two phases",
        "`sluice complete`",
        "`sluice rollback`",
        "what each application version sees:",
        "SET search_path TO sluice_v2, ",
        "sluice.search_path_for('2')",
        "non-invertible",
        "CREATE OR REPLACE VIEW \"sluice_v2\".\"docs\" WITH (security_invoker = true)",
    ] {
        assert!(plan.stdout.contains(part), "{part}: {plan:?}");
    }
    assert_eq!(pg_dump_schema(&p), before, "plan changes nothing");

    // The version's schema name taken: refused before anything is made (exit 1), twice alike.
    db.batch_execute(&format!("CREATE SCHEMA {V2}"))
        .await
        .unwrap();
    let taken = pg_dump_schema(&p);
    for attempt in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 1, "{attempt}: {r:?}");
        assert!(
            r.stderr.contains("schema sluice_v2 already exists"),
            "{r:?}"
        );
        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
        assert_eq!(pg_dump_schema(&p), taken);
    }
    db.batch_execute(&format!("DROP SCHEMA {V2}"))
        .await
        .unwrap();

    ok(&p.run(&["up"]), "expand");
    ok(&p.run(&["drift"]), "no drift while expanded");
    // An old-version write that USING cannot convert fails as the new type would refuse it (the
    // new version could not read it), and changes nothing.
    let bad = db
        .execute("UPDATE docs SET body = 'not json' WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert!(
        common::pg_clients::msg(&bad).contains("invalid input syntax for type json"),
        "{bad}"
    );
    let status = p.run(&["status"]);
    assert!(status.stdout.contains("expanded (open"), "{status:?}");
    let again = p.run(&["up"]);
    ok(&again, "up again");
    assert!(again.stderr.contains("nothing to apply"), "{again:?}");
    let down = p.run(&["down"]);
    assert_eq!(down.code, 11, "{down:?}");
    // Old-version writes between expand and rollback stay in the column.
    db.execute(
        "UPDATE docs SET body = '{\"between\": 1}' WHERE id <= 10",
        &[],
    )
    .await
    .unwrap();
    ok(&p.run(&["rollback"]), "rollback");
    assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
    assert_eq!(
        pg_dump_schema(&p),
        before,
        "rollback restores the schema exactly"
    );
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM docs WHERE body = '{\"between\": 1}'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 10);
    let again = p.run(&["rollback"]);
    ok(&again, "rollback again");
    assert!(again.stderr.contains("nothing to roll back"), "{again:?}");

    // Expand again: the backfill starts afresh; then complete.
    db.execute(
        "UPDATE docs SET body = '{\"after\": 1}' WHERE id > 2990",
        &[],
    )
    .await
    .unwrap();
    ok(&p.run(&["up"]), "expand again");
    ok(&p.run(&["complete", "2"]), "complete");
    ok(&p.run(&["drift"]), "no drift after complete");
    assert_eq!(
        p.run(&["rollback", "2"]).code,
        11,
        "complete: rollback refuses"
    );
    // `up --complete` runs both phases in one go.
    ok(&p.run(&["down", "--as-written"]), "down");
    ok(&p.run(&["up", "--complete"]), "up --complete");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM docs WHERE body = '{\"after\": 1}'::jsonb AND pg_typeof(body) = 'jsonb'::regtype",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 10);
}

#[tokio::test]
async fn a_kill_at_every_expand_step_converges_on_rerun() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", CREATE);
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    p.write("2_versioned.sql", VERSIONED);
    let db = p.db.pg().await;
    ok(&p.run(&["up"]), "expand");
    let expanded = schema_facts(&db).await;
    ok(&p.run(&["rollback"]), "rollback");
    // add column, trigger, backfill, index, analyze, NOT NULL check, validate, SET NOT NULL, views.
    let points: Vec<String> = (0..9)
        .map(|k| format!("expand-step-{k}"))
        .chain(["expand-unrecorded".to_string()])
        .collect();
    for (n, point) in points.iter().enumerate() {
        let killed: Run = p
            .command(&["up"])
            .env("SLUICE_CRASH_AT", point)
            .output()
            .unwrap()
            .into();
        assert_ne!(killed.code, 0, "{point}: {killed:?}");
        assert!(
            killed.stderr.contains(point.as_str()),
            "{point}: {killed:?}"
        );
        assert_eq!(state_of(&p, 2).as_deref(), Some("interrupted"), "{point}");
        // The old version writes on while nothing runs.
        db.execute(
            "UPDATE docs SET body = format('{\"k\": %s}', $1::int) WHERE id = $1::int",
            &[&(n as i32 + 1)],
        )
        .await
        .unwrap();
        if n % 3 == 2 {
            ok(&p.run(&["rollback"]), point);
            assert_eq!(pg_dump_schema(&p), before, "{point}");
            continue;
        }
        ok(&p.run(&["up"]), point);
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{point}");
        assert_eq!(schema_facts(&db).await, expanded, "{point}");
        let diff: i64 = db
            .query_one(
                "SELECT count(*) FROM docs WHERE body_sluice_versioned IS DISTINCT FROM body::jsonb",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(diff, 0, "{point}");
        let again = p.run(&["up"]);
        ok(&again, point);
        assert!(
            again.stderr.contains("nothing to apply"),
            "{point}: {again:?}"
        );
        ok(&p.run(&["rollback"]), point);
        assert_eq!(pg_dump_schema(&p), before, "{point}");
    }
    // A real kill -9 while the backfill runs (a bigger table, so that it has batches to do).
    db.batch_execute(
        "INSERT INTO docs (body, note) SELECT format('{\"b\": %s}', g), g FROM generate_series(1, 100000) g",
    )
    .await
    .unwrap();
    let mut child = p
        .command(&["up", "--pace", "speed", "--target-batch-ms", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::eventually(120, "the backfill to start", || async {
        db.query_opt(
            "SELECT 1 FROM sluice.backfills WHERE rows_done > 0 AND state <> 'done'",
            &[],
        )
        .await
        .ok()
        .flatten()
        .is_some()
            || state_of(&p, 2).as_deref() == Some("expanded")
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    let _ = wait_bounded(child, 60, "killed up");
    db.execute(
        "UPDATE docs SET body = '{\"after\": \"kill\"}' WHERE id = 5",
        &[],
    )
    .await
    .unwrap();
    ok(&p.run(&["up"]), "rerun after kill -9");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(schema_facts(&db).await, expanded);
    let diff: i64 = db
        .query_one(
            "SELECT count(*) FROM docs WHERE body_sluice_versioned IS DISTINCT FROM body::jsonb",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(diff, 0, "after kill -9");
    ok(&p.run(&["rollback"]), "rollback after kill -9");
    assert_eq!(pg_dump_schema(&p), before);

    // A kill inside rollback's or complete's transaction (before its commit) leaves it expanded,
    // as it was; the rerun finishes it.
    ok(&p.run(&["up"]), "expand");
    let killed: Run = p
        .command(&["rollback"])
        .env("SLUICE_CRASH_AT", "before-commit")
        .output()
        .unwrap()
        .into();
    assert_ne!(killed.code, 0, "{killed:?}");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(schema_facts(&db).await, expanded);
    ok(&p.run(&["rollback"]), "rollback after the kill");
    assert_eq!(pg_dump_schema(&p), before);
    ok(&p.run(&["up"]), "expand");
    let killed: Run = p
        .command(&["complete"])
        .env("SLUICE_CRASH_AT", "before-commit")
        .output()
        .unwrap()
        .into();
    assert_ne!(killed.code, 0, "{killed:?}");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(schema_facts(&db).await, expanded);
    ok(&p.run(&["complete"]), "complete after the kill");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
}

/// The view is `security_invoker`: a role sees through it only the rows its policy shows it, and
/// the table's grants are on the view (a role without them is refused there as on the table).
#[tokio::test]
async fn row_level_security_applies_through_the_view() {
    let p = Project::new(Server::Postgres).await;
    let db = p.db.pg().await;
    // Roles are the server's: made and dropped by its administrator.
    let su = p.db.pg_su().await;
    let (reader, stranger) = (
        format!("{}_reader", p.db.name),
        format!("{}_stranger", p.db.name),
    );
    for r in [&reader, &stranger] {
        su.batch_execute(&format!("CREATE ROLE \"{r}\""))
            .await
            .unwrap();
    }
    p.write(
        "1_create.sql",
        &format!(
            "CREATE TABLE docs (id bigserial PRIMARY KEY, owner text NOT NULL, body text NOT NULL);\n\
             INSERT INTO docs (owner, body) SELECT CASE WHEN g % 4 = 0 THEN '{reader}' ELSE 'other' END, format('{{\"s\": %s}}', g) FROM generate_series(1, 100) g;\n\
             ALTER TABLE docs ENABLE ROW LEVEL SECURITY;\n\
             CREATE POLICY mine ON docs USING (owner = current_user);\n\
             GRANT SELECT, INSERT, UPDATE ON docs TO \"{reader}\";\n\
             GRANT USAGE ON SEQUENCE docs_id_seq TO \"{reader}\";\n"
        ),
    );
    ok(&p.run(&["up"]), "create");
    p.write(
        "2_versioned.sql",
        "-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n",
    );
    ok(&p.run(&["up"]), "expand");
    let s = session(&p.db.su_url, "20s").await;
    s.batch_execute(&format!(
        "SET ROLE \"{reader}\"; SET search_path TO {V2}, public"
    ))
    .await
    .unwrap();
    let (n, ty): (i64, String) = {
        let r = s
            .query_one("SELECT count(*), min(pg_typeof(body)::text) FROM docs", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(
        (n, ty.as_str()),
        (25, "jsonb"),
        "the reader's rows, as jsonb"
    );
    // A write through the view is checked by the policy too, and translated for the table.
    s.execute(
        &format!("INSERT INTO docs (owner, body) VALUES ('{reader}', '{{\"r\": 1}}')"),
        &[],
    )
    .await
    .unwrap();
    let other = s
        .execute(
            "INSERT INTO docs (owner, body) VALUES ('other', '{\"r\": 2}')",
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        common::pg_clients::msg(&other).contains("row-level security"),
        "{other}"
    );
    let text: String = db
        .query_one(
            "SELECT body FROM public.docs WHERE body = '{\"r\": 1}'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(text, "{\"r\": 1}");
    s.batch_execute(&format!("RESET ROLE; SET ROLE \"{stranger}\""))
        .await
        .unwrap();
    let denied = s
        .query_one("SELECT count(*) FROM docs", &[])
        .await
        .unwrap_err();
    assert!(
        common::pg_clients::msg(&denied).contains("permission denied"),
        "{denied}"
    );
    drop(s);
    ok(&p.run(&["rollback"]), "rollback");
    su.batch_execute(&format!(
        "DROP TABLE docs; DROP OWNED BY \"{reader}\", \"{stranger}\"; DROP ROLE \"{reader}\"; DROP ROLE \"{stranger}\""
    ))
    .await
    .unwrap();
}

/// Every form of the directive that does not apply is an error naming the line and the fix (exit
/// 2), nothing runs or is recorded, and the rerun says the same.
#[tokio::test]
async fn directive_errors_say_why_and_how_to_fix() {
    let alter = "ALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "no expression",
            format!("-- sluice:versioned down\n{alter}\n"),
            "needs the down expression",
        ),
        (
            "no `down`",
            format!("-- sluice:versioned body::text\n{alter}\n"),
            "is not a valid versioned directive",
        ),
        (
            "two of them",
            format!("-- sluice:versioned down body::text\n-- sluice:versioned down body::text\n{alter}\n"),
            "not on the line right before",
        ),
        (
            "a second one before another statement",
            format!("-- sluice:versioned down body::text\n{alter}\n-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN note TYPE bigint;\n"),
            "a second `-- sluice:versioned` directive",
        ),
        (
            "in the down part",
            format!("-- sluice:up\n{alter}\n-- sluice:down\n-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE text;\n"),
            "outside the up part",
        ),
        (
            "a blank line before the statement",
            format!("-- sluice:versioned down body::text\n\n{alter}\n"),
            "not on the line right before",
        ),
        (
            "on another statement kind",
            "-- sluice:versioned down body::text\nALTER TABLE docs ADD COLUMN x int;\n".into(),
            "is not one `ALTER TABLE t ALTER COLUMN c TYPE ...`",
        ),
        (
            "with another statement",
            format!("-- sluice:versioned down body::text\n{alter}\nALTER TABLE docs ADD COLUMN x int;\n"),
            "must be the migration's only statement",
        ),
        (
            "near miss",
            format!("-- sluice versioned down body::text\n{alter}\n"),
            "looks like a sluice directive but is not one",
        ),
        (
            "a column with a default",
            "-- sluice:versioned down note::int\nALTER TABLE docs ALTER COLUMN note TYPE bigint;\n".into(),
            "has a default",
        ),
    ];
    let p = Project::new(Server::Postgres).await;
    p.write(
        "1_create.sql",
        "CREATE TABLE docs (id bigserial PRIMARY KEY, body text NOT NULL, note int DEFAULT 0);\nINSERT INTO docs (body) VALUES ('{}');\n",
    );
    ok(&p.run(&["up"]), "create");
    let db = p.db.pg().await;
    let before = pg_dump_schema(&p);
    for (what, text, message) in &cases {
        p.write("2_versioned.sql", text);
        for attempt in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 2, "{what} ({attempt}): {r:?}");
            assert!(r.stderr.contains(message), "{what} ({attempt}): {r:?}");
            assert!(r.stderr.contains("2_versioned.sql"), "{what}: {r:?}");
            let recorded: i64 = db
                .query_one(
                    "SELECT count(*) FROM sluice.migrations WHERE version = 2",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(recorded, 0, "{what}: nothing recorded");
            assert_eq!(pg_dump_schema(&p), before, "{what}");
        }
    }
}

/// A down or USING expression the server cannot plan on the table is refused before anything is
/// made (exit 1), not at the first translated write.
#[tokio::test]
async fn expressions_that_do_not_plan_are_refused_before_anything_is_made() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", CREATE);
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    let cases = [
        (
            "-- sluice:versioned down body::no_such_type\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n",
            "the down expression of this versioned type change does not work",
            "no_such_type",
        ),
        (
            "-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING no_such_fn(body);\n",
            "the USING expression of this versioned type change does not work",
            "no_such_fn",
        ),
        (
            "-- sluice:versioned down body ->> 'x' || no_such_column\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n",
            "the down expression",
            "no_such_column",
        ),
        // A `%` of the expression is the expression's, not a placeholder of the message.
        (
            "-- sluice:versioned down (length(body::text) % 7)::text || no_such_column\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n",
            "the down expression",
            "(length(body::text) % 7)::text || no_such_column",
        ),
    ];
    for (text, message, names) in cases {
        p.write("2_versioned.sql", text);
        for attempt in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 1, "{attempt}: {r:?}");
            assert!(r.stderr.contains(message), "{r:?}");
            assert!(r.stderr.contains(names), "{r:?}");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
            assert_eq!(pg_dump_schema(&p), before);
        }
    }
}

#[tokio::test]
async fn mariadb_refuses_versioned_schemas_with_the_reason() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "CREATE TABLE docs (id bigint AUTO_INCREMENT PRIMARY KEY, body text NOT NULL);\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write(
        "2_versioned.sql",
        "-- sluice:versioned down body\nALTER TABLE docs MODIFY body json;\n",
    );
    for attempt in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 2, "{attempt}: {r:?}");
        assert!(r.stderr.contains("is for PostgreSQL"), "{r:?}");
        assert!(r.stderr.contains("2_versioned.sql"), "{r:?}");
    }
}

/// Name shapes (a mixed-case schema, table and column with spaces) and a lossy down expression:
/// each version reads what the other wrote as the expressions give it, and complete leaves what
/// the ALTER as written leaves (a twin).
#[tokio::test]
async fn name_shapes_and_a_lossy_down_expression() {
    struct Shape {
        what: &'static str,
        create: &'static str,
        migration: &'static str,
        /// The new version's search_path after the version schema.
        path: &'static str,
        table: &'static str,
        column: &'static str,
        /// The column's old and new type.
        types: (&'static str, &'static str),
        /// (old-version write, what the new version reads), (new-version write, what the old reads).
        old_write: (&'static str, &'static str),
        new_write: (&'static str, &'static str),
    }
    let shapes = [
        Shape {
            what: "quoted mixed-case names with spaces",
            create: "CREATE SCHEMA \"App\";\nCREATE TABLE \"App\".\"Doc Table\" (id bigserial PRIMARY KEY, \"Body Text\" text);\nINSERT INTO \"App\".\"Doc Table\" (\"Body Text\") VALUES ('{\"a\": 1}'), (NULL);\n",
            migration: "-- sluice:versioned down \"Body Text\"::text\nALTER TABLE \"App\".\"Doc Table\" ALTER COLUMN \"Body Text\" TYPE jsonb USING \"Body Text\"::jsonb;\n",
            path: "\"App\"",
            table: "\"App\".\"Doc Table\"",
            column: "\"Body Text\"",
            types: ("text", "jsonb"),
            old_write: ("{\"o\": 1}", "{\"o\": 1}"),
            new_write: ("{\"n\": 2}", "{\"n\": 2}"),
        },
        Shape {
            what: "lossy down: numeric to the old int by rounding",
            create: "CREATE TABLE price (id bigserial PRIMARY KEY, amount int NOT NULL);\nINSERT INTO price (amount) SELECT g FROM generate_series(1, 10) g;\n",
            migration: "-- sluice:versioned down round(amount)::int\nALTER TABLE price ALTER COLUMN amount TYPE numeric(10,2);\n",
            path: "public",
            table: "public.price",
            column: "amount",
            types: ("int", "numeric"),
            old_write: ("7", "7.00"),
            new_write: ("2.50", "3"),
        },
        Shape {
            what: "a unique NOT NULL int becomes text",
            create: "CREATE TABLE codes (id bigserial PRIMARY KEY, code int NOT NULL CONSTRAINT codes_code_key UNIQUE);\nINSERT INTO codes (code) SELECT g FROM generate_series(1, 10) g;\n",
            migration: "-- sluice:versioned down code::int\nALTER TABLE codes ALTER COLUMN code TYPE text USING code::text;\n",
            path: "public",
            table: "public.codes",
            column: "code",
            types: ("int", "text"),
            old_write: ("70", "70"),
            new_write: ("120", "120"),
        },
    ];
    for s in &shapes {
        let p = Project::new(Server::Postgres).await;
        p.write("1_create.sql", s.create);
        ok(&p.run(&["up"]), s.what);
        p.write("2_versioned.sql", s.migration);
        let up = p.run(&["up"]);
        ok(&up, s.what);
        let old = p.db.pg().await;
        let new = session(&p.db.url, "20s").await;
        new.batch_execute(&format!("SET search_path TO {V2}, {}", s.path))
            .await
            .unwrap();
        let unqualified = s.table.rsplit('.').next().unwrap();
        let (c, t) = (s.column, s.table);
        // The old version writes its type into the table, the new version reads it as its own.
        old.execute(
            &format!("UPDATE {t} SET {c} = $1::text::{} WHERE id = 1", s.types.0),
            &[&s.old_write.0],
        )
        .await
        .unwrap();
        let got: String = new
            .query_one(
                &format!("SELECT {c}::text FROM {unqualified} WHERE id = 1"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, s.old_write.1, "{}: the new version reads", s.what);
        // And the other way.
        let ty = s.types.1;
        let id: i64 = new
            .query_one(
                &format!("INSERT INTO {unqualified} ({c}) VALUES ($1::text::{ty}) RETURNING id"),
                &[&s.new_write.0],
            )
            .await
            .unwrap()
            .get(0);
        let got: String = old
            .query_one(&format!("SELECT {c}::text FROM {t} WHERE id = $1"), &[&id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, s.new_write.1, "{}: the old version reads", s.what);
        // The plan said so: the down expression's inverse is the user's claim.
        assert!(
            up.all().contains("SET search_path TO sluice_v2, "),
            "{up:?}"
        );
        ok(&p.run(&["complete"]), s.what);
        let twin = Project::new(Server::Postgres).await;
        twin.write("1_create.sql", s.create);
        twin.write("2_versioned.sql", s.migration);
        ok(&twin.run(&["up", "--as-written"]), s.what);
        let facts = |db: PgClient| async move {
            let mut v: Vec<String> = db
                .query(
                    "SELECT format('%s.%s.%s %s%s', n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'sluice') AND c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped \
                     UNION ALL SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'sluice') \
                     UNION ALL SELECT format('constraint %s %s', conname, pg_get_constraintdef(k.oid)) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname NOT IN ('pg_catalog', 'sluice')",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            facts(p.db.pg().await).await,
            facts(twin.db.pg().await).await,
            "{}",
            s.what
        );
    }
}

/// Expressions with `%` (modulo) work: the checks' messages once took it for a placeholder and
/// failed every such migration before anything ran.
#[tokio::test]
async fn expressions_with_a_percent_sign_work() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", CREATE);
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    p.write(
        "2_versioned.sql",
        "-- sluice:versioned down CASE WHEN length(body::text) % 2 = 0 THEN body::text ELSE body::text END\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING (CASE WHEN length(body) % 2 = 0 THEN body ELSE body END)::jsonb;\n",
    );
    ok(&p.run(&["up"]), "expand");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    ok(&p.run(&["rollback"]), "rollback");
    assert_eq!(pg_dump_schema(&p), before);
}
