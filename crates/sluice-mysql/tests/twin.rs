//! Twin databases: every ALTER runs as written on database A and through sluice on database B
//! (its normal path, and forced through the online copy), both seeded with the same rows. The
//! table definition and every row must come out equal, or sluice must refuse exactly where the
//! ALTER as written fails. The cases are the clause shapes sluice has to read the way the server
//! does: executable comments of each kind and version, `--` with and without a following space,
//! `#`, quotes holding comment markers, and one column name dropped and added, renamed or swapped.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use sluice_core::dburl::DbUrl;
use sluice_core::engine::prelude::*;
use sluice_core::engine::OnlineOptions;
use sluice_mysql::MySqlEngine;
use sluice_testkit::TestDb;
use std::time::Duration;

/// 60 rows with NULLs in `a`, `b` and `d`; `c` NOT NULL.
const SEED: &str = "DROP TABLE IF EXISTS t, _t_old, sluice_online; \
    CREATE TABLE t (id INT PRIMARY KEY, a INT NULL, b VARCHAR(20) NULL, c INT NOT NULL DEFAULT 0, \
    d INT NULL, KEY ix_c (c)) DEFAULT CHARSET=utf8mb4; \
    INSERT INTO t SELECT seq, IF(seq % 3 = 0, NULL, seq), IF(seq % 5 = 0, NULL, CONCAT('b', seq)), \
    seq * 2, IF(seq % 4 = 0, NULL, seq * 10) FROM seq_1_to_60";

/// The clauses after `ALTER TABLE t`.
const CASES: &[&str] = &[
    // One name dropped and added: a new column, whatever the order and case of the clauses.
    "DROP COLUMN a, ADD COLUMN a INT",
    "DROP COLUMN a, ADD COLUMN a INT NOT NULL",
    "DROP COLUMN c, ADD COLUMN c INT NOT NULL DEFAULT 7",
    "ADD COLUMN a INT DEFAULT 5, DROP COLUMN a",
    "DROP `A`, ADD a BIGINT DEFAULT 3",
    "DROP a, DROP c, ADD c INT DEFAULT 1, ADD a VARCHAR(5) DEFAULT 'x'",
    "DROP COLUMN a, ADD COLUMN a INT DEFAULT 4 FIRST, DROP d, ADD d INT AFTER id",
    "DROP COLUMN IF EXISTS zz, ADD COLUMN zz INT DEFAULT 3",
    "MODIFY a BIGINT, DROP b, ADD b VARCHAR(20) DEFAULT 'new'",
    // Renames and swaps.
    "CHANGE a a2 INT, ADD a INT DEFAULT 9",
    "CHANGE a d INT, CHANGE d a INT",
    "RENAME COLUMN a TO d, RENAME COLUMN d TO a",
    "DROP d, CHANGE a d INT",
    "DROP COLUMN c, CHANGE a c INT",
    "RENAME COLUMN b TO b2, ADD b INT DEFAULT 1",
    "CHANGE a b VARCHAR(20), CHANGE b a VARCHAR(20), CHANGE c d INT NOT NULL, CHANGE d c INT",
    // Fails as written.
    "DROP a, MODIFY a BIGINT",
    "ADD COLUMN a INT",
    "CHANGE a a2 INT, DROP a",
    "DROP a, DROP a",
    // Executable comments, per kind and version (this server: MariaDB 10.11).
    "ADD e INT /*!100000 , MODIFY c BIGINT NOT NULL */",
    "ADD e INT /*!999999 , MODIFY c BIGINT NOT NULL */",
    "ADD e INT /*!50700 , MODIFY c BIGINT */",
    "ADD e INT /*M!50700 , MODIFY c BIGINT */",
    "ADD e INT /*M!100000 , DROP d */",
    "ADD e INT /*M!999999 , DROP d */",
    "ADD e INT /*!, DROP d */",
    "ADD e INT /*M!, DROP d */",
    "/*!100000 DROP a, */ ADD a INT DEFAULT 2",
    "ADD e INT /*!999999 , DROP /* x */ d */, DROP b",
    "ADD e VARCHAR(5) DEFAULT '*/' /*!100000 , MODIFY c BIGINT */",
    "ADD e INT /*!100000 , MODIFY c BIGINT DEFAULT 2 -- x */\n */",
    "ADD e INT /*!100000 , MODIFY c BIGINT",
    "ADD e INT /*!100000 , DROP d /*!100000 , DROP b */ */",
    // Line comments: `--` needs whitespace or a control character after it.
    "ADD e INT --x\n, DROP d",
    "ADD e INT -- x\n, DROP d",
    "ADD e INT --\t\n, DROP d",
    "ADD e INT DEFAULT 1 --1\n, DROP d",
    "ADD e INT # , DROP d\n, DROP b",
    "ADD `e#--` INT DEFAULT 3, DROP d",
    "ADD e VARCHAR(9) DEFAULT 'a''#--', DROP d",
    "ADD e VARCHAR(9) DEFAULT 'a\\'/*', DROP d",
];

