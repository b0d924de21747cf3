//! Query plans before and after a migration, against the real PostgreSQL and MariaDB: `rehearse --explain`
//! names the statements whose plan a migration changes (a dropped index: a regression that
//! `--fail-on plan-regression` turns into exit 12; a new index: the statement switches to it; an
//! unrelated change: nothing), and `plan --explain` shows the same on the live database without
//! changing it.

mod common;

use common::{wait_bounded, Project, Run};
use sluice_testkit::Server;

/// 30,000 accounts, 10 per owner and per kind; `owner_id` is indexed, `kind_id` is not.
async fn pg_project() -> Project {
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute(
            "CREATE TABLE accounts (id bigserial PRIMARY KEY, owner_id int NOT NULL, kind_id int NOT NULL, balance int NOT NULL DEFAULT 0);
             INSERT INTO accounts (owner_id, kind_id, balance) SELECT g % 3000, g % 3000, g FROM generate_series(1, 30000) g;
             CREATE INDEX accounts_owner_idx ON accounts (owner_id);
             CREATE TABLE notes (id bigint PRIMARY KEY, account_id bigint NOT NULL, body text);
             INSERT INTO notes SELECT g, g * 3, 'n' FROM generate_series(1, 5000) g;
             ANALYZE;",
        )
        .await
        .unwrap();
    p
}

/// The workload: what the plans are about.
const SCRIPT: &str = "\\set o random(1, 2999)
SELECT balance FROM accounts WHERE owner_id = :o;
SELECT balance FROM accounts WHERE kind_id = :o;
SELECT n.body FROM accounts a JOIN notes n ON n.account_id = a.id WHERE a.owner_id = :o;
";

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

fn rehearse(p: &Project, extra: &[&str]) -> Run {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    rehearse_text(p, &args)
}

fn rehearse_text(p: &Project, extra: &[&str]) -> Run {
    let mut args = vec![
        "rehearse",
        "--workload",
        "load.sql",
        "--baseline",
        "1s",
        "--cooldown",
        "500ms",
        "--clients",
        "2",
        "--rate",
        "50",
        // The verdict is not what these tests are about: limits no loaded machine reaches.
        "--max-p99-ms",
        "20000",
        "--max-stall-ms",
        "60000",
        "--max-errors",
        "1000000",
    ];
    args.extend_from_slice(extra);
    wait_bounded(p.spawn(&args), 240, "sluice rehearse")
}

/// The statements (by a word they contain) whose plan changed, sorted.
fn changed(plans: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = plans["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let q = c["query"].as_str().unwrap();
            if q.contains("JOIN") {
                "join".into()
            } else if q.contains("owner_id") {
                "owner".into()
            } else {
                "kind".into()
            }
        })
        .collect();
    v.sort();
    v
}

async fn scratch_left(p: &Project) -> i64 {
    p.db.pg()
        .await
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'sluice_rehearse_%' AND datname LIKE '%' || $1 || '%'",
            &[&format!("_{}_", std::process::id())],
        )
        .await
        .unwrap()
        .get(0)
}

async fn index_names(p: &Project) -> Vec<String> {
    p.db.pg()
        .await
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

struct Case {
    name: &'static str,
    migration: &'static str,
    /// The statements whose plan changes.
    changed: &'static [&'static str],
    /// Indexes they no longer use / newly use.
    gone: Option<&'static str>,
    new: Option<&'static str>,
    regression: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "drop the index two statements use",
        migration: "DROP INDEX accounts_owner_idx;",
        changed: &["join", "owner"],
        gone: Some("accounts_owner_idx"),
        new: None,
        regression: true,
    },
    Case {
        name: "add an index one statement can use",
        migration: "CREATE INDEX accounts_kind_idx ON accounts (kind_id);",
        changed: &["kind"],
        gone: None,
        new: Some("accounts_kind_idx"),
        regression: false,
    },
    Case {
        name: "unrelated: a column on the same table, a new table",
        migration: "ALTER TABLE accounts ADD COLUMN note text;\nCREATE TABLE audit (id bigint PRIMARY KEY, at timestamptz);",
        changed: &[],
        gone: None,
        new: None,
        regression: false,
    },
];

