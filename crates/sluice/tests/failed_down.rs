//! A failed migration whose applied statements stay committed (MariaDB/MySQL have no transactional
//! DDL; PostgreSQL in per-statement mode): `sluice down --failed` rolls it back with its down part,
//! the history stays consistent, and the fixed migration applies again; `drift` does not report
//! its committed statements.

mod common;

use common::Project;
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;

async fn tables(p: &Project, _server: Server) -> Vec<String> {
    let mut names = p.table_names().await;
    names.retain(|n| n.starts_with('t'));
    names
}

const TABLES: [&str; 4] = ["ta", "tb", "tc", "td"];

/// Migration 2 creates ta..td; the statement at `fail_at` (1-based) fails instead. Its down part
/// is written for the whole migration, so it tolerates tables that were never created.
fn migration(fail_at: usize, header: &str) -> String {
    let mut up = String::from(header);
    for (i, t) in TABLES.iter().enumerate() {
        if i + 1 == fail_at {
            up.push_str("INSERT INTO no_such_table VALUES (1);\n");
        } else {
            up.push_str(&format!("CREATE TABLE {t} (id INT PRIMARY KEY);\n"));
        }
    }
    let down: String = TABLES
        .iter()
        .rev()
        .map(|t| format!("DROP TABLE IF EXISTS {t};\n"))
        .collect();
    format!("-- sluice:up\n{up}-- sluice:down\n{down}")
}

