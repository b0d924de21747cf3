//! Issue 14 on MariaDB: what is made on either name of an open column rename after its expand.
//! MariaDB cannot roll DDL back, so a contract or rollback that failed on it part-way would have
//! dropped the sync triggers already:
//!
//! - on the old name (a check naming it, a generated column computed from it, a foreign key
//!   either way, an index without a copy, a CHECK of its own): `complete` refuses before anything
//!   (exit 11) naming it, again on a rerun, nothing changed; once it is gone, `complete` finishes.
//! - on the new name (an index, a check, a generated column, a foreign key, a view, a trigger):
//!   `rollback` refuses before anything naming it, again on a rerun; `complete` keeps it.

mod common;

use common::mariadb_two_versions::{show_create, state_of};
use common::{Project, Run};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_testkit::Server;

const SETUP: &str = "CREATE TABLE parent (id int PRIMARY KEY);
INSERT INTO parent SELECT seq FROM seq_0_to_300;
CREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL DEFAULT 0, note varchar(20), KEY t_a_idx (a));
INSERT INTO t SELECT seq, seq, 'x' FROM seq_1_to_200;
";

async fn expanded() -> (Project, Conn) {
    let p = Project::new(Server::MariaDb).await;
    p.write("1_create.sql", SETUP);
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "create: {r:?}");
    p.write("2_rename.sql", "ALTER TABLE t RENAME COLUMN a TO b;\n");
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "expand: {r:?}");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    let db = p.db.my().await;
    (p, db)
}

/// The table, its triggers and the schema's views and foreign keys.
async fn snapshot(db: &mut Conn) -> String {
    let mut s = show_create(db, "t").await;
    let rows: Vec<(String, String)> = db
        .query(
            "SELECT CONCAT('trigger ', TRIGGER_NAME), ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
             UNION ALL SELECT CONCAT('view ', TABLE_NAME), VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()
             UNION ALL SELECT CONCAT('fk ', CONSTRAINT_NAME), TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()
             ORDER BY 1",
        )
        .await
        .unwrap();
    for (a, b) in rows {
        s.push_str(&format!("\n{a}: {b}"));
    }
    s
}

fn refused(r: &Run, code: i32, names: &str, what: &str) {
    assert_eq!(r.code, code, "{what}: {r:?}");
    assert!(
        r.stderr.contains("refused (nothing was changed") && r.stderr.contains(names),
        "{what}: the refusal names {names}: {r:?}"
    );
}

