//! Issue 14 on MariaDB: `ALTER TABLE t DROP COLUMN c` runs as expand (`sluice up`: the column
//! stays; a NOT NULL one without a default gets a default, ALGORITHM=INSTANT) → both versions work
//! → contract (`sluice complete`: the column dropped), or rollback (the default dropped again).
//!
//! For every column shape an old-version client (writes `c`) and a new-version client (leaves `c`
//! out) write concurrently from before expand until after complete: 0 errors on both, the rows and
//! `SHOW CREATE TABLE` equal to a twin that got the same writes and where the DROP ran as written.
//! Rollback (twice) restores `SHOW CREATE TABLE` exactly, a kill at every step converges on rerun
//! (run twice), and what the phases cannot carry is refused before anything changes (twice).

mod common;

use common::mariadb_two_versions::{
    assert_same_as_twin, ok, run_version, show_create, state_of, wait_ops, Version,
};
use common::{wait_bounded, Project, Run};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_testkit::Server;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const ROWS: i64 = 2000;

/// One column shape: the table `t` has `id bigint AUTO_INCREMENT PRIMARY KEY`, the column `c`,
/// `note int` and the keys in `keys`.
struct Case {
    name: &'static str,
    column: &'static str,
    keys: &'static str,
    /// What the old version writes into `c` (as the server reads it back with CAST AS CHAR).
    value: fn(u64) -> String,
    /// Whether expand gives `c` a default (NOT NULL without one).
    gets_default: bool,
    /// The algorithm complete's ALTER runs with.
    contract: &'static str,
}

fn text(n: u64) -> String {
    format!("v{n}")
}

const CASES: &[Case] = &[
    Case {
        name: "varchar NOT NULL without default",
        column: "c varchar(40) NOT NULL",
        keys: "",
        value: text,
        gets_default: true,
        contract: "ALGORITHM=INSTANT",
    },
    Case {
        name: "int NOT NULL with default",
        column: "c int NOT NULL DEFAULT 7",
        keys: "",
        value: |n| (n % 100_000).to_string(),
        gets_default: false,
        contract: "ALGORITHM=INSTANT",
    },
    Case {
        name: "nullable bigint",
        column: "c bigint NULL",
        keys: "",
        value: |n| n.to_string(),
        gets_default: false,
        contract: "ALGORITHM=INSTANT",
    },
    Case {
        name: "NOT NULL without default, with a secondary index",
        column: "c varchar(20) NOT NULL",
        keys: ", KEY t_c (c)",
        value: text,
        gets_default: true,
        contract: "ALGORITHM=NOCOPY, LOCK=NONE",
    },
    Case {
        name: "nullable, in a composite index",
        column: "c int NULL",
        keys: ", KEY t_note_c (note, c)",
        value: |n| (n % 100_000).to_string(),
        gets_default: false,
        contract: "ALGORITHM=INPLACE, LOCK=NONE",
    },
    Case {
        // Leaving it out stores NULL, which never collides: the new version's INSERTs all work.
        name: "nullable, in a unique key",
        column: "c int NULL",
        keys: ", UNIQUE KEY t_c (c)",
        value: |n| (1_000_000 + n).to_string(),
        gets_default: false,
        contract: "ALGORITHM=NOCOPY, LOCK=NONE",
    },
    Case {
        name: "ENUM NOT NULL (its first member is the implicit default)",
        column: "c enum('x','y','z') NOT NULL",
        keys: "",
        value: |n| ["x", "y", "z"][n as usize % 3].to_string(),
        gets_default: false,
        contract: "ALGORITHM=INSTANT",
    },
    Case {
        name: "TEXT NOT NULL without default",
        column: "c text NOT NULL",
        keys: "",
        value: |n| format!("text {n}"),
        gets_default: true,
        contract: "ALGORITHM=INSTANT",
    },
    Case {
        name: "DATETIME(3) NOT NULL without default",
        column: "c datetime(3) NOT NULL",
        keys: "",
        value: |n| {
            format!(
                "2020-01-01 00:{:02}:{:02}.{:03}",
                n / 60 % 60,
                n % 60,
                n % 1000
            )
        },
        gets_default: true,
        contract: "ALGORITHM=INSTANT",
    },
];

