//! Issue 14 on MariaDB: a migration that is `DROP TABLE a` alone runs as expand (`sluice up`: the
//! table is renamed away to `a_sluice_dropped` behind a view `a`, swapped in atomically) → the old
//! version keeps working → contract (`sluice complete`: view and table dropped), or rollback (the
//! table takes its name back, with every row written meanwhile).
//!
//! An old-version client writes and reads through `a` from before expand until the rollout ends:
//! 0 errors; the rows are what it wrote; after complete the database equals a twin where the
//! DROP TABLE ran as written. Rollback restores `SHOW CREATE TABLE` exactly, a kill at every point
//! converges on rerun, and a table other tables' foreign keys reference is refused before
//! anything changes (each twice).

mod common;

use common::mariadb_two_versions::{
    as_written_twin, kind, ok, run_version, show_create_exact, state_of, wait_ops, Version,
};
use common::{wait_bounded, Project, Run};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_testkit::Server;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const CREATE: &str = "-- sluice:up\n\
    CREATE TABLE audit (n bigint);\n\
    CREATE TABLE legacy (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, name varchar(40) NOT NULL DEFAULT 'anon', note int, KEY ix_note (note));\n\
    CREATE TRIGGER legacy_audit AFTER INSERT ON legacy FOR EACH ROW INSERT INTO audit VALUES (NEW.id);\n\
    INSERT INTO legacy (name, note) SELECT CONCAT('s', seq), seq FROM seq_1_to_1000;\n";

const DROP: &str = "-- sluice:up\nDROP TABLE legacy;\n";

/// The names (without sluice's history), the triggers, and `SHOW CREATE TABLE legacy` when it is
/// a table (with its counter).
async fn schema(c: &mut Conn) -> String {
    let names: Vec<String> = c
        .query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT IN ('sluice_events', 'sluice_lock', 'sluice_meta', 'sluice_migrations', 'sluice_snapshots') ORDER BY 1")
        .await
        .unwrap();
    let triggers: Vec<(String, String)> = c
        .query("SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1")
        .await
        .unwrap();
    let create = match kind(c, "legacy").await.as_deref() {
        Some("BASE TABLE") => show_create_exact(c, "legacy").await,
        other => format!("{other:?}"),
    };
    format!("{names:?}\n{triggers:?}\n{create}")
}

/// The old version: inserts (every 4th leaves name out), updates and deletes its rows through
/// `legacy`, each read back. id → (name, note), None: deleted.
struct OldVersion {
    owned: Vec<i64>,
    written: BTreeMap<i64, Option<(String, i64)>>,
}

impl Version for OldVersion {
    async fn round(&mut self, db: &mut Conn, i: u64, errors: &mut Vec<String>) -> bool {
        let i = i as i64;
        let n = 1_000_000 + i;
        let owned = &mut self.owned;
        let r: Result<(i64, Option<(String, i64)>), mysql_async::Error> = async {
            if i % 3 == 0 {
                let name = if i % 4 == 0 {
                    db.exec_drop("INSERT INTO legacy (note) VALUES (?)", (n,))
                        .await?;
                    "anon".to_string()
                } else {
                    db.exec_drop(
                        "INSERT INTO legacy (name, note) VALUES (?, ?)",
                        (format!("v{n}"), n),
                    )
                    .await?;
                    format!("v{n}")
                };
                let id = db.last_insert_id().unwrap() as i64;
                owned.push(id);
                Ok((id, Some((name, n))))
            } else if i % 10 == 0 {
                let id = owned.swap_remove((i as usize * 7919) % owned.len());
                db.exec_drop("DELETE FROM legacy WHERE id = ?", (id,))
                    .await?;
                Ok((id, None))
            } else {
                let id = owned[(i as usize * 7919) % owned.len()];
                db.exec_drop(
                    "UPDATE legacy SET name = ?, note = ? WHERE id = ?",
                    (format!("u{n}"), n, id),
                )
                .await?;
                Ok((id, Some((format!("u{n}"), n))))
            }
        }
        .await;
        let (id, want) = match r {
            Ok(x) => x,
            Err(e) => {
                errors.push(format!("write: {e}"));
                return false;
            }
        };
        self.written.insert(id, want.clone());
        match db
            .exec_first::<(String, i64), _, _>("SELECT name, note FROM legacy WHERE id = ?", (id,))
            .await
        {
            Ok(got) if got == want => {}
            Ok(got) => errors.push(format!("row {id}: {got:?}, written {want:?}")),
            Err(e) => errors.push(format!("read: {e}")),
        }
        true
    }
}

