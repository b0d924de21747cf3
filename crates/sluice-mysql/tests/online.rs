//! Online ALTER TABLE on a real MariaDB: the path prediction judged by the server, the online copy
//! under concurrent writers compared with what the as-written ALTER gives, the fast path, refusals.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::dburl::DbUrl;
use sluice_core::engine::prelude::*;
use sluice_core::engine::OnlineOptions;
use sluice_core::Error;
use sluice_mysql::introspect::Flavour;
use sluice_mysql::online::{parse, path, table};
use sluice_mysql::MySqlEngine;
use sluice_testkit::TestDb;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn engine(db: &TestDb) -> MySqlEngine {
    MySqlEngine::connect(&DbUrl::parse(&db.url).unwrap())
        .await
        .unwrap()
}

async fn count(c: &mut Conn, sql: &str) -> i64 {
    c.query_first::<i64, _>(sql).await.unwrap().unwrap_or(0)
}

fn quiet() -> impl Fn(&str) + Send + Sync {
    |_: &str| {}
}

fn small_chunks() -> OnlineOptions {
    OnlineOptions {
        target_chunk: Duration::from_millis(2),
        lock_retry_for: Duration::from_secs(60),
        ..Default::default()
    }
}

const FIXTURE: &str = "CREATE TABLE p (id INT PRIMARY KEY, n INT NOT NULL, balance INT NULL, \
    note VARCHAR(20), KEY ix_n (n)) DEFAULT CHARSET=utf8mb4; INSERT INTO p VALUES (1, 1, 1, 'a'), (2, 2, 2, 'b')";

/// The cheapest algorithm the server accepts for `clause`, asked in the order sluice asks.
async fn server_algo(c: &mut Conn, clause: &str) -> path::Algo {
    for (algo, spelled) in [
        (path::Algo::Instant, "ALGORITHM=INSTANT"),
        (path::Algo::NoCopy, "ALGORITHM=NOCOPY, LOCK=NONE"),
        (path::Algo::Inplace, "ALGORITHM=INPLACE, LOCK=NONE"),
        (path::Algo::Shared, "ALGORITHM=INPLACE, LOCK=SHARED"),
    ] {
        c.query_drop(format!("DROP TABLE IF EXISTS p; {FIXTURE}"))
            .await
            .unwrap();
        match c
            .query_drop(format!("ALTER TABLE p {clause}, {spelled}"))
            .await
        {
            Ok(()) => return algo,
            Err(mysql_async::Error::Server(se)) if se.code == 1845 || se.code == 1846 => {}
            Err(e) => panic!("{clause} with {spelled}: {e}"),
        }
    }
    path::Algo::Copy
}

#[tokio::test]
async fn path_predictions_match_what_the_server_accepts() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    let v: String = c.query_first("SELECT VERSION()").await.unwrap().unwrap();
    let flavour = Flavour::from_version_string(&v);
    let clauses = [
        "ADD COLUMN c INT",
        "ADD COLUMN c INT AFTER id",
        "DROP COLUMN note",
        "DROP COLUMN n",
        "RENAME COLUMN note TO note2",
        "MODIFY balance BIGINT",
        "MODIFY note VARCHAR(100)",
        "MODIFY note VARCHAR(10)",
        "ADD INDEX ix_b (balance)",
        "ADD UNIQUE INDEX ux_note (note)",
        "MODIFY balance INT NOT NULL",
        "MODIFY n INT NULL",
        "ALTER COLUMN balance SET DEFAULT 7",
        "MODIFY balance INT DEFAULT 7",
        "ADD FULLTEXT INDEX ft (note)",
        "MODIFY note VARCHAR(20) CHARACTER SET latin1",
        "ADD COLUMN c INT AUTO_INCREMENT UNIQUE",
    ];
    let mut wrong = Vec::new();
    for clause in clauses {
        c.query_drop(format!("DROP TABLE IF EXISTS p; {FIXTURE}"))
            .await
            .unwrap();
        let live = table::read(&mut c, "p").await.unwrap().unwrap();
        let a = parse::parse(&format!("ALTER TABLE p {clause}")).unwrap();
        let kinds: Vec<_> = a.clauses.iter().map(|c| c.kind.clone()).collect();
        let predicted = path::plan(flavour, &live, &kinds).0;
        let actual = server_algo(&mut c, clause).await;
        if predicted != actual {
            wrong.push(format!(
                "{clause}: predicted {predicted:?}, server {actual:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{v}: {wrong:#?}");
}

#[tokio::test]
async fn instant_clause_runs_with_algorithm_instant_and_no_shadow() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop(FIXTURE).await.unwrap();
    let mut e = engine(&db).await;
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let say = move |s: &str| l2.lock().unwrap().push(s.to_string());
    let r = e
        .alter_online("ALTER TABLE p ADD COLUMN c INT", &small_chunks(), &say)
        .await
        .unwrap()
        .expect("handled online");
    assert_eq!(r.path, "instant");
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("ALGORITHM=INSTANT")),
        "{lines:?}"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '\\_p\\_%'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        )
        .await,
        0
    );
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'p' AND COLUMN_NAME = 'c'").await,
        1
    );
    // A statement the server refuses in place (a type change) goes to the copy instead.
    let r = e
        .alter_online(
            "ALTER TABLE p MODIFY balance BIGINT",
            &small_chunks(),
            &quiet(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.path, "copy");
    // Not ALTER TABLE, or ALTER TABLE sluice leaves alone: run as written.
    assert!(e
        .alter_online("ALTER TABLE p RENAME TO q", &small_chunks(), &quiet())
        .await
        .unwrap()
        .is_none());
    assert!(e
        .alter_online(
            "ALTER TABLE p ADD COLUMN d INT, ALGORITHM=COPY",
            &small_chunks(),
            &quiet()
        )
        .await
        .unwrap()
        .is_none());
    let plan = e
        .explain_online("ALTER TABLE p MODIFY note VARCHAR(5)", 0)
        .await
        .unwrap()
        .unwrap();
    assert!(plan[0].starts_with("online copy"), "{plan:?}");
}

