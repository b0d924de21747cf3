//! Progress of long work, as `sluice up` logs it when stderr is not a terminal: index builds on
//! PostgreSQL (polled from `pg_stat_progress_create_index`), the online copy and its catch-up on
//! MariaDB. `SLUICE_PROGRESS_INTERVAL_MS=50` makes small tables take several intervals.

mod common;

use common::{eventually, wait_bounded, Project};
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;

/// A progress line, `sluice: <task>: [<phase>, ]<done> of [~]<total> <unit> (<pct>%)...`, read back.
#[derive(Debug)]
struct Line {
    task: String,
    phase: String,
    done: u64,
    total: u64,
    unit: String,
    rest: String,
}

/// The progress lines of `task_prefix` in `stderr`.
fn lines(stderr: &str, task_prefix: &str) -> Vec<Line> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("sluice: "))
        .filter(|l| l.starts_with(task_prefix))
        .filter_map(|l| {
            let (task, body) = l.split_once(": ")?;
            // The counts are the first part that reads `N of [~]M unit (P%)`.
            let parts: Vec<&str> = body.split(", ").collect();
            let at = parts.iter().position(|p| {
                let w: Vec<&str> = p.split(' ').collect();
                w.len() >= 5 && w[1] == "of" && w[0].parse::<u64>().is_ok()
            })?;
            let w: Vec<&str> = parts[at].split(' ').collect();
            Some(Line {
                task: task.to_string(),
                phase: parts[..at].join(", "),
                done: w[0].parse().ok()?,
                total: w[2].trim_start_matches('~').parse().ok()?,
                unit: w[3..w.len() - 1].join(" "),
                rest: parts[at + 1..].join(", "),
            })
        })
        .collect()
}

async fn pg_count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn index_builds_log_phase_counts_and_time_left() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (id bigint NOT NULL, k bigint NOT NULL, s text NOT NULL);
         INSERT INTO t SELECT g, g, md5(g::text) FROM generate_series(1, 200000) g; ANALYZE t",
    )
    .await
    .unwrap();
    // As written, a plain concurrent build; staged by sluice, the unique constraint and the
    // primary key (each a unique index built CONCURRENTLY, then attached).
    let cases = [
        (
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_s ON t (s);",
            "t_s",
        ),
        ("ALTER TABLE t ADD CONSTRAINT t_k UNIQUE (k);", "t_k"),
        (
            "ALTER TABLE t ADD CONSTRAINT t_pk PRIMARY KEY (id);",
            "t_pk",
        ),
    ];
    let mut saw_building = 0;
    for (i, (sql, index)) in cases.iter().enumerate() {
        p.write(
            &format!("{}_m.sql", i + 1),
            &format!("-- sluice:up\n{sql}\n"),
        );
        // A build on a fast machine can end before the first 50 ms poll. A session holding an
        // old snapshot keeps every build in its last phase ("waiting for old snapshots", counted
        // in transactions) for a while, so each build is seen at least there: from a thread of
        // its own, since `up` blocks this one.
        let url = p.db.url.clone();
        let (taken, snapshot) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (h, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                h.batch_execute(
                    "SET statement_timeout = '30s'; BEGIN ISOLATION LEVEL REPEATABLE READ; \
                     SELECT count(*) FROM pg_class",
                )
                .await
                .unwrap();
                taken.send(()).unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                h.batch_execute("COMMIT").await.unwrap();
            });
        });
        // The snapshot exists before the build starts, so the build waits for it.
        snapshot
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap();
        let r = {
            let mut cmd = p.command(&["up"]);
            cmd.env("SLUICE_PROGRESS_INTERVAL_MS", "50");
            common::Run::from(cmd.output().unwrap())
        };
        holder.join().unwrap();
        assert_eq!(r.code, 0, "{sql}: {r:?}");
        let task = format!("CREATE INDEX CONCURRENTLY {index} on t");
        let got = lines(&r.stderr, &task);
        assert!(
            !got.is_empty(),
            "{sql}: no progress lines for {task}: {r:?}"
        );
        for l in &got {
            assert_eq!(l.task, task, "{l:?}");
            assert!(!l.phase.is_empty(), "every line names the phase: {l:?}");
            assert!(l.done <= l.total, "{l:?}");
            assert!(
                ["blocks", "tuples", "transactions"].contains(&l.unit.as_str()),
                "{l:?}"
            );
        }
        // Every build reports at least one of its phases with the server's counts. Which
        // phases a 50 ms poll catches depends on the machine's speed, so "building index"
        // is asserted over all builds below, not per build.
        assert!(got.iter().any(|l| l.total > 0), "{sql}: {got:?}");
        if got
            .iter()
            .any(|l| l.phase.starts_with("building index") && l.total > 0)
        {
            saw_building += 1;
        }
        // Where the count moved between two polls: the rate and the time left.
        for l in got.iter().filter(|l| l.rest.contains("/s")) {
            assert!(
                l.rest.contains(&format!(" {}/s", l.unit)),
                "{sql}: the rate counts the phase's unit: {l:?}"
            );
            if l.done < l.total {
                assert!(l.rest.contains(" left"), "{sql}: {l:?}");
            }
        }
        let valid = pg_count(
            &c,
            &format!("SELECT count(*) FROM pg_index WHERE indexrelid = '{index}'::regclass AND indisvalid AND indisready"),
        )
        .await;
        assert_eq!(valid, 1, "{sql}: the index is built and valid");
    }
    assert!(
        saw_building > 0,
        "no build was caught in its \"building index\" phase"
    );
    assert_eq!(
        pg_count(&c, "SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass AND conname IN ('t_k', 't_pk')").await,
        2
    );
}

