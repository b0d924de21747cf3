//! Issue 14 on MariaDB: `UPDATE t SET c = <expr> WHERE c IS NULL; ALTER TABLE t MODIFY c <its
//! definition> NOT NULL` runs as expand (`sluice up`: BEFORE INSERT and BEFORE UPDATE fill
//! triggers after the table's own, the UPDATE as a paced backfill; the column stays NULL-able) →
//! both versions work → contract (`sluice complete`: the MODIFY through the online path, the
//! triggers dropped), or rollback (the triggers dropped; the filled values stay).
//!
//! An old-version client (INSERT ... VALUES and INSERT ... SELECT that leave `region` out, UPDATEs
//! that set it NULL) runs from before expand to the end of "between", a new-version client (writes
//! `region`) from expand through complete: 0 errors on both; the end state (SHOW CREATE TABLE and
//! rows) equals a twin given the same writes, then the two statements as written. Rollback
//! restores SHOW CREATE TABLE exactly; kills at each point of expand, complete and rollback
//! converge on rerun; near misses run as written, as before; what the triggers cannot carry is
//! refused before anything changes.

mod common;

use common::mariadb_two_versions::{ok, run_version, show_create, state_of, wait_ops, Version};
use common::{wait_bounded, Project, Run};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_testkit::Server;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The table (as `name`), with a BEFORE INSERT trigger of its own that the fill must follow.
fn create(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (id bigint AUTO_INCREMENT PRIMARY KEY, country varchar(10) NOT NULL, region varchar(20) DEFAULT NULL COMMENT 'where', note int);\n\
         CREATE TRIGGER {name}_audit BEFORE INSERT ON {name} FOR EACH ROW SET NEW.note = IFNULL(NEW.note, 0) + 1;"
    )
}

fn seed(name: &str, rows: i64) -> String {
    format!("INSERT INTO {name} (id, country, region) SELECT seq, CONCAT('s', seq), IF(seq % 5 = 0, 'given', NULL) FROM seq_1_to_{rows}")
}

const EXPR: &str = "UPPER(country)";

fn migration(name: &str) -> String {
    format!("UPDATE {name} SET region = {EXPR} WHERE region IS NULL;\nALTER TABLE {name} MODIFY region varchar(20) NOT NULL COMMENT 'where';\n")
}

fn setup(p: &Project, rows: i64) {
    p.write(
        "1_create.sql",
        &format!("{}\n{};\n", create("t"), seed("t", rows)),
    );
    ok(&p.run(&["up"]), "create");
}

/// The twin: the same table and seed, in the same database.
async fn make_twin(db: &mut Conn, rows: i64) {
    for s in create("twin").split(";\n") {
        if !s.trim().is_empty() {
            db.query_drop(s).await.unwrap();
        }
    }
    db.query_drop(seed("twin", rows)).await.unwrap();
}

/// The two statements as written on the twin.
async fn twin_as_written(db: &mut Conn) {
    for s in migration("twin").split(";\n") {
        if !s.trim().is_empty() {
            db.query_drop(s).await.unwrap();
        }
    }
}

