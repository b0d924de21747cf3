//! Reviewed plans on real servers: `sluice plan --out FILE` then `sluice up --plan FILE` runs exactly
//! the reviewed steps, and refuses (exit 4, nothing applied, each difference named) whenever
//! anything changed between the review and the run.

mod common;

use common::{Project, Run};
use sluice_testkit::Server;

const BASE: &str = "-- sluice:up\nCREATE TABLE t (id bigint PRIMARY KEY, v varchar(50));\nINSERT INTO t VALUES (1, 'a');\n-- sluice:down\nDROP TABLE t;\n";
const ADD: &str =
    "-- sluice:up\nALTER TABLE t ADD COLUMN w int;\n-- sluice:down\nALTER TABLE t DROP COLUMN w;\n";
const IDX: &str =
    "-- sluice:up\nCREATE INDEX t_v ON t (v);\n-- sluice:down\nDROP INDEX t_v ON t;\n";
const IDX_PG: &str = "-- sluice:up\nCREATE INDEX t_v ON t (v);\n-- sluice:down\nDROP INDEX t_v;\n";

async fn exec(p: &Project, sql: &str) {
    match p.db.server {
        Server::Postgres => p.db.pg().await.batch_execute(sql).await.unwrap(),
        Server::MariaDb => {
            use mysql_async::prelude::Queryable;
            let mut c = p.db.my().await;
            c.query_drop(sql).await.unwrap();
            c.disconnect().await.unwrap();
        }
    }
}

/// The columns of `t`, in order.
async fn columns(p: &Project) -> Vec<String> {
    match p.db.server {
        Server::Postgres => p
            .db
            .pg()
            .await
            .query(
                "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 't' ORDER BY ordinal_position",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect(),
        Server::MariaDb => {
            use mysql_async::prelude::Queryable;
            let mut c = p.db.my().await;
            let v: Vec<String> = c
                .query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' ORDER BY ORDINAL_POSITION")
                .await
                .unwrap();
            c.disconnect().await.unwrap();
            v
        }
    }
}

fn idx(server: Server) -> &'static str {
    match server {
        Server::Postgres => IDX_PG,
        Server::MariaDb => IDX,
    }
}

/// A project with `1_base` applied and `2_add`, `3_idx` pending.
async fn project(server: Server) -> Project {
    let p = Project::new(server).await;
    p.write("1_base.sql", BASE);
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    p.write("2_add.sql", ADD);
    p.write("3_idx.sql", idx(server));
    p
}

fn plan(p: &Project, extra: &[&str]) -> serde_json::Value {
    plan_exiting(p, extra, 0)
}

/// `plan --out`, whose exit code is the plan's own (7 when it lints errors): the file is written.
fn plan_exiting(p: &Project, extra: &[&str], code: i32) -> serde_json::Value {
    let mut args = vec!["plan", "--out", "plan.json"];
    args.extend_from_slice(extra);
    let r = p.run(&args);
    assert_eq!(r.code, code, "{r:?}");
    assert!(
        r.stderr.contains("wrote the plan to plan.json") && !r.stdout.is_empty(),
        "the human plan still prints and the file is named: {r:?}"
    );
    serde_json::from_str(&std::fs::read_to_string(p.path().join("plan.json")).unwrap()).unwrap()
}

