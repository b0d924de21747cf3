//! Issue 14 on MariaDB: `ALTER TABLE t RENAME COLUMN a TO b` runs as expand (`sluice up`: b beside
//! a, kept equal by triggers, backfilled, its keys rebuilt) → both names work → contract (`sluice
//! complete`), or rollback.
//!
//! An old-version client (old name) and a new-version client (new name) write and read
//! concurrently from before expand until after complete: 0 errors on both, every write by either
//! visible through the other name, final rows equal to what the writes give applied to one column,
//! and `SHOW CREATE TABLE` equal to a twin where the rename ran as written. Rollback restores
//! `SHOW CREATE TABLE` exactly, a kill at every step converges on rerun, and what the triggers
//! cannot keep equal is refused before anything changes (each command twice).

mod common;

use common::mariadb_two_versions::{
    assert_same_as_twin, ok, q, run_version, show_create, state_of, wait_ops, Version,
};
use common::{wait_bounded, Project, Run};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_testkit::Server;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const ROWS: i64 = 3000;

/// One column shape: the table `t` has `id bigint AUTO_INCREMENT PRIMARY KEY`, the column, `note
/// int` and the keys in `keys` (listed last, so that the copies keep their place).
struct Case {
    name: &'static str,
    column: &'static str,
    keys: &'static str,
    old: &'static str,
    new: &'static str,
    /// What an INSERT that leaves the column out stores; None: NULL, or (not_null) not allowed.
    default: Option<&'static str>,
    not_null: bool,
    unique: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "varchar NOT NULL with default, comment and index",
        column: "name varchar(40) NOT NULL DEFAULT 'anon' COMMENT 'who'",
        keys: ", KEY t_note (note), KEY t_name (name)",
        old: "name",
        new: "full_name",
        default: Some("anon"),
        not_null: true,
        unique: false,
    },
    Case {
        name: "nullable unique bigint, new name with a space",
        column: "code bigint NULL",
        keys: ", UNIQUE KEY t_code (code, note)",
        old: "code",
        new: "Ref Code",
        default: None,
        not_null: false,
        unique: true,
    },
    Case {
        // An INSERT that leaves a NOT NULL column without default out fails in strict mode: the
        // new version must never meet the new column without its trigger.
        name: "varchar NOT NULL without default",
        column: "email varchar(60) NOT NULL",
        keys: "",
        old: "email",
        new: "mail",
        default: None,
        not_null: true,
        unique: false,
    },
];

impl Case {
    fn table(&self, name: &str) -> String {
        format!(
            "CREATE TABLE {name} (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, {}, note int{})",
            self.column, self.keys
        )
    }

    fn create(&self) -> String {
        let seed = if self.unique {
            "g.seq"
        } else {
            "CONCAT('s', g.seq)"
        };
        format!(
            "-- sluice:up\n{};\nINSERT INTO t ({}, note) SELECT {seed}, g.seq FROM seq_1_to_{ROWS} g;\n-- sluice:down\nDROP TABLE t;\n",
            self.table("t"),
            q(self.old),
        )
    }

    fn rename(&self) -> String {
        format!(
            "-- sluice:up\nALTER TABLE t RENAME COLUMN {} TO {};\n-- sluice:down\nALTER TABLE t RENAME COLUMN {} TO {};\n",
            q(self.old),
            q(self.new),
            q(self.new),
            q(self.old)
        )
    }

    fn value(&self, n: u64) -> String {
        if self.unique {
            (1_000_000 + n).to_string()
        } else {
            format!("v{n}")
        }
    }