#[tokio::test]
async fn complete_refuses_what_was_made_on_the_old_name_after_the_expand() {
    // (made after the expand, what the refusal names, what removes it again)
    let cases = [
        (
            "ALTER TABLE t ADD CONSTRAINT t_a_ck CHECK (a >= 0)",
            "t_a_ck",
            "ALTER TABLE t DROP CONSTRAINT t_a_ck",
        ),
        (
            "ALTER TABLE t MODIFY a int NOT NULL DEFAULT 0 CHECK (a >= 0)",
            "a has a CHECK of its own",
            "ALTER TABLE t MODIFY a int NOT NULL DEFAULT 0",
        ),
        (
            "ALTER TABLE t ADD COLUMN g int AS (a * 2) VIRTUAL",
            "generated column g",
            "ALTER TABLE t DROP COLUMN g",
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT t_a_fk FOREIGN KEY (a) REFERENCES parent (id)",
            "t_a_fk",
            "ALTER TABLE t DROP FOREIGN KEY t_a_fk",
        ),
        (
            "CREATE TABLE child (x int, CONSTRAINT child_x_fk FOREIGN KEY (x) REFERENCES t (a))",
            "child_x_fk",
            "DROP TABLE child",
        ),
        (
            "ALTER TABLE t ADD KEY t_a_note (a, note)",
            "index t_a_note",
            "ALTER TABLE t DROP KEY t_a_note",
        ),
        // Views and triggers read by name: through an alias, from another database, a bare
        // name in a subquery, a trigger of another table writing it (`{db}`: the test's database).
        ("CREATE VIEW v3 AS SELECT x.a FROM t x", "view v3", "DROP VIEW v3"),
        (
            "CREATE DATABASE {db}_o; CREATE VIEW {db}_o.v1 AS SELECT a FROM {db}.t",
            "view {db}_o.v1",
            "DROP DATABASE {db}_o",
        ),
        (
            "CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW SET @x = (SELECT MAX(a) FROM t)",
            "trigger tr",
            "DROP TRIGGER tr",
        ),
        (
            "CREATE TABLE other (x int); CREATE TRIGGER tro BEFORE INSERT ON other FOR EACH ROW UPDATE t SET a = a + 1 WHERE id = NEW.x",
            "tro (of another table)",
            "DROP TABLE other",
        ),
        // A definition changed on the old name only.
        (
            "ALTER TABLE t MODIFY a int NULL DEFAULT 0",
            "its definition changed after the expand",
            "ALTER TABLE t MODIFY a int NOT NULL DEFAULT 0",
        ),
        (
            "ALTER TABLE t MODIFY a bigint NOT NULL DEFAULT 0",
            "its definition changed after the expand",
            "ALTER TABLE t MODIFY a int NOT NULL DEFAULT 0",
        ),
        (
            "ALTER TABLE t MODIFY a int NOT NULL DEFAULT 0 COMMENT 'later'",
            "its definition changed after the expand",
            "ALTER TABLE t MODIFY a int NOT NULL DEFAULT 0",
        ),
    ];
    for (made, names, undo) in cases {
        let (p, mut db) = expanded().await;
        let (made, names, undo) = (
            made.replace("{db}", &p.db.name),
            names.replace("{db}", &p.db.name),
            undo.replace("{db}", &p.db.name),
        );
        let (made, names, undo) = (made.as_str(), names.as_str(), undo.as_str());
        // Another database is made by the administrator, its view readable by the test's user.
        let other = made.contains(&format!("{}_o", p.db.name));
        if other {
            let mut su = p.db.my_su().await;
            su.query_drop(made).await.unwrap();
            let user: Option<String> = db
                .query_first("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
                .await
                .unwrap();
            su.query_drop(format!(
                "GRANT SELECT, SHOW VIEW ON `{}_o`.* TO '{}'@'%'",
                p.db.name,
                user.unwrap()
            ))
            .await
            .unwrap();
        } else {
            db.query_drop(made).await.unwrap();
        }
        let before = snapshot(&mut db).await;
        for attempt in ["complete", "complete again"] {
            refused(
                &p.run(&["complete"]),
                11,
                names,
                &format!("{made}: {attempt}"),
            );
            assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{made}");
            assert_eq!(
                snapshot(&mut db).await,
                before,
                "{made}: {attempt} changed nothing"
            );
        }
        // Both names still work while it stays expanded.
        db.query_drop("INSERT INTO t (id, a) VALUES (1001, 250)")
            .await
            .unwrap();
        db.query_drop("INSERT INTO t (id, b) VALUES (1002, 251)")
            .await
            .unwrap();
        match other {
            true => p.db.my_su().await.query_drop(undo).await.unwrap(),
            false => db.query_drop(undo).await.unwrap(),
        }
        let r = p.run(&["complete"]);
        assert_eq!(r.code, 0, "{made}: complete once it is gone: {r:?}");
        let rows: Vec<(i64, i64)> = db
            .query("SELECT id, b FROM t WHERE id > 1000 ORDER BY id")
            .await
            .unwrap();
        assert_eq!(rows, vec![(1001, 250), (1002, 251)], "{made}");
        let cols: Vec<String> = db
            .query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' ORDER BY ORDINAL_POSITION")
            .await
            .unwrap();
        assert!(
            !cols.iter().any(|c| c == "a") && cols.iter().any(|c| c == "b"),
            "{made}: {cols:?}"
        );
    }
}

#[tokio::test]
async fn rollback_refuses_what_was_made_on_the_new_name_and_complete_keeps_it() {
    // (made after the expand, what the refusal names, a query counting it)
    let cases = [
        ("ALTER TABLE t ADD KEY t_b_later (b, note)", "index t_b_later", "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = 't_b_later'"),
        ("ALTER TABLE t ADD CONSTRAINT t_b_ck CHECK (b >= 0)", "t_b_ck", "SELECT COUNT(*) FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND CONSTRAINT_NAME = 't_b_ck'"),
        ("ALTER TABLE t ADD COLUMN gb int AS (b * 2) VIRTUAL", "generated column gb", "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = 'gb'"),
        ("ALTER TABLE t ADD CONSTRAINT t_b_fk FOREIGN KEY (b) REFERENCES parent (id)", "t_b_fk", "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND CONSTRAINT_NAME = 't_b_fk'"),
        ("CREATE VIEW vb AS SELECT id, b FROM t", "view vb", "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'vb'"),
        ("CREATE VIEW vb2 AS SELECT x.b FROM t x", "view vb2", "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'vb2'"),
        ("CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.note = NEW.b", "trigger t_bi", "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = 't_bi'"),
    ];
    for (made, names, present) in cases {
        let (p, mut db) = expanded().await;
        db.query_drop(made).await.unwrap();
        let before = snapshot(&mut db).await;
        for attempt in ["rollback", "rollback again"] {
            refused(
                &p.run(&["rollback"]),
                1,
                names,
                &format!("{made}: {attempt}"),
            );
            assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{made}");
            assert_eq!(
                snapshot(&mut db).await,
                before,
                "{made}: {attempt} changed nothing"
            );
        }
        let r = p.run(&["complete"]);
        assert_eq!(r.code, 0, "{made}: complete: {r:?}");
        let n: Option<i64> = db.query_first(present).await.unwrap();
        assert_eq!(n, Some(1), "{made}: kept by complete");
    }
    // What the expand made itself does not stop the rollback.
    let (p, _db) = expanded().await;
    let r = p.run(&["rollback"]);
    assert_eq!(r.code, 0, "plain rollback: {r:?}");
    assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
}

/// Not on the column, yet the contract's ALTER cannot run in place beside it: a FULLTEXT index
/// made after the expand is found on an empty copy of the table before anything (exit 11). Once
/// it is dropped, InnoDB keeps a hidden FTS_DOC_ID column that no copy shows, with which the
/// server refuses in-place column changes (1845): read from InnoDB's dictionary, `complete` and
/// `rollback` refuse before anything, naming the online rebuild that clears it; after it,
/// `complete` finishes.
#[tokio::test]
async fn a_fulltext_index_made_after_the_expand_never_leaves_the_names_apart() {
    let (p, mut db) = expanded().await;
    db.query_drop("ALTER TABLE t ADD FULLTEXT KEY ft (note)")
        .await
        .unwrap();
    let before = snapshot(&mut db).await;
    for attempt in ["complete", "complete again"] {
        refused(
            &p.run(&["complete"]),
            11,
            "Fulltext index creation requires a lock",
            attempt,
        );
        assert_eq!(snapshot(&mut db).await, before, "{attempt} changed nothing");
    }
    db.query_drop("ALTER TABLE t DROP KEY ft").await.unwrap();
    let before = snapshot(&mut db).await;
    for (args, code) in [
        (&["complete"][..], 11),
        (&["complete"], 11),
        (&["rollback"], 1),
        (&["rollback"], 1),
    ] {
        let r = p.run(args);
        refused(&r, code, "hidden FTS_DOC_ID column", &format!("{args:?}"));
        assert!(
            r.stderr.contains("FORCE, ALGORITHM=INPLACE, LOCK=NONE"),
            "{r:?}"
        );
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
        assert_eq!(snapshot(&mut db).await, before, "{args:?} changed nothing");
    }
    // What the message says, then the contract.
    db.query_drop("ALTER TABLE t FORCE, ALGORITHM=INPLACE, LOCK=NONE")
        .await
        .unwrap();
    db.query_drop("UPDATE t SET a = 277 WHERE id = 5")
        .await
        .unwrap();
    let r = p.run(&["complete"]);
    assert_eq!(r.code, 0, "complete after the rebuild: {r:?}");
    let b: Option<i64> = db
        .query_first("SELECT b FROM t WHERE id = 5")
        .await
        .unwrap();
    assert_eq!(b, Some(277));
}

/// A VIRTUAL column on the table: present before the expand, the rename is refused (its ADD
/// COLUMN … AFTER cannot run in place); made after the expand, MariaDB refuses the contract's
/// DROP COLUMN combined with other clauses in place (1846), so the contract splits it in two ALTERs. The cycle ends as the rename
/// as written does; and the state a kill between the two ALTERs leaves (the old column gone, the
/// copies not yet renamed) is finished by the rerun.
#[tokio::test]
async fn a_table_with_a_virtual_column_renames_through_both_alters_and_a_cut_between_them() {
    let shape = "CREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL DEFAULT 0, note varchar(20), KEY t_a_idx (a), KEY t_a_note (a, note));
INSERT INTO t (id, a, note) SELECT seq, seq, 'x' FROM seq_1_to_200;
";
    let virtual_column = "ALTER TABLE t ADD COLUMN g int AS (id * 2) VIRTUAL";
    // Present before the expand: the expand's own ADD COLUMN … AFTER cannot run in place (1846),
    // found on the empty copy: refused before anything, twice.
    {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", shape);
        assert_eq!(p.run(&["up"]).code, 0);
        let mut db = p.db.my().await;
        db.query_drop(virtual_column).await.unwrap();
        let before = snapshot(&mut db).await;
        p.write("2_rename.sql", "ALTER TABLE t RENAME COLUMN a TO b;\n");
        for attempt in ["up", "up again"] {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 2, "{attempt}: {r:?}");
            assert!(
                r.stderr.contains("tried on an empty copy of t")
                    && r.stderr.contains("virtual columns"),
                "{attempt}: {r:?}"
            );
            assert_eq!(snapshot(&mut db).await, before, "{attempt} changed nothing");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{attempt}");
        }
    }
    for cut in [false, true] {
        let p = Project::new(Server::MariaDb).await;
        p.write("1_create.sql", shape);
        assert_eq!(p.run(&["up"]).code, 0);
        p.write("2_rename.sql", "ALTER TABLE t RENAME COLUMN a TO b;\n");
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "expand: {r:?}");
        let mut db = p.db.my().await;
        db.query_drop(virtual_column).await.unwrap();
        if cut {
            // What the first ALTER leaves: triggers dropped, the old column and its indexes gone.
            let triggers: Vec<String> = db
                .query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 't'")
                .await
                .unwrap();
            assert_eq!(triggers.len(), 2, "{triggers:?}");
            for t in triggers {
                db.query_drop(format!("DROP TRIGGER `{t}`")).await.unwrap();
            }
            db.query_drop("ALTER TABLE t DROP INDEX t_a_idx, DROP INDEX t_a_note, DROP COLUMN a")
                .await
                .unwrap();
        }
        let r = p.run(&["complete"]);
        assert_eq!(r.code, 0, "cut {cut}: complete: {r:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"), "cut {cut}");
        let twin = Project::new(Server::MariaDb).await;
        let mut tdb = twin.db.my().await;
        tdb.query_drop(shape).await.unwrap();
        tdb.query_drop("ALTER TABLE t RENAME COLUMN a TO b")
            .await
            .unwrap();
        tdb.query_drop(virtual_column).await.unwrap();
        // Secondary indexes may be listed in another order: compared as sorted lines.
        let lines = |s: String| {
            let mut v: Vec<String> = s
                .lines()
                .map(|l| l.trim().trim_end_matches(',').to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            lines(show_create(&mut db, "t").await),
            lines(show_create(&mut tdb, "t").await),
            "cut {cut}"
        );
        let rows: i64 = db
            .query_first("SELECT COUNT(*) FROM t WHERE b = id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rows, 200, "cut {cut}");
    }
}