fn edit_plan(p: &Project, f: impl FnOnce(&mut serde_json::Value)) {
    let path = p.path().join("plan.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn up_plan(p: &Project) -> Run {
    p.run(&["up", "--plan", "plan.json"])
}

fn states(p: &Project) -> Vec<(i64, String)> {
    p.states()
}

fn pending_23() -> Vec<(i64, String)> {
    vec![
        (1, "applied".into()),
        (2, "pending".into()),
        (3, "pending".into()),
    ]
}

#[tokio::test]
async fn postgres_plan_then_up_runs_exactly_the_plan() {
    plan_then_up_runs_exactly_the_plan(Server::Postgres).await
}

#[tokio::test]
async fn mariadb_plan_then_up_runs_exactly_the_plan() {
    plan_then_up_runs_exactly_the_plan(Server::MariaDb).await
}

async fn plan_then_up_runs_exactly_the_plan(server: Server) {
    let p = project(server).await;
    let doc = plan(&p, &[]);
    assert_eq!(doc["format"], "sluice-plan");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["database"], p.db.name.as_str());
    assert_eq!(doc["history"]["head"]["version"], 1);
    assert_eq!(doc["schema_fingerprint"].as_str().unwrap().len(), 64);
    let migs = doc["migrations"].as_array().unwrap();
    let versions: Vec<i64> = migs
        .iter()
        .map(|m| m["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 3]);
    for (m, file) in migs.iter().zip(["2_add.sql", "3_idx.sql"]) {
        assert_eq!(m["checksum"].as_str().unwrap().len(), 64, "{file}");
    }
    let idx_stmt = &migs[1]["statements"][0];
    assert_eq!(idx_stmt["sql"], "CREATE INDEX t_v ON t (v)");
    // The steps are the ones `up --dry-run` prints.
    let dry = p.run(&["up", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    for m in migs {
        assert!(
            dry.stdout.contains(&format!(
                "{}_{}  [{}: {}]",
                m["version"],
                m["name"].as_str().unwrap(),
                m["mode"].as_str().unwrap(),
                m["mode_reason"].as_str().unwrap()
            )),
            "{m}\n{dry:?}"
        );
        for s in m["statements"].as_array().unwrap() {
            if let Some(r) = s["runs_as"].as_object() {
                let line = format!("runs as: {}", r["sql"].as_str().unwrap());
                assert!(dry.stdout.contains(&line), "{line}\n{dry:?}");
            }
        }
    }
    if server == Server::Postgres {
        assert_eq!(
            idx_stmt["runs_as"]["sql"],
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_v ON t(v)"
        );
    }

    // A dry run checks the plan and runs nothing.
    let r = p.run(&["up", "--plan", "plan.json", "--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("matches the database and the files"),
        "{r:?}"
    );
    assert_eq!(states(&p), pending_23());

    let r = up_plan(&p);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("done: 2 migration(s) applied as planned in plan.json"),
        "{r:?}"
    );
    assert_eq!(columns(&p).await, ["id", "v", "w"]);
    let status = p.status_json();
    let id = &r.stderr[r.stderr.find("plan.json (").unwrap() + 11..][..12];
    for m in &status["migrations"].as_array().unwrap()[1..] {
        assert_eq!(m["status"], "applied");
        assert!(
            m["applied_by"]
                .as_str()
                .unwrap()
                .ends_with(&format!(" plan {id}")),
            "the history names the plan: {m}"
        );
    }

    // A rerun (a retried CI job) has nothing to do, and says so, every time.
    for _ in 0..2 {
        let again = up_plan(&p);
        assert_eq!(again.code, 0, "{again:?}");
        assert!(
            again
                .stderr
                .contains("is already applied (2, 3): nothing to do"),
            "{again:?}"
        );
    }
    // Still true when a newer migration is pending: it is not this plan's.
    p.write("4_more.sql", "-- sluice:up\nCREATE TABLE more (id int);\n");
    let again = up_plan(&p);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stderr.contains(
            "1 other migration(s) are pending and not in this plan: write and review a new plan"
        ),
        "{again:?}"
    );
    assert_eq!(states(&p)[3], (4, "pending".to_string()));
}

/// One kind of change between review and run: what it does, the differences `up --plan` must name,
/// and the migration states the re-planned run ends with.
struct Case {
    name: &'static str,
    want: &'static [&'static str],
    /// Only on this engine (its steps differ in engine-specific ways).
    only: Option<Server>,
}

const CASES: &[Case] = &[
    Case {
        name: "edit a file",
        want: &["migration 3_idx: file edited: checksum plan "],
        only: None,
    },
    Case {
        name: "add a file",
        want: &["migration 4_new: not in the plan, now pending (a migration file was added)"],
        only: None,
    },
    Case {
        name: "remove a file",
        want: &["migration 3_idx: plan applies it, now its file is gone"],
        only: None,
    },
    Case {
        name: "create a table out of band",
        want: &["schema fingerprint: plan ", "other (exists live, not recorded)"],
        only: None,
    },
    Case {
        name: "alter a table out of band",
        want: &["schema fingerprint: plan ", "t.z (exists live, not recorded)"],
        only: None,
    },
    Case {
        name: "another run applies a migration",
        want: &[
            "history head: plan 1_base, now 2_add",
            "migration 2_add: plan applies it, now it is already applied (by ",
            "schema fingerprint: plan ",
        ],
        only: None,
    },
    Case {
        name: "sluice version in the plan",
        want: &["sluice version: plan 0.0.1-reviewed, now "],
        only: None,
    },
    Case {
        name: "server version in the plan",
        want: &["server: plan ", " 9.1, now "],
        only: None,
    },
    Case {
        name: "database in the plan",
        want: &["database: plan `staging`, now `sluice_t_"],
        only: None,
    },
    Case {
        name: "step in the plan",
        want: &["migration 2_add: statement 1: plan `ALTER TABLE t ADD COLUMN w bigint`, now `ALTER TABLE t ADD COLUMN w int`"],
        only: None,
    },
    Case {
        name: "option in the plan",
        want: &["migration 3_idx: statement 1: plan `CREATE INDEX t_v ON t (v) (runs as: CREATE INDEX CONCURRENTLY IF NOT EXISTS t_v ON t(v))`, now `CREATE INDEX t_v ON t (v)`"],
        only: Some(Server::Postgres),
    },
    Case {
        name: "option in the plan",
        want: &["migration 2_add: statement 1: plan `ALTER TABLE t ADD COLUMN w int (runs as: online"],
        only: Some(Server::MariaDb),
    },
];

async fn change(p: &Project, case: &str) {
    let server = p.db.server;
    match case {
        "edit a file" => p.write("3_idx.sql", &idx(server).replace("(v);", "(v, id);")),
        "add a file" => p.write("4_new.sql", "-- sluice:up\nCREATE TABLE n (id int);\n"),
        "remove a file" => std::fs::remove_file(p.migration_path("3_idx.sql")).unwrap(),
        "create a table out of band" => exec(p, "CREATE TABLE other (x int)").await,
        "alter a table out of band" => exec(p, "ALTER TABLE t ADD COLUMN z int").await,
        "another run applies a migration" => {
            let r = p.run(&["up", "--to", "2"]);
            assert_eq!(r.code, 0, "{r:?}");
        }
        "sluice version in the plan" => {
            edit_plan(p, |v| v["sluice_version"] = "0.0.1-reviewed".into())
        }
        "server version in the plan" => edit_plan(p, |v| v["server_version"] = "9.1".into()),
        "database in the plan" => edit_plan(p, |v| v["database"] = "staging".into()),
        "step in the plan" => edit_plan(p, |v| {
            v["migrations"][0]["statements"][0]["sql"] = "ALTER TABLE t ADD COLUMN w bigint".into()
        }),
        // A plan reviewed with other options than its file says (e.g. edited to --as-written).
        "option in the plan" => edit_plan(p, |v| {
            v["options"]["as_written"] = true.into();
        }),
        other => panic!("unknown case {other}"),
    }
}

#[test]
fn postgres_every_change_since_review_is_refused_and_named() {
    every_change_since_review_is_refused_and_named(Server::Postgres)
}

#[test]
fn mariadb_every_change_since_review_is_refused_and_named() {
    every_change_since_review_is_refused_and_named(Server::MariaDb)
}

/// The cases run side by side, each on its own database and thread: most of their time is the
/// server's.
fn every_change_since_review_is_refused_and_named(server: Server) {
    let runs: Vec<_> = CASES
        .iter()
        .filter(|c| c.only.is_none_or(|s| s == server))
        .map(|case| {
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(refused_then_replanned(server, case))
            })
        })
        .collect();
    let failed: Vec<String> = runs
        .into_iter()
        .zip(CASES.iter().filter(|c| c.only.is_none_or(|s| s == server)))
        .filter_map(|(r, c)| r.join().is_err().then(|| c.name.to_string()))
        .collect();
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}