    fn seeded(&self, id: i64) -> String {
        if self.unique {
            id.to_string()
        } else {
            format!("s{id}")
        }
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

struct ClientResult {
    errors: Vec<String>,
    /// id → what this client last wrote (None: NULL).
    written: BTreeMap<i64, Option<String>>,
}

/// One application version: inserts (every 7th leaves the column out where it may) and updates
/// of its own rows through its own name, each read back through its name and, while both exist,
/// through the other.
struct Writer {
    mine: String,
    other: String,
    cross: Arc<AtomicBool>,
    case: &'static Case,
    counter: Arc<AtomicU64>,
    owned: Vec<i64>,
    written: BTreeMap<i64, Option<String>>,
}

impl Version for Writer {
    async fn round(&mut self, db: &mut Conn, i: u64, errors: &mut Vec<String>) -> bool {
        let case = self.case;
        let (mine, other) = (&self.mine, &self.other);
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let (id, want) = if i.is_multiple_of(3) {
            let omit = i.is_multiple_of(7) && !(case.not_null && case.default.is_none());
            let r = if omit {
                db.exec_drop("INSERT INTO t (note) VALUES (?)", (n,)).await
            } else {
                db.exec_drop(
                    format!("INSERT INTO t ({mine}, note) VALUES (?, ?)"),
                    (case.value(n), n),
                )
                .await
            };
            match r {
                Ok(()) => {
                    let id = db.last_insert_id().unwrap() as i64;
                    self.owned.push(id);
                    let want = if omit {
                        case.default.map(str::to_string)
                    } else {
                        Some(case.value(n))
                    };
                    (id, want)
                }
                Err(e) => {
                    errors.push(format!("insert through {mine}: {e}"));
                    return false;
                }
            }
        } else {
            let id = self.owned[(n as usize * 7919) % self.owned.len()];
            let null = !case.not_null && i.is_multiple_of(11);
            let r = if null {
                db.exec_drop(format!("UPDATE t SET {mine} = NULL WHERE id = ?"), (id,))
                    .await
            } else {
                db.exec_drop(
                    format!("UPDATE t SET {mine} = ? WHERE id = ?"),
                    (case.value(n), id),
                )
                .await
            };
            match r {
                Ok(()) => (id, (!null).then(|| case.value(n))),
                Err(e) => {
                    errors.push(format!("update through {mine}: {e}"));
                    return false;
                }
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
                .exec_first::<Option<String>, _, _>(
                    format!("SELECT CAST({name} AS CHAR) FROM t WHERE id = ?"),
                    (id,),
                )
                .await
            {
                Ok(Some(got)) if got == want => {}
                Ok(got) => errors.push(format!(
                    "row {id} through {name}: {got:?}, written {want:?} through {mine}"
                )),
                Err(e) => errors.push(format!("read through {name}: {e}")),
            }
        }
        true
    }
}

async fn run_client(
    c: Client,
    url: String,
    case: &'static Case,
    counter: Arc<AtomicU64>,
) -> ClientResult {
    let writer = Writer {
        mine: q(&c.mine),
        other: q(&c.other),
        cross: c.cross,
        case,
        counter,
        owned: (1..=ROWS).filter(|i| i % 2 == c.parity).collect(),
        written: BTreeMap::new(),
    };
    let (writer, errors) = run_version(writer, url, c.stop, c.ops).await;
    ClientResult {
        errors,
        written: writer.written,
    }
}

/// Renames `twin`'s column as written and asserts `t` (renamed by sluice) now has the same
/// `SHOW CREATE TABLE`.
async fn twin_renamed_equals_t(c: &mut Conn, old: &str, new: &str, what: &str) {
    c.query_drop(format!(
        "ALTER TABLE twin RENAME COLUMN {} TO {}",
        q(old),
        q(new)
    ))
    .await
    .unwrap();
    assert_same_as_twin(c, "t", "twin", what).await;
}

async fn count(c: &mut Conn, sql: &str) -> i64 {
    c.query_first::<i64, _>(sql).await.unwrap().unwrap_or(0)
}

async fn triggers(c: &mut Conn) -> i64 {
    count(
        c,
        "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 't'",
    )
    .await
}

/// Every row holds the same value under both names.
async fn assert_equal_names(c: &mut Conn, case: &Case) {
    let n = count(
        c,
        &format!(
            "SELECT COUNT(*) FROM t WHERE NOT ({} <=> {})",
            q(case.old),
            q(case.new)
        ),
    )
    .await;
    assert_eq!(n, 0, "{}: rows whose two names differ", case.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_and_new_versions_run_concurrently_through_expand_and_complete() {
    for case in CASES {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        p.write("2_rename.sql", &case.rename());
        let mut db = p.db.my().await;
        // The twin: the same table, renamed as written at the end.
        db.query_drop(case.table("twin")).await.unwrap();

        let counter = Arc::new(AtomicU64::new(0));
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
            case,
            counter.clone(),
        ));
        wait_ops(&old_ops, 100).await;
        let plan = p.run(&["plan"]);
        assert!(plan.stdout.contains("expand"), "{plan:?}");
        let clock = std::time::Instant::now();
        let up = wait_bounded(p.spawn(&["up"]), 300, "sluice up");
        let expand_ms = clock.elapsed().as_millis();
        ok(&up, "expand");
        assert!(up.stderr.contains("expanded"), "{up:?}");
        assert_eq!(
            state_of(&p, 2).as_deref(),
            Some("expanded"),
            "{}",
            case.name
        );
        assert_eq!(triggers(&mut db).await, 2);
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
            case,
            counter.clone(),
        ));
        wait_ops(&new_ops, 300).await;
        wait_ops(&old_ops, before_new + 300).await;
        assert_equal_names(&mut db, case).await;
        assert!(p.run(&["status"]).stdout.contains("expanded (open"));
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
            case.name,
            old_ops.load(Ordering::SeqCst),
            new_ops.load(Ordering::SeqCst)
        );
        assert_eq!(
            old.errors,
            Vec::<String>::new(),
            "{}: old version",
            case.name
        );
        assert_eq!(
            new.errors,
            Vec::<String>::new(),
            "{}: new version",
            case.name
        );
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
        assert_eq!(triggers(&mut db).await, 0);

        let mut want: BTreeMap<i64, Option<String>> =
            (1..=ROWS).map(|id| (id, Some(case.seeded(id)))).collect();
        want.extend(old.written);
        want.extend(new.written);
        let got: BTreeMap<i64, Option<String>> = db
            .query::<(i64, Option<String>), _>(format!(
                "SELECT id, CAST({} AS CHAR) FROM t",
                q(case.new)
            ))
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(got.len(), want.len(), "{}", case.name);
        assert!(got == want, "{}: rows differ from the writes", case.name);
        twin_renamed_equals_t(&mut db, case.old, case.new, case.name).await;
        // complete again: nothing expanded.
        ok(&p.run(&["complete"]), "complete again");
    }
}