/// The backfill reports through the same meter: rows of the planner's estimate, rate, time left.
#[tokio::test]
async fn the_backfill_logs_rows_of_the_estimate() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0);
         INSERT INTO t (id) SELECT g FROM generate_series(1, 100000) g; ANALYZE t",
    )
    .await
    .unwrap();
    let r = {
        let mut cmd = p.command(&[
            "backfill",
            "--table",
            "t",
            "--set",
            "n = 1",
            "--pace",
            "speed",
            "--target-batch-ms",
            "10",
        ]);
        cmd.env("SLUICE_PROGRESS_INTERVAL_MS", "50");
        common::Run::from(cmd.output().unwrap())
    };
    assert_eq!(r.code, 0, "{r:?}");
    let got = lines(&r.stderr, "backfill public.t");
    assert!(!got.is_empty(), "{r:?}");
    for l in &got {
        assert_eq!((l.unit.as_str(), l.total), ("rows", 100_000), "{l:?}");
        assert!(l.rest.contains("batch ") && l.done <= l.total, "{l:?}");
    }
    assert!(
        got.iter().any(|l| l.rest.contains(" rows/s, about ")),
        "{got:?}"
    );
    assert_eq!(pg_count(&c, "SELECT count(*) FROM t WHERE n <> 1").await, 0);
}

/// On a terminal (a pseudo-terminal from `script`), the same readings draw a bar instead of lines.
#[tokio::test]
async fn on_a_terminal_a_bar_replaces_the_log_lines() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (id bigint PRIMARY KEY, s text NOT NULL);
         INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 200000) g; ANALYZE t",
    )
    .await
    .unwrap();
    p.write(
        "1_m.sql",
        "-- sluice:up\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_s ON t (s);\n",
    );
    let r: common::Run = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("'{}' up", env!("CARGO_BIN_EXE_sluice")),
            "/dev/null",
        ])
        .current_dir(p.path())
        .env("DATABASE_URL", &p.db.url)
        .env("SLUICE_AS_WRITTEN_BELOW_ROWS", "0")
        .env("SLUICE_PROGRESS_INTERVAL_MS", "50")
        .env_remove("SLUICE_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1) from util-linux runs the command on a pseudo-terminal")
        .into();
    assert_eq!(r.code, 0, "{r:?}");
    let screen = r.all();
    assert!(screen.contains("sluice: applied 1_m in "), "{r:?}");
    // The bar: task (phase) [====>   ] done/total unit (pct%).
    assert!(
        screen.contains("CREATE INDEX CONCURRENTLY t_s on t (building index: ")
            && screen.contains(" blocks (")
            && screen.contains("] "),
        "{r:?}"
    );
    assert!(
        !screen.contains("sluice: CREATE INDEX CONCURRENTLY t_s on t: "),
        "no log lines under a bar: {r:?}"
    );
}