async fn refused_then_replanned(server: Server, case: &'static Case) {
    {
        let p = project(server).await;
        plan(&p, &[]);
        change(&p, case.name).await;
        let before_states = states(&p);
        let before_columns = columns(&p).await;
        // Refused every time it is tried, before anything runs.
        for attempt in 0..2 {
            let r = up_plan(&p);
            assert_eq!(r.code, 4, "{} (attempt {attempt}): {r:?}", case.name);
            assert!(
                r.stderr.contains(
                    "no longer matches the database and the migration files; nothing was run"
                ),
                "{}: {r:?}",
                case.name
            );
            for want in case.want {
                assert!(
                    r.stderr.contains(want),
                    "{}: wants `{want}`: {r:?}",
                    case.name
                );
            }
            assert!(
                r.stderr.contains("sluice plan --out plan.json"),
                "{}: the fix: {r:?}",
                case.name
            );
            assert_eq!(states(&p), before_states, "{}: nothing recorded", case.name);
            assert_eq!(
                columns(&p).await,
                before_columns,
                "{}: nothing applied",
                case.name
            );
        }
        // Written again (and reviewed), the plan runs.
        let doc = plan(&p, &[]);
        let r = up_plan(&p);
        assert_eq!(r.code, 0, "{}: {r:?}", case.name);
        let st = states(&p);
        assert!(
            st.iter().all(|(_, s)| s == "applied"),
            "{}: {st:?} after {doc}",
            case.name
        );
        assert!(
            columns(&p).await.contains(&"w".to_string()),
            "{}",
            case.name
        );
    }
}

