//! Issue 14 on MariaDB: `RENAME TABLE a TO b` / `ALTER TABLE a RENAME TO b` runs as expand
//! (`sluice up`: a view `a` is made under a temporary name, then one atomic RENAME TABLE makes the
//! table `b` and the view `a`) → both names work → contract (`sluice complete`: the view is
//! dropped), or rollback (the table takes its name back atomically).
//!
//! An old-version client (name `a`) and a new-version client (name `b`) insert (with the table's
//! defaults and AUTO_INCREMENT), update, delete and read concurrently from before expand until
//! after complete: 0 errors on both (no 1146 at any moment), every write visible through the
//! other name, final rows equal to the writes, `SHOW CREATE TABLE` of the table and of the table
//! that references it equal to a twin where the rename ran as written, triggers following the
//! table. Rollback restores `SHOW CREATE TABLE` exactly, a kill at every point converges on
//! rerun, and what a view cannot stand in for is refused before anything changes (each twice).

mod common;

use common::mariadb_two_versions::{
    as_written_twin, kind, ok, q, run_version, show_create_exact, state_of, wait_ops,
    without_counter, Version,
};
use common::{wait_bounded, Project, Run};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_testkit::Server;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const ROWS: i64 = 2000;

struct Case {
    what: &'static str,
    old: &'static str,
    new: &'static str,
    /// The migration's statement, as the team writes it.
    rename: &'static str,
}

const CASES: &[Case] = &[
    Case {
        what: "RENAME TABLE",
        old: "accounts",
        new: "clients",
        rename: "RENAME TABLE accounts TO clients",
    },
    Case {
        what: "ALTER TABLE ... RENAME TO, names with a space and a backquote",
        old: "Old Items",
        new: "New`Items",
        rename: "ALTER TABLE `Old Items` RENAME TO `New``Items`",
    },
];

impl Case {
    /// The table (AUTO_INCREMENT key, a default, a unique key, a generated column, a foreign key
    /// to `owners`), a table `orders` whose foreign key references it, an audit trigger, rows.
    fn create(&self) -> String {
        let a = q(self.old);
        format!(
            "-- sluice:up\n\
             CREATE TABLE owners (id int PRIMARY KEY);\n\
             INSERT INTO owners VALUES (1), (2);\n\
             CREATE TABLE {a} (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, name varchar(40) NOT NULL DEFAULT 'anon', note int, owner int DEFAULT 1, twice bigint AS (note * 2) VIRTUAL, UNIQUE KEY uq_note (note), KEY ix_name (name), CONSTRAINT fk_owner FOREIGN KEY (owner) REFERENCES owners (id));\n\
             CREATE TABLE orders (id int PRIMARY KEY, item bigint, CONSTRAINT fk_item FOREIGN KEY (item) REFERENCES {a} (id));\n\
             CREATE TABLE audit (n bigint);\n\
             CREATE TRIGGER audit_ins AFTER INSERT ON {a} FOR EACH ROW INSERT INTO audit VALUES (NEW.id);\n\
             INSERT INTO {a} (name, note) SELECT CONCAT('s', seq), seq FROM seq_1_to_{ROWS};\n\
             INSERT INTO orders VALUES (1, 1);\n\
             -- sluice:down\nDROP TABLE orders; DROP TABLE {a}; DROP TABLE owners; DROP TABLE audit;\n"
        )
    }

    fn migration(&self) -> String {
        format!(
            "-- sluice:up\n{};\n-- sluice:down\nRENAME TABLE {} TO {};\n",
            self.rename,
            q(self.new),
            q(self.old)
        )
    }
}

struct Client {
    mine: String,
    other: String,
    parity: i64,
    /// Read back through the other name too (both names exist).
    cross: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
}

/// id → (name, note) as last written; None: deleted.
type Rows = BTreeMap<i64, Option<(String, i64)>>;

struct ClientResult {
    errors: Vec<String>,
    written: Rows,
}

/// One application version: inserts (every 4th leaves name out: its default), updates and
/// deletes of its own rows through its own name, each read back through its name and, while both
/// exist, through the other.
struct Writer {
    mine: String,
    other: String,
    cross: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
    owned: Vec<i64>,
    written: Rows,
}

