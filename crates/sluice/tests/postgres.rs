//! The sluice command against a real PostgreSQL: every test gets its own database.

mod common;

use common::{eventually, wait_bounded, Project};
use sluice_testkit::Server;

const CREATE_USERS: &str = "-- sluice:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\nINSERT INTO users VALUES (1, 'a@example.com');\n-- sluice:down\nDROP TABLE users;\n";
const ADD_NICK: &str = "-- sluice:up\nALTER TABLE users ADD COLUMN nick text;\n-- sluice:down\nALTER TABLE users DROP COLUMN nick;\n";

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

async fn table_exists(c: &tokio_postgres::Client, name: &str) -> bool {
    c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .unwrap()
        .get(0)
}

/// Starts `sluice up` on a statement-by-statement migration whose second statement waits on a table
/// lock held by the returned session (`COMMIT` on it releases the lock), once sluice is waiting.
async fn up_waiting_on_second_statement(
    p: &Project,
    c: &tokio_postgres::Client,
) -> (tokio_postgres::Client, std::process::Child) {
    c.batch_execute("CREATE TABLE log (n int); CREATE TABLE blocked (n int)")
        .await
        .unwrap();
    p.write(
        "1_steps.sql",
        "-- sluice:up\n-- sluice:transaction per-statement\nINSERT INTO log VALUES (1);\nINSERT INTO blocked VALUES (2);\nINSERT INTO log VALUES (3);\n",
    );
    let holder = p.db.pg().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE blocked IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let child = p.spawn(&["up"]);
    eventually(30, "sluice waiting on the lock", || async {
        count(c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO blocked%'").await == 1
    })
    .await;
    (holder, child)
}

#[tokio::test]
async fn up_status_down_round_trip_records_app_version_and_events() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create_users.sql", CREATE_USERS);
    p.write("2_add_nick.sql", ADD_NICK);

    let dry = p.run(&["up", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("would apply 2 migration(s)"), "{dry:?}");
    assert!(
        dry.stdout
            .contains("1_create_users  [single: all statements are transactional]"),
        "{dry:?}"
    );
    let c = p.db.pg().await;
    assert!(!table_exists(&c, "users").await, "dry run must not apply");
    assert!(
        !table_exists(&c, "sluice.migrations").await,
        "dry run must not create history"
    );

    let up = p.run(&["up", "--to", "1"]);
    assert_eq!(up.code, 0, "{up:?}");
    assert_eq!(
        p.states(),
        vec![(1, "applied".into()), (2, "pending".into())]
    );
    let up = p.run(&["up"]);
    assert_eq!(up.code, 0, "{up:?}");
    let status = p.status_json();
    assert_eq!(status["migrations"][1]["app_version"], "test-app-1");
    assert_eq!(status["drift"]["state"], "clean");
    assert!(
        status["target"].as_str().unwrap().starts_with("postgres 1"),
        "{status}"
    );

    let again = p.run(&["up"]);
    assert!(again.stderr.contains("nothing to apply"), "{again:?}");

    let down = p.run(&["down"]);
    assert_eq!(down.code, 0, "{down:?}");
    assert_eq!(
        p.states(),
        vec![(1, "applied".into()), (2, "pending".into())]
    );
    assert_eq!(count(&c, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nick'").await, 0);
    let down = p.run(&["down", "--to", "0"]);
    assert_eq!(down.code, 0, "{down:?}");
    assert!(!table_exists(&c, "users").await);
    let kinds: Vec<String> = c
        .query("SELECT kind || ':' || coalesce(version::text, '') || ':' || coalesce(app_version, '') FROM sluice.events ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        kinds,
        [
            "up:1:test-app-1",
            "up:2:test-app-1",
            "down:2:test-app-1",
            "down:1:test-app-1"
        ]
    );
    // The event log is append-only: no row can be changed, deleted or truncated away.
    for sql in [
        "DELETE FROM sluice.events",
        "UPDATE sluice.events SET actor = 'x'",
        "TRUNCATE sluice.events",
        "TRUNCATE sluice.events RESTART IDENTITY CASCADE",
    ] {
        let e = c.execute(sql, &[]).await.unwrap_err();
        assert!(
            e.as_db_error().unwrap().message().contains("append-only"),
            "{sql}: {e}"
        );
    }
    assert_eq!(count(&c, "SELECT count(*) FROM sluice.events").await, 4);
}

/// The history says who applied each migration from where, and which CI run when there is one:
/// the OS user from the first of USER, USERNAME, LOGNAME that is set, else from the process's uid.
#[tokio::test]
async fn history_records_user_host_and_ci_run() {
    let os_user = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let os_user = String::from_utf8_lossy(&os_user.stdout).trim().to_string();
    assert!(!os_user.is_empty());
    let ci = [
        "GITHUB_RUN_ID",
        "GITHUB_REPOSITORY",
        "CI_JOB_ID",
        "BUILDKITE_BUILD_ID",
        "CIRCLE_BUILD_NUM",
        "BUILD_TAG",
        "BUILD_BUILDID",
        "CI",
    ];
    // (variables set, applied_by's start, its end)
    type Vars = &'static [(&'static str, &'static str)];
    let cases: &[(Vars, String, &str)] = &[
        (
            &[
                ("USER", "deployer"),
                ("GITHUB_RUN_ID", "987654"),
                ("GITHUB_REPOSITORY", "acme/shop"),
            ],
            "deployer@".into(),
            " (ci: github acme/shop run 987654)",
        ),
        (
            &[("USERNAME", "winuser"), ("CI_JOB_ID", "42")],
            "winuser@".into(),
            " (ci: gitlab job 42)",
        ),
        (&[("LOGNAME", "ops"), ("USER", "")], "ops@".into(), ""),
        // No variable names the user (cron, systemd, containers): the uid's name.
        (&[], format!("{os_user}@"), ""),
    ];
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    for (k, (vars, start, end)) in cases.iter().enumerate() {
        let version = k as i64 + 1;
        p.write(
            &format!("{version}_a.sql"),
            &format!("CREATE TABLE a{k} (id int);\n"),
        );
        let mut cmd = p.command(&["up"]);
        for key in ci.iter().chain(&["USER", "USERNAME", "LOGNAME"]) {
            cmd.env_remove(key);
        }
        cmd.envs(vars.iter().copied());
        let r = cmd.output().unwrap();
        assert!(r.status.success(), "{vars:?}: {r:?}");
        let by: String = c
            .query_one(
                "SELECT applied_by FROM sluice.migrations WHERE version = $1",
                &[&version],
            )
            .await
            .unwrap()
            .get(0);
        assert!(by.starts_with(start.as_str()), "{vars:?}: {by}");
        assert!(by.ends_with(end), "{vars:?}: {by}");
        // The host between them, and no CI run where none is.
        let host = &by[start.len()..by.len() - end.len()];
        assert!(!host.is_empty() && !host.contains(' '), "{vars:?}: {by}");
        let actor: String = c
            .query_one(
                "SELECT actor FROM sluice.events WHERE version = $1 AND kind = 'up'",
                &[&version],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(actor, by, "{vars:?}");
    }
}

#[tokio::test]
async fn app_version_falls_back_to_git_describe() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create_users.sql", CREATE_USERS);
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(p.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        String::from_utf8_lossy(&ok.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "init"]);
    let head = git(&["rev-parse", "--short", "HEAD"]);
    let r = p
        .command(&["up"])
        .env_remove("SLUICE_APP_VERSION")
        .output()
        .unwrap();
    assert!(r.status.success());
    let v = p.status_json()["migrations"][0]["app_version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(v, head);
    // An explicit flag wins over the environment.
    p.write("2_add_nick.sql", ADD_NICK);
    let r = p.run(&["up", "--app-version", "v9.9.9"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(p.status_json()["migrations"][1]["app_version"], "v9.9.9");
}

#[tokio::test]
async fn sql_error_reports_file_line_column_and_rolls_back_a_transactional_migration() {
    let p = Project::new(Server::Postgres).await;
    p.write(
        "1_broken.sql",
        "-- sluice:up\nCREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\nSELECT nope FROM a;\n-- sluice:down\nDROP TABLE a;\n",
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("1_broken.sql:5:8"),
        "position of `nope` expected: {r:?}"
    );
    assert!(r.stderr.contains("column \"nope\" does not exist"), "{r:?}");
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    let c = p.db.pg().await;
    assert!(
        !table_exists(&c, "a").await,
        "single-transaction migration must leave nothing"
    );
    assert_eq!(p.states(), vec![(1, "failed".into())]);

    p.write("1_broken.sql", "-- sluice:up\nCREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\nSELECT id FROM a;\n-- sluice:down\nDROP TABLE a;\n");
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(count(&c, "SELECT count(*) FROM a").await, 1);
    assert_eq!(p.states(), vec![(1, "applied".into())]);
}

#[tokio::test]
async fn per_statement_migration_resumes_at_the_failed_statement_without_redoing_earlier_ones() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE log (n int)")
        .await
        .unwrap();
    let text = |third: &str| {
        format!(
            "-- sluice:up\nINSERT INTO log VALUES (1);\nCREATE INDEX CONCURRENTLY t_v_idx ON t (v);\n{third};\nINSERT INTO log VALUES (4);\n-- sluice:down\nDROP INDEX CONCURRENTLY t_v_idx;\n"
        )
    };
    p.write(
        "1_idx.sql",
        &text("ALTER TABLE t ADD COLUMN w text REFERENCES missing (id)"),
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("1_idx.sql:4:1"), "{r:?}");
    assert!(
        r.stderr
            .contains("first 2 statement(s) of this migration are applied"),
        "{r:?}"
    );
    let st = p.status_json();
    assert_eq!(st["migrations"][0]["status"], "failed");
    assert_eq!(st["migrations"][0]["statements_done"], 2);
    // The human status names the failure and the command that resumes it.
    let human = p.run(&["status"]);
    assert_eq!(human.code, 0, "{human:?}");
    assert!(
        human.stdout.contains(
            "\n1 idx failed: migrations/1_idx.sql:4:1: relation \"missing\" does not exist (42P01)\n  next: fix the failing statement in its file, then `sluice up` (it resumes after the 2 statement(s) already applied)\n"
        ),
        "{human:?}"
    );

    // Editing an applied statement of the failed migration is refused.
    p.write(
        "1_idx.sql",
        &text("ALTER TABLE t ADD COLUMN w text").replace("VALUES (1)", "VALUES (10)"),
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("statement 1 of migration 1_idx was applied and has been edited"),
        "{r:?}"
    );

    // Fixing the failed statement resumes there: statement 1 is not run twice, the index is not rebuilt.
    p.write("1_idx.sql", &text("ALTER TABLE t ADD COLUMN w text"));
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("resuming at statement 3"), "{r:?}");
    let logged: Vec<i32> = c
        .query("SELECT n FROM log ORDER BY n", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(logged, vec![1, 4]);
    assert_eq!(p.states(), vec![(1, "applied".into())]);
}

#[tokio::test]
async fn kill_9_mid_migration_resumes_without_redoing_or_skipping() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    // Kill sluice while the second statement waits on a lock the test holds.
    let (holder, mut child) = up_waiting_on_second_statement(&p, &c).await;
    child.kill().unwrap();
    child.wait().unwrap();
    holder.batch_execute("COMMIT").await.unwrap();
    eventually(30, "the killed run's sessions to end", || async {
        count(&c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'sluice%'").await == 0
    })
    .await;
    // The interrupted statement rolled back with its progress record; statement 1 is recorded.
    assert_eq!(count(&c, "SELECT count(*) FROM blocked").await, 0);
    let st = p.status_json();
    assert_eq!(st["migrations"][0]["status"], "interrupted");
    assert_eq!(st["migrations"][0]["statements_done"], 1);
    let human = p.run(&["status"]);
    assert!(
        human.stdout.contains(
            "\n1 steps was interrupted (the run was killed or lost its connection)\n  next: `sluice up` (it resumes after the 1 statement(s) already applied)\n"
        ),
        "{human:?}"
    );

    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(count(&c, "SELECT count(*) FROM log").await, 2);
    assert_eq!(count(&c, "SELECT count(*) FROM blocked").await, 1);
}

/// Ctrl-C and SIGTERM stop the run with a message and their documented exit code; the statement in
/// flight rolls back, the run lock is released, and the same command resumes (twice: the second rerun
/// has nothing to do).
#[tokio::test]
async fn ctrl_c_and_sigterm_stop_with_a_message_exit_130_143_and_resume() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        let (holder, child) = up_waiting_on_second_statement(&p, &c).await;
        let pid = child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let r = wait_bounded(child, 30, "sluice after a signal");
        assert_eq!(r.code, code, "{signal}: {r:?}");
        assert!(
            r.stderr.contains("run the same command again to resume"),
            "{r:?}"
        );
        holder.batch_execute("COMMIT").await.unwrap();
        eventually(30, "the stopped run's sessions to end", || async {
            count(&c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'sluice%'").await == 0
        })
        .await;
        assert_eq!(count(&c, "SELECT count(*) FROM blocked").await, 0);
        assert_eq!(count(&c, "SELECT count(*) FROM log").await, 1);
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{signal}: {r:?}");
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{signal}: {r:?}");
        assert_eq!(count(&c, "SELECT count(*) FROM log").await, 2);
        assert_eq!(count(&c, "SELECT count(*) FROM blocked").await, 1);
    }
}

/// Object names and server messages holding terminal control sequences reach the screen escaped, on
/// every human output path (up, plan, drift, status, log, a failing statement's error).
#[tokio::test]
async fn control_sequences_in_names_are_never_printed_raw() {
    for evil in [
        "\u{1b}[2J",
        "\u{7}",
        "\u{9b}31m",
        "\u{202e}",
        "\r",
        "\u{8}\u{8}",
    ] {
        let p = Project::new(Server::Postgres).await;
        let t = format!("t{evil}x");
        let q = t.replace('"', "\"\"");
        p.write(
            "1_make.sql",
            &format!("CREATE TABLE \"{q}\" (id int);\nCREATE INDEX \"i{q}\" ON \"{q}\" (id);\n"),
        );
        p.write("2_fail.sql", &format!("SELECT * FROM \"{q}missing\";\n"));
        let mut outputs = vec![
            p.run(&["plan"]),
            p.run(&["up", "--dry-run"]),
            p.run(&["up"]),
        ];
        assert_eq!(outputs[2].code, 1, "{:?}", outputs[2]);
        let c = p.db.pg().await;
        c.batch_execute(&format!("ALTER TABLE \"{q}\" ADD COLUMN \"c{q}\" int"))
            .await
            .unwrap();
        for args in [&["drift"][..], &["status"], &["log"], &["verify"]] {
            outputs.push(p.run(args));
        }
        assert!(
            outputs[3].stdout.contains("\\u{"),
            "{evil:?}: {:?}",
            outputs[3]
        );
        // A captured drift migration's comments (read with `cat`) name the objects escaped.
        let before: Vec<_> = std::fs::read_dir(p.migration_path("")).unwrap().collect();
        let captured = p.run(&["drift", "--write-migration"]);
        assert_eq!(captured.code, 0, "{evil:?}: {captured:?}");
        let file = std::fs::read_dir(p.migration_path(""))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|f| f.to_string_lossy().contains("capture_drift"))
            .unwrap_or_else(|| panic!("{evil:?}: no file written among {before:?}"));
        let comments: String = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(comments.contains("\\u{"), "{evil:?}: {comments}");
        outputs.push(captured);
        for r in outputs {
            let all = r.all() + &comments;
            assert!(
                !all.chars()
                    .any(|ch| evil.contains(ch) && !ch.is_ascii_graphic()),
                "{evil:?} printed raw: {r:?}"
            );
        }
    }
}

#[tokio::test]
async fn second_run_reports_the_holder_waits_and_exits_3() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE blocked (n int)")
        .await
        .unwrap();
    p.write(
        "1_slow.sql",
        "-- sluice:up\nINSERT INTO blocked VALUES (1);\n",
    );
    let mut holder = p.db.pg().await;
    let tx = holder.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE blocked IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let first = p.spawn(&["up"]);
    eventually(30, "first run waiting on the table lock", || async {
        count(&c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").await == 1
    })
    .await;
    let second = p.run(&["up", "--lock-wait", "1"]);
    assert_eq!(second.code, 3, "{second:?}");
    let first_pid = first.id();
    assert!(
        second
            .stderr
            .contains(&format!("held by pid {first_pid} on host ")),
        "{second:?}"
    );
    assert!(second.stderr.contains(" since 20"), "{second:?}");
    assert!(
        second.stderr.contains("waiting up to 1s for the run lock"),
        "{second:?}"
    );
    tx.commit().await.unwrap();
    let first = wait_bounded(first, 60, "first run");
    assert_eq!(first.code, 0, "{first:?}");
    let _ = &mut holder;
}

/// The run lock must not deadlock with CREATE INDEX CONCURRENTLY: CIC waits for every transaction
/// that could see the table, so neither the lock session nor a second run waiting for the lock may
/// sit in an open transaction.
#[tokio::test]
async fn run_lock_does_not_deadlock_with_create_index_concurrently() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, g::text FROM generate_series(1, 1000) g").await.unwrap();
    p.write("1_cic.sql", "-- sluice:up\nCREATE INDEX CONCURRENTLY t_v_idx ON t (v);\n-- sluice:down\nDROP INDEX CONCURRENTLY t_v_idx;\n");
    // An open writer makes CIC wait in its first phase, so the second run is polling while CIC runs.
    let mut writer = p.db.pg().await;
    let tx = writer.transaction().await.unwrap();
    tx.batch_execute("INSERT INTO t VALUES (1001, 'x')")
        .await
        .unwrap();
    let first = p.spawn(&["up"]);
    eventually(30, "CIC waiting for the open writer", || async {
        count(&c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'").await == 1
    })
    .await;
    let second = p.spawn(&["up", "--lock-wait", "120"]);
    eventually(30, "second run polling for the run lock", || async {
        count(&c, &format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sluice-lock pid={} host=' || split_part(application_name, 'host=', 2)", second.id())).await == 1
    })
    .await;
    // Neither run's lock session is inside a transaction.
    assert_eq!(
        count(&c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'sluice-lock%' AND (state <> 'idle' OR backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)").await,
        0
    );
    tx.commit().await.unwrap();
    let first = wait_bounded(first, 60, "the run with CREATE INDEX CONCURRENTLY");
    assert_eq!(first.code, 0, "{first:?}");
    let second = wait_bounded(second, 60, "the waiting run");
    assert_eq!(second.code, 0, "{second:?}");
    assert!(second.stderr.contains("nothing to apply"), "{second:?}");
    let valid: bool = c
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
    let _ = &mut writer;
}

#[tokio::test]
async fn edited_migration_with_crlf_is_not_a_mismatch_but_a_real_edit_is() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create_users.sql", CREATE_USERS);
    assert_eq!(p.run(&["up"]).code, 0);
    p.write("1_create_users.sql", &CREATE_USERS.replace('\n', "\r\n"));
    let v = p.run(&["verify"]);
    assert_eq!(v.code, 0, "CRLF must not count as an edit: {v:?}");
    assert!(
        v.stdout
            .contains("ok: 1 applied migration(s) match their files"),
        "{v:?}"
    );

    p.write(
        "1_create_users.sql",
        &CREATE_USERS.replace("email text", "email varchar(200)"),
    );
    let v = p.run(&["verify"]);
    assert_eq!(v.code, 4, "{v:?}");
    assert!(v.stdout.contains("edited: 1_create_users"), "{v:?}");
    assert_eq!(p.states(), vec![(1, "edited".into())]);
    p.write("2_add_nick.sql", ADD_NICK);
    let up = p.run(&["up"]);
    assert_eq!(up.code, 4, "{up:?}");
    assert!(up.stderr.contains("sluice repair"), "{up:?}");
    let c = p.db.pg().await;
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'nick'"
        )
        .await,
        0,
        "nothing applied"
    );

    let rep = p.run(&["repair"]);
    assert_eq!(rep.code, 0, "{rep:?}");
    assert!(rep.stderr.contains("repaired 1_create_users"), "{rep:?}");
    assert_eq!(p.run(&["verify"]).code, 0);
    assert_eq!(p.run(&["up"]).code, 0);
    let repairs = count(&c, "SELECT count(*) FROM sluice.events WHERE kind = 'repair' AND detail LIKE 'checksum % -> %'").await;
    assert_eq!(repairs, 1);
}

#[tokio::test]
async fn drift_of_each_kind_is_listed_captured_and_revertible() {
    let p = Project::new(Server::Postgres).await;
    p.write(
        "1_schema.sql",
        "-- sluice:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, score int DEFAULT 0, note varchar(20));\nCREATE INDEX users_email_idx ON users (email);\nCREATE VIEW user_emails AS SELECT id, email FROM users;\n",
    );
    assert_eq!(p.run(&["up"]).code, 0);
    let clean = p.run(&["drift"]);
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(clean.stdout.contains("no drift"), "{clean:?}");

    let c = p.db.pg().await;
    c.batch_execute(
        "ALTER TABLE users ADD COLUMN age int;
         ALTER TABLE users ALTER COLUMN note TYPE varchar(50);
         ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
         ALTER TABLE users ALTER COLUMN score SET DEFAULT 5;
         DROP INDEX users_email_idx;
         CREATE INDEX users_age_idx ON users (age);
         ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age > 0);
         CREATE OR REPLACE VIEW user_emails AS SELECT id, email, age FROM users;
         CREATE TABLE audit (id int);",
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
        "column note changed type",
        "column email changed nullability",
        "column score changed default",
        "index users_email_idx removed ",
        "index users_age_idx added ",
        "constraint age_positive added ",
        "view public.user_emails changed definition",
        "table public.audit added ",
    ];
    want.sort();
    assert_eq!(got, want);
    let st = p.status_json();
    assert_eq!(st["drift"]["state"], "drifted");

    let w = p.run(&["drift", "--write-migration"]);
    assert_eq!(w.code, 0, "{w:?}");
    assert!(
        w.stderr
            .contains("_capture_drift.sql and recorded it as applied"),
        "{w:?}"
    );
    assert_eq!(
        p.run(&["drift"]).code,
        0,
        "captured drift is no longer drift"
    );
    let states = p.states();
    assert_eq!(states.len(), 2);
    assert_eq!(states[1].1, "applied");

    // Reverting the capture restores the recorded schema exactly; re-applying restores the drift.
    // Narrowing `note` back to varchar(20) rewrites the table, so sluice asks for --as-written.
    let refused = p.run(&["down"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("changing public.users.note from character varying(50)"),
        "{refused:?}"
    );
    let d = p.run(&["down", "--as-written"]);
    assert_eq!(d.code, 0, "{d:?}");
    assert!(!table_exists(&c, "audit").await);
    let default: String = c.query_one("SELECT column_default FROM information_schema.columns WHERE table_name='users' AND column_name='score'", &[]).await.unwrap().get(0);
    assert_eq!(default, "0");
    let u = p.run(&["up"]);
    assert_eq!(u.code, 0, "{u:?}");
    assert!(table_exists(&c, "audit").await);
    assert_eq!(p.run(&["drift"]).code, 0);
}

/// Names with dots and quotes: `"a.b".c` and `a."b.c"` are different tables to drift, and the captured
/// migration alters the one that drifted (each pair of colliding shapes, with a column added to one).
#[tokio::test]
async fn drift_keeps_dotted_and_quoted_names_apart() {
    for (one, other) in [
        (("a.b", "c"), ("a", "b.c")),
        (("x", "y.z"), ("x.y", "z")),
        (("q\"r", "s.t"), ("q\"r.s", "t")),
    ] {
        let p = Project::new(Server::Postgres).await;
        let ident = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let q = |(s, t): (&str, &str)| format!("{}.{}", ident(s), ident(t));
        let mut schemas: Vec<&str> = vec![one.0, other.0];
        schemas.dedup();
        let mut sql: String = schemas
            .iter()
            .map(|s| format!("CREATE SCHEMA {};\n", ident(s)))
            .collect();
        sql += &format!(
            "CREATE TABLE {} (id int);\nCREATE TABLE {} (id int);\n",
            q(one),
            q(other)
        );
        p.write("1_schema.sql", &format!("-- sluice:up\n{sql}"));
        assert_eq!(p.run(&["up"]).code, 0);
        assert_eq!(p.run(&["drift"]).code, 0, "{one:?} / {other:?}");
        let c = p.db.pg().await;
        c.batch_execute(&format!("ALTER TABLE {} ADD COLUMN extra int", q(other)))
            .await
            .unwrap();
        let r = p.run(&["drift", "--json"]);
        assert_eq!(r.code, 4, "{r:?}");
        let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let diffs = j["differences"].as_array().unwrap();
        assert_eq!(diffs.len(), 1, "{r:?}");
        assert_eq!(diffs[0]["name"], "extra");
        let w = p.run(&["drift", "--write-migration"]);
        assert_eq!(w.code, 0, "{w:?}");
        assert_eq!(p.run(&["down"]).code, 0);
        let cols = |s: &'static str, t: &'static str| {
            let c = &c;
            async move {
                count(c, &format!("SELECT count(*) FROM information_schema.columns WHERE table_schema = '{}' AND table_name = '{}'", s.replace('\'', "''"), t.replace('\'', "''"))).await
            }
        };
        assert_eq!(
            cols(other.0, other.1).await,
            1,
            "down removed the drifted column"
        );
        assert_eq!(cols(one.0, one.1).await, 1, "the other table untouched");
        assert_eq!(p.run(&["up"]).code, 0);
        assert_eq!(cols(other.0, other.1).await, 2);
        assert_eq!(cols(one.0, one.1).await, 1);
        assert_eq!(p.run(&["drift"]).code, 0);
    }
}

#[tokio::test]
async fn baseline_adopts_an_existing_database() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)")
        .await
        .unwrap();
    p.write(
        "1_create_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n",
    );
    p.write("2_add_nick.sql", ADD_NICK);
    let r = p.run(&["baseline", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        p.states(),
        vec![(1, "baseline".into()), (2, "pending".into())]
    );
    assert_eq!(p.run(&["up"]).code, 0);
    assert_eq!(
        p.states(),
        vec![(1, "baseline".into()), (2, "applied".into())]
    );
    let again = p.run(&["baseline", "2"]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(
        again.stderr.contains("already has sluice history"),
        "{again:?}"
    );
}

#[tokio::test]
async fn out_of_order_missing_file_and_missing_down() {
    let p = Project::new(Server::Postgres).await;
    p.write("2_create_users.sql", CREATE_USERS);
    assert_eq!(p.run(&["up"]).code, 0);
    p.write("1_early.sql", "CREATE TABLE early (id int);\n");
    assert_eq!(
        p.states(),
        vec![(1, "out-of-order".into()), (2, "applied".into())]
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--out-of-order"), "{r:?}");
    assert_eq!(p.run(&["up", "--out-of-order"]).code, 0);

    // 1_early has no down part: `down --to 0` reverts 2 above it, then stops there.
    let r = p.run(&["down", "--to", "0"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("migration 1_early is irreversible: it has no `-- sluice:down` part; `sluice down` stopped there after rolling back 2_create_users"),
        "{r:?}"
    );
    let c = p.db.pg().await;
    assert!(!table_exists(&c, "users").await, "{r:?}");
    assert!(table_exists(&c, "early").await, "{r:?}");
    assert_eq!(
        p.states(),
        vec![(1, "applied".into()), (2, "pending".into())]
    );
    assert_eq!(p.run(&["up"]).code, 0);

    std::fs::remove_file(p.migration_path("2_create_users.sql")).unwrap();
    assert_eq!(
        p.states(),
        vec![(1, "applied".into()), (2, "missing-file".into())]
    );
    let v = p.run(&["verify"]);
    assert_eq!(v.code, 4, "{v:?}");
    assert!(v.stdout.contains("missing file: 2_create_users"), "{v:?}");
}

#[tokio::test]
async fn bad_input_gets_one_clear_error_and_its_exit_code() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create_users.sql", CREATE_USERS);
    let with_url =
        |u: &str, args: &[&str]| p.command(args).env("DATABASE_URL", u).output().unwrap();
    let run = |u: &str| -> common::Run { with_url(u, &["status"]).into() };

    let r = run("postgres://postgres:hunter2pw@127.0.0.1:1/db");
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stderr.contains("nothing is listening at 127.0.0.1:1"),
        "{r:?}"
    );
    assert!(!r.all().contains("hunter2pw"), "password leaked: {r:?}");

    let r = run(&p.db.url_as("no_such_role:hunter2pw"));
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("no_such_role"), "{r:?}");
    assert!(!r.all().contains("hunter2pw"), "password leaked: {r:?}");

    let r = run("postgres://postgres:hunter2pw@127.0.0.1:5432/sluice_no_such_db");
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stderr
            .contains("database `sluice_no_such_db` does not exist"),
        "{r:?}"
    );
    assert!(!r.all().contains("hunter2pw"), "{r:?}");

    let r = run("sqlite://x/y");
    assert_eq!(r.code, 2, "{r:?}");
    let r = run("postgres://u:hunter2pw@127.0.0.1:5432/x?sslmode=sometimes");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unknown sslmode `sometimes`"), "{r:?}");

    let r: common::Run = p
        .command(&["status"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no database URL given"), "{r:?}");

    // A malformed file name or an unknown directive stops everything before anything runs.
    p.write(
        "2_add_nick.sql",
        "-- sluice:up\n-- sluice:no-transaction\nALTER TABLE users ADD COLUMN nick text;\n",
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("2_add_nick.sql: line 2: unknown directive `-- sluice:no-transaction`"),
        "{r:?}"
    );
    std::fs::remove_file(p.migration_path("2_add_nick.sql")).unwrap();
    p.write("add-nick.sql", ADD_NICK);
    let r = p.run(&["up"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("malformed migration file name"), "{r:?}");
    let c = p.db.pg().await;
    assert!(!table_exists(&c, "users").await, "nothing may be applied");
    std::fs::remove_file(p.migration_path("add-nick.sql")).unwrap();

    // A BEGIN ... COMMIT runs as one transaction (adopt_histories.rs); one that rolls back does not.
    p.write("2_txn.sql", "BEGIN;\nCREATE TABLE x (id int);\nROLLBACK;\n");
    let r = p.run(&["up"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("2_txn.sql: line 3, column 1: `ROLLBACK` controls transactions"),
        "{r:?}"
    );
    assert!(
        !table_exists(&c, "users").await,
        "checked before anything runs"
    );

    p.write(
        "2_txn.sql",
        "-- sluice:transaction single\nCREATE INDEX CONCURRENTLY i ON users (email);\n",
    );
    let r = p.run(&["up"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("cannot run inside a transaction"),
        "{r:?}"
    );
}

#[tokio::test]
async fn tls_require_encrypts_and_verify_full_checks_the_certificate() {
    let db = sluice_testkit::TestDb::postgres().await;
    let c = db.pg().await;
    let ssl_on: String = c.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(
        ssl_on, "on",
        "the test server must have TLS enabled (.ci/run enables it)"
    );
    let url = sluice_core::dburl::DbUrl::parse(&format!("{}?sslmode=require", db.url)).unwrap();
    let engine = sluice_postgres::PgEngine::connect(&url).await.unwrap();
    let encrypted: bool = engine
        .client()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted);
    let plain = sluice_core::dburl::DbUrl::parse(&format!("{}?sslmode=disable", db.url)).unwrap();
    let engine = sluice_postgres::PgEngine::connect(&plain).await.unwrap();
    let encrypted: bool = engine
        .client()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!encrypted);
    // The local server's self-signed certificate is not trusted: verify-full must refuse it.
    let strict =
        sluice_core::dburl::DbUrl::parse(&format!("{}?sslmode=verify-full", db.url)).unwrap();
    let e = sluice_postgres::PgEngine::connect(&strict)
        .await
        .err()
        .expect("untrusted certificate accepted");
    assert_eq!(e.exit_code(), 5, "{e}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // The advice fixes the trust; it never offers to weaken verification.
    let help = e.help().unwrap_or_default();
    assert!(help.contains("sslrootcert=/path/to/ca.pem"), "{help}");
    assert!(
        !help.contains("sslmode=require") && !help.contains("disable"),
        "{help}"
    );
    // As in libpq, sslmode=require with a root CA file checks the chain: a CA that did not sign
    // the server's certificate is refused.
    let other_ca = "/etc/ssl/certs/ISRG_Root_X1.pem";
    let require_ca = sluice_core::dburl::DbUrl::parse(&format!(
        "{}?sslmode=require&sslrootcert={other_ca}",
        db.url
    ))
    .unwrap();
    let e = sluice_postgres::PgEngine::connect(&require_ca)
        .await
        .err()
        .expect("sslmode=require with sslrootcert accepted a certificate that CA did not sign");
    assert_eq!(e.exit_code(), 5, "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    // A root file that is no PEM is named, with exit 2, before any connection.
    let dir = tempfile::tempdir().unwrap();
    let der = dir.path().join("ca.der");
    std::fs::write(&der, [0x30u8, 0x82, 0x01, 0x0a, 0x02]).unwrap();
    for mode in ["require", "verify-ca", "verify-full"] {
        let u = sluice_core::dburl::DbUrl::parse(&format!(
            "{}?sslmode={mode}&sslrootcert={}",
            db.url,
            der.display()
        ))
        .unwrap();
        let e = sluice_postgres::PgEngine::connect(&u)
            .await
            .err()
            .expect(mode);
        assert_eq!(e.exit_code(), 2, "{e}");
        assert_eq!(
            e.to_string(),
            format!("sslrootcert {} holds no PEM certificate", der.display())
        );
    }
}

#[tokio::test]
async fn lost_connection_mid_run_exits_6_and_the_rerun_resumes() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    let (holder, child) = up_waiting_on_second_statement(&p, &c).await;
    // The server drops sluice's sessions, as a failover or a network cut would.
    c.batch_execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'sluice%'").await.unwrap();
    let r = wait_bounded(child, 60, "sluice after losing its connection");
    assert_eq!(r.code, 6, "{r:?}");
    assert!(
        r.stderr
            .contains("lost the connection while running 1_steps"),
        "{r:?}"
    );
    assert!(r.stderr.contains("1_steps.sql:4:1"), "{r:?}");
    holder.batch_execute("COMMIT").await.unwrap();
    assert_eq!(p.states(), vec![(1, "interrupted".into())]);
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("resuming at statement 2"), "{r:?}");
    assert_eq!(count(&c, "SELECT count(*) FROM log").await, 2);
    assert_eq!(count(&c, "SELECT count(*) FROM blocked").await, 1);
}

/// Live traffic never waits behind sluice for longer than the lock timeout: a long transaction holds
/// a lock sluice needs, clients keep querying the table, sluice steps back and retries.
// Several worker threads: the clients must keep running while the test body waits for sluice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_never_queue_behind_sluice_longer_than_the_lock_timeout() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g").await.unwrap();
    p.write("1_add.sql", "ALTER TABLE t ADD COLUMN w text;\n");
    // A long transaction that read the table: sluice's ACCESS EXCLUSIVE request must wait for it,
    // and every query arriving after that request would queue behind it.
    let mut long = p.db.pg().await;
    let tx = long.transaction().await.unwrap();
    tx.batch_execute("SELECT count(*) FROM t").await.unwrap();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for k in 0..4 {
        let client = p.db.pg().await;
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let (mut worst, mut errors, mut n) = (std::time::Duration::ZERO, 0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t0 = std::time::Instant::now();
                if client
                    .query_one(
                        "SELECT v FROM t WHERE id = $1",
                        &[&(1 + (k * 100 + n as i32) % 1000)],
                    )
                    .await
                    .is_err()
                {
                    errors += 1;
                }
                worst = worst.max(t0.elapsed());
                n += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            (worst, errors, n)
        }));
    }
    let child = p.spawn(&["up", "--lock-timeout", "200"]);
    eventually(30, "sluice to step back at least twice", || async {
        count(&c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sluice' AND query LIKE 'ALTER TABLE t%'").await >= 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    tx.commit().await.unwrap();
    let r = wait_bounded(child, 60, "sluice");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("stepped back so queries do not queue behind it"),
        "{r:?}"
    );
    assert!(r.stderr.contains("on t"), "{r:?}");
    for h in clients {
        let (worst, errors, n) = h.await.unwrap();
        eprintln!("client: {n} queries, worst {worst:?}");
        assert_eq!(errors, 0);
        assert!(n > 10, "the client kept querying");
        // Without the lock timeout a client would wait the full 8 s the long transaction lasted;
        // with it, the lock timeout (200 ms) plus scheduling on a busy machine.
        assert!(
            worst < std::time::Duration::from_millis(1500),
            "a client waited {worst:?} behind sluice"
        );
    }
    let _ = &mut long;
}

#[tokio::test]
async fn a_lock_that_never_frees_fails_the_migration_resumably_naming_the_blocker() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    p.write("1_add.sql", "ALTER TABLE t ADD COLUMN w text;\n");
    // The holder's last statement carries a password: the report shows who holds the lock and
    // the statement's shape, never its literals, on the terminal and in the history.
    // (Only an administrator creates and alters roles: the holder is the server's administrator.)
    let su = p.db.pg_su().await;
    let role = format!("r_{}", p.db.name);
    su.batch_execute(&format!("CREATE ROLE {role}"))
        .await
        .unwrap();
    let mut long = p.db.pg_su().await;
    let holder_pid: i32 = long
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let tx = long.transaction().await.unwrap();
    tx.batch_execute("SET application_name = 'billing-job'; SELECT count(*) FROM t")
        .await
        .unwrap();
    let secret = "Tr0ub4dor&3-lock";
    tx.batch_execute(&format!(
        "ALTER ROLE {role} PASSWORD '{secret}' VALID UNTIL '2099-01-01'"
    ))
    .await
    .unwrap();
    let r = p.run(&["up", "--lock-timeout", "100", "--lock-retry-for", "2"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("canceling statement due to lock timeout"),
        "{r:?}"
    );
    assert!(r.stderr.contains("gave up after"), "{r:?}");
    let report = format!(
        "pid {holder_pid} (user postgres, application billing-job, idle in transaction, transaction open "
    );
    let shape = format!("holds AccessShareLock): ALTER ROLE {role} PASSWORD ? VALID UNTIL ?");
    assert!(r.stderr.contains(&report), "{r:?}");
    assert!(r.stderr.contains(&shape), "{r:?}");
    let stored: Vec<String> = c
        .query(
            "SELECT error FROM sluice.migrations UNION ALL SELECT detail FROM sluice.events",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .filter_map(|row| row.get::<_, Option<String>>(0))
        .collect();
    assert!(stored.iter().any(|d| d.contains(&shape)), "{stored:?}");
    for text in stored.iter().chain([&r.stderr, &r.stdout]) {
        assert!(!text.contains("Tr0ub4dor"), "{text}");
    }
    assert_eq!(p.states(), vec![(1, "failed".into())]);
    tx.commit().await.unwrap();
    assert_eq!(p.run(&["up"]).code, 0);
    assert_eq!(p.run(&["up"]).code, 0);
    let _ = &mut long;
    su.batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
}

/// Issue 12: a data change that waits for its lock names its table in every lock-retry message
/// (the IR named none for UPDATE/DELETE/MERGE, so the messages said nothing about where it waits).
#[tokio::test]
async fn a_blocked_data_change_names_its_table_when_it_steps_back() {
    for (sql, table) in [
        ("UPDATE app.orders SET v = 'y' WHERE id = 1", "app.orders"),
        ("DELETE FROM app.orders WHERE id = 2", "app.orders"),
        ("INSERT INTO app.orders (id, v) VALUES (10, 'z')", "app.orders"),
        (
            "MERGE INTO app.orders o USING (SELECT 3 AS id) s ON o.id = s.id WHEN MATCHED THEN UPDATE SET v = 'm'",
            "app.orders",
        ),
    ] {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        let version: i32 = c
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .unwrap()
            .get(0);
        if sql.starts_with("MERGE") && version < 150000 {
            continue; // MERGE is PostgreSQL 15+.
        }
        c.batch_execute(
            "CREATE SCHEMA app; CREATE TABLE app.orders (id int PRIMARY KEY, v text); \
             INSERT INTO app.orders SELECT g, 'x' FROM generate_series(1, 5) g",
        )
        .await
        .unwrap();
        p.write("1_change.sql", &format!("{sql};\n"));
        // A session holding ACCESS EXCLUSIVE, bounded so a hang fails the test.
        let mut holder = p.db.pg().await;
        let tx = holder.transaction().await.unwrap();
        tx.batch_execute(
            "SET LOCAL statement_timeout = '60s'; LOCK TABLE app.orders IN ACCESS EXCLUSIVE MODE",
        )
        .await
        .unwrap();
        let child = p.spawn(&["up", "--lock-timeout", "100", "--lock-retry-for", "2"]);
        let r = wait_bounded(child, 60, "sluice");
        assert_eq!(r.code, 1, "{sql}: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("waited 100 ms for its lock on {table} and stepped back")),
            "{sql}: {r:?}"
        );
        assert!(r.stderr.contains("AccessExclusiveLock"), "{sql}: {r:?}");
        tx.rollback().await.unwrap();
        // Nothing changed while it was blocked; the rerun applies it.
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{sql}: {r:?}");
        let _ = &mut holder;
    }
}

/// CREATE INDEX on a live table runs CONCURRENTLY: writes continue while it builds.
#[tokio::test]
async fn create_index_runs_concurrently_and_writers_never_wait() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5000) g")
        .await
        .unwrap();
    p.write(
        "1_idx.sql",
        "-- sluice:up\nCREATE INDEX t_v_idx ON t (v);\n-- sluice:down\nDROP INDEX t_v_idx;\n",
    );
    let dry = p.run(&["up", "--dry-run"]);
    assert!(
        dry.stdout
            .contains("runs as: CREATE INDEX CONCURRENTLY IF NOT EXISTS t_v_idx ON t(v)"),
        "{dry:?}"
    );
    assert!(dry.stdout.contains("per-statement"), "{dry:?}");
    // An open transaction that wrote to t keeps the build waiting, so its lock can be observed.
    let mut old = p.db.pg().await;
    let tx = old.transaction().await.unwrap();
    tx.batch_execute("UPDATE t SET v = v WHERE id = 1")
        .await
        .unwrap();
    let child = p.spawn(&["up"]);
    eventually(30, "the index build waiting for the open transaction", || async {
        count(&c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'").await == 1
    })
    .await;
    let modes: Vec<String> = c
        .query("SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.relation = 't'::regclass AND a.query LIKE 'CREATE INDEX CONCURRENTLY%' AND l.granted", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        modes,
        ["ShareUpdateExclusiveLock"],
        "a plain CREATE INDEX would hold ShareLock"
    );
    // Writers are not blocked while the build runs.
    let writer = p.db.pg().await;
    writer
        .batch_execute("SET lock_timeout = '2s'")
        .await
        .unwrap();
    for i in 0..50 {
        writer
            .execute("INSERT INTO t VALUES ($1, 'new')", &[&(10_000 + i)])
            .await
            .expect("a write during the build");
        writer
            .execute("UPDATE t SET v = 'upd' WHERE id = $1", &[&(100 + i)])
            .await
            .expect("an update during the build");
    }
    tx.commit().await.unwrap();
    let r = wait_bounded(child, 60, "sluice building the index");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("built CONCURRENTLY"), "{r:?}");
    let valid: bool = c
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
    // The down part's DROP INDEX runs concurrently too.
    let d = p.run(&["down"]);
    assert_eq!(d.code, 0, "{d:?}");
    assert!(d.stderr.contains("dropped CONCURRENTLY"), "{d:?}");
    let _ = &mut old;
}

#[tokio::test]
async fn an_invalid_index_left_by_a_failed_build_is_dropped_and_rebuilt() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'a'), (3, 'b')").await.unwrap();
    p.write("1_uniq.sql", "CREATE UNIQUE INDEX t_v_key ON t (v);\n");
    let r = p.run(&["up"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("could not create unique index"), "{r:?}");
    let valid: bool = c
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_key'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        !valid,
        "the failed concurrent build leaves an invalid index"
    );
    c.batch_execute("UPDATE t SET v = 'c' WHERE id = 2")
        .await
        .unwrap();
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("dropped the invalid index t_v_key left by an earlier attempt"),
        "{r:?}"
    );
    let valid: bool = c
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_key'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
    // --as-written runs the statement exactly as written.
    p.write("2_idx.sql", "CREATE INDEX t_id_v ON t (id, v);\n");
    let dry = p.run(&["up", "--dry-run", "--as-written"]);
    assert!(!dry.stdout.contains("runs as:"), "{dry:?}");
    assert!(
        dry.stdout
            .contains("[single: all statements are transactional]"),
        "{dry:?}"
    );
}