#[tokio::test]
async fn postgres_conflicting_flags_and_bad_plan_files_are_bad_input() {
    let p = project(Server::Postgres).await;
    plan(&p, &[]);
    for flags in [
        &["--as-written"][..],
        &["--to", "2"],
        &["--out-of-order"],
        &["--create-database"],
    ] {
        let mut args = vec!["up", "--plan", "plan.json"];
        args.extend_from_slice(flags);
        let r = p.run(&args);
        assert_eq!(r.code, 2, "{flags:?}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "{} cannot be combined with --plan: the plan records the options it was made with",
                flags[0]
            )),
            "{r:?}"
        );
    }
    // The reviewed options are the ones that run: --as-written, planned, runs the index as written.
    // As written, the index build blocks writes: an error-level finding, exit 7, the file still written.
    let doc = plan_exiting(&p, &["--as-written"], 7);
    assert_eq!(doc["options"]["as_written"], true);
    assert!(doc["migrations"][1]["statements"][0]["runs_as"].is_null());

    let text = std::fs::read_to_string(p.path().join("plan.json")).unwrap();
    let mut future: serde_json::Value = serde_json::from_str(&text).unwrap();
    future["format_version"] = 2.into();
    future["sluice_version"] = "9.0.0".into();
    let cases = [
        (
            "truncated",
            text[..text.len() / 3].to_string(),
            "is not a readable sluice plan: it ends early (truncated?)",
        ),
        (
            "corrupt",
            text.replacen("\"format\"", "\"format\" x", 1),
            "is not a readable sluice plan: line 2, column",
        ),
        (
            "not a plan",
            "{\"migrations\": []}".to_string(),
            "is not a sluice plan (no `\"format\": \"sluice-plan\"`)",
        ),
        (
            "future",
            future.to_string(),
            "has plan format version 2, written by sluice 9.0.0; this sluice",
        ),
        (
            "incomplete",
            text.replacen("\"schema_fingerprint\"", "\"fingerprint\"", 1),
            "is not a complete sluice plan: missing field `schema_fingerprint`",
        ),
        ("empty", String::new(), "it ends early"),
    ];
    for (what, body, want) in cases {
        std::fs::write(p.path().join("bad.json"), body).unwrap();
        for _ in 0..2 {
            let r = p.run(&["up", "--plan", "bad.json"]);
            assert_eq!(r.code, 2, "{what}: {r:?}");
            assert!(r.stderr.contains(want), "{what}: wants `{want}`: {r:?}");
            assert!(
                r.stderr.contains("sluice plan --out bad.json"),
                "{what}: {r:?}"
            );
        }
        assert_eq!(states(&p), pending_23(), "{what}");
    }
    let r = p.run(&["up", "--plan", "missing.json"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("reading the plan missing.json"), "{r:?}");
    assert_eq!(states(&p), pending_23());
}

