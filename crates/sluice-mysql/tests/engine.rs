//! The MariaDB/MySQL engine against the real local server (each test on a database of its own).

use chrono::{SubsecRound, Utc};
use mysql_async::prelude::Queryable;
use sluice_core::dburl::DbUrl;
use sluice_core::engine::prelude::*;
use sluice_core::engine::{LockAttempt, LockHolder};
use sluice_core::history::{Event, EventKind, HistoryRow, RecordState};
use sluice_core::schema::{diff, ConstraintKind, Schema};
use sluice_core::target::EngineKind;
use sluice_mysql::MySqlEngine;
use sluice_testkit::TestDb;
use std::time::{Duration, Instant};

async fn engine(db: &TestDb) -> MySqlEngine {
    MySqlEngine::connect(&DbUrl::parse(&db.url).unwrap())
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", db.url))
}

/// The test database's URL, changed by `f`.
fn url_with(db: &TestDb, f: impl FnOnce(&mut url::Url)) -> DbUrl {
    let mut u = DbUrl::parse(&db.url).unwrap().expose().clone();
    f(&mut u);
    DbUrl::parse(u.as_str()).unwrap()
}

async fn connect_err(url: &DbUrl) -> sluice_core::Error {
    match MySqlEngine::connect(url).await {
        Ok(_) => panic!("connecting to {} should fail", url.redacted()),
        Err(e) => e,
    }
}

async fn run(db: &TestDb, sql: &str) {
    let mut c = db.my().await;
    for s in sluice_core::sql::split(EngineKind::MariaDb, sql).unwrap() {
        c.query_drop(&s.sql)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", s.sql));
    }
    c.disconnect().await.ok();
}

async fn apply(engine: &mut MySqlEngine, sql: &str) {
    for s in sluice_core::sql::split(EngineKind::MariaDb, sql).unwrap() {
        if let Err(e) = engine.execute(&s.sql).await {
            panic!("{e}\nwhile running\n{}\nof\n{sql}", s.sql);
        }
    }
}

