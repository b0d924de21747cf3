//! The planner's claims about each statement (lock mode, rewrite or not) checked against the real
//! server: the statement runs in a rolled-back transaction on a fixture table, and pg_locks and
//! pg_relation_filenode say what really happened.

use sluice_core::plan::{plan_sql, Effect};
use sluice_core::target::{EngineKind, Target};
use std::collections::HashMap;

fn lock_name(planned: &str) -> &'static str {
    let p = planned.to_uppercase();
    if p.starts_with("ACCESS EXCLUSIVE") {
        "AccessExclusiveLock"
    } else if p.starts_with("SHARE ROW EXCLUSIVE") {
        "ShareRowExclusiveLock"
    } else if p.starts_with("SHARE UPDATE EXCLUSIVE") {
        "ShareUpdateExclusiveLock"
    } else if p.starts_with("SHARE") {
        "ShareLock"
    } else if p.starts_with("ROW EXCLUSIVE") {
        "RowExclusiveLock"
    } else if p.starts_with("ROW SHARE") {
        "RowShareLock"
    } else if p.starts_with("ACCESS SHARE") {
        "AccessShareLock"
    } else if p.starts_with("EXCLUSIVE") {
        "ExclusiveLock"
    } else if p.starts_with("NONE") {
        ""
    } else {
        "unknown"
    }
}

