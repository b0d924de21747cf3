//! Issue 14 on MariaDB: a split or merge of columns (`ADD COLUMN ...; UPDATE ...; -- sluice:old
//! <col> = <expr>; DROP COLUMN ...`) runs as expand (`sluice up`: the added columns, two triggers
//! that carry each write to the other side, the UPDATE as a paced backfill) → both versions work →
//! contract (`sluice complete`: triggers and dropped columns gone), or rollback.
//!
//! For a split and a merge, an old-version client (writes the dropped columns) and a new-version
//! client (writes the added ones) run concurrently from before expand until after complete: 0
//! errors on both; at the end of "between" every row has old = reverse(new) and new =
//! forward(old), compared as bytes (some writes change only letter case); the end state (SHOW
//! CREATE TABLE and rows) equals an as-written twin given the same logical writes. Rollback (twice)
//! restores SHOW CREATE TABLE exactly with both versions' writes in the old columns; kills during
//! expand, complete and rollback converge on rerun; refusals leave everything as it was (twice).

mod common;

use common::mariadb_two_versions::{
    assert_same_as_twin, ok, run_version, show_create, state_of, wait_ops, Version,
};
use common::{wait_bounded, Project, Run};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use sluice_testkit::Server;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const ROWS: i64 = 2000;

/// One split or merge: the table `t` (`id bigint AUTO_INCREMENT PRIMARY KEY`, the old columns,
/// `note int`), the migration, and the two ways between the old and the new columns.
struct Case {
    name: &'static str,
    old_cols: &'static [&'static str],
    /// The old columns' definitions.
    old_defs: &'static str,
    /// The seed's values of the old columns (SQL over `g.seq`).
    seed: &'static str,
    new_cols: &'static [&'static str],
    migration: &'static str,
    /// The added columns from the old ones, and back: in SQL (the consistency check) and in Rust
    /// (the twin's writes, what each client expects to read).
    forward_sql: &'static [&'static str],
    reverse_sql: &'static [&'static str],
    forward: fn(&[String]) -> Vec<String>,
    /// What the old version writes in round `n` (split on ' ' by the forward way).
    old_value: fn(u64) -> Vec<String>,
    new_value: fn(u64) -> Vec<String>,
}

fn words(s: &str) -> (String, String) {
    let mut it = s.splitn(2, ' ');
    let a = it.next().unwrap_or("").to_string();
    let b = s.rsplit(' ').next().unwrap_or("").to_string();
    let _ = it;
    (a, b)
}

const SPLIT: Case = Case {
    name: "split name into first_name, last_name",
    old_cols: &["name"],
    old_defs: "name varchar(81) NOT NULL",
    seed: "CONCAT('F', g.seq, ' L', g.seq)",
    new_cols: &["first_name", "last_name"],
    migration: "-- sluice:up\nALTER TABLE t ADD COLUMN first_name varchar(40), ADD COLUMN last_name varchar(40);\nUPDATE t SET first_name = SUBSTRING_INDEX(name, ' ', 1), last_name = SUBSTRING_INDEX(name, ' ', -1);\n-- sluice:old name = CONCAT(first_name, ' ', last_name)\nALTER TABLE t DROP COLUMN name;\n",
    forward_sql: &["SUBSTRING_INDEX(name, ' ', 1)", "SUBSTRING_INDEX(name, ' ', -1)"],
    reverse_sql: &["CONCAT(first_name, ' ', last_name)"],
    forward: |old| {
        let (a, b) = words(&old[0]);
        vec![a, b]
    },
    old_value: |n| vec![format!("Ann{n} Lee{n}")],
    new_value: |n| vec![format!("Bo{n}"), format!("Kay{n}")],
};

const MERGE: Case = Case {
    name: "merge first_name, last_name into full_name",
    old_cols: &["first_name", "last_name"],
    old_defs: "first_name varchar(40) NOT NULL, last_name varchar(40) NOT NULL",
    seed: "CONCAT('F', g.seq), CONCAT('L', g.seq)",
    new_cols: &["full_name"],
    migration: "-- sluice:up\nALTER TABLE t ADD COLUMN full_name varchar(81);\nUPDATE t SET full_name = CONCAT(first_name, ' ', last_name);\n-- sluice:old first_name = SUBSTRING_INDEX(full_name, ' ', 1)\n-- sluice:old last_name = SUBSTRING_INDEX(full_name, ' ', -1)\nALTER TABLE t DROP COLUMN first_name, DROP COLUMN last_name;\n",
    forward_sql: &["CONCAT(first_name, ' ', last_name)"],
    reverse_sql: &[
        "SUBSTRING_INDEX(full_name, ' ', 1)",
        "SUBSTRING_INDEX(full_name, ' ', -1)",
    ],
    forward: |old| vec![format!("{} {}", old[0], old[1])],
    old_value: |n| vec![format!("Ann{n}"), format!("Lee{n}")],
    new_value: |n| vec![format!("Bo{n} Kay{n}")],
};

const CASES: &[&Case] = &[&SPLIT, &MERGE];