#[tokio::test]
async fn refuses_tables_it_cannot_copy_and_leaves_nothing_behind() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop(
        "CREATE TABLE nokey (a INT, b INT); \
         CREATE TABLE parent (id INT PRIMARY KEY, v INT); \
         CREATE TABLE child (id INT PRIMARY KEY, pid INT, v INT, FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE); \
         CREATE TABLE kept (id INT PRIMARY KEY, pid INT, v INT, FOREIGN KEY (pid) REFERENCES parent (id)); \
         CREATE TABLE trig (id INT PRIMARY KEY, v INT); \
         CREATE TRIGGER trig_ai AFTER INSERT ON trig FOR EACH ROW SET @x = 1; \
         CREATE TABLE approx (k DOUBLE PRIMARY KEY, v INT); INSERT INTO approx VALUES (0.1, 1)",
    )
    .await
    .unwrap();
    let mut e = engine(&db).await;
    for (sql, expect) in [
        ("ALTER TABLE nokey MODIFY a BIGINT", "no primary key"),
        // Cascaded changes fire no trigger: the copy would miss them.
        ("ALTER TABLE child MODIFY v BIGINT", "fires no trigger"),
        (
            "ALTER TABLE kept DROP FOREIGN KEY kept_ibfk_1, MODIFY v BIGINT",
            "drops a foreign key",
        ),
        ("ALTER TABLE trig MODIFY v BIGINT", "has triggers"),
        ("ALTER TABLE approx MODIFY v BIGINT", "floating-point"),
    ] {
        let err = e
            .alter_online(sql, &small_chunks(), &quiet())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Usage { .. }), "{sql}: {err}");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains(expect), "{sql}: {err}");
        assert!(err.help().unwrap().contains("--as-written"), "{sql}");
    }
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '\\_%'").await,
        0
    );
}

/// Row count and an order-independent checksum of every column of a table.
async fn fingerprint(c: &mut Conn, t: &str, cols: &str) -> (i64, i64) {
    let row: Option<(i64, i64)> = c
        .query_first(format!(
            "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', {cols}))), 0) FROM {t}"
        ))
        .await
        .unwrap();
    row.unwrap()
}

