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
    sluice_below(dir, url, args, "0")
}

/// With `SLUICE_AS_WRITTEN_BELOW_ROWS` at `below` (0: type changes are staged on any table).
fn sluice_below(dir: &std::path::Path, url: &str, args: &[&str], below: &str) -> Run {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env("SLUICE_AS_WRITTEN_BELOW_ROWS", below)
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

/// A publisher and a subscriber (two private clusters), table `t` with 1000 rows on both, `pub`
/// publishing it and `sub` subscribed to it, the first rows arrived.
struct Pair {
    publisher: PrivatePg,
    subscriber: PrivatePg,
    p: tokio_postgres::Client,
    s: tokio_postgres::Client,
}

impl Pair {
    async fn start() -> Option<Pair> {
        let opts = "-c wal_level=logical -c max_wal_senders=4 -c max_replication_slots=4";
        let (Some(publisher), Some(subscriber)) =
            (PrivatePg::start_with(opts), PrivatePg::start_with(opts))
        else {
            eprintln!("skipped: no PostgreSQL 15 server binaries");
            return None;
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
        Some(Pair {
            publisher,
            subscriber,
            p,
            s,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn columns_reach_subscribers_first_and_leave_publishers_first() {
    let Some(Pair {
        publisher,
        subscriber,
        p,
        s,
    }) = Pair::start().await
    else {
        return;
    };
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
    for args in [
        &["complete"][..],
        &["up", "--complete", "--dry-run"],
        &["complete"],
    ] {
        let r = sluice(dir.path(), &su, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
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

/// Rows of sluice's history on `c` (0 before the history exists).
async fn recorded(c: &tokio_postgres::Client) -> i64 {
    let exists: bool = c
        .query_one("SELECT to_regclass('sluice.migrations') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    if !exists {
        return 0;
    }
    c.query_one("SELECT count(*) FROM sluice.migrations", &[])
        .await
        .unwrap()
        .get(0)
}

fn with(args: &[&str], more: &[&str]) -> Vec<String> {
    args.iter().chain(more).map(|s| s.to_string()).collect()
}

fn run(dir: &std::path::Path, url: &str, args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sluice(dir, url, &args)
}

/// Issue 15, publisher side: named with --subscriber-url, each subscriber is read before a column
/// is added to a published table — as written or a rename's expand (its new name). Added on the
/// publisher first, the subscriber's apply worker would stop: refused (exit 2) by `up`, its dry
/// run and `plan`, every time, nothing changed on either side, replication flowing. Added on the
/// subscriber first, the publisher's run passes without a warning and the new column's values
/// arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_column_added_on_a_publisher_must_be_on_its_named_subscribers_first() {
    let Some(pair) = Pair::start().await else {
        return;
    };
    let (pu, su) = (pair.publisher.url(DB), pair.subscriber.url(DB));
    let name = format!("127.0.0.1:{}/{DB}", pair.subscriber.port);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    let cases = [
        ("1_add_d.sql", "ALTER TABLE t ADD COLUMN d int", "d"),
        ("2_rename_a.sql", "ALTER TABLE t RENAME COLUMN a TO b", "b"),
    ];
    let sub = ["--subscriber-url", su.as_str()];
    let mut id = 1000;
    for (file, sql, col) in cases {
        std::fs::write(
            dir.path().join("migrations").join(file),
            format!("-- sluice:up\n{sql};\n"),
        )
        .unwrap();
        let (cols_p, cols_s, rec) = (
            columns(&pair.p).await,
            columns(&pair.s).await,
            recorded(&pair.p).await,
        );
        for args in [
            &["up"][..],
            &["up", "--dry-run"],
            &["plan"],
            &["up"],
            &["up"],
        ] {
            let r = run(dir.path(), &pu, &with(args, &sub));
            assert_eq!(r.code, 2, "{sql}: {args:?}: {r:?}");
            assert!(
                r.stderr.contains(&format!(
                    "would add column public.t.{col} on this publisher (publication pub), and subscriber {name} (subscription sub) has no column {col} in public.t: its apply worker would stop"
                )) && r.stderr.contains(&format!(
                    "migrate the subscriber first (`sluice up` on {name}), then run `sluice up` here"
                )),
                "{sql}: {args:?}: {r:?}"
            );
            assert_eq!(columns(&pair.p).await, cols_p, "{sql}");
            assert_eq!(columns(&pair.s).await, cols_s, "{sql}");
            assert_eq!(recorded(&pair.p).await, rec, "{sql}: nothing recorded");
        }
        // Replication still flows.
        id += 1;
        pair.p
            .execute("INSERT INTO t (id) VALUES ($1)", &[&id])
            .await
            .unwrap();
        arrives(&pair.s, id).await;
        // The subscriber first, then the publisher: checked, so no warning.
        let r = sluice(dir.path(), &su, &["up"]);
        assert_eq!(r.code, 0, "{sql}: {r:?}");
        let r = run(dir.path(), &pu, &with(&["up"], &sub));
        assert_eq!(r.code, 0, "{sql}: {r:?}");
        assert!(!r.all().contains("is published"), "{sql}: {r:?}");
        assert!(columns(&pair.p).await.iter().any(|c| c == col), "{sql}");
        id += 1;
        pair.p
            .execute(&format!("INSERT INTO t (id, {col}) VALUES ($1, 7)"), &[&id])
            .await
            .unwrap();
        arrives(&pair.s, id).await;
        let got: Option<i32> = pair
            .s
            .query_one(&format!("SELECT {col} FROM t WHERE id = $1"), &[&id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, Some(7), "{sql}: the new column's value arrives");
    }
    pair.s.batch_execute("DROP SUBSCRIPTION sub").await.unwrap();
}

/// Issue 15: `down` is held to the replication order as `up` is. A down part that drops a column
/// on a subscriber while the publisher still sends it is refused (exit 2, its dry run too, every
/// time, nothing changed, replication flowing); rolled back on the publisher first it runs. A down
/// part that adds a column back on a publisher is checked against the subscribers named with
/// --subscriber-url: refused while one lacks it, run once the subscriber was rolled back first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_is_held_to_the_replication_order_as_up_is() {
    let Some(pair) = Pair::start().await else {
        return;
    };
    let (pu, su) = (pair.publisher.url(DB), pair.subscriber.url(DB));
    let name = format!("127.0.0.1:{}/{DB}", pair.subscriber.port);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    let sub = ["--subscriber-url", su.as_str()];
    let mut id = 1000;

    // A column added (subscriber first, then publisher), then rolled back.
    std::fs::write(
        dir.path().join("migrations/1_add_d.sql"),
        "-- sluice:up\nALTER TABLE t ADD COLUMN d int;\n-- sluice:down\nALTER TABLE t DROP COLUMN d;\n",
    )
    .unwrap();
    assert_eq!(sluice(dir.path(), &su, &["up"]).code, 0);
    assert_eq!(run(dir.path(), &pu, &with(&["up"], &sub)).code, 0);
    let (cols_p, cols_s) = (columns(&pair.p).await, columns(&pair.s).await);
    assert!(cols_s.iter().any(|c| c == "d"), "{cols_s:?}");
    for args in [&["down"][..], &["down", "--dry-run"], &["down"]] {
        let r = sluice(dir.path(), &su, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(
                "the down part of migration 1_add_d would drop column public.t.d on this subscriber while the publisher (subscription sub) still has it"
            ) && r.stderr.contains(
                "roll the migration back on the publisher first (`sluice down` there, so the column is gone), then run `sluice down` here"
            ),
            "{args:?}: {r:?}"
        );
        assert!(
            !r.all().contains("port="),
            "no connection string shown: {r:?}"
        );
        assert_eq!(columns(&pair.s).await, cols_s, "{args:?}: nothing changed");
    }
    id += 1;
    pair.p
        .execute("INSERT INTO t (id, d) VALUES ($1, 5)", &[&id])
        .await
        .unwrap();
    arrives(&pair.s, id).await;
    // The right order: the publisher, then the subscriber.
    let r = sluice(dir.path(), &pu, &["down"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!columns(&pair.p).await.iter().any(|c| c == "d"));
    id += 1;
    pair.p
        .execute("INSERT INTO t (id) VALUES ($1)", &[&id])
        .await
        .unwrap();
    arrives(&pair.s, id).await;
    let r = sluice(dir.path(), &su, &["down"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(columns(&pair.s).await, columns(&pair.p).await);
    assert_ne!(columns(&pair.p).await, cols_p);

    // A column dropped (publisher first, then subscriber), then added back by the down part: the
    // publisher's down is checked against the named subscriber.
    // A project of its own: sluice's history (not published) starts afresh on both.
    for c in [&pair.p, &pair.s] {
        c.batch_execute("DROP SCHEMA sluice CASCADE").await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/1_drop_a.sql"),
        "-- sluice:up\nALTER TABLE t DROP COLUMN a;\n-- sluice:down\nALTER TABLE t ADD COLUMN a int;\n",
    )
    .unwrap();
    assert_eq!(
        run(dir.path(), &pu, &with(&["up", "--complete"], &sub)).code,
        0
    );
    id += 1;
    pair.p
        .execute("INSERT INTO t (id) VALUES ($1)", &[&id])
        .await
        .unwrap();
    arrives(&pair.s, id).await;
    assert_eq!(sluice(dir.path(), &su, &["up", "--complete"]).code, 0);
    let (cols_p, cols_s) = (columns(&pair.p).await, columns(&pair.s).await);
    assert!(!cols_p.iter().any(|c| c == "a") && !cols_s.iter().any(|c| c == "a"));
    for args in [&["down"][..], &["down", "--dry-run"], &["down"]] {
        let r = run(dir.path(), &pu, &with(args, &sub));
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "the down part of migration 1_drop_a would add column public.t.a on this publisher (publication pub), and subscriber {name} (subscription sub) has no column a in public.t"
            )) && r.stderr.contains(&format!(
                "roll the migration back on the subscriber first (`sluice down` on {name}), then run `sluice down` here"
            )),
            "{args:?}: {r:?}"
        );
        assert_eq!(columns(&pair.p).await, cols_p, "{args:?}: nothing changed");
    }
    // Unnamed, the subscriber is not read: a warning, as for `up`.
    let dry = sluice(dir.path(), &pu, &["down", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stderr
            .contains("warning: public.t is published (pub): every subscriber needs column a"),
        "{dry:?}"
    );
    // The right order: the subscriber, then the publisher; a value of a arrives.
    assert_eq!(sluice(dir.path(), &su, &["down"]).code, 0);
    let r = run(dir.path(), &pu, &with(&["down"], &sub));
    assert_eq!(r.code, 0, "{r:?}");
    id += 1;
    pair.p
        .execute("INSERT INTO t (id, a) VALUES ($1, 9)", &[&id])
        .await
        .unwrap();
    arrives(&pair.s, id).await;
    let got: Option<i32> = pair
        .s
        .query_one("SELECT a FROM t WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(got, Some(9));
    pair.s.batch_execute("DROP SUBSCRIPTION sub").await.unwrap();
}

/// Issue 15: `sluice rollback` of a rename's expand phase drops the new name — a column the
/// publisher sends once it is expanded too. On a subscriber that is refused while the publisher
/// still has it (exit 2, every time, nothing changed, replication flowing); rolled back on the
/// publisher first, the subscriber's rollback runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollback_takes_the_new_name_off_the_publisher_first() {
    let Some(pair) = Pair::start().await else {
        return;
    };
    let (pu, su) = (pair.publisher.url(DB), pair.subscriber.url(DB));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/1_rename_a.sql"),
        "-- sluice:up\nALTER TABLE t RENAME COLUMN a TO b;\n",
    )
    .unwrap();
    assert_eq!(sluice(dir.path(), &su, &["up"]).code, 0);
    assert_eq!(sluice(dir.path(), &pu, &["up"]).code, 0);
    let cols_s = columns(&pair.s).await;
    assert!(cols_s.iter().any(|c| c == "b"), "{cols_s:?}");
    for _ in 0..2 {
        let r = sluice(dir.path(), &su, &["rollback"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.stderr.contains(
                "the rollback of migration 1_rename_a would drop column public.t.b on this subscriber while the publisher (subscription sub) still has it"
            ) && r.stderr.contains(
                "roll the expand phase back on the publisher first (`sluice rollback` there, so the column is gone), then run `sluice rollback` here"
            ),
            "{r:?}"
        );
        assert_eq!(columns(&pair.s).await, cols_s, "nothing changed");
    }
    pair.p
        .execute("INSERT INTO t (id, b) VALUES (1001, 5)", &[])
        .await
        .unwrap();
    arrives(&pair.s, 1001).await;
    assert_eq!(sluice(dir.path(), &pu, &["rollback"]).code, 0);
    pair.p
        .execute("INSERT INTO t (id, a) VALUES (1002, 6)", &[])
        .await
        .unwrap();
    arrives(&pair.s, 1002).await;
    let r = sluice(dir.path(), &su, &["rollback"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(columns(&pair.s).await, ["id", "a", "c"]);
    pair.p
        .execute("INSERT INTO t (id, a) VALUES (1003, 7)", &[])
        .await
        .unwrap();
    arrives(&pair.s, 1003).await;
    let a: Option<i32> = pair
        .s
        .query_one("SELECT a FROM t WHERE id = 1003", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(a, Some(7));
    pair.s.batch_execute("DROP SUBSCRIPTION sub").await.unwrap();
}

/// A subscriber sluice cannot check is refused with the reason (exit 2, every time, nothing
/// changed): one that cannot be reached, one without a subscription, one subscribed to another
/// database of the publisher's server (same publication name, another slot). The URLs carry a
/// password, which no output shows, whether given as a flag or in SLUICE_SUBSCRIBER_URLS. And a
/// reviewed plan (`up --plan`) gets the same check as `up`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_that_cannot_be_checked_is_refused_and_up_plan_checks_too() {
    let Some(pair) = Pair::start().await else {
        return;
    };
    let (pport, sport) = (pair.publisher.port, pair.subscriber.port);
    let pu = pair.publisher.url(DB);
    // Another database of the publisher's server publishes `pub` too; `other` on the
    // subscriber's server subscribes to that one.
    client(&pair.publisher.url("postgres"))
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t;")
        .await
        .unwrap();
    client(&pair.subscriber.url("postgres"))
        .await
        .batch_execute("CREATE DATABASE other")
        .await
        .unwrap();
    let other = client(&pair.subscriber.url("other")).await;
    other
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    other
        .batch_execute(&format!(
            "CREATE SUBSCRIPTION sub2 CONNECTION 'host=127.0.0.1 port={pport} dbname=postgres user=postgres' PUBLICATION pub WITH (copy_data = false)"
        ))
        .await
        .unwrap();
    // `third` names this database's publication and slot, but its connection goes to another
    // database (never connected: a subscription made without connecting).
    client(&pair.subscriber.url("postgres"))
        .await
        .batch_execute("CREATE DATABASE third")
        .await
        .unwrap();
    let third = client(&pair.subscriber.url("third")).await;
    third
        .batch_execute(&format!(
            "CREATE SUBSCRIPTION sub3 CONNECTION 'host=127.0.0.1 port={pport} dbname=postgres user=postgres' PUBLICATION pub WITH (connect = false, slot_name = 'sub')"
        ))
        .await
        .unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = "s3cret-PW";
    let at = |port: u16, db: &str| format!("postgres://postgres:{secret}@127.0.0.1:{port}/{db}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/1_add_d.sql"),
        "-- sluice:up\nALTER TABLE t ADD COLUMN d int;\n",
    )
    .unwrap();
    let cases = [
        (
            at(dead, DB),
            format!("subscriber 127.0.0.1:{dead}/{DB} cannot be read, so sluice cannot check that it has what the pending migrations add to published tables (public.t): nothing is listening at 127.0.0.1:{dead}"),
            format!("make 127.0.0.1:{dead}/{DB} reachable with this URL"),
        ),
        (
            at(sport, "postgres"),
            format!("subscriber 127.0.0.1:{sport}/postgres does not subscribe to this database's publications (it has no subscription)"),
            format!("leave 127.0.0.1:{sport}/postgres out"),
        ),
        (
            at(sport, "other"),
            format!("subscriber 127.0.0.1:{sport}/other does not subscribe to this database's publications (sub2: its slot sub2 is not a logical slot of this database)"),
            format!("leave 127.0.0.1:{sport}/other out"),
        ),
        (
            at(sport, "third"),
            format!("subscriber 127.0.0.1:{sport}/third does not subscribe to this database's publications (sub3: its connection names database postgres on port {pport})"),
            format!("leave 127.0.0.1:{sport}/third out"),
        ),
    ];
    for (url, cause, fix) in &cases {
        for via_env in [false, true, false] {
            let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
            c.current_dir(dir.path())
                .env("DATABASE_URL", &pu)
                .env("SLUICE_AS_WRITTEN_BELOW_ROWS", "0")
                .stdin(Stdio::null());
            if via_env {
                c.arg("up").env("SLUICE_SUBSCRIBER_URLS", url);
            } else {
                c.args(["up", "--subscriber-url", url]);
            }
            let r: Run = c.output().unwrap().into();
            assert_eq!(r.code, 2, "{url}: {r:?}");
            assert!(
                r.stderr.contains(cause.as_str()) && r.stderr.contains(fix.as_str()),
                "{cause}: {r:?}"
            );
            assert!(!r.all().contains(secret), "no password shown: {r:?}");
            assert_eq!(columns(&pair.p).await, ["id", "a", "c"]);
            assert_eq!(recorded(&pair.p).await, 0);
        }
    }

    // A reviewed plan, written without the subscriber (it warns), is checked when it runs.
    let r = sluice(dir.path(), &pu, &["plan", "--out", "p.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("every subscriber needs column d"),
        "{r:?}"
    );
    let su = at(sport, DB);
    for dry in [&["--dry-run"][..], &[], &[]] {
        let r = run(
            dir.path(),
            &pu,
            &with(&["up", "--plan", "p.json", "--subscriber-url", &su], dry),
        );
        assert_eq!(r.code, 2, "{dry:?}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "would add column public.t.d on this publisher (publication pub), and subscriber 127.0.0.1:{sport}/{DB} (subscription sub) has no column d"
            )),
            "{r:?}"
        );
        assert!(!r.all().contains(secret), "{r:?}");
        assert_eq!(columns(&pair.p).await, ["id", "a", "c"]);
    }
    // The subscriber first: the same plan runs.
    assert_eq!(
        sluice(dir.path(), &pair.subscriber.url(DB), &["up"]).code,
        0
    );
    let r = run(
        dir.path(),
        &pu,
        &with(&["up", "--plan", "p.json", "--subscriber-url", &su], &[]),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(columns(&pair.p).await, ["id", "a", "c", "d"]);
    pair.p
        .batch_execute("INSERT INTO t (id, d) VALUES (1001, 5)")
        .await
        .unwrap();
    arrives(&pair.s, 1001).await;

    // A table published with a column list: a column added to it is not sent, so there is
    // nothing to say or check, and its rows go on arriving.
    for c in [&pair.p, &pair.s] {
        c.batch_execute("CREATE TABLE u (id int PRIMARY KEY, x int)")
            .await
            .unwrap();
    }
    pair.p
        .batch_execute("ALTER PUBLICATION pub ADD TABLE u (id, x)")
        .await
        .unwrap();
    pair.s
        .batch_execute("ALTER SUBSCRIPTION sub REFRESH PUBLICATION")
        .await
        .unwrap();
    std::fs::write(
        dir.path().join("migrations/2_add_u_y.sql"),
        "-- sluice:up\nALTER TABLE u ADD COLUMN y int;\n",
    )
    .unwrap();
    let plan = sluice(dir.path(), &pu, &["plan"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(!plan.stdout.contains("logical replication"), "{plan:?}");
    let r = run(
        dir.path(),
        &pu,
        &with(&["up", "--subscriber-url", &su], &[]),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.all().contains("warning"), "{r:?}");
    pair.p
        .batch_execute("INSERT INTO u VALUES (1, 2, 3)")
        .await
        .unwrap();
    common::eventually(30, "the row of u reaches the subscriber", || async {
        pair.s
            .query_opt("SELECT 1 FROM u WHERE id = 1 AND x = 2", &[])
            .await
            .unwrap()
            .is_some()
    })
    .await;
    other.batch_execute("DROP SUBSCRIPTION sub2").await.unwrap();
    // Without its slot: `sub` is the app subscription's slot, not this one's to drop.
    third
        .batch_execute("ALTER SUBSCRIPTION sub3 SET (slot_name = NONE)")
        .await
        .unwrap();
    third.batch_execute("DROP SUBSCRIPTION sub3").await.unwrap();
    pair.s.batch_execute("DROP SUBSCRIPTION sub").await.unwrap();
}

/// The type of `t.a` on `c`.
async fn type_of_a(c: &tokio_postgres::Client) -> String {
    c.query_one(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'a'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// A type change on a publisher. Staged, it adds a helper column the subscriber lacks: refused
/// with the subscriber named (exit 2, twice, nothing changed), said without. As written, the
/// subscriber's other type is said, not refused, because the server takes values through their
/// text form — measured here: an `integer` subscriber takes the publisher's `bigint` values until
/// one is out of its range, then stops applying until its column is widened, and catches up then.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_type_change_on_a_publisher_is_checked_against_its_subscribers() {
    let Some(pair) = Pair::start().await else {
        return;
    };
    let (pu, su) = (pair.publisher.url(DB), pair.subscriber.url(DB));
    let name = format!("127.0.0.1:{}/{DB}", pair.subscriber.port);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/1_widen_a.sql"),
        "-- sluice:up\nALTER TABLE t ALTER COLUMN a TYPE bigint;\n",
    )
    .unwrap();
    for _ in 0..2 {
        let r = sluice(dir.path(), &pu, &["up", "--subscriber-url", &su]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.stderr.contains(&format!(
                "migration 1_widen_a would stage the type change of public.t.a on this publisher with helper column a_sluice_new, which publication pub sends and subscriber {name} (subscription sub) does not have"
            )) && r.stderr.contains("change the column on the subscriber first"),
            "{r:?}"
        );
        assert_eq!(columns(&pair.p).await, ["id", "a", "c"]);
        assert_eq!(type_of_a(&pair.p).await, "integer");
        assert_eq!(recorded(&pair.p).await, 0);
    }
    let plan = sluice(dir.path(), &pu, &["plan"]);
    assert!(
        plan.stdout
            .contains("the staged type change of column a (migration 1_widen_a) adds helper column a_sluice_new")
            && plan.stdout.contains("column a becomes BIGINT here"),
        "{plan:?}"
    );
    // As written (a small table): the subscriber's integer is said.
    let r = sluice_below(dir.path(), &pu, &["up", "--subscriber-url", &su], "100000");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "public.t.a becomes BIGINT on this publisher (migration 1_widen_a) while subscriber {name} (subscription sub) has it as integer"
        )),
        "{r:?}"
    );
    assert_eq!(type_of_a(&pair.p).await, "bigint");
    // What the server does: values that fit arrive; the first that does not stops the apply.
    pair.p
        .batch_execute("INSERT INTO t (id, a) VALUES (2001, 5)")
        .await
        .unwrap();
    arrives(&pair.s, 2001).await;
    pair.p
        .batch_execute("INSERT INTO t (id, a) VALUES (2002, 3000000000)")
        .await
        .unwrap();
    pair.p
        .batch_execute("INSERT INTO t (id, a) VALUES (2003, 1)")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n: i64 = pair
        .s
        .query_one("SELECT count(*) FROM t WHERE id > 2001", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the apply worker stopped at 3000000000");
    pair.s
        .batch_execute("ALTER TABLE t ALTER COLUMN a TYPE bigint")
        .await
        .unwrap();
    arrives(&pair.s, 2003).await;
    let a: Option<i64> = pair
        .s
        .query_one("SELECT a FROM t WHERE id = 2002", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(a, Some(3_000_000_000));
    pair.s.batch_execute("DROP SUBSCRIPTION sub").await.unwrap();
}

/// Runs `sluice fleet <args> --json` in `dir`, with `env` and no subscriber from the environment.
fn fleet(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.arg("fleet")
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("SLUICE_SUBSCRIBER_URLS")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap().into()
}

/// (target, outcome, exit code, detail) of each target in a fleet's JSON summary.
fn targets(r: &Run) -> Vec<(String, String, i64, String)> {
    common::fleet_targets(&common::fleet_json(r))
        .into_iter()
        .map(|t| {
            let detail = t.detail.expect("every target has a detail");
            (t.target, t.outcome, t.exit_code, detail)
        })
        .collect()
}

/// Issue 15, fleets: two publisher tenants (databases ta and tb of one cluster), each with its own
/// subscriber (ta_sub, tb_sub on another), named per target in the targets file — ta's by its
/// group's `subscriber_url` template, tb's in `[subscribers]`. A migration adds a column to the
/// published table; only ta_sub has it already. `fleet up` runs ta (checked against ta_sub alone:
/// given tb_sub too it would be refused, as tb_sub does not subscribe to ta) and refuses tb as
/// `sluice up` would (exit 2 naming tb_sub); a rerun gives the same refusal and changes nothing.
/// Subscribers named for every target as well (after `--`, in the variable or in sluice.toml) are
/// refused before anything runs. Once tb_sub has the column, the rerun runs tb; no password shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_checks_each_publisher_against_its_own_subscribers() {
    let opts = "-c wal_level=logical -c max_wal_senders=6 -c max_replication_slots=6";
    let (Some(publisher), Some(subscriber)) =
        (PrivatePg::start_with(opts), PrivatePg::start_with(opts))
    else {
        eprintln!("skipped: no PostgreSQL 15 server binaries");
        return;
    };
    let table = "CREATE TABLE t (id int PRIMARY KEY, a int)";
    let (pc, sc) = (
        client(&publisher.url("postgres")).await,
        client(&subscriber.url("postgres")).await,
    );
    let mut pubs = Vec::new();
    let mut subs = Vec::new();
    for db in ["ta", "tb"] {
        pc.batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        sc.batch_execute(&format!("CREATE DATABASE {db}_sub"))
            .await
            .unwrap();
        let p = client(&publisher.url(db)).await;
        p.batch_execute(&format!(
            "{table}; INSERT INTO t SELECT g, g FROM generate_series(1, 100) g; CREATE PUBLICATION pub FOR TABLE t;"
        ))
        .await
        .unwrap();
        let s = client(&subscriber.url(&format!("{db}_sub"))).await;
        s.batch_execute(table).await.unwrap();
        s.batch_execute(&format!(
            "CREATE SUBSCRIPTION sub_{db} CONNECTION 'host=127.0.0.1 port={} dbname={db} user=postgres' PUBLICATION pub",
            publisher.port
        ))
        .await
        .unwrap();
        arrives(&s, 100).await;
        pubs.push(p);
        subs.push(s);
    }
    // ta's subscriber was migrated first; tb's was not.
    subs[0]
        .batch_execute("ALTER TABLE t ADD COLUMN d int")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/1_add_d.sql"),
        "-- sluice:up\nALTER TABLE t ADD COLUMN d int;\n",
    )
    .unwrap();
    // Passwords in every URL: trust authentication ignores them, no output may show them.
    let (pp, sp) = (publisher.port, subscriber.port);
    std::fs::write(
        dir.path().join("fleet.toml"),
        format!(
            "url = \"postgres://postgres:hunter2@127.0.0.1:{pp}/{{target}}\"\n\n\
             [[group]]\nname = \"canary\"\ntargets = [\"ta\"]\n\
             subscriber_url = \"postgres://postgres:hunter2@127.0.0.1:{sp}/{{target}}_sub\"\n\n\
             [[group]]\nname = \"rest\"\ntargets = [\"tb\"]\n\n\
             [subscribers]\ntb = \"postgres://postgres:hunter2@127.0.0.1:{sp}/tb_sub\"\n"
        ),
    )
    .unwrap();
    let refusal = format!(
        "would add column public.t.d on this publisher (publication pub), and subscriber 127.0.0.1:{sp}/tb_sub (subscription sub_tb) has no column d in public.t"
    );
    for (i, earlier) in ["ok", "done-earlier"].into_iter().enumerate() {
        let r = fleet(dir.path(), &["up", "--json"], &[]);
        assert_eq!(r.code, 2, "run {i}: {r:?}");
        let got = targets(&r);
        assert_eq!(
            (got[0].0.as_str(), got[0].1.as_str()),
            ("ta", earlier),
            "run {i}: {r:?}"
        );
        assert_eq!(
            (got[1].0.as_str(), got[1].1.as_str(), got[1].2),
            ("tb", "failed", 2),
            "run {i}: {r:?}"
        );
        assert!(got[1].3.contains(&refusal), "run {i}: {got:?}");
        assert!(
            r.stderr.contains(&format!(
                "migrate the subscriber first (`sluice up` on 127.0.0.1:{sp}/tb_sub)"
            )),
            "run {i}: {r:?}"
        );
        assert!(!r.all().contains("hunter2"), "a password was shown: {r:?}");
        // ta's subscriber was checked, not only said to matter.
        assert!(!r.all().contains("is published"), "run {i}: {r:?}");
        assert_eq!(columns(&pubs[0]).await, ["id", "a", "d"], "run {i}");
        assert_eq!(
            columns(&pubs[1]).await,
            ["id", "a"],
            "run {i}: nothing changed"
        );
        assert_eq!(recorded(&pubs[1]).await, 0, "run {i}: nothing recorded");
    }
    // Subscribers for every target besides: refused before anything runs, the source named.
    std::fs::write(
        dir.path().join("sub.toml"),
        format!("subscriber_urls = [\"postgres://postgres:hunter2@127.0.0.1:{sp}/tb_sub\"]\n"),
    )
    .unwrap();
    let tb_sub = format!("postgres://postgres:hunter2@127.0.0.1:{sp}/tb_sub");
    for (args, env, source) in [
        (
            vec!["up", "--", "--subscriber-url", tb_sub.as_str()],
            vec![],
            "`--subscriber-url` after `--`",
        ),
        (
            vec!["plan"],
            vec![("SLUICE_SUBSCRIBER_URLS", tb_sub.as_str())],
            "the SLUICE_SUBSCRIBER_URLS variable",
        ),
        (
            vec!["--config", "sub.toml", "up"],
            vec![],
            "`subscriber_urls` in sluice.toml",
        ),
    ] {
        let r = fleet(dir.path(), &args, &env);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "subscribers are given both for every target ({source}) and per target in fleet.toml"
            )) && r.stderr.contains("drop the other"),
            "{args:?}: {r:?}"
        );
        assert!(!r.all().contains("hunter2"), "{r:?}");
        assert!(!r.stderr.contains("[ta]"), "no target ran: {r:?}");
        assert_eq!(columns(&pubs[1]).await, ["id", "a"]);
    }
    // Replication still flows to both; then tb's subscriber first, and the fleet completes.
    for (k, p) in pubs.iter().enumerate() {
        p.batch_execute("INSERT INTO t (id, a) VALUES (101, 1)")
            .await
            .unwrap();
        arrives(&subs[k], 101).await;
    }
    subs[1]
        .batch_execute("ALTER TABLE t ADD COLUMN d int")
        .await
        .unwrap();
    let r = fleet(dir.path(), &["up", "--json"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let got = targets(&r);
    assert_eq!(
        (got[1].0.as_str(), got[1].1.as_str()),
        ("tb", "ok"),
        "{r:?}"
    );
    assert!(
        !r.all().contains("is published"),
        "checked, not said: {r:?}"
    );
    pubs[1]
        .batch_execute("INSERT INTO t (id, a, d) VALUES (102, 2, 22)")
        .await
        .unwrap();
    arrives(&subs[1], 102).await;
    for (k, s) in subs.iter().enumerate() {
        s.batch_execute(&format!("DROP SUBSCRIPTION sub_{}", ["ta", "tb"][k]))
            .await
            .unwrap();
    }
}