impl Case {
    fn table(&self, name: &str) -> String {
        format!(
            "CREATE TABLE {name} (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, {}, note int{})",
            self.column,
            self.keys.replace("KEY t_", &format!("KEY {name}_"))
        )
    }

    fn seed(&self, name: &str) -> String {
        format!(
            "INSERT INTO {name} (c, note) SELECT {}, g.seq FROM seq_1_to_{ROWS} g",
            match (self.value)(1).parse::<i64>() {
                Ok(_) => "g.seq".to_string(),
                Err(_) if self.column.contains("enum") => "'x'".to_string(),
                Err(_) if self.column.contains("datetime") => "'2020-01-01 00:00:00.000'".into(),
                Err(_) => "CONCAT('s', g.seq)".into(),
            }
        )
    }

    fn create(&self) -> String {
        format!(
            "-- sluice:up\n{};\n{};\n-- sluice:down\nDROP TABLE t;\n",
            self.table("t"),
            self.seed("t")
        )
    }
}

const DROP: &str = "-- sluice:up\nALTER TABLE t DROP COLUMN c;\n";

/// The twin: the same table and rows, with the DROP run as written; every write to `t` goes to it
/// too, on the columns that are left.
async fn make_twin(db: &mut Conn, case: &Case) {
    db.query_drop(case.table("twin")).await.unwrap();
    db.query_drop(case.seed("twin")).await.unwrap();
    db.query_drop("ALTER TABLE twin DROP COLUMN c")
        .await
        .unwrap();
}

struct Client {
    /// The old version (writes `c`) or the new one (leaves it out).
    old: bool,
    parity: i64,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
}

struct ClientResult {
    errors: Vec<String>,
    /// id → the note this client last wrote.
    notes: BTreeMap<i64, i64>,
}

/// One application version: inserts and updates of its own rows (by parity), each also applied to
/// the twin, each read back.
struct Writer {
    old: bool,
    case: &'static Case,
    counter: Arc<AtomicU64>,
    owned: Vec<i64>,
    notes: BTreeMap<i64, i64>,
}