/// One client: random inserts, updates (also of rows far ahead of the copy) and deletes, some
/// transactions touching two rows. Each change is made to `acc` (altered online)
/// and `mirror` (never altered) in the same transaction, so the expected result is the as-written
/// ALTER applied to `mirror`.
async fn client(url: String, seed: u64, stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) -> Vec<String> {
    let mut c = Conn::from_url(url).await.unwrap();
    let mut x = seed;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut errors = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let kind = rnd(10);
        // Two-row transactions lock in key order, so clients never deadlock among themselves:
        // any error a client sees is one sluice caused.
        let (a, b) = {
            let (x, y) = (rnd(16_000) + 1, rnd(16_000) + 1);
            (x.min(y), x.max(y))
        };
        let v = rnd(2_000_000) as i64 - 1_000_000;
        let sql = match kind {
            0..=1 => format!(
                "START TRANSACTION; INSERT INTO acc (balance, note) VALUES ({v}, 'new'); \
                 INSERT INTO mirror (id, balance, note) VALUES (LAST_INSERT_ID(), {v}, 'new'); COMMIT"
            ),
            2..=5 => format!(
                "START TRANSACTION; UPDATE acc SET balance = {v}, note = 'u{seed}' WHERE id = {a}; \
                 UPDATE mirror SET balance = {v}, note = 'u{seed}' WHERE id = {a}; COMMIT"
            ),
            6 => format!(
                "START TRANSACTION; DELETE FROM acc WHERE id = {a}; DELETE FROM mirror WHERE id = {a}; COMMIT"
            ),
            _ => format!(
                "START TRANSACTION; UPDATE acc SET balance = balance + 1 WHERE id = {a}; \
                 UPDATE acc SET balance = balance - 1 WHERE id = {b}; \
                 UPDATE mirror SET balance = balance + 1 WHERE id = {a}; \
                 UPDATE mirror SET balance = balance - 1 WHERE id = {b}; COMMIT"
            ),
        };
        match c.query_drop(&sql).await {
            Ok(()) => {
                ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let _ = c.query_drop("ROLLBACK").await;
                errors.push(format!("{e} in {sql}"));
            }
        }
    }
    let _ = c.disconnect().await;
    errors
}

/// `n` mirrored clients (see `client`) running until `stop`.
struct Clients {
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    handles: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Clients {
    fn start(url: &str, seed: u64, n: u64) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let handles = (0..n)
            .map(|i| {
                tokio::spawn(client(
                    url.to_string(),
                    seed + i * 7919,
                    stop.clone(),
                    ops.clone(),
                ))
            })
            .collect();
        Clients { stop, ops, handles }
    }

    /// Stops them and returns the errors they saw.
    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for h in self.handles {
            errors.extend(h.await.unwrap());
        }
        errors
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copy_under_concurrent_writers_equals_the_as_written_alter() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    // The top ids are deleted first: the original's counter is ahead of its largest id.
    c.query_drop(
        "CREATE TABLE acc (id INT AUTO_INCREMENT PRIMARY KEY, balance INT NULL, note VARCHAR(40), KEY (note), \
         UNIQUE KEY `u``b` (balance, id), KEY nb (note(5), balance) COMMENT 'two, parts'); \
         INSERT INTO acc (balance, note) SELECT CAST(seq AS SIGNED) * 7 - 50000, CONCAT('n', seq) FROM seq_1_to_15500; \
         DELETE FROM acc WHERE id > 15000; \
         CREATE TABLE mirror LIKE acc; INSERT INTO mirror SELECT * FROM acc",
    )
    .await
    .unwrap();
    let clients = Clients::start(&db.url, 0x9E37_79B9, 4);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = clients.ops.load(Ordering::Relaxed);
    let mut e = engine(&db).await;
    let report = e
        .alter_online(
            "ALTER TABLE acc MODIFY balance BIGINT NOT NULL",
            &small_chunks(),
            &quiet(),
        )
        .await
        .unwrap()
        .unwrap();
    let during = clients.ops.load(Ordering::Relaxed) - before;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let errors = clients.stop().await;
    assert_eq!(report.path, "copy");
    assert!(errors.is_empty(), "client errors: {errors:#?}");
    assert!(
        during > 100,
        "the clients barely ran during the copy ({during} ops)"
    );
    // Rows the change log brought over before their chunk came are not counted as copied.
    assert!(report.rows_copied >= 10_000, "{report:?}");

    // The expected table: the same data, altered as written.
    c.query_drop(
        "CREATE TABLE expect LIKE mirror; INSERT INTO expect SELECT * FROM mirror; \
                  ALTER TABLE expect MODIFY balance BIGINT NOT NULL",
    )
    .await
    .unwrap();
    let got = fingerprint(&mut c, "acc", "id, balance, note").await;
    let want = fingerprint(&mut c, "expect", "id, balance, note").await;
    assert_eq!(got, want, "rows differ from the as-written ALTER");
    let ddl = |t: &str| {
        format!("SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{t}' ORDER BY ORDINAL_POSITION")
    };
    let a: Vec<(String, String, String, String)> = c.query(ddl("acc")).await.unwrap();
    let b: Vec<(String, String, String, String)> = c.query(ddl("expect")).await.unwrap();
    assert_eq!(a, b);
    // The secondary indexes, built after the copy, are the ones the ALTER as written leaves, in
    // the same order.
    let show = |t: &'static str| {
        let url = db.url.clone();
        async move {
            let mut c = Conn::from_url(url).await.unwrap();
            let (_, ddl): (String, String) = c
                .query_first(format!("SHOW CREATE TABLE {t}"))
                .await
                .unwrap()
                .unwrap();
            ddl.lines()
                .filter(|l| l.trim_start().starts_with(['K', 'U', 'P']))
                .map(|l| l.trim().trim_end_matches(',').to_string())
                .collect::<Vec<_>>()
        }
    };
    let (got_idx, want_idx) = (show("acc").await, show("expect").await);
    assert_eq!(got_idx.len(), 4, "{got_idx:?}");
    assert_eq!(got_idx, want_idx);
    // The old table is kept, the triggers and the change log are gone.
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_acc_old'").await, 1);
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('_acc_new', '_acc_chg')").await, 0);
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        )
        .await,
        0
    );
    // Inserts after the swap continue the original's AUTO_INCREMENT sequence.
    let next_old = count(&mut c, "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_acc_old'").await;
    c.query_drop("INSERT INTO acc (balance, note) VALUES (1, 'after')")
        .await
        .unwrap();
    assert!(count(&mut c, "SELECT LAST_INSERT_ID()").await >= next_old);
    let lines = e.online_cleanup(false).await.unwrap();
    assert!(lines[0].contains("_acc_old"), "{lines:?}");
}