/// Rollback (also run twice) restores `SHOW CREATE TABLE` exactly; the rows keep what either
/// version wrote through the old name.
#[tokio::test]
async fn rollback_restores_the_table_exactly() {
    for case in CASES {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = show_create(&mut db, "t").await;
        p.write("2_rename.sql", &case.rename());
        let expand = p.run(&["up"]);
        ok(&expand, "expand");
        // The held lock is named as MariaDB takes it, not in PostgreSQL's modes.
        assert!(
            expand.all().contains("held the table's write lock for")
                && !expand.all().contains("ACCESS EXCLUSIVE"),
            "{expand:?}"
        );
        // A write through the new name is kept through the old one.
        db.query_drop(format!(
            "UPDATE t SET {} = {} WHERE id = 4",
            q(case.new),
            if case.unique { "777" } else { "'via-new'" }
        ))
        .await
        .unwrap();
        for _ in 0..2 {
            ok(&p.run(&["rollback"]), "rollback");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
            assert_eq!(show_create(&mut db, "t").await, before, "{}", case.name);
            assert_eq!(triggers(&mut db).await, 0);
        }
        let got: Option<String> = db
            .query_first(format!(
                "SELECT CAST({} AS CHAR) FROM t WHERE id = 4",
                q(case.old)
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got.as_deref(),
            Some(if case.unique { "777" } else { "via-new" })
        );
        // Expanded again after the rollback, then completed in one go.
        ok(&p.run(&["up", "--complete"]), "up --complete");
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
        db.query_drop(case.table("twin")).await.unwrap();
        twin_renamed_equals_t(&mut db, case.old, case.new, case.name).await;
    }
}

/// kill -9 before every expand step, after the last (unrecorded), and at complete's and
/// rollback's commit: the rerun converges (expanded, then applied or pending, the table as the
/// as-written twin or as before).
#[tokio::test]
async fn a_kill_at_every_step_converges_on_rerun() {
    let case = &CASES[0];
    let points = [
        "expand-step-0",
        "expand-step-1",
        "expand-step-2",
        "expand-unrecorded",
    ];
    for point in points {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = show_create(&mut db, "t").await;
        p.write("2_rename.sql", &case.rename());
        let killed: Run = p
            .command(&["up"])
            .env("SLUICE_CRASH_AT", point)
            .output()
            .unwrap()
            .into();
        assert_ne!(killed.code, 0, "{point}: {killed:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("interrupted"), "{point}");
        db.query_drop("UPDATE t SET name = 'after-kill' WHERE id = 5")
            .await
            .unwrap();
        ok(&p.run(&["up"]), &format!("{point}: rerun"));
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{point}");
        assert_equal_names(&mut db, case).await;
        assert_eq!(triggers(&mut db).await, 2, "{point}");
        if point == "expand-step-1" {
            // Killed rollback, then rerun: as before the migration.
            let killed: Run = p
                .command(&["rollback"])
                .env("SLUICE_CRASH_AT", "before-commit")
                .output()
                .unwrap()
                .into();
            assert_ne!(killed.code, 0, "{killed:?}");
            ok(&p.run(&["rollback"]), "rollback rerun");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
            assert_eq!(show_create(&mut db, "t").await, before);
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
        // The old column is gone: a rollback now is refused, nothing changes.
        let r = p.run(&["rollback"]);
        assert_ne!(r.code, 0, "{r:?}");
        assert!(r.all().contains("is gone already"), "{r:?}");
        ok(&p.run(&["complete"]), "complete rerun");
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
        assert_eq!(triggers(&mut db).await, 0);
        db.query_drop(case.table("twin")).await.unwrap();
        twin_renamed_equals_t(&mut db, "name", "full_name", "kill rerun").await;
        let v: String = db
            .query_first("SELECT full_name FROM t WHERE id = 5")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, "after-kill", "{point}");
    }
}

/// A `complete` over an expand phase that is partly gone (a rollback killed at its commit, after
/// it dropped the new column and the triggers; a trigger dropped by hand) would drop the old
/// column, which then holds the only copy of every value: refused (exit 11) naming what is gone
/// and the fix (rerun `sluice rollback`), the table and history unchanged, twice; the rollback
/// rerun converges on the table as before with the new version's write kept.
#[tokio::test]
async fn complete_refuses_an_expand_phase_a_cut_off_rollback_left_behind() {
    for case in CASES {
        for cut in ["rollback killed at its commit", "a trigger dropped"] {
            let what = format!("{}: {cut}", case.name);
            let p = Project::new(Server::MariaDb).await;
            p.write("1_create.sql", &case.create());
            ok(&p.run(&["up"]), "create");
            let mut db = p.db.my().await;
            let before = show_create(&mut db, "t").await;
            p.write("2_rename.sql", &case.rename());
            ok(&p.run(&["up"]), "expand");
            // The new version's write: only the old column keeps it once the new one is gone.
            db.query_drop(format!(
                "UPDATE t SET {} = {} WHERE id = 4",
                q(case.new),
                if case.unique { "777" } else { "'via-new'" }
            ))
            .await
            .unwrap();
            if cut == "a trigger dropped" {
                let name: String = db
                    .query_first("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 't' AND EVENT_MANIPULATION = 'UPDATE'")
                    .await
                    .unwrap()
                    .unwrap();
                db.query_drop(format!("DROP TRIGGER {}", q(&name)))
                    .await
                    .unwrap();
            } else {
                let killed: Run = p
                    .command(&["rollback"])
                    .env("SLUICE_CRASH_AT", "before-commit")
                    .output()
                    .unwrap()
                    .into();
                assert_ne!(killed.code, 0, "{what}: {killed:?}");
                assert!(
                    killed.stderr.contains("before-commit"),
                    "{what}: {killed:?}"
                );
            }
            assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{what}");
            let table = show_create(&mut db, "t").await;
            let mut first: Option<String> = None;
            for round in 0..2 {
                let r = p.run(&["complete"]);
                assert_eq!(r.code, 11, "{what} round {round}: {r:?}");
                assert!(
                    r.stderr.contains("run `sluice rollback` again"),
                    "{what}: {r:?}"
                );
                assert!(r.stderr.contains("would lose the data"), "{what}: {r:?}");
                if cut == "a trigger dropped" {
                    assert!(r.stderr.contains("trigger "), "{what}: {r:?}");
                } else {
                    assert!(
                        r.stderr.contains(&format!("column {}", case.new)),
                        "{what}: {r:?}"
                    );
                }
                assert_eq!(first.get_or_insert(r.stderr.clone()), &r.stderr, "{what}");
                assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{what}");
                assert_eq!(show_create(&mut db, "t").await, table, "{what}");
            }
            for _ in 0..2 {
                ok(&p.run(&["rollback"]), "rollback rerun");
                assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{what}");
                assert_eq!(show_create(&mut db, "t").await, before, "{what}");
                assert_eq!(triggers(&mut db).await, 0, "{what}");
            }
            let got: Option<String> = db
                .query_first(format!(
                    "SELECT CAST({} AS CHAR) FROM t WHERE id = 4",
                    q(case.old)
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                got.as_deref(),
                Some(if case.unique { "777" } else { "via-new" }),
                "{what}"
            );
        }
    }
}

/// A `complete` or `rollback` cut off at its commit leaves the migration recorded expanded with the
/// table between its two states (MariaDB cannot roll DDL back): status and drift must not send the
/// user to `drift --write-migration` (it would record sluice's own helpers as a migration whose
/// down part drops them), the capture is refused (exit 11, twice, no file), and rerunning the same
/// phase finishes it with no drift left.
#[tokio::test]
async fn drift_is_not_captured_after_a_cut_off_complete_or_rollback() {
    let case = &CASES[0];
    for phase in ["complete", "rollback"] {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        p.write("2_rename.sql", &case.rename());
        ok(&p.run(&["up"]), "expand");
        let killed: Run = p
            .command(&[phase])
            .env("SLUICE_CRASH_AT", "before-commit")
            .output()
            .unwrap()
            .into();
        assert_ne!(killed.code, 0, "{phase}: {killed:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{phase}");
        let files = || std::fs::read_dir(p.migration_path("")).unwrap().count();
        let before = files();
        let status = p.run(&["status"]);
        assert!(
            !status.stdout.contains("--write-migration"),
            "{phase}: {status:?}"
        );
        let drift = p.run(&["drift"]);
        assert_eq!(drift.code, 4, "{phase}: {drift:?}");
        assert!(
            !drift.stdout.contains("--write-migration"),
            "{phase}: {drift:?}"
        );
        assert!(drift.stdout.contains("is unfinished"), "{phase}: {drift:?}");
        for _ in 0..2 {
            let w = p.run(&["drift", "--write-migration"]);
            assert_eq!(w.code, 11, "{phase}: {w:?}");
            assert!(
                w.stderr.contains("not capturing drift while migration"),
                "{phase}: {w:?}"
            );
            assert_eq!(files(), before, "{phase}: no file written");
        }
        ok(&p.run(&[phase]), "the same phase again finishes it");
        ok(&p.run(&["drift"]), "no drift once finished");
    }
}

/// An index on the old name while the rename is expanded has no copy on the new column: a
/// migration that builds one is refused (exit 11, twice); one made by hand makes `complete` refuse
/// before anything (its ALTER would fail after the triggers are dropped, which MariaDB cannot roll
/// back), twice alike, the triggers and the table kept; once the index is made on the new name
/// instead, `complete` finishes.
#[tokio::test]
async fn complete_refuses_an_index_made_on_the_old_name_while_expanded() {
    for case in CASES {
        let what = case.name;
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        p.write("2_rename.sql", &case.rename());
        ok(&p.run(&["up"]), "expand");
        p.write(
            "3_index.sql",
            &format!(
                "-- sluice:up\nCREATE INDEX k_later ON t ({});\n-- sluice:down\nDROP INDEX k_later ON t;\n",
                q(case.old)
            ),
        );
        // As a migration it is refused before anything (exit 11), twice alike.
        let mut db = p.db.my().await;
        let table = show_create(&mut db, "t").await;
        for _ in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 11, "{what}: {r:?}");
            assert!(
                r.stderr.contains(&format!(
                    "builds an index on t.{} while migration 2_rename",
                    case.old
                )),
                "{what}: {r:?}"
            );
            assert!(
                r.stderr
                    .contains(&format!("name the new column `{}`", case.new)),
                "{what}: {r:?}"
            );
            assert_eq!(show_create(&mut db, "t").await, table, "{what}");
        }
        std::fs::remove_file(p.migration_path("3_index.sql")).unwrap();
        // Made by hand (outside sluice), complete refuses it.
        db.query_drop(format!("CREATE INDEX k_later ON t ({})", q(case.old)))
            .await
            .unwrap();
        let table = show_create(&mut db, "t").await;
        let mut first: Option<String> = None;
        for round in 0..2 {
            let r = p.run(&["complete"]);
            assert_eq!(r.code, 11, "{what} round {round}: {r:?}");
            assert!(
                r.stderr
                    .contains(&format!("index k_later on {} has no copy on", case.old)),
                "{what}: {r:?}"
            );
            assert!(!r.stderr.contains("cut off"), "{what}: {r:?}");
            assert_eq!(first.get_or_insert(r.stderr.clone()), &r.stderr, "{what}");
            assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{what}");
            assert_eq!(show_create(&mut db, "t").await, table, "{what}");
            assert_eq!(triggers(&mut db).await, 2, "{what}");
        }
        // What the message says: the index on the new name instead, then complete.
        p.write(
            "3_move.sql",
            &format!(
                "-- sluice:up\nDROP INDEX k_later ON t;\nCREATE INDEX k_later ON t ({});\n",
                q(case.new)
            ),
        );
        ok(&p.run(&["up"]), "index moved");
        ok(&p.run(&["complete"]), "complete");
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"), "{what}");
        assert_eq!(triggers(&mut db).await, 0, "{what}");
        let created = show_create(&mut db, "t").await;
        assert!(
            created.contains(&format!("KEY `k_later` (`{}`)", case.new)),
            "{what}: {created}"
        );
    }
}

/// A NOT NULL column without a default, of each kind of type: while expanded, both versions'
/// INSERT ... VALUES, INSERT ... SELECT and INSERT ... WITH leaving the other name out succeed (the
/// server checks NOT NULL before the trigger for the SELECT forms, so both columns carry a default
/// until the end) and every row has the value under both names; complete leaves the twin's table
/// (no default), rollback the table exactly as before.
#[tokio::test]
async fn a_not_null_column_without_default_takes_inserts_of_both_versions_in_every_form() {
    let types: &[(&str, &str)] = &[
        ("varchar(20)", "'x'"),
        ("int", "7"),
        ("datetime", "'2020-01-02 03:04:05'"),
        ("text", "'t'"),
        ("date", "'2021-01-01'"),
    ];
    let create = |name: &str, ty: &str| {
        format!("CREATE TABLE {name} (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, c {ty} NOT NULL COMMENT 'the c', note int);\n")
    };
    for (ty, v) in types {
        for end in ["complete", "rollback"] {
            let what = format!("{ty}: {end}");
            let p = Project::new(Server::MariaDb).await;
            p.write(
                "1_create.sql",
                &format!(
                    "{}INSERT INTO t (c, note) VALUES ({v}, 0);\n",
                    create("t", ty)
                ),
            );
            ok(&p.run(&["up"]), "create");
            let mut db = p.db.my().await;
            let before = show_create(&mut db, "t").await;
            p.write("2_rename.sql", "ALTER TABLE t RENAME COLUMN c TO d;\n");
            // The new column comes with its default in the same ALTER: no kill point between
            // them where the old version's INSERTs (which leave d out) would fail with 1364.
            let dry = p.run(&["up", "--dry-run"]);
            ok(&dry, "dry run");
            assert!(
                // One statement of the step (its statements are joined with "; ").
                dry.stdout.split("; ").any(|st| st.contains("ADD COLUMN")
                    && st.contains("ALTER COLUMN `c` SET DEFAULT")
                    && st.contains("ALTER COLUMN `d` SET DEFAULT")),
                "{what}: {dry:?}"
            );
            ok(&p.run(&["up"]), "expand");
            for (i, w) in [
                format!("INSERT INTO t (note, c) VALUES (1, {v})"),
                format!("INSERT INTO t (note, c) SELECT 2, {v}"),
                format!("INSERT INTO t (note, c) WITH x AS (SELECT {v} AS s) SELECT 3, s FROM x"),
                format!("INSERT INTO t (note, d) VALUES (4, {v})"),
                format!("INSERT INTO t (note, d) SELECT 5, {v}"),
                format!("INSERT INTO t (note, d) WITH x AS (SELECT {v} AS s) SELECT 6, s FROM x"),
            ]
            .iter()
            .enumerate()
            {
                if let Err(e) = db.query_drop(w).await {
                    panic!("{what}: write {i} `{w}`: {e}");
                }
            }
            assert_eq!(
                count(
                    &mut db,
                    &format!("SELECT COUNT(*) FROM t WHERE c = {v} AND d = {v}")
                )
                .await,
                7,
                "{what}"
            );
            ok(&p.run(&[end]), end);
            if end == "complete" {
                db.query_drop(create("twin", ty)).await.unwrap();
                db.query_drop("ALTER TABLE twin RENAME COLUMN c TO d")
                    .await
                    .unwrap();
                assert_same_as_twin(&mut db, "t", "twin", &what).await;
                assert_eq!(
                    count(&mut db, &format!("SELECT COUNT(*) FROM t WHERE d = {v}")).await,
                    7,
                    "{what}"
                );
            } else {
                assert_eq!(show_create(&mut db, "t").await, before, "{what}");
                assert_eq!(
                    count(&mut db, &format!("SELECT COUNT(*) FROM t WHERE c = {v}")).await,
                    7,
                    "{what}"
                );
            }
            assert_eq!(triggers(&mut db).await, 0, "{what}");
            assert_eq!(
                count(
                    &mut db,
                    "SELECT COUNT(*) FROM sluice_meta WHERE k LIKE 'drop 2 %'"
                )
                .await,
                0,
                "{what}: the note is forgotten"
            );
        }
    }
}

/// A rename of the letter case only (`Status` to `status`): MariaDB compares column names
/// case-insensitively, so nothing breaks; lint does not flag it, plan shows it instant with no
/// failure, and `up` runs it as
/// written (applied, not expanded), queries naming either spelling working before and after.
#[tokio::test]
async fn a_letter_case_only_rename_runs_as_written() {
    for (from, to) in [("Status", "status"), ("code", "CODE")] {
        let p = Project::new(Server::MariaDb).await;
        p.write(
            "1_create.sql",
            &format!("CREATE TABLE t (id int PRIMARY KEY, `{from}` varchar(10) NOT NULL);\nINSERT INTO t VALUES (1, 'a');\n"),
        );
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        p.write(
            "2_case.sql",
            &format!("ALTER TABLE t RENAME COLUMN `{from}` TO `{to}`;\n"),
        );
        let lint = p.run(&["lint"]);
        assert!(!lint.all().contains("rename-column"), "{to}: {lint:?}");
        let plan = p.run(&["plan"]);
        assert_eq!(plan.code, 0, "{to}: {plan:?}");
        assert!(
            plan.all().contains("instant") && !plan.all().contains("fail"),
            "{to}: {plan:?}"
        );
        for _ in 0..2 {
            ok(&p.run(&["up"]), "up");
            assert_eq!(state_of(&p, 2).as_deref(), Some("applied"), "{to}");
        }
        assert!(show_create(&mut db, "t")
            .await
            .contains(&format!("`{to}` varchar(10)")));
        assert_eq!(triggers(&mut db).await, 0);
        for name in [from, to] {
            let v: String = db
                .query_first(format!("SELECT `{name}` FROM t WHERE id = 1"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(v, "a");
        }
    }
}

/// What the triggers cannot keep equal is refused (exit 2) with the cause and the fix, before
/// anything changes: the migration stays pending, the table as it was. Twice.
#[tokio::test]
async fn what_cannot_be_kept_equal_is_refused_before_anything_changes() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE t (id int PRIMARY KEY, pid int, FOREIGN KEY (pid) REFERENCES p (id))",
            "ALTER TABLE t RENAME COLUMN pid TO parent_id",
            "uses it",
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int, g int AS (a + 1) VIRTUAL)",
            "ALTER TABLE t RENAME COLUMN g TO g2",
            "generated column",
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int, g int AS (a + 1) VIRTUAL)",
            "ALTER TABLE t RENAME COLUMN a TO a2",
            "generated column g is computed from it",
        ),
        (
            "CREATE TABLE t (a int, b int)",
            "ALTER TABLE t RENAME COLUMN a TO a2",
            "no primary key",
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a varchar(10), FULLTEXT KEY ft (a))",
            "ALTER TABLE t RENAME COLUMN a TO a2",
            "fulltext key ft uses it, and the server builds a FULLTEXT or SPATIAL index only with LOCK=SHARED",
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a varchar(10), b text, FULLTEXT KEY ft (b, a))",
            "ALTER TABLE t RENAME COLUMN a TO a2",
            "fulltext key ft uses it",
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, g point NOT NULL, SPATIAL KEY sp (g))",
            "ALTER TABLE t RENAME COLUMN g TO g2",
            "spatial key sp uses it",
        ),
        // A FULLTEXT index on another column: adding the new column would block writes.
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int, b text, FULLTEXT KEY ft (b))",
            "ALTER TABLE t RENAME COLUMN a TO a2",
            "the table has fulltext key ft, and the server adds a column to such a table only by a rebuild with LOCK=SHARED",
        ),
        // A CHECK on the column, of its own or the table's: adding it to the new column copies
        // the table.
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int CHECK (a > 0))",
            "ALTER TABLE t RENAME COLUMN a TO a2",
            "it has a CHECK of its own, and the server adds a CHECK constraint only with ALGORITHM=COPY",
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int, b int, CONSTRAINT ck CHECK (a < b))",
            "ALTER TABLE t RENAME COLUMN a TO a2",
            "uses it, and the server adds a CHECK constraint only with ALGORITHM=COPY",
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int, b int)",
            "ALTER TABLE t RENAME COLUMN a TO b",
            "Duplicate column name 'b'",
        ),
    ];
    for (setup, rename, why) in cases {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &format!("-- sluice:up\n{setup};\n"));
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = show_create(&mut db, "t").await;
        p.write("2_rename.sql", &format!("-- sluice:up\n{rename};\n"));
        for round in 0..2 {
            let r = p.run(&["up"]);
            assert_ne!(r.code, 0, "{rename} round {round}: {r:?}");
            assert!(r.stderr.contains(why), "{rename}: {r:?}");
            assert_eq!(show_create(&mut db, "t").await, before, "{rename}");
            assert_eq!(triggers(&mut db).await, 0, "{rename}");
            let state = state_of(&p, 2);
            assert!(
                matches!(state.as_deref(), Some("pending") | Some("failed")),
                "{rename}: {state:?}"
            );
            if *why != "Duplicate column name 'b'" {
                assert_eq!(r.code, 2, "{rename}: {r:?}");
                assert_eq!(state.as_deref(), Some("pending"), "{rename}");
            }
        }
    }
}