#[tokio::test]
async fn rehearse_explain_reports_the_plans_a_migration_changes() {
    for case in CASES {
        let p = pg_project().await;
        std::fs::write(p.path().join("load.sql"), SCRIPT).unwrap();
        p.write(
            "20260101000000_change.sql",
            &format!("-- sluice:up\n{}\n", case.migration),
        );
        let before_indexes = index_names(&p).await;
        // Runs twice: the gate's exit is stable and the source is untouched by either run.
        for attempt in 0..2 {
            let r = rehearse(
                &p,
                &["--explain", "--analyze", "--fail-on", "plan-regression"],
            );
            let want = if case.regression { 12 } else { 0 };
            assert_eq!(r.code, want, "{} (run {attempt}): {r:?}", case.name);
            let j = json(&r);
            let plans = &j["runs"][0]["query_plans"];
            assert_eq!(plans["explained"], 3, "{}: {plans:#}", case.name);
            assert_eq!(
                plans["not_explained"],
                serde_json::json!([]),
                "{}",
                case.name
            );
            assert_eq!(changed(plans), case.changed, "{}: {plans:#}", case.name);
            assert_eq!(
                plans["regressions"].as_u64().unwrap() > 0,
                case.regression,
                "{}",
                case.name
            );
            assert_eq!(j["plan_regressions"], plans["regressions"]);
            assert!(
                plans["analyzed_tables"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == "public.accounts"),
                "{plans:#}"
            );
            for c in plans["changed"].as_array().unwrap() {
                let ratio = c["cost_ratio"].as_f64().unwrap();
                assert_eq!(c["regression"], case.regression, "{c:#}");
                if let Some(gone) = case.gone {
                    assert_eq!(
                        c["indexes_no_longer_used"],
                        serde_json::json!([gone]),
                        "{c:#}"
                    );
                    assert!(ratio > 2.0, "{}: cost ratio {ratio}: {c:#}", case.name);
                }
                if let Some(new) = case.new {
                    assert_eq!(c["indexes_newly_used"], serde_json::json!([new]), "{c:#}");
                    assert!(ratio < 1.0, "{}: cost ratio {ratio}: {c:#}", case.name);
                }
                // --analyze measured both sides on the clone.
                assert!(c["before"]["time_ms"].as_f64().unwrap() > 0.0, "{c:#}");
                assert!(c["time_ratio"].as_f64().unwrap() > 0.0, "{c:#}");
            }
            // The source keeps its indexes and its pending migration; no scratch database is left.
            assert_eq!(index_names(&p).await, before_indexes, "{}", case.name);
            assert_eq!(p.states(), vec![(20260101000000, "pending".to_string())]);
            assert_eq!(scratch_left(&p).await, 0);
        }
    }
}