/// `commit_factor`: the copy times a one-row commit after each chunk (said with its idle latency
/// and budget, and at the end how long it paused), and under concurrent writers ends as the ALTER
/// as written does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_paced_on_commit_latency_says_so_and_equals_the_alter() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop(
        "CREATE TABLE acc (id INT AUTO_INCREMENT PRIMARY KEY, balance INT NULL, note VARCHAR(40), KEY (note), \
         UNIQUE KEY ub (balance, id), KEY nb (note(5), balance)); \
         INSERT INTO acc (balance, note) SELECT CAST(seq AS SIGNED) * 7 - 50000, CONCAT('n', seq) FROM seq_1_to_15000; \
         CREATE TABLE mirror LIKE acc; INSERT INTO mirror SELECT * FROM acc",
    )
    .await
    .unwrap();
    let clients = Clients::start(&db.url, 0x5EED_0C0F, 4);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut e = engine(&db).await;
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let say = move |s: &str| l2.lock().unwrap().push(s.to_string());
    let opts = OnlineOptions {
        commit_factor: Some(3.0),
        ..small_chunks()
    };
    let report = e
        .alter_online(
            "ALTER TABLE acc MODIFY balance BIGINT NOT NULL",
            &opts,
            &say,
        )
        .await
        .unwrap()
        .unwrap();
    let errors = clients.stop().await;
    assert_eq!(report.path, "copy");
    assert!(errors.is_empty(), "client errors: {errors:#?}");
    let lines = lines.lock().unwrap().clone();
    assert!(
        lines.iter().any(
            |l| l.contains("paced on commit latency: idle") && l.contains("pausing while over")
        ),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("paused") && l.contains("whose commit probe was over")),
        "{lines:#?}"
    );
    c.query_drop(
        "CREATE TABLE expect LIKE mirror; INSERT INTO expect SELECT * FROM mirror; \
         ALTER TABLE expect MODIFY balance BIGINT NOT NULL",
    )
    .await
    .unwrap();
    // The clients wrote `mirror` in the same transactions: `expect` is the ALTER as written.
    let show = |t: &'static str| {
        let url = db.url.clone();
        async move {
            let mut c = Conn::from_url(url).await.unwrap();
            let (_, ddl): (String, String) = c
                .query_first(format!("SHOW CREATE TABLE {t}"))
                .await
                .unwrap()
                .unwrap();
            ddl.lines()
                .filter(|l| l.trim_start().starts_with(['K', 'U', 'P', '`']))
                .map(|l| l.trim().trim_end_matches(',').to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(show("acc").await, show("expect").await);
    let got = fingerprint(&mut c, "acc", "id, balance, note").await;
    let want = fingerprint(&mut c, "expect", "id, balance, note").await;
    assert_eq!(got, want, "rows differ from the as-written ALTER");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copy_never_waits_on_a_clients_row_locks_and_postponed_cutover_verifies_the_delta() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop(
        "CREATE TABLE acc (id INT PRIMARY KEY, balance INT NULL, note VARCHAR(40) CHARACTER SET latin1); \
         INSERT INTO acc SELECT seq, seq, CONCAT('caf', CHAR(233 USING latin1), seq) FROM seq_1_to_10000",
    )
    .await
    .unwrap();
    let mut e = engine(&db).await;
    let opts = OnlineOptions {
        postpone_cutover: true,
        ..small_chunks()
    };
    let sql = "ALTER TABLE acc MODIFY note VARCHAR(40) CHARACTER SET utf8mb4";
    let copy = tokio::spawn(async move {
        let r = e.alter_online(sql, &opts, &quiet()).await;
        (e, r)
    });
    // As soon as the triggers exist (the copy starts right after), a client takes exclusive locks
    // on rows and keeps them uncommitted: a copy that read with shared locks would wait for it.
    let mut holder = db.my().await;
    while count(
        &mut c,
        "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
    )
    .await
        < 3
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    holder
        .query_drop("START TRANSACTION; UPDATE acc SET balance = -1 WHERE id IN (10, 5000, 9999)")
        .await
        .unwrap();
    let (mut e, r) = tokio::time::timeout(Duration::from_secs(60), copy)
        .await
        .expect("the copy waited on the client's locks")
        .unwrap();
    let r = r.unwrap().unwrap();
    let copied: i64 = count(&mut c, "SELECT rows_copied FROM sluice_online").await;
    assert!(copied >= 10_000, "{copied}");
    assert!(r.cutover_pending);
    holder.query_drop("COMMIT").await.unwrap();
    // Changes after the verification reach the new table through the change log.
    c.query_drop("UPDATE acc SET note = 'später' WHERE id = 7; DELETE FROM acc WHERE id = 8; INSERT INTO acc VALUES (20001, 1, 'neu')")
        .await
        .unwrap();
    let lines = e.online_cutover(&small_chunks(), &quiet()).await.unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    // Running the statement again (as `sluice up` does) finds it done.
    let again = e
        .alter_online(sql, &small_chunks(), &quiet())
        .await
        .unwrap()
        .unwrap();
    assert!(!again.cutover_pending);
    let charset: String = c
        .query_first("SELECT CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'acc' AND COLUMN_NAME = 'note'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(charset, "utf8mb4");
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM acc WHERE balance = -1").await,
        3
    );
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM acc").await, 10_000);
    let note: String = c
        .query_first("SELECT note FROM acc WHERE id = 7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note, "später");
    let note: String = c
        .query_first("SELECT note FROM acc WHERE id = 12")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note, "café12");
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM acc WHERE id IN (8, 20001)").await,
        1
    );
}

