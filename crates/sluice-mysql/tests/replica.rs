//! The online copy against a real primary with a real streaming replica: both are private
//! MariaDB servers this test starts on free ports (the shared test server has no binary log).
//! The replica's SQL thread is stopped mid-copy: the copy must pause on the heartbeat lag, resume
//! when the replica applies again, and the replica must end up with the same altered table.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::dburl::DbUrl;
use sluice_core::engine::prelude::*;
use sluice_core::engine::OnlineOptions;
use sluice_mysql::MySqlEngine;
use sluice_testkit::PrivateMariaDb;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A private server: the primary with a binary log in ROW format, the replica without (it
/// reports its host to the primary, which lists it in SHOW SLAVE HOSTS).
async fn start(server_id: u32, binlog: bool) -> PrivateMariaDb {
    let id = format!("--server-id={server_id}");
    let mut args = vec![id.as_str()];
    if binlog {
        args.extend(["--log-bin={dir}/bin", "--binlog-format=ROW"]);
    } else {
        args.push("--report-host=127.0.0.1");
    }
    PrivateMariaDb::start(&args)
        .await
        .expect("mariadbd / mariadb-install-db not found: install mariadb-server (.ci/run does)")
}

async fn one<T: mysql_async::prelude::FromValue + Send + 'static>(c: &mut Conn, sql: &str) -> T {
    c.query_first::<T, _>(sql).await.unwrap().unwrap()
}

/// Polls until the replica has applied everything the primary has written so far.
async fn caught_up(primary: &mut Conn, replica: &mut Conn) {
    let (file, pos): (String, u64) = {
        let r: mysql_async::Row = primary
            .query_first("SHOW MASTER STATUS")
            .await
            .unwrap()
            .unwrap();
        (r.get(0).unwrap(), r.get(1).unwrap())
    };
    let n: Option<i64> = replica
        .query_first(format!("SELECT MASTER_POS_WAIT('{file}', {pos}, 60)"))
        .await
        .unwrap();
    assert!(n.is_some_and(|n| n >= 0), "the replica did not catch up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copy_pauses_while_a_real_replica_lags_and_the_replica_ends_equal() {
    lagging_replica_pauses_the_copy(true).await;
}

/// The same without --replica-url: the replica is found on the primary (SHOW SLAVE HOSTS).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_found_on_the_primary_pauses_the_copy_too() {
    lagging_replica_pauses_the_copy(false).await;
}

async fn lagging_replica_pauses_the_copy(named: bool) {
    let (primary, replica) = tokio::join!(start(1, true), start(2, false));
    let mut p = Conn::from_url(primary.url("mysql")).await.unwrap();
    let mut r = Conn::from_url(replica.url("mysql")).await.unwrap();
    r.query_drop(format!(
        "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'root', \
         MASTER_PASSWORD = '', MASTER_USE_GTID = no; START SLAVE",
        primary.port
    ))
    .await
    .unwrap();
    p.query_drop(
        "CREATE DATABASE app; USE app; \
         CREATE TABLE acc (id INT AUTO_INCREMENT PRIMARY KEY, balance INT NULL, note VARCHAR(40), KEY (note)); \
         INSERT INTO acc (balance, note) SELECT seq, CONCAT('n', seq) FROM seq_1_to_30000",
    )
    .await
    .unwrap();
    p.query_drop(sluice_mysql::online::CREATE_HEARTBEAT)
        .await
        .unwrap();
    caught_up(&mut p, &mut r).await;
    r.query_drop("USE app").await.unwrap();
    assert_eq!(one::<i64>(&mut r, "SELECT COUNT(*) FROM acc").await, 30_000);

    // The replica stops applying: its heartbeat stands still while sluice writes new ones.
    r.query_drop("STOP SLAVE SQL_THREAD").await.unwrap();
    let said = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = said.clone();
    let url = primary.url("app");
    let replica_url = replica.url("app");
    let copy = tokio::spawn(async move {
        let mut e = MySqlEngine::connect(&DbUrl::parse(&url).unwrap())
            .await
            .unwrap();
        let opts = OnlineOptions {
            // Small chunks and a tight limit, so the copy is still early when the lag shows.
            target_chunk: Duration::from_millis(1),
            replica_urls: if named { vec![replica_url] } else { vec![] },
            max_replica_lag: Duration::from_millis(30),
            ..Default::default()
        };
        let say = move |m: &str| log.lock().unwrap().push(m.to_string());
        e.alter_online(
            "ALTER TABLE acc MODIFY balance BIGINT NOT NULL",
            &opts,
            &say,
        )
        .await
    });
    let paused = |said: &Arc<Mutex<Vec<String>>>| {
        said.lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("paused: replica") && m.contains("lags"))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !paused(&said) {
        assert!(
            Instant::now() < deadline,
            "the copy never paused: {:?}",
            said.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // While the replica stands still the copy does not move.
    let copied = "SELECT COUNT(*) FROM app._acc_new";
    let a = one::<i64>(&mut p, copied).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = one::<i64>(&mut p, copied).await;
    assert_eq!(a, b, "the copy went on while the replica lagged");
    assert!(
        b < 30_000,
        "the copy finished before the replica stopped ({b} rows)"
    );
    assert!(!copy.is_finished());

    r.query_drop("START SLAVE SQL_THREAD").await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(120), copy)
        .await
        .expect("the copy finished once the replica applied again")
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.path, "copy");
    let lines = said.lock().unwrap().clone();
    let found = lines
        .iter()
        .any(|m| m.contains("replicas: pausing on the lag of 1 found on the primary"));
    assert_eq!(found, !named, "{lines:?}");
    assert!(
        lines.iter().any(|m| m.contains("resumed after a pause")),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|m| m.contains("root@") && m.contains(":@")),
        "no credentials in messages"
    );

    // The swap replicated: the replica has the altered table with the primary's rows.
    p.query_drop("USE app").await.unwrap();
    caught_up(&mut p, &mut r).await;
    let sum =
        "SELECT CONCAT(COUNT(*), ':', SUM(CRC32(CONCAT_WS('|', id, balance, note)))) FROM acc";
    assert_eq!(
        one::<String>(&mut r, sum).await,
        one::<String>(&mut p, sum).await
    );
    let ty = "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'acc' AND COLUMN_NAME = 'balance'";
    assert_eq!(one::<String>(&mut r, ty).await, "bigint(20)");
    assert_eq!(one::<String>(&mut p, ty).await, "bigint(20)");
}