async fn old_version(
    url: String,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
) -> (Vec<String>, BTreeMap<i64, Option<(String, i64)>>) {
    let v = OldVersion {
        owned: (1..=1000).collect(),
        written: BTreeMap::new(),
    };
    let (v, errors) = run_version(v, url, stop, ops).await;
    (errors, v.written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_old_version_runs_through_expand_and_the_drop_waits_for_complete() {
    let p = Project::new(Server::MariaDb).await;
    p.write("1_create.sql", CREATE);
    ok(&p.run(&["up"]), "create");
    p.write("2_drop.sql", DROP);
    let mut db = p.db.my().await;
    let (stop, ops) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let old = tokio::spawn(old_version(p.db.url.clone(), stop.clone(), ops.clone()));
    wait_ops(&ops, 100).await;
    let plan = p.run(&["plan"]);
    ok(&plan, "plan");
    assert!(
        plan.stdout
            .contains("RENAME TABLE `legacy` TO `legacy_sluice_dropped`")
            && plan
                .stdout
                .contains("DROP VIEW `legacy`; DROP TABLE `legacy_sluice_dropped`"),
        "{plan:?}"
    );
    ok(&wait_bounded(p.spawn(&["up"]), 300, "sluice up"), "expand");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(kind(&mut db, "legacy").await.as_deref(), Some("VIEW"));
    assert_eq!(
        kind(&mut db, "legacy_sluice_dropped").await.as_deref(),
        Some("BASE TABLE")
    );
    let at = ops.load(Ordering::SeqCst);
    wait_ops(&ops, at + 300).await;
    assert!(p.run(&["status"]).stdout.contains("expanded (open"));
    // A second breaking change on the table while it is expanded is refused (exit 11), twice.
    p.write(
        "3_second.sql",
        "-- sluice:up\nRENAME TABLE legacy TO legacy2;\n",
    );
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 11, "{r:?}");
        assert!(r.stderr.contains("is expanded on the same table"), "{r:?}");
    }
    std::fs::remove_file(p.migration_path("3_second.sql")).unwrap();
    // The rollout is done: the old version stops, then the contract drops both.
    stop.store(true, Ordering::SeqCst);
    let (errors, written) = old.await.unwrap();
    assert_eq!(errors, Vec::<String>::new());
    // Before complete: the rows are what the old version wrote, through either name.
    let mut want: BTreeMap<i64, (String, i64)> =
        (1..=1000).map(|id| (id, (format!("s{id}"), id))).collect();
    for (id, w) in written {
        match w {
            Some(v) => want.insert(id, v),
            None => want.remove(&id),
        };
    }
    for name in ["legacy", "legacy_sluice_dropped"] {
        let got: BTreeMap<i64, (String, i64)> = db
            .query::<(i64, String, i64), _>(format!("SELECT id, name, note FROM {name}"))
            .await
            .unwrap()
            .into_iter()
            .map(|(id, s, n)| (id, (s, n)))
            .collect();
        assert!(got == want, "{name}: rows differ from the writes");
    }
    for _ in 0..2 {
        ok(&p.run(&["complete"]), "complete");
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    }
    let (_twin, mut tdb) = as_written_twin(&[("1_create.sql", CREATE), ("2_drop.sql", DROP)]).await;
    assert_eq!(schema(&mut db).await, schema(&mut tdb).await);
}

/// Rollback (twice) restores `SHOW CREATE TABLE` exactly with the rows written meanwhile; then
/// `up --complete` drops it in one go.
#[tokio::test]
async fn rollback_restores_the_table_exactly() {
    let p = Project::new(Server::MariaDb).await;
    p.write("1_create.sql", CREATE);
    ok(&p.run(&["up"]), "create");
    let mut db = p.db.my().await;
    let before = schema(&mut db).await;
    p.write("2_drop.sql", DROP);
    ok(&p.run(&["up"]), "expand");
    db.query_drop("UPDATE legacy SET name = 'meanwhile' WHERE id = 4")
        .await
        .unwrap();
    for _ in 0..2 {
        ok(&p.run(&["rollback"]), "rollback");
        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
        assert_eq!(schema(&mut db).await, before);
    }
    let v: String = db
        .query_first("SELECT name FROM legacy WHERE id = 4")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, "meanwhile");
    ok(&p.run(&["up", "--complete"]), "up --complete");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    assert_eq!(kind(&mut db, "legacy").await, None);
    assert_eq!(kind(&mut db, "legacy_sluice_dropped").await, None);
}