impl Version for Writer {
    async fn round(&mut self, db: &mut Conn, i: u64, errors: &mut Vec<String>) -> bool {
        let (mine, other) = (&self.mine, &self.other);
        let owned = &mut self.owned;
        let n = self.counter.fetch_add(1, Ordering::SeqCst) as i64;
        let result: Result<(i64, Option<(String, i64)>), mysql_async::Error> = async {
            if i.is_multiple_of(3) {
                let name = if i.is_multiple_of(4) {
                    db.exec_drop(format!("INSERT INTO {mine} (note) VALUES (?)"), (n,))
                        .await?;
                    "anon".to_string()
                } else {
                    db.exec_drop(
                        format!("INSERT INTO {mine} (name, note) VALUES (?, ?)"),
                        (format!("v{n}"), n),
                    )
                    .await?;
                    format!("v{n}")
                };
                let id = db.last_insert_id().unwrap() as i64;
                owned.push(id);
                Ok((id, Some((name, n))))
            } else if i.is_multiple_of(10) && owned.len() > 10 {
                let id = owned.swap_remove((n as usize * 7919) % owned.len());
                db.exec_drop(format!("DELETE FROM {mine} WHERE id = ?"), (id,))
                    .await?;
                assert_eq!(db.affected_rows(), 1, "delete of {id} through {mine}");
                Ok((id, None))
            } else {
                let id = owned[(n as usize * 7919) % owned.len()];
                db.exec_drop(
                    format!("UPDATE {mine} SET name = ?, note = ? WHERE id = ?"),
                    (format!("u{n}"), n, id),
                )
                .await?;
                Ok((id, Some((format!("u{n}"), n))))
            }
        }
        .await;
        let (id, want) = match result {
            Ok(x) => x,
            Err(e) => {
                errors.push(format!("write through {mine}: {e}"));
                return false;
            }
        };
        self.written.insert(id, want.clone());
        let names: Vec<&String> = if self.cross.load(Ordering::SeqCst) {
            vec![mine, other]
        } else {
            vec![mine]
        };
        for name in names {
            match db
                .exec_first::<(String, i64, i64), _, _>(
                    format!("SELECT name, note, twice FROM {name} WHERE id = ?"),
                    (id,),
                )
                .await
            {
                Ok(got) => {
                    if got.as_ref().is_some_and(|(_, n, t)| *t != n * 2) {
                        errors.push(format!("row {id} through {name}: generated {got:?}"));
                    }
                    let got = got.map(|(s, n, _)| (s, n));
                    if got != want {
                        errors.push(format!(
                            "row {id} through {name}: {got:?}, written {want:?} through {mine}"
                        ));
                    }
                }
                Err(e) => errors.push(format!("read through {name}: {e}")),
            }
        }
        true
    }
}

async fn run_client(c: Client, url: String, counter: Arc<AtomicU64>) -> ClientResult {
    let writer = Writer {
        mine: q(&c.mine),
        other: q(&c.other),
        cross: c.cross,
        counter,
        owned: (1..=ROWS)
            // Rows 1 and 2 are the test's own (it locks row 2 between the phases): never
            // deleted by a client (a client once deleted row 2 first: a flake).
            .filter(|i| i % 2 == c.parity && *i > 2)
            .collect(),
        written: Rows::new(),
    };
    let (writer, errors) = run_version(writer, url, c.stop, c.ops).await;
    ClientResult {
        errors,
        written: writer.written,
    }
}

/// `SHOW CREATE TABLE`, without the AUTO_INCREMENT counter when `counter` is false (the writes
/// move it).
async fn show_create(c: &mut Conn, table: &str, counter: bool) -> String {
    let text = show_create_exact(c, table).await;
    if counter {
        return text;
    }
    without_counter(&text)
}

/// What `name` is: its kind and, for a table, `SHOW CREATE TABLE` with the counter.
async fn describe(c: &mut Conn, name: &str) -> String {
    let k = kind(c, name).await;
    match k.as_deref() {
        Some("VIEW") | None => format!("{k:?}"),
        _ => format!("{k:?} {}", show_create(c, name, true).await),
    }
}

