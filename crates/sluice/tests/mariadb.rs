//! The sluice command against a real MariaDB: every test gets its own database.

mod common;

use common::{eventually, wait_bounded, Project};
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;

const CREATE_USERS: &str = "-- sluice:up\nCREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(200) NOT NULL);\nINSERT INTO users VALUES (1, 'a@example.com');\n-- sluice:down\nDROP TABLE users;\n";
const ADD_NICK: &str = "-- sluice:up\nALTER TABLE users ADD COLUMN nick VARCHAR(50);\n-- sluice:down\nALTER TABLE users DROP COLUMN nick;\n";

async fn count(c: &mut mysql_async::Conn, sql: &str) -> i64 {
    c.query_first::<i64, _>(sql).await.unwrap().unwrap_or(0)
}

/// A fresh connection per poll: the test's own connection may be busy or mid-transaction.
async fn count_at(url: &str, sql: &str) -> i64 {
    let mut c = mysql_async::Conn::from_url(url).await.unwrap();
    let n = count(&mut c, sql).await;
    let _ = c.disconnect().await;
    n
}

async fn table_exists(c: &mut mysql_async::Conn, name: &str) -> bool {
    count(c, &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{name}'")).await == 1
}

#[tokio::test]
async fn up_status_down_round_trip_records_app_version_and_events() {
    let p = Project::new(Server::MariaDb).await;
    p.write("1_create_users.sql", CREATE_USERS);
    p.write("2_add_nick.sql", ADD_NICK);
    let dry = p.run(&["up", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout
            .contains("1_create_users  [per-statement: mariadb commits DDL implicitly"),
        "{dry:?}"
    );
    let mut c = p.db.my().await;
    assert!(!table_exists(&mut c, "users").await);

    let up = p.run(&["up"]);
    assert_eq!(up.code, 0, "{up:?}");
    let st = p.status_json();
    assert!(
        st["target"].as_str().unwrap().starts_with("mariadb 10."),
        "{st}"
    );
    assert_eq!(st["migrations"][0]["status"], "applied");
    assert_eq!(st["migrations"][1]["app_version"], "test-app-1");
    assert_eq!(st["drift"]["state"], "clean");
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM users").await, 1);

    assert_eq!(p.run(&["down", "--to", "0"]).code, 0);
    assert!(!table_exists(&mut c, "users").await);
    let kinds: Vec<String> = c
        .query("SELECT CONCAT(kind, ':', version, ':', app_version) FROM sluice_events ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        kinds,
        [
            "up:1:test-app-1",
            "up:2:test-app-1",
            "down:2:test-app-1",
            "down:1:test-app-1"
        ]
    );
    let e = c.query_drop("DELETE FROM sluice_events").await.unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
}

#[tokio::test]
async fn failed_statement_resumes_without_redoing_earlier_ones() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop("CREATE TABLE log (n INT)").await.unwrap();
    let text = |third: &str| {
        format!("-- sluice:up\nINSERT INTO log VALUES (1);\nCREATE TABLE t (id INT PRIMARY KEY);\n{third};\nINSERT INTO log VALUES (4);\n")
    };
    p.write(
        "1_steps.sql",
        &text("ALTER TABLE t ADD COLUMN w INT REFERENCES missing (id)"),
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("1_steps.sql:4:1"), "{r:?}");
    assert!(
        r.stderr
            .contains("first 2 statement(s) of this migration are applied"),
        "{r:?}"
    );
    assert_eq!(p.states(), vec![(1, "failed".into())]);
    p.write("1_steps.sql", &text("ALTER TABLE t ADD COLUMN w INT"));
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("resuming at statement 3"), "{r:?}");
    let logged: Vec<i32> = c.query("SELECT n FROM log ORDER BY n").await.unwrap();
    assert_eq!(logged, vec![1, 4]);
}

#[tokio::test]
async fn kill_9_during_a_data_change_resumes_without_redoing_or_skipping() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop("CREATE TABLE log (n INT); CREATE TABLE blocked (n INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO blocked VALUES (2)")
        .await
        .unwrap();
    p.write("1_steps.sql", "INSERT INTO log VALUES (1);\nUPDATE blocked SET n = 20 WHERE n = 2;\nINSERT INTO log VALUES (3);\n");
    // A transaction holding the row makes statement 2 wait; sluice is killed while it waits.
    let mut holder = p.db.my().await;
    holder.query_drop("START TRANSACTION").await.unwrap();
    holder
        .query_drop("SELECT * FROM blocked WHERE n = 2 FOR UPDATE")
        .await
        .unwrap();
    let mut child = p.spawn(&["up"]);
    let db = p.db.name.clone();
    eventually(30, "sluice waiting on the row lock", || {
        let sql = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{db}' AND INFO LIKE 'UPDATE blocked%'");
        let url = p.db.url.clone();
        async move { count_at(&url, &sql).await == 1 }
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    holder.query_drop("COMMIT").await.unwrap();
    eventually(30, "the killed run's sessions to end", || {
        let sql = format!("SELECT (SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{db}' AND INFO LIKE 'UPDATE blocked%') + (SELECT COUNT(*) FROM sluice_lock WHERE IS_USED_LOCK(lock_name) IS NOT NULL)");
        let url = p.db.url.clone();
        async move { count_at(&url, &sql).await == 0 }
    })
    .await;
    // The interrupted data change rolled back with its progress record.
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM blocked WHERE n = 20").await,
        0
    );
    assert_eq!(p.states(), vec![(1, "interrupted".into())]);
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("resuming at statement 2"), "{r:?}");
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM log").await, 2);
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM blocked WHERE n = 20").await,
        1
    );
}

