//! Other tools' directory layouts, read in place: the same small history written as diesel, sqlx,
//! golang-migrate, dbmate, goose and Flyway write it (a no-op migration and one outside a transaction
//! among them) is applied from empty in the default mode, rolled back to 0, applied again, and
//! leaves no drift, on both engines.

mod common;

use common::Project;
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;

/// One migration of the history: name, up SQL, down SQL, runs outside a transaction.
struct Step {
    name: &'static str,
    up: String,
    down: String,
    no_tx: bool,
}

fn history(server: Server) -> Vec<Step> {
    let pg = server == Server::Postgres;
    let step = |name, up: &str, down: &str, no_tx| Step {
        name,
        up: up.to_string(),
        down: down.to_string(),
        no_tx,
    };
    vec![
        step(
            "create_users",
            "CREATE TABLE t_users (id INT PRIMARY KEY, name VARCHAR(50));\n",
            "DROP TABLE t_users;\n",
            false,
        ),
        step(
            "seed_users",
            "INSERT INTO t_users (id, name) VALUES (1, 'ada'), (2, 'grace');\n",
            "DELETE FROM t_users WHERE id IN (1, 2);\n",
            false,
        ),
        // A placeholder: comments only up, nothing down.
        step("placeholder", "-- nothing to do on this engine\n", "", false),
        if pg {
            step(
                "index_names",
                "CREATE INDEX CONCURRENTLY t_users_name ON t_users (name);\n",
                "DROP INDEX CONCURRENTLY t_users_name;\n",
                true,
            )
        } else {
            step(
                "index_names",
                "CREATE INDEX t_users_name ON t_users (name);\n",
                "DROP INDEX t_users_name ON t_users;\n",
                true,
            )
        },
        step(
            "create_orders",
            "CREATE TABLE t_orders (\n  id INT PRIMARY KEY,\n  user_id INT NOT NULL,\n  total INT NOT NULL DEFAULT 0\n);\nCREATE INDEX t_orders_user ON t_orders (user_id);\n",
            "DROP TABLE t_orders;\n",
            false,
        ),
        step(
            "user_names_view",
            "CREATE VIEW t_names AS SELECT id, name FROM t_users;\n",
            "DROP VIEW t_names;\n",
            false,
        ),
    ]
}

/// Writes the history as `layout` lays it out; returns the labels sluice shows, in order.
fn write(p: &Project, layout: &str, steps: &[Step]) -> Vec<String> {
    let mut labels = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let n = i + 1;
        let (version, name) = match layout {
            // Hyphenated (diesel's generator) and plain 14-digit versions mixed, as real
            // histories have them; diesel orders them as text without the `-`.
            "diesel" if n % 2 == 0 => (format!("2021010{n}000000"), s.name),
            "diesel" => (format!("2021-01-0{n}-000000"), s.name),
            "sqlx" | "dbmate" => (format!("2021010{n}120000"), s.name),
            "golang-migrate" => (format!("{n:06}"), s.name),
            "goose" => (format!("{n:05}"), s.name),
            // Dotted versions whose text order is not Flyway's numeric one (1.10 after 1.9).
            "flyway" => (
                ["1", "1.1", "1.9", "1.10", "2", "2.0.1"][i].to_string(),
                s.name,
            ),
            _ => unreachable!(),
        };
        labels.push(format!("{version}_{name}"));
        match layout {
            "diesel" => {
                let dir = p.migration_path(&format!("{version}_{name}"));
                std::fs::create_dir(&dir).unwrap();
                std::fs::write(dir.join("up.sql"), &s.up).unwrap();
                std::fs::write(dir.join("down.sql"), &s.down).unwrap();
                if s.no_tx {
                    std::fs::write(dir.join("metadata.toml"), "run_in_transaction = false\n")
                        .unwrap();
                }
            }
            "sqlx" | "golang-migrate" => {
                let no_tx = if s.no_tx && layout == "sqlx" {
                    "-- no-transaction\n"
                } else {
                    ""
                };
                p.write(
                    &format!("{version}_{name}.up.sql"),
                    &format!("{no_tx}{}", s.up),
                );
                p.write(
                    &format!("{version}_{name}.down.sql"),
                    &format!("{no_tx}{}", s.down),
                );
            }
            "dbmate" => {
                let opt = if s.no_tx { " transaction:false" } else { "" };
                p.write(
                    &format!("{version}_{name}.sql"),
                    &format!(
                        "-- migrate:up{opt}\n{}\n-- migrate:down{opt}\n{}",
                        s.up, s.down
                    ),
                );
            }
            "goose" => {
                let head = if s.no_tx {
                    "-- +goose NO TRANSACTION\n"
                } else {
                    ""
                };
                // goose sends a StatementBegin/End block as one statement: here, the view.
                let up = if s.name == "user_names_view" {
                    format!("-- +goose StatementBegin\n{}-- +goose StatementEnd\n", s.up)
                } else {
                    s.up.clone()
                };
                p.write(
                    &format!("{version}_{name}.sql"),
                    &format!("{head}-- +goose Up\n{up}\n-- +goose Down\n{}", s.down),
                );
            }
            "flyway" => {
                for (prefix, sql) in [("V", &s.up), ("U", &s.down)] {
                    let file = format!("{prefix}{version}__{name}.sql");
                    p.write(&file, sql);
                    if s.no_tx {
                        p.write(&format!("{file}.conf"), "executeInTransaction=false\n");
                    }
                }
            }
            _ => unreachable!(),
        }
    }
    // Files the tools ignore at the top level stay ignored.
    std::fs::write(p.migration_path("README.md"), "how we migrate\n").unwrap();
    labels
}