fn me(host: &str, pid: u32) -> LockHolder {
    LockHolder {
        host: host.into(),
        pid,
        since: Some(Utc::now().trunc_subsecs(6)),
        session: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Connecting

#[tokio::test]
async fn connect_reads_flavour_and_version_for_both_schemes() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    let version: String = c.query_first("SELECT VERSION()").await.unwrap().unwrap();
    let mut parts = version.split(|ch: char| !ch.is_ascii_digit());
    let (major, minor): (u32, u32) = (
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    );
    assert!(version.contains("MariaDB"), "{version}");

    let e = engine(&db).await;
    let t = e.target();
    assert_eq!(t.engine, EngineKind::MariaDb);
    assert_eq!((t.major, t.minor), (major, minor));
    // (The local test server is 10.11; these tests need at least 10.6 for IGNORED indexes.)
    assert!(t.at_least(10, 6), "{version}");
    assert!(!e.transactional_ddl());
    assert_eq!(e.url(), db.url);

    let via_mariadb = url_with(&db, |u| {
        u.set_scheme("mariadb").unwrap();
    });
    let e = MySqlEngine::connect(&via_mariadb).await.unwrap();
    assert_eq!(e.target().engine, EngineKind::MariaDb);
    assert!(e.url().starts_with("mariadb://"));

    // PREFERRED (the default, spelled out here) falls back to plain TCP on a server without TLS.
    let preferred = url_with(&db, |u| {
        u.set_query(Some("ssl-mode=PREFERRED"));
    });
    MySqlEngine::connect(&preferred).await.unwrap();
    let disabled = url_with(&db, |u| {
        u.set_query(Some("sslmode=disable"));
    });
    MySqlEngine::connect(&disabled).await.unwrap();
}

#[tokio::test]
async fn connects_through_a_unix_socket() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    let socket: Option<String> = c.query_first("SELECT @@socket").await.unwrap();
    let Some(socket) = socket.filter(|s| std::path::Path::new(s).exists()) else {
        eprintln!("skipped: the server's socket is not on this machine");
        return;
    };
    let url = url_with(&db, |u| u.set_query(Some(&format!("socket={socket}"))));
    let e = MySqlEngine::connect(&url).await.unwrap();
    assert_eq!(e.target().engine, EngineKind::MariaDb);
    let missing = url_with(&db, |u| {
        u.set_query(Some("socket=/nonexistent/mysqld.sock"))
    });
    let err = connect_err(&missing).await;
    assert_eq!(err.exit_code(), 5);
    assert!(
        err.to_string().contains("/nonexistent/mysqld.sock"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_password_is_access_denied_without_the_password() {
    let db = TestDb::mariadb().await;
    let url = url_with(&db, |u| {
        u.set_password(Some("Sup3rSecretPw")).unwrap();
    });
    let e = connect_err(&url).await;
    let text = format!("{e} {}", e.help().unwrap_or_default());
    assert_eq!(e.exit_code(), 5, "{text}");
    assert!(text.contains("access denied"), "{text}");
    assert!(text.contains("password"), "{text}");
    assert!(!text.contains("Sup3rSecretPw"), "{text}");
    assert!(!format!("{e:?}").contains("Sup3rSecretPw"));
}

#[tokio::test]
async fn unknown_database_says_how_to_create_it() {
    let db = TestDb::mariadb().await;
    // Only an account with privileges beyond its database learns that another does not exist
    // (to a database-scoped user the server says "access denied" for it): the administrator.
    let mut u = DbUrl::parse(&db.su_url).unwrap().expose().clone();
    u.set_path("/sluice_no_such_database_here");
    let url = DbUrl::parse(u.as_str()).unwrap();
    let e = connect_err(&url).await;
    assert_eq!(e.exit_code(), 5);
    assert!(
        e.to_string()
            .contains("unknown database `sluice_no_such_database_here`"),
        "{e}"
    );
    let help = e.help().unwrap();
    assert!(
        help.contains("CREATE DATABASE `sluice_no_such_database_here`"),
        "{help}"
    );

    // ... and create_database_if_missing does exactly that.
    sluice_mysql::create_database_if_missing(&url)
        .await
        .unwrap();
    sluice_mysql::create_database_if_missing(&url)
        .await
        .unwrap();
    MySqlEngine::connect(&url).await.unwrap();
    let mut c = db.my_su().await;
    c.query_drop("DROP DATABASE `sluice_no_such_database_here`")
        .await
        .unwrap();
}

#[tokio::test]
async fn refused_port_is_server_unreachable() {
    let url = DbUrl::parse("mysql://root:pw12345@127.0.0.1:1/whatever").unwrap();
    let e = connect_err(&url).await;
    assert_eq!(e.exit_code(), 5);
    let text = e.to_string();
    assert!(
        text.contains("unreachable") && text.contains("connection refused"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(!text.contains("pw12345"), "{text}");
    assert!(e.help().unwrap().contains("port"));

    let url = DbUrl::parse("mysql://root@no-such-host.invalid/whatever?connect-timeout=5").unwrap();
    let e = connect_err(&url).await;
    assert_eq!(e.exit_code(), 5);
    assert!(e.to_string().contains("unreachable"), "{e}");
}

#[tokio::test]
async fn required_tls_against_a_server_without_tls_fails_clearly() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    let have_ssl: Option<(String, String)> = c
        .query_first("SHOW VARIABLES LIKE 'have_ssl'")
        .await
        .unwrap();
    let have_ssl = have_ssl.map(|r| r.1).unwrap_or_default();
    let url = url_with(&db, |u| {
        u.set_query(Some("ssl-mode=REQUIRED"));
    });
    let result = MySqlEngine::connect(&url).await;
    if have_ssl == "YES" {
        // A server with TLS accepts REQUIRED (no certificate check).
        result.unwrap();
        return;
    }
    let e = match result {
        Ok(_) => panic!("REQUIRED must fail without TLS on the server"),
        Err(e) => e,
    };
    assert_eq!(e.exit_code(), 5);
    let text = e.to_string();
    assert!(
        text.contains("TLS") && text.contains("does not support TLS"),
        "{text}"
    );
    assert!(text.contains("REQUIRED"), "{text}");
    assert!(e.help().unwrap().contains("have_ssl"), "{:?}", e.help());

    // Verifying modes fail the same way (the server never gets to show a certificate).
    let url = url_with(&db, |u| {
        u.set_query(Some("sslmode=verify-full"));
    });
    let e = connect_err(&url).await;
    assert!(e.to_string().contains("does not support TLS"), "{e}");
}

#[tokio::test]
async fn bad_url_parameters_are_usage_errors() {
    let db = TestDb::mariadb().await;
    for q in [
        "ssl-mode=SOMETIMES",
        "sslmode=allow",
        "tls=true",
        "ssl-ca=/nonexistent/ca.pem",
    ] {
        let url = url_with(&db, |u| u.set_query(Some(q)));
        let e = connect_err(&url).await;
        assert_eq!(e.exit_code(), 2, "{q}: {e}");
        assert!(e.help().is_some_and(|h| !h.is_empty()), "{q}");
    }
}

// ---------------------------------------------------------------------------------------------
// Run lock

#[tokio::test]
async fn second_run_sees_the_holder_then_gets_the_lock_after_release() {
    let db = TestDb::mariadb().await;
    let mut a = engine(&db).await;
    let mut b = engine(&db).await;
    let holder = me("host-a", 4242);
    assert!(matches!(
        a.try_run_lock(&holder).await.unwrap(),
        LockAttempt::Acquired
    ));
    // Asking again while holding is harmless, and one release still frees it.
    assert!(matches!(
        a.try_run_lock(&holder).await.unwrap(),
        LockAttempt::Acquired
    ));

    match b.try_run_lock(&me("host-b", 7)).await.unwrap() {
        LockAttempt::Busy(Some(h)) => {
            assert_eq!(h.host, "host-a");
            assert_eq!(h.pid, 4242);
            assert_eq!(h.since, holder.since);
            assert!(h.session.is_some());
            assert!(h.to_string().contains("pid 4242 on host host-a"), "{h}");
        }
        LockAttempt::Busy(None) => panic!("busy, but without the holder"),
        LockAttempt::Acquired => panic!("the lock is held by another engine"),
    }

    a.release_run_lock().await.unwrap();
    a.release_run_lock().await.unwrap();
    assert!(matches!(
        b.try_run_lock(&me("host-b", 7)).await.unwrap(),
        LockAttempt::Acquired
    ));
    assert!(
        matches!(a.try_run_lock(&holder).await.unwrap(), LockAttempt::Busy(Some(h)) if h.host == "host-b")
    );
    b.release_run_lock().await.unwrap();
}

#[tokio::test]
async fn a_stale_holder_row_is_not_shown() {
    let db = TestDb::mariadb().await;
    let mut a = engine(&db).await;
    let mut b = engine(&db).await;
    assert!(matches!(
        a.try_run_lock(&me("host-a", 1)).await.unwrap(),
        LockAttempt::Acquired
    ));
    // The row now names a session that does not hold the lock.
    run(
        &db,
        "UPDATE sluice_lock SET connection_id = connection_id + 1000000",
    )
    .await;
    assert!(matches!(
        b.try_run_lock(&me("host-b", 2)).await.unwrap(),
        LockAttempt::Busy(None)
    ));
}

#[tokio::test]
async fn the_lock_goes_with_the_holders_connection() {
    let db = TestDb::mariadb().await;
    let mut a = engine(&db).await;
    let mut b = engine(&db).await;
    assert!(matches!(
        a.try_run_lock(&me("host-a", 1)).await.unwrap(),
        LockAttempt::Acquired
    ));
    assert!(matches!(
        b.try_run_lock(&me("host-b", 2)).await.unwrap(),
        LockAttempt::Busy(_)
    ));
    drop(a);
    let start = Instant::now();
    loop {
        if let LockAttempt::Acquired = b.try_run_lock(&me("host-b", 2)).await.unwrap() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "lock not released by the dropped connection"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A killed session (a crashed run) releases it too.
    let mut c = engine(&db).await;
    let mut admin = db.my().await;
    let ids: Vec<u64> = admin
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
            (&db.name,),
        )
        .await
        .unwrap();
    // Kill everything of `b` (and `c`'s sessions: it reconnects below with a new engine).
    for id in ids {
        let _ = admin.query_drop(format!("KILL {id}")).await;
    }
    drop(c);
    c = engine(&db).await;
    let start = Instant::now();
    while !matches!(
        c.try_run_lock(&me("host-c", 3)).await.unwrap(),
        LockAttempt::Acquired
    ) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "lock not released by the killed session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // `b` lost its connection: its calls fail as database errors.
    let e = b.release_run_lock().await.unwrap_err();
    assert_eq!(e.exit_code(), 6, "{e}");
}

// ---------------------------------------------------------------------------------------------
// History

fn row(version: i64, state: RecordState) -> HistoryRow {
    let now = Utc::now().trunc_subsecs(6);
    HistoryRow {
        version,
        name: "add_users_é".into(),
        checksum: "ab".repeat(32),
        state,
        started_at: now,
        finished_at: Some(now + chrono::Duration::milliseconds(1500)),
        duration_ms: Some(1500),
        applied_by: "alice@ci".into(),
        sluice_version: "0.1.0".into(),
        app_version: Some("v1.2.3".into()),
        statements_done: 2,
        statement_hashes: vec!["h1".into(), "h2".into()],
        error: None,
        failed_statement: None,
    }
}

async fn table_exists(db: &TestDb, name: &str) -> bool {
    let mut c = db.my().await;
    let n: Option<i64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (&db.name, name),
        )
        .await
        .unwrap();
    n == Some(1)
}

#[tokio::test]
async fn history_round_trip_and_append_only_events() {
    let db = TestDb::mariadb().await;
    let mut e = engine(&db).await;
    assert!(e.history().await.unwrap().is_empty());
    assert!(e.events(10).await.unwrap().is_empty());
    assert!(e.latest_snapshot().await.unwrap().is_none());
    assert!(
        !table_exists(&db, "sluice_migrations").await,
        "history() must not create tables"
    );

    e.ensure_history().await.unwrap();
    e.ensure_history().await.unwrap();
    for t in [
        "sluice_migrations",
        "sluice_events",
        "sluice_snapshots",
        "sluice_meta",
    ] {
        assert!(table_exists(&db, t).await, "{t}");
    }
    let mut c = db.my().await;
    let fmt: Option<String> = c
        .query_first("SELECT v FROM sluice_meta WHERE k = 'history_format'")
        .await
        .unwrap();
    assert_eq!(fmt.as_deref(), Some("1"));

    let mut r1 = row(20240101000000, RecordState::Applied);
    let r2 = HistoryRow {
        state: RecordState::Failed,
        finished_at: None,
        duration_ms: None,
        app_version: None,
        statements_done: 1,
        statement_hashes: vec!["h1".into()],
        error: Some("t.sql:3:1: boom (1064)".into()),
        failed_statement: Some("ALTER TABLE `x` ADD y int".into()),
        ..row(20240102000000, RecordState::Failed)
    };
    e.upsert_migration(&r2).await.unwrap();
    e.upsert_migration(&r1).await.unwrap();
    assert_eq!(e.history().await.unwrap(), vec![r1.clone(), r2.clone()]);
    r1.state = RecordState::Reverting;
    r1.statements_done = 0;
    r1.statement_hashes.clear();
    e.upsert_migration(&r1).await.unwrap();
    assert_eq!(e.history().await.unwrap(), vec![r1.clone(), r2.clone()]);
    e.delete_migration(r1.version).await.unwrap();
    assert_eq!(e.history().await.unwrap(), vec![r2]);

    for (i, kind) in [EventKind::Up, EventKind::Failed, EventKind::DriftCapture]
        .into_iter()
        .enumerate()
    {
        e.append_event(&Event {
            kind,
            version: Some(i as i64),
            name: Some(format!("m{i}")),
            checksum: Some("c".into()),
            actor: "alice".into(),
            app_version: (i == 0).then(|| "v9".into()),
            sluice_version: "0.1.0".into(),
            detail: format!("detail {i}"),
        })
        .await
        .unwrap();
    }
    let all = e.events(100).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "chronological order"
    );
    assert_eq!(all[0].event.app_version.as_deref(), Some("v9"));
    let last2 = e.events(2).await.unwrap();
    assert_eq!(last2.len(), 2);
    assert_eq!(last2[1].event.kind, EventKind::DriftCapture);
    assert_eq!(last2[0].event.detail, "detail 1");
    // `at` is written by the server in UTC.
    let skew = (Utc::now() - all[0].at).num_seconds().abs();
    assert!(
        skew < 120,
        "event time {} is not UTC now ({skew}s off)",
        all[0].at
    );

    let err = c
        .query_drop("UPDATE sluice_events SET detail = 'rewritten'")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = c.query_drop("DELETE FROM sluice_events").await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(e.events(100).await.unwrap(), all);
}

#[tokio::test]
async fn snapshots_save_and_latest() {
    let db = TestDb::mariadb().await;
    run(&db, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    let mut e = engine(&db).await;
    e.ensure_history().await.unwrap();
    let first = e.introspect().await.unwrap();
    e.save_snapshot(Some(1), &first).await.unwrap();
    run(&db, "ALTER TABLE t ADD COLUMN name VARCHAR(20)").await;
    let second = e.introspect().await.unwrap();
    e.save_snapshot(None, &second).await.unwrap();
    let snap = e.latest_snapshot().await.unwrap().unwrap();
    assert_eq!(snap.version, None);
    assert_eq!(snap.schema, second);
    assert!((Utc::now() - snap.taken_at).num_seconds().abs() < 120);
    assert_ne!(first, second);
}

// ---------------------------------------------------------------------------------------------
// Execution

#[tokio::test]
async fn execute_reports_server_errors_and_transactions_work() {
    let db = TestDb::mariadb().await;
    run(&db, "CREATE TABLE t (id INT PRIMARY KEY)").await;
    let mut e = engine(&db).await;
    let err = e.execute("SELEC 1").await.unwrap_err();
    assert_eq!(err.code, "1064");
    assert!(err.message.contains("SQL syntax"), "{}", err.message);
    assert!(!err.connection_lost);
    let err = e
        .execute("INSERT INTO missing VALUES (1)")
        .await
        .unwrap_err();
    assert_eq!(err.code, "1146");

    e.begin().await.unwrap();
    e.execute("INSERT INTO t VALUES (1)").await.unwrap();
    e.rollback().await.unwrap();
    e.begin().await.unwrap();
    e.execute("INSERT INTO t VALUES (2)").await.unwrap();
    e.commit().await.unwrap();
    let mut c = db.my().await;
    let ids: Vec<i32> = c.query("SELECT id FROM t").await.unwrap();
    assert_eq!(ids, vec![2]);

    // Migrations run with the server's own session settings (NOW() means what it does elsewhere).
    e.execute("CREATE TABLE tz AS SELECT @@session.time_zone AS tz")
        .await
        .unwrap();
    let tz: Option<String> = c.query_first("SELECT tz FROM tz").await.unwrap();
    let global: Option<String> = c.query_first("SELECT @@global.time_zone").await.unwrap();
    assert_eq!(tz, global);

    let stmt = |s: &str| {
        sluice_core::sql::split(EngineKind::MariaDb, s)
            .unwrap()
            .remove(0)
    };
    assert!(e.needs_own_transaction(&stmt("ALTER TABLE t ADD x INT")));
    assert!(!e.needs_own_transaction(&stmt("UPDATE t SET id = 3")));

    // A killed session is a lost connection: the statement's outcome is unknown.
    let ids: Vec<u64> = c
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
            (&db.name,),
        )
        .await
        .unwrap();
    for id in ids {
        let _ = c.query_drop(format!("KILL {id}")).await;
    }
    let err = e.execute("INSERT INTO t VALUES (5)").await.unwrap_err();
    assert!(err.connection_lost, "{err}");
}

// ---------------------------------------------------------------------------------------------
// Introspection

const FIDELITY: &str = "
CREATE TABLE parent (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, code VARCHAR(20) NOT NULL);
CREATE TABLE t (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  email VARCHAR(255) NOT NULL DEFAULT 'x@y',
  note VARCHAR(10) DEFAULT NULL,
  plain VARCHAR(10),
  n INT NOT NULL DEFAULT 5 CHECK (n > 0),
  created TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  st ENUM('a','b''c') NOT NULL DEFAULT 'a',
  g INT AS (n * 2) VIRTUAL,
  parent_id INT,
  bio TEXT,
  s2 VARCHAR(10) DEFAULT 'NULL',
  l VARCHAR(5) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL DEFAULT 'q' COMMENT 'the l',
  PRIMARY KEY (id),
  UNIQUE KEY uq_email (email),
  KEY idx_bio (bio(20), note),
  CONSTRAINT fk_p FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE,
  CONSTRAINT ck_n CHECK (n < 100)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
CREATE VIEW v AS SELECT id, email FROM t WHERE n > 1;
";

#[tokio::test]
async fn introspection_is_faithful() {
    let db = TestDb::mariadb().await;
    run(&db, FIDELITY).await;
    let mut e = engine(&db).await;
    e.ensure_history().await.unwrap();
    assert!(matches!(
        e.try_run_lock(&me("h", 1)).await.unwrap(),
        LockAttempt::Acquired
    ));
    let s = e.introspect().await.unwrap();
    assert_eq!(
        s.tables.keys().collect::<Vec<_>>(),
        ["parent", "t"],
        "sluice_* tables are left out"
    );
    let t = &s.tables["t"];
    let c = |name: &str| t.columns.iter().find(|c| c.name == name).unwrap().clone();
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "email",
            "note",
            "plain",
            "n",
            "created",
            "st",
            "g",
            "parent_id",
            "bio",
            "s2",
            "l"
        ]
    );

    let id = c("id");
    assert_eq!(
        (id.data_type.as_str(), id.nullable, id.default.as_deref()),
        ("bigint(20) unsigned", false, None)
    );
    assert_eq!(id.extra.as_deref(), Some("AUTO_INCREMENT"));
    assert_eq!(c("email").default.as_deref(), Some("'x@y'"));
    assert!(!c("email").nullable);
    // "DEFAULT NULL" and "no default" are the same thing; the string 'NULL' is not.
    assert_eq!((c("note").default, c("note").nullable), (None, true));
    assert_eq!(c("plain").default, None);
    assert_eq!(c("s2").default.as_deref(), Some("'NULL'"));
    let n = c("n");
    assert_eq!(
        (n.data_type.as_str(), n.default.as_deref()),
        ("int(11)", Some("5"))
    );
    assert_eq!(
        n.extra.as_deref(),
        Some("CHECK (`n` > 0)"),
        "column-level check stays with its column"
    );
    let created = c("created");
    assert_eq!(created.default.as_deref(), Some("current_timestamp(3)"));
    assert_eq!(
        created.extra.as_deref(),
        Some("ON UPDATE current_timestamp(3)")
    );
    assert_eq!(c("st").data_type, "enum('a','b''c')");
    assert_eq!(c("st").default.as_deref(), Some("'a'"));
    let g = c("g");
    assert_eq!(
        g.extra.as_deref(),
        Some("GENERATED ALWAYS AS (`n` * 2) VIRTUAL")
    );
    assert_eq!(g.default, None);
    let l = c("l");
    assert_eq!(
        l.data_type,
        "varchar(5) CHARACTER SET latin1 COLLATE latin1_bin"
    );
    assert_eq!(l.extra.as_deref(), Some("COMMENT 'the l'"));
    assert_eq!(c("bio").data_type, "text");

    let idx = |name: &str| t.indexes[name].clone();
    assert_eq!(idx("PRIMARY").definition, "PRIMARY KEY (`id`)");
    assert!(idx("PRIMARY").unique);
    assert_eq!(
        idx("uq_email").definition,
        "UNIQUE KEY `uq_email` (`email`)"
    );
    assert_eq!(
        idx("idx_bio").definition,
        "KEY `idx_bio` (`bio`(20),`note`)"
    );
    assert_eq!(idx("idx_bio").columns, ["bio(20)", "note"]);
    assert!(!idx("idx_bio").unique);
    // The index the server made for the foreign key.
    assert_eq!(idx("fk_p").definition, "KEY `fk_p` (`parent_id`)");
    assert_eq!(t.indexes.len(), 4);

    assert_eq!(t.constraints.len(), 2, "{:#?}", t.constraints);
    let fk = &t.constraints["fk_p"];
    assert_eq!(fk.kind, ConstraintKind::ForeignKey);
    assert_eq!(
        fk.definition,
        "FOREIGN KEY (`parent_id`) REFERENCES `parent` (`id`) ON DELETE CASCADE ON UPDATE RESTRICT"
    );
    let ck = &t.constraints["ck_n"];
    assert_eq!(
        (ck.kind, ck.definition.as_str()),
        (ConstraintKind::Check, "CHECK (`n` < 100)")
    );

    assert_eq!(
        s.views["v"].definition,
        "select `t`.`id` AS `id`,`t`.`email` AS `email` from `t` where `t`.`n` > 1"
    );
    let create = t.create_sql.as_deref().unwrap();
    assert!(create.starts_with("CREATE TABLE `t` ("), "{create}");
    assert!(create.contains("CONSTRAINT `fk_p` FOREIGN KEY"), "{create}");

    // The same DDL in another database reads the same (no database name leaks into the model)...
    let other = TestDb::mariadb().await;
    run(&other, FIDELITY).await;
    let s2 = engine(&other).await.introspect().await.unwrap();
    assert!(diff(&s, &s2).is_empty(), "{:#?}", diff(&s, &s2));
    assert_eq!(s.fingerprint(), s2.fingerprint());

    // ... and rendering it into an empty database rebuilds it, from create_sql or from the model.
    let empty = Schema::default();
    for use_create_sql in [true, false] {
        let fresh = TestDb::mariadb().await;
        let mut f = engine(&fresh).await;
        let mut from = s.clone();
        if !use_create_sql {
            for t in from.tables.values_mut() {
                t.create_sql = None;
            }
        }
        let sql = f.render_diff_sql(&empty, &from);
        apply(&mut f, &sql).await;
        let rebuilt = f.introspect().await.unwrap();
        let d = diff(&s, &rebuilt);
        assert!(d.is_empty(), "create_sql: {use_create_sql}\n{sql}\n{d:#?}");
        // And back to nothing.
        let sql = f.render_diff_sql(&rebuilt, &empty);
        apply(&mut f, &sql).await;
        assert_eq!(f.introspect().await.unwrap(), empty, "{sql}");
    }
}

// ---------------------------------------------------------------------------------------------
// Drift round trips: render(a, b) turns a database at `a` into `b`, render(b, a) turns it back.

const BASE: &str = "
CREATE TABLE p (id INT NOT NULL PRIMARY KEY, code VARCHAR(20) NOT NULL);
CREATE TABLE t (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  a INT NOT NULL DEFAULT 1,
  b VARCHAR(50) NULL,
  pid INT NULL,
  created DATETIME NULL,
  KEY idx_b (b(10)),
  CONSTRAINT fk_t_p FOREIGN KEY (pid) REFERENCES p (id) ON DELETE SET NULL,
  CONSTRAINT ck_a CHECK (a >= 0)
);
CREATE TABLE k (id INT NOT NULL, x INT NULL);
CREATE VIEW v AS SELECT id, a FROM t WHERE a > 0;
";

async fn round_trip(change: &str) {
    let db_a = TestDb::mariadb().await;
    let db_b = TestDb::mariadb().await;
    run(&db_a, BASE).await;
    run(&db_b, BASE).await;
    run(&db_b, change).await;
    let mut ea = engine(&db_a).await;
    let mut eb = engine(&db_b).await;
    let a = ea.introspect().await.unwrap();
    let b = eb.introspect().await.unwrap();
    let before = diff(&a, &b);
    assert!(
        !before.is_empty(),
        "the change made no difference: {change}"
    );
    assert_eq!(ea.render_diff_sql(&a, &a), "");

    let up = ea.render_diff_sql(&a, &b);
    eprintln!("-- change: {change}\n-- up:\n{up}");
    apply(&mut ea, &up).await;
    let live = ea.introspect().await.unwrap();
    let d = diff(&b, &live);
    assert!(
        d.is_empty(),
        "a -> b left differences\nchange: {change}\nsql:\n{up}\n{d:#?}"
    );

    let down = ea.render_diff_sql(&b, &a);
    eprintln!("-- down:\n{down}");
    apply(&mut ea, &down).await;
    let live = ea.introspect().await.unwrap();
    let d = diff(&a, &live);
    assert!(
        d.is_empty(),
        "b -> a left differences\nchange: {change}\nsql:\n{down}\n{d:#?}"
    );
}

#[tokio::test]
async fn drift_table_added() {
    round_trip(
        "CREATE TABLE extra (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT 'x', \
         pid INT, KEY k_name (name), CONSTRAINT fk_e FOREIGN KEY (pid) REFERENCES p (id), \
         CONSTRAINT ck_e CHECK (name <> '')) ENGINE=InnoDB DEFAULT CHARSET=latin1",
    )
    .await;
}

#[tokio::test]
async fn drift_tables_dropped_with_their_dependents() {
    round_trip("DROP VIEW v; DROP TABLE t; DROP TABLE p").await;
}

#[tokio::test]
async fn drift_column_added_and_dropped() {
    round_trip(
        "ALTER TABLE t ADD COLUMN c VARCHAR(10) NOT NULL DEFAULT 'z' AFTER a, DROP COLUMN created",
    )
    .await;
}

#[tokio::test]
async fn drift_column_type_changed() {
    round_trip("ALTER TABLE t MODIFY a BIGINT NOT NULL DEFAULT 1").await;
}

#[tokio::test]
async fn drift_column_nullability_changed() {
    round_trip("ALTER TABLE t MODIFY b VARCHAR(50) NOT NULL").await;
}

#[tokio::test]
async fn drift_column_default_changed() {
    round_trip(
        "ALTER TABLE t ALTER a SET DEFAULT 7; ALTER TABLE t MODIFY created DATETIME NULL DEFAULT CURRENT_TIMESTAMP",
    )
    .await;
}

#[tokio::test]
async fn drift_column_collation_and_comment_changed() {
    round_trip("ALTER TABLE t MODIFY b VARCHAR(50) CHARACTER SET latin1 COLLATE latin1_bin NULL COMMENT 'bee'").await;
}

#[tokio::test]
async fn drift_generated_and_enum_columns_added() {
    round_trip("ALTER TABLE t ADD COLUMN g INT AS (a * 2) VIRTUAL, ADD COLUMN st ENUM('x','y') NOT NULL DEFAULT 'x' FIRST")
        .await;
}

#[tokio::test]
async fn drift_index_added_and_dropped() {
    round_trip("CREATE UNIQUE INDEX uq_b ON t (b, a); DROP INDEX idx_b ON t").await;
}

#[tokio::test]
async fn drift_index_changed() {
    round_trip("DROP INDEX idx_b ON t; CREATE INDEX idx_b ON t (b(20), a)").await;
}

#[tokio::test]
async fn drift_primary_key_and_auto_increment_added() {
    round_trip("ALTER TABLE k MODIFY id INT NOT NULL AUTO_INCREMENT, ADD PRIMARY KEY (id)").await;
}

#[tokio::test]
async fn drift_foreign_key_dropped() {
    round_trip("ALTER TABLE t DROP FOREIGN KEY fk_t_p").await;
}

#[tokio::test]
async fn drift_foreign_key_added_with_its_column_and_index() {
    round_trip(
        "ALTER TABLE t ADD COLUMN q INT NULL, ADD CONSTRAINT fk_q FOREIGN KEY (q) REFERENCES p (id) ON UPDATE CASCADE",
    )
    .await;
}

#[tokio::test]
async fn drift_foreign_key_changed() {
    round_trip(
        "ALTER TABLE t DROP FOREIGN KEY fk_t_p; \
         ALTER TABLE t ADD CONSTRAINT fk_t_p FOREIGN KEY (pid) REFERENCES p (id) ON DELETE CASCADE",
    )
    .await;
}

#[tokio::test]
async fn drift_check_added_and_dropped() {
    round_trip(
        "ALTER TABLE t DROP CONSTRAINT ck_a; ALTER TABLE t ADD CONSTRAINT ck_b CHECK (b <> '')",
    )
    .await;
}

#[tokio::test]
async fn drift_column_level_check_added() {
    round_trip("ALTER TABLE t MODIFY a INT NOT NULL DEFAULT 1 CHECK (a < 1000)").await;
}

#[tokio::test]
async fn drift_view_added_changed_and_dropped() {
    round_trip(
        "CREATE OR REPLACE VIEW v AS SELECT id, a, b FROM t; CREATE VIEW v2 AS SELECT v.id FROM v",
    )
    .await;
    round_trip("DROP VIEW v").await;
}

// ---------------------------------------------------------------------------------------------
// TLS modes against a server with TLS. The local test server has none, so this runs only when
// SLUICE_TEST_MYSQL_TLS_URL (a URL whose host is a name the server certificate carries, e.g.
// mysql://root@localhost:3317/mysql) and SLUICE_TEST_MYSQL_TLS_CA (the CA's PEM file) are set.

#[tokio::test]
async fn tls_modes_against_a_tls_server() {
    let (Ok(raw), Ok(ca)) = (
        std::env::var("SLUICE_TEST_MYSQL_TLS_URL"),
        std::env::var("SLUICE_TEST_MYSQL_TLS_CA"),
    ) else {
        eprintln!("skipped: SLUICE_TEST_MYSQL_TLS_URL / SLUICE_TEST_MYSQL_TLS_CA not set");
        return;
    };
    let url = |host: &str, query: &str| {
        let mut u = DbUrl::parse(&raw).unwrap().expose().clone();
        u.set_host(Some(host)).unwrap();
        u.set_query(Some(query));
        DbUrl::parse(u.as_str()).unwrap()
    };
    let named = DbUrl::parse(&raw).unwrap().host();
    let ok = |u: DbUrl| async move {
        MySqlEngine::connect(&u)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}\n{:?}", u.redacted(), e.help()));
    };
    ok(url(&named, "ssl-mode=REQUIRED")).await;
    ok(url("127.0.0.1", "ssl-mode=REQUIRED")).await;
    ok(url(&named, "ssl-mode=PREFERRED")).await;
    ok(url(
        &named,
        &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
    ))
    .await;
    // VERIFY_CA checks the chain only: an address the certificate does not name is fine.
    ok(url("127.0.0.1", &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"))).await;

    let e = connect_err(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&ssl-ca={ca}"),
    ))
    .await;
    assert_eq!(e.exit_code(), 5);
    assert!(e.to_string().contains("TLS handshake"), "{e}");
    // The advice fixes the name; it never offers to weaken verification.
    let help = e.help().unwrap();
    assert!(
        help.contains("a host name the certificate carries"),
        "{help}"
    );
    assert!(
        !help.contains("VERIFY_CA") && !help.contains("REQUIRED"),
        "{help}"
    );

    // REQUIRED (or libpq's require) with a CA checks the chain, as libpq does with a root file:
    // the right CA passes whatever the name, another CA is refused.
    ok(url("127.0.0.1", &format!("ssl-mode=REQUIRED&ssl-ca={ca}"))).await;
    let e = connect_err(&url(
        &named,
        "sslmode=require&ssl-ca=/etc/ssl/certs/ISRG_Root_X1.pem",
    ))
    .await;
    assert_eq!(e.exit_code(), 5);
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    assert!(e.to_string().contains("ssl-mode=VERIFY_CA"), "{e}");

    // Without the CA, the chain cannot be verified, whatever the name.
    for host in [named.as_str(), "127.0.0.1"] {
        let e = connect_err(&url(host, "ssl-mode=VERIFY_CA")).await;
        assert_eq!(e.exit_code(), 5);
        assert!(e.to_string().contains("TLS handshake"), "{e}");
        assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        assert!(e.help().unwrap().contains("ssl-ca"), "{:?}", e.help());
    }
}

#[tokio::test]
async fn drift_special_indexes_and_columns() {
    round_trip(
        "CREATE FULLTEXT INDEX ft_b ON t (b); CREATE INDEX d_a ON t (a DESC, id); \
         ALTER TABLE t ALTER INDEX idx_b IGNORED; \
         ALTER TABLE t ADD COLUMN body TEXT, ADD UNIQUE KEY uq_body (body), \
           ADD COLUMN hid INT NULL INVISIBLE COMMENT 'it''s hidden', \
           ADD COLUMN ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP; \
         CREATE OR REPLACE VIEW v AS SELECT id, a FROM t WHERE a > 0 WITH CHECK OPTION",
    )
    .await;
}

/// A `+` in a URL password is a `+` (URL userinfo is percent-decoded only; `+` means a space only
/// in form encoding), and `%2B`, `%20`, `%40` decode as usual: each password connects.
#[tokio::test]
async fn plus_and_percent_escapes_in_a_url_password_connect() {
    let db = TestDb::mariadb().await;
    // Only an administrator creates users.
    let mut c = db.my_su().await;
    let user = format!("u_{}", db.name);
    for (password, in_url) in [
        ("p+q", "p+q"),
        ("p+q w@x", "p%2Bq%20w%40x"),
        ("a+b+c", "a%2Bb+c"),
    ] {
        c.query_drop(format!(
            "CREATE OR REPLACE USER '{user}'@'%' IDENTIFIED BY '{password}'"
        ))
        .await
        .unwrap();
        c.query_drop(format!("GRANT ALL ON `{}`.* TO '{user}'@'%'", db.name))
            .await
            .unwrap();
        let url = DbUrl::parse(&format!(
            "mysql://{user}:{in_url}@127.0.0.1:3306/{}",
            db.name
        ))
        .unwrap();
        assert_eq!(url.password().as_deref(), Some(password));
        MySqlEngine::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{password}: {e}"));
    }
    c.query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .unwrap();
}