/// A table with triggers of its own for the same events (MariaDB allows several per event since
/// 10.2.3): sluice's fire after them, so what the table's trigger writes into the old name is
/// what both names hold; complete and rollback leave the table's trigger alone.
#[tokio::test]
async fn the_tables_own_triggers_fire_first_and_stay() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY, name varchar(20));\nCREATE TRIGGER t_upper BEFORE INSERT ON t FOR EACH ROW SET NEW.name = UPPER(NEW.name);\nINSERT INTO t VALUES (1, 'a');\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write(
        "2_rename.sql",
        "-- sluice:up\nALTER TABLE t RENAME COLUMN name TO full_name;\n",
    );
    ok(&p.run(&["up"]), "expand");
    let mut db = p.db.my().await;
    assert_eq!(triggers(&mut db).await, 3);
    db.query_drop("INSERT INTO t (id, name) VALUES (2, 'old')")
        .await
        .unwrap();
    let rows: Vec<(i64, String, String)> = db
        .query("SELECT id, name, full_name FROM t ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        rows,
        [(1, "A".into(), "A".into()), (2, "OLD".into(), "OLD".into())]
    );
    ok(&p.run(&["rollback"]), "rollback");
    assert_eq!(triggers(&mut db).await, 1);
    ok(&p.run(&["up", "--complete"]), "up --complete");
    assert_eq!(triggers(&mut db).await, 1);
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
}