#[tokio::test]
async fn second_run_reports_the_holder_waits_and_exits_3() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop("CREATE TABLE blocked (n INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO blocked VALUES (1)")
        .await
        .unwrap();
    p.write("1_slow.sql", "UPDATE blocked SET n = 2 WHERE n = 1;\n");
    let mut holder = p.db.my().await;
    holder.query_drop("START TRANSACTION").await.unwrap();
    holder
        .query_drop("SELECT * FROM blocked FOR UPDATE")
        .await
        .unwrap();
    let first = p.spawn(&["up"]);
    let db = p.db.name.clone();
    eventually(30, "first run waiting on the row lock", || {
        let sql = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{db}' AND INFO LIKE 'UPDATE blocked%'");
        let url = p.db.url.clone();
        async move { count_at(&url, &sql).await == 1 }
    })
    .await;
    let second = p.run(&["up", "--lock-wait", "1"]);
    assert_eq!(second.code, 3, "{second:?}");
    assert!(
        second
            .stderr
            .contains(&format!("held by pid {} on host ", first.id())),
        "{second:?}"
    );
    assert!(second.stderr.contains(" since 20"), "{second:?}");
    holder.query_drop("COMMIT").await.unwrap();
    let first = wait_bounded(first, 60, "first run");
    assert_eq!(first.code, 0, "{first:?}");
}

#[tokio::test]
async fn checksums_ignore_crlf_catch_edits_and_repair_is_logged() {
    let p = Project::new(Server::MariaDb).await;
    p.write("1_create_users.sql", CREATE_USERS);
    assert_eq!(p.run(&["up"]).code, 0);
    p.write("1_create_users.sql", &CREATE_USERS.replace('\n', "\r\n"));
    assert_eq!(p.run(&["verify"]).code, 0);
    p.write(
        "1_create_users.sql",
        &CREATE_USERS.replace("VARCHAR(200)", "VARCHAR(300)"),
    );
    let v = p.run(&["verify"]);
    assert_eq!(v.code, 4, "{v:?}");
    assert_eq!(p.run(&["up"]).code, 4);
    assert_eq!(p.run(&["repair"]).code, 0);
    assert_eq!(p.run(&["verify"]).code, 0);
    let mut c = p.db.my().await;
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM sluice_events WHERE kind = 'repair'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn drift_is_listed_captured_and_revertible() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_schema.sql",
        "CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(200) NOT NULL, score INT DEFAULT 0);\nCREATE INDEX users_email_idx ON users (email);\nCREATE VIEW user_emails AS SELECT id, email FROM users;\n",
    );
    assert_eq!(p.run(&["up"]).code, 0);
    assert_eq!(p.run(&["drift"]).code, 0);
    let mut c = p.db.my().await;
    c.query_drop(
        "ALTER TABLE users ADD COLUMN age INT; ALTER TABLE users MODIFY email VARCHAR(250) NULL; ALTER TABLE users ALTER COLUMN score SET DEFAULT 5;
         DROP INDEX users_email_idx ON users; CREATE INDEX users_age_idx ON users (age); ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age > 0);
         CREATE OR REPLACE VIEW user_emails AS SELECT id, email, age FROM users; CREATE TABLE audit (id INT)",
    )
    .await
    .unwrap();
    let r = p.run(&["drift", "--json"]);
    assert_eq!(r.code, 4, "{r:?}");
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut got: Vec<String> = j["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {}",
                d["kind"].as_str().unwrap(),
                d["name"].as_str().unwrap(),
                d["change"].as_str().unwrap(),
                d["field"].as_str().unwrap_or("")
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        "column age added ",
        "column email changed type",
        "column email changed nullability",
        "column score changed default",
        "index users_email_idx removed ",
        "index users_age_idx added ",
        "constraint age_positive added ",
        "view user_emails changed definition",
        "table audit added ",
    ];
    want.sort();
    assert_eq!(got, want);
    let w = p.run(&["drift", "--write-migration"]);
    assert_eq!(w.code, 0, "{w:?}");
    assert_eq!(p.run(&["drift"]).code, 0);
    let d = p.run(&["down"]);
    assert_eq!(d.code, 0, "{d:?}");
    assert!(!table_exists(&mut c, "audit").await);
    assert_eq!(
        p.run(&["drift"]).code,
        0,
        "reverting the capture restores the recorded schema"
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(table_exists(&mut c, "audit").await);
}

#[tokio::test]
async fn bad_input_gets_one_clear_error_and_its_exit_code() {
    let p = Project::new(Server::MariaDb).await;
    p.write("1_create_users.sql", CREATE_USERS);
    let user = format!("u_{}", &p.db.name[p.db.name.len() - 8..]);
    // Only an administrator creates users.
    let mut c = p.db.my_su().await;
    c.query_drop(format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'right-pass'; CREATE USER '{user}'@'localhost' IDENTIFIED BY 'right-pass'")).await.unwrap();
    let run = |u: &str| -> common::Run {
        p.command(&["status"])
            .env("DATABASE_URL", u)
            .output()
            .unwrap()
            .into()
    };

    let r = run(&format!(
        "mariadb://{user}:hunter2pw@127.0.0.1:3306/{}",
        p.db.name
    ));
    c.query_drop(format!(
        "DROP USER '{user}'@'%'; DROP USER '{user}'@'localhost'"
    ))
    .await
    .unwrap();
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.to_lowercase().contains("access denied"), "{r:?}");
    assert!(!r.all().contains("hunter2pw"), "password leaked: {r:?}");

    let r = run("mysql://root:hunter2pw@127.0.0.1:1/db");
    assert_eq!(r.code, 5, "{r:?}");
    assert!(!r.all().contains("hunter2pw"), "{r:?}");
    let r = run("mariadb://root@127.0.0.1:3306/sluice_no_such_db");
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("sluice_no_such_db"), "{r:?}");

    p.write(
        "2_bad.sql",
        "-- sluice:up\n-- sluice:transaction single\nCREATE TABLE x (id INT);\n",
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("commits implicitly on mariadb"), "{r:?}");
    assert!(!table_exists(&mut c, "users").await, "nothing may run");
    std::fs::remove_file(p.migration_path("2_bad.sql")).unwrap();
    p.write(
        "2_x.sql",
        "ALTER TABLE users ADD COLUMN nick VARCHAR(50);\n",
    );
    assert_eq!(p.run(&["up"]).code, 0);
    let r = p.run(&["down"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("migration 2_x is irreversible: it has no `-- sluice:down` part"),
        "{r:?}"
    );
}