/// The split of a column, on a table a FULLTEXT index was added to and dropped from after the
/// expand (InnoDB keeps its hidden FTS_DOC_ID column, so the contract's in-place DROP COLUMN is
/// refused): the ALTER runs before the sync triggers are dropped, so `complete` fails changing
/// nothing (twice), both sides stay in step, and `rollback` works.
#[tokio::test]
async fn a_split_whose_contract_the_server_refuses_keeps_both_sides_in_step() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, name varchar(81) NOT NULL, note varchar(20));
INSERT INTO t SELECT seq, CONCAT('F', seq, ' L', seq), 'x' FROM seq_1_to_200;
",
    );
    assert_eq!(p.run(&["up"]).code, 0);
    p.write(
        "2_split.sql",
        "-- sluice:up\nALTER TABLE t ADD COLUMN first_name varchar(40), ADD COLUMN last_name varchar(40);\nUPDATE t SET first_name = SUBSTRING_INDEX(name, ' ', 1), last_name = SUBSTRING_INDEX(name, ' ', -1);\n-- sluice:old name = CONCAT(first_name, ' ', last_name)\nALTER TABLE t DROP COLUMN name;\n",
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "expand: {r:?}");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    let mut db = p.db.my().await;
    db.query_drop("ALTER TABLE t ADD FULLTEXT KEY ft (note)")
        .await
        .unwrap();
    db.query_drop("ALTER TABLE t DROP KEY ft").await.unwrap();
    // A user with the documented grants (no PROCESS): InnoDB's dictionary is closed to it, so
    // the hidden column is not seen before, and the server refuses the contract's ALTER itself.
    let mut admin = p.db.my_su().await;
    let user = format!("u{:x}", std::process::id() ^ p.db.name.len() as u32);
    admin
        .query_drop(format!("DROP USER IF EXISTS '{user}'@'%'"))
        .await
        .unwrap();
    admin
        .query_drop(format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"))
        .await
        .unwrap();
    admin
        .query_drop(format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, TRIGGER, LOCK TABLES ON `{}`.* TO '{user}'@'%'",
            p.db.name
        ))
        .await
        .unwrap();
    let url = p.db.url_as(&format!("{user}:pw"));
    let run = |args: &[&str]| -> Run {
        p.command(args)
            .env("DATABASE_URL", &url)
            .output()
            .expect("run sluice")
            .into()
    };
    let before = snapshot(&mut db).await;
    for attempt in ["complete", "complete again"] {
        let r = run(&["complete"]);
        assert_eq!(r.code, 1, "{attempt}: {r:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{attempt}");
        assert_eq!(snapshot(&mut db).await, before, "{attempt} changed nothing");
        // The old version's write still reaches the new columns.
        db.query_drop("UPDATE t SET name = 'Ann Lee' WHERE id = 5")
            .await
            .unwrap();
        let split: Option<(String, String)> = db
            .query_first("SELECT first_name, last_name FROM t WHERE id = 5")
            .await
            .unwrap();
        assert_eq!(
            split,
            Some(("Ann".to_string(), "Lee".to_string())),
            "{attempt}"
        );
    }
    // The rollback's in-place DROP COLUMN is refused the same way, changing nothing; after the
    // online rebuild it runs.
    let r = run(&["rollback"]);
    assert_eq!(r.code, 1, "rollback: {r:?}");
    assert_eq!(snapshot(&mut db).await, before, "rollback changed nothing");
    db.query_drop("ALTER TABLE t FORCE, ALGORITHM=INPLACE, LOCK=NONE")
        .await
        .unwrap();
    let r = run(&["rollback"]);
    assert_eq!(r.code, 0, "rollback after the rebuild: {r:?}");
    admin
        .query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .unwrap();
    let name: Option<String> = db
        .query_first("SELECT name FROM t WHERE id = 5")
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("Ann Lee"));
}