impl Version for Writer {
    async fn round(&mut self, db: &mut Conn, i: u64, errors: &mut Vec<String>) -> bool {
        let old = self.old;
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let note = (n % 1_000_000) as i64;
        let value = (self.case.value)(n);
        let id = if i.is_multiple_of(3) {
            let r = if old {
                db.exec_drop("INSERT INTO t (c, note) VALUES (?, ?)", (&value, note))
                    .await
            } else {
                db.exec_drop("INSERT INTO t (note) VALUES (?)", (note,))
                    .await
            };
            if let Err(e) = r {
                errors.push(format!("insert (old version: {old}): {e}"));
                return false;
            }
            let id = db.last_insert_id().unwrap() as i64;
            self.owned.push(id);
            if let Err(e) = db
                .exec_drop("INSERT INTO twin (id, note) VALUES (?, ?)", (id, note))
                .await
            {
                errors.push(format!("twin insert: {e}"));
            }
            id
        } else {
            let id = self.owned[(n as usize * 7919) % self.owned.len()];
            let r = if old {
                db.exec_drop(
                    "UPDATE t SET c = ?, note = ? WHERE id = ?",
                    (&value, note, id),
                )
                .await
            } else {
                db.exec_drop("UPDATE t SET note = ? WHERE id = ?", (note, id))
                    .await
            };
            if let Err(e) = r {
                errors.push(format!("update (old version: {old}): {e}"));
                return false;
            }
            if let Err(e) = db
                .exec_drop("UPDATE twin SET note = ? WHERE id = ?", (note, id))
                .await
            {
                errors.push(format!("twin update: {e}"));
            }
            id
        };
        self.notes.insert(id, note);
        let read = if old {
            db.exec_first::<(i64, Option<String>), _, _>(
                "SELECT note, CAST(c AS CHAR) FROM t WHERE id = ?",
                (id,),
            )
            .await
        } else {
            db.exec_first::<i64, _, _>("SELECT note FROM t WHERE id = ?", (id,))
                .await
                .map(|r| r.map(|n| (n, Some(value.clone()))))
        };
        match read {
            Ok(Some((got, v))) if got == note && v.as_deref() == Some(value.as_str()) => {}
            Ok(got) => errors.push(format!(
                "row {id}: read {got:?}, written note {note} and c {value:?} (old version: {old})"
            )),
            Err(e) => errors.push(format!("read (old version: {old}): {e}")),
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
        old: c.old,
        case,
        counter,
        owned: (1..=ROWS).filter(|i| i % 2 == c.parity).collect(),
        notes: BTreeMap::new(),
    };
    let (writer, errors) = run_version(writer, url, c.stop, c.ops).await;
    ClientResult {
        errors,
        notes: writer.notes,
    }
}

async fn rows(c: &mut Conn, table: &str) -> BTreeMap<i64, Option<i64>> {
    c.query::<(i64, Option<i64>), _>(format!("SELECT id, note FROM {table}"))
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn has_c(c: &mut Conn) -> bool {
    c.query_first::<i64, _>(
        "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND COLUMN_NAME = 'c'",
    )
    .await
    .unwrap()
        == Some(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_and_new_versions_run_concurrently_through_expand_and_complete() {
    for case in CASES {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        p.write("2_drop.sql", DROP);
        let mut db = p.db.my().await;
        make_twin(&mut db, case).await;

        let counter = Arc::new(AtomicU64::new(0));
        let (stop_old, stop_new) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (old_ops, new_ops) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let old = tokio::spawn(run_client(
            Client {
                old: true,
                parity: 0,
                stop: stop_old.clone(),
                ops: old_ops.clone(),
            },
            p.db.url.clone(),
            case,
            counter.clone(),
        ));
        wait_ops(&old_ops, 100).await;
        let plan = p.run(&["plan"]);
        ok(&plan, "plan");
        assert!(
            plan.stdout.contains(case.contract),
            "{}: {plan:?}",
            case.name
        );
        let before = show_create(&mut db, "t").await;
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
        assert!(has_c(&mut db).await, "{}", case.name);
        // Expand changed the table only where `c` is NOT NULL without a default: it has one now.
        let expanded = show_create(&mut db, "t").await;
        if case.gets_default {
            assert_ne!(before, expanded, "{}", case.name);
            assert!(
                expanded
                    .lines()
                    .any(|l| l.trim_start().starts_with("`c`") && l.contains(" DEFAULT ")),
                "{}: {expanded}",
                case.name
            );
        } else {
            assert_eq!(expanded, before, "{}", case.name);
        }
        let before_new = old_ops.load(Ordering::SeqCst);
        let new = tokio::spawn(run_client(
            Client {
                old: false,
                parity: 1,
                stop: stop_new.clone(),
                ops: new_ops.clone(),
            },
            p.db.url.clone(),
            case,
            counter.clone(),
        ));
        wait_ops(&new_ops, 300).await;
        wait_ops(&old_ops, before_new + 300).await;
        assert!(p.run(&["status"]).stdout.contains("expanded (open"));
        // The rollout is done: the old version stops; complete runs while the new one writes.
        stop_old.store(true, Ordering::SeqCst);
        let old = old.await.unwrap();
        let at_complete = new_ops.load(Ordering::SeqCst);
        let complete = wait_bounded(p.spawn(&["complete"]), 120, "sluice complete");
        ok(&complete, "complete");
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
        assert!(!has_c(&mut db).await, "{}", case.name);
        let mut want: BTreeMap<i64, Option<i64>> = (1..=ROWS).map(|id| (id, Some(id))).collect();
        want.extend(old.notes.into_iter().map(|(k, v)| (k, Some(v))));
        want.extend(new.notes.into_iter().map(|(k, v)| (k, Some(v))));
        let got = rows(&mut db, "t").await;
        assert_eq!(got.len(), want.len(), "{}", case.name);
        assert!(got == want, "{}: rows differ from the writes", case.name);
        assert!(
            got == rows(&mut db, "twin").await,
            "{}: rows differ from the twin",
            case.name
        );
        assert_same_as_twin(&mut db, "t", "twin", case.name).await;
        let sluice_notes: i64 = db
            .query_first("SELECT COUNT(*) FROM sluice_meta WHERE k LIKE 'drop %'")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sluice_notes, 0, "{}", case.name);
        // complete again: nothing expanded.
        ok(&p.run(&["complete"]), "complete again");
    }
}

/// Rollback (run twice) restores `SHOW CREATE TABLE` exactly, also after the new version inserted
/// rows without `c` (they keep the value the default gave them); then `up --complete` drops it as
/// written.
#[tokio::test]
async fn rollback_restores_the_table_exactly() {
    for case in CASES {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = show_create(&mut db, "t").await;
        p.write("2_drop.sql", DROP);
        ok(&p.run(&["up"]), "expand");
        db.query_drop("INSERT INTO t (note) VALUES (-1)")
            .await
            .unwrap();
        for round in 0..2 {
            ok(&p.run(&["rollback"]), "rollback");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{round}");
            assert_eq!(show_create(&mut db, "t").await, before, "{}", case.name);
        }
        // The row the new version inserted keeps what leaving `c` out gave it (the default sluice
        // gave; NULL for a nullable column).
        let kept: Option<Option<String>> = db
            .query_first("SELECT CAST(c AS CHAR) FROM t WHERE note = -1")
            .await
            .unwrap();
        let nullable = case.column.contains(" NULL") && !case.column.contains("NOT NULL");
        assert_eq!(kept.map(|v| v.is_none()), Some(nullable), "{}", case.name);
        ok(&p.run(&["up", "--complete"]), "up --complete");
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
        make_twin(&mut db, case).await;
        assert_same_as_twin(&mut db, "t", "twin", case.name).await;
    }
}

fn killed(p: &Project, args: &[&str], point: &str) {
    let r: Run = p
        .command(args)
        .env("SLUICE_CRASH_AT", point)
        .output()
        .unwrap()
        .into();
    assert_ne!(r.code, 0, "{point}: {r:?}");
    assert!(r.stderr.contains(point), "{point}: {r:?}");
}

/// kill -9 before the expand step, after it (unrecorded), and at complete's and rollback's commit
/// (the DDL done, its record not): each rerun (twice) converges on expanded, then applied or
/// pending, the table as the as-written twin or as before.
#[tokio::test]
async fn a_kill_at_every_step_converges_on_rerun() {
    let case = &CASES[0];
    for point in ["expand-step-0", "expand-unrecorded"] {
        for then in ["complete", "rollback"] {
            let p = Project::new(Server::MariaDb).await;
            p.write("1_create.sql", &case.create());
            ok(&p.run(&["up"]), "create");
            let mut db = p.db.my().await;
            let before = show_create(&mut db, "t").await;
            p.write("2_drop.sql", DROP);
            killed(&p, &["up"], point);
            assert_eq!(state_of(&p, 2).as_deref(), Some("interrupted"), "{point}");
            for _ in 0..2 {
                ok(&p.run(&["up"]), &format!("{point}: rerun"));
                assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{point}");
            }
            // The new version's INSERT works.
            db.query_drop("INSERT INTO t (note) VALUES (-1)")
                .await
                .unwrap();
            killed(&p, &[then], "before-commit");
            assert_eq!(
                state_of(&p, 2).as_deref(),
                Some("expanded"),
                "{point} {then}"
            );
            if then == "complete" {
                assert!(!has_c(&mut db).await);
                // The column is gone: a rollback now is refused, nothing changes (twice).
                for _ in 0..2 {
                    let r = p.run(&["rollback"]);
                    assert_ne!(r.code, 0, "{r:?}");
                    assert!(r.all().contains("is gone already"), "{r:?}");
                    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
                }
                ok(&p.run(&["complete"]), "complete rerun");
                assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
                ok(&p.run(&["complete"]), "complete rerun again");
                make_twin(&mut db, case).await;
                assert_same_as_twin(&mut db, "t", "twin", point).await;
            } else {
                for _ in 0..2 {
                    ok(&p.run(&["rollback"]), "rollback rerun");
                    assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
                    assert_eq!(show_create(&mut db, "t").await, before, "{point}");
                }
            }
        }
    }
}

/// What the phases cannot carry is refused with the cause and the fix (exit 2; a DROP COLUMN
/// mixed with other clauses: exit 11), before anything changes: the migration stays pending, the
/// table as it was. Twice.
#[tokio::test]
async fn what_the_phases_cannot_carry_is_refused_before_anything_changes() {
    let cases: &[(&str, &str, &str, i32)] = &[
        (
            "CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE t (id int PRIMARY KEY, pid int, FOREIGN KEY (pid) REFERENCES p (id))",
            "ALTER TABLE t DROP COLUMN pid",
            "uses pid, so the server refuses to drop it",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, x int NOT NULL, KEY kx (x)); CREATE TABLE ch (id int PRIMARY KEY, tx int, FOREIGN KEY (tx) REFERENCES t (x))",
            "ALTER TABLE t DROP COLUMN x",
            "uses x, so the server refuses to drop it",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int, g int AS (a + 1) VIRTUAL)",
            "ALTER TABLE t DROP COLUMN a",
            "generated column g is computed from a",
            2,
        ),
        (
            "CREATE TABLE t (id int, a int NOT NULL, PRIMARY KEY (id, a))",
            "ALTER TABLE t DROP COLUMN a",
            "a is in the primary key",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int, b int, CONSTRAINT ck CHECK (a > b))",
            "ALTER TABLE t DROP COLUMN a",
            "uses a and b, which stays, so the DROP COLUMN as written fails",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL, b int, CONSTRAINT ck CHECK (a > 0))",
            "ALTER TABLE t DROP COLUMN a",
            "would judge the default sluice gives a while expanded",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int, b int, UNIQUE KEY u (a, b))",
            "ALTER TABLE t DROP COLUMN a",
            "multi-column unique key",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a varchar(10) NOT NULL, UNIQUE KEY u (a))",
            "ALTER TABLE t DROP COLUMN a",
            "fails as a duplicate",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int) WITH SYSTEM VERSIONING",
            "ALTER TABLE t DROP COLUMN a",
            "system-versioned",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int)",
            "ALTER TABLE t DROP COLUMN zz",
            "column zz of t does not exist",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, a int, b int)",
            "ALTER TABLE t DROP COLUMN a, ADD INDEX kb (b)",
            "put the DROP COLUMN in a migration of its own",
            11,
        ),
    ];
    for (setup, drop, why, code) in cases {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &format!("-- sluice:up\n{setup};\n"));
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = show_create(&mut db, "t").await;
        p.write("2_drop.sql", &format!("-- sluice:up\n{drop};\n"));
        for round in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, *code, "{drop} round {round}: {r:?}");
            assert!(r.stderr.contains(why), "{drop}: {r:?}");
            assert_eq!(show_create(&mut db, "t").await, before, "{drop}");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{drop}");
        }
        let plan = p.run(&["plan"]);
        assert!(plan.all().contains(why), "{drop}: plan {plan:?}");
    }
}