async fn failed_migration_rolls_back(server: Server, header: &str) {
    // PostgreSQL commits nothing before the first statement even in per-statement mode (that
    // case is the transactional one below).
    let first = if server == Server::Postgres { 2 } else { 1 };
    for fail_at in first..=TABLES.len() {
        let p = Project::new(server).await;
        p.write(
            "1_base.sql",
            "-- sluice:up\nCREATE TABLE t0 (id INT PRIMARY KEY);\n-- sluice:down\nDROP TABLE t0;\n",
        );
        p.write("2_many.sql", &migration(fail_at, header));
        let r = p.run(&["up"]);
        assert_eq!(r.code, 1, "{fail_at}: {r:?}");
        let committed: Vec<String> = std::iter::once("t0")
            .chain(TABLES.iter().copied().take(fail_at - 1))
            .map(String::from)
            .collect();
        assert_eq!(tables(&p, server).await, committed, "{fail_at}");
        assert_eq!(
            p.states(),
            [(1, "applied".to_string()), (2, "failed".to_string())]
        );
        // Without consent, down refuses and says how.
        let r = p.run(&["down"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.stderr.contains("migration 2_many is recorded as failed"),
            "{r:?}"
        );
        assert!(r.stderr.contains("sluice down --failed"), "{r:?}");
        // The dry run says what would run, and changes nothing.
        let r = p.run(&["down", "--failed", "--dry-run"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(tables(&p, server).await, committed, "{fail_at}");
        let r = p.run(&["down", "--failed"]);
        assert_eq!(r.code, 0, "{fail_at}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "2_many failed after {} statement(s) of its up part committed",
                fail_at - 1
            )),
            "{r:?}"
        );
        assert_eq!(tables(&p, server).await, ["t0"], "{fail_at}");
        assert_eq!(
            p.states(),
            [(1, "applied".to_string()), (2, "pending".to_string())]
        );
        // The rerun: the fixed migration applies in full, and everything goes down and up again.
        p.write("2_many.sql", &migration(0, header));
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{r:?}");
        let all: Vec<String> = std::iter::once("t0")
            .chain(TABLES)
            .map(String::from)
            .collect();
        assert_eq!(tables(&p, server).await, all);
        assert_eq!(p.run(&["drift"]).code, 0);
        assert_eq!(p.run(&["down", "--to", "0"]).code, 0);
        assert!(tables(&p, server).await.is_empty());
        assert_eq!(p.run(&["up"]).code, 0);
        assert_eq!(tables(&p, server).await, all);
    }
}

#[tokio::test]
async fn mariadb_failed_migration_rolls_back() {
    failed_migration_rolls_back(Server::MariaDb, "").await;
}

#[tokio::test]
async fn postgres_per_statement_failed_migration_rolls_back() {
    failed_migration_rolls_back(Server::Postgres, "-- sluice:transaction per-statement\n").await;
}

/// A down part that fails on what the failed migration never created: recorded as reverting;
/// fixed, a plain `down` resumes it.
#[tokio::test]
async fn mariadb_failed_down_that_fails_resumes() {
    let server = Server::MariaDb;
    let p = Project::new(server).await;
    p.write(
        "1_two.sql",
        "-- sluice:up\nCREATE TABLE ta (id INT PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\nCREATE TABLE tb (id INT PRIMARY KEY);\n-- sluice:down\nDROP TABLE tb;\nDROP TABLE ta;\n",
    );
    assert_eq!(p.run(&["up"]).code, 1);
    let r = p.run(&["down", "--failed"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("DROP TABLE tb"), "{r:?}");
    assert_eq!(p.states(), [(1, "reverting".to_string())]);
    assert_eq!(tables(&p, server).await, ["ta"]);
    p.write(
        "1_two.sql",
        "-- sluice:up\nCREATE TABLE ta (id INT PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\nCREATE TABLE tb (id INT PRIMARY KEY);\n-- sluice:down\nDROP TABLE IF EXISTS tb;\nDROP TABLE ta;\n",
    );
    let r = p.run(&["down"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(tables(&p, server).await.is_empty());
    assert_eq!(p.states(), [(1, "pending".to_string())]);
}

/// PostgreSQL rolled a failed transactional migration back: there is nothing to revert.
#[tokio::test]
async fn postgres_transactional_failed_migration_has_nothing_to_revert() {
    let server = Server::Postgres;
    let p = Project::new(server).await;
    p.write("1_two.sql", &migration(3, ""));
    assert_eq!(p.run(&["up"]).code, 1);
    assert!(tables(&p, server).await.is_empty());
    let r = p.run(&["down", "--failed"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("nothing of it is applied (the server rolled it back)"),
        "{r:?}"
    );
    p.write("1_two.sql", &migration(0, ""));
    assert_eq!(p.run(&["up"]).code, 0);
    assert_eq!(tables(&p, server).await, TABLES);
}

/// `drift` after a migration failed at its 3rd statement: the two committed statements (a new
/// table, a new column on an existing one) are not drift; an out-of-band change on another table
/// still is; and after `down --failed` and the fixed rerun, drift is clean.
async fn failed_part_is_not_drift(server: Server, header: &str) {
    let p = Project::new(server).await;
    p.write(
        "1_base.sql",
        "-- sluice:up\nCREATE TABLE t0 (id INT PRIMARY KEY);\nCREATE TABLE t9 (id INT PRIMARY KEY);\n-- sluice:down\nDROP TABLE t9;\nDROP TABLE t0;\n",
    );
    let up = |third: &str| {
        format!(
            "-- sluice:up\n{header}CREATE TABLE ta (id INT PRIMARY KEY);\nALTER TABLE t0 ADD COLUMN v INT;\n{third}\n-- sluice:down\nALTER TABLE t0 DROP COLUMN v;\nDROP TABLE IF EXISTS tb;\nDROP TABLE ta;\n"
        )
    };
    p.write("2_many.sql", &up("INSERT INTO no_such_table VALUES (1);"));
    assert_eq!(p.run(&["up"]).code, 1);
    let r = p.run(&["drift"]);
    assert_eq!(
        r.code, 0,
        "the failed migration's own statements are not drift: {r:?}"
    );
    assert!(
        r.stdout.contains(
            "note: migration 2_many failed part-way: its 2 committed statement(s) are not drift"
        ),
        "{r:?}"
    );
    // A real out-of-band change is still drift.
    let oob = "ALTER TABLE t9 ADD COLUMN oob INT";
    match server {
        Server::Postgres => {
            p.db.pg().await.batch_execute(oob).await.unwrap();
        }
        Server::MariaDb => p.db.my().await.query_drop(oob).await.unwrap(),
    }
    let r = p.run(&["drift"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.all().contains("oob"), "{r:?}");
    assert!(
        r.stdout.contains("1 difference(s)"),
        "only the out-of-band one: {r:?}"
    );
    let undo = "ALTER TABLE t9 DROP COLUMN oob";
    match server {
        Server::Postgres => {
            p.db.pg().await.batch_execute(undo).await.unwrap();
        }
        Server::MariaDb => p.db.my().await.query_drop(undo).await.unwrap(),
    }
    assert_eq!(p.run(&["drift"]).code, 0);
    let r = p.run(&["down", "--failed"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(p.run(&["drift"]).code, 0, "after the rollback");
    p.write("2_many.sql", &up("CREATE TABLE tb (id INT PRIMARY KEY);"));
    assert_eq!(p.run(&["up"]).code, 0);
    let r = p.run(&["drift"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[tokio::test]
async fn mariadb_failed_part_is_not_drift() {
    failed_part_is_not_drift(Server::MariaDb, "").await;
}

#[tokio::test]
async fn postgres_per_statement_failed_part_is_not_drift() {
    failed_part_is_not_drift(Server::Postgres, "-- sluice:transaction per-statement\n").await;
}