/// MariaDB: an ALTER that waits for a metadata lock steps back after lock_wait_timeout and retries,
/// so queries do not pile up behind it; it names who holds the table when it gives up.
// Multi-threaded: the holder's statement runs on while the test thread waits for sluice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_steps_back_from_a_held_metadata_lock_and_retries() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, 1)")
        .await
        .unwrap();
    p.write("1_add.sql", "ALTER TABLE t ADD COLUMN w INT;\n");
    // An open transaction that read t holds a shared metadata lock the ALTER must wait for.
    let mut holder = p.db.my().await;
    let holder_id: u64 = holder
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    holder.query_drop("START TRANSACTION").await.unwrap();
    let _: Option<i64> = holder.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    // While sluice waits, the holder runs a statement full of literals (MariaDB shows only a
    // running statement): the report names the session and the statement's shape, never a literal.
    let running = tokio::spawn(async move {
        holder
            .query_drop(
                "SELECT SLEEP(8), PASSWORD('Tr0ub4dor&3'), \"Tr0ub4dor-dq\", 0x5472307562, b'0101', 31337 FROM t",
            )
            .await
            .unwrap();
        holder
    });
    eventually(30, "the holder's statement running", || async {
        count_at(&p.db.url, &format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {holder_id} AND STATE = 'User sleep'")).await == 1
    })
    .await;
    let r = p.run(&["up", "--lock-timeout", "1000", "--lock-retry-for", "3"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("stepped back so queries do not queue behind it"),
        "{r:?}"
    );
    assert!(r.stderr.contains("gave up after"), "{r:?}");
    let report = format!(
        "connection {holder_id} (user {}, Query, User sleep, transaction open ",
        p.db.user()
    );
    let shape = "): SELECT SLEEP(?), PASSWORD(?), ?, ?, ?, ? FROM t";
    assert!(r.stderr.contains(&report), "the blocker is named: {r:?}");
    assert!(r.stderr.contains(shape), "{r:?}");
    let stored: Vec<Option<String>> = c
        .query("SELECT `error` FROM `sluice_migrations` UNION ALL SELECT `detail` FROM `sluice_events`")
        .await
        .unwrap();
    let stored: Vec<String> = stored.into_iter().flatten().collect();
    assert!(stored.iter().any(|d| d.contains(shape)), "{stored:?}");
    for text in stored.iter().chain([&r.stderr, &r.stdout]) {
        for lit in ["Tr0ub4dor", "5472307562", "0101", "31337"] {
            assert!(!text.contains(lit), "{lit} in {text}");
        }
    }
    assert_eq!(p.states(), vec![(1, "failed".into())]);
    let mut holder = running.await.unwrap();
    holder.query_drop("COMMIT").await.unwrap();
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(p.run(&["up"]).code, 0);
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND COLUMN_NAME = 'w'").await, 1);
}

/// Row count and an order-independent checksum of (id, balance, note).
async fn fingerprint(url: &str, table: &str) -> (i64, i64) {
    let mut c = mysql_async::Conn::from_url(url).await.unwrap();
    let r: (i64, i64) = c
        .query_first(format!(
            "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', id, balance, note))), 0) FROM {table}"
        ))
        .await
        .unwrap()
        .unwrap();
    let _ = c.disconnect().await;
    r
}

const ACC: &str = "CREATE TABLE acc (id INT AUTO_INCREMENT PRIMARY KEY, balance INT NULL, note VARCHAR(40), KEY (note)); \
                   INSERT INTO acc (balance, note) SELECT seq % 1000, CONCAT('n', seq) FROM seq_1_to_20000";
const WIDEN: &str = "ALTER TABLE acc MODIFY balance BIGINT NOT NULL;\n";
const CHANGES: &str = "UPDATE acc SET balance = balance + 100000 WHERE id % 97 = 0; DELETE FROM acc WHERE id % 89 = 0; \
                       INSERT INTO acc (balance, note) SELECT seq, 'late' FROM seq_1_to_50";

/// The expected end state: the same data, altered as written.
async fn expected(c: &mut mysql_async::Conn) {
    c.query_drop(
        "DROP TABLE IF EXISTS expect; CREATE TABLE expect AS SELECT * FROM acc; \
         ALTER TABLE expect MODIFY balance BIGINT NOT NULL",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn online_copy_killed_mid_copy_resumes_and_converges() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop(ACC).await.unwrap();
    p.write("1_widen.sql", WIDEN);
    let child = p.spawn(&["up", "--chunk-ms", "1"]);
    let url = p.db.url.clone();
    eventually(60, "the copy to checkpoint", || {
        let url = url.clone();
        async move {
            count_at(&url, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'sluice_online'").await == 1
                && count_at(&url, "SELECT COUNT(*) FROM sluice_online WHERE state = 'copying' AND last_key IS NOT NULL").await == 1
        }
    })
    .await;
    let mut child = child;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    assert!(table_exists(&mut c, "_acc_new").await);
    assert!(table_exists(&mut c, "_acc_chg").await);
    let copied = count(&mut c, "SELECT rows_copied FROM sluice_online").await;
    assert!(copied > 0 && copied < 20_000, "killed mid-copy: {copied}");
    // Clients keep writing while sluice is dead: the triggers log it, rows before and after the
    // checkpoint alike.
    c.query_drop(CHANGES).await.unwrap();

    // The next run resumes the copy, verifies it and stops before the swap, like a crash there.
    let r = p.run(&["up", "--postpone-cutover"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("resuming the online copy"), "{r:?}");
    assert!(r.stderr.contains("sluice cutover"), "{r:?}");
    assert_eq!(p.states(), vec![(1, "failed".into())]);
    c.query_drop("UPDATE acc SET note = 'after verify' WHERE id BETWEEN 100 AND 120; DELETE FROM acc WHERE id = 5")
        .await
        .unwrap();
    expected(&mut c).await;

    // A plain `up` swaps (re-verifying what changed since) and records the migration.
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("swapped"), "{r:?}");
    assert_eq!(p.states(), vec![(1, "applied".into())]);
    assert_eq!(
        fingerprint(&p.db.url, "acc").await,
        fingerprint(&p.db.url, "expect").await
    );
    let ty: String = c.query_first("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'acc' AND COLUMN_NAME = 'balance'").await.unwrap().unwrap();
    assert_eq!(ty, "bigint(20)");
    assert!(table_exists(&mut c, "_acc_old").await);
    assert!(!table_exists(&mut c, "_acc_chg").await);
    assert_eq!(
        p.status_json()["drift"]["state"],
        "clean",
        "sluice's own tables are not drift"
    );
    let r = p.run(&["cleanup"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!table_exists(&mut c, "_acc_old").await);
}

/// The log is applied on the verifier's session while the copy goes on, but only for keys up to
/// the end the verifier has checked (the copy committed them before it queued their range): a key
/// beyond it may be in the copy's open chunk, whose row locks the apply's delete waited for.
///
/// Before that bound, the apply deleted a logged key ahead of the copy, the copy inserted it, and
/// the apply's insert met that row (1062 on PRIMARY, retried). With the bound that cannot happen
/// while the copy runs: the copy only inserts keys after its last committed chunk, and every key
/// the verifier applies is at or below the end of a chunk already committed. What is staged here
/// instead is the boundary: a killed run leaves a checkpoint X; keys logged while sluice is dead
/// below X, at X and beyond it (X + 1, far ahead at 20000), then the rerun held inside its first
/// apply (its bound is X after it checked the earlier run's copy): the batch holds exactly the keys
/// up to X, while keys beyond X stay logged and the copy inserts them meanwhile. Clients then
/// change keys the verifier already passed, the boundary key again and keys beyond it. Every key
/// must end as the original has it.
#[tokio::test(flavor = "multi_thread")]
async fn the_copys_log_apply_takes_keys_up_to_the_verified_end_and_every_key_converges() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop(ACC).await.unwrap();
    p.write("1_widen.sql", WIDEN);
    let mut child = p.spawn(&["up", "--chunk-ms", "1"]);
    let url = p.db.url.clone();
    eventually(60, "the copy to checkpoint", || {
        let url = url.clone();
        async move {
            count_at(&url, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'sluice_online'").await == 1
                && count_at(&url, "SELECT COUNT(*) FROM sluice_online WHERE state = 'copying' AND last_key IS NOT NULL").await == 1
        }
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let copied = count(&mut c, "SELECT rows_copied FROM sluice_online").await;
    assert!(copied > 0 && copied < 19_000, "killed mid-copy: {copied}");
    let last: String = c
        .query_first("SELECT last_key FROM sluice_online")
        .await
        .unwrap()
        .unwrap();
    let last: Vec<String> = serde_json::from_str(&last).unwrap();
    let x: i64 = last[0].parse().unwrap();
    assert!(x > 2 && x + 2 < 20_000, "checkpoint {x}");
    // Logged while sluice is dead: below the checkpoint, at it, just beyond it, far beyond it.
    // (key, new balance)
    let dead: [(i64, i64); 4] = [
        (1, 4_000_001),
        (x, 4_000_002),
        (x + 1, 4_000_003),
        (20_000, 4_000_004),
    ];
    for (k, b) in dead {
        c.exec_drop("UPDATE acc SET balance = ? WHERE id = ?", (b, k))
            .await
            .unwrap();
    }
    let r = common::paused_at(
        &p,
        &["up", "--chunk-ms", "1"],
        "online-apply-deleted",
        None,
        || async {
            // Inside the apply's open transaction (its stage rows are not committed): the batch.
            let mut dirty = p.db.my().await;
            dirty
                .query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
                .await
                .unwrap();
            let staged: Vec<i64> = dirty
                .query("SELECT id FROM _acc_stg ORDER BY id")
                .await
                .unwrap();
            assert_eq!(
                staged,
                vec![1, x],
                "the first apply takes the keys up to the verified end {x}, the boundary included"
            );
            // The copy goes past the paused apply; the keys beyond the bound wait in the log.
            eventually(60, "the copy to finish", || {
                let url = url.clone();
                async move {
                    count_at(&url, "SELECT COUNT(*) FROM sluice_online WHERE last_key = '\"done\"'").await == 1
                }
            })
            .await;
            let mut c = p.db.my().await;
            let waiting: Vec<i64> = c
                .query("SELECT k0 FROM _acc_chg ORDER BY _sluice_id")
                .await
                .unwrap();
            assert_eq!(waiting, vec![1, x, x + 1, 20_000], "every entry still logged");
            for (k, b) in [(x + 1, 4_000_003), (20_000, 4_000_004)] {
                let copied: i64 = c
                    .exec_first("SELECT balance FROM _acc_new WHERE id = ?", (k,))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(copied, b, "the copy brought key {k} over as changed");
            }
            // Clients go on: a key the verifier passed, the boundary key again, keys beyond it
            // (one deleted, one new).
            c.query_drop(format!(
                "UPDATE acc SET balance = 5000001 WHERE id = 2; UPDATE acc SET balance = 5000002 WHERE id = {x}; \
                 UPDATE acc SET balance = 5000003 WHERE id = 20000; DELETE FROM acc WHERE id = {}; \
                 INSERT INTO acc (balance, note) VALUES (5000004, 'late')",
                x + 2
            ))
            .await
            .unwrap();
            expected(&mut c).await;
        },
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("swapped"), "{r:?}");
    assert_eq!(
        fingerprint(&p.db.url, "acc").await,
        fingerprint(&p.db.url, "expect").await
    );
    for k in [1, 2, x, x + 1, x + 2, 20_000, 20_001] {
        let row = |t: &str| {
            format!("SELECT COUNT(*), COALESCE(SUM(balance), -1) FROM {t} WHERE id = {k}")
        };
        let got: (i64, i64) = c.query_first(row("acc")).await.unwrap().unwrap();
        let want: (i64, i64) = c.query_first(row("expect")).await.unwrap().unwrap();
        assert_eq!(got, want, "key {k}");
    }
}

/// Changes logged while the shadow's plain secondary indexes are built are applied during the
/// build, on a session of their own, not left as a backlog for after it.
#[tokio::test]
async fn changes_logged_during_the_index_build_are_applied_during_it() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop(ACC).await.unwrap();
    p.write("1_widen.sql", WIDEN);
    let url = p.db.url.clone();
    let r = common::paused_at(
        &p,
        &["up", "--chunk-ms", "1"],
        "online-index-build",
        None,
        || async {
            let mut c = p.db.my().await;
            assert_eq!(
                count(&mut c, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_acc_new' AND INDEX_NAME = 'note'").await,
                0,
                "paused before the deferred index is built"
            );
            c.query_drop(CHANGES).await.unwrap();
            assert!(count(&mut c, "SELECT COUNT(*) FROM _acc_chg").await > 0);
            eventually(30, "the changes to be applied while the build waits", || {
                let url = url.clone();
                async move {
                    count_at(&url, "SELECT COUNT(*) FROM _acc_chg").await == 0
                        && count_at(&url, "SELECT COUNT(*) FROM _acc_new WHERE note = 'late'")
                            .await
                            == 50
                }
            })
            .await;
            expected(&mut c).await;
        },
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("swapped"), "{r:?}");
    assert_eq!(
        fingerprint(&p.db.url, "acc").await,
        fingerprint(&p.db.url, "expect").await
    );
}

#[tokio::test]
async fn postponed_cutover_runs_with_sluice_cutover_then_up_records_it() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop(ACC).await.unwrap();
    p.write("1_widen.sql", WIDEN);
    let dry = p.run(&["up", "--dry-run"]);
    assert!(
        dry.stdout.contains("online copy: shadow `_acc_new`"),
        "{dry:?}"
    );
    let r = p.run(&["up", "--postpone-cutover"]);
    assert_eq!(r.code, 1, "{r:?}");
    c.query_drop(CHANGES).await.unwrap();
    expected(&mut c).await;
    let r = p.run(&["cutover"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("`acc` swapped"), "{r:?}");
    assert_eq!(
        fingerprint(&p.db.url, "acc").await,
        fingerprint(&p.db.url, "expect").await
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(p.states(), vec![(1, "applied".into())]);
    // Nothing left to swap.
    let r = p.run(&["cutover"]);
    assert!(r.stderr.contains("no online copy waits"), "{r:?}");
}

#[tokio::test]
async fn a_table_without_a_key_is_refused_with_exit_2_and_runs_as_written_on_request() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop("CREATE TABLE loose (a INT, b INT); INSERT INTO loose VALUES (1, 2)")
        .await
        .unwrap();
    p.write("1_widen.sql", "ALTER TABLE loose MODIFY a BIGINT;\n");
    let r = p.run(&["up"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no primary key"), "{r:?}");
    assert!(r.stderr.contains("--as-written"), "{r:?}");
    assert_eq!(p.states(), vec![(1, "failed".into())]);
    let r = p.run(&["up", "--as-written"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(p.states(), vec![(1, "applied".into())]);
}

#[tokio::test]
async fn cleanup_abort_removes_an_unfinished_copy_and_up_starts_over() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop(ACC).await.unwrap();
    p.write("1_widen.sql", WIDEN);
    assert_eq!(p.run(&["up", "--postpone-cutover"]).code, 1);
    let r = p.run(&["cleanup"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("in progress"), "{r:?}");
    assert!(
        table_exists(&mut c, "_acc_new").await,
        "kept without --abort"
    );
    let r = p.run(&["cleanup", "--abort"]);
    assert_eq!(r.code, 0, "{r:?}");
    for t in ["_acc_new", "_acc_chg", "_acc_old"] {
        assert!(!table_exists(&mut c, t).await, "{t}");
    }
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'acc'"
        )
        .await,
        0
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("copying `acc` online"), "{r:?}");
    assert_eq!(p.states(), vec![(1, "applied".into())]);
}

/// A client writing `acc` and `mirror` in one transaction each time (so `mirror` is what `acc`
/// must hold), with a short pause; returns the errors it saw.
async fn mirrored_writer(
    url: String,
    seed: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<String> {
    let mut c = mysql_async::Conn::from_url(url).await.unwrap();
    let mut x = seed;
    let mut errors = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let id = (x >> 33) % 20_000 + 1;
        let sql = match (x >> 20) % 4 {
            0 | 1 => format!("UPDATE acc SET balance = balance + 1 WHERE id = {id}; UPDATE mirror SET balance = balance + 1 WHERE id = {id}"),
            2 => format!("DELETE FROM acc WHERE id = {id}; DELETE FROM mirror WHERE id = {id}"),
            _ => "INSERT INTO acc (balance, note) VALUES (7, 'w'); INSERT INTO mirror (id, balance, note) VALUES (LAST_INSERT_ID(), 7, 'w')".to_string(),
        };
        if let Err(e) = c
            .query_drop(format!("START TRANSACTION; {sql}; COMMIT"))
            .await
        {
            errors.push(e.to_string());
            let _ = c.query_drop("ROLLBACK").await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_copy_killed_mid_cutover_resumes_and_converges() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop(ACC).await.unwrap();
    c.query_drop("CREATE TABLE mirror LIKE acc; INSERT INTO mirror SELECT * FROM acc")
        .await
        .unwrap();
    p.write("1_widen.sql", WIDEN);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|i| {
            tokio::spawn(mirrored_writer(
                p.db.url.clone(),
                17 + i * 7919,
                stop.clone(),
            ))
        })
        .collect();
    let balance_type = |url: String| async move {
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        let t: String = c.query_first("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'acc' AND COLUMN_NAME = 'balance'").await.unwrap().unwrap();
        t
    };
    let crash = |point: &str| {
        let child = p
            .command(&["up", "--chunk-ms", "5"])
            .env("SLUICE_CRASH_AT", point)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let r = tokio::task::block_in_place(|| wait_bounded(child, 120, "sluice up"));
        assert_ne!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("ending the process here"), "{r:?}");
        r
    };

    // Dead with client writes held and the log drained, before the RENAME: nothing swapped,
    // and the held writes go on once the dead session's lock is gone.
    crash("cutover-locked");
    assert_eq!(balance_type(p.db.url.clone()).await, "int(11)");
    assert!(table_exists(&mut c, "_acc_new").await);
    assert_ne!(p.states(), vec![(1, "applied".to_string())]);

    // The rerun swaps, then dies before recording it: `acc` is the new table.
    crash("cutover-renamed");
    assert_eq!(balance_type(p.db.url.clone()).await, "bigint(20)");
    assert!(table_exists(&mut c, "_acc_old").await);
    assert_ne!(p.states(), vec![(1, "applied".to_string())]);

    // The reruns find the swap done and finish it, dying once the triggers are dropped (none is
    // left on the old table: renaming it back would not bring them along) and once the log is.
    let triggers_on = |url: String| async move {
        count_at(&url, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE '\\_acc%'").await
    };
    crash("swap-untriggered");
    assert_eq!(triggers_on(p.db.url.clone()).await, 0);
    assert!(table_exists(&mut c, "_acc_chg").await);
    assert_ne!(p.states(), vec![(1, "applied".to_string())]);
    crash("swap-unlogged");
    assert!(!table_exists(&mut c, "_acc_chg").await);
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM sluice_online WHERE state = 'swapped'"
        )
        .await,
        0,
        "the swap is recorded last"
    );

    // The next run records the swap and the migration.
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(p.states(), vec![(1, "applied".into())]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut errors = Vec::new();
    for w in writers {
        errors.extend(w.await.unwrap());
    }
    assert!(errors.is_empty(), "client errors: {errors:?}");
    assert_eq!(
        fingerprint(&p.db.url, "acc").await,
        fingerprint(&p.db.url, "mirror").await,
        "acc differs from what the clients wrote"
    );
    assert!(!table_exists(&mut c, "_acc_chg").await);
    let triggers: Vec<(String, String)> = c
        .query("SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE '\\_acc%'")
        .await
        .unwrap();
    assert!(triggers.is_empty(), "{triggers:?}\n{r:?}");
    assert!(r.stderr.contains("swapped by an earlier run"), "{r:?}");
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'acc' AND INDEX_NAME = 'note'").await,
        1,
        "the deferred index is on the new table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_copy_whose_session_is_killed_is_kept_and_resumed() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop(ACC).await.unwrap();
    p.write("1_widen.sql", WIDEN);
    let child = p.spawn(&["up", "--chunk-ms", "1"]);
    // A DBA (or a failover) ends the session that copies, mid-copy.
    let copier = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'INSERT INTO `\\_acc\\_new`%' LIMIT 1";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let id = count(&mut c, copier).await;
        if id > 0 {
            c.query_drop(format!("KILL CONNECTION {id}")).await.unwrap();
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the copy never ran");
    }
    let r = tokio::task::block_in_place(|| wait_bounded(child, 120, "sluice up"));
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("is kept"), "{r:?}");
    assert!(r.stderr.contains("run `sluice up` again"), "{r:?}");
    assert!(table_exists(&mut c, "_acc_new").await, "the copy was kept");
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM sluice_online WHERE state = 'copying'"
        )
        .await,
        1
    );
    c.query_drop(CHANGES).await.unwrap();
    expected(&mut c).await;

    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("resuming the online copy"), "{r:?}");
    assert_eq!(p.states(), vec![(1, "applied".into())]);
    assert_eq!(
        fingerprint(&p.db.url, "acc").await,
        fingerprint(&p.db.url, "expect").await
    );
}

/// MariaDB has no `sluice backfill` yet, but the input is checked the same way first: an escaping
/// `--where` or `--set` is named as such (not hidden behind "not available"), and no row changes.
#[tokio::test]
async fn backfill_input_that_escapes_its_batch_is_refused_first() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (1, 0), (2, 0), (9, 0)")
        .await
        .unwrap();
    for (set, filter, flag) in [
        ("n = n + 1", "id < 5) OR (true", "--where"),
        ("n = n + 1", "id < 5 -- ", "--where"),
        ("n = n + 1", "id < 5; UPDATE t SET n = 9", "--where"),
        ("n = n + 1 WHERE true OR id", "id < 5", "--set"),
    ] {
        let r = p.run(&["backfill", "--table", "t", "--set", set, "--where", filter]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(&format!("{flag} ")), "{}", r.stderr);
        assert!(!r.stderr.contains("not available"), "{}", r.stderr);
    }
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM t WHERE n <> 0").await,
        0
    );
    let ok = p.run(&[
        "backfill",
        "--table",
        "t",
        "--set",
        "n = n + 1",
        "--where",
        "id < 5",
    ]);
    assert!(ok.stderr.contains("not available"), "{ok:?}");
}

/// A client write that the new unique key refuses, made while the verified copy waits for
/// `sluice cutover`: the cut-over fails with the server's duplicate message and exit 1, the copy
/// removed and `acc` unchanged; `sluice cutover` again finds nothing to swap, `sluice up` fails
/// the same way (twice), and once the rows are fixed `sluice up` applies the change.
#[tokio::test]
async fn a_duplicate_written_before_the_cutover_fails_with_exit_1_and_no_rerun_swaps() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop(ACC).await.unwrap();
    p.write(
        "1_unique.sql",
        "ALTER TABLE acc MODIFY balance BIGINT NOT NULL, ADD UNIQUE KEY unote (note);\n",
    );
    let r = p.run(&["up", "--postpone-cutover"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("sluice cutover"), "{r:?}");
    c.query_drop("UPDATE acc SET note = 'n3', balance = -1 WHERE id = 7")
        .await
        .unwrap();
    let before = fingerprint(&p.db.url, "acc").await;
    let duplicate = "Duplicate entry 'n3' for key 'unote'";
    let r = p.run(&["cutover"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(duplicate), "{r:?}");
    assert!(r.stderr.contains("`acc` is unchanged"), "{r:?}");
    let r = p.run(&["cutover"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("no online copy waits"), "{r:?}");
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains(duplicate), "{r:?}");
        assert_eq!(p.states(), vec![(1, "failed".into())]);
    }
    assert_eq!(fingerprint(&p.db.url, "acc").await, before);
    for t in ["_acc_new", "_acc_chg", "_acc_old"] {
        assert!(!table_exists(&mut c, t).await, "{t}");
    }
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE LIKE '%acc%'"
        )
        .await,
        0
    );
    c.query_drop("UPDATE acc SET note = 'n7' WHERE id = 7")
        .await
        .unwrap();
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(p.states(), vec![(1, "applied".into())]);
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'acc' AND INDEX_NAME = 'unote' AND NON_UNIQUE = 0").await,
        1
    );
}

