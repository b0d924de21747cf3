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