/// The watch is a reader on the side: its session killed, or refused, the build goes on and the
/// migration succeeds.
#[tokio::test]
async fn a_killed_or_refused_progress_poll_never_fails_the_migration() {
    for refuse in [false, true] {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, s text); INSERT INTO t SELECT g, g::text FROM generate_series(1, 1000) g",
        )
        .await
        .unwrap();
        p.write(
            "1_i.sql",
            "-- sluice:up\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_s ON t (s);\n",
        );
        // An open writer: the build waits for it ("waiting for writers before build").
        let writer = p.db.pg().await;
        writer
            .batch_execute("BEGIN; UPDATE t SET s = s WHERE id = 1")
            .await
            .unwrap();
        let interval = if refuse { "1000" } else { "50" };
        let child = {
            let mut cmd = p.command(&["up"]);
            cmd.env("SLUICE_PROGRESS_INTERVAL_MS", interval)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        };
        eventually(30, "the build to wait for the writer", || async {
            pg_count(&c, "SELECT count(*) FROM pg_stat_progress_create_index WHERE datname = current_database() AND phase = 'waiting for writers before build'").await == 1
        })
        .await;
        // A poll that starts after this moment sees the build waiting (an earlier one may have
        // come before the build's progress row existed, and answered nothing).
        let waiting_since: String = c
            .query_one("SELECT clock_timestamp()::text", &[])
            .await
            .unwrap()
            .get(0);
        let poller = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = '{}'",
            sluice_postgres::index_progress::APPLICATION_NAME
        );
        if refuse {
            // Within the first interval: no new session may connect to the database (said from
            // another database: a session cannot refuse its own).
            let (admin, conn) = tokio_postgres::connect(
                &sluice_testkit::postgres_admin_url(),
                tokio_postgres::NoTls,
            )
            .await
            .unwrap();
            tokio::spawn(conn);
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS false",
                    p.db.name
                ))
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            assert_eq!(pg_count(&c, &poller).await, 0, "the poll was refused");
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS true",
                    p.db.name
                ))
                .await
                .unwrap();
        } else {
            // A poll of the waiting build has answered (the session idle after it)...
            let polled = format!(
                "{poller} AND state = 'idle' AND query LIKE '%pg_stat_progress_create_index%' AND query_start > '{waiting_since}'"
            );
            eventually(30, "a poll of the waiting build answered", || async {
                pg_count(&c, &polled).await == 1
            })
            .await;
            // ...and sluice has read that answer: its next poll started (the watch reads, reports,
            // sleeps, then polls again). On a starved machine the answer could otherwise still sit
            // unread when the build ends, and the watch is dropped with the build.
            let answered: String = c
                .query_one(
                    "SELECT query_start::text FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
                    &[&sluice_postgres::index_progress::APPLICATION_NAME],
                )
                .await
                .unwrap()
                .get(0);
            let next = format!("{poller} AND query_start > '{answered}'");
            eventually(30, "the next poll started", || async {
                pg_count(&c, &next).await == 1
            })
            .await;
            let pid: i32 = c
                .query_one(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
                    &[&sluice_postgres::index_progress::APPLICATION_NAME],
                )
                .await
                .unwrap()
                .get(0);
            // Killed between two polls or during one: the next poll fails.
            let killed: bool = c
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .unwrap()
                .get(0);
            assert!(killed);
        }
        writer.batch_execute("COMMIT").await.unwrap();
        let r = wait_bounded(child, 60, "sluice up");
        assert_eq!(r.code, 0, "refuse={refuse}: {r:?}");
        assert_eq!(p.states(), vec![(1, "applied".into())]);
        assert_eq!(
            pg_count(
                &c,
                "SELECT count(*) FROM pg_index WHERE indexrelid = 't_s'::regclass AND indisvalid"
            )
            .await,
            1
        );
        let got = lines(&r.stderr, "CREATE INDEX CONCURRENTLY t_s on t");
        if refuse {
            assert!(got.is_empty(), "no session, no lines: {r:?}");
        } else {
            // Before the kill, the wait was reported: the transactions the build waits for.
            assert!(
                got.iter()
                    .any(|l| l.phase == "waiting for writers before build"
                        && l.unit == "transactions"
                        && l.total == 1),
                "{r:?}"
            );
        }
        assert!(!r.stderr.contains("error"), "{r:?}");
    }
}