/// The online ALTER as the server reads it: an executable comment's clause runs; a run that dies
/// right after its ALTER completed is recognised by every rerun (the ALTER sent again failed with
/// 1061/1060); text sluice cannot read as the server would exits 2 before any work.
#[tokio::test]
async fn online_alter_reads_executable_comments_and_a_dead_runs_ddl_is_not_sent_twice() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    p.write("1_create_users.sql", CREATE_USERS);
    assert_eq!(p.run(&["up"]).code, 0);
    p.write(
        "2_nick.sql",
        "-- sluice:up\nALTER TABLE users ADD COLUMN nick VARCHAR(50) /*!100000 , ADD INDEX ix_nick (nick) */;\n-- sluice:down\nALTER TABLE users DROP COLUMN nick;\n",
    );
    let r: common::Run = p
        .command(&["up"])
        .env("SLUICE_CRASH_AT", "online-ddl-ran")
        .output()
        .unwrap()
        .into();
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("ending the process here"), "{r:?}");
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    assert_eq!(
        p.states(),
        vec![(1, "applied".to_string()), (2, "applied".to_string())]
    );
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users' AND INDEX_NAME = 'ix_nick'").await,
        1
    );
    p.write(
        "3_z.sql",
        "-- sluice:up\nALTER TABLE users ADD COLUMN z INT /*!100000 , DROP COLUMN email\n",
    );
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("unterminated"), "{r:?}");
    }
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users' AND COLUMN_NAME IN ('z', 'email')").await,
        1
    );
}