/// Views and triggers that name a column `a` or `b` without using `t`'s (another table's
/// same-named columns, an output name, a comment) stop neither `complete` nor `rollback`.
#[tokio::test]
async fn what_only_mentions_the_names_stops_neither_phase() {
    for then in ["complete", "rollback"] {
        let (p, mut db) = expanded().await;
        for sql in [
            "CREATE TABLE u (id bigint PRIMARY KEY, a int, b int)",
            "CREATE VIEW v3 AS SELECT t.id, u.a, u.b FROM t JOIN u ON u.id = t.id",
            "CREATE TABLE log (a int)",
            "CREATE TRIGGER t_log AFTER INSERT ON t FOR EACH ROW INSERT INTO log (a) VALUES (NEW.note IS NULL)",
        ] {
            db.query_drop(sql).await.unwrap();
        }
        // A view moved to the new name, keeping its output name (what complete's message asks
        // for); the rollback would drop what it reads, so only beside complete.
        if then == "complete" {
            db.query_drop("CREATE VIEW v2 AS SELECT id, b AS a FROM t")
                .await
                .unwrap();
        }
        let r = p.run(&[then]);
        assert_eq!(r.code, 0, "{then}: {r:?}");
        if then == "complete" {
            let n: Option<i64> = db.query_first("SELECT COUNT(*) FROM v2").await.unwrap();
            assert_eq!(n, Some(200));
        }
    }
}