/// ADD FOREIGN KEY / ADD CHECK run as NOT VALID, then VALIDATE in a transaction of its own, while
/// writers keep writing; a failed VALIDATE removes the NOT VALID constraint again (the statement
/// as written would leave nothing), and the rerun after the fix adds it afresh.
// Several worker threads: the writers keep writing while the test body waits for sluice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn constraints_are_added_not_valid_then_validated_while_writers_write() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE customers (id int PRIMARY KEY); INSERT INTO customers SELECT g FROM generate_series(1, 100) g;
         CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, amount int);
         INSERT INTO orders (customer_id, amount) SELECT 1 + g % 100, g FROM generate_series(1, 20000) g;
         INSERT INTO orders (customer_id, amount) VALUES (1, -5);",
    )
    .await
    .unwrap();
    p.write(
        "1_constraints.sql",
        "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);\nALTER TABLE orders ADD CONSTRAINT orders_amount_ok CHECK (amount >= 0);\n",
    );
    let dry = p.run(&["up", "--dry-run"]);
    assert!(dry.stdout.contains("runs as: ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers(id) NOT VALID"), "{dry:?}");
    assert!(dry.stdout.contains("must commit separately"), "{dry:?}");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for k in 0..3 {
        let w = p.db.pg().await;
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let (mut n, mut errors) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = w
                    .execute(
                        "INSERT INTO orders (customer_id, amount) VALUES ($1, 1)",
                        &[&(1 + (k * 7 + n) % 100)],
                    )
                    .await
                {
                    errors.push(e.to_string());
                }
                n += 1;
            }
            (n, errors)
        }));
    }
    // The existing row with amount -5 makes the CHECK's VALIDATE fail: the constraint is removed.
    let r = p.run(&["up"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("added NOT VALID, then validated in its own transaction"),
        "{r:?}"
    );
    assert!(r.stderr.contains("is violated by some row"), "{r:?}");
    assert!(
        r.stderr
            .contains("sluice removed what its staged steps had created"),
        "{r:?}"
    );
    let state: Vec<(String, bool)> = c
        .query("SELECT conname::text, convalidated FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype IN ('f', 'c') ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(state, vec![("orders_customer_fk".to_string(), true)]);

    c.batch_execute("UPDATE orders SET amount = 0 WHERE amount < 0")
        .await
        .unwrap();
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        let (n, errors) = w.await.unwrap();
        assert!(n > 0);
        assert!(errors.is_empty(), "writers failed: {errors:?}");
    }
    let validated: i64 = c
        .query_one("SELECT count(*) FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype IN ('f', 'c') AND convalidated", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(validated, 2);
    assert_eq!(p.states(), vec![(1, "applied".into())]);
}

/// ADD UNIQUE builds its index concurrently then attaches it; SET NOT NULL goes through a validated
/// check so it never scans under ACCESS EXCLUSIVE; a failed one removes its helper and runs again
/// after the fix.
// Several worker threads: the writers keep writing while the test body waits for sluice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unique_and_not_null_are_staged_and_resume_after_the_data_is_fixed() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE users (id int PRIMARY KEY, email text, nick text);
         INSERT INTO users SELECT g, 'u' || g || '@example.com', 'n' || g FROM generate_series(1, 5000) g;
         UPDATE users SET nick = NULL WHERE id = 7;",
    )
    .await
    .unwrap();
    p.write(
        "1_tighten.sql",
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);\nALTER TABLE users ALTER COLUMN nick SET NOT NULL;\n",
    );
    let writer = p.db.pg().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut n, mut errors) = (0i32, Vec::new());
            // A closed connection fails at once without yielding: stop then, or a failed
            // assertion above would leave this loop spinning.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && !writer.is_closed() {
                let id = 100_000 + n;
                let email = format!("w{id}@example.com");
                if let Err(e) = writer
                    .execute("INSERT INTO users VALUES ($1, $2, 'w')", &[&id, &email])
                    .await
                {
                    errors.push(e.to_string());
                }
                n += 1;
            }
            (n, errors)
        })
    };
    // The NULL nick makes the check's VALIDATE fail: the unique constraint is done, NOT NULL is not.
    let r = p.run(&["up"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("unique index built CONCURRENTLY, then attached"),
        "{r:?}"
    );
    assert!(r.stderr.contains("NOT NULL through a CHECK"), "{r:?}");
    assert!(r.stderr.contains("1_tighten.sql:2:1"), "{r:?}");
    let kinds: Vec<String> = c
        .query("SELECT conname::text || ':' || contype::text || ':' || convalidated FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype <> 'p' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut expected = vec!["users_email_key:u:true"];
    if server_version(&c).await >= 180000 {
        expected.push("users_id_not_null:n:true");
    }
    assert_eq!(kinds, expected, "the helper check is removed");
    c.batch_execute("UPDATE users SET nick = 'fixed' WHERE nick IS NULL")
        .await
        .unwrap();
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (n, errors) = w.await.unwrap();
    assert!(n > 0 && errors.is_empty(), "{n} writes, errors: {errors:?}");
    let not_null: bool = c
        .query_one("SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'nick'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(not_null);
    let leftovers: i64 = c.query_one("SELECT count(*) FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'c'", &[]).await.unwrap().get(0);
    assert_eq!(leftovers, 0, "the helper check is dropped");
    let dup = c
        .execute(
            "INSERT INTO users VALUES (999999, 'u1@example.com', 'x')",
            &[],
        )
        .await;
    assert!(dup.is_err(), "the unique constraint holds");
}

/// `sluice backfill` killed at several points: every rerun continues from its checkpoint, and in the
/// end every row was updated exactly once (`n = n + 1` would show a double update or a miss).
#[tokio::test]
async fn backfill_killed_repeatedly_updates_every_row_exactly_once() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (a int, b int, n int NOT NULL DEFAULT 0, PRIMARY KEY (a, b));
         INSERT INTO t SELECT g % 50, g, 0 FROM generate_series(1, 40000) g;",
    )
    .await
    .unwrap();
    let args = [
        "backfill",
        "--table",
        "t",
        "--set",
        "n = n + 1",
        "--batch-rows",
        "200",
        "--pause-ms",
        "20",
        "--pace",
        "speed",
    ];
    let mut kills = 0;
    for trial in 0..6u64 {
        let mut child = p.spawn(&args);
        // Different points in each trial: 150 ms to ~900 ms in.
        std::thread::sleep(std::time::Duration::from_millis(150 + (trial * 137) % 750));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        eventually(30, "the killed run's sessions to end", || async {
            count(&c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'sluice%'").await == 0
        })
        .await;
        // A kill that came before sluice made its schema (a slow start on a loaded machine) left
        // no checkpoint table: then no row may have been updated either.
        let done: i64 = if table_exists(&c, "sluice.backfills").await {
            count(
                &c,
                "SELECT coalesce(max(rows_done), 0) FROM sluice.backfills",
            )
            .await
        } else {
            0
        };
        let updated = count(&c, "SELECT count(*) FROM t WHERE n = 1").await;
        assert_eq!(
            done, updated,
            "the checkpoint matches the rows updated after kill {trial}"
        );
        assert_eq!(
            count(&c, "SELECT count(*) FROM t WHERE n > 1").await,
            0,
            "a row was updated twice"
        );
    }
    assert!(kills >= 3, "the runs were killed mid-way ({kills} kills)");
    // Rows inserted after the job started are beyond its upper key: the backfill does not chase them.
    c.batch_execute("INSERT INTO t SELECT 99, g, 0 FROM generate_series(1, 100) g")
        .await
        .unwrap();
    let r = p.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("resuming the backfill of public.t"),
        "{r:?}"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM t WHERE a < 99 AND n <> 1").await,
        0,
        "every original row updated exactly once"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM t WHERE a = 99 AND n <> 0").await,
        0,
        "new rows left to the application"
    );
    let again = p.run(&args);
    assert!(again.stderr.contains("already finished"), "{again:?}");
    let e = p.run(&["backfill", "--table", "no_such", "--set", "n = 1"]);
    assert_eq!(e.code, 2, "{e:?}");
}