/// Foreign keys of the database: (table, name, referenced table).
async fn fk_list(c: &mut mysql_async::Conn) -> Vec<(String, String, String)> {
    c.query(
        "SELECT TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS \
         WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY 1, 2",
    )
    .await
    .unwrap()
}

/// A project whose `acc` has a foreign key out (to `par`) and one in (from `kid`, cascading), `rows`
/// rows each (`kid` half of them), and the migration widening `acc.balance`.
async fn fk_project(rows: u32) -> (Project, mysql_async::Conn) {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop(format!(
        "CREATE TABLE par (id INT PRIMARY KEY); INSERT INTO par SELECT seq FROM seq_1_to_{rows}; \
         CREATE TABLE acc (id INT PRIMARY KEY, pid INT, balance INT NULL, KEY (pid), \
         CONSTRAINT acc_par FOREIGN KEY (pid) REFERENCES par (id)); \
         INSERT INTO acc SELECT seq, seq, seq % 1000 FROM seq_1_to_{rows}; \
         CREATE TABLE kid (id INT PRIMARY KEY, acc_id INT, KEY (acc_id), \
         CONSTRAINT kid_acc FOREIGN KEY (acc_id) REFERENCES acc (id) ON DELETE CASCADE); \
         INSERT INTO kid SELECT seq, seq FROM seq_1_to_{rows} WHERE seq % 2 = 0"
    ))
    .await
    .unwrap();
    p.write("1_widen.sql", WIDEN);
    (p, c)
}