/// A NOT NULL fill's contract sets NOT NULL on the column as it is when `complete` runs: a later
/// migration's default and comment stay (it used to re-run the file's MODIFY, which restated the
/// older definition and dropped them); the result equals the statements as written in order.
#[tokio::test]
async fn a_fill_contract_keeps_what_a_later_migration_changed() {
    // A later default, and a later widening (the file's MODIFY would shrink it back by a copy,
    // which the contract refused: complete and rollback were stuck).
    for later in [
        "ALTER TABLE t ALTER COLUMN region SET DEFAULT 'eu'",
        "ALTER TABLE t MODIFY region varchar(50) NULL COMMENT 'where'",
    ] {
        let p = Project::new(Server::MariaDb).await;
        p.write(
            "1_create.sql",
            "CREATE TABLE t (id bigint PRIMARY KEY, region varchar(20) NULL COMMENT 'where');
INSERT INTO t SELECT seq, IF(seq % 3 = 0, NULL, 'eu') FROM seq_1_to_200;
",
        );
        assert_eq!(p.run(&["up"]).code, 0);
        let fill = "UPDATE t SET region = 'none' WHERE region IS NULL;\nALTER TABLE t MODIFY region varchar(20) NOT NULL COMMENT 'where';\n";
        p.write("2_fill.sql", fill);
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "expand: {r:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
        p.write("3_default.sql", &format!("{later};\n"));
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "later migration: {r:?}");
        let r = p.run(&["complete"]);
        assert_eq!(r.code, 0, "complete: {r:?}");
        let mut db = p.db.my().await;
        let twin = Project::new(Server::MariaDb).await;
        let mut tdb = twin.db.my().await;
        tdb.query_drop(
            "CREATE TABLE t (id bigint PRIMARY KEY, region varchar(20) NULL COMMENT 'where')",
        )
        .await
        .unwrap();
        for sql in fill.split(";\n").filter(|s| !s.trim().is_empty()) {
            tdb.query_drop(sql).await.unwrap();
        }
        // The later MODIFY ran before the contract here, after the NOT NULL as written: it keeps
        // its type, and the open fill's NOT NULL comes last (the fill's own intent).
        tdb.query_drop(later).await.unwrap();
        if later.contains("MODIFY") {
            tdb.query_drop("ALTER TABLE t MODIFY region varchar(50) NOT NULL COMMENT 'where'")
                .await
                .unwrap();
        }
        assert_eq!(
            show_create(&mut db, "t").await,
            show_create(&mut tdb, "t").await,
            "{later}"
        );
        let nulls: Option<i64> = db
            .query_first("SELECT COUNT(*) FROM t WHERE region IS NULL")
            .await
            .unwrap();
        assert_eq!(nulls, Some(0));
    }
}