/// The names in the database (tables and views), sorted, without sluice's own.
async fn names(c: &mut Conn) -> Vec<String> {
    c.query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE 'sluice%' ORDER BY TABLE_NAME")
        .await
        .unwrap()
}

/// (trigger, table) of the database.
async fn triggers(c: &mut Conn) -> Vec<(String, String)> {
    c.query("SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1")
        .await
        .unwrap()
}

/// What a database holds of the case, as text to compare: both tables' SHOW CREATE TABLE (the
/// counter left out), the names, the triggers.
async fn schema(c: &mut Conn, table: &str) -> String {
    format!(
        "{}\n{}\n{:?}\n{:?}",
        show_create(c, table, false).await,
        show_create(c, "orders", false).await,
        names(c).await,
        triggers(c).await
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_and_new_versions_run_concurrently_through_expand_and_complete() {
    for case in CASES {
        concurrently(case).await;
    }
}

async fn concurrently(case: &'static Case) {
    let p = Project::new(Server::MariaDb).await;
    p.write("1_create.sql", &case.create());
    ok(&p.run(&["up"]), "create");
    p.write("2_rename.sql", &case.migration());
    let mut db = p.db.my().await;

    let counter = Arc::new(AtomicU64::new(1_000_000));
    let expanded = Arc::new(AtomicBool::new(false));
    let (stop_old, stop_new) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (old_ops, new_ops) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let old = tokio::spawn(run_client(
        Client {
            mine: case.old.into(),
            other: case.new.into(),
            parity: 0,
            cross: expanded.clone(),
            stop: stop_old.clone(),
            ops: old_ops.clone(),
        },
        p.db.url.clone(),
        counter.clone(),
    ));
    wait_ops(&old_ops, 100).await;
    let plan = p.run(&["plan"]);
    ok(&plan, "plan");
    assert!(
        plan.stdout.contains("expand") && plan.stdout.contains("RENAME TABLE"),
        "{plan:?}"
    );
    let clock = std::time::Instant::now();
    let up = wait_bounded(p.spawn(&["up"]), 300, "sluice up");
    let expand_ms = clock.elapsed().as_millis();
    ok(&up, "expand");
    assert_eq!(
        state_of(&p, 2).as_deref(),
        Some("expanded"),
        "{}",
        case.what
    );
    assert_eq!(kind(&mut db, case.old).await.as_deref(), Some("VIEW"));
    assert_eq!(kind(&mut db, case.new).await.as_deref(), Some("BASE TABLE"));
    expanded.store(true, Ordering::SeqCst);
    let before_new = old_ops.load(Ordering::SeqCst);
    let not_completed = Arc::new(AtomicBool::new(true));
    let new = tokio::spawn(run_client(
        Client {
            mine: case.new.into(),
            other: case.old.into(),
            parity: 1,
            cross: not_completed.clone(),
            stop: stop_new.clone(),
            ops: new_ops.clone(),
        },
        p.db.url.clone(),
        counter.clone(),
    ));
    wait_ops(&new_ops, 300).await;
    wait_ops(&old_ops, before_new + 300).await;

    // Between: what else the old version does through the view.
    let (a, b) = (q(case.old), q(case.new));
    db.query_drop(format!(
        "INSERT INTO {a} (id, name, note) VALUES (-9000000, 'first', -1) ON DUPLICATE KEY UPDATE name = 'upsert'"
    ))
    .await
    .unwrap();
    db.query_drop(format!(
        "INSERT INTO {a} (id, name, note) VALUES (-9000000, 'first', -1) ON DUPLICATE KEY UPDATE name = 'upsert'"
    ))
    .await
    .unwrap();
    db.query_drop(format!(
        "REPLACE INTO {a} (id, name, note) VALUES (-9000001, 'replaced', -2)"
    ))
    .await
    .unwrap();
    db.query_drop("START TRANSACTION").await.unwrap();
    let locked: Vec<i64> = db
        .query(format!("SELECT id FROM {a} WHERE id = 2 FOR UPDATE"))
        .await
        .unwrap();
    assert_eq!(locked, [2]);
    db.query_drop("ROLLBACK").await.unwrap();
    // The foreign key of orders follows the table; a write through either name is checked.
    db.query_drop("INSERT INTO orders VALUES (2, -9000000)")
        .await
        .unwrap();
    let fk = db
        .query_drop("INSERT INTO orders VALUES (3, 123456789)")
        .await;
    assert!(
        fk.as_ref().is_err_and(|e| e.to_string().contains("1452")),
        "{fk:?}"
    );
    // The audit trigger follows the table and fires for writes through the view.
    let audited: i64 = db
        .query_first("SELECT COUNT(*) FROM audit WHERE n = -9000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(audited, 1);
    assert!(p.run(&["status"]).stdout.contains("expanded (open"));
    // A second breaking change on the table, under either name, is refused (exit 11), twice.
    for sql in [
        format!("ALTER TABLE {b} RENAME COLUMN note TO remark;\n"),
        format!("ALTER TABLE {a} DROP COLUMN note;\n"),
        format!("RENAME TABLE {b} TO third;\n"),
    ] {
        p.write("3_second.sql", &format!("-- sluice:up\n{sql}"));
        for _ in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 11, "{sql}: {r:?}");
            assert!(r.stderr.contains("is expanded on the same table"), "{r:?}");
        }
        std::fs::remove_file(p.migration_path("3_second.sql")).unwrap();
    }

    // The rollout is done: the old version stops; complete runs while the new one writes.
    stop_old.store(true, Ordering::SeqCst);
    let old = old.await.unwrap();
    not_completed.store(false, Ordering::SeqCst);
    let at_complete = new_ops.load(Ordering::SeqCst);
    ok(
        &wait_bounded(p.spawn(&["complete"]), 120, "sluice complete"),
        "complete",
    );
    wait_ops(&new_ops, at_complete + 200).await;
    stop_new.store(true, Ordering::SeqCst);
    let new = new.await.unwrap();
    eprintln!(
        "{}: expand under load {expand_ms} ms; old version {} ops, new version {} ops",
        case.what,
        old_ops.load(Ordering::SeqCst),
        new_ops.load(Ordering::SeqCst)
    );
    assert_eq!(
        old.errors,
        Vec::<String>::new(),
        "{}: old version",
        case.what
    );
    assert_eq!(
        new.errors,
        Vec::<String>::new(),
        "{}: new version",
        case.what
    );
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    assert_eq!(kind(&mut db, case.old).await, None, "the view is gone");
    assert!(old.written.len() > 50 && new.written.len() > 50);

    // The rows are what both versions wrote, applied to one table.
    let mut want: Rows = (1..=ROWS)
        .map(|id| (id, Some((format!("s{id}"), id))))
        .collect();
    want.extend(old.written);
    want.extend(new.written);
    want.insert(-9000000, Some(("upsert".into(), -1)));
    want.insert(-9000001, Some(("replaced".into(), -2)));
    let want: BTreeMap<i64, (String, i64)> = want
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
    let got: BTreeMap<i64, (String, i64)> = db
        .query::<(i64, String, i64), _>(format!("SELECT id, name, note FROM {b}"))
        .await
        .unwrap()
        .into_iter()
        .map(|(id, s, n)| (id, (s, n)))
        .collect();
    assert_eq!(got.len(), want.len(), "{}", case.what);
    assert!(got == want, "{}: rows differ from the writes", case.what);

    // The schema equals the rename as written (a twin database).
    let (_twin, mut tdb) = as_written_twin(&[
        ("1_create.sql", case.create().as_str()),
        ("2_rename.sql", case.migration().as_str()),
    ])
    .await;
    assert_eq!(
        schema(&mut db, case.new).await,
        schema(&mut tdb, case.new).await,
        "{}",
        case.what
    );
    // complete again: nothing expanded.
    let again = p.run(&["complete"]);
    ok(&again, "complete again");
    assert!(again.stderr.contains("nothing is expanded"), "{again:?}");
}

/// `plan` shows both phases and what each version sees; rollback (run twice) restores `SHOW CREATE
/// TABLE` exactly (with its counter), keeping what the new version wrote; then `up --complete`.
#[tokio::test]
async fn plan_shows_both_phases_and_rollback_restores_the_table_exactly() {
    for case in CASES {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = schema(&mut db, case.old).await;
        let exact = show_create(&mut db, case.old, true).await;
        p.write("2_rename.sql", &case.migration());
        let plan = p.run(&["plan"]);
        ok(&plan, "plan");
        for want in [
            "CREATE OR REPLACE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW",
            "RENAME TABLE",
            "sluice complete",
            "sluice rollback",
            "expanded (after `sluice up`)",
        ] {
            assert!(plan.stdout.contains(want), "{want}: {}", plan.stdout);
        }
        // plan changes nothing.
        assert_eq!(schema(&mut db, case.old).await, before);
        ok(&p.run(&["up"]), "expand");
        db.query_drop(format!(
            "UPDATE {} SET name = 'via-new' WHERE id = 4",
            q(case.new)
        ))
        .await
        .unwrap();
        for _ in 0..2 {
            ok(&p.run(&["rollback"]), "rollback");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
            assert_eq!(schema(&mut db, case.old).await, before, "{}", case.what);
            assert_eq!(show_create(&mut db, case.old, true).await, exact);
        }
        let got: String = db
            .query_first(format!("SELECT name FROM {} WHERE id = 4", q(case.old)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, "via-new");
        ok(&p.run(&["up", "--complete"]), "up --complete");
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
        assert_eq!(kind(&mut db, case.old).await, None);
        assert_eq!(kind(&mut db, case.new).await.as_deref(), Some("BASE TABLE"));
    }
}

/// kill -9 before each expand step, after the last (unrecorded), inside the first step (its
/// placeholder left behind), and at complete's and rollback's commit: each rerun converges
/// (twice), to the as-written twin or to exactly the table before.
#[tokio::test]
async fn a_kill_at_every_point_converges_on_rerun() {
    let case = &CASES[1];
    let points = [
        "expand-step-0",
        "expand-step-1",
        "inside-step-0",
        "expand-unrecorded",
    ];
    let (_twin, mut tdb) = as_written_twin(&[
        ("1_create.sql", case.create().as_str()),
        ("2_rename.sql", case.migration().as_str()),
    ])
    .await;
    let renamed = schema(&mut tdb, case.new).await;
    for point in points {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = schema(&mut db, case.old).await;
        p.write("2_rename.sql", &case.migration());
        let at = if point == "inside-step-0" {
            "expand-step-1"
        } else {
            point
        };
        let killed: Run = p
            .command(&["up"])
            .env("SLUICE_CRASH_AT", at)
            .output()
            .unwrap()
            .into();
        assert_ne!(killed.code, 0, "{point}: {killed:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("interrupted"), "{point}");
        if point == "inside-step-0" {
            // As a kill between the placeholder and the view leaves it: the marked placeholder.
            db.query_drop(format!(
                "CREATE TABLE {} (id int) COMMENT 'sluice: placeholder for the stand-in view of {}'",
                q(case.new),
                case.old
            ))
            .await
            .unwrap();
        }
        // The old name works at every kill point.
        db.query_drop(format!(
            "UPDATE {} SET name = 'after-kill' WHERE id = 5",
            q(case.old)
        ))
        .await
        .unwrap();
        if point == "expand-step-1" {
            // An interrupted expand rolled back (twice): exactly as before.
            for _ in 0..2 {
                ok(&p.run(&["rollback"]), "rollback of the interrupted expand");
                assert_eq!(schema(&mut db, case.old).await, before, "{point}");
            }
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
        }
        ok(&p.run(&["up"]), &format!("{point}: rerun"));
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{point}");
        assert_eq!(kind(&mut db, case.old).await.as_deref(), Some("VIEW"));
        if point == "expand-step-0" {
            // Killed rollback at its commit, then rerun (twice): exactly as before.
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
                assert_eq!(schema(&mut db, case.old).await, before);
            }
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
        // The view is gone: a rollback now is refused (twice), nothing changes.
        for _ in 0..2 {
            let r = p.run(&["rollback"]);
            assert_ne!(r.code, 0, "{r:?}");
            assert!(r.all().contains("is gone already"), "{r:?}");
        }
        ok(&p.run(&["complete"]), "complete rerun");
        ok(&p.run(&["complete"]), "complete again");
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
        assert_eq!(schema(&mut db, case.new).await, renamed, "{point}");
        let v: String = db
            .query_first(format!("SELECT name FROM {} WHERE id = 5", q(case.new)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, "after-kill", "{point}");
    }
}

/// What a view cannot stand in for, and what the statement as written would fail on, is refused
/// (exit 2) with the cause, before anything changes: the migration stays pending, the database as
/// it was. Twice.
#[tokio::test]
async fn what_a_view_cannot_stand_in_for_is_refused_before_anything_changes() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY)",
            "RENAME TABLE t TO u",
            "Table 'u' already exists",
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, secret int INVISIBLE)",
            "RENAME TABLE t TO u",
            "secret are INVISIBLE",
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY) WITH SYSTEM VERSIONING",
            "ALTER TABLE t RENAME TO u",
            "system-versioned",
        ),
        (
            "CREATE TABLE base (id int PRIMARY KEY); CREATE VIEW t AS SELECT id FROM base",
            "RENAME TABLE t TO u",
            "t is a view",
        ),
    ];
    for (setup, rename, why) in cases {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &format!("-- sluice:up\n{setup};\n"));
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = (names(&mut db).await, describe(&mut db, "t").await);
        p.write("2_rename.sql", &format!("-- sluice:up\n{rename};\n"));
        for round in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 2, "{rename} round {round}: {r:?}");
            assert!(r.stderr.contains(why), "{rename}: {r:?}");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{rename}");
            let now = (names(&mut db).await, describe(&mut db, "t").await);
            assert_eq!(now, before, "{rename}");
        }
    }
}

