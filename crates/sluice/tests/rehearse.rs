//! `sluice rehearse` end to end against the real servers: a blocking migration fails the verdict
//! with a stall on its timeline, a trivial one passes, the workload really runs N connections, and
//! the reports (JSON, HTML, --compare) carry what they promise.

mod common;

use common::{wait_bounded, Project, Run};
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;

const QUICK: &[&str] = &[
    "rehearse",
    "--baseline",
    "1s",
    "--cooldown",
    "1s",
    "--clients",
    "4",
    "--rate",
    "400",
    "--json",
];

async fn pg_project() -> Project {
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute(
            "CREATE TABLE accounts (id bigserial PRIMARY KEY, owner text NOT NULL, balance int NOT NULL DEFAULT 0);
             INSERT INTO accounts (owner, balance) SELECT 'o' || g, g % 1000 FROM generate_series(1, 3000) g;
             ANALYZE;",
        )
        .await
        .unwrap();
    p
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

fn rehearse(p: &Project, extra: &[&str]) -> Run {
    let mut args = QUICK.to_vec();
    args.extend_from_slice(extra);
    let child = p.spawn(&args);
    wait_bounded(child, 180, "sluice rehearse")
}

#[tokio::test]
async fn postgres_blocking_migration_fails_with_a_stall_and_a_trivial_one_passes() {
    let p = pg_project().await;
    p.write(
        "20260101000000_block.sql",
        "-- sluice:up\n-- sluice:ignore all the rehearsal must see this block\nLOCK TABLE accounts IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(2);\n-- sluice:down\n",
    );
    let r = rehearse(&p, &[]);
    assert_eq!(r.code, 8, "{r:?}");
    let j = json(&r);
    let run = &j["runs"][0];
    assert_eq!(run["verdict"]["pass"], false);
    let stall = run["during"]["longest_stall_ms"].as_f64().unwrap();
    assert!(stall >= 1500.0, "stall {stall} ms: {r:?}");
    // The stall sits on the migration's timeline, inside the pg_sleep step.
    let steps = run["migration"]["steps"].as_array().unwrap();
    let sleep = steps
        .iter()
        .find(|s| s["label"].as_str().unwrap().contains("pg_sleep"))
        .expect("the pg_sleep step is on the timeline");
    let at = run["during"]["stall_at_s"].as_f64().unwrap();
    assert!(
        at >= sleep["start_s"].as_f64().unwrap() - 0.05 && at < sleep["end_s"].as_f64().unwrap(),
        "{run:#}"
    );
    assert!(run["verdict"]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("p99"));
    // The scratch database was dropped.
    let scratch = run["clone"]["scratch_database"]
        .as_str()
        .unwrap()
        .to_string();
    let left: i64 =
        p.db.pg()
            .await
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&scratch],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(left, 0);

    // The source has applied one migration; only the pending one runs on the clone (whose
    // history is copied), on a scratch database made through --scratch-url.
    std::fs::remove_file(p.migration_path("20260101000000_block.sql")).unwrap();
    p.write(
        "20260101000001_kind.sql",
        "-- sluice:up\nALTER TABLE accounts ADD COLUMN kind text;\n",
    );
    let up = p.run(&["up"]);
    assert_eq!(up.code, 0, "{up:?}");
    p.write(
        "20260101000002_note.sql",
        "-- sluice:up\nALTER TABLE accounts ADD COLUMN note text;\n-- sluice:down\nALTER TABLE accounts DROP COLUMN note;\n",
    );
    let admin = sluice_testkit::postgres_admin_url();
    // A fixed p99 limit far below the blocking case's 2 s, so a loaded CI machine cannot flake it.
    let r = rehearse(&p, &["--scratch-url", &admin, "--max-p99-ms", "500"]);
    assert_eq!(r.code, 0, "{r:?}");
    let run = &json(&r)["runs"][0];
    assert_eq!(
        run["migration"]["applied"],
        serde_json::json!([20260101000002i64])
    );
    assert_eq!(run["verdict"]["pass"], true, "{run:#}");
    assert_eq!(run["during"]["errors"], 0);
    assert!(run["baseline"]["transactions"].as_u64().unwrap() > 200);
    assert!(run["client_cpu_seconds"].as_f64().unwrap() > 0.0);
}

/// Counts the rehearsal's client sessions on the server while it runs.
async fn count_clients(p: &Project, pid: u32) -> i64 {
    let pattern = format!("sluice_rehearse_%_{pid}_%");
    match p.db.server {
        Server::Postgres => p
            .db
            .pg()
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sluice-rehearse-client' AND datname LIKE $1",
                &[&pattern],
            )
            .await
            .unwrap()
            .get(0),
        Server::MariaDb => {
            let mut c = p.db.my().await;
            // The workload's sessions are the ones on the scratch database besides the
            // migration's own two (work and run lock).
            let n: Option<i64> = c
                .exec_first(
                    "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB LIKE ?",
                    (pattern,),
                )
                .await
                .unwrap();
            c.disconnect().await.ok();
            n.unwrap()
        }
    }
}

async fn workload_is_concurrent(p: &Project) {
    let child = p.spawn(&[
        "rehearse",
        "--baseline",
        "4s",
        "--cooldown",
        "0s",
        "--clients",
        "6",
        "--rate",
        "300",
        "--max-p99-ms",
        "500",
        "--json",
    ]);
    let pid = child.id();
    let mut most = 0;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        most = most.max(count_clients(p, pid).await);
    }
    let r = wait_bounded(child, 120, "sluice rehearse");
    assert_eq!(r.code, 0, "{r:?}");
    // 6 clients (MariaDB: plus the engine's work and lock sessions once the migration starts).
    assert!(most >= 6, "saw at most {most} sessions: {r:?}");
    if p.db.server == Server::Postgres {
        assert_eq!(most, 6);
    }
    let run = &json(&r)["runs"][0];
    let rate = run["achieved_rate"].as_f64().unwrap();
    assert!((250.0..=350.0).contains(&rate), "{rate} tx/s");
}