/// A composite primary key: the backfill walks it in row-constructor ranges, batch after batch
/// (2,500 rows, a first batch of 1,000), and every row ends with both names equal.
#[tokio::test]
async fn the_backfill_walks_a_composite_key_in_batches() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (k1 int NOT NULL, k2 varchar(10) NOT NULL, name varchar(20), PRIMARY KEY (k1, k2));\nINSERT INTO t SELECT seq DIV 10, CONCAT('k', seq MOD 10), CONCAT('n', seq) FROM seq_1_to_2500;\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write(
        "2_rename.sql",
        "-- sluice:up\nALTER TABLE t RENAME COLUMN name TO full_name;\n",
    );
    let up = p.run(&["up"]);
    ok(&up, "expand");
    let batches: i64 = up
        .stderr
        .split("backfilled 2500 row(s) of `t` in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{up:?}"));
    assert!(batches >= 2, "{up:?}");
    let mut db = p.db.my().await;
    assert_eq!(
        count(
            &mut db,
            "SELECT COUNT(*) FROM t WHERE NOT (name <=> full_name)"
        )
        .await,
        0
    );
    assert_eq!(count(&mut db, "SELECT COUNT(*) FROM t").await, 2500);
}

/// The catalog steps wait for the table's metadata lock at most lock_wait_timeout, step back and
/// retry: a transaction that holds the table keeps the expand waiting (not failing), and once it
/// ends the expand finishes.
#[tokio::test]
async fn the_triggers_wait_for_the_metadata_lock_and_retry() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY, name varchar(20));\nINSERT INTO t VALUES (1, 'a');\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write(
        "2_rename.sql",
        "-- sluice:up\nALTER TABLE t RENAME COLUMN name TO full_name;\n",
    );
    let mut holder = p.db.my().await;
    holder.query_drop("START TRANSACTION").await.unwrap();
    holder.query_drop("SELECT * FROM t").await.unwrap();
    let mut child = p.spawn(&["up", "--lock-timeout", "1000"]);
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    // Still waiting, neither failed nor done.
    assert!(child.try_wait().unwrap().is_none());
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
}

