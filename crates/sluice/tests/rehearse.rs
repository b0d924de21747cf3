//! `sluice rehearse` end to end against the real servers: a blocking migration fails the verdict
//! with a stall on its timeline, a trivial one passes, the workload really runs N connections, and
//! the reports (JSON, HTML, --compare) carry what they promise.

mod common;

use common::{wait_bounded, PrivatePg, Project, Run, PG_BIN};
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

/// Ctrl-C and SIGTERM alike stop the rehearsal, say which, and drop the scratch database.
#[tokio::test]
async fn a_signal_drops_the_scratch_database() {
    for (signal, says) in [
        ("INT", "× interrupted (Ctrl-C)"),
        ("TERM", "× terminated (SIGTERM)"),
    ] {
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
        // Wait until the workload runs on the scratch database, then signal.
        let mut running = false;
        for _ in 0..100 {
            if pg_clients(&admin, &pattern).await == 2 {
                running = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(running, "SIG{signal}: the workload never started");
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let r = wait_bounded(child, 30, "interrupted sluice rehearse");
        assert_eq!(r.code, 2, "SIG{signal}: {r:?}");
        assert!(r.stderr.contains(says), "SIG{signal}: {r:?}");
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname LIKE $1",
                &[&pattern],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "SIG{signal}: the scratch database is gone");
    }
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

#[tokio::test]
async fn top_statements_workload_needs_pg_stat_statements() {
    let p = pg_project().await;
    p.write(
        "20260101000000_note.sql",
        "-- sluice:up\nALTER TABLE accounts ADD COLUMN note text;\n",
    );
    let check = |r: &Run, what: &str| {
        assert_eq!(r.code, 2, "{r:?}");
        for s in [
            what,
            "shared_preload_libraries",
            "CREATE EXTENSION pg_stat_statements",
            "--workload script.sql",
        ] {
            assert!(r.stderr.contains(s), "no `{s}` in: {r:?}");
        }
        // It fails before cloning: no scratch database was made.
        assert!(!r.stderr.contains("cloning"), "{r:?}");
    };
    // The extension is not created in the source database.
    let r = rehearse(&p, &["--workload", "pg_stat_statements"]);
    check(&r, "no pg_stat_statements view");
    // Created but not preloaded (the shared test server does not preload it): the view exists
    // and reading it fails.
    // (An untrusted extension: only an administrator creates it.)
    p.db.pg_su()
        .await
        .batch_execute("CREATE EXTENSION pg_stat_statements")
        .await
        .unwrap();
    let r = rehearse(&p, &["--workload", "pg_stat_statements"]);
    check(&r, "cannot be read");
}

#[tokio::test]
async fn mariadb_top_statements_workload_is_a_usage_error() {
    let p = my_project().await;
    let r = rehearse(&p, &["--workload", "pg_stat_statements"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("needs a PostgreSQL source"), "{r:?}");
}

#[tokio::test]
async fn top_statements_end_to_end_on_a_private_server_that_preloads_the_extension() {
    let started = std::time::Instant::now();
    let Some(pg) = PrivatePg::start() else {
        eprintln!(
            "skipped: no PostgreSQL 15 binaries in {PG_BIN} (or root without a postgres user)"
        );
        return;
    };
    let connect = |url: String| async move {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c
    };
    connect(pg.url("postgres"))
        .await
        .batch_execute("CREATE DATABASE app")
        .await
        .unwrap();
    let app = connect(pg.url("app")).await;
    app.batch_execute(
        "CREATE EXTENSION pg_stat_statements;
         CREATE TABLE accounts (id bigserial PRIMARY KEY, owner text NOT NULL, balance int NOT NULL DEFAULT 0);
         INSERT INTO accounts (owner, balance) SELECT 'o' || g, g % 1000 FROM generate_series(1, 3000) g;
         ANALYZE;
         SELECT pg_stat_statements_reset();",
    )
    .await
    .unwrap();
    // The application: point reads, updates by key, lookups by owner (constants in the text,
    // which pg_stat_statements normalises), and inserts.
    for i in 1..=200i64 {
        app.query("SELECT owner, balance FROM accounts WHERE id = $1", &[&i])
            .await
            .unwrap();
    }
    for i in 1..=50i64 {
        app.execute(
            "UPDATE accounts SET balance = $1 WHERE id = $2",
            &[&(i as i32), &i],
        )
        .await
        .unwrap();
    }
    for i in 1..=30 {
        app.batch_execute(&format!(
            "SELECT id FROM accounts WHERE owner = 'o{i}' LIMIT 5"
        ))
        .await
        .unwrap();
    }
    for i in 1..=20 {
        app.execute(
            "INSERT INTO accounts (owner) VALUES ($1)",
            &[&format!("n{i}")],
        )
        .await
        .unwrap();
    }

    let p = Project::new(Server::Postgres).await;
    p.write(
        "20260101000000_note.sql",
        "-- sluice:up\nALTER TABLE accounts ADD COLUMN note text;\n",
    );
    let mut args = QUICK.to_vec();
    args.extend_from_slice(&["--workload", "pg_stat_statements", "--max-p99-ms", "500"]);
    let rehearse = || {
        let child = p
            .command(&args)
            .env("DATABASE_URL", pg.url("app"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_bounded(child, 120, "sluice rehearse --workload pg_stat_statements")
    };
    let r = rehearse();
    assert_eq!(r.code, 0, "{r:?}");
    let run = &json(&r)["runs"][0];
    assert_eq!(
        run["workload"], "top 3 statement(s) of pg_stat_statements (1 skipped)",
        "{run:#}"
    );
    // Sluice's own queries on the source (its check, the clone's counts and catalog reads) are
    // not taken for the application's by the next rehearsal.
    let again = rehearse();
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        json(&again)["runs"][0]["workload"],
        run["workload"],
        "{again:?}"
    );
    let replayed = run["replayed_statements"].as_array().unwrap();
    assert_eq!(
        replayed[0]["query"],
        "SELECT owner, balance FROM accounts WHERE id = $1"
    );
    assert_eq!(replayed[0]["calls"], 200);
    assert!(replayed
        .iter()
        .any(|s| s["query"] == "SELECT id FROM accounts WHERE owner = $1 LIMIT $2"));
    let skipped = run["skipped_statements"].as_array().unwrap();
    assert!(skipped[0]["query"]
        .as_str()
        .unwrap()
        .starts_with("INSERT INTO accounts"));
    assert_eq!(run["during"]["errors"], 0, "{run:#}");
    assert_eq!(run["baseline"]["errors"], 0, "{run:#}");
    assert!(run["baseline"]["transactions"].as_u64().unwrap() > 200);
    eprintln!("end to end in {:.1} s", started.elapsed().as_secs_f64());
}

/// A rehearsal bounds a step that holds ACCESS EXCLUSIVE on an existing table by
/// `--exclusive-timeout`, as `up` does: the step is cancelled after the bound, the migration fails
/// on the clone with `up`'s message, and without the bound the same rehearsal runs it to the end.
/// (The timing wrapper once dropped the statement timeout, so rehearsals ran unbounded.)
#[tokio::test]
async fn a_rehearsal_bounds_an_access_exclusive_step_by_the_exclusive_timeout() {
    let p = pg_project().await;
    p.db.pg()
        .await
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL);
             INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;
             ANALYZE t;",
        )
        .await
        .unwrap();
    // The function lives in the migration, so the clone has it; 100 rows x 20 ms: ~2 s unbounded.
    p.write(
        "20260101000000_generated.sql",
        "-- sluice:up\n\
         CREATE FUNCTION slow(int) RETURNS int IMMUTABLE LANGUAGE sql\n\
             AS 'SELECT $1 + 0 * length(pg_sleep(0.02)::text)';\n\
         ALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (slow(a)) STORED;\n\
         -- sluice:down\n",
    );
    let step = |run: &serde_json::Value| -> (f64, Option<String>) {
        let s = run["migration"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["kind"] == "statement" && s["label"].as_str().unwrap().contains("GENERATED")
            })
            .unwrap_or_else(|| panic!("the ALTER is on the timeline: {run:#}"))
            .clone();
        (
            s["end_s"].as_f64().unwrap() - s["start_s"].as_f64().unwrap(),
            s["error"].as_str().map(str::to_string),
        )
    };

    let r = rehearse(&p, &["--exclusive-timeout", "300"]);
    let j = json(&r);
    let run = &j["runs"][0];
    let error = run["migration"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("holds ACCESS EXCLUSIVE (every query on the table waits while it runs) and was expected to be instant, but it ran longer than 300 ms"),
        "{r:?}"
    );
    assert_eq!(
        run["migration"]["applied"],
        serde_json::json!([]),
        "{run:#}"
    );
    let (secs, code) = step(run);
    // 57014: query_canceled, the statement timeout `up` sets for the step.
    assert_eq!(code.as_deref(), Some("57014"), "{run:#}");
    assert!(secs < 1.5, "cancelled after {secs} s: {run:#}");

    // Unbounded, the same step runs to the end on the clone.
    let r = rehearse(&p, &["--exclusive-timeout", "0"]);
    let run = &json(&r)["runs"][0];
    assert!(run["migration"]["error"].is_null(), "{run:#}");
    assert_eq!(
        run["migration"]["applied"],
        serde_json::json!([20260101000000i64]),
        "{run:#}"
    );
    let (secs, code) = step(run);
    assert_eq!(code, None, "{run:#}");
    assert!(secs >= 1.5, "ran {secs} s: {run:#}");
}