async fn rows(c: &mut Conn, table: &str) -> BTreeMap<i64, (String, Option<String>, Option<i64>)> {
    c.query::<(i64, String, Option<String>, Option<i64>), _>(format!(
        "SELECT id, CAST(country AS BINARY), CAST(region AS BINARY), note FROM {table}"
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|(id, c, r, n)| (id, (c, r, n)))
    .collect()
}

async fn count(c: &mut Conn, sql: &str) -> i64 {
    c.query_first::<i64, _>(sql).await.unwrap().unwrap()
}

async fn sluice_triggers(c: &mut Conn) -> i64 {
    count(
        c,
        "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE '%sluice_fn%'",
    )
    .await
}

/// One application version's writes, each mirrored on the twin (the same logical write, with the
/// id the real table gave). Old: INSERT ... VALUES and INSERT ... SELECT leaving `region` out, an
/// UPDATE of a seeded row (even id) setting it NULL. New: writes `region` always (odd seeded
/// rows and its own inserts).
struct Writer {
    old: bool,
    rows: i64,
    url: String,
    twin: Option<Conn>,
}

impl Writer {
    async fn mirror(&mut self, sql: String, errors: &mut Vec<String>) {
        if self.twin.is_none() {
            self.twin = Some(Conn::from_url(self.url.clone()).await.unwrap());
        }
        if let Err(e) = self.twin.as_mut().unwrap().query_drop(&sql).await {
            errors.push(format!("twin: {sql}: {e}"));
        }
    }
}

impl Version for Writer {
    async fn round(&mut self, db: &mut Conn, i: u64, errors: &mut Vec<String>) -> bool {
        let country = format!("{}{i}", if self.old { "o" } else { "n" });
        let seeded = (i as i64 * 7) % self.rows + 1;
        let (sql, twin) = match (self.old, i % 3) {
            (true, 0) => (
                format!("INSERT INTO t (country) VALUES ('{country}')"),
                None,
            ),
            (true, 1) => (format!("INSERT INTO t (country) SELECT '{country}'"), None),
            (true, _) => {
                let id = seeded - seeded % 2 + 2;
                let id = if id > self.rows { 2 } else { id };
                let s =
                    format!("UPDATE t SET region = NULL, country = '{country}' WHERE id = {id}");
                (s.clone(), Some(s.replace("UPDATE t", "UPDATE twin")))
            }
            (false, 0) => (
                format!("INSERT INTO t (country, region) VALUES ('{country}', 'r{i}')"),
                None,
            ),
            (false, _) => {
                let id = seeded | 1;
                let id = if id > self.rows { 1 } else { id };
                let s =
                    format!("UPDATE t SET region = 'r{i}', country = '{country}' WHERE id = {id}");
                (s.clone(), Some(s.replace("UPDATE t", "UPDATE twin")))
            }
        };
        if let Err(e) = db.query_drop(&sql).await {
            errors.push(format!("{sql}: {e}"));
            return false;
        }
        let twin = match twin {
            Some(t) => t,
            None => {
                let id: i64 = db
                    .query_first("SELECT LAST_INSERT_ID()")
                    .await
                    .unwrap()
                    .unwrap();
                let region = match self.old {
                    true => String::new(),
                    false => format!(", region = 'r{i}'"),
                };
                format!("INSERT INTO twin SET id = {id}, country = '{country}'{region}")
            }
        };
        self.mirror(twin, errors).await;
        true
    }
}

fn client(
    old: bool,
    rows: i64,
    url: String,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let w = Writer {
            old,
            rows,
            url: url.clone(),
            twin: None,
        };
        run_version(w, url, stop, ops).await.1
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_and_new_versions_run_concurrently_through_expand_and_complete() {
    const ROWS: i64 = 3000;
    let p = Project::new(Server::MariaDb).await;
    setup(&p, ROWS);
    let mut db = p.db.my().await;
    make_twin(&mut db, ROWS).await;
    p.write("2_fill.sql", &migration("t"));

    let (stop_old, stop_new) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (old_ops, new_ops) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let old = client(
        true,
        ROWS,
        p.db.url.clone(),
        stop_old.clone(),
        old_ops.clone(),
    );
    wait_ops(&old_ops, 100).await;
    let plan = p.run(&["plan"]);
    ok(&plan, "plan");
    assert!(
        plan.stdout.contains("two application versions live")
            && plan.stdout.contains("FOLLOWS `t_audit`")
            && plan.stdout.contains("ALTER TABLE t MODIFY region varchar(20) NOT NULL COMMENT 'where'; DROP TRIGGER IF EXISTS"),
        "{plan:?}"
    );
    let clock = std::time::Instant::now();
    let up = wait_bounded(p.spawn(&["up"]), 300, "sluice up");
    let expand_ms = clock.elapsed().as_millis();
    ok(&up, "expand");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(sluice_triggers(&mut db).await, 2);
    // Still NULL-able while the old version runs (INSERT ... SELECT would fail 1364 otherwise).
    assert!(show_create(&mut db, "t")
        .await
        .contains("`region` varchar(20) DEFAULT NULL"));
    let before_new = old_ops.load(Ordering::SeqCst);
    let new = client(
        false,
        ROWS,
        p.db.url.clone(),
        stop_new.clone(),
        new_ops.clone(),
    );
    wait_ops(&new_ops, 300).await;
    wait_ops(&old_ops, before_new + 300).await;
    // The end of "between": the old version stops; no row is NULL.
    stop_old.store(true, Ordering::SeqCst);
    let old_errors = old.await.unwrap();
    assert_eq!(
        count(&mut db, "SELECT COUNT(*) FROM t WHERE region IS NULL").await,
        0
    );
    let at_complete = new_ops.load(Ordering::SeqCst);
    let clock = std::time::Instant::now();
    let complete = wait_bounded(p.spawn(&["complete"]), 300, "sluice complete");
    let complete_ms = clock.elapsed().as_millis();
    ok(&complete, "complete");
    wait_ops(&new_ops, at_complete + 100).await;
    stop_new.store(true, Ordering::SeqCst);
    let new_errors = new.await.unwrap();
    eprintln!(
        "expand under load {expand_ms} ms, complete {complete_ms} ms; old version {} ops, new version {} ops",
        old_ops.load(Ordering::SeqCst),
        new_ops.load(Ordering::SeqCst)
    );
    assert_eq!(old_errors, Vec::<String>::new(), "old version");
    assert_eq!(new_errors, Vec::<String>::new(), "new version");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    assert_eq!(sluice_triggers(&mut db).await, 0);
    twin_as_written(&mut db).await;
    let (got, want) = (rows(&mut db, "t").await, rows(&mut db, "twin").await);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "rows differ from the twin");
    assert_eq!(
        show_create(&mut db, "t").await,
        show_create(&mut db, "twin").await
    );
    ok(&p.run(&["complete"]), "complete again");
}

/// Rollback from expanded (twice) restores SHOW CREATE TABLE exactly and drops the triggers; the
/// filled values stay; `up --complete` then runs both phases and leaves the twin's table.
#[tokio::test]
async fn rollback_restores_the_schema_exactly() {
    let p = Project::new(Server::MariaDb).await;
    setup(&p, 300);
    let mut db = p.db.my().await;
    let before = common::mariadb_two_versions::show_create_exact(&mut db, "t").await;
    p.write("2_fill.sql", &migration("t"));
    // The dry run shows the expand steps and what complete runs later; it changes nothing.
    let dry = p.run(&["up", "--dry-run"]);
    ok(&dry, "dry run");
    assert!(
        dry.stdout.contains("FOLLOWS `t_audit`")
            && dry.stdout.contains("backfill in batches: UPDATE `t` SET `region` = UPPER(country) WHERE `region` IS NULL")
            && dry.stdout.contains("`sluice complete` (contract): ALTER TABLE t MODIFY region varchar(20) NOT NULL COMMENT 'where'; DROP TRIGGER"),
        "{dry:?}"
    );
    assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
    assert_eq!(sluice_triggers(&mut db).await, 0);
    ok(&p.run(&["up"]), "expand");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    for _ in 0..2 {
        ok(&p.run(&["rollback"]), "rollback");
        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
        assert_eq!(
            common::mariadb_two_versions::show_create_exact(&mut db, "t").await,
            before
        );
        assert_eq!(sluice_triggers(&mut db).await, 0);
    }
    // The filled values stay (not invertible, as the README says).
    assert_eq!(
        count(&mut db, "SELECT COUNT(*) FROM t WHERE region IS NULL").await,
        0
    );
    db.query_drop("INSERT INTO t (country) VALUES ('x')")
        .await
        .unwrap();
    ok(&p.run(&["up", "--complete"]), "up --complete");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    make_twin(&mut db, 300).await;
    db.query_drop("UPDATE twin SET region = UPPER(country) WHERE region IS NULL")
        .await
        .unwrap();
    db.query_drop("INSERT INTO twin (id, country) SELECT 301, 'x'")
        .await
        .unwrap();
    twin_as_written(&mut db).await;
    assert_eq!(
        show_create(&mut db, "t").await,
        show_create(&mut db, "twin").await
    );
    assert!(rows(&mut db, "t").await == rows(&mut db, "twin").await);
}

fn killed(p: &Project, args: &[&str], point: &str) {
    let r: Run = p.run_crashing(args, point);
    assert_ne!(r.code, 0, "{point}: {r:?}");
    assert!(r.stderr.contains(point), "{point}: {r:?}");
}

/// kill -9 before each expand step, after a backfill batch, after the expand (unrecorded), after
/// complete's MODIFY and at complete's and rollback's commit: each rerun (twice) converges on
/// expanded, then applied (the twin's table) or pending (the table as before). A rollback after
/// complete's MODIFY ran is refused (the old version's INSERTs fail already): complete finishes.
#[tokio::test]
async fn a_kill_at_every_step_converges_on_rerun() {
    const ROWS: i64 = 300;
    for point in [
        "expand-step-0",
        "expand-step-1",
        "expand-step-2",
        "backfill-batch",
        "expand-unrecorded",
    ] {
        for then in [
            ("complete", "complete-altered"),
            ("complete", "before-commit"),
            ("rollback", "before-commit"),
        ] {
            let what = format!("{point} then {then:?}");
            let p = Project::new(Server::MariaDb).await;
            setup(&p, ROWS);
            let mut db = p.db.my().await;
            let before = show_create(&mut db, "t").await;
            p.write("2_fill.sql", &migration("t"));
            killed(&p, &["up"], point);
            assert_eq!(state_of(&p, 2).as_deref(), Some("interrupted"), "{what}");
            for _ in 0..2 {
                ok(&p.run(&["up"]), &format!("{what}: rerun"));
                assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{what}");
            }
            assert_eq!(sluice_triggers(&mut db).await, 2, "{what}");
            assert_eq!(
                count(&mut db, "SELECT COUNT(*) FROM t WHERE region IS NULL").await,
                0,
                "{what}"
            );
            killed(&p, &[then.0], then.1);
            assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{what}");
            if then.0 == "complete" {
                if then.1 == "complete-altered" {
                    for _ in 0..2 {
                        let r = p.run(&["rollback"]);
                        assert_eq!(r.code, 1, "{what}: {r:?}");
                        assert!(r.all().contains("MODIFY ran already"), "{what}: {r:?}");
                        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
                    }
                }
                ok(&p.run(&["complete"]), "complete rerun");
                assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
                ok(&p.run(&["complete"]), "complete rerun again");
                make_twin(&mut db, ROWS).await;
                twin_as_written(&mut db).await;
                assert_eq!(
                    show_create(&mut db, "t").await,
                    show_create(&mut db, "twin").await,
                    "{what}"
                );
                assert!(
                    rows(&mut db, "t").await == rows(&mut db, "twin").await,
                    "{what}"
                );
            } else {
                for _ in 0..2 {
                    ok(&p.run(&["rollback"]), "rollback rerun");
                    assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
                    assert_eq!(show_create(&mut db, "t").await, before, "{what}");
                }
            }
            assert_eq!(sluice_triggers(&mut db).await, 0, "{what}");
        }
    }
}

/// Near misses run as written, as before: applied in one go, no trigger, the table the
/// statements as written leave (each also run on a twin by hand).
#[tokio::test]
async fn near_misses_keep_todays_behaviour() {
    let cases: &[(&str, &str)] = &[
        (
            "another WHERE",
            "UPDATE {t} SET region = UPPER(country) WHERE region IS NULL AND id > 0;\nALTER TABLE {t} MODIFY region varchar(20) NOT NULL COMMENT 'where';\n",
        ),
        (
            "type changed in the MODIFY",
            "UPDATE {t} SET region = UPPER(country) WHERE region IS NULL;\nALTER TABLE {t} MODIFY region varchar(30) NOT NULL COMMENT 'where';\n",
        ),
        (
            "a default added in the MODIFY",
            "UPDATE {t} SET region = UPPER(country) WHERE region IS NULL;\nALTER TABLE {t} MODIFY region varchar(20) NOT NULL DEFAULT 'x' COMMENT 'where';\n",
        ),
        (
            "the comment dropped in the MODIFY",
            "UPDATE {t} SET region = UPPER(country) WHERE region IS NULL;\nALTER TABLE {t} MODIFY region varchar(20) NOT NULL;\n",
        ),
        (
            "another statement",
            "UPDATE {t} SET region = UPPER(country) WHERE region IS NULL;\nALTER TABLE {t} MODIFY region varchar(20) NOT NULL COMMENT 'where';\nALTER TABLE {t} ADD COLUMN x int;\n",
        ),
    ];
    for (what, sql) in cases {
        let p = Project::new(Server::MariaDb).await;
        setup(&p, 50);
        let mut db = p.db.my().await;
        make_twin(&mut db, 50).await;
        p.write("2_near.sql", &sql.replace("{t}", "t"));
        let plan = p.run(&["plan"]);
        ok(&plan, what);
        assert!(
            !plan.stdout.contains("two application versions live"),
            "{what}: {plan:?}"
        );
        ok(&p.run(&["up"]), what);
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"), "{what}");
        assert_eq!(sluice_triggers(&mut db).await, 0, "{what}");
        for s in sql.replace("{t}", "twin").split(";\n") {
            if !s.trim().is_empty() {
                db.query_drop(s).await.unwrap();
            }
        }
        assert_eq!(
            show_create(&mut db, "t").await,
            show_create(&mut db, "twin").await,
            "{what}"
        );
        assert!(
            rows(&mut db, "t").await == rows(&mut db, "twin").await,
            "{what}"
        );
    }
}

/// What the triggers cannot carry is refused with the cause and the fix before anything changes
/// (exit 2), rows the UPDATE would leave NULL before anything is made (exit 1): the migration
/// stays pending, the table as it was, no trigger. Twice, the same.
#[tokio::test]
async fn what_cannot_be_carried_is_refused_before_anything_changes() {
    let cases: &[(&str, &str, i32, &str)] = &[
        (
            "a generated column in the expression",
            "UPDATE t SET region = CONCAT('g', g) WHERE region IS NULL;\nALTER TABLE t MODIFY region varchar(20) NOT NULL COMMENT 'where';\n",
            2,
            "reads generated column g",
        ),
        (
            "the AUTO_INCREMENT column in the expression",
            "UPDATE t SET region = CONCAT('r', id) WHERE region IS NULL;\nALTER TABLE t MODIFY region varchar(20) NOT NULL COMMENT 'where';\n",
            2,
            "AUTO_INCREMENT column",
        ),
        (
            "an UPDATE the parser cannot read exactly",
            "UPDATE t SET region = CONCAT(id MOD 3, 'x') WHERE region IS NULL;\nALTER TABLE t MODIFY region varchar(20) NOT NULL COMMENT 'where';\n",
            2,
            "parser cannot read `UPDATE t SET region = CONCAT(id MOD 3, 'x') WHERE region IS NULL`",
        ),
        (
            "rows left NULL",
            "UPDATE t SET region = NULLIF(country, country) WHERE region IS NULL;\nALTER TABLE t MODIFY region varchar(20) NOT NULL COMMENT 'where';\n",
            1,
            "would still hold NULL after the UPDATE",
        ),
    ];
    for (what, sql, code, want) in cases {
        let p = Project::new(Server::MariaDb).await;
        setup(&p, 50);
        let mut db = p.db.my().await;
        db.query_drop("ALTER TABLE t ADD COLUMN g int AS (id * 2) VIRTUAL")
            .await
            .unwrap();
        let before = show_create(&mut db, "t").await;
        let data = rows(&mut db, "t").await;
        p.write("2_fill.sql", sql);
        for _ in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, *code, "{what}: {r:?}");
            assert!(r.all().contains(want), "{what}: {r:?}");
            assert!(
                matches!(state_of(&p, 2).as_deref(), Some("pending")),
                "{what}"
            );
            assert_eq!(show_create(&mut db, "t").await, before, "{what}");
            assert!(rows(&mut db, "t").await == data, "{what}");
            assert_eq!(sluice_triggers(&mut db).await, 0, "{what}");
        }
        // The way out the message names: as written, in one phase.
        if *code == 2 {
            ok(&p.run(&["up", "--as-written"]), what);
            assert_eq!(state_of(&p, 2).as_deref(), Some("applied"), "{what}");
            assert_eq!(
                count(&mut db, "SELECT COUNT(*) FROM t WHERE region IS NULL").await,
                0,
                "{what}"
            );
        }
    }
}