/// The test tables and views, sorted, and the seeded names.
async fn schema(p: &Project, server: Server) -> (Vec<String>, Vec<String>) {
    let q = "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 't\\_%' AND table_schema = ";
    let users = "SELECT name FROM t_users ORDER BY id";
    match server {
        Server::Postgres => {
            let c = p.db.pg().await;
            let mut t: Vec<String> = c
                .query(&format!("{q} current_schema()"), &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            t.sort();
            let names = if t.contains(&"t_users".to_string()) {
                c.query(users, &[])
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            } else {
                vec![]
            };
            (t, names)
        }
        Server::MariaDb => {
            let mut c = p.db.my().await;
            let mut t: Vec<String> = c.query(format!("{q} DATABASE()")).await.unwrap();
            t.sort();
            let names = if t.contains(&"t_users".to_string()) {
                c.query(users).await.unwrap()
            } else {
                vec![]
            };
            (t, names)
        }
    }
}

async fn layout_round_trip(server: Server, layout: &str) {
    let p = Project::new(server).await;
    let steps = history(server);
    let labels = write(&p, layout, &steps);
    let ctx = format!("{layout} on {server:?}");

    // golang-migrate's files are exactly sqlx's reversible ones: the directory says which only
    // when a sqlx option shows, so without it sluice asks and sluice.toml answers.
    if layout == "golang-migrate" {
        let r = p.run(&["status"]);
        assert_eq!(r.code, 2, "{ctx}: {r:?}");
        assert!(
            r.stderr.contains("it could be sqlx (") && r.stderr.contains("golang-migrate ("),
            "{ctx}: {r:?}"
        );
        assert!(r.stderr.contains("layout = "), "{ctx}: {r:?}");
        std::fs::write(
            p.path().join("sluice.toml"),
            "layout = \"golang-migrate\"\n",
        )
        .unwrap();
    }

    let status = p.status_json();
    assert_eq!(status["layout"], layout, "{ctx}: {status}");
    let shown: Vec<String> = status["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}_{}",
                m["version_text"].as_str().unwrap(),
                m["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(shown, labels, "{ctx}");
    let r = p.run(&["status"]);
    assert!(
        r.stdout
            .contains(&format!("migrations in {layout}'s layout")),
        "{ctx}: {r:?}"
    );

    let target = if server == Server::Postgres {
        "postgres:15"
    } else {
        "mariadb:10.11"
    };
    let r = p.run(&["lint", "--include-down", "--target", target]);
    assert!(r.code == 0, "{ctx}: {r:?}");

    let applied: Vec<(i64, String)> = p
        .states()
        .into_iter()
        .map(|(v, _)| (v, "applied".to_string()))
        .collect();
    let all_tables: Vec<String> = ["t_names", "t_orders", "t_users"]
        .map(String::from)
        .to_vec();
    let seeded = vec!["ada".to_string(), "grace".to_string()];
    for round in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{ctx} round {round}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "applying {} (no SQL: recorded, nothing runs)",
                labels[2]
            )),
            "{ctx}: {r:?}"
        );
        assert_eq!(p.states(), applied, "{ctx}");
        assert_eq!(
            schema(&p, server).await,
            (all_tables.clone(), seeded.clone()),
            "{ctx}"
        );
        let r = p.run(&["drift"]);
        assert_eq!(r.code, 0, "{ctx}: {r:?}");

        // `--to` takes the version as its file writes it.
        let v4 = labels[3]
            .strip_suffix(&format!("_{}", steps[3].name))
            .unwrap();
        let r = p.run(&["down", "--to", v4]);
        assert_eq!(r.code, 0, "{ctx} round {round}: {r:?}");
        let states: Vec<String> = p.states().into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            states,
            ["applied", "applied", "applied", "applied", "pending", "pending"],
            "{ctx}: down --to {v4}"
        );
        let r = p.run(&["down", "--to", "0"]);
        assert_eq!(r.code, 0, "{ctx} round {round}: {r:?}");
        assert!(
            p.states().iter().all(|(_, s)| s == "pending"),
            "{ctx}: {:?}",
            p.states()
        );
        assert_eq!(schema(&p, server).await, (vec![], vec![]), "{ctx}");
    }
    // Up again to the end: the recorded schema matches the live one.
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");
    let r = p.run(&["drift"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");

    // An edit to a file that is not the first one of its migration is an edit too.
    let edited = match layout {
        "diesel" => Some(p.migration_path(&format!("{}/down.sql", labels[5]))),
        "sqlx" | "golang-migrate" => Some(p.migration_path(&format!("{}.down.sql", labels[5]))),
        "flyway" => Some(p.migration_path("U2.0.1__user_names_view.sql")),
        _ => None,
    };
    if let Some(path) = edited {
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}-- edited\n")).unwrap();
        let status = p.status_json();
        assert_eq!(
            status["migrations"][5]["status"], "edited",
            "{ctx}: {status}"
        );
    }
    missing_file_shows_its_version(&p, layout, &labels, &steps);
}

