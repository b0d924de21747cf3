//! sluice.toml's `[session]` settings: a history written for a lenient `sql_mode`, a
//! `search_path` or a `timezone` applies as written; a setting the server rejects stops the run
//! before any work (exit 2, naming it); each migration's events record the settings it ran with.

mod common;

use common::Project;
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;

async fn scalar(p: &Project, server: Server, sql: &str) -> Option<String> {
    match server {
        Server::Postgres => p.db.pg().await.query_one(sql, &[]).await.unwrap().get(0),
        Server::MariaDb => p.db.my().await.query_first(sql).await.unwrap(),
    }
}

/// Each case: the settings, the migrations (written for those settings), and a query with the
/// as-written result.
struct Case {
    settings: &'static str,
    migrations: &'static [(&'static str, &'static str, &'static str)],
    check: &'static str,
    want: &'static str,
    recorded: &'static str,
}

fn cases(server: Server) -> Vec<Case> {
    match server {
        Server::Postgres => vec![
            Case {
                settings: "search_path = \"app, public\"\ntimezone = \"Asia/Tokyo\"\n",
                migrations: &[
                    ("1_schema.sql", "CREATE SCHEMA app;\n", "DROP SCHEMA app;\n"),
                    (
                        "2_t.sql",
                        "CREATE TABLE t (id int PRIMARY KEY, at timestamp);\n\
                         INSERT INTO t VALUES (1, '2020-01-01 00:00:00+00'::timestamptz::timestamp);\n",
                        "DROP TABLE t;\n",
                    ),
                ],
                // The table went to the first schema of the search_path, and the wall-clock time
                // is Tokyo's.
                check: "SELECT at::text FROM app.t",
                want: "2020-01-01 09:00:00",
                recorded: "session: search_path = 'app, public', timezone = 'Asia/Tokyo'",
            },
            Case {
                settings: "statement_timeout = 0\nstandard_conforming_strings = true\n\"app.note\" = \"it's a \\\\ -c x=y\"\n",
                migrations: &[(
                    "1_t.sql",
                    "CREATE TABLE t (v text);\nINSERT INTO t VALUES (current_setting('statement_timeout') || current_setting('standard_conforming_strings') || current_setting('app.note'));\n",
                    "DROP TABLE t;\n",
                )],
                check: "SELECT v FROM t",
                want: "0onit's a \\ -c x=y",
                recorded: "session: app.note = 'it''s a \\ -c x=y', standard_conforming_strings = on, statement_timeout = 0",
            },
        ],
        Server::MariaDb => vec![
            Case {
                // Not strict: a too-long value is truncated with a warning, as the history's
                // driver expected.
                settings: "sql_mode = \"NO_ENGINE_SUBSTITUTION\"\n",
                migrations: &[(
                    "1_t.sql",
                    "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(3), n INT);\n\
                     INSERT INTO t VALUES (1, 'toolong', 'abc');\n",
                    "DROP TABLE t;\n",
                )],
                check: "SELECT CONCAT(s, ':', n) FROM t",
                want: "too:0",
                recorded: "session: sql_mode = 'NO_ENGINE_SUBSTITUTION'",
            },
            Case {
                settings: "time_zone = \"+09:00\"\nforeign_key_checks = false\nwait_timeout = 600\n",
                migrations: &[(
                    "1_t.sql",
                    "CREATE TABLE p (id INT PRIMARY KEY);\n\
                     CREATE TABLE c (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES p (id));\n\
                     INSERT INTO c VALUES (1, 42);\n\
                     CREATE TABLE t (v VARCHAR(64));\n\
                     INSERT INTO t VALUES (CONCAT(CONVERT_TZ('2020-01-01 00:00:00', '+00:00', @@session.time_zone), '/', @@session.wait_timeout));\n",
                    "DROP TABLE t;\nDROP TABLE p;\nDROP TABLE c;\n",
                )],
                check: "SELECT CONCAT(v, '/', (SELECT COUNT(*) FROM c)) FROM t",
                want: "2020-01-01 09:00:00/600/1",
                recorded: "session: foreign_key_checks = off, time_zone = '+09:00', wait_timeout = 600",
            },
        ],
    }
}