/// A copy of a table with foreign keys out (to `par`) and in (from `kid`, cascading), killed at
/// each step of its foreign keys: with them set up and writes held, right after the RENAME, and
/// once they have their names back. Every rerun converges: the keys end with their own names,
/// pointing at the new table, enforced; nothing points at the old table, which `cleanup` drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_copy_with_foreign_keys_killed_at_each_step_converges() {
    let (p, mut c) = fk_project(20_000).await;
    let before = fk_list(&mut c).await;
    let crash = |point: &str| {
        let child = p
            .command(&["up", "--chunk-ms", "5"])
            .env("SLUICE_CRASH_AT", point)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let r = tokio::task::block_in_place(|| wait_bounded(child, 120, "sluice up"));
        assert_ne!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("ending the process here"), "{r:?}");
        r
    };
    let fk = |list: &[(String, String, String)], table: &str| -> Vec<(String, String)> {
        list.iter()
            .filter(|(t, _, _)| t == table)
            .map(|(_, n, r)| (n.clone(), r.clone()))
            .collect()
    };

    // Dead with writes held, the shadow's key added and the child pointed at the shadow; `acc`
    // keeps its own.
    crash("cutover-fks");
    let now = fk_list(&mut c).await;
    assert_eq!(
        fk(&now, "kid"),
        [("kid_acc_sluice".into(), "_acc_new".into())]
    );
    assert_eq!(
        fk(&now, "_acc_new"),
        [("acc_par_sluice".into(), "par".into())]
    );
    assert_eq!(fk(&now, "acc"), [("acc_par".into(), "par".into())]);

    // The rerun puts the child back on `acc`, swaps and dies right after the RENAME: the child
    // and the new table's key follow it, still under sluice's names; the old table let go of
    // its key right after the RENAME.
    crash("cutover-renamed");
    let now = fk_list(&mut c).await;
    assert_eq!(fk(&now, "kid"), [("kid_acc_sluice".into(), "acc".into())]);
    assert_eq!(fk(&now, "acc"), [("acc_par_sluice".into(), "par".into())]);
    assert!(fk(&now, "_acc_old").is_empty(), "{now:?}");

    // The next one gives the names back and dies.
    crash("swap-fks-settled");
    let now = fk_list(&mut c).await;
    assert_eq!(
        now, before,
        "the keys have their own names and tables again"
    );

    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(p.states(), vec![(1, "applied".into())]);
    assert_eq!(fk_list(&mut c).await, before);
    let widened: String = c
        .query_first("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'acc' AND COLUMN_NAME = 'balance'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(widened, "bigint(20)");
    for bad in [
        "INSERT INTO acc (id, pid, balance) VALUES (999999, 999999, 0)",
        "INSERT INTO kid (id, acc_id) VALUES (999999, 999999)",
    ] {
        let err = c.query_drop(bad).await.unwrap_err();
        assert!(err.to_string().contains("1452"), "{bad}: {err}");
    }
    // The cascade reaches the child from the new table.
    c.query_drop("DELETE FROM acc WHERE id = 2").await.unwrap();
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM kid WHERE acc_id = 2").await,
        0
    );
    let r = p.run(&["cleanup"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!table_exists(&mut c, "_acc_old").await);
}