#[tokio::test]
async fn postgres_workload_runs_on_n_connections() {
    let p = pg_project().await;
    p.write(
        "20260101000000_note.sql",
        "-- sluice:up\nALTER TABLE accounts ADD COLUMN note text;\n",
    );
    workload_is_concurrent(&p).await;
}

async fn my_project() -> Project {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop("CREATE TABLE accounts (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, owner varchar(40) NOT NULL, balance int NOT NULL DEFAULT 0)").await.unwrap();
    c.query_drop("INSERT INTO accounts (owner, balance) SELECT CONCAT('o', seq), seq % 1000 FROM seq_1_to_3000").await.unwrap();
    c.disconnect().await.ok();
    p
}

#[tokio::test]
async fn mariadb_workload_runs_on_n_connections_and_a_trivial_migration_passes() {
    let p = my_project().await;
    p.write(
        "20260101000000_note.sql",
        "-- sluice:up\nALTER TABLE accounts ADD COLUMN note varchar(20);\n",
    );
    workload_is_concurrent(&p).await;
}

#[tokio::test]
async fn mariadb_blocking_migration_fails() {
    let p = my_project().await;
    // Updates row 1, then sleeps two seconds on row 2 while holding row 1's lock; the script
    // workload updates row 1 (and reads a random row), so every client waits behind it.
    p.write(
        "20260101000000_block.sql",
        "-- sluice:up\n-- sluice:ignore all the rehearsal must see this block\nUPDATE accounts SET balance = balance + 1 WHERE id = 1 OR (id = 2 AND SLEEP(2) = 0);\n",
    );
    let script = p.path().join("hot.sql");
    std::fs::write(
        &script,
        "\\set id random(1, 3000)\nSELECT balance FROM accounts WHERE id = :id;\nUPDATE accounts SET balance = balance + 1 WHERE id = 1;\n",
    )
    .unwrap();
    let r = rehearse(&p, &["--workload", script.to_str().unwrap()]);
    assert_eq!(r.code, 8, "{r:?}");
    let run = &json(&r)["runs"][0];
    assert!(
        run["during"]["longest_stall_ms"].as_f64().unwrap() >= 1500.0,
        "{run:#}"
    );
}

#[tokio::test]
async fn compare_as_written_writes_two_timelines_and_a_script_workload_runs() {
    let p = pg_project().await;
    p.write(
        "20260101000000_index.sql",
        "-- sluice:up\nCREATE INDEX accounts_owner ON accounts (owner);\n-- sluice:down\nDROP INDEX accounts_owner;\n",
    );
    let script = p.path().join("load.sql");
    std::fs::write(
        &script,
        "\\set id random(1, 3000)\nSELECT balance FROM accounts WHERE id = :id;\nUPDATE accounts SET balance = balance + 1 WHERE id = :id;\n",
    )
    .unwrap();
    let html = p.path().join("report.html");
    let r = rehearse(
        &p,
        &[
            "--compare",
            "as-written",
            "--workload",
            script.to_str().unwrap(),
            "--report",
            html.to_str().unwrap(),
        ],
    );
    assert!(r.code == 0 || r.code == 8, "{r:?}");
    let j = json(&r);
    let runs = j["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["label"], "as written");
    assert_eq!(runs[1]["label"], "sluice");
    let steps = |i: usize| -> String {
        runs[i]["migration"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["label"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    assert!(!steps(0).contains("CONCURRENTLY"), "{}", steps(0));
    assert!(steps(1).contains("CONCURRENTLY"), "{}", steps(1));
    for run in runs {
        assert_eq!(run["during"]["errors"], 0, "{run:#}");
        assert!(run["baseline"]["transactions"].as_u64().unwrap() > 200);
        assert!(run["workload"].as_str().unwrap().starts_with("script"));
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 2);
    assert!(page.contains("As written vs. sluice"));
    assert!(!page.contains("<script"), "self-contained, no scripts");
}

#[tokio::test]
async fn ctrl_c_drops_the_scratch_database() {
    let p = pg_project().await;
    p.write(
        "20260101000000_note.sql",
        "-- sluice:up\nALTER TABLE accounts ADD COLUMN note text;\n",
    );
    let child = p.spawn(&[
        "rehearse",
        "--baseline",
        "30s",
        "--clients",
        "2",
        "--rate",
        "100",
    ]);
    let pid = child.id();
    let pattern = format!("sluice_rehearse_%_{pid}_%");
    let admin = p.db.pg().await;
    // Wait until the workload runs on the scratch database, then interrupt.
    let mut running = false;
    for _ in 0..100 {
        if pg_clients(&admin, &pattern).await == 2 {
            running = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(running, "the workload never started");
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let r = wait_bounded(child, 30, "interrupted sluice rehearse");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("interrupted"), "{r:?}");
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE $1",
            &[&pattern],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the scratch database is gone");
}

async fn pg_clients(admin: &tokio_postgres::Client, pattern: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sluice-rehearse-client' AND datname LIKE $1",
            &[&pattern],
        )
        .await
        .unwrap()
        .get(0)
}