/// Batches commit asynchronously (`synchronous_commit` off for each batch's own transaction): a
/// server crash may lose the last batches' commits, but each takes its checkpoint with it, so the
/// checkpoint that survives never points past a row that was not updated. On a private server the
/// WAL writer is stopped (SIGSTOP, with WAL buffers large enough to hold the run's WAL), so the
/// batches committed after that exist only in the server's memory, then killed (SIGKILL: the
/// server crashes, restarts and recovers from the WAL on disk), three times in one backfill; each
/// crash loses committed batches, and after each recovery the checkpoint equals the rows updated
/// and no row was updated twice; the last rerun ends with every row updated exactly once.
#[cfg(unix)]
#[tokio::test]
async fn backfill_survives_server_crashes_with_every_row_updated_exactly_once() {
    // No autovacuum: its synchronous commits would flush the batches' WAL.
    let Some(pg) = common::PrivatePg::start_with(
        "-c wal_buffers=64MB -c autovacuum=off -c restart_after_crash=on",
    ) else {
        eprintln!("skipped: no PostgreSQL 15 binaries (or root without a postgres user)");
        return;
    };
    let connect = |url: String| async move {
        // Right after a crash the server refuses connections until its recovery ends.
        for _ in 0..600 {
            if let Ok((c, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                tokio::spawn(conn);
                if c.simple_query("SELECT 1").await.is_ok() {
                    return c;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the private server did not come back");
    };
    connect(pg.url("postgres"))
        .await
        .batch_execute("CREATE DATABASE app")
        .await
        .unwrap();
    connect(pg.url("app"))
        .await
        .batch_execute(
            "CREATE TABLE t (a int, b int, n int NOT NULL DEFAULT 0, PRIMARY KEY (a, b));
             INSERT INTO t SELECT g % 50, g, 0 FROM generate_series(1, 300000) g;",
        )
        .await
        .unwrap();
    let p = Project::new(Server::Postgres).await;
    let args = [
        "backfill",
        "--table",
        "t",
        "--set",
        "n = n + 1",
        "--batch-rows",
        "500",
        "--pace",
        "speed",
    ];
    const DONE: &str = "SELECT coalesce(max(rows_done), 0) FROM sluice.backfills";
    let job_exists = "SELECT to_regclass('sluice.backfills') IS NOT NULL";
    let signal = |sig: &str, pid: i32| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill {sig} {pid}");
    };
    for trial in 0..3 {
        let child = p
            .command(&args)
            .env("DATABASE_URL", pg.url("app"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let c = connect(pg.url("app")).await;
        let before: bool = c.query_one(job_exists, &[]).await.unwrap().get(0);
        let from = if before { count(&c, DONE).await } else { 0 };
        let progressed = |by: i64| {
            let c = &c;
            async move {
                let exists: bool = c.query_one(job_exists, &[]).await.unwrap().get(0);
                exists && count(c, DONE).await >= by
            }
        };
        eventually(60, "batches to commit", || progressed(from + 5_000)).await;
        let walwriter: i32 = c
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        signal("-STOP", walwriter);
        let durable = count(&c, DONE).await;
        eventually(
            60,
            "batches to commit while the WAL writer is stopped",
            || progressed(durable + 10_000),
        )
        .await;
        let seen = count(&c, DONE).await;
        signal("-KILL", walwriter);
        let r = wait_bounded(child, 60, "the backfill whose server crashed");
        assert_ne!(r.code, 0, "the run lost its server mid-way: {r:?}");
        let c = connect(pg.url("app")).await;
        let done = count(&c, DONE).await;
        assert!(
            done < seen,
            "the crash lost committed batches (checkpoint {done}, {seen} seen committed)"
        );
        assert_eq!(
            done,
            count(&c, "SELECT count(*) FROM t WHERE n = 1").await,
            "the checkpoint matches the rows updated after crash {trial}"
        );
        assert_eq!(
            count(&c, "SELECT count(*) FROM t WHERE n > 1").await,
            0,
            "a row was updated twice"
        );
    }
    let r = wait_bounded(
        p.command(&args)
            .env("DATABASE_URL", pg.url("app"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        120,
        "the rerun after the crashes",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("resuming the backfill of public.t"),
        "{r:?}"
    );
    let c = connect(pg.url("app")).await;
    assert_eq!(
        count(&c, "SELECT count(*) FROM t WHERE n <> 1").await,
        0,
        "every row updated exactly once"
    );
}

/// `--set` and `--where` go inside sluice's batched statement: anything that would escape it (close
/// a parenthesis, end the statement, comment out the rest, add a clause) is refused before any row
/// is touched, with one message that names the flag, on a table with a key and one without.
#[tokio::test]
async fn backfill_refuses_input_that_escapes_its_batch() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
         INSERT INTO t SELECT g, 0 FROM generate_series(1, 50) g;
         CREATE TABLE h (id int, n int NOT NULL DEFAULT 0);
         INSERT INTO h SELECT g, 0 FROM generate_series(1, 50) g;",
    )
    .await
    .unwrap();
    let escapes: &[(&str, &str, &str)] = &[
        ("n = n + 1", "id < 5) OR (true", "--where"),
        ("n = n + 1", "id < 5)", "--where"),
        ("n = n + 1", "(id < 5", "--where"),
        ("n = n + 1", "id < 5; UPDATE t SET n = 100", "--where"),
        ("n = n + 1", "id < 5 OR true --", "--where"),
        ("n = n + 1", "id < 5 OR true /*", "--where"),
        ("n = n + 1", "id < 5 OR true /* x */", "--where"),
        ("n = n + 1", "id < 5 OR $$x", "--where"),
        ("n = n + 1", "id < 5 OR true LIMIT 1", "--where"),
        ("n = n + 1 WHERE true OR id", "id < 5", "--set"),
        ("n = n + 1 --", "id < 5", "--set"),
        ("n = n + 1; UPDATE t SET n = 100", "id < 5", "--set"),
        ("n = n + 1 RETURNING id", "id < 5", "--set"),
    ];
    for table in ["t", "h"] {
        for (set, filter, flag) in escapes {
            let r = p.run(&[
                "backfill", "--table", table, "--set", set, "--where", filter,
            ]);
            assert_eq!(r.code, 2, "{table} {set:?} {filter:?}: {r:?}");
            assert!(
                r.stderr.contains(&format!("{flag} "))
                    && r.stderr
                        .contains("sluice puts it inside its own batched statement"),
                "{table} {set:?} {filter:?}: {}",
                r.stderr
            );
            assert_eq!(
                count(&c, &format!("SELECT count(*) FROM {table} WHERE n <> 0")).await,
                0,
                "{table} {set:?} {filter:?}: rows were touched"
            );
        }
        // A condition that only looks odd is one expression and runs, on its rows only (it
        // excludes rows already updated, as the walk without a key requires).
        let r = p.run(&[
            "backfill",
            "--table",
            table,
            "--set",
            "n = n + 1",
            "--where",
            "id < 5 AND n = 0 AND ')' <> $$)--$$",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(
            count(
                &c,
                &format!("SELECT count(*) FROM {table} WHERE n = 1 AND id < 5")
            )
            .await,
            4
        );
        assert_eq!(
            count(&c, &format!("SELECT count(*) FROM {table} WHERE n <> 0")).await,
            4
        );
    }
    let none: i64 = count(
        &c,
        "SELECT count(*) FROM sluice.backfills WHERE where_expr LIKE '%OR (true%'",
    )
    .await;
    assert_eq!(none, 0, "no job recorded for a refused input");
}

/// A throttle query that says wait holds the backfill before its first batch; once it says go, the
/// backfill finishes and says why it paused.
#[tokio::test]
async fn backfill_waits_while_the_throttle_query_says_so() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
         INSERT INTO t SELECT g, 0 FROM generate_series(1, 5000) g;
         CREATE TABLE knob (busy bool NOT NULL); INSERT INTO knob VALUES (true);",
    )
    .await
    .unwrap();
    let child = p.spawn(&[
        "backfill",
        "--table",
        "t",
        "--set",
        "n = n + 1",
        "--pace",
        "speed",
        "--throttle-query",
        "SELECT busy FROM knob",
    ]);
    eventually(30, "the backfill job to be recorded", || async {
        count(&c, "SELECT count(*) FROM pg_tables WHERE schemaname = 'sluice' AND tablename = 'backfills'").await == 1
            && count(&c, "SELECT count(*) FROM sluice.backfills").await == 1
    })
    .await;
    // Without the throttle a 5,000-row backfill takes a few batches, well under a second.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        count(&c, "SELECT count(*) FROM t WHERE n <> 0").await,
        0,
        "no batch ran while the throttle query said wait"
    );
    c.batch_execute("UPDATE knob SET busy = false")
        .await
        .unwrap();
    let r = wait_bounded(child, 60, "the throttled backfill");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("backfill paused: the throttle query `SELECT busy FROM knob` says wait"),
        "{r:?}"
    );
    assert_eq!(count(&c, "SELECT count(*) FROM t WHERE n <> 1").await, 0);
    // A throttle query that returns something else is a clear error, and the job is kept.
    c.batch_execute("CREATE TABLE t2 (id int PRIMARY KEY, n int); INSERT INTO t2 VALUES (1, 0)")
        .await
        .unwrap();
    let bad = p.run(&[
        "backfill",
        "--table",
        "t2",
        "--set",
        "n = 1",
        "--pace",
        "speed",
        "--throttle-query",
        "SELECT 'soon'",
    ]);
    assert_eq!(bad.code, 6, "{bad:?}");
    assert!(
        bad.stderr.contains("must return a boolean or a number"),
        "{bad:?}"
    );
}

/// With latency pacing, a probe that gets slower while batches run (here: it sleeps whenever a
/// batch is running, as a client would feel a loaded server) makes the backfill pause between
/// batches; at full speed it does not. Every row is still updated exactly once.
#[tokio::test]
async fn backfill_backs_off_when_the_probe_slows_down_during_batches() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
         INSERT INTO t SELECT g, 0 FROM generate_series(1, 5000) g;",
    )
    .await
    .unwrap();
    let probe = "SELECT pg_sleep(0.03) FROM pg_stat_activity WHERE datname = current_database() \
                 AND state = 'active' AND query LIKE 'WITH bound AS%' LIMIT 1";
    let args = |pace: &'static str| {
        vec![
            "backfill".to_string(),
            "--table".into(),
            "t".into(),
            "--set".into(),
            // Each batch lasts ~50 ms or more (2 ms every 50 rows), so probes overlap it.
            "n = n + 1 + 0 * length(pg_sleep(CASE WHEN id % 50 = 0 THEN 0.002 ELSE 0 END)::text)"
                .into(),
            "--batch-rows".into(),
            "1000".into(),
            "--pace".into(),
            pace.into(),
            "--probe-query".into(),
            probe.into(),
        ]
    };
    let paced = p.run(
        &args("latency")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(paced.code, 0, "{paced:?}");
    assert!(
        paced
            .stderr
            .contains("pacing on probe latency (p90) within 1.5x"),
        "{paced:?}"
    );
    let paused: f64 = paced
        .stderr
        .split("paused ")
        .nth(1)
        .and_then(|s| s.split(" s in all").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pacing summary: {paced:?}"));
    assert!(paused > 0.0, "the slow probe made it pause: {paced:?}");
    assert_eq!(count(&c, "SELECT count(*) FROM t WHERE n <> 1").await, 0);
    c.batch_execute("UPDATE t SET n = 0; TRUNCATE sluice.backfills")
        .await
        .unwrap();
    let fast = p.run(&args("speed").iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(fast.code, 0, "{fast:?}");
    assert!(
        fast.stderr.contains("pacing on batch duration only"),
        "{fast:?}"
    );
    assert!(!fast.stderr.contains("paused "), "{fast:?}");
    assert_eq!(count(&c, "SELECT count(*) FROM t WHERE n <> 1").await, 0);
}

/// ADD COLUMN ... NOT NULL DEFAULT <volatile>: added without a rewrite, existing rows backfilled in
/// batches (each its own value, as written would give), NOT NULL through a validated check; a run
/// killed mid-backfill resumes; writers never fail.
// Several worker threads: the writers keep writing while the test body waits for sluice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn volatile_default_column_is_backfilled_without_a_rewrite_and_survives_kill_9() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE accounts (id bigint PRIMARY KEY, balance int); INSERT INTO accounts SELECT g, g FROM generate_series(1, 150000) g;")
        .await
        .unwrap();
    let before: i64 = c
        .query_one("SELECT pg_relation_filenode('accounts')::text::bigint", &[])
        .await
        .unwrap()
        .get(0);
    p.write(
        "1_token.sql",
        "ALTER TABLE accounts ADD COLUMN token text NOT NULL DEFAULT md5(random()::text);\n",
    );
    let writer = p.db.pg().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut n, mut errors) = (0i64, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                if let Err(e) = writer
                    .execute(
                        "INSERT INTO accounts (id, balance) VALUES ($1, 1)",
                        &[&(1_000_000 + n)],
                    )
                    .await
                {
                    errors.push(e.to_string());
                }
                if let Err(e) = writer
                    .execute(
                        "UPDATE accounts SET balance = balance + 1 WHERE id = $1",
                        &[&(1 + n % 150_000)],
                    )
                    .await
                {
                    errors.push(e.to_string());
                }
            }
            (n, errors)
        })
    };
    let mut child = p.spawn(&["up"]);
    eventually(30, "the backfill to make progress", || async {
        count(
            &c,
            "SELECT CASE WHEN to_regclass('sluice.backfills') IS NULL THEN 0 ELSE 1 END::bigint",
        )
        .await
            == 1
            && count(
                &c,
                "SELECT coalesce((SELECT max(rows_done) FROM sluice.backfills), 0)",
            )
            .await
                > 0
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let r = p.run(&["up"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (n, errors) = w.await.unwrap();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("resuming the backfill"), "{r:?}");
    assert!(n > 0 && errors.is_empty(), "{n} writes, errors: {errors:?}");
    let after: i64 = c
        .query_one("SELECT pg_relation_filenode('accounts')::text::bigint", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after, "the table was not rewritten");
    let (rows, distinct, nulls): (i64, i64, i64) = {
        let r = c.query_one("SELECT count(*), count(DISTINCT token), count(*) FILTER (WHERE token IS NULL) FROM accounts", &[]).await.unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(nulls, 0);
    assert_eq!(
        rows, distinct,
        "each row has its own value, as the volatile default gives as written"
    );
    let not_null: bool = c.query_one("SELECT attnotnull FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'token'", &[]).await.unwrap().get(0);
    assert!(not_null);
    assert_eq!(count(&c, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'accounts'::regclass AND contype = 'c'").await, 0);
    assert_eq!(p.states(), vec![(1, "applied".into())]);
}

/// A type change that rewrites the table and that sluice cannot stage (here: a foreign key from a
/// partitioned table references the column) is refused before anything of the migration runs; a binary-coercible
/// one runs; `--as-written` runs the rewrite on purpose.
#[tokio::test]
async fn rewriting_type_changes_are_refused_unless_as_written() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, n int UNIQUE, v varchar(10)); INSERT INTO t VALUES (1, 1, 'a'); CREATE TABLE child (t_n int REFERENCES t (n)) PARTITION BY RANGE (t_n); CREATE TABLE child_1 PARTITION OF child FOR VALUES FROM (0) TO (100)").await.unwrap();
    p.write("1_types.sql", "ALTER TABLE t ALTER COLUMN v TYPE varchar(50);\nALTER TABLE t ALTER COLUMN n TYPE bigint;\n");
    let r = p.run(&["up"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(
            "1_types.sql: line 2, column 1: changing t.n from integer to BIGINT rewrites the table"
        ),
        "{r:?}"
    );
    assert!(r.stderr.contains("--as-written"), "{r:?}");
    let v: String = c.query_one("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'v'", &[]).await.unwrap().get(0);
    assert_eq!(v, "character varying(10)", "nothing of the migration ran");
    assert_eq!(p.states(), vec![(1, "pending".into())]);
    let r = p.run(&["up", "--as-written"]);
    assert_eq!(r.code, 0, "{r:?}");
    let n: String = c.query_one("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'n'", &[]).await.unwrap().get(0);
    assert_eq!(n, "bigint");
    // A widening alone is catalog-only and runs.
    p.write(
        "2_widen.sql",
        "ALTER TABLE t ALTER COLUMN v TYPE varchar(80);\n",
    );
    assert_eq!(p.run(&["up"]).code, 0);
}

/// Statements the IR does not model are planned from their words, so `up` bounds the ones that hold
/// ACCESS EXCLUSIVE (SET UNLOGGED rewrites the table: it was planned as instant and ran unbounded),
/// and leaves the lighter ones (SET STATISTICS takes SHARE UPDATE EXCLUSIVE) alone.
#[tokio::test]
async fn unmodelled_statements_holding_access_exclusive_are_bounded() {
    for (sql, bounded) in [
        ("ALTER TABLE t SET UNLOGGED", true),
        ("ALTER TABLE t ALTER COLUMN a SET STATISTICS 500", false),
        ("ALTER TABLE t SET (fillfactor = 80)", false),
    ] {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL);
             INSERT INTO t SELECT g, g FROM generate_series(1, 200000) g;",
        )
        .await
        .unwrap();
        p.write("1_x.sql", &format!("{sql};\n"));
        let plan = p.run(&["plan"]);
        assert!(
            plan.stdout.contains(if bounded {
                "ACCESS EXCLUSIVE"
            } else {
                "SHARE UPDATE EXCLUSIVE"
            }),
            "{sql}: {plan:?}"
        );
        let r = p.run(&["up", "--exclusive-timeout", "1"]);
        if bounded {
            assert_eq!(r.code, 1, "{sql}: {r:?}");
            assert!(r.stderr.contains("holds ACCESS EXCLUSIVE"), "{sql}: {r:?}");
            let persistence: String = c
                .query_one(
                    "SELECT relpersistence::text FROM pg_class WHERE relname = 't'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(persistence, "p", "rolled back");
            let r = p.run(&["up", "--exclusive-timeout", "0"]);
            assert_eq!(r.code, 0, "{sql}: {r:?}");
        } else {
            assert_eq!(r.code, 0, "{sql}: {r:?}");
        }
        assert_eq!(p.states(), vec![(1, "applied".to_string())]);
    }
}

/// A step that holds ACCESS EXCLUSIVE on an existing table is bounded in run time as well as in
/// lock wait: one that turns out slow (a stored generated column calling a slow function rewrites
/// the table) is cancelled and rolled back after --exclusive-timeout instead of stopping every
/// query for as long as it runs; a column added to a table created in the same migration is not
/// bounded, and `--exclusive-timeout 0` lifts the bound.
#[tokio::test]
async fn a_slow_access_exclusive_step_is_cancelled_after_the_exclusive_timeout() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL);
         INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;
         CREATE FUNCTION slow(int) RETURNS int IMMUTABLE LANGUAGE sql
             AS 'SELECT $1 + 0 * length(pg_sleep(0.02)::text)';",
    )
    .await
    .unwrap();
    p.write(
        "1_generated.sql",
        "ALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (slow(a)) STORED;\n",
    );
    let r = p.run(&["up", "--exclusive-timeout", "300"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("holds ACCESS EXCLUSIVE (every query on the table waits while it runs) and was expected to be instant, but it ran longer than 300 ms"),
        "{r:?}"
    );
    let cols = count(
        &c,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'b'",
    )
    .await;
    assert_eq!(cols, 0, "the cancelled step was rolled back");
    assert_eq!(p.states(), vec![(1, "failed".to_string())]);
    // The statement timeout does not outlive the step: the session's later statements are free.
    let r = p.run(&["up", "--exclusive-timeout", "0"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(count(&c, "SELECT count(*) FROM t WHERE b = a").await, 100);
    // A table created in the same migration is empty and unseen: its ALTERs are not bounded.
    p.write(
        "2_new_table.sql",
        "CREATE TABLE u (id int PRIMARY KEY, a int NOT NULL);\n\
         INSERT INTO u SELECT g, g FROM generate_series(1, 30) g;\n\
         ALTER TABLE u ADD COLUMN b int GENERATED ALWAYS AS (slow(a)) STORED;\n",
    );
    let r = p.run(&["up", "--exclusive-timeout", "300"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// Records the lock modes sluice's sessions hold on a table, polled from pg_locks while it runs.
fn watch_sluice_locks(
    c: tokio_postgres::Client,
    table: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<std::collections::BTreeSet<String>> {
    tokio::spawn(async move {
        let mut seen = std::collections::BTreeSet::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let rows = c
                .query(
                    "SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                      WHERE a.application_name LIKE 'sluice%' AND l.granted
                        AND l.relation = to_regclass($1)",
                    &[&table],
                )
                .await
                .unwrap();
            for r in rows {
                seen.insert(r.get::<_, String>(0));
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        seen
    })
}

/// ADD PRIMARY KEY on a live table: the unique index is built concurrently, NOT NULL is proven by
/// validated checks, and one short step attaches it; writers keep inserting without an error, and
/// sluice never holds the SHARE lock a plain index build takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_primary_key_is_staged_while_writers_write() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (id bigint, v text);
         INSERT INTO t SELECT g, 'x' FROM generate_series(1, 30000) g;
         CREATE SEQUENCE t_next START 1000000;",
    )
    .await
    .unwrap();
    p.write("1_pk.sql", "ALTER TABLE t ADD PRIMARY KEY (id);\n");
    let dry = p.run(&["up", "--dry-run"]);
    for line in [
        r#"runs as: CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "t_pkey" ON t (id)"#,
        r#"then: ALTER TABLE t ADD CONSTRAINT "t_id_not_null_check" CHECK (id IS NOT NULL) NOT VALID"#,
        r#"then: ALTER TABLE t VALIDATE CONSTRAINT "t_id_not_null_check""#,
        r#"then: ALTER TABLE t ALTER COLUMN id SET NOT NULL; ALTER TABLE t ADD CONSTRAINT "t_pkey" PRIMARY KEY USING INDEX "t_pkey"; ALTER TABLE t DROP CONSTRAINT "t_id_not_null_check""#,
    ] {
        assert!(dry.stdout.contains(line), "{line}\n{dry:?}");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = watch_sluice_locks(p.db.pg().await, "t", stop.clone());
    let mut writers = Vec::new();
    for _ in 0..3 {
        let w = p.db.pg().await;
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let (mut n, mut errors) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = w
                    .execute("INSERT INTO t VALUES (nextval('t_next'), 'w')", &[])
                    .await
                {
                    errors.push(e.to_string());
                }
                n += 1;
            }
            (n, errors)
        }));
    }
    let r = p.run(&["up"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(r.code, 0, "{r:?}");
    for w in writers {
        let (n, errors) = w.await.unwrap();
        assert!(n > 0);
        assert!(errors.is_empty(), "writers failed: {errors:?}");
    }
    let modes = watch.await.unwrap();
    assert!(
        modes.contains("ShareUpdateExclusiveLock"),
        "the index build and the validation were seen: {modes:?}"
    );
    assert!(
        !modes.contains("ShareLock"),
        "a plain index build's SHARE lock: {modes:?}"
    );
    let pk: Vec<(String, String)> = c
        .query(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 't'::regclass",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // PostgreSQL 18 records NOT NULL as a constraint named as the ALTER as written names it.
    let mut expected = vec![("t_pkey".to_string(), "PRIMARY KEY (id)".to_string())];
    if server_version(&c).await >= 180000 {
        expected.insert(0, ("t_id_not_null".to_string(), "NOT NULL id".to_string()));
    }
    assert_eq!(
        pk, expected,
        "the key is attached and the helper checks are gone"
    );
    let nullable: String = c
        .query_one(
            "SELECT is_nullable FROM information_schema.columns WHERE table_name = 't' AND column_name = 'id'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nullable, "NO");
}

/// A table without a primary key is backfilled by block ranges of ctid, pass after pass until no
/// row matches the filter, so rows that writers move behind the walk are not missed. Without a
/// filter that makes the update idempotent, sluice refuses and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_without_a_primary_key_is_backfilled_by_ctid_while_writers_move_rows() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE events (id int NOT NULL, hits int NOT NULL DEFAULT 0);
         INSERT INTO events SELECT g, 0 FROM generate_series(1, 20000) g;",
    )
    .await
    .unwrap();
    let refused = p.run(&["backfill", "--table", "events", "--set", "hits = hits + 1"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("give a --where that excludes rows already updated"),
        "{refused:?}"
    );
    p.write(
        "1_token.sql",
        "ALTER TABLE events ADD COLUMN token text NOT NULL DEFAULT md5(random()::text);\n",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for k in 0..3i32 {
        let w = p.db.pg().await;
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let (mut n, mut errors) = (0i32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Updates move row versions around the table; inserts add rows.
                let r = if n % 4 == 0 {
                    w.execute(
                        "INSERT INTO events (id) VALUES ($1)",
                        &[&(100_000 + k * 100_000 + n)],
                    )
                    .await
                } else {
                    w.execute(
                        "UPDATE events SET hits = hits + 1 WHERE id = $1",
                        &[&(1 + (n * 7919 + k * 13) % 20000)],
                    )
                    .await
                };
                if let Err(e) = r {
                    errors.push(e.to_string());
                }
                n += 1;
            }
            (n, errors)
        }));
    }
    let r = p.run(&["up", "--pace", "speed"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("no primary key: by block ranges of ctid"),
        "{r:?}"
    );
    for w in writers {
        let (n, errors) = w.await.unwrap();
        assert!(n > 0);
        assert!(errors.is_empty(), "writers failed: {errors:?}");
    }
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM events WHERE token IS NULL OR length(token) <> 32"
        )
        .await,
        0
    );
    assert_eq!(
        count(&c, "SELECT count(DISTINCT token) FROM events").await,
        count(&c, "SELECT count(*) FROM events").await,
        "every row got its own value"
    );
    let not_null: String = c
        .query_one(
            "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'token'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(not_null, "NO");
}

/// Clients that update rows the current batch holds wait for its row locks: with latency pacing
/// the backfill sees those waits and makes its batches shorter, so each wait is shorter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_batches_shorten_while_clients_wait_for_their_row_locks() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, hits int NOT NULL DEFAULT 0);
         INSERT INTO t SELECT g, 0, 0 FROM generate_series(1, 10000) g;",
    )
    .await
    .unwrap();
    // ~0.1 ms a row, so a batch's duration follows its size. Batches of 200 ms hold their row
    // locks long enough that the walking client waits well over the 20 ms limit whatever the
    // machine's load (at the default 50 ms, a loaded machine's waits stayed at 20 ms).
    let args = |table: &'static str| {
        vec![
            "backfill",
            "--target-batch-ms",
            "200",
            "--table",
            table,
            "--set",
            "n = n + 1 + 0 * length(pg_sleep(CASE WHEN id % 20 = 0 THEN 0.002 ELSE 0 END)::text)",
        ]
    };
    let quiet = p.run(&args("t"));
    assert_eq!(quiet.code, 0, "{quiet:?}");
    let quiet_batches = count(&c, "SELECT max(batches) FROM sluice.backfills").await;
    c.batch_execute("UPDATE t SET n = 0; TRUNCATE sluice.backfills")
        .await
        .unwrap();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = p.db.pg().await;
    let s = stop.clone();
    let client = tokio::spawn(async move {
        let mut errors = Vec::new();
        let mut k = 0i32;
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            // Walks the table in big strides, so it keeps landing in the batch being updated.
            k = (k + 997) % 10000;
            if let Err(e) = w
                .execute("UPDATE t SET hits = hits + 1 WHERE id = $1", &[&(k + 1)])
                .await
            {
                errors.push(e.to_string());
            }
        }
        errors
    });
    let busy = p.run(&args("t"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(client.await.unwrap().is_empty());
    assert_eq!(busy.code, 0, "{busy:?}");
    let waited: f64 = busy
        .stderr
        .split("longest client wait for its row locks ")
        .nth(1)
        .and_then(|s| s.split(" ms").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no lock-wait summary: {busy:?}"));
    assert!(waited > 20.0, "the client waited for the batches: {busy:?}");
    assert!(
        busy.stderr
            .contains("for a batch's row locks; next batches aim at 100 ms"),
        "{busy:?}"
    );
    let busy_batches = count(&c, "SELECT max(batches) FROM sluice.backfills").await;
    assert!(
        busy_batches > quiet_batches,
        "shorter batches under lock waits: {busy_batches} vs {quiet_batches} without"
    );
    assert_eq!(count(&c, "SELECT count(*) FROM t WHERE n <> 1").await, 0);
}

/// Polls `sql` (a count) on a fresh connection until it equals `want`, for at most `secs`.
async fn wait_count(url: &str, sql: &str, want: i64, secs: u64) -> bool {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if count(&c, sql).await == want {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// A concurrent index build still running for an earlier attempt: the rerun waits for it instead
/// of taking its invalid index for an abandoned one (dropping it deadlocked with the build, 40P01),
/// whether that build then succeeds or is cancelled; a killed run's own build stops with it
/// (client_connection_check_interval); every rerun converges and the next one has nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_waits_for_an_index_build_still_in_progress() {
    const BUILDING: &str = "SELECT count(*) FROM pg_stat_progress_create_index p JOIN pg_class c ON c.oid = p.index_relid WHERE c.relname = 'i'";
    const VALID: &str = "SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE c.relname IN ('i', 't_b_key') AND x.indisvalid";
    for outcome in ["build finishes", "build is cancelled", "sluice killed"] {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute(
            "CREATE TABLE t (a int, b int); INSERT INTO t SELECT g, g FROM generate_series(1, 20000) g;",
        )
        .await
        .unwrap();
        p.write(
            "1_idx.sql",
            "CREATE INDEX i ON t (a);\nALTER TABLE t ADD UNIQUE (b);\n",
        );
        // A writer's open transaction holds the build in its wait for writers, INVALID meanwhile.
        let holder = p.db.pg().await;
        holder
            .batch_execute("BEGIN; LOCK TABLE t IN ROW EXCLUSIVE MODE")
            .await
            .unwrap();
        let builder = p.db.pg().await;
        let builder_pid: i32 = builder
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let build = if outcome == "sluice killed" {
            let mut child = p.spawn(&["up"]);
            assert!(
                wait_count(&p.db.url, BUILDING, 1, 20).await,
                "{outcome}: the build started"
            );
            child.kill().unwrap();
            child.wait().unwrap();
            // The server notices the client is gone and cancels its build, though it waits.
            assert!(
                wait_count(&p.db.url, BUILDING, 0, 5).await,
                "{outcome}: the killed run's build stopped"
            );
            None
        } else {
            // An earlier attempt's build that outlives its client (PostgreSQL < 14, or a client
            // that is not dead but stuck).
            let build = tokio::spawn(async move {
                builder
                    .batch_execute("CREATE INDEX CONCURRENTLY i ON t (a)")
                    .await
            });
            assert!(
                wait_count(&p.db.url, BUILDING, 1, 20).await,
                "{outcome}: the build started"
            );
            Some(build)
        };
        let mut rerun = p.spawn(&["up"]);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert!(
            rerun.try_wait().unwrap().is_none(),
            "{outcome}: the rerun waits while the build runs"
        );
        if outcome == "build is cancelled" {
            c.execute("SELECT pg_cancel_backend($1)", &[&builder_pid])
                .await
                .unwrap();
        }
        holder.batch_execute("COMMIT").await.unwrap();
        if let Some(build) = build {
            let r = build.await.unwrap();
            assert_eq!(r.is_ok(), outcome == "build finishes", "{outcome}: {r:?}");
        }
        let out = rerun.wait_with_output().unwrap();
        let r: common::Run = out.into();
        assert_eq!(r.code, 0, "{outcome}: {r:?}");
        assert!(
            !r.all().contains("40P01") && !r.all().contains("deadlock"),
            "{r:?}"
        );
        assert_eq!(
            count(&c, VALID).await,
            2,
            "{outcome}: both indexes built and valid"
        );
        assert_eq!(
            count(&c, "SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = 't'::regclass").await,
            2,
            "{outcome}: no leftover index"
        );
        let again = p.run(&["up"]);
        assert_eq!(again.code, 0, "{again:?}");
        assert_eq!(count(&c, VALID).await, 2);
    }
}

/// No password reaches the terminal, whatever shape the URL has (malformed ones included) and
/// however it arrives (DATABASE_URL, --database-url, sluice.toml): the parse error, the connect
/// error against a closed port or a missing database, and a failed `up` recorded in the history.
#[tokio::test]
async fn no_password_in_any_output_for_any_url_shape() {
    let p = Project::new(Server::Postgres).await;
    let db = p.db.name.clone();
    let shapes = [
        "postgres://{u}:{p}@127.0.0.1:5432/{db}",
        "postgres://{u}:{p}@127.0.0.1:1/{db}",
        "postgres://{u}:{p}@127.0.0.1:5432/{db}_missing",
        "postgres:/{u}:{p}@127.0.0.1/{db}",
        "postgres//{u}:{p}@127.0.0.1/{db}",
        "{u}:{p}@127.0.0.1/{db}",
        "postgres://{u}:{p}@127.0.0.1:badport/{db}",
        "postgres://{u}@127.0.0.1:badport/{db}?password={p}",
        "postgres://{u}@127.0.0.1:1/{db}?password={p}",
        "postgres://{u}:{p}@127.0.0.1:5432",
        "postgres://{u}:{p}",
        "host=127.0.0.1 user={u} password={p} dbname={db}",
    ];
    let passwords = [
        "Zq7kP2vX9m",
        "postgres",
        "Kp9@Vx7:Wr4/Qz6%2B+Hy5",
        "Ür7ñï©Øz4dé😀Mq8",
    ];
    let mut runs = 0;
    for shape in shapes {
        for pw in passwords {
            if pw.contains('@') && !shape.contains("127.0.0.1") {
                continue;
            }
            let url = shape
                .replace("{u}", "postgres")
                .replace("{p}", pw)
                .replace("{db}", &db);
            let toml = p.path().join("sluice.toml");
            std::fs::write(&toml, format!("database_url = {:?}\n", url)).unwrap();
            for how in ["env", "flag", "config"] {
                let mut cmd = p.command(&["status"]);
                match how {
                    "env" => cmd.env("DATABASE_URL", &url),
                    "flag" => cmd.args(["--database-url", &url]),
                    _ => cmd.env_remove("DATABASE_URL"),
                };
                let r: common::Run = cmd.output().unwrap().into();
                runs += 1;
                let out = format!("{}{}", r.stdout, r.stderr);
                if pw == "postgres" {
                    // Equal to the user name: nothing may mark it as the password.
                    assert!(
                        !out.contains("***\"") && !out.contains("`***`"),
                        "{url}: {out}"
                    );
                    continue;
                }
                for f in pw
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|f| f.chars().count() >= 3)
                {
                    assert!(!out.contains(f), "{how} {url}: `{f}` in {out}");
                }
            }
            std::fs::remove_file(&toml).unwrap();
        }
    }
    assert!(runs >= 120, "{runs}");

    // A failed `up` through a URL carrying a password: neither the output nor the history has it.
    let c = p.db.pg().await;
    p.write("1_bad.sql", "SELECT 1/0;\n");
    let url = p.db.url_as(&format!("{}:Zq7kP2vX9m", p.db.user()));
    assert_ne!(url, p.db.url);
    let r: common::Run = p
        .command(&["up"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 1, "{r:?}");
    let stored: Vec<String> = c
        .query("SELECT coalesce(error, '') FROM sluice.migrations UNION ALL SELECT detail FROM sluice.events", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        stored.iter().any(|s| s.contains("division by zero")),
        "{stored:?}"
    );
    for text in stored.iter().chain([&r.stdout, &r.stderr]) {
        assert!(!text.contains("Zq7kP2vX9m"), "{text}");
    }
}

/// An unnamed index whose concurrent build is cut off (sluice killed while the build waits for a
/// writer) leaves an index under the name the server chose: INVALID when the killed backend gave
/// up, valid when it went on. The rerun must drop the invalid leftover and build again, or take the
/// valid one as built, so the index ends once, valid, with the name the statement as written
/// gives — never a second copy under `<name>1`. Every index shape, written plain (sluice builds it
/// concurrently) and CONCURRENTLY; invalid indexes that were there before are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unnamed_index_cut_off_mid_build_is_rebuilt_under_its_own_name() {
    let shapes = [
        ("t", "(v)"),
        ("t", "(lower(v))"),
        ("t", "(v) WHERE v IS NOT NULL"),
        ("t", "(id) INCLUDE (v)"),
        ("t", "USING hash (v)"),
        ("t", "(id, v DESC NULLS LAST)"),
        ("t", "(v text_pattern_ops)"),
        ("\"Mixed Case\"", "(\"Wert\")"),
        ("s.t", "(v, id)"),
    ];
    // One database, one migration per case: each case's index is dropped again after it.
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    let su = p.db.pg_su().await;
    c.batch_execute(
        "CREATE SCHEMA s;
         CREATE TABLE t (id int PRIMARY KEY, v text);
         CREATE TABLE s.t (id int PRIMARY KEY, v text);
         CREATE TABLE \"Mixed Case\" (id int PRIMARY KEY, \"Wert\" text);
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g;
         INSERT INTO s.t SELECT g, 'v' || g FROM generate_series(1, 500) g;
         INSERT INTO \"Mixed Case\" SELECT g, 'v' || g FROM generate_series(1, 500) g;",
    )
    .await
    .unwrap();
    let blocker = p.db.pg().await;
    let mut version = 0;
    for (n, (table, rest)) in shapes.iter().enumerate() {
        for unique in [false, true] {
            if unique && (rest.contains("hash") || n % 3 != 0) {
                continue;
            }
            version += 1;
            let concurrently = version % 2 == 0;
            // Half the cases let the killed backend give up (an invalid leftover), half let it go on.
            let gave_up = (version / 2) % 2 == 0;
            let kind = if unique { "UNIQUE INDEX" } else { "INDEX" };
            let how = if concurrently { " CONCURRENTLY" } else { "" };
            let stmt = format!("CREATE {kind}{how} ON {table} {rest}");
            let case = format!("{stmt} (killed build gave up: {gave_up})");
            let regclass = format!("'{}'::regclass", table.replace('\'', "''"));
            let indexes = || async {
                c.query(
                    &format!(
                        "SELECT c.relname::text, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                          WHERE i.indrelid = {regclass} AND NOT i.indisprimary AND c.relname NOT LIKE 'before%' ORDER BY 1"
                    ),
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, bool>(1)))
                .collect::<Vec<_>>()
            };
            // The name the statement as written gives, learnt and undone.
            c.batch_execute(&stmt.replace(" CONCURRENTLY", ""))
                .await
                .unwrap();
            let first = indexes().await;
            assert_eq!(first.len(), 1, "{case}: {first:?}");
            let name = first[0].0.clone();
            let schema = if *table == "s.t" { "s" } else { "public" };
            let qualified = format!("\"{schema}\".\"{name}\"");
            c.batch_execute(&format!("DROP INDEX {qualified}"))
                .await
                .unwrap();
            // An invalid index of another definition, there before the migration: it stays.
            c.batch_execute(&format!("CREATE INDEX before_{version} ON {table} (id)"))
                .await
                .unwrap();
            // (Only an administrator writes the catalogs.)
            su.batch_execute(&format!(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{schema}.before_{version}'::regclass"
            ))
            .await
            .unwrap();

            // A writer's open transaction holds the build in its wait for writers, with the
            // index already in the catalog; sluice is killed there.
            blocker
                .batch_execute(&format!("BEGIN; UPDATE {table} SET id = id WHERE id = 1"))
                .await
                .unwrap();
            p.write(
                &format!("{version}_idx.sql"),
                &format!("-- sluice:up\n{stmt};\n"),
            );
            let mut child = p.spawn(&["up"]);
            let progress =
                format!("SELECT pid FROM pg_stat_progress_create_index WHERE relid = {regclass}");
            let mut pid = None;
            for _ in 0..300 {
                if let Some(r) = c.query_opt(&progress, &[]).await.unwrap() {
                    pid = Some(r.get::<_, i32>(0));
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let pid = pid.unwrap_or_else(|| panic!("{case}: the build never started"));
            child.kill().unwrap();
            child.wait().unwrap();
            if gave_up {
                // The killed backend notices its client is gone and rolls back.
                for _ in 0..400 {
                    let alive: bool = c
                        .query_one(
                            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)",
                            &[&pid],
                        )
                        .await
                        .unwrap()
                        .get(0);
                    if !alive {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
            blocker.batch_execute("COMMIT").await.unwrap();
            if gave_up {
                assert_eq!(
                    indexes().await,
                    vec![(name.clone(), false)],
                    "{case}: the leftover"
                );
            }

            let r = p.run(&["up"]);
            assert_eq!(r.code, 0, "{case}: {r:?}");
            if gave_up {
                assert!(
                    r.stderr
                        .contains("an earlier attempt at this unnamed index left"),
                    "{case}: {r:?}"
                );
            }
            assert_eq!(indexes().await, vec![(name.clone(), true)], "{case}");
            let before: bool = c
                .query_one(
                    &format!("SELECT indisvalid FROM pg_index WHERE indexrelid = '{schema}.before_{version}'::regclass"),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert!(
                !before,
                "{case}: an invalid index that was there before stays"
            );
            // Nothing of the build is left in sluice's records once it is done.
            let records: i64 = c
                .query_one(
                    "SELECT count(*) FROM sluice.meta WHERE key LIKE 'unnamed index %'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(records, 0, "{case}");
            c.batch_execute(&format!(
                "DROP INDEX {qualified}; DROP INDEX {schema}.before_{version}"
            ))
            .await
            .unwrap();
        }
    }
}

async fn server_version(c: &tokio_postgres::Client) -> i32 {
    c.query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap()
        .get(0)
}

/// The window of an unnamed `CREATE INDEX CONCURRENTLY` (sluice records the table's indexes, sends
/// the build, records the statement's progress, forgets its record): `up` killed at each point of
/// it, for the first and for the second of two identical statements, and the rerun killed again,
/// ends with what the statements as written give (two valid indexes, their names and
/// definitions), no invalid index and no record left behind.
#[tokio::test(flavor = "multi_thread")]
async fn an_unnamed_index_killed_anywhere_in_its_window_converges_to_the_as_written_indexes() {
    // (where it dies, on which arrival there, how the first run dies)
    let points = [
        ("unnamed-index-recorded", 1),
        ("unnamed-index-recorded", 2),
        ("unnamed-index-built", 1),
        ("unnamed-index-built", 2),
        ("unnamed-index-progress-recorded", 1),
        ("unnamed-index-progress-recorded", 2),
        ("mid-build", 1),
    ];
    let shapes = [
        ("t", "INDEX", "(v)"),
        ("t", "INDEX", "(lower(v)) WHERE v IS NOT NULL"),
        ("t", "UNIQUE INDEX", "(id, v)"),
        ("\"Mixed Case\"", "INDEX", "(\"Wert\" DESC NULLS LAST)"),
        ("t", "INDEX", "USING hash (v)"),
        ("t", "INDEX", "(id) INCLUDE (v)"),
        ("\"Mixed Case\"", "UNIQUE INDEX", "(id, \"Wert\")"),
    ];
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    for (k, ((point, nth), (table, kind, rest))) in points.iter().zip(shapes.iter()).enumerate() {
        let k = k + 1;
        let column = if table.starts_with('"') {
            "\"Wert\""
        } else {
            "v"
        };
        let qualified = format!("c{k}.{table}");
        c.batch_execute(&format!(
            "CREATE SCHEMA c{k};
             CREATE TABLE {qualified} (id int PRIMARY KEY, {column} text);
             INSERT INTO {qualified} SELECT g, 'v' || g FROM generate_series(1, 2000) g;"
        ))
        .await
        .unwrap();
        let stmt = format!("CREATE {kind} CONCURRENTLY ON {qualified} {rest}");
        let case = format!("{stmt} killed at {point}@{nth}");
        let regclass = format!("'{}'::regclass", qualified.replace('\'', "''"));
        let indexes = format!(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid), i.indisvalid
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = {regclass} AND NOT i.indisprimary ORDER BY 1"
        );
        let read = |rows: Vec<tokio_postgres::Row>| {
            rows.iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        r.get::<_, String>(1),
                        r.get::<_, bool>(2),
                    )
                })
                .collect::<Vec<_>>()
        };
        // What the two statements as written leave, learnt in a transaction rolled back.
        let written = stmt.replace(" CONCURRENTLY", "");
        c.batch_execute(&format!("BEGIN; {written}; {written};"))
            .await
            .unwrap();
        let want = read(c.query(&indexes, &[]).await.unwrap());
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(want.len(), 2, "{case}: {want:?}");

        p.write(
            &format!("{k}_idx.sql"),
            &format!("-- sluice:up\n{stmt};\n{stmt};\n"),
        );
        if *point == "mid-build" {
            // A writer's open transaction holds the build in its wait, the index already in the
            // catalog; sluice gets SIGKILL there and its backend goes on once the writer commits.
            let blocker = p.db.pg().await;
            blocker
                .batch_execute(&format!(
                    "BEGIN; UPDATE {qualified} SET id = id WHERE id = 1"
                ))
                .await
                .unwrap();
            let mut child = p.spawn(&["up"]);
            let progress =
                format!("SELECT pid FROM pg_stat_progress_create_index WHERE relid = {regclass}");
            eventually(60, &format!("{case}: the build starts"), || async {
                c.query_opt(&progress, &[]).await.unwrap().is_some()
            })
            .await;
            child.kill().unwrap();
            child.wait().unwrap();
            blocker.batch_execute("COMMIT").await.unwrap();
        } else {
            let point = format!("{point}@{nth}");
            let died = p.command(&["up"]).env("SLUICE_CRASH_AT", &point).output();
            let died: common::Run = died.unwrap().into();
            assert_ne!(died.code, 0, "{case}: {died:?}");
            assert!(
                died.stderr.contains("ending the process here"),
                "{case}: {died:?}"
            );
            // The rerun dies too, the first time it reaches that point (if it does).
            let again: common::Run = p
                .command(&["up"])
                .env("SLUICE_CRASH_AT", point.replace(&format!("@{nth}"), "@1"))
                .output()
                .unwrap()
                .into();
            assert!(
                again.code == 0 || again.stderr.contains("ending the process here"),
                "{case}: {again:?}"
            );
        }
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{case}: {r:?}");
        assert_eq!(
            read(c.query(&indexes, &[]).await.unwrap()),
            want,
            "{case}: the indexes the statements as written give, each valid, none twice"
        );
        let records: i64 = count(
            &c,
            "SELECT count(*) FROM sluice.meta WHERE key LIKE 'unnamed index %'",
        )
        .await;
        assert_eq!(records, 0, "{case}: a build's record left behind");
        assert_eq!(
            p.states().last().cloned(),
            Some((k as i64, "applied".to_string())),
            "{case}"
        );
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{case}: nothing left to run: {r:?}");
    }
}

/// A table of 20k rows whose statistics only sluice can make: autovacuum is off for it, so a test
/// on them cannot pass because autovacuum's analyze happened to come by.
async fn unanalyzed_table(c: &tokio_postgres::Client) {
    c.batch_execute(
        "CREATE TABLE t (id bigint PRIMARY KEY, n int); INSERT INTO t SELECT g, g % 100 FROM generate_series(1, 20000) g; ALTER TABLE t SET (autovacuum_enabled = off)",
    )
    .await
    .unwrap();
    assert_eq!(
        count(c, "SELECT count(*) FROM pg_stats WHERE tablename = 't'").await,
        0
    );
}

/// Issue 16: every staged form that backfills a column (ADD COLUMN with a volatile default,
/// nullable or NOT NULL; a rewriting type change's shadow column) analyzes it before `up` ends:
/// pg_stats has the column and the table's last_analyze is set.
#[tokio::test]
async fn backfilled_columns_are_analyzed_by_up() {
    let cases = [
        (
            "ALTER TABLE t ADD COLUMN x text DEFAULT md5(random()::text)",
            "x",
        ),
        (
            "ALTER TABLE t ADD COLUMN x text NOT NULL DEFAULT md5(random()::text)",
            "x",
        ),
        // The shadow column is analyzed before the swap: its statistics stay with it under the
        // old name.
        ("ALTER TABLE t ALTER COLUMN n TYPE bigint", "n"),
    ];
    for (sql, column) in cases {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute("SET statement_timeout = '30s'")
            .await
            .unwrap();
        unanalyzed_table(&c).await;
        p.write("1_m.sql", &format!("{sql};\n"));
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{sql}: {r:?}");
        assert!(!r.all().contains("did not run"), "{sql}: {r:?}");
        let stats = c
            .query(
                "SELECT null_frac::float8 FROM pg_stats WHERE tablename = 't' AND attname = $1",
                &[&column],
            )
            .await
            .unwrap();
        assert_eq!(stats.len(), 1, "{sql}: no statistics on {column}");
        assert_eq!(stats[0].get::<_, f64>(0), 0.0, "{sql}");
        eventually(10, "last_analyze to be set", || async {
            count(
                &c,
                "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 't' AND last_analyze IS NOT NULL",
            )
            .await
                == 1
        })
        .await;
        assert_eq!(
            count(&c, "SELECT count(*) FROM t WHERE n IS NULL").await,
            0,
            "{sql}"
        );
        assert_eq!(count(&c, "SELECT count(*) FROM t").await, 20000, "{sql}");
        // The type change alone in its migration keeps the old column until `sluice complete`.
        let want = if sql.contains(" TYPE ") {
            "expanded"
        } else {
            "applied"
        };
        assert_eq!(p.states(), vec![(1, want.into())], "{sql}");
    }
}

/// Issue 16: when another session holds SHARE UPDATE EXCLUSIVE (a VACUUM, an ANALYZE, an index
/// build) past the lock-retry budget, the ANALYZE step gives up and says so, and the migration
/// still succeeds with its data intact; the rerun exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyze_that_cannot_get_its_lock_never_fails_up() {
    tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute("SET statement_timeout = '30s'").await.unwrap();
        unanalyzed_table(&c).await;
        // A slow trigger makes the backfill take seconds, so the locker below takes its lock
        // after the catalog steps (ACCESS EXCLUSIVE) and before the ANALYZE.
        c.batch_execute(
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN PERFORM pg_sleep(0.0003); RETURN NEW; END'; CREATE TRIGGER slow BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION slow()",
        )
        .await
        .unwrap();
        p.write(
            "1_m.sql",
            "ALTER TABLE t ADD COLUMN x text DEFAULT md5(random()::text);\n",
        );
        let child = p.spawn(&["up", "--lock-timeout", "100", "--lock-retry-for", "2"]);
        eventually(30, "the backfill to make progress", || async {
            count(
                &c,
                "SELECT CASE WHEN to_regclass('sluice.backfills') IS NULL THEN 0 ELSE 1 END::bigint",
            )
            .await
                == 1
                && count(
                    &c,
                    "SELECT coalesce((SELECT max(rows_done) FROM sluice.backfills), 0)",
                )
                .await
                    > 0
        })
        .await;
        let mut locker = p.db.pg().await;
        locker
            .batch_execute("SET statement_timeout = '10s'")
            .await
            .unwrap();
        let tx = locker.transaction().await.unwrap();
        tx.batch_execute("LOCK TABLE t IN SHARE UPDATE EXCLUSIVE MODE")
            .await
            .unwrap();
        let r = wait_bounded(child, 60, "up");
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stderr.contains("warning: `ANALYZE t (\"x\")` did not run")
                && r.stderr.contains("run `ANALYZE t` later"),
            "{r:?}"
        );
        assert!(r.stderr.contains("gave up after"), "{r:?}");
        // The ANALYZE did not run: no statistics (autovacuum is off for the table).
        assert_eq!(
            count(&c, "SELECT count(*) FROM pg_stats WHERE tablename = 't'").await,
            0
        );
        tx.rollback().await.unwrap();
        let (rows, distinct, nulls): (i64, i64, i64) = {
            let r = c.query_one("SELECT count(*), count(DISTINCT x), count(*) FILTER (WHERE x IS NULL) FROM t", &[]).await.unwrap();
            (r.get(0), r.get(1), r.get(2))
        };
        assert_eq!((rows, distinct, nulls), (20000, 20000, 0));
        assert_eq!(p.states(), vec![(1, "applied".into())]);
        for _ in 0..2 {
            let again = p.run(&["up"]);
            assert_eq!(again.code, 0, "{again:?}");
            assert_eq!(p.states(), vec![(1, "applied".into())]);
        }
    })
    .await
    .expect("the test took longer than 120 s");
}

