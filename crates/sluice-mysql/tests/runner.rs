//! The runner driving the MariaDB engine end to end: apply, fail and resume, drift capture, roll
//! back, and the run lock between two runs.

use mysql_async::prelude::Queryable;
use sluice_core::dburl::DbUrl;
use sluice_core::engine::prelude::*;
use sluice_core::engine::{LockAttempt, LockHolder};
use sluice_core::history::{EventKind, RecordState};
use sluice_core::runner::{self, DownOptions, DriftState, RunContext, UpOptions};
use sluice_core::Error;
use sluice_mysql::MySqlEngine;
use sluice_testkit::TestDb;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn ctx(lock_wait: Duration) -> RunContext {
    RunContext {
        actor: "tester".into(),
        app_version: Some("app-1".into()),
        lock_wait,
        lock_timeout: Duration::from_secs(1),
        lock_retry_for: Duration::from_secs(60),
        say: Box::new(|_| {}),
        online: Default::default(),
        pacing: Default::default(),
        exclusive_timeout: Duration::from_secs(5),
        progress: None,
        subscriber_urls: vec![],
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sluice-mysql-runner-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

async fn columns(db: &TestDb, table: &str) -> Vec<String> {
    let mut c = db.my().await;
    c.exec(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
         ORDER BY ORDINAL_POSITION",
        (&db.name, table),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn up_fail_resume_drift_capture_and_down() {
    let db = TestDb::mariadb().await;
    let url = DbUrl::parse(&db.url).unwrap();
    let mut engine = MySqlEngine::connect(&url).await.unwrap();
    let ctx = ctx(Duration::from_secs(5));
    let d = dir("flow");
    write(
        &d,
        "20240101000000_create_users.sql",
        "-- sluice:up\nCREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100) NOT NULL);\n\
         CREATE INDEX users_email ON users (email);\n-- sluice:down\nDROP TABLE users;\n",
    );
    write(
        &d,
        "20240102000000_add_age.sql",
        "-- sluice:up\nALTER TABLE users ADD COLUMN age INT NULL;\nINSERT INTO users (email) VALUES ('a@b');\n\
         -- sluice:down\nALTER TABLE users DROP COLUMN age;\n",
    );
    let files = sluice_core::migration::discover(&d).unwrap();
    let report = runner::up(&mut engine, &files, &UpOptions::default(), &ctx)
        .await
        .unwrap();
    assert_eq!(report.applied, vec![20240101000000, 20240102000000]);
    let rows = engine.history().await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.state == RecordState::Applied && r.statements_done == 2));
    assert_eq!(rows[0].app_version.as_deref(), Some("app-1"));
    let status = runner::status(&mut engine, &files).await.unwrap();
    assert!(
        matches!(status.drift, DriftState::Clean),
        "{:?}",
        status.drift
    );

    // A migration failing at its second statement records one applied statement; after the fix,
    // `up` resumes at the failed statement (re-running the first would fail: duplicate column).
    write(
        &d,
        "20240103000000_more.sql",
        "-- sluice:up\nALTER TABLE users ADD COLUMN nick VARCHAR(20) NULL;\nALTER TABLE users ADD COLUMN oops INTT;\n\
         -- sluice:down\nALTER TABLE users DROP COLUMN nick, DROP COLUMN ok;\n",
    );
    let files = sluice_core::migration::discover(&d).unwrap();
    let err = runner::up(&mut engine, &files, &UpOptions::default(), &ctx)
        .await
        .unwrap_err();
    let Error::MigrationFailed(f) = &err else {
        panic!("expected a migration failure, got {err}");
    };
    // MariaDB: 4161 "Unknown data type".
    assert_eq!(f.code, "4161", "{}", f.server_message);
    assert!(f.server_message.contains("INTT"), "{}", f.server_message);
    assert_eq!(f.statements_applied, 1);
    assert!(!f.rolled_back);
    assert_eq!(err.exit_code(), 1);
    let row = engine.history().await.unwrap().pop().unwrap();
    assert_eq!((row.state, row.statements_done), (RecordState::Failed, 1));
    assert!(row.failed_statement.unwrap().contains("INTT"));

    write(
        &d,
        "20240103000000_more.sql",
        "-- sluice:up\nALTER TABLE users ADD COLUMN nick VARCHAR(20) NULL;\nALTER TABLE users ADD COLUMN ok INT;\n\
         -- sluice:down\nALTER TABLE users DROP COLUMN nick, DROP COLUMN ok;\n",
    );
    let files = sluice_core::migration::discover(&d).unwrap();
    let report = runner::up(&mut engine, &files, &UpOptions::default(), &ctx)
        .await
        .unwrap();
    assert_eq!(report.applied, vec![20240103000000]);
    assert_eq!(
        columns(&db, "users").await,
        ["id", "email", "age", "nick", "ok"]
    );

    // Drift made behind sluice's back is found, captured as a migration, and reverted by `down`.
    let mut c = db.my().await;
    c.query_drop("ALTER TABLE users ADD COLUMN sneaky INT NOT NULL DEFAULT 3 AFTER email, DROP INDEX users_email")
        .await
        .unwrap();
    let drift = runner::drift(&mut engine).await.unwrap();
    assert_eq!(drift.differences.len(), 2, "{:#?}", drift.differences);
    let captured = runner::capture_drift(&mut engine, &d, &ctx)
        .await
        .unwrap()
        .unwrap();
    assert!(
        captured
            .text
            .contains("ADD COLUMN `sneaky` int(11) NOT NULL DEFAULT 3 AFTER `email`"),
        "{}",
        captured.text
    );
    assert!(runner::drift(&mut engine)
        .await
        .unwrap()
        .differences
        .is_empty());
    let files = sluice_core::migration::discover(&d).unwrap();
    let status = runner::status(&mut engine, &files).await.unwrap();
    assert!(matches!(status.drift, DriftState::Clean));
    runner::down(&mut engine, &files, &DownOptions::default(), &ctx)
        .await
        .unwrap();
    assert_eq!(
        columns(&db, "users").await,
        ["id", "email", "age", "nick", "ok"]
    );
    let idx: Option<String> = c
        .exec_first(
            "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND INDEX_NAME = 'users_email'",
            (&db.name,),
        )
        .await
        .unwrap();
    assert!(idx.is_some(), "down of the capture restores the index");

    // Everything down.
    let files = sluice_core::migration::discover(&d).unwrap();
    let opts = DownOptions {
        to: Some(0),
        ..Default::default()
    };
    runner::down(&mut engine, &files, &opts, &ctx)
        .await
        .unwrap();
    assert!(columns(&db, "users").await.is_empty());
    assert!(engine.history().await.unwrap().is_empty());
    let kinds: Vec<EventKind> = engine
        .events(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Up,
            EventKind::Up,
            EventKind::Failed,
            EventKind::Up,
            EventKind::DriftCapture,
            EventKind::Down,
            EventKind::Down,
            EventKind::Down,
            EventKind::Down
        ]
    );
    std::fs::remove_dir_all(&d).ok();
}

#[tokio::test]
async fn a_second_run_waits_for_the_lock_and_names_the_holder() {
    let db = TestDb::mariadb().await;
    let url = DbUrl::parse(&db.url).unwrap();
    let mut first = MySqlEngine::connect(&url).await.unwrap();
    let mut second = MySqlEngine::connect(&url).await.unwrap();
    let holder = LockHolder {
        host: "build-7".into(),
        pid: 999,
        since: None,
        session: None,
    };
    assert!(matches!(
        first.try_run_lock(&holder).await.unwrap(),
        LockAttempt::Acquired
    ));
    let d = dir("lock");
    write(
        &d,
        "20240101000000_t.sql",
        "CREATE TABLE t (id INT PRIMARY KEY);\n",
    );
    let files = sluice_core::migration::discover(&d).unwrap();
    let err = runner::up(
        &mut second,
        &files,
        &UpOptions::default(),
        &ctx(Duration::from_millis(600)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string().contains("held by pid 999 on host build-7"),
        "{err}"
    );
    first.release_run_lock().await.unwrap();
    runner::up(
        &mut second,
        &files,
        &UpOptions::default(),
        &ctx(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    std::fs::remove_dir_all(&d).ok();
}