/// A rename the phases cannot carry alone (two pairs in one RENAME TABLE, a rename with other
/// clauses) is refused (exit 11) with the fix, before anything runs; twice.
#[tokio::test]
async fn a_rename_mixed_with_more_is_refused() {
    for rename in [
        "RENAME TABLE t TO u, v TO w",
        "ALTER TABLE t ADD COLUMN x int, RENAME TO u",
    ] {
        let p = Project::new(Server::MariaDb).await;
        p.write(
            "1_create.sql",
            "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY);\nCREATE TABLE v (id int PRIMARY KEY);\n",
        );
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = (names(&mut db).await, describe(&mut db, "t").await);
        p.write("2_rename.sql", &format!("-- sluice:up\n{rename};\n"));
        for round in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 11, "{rename} round {round}: {r:?}");
            assert!(r.stderr.contains("RENAME TABLE a TO b"), "{r:?}");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
            let now = (names(&mut db).await, describe(&mut db, "t").await);
            assert_eq!(now, before, "{rename}");
        }
    }
}

/// A privilege granted on the table by name does not move with a rename (nor apply to the table
/// behind the view): refused (exit 2) with the grantee, twice, nothing changed. Another user's
/// grant (seen when sluice's login may read `mysql.tables_priv`) and the login's own (seen in
/// `information_schema` without it).
#[tokio::test]
async fn a_privilege_granted_on_the_table_by_name_is_refused() {
    for other in [true, false] {
        let p = Project::new(Server::MariaDb).await;
        p.write(
            "1_create.sql",
            "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY);\n",
        );
        ok(&p.run(&["up"]), "create");
        let login = p.db.name.clone();
        let user = if other {
            format!("{login}_ro")
        } else {
            login.clone()
        };
        let mut su = Conn::from_url(&p.db.su_url).await.unwrap();
        if other {
            su.query_drop(format!("CREATE USER '{user}'@'%'"))
                .await
                .unwrap();
            for t in ["tables_priv", "columns_priv"] {
                su.query_drop(format!("GRANT SELECT ON mysql.{t} TO '{login}'@'%'"))
                    .await
                    .unwrap();
            }
        }
        su.query_drop(format!("GRANT SELECT ON `{login}`.t TO '{user}'@'%'"))
            .await
            .unwrap();
        p.write("2_rename.sql", "-- sluice:up\nRENAME TABLE t TO u;\n");
        let mut db = p.db.my().await;
        for round in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 2, "round {round}: {r:?}");
            assert!(
                r.stderr
                    .contains("privileges are granted on the table by name")
                    && r.stderr.contains(&format!("'{user}'@'%'")),
                "{r:?}"
            );
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
            assert_eq!(kind(&mut db, "t").await.as_deref(), Some("BASE TABLE"));
            assert_eq!(kind(&mut db, "u").await, None);
        }
        if other {
            su.query_drop(format!("DROP USER '{user}'@'%'"))
                .await
                .unwrap();
        }
    }
}

