//! `sluice lint`, `sluice rules` and `sluice plan` as a user runs them.

mod common;

use common::Project;
use sluice_testkit::Server;

const HAZARDS: &str = "-- sluice:up\nSET lock_timeout = '2s';\nSET statement_timeout = '1min';\nCREATE INDEX users_email_idx ON users (email);\n";

fn lint(p: &Project, args: &[&str]) -> common::Run {
    let mut all = vec!["lint"];
    all.extend_from_slice(args);
    p.run(&all)
}

#[tokio::test]
async fn lint_reports_in_every_format_with_exit_codes() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_idx.sql", HAZARDS);

    // As `sluice up` runs it (CONCURRENTLY), the index build is no hazard: info, saying why.
    let r = lint(&p, &["--target", "postgres:15"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("(as written; `sluice up` runs it staged instead: built CONCURRENTLY"),
        "{r:?}"
    );
    assert!(r.stdout.contains("0 error(s)"), "{r:?}");

    // Judged as written (another tool, or `up --as-written`), it is an error.
    let r = lint(&p, &["--target", "postgres:15", "--as-written"]);
    assert_eq!(r.code, 7, "{r:?}");
    assert!(
        r.stdout.contains("require-concurrent-index-creation"),
        "{r:?}"
    );
    assert!(r.stdout.contains("1_idx.sql:4:1"), "{r:?}");
    assert!(
        r.stdout
            .contains("CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);"),
        "{r:?}"
    );
    assert!(r.stdout.contains("1 error(s)"), "{r:?}");

    let r = lint(
        &p,
        &[
            "--target",
            "postgres:15",
            "--as-written",
            "--format",
            "json",
        ],
    );
    let j: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(
        j["findings"][0]["rule"],
        "require-concurrent-index-creation"
    );
    assert_eq!(j["findings"][0]["line"], 4);
    assert_eq!(j["statements"], 3);

    let r = lint(
        &p,
        &[
            "--target",
            "postgres:15",
            "--as-written",
            "--format",
            "github",
        ],
    );
    assert!(r.stdout.starts_with("::error file="), "{r:?}");
    assert!(
        r.stdout
            .contains(",line=4,col=1,title=sluice require-concurrent-index-creation::"),
        "{r:?}"
    );

    let r = lint(
        &p,
        &[
            "--target",
            "postgres:15",
            "--as-written",
            "--format",
            "sarif",
        ],
    );
    let s: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(s["version"], "2.1.0");
    let result = &s["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "require-concurrent-index-creation");
    assert_eq!(result["level"], "error");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"],
        4
    );
    let idx = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(
        s["runs"][0]["tool"]["driver"]["rules"][idx]["id"],
        "require-concurrent-index-creation"
    );

    // The safe form passes; an ignore with a reason silences one finding.
    p.write(
        "1_idx.sql",
        &HAZARDS.replace(
            "CREATE INDEX users",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS users",
        ),
    );
    let r = lint(&p, &["--target", "postgres:15"]);
    assert_eq!(r.code, 0, "{r:?}");
    p.write("1_idx.sql", &HAZARDS.replace("CREATE INDEX", "-- sluice:ignore require-concurrent-index-creation users has 10 rows in every environment\nCREATE INDEX"));
    let r = lint(&p, &["--target", "postgres:15"]);
    assert_eq!(r.code, 0, "{r:?}");

    let r = lint(&p, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("lint needs to know the engine and version"),
        "{r:?}"
    );
    let r = lint(&p, &["--target", "oracle:19"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[tokio::test]
async fn rules_are_listed_and_explained() {
    let p = Project::new(Server::Postgres).await;
    let r = p.run(&["rules"]);
    assert_eq!(r.code, 0, "{r:?}");
    for id in sluice_core::rules::RULES.iter().map(|r| r.id) {
        assert!(r.stdout.contains(id), "{id} missing from `sluice rules`");
    }
    // The findings only `plan` makes are ignorable too, so they are listed and explained.
    for id in sluice_core::rules::PLAN_FINDINGS {
        assert!(r.stdout.contains(id), "{id} missing from `sluice rules`");
        let one = p.run(&["rules", id]);
        assert_eq!(one.code, 0, "{one:?}");
        assert!(
            one.stdout.contains("a `sluice plan` finding")
                && one.stdout.contains("Why it matters:")
                && one.stdout.contains(&format!("-- sluice:ignore {id}")),
            "{one:?}"
        );
    }
    let r = p.run(&["rules", "require-concurrent-index-creation"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("Why it hurts:") && r.stdout.contains("CONCURRENTLY"),
        "{r:?}"
    );
    let r = p.run(&["rules", "no-such-rule"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[tokio::test]
async fn connected_lint_and_plan_use_the_live_table_size() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute(
        "CREATE TABLE big (id bigint PRIMARY KEY, v text);
         INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 150000) g;
         CREATE TABLE small (id bigint PRIMARY KEY, v text);
         INSERT INTO small VALUES (1, 'a');
         ANALYZE big; ANALYZE small;",
    )
    .await
    .unwrap();
    let migration = |t: &str| {
        format!("-- sluice:up\nSET lock_timeout = '2s';\nSET statement_timeout = '1min';\nALTER TABLE {t} ADD COLUMN token text;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS {t}_token_idx ON {t} (token);\n")
    };
    p.write("1_big.sql", &migration("big"));
    let r = p.run(&["lint", "--connect", "--format", "json"]);
    let j: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    let on_big: Vec<(String, String)> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().into(),
                f["severity"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        on_big.contains(&("index-on-new-column".into(), "error".into())),
        "{on_big:?}"
    );
    assert_eq!(r.code, 7, "{r:?}");

    std::fs::remove_file(p.migration_path("1_big.sql")).unwrap();
    p.write("1_small.sql", &migration("small"));
    let r = p.run(&["lint", "--connect", "--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        !j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "index-on-new-column"),
        "{r:?}"
    );

    // plan: the live size drives the estimate; the safe steps are listed.
    std::fs::remove_file(p.migration_path("1_small.sql")).unwrap();
    p.write("1_change.sql", "ALTER TABLE big ADD COLUMN token text NOT NULL DEFAULT md5(random()::text);\nCREATE INDEX big_v_idx ON big (v);\n");
    let r = p.run(&["plan", "--json"]);
    let j: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(j["tables"]["big"]["rows"], 150000);
    let add = &j["migrations"][0]["statements"][0]["actions"][0];
    // The lock as data (issue 12): its mode and the tables it is on; the words beside it.
    assert_eq!(
        add["impact"]["lock"],
        serde_json::json!({"mode": "ACCESS EXCLUSIVE", "tables": ["big"]})
    );
    assert_eq!(add["impact"]["lock_text"], "ACCESS EXCLUSIVE");
    assert_eq!(add["impact"]["effect"], "rewrite");
    assert_eq!(add["impact"]["blocks"], "reads-and-writes");
    assert!(add["estimate_secs"].as_f64().unwrap() > 0.1, "{add}");
    let steps: Vec<&str> = add["safe_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["effect"].as_str().unwrap())
        .collect();
    // Every step `up` runs names its lock mode (as its words do) and its table.
    for s in add["safe_steps"].as_array().unwrap() {
        let mode = s["lock"]["mode"].as_str().unwrap_or_else(|| panic!("{s}"));
        assert!(s["lock_text"].as_str().unwrap().starts_with(mode), "{s}");
        assert_eq!(s["lock"]["tables"], serde_json::json!(["big"]), "{s}");
    }
    // The steps `up` runs (the backfilled column analysed; SET NOT NULL and the helper's drop
    // commit together, as up sends them).
    assert_eq!(
        steps,
        ["instant", "instant", "backfill", "scan", "instant", "scan", "instant"]
    );
    assert_eq!(add["safe_steps"][3]["sql"], "ANALYZE big (\"token\")");
    assert_eq!(
        add["safe_steps"][6]["sql"],
        "ALTER TABLE big ALTER COLUMN \"token\" SET NOT NULL; ALTER TABLE big DROP CONSTRAINT \"big_token_not_null_check\""
    );
    let idx = &j["migrations"][0]["statements"][1]["actions"][0];
    assert_eq!(idx["impact"]["lock"]["mode"], "SHARE");
    assert_eq!(idx["impact"]["lock"]["tables"], serde_json::json!(["big"]));
    assert_eq!(
        idx["safe_steps"][0]["lock"],
        serde_json::json!({"mode": "SHARE UPDATE EXCLUSIVE", "tables": ["big"]})
    );
    assert_eq!(idx["impact"]["blocks"], "writes");
    assert_eq!(idx["safe_steps"][0]["transactional"], false);
    assert!(idx["safe_steps"][0]["sql"]
        .as_str()
        .unwrap()
        .starts_with("CREATE INDEX CONCURRENTLY"));
    let human = p.run(&["plan"]);
    assert!(
        human.stdout.contains("table big: ~150000 rows"),
        "{human:?}"
    );
    assert!(
        human
            .stdout
            .contains("as written: ACCESS EXCLUSIVE lock, rewrite, ~"),
        "{human:?}"
    );
    assert_eq!(
        human.code, 0,
        "the volatile default and the index build are staged by up: {human:?}"
    );
    // A rewriting type change `up` stages from the live catalog is info for plan (exit 0)...
    p.write(
        "2_type.sql",
        "ALTER TABLE big ALTER COLUMN v TYPE varchar(200);\n",
    );
    let human = p.run(&["plan"]);
    assert_eq!(human.code, 0, "staged by up: {human:?}");
    assert!(human.all().contains("runs it staged instead"), "{human:?}");
    // ...and a hazard `up` has no staged form for is an error: plan exits 7 like lint.
    // (A table rename is not one any more: `up` runs it in two phases, issue 14.)
    p.write("3_vacuum.sql", "VACUUM FULL big;\n");
    let human = p.run(&["plan"]);
    assert_eq!(
        human.code, 7,
        "an error-level finding makes plan fail too: {human:?}"
    );
    let tables: i64 = c.query_one("SELECT count(*) FROM information_schema.columns WHERE table_name = 'big' AND column_name = 'token'", &[]).await.unwrap().get(0);
    assert_eq!(tables, 0, "plan changes nothing");
}

#[tokio::test]
async fn plan_works_on_mariadb() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    use mysql_async::prelude::Queryable;
    c.query_drop("CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance INT, body TEXT)")
        .await
        .unwrap();
    p.write("1_change.sql", "ALTER TABLE accounts MODIFY balance BIGINT NOT NULL;\nALTER TABLE accounts ADD COLUMN note VARCHAR(20);\nALTER TABLE accounts ADD FULLTEXT INDEX accounts_body_ft (body);\n");
    let r = p.run(&["plan", "--json"]);
    let j: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert!(
        j["target"].as_str().unwrap().starts_with("mariadb 10."),
        "{j}"
    );
    let modify = &j["migrations"][0]["statements"][0]["actions"][0];
    assert_eq!(modify["impact"]["effect"], "copy");
    assert_eq!(modify["impact"]["blocks"], "writes");
    let add = &j["migrations"][0]["statements"][1]["actions"][0];
    assert_eq!(add["impact"]["effect"], "instant");
    // No PostgreSQL lock mode: the algorithm and lock level, each its own field.
    assert_eq!(add["impact"]["lock"], serde_json::Value::Null);
    assert_eq!(add["impact"]["lock_text"], "ALGORITHM=INSTANT");
    assert_eq!(add["impact"]["algorithm"], "INSTANT");
    assert_eq!(add["impact"]["lock_level"], "NONE");
    // The as-written line is the online path's prediction on the live table: the server builds a
    // FULLTEXT index only with LOCK=SHARED, and lint says so.
    let ft = &j["migrations"][0]["statements"][2]["actions"][0];
    assert_eq!(
        ft["impact"]["lock_text"], "ALGORITHM=INPLACE, LOCK=SHARED",
        "{j}"
    );
    assert_eq!(
        (&ft["impact"]["algorithm"], &ft["impact"]["lock_level"]),
        (&serde_json::json!("INPLACE"), &serde_json::json!("SHARED")),
        "{j}"
    );
    assert_eq!(modify["impact"]["algorithm"], "COPY", "{j}");
    assert_eq!(ft["impact"]["blocks"], "writes");
    // `sluice up` runs it as an online copy, so the finding is info saying so.
    let finding = j["migrations"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "mysql-fulltext-index")
        .unwrap_or_else(|| panic!("{j}"));
    assert_eq!(finding["severity"], "info", "{finding}");
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("`sluice up` runs it online"),
        "{finding}"
    );
    let human = p.run(&["plan"]);
    let line = human
        .stdout
        .lines()
        .find(|l| l.contains("as written: ALGORITHM=INPLACE, LOCK=SHARED lock, rewrite"))
        .unwrap_or_else(|| panic!("{human:?}"));
    assert!(line.contains("blocks writes"), "{line}");
}

/// On MariaDB, a MODIFY that would copy the table is info by default (`sluice up` runs it online),
/// but not when the statement names its own algorithm (that runs as written) or with --as-written.
#[tokio::test]
async fn mariadb_lint_knows_which_alters_up_runs_online() {
    let p = Project::new(Server::MariaDb).await;
    p.write(
        "1_x.sql",
        "ALTER TABLE acc MODIFY balance BIGINT NOT NULL;\nALTER TABLE acc MODIFY note VARCHAR(80) NOT NULL, ALGORITHM=COPY;\n",
    );
    let findings = |args: &[&str]| {
        let mut all = vec!["--target", "mariadb:10.11", "--format", "json"];
        all.extend_from_slice(args);
        let r = lint(&p, &all);
        let j: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "mysql-modify-column")
            .map(|f| {
                (
                    f["line"].as_u64().unwrap(),
                    f["severity"].as_str().unwrap().to_string(),
                    f["message"]
                        .as_str()
                        .unwrap()
                        .contains("`sluice up` runs it online"),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        findings(&[]),
        vec![
            (1, "info".to_string(), true),
            (2, "warning".to_string(), false)
        ]
    );
    assert_eq!(
        findings(&["--as-written"]),
        vec![
            (1, "warning".to_string(), false),
            (2, "warning".to_string(), false)
        ]
    );
}

/// A table whose statistics were never gathered (PostgreSQL before its first ANALYZE, InnoDB with
/// statistics not recalculated) is estimated from its size, never planned as empty.
#[tokio::test]
async fn plan_never_reads_a_filled_table_without_statistics_as_empty() {
    use mysql_async::prelude::Queryable;
    for server in [Server::Postgres, Server::MariaDb] {
        let p = Project::new(server).await;
        match server {
            Server::Postgres => p
                .db
                .pg()
                .await
                .batch_execute(
                    "CREATE TABLE fresh (id bigint PRIMARY KEY, v text) WITH (autovacuum_enabled = off);
                     INSERT INTO fresh SELECT g, md5(g::text) FROM generate_series(1, 40000) g;",
                )
                .await
                .unwrap(),
            Server::MariaDb => p
                .db
                .my()
                .await
                .query_drop(
                    "CREATE TABLE fresh (id BIGINT PRIMARY KEY, v VARCHAR(32)) STATS_PERSISTENT=1 STATS_AUTO_RECALC=0;
                     INSERT INTO fresh SELECT seq, MD5(seq) FROM seq_1_to_40000;",
                )
                .await
                .unwrap(),
        }
        p.write("1_change.sql", "ALTER TABLE fresh ADD COLUMN w int;\n");
        let r = p.run(&["plan", "--json"]);
        let j: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
        let rows = j["tables"]["fresh"]["rows"].as_i64().unwrap();
        assert!(
            (10_000..=160_000).contains(&rows),
            "{server:?}: 40,000 rows estimated as {rows}"
        );
    }
}

/// Files are parsed in parallel and linted in order: the output, in every format and mode, is
/// byte for byte the serial one, including column types carried from file to file, suppressions,
/// unreadable SQL, down parts, and a file that fails to load part-way through the directory.
#[tokio::test]
async fn parallel_lint_output_is_the_serial_output() {
    let p = Project::new(Server::Postgres).await;
    let shapes = [
        "-- sluice:up\nCREATE TABLE t{n} (id int PRIMARY KEY, a int, b varchar(20));\n-- sluice:down\nDROP TABLE t{n};\n",
        // Needs the column type learnt from the file before.
        "-- sluice:up\nALTER TABLE t{p} ALTER COLUMN a TYPE bigint;\nALTER TABLE t{p} ALTER COLUMN b TYPE varchar(10);\n-- sluice:down\nALTER TABLE t{p} ALTER COLUMN a TYPE int;\n",
        "-- sluice:up\nSET lock_timeout = '1s';\n-- sluice:ignore require-statement-timeout reviewed\nCREATE INDEX i{n} ON t{p} (a);\nALTER TABLE t{p} ADD CONSTRAINT f{n} FOREIGN KEY (a) REFERENCES t{p} (id);\n",
        "-- sluice:up\nALTER TABLE t{p} ADD COLUMN c{n} text NOT NULL DEFAULT md5(random()::text);\n-- sluice:ignore no-such-rule kept on purpose\nSELECT 1;\n",
        "-- sluice:up\nALTER TABLE t{p} ADD COLUMN d{n} int;\nSELECT 'unterminated;\n",
        "-- sluice:up\nBEGIN;\nALTER TABLE t{p} ADD UNIQUE (a);\nCOMMIT;\nCREATE INDEX CONCURRENTLY j{n} ON t{p} (b);\n",
    ];
    for n in 1..=60usize {
        let text = shapes[n % shapes.len()]
            .replace("{n}", &n.to_string())
            .replace("{p}", &(n - 1).to_string());
        p.write(&format!("{n:04}_m{n}.sql"), &text);
    }
    let formats = ["human", "json", "github", "sarif"];
    let modes: [&[&str]; 3] = [&[], &["--include-down"], &["--as-written"]];
    let run = |threads: &str, args: &[&str]| {
        let mut all = vec!["lint", "--target", "postgres:15"];
        all.extend_from_slice(args);
        let o = p
            .command(&all)
            .env("SLUICE_LINT_THREADS", threads)
            .output()
            .expect("run sluice");
        (o.status.code(), o.stdout, o.stderr)
    };
    for format in formats {
        for mode in modes {
            let mut args = vec!["--format", format];
            args.extend_from_slice(mode);
            let serial = run("1", &args);
            // Every file read: findings (7 with --as-written), never a load error.
            assert!(
                matches!(serial.0, Some(0 | 7)),
                "{format} {mode:?}: {:?} {}",
                serial.0,
                String::from_utf8_lossy(&serial.2)
            );
            assert!(!serial.1.is_empty(), "{format} {mode:?}");
            if format == "json" && mode.is_empty() {
                let out = String::from_utf8_lossy(&serial.1);
                for what in [
                    "\"files\": 60",
                    "unparsed-statement",
                    "unused-ignore",
                    "alter-column-type",
                    "(as written; ",
                ] {
                    assert!(out.contains(what), "{what} in {out}");
                }
            }
            for threads in ["2", "5"] {
                assert_eq!(
                    run(threads, &args),
                    serial,
                    "{format} {mode:?}, {threads} threads"
                );
            }
        }
    }
    // A file that fails to load: the files before it are reported, then the same error.
    p.write(
        "0030_m30.sql",
        "-- sluice:up\n-- sluice:transaction sometimes\nSELECT 1;\n",
    );
    let serial = run("1", &["--format", "json"]);
    assert_eq!(serial.0, Some(2), "{}", String::from_utf8_lossy(&serial.2));
    // Whitespace collapsed: the message is wrapped to the terminal's width.
    let words = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        words(&serial.2).contains("0030_m30.sql: line 2: `-- sluice:transaction sometimes` is not a valid transaction directive"),
        "{}",
        words(&serial.2)
    );
    for threads in ["2", "5"] {
        assert_eq!(
            run(threads, &["--format", "json"]),
            serial,
            "{threads} threads"
        );
    }
    // A bad thread count is refused, saying what to set.
    let bad = run("0", &[]);
    assert_eq!(bad.0, Some(2));
    assert!(
        words(&bad.2).contains("SLUICE_LINT_THREADS=\"0\" is not a number of threads"),
        "{}",
        words(&bad.2)
    );
}