/// The expand's backfill is an UPDATE of every row, which fires the table's own UPDATE triggers
/// (the rename as written fires none) and MariaDB cannot turn them off for one session: sluice
/// says so before the first batch, naming them, and says nothing for a table without any (an
/// INSERT trigger does not count, nor sluice's own).
#[tokio::test]
async fn the_tables_update_triggers_firing_in_the_backfill_are_said() {
    for (triggers, said) in [
        (
            "CREATE TRIGGER t_audit AFTER UPDATE ON t FOR EACH ROW INSERT INTO audit VALUES (NEW.id);\nCREATE TRIGGER `t touch` BEFORE UPDATE ON t FOR EACH ROW SET NEW.n = NEW.n + 1;\n",
            Some("UPDATE trigger(s) t touch, t_audit once for every row"),
        ),
        (
            "CREATE TRIGGER t_upper BEFORE INSERT ON t FOR EACH ROW SET NEW.name = UPPER(NEW.name);\n",
            None,
        ),
    ] {
        let p = Project::new(Server::MariaDb).await;
        p.write(
            "1_create.sql",
            &format!("-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY, name varchar(20), n int NOT NULL DEFAULT 0);\nCREATE TABLE audit (id int);\n{triggers}INSERT INTO t (id, name) VALUES (1, 'a'), (2, 'b');\n"),
        );
        ok(&p.run(&["up"]), "create");
        p.write(
            "2_rename.sql",
            "-- sluice:up\nALTER TABLE t RENAME COLUMN name TO full_name;\n",
        );
        let r = p.run(&["up"]);
        ok(&r, "expand");
        match said {
            Some(text) => {
                assert!(r.stderr.contains(text), "{r:?}");
                assert!(r.stderr.contains("--as-written"), "{r:?}");
            }
            None => assert!(!r.stderr.contains("warning: the backfill"), "{r:?}"),
        }
    }
}