/// Renames no running version notices run as written, as before: a swap that gives the old name
/// to another table in the same statement, and a table created earlier in the same run.
#[tokio::test]
async fn a_swap_and_a_table_of_the_run_run_as_written() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY);\nCREATE TABLE t_new (id int PRIMARY KEY, x int);\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write(
        "2_swap.sql",
        "-- sluice:up\nRENAME TABLE t TO t_old, t_new TO t;\n",
    );
    p.write(
        "3_fresh.sql",
        "-- sluice:up\nCREATE TABLE f (id int PRIMARY KEY);\n",
    );
    p.write("4_fresh_rename.sql", "-- sluice:up\nRENAME TABLE f TO g;\n");
    ok(&p.run(&["up"]), "up");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    assert_eq!(state_of(&p, 4).as_deref(), Some("applied"));
    let mut db = p.db.my().await;
    assert_eq!(names(&mut db).await, ["g", "t", "t_old"]);
}

/// Old-version load for [`the_old_name_never_goes_missing`]: errors, operations, the longest
/// statement (ms).
async fn hammer(url: String, stop: Arc<AtomicBool>) -> (Vec<String>, u64, u128) {
    let mut db = Conn::from_url(url).await.unwrap();
    db.query_drop("SET SESSION max_statement_time = 20, lock_wait_timeout = 20")
        .await
        .unwrap();
    let (mut errors, mut ops, mut longest) = (Vec::new(), 0u64, 0u128);
    while !stop.load(Ordering::SeqCst) {
        let clock = std::time::Instant::now();
        let r: Result<(), mysql_async::Error> = async {
            db.query_drop("INSERT INTO t (v) VALUES (1)").await?;
            let id = db.last_insert_id().unwrap_or(0);
            db.exec_drop("UPDATE t SET v = v + 1 WHERE id = ?", (id,))
                .await?;
            let v: Option<i64> = db.exec_first("SELECT v FROM t WHERE id = ?", (id,)).await?;
            assert_eq!(v, Some(2), "row {id}");
            Ok(())
        }
        .await;
        longest = longest.max(clock.elapsed().as_millis());
        match r {
            Ok(()) => ops += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    (errors, ops, longest)
}

/// Four old-version connections insert, update and read through `t` while the table goes
/// through five expand → rollback cycles: not one error (no 1146 at any moment). The control, the
/// same load over a rename and a `CREATE VIEW` 5 ms apart, does see the name missing: the load
/// would catch a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_old_name_never_goes_missing() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (id bigint AUTO_INCREMENT PRIMARY KEY, v int NOT NULL DEFAULT 0);\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write("2_rename.sql", "-- sluice:up\nRENAME TABLE t TO u;\n");
    let load = |stop: &Arc<AtomicBool>| {
        (0..4)
            .map(|_| tokio::spawn(hammer(p.db.url.clone(), stop.clone())))
            .collect::<Vec<_>>()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&stop);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for _ in 0..5 {
        ok(&p.run(&["up"]), "expand");
        ok(&p.run(&["rollback"]), "rollback");
    }
    stop.store(true, Ordering::SeqCst);
    let (mut ops, mut longest) = (0, 0);
    for c in clients {
        let (errors, n, l) = c.await.unwrap();
        assert_eq!(errors, Vec::<String>::new());
        ops += n;
        longest = longest.max(l);
    }
    eprintln!(
        "five expand/rollback cycles under load: {ops} operations, 0 errors, longest {longest} ms"
    );
    assert!(ops > 100, "{ops}");

    // The control: the name is missing between two statements.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&stop);
    let mut db = p.db.my().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for _ in 0..10 {
        db.query_drop("RENAME TABLE t TO u").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        db.query_drop("CREATE VIEW t AS SELECT id, v FROM u")
            .await
            .unwrap();
        db.query_drop("DROP VIEW t; RENAME TABLE u TO t")
            .await
            .unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let mut missing = 0;
    for c in clients {
        let (errors, _, _) = c.await.unwrap();
        missing += errors.iter().filter(|e| e.contains("1146")).count();
    }
    assert!(missing > 0, "the control saw no missing name");
}

/// A failed expand removes what it made (here its placeholder: the view cannot be created
/// without CREATE VIEW) and records `failed`; the table is as before. The rerun, once the grant
/// is back, cleans up again and expands.
#[tokio::test]
async fn a_failed_expand_changes_nothing_and_its_rerun_expands() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (id int AUTO_INCREMENT PRIMARY KEY, v int);\nINSERT INTO t (v) VALUES (1), (2);\n",
    );
    ok(&p.run(&["up"]), "create");
    let mut db = p.db.my().await;
    let before = (names(&mut db).await, describe(&mut db, "t").await);
    p.write("2_rename.sql", "-- sluice:up\nRENAME TABLE t TO u;\n");
    let login = p.db.name.clone();
    let mut su = Conn::from_url(&p.db.su_url).await.unwrap();
    su.query_drop(format!(
        "REVOKE CREATE VIEW ON `{login}`.* FROM '{login}'@'%'"
    ))
    .await
    .unwrap();
    for round in 0..2 {
        let r = p.run(&["up"]);
        assert_ne!(r.code, 0, "round {round}: {r:?}");
        assert!(
            r.stderr.contains("CREATE VIEW")
                && r.stderr
                    .contains("sluice removed what the expand phase had made"),
            "{r:?}"
        );
        assert_eq!(state_of(&p, 2).as_deref(), Some("failed"));
        let now = (names(&mut db).await, describe(&mut db, "t").await);
        assert_eq!(now, before, "round {round}");
    }
    su.query_drop(format!("GRANT CREATE VIEW ON `{login}`.* TO '{login}'@'%'"))
        .await
        .unwrap();
    ok(&p.run(&["up"]), "rerun");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(kind(&mut db, "t").await.as_deref(), Some("VIEW"));
    let n: i64 = db
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 2);
}