/// A check over the dropped column only goes with it (measured on MariaDB 10.11), so a nullable
/// column's drop runs in two phases: the new version's INSERT leaving it out stores NULL, which
/// the check accepts; complete leaves the table as the DROP as written does (no check).
#[tokio::test]
async fn a_check_over_the_dropped_column_only_goes_with_it() {
    let create = |n: &str| {
        format!("CREATE TABLE {n} (id int PRIMARY KEY AUTO_INCREMENT, a int, b int, CONSTRAINT ck CHECK (a > 0))")
    };
    let p = Project::new(Server::MariaDb).await;
    p.write("1_create.sql", &format!("-- sluice:up\n{};\n", create("t")));
    ok(&p.run(&["up"]), "create");
    let mut db = p.db.my().await;
    p.write("2_drop.sql", "-- sluice:up\nALTER TABLE t DROP COLUMN a;\n");
    ok(&p.run(&["up"]), "expand");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    db.query_drop("INSERT INTO t (b) VALUES (2)").await.unwrap();
    db.query_drop("INSERT INTO t (a, b) VALUES (1, 3)")
        .await
        .unwrap();
    ok(&p.run(&["complete"]), "complete");
    db.query_drop(create("twin")).await.unwrap();
    db.query_drop("ALTER TABLE twin DROP COLUMN a")
        .await
        .unwrap();
    assert_same_as_twin(&mut db, "t", "twin", "check goes with the column").await;
}