const RANK: &[&str] = &[
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

#[tokio::test]
async fn planned_lock_modes_and_rewrites_match_the_server() {
    let db = sluice_testkit::TestDb::postgres().await;
    let c = db.pg().await;
    c.batch_execute(
        "CREATE TABLE parent (id bigint PRIMARY KEY);
         CREATE TABLE t (id bigint PRIMARY KEY, v varchar(100), n integer, parent_id bigint, amount numeric(10,2), note text);
         INSERT INTO parent SELECT g FROM generate_series(1, 100) g;
         INSERT INTO t SELECT g, 'v' || g, g, 1 + g % 100, g, 'x' FROM generate_series(1, 1000) g;
         CREATE INDEX t_n_idx ON t (n);",
    )
    .await
    .unwrap();
    let target = Target::new(EngineKind::Postgres, 15, 0);
    let mut known: HashMap<(String, String), String> = HashMap::new();
    for (col, ty) in [
        ("id", "bigint"),
        ("v", "character varying(100)"),
        ("n", "integer"),
        ("parent_id", "bigint"),
        ("amount", "numeric(10,2)"),
        ("note", "text"),
    ] {
        known.insert(("t".into(), col.into()), ty.into());
    }
    let cases = [
        "ALTER TABLE t ADD COLUMN a text",
        "ALTER TABLE t ADD COLUMN b text DEFAULT 'x'",
        "ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT md5(random()::text)",
        "ALTER TABLE t ADD COLUMN d timestamptz DEFAULT now()",
        "ALTER TABLE t ADD COLUMN e uuid DEFAULT gen_random_uuid()",
        "CREATE INDEX t_v_idx ON t (v)",
        "CREATE UNIQUE INDEX t_v_uidx ON t (v)",
        "ALTER TABLE t ADD CONSTRAINT t_n_check CHECK (n > 0)",
        "ALTER TABLE t ADD CONSTRAINT t_n_check CHECK (n > 0) NOT VALID",
        "ALTER TABLE t ADD CONSTRAINT t_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id)",
        "ALTER TABLE t ADD CONSTRAINT t_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID",
        "ALTER TABLE t ADD CONSTRAINT t_v_key UNIQUE (v)",
        "ALTER TABLE t ALTER COLUMN v TYPE varchar(200)",
        "ALTER TABLE t ALTER COLUMN v TYPE text",
        "ALTER TABLE t ALTER COLUMN amount TYPE numeric(12,2)",
        "ALTER TABLE t ALTER COLUMN n TYPE bigint",
        "ALTER TABLE t ALTER COLUMN note SET NOT NULL",
        "ALTER TABLE t ALTER COLUMN note DROP NOT NULL",
        "ALTER TABLE t ALTER COLUMN note SET DEFAULT 'y'",
        "ALTER TABLE t DROP COLUMN note",
        "DROP INDEX t_n_idx",
        "TRUNCATE t CASCADE",
        "CLUSTER t USING t_pkey",
        "VACUUM FULL t",
        // Statement kinds the IR does not model: judged from their words (issue: one in five
        // was planned weaker than the server takes, SET UNLOGGED as instant).
        "ALTER TABLE t SET UNLOGGED",
        "ALTER TABLE t SET (fillfactor = 70)",
        "ALTER TABLE t SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)",
        "ALTER TABLE t RESET (fillfactor)",
        "ALTER TABLE t SET (parallel_workers = 2)",
        "ALTER TABLE t SET (user_catalog_table = true)",
        "ALTER TABLE t ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE t FORCE ROW LEVEL SECURITY",
        "ALTER TABLE t CLUSTER ON t_pkey",
        "ALTER TABLE t SET WITHOUT CLUSTER",
        "ALTER TABLE t ALTER COLUMN n SET STATISTICS 500",
        "ALTER TABLE t ALTER COLUMN note SET STORAGE EXTERNAL",
        "ALTER TABLE t ALTER COLUMN note SET COMPRESSION pglz",
        "ALTER TABLE t OWNER TO CURRENT_USER",
        "ALTER TABLE t REPLICA IDENTITY FULL",
        "ALTER TABLE t DISABLE TRIGGER ALL",
        "ALTER TABLE t ENABLE TRIGGER USER",
        "ALTER TABLE t INHERIT parent",
        "LOCK TABLE t",
        "LOCK TABLE t IN SHARE MODE",
        "LOCK TABLE t IN ROW EXCLUSIVE MODE",
        "LOCK t IN SHARE UPDATE EXCLUSIVE MODE NOWAIT",
        "LOCK TABLE t IN EXCLUSIVE MODE",
        "COMMENT ON TABLE t IS 'orders'",
        "COMMENT ON COLUMN t.n IS 'count'",
        "CREATE TRIGGER t_trg BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        "CREATE POLICY t_pol ON t USING (n > 0)",
        "CREATE RULE t_rule AS ON DELETE TO t DO INSTEAD NOTHING",
        "ANALYZE t",
        "SELECT count(*) FROM t",
        "SELECT * FROM t WHERE id = 1 FOR UPDATE",
        "UPDATE t SET note = 'y' WHERE id = 1",
        "INSERT INTO t (id) VALUES (100000)",
        "DELETE FROM t WHERE id = 1",
        "CREATE VIEW t_view AS SELECT id FROM t",
        "CREATE MATERIALIZED VIEW t_mv AS SELECT id FROM t",
        "WITH x AS (UPDATE t SET n = 1 WHERE id = 2 RETURNING id) SELECT * FROM x",
        "SELECT * FROM t WHERE id = 1 FOR NO KEY UPDATE",
        "EXPLAIN SELECT * FROM t",
    ];
    // Decided by context the planner cannot read offline, so left out: SET LOGGED and SET TABLESPACE
    // rewrite only when the table is unlogged / elsewhere (planned as a rewrite, the worst case).
    let mut failures = Vec::new();
    for sql in cases {
        let plans = plan_sql(target, sql, &mut known.clone(), None).unwrap();
        let Some(action) = plans[0].actions.first() else {
            failures.push(format!("{sql}\n  not planned at all"));
            continue;
        };
        let before: i64 = c
            .query_one("SELECT pg_relation_filenode('t')::text::bigint", &[])
            .await
            .unwrap()
            .get(0);
        // VACUUM and CLUSTER refuse to run in a transaction block: observe them from another session.
        let in_tx = !sql.starts_with("VACUUM") && !sql.starts_with("CLUSTER");
        let (observed, after): (String, i64) = if in_tx {
            c.batch_execute("BEGIN").await.unwrap();
            c.batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let modes: Vec<String> = c
                .query("SELECT mode FROM pg_locks WHERE relation = 't'::regclass AND pid = pg_backend_pid()", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let after: i64 = c
                .query_one("SELECT pg_relation_filenode('t')::text::bigint", &[])
                .await
                .unwrap()
                .get(0);
            c.batch_execute("ROLLBACK").await.unwrap();
            let strongest = modes
                .iter()
                .max_by_key(|m| RANK.iter().position(|r| r == m))
                .cloned()
                .unwrap_or_default();
            (strongest, after)
        } else {
            // Hold a weak lock so the statement queues, then read the mode it waits for.
            let holder = db.pg().await;
            holder
                .batch_execute("BEGIN; SELECT 1 FROM t LIMIT 1")
                .await
                .unwrap();
            let url = db.url.clone();
            let stmt = sql.to_string();
            let task = tokio::spawn(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client.batch_execute(&stmt).await.unwrap();
            });
            let mut mode = String::new();
            for _ in 0..200 {
                let rows = c
                    .query(
                        "SELECT mode FROM pg_locks WHERE relation = 't'::regclass AND NOT granted",
                        &[],
                    )
                    .await
                    .unwrap();
                if let Some(r) = rows.first() {
                    mode = r.get(0);
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            holder.batch_execute("ROLLBACK").await.unwrap();
            task.await.unwrap();
            let after: i64 = c
                .query_one("SELECT pg_relation_filenode('t')::text::bigint", &[])
                .await
                .unwrap()
                .get(0);
            (mode, after)
        };
        let planned_lock = lock_name(&action.impact.lock);
        // TRUNCATE swaps in a new, empty file: a new filenode, but nothing is rewritten.
        let rewrote = after != before && !sql.starts_with("TRUNCATE");
        let planned_rewrite = action.impact.effect == Effect::Rewrite;
        if planned_lock != observed || rewrote != planned_rewrite {
            failures.push(format!(
                "{sql}\n  planned {} ({planned_lock}), {:?}\n  server  {observed}, rewrite={rewrote}",
                action.impact.lock, action.impact.effect
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "the planner disagrees with the server:\n{}",
        failures.join("\n")
    );
}