impl Case {
    fn table(&self, name: &str) -> String {
        format!(
            "CREATE TABLE {name} (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, {}, note int)",
            self.old_defs
        )
    }

    fn seed(&self, name: &str) -> String {
        format!(
            "INSERT INTO {name} ({}, note) SELECT {}, g.seq FROM seq_1_to_{ROWS} g",
            self.old_cols.join(", "),
            self.seed
        )
    }

    fn create(&self) -> String {
        format!(
            "-- sluice:up\n{};\n{};\n-- sluice:down\nDROP TABLE t;\n",
            self.table("t"),
            self.seed("t")
        )
    }

    /// The migration's statements as written on `name`.
    fn as_written(&self, name: &str) -> Vec<String> {
        self.migration
            .lines()
            .filter(|l| !l.starts_with("--"))
            .map(|l| l.trim_end_matches(';').replace(" t ", &format!(" {name} ")))
            .collect()
    }

    fn cols(&self, old: bool) -> &'static [&'static str] {
        if old {
            self.old_cols
        } else {
            self.new_cols
        }
    }

    /// Rows that break old = reverse(new) or new = forward(old), as bytes.
    fn inconsistent_sql(&self) -> String {
        let mut conds = Vec::new();
        for (c, e) in self.new_cols.iter().zip(self.forward_sql) {
            conds.push(format!("NOT (CAST({c} AS BINARY) <=> CAST({e} AS BINARY))"));
        }
        for (c, e) in self.old_cols.iter().zip(self.reverse_sql) {
            conds.push(format!("NOT (CAST({c} AS BINARY) <=> CAST({e} AS BINARY))"));
        }
        format!("SELECT COUNT(*) FROM t WHERE {}", conds.join(" OR "))
    }
}

/// The twin: the same table and rows with the migration run as written; every write to `t` goes
/// to it too, in the new columns (an old-version write as the forward way gives it).
async fn make_twin(db: &mut Conn, case: &Case) {
    db.query_drop(case.table("twin")).await.unwrap();
    db.query_drop(case.seed("twin")).await.unwrap();
    for s in case.as_written("twin") {
        db.query_drop(s).await.unwrap();
    }
}

/// One application version: inserts and updates of its own rows (by parity), each also applied
/// to the twin, each read back; every fifth update writes the row's value again with only its
/// letter case changed.
struct Writer {
    old: bool,
    case: &'static Case,
    counter: Arc<AtomicU64>,
    owned: Vec<i64>,
    /// id → (note, the new columns' values) this client last wrote.
    wrote: BTreeMap<i64, (i64, Vec<String>)>,
    last: Option<(i64, Vec<String>)>,
}