/// A DROP COLUMN's rollback drops the default sluice gave the NOT NULL column, not one a later
/// migration set: that one stays (it was wiped).
#[tokio::test]
async fn a_drop_column_rollback_keeps_a_later_migrations_default() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_create.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL, note int);
INSERT INTO t SELECT seq, seq, seq FROM seq_1_to_100;
",
    );
    assert_eq!(p.run(&["up"]).code, 0);
    p.write("2_drop.sql", "ALTER TABLE t DROP COLUMN a;\n");
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "expand: {r:?}");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    p.write(
        "3_default.sql",
        "ALTER TABLE t ALTER COLUMN a SET DEFAULT 5;\n",
    );
    assert_eq!(p.run(&["up"]).code, 0);
    let r = p.run(&["rollback"]);
    assert_eq!(r.code, 0, "rollback: {r:?}");
    let mut db = p.db.my().await;
    let created = show_create(&mut db, "t").await;
    assert!(
        created.contains("`a` int(11) NOT NULL DEFAULT 5"),
        "{created}"
    );
    // Without the later migration the rollback restores the column exactly (no default).
    let q = Project::new(Server::MariaDb).await;
    q.write(
        "1_create.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL, note int);\n",
    );
    assert_eq!(q.run(&["up"]).code, 0);
    q.write("2_drop.sql", "ALTER TABLE t DROP COLUMN a;\n");
    assert_eq!(q.run(&["up"]).code, 0);
    assert_eq!(q.run(&["rollback"]).code, 0);
    let mut qdb = q.db.my().await;
    let created = show_create(&mut qdb, "t").await;
    assert!(created.contains("`a` int(11) NOT NULL,"), "{created}");
}