// Multi-threaded: the writers run while the test thread waits for sluice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_copy_and_its_catch_up_log_rows_rate_and_time_left() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop(
        "CREATE TABLE acc (id INT AUTO_INCREMENT PRIMARY KEY, balance INT NULL, note VARCHAR(40), KEY (note)); \
         INSERT INTO acc (balance, note) SELECT seq % 1000, CONCAT('n', seq) FROM seq_1_to_200000",
    )
    .await
    .unwrap();
    p.write(
        "1_widen.sql",
        "-- sluice:up\nALTER TABLE acc MODIFY balance BIGINT NOT NULL;\n",
    );
    // Clients keep updating rows during the whole run: the change log always has a backlog.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2u32 {
        let (url, stop) = (p.db.url.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut c = mysql_async::Conn::from_url(&url).await.unwrap();
            let mut i: u32 = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i = i.wrapping_add(7919);
                // The swap briefly holds writes, and the table is renamed under the client.
                let _ = c
                    .exec_drop(
                        "UPDATE acc SET balance = balance + 1 WHERE id = ?",
                        (1 + i % 200_000,),
                    )
                    .await;
            }
            let _ = c.disconnect().await;
        }));
    }
    let r = {
        let mut cmd = p.command(&["up"]);
        cmd.env("SLUICE_PROGRESS_INTERVAL_MS", "50");
        common::Run::from(cmd.output().unwrap())
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(r.code, 0, "{r:?}");

    let copy = lines(&r.stderr, "copy of `acc`");
    assert!(copy.len() >= 2, "{r:?}");
    for l in &copy {
        assert_eq!((l.unit.as_str(), l.phase.as_str()), ("rows", ""), "{l:?}");
        // The server's estimate of the table's rows.
        assert!(
            l.total.abs_diff(200_000) < 40_000 && l.done <= l.total,
            "{l:?}"
        );
        assert!(
            l.rest.ends_with(" rows") && l.rest.contains("chunk "),
            "{l:?}"
        );
    }
    assert!(
        copy.windows(2).all(|w| w[0].done <= w[1].done),
        "counts only grow: {copy:?}"
    );
    assert!(
        copy.iter()
            .any(|l| l.rest.contains(" rows/s, about ") && l.rest.contains(" left")),
        "rate and time left: {copy:?}"
    );

    let catch_up = lines(&r.stderr, "catch-up of `acc`");
    // The writers' changes reached the log and were applied (sluice's own summary line) ...
    let (applied, secs) = r
        .stderr
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("sluice: applied ")?;
            let (n, rest) = rest.split_once(" logged change(s)")?;
            let secs = rest.rsplit_once(" in ")?.1.strip_suffix(" s")?;
            Some((n.parse::<u64>().ok()?, secs.parse::<f64>().ok()?))
        })
        .unwrap_or_else(|| panic!("no catch-up summary: {r:?}"));
    assert!(applied > 0, "{r:?}");
    // ... and a catch-up that outlasted many poll intervals logged its progress (a faster one may
    // end before the first poll: how long it takes depends on the machine, not on sluice). The
    // summary's seconds also cover verifying the changed keys, which the catch-up meter does not
    // follow, so only a summary twenty intervals long says the catch-up itself outlasted one.
    if secs >= 1.0 {
        assert!(!catch_up.is_empty(), "{r:?}");
    }
    for l in &catch_up {
        assert_eq!(l.unit, "log entries", "{l:?}");
        let backlog: u64 = l
            .rest
            .rsplit("backlog ~")
            .next()
            .and_then(|b| b.parse().ok())
            .unwrap_or_else(|| panic!("the backlog ends the line: {l:?}"));
        // Applied so far plus what the log still holds.
        assert_eq!(l.total, l.done + backlog, "{l:?}");
    }

    // The table is altered, every row there.
    let ty: String = c
        .query_first("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'acc' AND COLUMN_NAME = 'balance'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ty, "bigint(20)");
    let n: i64 = c
        .query_first("SELECT COUNT(*) FROM acc")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 200_000);
    assert_eq!(p.states(), vec![(1, "applied".into())]);
}