/// After the round trip: a migration whose files are gone still shows the version it had, where
/// the key says it (text-ordered and Flyway versions; numbers lose their leading zeros).
fn missing_file_shows_its_version(p: &Project, layout: &str, labels: &[String], steps: &[Step]) {
    let v6 = labels[5]
        .strip_suffix(&format!("_{}", steps[5].name))
        .unwrap();
    match layout {
        "diesel" => std::fs::remove_dir_all(p.migration_path(&labels[5])).unwrap(),
        "dbmate" => std::fs::remove_file(p.migration_path(&format!("{}.sql", labels[5]))).unwrap(),
        "flyway" => {
            for f in ["V", "U"] {
                std::fs::remove_file(
                    p.migration_path(&format!("{f}{}.sql", labels[5].replacen('_', "__", 1))),
                )
                .unwrap();
            }
        }
        _ => return,
    }
    let status = p.status_json();
    let m = &status["migrations"][5];
    assert_eq!(m["status"], "missing-file", "{layout}: {status}");
    assert_eq!(m["version_text"], v6, "{layout}: {status}");
}

macro_rules! round_trips {
    ($($name:ident: $server:expr, $layout:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            layout_round_trip($server, $layout).await;
        }
    )*};
}

round_trips! {
    postgres_diesel: Server::Postgres, "diesel";
    postgres_sqlx: Server::Postgres, "sqlx";
    postgres_golang_migrate: Server::Postgres, "golang-migrate";
    postgres_dbmate: Server::Postgres, "dbmate";
    postgres_goose: Server::Postgres, "goose";
    mariadb_diesel: Server::MariaDb, "diesel";
    mariadb_sqlx: Server::MariaDb, "sqlx";
    mariadb_golang_migrate: Server::MariaDb, "golang-migrate";
    mariadb_dbmate: Server::MariaDb, "dbmate";
    mariadb_goose: Server::MariaDb, "goose";
    postgres_flyway: Server::Postgres, "flyway";
    mariadb_flyway: Server::MariaDb, "flyway";
}

