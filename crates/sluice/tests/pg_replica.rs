//! Issue 15 (replicas), PostgreSQL: a real streaming replica (`pg_basebackup -R` of a private
//! primary, on its own port). While the replica's replay is paused, every backfill sluice runs —
//! `sluice backfill` and the staged backfill of `sluice up` — stops sending batches once the
//! replica is `--max-replica-lag-ms` behind, says so, and finishes once replay resumes; the
//! replica then holds exactly the primary's rows.

mod common;

use common::PrivatePg;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROWS: i64 = 200_000;
const DB: &str = "sluice_replica";

async fn client(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c
}

fn sluice(dir: &std::path::Path, url: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env("SLUICE_AS_WRITTEN_BELOW_ROWS", "0")
        .env_remove("SLUICE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice")
}

/// The rows of `t` as one digest, in key order.
async fn digest(c: &tokio_postgres::Client) -> String {
    c.query_one(
        "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Rows the running backfill has done: of `sluice backfill` (which sets n = 1), or of the staged
/// backfill of `up` (which fills the new column).
async fn rows_done(c: &tokio_postgres::Client, staged: bool) -> i64 {
    let sql = if staged {
        "SELECT count(*) FROM t WHERE token IS NOT NULL"
    } else {
        "SELECT count(*) FROM t WHERE n = 1"
    };
    // Before sluice adds the column there is nothing done.
    c.query_one(sql, &[]).await.map(|r| r.get(0)).unwrap_or(0)
}

/// How many rows `probe` says are done, sampled until it has not moved for `still` (the
/// backfill paused), failing after `secs` if it never stands still below `total`.
async fn stands_still<F, Fut>(probe: F, total: i64, still: Duration, secs: u64) -> i64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = probe().await;
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = probe().await;
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= still && now < total {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the backfill never paused (at {now} of {total})"
        );
        assert!(now < total, "the backfill finished while replay was paused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfills_pause_while_a_real_replica_lags_and_the_replica_ends_equal() {
    let Some(primary) = PrivatePg::start_with("-c wal_level=replica -c max_wal_senders=4") else {
        eprintln!("skipped: no PostgreSQL 15 server binaries");
        return;
    };
    let admin = client(&primary.url("postgres")).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {DB}"))
        .await
        .unwrap();
    let url = primary.url(DB);
    let db = client(&url).await;
    db.batch_execute(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, pad text);
         INSERT INTO t SELECT g, 0, repeat('x', 100) FROM generate_series(1, {ROWS}) g;"
    ))
    .await
    .unwrap();
    let Some(standby) = primary.standby("-c wal_receiver_status_interval=1") else {
        return;
    };
    let replica = client(&standby.url(DB)).await;
    common::eventually(30, "the standby streams", || async {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 1
    })
    .await;

    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("migrations")).unwrap();
    std::fs::write(
        project.path().join("migrations/1_token.sql"),
        "-- sluice:up\nALTER TABLE t ADD COLUMN token text NOT NULL DEFAULT md5(random()::text);\n",
    )
    .unwrap();
    let pacing = [
        "--pace",
        "speed",
        "--target-batch-ms",
        "20",
        "--max-replica-lag-ms",
        "400",
    ];
    // Each backfill: what, its command, and whether it is the staged one of `up`.
    let runs: [(&str, Vec<&str>, bool); 2] = [
        (
            "sluice backfill",
            [
                &["backfill", "--table", "t", "--set", "n = n + 1"][..],
                &pacing,
            ]
            .concat(),
            false,
        ),
        ("sluice up", [&["up"][..], &pacing].concat(), true),
    ];
    for (what, args, staged) in runs {
        replica
            .batch_execute("SELECT pg_wal_replay_pause()")
            .await
            .unwrap();
        let child = sluice(project.path(), &url, &args);
        let watcher = client(&url).await;
        let paused_at = stands_still(
            || rows_done(&watcher, staged),
            ROWS,
            Duration::from_millis(1500),
            60,
        )
        .await;
        // Replay resumes: the backfill goes on to the end.
        replica
            .batch_execute("SELECT pg_wal_replay_resume()")
            .await
            .unwrap();
        let r = common::wait_bounded(child, 120, what);
        assert_eq!(r.code, 0, "{what}: {r:?}");
        assert!(
            r.all().contains("backfill paused: a replica replays")
                && r.all().contains("(limit 0.4 s)"),
            "{what}: {r:?}"
        );
        assert!(paused_at < ROWS, "{what}");
        eprintln!("{what}: paused at {paused_at} of {ROWS} rows while replay was paused");
    }
    // Every row updated exactly once, the new column filled; the replica, caught up, equal.
    let updated: i64 = db
        .query_one(
            "SELECT count(*) FROM t WHERE n = 1 AND token IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(updated, ROWS);
    let want = digest(&db).await;
    let lsn: String = db
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    common::eventually(60, "the standby replays everything", || async {
        replica
            .query_one(
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&lsn],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
    })
    .await;
    assert_eq!(digest(&replica).await, want);
    drop(standby);
}