#[tokio::test]
async fn data_the_alter_would_reject_fails_the_copy_and_leaves_the_table_unchanged() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop(
        "CREATE TABLE acc (id INT PRIMARY KEY, balance INT NULL, note VARCHAR(40)); \
         INSERT INTO acc SELECT seq, seq, CONCAT('n', seq % 500) FROM seq_1_to_3000",
    )
    .await
    .unwrap();
    let mut e = engine(&db).await;
    // Duplicate notes: as written, the unique key fails; the copy must not drop rows silently.
    let err = e
        .alter_online(
            "ALTER TABLE acc MODIFY balance BIGINT NOT NULL, ADD UNIQUE KEY (note)",
            &small_chunks(),
            &quiet(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Duplicate entry"), "{err}");
    // A value the new type cannot hold fails as the as-written ALTER would (strict mode).
    let err = e
        .alter_online(
            "ALTER TABLE acc MODIFY balance TINYINT NOT NULL",
            &small_chunks(),
            &quiet(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Out of range"), "{err}");
    assert!(err.to_string().contains("unchanged"), "{err}");
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM acc").await, 3000);
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '\\_acc%'").await,
        0
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn composite_text_key_and_an_odd_table_name() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop(
        "CREATE TABLE `we``ird acc` (region VARCHAR(10) CHARACTER SET latin1 NOT NULL, id INT NOT NULL, \
         v INT, PRIMARY KEY (region, id)); \
         INSERT INTO `we``ird acc` SELECT ELT(1 + seq % 3, 'eu', 'us', 'ap'), seq, seq FROM seq_1_to_3000",
    )
    .await
    .unwrap();
    let mut e = engine(&db).await;
    let opts = OnlineOptions {
        postpone_cutover: true,
        ..small_chunks()
    };
    let sql = "ALTER TABLE `we``ird acc` MODIFY v BIGINT NOT NULL -- widen";
    let r = e.alter_online(sql, &opts, &quiet()).await.unwrap().unwrap();
    assert!(r.cutover_pending);
    c.query_drop(
        "UPDATE `we``ird acc` SET v = -v WHERE id % 7 = 0; DELETE FROM `we``ird acc` WHERE region = 'ap' AND id < 100; \
         UPDATE `we``ird acc` SET region = 'sa' WHERE id = 5",
    )
    .await
    .unwrap();
    let want: (i64, i64) = c
        .query_first(
            "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', region, id, v))) FROM `we``ird acc`",
        )
        .await
        .unwrap()
        .unwrap();
    e.online_cutover(&small_chunks(), &quiet()).await.unwrap();
    let got: (i64, i64) = c
        .query_first(
            "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', region, id, v))) FROM `we``ird acc`",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, want);
    let ty: String = c
        .query_first("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'we`ird acc' AND COLUMN_NAME = 'v'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ty, "bigint(20)");
    // The old table is kept, with the changes made before the swap.
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM `_we``ird acc_old`").await,
        want.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copy_pauses_while_threads_running_is_above_the_limit() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop(
        "CREATE TABLE acc (id INT PRIMARY KEY, v INT); INSERT INTO acc SELECT seq, seq FROM seq_1_to_2000",
    )
    .await
    .unwrap();
    // Three sessions busy for 2 s keep Threads_running above 2 (the copy's own query counts too).
    let mut sleepers = Vec::new();
    for _ in 0..3 {
        let url = db.url.clone();
        sleepers.push(tokio::spawn(async move {
            let mut s = Conn::from_url(url).await.unwrap();
            let _: Option<i64> = s.query_first("SELECT SLEEP(2)").await.unwrap();
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut e = engine(&db).await;
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let say = move |s: &str| l2.lock().unwrap().push(s.to_string());
    let opts = OnlineOptions {
        max_threads_running: Some(2),
        ..small_chunks()
    };
    let started = std::time::Instant::now();
    let r = e
        .alter_online("ALTER TABLE acc MODIFY v BIGINT", &opts, &say)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.path, "copy");
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("paused: Threads_running")),
        "{lines:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "did not wait"
    );
    for s in sleepers {
        s.await.unwrap();
    }
}

#[tokio::test]
async fn integer_keys_dense_or_sparse_copy_every_row() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    // `dense` has every other id (chunked by arithmetic key ranges), `sparse` two clusters a
    // billion apart (chunked by walking the index), `neg` negative and unsigned-looking extremes.
    c.query_drop(
        "CREATE TABLE dense (id BIGINT PRIMARY KEY, v INT NULL, KEY (v)); \
         INSERT INTO dense SELECT seq * 2, seq FROM seq_1_to_6000; \
         CREATE TABLE sparse (id BIGINT UNSIGNED PRIMARY KEY, v INT NULL); \
         INSERT INTO sparse SELECT seq, seq FROM seq_1_to_3000; \
         INSERT INTO sparse SELECT 18446744073709550000 + seq, seq FROM seq_1_to_1000; \
         CREATE TABLE neg (id INT PRIMARY KEY, v INT NULL); \
         INSERT INTO neg SELECT CAST(seq AS SIGNED) - 2000, seq FROM seq_1_to_4000; \
         CREATE TABLE tenanted (tenant INT NOT NULL, id BIGINT NOT NULL AUTO_INCREMENT, v INT NULL, \
             PRIMARY KEY (tenant, id), KEY id (id), KEY v (v)); \
         INSERT INTO tenanted (tenant, v) SELECT seq % 7, seq FROM seq_1_to_3000",
    )
    .await
    .unwrap();
    let mut e = engine(&db).await;
    // `tenanted`: its AUTO_INCREMENT column leads only a secondary index, which must stay.
    for t in ["dense", "sparse", "neg", "tenanted"] {
        let before = fingerprint(&mut c, t, "id, v").await;
        let r = e
            .alter_online(
                &format!("ALTER TABLE {t} MODIFY v BIGINT NOT NULL"),
                &small_chunks(),
                &quiet(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.path, "copy", "{t}");
        assert_eq!(fingerprint(&mut c, t, "id, v").await, before, "{t}");
        assert_eq!(r.rows_copied, before.0, "{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cutover_waits_while_another_session_holds_the_shadow_and_loses_no_write() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop(
        "CREATE TABLE acc (id INT AUTO_INCREMENT PRIMARY KEY, balance INT NULL, note VARCHAR(40), KEY (note)); \
         INSERT INTO acc (balance, note) SELECT seq, CONCAT('n', seq) FROM seq_1_to_15000; \
         CREATE TABLE mirror LIKE acc; INSERT INTO mirror SELECT * FROM acc",
    )
    .await
    .unwrap();
    let mut e = engine(&db).await;
    let sql = "ALTER TABLE acc MODIFY balance BIGINT NOT NULL";
    let postponed = OnlineOptions {
        postpone_cutover: true,
        ..small_chunks()
    };
    let r = e
        .alter_online(sql, &postponed, &quiet())
        .await
        .unwrap()
        .unwrap();
    assert!(r.cutover_pending);
    let clients = Clients::start(&db.url, 77, 4);
    // Another session holds a metadata lock on the shadow (as InnoDB's background statistics
    // task does for a moment after a big load): the RENAME, which locks names in order, waits
    // there first. Unlocking the held writes then would send them into the old table.
    let mut holder = db.my().await;
    holder
        .query_drop("START TRANSACTION; SELECT COUNT(*) FROM _acc_new")
        .await
        .unwrap();
    let said = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = said.clone();
    let cut = tokio::spawn(async move {
        let say = move |m: &str| log.lock().unwrap().push(m.to_string());
        let r = e.online_cutover(&small_chunks(), &say).await;
        (e, r)
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    holder.query_drop("COMMIT").await.unwrap();
    let (_e, r) = tokio::time::timeout(Duration::from_secs(90), cut)
        .await
        .expect("the cut-over finished once the shadow was free")
        .unwrap();
    let lines = r.unwrap_or_else(|err| panic!("{err}\n{:?}", said.lock().unwrap()));
    assert_eq!(lines.len(), 1, "{lines:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let errors = clients.stop().await;
    assert!(errors.is_empty(), "client errors: {errors:#?}");
    assert_eq!(
        fingerprint(&mut c, "acc", "id, balance, note").await,
        fingerprint(&mut c, "mirror", "id, balance, note").await,
        "a write went to the old table"
    );
}

/// Every class of conversion error the server raises for a value the new type cannot hold: the
/// ALTER as written fails on those rows, and the online copy fails with the server's error as
/// `Rejected` (exit 1), removes everything it made and leaves the table as it was; a rerun does
/// the same again.
#[tokio::test]
async fn every_conversion_error_is_rejected_leaves_nothing_and_again_on_rerun() {
    // (column, its value for row `seq`, the new type, the ALTER's error, the copy's error)
    let cases = [
        (
            "ENUM('a','b','c')",
            "ELT(1 + seq % 3, 'a', 'b', 'c')",
            "ENUM('a','b')",
            1265,
            1265,
        ),
        (
            "SET('x','y')",
            "MAKE_SET(seq % 4, 'x', 'y')",
            "SET('x')",
            1265,
            1265,
        ),
        ("BIGINT", "seq * 100", "SMALLINT", 1264, 1264),
        // The ALTER says 1292 Truncated incorrect INTEGER value, the copy 1366 Incorrect value.
        (
            "VARCHAR(10)",
            "IF(seq % 700 = 0, 'x', seq)",
            "INT",
            1292,
            1366,
        ),
        (
            "VARCHAR(20)",
            "CONCAT(IF(seq % 300 = 0, 'ä', 'a'), seq)",
            "VARCHAR(20) CHARACTER SET ascii",
            1366,
            1366,
        ),
        (
            "VARCHAR(12)",
            "IF(seq % 500 = 0, '2020-13-45', '2020-01-02')",
            "DATE",
            1292,
            1292,
        ),
        // The ALTER words a value too long as 1265, the copy's INSERT as 1406.
        (
            "VARCHAR(40)",
            "CONCAT('long-value-', seq)",
            "VARCHAR(8)",
            1265,
            1406,
        ),
        (
            "TEXT",
            "REPEAT('x', 1 + seq % 12)",
            "VARCHAR(10)",
            1406,
            1406,
        ),
    ];
    for (from, value, to, written_code, copy_code) in cases {
        let db = TestDb::mariadb().await;
        let mut c = db.my().await;
        c.query_drop(format!(
            "CREATE TABLE t (id INT PRIMARY KEY, c {from}) DEFAULT CHARSET=utf8mb4; \
             INSERT INTO t SELECT seq, {value} FROM seq_1_to_3000; \
             CREATE TABLE w LIKE t; INSERT INTO w SELECT * FROM t"
        ))
        .await
        .unwrap();
        let written = c
            .query_drop(format!("ALTER TABLE w MODIFY c {to}"))
            .await
            .unwrap_err();
        assert_eq!(
            match &written {
                mysql_async::Error::Server(s) => s.code,
                _ => 0,
            },
            written_code,
            "{from} -> {to}: {written}"
        );
        let fingerprint = "SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS('|', id, c))) FROM t";
        let before: (i64, i64) = c.query_first(fingerprint).await.unwrap().unwrap();
        let mut e = engine(&db).await;
        let mut first = None;
        for run in 0..2 {
            let err = e
                .alter_online(
                    &format!("ALTER TABLE t MODIFY c {to}"),
                    &small_chunks(),
                    &quiet(),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::Rejected { .. }) && err.exit_code() == 1,
                "{from} -> {to}, run {run}: {err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("ERROR {copy_code} ")),
                "{from} -> {to}, run {run}: {msg}"
            );
            assert!(msg.contains("`t` is unchanged"), "{msg}");
            assert_eq!(first.get_or_insert_with(|| msg.clone()), &msg, "run {run}");
            let after: (i64, i64) = c.query_first(fingerprint).await.unwrap().unwrap();
            assert_eq!(
                after, before,
                "{from} -> {to}, run {run}: the table changed"
            );
            let left = count(
                &mut c,
                "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_NAME NOT IN ('t', 'w', 'sluice_online')) \
                 + (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()) \
                 + (SELECT COUNT(*) FROM sluice_online)",
            )
            .await;
            assert_eq!(left, 0, "{from} -> {to}, run {run}: objects left behind");
        }
    }
}

/// `(n_rows, [(index, n_diff_pfx01)])` of `t`'s InnoDB persistent statistics.
async fn stats(c: &mut Conn, t: &str) -> (u64, Vec<(String, u64)>) {
    let rows: Option<u64> = c
        .exec_first(
            "SELECT n_rows FROM mysql.innodb_table_stats WHERE database_name = DATABASE() AND table_name = ?",
            (t,),
        )
        .await
        .unwrap();
    let idx: Vec<(String, u64)> = c
        .exec(
            "SELECT index_name, stat_value FROM mysql.innodb_index_stats \
             WHERE database_name = DATABASE() AND table_name = ? AND stat_name = 'n_diff_pfx01' ORDER BY index_name",
            (t,),
        )
        .await
        .unwrap();
    (rows.unwrap_or(0), idx)
}

/// Within a quarter of each other (InnoDB samples pages: the two tables' figures need not match).
fn close(a: u64, b: u64) -> bool {
    a.abs_diff(b) * 4 <= a.max(b)
}

/// The table an online copy swaps in goes live with statistics of its rows, as the ALTER as
/// written leaves its table: otherwise the optimizer takes the hot table for empty right after
/// the cut-over (persistent statistics of the shadow as created, until InnoDB's background
/// recalculation, which `STATS_AUTO_RECALC=0` turns off) and joins start scanning it. The class:
/// statistics recalculation off and on, with and without secondary indexes the copy defers, a
/// cut-over at once and one postponed.
#[tokio::test]
async fn the_swapped_table_goes_live_with_the_statistics_the_alter_as_written_gives() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    let mut e = engine(&db).await;
    // (shape, the table's keys, what the ALTER adds besides the retype)
    let shapes = [
        ("primary key only", "", ""),
        (
            "secondary indexes",
            ", KEY ix_g (g), UNIQUE KEY uk_u (u)",
            "",
        ),
        ("a unique key the ALTER adds", "", ", ADD UNIQUE KEY uk (u)"),
    ];
    for recalc in ["STATS_AUTO_RECALC=0", "STATS_AUTO_RECALC=1"] {
        for (shape, keys, adds) in shapes {
            for postpone in [false, true] {
                let case = format!("{recalc}, {shape}, postponed {postpone}");
                for t in ["t", "twin"] {
                    c.query_drop(format!(
                        "DROP TABLE IF EXISTS {t}, _t_old; CREATE TABLE {t} (id INT PRIMARY KEY, g INT NOT NULL, \
                         u INT NOT NULL, n INT NOT NULL{keys}) {recalc}; \
                         INSERT INTO {t} SELECT seq, seq DIV 7, seq, seq FROM seq_1_to_20000; ANALYZE TABLE {t}"
                    ))
                    .await
                    .unwrap();
                }
                let alter = format!("MODIFY n BIGINT NOT NULL{adds}");
                c.query_drop(format!("ALTER TABLE twin {alter}"))
                    .await
                    .unwrap();
                let opts = OnlineOptions {
                    postpone_cutover: postpone,
                    ..small_chunks()
                };
                let r = e
                    .alter_online(&format!("ALTER TABLE t {alter}"), &opts, &quiet())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(r.path, "copy", "{case}");
                if postpone {
                    e.online_cutover(&small_chunks(), &quiet()).await.unwrap();
                }
                // The statistics tables are the server's own: only the administrator reads them.
                let mut su = db.my_su().await;
                let (got, want) = (stats(&mut su, "t").await, stats(&mut su, "twin").await);
                drop(su);
                assert!(want.0 > 10_000, "{case}: the twin's statistics {want:?}");
                assert!(
                    close(got.0, want.0),
                    "{case}: rows {} after the swap, {} after the ALTER as written",
                    got.0,
                    want.0
                );
                assert_eq!(got.1.len(), want.1.len(), "{case}: {got:?} vs {want:?}");
                for ((gi, gv), (wi, wv)) in got.1.iter().zip(&want.1) {
                    assert!(
                        gi == wi && close(*gv, *wv),
                        "{case}: index {gi} {gv} after the swap, {wi} {wv} as written"
                    );
                }
                e.online_cleanup(false).await.unwrap();
            }
        }
    }
}
