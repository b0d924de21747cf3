//! Issue 15, logical replication (PostgreSQL): a publisher and a subscriber, two private clusters.
//! DDL is not replicated, so the order matters: a subscriber that lacks a column the publisher sends
//! stops applying changes. sluice refuses the subscriber's removal of a column its publisher still
//! has (reading the publisher through the subscription's connection), lets the expand phase run, and
//! says on the publisher that an added column must reach the subscribers first. Migrated in the
//! right order, replication never stops.

mod common;

use common::{PrivatePg, Run};
use std::process::{Command, Stdio};
use std::time::Duration;

const DB: &str = "app";

async fn client(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c
}

fn sluice(dir: &std::path::Path, url: &str, args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env("SLUICE_AS_WRITTEN_BELOW_ROWS", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into()
}

/// Waits until the subscriber holds the row the publisher just wrote: replication is flowing.
async fn arrives(sub: &tokio_postgres::Client, id: i32) {
    common::eventually(30, "the row reaches the subscriber", || async {
        sub.query_opt("SELECT 1 FROM t WHERE id = $1", &[&id])
            .await
            .unwrap()
            .is_some()
    })
    .await;
}

async fn columns(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn columns_reach_subscribers_first_and_leave_publishers_first() {
    let opts = "-c wal_level=logical -c max_wal_senders=4 -c max_replication_slots=4";
    let (Some(publisher), Some(subscriber)) =
        (PrivatePg::start_with(opts), PrivatePg::start_with(opts))
    else {
        eprintln!("skipped: no PostgreSQL 15 server binaries");
        return;
    };
    let table = "CREATE TABLE t (id int PRIMARY KEY, a int, c int NOT NULL DEFAULT 0)";
    for pg in [&publisher, &subscriber] {
        client(&pg.url("postgres"))
            .await
            .batch_execute(&format!("CREATE DATABASE {DB}"))
            .await
            .unwrap();
        client(&pg.url(DB))
            .await
            .batch_execute(table)
            .await
            .unwrap();
    }
    let p = client(&publisher.url(DB)).await;
    p.batch_execute(
        "INSERT INTO t SELECT g, g, g FROM generate_series(1, 1000) g; CREATE PUBLICATION pub FOR TABLE t;",
    )
    .await
    .unwrap();
    let s = client(&subscriber.url(DB)).await;
    s.batch_execute(&format!(
        "CREATE SUBSCRIPTION sub CONNECTION 'host=127.0.0.1 port={} dbname={DB} user=postgres' PUBLICATION pub",
        publisher.port
    ))
    .await
    .unwrap();
    arrives(&s, 1000).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/1_drop_c.sql"),
        "-- sluice:up\nALTER TABLE t DROP COLUMN c;\n",
    )
    .unwrap();
    let (pu, su) = (publisher.url(DB), subscriber.url(DB));

    // The subscriber first: its expand phase runs (c stays); its contract is refused while the
    // publisher still has c — twice, nothing changed.
    let r = sluice(dir.path(), &su, &["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    for _ in 0..2 {
        let r = sluice(dir.path(), &su, &["complete"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.stderr
                .contains("while the publisher (subscription sub) still has it")
                && r.stderr.contains("migrate the publisher first"),
            "{r:?}"
        );
        assert!(
            !r.all().contains("port="),
            "no connection string shown: {r:?}"
        );
        assert_eq!(columns(&s).await, ["id", "a", "c"]);
    }
    // The publisher: expand, then contract.
    assert_eq!(sluice(dir.path(), &pu, &["up"]).code, 0);
    p.batch_execute("INSERT INTO t (id, a) VALUES (1001, 1)")
        .await
        .unwrap();
    arrives(&s, 1001).await;
    let r = sluice(dir.path(), &pu, &["complete"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(columns(&p).await, ["id", "a"]);
    p.batch_execute("INSERT INTO t (id, a) VALUES (1002, 2)")
        .await
        .unwrap();
    arrives(&s, 1002).await;
    // Now the subscriber's contract runs, and replication goes on.
    let r = sluice(dir.path(), &su, &["complete"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(columns(&s).await, ["id", "a"]);
    p.batch_execute("INSERT INTO t (id, a) VALUES (1003, 3)")
        .await
        .unwrap();
    arrives(&s, 1003).await;

    // An added column: on the publisher, plan and up say the subscribers need it first.
    std::fs::write(
        dir.path().join("migrations/2_add_d.sql"),
        "-- sluice:up\nALTER TABLE t ADD COLUMN d int;\n",
    )
    .unwrap();
    let plan = sluice(dir.path(), &pu, &["plan"]);
    assert!(
        plan.stdout.contains(
            "logical replication: public.t is published (pub): every subscriber needs column d"
        ),
        "{plan:?}"
    );
    let dry = sluice(dir.path(), &su, &["up", "--dry-run"]);
    assert!(!dry.all().contains("is published"), "{dry:?}");
    // The right order: the subscriber, then the publisher; a row with d arrives with it.
    assert_eq!(sluice(dir.path(), &su, &["up"]).code, 0);
    let r = sluice(dir.path(), &pu, &["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("warning: public.t is published (pub)"),
        "{r:?}"
    );
    p.batch_execute("INSERT INTO t (id, a, d) VALUES (1004, 4, 44)")
        .await
        .unwrap();
    arrives(&s, 1004).await;
    let d: Option<i32> = s
        .query_one("SELECT d FROM t WHERE id = 1004", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(d, Some(44));
    // Every row made it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut counts = Vec::new();
    for c in [&p, &s] {
        let n: i64 = c
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0);
        counts.push(n);
    }
    assert_eq!(counts, [1004, 1004]);
    s.batch_execute("DROP SUBSCRIPTION sub").await.unwrap();
}