/// A run killed with writes held and the child's key pointed at the shadow, then abandoned with
/// `sluice cleanup --abort` (twice): the child's key is back on the table under its own name
/// before the shadow goes, so child writes are checked against the live table (a valid one
/// passes, an orphan fails with 1452) and nothing of the copy is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_copy_with_foreign_keys_killed_then_aborted_gives_the_keys_back() {
    let (p, mut c) = fk_project(5_000).await;
    let before = fk_list(&mut c).await;
    let child = p
        .command(&["up", "--chunk-ms", "5"])
        .env("SLUICE_CRASH_AT", "cutover-fks")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let r = tokio::task::block_in_place(|| wait_bounded(child, 120, "sluice up"));
    assert!(r.stderr.contains("ending the process here"), "{r:?}");
    assert_ne!(
        fk_list(&mut c).await,
        before,
        "the kill left the child on the shadow"
    );
    for run in 0..2 {
        let r = p.run(&["cleanup", "--abort"]);
        assert_eq!(r.code, 0, "run {run}: {r:?}");
        assert_eq!(fk_list(&mut c).await, before, "run {run}");
    }
    let left: Vec<String> = c
        .query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '\\_acc%'")
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    c.query_drop("INSERT INTO kid (id, acc_id) VALUES (999999, 3)")
        .await
        .unwrap();
    let err = c
        .query_drop("INSERT INTO kid (id, acc_id) VALUES (999998, 999999)")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1452"), "{err}");
}