/// kill -9 before each expand step and after the last, and at complete's and rollback's commit:
/// the rerun converges (twice).
#[tokio::test]
async fn a_kill_at_every_point_converges_on_rerun() {
    for point in ["expand-step-0", "expand-step-1", "expand-unrecorded"] {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", CREATE);
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = schema(&mut db).await;
        p.write("2_drop.sql", DROP);
        let killed: Run = p
            .command(&["up"])
            .env("SLUICE_CRASH_AT", point)
            .output()
            .unwrap()
            .into();
        assert_ne!(killed.code, 0, "{point}: {killed:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("interrupted"), "{point}");
        // The old name works at every point.
        db.query_drop("UPDATE legacy SET name = 'after-kill' WHERE id = 5")
            .await
            .unwrap();
        ok(&p.run(&["up"]), &format!("{point}: rerun"));
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{point}");
        assert_eq!(kind(&mut db, "legacy").await.as_deref(), Some("VIEW"));
        if point == "expand-step-1" {
            let killed: Run = p
                .command(&["rollback"])
                .env("SLUICE_CRASH_AT", "before-commit")
                .output()
                .unwrap()
                .into();
            assert_ne!(killed.code, 0, "{killed:?}");
            // The table has its old name back: complete is refused (twice), nothing changes.
            for _ in 0..2 {
                let r = p.run(&["complete"]);
                assert_eq!(r.code, 11, "{r:?}");
                assert!(r.stderr.contains("run `sluice rollback` again"), "{r:?}");
                assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
            }
            for _ in 0..2 {
                ok(&p.run(&["rollback"]), "rollback rerun");
                assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
            }
            let now = schema(&mut db).await;
            let v: String = db
                .query_first("SELECT name FROM legacy WHERE id = 5")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(v, "after-kill");
            // The same table but for the row the test changed (the counter unchanged).
            assert_eq!(now, before);
            continue;
        }
        let killed: Run = p
            .command(&["complete"])
            .env("SLUICE_CRASH_AT", "before-commit")
            .output()
            .unwrap()
            .into();
        assert_ne!(killed.code, 0, "{killed:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
        for _ in 0..2 {
            let r = p.run(&["rollback"]);
            assert_ne!(r.code, 0, "{r:?}");
            assert!(r.all().contains("is gone already"), "{r:?}");
        }
        for _ in 0..2 {
            ok(&p.run(&["complete"]), "complete rerun");
            assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
        }
        assert_eq!(kind(&mut db, "legacy").await, None);
        assert_eq!(kind(&mut db, "legacy_sluice_dropped").await, None);
    }
}

/// A table another table's foreign key references is refused (exit 2) before anything changes,
/// twice. DROP TABLE IF EXISTS of a missing table is a no-op in both phases. A DROP TABLE with
/// other statements, or of a table the run created, runs as written as before.
#[tokio::test]
async fn refusals_and_what_runs_as_written() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE parent (id int PRIMARY KEY);\nCREATE TABLE child (id int PRIMARY KEY, p int, CONSTRAINT fk_parent FOREIGN KEY (p) REFERENCES parent (id));\nCREATE TABLE other (id int PRIMARY KEY);\n",
    );
    ok(&p.run(&["up"]), "create");
    let mut db = p.db.my().await;
    let before = schema(&mut db).await;
    p.write("2_drop.sql", "-- sluice:up\nDROP TABLE parent;\n");
    for round in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 2, "round {round}: {r:?}");
        assert!(
            r.stderr
                .contains("foreign key fk_parent of table child reference(s) the table"),
            "{r:?}"
        );
        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
        assert_eq!(schema(&mut db).await, before);
        assert_eq!(kind(&mut db, "parent").await.as_deref(), Some("BASE TABLE"));
    }
    // A missing table without IF EXISTS: as the statement as written says.
    p.write("2_drop.sql", "-- sluice:up\nDROP TABLE nothere;\n");
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("Unknown table 'nothere'"), "{r:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
    }
    p.write(
        "2_drop.sql",
        "-- sluice:up\nDROP TABLE IF EXISTS nothere;\n",
    );
    ok(&p.run(&["up"]), "if exists");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    ok(&p.run(&["complete"]), "complete");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    p.write(
        "3_mixed.sql",
        "-- sluice:up\nDROP TABLE other;\nCREATE TABLE other (id int PRIMARY KEY, x int);\n",
    );
    p.write(
        "4_fresh.sql",
        "-- sluice:up\nCREATE TABLE fresh (id int PRIMARY KEY);\n",
    );
    p.write("5_fresh_drop.sql", "-- sluice:up\nDROP TABLE fresh;\n");
    ok(&p.run(&["up"]), "as written");
    for v in [3, 4, 5] {
        assert_eq!(state_of(&p, v).as_deref(), Some("applied"), "{v}");
    }
    assert_eq!(kind(&mut db, "fresh").await, None);
}