async fn settings_apply_and_are_recorded(server: Server) {
    for case in cases(server) {
        let p = Project::new(server).await;
        for (f, up, down) in case.migrations {
            p.write(f, &format!("-- sluice:up\n{up}-- sluice:down\n{down}"));
        }
        // Without the settings the history does not apply as written (or applies differently).
        let toml = p.path().join("sluice.toml");
        std::fs::write(&toml, format!("[session]\n{}", case.settings)).unwrap();
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{}: {r:?}", case.settings);
        assert_eq!(
            scalar(&p, server, case.check).await.as_deref(),
            Some(case.want),
            "{}",
            case.settings
        );
        let events = match server {
            Server::Postgres => "SELECT string_agg(detail, '|' ORDER BY id) FROM sluice.events WHERE kind = 'up'",
            Server::MariaDb => "SELECT GROUP_CONCAT(detail ORDER BY id SEPARATOR '|') FROM sluice_events WHERE kind = 'up'",
        };
        let details = scalar(&p, server, events).await.unwrap();
        let n = case.migrations.len();
        assert_eq!(
            details.matches(case.recorded).count(),
            n,
            "every up event records the settings: {details}"
        );
        // Down runs under the same settings and records them too.
        let r = p.run(&["down", "--to", "0"]);
        assert_eq!(r.code, 0, "{r:?}");
        let downs = events.replace("'up'", "'down'");
        let details = scalar(&p, server, &downs).await.unwrap();
        assert_eq!(details.matches(case.recorded).count(), n, "{details}");
    }
}

#[tokio::test]
async fn postgres_settings_apply_and_are_recorded() {
    settings_apply_and_are_recorded(Server::Postgres).await;
}

#[tokio::test]
async fn mariadb_settings_apply_and_are_recorded() {
    settings_apply_and_are_recorded(Server::MariaDb).await;
}