/// The backfill's checkpoint row in `sluice_meta`: (rows, batches) done; None: there is none.
async fn checkpoint(c: &mut Conn) -> Option<(i64, i64)> {
    let v: Option<String> = c
        .query_first("SELECT v FROM sluice_meta WHERE k LIKE 'backfill %'")
        .await
        .unwrap();
    v.map(|v| {
        let j: serde_json::Value = serde_json::from_str(&v).unwrap();
        (j["rows"].as_i64().unwrap(), j["batches"].as_i64().unwrap())
    })
}

/// The number in `<before><n><after>` of a run's stderr.
fn said(r: &Run, before: &str, after: &str) -> Option<i64> {
    r.stderr
        .split(before)
        .nth(1)?
        .split(after)
        .next()?
        .parse()
        .ok()
}

const BIG: i64 = 20_000;

fn big_table(name: &str) -> String {
    format!("CREATE TABLE {name} (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, name varchar(40) NOT NULL DEFAULT 'anon', note int, KEY {name}_name (name))")
}

/// kill -9 in the middle of the backfill (after its second committed batch), and again in the
/// rerun's: each batch committed its end key with its rows, so each rerun goes on after the last
/// committed range (it says how far the earlier run got, its own row count is what was left), the
/// last batch removes the checkpoint, and the table ends as the as-written twin. A rollback after
/// a killed backfill removes its checkpoint, so the next expand fills every row again.
#[tokio::test]
async fn a_killed_backfill_resumes_after_its_last_committed_batch() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        &format!(
            "-- sluice:up\n{};\nINSERT INTO t (name, note) SELECT CONCAT('s', seq), seq FROM seq_1_to_{BIG};\n",
            big_table("t")
        ),
    );
    ok(&p.run(&["up"]), "create");
    let mut db = p.db.my().await;
    db.query_drop(big_table("twin")).await.unwrap();
    db.query_drop("INSERT INTO twin SELECT id, name, note FROM t")
        .await
        .unwrap();
    p.write(
        "2_rename.sql",
        "-- sluice:up\nALTER TABLE t RENAME COLUMN name TO full_name;\n",
    );
    let mut done = (0, 0);
    for round in 1..=2 {
        let killed: Run = p
            .command(&["up"])
            .env("SLUICE_CRASH_AT", "backfill-batch@2")
            .output()
            .unwrap()
            .into();
        assert_ne!(killed.code, 0, "round {round}: {killed:?}");
        assert!(killed.stderr.contains("backfill-batch@2"), "{killed:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("interrupted"));
        if round == 2 {
            // The rerun went on from the first run's checkpoint.
            assert_eq!(
                said(&killed, "an earlier run did ", " row(s)"),
                Some(done.0),
                "{killed:?}"
            );
        }
        let (rows, batches) = checkpoint(&mut db).await.expect("a checkpoint");
        assert_eq!(batches, done.1 + 2, "round {round}");
        assert!(rows > done.0 && rows < BIG, "round {round}: {rows}");
        done = (rows, batches);
        // A write through the old name below the checkpoint: the triggers keep it.
        db.query_drop(format!(
            "UPDATE t SET name = 'after-kill {round}' WHERE id = {round}"
        ))
        .await
        .unwrap();
        db.query_drop(format!(
            "UPDATE twin SET name = 'after-kill {round}' WHERE id = {round}"
        ))
        .await
        .unwrap();
    }
    let rerun = p.run(&["up"]);
    ok(&rerun, "rerun");
    assert_eq!(
        said(&rerun, "an earlier run did ", " row(s)"),
        Some(done.0),
        "{rerun:?}"
    );
    // This run's own count: the rows after the checkpoint, none before it.
    assert_eq!(
        said(&rerun, "backfilled ", " row(s) of `t`"),
        Some(BIG - done.0),
        "{rerun:?}"
    );
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(checkpoint(&mut db).await, None);
    assert_equal_names(&mut db, &CASES[0]).await;
    ok(&p.run(&["complete"]), "complete");
    db.query_drop("ALTER TABLE twin RENAME COLUMN name TO full_name")
        .await
        .unwrap();
    // The twin's key is named twin_name: compare as t_name.
    assert_same_as_twin(&mut db, "t", "twin", "resumed backfill").await;
    let rows = |table: &str| format!("SELECT id, full_name, note FROM {table} ORDER BY id");
    let got: Vec<(i64, String, i64)> = db.query(rows("t")).await.unwrap();
    let want: Vec<(i64, String, i64)> = db.query(rows("twin")).await.unwrap();
    assert_eq!(got.len(), BIG as usize);
    assert!(got == want, "rows differ from the as-written twin");

    // Killed, rolled back (twice), expanded again: every row filled, nothing resumed.
    p.write(
        "3_rename.sql",
        "-- sluice:up\nALTER TABLE t RENAME COLUMN note TO remark;\n",
    );
    let killed: Run = p
        .command(&["up"])
        .env("SLUICE_CRASH_AT", "backfill-batch@2")
        .output()
        .unwrap()
        .into();
    assert_ne!(killed.code, 0, "{killed:?}");
    assert!(checkpoint(&mut db).await.is_some());
    for _ in 0..2 {
        ok(&p.run(&["rollback"]), "rollback");
        assert_eq!(state_of(&p, 3).as_deref(), Some("pending"));
        assert_eq!(checkpoint(&mut db).await, None);
    }
    let up = p.run(&["up"]);
    ok(&up, "expand after the rollback");
    assert!(!up.stderr.contains("resuming the backfill"), "{up:?}");
    assert_eq!(
        said(&up, "backfilled ", " row(s) of `t`"),
        Some(BIG),
        "{up:?}"
    );
    let unequal: i64 = db
        .query_first("SELECT COUNT(*) FROM t WHERE NOT (note <=> remark)")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unequal, 0);
}