#[tokio::test]
async fn postgres_a_failed_planned_run_is_not_resumed_from_the_old_plan() {
    let p = project(Server::Postgres).await;
    p.write(
        "2_add.sql",
        "-- sluice:up\n-- sluice:transaction per-statement\nALTER TABLE t ADD COLUMN w int;\nINSERT INTO t (id, v) VALUES (1, 'dup');\n",
    );
    plan(&p, &[]);
    let r = up_plan(&p);
    assert_eq!(r.code, 1, "{r:?}");
    // The history moved (2 failed after its first statement): the reviewed plan no longer
    // describes what would run (it would resume at statement 2).
    for _ in 0..2 {
        let r = up_plan(&p);
        assert_eq!(r.code, 4, "{r:?}");
        assert!(
            r.stderr.contains("recorded history: plan 1 record(s)")
                && r.stderr
                    .contains("migration 2_add: starts at statement 1 in the plan, now at 2"),
            "{r:?}"
        );
    }
    p.write(
        "2_add.sql",
        "-- sluice:up\n-- sluice:transaction per-statement\nALTER TABLE t ADD COLUMN w int;\nINSERT INTO t (id, v) VALUES (2, 'new');\n",
    );
    let doc = plan(&p, &[]);
    assert_eq!(doc["migrations"][0]["resume_from"], 1);
    let r = up_plan(&p);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(states(&p).iter().all(|(_, s)| s == "applied"));
}

#[tokio::test]
async fn postgres_the_plan_file_holds_no_url_and_no_password() {
    let p = project(Server::Postgres).await;
    // The server trusts local connections, so the password is sent and ignored.
    let url = p.db.url_as(&format!("{}:{SECRET}", p.db.user()));
    no_url_and_no_password(&p, &url);
}

#[tokio::test]
async fn mariadb_the_plan_file_holds_no_url_and_no_password() {
    let p = project(Server::MariaDb).await;
    // A user of its own with a password, limited to the test database.
    let user = format!("sluice_plan_{}", std::process::id());
    let admin = |sql: String| async move {
        use mysql_async::prelude::Queryable;
        let mut c = mysql_async::Conn::from_url(sluice_testkit::mysql_admin_url())
            .await
            .unwrap();
        c.query_drop(sql).await.unwrap();
        c.disconnect().await.unwrap();
    };
    admin(format!(
        "CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{SECRET}'"
    ))
    .await;
    admin(format!("GRANT ALL ON `{}`.* TO '{user}'@'%'", p.db.name)).await;
    let url = p.db.url_as(&format!("{user}:{SECRET}"));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        no_url_and_no_password(&p, &url)
    }));
    admin(format!("DROP USER '{user}'@'%'")).await;
    outcome.unwrap();
}

const SECRET: &str = "pw-Secret-42";

fn no_url_and_no_password(p: &Project, url: &str) {
    assert!(url.contains(SECRET), "{url}");
    let r = p.run(&["--database-url", url, "plan", "--out", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let text = std::fs::read_to_string(p.path().join("plan.json")).unwrap();
    for leak in [SECRET, "://", "127.0.0.1"] {
        assert!(!text.contains(leak), "plan file holds `{leak}`");
    }
    assert!(!r.all().contains(SECRET), "{r:?}");
    let r = p.run(&["--database-url", url, "up", "--plan", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.all().contains(SECRET), "{r:?}");
    assert!(p.states().iter().all(|(_, s)| s == "applied"));
}

#[tokio::test]
async fn postgres_fresh_database_and_empty_plans() {
    // Planned before sluice ever touched the database (no history tables yet).
    let p = Project::new(Server::Postgres).await;
    p.write("1_base.sql", BASE);
    let doc = plan(&p, &[]);
    assert!(doc["history"]["head"].is_null());
    assert_eq!(doc["history"]["recorded"], 0);
    let r = up_plan(&p);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(states(&p), vec![(1, "applied".to_string())]);
    // Nothing pending: the reviewed plan is "do nothing", and it runs as that.
    let doc = plan(&p, &[]);
    assert_eq!(doc["migrations"], serde_json::json!([]));
    let r = up_plan(&p);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("nothing to apply"), "{r:?}");
    // A migration added after reviewing "nothing" was not reviewed.
    p.write("2_add.sql", ADD);
    let r = up_plan(&p);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("migration 2_add: not in the plan, now pending (a migration file was added)"),
        "{r:?}"
    );
    assert_eq!(columns(&p).await, ["id", "v"]);
}