/// Commands that write sluice's own files refuse another tool's directory.
#[tokio::test]
async fn writing_commands_refuse_other_layouts() {
    let p = Project::new(Server::Postgres).await;
    write(&p, "goose", &history(Server::Postgres));
    let r = p.run(&["new", "add_x"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("`sluice new` writes a migration in sluice's own layout")
            && r.stderr.contains("follows goose's"),
        "{r:?}"
    );
    let r = p.run(&["drift", "--write-migration"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        std::fs::read_dir(p.path().join("migrations"))
            .unwrap()
            .count(),
        7,
        "nothing written"
    );
}

/// `baseline` takes a version as its file writes it, in every layout whose versions are not plain
/// numbers.
#[tokio::test]
async fn baseline_takes_versions_as_written() {
    for layout in ["diesel", "flyway"] {
        let p = Project::new(Server::Postgres).await;
        let steps = history(Server::Postgres);
        let labels = write(&p, layout, &steps);
        let v3 = labels[2]
            .strip_suffix(&format!("_{}", steps[2].name))
            .unwrap();
        let r = p.run(&["baseline", v3]);
        assert_eq!(r.code, 0, "{layout}: {r:?}");
        let states: Vec<String> = p.states().into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            states,
            ["baseline", "baseline", "baseline", "pending", "pending", "pending"],
            "{layout}"
        );
        let r = p.run(&["down", "--to", "1.x"]);
        assert_eq!(r.code, 2, "{layout}: {r:?}");
        assert!(r.stderr.contains("version 1.x: "), "{layout}: {r:?}");
    }
}

/// Per-dialect variants in sluice's own layout: the engine's file runs, a migration written for the
/// other engine only is recorded as a no-op, and the history goes up, down to 0 and up again.
async fn dialect_variants(server: Server) {
    let p = Project::new(server).await;
    p.write(
        "1_users.sql",
        "-- sluice:up\nCREATE TABLE t_users (id INT PRIMARY KEY, name VARCHAR(50));\n-- sluice:down\nDROP TABLE t_users;\n",
    );
    p.write(
        "2_idx.postgres.sql",
        "-- sluice:up\nCREATE INDEX CONCURRENTLY t_users_name ON t_users (name);\n-- sluice:down\nDROP INDEX CONCURRENTLY t_users_name;\n",
    );
    p.write(
        "2_idx.mysql.sql",
        "-- sluice:up\nCREATE INDEX t_users_name ON t_users (name);\n-- sluice:down\nDROP INDEX t_users_name ON t_users;\n",
    );
    p.write(
        "3_seq.postgres.sql",
        "-- sluice:up\nCREATE SEQUENCE t_seq;\n-- sluice:down\nDROP SEQUENCE t_seq;\n",
    );
    p.write(
        "4_orders.sql",
        "-- sluice:up\nCREATE TABLE t_orders (id INT PRIMARY KEY);\n-- sluice:down\nDROP TABLE t_orders;\n",
    );
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{server:?}: {r:?}");
        let noop = r
            .stderr
            .contains("applying 3_seq (no SQL: recorded, nothing runs)");
        assert_eq!(noop, server == Server::MariaDb, "{server:?}: {r:?}");
        assert!(p.states().iter().all(|(_, s)| s == "applied"), "{server:?}");
        assert_eq!(p.states().len(), 4);
        assert_eq!(
            schema(&p, server).await.0,
            ["t_orders", "t_users"],
            "{server:?}"
        );
        assert_eq!(p.run(&["drift"]).code, 0, "{server:?}");
        let r = p.run(&["down", "--to", "0"]);
        assert_eq!(r.code, 0, "{server:?}: {r:?}");
        assert_eq!(schema(&p, server).await.0, Vec::<String>::new());
    }
    let r = p.run(&[
        "lint",
        "--target",
        if server == Server::Postgres {
            "postgres:15"
        } else {
            "mariadb:10.11"
        },
    ]);
    assert_eq!(r.code, 0, "{server:?}: {r:?}");
}

#[tokio::test]
async fn postgres_dialect_variants() {
    dialect_variants(Server::Postgres).await;
}

#[tokio::test]
async fn mariadb_dialect_variants() {
    dialect_variants(Server::MariaDb).await;
}