/// A setting the server rejects: exit 2 naming it, nothing applied, no history written; fixed,
/// the rerun applies everything.
async fn rejected_settings_stop_before_work(server: Server) {
    let rejected: &[(&str, &str)] = match server {
        Server::Postgres => &[
            ("timezone = \"Mars/Phobos\"", "timezone"),
            ("no_such_setting = \"x\"", "no_such_setting"),
            ("statement_timeout = \"soon\"", "statement_timeout"),
            ("search_path = \"app\"\nlock_timeout = true", "lock_timeout"),
        ],
        Server::MariaDb => &[
            ("sql_mode = \"BOGUS\"", "sql_mode"),
            ("no_such_var = \"x\"", "no_such_var"),
            ("wait_timeout = \"soon\"", "wait_timeout"),
            ("time_zone = \"+00:00\"\nsql_mode = \"it's\"", "sql_mode"),
        ],
    };
    for (settings, key) in rejected {
        let p = Project::new(server).await;
        p.write("1_t.sql", "CREATE TABLE t (id INT PRIMARY KEY);\n");
        let toml = p.path().join("sluice.toml");
        std::fs::write(&toml, format!("[session]\n{settings}\n")).unwrap();
        for args in [&["up"][..], &["status"], &["plan"], &["drift"]] {
            let r = p.run(args);
            assert_eq!(r.code, 2, "{settings} {args:?}: {r:?}");
            assert!(
                r.stderr.contains(&format!(
                    "sluice.toml [session] `{key}`: the server rejects"
                )),
                "{settings}: {r:?}"
            );
        }
        let history = match server {
            Server::Postgres => "SELECT to_regclass('sluice.migrations')::text",
            Server::MariaDb => {
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            }
        };
        assert_eq!(
            scalar(&p, server, history).await,
            None,
            "{settings}: no work"
        );
        std::fs::write(&toml, "[session]\n").unwrap();
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(p.states(), [(1, "applied".to_string())]);
    }
    // A name that is no setting name never reaches the server.
    let p = Project::new(server).await;
    std::fs::write(p.path().join("sluice.toml"), "[session]\n\"a;b\" = \"x\"\n").unwrap();
    let r = p.run(&["status"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("[session]: `a;b` is not a server setting name"),
        "{r:?}"
    );
}

#[tokio::test]
async fn postgres_rejected_settings_stop_before_work() {
    rejected_settings_stop_before_work(Server::Postgres).await;
}

#[tokio::test]
async fn mariadb_rejected_settings_stop_before_work() {
    rejected_settings_stop_before_work(Server::MariaDb).await;
}

/// timestamp → timestamptz is catalog-only on PostgreSQL 12+ when the session TimeZone is UTC:
/// `plan` and `up` judge it with the zone in effect at the statement (sluice.toml's `[session]`,
/// then the migration's own SET / RESET), and the server agrees (the table keeps its file, the
/// values are the same instants). A change they judge a rewrite is refused, and runs with
/// `--as-written`.
#[tokio::test]
async fn postgres_timestamptz_judged_with_the_session_time_zone() {
    let server = Server::Postgres;
    let utc = [
        "UTC",
        "Etc/UTC",
        "GMT",
        "Etc/GMT",
        "Zulu",
        "UCT",
        "Universal",
        "Greenwich",
        "GMT0",
        "Etc/GMT-0",
    ];
    let not_utc = ["Europe/London", "Africa/Abidjan", "Etc/GMT+1", "Asia/Tokyo"];
    // (session zone, what the migration says first, catalog-only?)
    let mut cases: Vec<(String, String, bool)> = Vec::new();
    for z in utc {
        cases.push((z.into(), String::new(), true));
        cases.push((
            "Europe/London".into(),
            format!("SET timezone = '{z}';\n"),
            true,
        ));
        cases.push(("Asia/Tokyo".into(), format!("SET TIME ZONE '{z}';\n"), true));
    }
    for z in not_utc {
        cases.push((z.into(), String::new(), false));
        cases.push(("UTC".into(), format!("SET timezone = '{z}';\n"), false));
    }
    cases.push((
        "Europe/London".into(),
        "SET timezone = 'UTC';\nRESET timezone;\n".into(),
        false,
    ));
    cases.push((
        "Europe/London".into(),
        "SET timezone = 'UTC';\nSET timezone TO DEFAULT;\n".into(),
        false,
    ));
    for (zone, set, catalog_only) in cases {
        let what = format!("session {zone}, then {set:?}");
        let p = Project::new(server).await;
        std::fs::write(
            p.path().join("sluice.toml"),
            format!("[session]\ntimezone = \"{zone}\"\n"),
        )
        .unwrap();
        p.write(
            "1_t.sql",
            "CREATE TABLE t (id int PRIMARY KEY, c timestamp);\nINSERT INTO t VALUES (1, '2020-01-01 12:00:00');\n",
        );
        assert_eq!(p.run(&["up"]).code, 0, "{what}");
        p.write(
            "2_tz.sql",
            &format!("{set}ALTER TABLE t ALTER COLUMN c TYPE timestamptz;\n"),
        );
        let filenode = "SELECT pg_relation_filenode('t')::text";
        let before = scalar(&p, server, filenode).await;
        let plan = p.run(&["plan"]);
        assert_eq!(
            plan.stdout.contains("binary coercible: catalog only"),
            catalog_only,
            "{what}: {plan:?}"
        );
        let r = p.run(&["up"]);
        if catalog_only {
            assert_eq!(r.code, 0, "{what}: {r:?}");
            assert_eq!(
                scalar(&p, server, filenode).await,
                before,
                "{what}: no rewrite"
            );
            assert_eq!(
                scalar(
                    &p,
                    server,
                    "SELECT to_char(c AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM t"
                )
                .await
                .as_deref(),
                Some("2020-01-01 12:00:00"),
                "{what}"
            );
        } else {
            // Not catalog-only in this zone: `up` stages it (shadow column, sync trigger,
            // backfill, one short swap) instead of refusing, converting as the ALTER would.
            assert_eq!(r.code, 0, "{what}: {r:?}");
            assert!(r.stderr.contains("staged type change"), "{what}: {r:?}");
            // The type change alone in its migration keeps the old column until `sluice
            // complete` (issue 13): expanded; beside a SET it is applied at once.
            let want = if set.is_empty() {
                "expanded"
            } else {
                "applied"
            };
            assert_eq!(p.states()[1].1, want, "{what}");
        }
    }
}

/// Sessions sluice opens besides the work session run with the settings too: PostgreSQL's
/// `sluice backfill` batches (every row reads the setting), MariaDB's online copy (a TIMESTAMP →
/// DATETIME copy converts in the copy session's time zone, as the ALTER as written converts in
/// its own).
#[tokio::test]
async fn postgres_backfill_sessions_have_the_settings() {
    let server = Server::Postgres;
    let p = Project::new(server).await;
    std::fs::write(
        p.path().join("sluice.toml"),
        "[session]\n\"app.note\" = \"from sluice.toml\"\n",
    )
    .unwrap();
    p.write("1_t.sql", "CREATE TABLE t (id INT PRIMARY KEY, v text);\n");
    assert_eq!(p.run(&["up"]).code, 0);
    p.db.pg()
        .await
        .batch_execute("INSERT INTO t SELECT g, NULL FROM generate_series(1, 500) g")
        .await
        .unwrap();
    let r = p.run(&[
        "backfill",
        "--table",
        "t",
        "--set",
        "v = current_setting('app.note')",
        "--batch-rows",
        "70",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let q = "SELECT CONCAT(COUNT(*), ':', MIN(v), ':', MAX(v)) FROM t";
    assert_eq!(
        scalar(&p, server, q).await.as_deref(),
        Some("500:from sluice.toml:from sluice.toml")
    );
}

#[tokio::test]
async fn mariadb_online_copy_sessions_have_the_settings() {
    let server = Server::MariaDb;
    let mut results = Vec::new();
    for online in [true, false] {
        let p = Project::new(server).await;
        std::fs::write(
            p.path().join("sluice.toml"),
            "[session]\ntime_zone = \"+09:00\"\n",
        )
        .unwrap();
        p.write(
            "1_t.sql",
            "CREATE TABLE t (id INT PRIMARY KEY, d TIMESTAMP NULL);\n",
        );
        assert_eq!(p.run(&["up"]).code, 0);
        p.db.my()
            .await
            .query_drop("SET time_zone = '+00:00'; INSERT INTO t SELECT seq, '2020-01-01 00:00:00' FROM seq_1_to_50")
            .await
            .unwrap();
        p.write("2_dt.sql", "ALTER TABLE t MODIFY d DATETIME NULL;\n");
        let args: &[&str] = if online {
            &["up"]
        } else {
            &["up", "--as-written"]
        };
        let r = p.run(args);
        assert_eq!(r.code, 0, "{r:?}");
        if online {
            assert!(r.stderr.contains("copy"), "the online copy ran: {r:?}");
        }
        results.push(
            scalar(
                &p,
                server,
                "SELECT CONCAT(COUNT(*), ':', MIN(d), ':', MAX(d)) FROM t",
            )
            .await,
        );
    }
    assert_eq!(
        results[0].as_deref(),
        Some("50:2020-01-01 09:00:00:2020-01-01 09:00:00")
    );
    assert_eq!(results[0], results[1], "online copy = as written");
}