/// The gate's ratio: the default (2), sluice.toml's `plan_regression_ratio`, the flag over both;
/// without `--fail-on` a regression is reported and the exit stays 0.
#[tokio::test]
async fn the_gate_and_its_ratio() {
    let p = pg_project().await;
    std::fs::write(p.path().join("load.sql"), SCRIPT).unwrap();
    p.write(
        "20260101000000_drop.sql",
        "-- sluice:up\nDROP INDEX accounts_owner_idx;\n",
    );
    let r = rehearse_text(&p, &["--explain"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("2 changed, 2 regression(s)"), "{r:?}");
    assert!(
        r.stdout
            .contains("REGRESSION SELECT balance FROM accounts WHERE owner_id = :o"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("index no longer used: accounts_owner_idx"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(
            "before: Bitmap Heap Scan on accounts(Bitmap Index Scan using accounts_owner_idx)"
        ) || r
            .stdout
            .contains("before: Index Scan using accounts_owner_idx on accounts"),
        "{r:?}"
    );

    std::fs::write(
        p.path().join("sluice.toml"),
        "plan_regression_ratio = 1000.0\n",
    )
    .unwrap();
    let r = rehearse_text(&p, &["--fail-on", "plan-regression"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("2 changed, 0 regression(s)"), "{r:?}");
    assert!(!r.stdout.contains("REGRESSION"), "{r:?}");
    let report = p.path().join("r.html");
    let r = rehearse_text(
        &p,
        &[
            "--fail-on",
            "plan-regression",
            "--plan-regression-ratio",
            "1.5",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 12, "{r:?}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<h3>Query plans</h3>"), "{html}");
    assert!(
        html.contains("no longer used: accounts_owner_idx"),
        "{html}"
    );

    for bad in ["1", "0.5", "NaN", "-3"] {
        let flag = format!("--plan-regression-ratio={bad}");
        let r = p.run(&["rehearse", "--explain", &flag]);
        assert_eq!(r.code, 2, "{bad}: {r:?}");
        assert!(
            r.stderr.contains("must be a number above 1"),
            "{bad}: {r:?}"
        );
    }
    let r = p.run(&["rehearse", "--analyze"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(scratch_left(&p).await, 0);
}

/// The accounts/notes fixture on MariaDB (same data as [`pg_project`]).
async fn my_project() -> Project {
    use mysql_async::prelude::Queryable;
    let p = Project::new(Server::MariaDb).await;
    p.db.my()
        .await
        .query_drop(
            "CREATE TABLE accounts (id bigint AUTO_INCREMENT PRIMARY KEY, owner_id int NOT NULL, kind_id int NOT NULL, balance int NOT NULL DEFAULT 0);
             INSERT INTO accounts (owner_id, kind_id, balance) SELECT seq % 3000, seq % 3000, seq FROM seq_1_to_30000;
             CREATE INDEX accounts_owner_idx ON accounts (owner_id);
             CREATE TABLE notes (id bigint PRIMARY KEY, account_id bigint NOT NULL, body text);
             INSERT INTO notes SELECT seq, seq * 3, 'n' FROM seq_1_to_5000;
             ANALYZE TABLE accounts, notes;",
        )
        .await
        .unwrap();
    p
}

async fn my_scratch_left(p: &Project) -> Vec<String> {
    use mysql_async::prelude::Queryable;
    p.db.my()
        .await
        .query(format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'sluice\\_rehearse\\_%\\_{}\\_%'",
            std::process::id()
        ))
        .await
        .unwrap()
}

async fn my_index_names(p: &Project) -> Vec<String> {
    use mysql_async::prelude::Queryable;
    p.db.my()
        .await
        .query("SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1")
        .await
        .unwrap()
}

/// MariaDB's plans (no cost there: the ratio is of estimated rows examined). The join reads all
/// notes and each account by its primary key with or without the owner index, so only the
/// single-table statements move.
const MY_CASES: &[Case] = &[
    Case {
        name: "drop the index a statement uses",
        migration: "DROP INDEX accounts_owner_idx ON accounts;",
        changed: &["owner"],
        gone: Some("accounts_owner_idx"),
        new: None,
        regression: true,
    },
    Case {
        name: "add an index one statement can use",
        migration: "CREATE INDEX accounts_kind_idx ON accounts (kind_id);",
        changed: &["kind"],
        gone: None,
        new: Some("accounts_kind_idx"),
        regression: false,
    },
    Case {
        name: "unrelated: a column on the same table, a new table",
        migration: "ALTER TABLE accounts ADD COLUMN note text;\nCREATE TABLE audit (id bigint PRIMARY KEY, at datetime);",
        changed: &[],
        gone: None,
        new: None,
        regression: false,
    },
];

#[tokio::test]
async fn mariadb_rehearse_explain_reports_the_plans_a_migration_changes() {
    for case in MY_CASES {
        let p = my_project().await;
        std::fs::write(p.path().join("load.sql"), SCRIPT).unwrap();
        p.write(
            "20260101000000_change.sql",
            &format!("-- sluice:up\n{}\n", case.migration),
        );
        let before_indexes = my_index_names(&p).await;
        // Runs twice: the gate's exit is stable and the source is untouched by either run.
        for attempt in 0..2 {
            let r = rehearse(
                &p,
                &["--explain", "--analyze", "--fail-on", "plan-regression"],
            );
            let want = if case.regression { 12 } else { 0 };
            assert_eq!(r.code, want, "{} (run {attempt}): {r:?}", case.name);
            let j = json(&r);
            let plans = &j["runs"][0]["query_plans"];
            assert_eq!(plans["explained"], 3, "{}: {plans:#}", case.name);
            assert_eq!(plans["not_explained"], serde_json::json!([]), "{plans:#}");
            assert!(
                plans["cost_unit"]
                    .as_str()
                    .unwrap()
                    .starts_with("estimated rows examined"),
                "{plans:#}"
            );
            assert_eq!(changed(plans), case.changed, "{}: {plans:#}", case.name);
            assert_eq!(
                plans["regressions"].as_u64().unwrap() > 0,
                case.regression,
                "{}: {plans:#}",
                case.name
            );
            assert_eq!(j["plan_regressions"], plans["regressions"]);
            assert!(
                plans["analyzed_tables"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t.as_str().unwrap().ends_with("accounts")),
                "{plans:#}"
            );
            for c in plans["changed"].as_array().unwrap() {
                let ratio = c["cost_ratio"].as_f64().unwrap();
                assert_eq!(c["regression"], case.regression, "{c:#}");
                if let Some(gone) = case.gone {
                    assert_eq!(
                        c["indexes_no_longer_used"],
                        serde_json::json!([gone]),
                        "{c:#}"
                    );
                    assert!(ratio > 2.0, "{}: rows ratio {ratio}: {c:#}", case.name);
                }
                if let Some(new) = case.new {
                    assert_eq!(c["indexes_newly_used"], serde_json::json!([new]), "{c:#}");
                    assert!(ratio < 1.0, "{}: rows ratio {ratio}: {c:#}", case.name);
                }
                // --analyze measured both sides on the clone.
                assert!(c["before"]["time_ms"].as_f64().unwrap() > 0.0, "{c:#}");
                assert!(c["time_ratio"].as_f64().unwrap() > 0.0, "{c:#}");
            }
            assert_eq!(my_index_names(&p).await, before_indexes, "{}", case.name);
            assert_eq!(p.states(), vec![(20260101000000, "pending".to_string())]);
            assert_eq!(my_scratch_left(&p).await, Vec::<String>::new());
        }
    }
}

/// The text report on MariaDB names the statement, the index, and says the ratio is of rows;
/// the derived workload (no --workload: `?` placeholders) is explained with its values.
#[tokio::test]
async fn mariadb_text_report_and_derived_workload() {
    let p = my_project().await;
    std::fs::write(p.path().join("load.sql"), SCRIPT).unwrap();
    p.write(
        "20260101000000_drop.sql",
        "-- sluice:up\nDROP INDEX accounts_owner_idx ON accounts;\n",
    );
    let r = rehearse_text(&p, &["--explain"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("1 changed, 1 regression(s)"), "{r:?}");
    assert!(
        r.stdout
            .contains("estimated rows examined (MariaDB gives no cost"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("REGRESSION SELECT balance FROM accounts WHERE owner_id = :o"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("index no longer used: accounts_owner_idx"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("before: ref using accounts_owner_idx on accounts"),
        "{r:?}"
    );
    assert!(r.stdout.contains("after:  ALL on accounts"), "{r:?}");

    let r = wait_bounded(
        p.spawn(&[
            "rehearse",
            "--json",
            "--explain",
            "--baseline",
            "500ms",
            "--cooldown",
            "200ms",
            "--clients",
            "1",
            "--rate",
            "20",
            "--max-p99-ms",
            "20000",
            "--max-stall-ms",
            "60000",
            "--max-errors",
            "1000000",
        ]),
        240,
        "sluice rehearse",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let plans = &json(&r)["runs"][0]["query_plans"];
    assert!(plans["explained"].as_u64().unwrap() >= 2, "{plans:#}");
    assert_eq!(plans["not_explained"], serde_json::json!([]), "{plans:#}");
    assert!(my_scratch_left(&p).await.is_empty());
}

/// `plan --explain` on MariaDB: EXPLAIN FORMAT=JSON on the live database, nothing changed. Every
/// form of dropping an index (`DROP INDEX … ON`, `ALTER TABLE … DROP INDEX` / `DROP KEY`, any
/// case) lists the statements that use it today; a dropped column the statements naming it; a
/// new index says why it has no plans (no hypothetical indexes) and where to see them.
#[tokio::test]
async fn mariadb_plan_explain_names_the_statements_a_drop_affects() {
    use mysql_async::prelude::Queryable;
    let p = my_project().await;
    let queries = p.path().join("hot.sql");
    std::fs::write(
        &queries,
        "SELECT balance FROM accounts WHERE owner_id = 7;\nSELECT id FROM accounts WHERE kind_id = 7;\n\
         SELECT count(*) FROM notes;\nSELECT `BALANCE` FROM accounts WHERE id = 3;\nSELECT 1 FROM notes; DROP TABLE notes;\n\
         SELECT id FROM accounts FORCE INDEX (accounts_owner_idx) WHERE owner_id = 9;\n",
    )
    .unwrap();
    let drops = [
        "DROP INDEX accounts_owner_idx ON accounts",
        "ALTER TABLE accounts DROP INDEX accounts_owner_idx",
        "ALTER TABLE accounts DROP KEY ACCOUNTS_OWNER_IDX",
    ];
    for (i, drop) in drops.iter().enumerate() {
        p.write(
            "20260101000001_kind.sql",
            "-- sluice:up\nCREATE INDEX accounts_kind_idx ON accounts (kind_id);\n",
        );
        p.write(
            "20260101000002_owner.sql",
            &format!("-- sluice:up\n{drop};\n"),
        );
        p.write(
            "20260101000003_balance.sql",
            "-- sluice:up\nALTER TABLE accounts DROP COLUMN balance;\n",
        );
        for _ in 0..2 {
            let plain = p.run(&["plan", "--json"]);
            let r = p.run(&[
                "plan",
                "--json",
                "--explain",
                "--queries",
                queries.to_str().unwrap(),
            ]);
            assert_eq!(r.code, plain.code, "{drop}: {r:?}");
            let q = &json(&r)["query_plans"];
            assert_eq!(q["statements"], 6, "{q:#}");
            assert_eq!(q["hypopg"], "not_on_this_engine", "{q:#}");
            assert_eq!(
                q["not_explained"][0]["query"], "SELECT 1 FROM notes; DROP TABLE notes",
                "{q:#}"
            );
            let changes = q["changes"].as_array().unwrap();
            let users = |c: &serde_json::Value| -> Vec<String> {
                c["statements"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u["query"].as_str().unwrap().to_string())
                    .collect()
            };
            let kinds: Vec<&str> = changes
                .iter()
                .map(|c| c["kind"].as_str().unwrap())
                .collect();
            assert_eq!(
                kinds,
                ["create index", "drop index", "drop column"],
                "{drop}: {q:#}"
            );
            assert!(users(&changes[0]).is_empty(), "{q:#}");
            assert!(
                changes[0]["note"]
                    .as_str()
                    .unwrap()
                    .contains("rehearse --explain"),
                "{q:#}"
            );
            assert_eq!(
                users(&changes[1]),
                [
                    "SELECT balance FROM accounts WHERE owner_id = 7",
                    "SELECT id FROM accounts FORCE INDEX (accounts_owner_idx) WHERE owner_id = 9"
                ],
                "{drop}: {q:#}"
            );
            // Its plan without the index (explained with IGNORE INDEX): the whole table, about
            // 30,000 rows examined instead of the owner's 10.
            let use0 = &changes[1]["statements"][0];
            assert_eq!(use0["today"]["indexes"][0], "accounts_owner_idx", "{q:#}");
            let without = &use0["with_change"];
            assert!(
                without["indexes"].as_array().unwrap().is_empty(),
                "{drop}: {q:#}"
            );
            assert!(
                without["total_cost"].as_f64().unwrap() >= 10_000.0,
                "{drop}: {q:#}"
            );
            assert!(use0["cost_ratio"].as_f64().unwrap() >= 100.0, "{q:#}");
            // The statement that names it in a hint has no such plan: it fails after the drop.
            assert!(
                changes[1]["statements"][1].get("with_change").is_none(),
                "{q:#}"
            );
            let note = changes[1]["note"].as_str().unwrap();
            assert!(
                note.contains("fail once it is dropped (error 1176)")
                    && note.contains("FORCE INDEX (accounts_owner_idx) WHERE owner_id = 9"),
                "{q:#}"
            );
            assert_eq!(
                users(&changes[2]),
                [
                    "SELECT balance FROM accounts WHERE owner_id = 7",
                    "SELECT `BALANCE` FROM accounts WHERE id = 3"
                ],
                "{drop}: {q:#}"
            );
        }
        if i == 0 {
            // The text form says the same.
            let r = p.run(&["plan", "--explain", "--queries", queries.to_str().unwrap()]);
            assert!(
                r.stdout
                    .contains("hypothetical indexes: none on MariaDB/MySQL")
                    && r.stdout.contains(
                        "    uses it today: SELECT balance FROM accounts WHERE owner_id = 7"
                    )
                    && r.stdout.contains("      without: "),
                "{r:?}"
            );
        }
    }
    // Without --queries: said, and no plans.
    let r = p.run(&["plan", "--json", "--explain"]);
    assert_eq!(json(&r)["query_plans"]["statements"], 0, "{r:?}");
    assert!(r.stderr.contains("--queries FILE"), "{r:?}");
    // Nothing changed: the index and the column are there, nothing applied, no scratch.
    let mut c = p.db.my().await;
    let left: Vec<String> = c
        .query("SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'accounts' AND INDEX_NAME = 'accounts_owner_idx'")
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    let cols: i64 = c
        .query_first("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'accounts' AND COLUMN_NAME = 'balance'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cols, 1);
    let notes: i64 = c
        .query_first("SELECT COUNT(*) FROM notes")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notes, 5000);
    assert!(my_scratch_left(&p).await.is_empty());
}

/// `plan --explain` on the live database: the plan each change would bring, nothing changed.
#[tokio::test]
async fn plan_explain_on_the_live_database_changes_nothing() {
    let p = pg_project().await;
    let queries = p.path().join("hot.sql");
    std::fs::write(
        &queries,
        "SELECT balance FROM accounts WHERE owner_id = $1;\nSELECT id FROM accounts WHERE kind_id = $1;\nSELECT count(*) FROM notes;\nSELECT 1 FROM notes; COMMIT; DROP TABLE notes;\n",
    )
    .unwrap();
    p.write(
        "20260101000001_kind.sql",
        "-- sluice:up\nCREATE INDEX accounts_kind_idx ON accounts (kind_id);\n",
    );
    p.write(
        "20260101000002_owner.sql",
        "-- sluice:up\nDROP INDEX accounts_owner_idx;\n",
    );
    p.write(
        "20260101000003_balance.sql",
        "-- sluice:up\nALTER TABLE accounts DROP COLUMN balance;\n",
    );
    let plain = p.run(&["plan", "--json"]);
    let r = p.run(&[
        "plan",
        "--json",
        "--explain",
        "--queries",
        queries.to_str().unwrap(),
    ]);
    assert_eq!(r.code, plain.code, "{r:?}");
    let j = json(&r);
    let q = &j["query_plans"];
    assert_eq!(q["statements"], 4, "{q:#}");
    // Two statements on one line are never sent: the second would run on the live database.
    assert_eq!(
        q["not_explained"],
        serde_json::json!([{
            "query": "SELECT 1 FROM notes; COMMIT; DROP TABLE notes",
            "reason": "not a single SELECT, INSERT, UPDATE or DELETE statement"
        }]),
        "{q:#}"
    );
    let hypo = q["hypopg"].as_str().unwrap_or("missing");
    let changes = q["changes"].as_array().unwrap();
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["create index", "drop index", "drop column"],
        "{q:#}"
    );
    let users = |c: &serde_json::Value| -> Vec<String> {
        c["statements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["query"].as_str().unwrap().to_string())
            .collect()
    };
    // The dropped index: the statement that uses it today; the dropped column: the one naming it.
    assert_eq!(
        users(&changes[1]),
        ["SELECT balance FROM accounts WHERE owner_id = $1"],
        "{q:#}"
    );
    assert_eq!(changes[1]["target"], "accounts_owner_idx");
    assert_eq!(
        users(&changes[2]),
        ["SELECT balance FROM accounts WHERE owner_id = $1"],
        "{q:#}"
    );
    assert_eq!(changes[2]["target"], "accounts.balance");
    if hypo == "missing" {
        eprintln!("hypopg is not installed here: the plans with the new index are not checked");
    } else {
        // The new index: the kind_id statement would switch to it, at a lower cost; the dropped
        // index: without it the owner statement costs more.
        assert_eq!(
            users(&changes[0]),
            ["SELECT id FROM accounts WHERE kind_id = $1"],
            "{q:#}"
        );
        let u = &changes[0]["statements"][0];
        assert!(u["cost_ratio"].as_f64().unwrap() < 1.0, "{u:#}");
        assert!(
            u["with_change"]["indexes"][0]
                .as_str()
                .unwrap()
                .contains("btree_accounts_kind_id"),
            "{u:#}"
        );
        // Without the index: hypopg 1.4 hides it; an older hypopg says so.
        let d = &changes[1]["statements"][0];
        if d["with_change"].is_object() {
            assert!(d["cost_ratio"].as_f64().unwrap() > 1.0, "{d:#}");
            assert_eq!(d["with_change"]["indexes"], serde_json::json!([]), "{d:#}");
        } else {
            assert!(
                changes[1]["note"]
                    .as_str()
                    .unwrap()
                    .contains("hypopg 1.4 or later"),
                "{q:#}"
            );
        }
    }
    // Nothing changed: no hypopg left behind, the indexes and the column as they were, nothing applied.
    let c = p.db.pg().await;
    let ext: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ext, 0);
    assert_eq!(
        index_names(&p).await,
        ["accounts_owner_idx", "accounts_pkey", "notes_pkey"]
    );
    let col: i64 = c.query_one("SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'balance'", &[]).await.unwrap().get(0);
    assert_eq!(col, 1);
    assert!(p.states().iter().all(|(_, s)| s == "pending"));

    // The text form, and without --queries on a server without pg_stat_statements: how to get
    // hot statements, and the plan still printed.
    let r = p.run(&["plan", "--explain", "--queries", queries.to_str().unwrap()]);
    assert_eq!(r.code, plain.code, "{r:?}");
    assert!(r.stdout.contains("drop index accounts_owner_idx"), "{r:?}");
    assert!(
        r.stdout
            .contains("uses it today: SELECT balance FROM accounts WHERE owner_id = $1"),
        "{r:?}"
    );
    let r = p.run(&["plan", "--explain"]);
    assert_eq!(r.code, plain.code, "{r:?}");
    assert!(
        r.stderr.contains("pg_stat_statements") && r.stderr.contains("--queries FILE"),
        "{r:?}"
    );
    assert!(r.stdout.contains("0 statement(s)"), "{r:?}");
    // A bad --queries file: bad input, before connecting.
    std::fs::write(&queries, "CREATE TABLE x (a int);\n").unwrap();
    let r = p.run(&["plan", "--explain", "--queries", queries.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r:?}");
}

/// The derived workload (reads, updates and inserts by primary key on the tables the migration
/// names): explained, measured, and unchanged by a new nullable column.
#[tokio::test]
async fn derived_workload_statements_are_explained() {
    let p = pg_project().await;
    p.write(
        "20260101000000_note.sql",
        "-- sluice:up\nALTER TABLE accounts ADD COLUMN note text;\n",
    );
    let mut args = vec!["rehearse", "--json", "--explain", "--analyze"];
    args.extend_from_slice(&[
        "--fail-on",
        "plan-regression",
        "--clients",
        "2",
        "--rate",
        "50",
    ]);
    args.extend_from_slice(&["--baseline", "1s", "--cooldown", "500ms"]);
    args.extend_from_slice(&["--max-p99-ms", "20000", "--max-stall-ms", "60000"]);
    let r = wait_bounded(p.spawn(&args), 240, "sluice rehearse");
    assert_eq!(r.code, 0, "{r:?}");
    let plans = &json(&r)["runs"][0]["query_plans"];
    // The read, the update and the insert on accounts.
    assert_eq!(plans["explained"], 3, "{plans:#}");
    assert_eq!(plans["changed"], serde_json::json!([]), "{plans:#}");
    assert_eq!(plans["not_explained"], serde_json::json!([]), "{plans:#}");
}

/// pg_stat_statements' statements, with their `$n` placeholders: explained as generic plans in
/// the rehearsal (and measured with sampled values), and as the hot statements of `plan --explain`.
#[tokio::test]
async fn top_statements_are_explained_on_a_private_server() {
    let Some(pg) = common::PrivatePg::start() else {
        eprintln!("skipped: no PostgreSQL 15 binaries (or root without a postgres user)");
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
         CREATE TABLE accounts (id bigserial PRIMARY KEY, owner_id int NOT NULL, balance int NOT NULL DEFAULT 0);
         INSERT INTO accounts (owner_id, balance) SELECT g % 3000, g FROM generate_series(1, 30000) g;
         CREATE INDEX accounts_owner_idx ON accounts (owner_id);
         ANALYZE;
         SELECT pg_stat_statements_reset();",
    )
    .await
    .unwrap();
    for i in 1..=100i32 {
        app.query("SELECT balance FROM accounts WHERE owner_id = $1", &[&i])
            .await
            .unwrap();
    }
    for i in 1..=50i64 {
        app.query("SELECT balance FROM accounts WHERE id = $1", &[&i])
            .await
            .unwrap();
    }
    let p = Project::new(Server::Postgres).await;
    p.write(
        "20260101000000_drop.sql",
        "-- sluice:up\nDROP INDEX accounts_owner_idx;\n",
    );
    let run = |args: &[&str]| {
        let child = p
            .command(args)
            .env("DATABASE_URL", pg.url("app"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_bounded(child, 240, "sluice")
    };
    let r = run(&[
        "rehearse",
        "--json",
        "--workload",
        "pg_stat_statements",
        "--explain",
        "--analyze",
        "--fail-on",
        "plan-regression",
        "--clients",
        "2",
        "--rate",
        "50",
        "--baseline",
        "1s",
        "--cooldown",
        "500ms",
        "--max-p99-ms",
        "20000",
        "--max-stall-ms",
        "60000",
    ]);
    assert_eq!(r.code, 12, "{r:?}");
    let plans = &json(&r)["runs"][0]["query_plans"];
    assert_eq!(plans["explained"], 2, "{plans:#}");
    let changed = plans["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{plans:#}");
    assert_eq!(
        changed[0]["query"],
        "SELECT balance FROM accounts WHERE owner_id = $1"
    );
    assert_eq!(
        changed[0]["indexes_no_longer_used"],
        serde_json::json!(["accounts_owner_idx"])
    );
    assert!(
        changed[0]["time_ratio"].as_f64().unwrap() > 0.0,
        "{plans:#}"
    );

    let r = run(&["plan", "--json", "--explain"]);
    let q = &json(&r)["query_plans"];
    assert!(
        q["source"].as_str().unwrap().contains("pg_stat_statements"),
        "{q:#}"
    );
    let users: Vec<&str> = q["changes"][0]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["query"].as_str().unwrap())
        .collect();
    assert_eq!(
        users,
        ["SELECT balance FROM accounts WHERE owner_id = $1"],
        "{q:#}"
    );
}

/// Issue 16's open question (from issue 18): are the plans just after the online copy's swap the
/// ones the ALTER as written leaves? Both tables end with fresh persistent statistics (the copy
/// analyses its shadow before the swap), and every statement here — point and range reads by each
/// key, the key the ALTER adds, and the join a test writer once saw scan — gets the same access path
/// (table, access type, key) on both, right after the change.
#[tokio::test]
async fn mariadb_plans_right_after_an_online_swap_equal_the_alter_as_written() {
    use mysql_async::prelude::Queryable;
    let setup = "CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL, u int NOT NULL, balance int NOT NULL, pad varchar(100), KEY k_idx (k));
                 INSERT INTO t SELECT seq, seq % 500, seq, seq, repeat('x', 80) FROM seq_1_to_30000;
                 CREATE TABLE mirror (id int PRIMARY KEY, v int);
                 INSERT INTO mirror SELECT seq * 7, 1 FROM seq_1_to_2000;
                 ANALYZE TABLE t, mirror;";
    let migration =
        "-- sluice:up\nALTER TABLE t MODIFY balance BIGINT NOT NULL, ADD UNIQUE KEY uk (u);\n";
    let statements = [
        "UPDATE mirror JOIN t ON t.id = mirror.id SET t.balance = t.balance + 1 WHERE mirror.v = 1",
        "SELECT * FROM t WHERE id = 77",
        "SELECT * FROM t WHERE k = 7 AND u > 100",
        "SELECT * FROM t WHERE u BETWEEN 10 AND 20",
        "SELECT count(*) FROM t WHERE k < 5",
        "SELECT t.pad FROM mirror JOIN t ON t.u = mirror.id WHERE mirror.id < 500",
        "DELETE FROM t WHERE u = 5",
    ];
    let mut access: Vec<Vec<Vec<String>>> = Vec::new();
    for as_written in [false, true] {
        let p = Project::new(Server::MariaDb).await;
        p.db.my().await.query_drop(setup).await.unwrap();
        p.write("1_change.sql", migration);
        let r = if as_written {
            p.run(&["up", "--as-written"])
        } else {
            p.run(&["up"])
        };
        assert_eq!(r.code, 0, "{r:?}");
        if !as_written {
            assert!(r.stderr.contains("swapped with its online copy"), "{r:?}");
        }
        let mut c = p.db.my().await;
        let mut plans = Vec::new();
        for s in statements {
            let rows: Vec<mysql_async::Row> = c.query(format!("EXPLAIN {s}")).await.unwrap();
            plans.push(
                rows.iter()
                    .map(|r| {
                        let col = |name: &str| -> String {
                            r.get_opt::<Option<String>, _>(name)
                                .and_then(|v| v.ok())
                                .flatten()
                                .unwrap_or_default()
                        };
                        format!("{s}: {} {} {}", col("table"), col("type"), col("key"))
                    })
                    .collect(),
            );
        }
        access.push(plans);
    }
    assert_eq!(access[0], access[1], "after the swap vs as written");
    // The new key is used where it should be (the comparison is not between two scans).
    assert!(
        access[0][3][0].ends_with("t range uk"),
        "{:?}",
        access[0][3]
    );
}

/// MariaDB's hot statements without `--queries`: taken from performance_schema's statement history
/// (texts with their values, most frequent first, this database only) when the server keeps it,
/// and explained against a drop; where it keeps none, `plan --explain` says how to turn it on.
#[tokio::test]
async fn mariadb_plan_explain_takes_hot_statements_from_performance_schema() {
    use mysql_async::prelude::Queryable;
    let Some(server) = sluice_testkit::PrivateMariaDb::start(&[
        "--performance-schema=ON",
        "--performance-schema-consumer-events-statements-current=ON",
        "--performance-schema-consumer-events-statements-history-long=ON",
    ])
    .await
    else {
        eprintln!("skipped: no mariadbd / mariadb-install-db");
        return;
    };
    let mut admin = mysql_async::Conn::from_url(server.url("mysql"))
        .await
        .unwrap();
    admin
        .query_drop(
            "CREATE DATABASE hot; CREATE DATABASE other;
             CREATE TABLE hot.accounts (id bigint AUTO_INCREMENT PRIMARY KEY, owner_id int NOT NULL, balance int NOT NULL DEFAULT 0, KEY accounts_owner_idx (owner_id));
             INSERT INTO hot.accounts (owner_id, balance) SELECT seq % 3000, seq FROM seq.seq_1_to_30000;
             ANALYZE TABLE hot.accounts;
             CREATE TABLE other.accounts LIKE hot.accounts;",
        )
        .await
        .unwrap();
    // The application: the owner lookup most often, a point read, and statements elsewhere.
    let mut app = mysql_async::Conn::from_url(server.url("hot"))
        .await
        .unwrap();
    for i in 0..30 {
        app.query_drop(format!("SELECT balance FROM accounts WHERE owner_id = {i}"))
            .await
            .unwrap();
    }
    for i in 0..5 {
        app.query_drop(format!("SELECT * FROM accounts WHERE id = {i}"))
            .await
            .unwrap();
    }
    let mut elsewhere = mysql_async::Conn::from_url(server.url("other"))
        .await
        .unwrap();
    for i in 0..50 {
        elsewhere
            .query_drop(format!("SELECT * FROM accounts WHERE owner_id = {i}"))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/1_drop.sql"),
        "-- sluice:up\nALTER TABLE accounts DROP INDEX accounts_owner_idx;\n",
    )
    .unwrap();
    let plan = |url: String| -> Run {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["plan", "--json", "--explain"])
            .current_dir(dir.path())
            .env("DATABASE_URL", url)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
            .into()
    };
    let r = plan(server.url("hot"));
    let v = json(&r);
    let q = &v["query_plans"];
    assert_eq!(
        q["source"], "performance_schema statement history (most frequent)",
        "{q:#}"
    );
    // Every distinct digest of this database once; the other database's statements not at all.
    assert_eq!(q["statements"], 2, "{q:#}");
    let change = &q["changes"][0];
    assert_eq!(change["kind"], "drop index", "{q:#}");
    let users = change["statements"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{q:#}");
    assert!(
        users[0]["query"]
            .as_str()
            .unwrap()
            .starts_with("SELECT balance FROM accounts WHERE owner_id = "),
        "{q:#}"
    );
    assert!(users[0]["cost_ratio"].as_f64().unwrap() >= 100.0, "{q:#}");
    // Nothing changed.
    let idx: Vec<String> = admin
        .query("SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'hot' AND INDEX_NAME = 'accounts_owner_idx'")
        .await
        .unwrap();
    assert_eq!(idx.len(), 1);
    // Where the history is not kept: said, with how to turn it on; the plan itself still works.
    admin
        .query_drop("UPDATE performance_schema.setup_consumers SET ENABLED = 'NO' WHERE NAME = 'events_statements_current'")
        .await
        .unwrap();
    let r = plan(server.url("hot"));
    assert_eq!(json(&r)["query_plans"]["statements"], 0, "{r:?}");
    assert!(
        r.stderr
            .contains("consumers off: events_statements_current)")
            && r.stderr.contains("SET ENABLED = 'YES'")
            && r.stderr.contains("--queries FILE"),
        "{r:?}"
    );
}