/// Where the check on two empty copies cannot run (a system-versioned table, whose MODIFY the
/// copies refuse; a user without CREATE), the migration is refused before anything (exit 2, or 9
/// for the privilege `up` needs anyway; plan: the error finding, exit 7; dry run: exit 2), twice
/// alike, nothing changed and no copy left —
/// never run as written for want of the check (the old version's INSERTs would fail at once).
#[tokio::test]
async fn a_check_that_cannot_run_refuses_instead_of_running_as_written() {
    for shape in ["system-versioned table", "user without CREATE"] {
        let p = Project::new(Server::MariaDb).await;
        setup(&p, 50);
        let mut db = p.db.my().await;
        let mut url = None;
        if shape == "system-versioned table" {
            db.query_drop("ALTER TABLE t ADD SYSTEM VERSIONING")
                .await
                .unwrap();
        } else {
            let user = format!("fillnc_{}", std::process::id());
            let dbname: String = db.query_first("SELECT DATABASE()").await.unwrap().unwrap();
            let mut su = p.db.my_su().await;
            for host in ["%", "localhost"] {
                su.query_drop(format!("DROP USER IF EXISTS '{user}'@'{host}'"))
                    .await
                    .unwrap();
                su.query_drop(format!("CREATE USER '{user}'@'{host}'"))
                    .await
                    .unwrap();
                su.query_drop(format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE, ALTER, INDEX, TRIGGER, LOCK TABLES ON `{dbname}`.* TO '{user}'@'{host}'"
                ))
                .await
                .unwrap();
            }
            url = Some((
                user.clone(),
                format!("mysql://{user}@127.0.0.1:3306/{dbname}"),
            ));
        }
        let before = show_create(&mut db, "t").await;
        let data = rows(&mut db, "t").await;
        p.write("2_fill.sql", &migration("t"));
        let run = |args: &[&str]| -> common::Run {
            let mut c = p.command(args);
            if let Some((_, u)) = &url {
                c.env("DATABASE_URL", u);
            }
            c.output().unwrap().into()
        };
        for _ in 0..2 {
            let plan = run(&["plan"]);
            assert_eq!(plan.code, 7, "{shape}: {plan:?}");
            assert!(
                plan.stdout.contains("two-phase-refused"),
                "{shape}: {plan:?}"
            );
            let dry = run(&["up", "--dry-run"]);
            assert_eq!(dry.code, 2, "{shape}: {dry:?}");
            let r = run(&["up"]);
            if url.is_none() {
                assert_eq!(r.code, 2, "{shape}: {r:?}");
                assert!(
                    r.all().contains("on two empty copies of the table"),
                    "{shape}: {r:?}"
                );
                assert!(r.all().contains("--as-written"), "{shape}: {r:?}");
            } else {
                // sluice's own tables need CREATE too: refused as a missing privilege, with
                // the GRANT to run, before anything.
                assert_eq!(r.code, 9, "{shape}: {r:?}");
                assert!(r.all().contains("GRANT CREATE"), "{shape}: {r:?}");
            }
            assert!(
                matches!(state_of(&p, 2).as_deref(), Some("pending")),
                "{shape}"
            );
            assert_eq!(show_create(&mut db, "t").await, before, "{shape}");
            assert!(rows(&mut db, "t").await == data, "{shape}");
            assert_eq!(sluice_triggers(&mut db).await, 0, "{shape}");
            assert_eq!(
                count(
                    &mut db,
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'sluice\\_fill\\_probe%'"
                )
                .await,
                0,
                "{shape}: no copy left"
            );
        }
        if let Some((user, _)) = &url {
            let mut su = p.db.my_su().await;
            for host in ["%", "localhost"] {
                su.query_drop(format!("DROP USER IF EXISTS '{user}'@'{host}'"))
                    .await
                    .unwrap();
            }
        }
    }
}