/// `DROP COLUMN a, DROP COLUMN IF EXISTS b` with `b` missing: one migration, one default given,
/// the contract drops `a` alone, as the statement as written does.
#[tokio::test]
async fn several_columns_and_if_exists_in_one_statement() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY AUTO_INCREMENT, a int NOT NULL, d varchar(5) NOT NULL, note int);\nINSERT INTO t (a, d, note) VALUES (1, 'x', 1);\n",
    );
    ok(&p.run(&["up"]), "create");
    let mut db = p.db.my().await;
    p.write(
        "2_drop.sql",
        "-- sluice:up\nALTER TABLE t DROP COLUMN a, DROP COLUMN `D`, DROP COLUMN IF EXISTS zz;\n",
    );
    ok(&p.run(&["up"]), "expand");
    db.query_drop("INSERT INTO t (note) VALUES (2)")
        .await
        .unwrap();
    ok(&p.run(&["complete"]), "complete");
    db.query_drop("CREATE TABLE twin (id int PRIMARY KEY AUTO_INCREMENT, a int NOT NULL, d varchar(5) NOT NULL, note int)")
        .await
        .unwrap();
    db.query_drop("ALTER TABLE twin DROP COLUMN a, DROP COLUMN `D`, DROP COLUMN IF EXISTS zz")
        .await
        .unwrap();
    assert_same_as_twin(&mut db, "t", "twin", "").await;
    let notes: Vec<i64> = db.query("SELECT note FROM t ORDER BY id").await.unwrap();
    assert_eq!(notes, [1, 2]);
}