/// `lint` on one file of another tool's directory reads it as that tool does: a dbmate file's down
/// part is linted as the down part (with --include-down), at its own line.
#[tokio::test]
async fn lint_of_one_file_reads_its_layout() {
    let p = Project::new(Server::Postgres).await;
    p.write(
        "20210101000000_a.sql",
        "-- migrate:up\nCREATE TABLE t_users (id INT PRIMARY KEY);\n\n-- migrate:down\nALTER TABLE t_users ADD COLUMN c INT NOT NULL;\n",
    );
    let file = "migrations/20210101000000_a.sql";
    let r = p.run(&["lint", "--target", "postgres:15", file]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = p.run(&[
        "lint",
        "--target",
        "postgres:15",
        "--include-down",
        "--format",
        "github",
        file,
    ]);
    assert_eq!(r.code, 7, "{r:?}");
    assert!(
        r.stdout.contains(&format!("file={file},line=5,col=1")),
        "{r:?}"
    );
}

/// The status entries of the repeatable migrations: `(name, status, applied_at)`.
fn repeatable_states(p: &Project) -> Vec<(String, String, String)> {
    p.status_json()["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["version"].as_i64().unwrap() < 0)
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
                m["applied_at"].to_string(),
            )
        })
        .collect()
}

/// Rows of a query, each as its columns joined by `|`.
async fn rows(p: &Project, server: Server, sql: &str) -> Result<Vec<String>, String> {
    match server {
        Server::Postgres => {
            let c = p.db.pg().await;
            let rows = c.simple_query(sql).await.map_err(|e| {
                e.as_db_error()
                    .map_or(e.to_string(), |d| d.message().to_string())
            })?;
            Ok(rows
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("NULL").to_string())
                            .collect::<Vec<_>>()
                            .join("|"),
                    ),
                    _ => None,
                })
                .collect())
        }
        Server::MariaDb => {
            let mut c = p.db.my().await;
            let rows: Vec<mysql_async::Row> = c.query(sql).await.map_err(|e| e.to_string())?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| match r.as_ref(i).unwrap() {
                            mysql_async::Value::NULL => "NULL".to_string(),
                            mysql_async::Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                            v => v.as_sql(true),
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect())
        }
    }
}