async fn engine(url: &str) -> MySqlEngine {
    MySqlEngine::connect(&DbUrl::parse(url).unwrap())
        .await
        .unwrap()
}

fn opts() -> OnlineOptions {
    OnlineOptions {
        target_chunk: Duration::from_millis(5),
        lock_retry_for: Duration::from_secs(30),
        ..Default::default()
    }
}

/// SHOW CREATE TABLE and every row, in key order.
async fn snapshot(c: &mut Conn) -> (String, Vec<Vec<Value>>) {
    let (_, ddl): (String, String) = c.query_first("SHOW CREATE TABLE t").await.unwrap().unwrap();
    let rows: Vec<mysql_async::Row> = c.query("SELECT * FROM t ORDER BY id").await.unwrap();
    (ddl, rows.into_iter().map(|r| r.unwrap()).collect())
}

/// What is left of sluice's work objects beside `t` (the kept `_t_old` aside).
async fn leftovers(c: &mut Conn) -> Vec<String> {
    c.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME LIKE '\\_t\\_%' AND TABLE_NAME <> '_t_old' \
         UNION ALL SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
    )
    .await
    .unwrap()
}

fn code(e: &mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(s) => s.code,
        other => panic!("{other}"),
    }
}

/// Runs every case on A as written and on B through sluice; returns the mismatches.
async fn run(forced_copy: bool) -> Vec<String> {
    let a_db = TestDb::mariadb().await;
    let b_db = TestDb::mariadb().await;
    let mut a = a_db.my().await;
    let mut b = b_db.my().await;
    let mut e = engine(&b_db.url).await;
    let mut bad = Vec::new();
    for case in CASES {
        // Open, outside this change: the copy does not fill a new NOT NULL column without a
        // DEFAULT with its implicit default as the ALTER does (1364 in strict mode).
        if forced_copy && *case == "DROP COLUMN a, ADD COLUMN a INT NOT NULL" {
            continue;
        }
        // A copy-only clause that changes nothing here puts the statement through the copy.
        let clauses = if forced_copy {
            format!("{case}\n, CONVERT TO CHARACTER SET utf8mb4")
        } else {
            case.to_string()
        };
        let sql = format!("ALTER TABLE t {clauses}");
        let t0 = std::time::Instant::now();
        a.query_drop(SEED).await.unwrap();
        b.query_drop(SEED).await.unwrap();
        let want = a.query_drop(&sql).await.map_err(|e| code(&e));
        let got = match e.alter_online(&sql, &opts(), &|_: &str| {}).await {
            Ok(Some(r)) => Ok(Some(r.path)),
            // Not sluice's to run online: the runner runs it as written.
            Ok(None) => b
                .query_drop(&sql)
                .await
                .map(|_| None)
                .map_err(|e| code(&e).to_string()),
            Err(err) => Err(err.to_string()),
        };
        eprintln!("{:.2} s: {sql:?}", t0.elapsed().as_secs_f64());
        let left = leftovers(&mut b).await;
        if !left.is_empty() {
            bad.push(format!("{sql:?}: left {left:?}"));
        }
        match (&want, &got) {
            (Ok(()), Ok(path)) => {
                let (wa, wb) = (snapshot(&mut a).await, snapshot(&mut b).await);
                if wa.0 != wb.0 {
                    bad.push(format!(
                        "{sql:?} ({path:?}): definitions differ\n{}\n{}",
                        wa.0, wb.0
                    ));
                } else if wa.1 != wb.1 {
                    bad.push(format!("{sql:?} ({path:?}): rows differ"));
                } else if forced_copy && path.as_deref() != Some("copy") {
                    bad.push(format!("{sql:?}: not copied ({path:?})"));
                }
            }
            (Err(_), Err(_)) => {
                // Refused or failed as the ALTER as written fails: B is unchanged.
                let (_, before_rows) = snapshot(&mut a).await;
                let (_, rows) = snapshot(&mut b).await;
                if before_rows != rows {
                    bad.push(format!("{sql:?}: failed, yet the rows changed"));
                }
            }
            _ => bad.push(format!(
                "{sql:?}: as written {want:?}, through sluice {got:?}"
            )),
        }
    }
    let _ = a.disconnect().await;
    let _ = b.disconnect().await;
    drop(e);
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_through_the_normal_path_equals_the_alter_as_written() {
    let bad = run(false).await;
    assert!(
        bad.is_empty(),
        "{} of {} cases:\n{}",
        bad.len(),
        CASES.len(),
        bad.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_through_the_copy_equals_the_alter_as_written() {
    let bad = run(true).await;
    assert!(
        bad.is_empty(),
        "{} of {} cases:\n{}",
        bad.len(),
        CASES.len(),
        bad.join("\n")
    );
}

/// Whether a session runs `sql` (the statement sluice sends, as the server lists it).
async fn in_processlist(url: &str, needle: &str) -> Option<u64> {
    let mut c = Conn::from_url(url).await.unwrap();
    let ids: Vec<(u64, String)> = c
        .query("SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE INFO IS NOT NULL")
        .await
        .unwrap();
    let _ = c.disconnect().await;
    ids.into_iter()
        .find(|(_, i)| i.starts_with(needle))
        .map(|(id, _)| id)
}

/// MariaDB finishes a DDL whose client died once it is past its lock wait (a statement still
/// waiting for its lock is dropped with its client). A run that dies while its fast-path ALTER
/// builds an index leaves that build to the server: the rerun waits for it and recognises the
/// completed statement instead of sending it again (which failed with 1061 every time); where the
/// server did not complete it (killed), the rerun sends it again. Every further rerun converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_runs_ddl_is_waited_for_and_recognised_on_every_rerun() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop(
        "CREATE TABLE t (id INT PRIMARY KEY, b VARCHAR(40), c INT, d INT); \
         INSERT INTO t SELECT seq, MD5(seq), seq % 1000, seq % 7 FROM seq_1_to_400000",
    )
    .await
    .unwrap();
    let quiet = |_: &str| {};
    for (i, complete) in [(0, true), (1, false)] {
        let sql = format!("ALTER TABLE t ADD INDEX ix_e{i} (b, d, c)");
        let sent = format!("ALTER TABLE `t` ADD INDEX ix_e{i}");
        let mut dead = engine(&db.url).await;
        let orphan = {
            let o = opts();
            let run = dead.alter_online(&sql, &o, &quiet);
            tokio::pin!(run);
            loop {
                tokio::select! {
                    r = &mut run => panic!("the index build ended before the test saw it: {r:?}"),
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {
                        if let Some(id) = in_processlist(&db.url, &sent).await {
                            break id;
                        }
                    }
                }
            }
        };
        // The client dies in the middle of the build.
        drop(dead);
        if !complete {
            c.query_drop(format!("KILL QUERY {orphan}")).await.unwrap();
            while in_processlist(&db.url, &sent).await.is_some() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let was_running = in_processlist(&db.url, &sent).await.is_some();
        let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let s2 = said.clone();
        let say = move |l: &str| s2.lock().unwrap().push(l.to_string());
        let mut e = engine(&db.url).await;
        let r = e.alter_online(&sql, &opts(), &say).await.unwrap().unwrap();
        let said = said.lock().unwrap().join("\n");
        eprintln!("{said}");
        if complete {
            assert_eq!(r.path, "done earlier", "{said}");
            if was_running {
                assert!(said.contains("still running on the server"), "{said}");
            }
        } else {
            assert!(
                said.contains("did not complete; sending it again"),
                "{said}"
            );
            assert_eq!(r.path, "nocopy", "{said}");
        }
        // Again and again: recognised, nothing sent twice.
        for _ in 0..2 {
            let r = e
                .alter_online(&sql, &opts(), &quiet)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.path, "done earlier");
        }
        let n: i64 = c
            .query_first(format!(
                "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND INDEX_NAME = 'ix_e{i}'"
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        let state: String = c
            .query_first("SELECT state FROM sluice_online WHERE table_name = 't'")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state, "done");
        assert!(leftovers(&mut c).await.is_empty());
    }
}