/// A split's rollback drops the added columns: a view or a trigger made on them after the expand
/// refuses it before anything (twice, nothing changed); `complete` keeps them working.
#[tokio::test]
async fn a_split_rollback_refuses_views_and_triggers_on_the_added_columns() {
    for (made, names) in [
        ("CREATE VIEW vfn AS SELECT x.first_name FROM t x", "view "),
        (
            "CREATE TRIGGER t_fn BEFORE UPDATE ON t FOR EACH ROW SET NEW.note = NEW.last_name",
            "trigger ",
        ),
    ] {
        let p = Project::new(Server::MariaDb).await;
        p.write(
            "1_create.sql",
            "CREATE TABLE t (id bigint PRIMARY KEY, name varchar(81) NOT NULL, note varchar(40));
INSERT INTO t SELECT seq, CONCAT('F', seq, ' L', seq), 'x' FROM seq_1_to_100;
",
        );
        assert_eq!(p.run(&["up"]).code, 0);
        p.write(
            "2_split.sql",
            "-- sluice:up\nALTER TABLE t ADD COLUMN first_name varchar(40), ADD COLUMN last_name varchar(40);\nUPDATE t SET first_name = SUBSTRING_INDEX(name, ' ', 1), last_name = SUBSTRING_INDEX(name, ' ', -1);\n-- sluice:old name = CONCAT(first_name, ' ', last_name)\nALTER TABLE t DROP COLUMN name;\n",
        );
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "expand: {r:?}");
        let mut db = p.db.my().await;
        db.query_drop(made).await.unwrap();
        let before = snapshot(&mut db).await;
        for attempt in ["rollback", "rollback again"] {
            let r = p.run(&["rollback"]);
            refused(&r, 1, names, &format!("{made}: {attempt}"));
            assert!(r.stderr.contains("uses the added columns"), "{r:?}");
            assert_eq!(snapshot(&mut db).await, before, "{made}: {attempt}");
        }
        let r = p.run(&["complete"]);
        assert_eq!(r.code, 0, "{made}: complete: {r:?}");
    }
}