/// The backfill waits on the online copy's throttle: with `--max-threads-running 0` (always
/// exceeded: the check itself runs) it says it paused and commits no batch; the rerun without it
/// converges.
#[tokio::test]
async fn the_backfill_pauses_on_the_online_copys_throttle() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY, name varchar(20));\nINSERT INTO t SELECT seq, CONCAT('n', seq) FROM seq_1_to_100;\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write(
        "2_rename.sql",
        "-- sluice:up\nALTER TABLE t RENAME COLUMN name TO full_name;\n",
    );
    let mut child = p.spawn(&["up", "--max-threads-running", "0"]);
    let mut db = p.db.my().await;
    // The column and its triggers are there, the backfill waits.
    common::eventually(60, "the new column", || async {
        let n: Option<i64> = p
            .db
            .my()
            .await
            .query_first("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND COLUMN_NAME = 'full_name'")
            .await
            .unwrap();
        n == Some(1)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the backfill did not wait"
    );
    let empty: i64 = db
        .query_first("SELECT COUNT(*) FROM t WHERE full_name IS NULL")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(empty, 100, "a batch ran while paused");
    child.kill().unwrap();
    let paused = wait_bounded(child, 30, "paused sluice up");
    assert!(
        paused
            .stderr
            .contains("backfill of `t` paused: Threads_running"),
        "{paused:?}"
    );
    ok(&p.run(&["up"]), "rerun");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    let unequal: i64 = db
        .query_first("SELECT COUNT(*) FROM t WHERE NOT (name <=> full_name)")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unequal, 0);
}

/// A rename `up` refuses (a referenced key column) does not run online: `plan` says what its
/// online line would send only under `--as-written`, never "online: instant" beside "no safe form".
#[tokio::test]
async fn plan_of_a_refused_rename_puts_its_online_form_under_as_written() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "CREATE TABLE p (id int PRIMARY KEY);\nCREATE TABLE c (id int PRIMARY KEY, pid int, FOREIGN KEY (pid) REFERENCES p (id));\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write(
        "2_rename.sql",
        "-- sluice:up\nALTER TABLE p RENAME COLUMN id TO pid2;\n",
    );
    let plan = p.run(&["plan"]);
    let all = plan.all();
    assert!(all.contains("no safe form"), "{plan:?}");
    assert!(
        all.contains("with --as-written, online: instant")
            && !all.lines().any(|l| l.trim_start().starts_with("online: ")),
        "{plan:?}"
    );
}

/// Trigger names are the schema's: renames of `a_b`.`c` and `a`.`b_c` (both `a_b_c` untagged)
/// expanded side by side each keep their own pair of triggers, and a write through either old
/// name reaches its own new name only; both complete.
#[tokio::test]
async fn renames_whose_table_and_column_read_alike_keep_their_own_triggers() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "CREATE TABLE a_b (id int PRIMARY KEY, c int);\nCREATE TABLE a (id int PRIMARY KEY, b_c int);\nINSERT INTO a_b VALUES (1, 10);\nINSERT INTO a VALUES (1, 20);\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write("2_rename.sql", "ALTER TABLE a_b RENAME COLUMN c TO c2;\n");
    p.write("3_rename.sql", "ALTER TABLE a RENAME COLUMN b_c TO b_c2;\n");
    ok(&p.run(&["up"]), "expand both");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(state_of(&p, 3).as_deref(), Some("expanded"));
    let mut db = p.db.my().await;
    assert_eq!(
        count(
            &mut db,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE IN ('a_b', 'a')"
        )
        .await,
        4
    );
    db.query_drop("INSERT INTO a_b (id, c) VALUES (2, 11)")
        .await
        .unwrap();
    db.query_drop("INSERT INTO a (id, b_c) VALUES (2, 21)")
        .await
        .unwrap();
    db.query_drop("UPDATE a_b SET c2 = 12 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(count(&mut db, "SELECT c2 FROM a_b WHERE id = 2").await, 11);
    assert_eq!(count(&mut db, "SELECT b_c2 FROM a WHERE id = 2").await, 21);
    assert_eq!(count(&mut db, "SELECT c FROM a_b WHERE id = 1").await, 12);
    ok(&p.run(&["complete"]), "complete both");
    assert_eq!(count(&mut db, "SELECT c2 FROM a_b WHERE id = 1").await, 12);
    assert_eq!(count(&mut db, "SELECT b_c2 FROM a WHERE id = 1").await, 20);
}

/// A trigger or a view that still names the old column (made after the expand, or there before
/// it): `complete` would drop the column and every write firing the trigger would fail (1054),
/// the view fail to read (1356). Refused before anything (exit 11, twice, naming it); once it
/// uses the new name, complete runs and writes work.
#[tokio::test]
async fn complete_refuses_while_a_trigger_or_view_still_uses_the_old_name() {
    for (what, make, fix) in [
        (
            "trigger",
            "CREATE TRIGGER t_audit BEFORE INSERT ON t FOR EACH ROW SET NEW.`note` = NEW.a + 1;",
            "CREATE OR REPLACE TRIGGER t_audit BEFORE INSERT ON t FOR EACH ROW SET NEW.`note` = NEW.a2 + 1;",
        ),
        (
            "view",
            "CREATE VIEW v_t AS SELECT id, a FROM t;",
            "CREATE OR REPLACE VIEW v_t AS SELECT id, a2 FROM t;",
        ),
    ] {
        let p = Project::new(Server::MariaDb).await;
        p.write(
            "1_create.sql",
            "CREATE TABLE t (id int AUTO_INCREMENT PRIMARY KEY, a int, ab int, note int);\nINSERT INTO t (a) VALUES (1);\n",
        );
        ok(&p.run(&["up"]), "create");
        p.write("2_rename.sql", "ALTER TABLE t RENAME COLUMN a TO a2;\n");
        ok(&p.run(&["up"]), "expand");
        p.write("3_user.sql", make);
        ok(&p.run(&["up"]), what);
        let mut db = p.db.my().await;
        let table = show_create(&mut db, "t").await;
        for _ in 0..2 {
            let r = p.run(&["complete"]);
            assert_eq!(r.code, 11, "{what}: {r:?}");
            assert!(
                r.stderr.contains(&format!(
                    "{} {} still uses t.a",
                    what,
                    if what == "trigger" { "t_audit" } else { "v_t" }
                )),
                "{what}: {r:?}"
            );
            assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{what}");
            assert_eq!(show_create(&mut db, "t").await, table, "{what}");
        }
        p.write("4_fix.sql", fix);
        ok(&p.run(&["up"]), "fixed");
        ok(&p.run(&["complete"]), "complete");
        db.query_drop("INSERT INTO t (a2) VALUES (5)").await.unwrap();
        if what == "trigger" {
            assert_eq!(count(&mut db, "SELECT note FROM t WHERE a2 = 5").await, 6);
        } else {
            assert_eq!(count(&mut db, "SELECT COUNT(*) FROM v_t").await, 2);
        }
    }
}