impl Version for Writer {
    async fn round(&mut self, db: &mut Conn, i: u64, errors: &mut Vec<String>) -> bool {
        let (old, case) = (self.old, self.case);
        let cols = case.cols(old);
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let note = (n % 1_000_000) as i64;
        let mut values = if old {
            (case.old_value)(n)
        } else {
            (case.new_value)(n)
        };
        let params = |values: &[String], note: i64| -> Vec<Value> {
            let mut v: Vec<Value> = values.iter().map(|s| Value::from(s.as_str())).collect();
            v.push(Value::from(note));
            v
        };
        let id = if i.is_multiple_of(3) {
            let r = db
                .exec_drop(
                    format!(
                        "INSERT INTO t ({}, note) VALUES ({}?)",
                        cols.join(", "),
                        "?, ".repeat(cols.len())
                    ),
                    params(&values, note),
                )
                .await;
            if let Err(e) = r {
                errors.push(format!("insert (old version: {old}): {e}"));
                return false;
            }
            let id = db.last_insert_id().unwrap() as i64;
            self.owned.push(id);
            id
        } else {
            let (id, again) = match &self.last {
                Some((id, v)) if i.is_multiple_of(5) => (*id, Some(v.clone())),
                _ => (self.owned[(n as usize * 7919) % self.owned.len()], None),
            };
            if let Some(v) = again {
                // Only letter case changes.
                values = v
                    .iter()
                    .map(|s| {
                        if s.chars().any(|c| c.is_uppercase()) {
                            s.to_lowercase()
                        } else {
                            s.to_uppercase()
                        }
                    })
                    .collect();
            }
            let set = cols
                .iter()
                .map(|c| format!("{c} = ?"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut p = params(&values, note);
            p.push(Value::from(id));
            if let Err(e) = db
                .exec_drop(format!("UPDATE t SET {set}, note = ? WHERE id = ?"), p)
                .await
            {
                errors.push(format!("update (old version: {old}): {e}"));
                return false;
            }
            id
        };
        self.last = Some((id, values.clone()));
        let new_values = if old {
            (case.forward)(&values)
        } else {
            values.clone()
        };
        // The twin gets the same logical write, in its new columns.
        let set = case
            .new_cols
            .iter()
            .map(|c| format!("{c} = ?"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut p = params(&new_values, note);
        p.push(Value::from(id));
        let twin = if i.is_multiple_of(3) {
            db.exec_drop(
                format!(
                    "INSERT INTO twin ({}, note, id) VALUES ({}?, ?)",
                    case.new_cols.join(", "),
                    "?, ".repeat(case.new_cols.len())
                ),
                p,
            )
            .await
        } else {
            db.exec_drop(format!("UPDATE twin SET {set}, note = ? WHERE id = ?"), p)
                .await
        };
        if let Err(e) = twin {
            errors.push(format!("twin write: {e}"));
        }
        self.wrote.insert(id, (note, new_values));
        // Read back, byte-exact, what this version wrote.
        let read: Result<Option<Vec<Option<Vec<u8>>>>, _> = db
            .exec_first::<mysql_async::Row, _, _>(
                format!(
                    "SELECT {}, CAST(note AS BINARY) FROM t WHERE id = ?",
                    cols.iter()
                        .map(|c| format!("CAST({c} AS BINARY)"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (id,),
            )
            .await
            .map(|r| {
                r.map(|r| {
                    (0..r.len())
                        .map(|k| r.get::<Option<Vec<u8>>, _>(k).flatten())
                        .collect()
                })
            });
        let mut want: Vec<Option<Vec<u8>>> =
            values.iter().map(|s| Some(s.as_bytes().to_vec())).collect();
        want.push(Some(note.to_string().into_bytes()));
        match read {
            Ok(Some(got)) if got == want => {}
            Ok(got) => errors.push(format!(
                "row {id}: read {got:?}, written {values:?} note {note} (old version: {old})"
            )),
            Err(e) => errors.push(format!("read (old version: {old}): {e}")),
        }
        true
    }
}

struct Client {
    old: bool,
    parity: i64,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
}

async fn run_client(
    c: Client,
    url: String,
    case: &'static Case,
    counter: Arc<AtomicU64>,
) -> (BTreeMap<i64, (i64, Vec<String>)>, Vec<String>) {
    let writer = Writer {
        old: c.old,
        case,
        counter,
        owned: (1..=ROWS).filter(|i| i % 2 == c.parity).collect(),
        wrote: BTreeMap::new(),
        last: None,
    };
    let (writer, errors) = run_version(writer, url, c.stop, c.ops).await;
    (writer.wrote, errors)
}

/// id → (note, the new columns) of a table in its final shape.
async fn rows(c: &mut Conn, case: &Case, table: &str) -> BTreeMap<i64, (i64, Vec<String>)> {
    let sql = format!(
        "SELECT id, note, {} FROM {table}",
        case.new_cols
            .iter()
            .map(|c| format!("CAST({c} AS BINARY)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    c.query::<mysql_async::Row, _>(sql)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let id: i64 = r.get(0).unwrap();
            let note: i64 = r.get(1).unwrap();
            let vals = (2..r.len())
                .map(|k| String::from_utf8(r.get::<Vec<u8>, _>(k).unwrap()).unwrap())
                .collect();
            (id, (note, vals))
        })
        .collect()
}

async fn count(c: &mut Conn, sql: &str) -> i64 {
    c.query_first::<i64, _>(sql).await.unwrap().unwrap()
}

async fn triggers(c: &mut Conn) -> i64 {
    count(
        c,
        "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 't'",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_and_new_versions_run_concurrently_through_expand_and_complete() {
    for &case in CASES {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        p.write("2_split_merge.sql", case.migration);
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
        let clock = std::time::Instant::now();
        let up = wait_bounded(p.spawn(&["up"]), 300, "sluice up");
        let expand_ms = clock.elapsed().as_millis();
        ok(&up, "expand");
        assert_eq!(
            state_of(&p, 2).as_deref(),
            Some("expanded"),
            "{}",
            case.name
        );
        assert_eq!(triggers(&mut db).await, 2, "{}", case.name);
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
        wait_ops(&new_ops, 400).await;
        wait_ops(&old_ops, before_new + 400).await;
        // The end of "between": the old version stops; every row is consistent both ways.
        stop_old.store(true, Ordering::SeqCst);
        let (old_wrote, old_errors) = old.await.unwrap();
        assert_eq!(
            count(&mut db, &case.inconsistent_sql()).await,
            0,
            "{}: rows with old != reverse(new) or new != forward(old)",
            case.name
        );
        let at_complete = new_ops.load(Ordering::SeqCst);
        let complete = wait_bounded(p.spawn(&["complete"]), 120, "sluice complete");
        ok(&complete, "complete");
        wait_ops(&new_ops, at_complete + 200).await;
        stop_new.store(true, Ordering::SeqCst);
        let (new_wrote, new_errors) = new.await.unwrap();
        eprintln!(
            "{}: expand under load {expand_ms} ms; old version {} ops, new version {} ops",
            case.name,
            old_ops.load(Ordering::SeqCst),
            new_ops.load(Ordering::SeqCst)
        );
        assert_eq!(
            old_errors,
            Vec::<String>::new(),
            "{}: old version",
            case.name
        );
        assert_eq!(
            new_errors,
            Vec::<String>::new(),
            "{}: new version",
            case.name
        );
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
        assert_eq!(triggers(&mut db).await, 0, "{}", case.name);
        let got = rows(&mut db, case, "t").await;
        let mut want: BTreeMap<i64, (i64, Vec<String>)> = rows(&mut db, case, "twin").await;
        assert_eq!(got.len(), want.len(), "{}", case.name);
        assert!(got == want, "{}: rows differ from the twin", case.name);
        // and the twin holds exactly the writes (the rows nobody wrote as seeded).
        want.retain(|id, _| !old_wrote.contains_key(id) && !new_wrote.contains_key(id));
        for (id, w) in old_wrote.iter().chain(new_wrote.iter()) {
            assert_eq!(got.get(id), Some(w), "{}: row {id}", case.name);
        }
        assert_same_as_twin(&mut db, "t", "twin", case.name).await;
        ok(&p.run(&["complete"]), "complete again");
    }
}

/// Rollback (run twice) restores `SHOW CREATE TABLE` exactly, the old columns holding both
/// versions' writes; then `up --complete` runs it as the twin.
#[tokio::test]
async fn rollback_restores_the_table_exactly_with_both_versions_writes() {
    for &case in CASES {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = show_create(&mut db, "t").await;
        p.write("2_split_merge.sql", case.migration);
        ok(&p.run(&["up"]), "expand");
        // A new-version insert and update, an old-version update of a row the new one wrote.
        let nv = (case.new_value)(7);
        let marks = "?, ".repeat(nv.len());
        let mut params: Vec<Value> = nv.iter().map(|s| Value::from(s.as_str())).collect();
        params.push(Value::from(-1));
        db.exec_drop(
            format!(
                "INSERT INTO t ({}, note) VALUES ({marks}?)",
                case.new_cols.join(", ")
            ),
            params,
        )
        .await
        .unwrap();
        let set = |cols: &[&str]| {
            cols.iter()
                .map(|c| format!("{c} = ?"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let nv2 = (case.new_value)(8);
        let mut params: Vec<Value> = nv2.iter().map(|s| Value::from(s.as_str())).collect();
        params.push(Value::from(5));
        db.exec_drop(
            format!("UPDATE t SET {} WHERE id = ?", set(case.new_cols)),
            params,
        )
        .await
        .unwrap();
        let ov = (case.old_value)(9);
        let mut params: Vec<Value> = ov.iter().map(|s| Value::from(s.as_str())).collect();
        params.push(Value::from(6));
        db.exec_drop(
            format!("UPDATE t SET {} WHERE id = ?", set(case.old_cols)),
            params,
        )
        .await
        .unwrap();
        assert_eq!(
            count(&mut db, &case.inconsistent_sql()).await,
            0,
            "{}",
            case.name
        );
        for round in 0..2 {
            ok(&p.run(&["rollback"]), "rollback");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{round}");
            assert_eq!(show_create(&mut db, "t").await, before, "{}", case.name);
            assert_eq!(triggers(&mut db).await, 0);
        }
        // The old columns hold the new version's writes, by the `-- sluice:old` expressions.
        let old_of = |rows: Vec<mysql_async::Row>| -> Vec<String> {
            let r = &rows[0];
            (0..r.len())
                .map(|k| r.get::<String, _>(k).unwrap())
                .collect()
        };
        let cols = case.old_cols.join(", ");
        let inserted = old_of(
            db.query(format!("SELECT {cols} FROM t WHERE note = -1"))
                .await
                .unwrap(),
        );
        let updated = old_of(
            db.query(format!("SELECT {cols} FROM t WHERE id = 5"))
                .await
                .unwrap(),
        );
        let old_updated = old_of(
            db.query(format!("SELECT {cols} FROM t WHERE id = 6"))
                .await
                .unwrap(),
        );
        // forward(old) == new for these values (the ways round-trip).
        assert_eq!((case.forward)(&inserted), nv, "{}", case.name);
        assert_eq!((case.forward)(&updated), nv2, "{}", case.name);
        assert_eq!(old_updated, ov, "{}", case.name);
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
    // The server frees a killed session's run lock once it notices the connection closed (a
    // moment later on a loaded machine); until then `status` rightly says "running".
    for _ in 0..50 {
        if state_of(p, 2).as_deref() != Some("running") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// kill -9 before each expand step, after a backfill batch, after the expand (unrecorded), and
/// at complete's and rollback's commit: each rerun (twice) converges on expanded, then applied
/// (the twin's table) or pending (the table as before).
#[tokio::test]
async fn a_kill_at_every_step_converges_on_rerun() {
    for &case in CASES {
        for point in [
            "expand-step-0",
            "expand-step-1",
            "backfill-batch",
            "expand-unrecorded",
        ] {
            for then in ["complete", "rollback"] {
                let what = format!("{}: {point} then {then}", case.name);
                let p = Project::new(Server::MariaDb).await;
                p.write("1_create.sql", &case.create());
                ok(&p.run(&["up"]), "create");
                let mut db = p.db.my().await;
                let before = show_create(&mut db, "t").await;
                p.write("2_split_merge.sql", case.migration);
                killed(&p, &["up"], point);
                assert_eq!(state_of(&p, 2).as_deref(), Some("interrupted"), "{what}");
                for _ in 0..2 {
                    ok(&p.run(&["up"]), &format!("{what}: rerun"));
                    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{what}");
                }
                assert_eq!(count(&mut db, &case.inconsistent_sql()).await, 0, "{what}");
                killed(&p, &[then], "before-commit");
                assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{what}");
                if then == "complete" {
                    for _ in 0..2 {
                        let r = p.run(&["rollback"]);
                        assert_ne!(r.code, 0, "{r:?}");
                        assert!(r.all().contains("gone already"), "{r:?}");
                        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
                    }
                    ok(&p.run(&["complete"]), "complete rerun");
                    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
                    ok(&p.run(&["complete"]), "complete rerun again");
                    make_twin(&mut db, case).await;
                    assert_same_as_twin(&mut db, "t", "twin", &what).await;
                    assert!(
                        rows(&mut db, case, "t").await == rows(&mut db, case, "twin").await,
                        "{what}"
                    );
                } else {
                    for _ in 0..2 {
                        ok(&p.run(&["rollback"]), "rollback rerun");
                        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
                        assert_eq!(show_create(&mut db, "t").await, before, "{what}");
                    }
                }
                assert_eq!(triggers(&mut db).await, 0, "{what}");
            }
        }
    }
}

/// What the phases cannot carry is refused with the cause and the fix before anything runs (exit
/// 2), an expression the server cannot evaluate before anything is made (exit 1, its line named):
/// the migration stays pending, the table as it was, no trigger. Twice, the same.
#[tokio::test]
async fn what_the_phases_cannot_carry_is_refused_before_anything_changes() {
    const ADD: &str = "ALTER TABLE t ADD COLUMN first_name varchar(40), ADD COLUMN last_name varchar(40);\nUPDATE t SET first_name = SUBSTRING_INDEX(name, ' ', 1), last_name = SUBSTRING_INDEX(name, ' ', -1);\n";
    let cases: &[(&str, &str, &str, &str, i32)] = &[
        (
            "CREATE TABLE t (id int PRIMARY KEY, name varchar(81) NOT NULL)",
            "",
            "`-- sluice:old name = <expression of first_name, last_name>`",
            "no -- sluice:old",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, name varchar(81) NOT NULL, UNIQUE KEY u (name))",
            "-- sluice:old name = CONCAT(first_name, ' ', last_name)\n",
            "unique key u is on a dropped column",
            "unique key",
            2,
        ),
        (
            "CREATE TABLE t (id int, name varchar(81) NOT NULL)",
            "-- sluice:old name = CONCAT(first_name, ' ', last_name)\n",
            "no primary key",
            "no primary key",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, name varchar(81) NOT NULL)",
            "-- sluice:old name = CONCAT(first_name, ' ', nosuch)\n",
            "names nosuch, which is not a column of t",
            "unknown column",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, name varchar(81) NOT NULL)",
            "-- sluice:old name = NOSUCHFN(first_name)\n",
            "does not work on t",
            "unknown function",
            1,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, name varchar(81) NOT NULL, last_name int)",
            "-- sluice:old name = CONCAT(first_name, ' ', last_name)\n",
            "Duplicate column name 'last_name'",
            "added name taken",
            1,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, name varchar(81) NOT NULL, g int AS (LENGTH(name)) VIRTUAL)",
            "-- sluice:old name = CONCAT(first_name, ' ', last_name)\n",
            "generated column g is computed from name",
            "generated column",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, name varchar(81) NOT NULL) ROW_FORMAT=COMPRESSED",
            "-- sluice:old name = CONCAT(first_name, ' ', last_name)\n",
            "the table is ROW_FORMAT=COMPRESSED",
            "compressed",
            2,
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, name varchar(81) NOT NULL CHECK (CHAR_LENGTH(name) > 3))",
            "-- sluice:old name = CONCAT(first_name, ' ', last_name)\n",
            "column name has a CHECK of its own",
            "inline check",
            2,
        ),
    ];
    for (setup, old, why, what, code) in cases {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &format!("-- sluice:up\n{setup};\n"));
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = show_create(&mut db, "t").await;
        p.write(
            "2_split.sql",
            &format!("-- sluice:up\n{ADD}{old}ALTER TABLE t DROP COLUMN name;\n"),
        );
        let mut first: Option<String> = None;
        for round in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, *code, "{what} round {round}: {r:?}");
            assert!(r.stderr.contains(why), "{what}: {r:?}");
            assert_eq!(first.get_or_insert(r.stderr.clone()), &r.stderr, "{what}");
            assert_eq!(show_create(&mut db, "t").await, before, "{what}");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{what}");
            assert_eq!(triggers(&mut db).await, 0, "{what}");
        }
    }
}

/// A WHERE and a kept column the expression reads (`total = price * qty WHERE qty > 0`): the
/// backfill keeps the WHERE, an old-version write the WHERE does not match leaves the added
/// column NULL (a change of `qty` counts as the old version's write), a new-version write of
/// `total` sets `price` by the reverse expression. Each row ends as the statements as written
/// leave it given the same writes.
#[tokio::test]
async fn a_where_and_a_read_column_follow_the_update_as_written() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, price int, qty int NOT NULL);\nINSERT INTO t (price, qty) VALUES (2, 3), (4, 0), (5, 1);\n",
    );
    ok(&p.run(&["up"]), "create");
    p.write(
        "2_total.sql",
        "-- sluice:up\nALTER TABLE t ADD COLUMN total int;\nUPDATE t SET total = price * qty WHERE qty > 0;\n-- sluice:old price = total DIV qty\nALTER TABLE t DROP COLUMN price;\n",
    );
    ok(&p.run(&["up"]), "expand");
    let mut db = p.db.my().await;
    for sql in [
        // old version
        "INSERT INTO t (price, qty) VALUES (3, 2)", // id 4: total 6
        "INSERT INTO t (price, qty) VALUES (3, 0)", // id 5: WHERE false, total NULL
        "UPDATE t SET qty = 5 WHERE id = 4",        // total 15
        "UPDATE t SET qty = 0 WHERE id = 3",        // read column changed, WHERE false: NULL
        // new version
        "UPDATE t SET total = 20 WHERE id = 1", // price = 20 DIV 3 = 6
        "INSERT INTO t (total, qty) VALUES (12, 4)", // id 6: price 3
    ] {
        db.query_drop(sql).await.unwrap();
    }
    let got: Vec<(i64, Option<i64>, i64, Option<i64>)> = db
        .query("SELECT id, price, qty, total FROM t ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            (1, Some(6), 3, Some(20)),
            (2, Some(4), 0, None),
            (3, Some(5), 0, None),
            (4, Some(3), 5, Some(15)),
            (5, Some(3), 0, None),
            (6, Some(3), 4, Some(12)),
        ]
    );
    ok(&p.run(&["complete"]), "complete");
    let got: Vec<(i64, i64, Option<i64>)> = db
        .query("SELECT id, qty, total FROM t ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            (1, 3, Some(20)),
            (2, 0, None),
            (3, 0, None),
            (4, 5, Some(15)),
            (5, 0, None),
            (6, 4, Some(12)),
        ]
    );
    db.query_drop("CREATE TABLE twin (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, price int, qty int NOT NULL)")
        .await
        .unwrap();
    for s in [
        "ALTER TABLE twin ADD COLUMN total int",
        "ALTER TABLE twin DROP COLUMN price",
    ] {
        db.query_drop(s).await.unwrap();
    }
    assert_same_as_twin(&mut db, "t", "twin", "total").await;
}

/// A `complete` over an expand phase that is partly gone (a rollback killed after its schema
/// change, before its record; a trigger dropped by hand) would drop the dropped columns, whose
/// data then exists nowhere else: refused (exit 11) with the fix (rerun `sluice rollback`), the
/// table and history unchanged, twice; the rollback rerun converges on the table as before with
/// the new version's write kept in the old columns.
#[tokio::test]
async fn complete_refuses_an_expand_phase_a_cut_off_rollback_left_behind() {
    type Break = fn(&Project) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>;
    let cases: &[(&str, Break)] = &[
        ("rollback killed before its record", |p| {
            Box::pin(async move { killed(p, &["rollback"], "before-commit") })
        }),
        ("a trigger dropped", |p| {
            Box::pin(async move {
                let mut db = p.db.my().await;
                let name: String = db
                    .query_first("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE '%sluice\\_smu'")
                    .await
                    .unwrap()
                    .unwrap();
                db.query_drop(format!("DROP TRIGGER `{name}`"))
                    .await
                    .unwrap();
            })
        }),
    ];
    for (what, cut) in cases {
        let case = &SPLIT;
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        let mut db = p.db.my().await;
        let before = show_create(&mut db, "t").await;
        p.write("2_split_merge.sql", case.migration);
        ok(&p.run(&["up"]), "expand");
        // The new version's write: only `name` keeps it once the added columns are gone.
        db.query_drop("UPDATE t SET first_name = 'Zed', last_name = 'Kay' WHERE id = 3")
            .await
            .unwrap();
        cut(&p).await;
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
        let name: String = db
            .query_first("SELECT name FROM t WHERE id = 3")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(name, "Zed Kay", "{what}");
    }
}

/// One split or merge whose expressions the triggers run as written (on the row as a derived
/// table named like the table): the setup (table `t`, seeded), the migration's up part, the two
/// versions' writes while expanded, and `t`'s rows as `CONCAT_WS('|', ...)` by id, while
/// expanded (every column) and after complete (what is left).
struct AsWritten {
    what: &'static str,
    setup: &'static str,
    migration: &'static str,
    writes: &'static [&'static str],
    expanded: (&'static str, &'static [&'static str]),
    completed: (&'static str, &'static [&'static str]),
}

const AS_WRITTEN: &[AsWritten] = &[
    AsWritten {
        what: "a correlated subquery: its own columns are its table's, t.status the row's",
        setup: "CREATE TABLE statuses (id int PRIMARY KEY, status varchar(10) NOT NULL);\nINSERT INTO statuses VALUES (1, 'a'), (2, 'b'), (3, 'c');\nCREATE TABLE t (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, status varchar(10) NOT NULL, note int);\nINSERT INTO t (status, note) VALUES ('a', 1), ('b', 2);\n",
        migration: "ALTER TABLE t ADD COLUMN status_id int;\nUPDATE t SET status_id = (SELECT s.id FROM statuses s WHERE s.status = t.status);\n-- sluice:old status = (SELECT s.status FROM statuses s WHERE s.id = status_id)\nALTER TABLE t DROP COLUMN status;\n",
        writes: &[
            "INSERT INTO t (status, note) VALUES ('c', 3)", // old: status_id 3
            "INSERT INTO t (status_id, note) VALUES (2, 4)", // new: status b
            "UPDATE t SET status_id = 3 WHERE id = 1", // new: status c
            "UPDATE t SET status = 'a' WHERE id = 2", // old: status_id 1
            // new, INSERT ... SELECT and ... WITH leaving the NOT NULL status out
            "INSERT INTO t (status_id, note) SELECT 1, 5",
            "INSERT INTO t (status_id, note) WITH x AS (SELECT 2 AS s) SELECT s, 6 FROM x",
        ],
        expanded: (
            "SELECT CONCAT_WS('|', id, status, status_id, note) FROM t ORDER BY id",
            &["1|c|3|1", "2|a|1|2", "3|c|3|3", "4|b|2|4", "5|a|1|5", "6|b|2|6"],
        ),
        completed: (
            "SELECT CONCAT_WS('|', id, status_id, note) FROM t ORDER BY id",
            &["1|3|1", "2|1|2", "3|3|3", "4|2|4", "5|1|5", "6|2|6"],
        ),
    },
    AsWritten {
        what: "BINARY, a charset introducer, MOD()",
        setup: "CREATE TABLE t (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, name varchar(20) NOT NULL, n int NOT NULL);\nINSERT INTO t (name, n) VALUES ('x', 17), ('X', 250);\n",
        migration: "ALTER TABLE t ADD COLUMN is_x int, ADD COLUMN tag varchar(40);\nUPDATE t SET is_x = BINARY name = 'x', tag = CONCAT(_utf8mb4'n', MOD(n, 10), '/', FLOOR(n / 100));\n-- sluice:old name = IF(is_x, _latin1'x', 'X')\n-- sluice:old n = CAST(SUBSTRING(tag, 2, 1) AS SIGNED)\nALTER TABLE t DROP COLUMN name, DROP COLUMN n;\n",
        writes: &[
            "INSERT INTO t (name, n) VALUES ('X', 3)", // old
            "INSERT INTO t (is_x, tag) VALUES (1, 'n4/0')", // new
            "UPDATE t SET name = 'x' WHERE id = 2", // old: is_x 1
            "INSERT INTO t (is_x, tag) SELECT 0, 'n5/0'", // new, INSERT ... SELECT
        ],
        expanded: (
            "SELECT CONCAT_WS('|', id, name, n, is_x, tag) FROM t ORDER BY id",
            &["1|x|17|1|n7/0", "2|x|250|1|n0/2", "3|X|3|0|n3/0", "4|x|4|1|n4/0", "5|X|5|0|n5/0"],
        ),
        completed: (
            "SELECT CONCAT_WS('|', id, is_x, tag) FROM t ORDER BY id",
            &["1|1|n7/0", "2|1|n0/2", "3|0|n3/0", "4|1|n4/0", "5|0|n5/0"],
        ),
    },
    AsWritten {
        what: "a dropped column named with a space, a column named with a backtick",
        setup: "CREATE TABLE t (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, `n m` varchar(81) NOT NULL, `b``q` int);\nINSERT INTO t (`n m`, `b``q`) VALUES ('Ann/Lee', 1);\n",
        migration: "ALTER TABLE t ADD COLUMN first varchar(40), ADD COLUMN last varchar(40);\nUPDATE t SET first = SUBSTRING_INDEX(`n m`, '/', 1), last = SUBSTRING_INDEX(`n m`, '/', -1);\n-- sluice:old `n m` = CONCAT(first, '/', last)\nALTER TABLE t DROP COLUMN `n m`;\n",
        writes: &[
            "INSERT INTO t (`n m`, `b``q`) VALUES ('Bo/Kay', 2)", // old
            "INSERT INTO t (first, last, `b``q`) VALUES ('Cy', 'Day', 3)", // new
            "INSERT INTO t (first, last) SELECT 'Di', 'Eve'", // new, INSERT ... SELECT
        ],
        expanded: (
            "SELECT CONCAT_WS('|', id, `n m`, first, last) FROM t ORDER BY id",
            &["1|Ann/Lee|Ann|Lee", "2|Bo/Kay|Bo|Kay", "3|Cy/Day|Cy|Day", "4|Di/Eve|Di|Eve"],
        ),
        completed: (
            "SELECT CONCAT_WS('|', id, first, last) FROM t ORDER BY id",
            &["1|Ann|Lee", "2|Bo|Kay", "3|Cy|Day", "4|Di|Eve"],
        ),
    },
    AsWritten {
        what: "a JSON column (its implicit json_valid check stays allowed)",
        setup: "CREATE TABLE t (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, doc json NOT NULL);\nINSERT INTO t (doc) VALUES ('{\"a\": 1}');\n",
        migration: "ALTER TABLE t ADD COLUMN a int;\nUPDATE t SET a = JSON_VALUE(doc, '$.a');\n-- sluice:old doc = JSON_OBJECT('a', a)\nALTER TABLE t DROP COLUMN doc;\n",
        writes: &[
            "INSERT INTO t (doc) VALUES ('{\"a\": 2}')",
            "INSERT INTO t (a) VALUES (3)",
            "INSERT INTO t (a) SELECT 4",
        ],
        expanded: (
            "SELECT CONCAT_WS('|', id, doc, a) FROM t ORDER BY id",
            &["1|{\"a\": 1}|1", "2|{\"a\": 2}|2", "3|{\"a\": 3}|3", "4|{\"a\": 4}|4"],
        ),
        completed: (
            "SELECT CONCAT_WS('|', id, a) FROM t ORDER BY id",
            &["1|1", "2|2", "3|3", "4|4"],
        ),
    },
];

async fn texts(db: &mut Conn, sql: &str) -> Vec<String> {
    db.query(sql).await.unwrap()
}

/// The triggers and the backfill run each expression as written: a correlated subquery keeps its
/// own columns, `BINARY`, introducers, backslash escapes, `MOD`, `INTERVAL()` keep their meaning;
/// the new version's INSERT ... SELECT / ... WITH that leaves a NOT NULL dropped column out
/// works; a dropped column named with a space or a backtick is found. 0 client errors, each row
/// exactly as expected while expanded and after complete; a rollback restores SHOW CREATE TABLE.
#[tokio::test]
async fn expressions_run_as_written_on_the_row() {
    for case in AS_WRITTEN {
        for end in ["complete", "rollback"] {
            let what = format!("{} ({end})", case.what);
            let p = Project::new(Server::MariaDb).await;
            p.write("1_create.sql", &format!("-- sluice:up\n{}", case.setup));
            ok(&p.run(&["up"]), "create");
            let mut db = p.db.my().await;
            let before = show_create(&mut db, "t").await;
            p.write("2_split.sql", &format!("-- sluice:up\n{}", case.migration));
            let r = p.run(&["up"]);
            assert_eq!(r.code, 0, "{what}: {r:?}");
            for w in case.writes {
                if let Err(e) = db.query_drop(*w).await {
                    panic!("{what}: {w}: {e}");
                }
            }
            assert_eq!(
                texts(&mut db, case.expanded.0).await,
                case.expanded.1,
                "{what}"
            );
            if end == "complete" {
                ok(&p.run(&["complete"]), &what);
                assert_eq!(
                    texts(&mut db, case.completed.0).await,
                    case.completed.1,
                    "{what}"
                );
            } else {
                ok(&p.run(&["rollback"]), &what);
                assert_eq!(show_create(&mut db, "t").await, before, "{what}");
            }
            assert_eq!(triggers(&mut db).await, 0, "{what}");
        }
    }
}

/// An UPDATE sluice's SQL parser cannot read (MariaDB forms it lacks: infix `MOD`, `INTERVAL()`,
/// a backslash escape in a string) is refused as unreadable — naming the statement and the forms
/// it reads — not as a migration of the wrong shape; twice, nothing changed. The same split in
/// a form the parser reads then runs in two phases.
#[tokio::test]
async fn an_update_the_parser_cannot_read_is_named_as_such() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, s varchar(20));\nINSERT INTO t VALUES (1, 9, 'a'), (2, 60, 'b');\n",
    );
    ok(&p.run(&["up"]), "create");
    let mut db = p.db.my().await;
    let before = show_create(&mut db, "t").await;
    let migration = |expr: &str| {
        format!("-- sluice:up\nALTER TABLE t ADD COLUMN m int;\nUPDATE t SET m = {expr};\n-- sluice:old n = m\nALTER TABLE t DROP COLUMN n;\n")
    };
    for expr in ["n MOD 7", "INTERVAL(n, 10, 50)", "IF(s = '\\\\', 0, n)"] {
        p.write("2_split.sql", &migration(expr));
        for round in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 2, "{expr} round {round}: {r:?}");
            assert!(
                r.stderr.contains(&format!(
                    "line 3: migration 2_split: sluice's SQL parser cannot read `UPDATE t SET m = {expr}` exactly"
                )),
                "{expr}: {r:?}"
            );
            assert!(r.stderr.contains("`MOD(a, b)`"), "{expr}: {r:?}");
            assert_eq!(show_create(&mut db, "t").await, before, "{expr}");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{expr}");
            assert_eq!(triggers(&mut db).await, 0, "{expr}");
        }
    }
    p.write("2_split.sql", &migration("MOD(n, 7)"));
    ok(&p.run(&["up"]), "readable form");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
}