/// Repeatable migrations end to end, in Flyway's layout (`R__<description>.sql`) and sluice's own
/// (`R_<name>.sql`): applied after the versioned ones in the order of their names; a rerun applies
/// nothing; an edited one, and only it, is applied again; a failing one fails `up` with the
/// migration-failed exit code, is recorded failed, fails the same way on a rerun, and applies once
/// fixed; `down` leaves them alone; `drift` stays empty; lint and plan read them.
async fn repeatables(server: Server, layout: &str) {
    let p = Project::new(server).await;
    let ctx = format!("{layout} on {server:?}");
    // File names of a versioned and a repeatable migration.
    let flyway = layout == "flyway";
    let v = |v: &str, n: &str| match flyway {
        true => format!("V{v}__{n}.sql"),
        false => format!("{v}_{n}.sql"),
    };
    let r = |n: &str| match flyway {
        true => format!("R__{n}.sql"),
        false => format!("R_{n}.sql"),
    };
    let versioned = |version: &str, name: &str, up: &str, down: &str| match layout {
        "flyway" => {
            p.write(&v(version, name), up);
            p.write(&format!("U{version}__{name}.sql"), down);
        }
        _ => p.write(
            &v(version, name),
            &format!("-- sluice:up\n{up}-- sluice:down\n{down}"),
        ),
    };
    versioned(
        "1",
        "users",
        "CREATE TABLE t_users (id INT PRIMARY KEY, name VARCHAR(50));\nINSERT INTO t_users VALUES (1, 'ada'), (2, 'grace');\n",
        "DROP TABLE t_users;\n",
    );
    versioned(
        "2",
        "orders",
        "CREATE TABLE t_orders (id INT PRIMARY KEY);\n",
        "DROP TABLE t_orders;\n",
    );
    // `b_upper` reads the view `a_names` makes: it works only when they run in name order, after
    // the versioned table.
    let view = |name: &str, sql: &str| p.write(&r(name), sql);
    view(
        "a_names",
        "CREATE OR REPLACE VIEW t_names AS SELECT id, name FROM t_users;\n",
    );
    view(
        "b_upper",
        "CREATE OR REPLACE VIEW t_upper AS SELECT id, UPPER(name) AS name FROM t_names;\n",
    );

    let target = if server == Server::Postgres {
        "postgres:15"
    } else {
        "mariadb:10.11"
    };
    let r_lint = p.run(&["lint", "--target", target]);
    assert_eq!(r_lint.code, 0, "{ctx}: {r_lint:?}");
    let st = repeatable_states(&p);
    assert_eq!(
        st.iter()
            .map(|s| (s.0.as_str(), s.1.as_str()))
            .collect::<Vec<_>>(),
        [("a_names", "new"), ("b_upper", "new")],
        "{ctx}"
    );
    // The dry run lists them after the versioned ones, in name order.
    let dry = p.run(&["up", "--dry-run"]);
    assert_eq!(dry.code, 0, "{ctx}: {dry:?}");
    let at = |s: &str| {
        dry.stdout
            .find(s)
            .unwrap_or_else(|| panic!("{ctx}: no {s}: {dry:?}"))
    };
    // (`plan` names a versioned migration by its history key, a repeatable as its file.)
    let named = |n: &str| format!("{} (repeatable)", r(n).trim_end_matches(".sql"));
    assert!(at("_orders") < at(&named("a_names")), "{ctx}: {dry:?}");
    assert!(
        at(&named("a_names")) < at(&named("b_upper")),
        "{ctx}: {dry:?}"
    );
    let plan = p.run(&["plan"]);
    assert!(
        plan.stdout.contains(&named("a_names")) && plan.stdout.contains(&named("b_upper")),
        "{ctx}: {plan:?}"
    );
    // `--to` stops before the end: no repeatable runs.
    let r1 = p.run(&["up", "--to", "1"]);
    assert_eq!(r1.code, 0, "{ctx}: {r1:?}");
    assert!(!r1.stderr.contains("applying R"), "{ctx}: {r1:?}");

    let up = p.run(&["up"]);
    assert_eq!(up.code, 0, "{ctx}: {up:?}");
    let label = |n: &str| r(n).trim_end_matches(".sql").to_string();
    let a_at = up.stderr.find(&format!("applying {}", label("a_names")));
    let b_at = up.stderr.find(&format!("applying {}", label("b_upper")));
    assert!(
        a_at.is_some() && b_at.is_some() && a_at < b_at,
        "{ctx}: {up:?}"
    );
    let upper = "SELECT id, name FROM t_upper ORDER BY id";
    assert_eq!(
        rows(&p, server, upper).await.unwrap(),
        ["1|ADA", "2|GRACE"],
        "{ctx}"
    );
    let applied = repeatable_states(&p);
    assert!(
        applied.iter().all(|s| s.1 == "applied"),
        "{ctx}: {applied:?}"
    );
    assert_eq!(p.run(&["drift"]).code, 0, "{ctx}");
    // Every listing names a repeatable as its file is named, never by its internal negative key,
    // and a versioned migration by its version as written (Flyway's keys are not its versions).
    let keys: Vec<String> = p.status_json()["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["version_text"].as_str().unwrap().parse::<i64>().ok() != m["version"].as_i64()
        })
        .map(|m| m["version"].to_string())
        .collect();
    assert_eq!(keys.len(), if flyway { 4 } else { 2 }, "{ctx}: {keys:?}");
    for args in [&["status"][..], &["log"], &["verify"], &["drift"]] {
        let out = p.run(args);
        assert_eq!(out.code, 0, "{ctx}: {out:?}");
        for k in &keys {
            assert!(
                !out.all().contains(k.as_str()),
                "{ctx}: {args:?} shows {k}: {out:?}"
            );
        }
        if args[0] == "status" || args[0] == "log" {
            for n in ["a_names", "b_upper"] {
                assert!(out.stdout.contains(&label(n)), "{ctx}: {args:?}: {out:?}");
            }
        }
    }

    // Run again, and again: nothing to apply, the records untouched.
    for _ in 0..2 {
        let again = p.run(&["up"]);
        assert_eq!(again.code, 0, "{ctx}: {again:?}");
        assert!(
            again.stderr.contains("nothing to apply"),
            "{ctx}: {again:?}"
        );
        assert_eq!(repeatable_states(&p), applied, "{ctx}");
    }

    // Edit one: it shows as changed, and only it is applied again.
    view(
        "b_upper",
        "CREATE OR REPLACE VIEW t_upper AS SELECT id, LOWER(name) AS name FROM t_names;\n",
    );
    let st = repeatable_states(&p);
    assert_eq!(
        (st[0].1.as_str(), st[1].1.as_str()),
        ("applied", "changed"),
        "{ctx}"
    );
    let up = p.run(&["up"]);
    assert_eq!(up.code, 0, "{ctx}: {up:?}");
    assert!(
        !up.stderr
            .contains(&format!("applying {}", label("a_names"))),
        "{ctx}: {up:?}"
    );
    assert!(
        up.stderr
            .contains(&format!("applying {}", label("b_upper"))),
        "{ctx}: {up:?}"
    );
    assert_eq!(
        rows(&p, server, upper).await.unwrap(),
        ["1|ada", "2|grace"],
        "{ctx}"
    );
    let st = repeatable_states(&p);
    assert_eq!(
        st[0], applied[0],
        "{ctx}: the unchanged one was not applied again"
    );
    assert_eq!(st[1].1, "applied", "{ctx}");
    assert_eq!(p.run(&["drift"]).code, 0, "{ctx}");

    // A failing repeatable: the run fails as a versioned migration does, the record says failed,
    // a rerun of the same file fails the same way, the fixed file applies, and then nothing. Its
    // first statement succeeds (and commits, on MariaDB): a rerun still runs the whole file, never
    // resuming after it, so the fix may change any statement.
    view(
        "b_upper",
        "CREATE OR REPLACE VIEW t_upper AS SELECT id, LOWER(name) AS name FROM t_names;\n\
         CREATE OR REPLACE VIEW t_broken AS SELECT id, no_such_column FROM t_names;\n",
    );
    for round in 0..2 {
        let fail = p.run(&["up"]);
        assert_eq!(fail.code, 1, "{ctx} round {round}: {fail:?}");
        assert!(fail.stderr.contains("no_such_column"), "{ctx}: {fail:?}");
        assert!(!fail.stderr.contains("resuming"), "{ctx}: {fail:?}");
        let st = repeatable_states(&p);
        assert_eq!(
            (st[0].1.as_str(), st[1].1.as_str()),
            ("applied", "failed"),
            "{ctx}"
        );
        let s = p.run(&["status"]);
        assert!(s.stdout.contains("b_upper failed: "), "{ctx}: {s:?}");
        // The view is still the last one that applied.
        assert_eq!(
            rows(&p, server, upper).await.unwrap(),
            ["1|ada", "2|grace"],
            "{ctx}"
        );
    }
    // (PostgreSQL's CREATE OR REPLACE VIEW keeps each column's type: the fix keeps it text.)
    view(
        "b_upper",
        "CREATE OR REPLACE VIEW t_upper AS SELECT id, UPPER(name) AS name FROM t_names;\n\
         CREATE OR REPLACE VIEW t_broken AS SELECT id FROM t_names;\n",
    );
    let fixed = p.run(&["up"]);
    assert_eq!(fixed.code, 0, "{ctx}: {fixed:?}");
    assert!(!fixed.stderr.contains("resuming"), "{ctx}: {fixed:?}");
    assert_eq!(
        rows(&p, server, "SELECT id FROM t_broken ORDER BY id")
            .await
            .unwrap(),
        ["1", "2"],
        "{ctx}"
    );
    assert_eq!(
        rows(&p, server, upper).await.unwrap(),
        ["1|ADA", "2|GRACE"],
        "{ctx}"
    );
    for _ in 0..2 {
        let again = p.run(&["up"]);
        assert_eq!(again.code, 0, "{ctx}: {again:?}");
        assert!(
            again.stderr.contains("nothing to apply"),
            "{ctx}: {again:?}"
        );
    }
    assert!(
        repeatable_states(&p).iter().all(|s| s.1 == "applied"),
        "{ctx}"
    );
    assert_eq!(p.run(&["drift"]).code, 0, "{ctx}");

    // `down` reverts versioned migrations only: the repeatables stay applied, their views work.
    let down = p.run(&["down", "--to", "1"]);
    assert_eq!(down.code, 0, "{ctx}: {down:?}");
    let states: Vec<String> = p.states().into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        states,
        ["applied", "pending", "applied", "applied"],
        "{ctx}"
    );
    assert_eq!(rows(&p, server, upper).await.unwrap().len(), 2, "{ctx}");
    // `plan` now lists the versioned migration only: the repeatables are unchanged.
    let plan = p.run(&["plan"]);
    assert_eq!(plan.code, 0, "{ctx}: {plan:?}");
    assert!(
        plan.stdout.contains("_orders") && !plan.stdout.contains("repeatable"),
        "{ctx}: {plan:?}"
    );

    // `baseline` adopts versioned migrations only (as Flyway's does): on a database that has the
    // table, the repeatables stay new and the next `up` applies them after the pending version.
    let q = Project::new(server).await;
    for f in std::fs::read_dir(p.path().join("migrations")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), q.migration_path(&f.file_name().to_string_lossy())).unwrap();
    }
    let users = "CREATE TABLE t_users (id INT PRIMARY KEY, name VARCHAR(50))";
    match server {
        Server::Postgres => q.db.pg().await.batch_execute(users).await.unwrap(),
        Server::MariaDb => q.db.my().await.query_drop(users).await.unwrap(),
    }
    let r = q.run(&["baseline", "1"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");
    let states: Vec<String> = q.states().into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["baseline", "pending", "new", "new"], "{ctx}");
    let r = q.run(&["up"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");
    assert!(
        q.states()
            .iter()
            .all(|(_, s)| s == "applied" || s == "baseline"),
        "{ctx}"
    );
    assert_eq!(rows(&q, server, upper).await.unwrap().len(), 0, "{ctx}");
}

#[tokio::test]
async fn postgres_flyway_repeatables() {
    repeatables(Server::Postgres, "flyway").await;
}

#[tokio::test]
async fn mariadb_flyway_repeatables() {
    repeatables(Server::MariaDb, "flyway").await;
}

#[tokio::test]
async fn postgres_sluice_repeatables() {
    repeatables(Server::Postgres, "sluice").await;
}

#[tokio::test]
async fn mariadb_sluice_repeatables() {
    repeatables(Server::MariaDb, "sluice").await;
}

/// `sluice new` after a latest version in the future, a far-future timestamp, a number that is
/// no timestamp, a small number and a past timestamp: the next version is right away one above
/// the latest (or now), never a loop counting seconds up to it; a version it cannot follow is
/// refused with the fix. Each twice: the second file comes after the first.
#[tokio::test]
async fn new_follows_any_latest_version_at_once() {
    let soon = (chrono::Utc::now() + chrono::Duration::hours(3))
        .format("%Y%m%d%H%M%S")
        .to_string()
        .parse::<i64>()
        .unwrap();
    let cases: [(i64, Option<i64>); 5] = [
        (soon, Some(soon + 1)),
        (20991231235959, Some(21000101000000)),
        (99999999999999, None),
        (5, None),
        (20200101000000, None),
    ];
    for (latest, first) in cases {
        let p = Project::new(Server::Postgres).await;
        let dir = p.path().join("migrations");
        std::fs::write(
            dir.join(format!("{latest}_old.sql")),
            "-- sluice:up\nSELECT 1;\n-- sluice:down\n",
        )
        .unwrap();
        let mut made = Vec::new();
        for round in 0..2 {
            let r = common::wait_bounded(p.spawn(&["new", "next"]), 30, "sluice new");
            if latest == 99999999999999 {
                assert_eq!(r.code, 2, "{latest} round {round}: {r:?}");
                assert!(
                    r.stderr
                        .contains("is later than now and is not a timestamp")
                        && r.stderr.contains("100000000000000_next.sql"),
                    "{r:?}"
                );
                continue;
            }
            assert_eq!(r.code, 0, "{latest} round {round}: {r:?}");
            let name = std::path::Path::new(r.stdout.trim())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let v: i64 = name.split('_').next().unwrap().parse().unwrap();
            made.push(v);
        }
        if latest == 99999999999999 {
            assert_eq!(
                std::fs::read_dir(&dir).unwrap().count(),
                1,
                "nothing written"
            );
            continue;
        }
        assert!(made[0] > latest && made[1] > made[0], "{latest}: {made:?}");
        match first {
            Some(v) => assert_eq!(made[0], v, "{latest}"),
            // At most a few seconds from now.
            None => assert!(
                made[0] - latest > 60 && made[0] <= soon,
                "{latest}: {made:?}"
            ),
        }
    }
}