/// Killed with the child's key pointed at the copy, the process stays dead while a client deletes
/// a parent row (nothing checks `kid` against `acc` then, nor cascades): the rerun — `up` or
/// `cleanup --abort` — puts the key back and refuses to go on while `kid` holds the row left
/// without its parent, naming it (twice, the keys back on `acc` each time); once the row is
/// fixed, it goes on and the key is enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parent_deleted_while_a_killed_cutover_left_the_child_on_the_copy_is_caught() {
    for then in [&["up"][..], &["cleanup", "--abort"][..]] {
        let (p, mut c) = fk_project(5_000).await;
        let before = fk_list(&mut c).await;
        let r = p.run_crashing(&["up", "--chunk-ms", "5"], "cutover-fks");
        assert!(r.stderr.contains("ending the process here"), "{r:?}");
        c.query_drop("DELETE FROM acc WHERE id = 2").await.unwrap();
        assert_eq!(
            count(&mut c, "SELECT COUNT(*) FROM kid WHERE acc_id = 2").await,
            1,
            "not cascaded while the key pointed at the copy"
        );
        for attempt in 1..=2 {
            let r = p.run(then);
            assert_ne!(r.code, 0, "{then:?}, attempt {attempt}: {r:?}");
            assert!(
                r.stderr
                    .contains("rows without a parent in `acc`: `kid` (acc_id = 2)"),
                "{then:?}: {r:?}"
            );
            assert_eq!(fk_list(&mut c).await, before, "{then:?}: the keys are back");
        }
        c.query_drop("DELETE FROM kid WHERE acc_id = 2")
            .await
            .unwrap();
        let r = p.run(then);
        assert_eq!(r.code, 0, "{then:?} once fixed: {r:?}");
        assert_eq!(fk_list(&mut c).await, before);
        let err = c
            .query_drop("INSERT INTO kid (id, acc_id) VALUES (999998, 999999)")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("1452"), "{err}");
    }
}