/// The online copy's deferred secondary-index build (an ALTER on the shadow, followed on a
/// connection of its own: the thread's stages, or InnoDB's in-place percent) and the whole-table
/// re-verification a resumed copy runs before its swap (chunks verified of the estimate).
#[tokio::test]
async fn online_copy_index_build_and_re_verification_log_their_progress() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    let fill = |t: &str| {
        format!(
            "CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, balance INT NULL, note VARCHAR(40) NOT NULL, \
             k INT NOT NULL, KEY note (note), KEY k_note (k, note)); \
             INSERT INTO {t} (balance, note, k) SELECT seq % 1000, MD5(seq), seq * 7919 % 100003 FROM seq_1_to_200000"
        )
    };
    let alter = "ALTER TABLE {t} MODIFY balance BIGINT NOT NULL";
    c.query_drop(fill("acc")).await.unwrap();
    // The same rows and the ALTER as written: what the online copy must end as.
    c.query_drop(fill("acc_w")).await.unwrap();
    c.query_drop(alter.replace("{t}", "acc_w")).await.unwrap();
    p.write(
        "1_widen.sql",
        &format!("-- sluice:up\n{};\n", alter.replace("{t}", "acc")),
    );
    let run = |args: &[&str]| {
        let mut cmd = p.command(args);
        cmd.env("SLUICE_PROGRESS_INTERVAL_MS", "50");
        common::Run::from(cmd.output().unwrap())
    };
    // The copy, its index build, no swap: the copy waits, verified, in state "copied".
    let r = run(&["up", "--postpone-cutover"]);
    // Documented: copy and verify, then stop with exit 1, resumable.
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("run `sluice cutover`"), "{r:?}");
    let build = lines(&r.stderr, "index build of `_acc_new`");
    assert!(!build.is_empty(), "{r:?}");
    for l in &build {
        assert_eq!((l.unit.as_str(), l.total), ("percent", 100), "{l:?}");
        assert!(l.done <= l.total, "{l:?}");
        // The stage as the server names it: its own stages, or InnoDB's in-place build.
        assert!(
            l.phase.ends_with(" (in-place)") || l.phase.starts_with("stage "),
            "{l:?}"
        );
    }
    assert!(
        r.stderr.contains("built 2 secondary index(es) of _acc_new"),
        "{r:?}"
    );
    // The swap of a copy an earlier run verified verifies the whole table again first.
    let r = run(&["cutover"]);
    assert_eq!(r.code, 0, "{r:?}");
    let verify = lines(&r.stderr, "verification of `acc`");
    assert!(!verify.is_empty(), "{r:?}");
    for l in &verify {
        assert_eq!(l.unit, "chunks", "{l:?}");
        assert!(l.done >= 1 && l.done <= l.total, "{l:?}");
    }
    assert!(
        verify.windows(2).all(|w| w[0].done <= w[1].done),
        "counts only grow: {verify:?}"
    );
    assert!(
        r.stderr.contains("verified `acc` against _acc_new: "),
        "{r:?}"
    );
    let r = run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(p.states(), vec![(1, "applied".into())]);

    // The table equals the ALTER as written: definition and rows.
    let show = |t: &'static str| {
        let url = p.db.url.clone();
        async move {
            let mut c = mysql_async::Conn::from_url(&url).await.unwrap();
            let (_, ddl): (String, String) = c
                .query_first(format!("SHOW CREATE TABLE {t}"))
                .await
                .unwrap()
                .unwrap();
            let sum: (i64, String) = c
                .query_first(format!(
                    "SELECT COUNT(*), CAST(SUM(CRC32(CONCAT_WS('|', id, balance, note, k))) AS CHAR) FROM {t}"
                ))
                .await
                .unwrap()
                .unwrap();
            let ddl = ddl
                .replacen(&format!("`{t}`"), "`T`", 1)
                .split(") ENGINE")
                .next()
                .unwrap()
                .to_string();
            (ddl, sum)
        }
    };
    let (got, want) = (show("acc").await, show("acc_w").await);
    assert_eq!(got, want);
    assert_eq!(got.1 .0, 200_000);
}