/// The expand's and the contract's ALTERs wait for the table's metadata lock at most
/// lock_wait_timeout, step back and retry: a transaction that holds the table keeps each phase
/// waiting (not failing), and once it ends the phase finishes.
#[tokio::test]
async fn both_phases_wait_for_the_metadata_lock_and_retry() {
    let case = &CASES[0];
    let p = Project::new(Server::MariaDb).await;
    p.write("1_create.sql", &case.create());
    ok(&p.run(&["up"]), "create");
    p.write("2_drop.sql", DROP);
    for (args, state) in [
        (&["up", "--lock-timeout", "1000"][..], "expanded"),
        (&["complete", "--lock-timeout", "1000"][..], "applied"),
    ] {
        let mut holder = p.db.my().await;
        holder.query_drop("START TRANSACTION").await.unwrap();
        holder.query_drop("SELECT * FROM t LIMIT 1").await.unwrap();
        let mut child = p.spawn(args);
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        // Still waiting, neither failed nor done.
        assert!(child.try_wait().unwrap().is_none(), "{args:?}");
        holder.query_drop("COMMIT").await.unwrap();
        let r = wait_bounded(child, 120, "sluice");
        ok(&r, &format!("{args:?} after the lock"));
        assert!(
            r.stderr.contains("waited 1000 ms for its lock on t")
                && r.stderr.contains("retry 1 in"),
            "{args:?}: {r:?}"
        );
        assert_eq!(state_of(&p, 2).as_deref(), Some(state), "{args:?}");
    }
}