/// The atomic RENAME waits for the table's metadata lock at most lock_wait_timeout, steps back and
/// retries: a transaction that holds the table keeps the expand waiting (not failing), and once it
/// ends the expand finishes.
#[tokio::test]
async fn the_swap_waits_for_the_metadata_lock_and_retries() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY, v int);\nINSERT INTO t VALUES (1, 1);\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write("2_rename.sql", "-- sluice:up\nRENAME TABLE t TO u;\n");
    let mut holder = p.db.my().await;
    holder.query_drop("START TRANSACTION").await.unwrap();
    holder.query_drop("SELECT * FROM t").await.unwrap();
    let mut child = p.spawn(&["up", "--lock-timeout", "1000"]);
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    // Still waiting, neither failed nor done; the old name is still the table.
    assert!(child.try_wait().unwrap().is_none());
    let mut db = p.db.my().await;
    assert_eq!(kind(&mut db, "t").await.as_deref(), Some("BASE TABLE"));
    holder.query_drop("COMMIT").await.unwrap();
    let up = wait_bounded(child, 120, "sluice up");
    ok(&up, "expand after the lock");
    assert!(
        up.stderr
            .contains("waited 1000 ms for its lock on t and stepped back")
            && up.stderr.contains("retry 1 in"),
        "{up:?}"
    );
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(kind(&mut db, "t").await.as_deref(), Some("VIEW"));
}
