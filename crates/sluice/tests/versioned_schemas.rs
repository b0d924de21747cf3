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
            "a second one before a column the migration cannot carry",
            format!("-- sluice:versioned down body::text\n{alter}\n-- sluice:versioned down note::int\nALTER TABLE docs ALTER COLUMN note TYPE bigint;\n"),
            "column \"public\".\"docs\".\"note\": the column has a default",
        ),
        (
            "a statement without its directive after a versioned one",
            format!("-- sluice:versioned down body::text\n{alter}\nALTER TABLE docs ALTER COLUMN extra TYPE jsonb USING extra::jsonb;\n"),
            "line 3: migration 2_versioned: this statement has no `-- sluice:versioned down <expression>` line right before it",
        ),
        (
            "a statement without its directive before a versioned one",
            format!("ALTER TABLE docs ALTER COLUMN extra TYPE jsonb USING extra::jsonb;\n-- sluice:versioned down body::text\n{alter}\n"),
            "line 1: migration 2_versioned: this statement has no `-- sluice:versioned down <expression>` line right before it",
        ),
        (
            "another statement kind with its directive, second",
            format!("-- sluice:versioned down body::text\n{alter}\n-- sluice:versioned down extra\nALTER TABLE docs ALTER COLUMN extra SET NOT NULL;\n"),
            "line 4: migration 2_versioned: `-- sluice:versioned` stands before a statement that is not one `ALTER TABLE t ALTER COLUMN c TYPE ...`",
        ),
        (
            "an expression that reads another changed column",
            format!("-- sluice:versioned down body::text\n{alter}\n-- sluice:versioned down extra::text\nALTER TABLE docs ALTER COLUMN extra TYPE jsonb USING jsonb_build_object('e', extra, 'b', body);\n"),
            "the USING expression of docs.extra (`jsonb_build_object('e', extra, 'b', body)`) reads body, which this migration changes too",
        ),
        (
            "one column twice",
            format!("-- sluice:versioned down body::text\n{alter}\n-- sluice:versioned down body::text\nALTER TABLE public.docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n"),
            "line 4: migration 2_versioned: a second versioned type change of column",
        ),
        (
            "two columns in one statement",
            "-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb, ALTER COLUMN extra TYPE jsonb USING extra::jsonb;\n".into(),
            "line 2: migration 2_versioned: `-- sluice:versioned` stands before a statement that is not one `ALTER TABLE t ALTER COLUMN c TYPE ...` of one column",
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
            "line 3: migration 2_versioned: this statement has no `-- sluice:versioned down <expression>` line right before it",
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
        (
            "COLLATE",
            "-- sluice:versioned down body\nALTER TABLE docs ALTER COLUMN body TYPE varchar(200) COLLATE \"C\";\n".into(),
            "cannot carry COLLATE",
        ),
        (
            "ONLY",
            "-- sluice:versioned down body::text\nALTER TABLE ONLY docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n".into(),
            "cannot carry ONLY",
        ),
        (
            "IF EXISTS",
            "-- sluice:versioned down body::text\nALTER TABLE IF EXISTS docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n".into(),
            "cannot carry IF EXISTS",
        ),
        (
            "an expression that reads the whole row while another column changes",
            format!("-- sluice:versioned down body::text\n{alter}\n-- sluice:versioned down extra::text\nALTER TABLE docs ALTER COLUMN extra TYPE jsonb USING to_jsonb(docs) -> 'extra';\n"),
            "reads the whole row of docs, whose other columns this migration changes too",
        ),
    ];
    let p = Project::new(Server::Postgres).await;
    p.write(
        "1_create.sql",
        "CREATE TABLE docs (id bigserial PRIMARY KEY, body text NOT NULL, note int DEFAULT 0, extra text);\nINSERT INTO docs (body) VALUES ('{}');\n",
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
    // A new type with a default (a domain's): the old version's INSERTs would get it in the new
    // column, taken for the new version's write. sluice's limit, not the statement's: exit 2.
    p.db.pg()
        .await
        .batch_execute("CREATE DOMAIN jdoc AS jsonb DEFAULT '{}'")
        .await
        .unwrap();
    let before = pg_dump_schema(&p);
    p.write(
        "2_versioned.sql",
        "-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jdoc USING body::jdoc;\n",
    );
    for attempt in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 2, "{attempt}: {r:?}");
        assert!(
            r.stderr
                .contains("the new type jdoc of column body has a default (a domain's DEFAULT)"),
            "{r:?}"
        );
        assert!(r.stderr.contains("sluice up --as-written"), "{r:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
        assert_eq!(pg_dump_schema(&p), before);
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

/// A versioned migration of several columns: two of one table, or one each of two tables. Each
/// table has `id`, `note` and its changed columns last, in the migration's order, so that the
/// table after complete is the as-written twin's column for column (pg_dump equal).
struct Several {
    what: &'static str,
    create: &'static str,
    versioned: &'static str,
    /// Each table and its changed columns (name, new type; the first is NOT NULL, the others
    /// nullable).
    tables: &'static [(&'static str, &'static [(&'static str, &'static str)])],
    /// How many expand steps the migration has (a kill point before each).
    steps: usize,
}

const SEVERAL: &[Several] = &[
    Several {
        what: "two columns of one table",
        create: "-- sluice:up\nCREATE TABLE docs (id bigserial PRIMARY KEY, note int, body text NOT NULL, meta text);\nCREATE INDEX docs_body_idx ON docs (body);\nINSERT INTO docs (note, body, meta) SELECT g, format('{\"s\": %s}', g), format('{\"m\": %s}', g) FROM generate_series(1, 2000) g;\n-- sluice:down\nDROP TABLE docs;\n",
        versioned: "-- sluice:up\n-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n-- sluice:versioned down meta::text\nALTER TABLE docs ALTER COLUMN meta TYPE jsonb USING meta::jsonb;\n-- sluice:down\nALTER TABLE docs ALTER COLUMN body TYPE text USING body::text;\nALTER TABLE docs ALTER COLUMN meta TYPE text USING meta::text;\n",
        tables: &[("docs", &[("body", "jsonb"), ("meta", "jsonb")])],
        // body: add, trigger, backfill, index, analyze, NOT NULL check, validate, SET NOT NULL;
        // meta: add, trigger, backfill, analyze; the schema and its view.
        steps: 13,
    },
    Several {
        what: "one column each of two tables",
        create: "-- sluice:up\nCREATE TABLE docs (id bigserial PRIMARY KEY, note int, body text NOT NULL);\nCREATE INDEX docs_body_idx ON docs (body);\nINSERT INTO docs (note, body) SELECT g, format('{\"s\": %s}', g) FROM generate_series(1, 2000) g;\nCREATE TABLE tags (id bigserial PRIMARY KEY, note int, n text NOT NULL);\nCREATE UNIQUE INDEX tags_n_key ON tags (n);\nINSERT INTO tags (note, n) SELECT g, (g * 7)::text FROM generate_series(1, 2000) g;\n-- sluice:down\nDROP TABLE tags;\nDROP TABLE docs;\n",
        versioned: "-- sluice:up\n-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n-- sluice:versioned down n::text\nALTER TABLE tags ALTER COLUMN n TYPE bigint USING n::bigint;\n-- sluice:down\nALTER TABLE docs ALTER COLUMN body TYPE text USING body::text;\nALTER TABLE tags ALTER COLUMN n TYPE text USING n::text;\n",
        tables: &[
            ("docs", &[("body", "jsonb")]),
            ("tags", &[("n", "bigint")]),
        ],
        // body as above (8), n: add, trigger, backfill, unique index, analyze, NOT NULL (3);
        // the schema and its two views.
        steps: 17,
    },
];

/// The seeded value of a changed column of row `id`, as text.
fn seed(column: &str, id: i64) -> String {
    match column {
        "body" => format!("{{\"s\": {id}}}"),
        "meta" => format!("{{\"m\": {id}}}"),
        _ => (id * 7).to_string(),
    }
}

/// A value written by a version, as text (canonical: its text and new-type forms print alike;
/// bigint values unique across writers and above the seeds).
fn written_value(new: bool, ty: &str, n: u64) -> String {
    match (ty, new) {
        ("jsonb", true) => format!("{{\"n\": {n}}}"),
        ("jsonb", false) => format!("{{\"o\": {n}}}"),
        (_, true) => (1_000_000 + 2 * n).to_string(),
        (_, false) => (1_000_001 + 2 * n).to_string(),
    }
}

/// pg_dump of the schema with the test database's own name (its role's grant) left out, so that
/// two projects' dumps compare.
fn dump_as_twin(p: &Project) -> String {
    pg_dump_schema(p).replace(&p.db.name, "<database>")
}

/// `v` as an SQL literal.
fn quoted(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// The rows of every table: (table index, id) → each changed column's text.
type Rows = BTreeMap<(usize, i64), Vec<Option<String>>>;

/// One application version's client of a several-column case. The old one writes the tables'
/// old types, the new one the new types through the version's views (its search_path). Each
/// round writes one table: an INSERT, or an UPDATE of every changed column, of the first only,
/// of the last only, or of `note` only (so that one column's translation must not pass for a
/// write of another), then reads the row back through both versions while both exist.
struct SeveralClient {
    new: bool,
    case: &'static Several,
    cross: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
    /// Per table, the rows it owns.
    owned: Vec<Vec<i64>>,
    /// What it wrote (and the seeds of the rows it owns).
    rows: Rows,
}

impl SeveralClient {
    fn new(
        new: bool,
        case: &'static Several,
        cross: Arc<AtomicBool>,
        counter: Arc<AtomicU64>,
    ) -> Self {
        let ids: Vec<i64> = (1..=2000).filter(|i| i % 2 == i64::from(new)).collect();
        let mut rows = Rows::new();
        for (t, (_, cols)) in case.tables.iter().enumerate() {
            for id in &ids {
                rows.insert(
                    (t, *id),
                    cols.iter().map(|(c, _)| Some(seed(c, *id))).collect(),
                );
            }
        }
        SeveralClient {
            new,
            case,
            cross,
            counter,
            owned: vec![ids; case.tables.len()],
            rows,
        }
    }
}

impl Round for SeveralClient {
    async fn round(&mut self, db: &PgClient, i: u64, errors: &mut Vec<String>) -> bool {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let who = if self.new { "new" } else { "old" };
        let t = (i as usize / 2) % self.case.tables.len();
        let (table, cols) = self.case.tables[t];
        let ty = |c: usize| if self.new { cols[c].1 } else { "text" };
        // Which changed columns this round writes.
        let (insert, which): (bool, Vec<usize>) = match i % 6 {
            0 => (true, (0..cols.len()).collect()),
            1 => (true, vec![0]),
            2 => (false, (0..cols.len()).collect()),
            3 => (false, vec![0]),
            4 => (false, vec![cols.len() - 1]),
            _ => (false, vec![]),
        };
        let values: Vec<String> = which
            .iter()
            .map(|&c| written_value(self.new, cols[c].1, n * 4 + c as u64))
            .collect();
        let mut params: Vec<String> = vec![(n % 1000).to_string()];
        params.extend(values.iter().cloned());
        let write = if insert {
            let names: Vec<&str> = which.iter().map(|&c| cols[c].0).collect();
            let slots: Vec<String> = which
                .iter()
                .enumerate()
                .map(|(k, &c)| format!("${}::text::{}", k + 2, ty(c)))
                .collect();
            let sql = format!(
                "INSERT INTO {table} (note{}{}) VALUES ($1::text::int{}{}) RETURNING id",
                if names.is_empty() { "" } else { ", " },
                names.join(", "),
                if slots.is_empty() { "" } else { ", " },
                slots.join(", ")
            );
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            db.query_one(&sql, &refs).await.map(|r| {
                let id: i64 = r.get(0);
                self.owned[t].push(id);
                self.rows.insert((t, id), vec![None; cols.len()]);
                id
            })
        } else {
            let id = self.owned[t][(n as usize * 7919) % self.owned[t].len()];
            let sets: Vec<String> = which
                .iter()
                .enumerate()
                .map(|(k, &c)| format!(", {} = ${}::text::{}", cols[c].0, k + 2, ty(c)))
                .collect();
            let sql = format!(
                "UPDATE {table} SET note = $1::text::int{} WHERE id = {id}",
                sets.concat()
            );
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            db.execute(&sql, &refs).await.map(|k| {
                if k != 1 {
                    errors.push(format!("{who}: update of {table} {id} touched {k} rows"));
                }
                id
            })
        };
        let id = match write {
            Ok(id) => id,
            Err(e) => {
                errors.push(format!(
                    "{who}: write {table}: {}",
                    common::pg_clients::msg(&e)
                ));
                return false;
            }
        };
        let row = self.rows.get_mut(&(t, id)).expect("an owned row");
        for (&c, v) in which.iter().zip(values) {
            row[c] = Some(v);
        }
        let want = row.clone();
        let mut reads = vec![table.to_string()];
        if self.cross.load(Ordering::SeqCst) {
            reads.push(match self.new {
                true => format!("public.{table}"),
                false => format!("{V2}.{table}"),
            });
        }
        let select = cols
            .iter()
            .map(|(c, _)| format!("{c}::text"))
            .collect::<Vec<_>>()
            .join(", ");
        for rel in reads {
            match db
                .query_one(&format!("SELECT {select} FROM {rel} WHERE id = $1"), &[&id])
                .await
            {
                Ok(r) => {
                    let got: Vec<Option<String>> = (0..cols.len()).map(|k| r.get(k)).collect();
                    if got != want {
                        errors.push(format!(
                            "{who}: {table} row {id} through {rel}: {got:?}, wrote {want:?}"
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

/// Every table's rows as `jsonb_agg` text, ordered by id: `id`, `note` and the changed columns,
/// each read from `column(name)` (the old column, or its helper) under its own name.
async fn tables_json(
    db: &PgClient,
    case: &Several,
    column: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    for (table, cols) in case.tables {
        let list = cols
            .iter()
            .map(|(c, _)| format!("{} AS {c}", column(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let r = db
            .query_one(
                &format!("SELECT coalesce(jsonb_agg(x ORDER BY id), '[]')::text FROM (SELECT id, note, {list} FROM {table}) x"),
                &[],
            )
            .await
            .unwrap();
        out.push(r.get(0));
    }
    out
}

/// The rows whose helper column disagrees with USING of the old one, per changed column.
async fn disagreeing(db: &PgClient, case: &Several) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for (table, cols) in case.tables {
        for (c, ty) in cols.iter() {
            let n: i64 = db
                .query_one(
                    &format!("SELECT count(*) FROM {table} WHERE {c}_sluice_versioned IS DISTINCT FROM {c}::{ty}"),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            out.push((format!("{table}.{c}"), n));
        }
    }
    out
}

/// Several columns: an old-version and a new-version client write concurrently through before →
/// expand → between → complete with 0 errors, each reading the other's writes; the final rows
/// are the writes; the new columns at a snapshot between are what the ALTERs as written give on
/// the old columns' rows (a twin), and after complete the schema is the twin's (pg_dump).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_columns_run_both_versions_through_expand_and_complete() {
    for case in SEVERAL {
        let what = case.what;
        let p = Project::new(Server::Postgres).await;
        p.write("1_create.sql", case.create);
        ok(&p.run(&["up"]), what);
        p.write("2_versioned.sql", case.versioned);
        let db = p.db.pg().await;
        // `plan` shows one expand phase, the earlier statements inside it.
        let plan = p.run(&["plan"]);
        ok(&plan, what);
        for (table, _) in case.tables {
            let view = format!(
                "CREATE OR REPLACE VIEW \"sluice_v2\".\"{table}\" WITH (security_invoker = true)"
            );
            assert!(plan.stdout.contains(&view), "{what}: {plan:?}");
        }
        assert!(
            plan.stdout
                .contains("runs inside the expand phase shown at the migration's last type change"),
            "{what}: {plan:?}"
        );

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
            SeveralClient::new(false, case, old_cross.clone(), counter.clone()),
            session(&p.db.url, "20s").await,
            stop_old.clone(),
            old_ops.clone(),
        ));
        wait_ops(&old_ops, 100).await;
        let up = wait_bounded(p.spawn(&["up"]), 300, "sluice up");
        ok(&up, what);
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{what}");
        let setting = printed_setting(&up);
        old_cross.store(true, Ordering::SeqCst);
        let before_new = old_ops.load(Ordering::SeqCst);
        let new_db = session(&p.db.url, "20s").await;
        new_db.batch_execute(&setting).await.unwrap();
        let new = tokio::spawn(run_rounds(
            SeveralClient::new(true, case, new_cross.clone(), counter.clone()),
            new_db,
            stop_new.clone(),
            new_ops.clone(),
        ));
        wait_ops(&new_ops, 400).await;
        wait_ops(&old_ops, before_new + 400).await;
        // Both representations in one snapshot.
        db.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await
            .unwrap();
        let old_side = tables_json(&db, case, |c| c.to_string()).await;
        let new_side = tables_json(&db, case, |c| format!("{c}_sluice_versioned")).await;
        db.batch_execute("COMMIT").await.unwrap();
        assert!(
            disagreeing(&db, case).await.iter().all(|(_, n)| *n == 0),
            "{what}: {:?}",
            disagreeing(&db, case).await
        );

        stop_old.store(true, Ordering::SeqCst);
        let (old, old_errors) = old.await.unwrap();
        new_cross.store(false, Ordering::SeqCst);
        let at_complete = new_ops.load(Ordering::SeqCst);
        let complete = wait_bounded(p.spawn(&["complete"]), 120, "sluice complete");
        ok(&complete, what);
        wait_ops(&new_ops, at_complete + 200).await;
        stop_new.store(true, Ordering::SeqCst);
        let (new, new_errors) = new.await.unwrap();
        assert_eq!(old_errors, Vec::<String>::new(), "{what}: old version");
        assert_eq!(new_errors, Vec::<String>::new(), "{what}: new version");
        assert!(old.rows.len() > 1000 && new.rows.len() > 1000, "{what}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"), "{what}");

        // The rows are the writes of both versions.
        let mut want = old.rows;
        want.extend(new.rows);
        let mut got = Rows::new();
        for (t, (table, cols)) in case.tables.iter().enumerate() {
            let select = cols
                .iter()
                .map(|(c, _)| format!("{c}::text"))
                .collect::<Vec<_>>()
                .join(", ");
            for r in db
                .query(&format!("SELECT id, {select} FROM {table}"), &[])
                .await
                .unwrap()
            {
                got.insert((t, r.get(0)), (1..=cols.len()).map(|k| r.get(k)).collect());
            }
        }
        assert_eq!(got.len(), want.len(), "{what}");
        assert!(got == want, "{what}: rows differ from the writes");

        // The twin: the old columns' rows of the snapshot, changed by the ALTERs as written,
        // are the new columns' rows of it; and its schema is this one, byte for byte.
        let twin = Project::new(Server::Postgres).await;
        twin.write("1_create.sql", case.create);
        twin.write("2_versioned.sql", case.versioned);
        ok(&twin.run(&["up", "--to", "1"]), "twin create");
        let tdb = twin.db.pg().await;
        for ((table, _), rows) in case.tables.iter().zip(&old_side) {
            tdb.batch_execute(&format!("TRUNCATE {table}"))
                .await
                .unwrap();
            tdb.execute(
                &format!("INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, $1::text::jsonb)"),
                &[rows],
            )
            .await
            .unwrap();
        }
        ok(&twin.run(&["up", "--as-written"]), "twin");
        assert!(
            tables_json(&tdb, case, |c| c.to_string()).await == new_side,
            "{what}: the new columns differ from the ALTERs as written on the old ones"
        );
        assert_eq!(dump_as_twin(&p), dump_as_twin(&twin), "{what}");
        let again = p.run(&["complete"]);
        ok(&again, what);
        assert!(
            again.stderr.contains("nothing is expanded"),
            "{what}: {again:?}"
        );
    }
}

/// Several columns: rollback restores the schema exactly (pg_dump), a kill before each expand
/// step (and before the record) converges on rerun or rollback, a kill inside rollback's or
/// complete's transaction leaves it expanded and the rerun finishes it.
#[tokio::test]
async fn several_columns_kills_and_rollback_converge() {
    for case in SEVERAL {
        let what = case.what;
        let p = Project::new(Server::Postgres).await;
        p.write("1_create.sql", case.create);
        ok(&p.run(&["up"]), what);
        let before = pg_dump_schema(&p);
        p.write("2_versioned.sql", case.versioned);
        let db = p.db.pg().await;
        let dry = p.run(&["up", "--dry-run"]);
        ok(&dry, what);
        for part in [
            "runs inside the expand phase shown at the migration's last type change",
            "CREATE SCHEMA IF NOT EXISTS \"sluice_v2\"",
        ] {
            assert!(dry.all().contains(part), "{what}: {part}: {dry:?}");
        }
        assert_eq!(pg_dump_schema(&p), before, "{what}: dry run");
        ok(&p.run(&["up"]), what);
        ok(&p.run(&["drift"]), what);
        let expanded = schema_facts(&db).await;
        for (table, cols) in case.tables {
            assert!(
                expanded
                    .iter()
                    .any(|f| f.starts_with(&format!("view sluice_v2.{table} "))),
                "{what}: {expanded:?}"
            );
            for (c, _) in cols.iter() {
                assert!(
                    expanded.iter().any(|f| f.starts_with(&format!("trigger zz_{table}_{c}_sluice_versioned"))),
                    "{what}: {expanded:?}"
                );
            }
        }
        ok(&p.run(&["rollback"]), what);
        assert_eq!(pg_dump_schema(&p), before, "{what}: rollback");
        let points: Vec<String> = (0..case.steps)
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
            assert_ne!(killed.code, 0, "{what} {point}: {killed:?}");
            assert!(
                killed.stderr.contains(point.as_str()),
                "{what} {point}: {killed:?}"
            );
            assert_eq!(
                state_of(&p, 2).as_deref(),
                Some("interrupted"),
                "{what} {point}"
            );
            // The old version writes every changed column on while nothing runs.
            for (table, cols) in case.tables {
                let sets = cols
                    .iter()
                    .map(|(c, _)| {
                        format!(
                            "{c} = {}",
                            quoted(&written_value(
                                false,
                                if *c == "n" { "bigint" } else { "jsonb" },
                                n as u64
                            ))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                db.batch_execute(&format!("UPDATE {table} SET {sets} WHERE id = {}", n + 1))
                    .await
                    .unwrap();
            }
            if n % 3 == 2 {
                ok(&p.run(&["rollback"]), point);
                assert_eq!(pg_dump_schema(&p), before, "{what} {point}");
                continue;
            }
            ok(&p.run(&["up"]), point);
            assert_eq!(
                state_of(&p, 2).as_deref(),
                Some("expanded"),
                "{what} {point}"
            );
            assert_eq!(schema_facts(&db).await, expanded, "{what} {point}");
            assert!(
                disagreeing(&db, case).await.iter().all(|(_, n)| *n == 0),
                "{what} {point}: {:?}",
                disagreeing(&db, case).await
            );
            ok(&p.run(&["rollback"]), point);
            assert_eq!(pg_dump_schema(&p), before, "{what} {point}");
        }
        // Past the last step there is no kill point: the count above is every step.
        let past: Run = p
            .command(&["up"])
            .env("SLUICE_CRASH_AT", format!("expand-step-{}", case.steps))
            .output()
            .unwrap()
            .into();
        ok(&past, what);
        ok(&p.run(&["rollback"]), what);
        for cmd in ["rollback", "complete"] {
            ok(&p.run(&["up"]), what);
            let killed: Run = p
                .command(&[cmd])
                .env("SLUICE_CRASH_AT", "before-commit")
                .output()
                .unwrap()
                .into();
            assert_ne!(killed.code, 0, "{what} {cmd}: {killed:?}");
            assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{what} {cmd}");
            assert_eq!(schema_facts(&db).await, expanded, "{what} {cmd}");
            ok(&p.run(&[cmd]), what);
            let again = p.run(&[cmd]);
            ok(&again, what);
        }
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"), "{what}");
        // The final schema is the as-written twin's.
        let twin = Project::new(Server::Postgres).await;
        twin.write("1_create.sql", case.create);
        twin.write("2_versioned.sql", case.versioned);
        ok(&twin.run(&["up", "--as-written"]), "twin");
        assert_eq!(dump_as_twin(&p), dump_as_twin(&twin), "{what}");
        ok(&p.run(&["drift"]), what);
        // `down` after complete runs the down part; `up --complete` runs both phases at once.
        ok(&p.run(&["down", "--as-written"]), what);
        assert_eq!(pg_dump_schema(&p), before, "{what}: down");
        ok(&p.run(&["up", "--complete"]), what);
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"), "{what}");
        assert_eq!(
            dump_as_twin(&p),
            dump_as_twin(&twin),
            "{what}: up --complete"
        );
    }
}

/// (the new version writes, the write, the row, its body and meta after it).
type PairCase = (bool, String, i64, Option<String>, Option<String>);

/// Two columns of one table have two translating triggers, fired in name order (body's before
/// meta's): each reads and sets its own pair only, so a write of one column by either version
/// leaves the other column as it was on both sides, and neither trigger takes the other's
/// translation for a write. Each write, then both versions' view of the row.
#[tokio::test]
async fn two_triggers_of_one_table_keep_to_their_own_pair() {
    let case = &SEVERAL[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", case.create);
    ok(&p.run(&["up"]), "create");
    p.write("2_versioned.sql", case.versioned);
    ok(&p.run(&["up"]), "expand");
    let db = p.db.pg().await;
    let new_db = session(&p.db.url, "20s").await;
    new_db
        .batch_execute(&format!("SET search_path TO {V2}, public"))
        .await
        .unwrap();
    // (which version writes, the write, the row, its body and meta after it).
    let s = |k: i64, c: &str| Some(seed(c, k));
    let v = |t: &str| Some(t.to_string());
    let cases: Vec<PairCase> = vec![
        (
            true,
            "UPDATE docs SET body = '{\"b\": 1}' WHERE id = 1".into(),
            1,
            v("{\"b\": 1}"),
            s(1, "meta"),
        ),
        (
            true,
            "UPDATE docs SET meta = '{\"m\": -2}' WHERE id = 2".into(),
            2,
            s(2, "body"),
            v("{\"m\": -2}"),
        ),
        (
            true,
            "UPDATE docs SET meta = NULL WHERE id = 3".into(),
            3,
            s(3, "body"),
            None,
        ),
        (
            true,
            "UPDATE docs SET body = '{\"b\": 4}', meta = '{\"m\": 4}' WHERE id = 4".into(),
            4,
            v("{\"b\": 4}"),
            v("{\"m\": 4}"),
        ),
        (
            true,
            "UPDATE docs SET note = -5 WHERE id = 5".into(),
            5,
            s(5, "body"),
            s(5, "meta"),
        ),
        // A new-version write of body's value as it is: nothing to translate, meta untouched.
        (
            true,
            "UPDATE docs SET body = body WHERE id = 6".into(),
            6,
            s(6, "body"),
            s(6, "meta"),
        ),
        (
            false,
            "UPDATE docs SET body = '{\"o\": 11}' WHERE id = 11".into(),
            11,
            v("{\"o\": 11}"),
            s(11, "meta"),
        ),
        (
            false,
            "UPDATE docs SET meta = '{\"o\": 12}' WHERE id = 12".into(),
            12,
            s(12, "body"),
            v("{\"o\": 12}"),
        ),
        (
            false,
            "UPDATE docs SET meta = NULL WHERE id = 13".into(),
            13,
            s(13, "body"),
            None,
        ),
        (
            false,
            "UPDATE docs SET body = '{\"o\": 14}', meta = '{\"p\": 14}' WHERE id = 14".into(),
            14,
            v("{\"o\": 14}"),
            v("{\"p\": 14}"),
        ),
        (
            false,
            "UPDATE docs SET meta = meta, body = body WHERE id = 15".into(),
            15,
            s(15, "body"),
            s(15, "meta"),
        ),
        (
            true,
            "INSERT INTO docs (id, body) VALUES (5001, '{\"i\": 1}')".into(),
            5001,
            v("{\"i\": 1}"),
            None,
        ),
        (
            true,
            "INSERT INTO docs (id, body, meta) VALUES (5002, '{\"i\": 2}', '{\"j\": 2}')".into(),
            5002,
            v("{\"i\": 2}"),
            v("{\"j\": 2}"),
        ),
        (
            false,
            "INSERT INTO docs (id, body) VALUES (5003, '{\"i\": 3}')".into(),
            5003,
            v("{\"i\": 3}"),
            None,
        ),
        (
            false,
            "INSERT INTO docs (id, body, meta) VALUES (5004, '{\"i\": 4}', '{\"j\": 4}')".into(),
            5004,
            v("{\"i\": 4}"),
            v("{\"j\": 4}"),
        ),
    ];
    for (new, write, id, body, meta) in &cases {
        let writer = if *new { &new_db } else { &db };
        writer.batch_execute(write).await.unwrap();
        for rel in ["public.docs", "sluice_v2.docs"] {
            let r = db
                .query_one(
                    &format!("SELECT body::text, meta::text FROM {rel} WHERE id = $1"),
                    &[id],
                )
                .await
                .unwrap();
            let got: (Option<String>, Option<String>) = (r.get(0), r.get(1));
            assert_eq!(
                &got,
                &(body.clone(), meta.clone()),
                "{write}: through {rel}"
            );
        }
    }
    assert!(disagreeing(&db, case).await.iter().all(|(_, n)| *n == 0));
    ok(&p.run(&["complete"]), "complete");
    for (_, write, id, body, meta) in &cases {
        let r = db
            .query_one(
                "SELECT body::text, meta::text FROM docs WHERE id = $1",
                &[id],
            )
            .await
            .unwrap();
        let got: (Option<String>, Option<String>) = (r.get(0), r.get(1));
        assert_eq!(
            &got,
            &(body.clone(), meta.clone()),
            "{write}: after complete"
        );
    }
}

/// A versioned migration of several columns added earlier in the same run runs with versioned
/// schemas all the same (as written, its second ALTER of the table could not be staged), and so
/// does one with a column the running version uses, whichever statement it is; one column added
/// in the run alone runs as written, as before.
#[tokio::test]
async fn columns_of_the_run_and_versioned_schemas() {
    let create = "CREATE TABLE docs (id bigserial PRIMARY KEY, body text NOT NULL);\nINSERT INTO docs (body) VALUES ('{}');\n";
    let add = "ALTER TABLE docs ADD COLUMN meta text;\nALTER TABLE docs ADD COLUMN extra text;\n";
    let cases = [
        (
            "a new column first, then one the running version uses",
            "-- sluice:versioned down meta::text\nALTER TABLE docs ALTER COLUMN meta TYPE jsonb USING meta::jsonb;\n-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n",
            "expanded",
        ),
        (
            "only new columns",
            "-- sluice:versioned down meta::text\nALTER TABLE docs ALTER COLUMN meta TYPE jsonb USING meta::jsonb;\n-- sluice:versioned down extra::text\nALTER TABLE docs ALTER COLUMN extra TYPE jsonb USING extra::jsonb;\n",
            "expanded",
        ),
        (
            "one new column alone",
            "-- sluice:versioned down meta::text\nALTER TABLE docs ALTER COLUMN meta TYPE jsonb USING meta::jsonb;\n",
            "applied",
        ),
    ];
    for (what, versioned, state) in cases {
        let p = Project::new(Server::Postgres).await;
        p.write("1_create.sql", create);
        ok(&p.run(&["up"]), what);
        p.write("2_add.sql", add);
        p.write("3_versioned.sql", versioned);
        // `plan` and `up --dry-run` say what `up` does: versioned schemas, planned when `up`
        // reaches the migration (the columns do not exist yet), never a refusal or the ALTERs
        // as written.
        let plan = p.run(&["plan"]);
        let dry = p.run(&["up", "--dry-run"]);
        for (which, r) in [("plan", &plan), ("dry-run", &dry)] {
            let out = format!("{}{}", r.stdout, r.stderr);
            assert!(!out.contains("refuses it"), "{what} {which}: {out}");
            let reached = "with versioned schemas (expand phase, two application versions live) when it reaches this migration";
            assert_eq!(
                out.contains(reached),
                state == "expanded",
                "{what} {which}: {out}"
            );
        }
        if state == "expanded" {
            assert!(
                dry.stdout
                    .contains("-- nothing yet: planned when `sluice up` reaches this migration"),
                "{what}: {}",
                dry.stdout
            );
            // Each statement of the migration runs as that, none as its ALTER as written.
            assert_eq!(
                dry.stdout
                    .matches(
                        "runs as: -- nothing yet: planned when `sluice up` reaches this migration"
                    )
                    .count(),
                2,
                "{what}: {}",
                dry.stdout
            );
        }
        ok(&p.run(&["up"]), what);
        assert_eq!(state_of(&p, 3).as_deref(), Some(state), "{what}");
    }
}

/// What several versioned columns cannot share, refused before anything is made (exit 2), twice
/// with nothing changed: an index or constraint over two changed columns of one table (its one
/// helper index would serve one new column, and complete's DROP COLUMN of the other would take
/// it), and two tables of one name in two schemas (the version schema has one view per name).
#[tokio::test]
async fn what_several_columns_cannot_share_is_refused_before_anything_runs() {
    let two = "-- sluice:up\n-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n-- sluice:versioned down meta::text\nALTER TABLE docs ALTER COLUMN meta TYPE jsonb USING meta::jsonb;\n";
    let table = "CREATE TABLE docs (id bigserial PRIMARY KEY, body text, meta text);\nINSERT INTO docs (body, meta) VALUES ('{}', '{}');\n";
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "a multi-column index",
            format!("{table}CREATE INDEX docs_bm ON docs (body, meta);\n"),
            two.into(),
            "index \"docs_bm\" of \"public\".\"docs\" uses both \"body\" and \"meta\", which this migration both changes",
        ),
        (
            "a unique constraint",
            format!("{table}ALTER TABLE docs ADD CONSTRAINT docs_bm_key UNIQUE (body, meta);\n"),
            two.into(),
            "constraint \"docs_bm_key\" of \"public\".\"docs\" uses both \"body\" and \"meta\"",
        ),
        (
            "a partial index",
            format!("{table}CREATE INDEX docs_b_where_m ON docs (body) WHERE meta IS NOT NULL;\n"),
            two.into(),
            "index \"docs_b_where_m\" of \"public\".\"docs\" uses both \"body\" and \"meta\"",
        ),
        (
            "an expression index",
            format!("{table}CREATE INDEX docs_b_m ON docs ((body || meta));\n"),
            two.into(),
            "index \"docs_b_m\" of \"public\".\"docs\" uses both \"body\" and \"meta\"",
        ),
        (
            "two tables of one name",
            "CREATE SCHEMA a; CREATE SCHEMA b;\nCREATE TABLE a.docs (id bigserial PRIMARY KEY, body text);\nCREATE TABLE b.docs (id bigserial PRIMARY KEY, body text);\n".into(),
            "-- sluice:up\n-- sluice:versioned down body::text\nALTER TABLE a.docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n-- sluice:versioned down body::text\nALTER TABLE b.docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n".into(),
            "tables \"a\".\"docs\" and \"b\".\"docs\" have the same name, and the version schema serves each table under its plain name",
        ),
    ];
    for (what, create, versioned, message) in cases {
        let p = Project::new(Server::Postgres).await;
        p.write("1_create.sql", &format!("-- sluice:up\n{create}"));
        ok(&p.run(&["up"]), what);
        let before = pg_dump_schema(&p);
        p.write("2_versioned.sql", &versioned);
        for attempt in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 2, "{what} {attempt}: {r:?}");
            assert!(r.stderr.contains(message), "{what}: {}", r.stderr);
            assert!(
                r.stderr.contains("in migrations of their own"),
                "{what}: {}",
                r.stderr
            );
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{what}");
            assert_eq!(pg_dump_schema(&p), before, "{what}");
            // `plan` says the same before anything runs.
            let plan = p.run(&["plan"]);
            assert!(
                plan.stdout.contains(message) || plan.stderr.contains(message),
                "{what}: {plan:?}"
            );
        }
    }
}

/// A helper the expand made gone (its rebuilt index dropped by hand): complete fails and rolls
/// back, twice alike, and its help says the way out (rollback), not "fix the cause"; the rollback
/// then restores the schema exactly.
#[tokio::test]
async fn complete_without_its_helper_says_to_roll_back() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", CREATE);
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    p.write("2_versioned.sql", VERSIONED);
    ok(&p.run(&["up"]), "expand");
    let db = p.db.pg().await;
    db.batch_execute("DROP INDEX docs_body_idx_sluice_versioned")
        .await
        .unwrap();
    let expanded = pg_dump_schema(&p);
    for attempt in 0..2 {
        let r = p.run(&["complete"]);
        assert_ne!(r.code, 0, "{attempt}: {r:?}");
        assert!(r.stderr.contains("docs_body_idx_sluice_versioned"), "{r:?}");
        assert!(r.stderr.contains("run `sluice rollback`"), "{r:?}");
        assert!(!r.stderr.contains("fix the cause"), "{r:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
        assert_eq!(pg_dump_schema(&p), expanded);
    }
    ok(&p.run(&["rollback"]), "rollback");
    assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
    assert_eq!(pg_dump_schema(&p), before);
}