/// The standalone `sluice backfill` refreshes the planner's statistics on exactly the columns it
/// assigned (`ANALYZE t (cols)`, as `up` does after its backfills). When that ANALYZE cannot have
/// its lock the backfill still succeeds (exit 0) and says what to run; the rerun, which finds the
/// backfill finished, analyzes then.
#[tokio::test]
async fn standalone_backfill_analyzes_the_columns_it_assigned() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, \"Note\" text, other int)
           WITH (autovacuum_enabled = false);
         INSERT INTO t SELECT g, 0, NULL, g FROM generate_series(1, 2000) g;",
    )
    .await
    .unwrap();
    let analyzed = || async {
        c.query_one(
            "SELECT coalesce(string_agg(attname::text, ',' ORDER BY attname), '') FROM pg_stats
              WHERE schemaname = 'public' AND tablename = 't'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0)
    };
    let r = p.run(&[
        "backfill",
        "--table",
        "t",
        "--set",
        "n = n + 1, \"Note\" = 'x'",
        "--pace",
        "speed",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("did not run"), "{r:?}");
    assert_eq!(analyzed().await, "Note,n");

    // Another session holds SHARE UPDATE EXCLUSIVE: the batches (ROW EXCLUSIVE) run, the
    // ANALYZE waits its lock timeout and steps aside.
    let (holder, conn) = tokio_postgres::connect(&p.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN SHARE UPDATE EXCLUSIVE MODE")
        .await
        .unwrap();
    let args = [
        "backfill",
        "--table",
        "t",
        "--set",
        "other = other + 1",
        "--pace",
        "speed",
        "--lock-timeout",
        "200",
    ];
    let r = p.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(
            "warning: `ANALYZE \"t\" (\"other\")` did not run: canceling statement due to lock timeout; the backfill is done"
        ),
        "{r:?}"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM t WHERE other = id + 1").await,
        2000
    );
    assert_eq!(analyzed().await, "Note,n");
    holder.batch_execute("ROLLBACK").await.unwrap();
    let r = p.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("already finished"), "{r:?}");
    assert_eq!(analyzed().await, "Note,n,other");
    assert_eq!(
        count(&c, "SELECT count(*) FROM t WHERE other = id + 1").await,
        2000,
        "the rerun updates nothing twice"
    );
}
