//! `sluice import`: a database another tool migrated is adopted from that tool's own history
//! table. For each tool and engine the table is created as the tool creates it and filled as the
//! tool fills it after applying the first migrations of a small history (whose SQL is applied by
//! hand); then `import` records them, `drift` is empty, `up` applies the rest and `down` reverts
//! everything. Plus the refusals: a version without a file, a dirty golang-migrate, a database
//! sluice already manages; and a rerun is a no-op.

mod common;

use common::Project;
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;

/// One migration: name, up SQL, down SQL.
const STEPS: [(&str, &str, &str); 4] = [
    (
        "create_users",
        "CREATE TABLE t_users (id INT PRIMARY KEY, name VARCHAR(50));\n",
        "DROP TABLE t_users;\n",
    ),
    (
        "seed_users",
        "INSERT INTO t_users (id, name) VALUES (1, 'ada'), (2, 'grace');\n",
        "DELETE FROM t_users WHERE id IN (1, 2);\n",
    ),
    (
        "create_orders",
        "CREATE TABLE t_orders (id INT PRIMARY KEY, user_id INT NOT NULL);\n",
        "DROP TABLE t_orders;\n",
    ),
    (
        "user_names_view",
        "CREATE VIEW t_names AS SELECT id, name FROM t_users;\n",
        "DROP VIEW t_names;\n",
    ),
];

const TOOLS: [&str; 6] = [
    "diesel",
    "sqlx",
    "golang-migrate",
    "dbmate",
    "goose",
    "flyway",
];

/// A migration as its tool names it and records it.
struct Written {
    /// The version as the file name writes it (what `status` shows).
    version: String,
    /// The version as the tool writes it into its table.
    recorded: String,
    name: &'static str,
    /// The file holding the up part: what sqlx and Flyway checksum.
    up_file: std::path::PathBuf,
}

/// Writes the history in `tool`'s layout.
fn write(p: &Project, tool: &str) -> Vec<Written> {
    let mut out = Vec::new();
    for (i, (name, up, down)) in STEPS.iter().enumerate() {
        let n = i + 1;
        let (version, recorded) = match tool {
            "diesel" => (format!("2021-01-0{n}-000000"), format!("2021010{n}000000")),
            "sqlx" | "dbmate" | "sluice" => {
                (format!("2021010{n}120000"), format!("2021010{n}120000"))
            }
            "golang-migrate" => (format!("{n:06}"), n.to_string()),
            "goose" => (format!("{n:05}"), n.to_string()),
            // Flyway orders 1.9 before 1.10.
            "flyway" => {
                let v = ["1", "1.1", "1.9", "1.10"][i].to_string();
                (v.clone(), v)
            }
            _ => unreachable!(),
        };
        let up_file = match tool {
            "diesel" => {
                let dir = p.migration_path(&format!("{version}_{name}"));
                std::fs::create_dir(&dir).unwrap();
                std::fs::write(dir.join("up.sql"), up).unwrap();
                std::fs::write(dir.join("down.sql"), down).unwrap();
                dir.join("up.sql")
            }
            "sqlx" | "golang-migrate" => {
                p.write(&format!("{version}_{name}.down.sql"), down);
                p.write(&format!("{version}_{name}.up.sql"), up);
                p.migration_path(&format!("{version}_{name}.up.sql"))
            }
            "dbmate" => {
                let f = format!("{version}_{name}.sql");
                p.write(&f, &format!("-- migrate:up\n{up}\n-- migrate:down\n{down}"));
                p.migration_path(&f)
            }
            "goose" => {
                let f = format!("{version}_{name}.sql");
                p.write(&f, &format!("-- +goose Up\n{up}\n-- +goose Down\n{down}"));
                p.migration_path(&f)
            }
            "sluice" => {
                let f = format!("{version}_{name}.sql");
                p.write(&f, &format!("-- sluice:up\n{up}\n-- sluice:down\n{down}"));
                p.migration_path(&f)
            }
            "flyway" => {
                p.write(&format!("U{version}__{name}.sql"), down);
                p.write(&format!("V{version}__{name}.sql"), up);
                p.migration_path(&format!("V{version}__{name}.sql"))
            }
            _ => unreachable!(),
        };
        out.push(Written {
            version,
            recorded,
            name,
            up_file,
        });
    }
    if tool == "golang-migrate" || tool == "sqlx" {
        // Reversible sqlx files and golang-migrate's read alike: sluice.toml says which.
        std::fs::write(
            p.path().join("sluice.toml"),
            format!("layout = \"{tool}\"\n"),
        )
        .unwrap();
    }
    out
}

/// The tool's history table, as the tool creates it on each engine.
fn create_table(tool: &str, server: Server, table: &str) -> String {
    let pg = server == Server::Postgres;
    match tool {
        "diesel" => format!("CREATE TABLE IF NOT EXISTS {table} (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"),
        "sqlx" if pg => format!("CREATE TABLE IF NOT EXISTS {table} (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)"),
        "sqlx" => format!("CREATE TABLE IF NOT EXISTS {table} (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)"),
        "golang-migrate" => format!("CREATE TABLE IF NOT EXISTS {table} (version bigint not null primary key, dirty boolean not null)"),
        // As dbmate 2.36 leaves it: unbounded on PostgreSQL, 128 characters on MariaDB.
        "dbmate" if pg => format!("create table if not exists {table} (version varchar primary key)"),
        "dbmate" => format!("create table if not exists {table} (version varchar(128) primary key)"),
        "goose" if pg => format!("CREATE TABLE {table} (id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NOT NULL DEFAULT now())"),
        "goose" => format!("CREATE TABLE {table} (id serial NOT NULL, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NULL default now(), PRIMARY KEY(id))"),
        "flyway" if pg => format!("CREATE TABLE {table} (installed_rank INT NOT NULL PRIMARY KEY, version VARCHAR(50), description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INTEGER, installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT now(), execution_time INTEGER NOT NULL, success BOOLEAN NOT NULL)"),
        "flyway" => format!("CREATE TABLE {table} (installed_rank INT NOT NULL, version VARCHAR(50), description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INT, installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, execution_time INT NOT NULL, success BOOL NOT NULL, CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank)) ENGINE=InnoDB"),
        _ => unreachable!(),
    }
}

/// The rows the tool writes after applying `applied`, in its order.
fn rows(tool: &str, server: Server, table: &str, applied: &[&Written]) -> Vec<String> {
    let pg = server == Server::Postgres;
    let mut out = Vec::new();
    if tool == "goose" {
        // goose's first row, written when it creates the table.
        out.push(format!(
            "INSERT INTO {table} (version_id, is_applied) VALUES (0, true)"
        ));
    }
    if tool == "golang-migrate" {
        // One row: the latest version applied.
        if let Some(w) = applied.last() {
            out.push(format!(
                "INSERT INTO {table} (version, dirty) VALUES ({}, false)",
                w.recorded
            ));
        }
        return out;
    }
    for (i, w) in applied.iter().enumerate() {
        let bytes = std::fs::read(&w.up_file).unwrap();
        out.push(match tool {
            "diesel" | "dbmate" => format!("INSERT INTO {table} (version) VALUES ('{}')", w.recorded),
            "sqlx" => {
                let sum = sluice_core::import::sqlx_checksum(&bytes);
                let sum = if pg { format!("decode('{sum}', 'hex')") } else { format!("UNHEX('{sum}')") };
                format!("INSERT INTO {table} (version, description, success, checksum, execution_time) VALUES ({}, '{}', true, {sum}, 1)", w.recorded, w.name.replace('_', " "))
            }
            "goose" => format!("INSERT INTO {table} (version_id, is_applied) VALUES ({}, true)", w.recorded),
            "flyway" => format!(
                "INSERT INTO {table} (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES ({}, '{}', '{}', 'SQL', 'V{}__{}.sql', {}, 'tester', 1, true)",
                i + 1, w.recorded, w.name.replace('_', " "), w.version, w.name,
                sluice_core::import::flyway_checksum(&bytes)
            ),
            _ => unreachable!(),
        });
    }
    out
}

async fn exec(p: &Project, server: Server, statements: &[String]) {
    match server {
        Server::Postgres => {
            let c = p.db.pg().await;
            for s in statements {
                c.batch_execute(s)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
        Server::MariaDb => {
            let mut c = p.db.my().await;
            for s in statements {
                c.query_drop(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
    }
}

/// The test tables and views (`t_*`), sorted.
async fn tables(p: &Project, _server: Server) -> Vec<String> {
    let mut names = p.table_names().await;
    names.retain(|n| n.starts_with("t_"));
    names
}

/// A database `tool` migrated to its first `n` migrations.
async fn migrated_by(server: Server, tool: &str, n: usize) -> (Project, Vec<Written>) {
    let p = Project::new(server).await;
    let written = write(&p, tool);
    let table = default_table(tool);
    let mut sql = vec![create_table(tool, server, table)];
    sql.extend(STEPS[..n].iter().map(|s| s.1.to_string()));
    sql.extend(rows(
        tool,
        server,
        table,
        &written[..n].iter().collect::<Vec<_>>(),
    ));
    exec(&p, server, &sql).await;
    (p, written)
}

fn default_table(tool: &str) -> &'static str {
    match tool {
        "diesel" => "__diesel_schema_migrations",
        "sqlx" => "_sqlx_migrations",
        "golang-migrate" | "dbmate" => "schema_migrations",
        "goose" => "goose_db_version",
        "flyway" => "flyway_schema_history",
        _ => unreachable!(),
    }
}

fn label(w: &Written) -> String {
    format!("{}_{}", w.version, w.name)
}

async fn import_round_trip(server: Server, tool: &str) {
    let ctx = format!("{tool} on {server:?}");
    let (p, written) = migrated_by(server, tool, 2).await;
    let table = default_table(tool);

    let r = p.run(&["import"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");
    let checksums = match tool {
        "sqlx" => "compared (sqlx's SHA-384 of the up file)".to_string(),
        "flyway" => "compared (Flyway's CRC-32 of the V and R files)".to_string(),
        _ => format!("not compared: {tool} keeps no checksum"),
    };
    let expected = format!(
        "sluice: imported 2 version(s) from {tool}'s table {table} as applied, schema snapshot taken\n\
         sluice:   imported: {}, {}\n\
         sluice:   not applied by {tool} (pending: `sluice up` applies them): {}, {}\n\
         sluice:   checksums: {checksums}\n",
        label(&written[0]),
        label(&written[1]),
        label(&written[2]),
        label(&written[3]),
    );
    assert_eq!(r.stderr, expected, "{ctx}: {r:?}");
    let states: Vec<String> = p.states().into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        states,
        ["applied", "applied", "pending", "pending"],
        "{ctx}"
    );
    let r = p.run(&["verify"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");
    let r = p.run(&["drift"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");
    let imports = || -> Vec<(String, String)> {
        let r = p.run(&["log", "--json"]);
        let log: serde_json::Value = serde_json::from_str(&r.stdout).expect("log json");
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "import")
            .map(|e| {
                (
                    e["kind"].to_string(),
                    e["detail"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let one = vec![(
        "\"import\"".to_string(),
        format!("imported 2 version(s) from {tool}'s table {table}"),
    )];
    assert_eq!(imports(), one, "{ctx}");

    // A rerun writes nothing.
    let r = p.run(&["import"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");
    assert!(
        r.stderr.starts_with(&format!("sluice: already imported from {tool}'s table {table}: sluice's history has exactly these 2 version(s), nothing written\n")),
        "{ctx}: {r:?}"
    );
    assert_eq!(imports(), one, "{ctx}");

    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");
    assert!(p.states().iter().all(|(_, s)| s == "applied"), "{ctx}");
    assert_eq!(
        tables(&p, server).await,
        ["t_names", "t_orders", "t_users"],
        "{ctx}"
    );
    let r = p.run(&["drift"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");

    // The imported migrations go down with their files' down parts.
    let r = p.run(&["down", "--to", "0"]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");
    assert!(p.states().iter().all(|(_, s)| s == "pending"), "{ctx}");
    assert!(tables(&p, server).await.is_empty(), "{ctx}");

    // Now sluice manages the database: an import is refused, also on a rerun.
    let r = p.run(&["up", "--to", &written[0].version]);
    assert_eq!(r.code, 0, "{ctx}: {r:?}");
    for _ in 0..2 {
        let r = p.run(&["import"]);
        assert_eq!(r.code, 2, "{ctx}: {r:?}");
        assert!(
            r.stderr.contains("sluice's history in this database already has 1 migration(s) recorded, not the 2 this import would record")
                && r.stderr.contains("import adopts a database sluice has not migrated yet"),
            "{ctx}: {r:?}"
        );
    }
}

macro_rules! round_trips {
    ($($name:ident: $server:expr, $tool:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            import_round_trip($server, $tool).await;
        }
    )*};
}

round_trips! {
    postgres_diesel: Server::Postgres, "diesel";
    postgres_sqlx: Server::Postgres, "sqlx";
    postgres_golang_migrate: Server::Postgres, "golang-migrate";
    postgres_dbmate: Server::Postgres, "dbmate";
    postgres_goose: Server::Postgres, "goose";
    postgres_flyway: Server::Postgres, "flyway";
    mariadb_diesel: Server::MariaDb, "diesel";
    mariadb_sqlx: Server::MariaDb, "sqlx";
    mariadb_golang_migrate: Server::MariaDb, "golang-migrate";
    mariadb_dbmate: Server::MariaDb, "dbmate";
    mariadb_goose: Server::MariaDb, "goose";
    mariadb_flyway: Server::MariaDb, "flyway";
}

/// A version the tool applied without its file here refuses the import (exit 4, nothing
/// written), also on a rerun; `--allow-missing` imports the others.
#[tokio::test]
async fn versions_without_files_refuse_unless_allowed() {
    for tool in TOOLS {
        let (p, written) = migrated_by(Server::Postgres, tool, 2).await;
        // The tool applied a version whose file is not in this checkout.
        let extra = match tool {
            "diesel" => "INSERT INTO __diesel_schema_migrations (version) VALUES ('20201231000000')".to_string(),
            "sqlx" => "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (20201231120000, 'gone', true, '\\x00', 1)".to_string(),
            "golang-migrate" => "UPDATE schema_migrations SET version = 7".to_string(),
            "dbmate" => "INSERT INTO schema_migrations (version) VALUES ('20201231120000')".to_string(),
            "goose" => "INSERT INTO goose_db_version (version_id, is_applied) VALUES (7, true)".to_string(),
            "flyway" => "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES (3, '1.2', 'gone', 'SQL', 'V1.2__gone.sql', 0, 'tester', 1, true)".to_string(),
            _ => unreachable!(),
        };
        let missing = match tool {
            "diesel" => "20201231000000",
            "sqlx" | "dbmate" => "20201231120000",
            "golang-migrate" | "goose" => "7",
            "flyway" => "1.2",
            _ => unreachable!(),
        };
        exec(&p, Server::Postgres, &[extra]).await;
        let table = default_table(tool);
        for _ in 0..2 {
            let r = p.run(&["import"]);
            assert_eq!(r.code, 4, "{tool}: {r:?}");
            assert!(
                r.stderr.contains(&format!("1 version(s) that {tool} applied (in {table}) have no migration file here: {missing}; nothing was imported"))
                    && r.stderr.contains("or pass --allow-missing to import the others"),
                "{tool}: {r:?}"
            );
            assert!(p.states().iter().all(|(_, s)| s == "pending"), "{tool}");
        }
        let r = p.run(&["import", "--allow-missing"]);
        assert_eq!(r.code, 0, "{tool}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "applied by {tool} but no file here (not imported): {missing}\n"
            )),
            "{tool}: {r:?}"
        );
        // golang-migrate's one row now says 7: every file up to it is applied.
        let expected: Vec<&str> = if tool == "golang-migrate" {
            vec!["applied"; 4]
        } else {
            vec!["applied", "applied", "pending", "pending"]
        };
        let states: Vec<String> = p.states().into_iter().map(|(_, s)| s).collect();
        assert_eq!(states, expected, "{tool}");
        let _ = written;
    }
}

/// A golang-migrate table marked dirty: refused with the reason, also on a rerun.
#[tokio::test]
async fn dirty_golang_migrate_is_refused() {
    for server in [Server::Postgres, Server::MariaDb] {
        let (p, _) = migrated_by(server, "golang-migrate", 2).await;
        exec(
            &p,
            server,
            &["UPDATE schema_migrations SET dirty = true".to_string()],
        )
        .await;
        for _ in 0..2 {
            let r = p.run(&["import"]);
            assert_eq!(r.code, 2, "{server:?}: {r:?}");
            assert!(
                r.stderr.contains(
                    "golang-migrate marked version 2 dirty in schema_migrations: it failed partway"
                ) && r.stderr.contains("`migrate force <version>`"),
                "{server:?}: {r:?}"
            );
            assert!(p.states().iter().all(|(_, s)| s == "pending"));
        }
    }
}

/// goose appends a row on every up and down: the latest row of a version decides.
#[tokio::test]
async fn goose_latest_row_decides_and_table_can_be_renamed() {
    let p = Project::new(Server::MariaDb).await;
    let written = write(&p, "goose");
    let table = "app_goose_versions";
    let mut sql = vec![create_table("goose", Server::MariaDb, table)];
    sql.extend(STEPS[..2].iter().map(|s| s.1.to_string()));
    sql.extend(rows(
        "goose",
        Server::MariaDb,
        table,
        &written[..3].iter().collect::<Vec<_>>(),
    ));
    // Version 3 went up and down again.
    sql.push(format!(
        "INSERT INTO {table} (version_id, is_applied) VALUES (3, false)"
    ));
    exec(&p, Server::MariaDb, &sql).await;
    let r = p.run(&["import"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("this database has no table goose_db_version: goose has not migrated it, or keeps its history under another name")
            && r.stderr.contains("--table NAME"),
        "{r:?}"
    );
    let r = p.run(&["import", "--table", table]);
    assert_eq!(r.code, 0, "{r:?}");
    let states: Vec<String> = p.states().into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["applied", "applied", "pending", "pending"]);
    let r = p.run(&["drift"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// Files edited since the tool applied them: reported where the tool kept a checksum.
#[tokio::test]
async fn edited_files_are_reported() {
    for tool in ["sqlx", "flyway"] {
        let (p, written) = migrated_by(Server::Postgres, tool, 2).await;
        let path = &written[1].up_file;
        let text = std::fs::read_to_string(path).unwrap();
        std::fs::write(path, format!("{text}-- reviewed\n")).unwrap();
        let r = p.run(&["import"]);
        assert_eq!(r.code, 0, "{tool}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "edited since {tool} applied them (recorded with the file's current checksum): {}\n",
                label(&written[1])
            )),
            "{tool}: {r:?}"
        );
        let r = p.run(&["verify"]);
        assert_eq!(r.code, 0, "{tool}: {r:?}");
    }
}

/// Files in sluice's own layout, the database migrated by dbmate: `--from` names the tool.
#[tokio::test]
async fn from_names_the_tool() {
    let p = Project::new(Server::Postgres).await;
    let written = write(&p, "sluice");
    let mut sql = vec![create_table(
        "dbmate",
        Server::Postgres,
        "schema_migrations",
    )];
    sql.extend(STEPS[..3].iter().map(|s| s.1.to_string()));
    sql.extend(rows(
        "dbmate",
        Server::Postgres,
        "schema_migrations",
        &written[..3].iter().collect::<Vec<_>>(),
    ));
    exec(&p, Server::Postgres, &sql).await;
    let r = p.run(&["import"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("this directory follows sluice's own layout")
            && r.stderr.contains("pass --from <tool>"),
        "{r:?}"
    );
    let r = p.run(&["import", "--from", "dbmate"]);
    assert_eq!(r.code, 0, "{r:?}");
    let states: Vec<String> = p.states().into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["applied", "applied", "applied", "pending"]);
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = p.run(&["drift"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// Rows that do not make a version applied: a failed sqlx run, a Flyway undo; a Flyway baseline
/// covers every file up to it; a failed Flyway row refuses (exit 2), also on a rerun.
#[tokio::test]
async fn tool_rows_that_change_what_is_applied() {
    for server in [Server::Postgres, Server::MariaDb] {
        // sqlx: version 3 failed (success = false): pending, not imported.
        let (p, written) = migrated_by(server, "sqlx", 2).await;
        let bad = if server == Server::Postgres {
            "decode('00', 'hex')"
        } else {
            "UNHEX('00')"
        };
        exec(&p, server, &[format!("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ({}, 'create orders', false, {bad}, 1)", written[2].recorded)]).await;
        let r = p.run(&["import"]);
        assert_eq!(r.code, 0, "{server:?}: {r:?}");
        let states: Vec<String> = p.states().into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            states,
            ["applied", "applied", "pending", "pending"],
            "{server:?}"
        );

        // Flyway: baselined at 1.1, then 1.9 applied and undone: 1 and 1.1 are applied.
        let p = Project::new(server).await;
        let written = write(&p, "flyway");
        let t = "flyway_schema_history";
        let mut sql = vec![create_table("flyway", server, t)];
        sql.extend(STEPS[..2].iter().map(|s| s.1.to_string()));
        let row = |rank: i32, v: &str, ty: &str, script: &str, sum: &str, ok: bool| {
            format!("INSERT INTO {t} (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES ({rank}, '{v}', 'x', '{ty}', '{script}', {sum}, 'tester', 1, {ok})")
        };
        let v3 = std::fs::read(&written[2].up_file).unwrap();
        let v3_sum = sluice_core::import::flyway_checksum(&v3).to_string();
        sql.push(row(
            1,
            "1.1",
            "BASELINE",
            "<< Flyway Baseline >>",
            "NULL",
            true,
        ));
        sql.push(row(
            2,
            "1.9",
            "SQL",
            "V1.9__create_orders.sql",
            &v3_sum,
            true,
        ));
        sql.push(row(
            3,
            "1.9",
            "UNDO_SQL",
            "U1.9__create_orders.sql",
            "NULL",
            true,
        ));
        exec(&p, server, &sql).await;
        let r = p.run(&["import"]);
        assert_eq!(r.code, 0, "{server:?}: {r:?}");
        let states: Vec<String> = p.states().into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            states,
            ["applied", "applied", "pending", "pending"],
            "{server:?}"
        );
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{server:?}: {r:?}");

        // Flyway: a failed row (MariaDB keeps them; PostgreSQL rolls back, but a non-transactional
        // statement leaves one too).
        let (p, _) = migrated_by(server, "flyway", 2).await;
        exec(
            &p,
            server,
            &[row(3, "1.9", "SQL", "V1.9__create_orders.sql", "0", false)],
        )
        .await;
        for _ in 0..2 {
            let r = p.run(&["import"]);
            assert_eq!(r.code, 2, "{server:?}: {r:?}");
            assert!(
                r.stderr.contains("Flyway recorded version 1.9 (V1.9__create_orders.sql) as failed in flyway_schema_history")
                    && r.stderr.contains("`flyway repair`"),
                "{server:?}: {r:?}"
            );
            assert!(p.states().iter().all(|(_, s)| s == "pending"));
        }
    }
}

/// A gap in what the tool applied: reported as out of order, and `up --out-of-order` applies it.
/// A Flyway baseline below the first file needs no file.
#[tokio::test]
async fn gaps_and_a_baseline_without_a_file() {
    let server = Server::Postgres;
    let p = Project::new(server).await;
    let written = write(&p, "dbmate");
    let mut sql = vec![create_table("dbmate", server, "schema_migrations")];
    sql.extend([STEPS[0].1, STEPS[2].1].map(String::from));
    sql.extend(rows(
        "dbmate",
        server,
        "schema_migrations",
        &[&written[0], &written[2]],
    ));
    exec(&p, server, &sql).await;
    let r = p.run(&["import"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "  not applied by dbmate (pending: `sluice up` applies them): {}\n\
             sluice:   not applied by dbmate but older than its last (`sluice up --out-of-order` applies them): {}\n",
            label(&written[3]),
            label(&written[1])
        )),
        "{r:?}"
    );
    let r = p.run(&["up", "--out-of-order"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(p.states().iter().all(|(_, s)| s == "applied"));
    let r = p.run(&["drift"]);
    assert_eq!(r.code, 0, "{r:?}");

    let p = Project::new(server).await;
    let written = write(&p, "flyway");
    let t = "flyway_schema_history";
    let mut sql = vec![create_table("flyway", server, t)];
    sql.push(STEPS[0].1.to_string());
    sql.push(format!("INSERT INTO {t} (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES (1, '0.9', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'tester', 0, true)"));
    sql.extend(
        rows("flyway", server, t, &[&written[0]])
            .into_iter()
            .map(|s| s.replace("VALUES (1,", "VALUES (2,")),
    );
    exec(&p, server, &sql).await;
    let r = p.run(&["import"]);
    assert_eq!(r.code, 0, "{r:?}");
    let states: Vec<String> = p.states().into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["applied", "pending", "pending", "pending"]);
}

/// Flyway's repeatable migrations (rows with a NULL version, one per application, the latest
/// deciding): imported as applied repeatables with their checksum. One unchanged since Flyway last
/// applied it is not applied again by `up`; one whose file changed since, one whose latest
/// application failed and one Flyway never ran are applied by the next `up`, after the pending
/// versioned ones; a repeatable Flyway ran whose file is gone refuses the import like a version.
#[tokio::test]
async fn flyway_repeatables() {
    for server in [Server::Postgres, Server::MariaDb] {
        let p = Project::new(server).await;
        let written = write(&p, "flyway");
        let t = "flyway_schema_history";
        let views = [
            (
                "names_view",
                "CREATE OR REPLACE VIEW t_rnames AS SELECT name FROM t_users;\n",
            ),
            (
                "changed",
                "CREATE OR REPLACE VIEW t_rchanged AS SELECT id, name FROM t_users;\n",
            ),
            (
                "failed_one",
                "CREATE OR REPLACE VIEW t_rfailed AS SELECT id FROM t_users;\n",
            ),
            (
                "new_one",
                "CREATE OR REPLACE VIEW t_rnew AS SELECT id FROM t_users;\n",
            ),
        ];
        for (name, sql) in views {
            p.write(&format!("R__{name}.sql"), sql);
        }
        let old_changed = "CREATE OR REPLACE VIEW t_rchanged AS SELECT id FROM t_users;\n";
        let sum = |text: &str| sluice_core::import::flyway_checksum(text.as_bytes()).to_string();
        let mut sql = vec![create_table("flyway", server, t)];
        sql.extend(STEPS[..2].iter().map(|s| s.1.to_string()));
        sql.extend([views[0].1, old_changed].map(String::from));
        sql.extend(rows(
            "flyway",
            server,
            t,
            &written[..2].iter().collect::<Vec<_>>(),
        ));
        let r_row = |rank: i32, name: &str, checksum: &str, ok: bool| {
            format!("INSERT INTO {t} (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) VALUES ({rank}, NULL, '{}', 'SQL', 'R__{name}.sql', {checksum}, 'tester', 1, {ok})", name.replace('_', " "))
        };
        // names_view applied twice (an older text first), changed once with its old text,
        // failed_one failed last, and one whose file is gone.
        sql.push(r_row(3, "names_view", "12345", true));
        sql.push(r_row(4, "changed", &sum(old_changed), true));
        sql.push(r_row(5, "names_view", &sum(views[0].1), true));
        sql.push(r_row(6, "failed_one", &sum(views[2].1), true));
        sql.push(r_row(7, "failed_one", &sum(views[2].1), false));
        sql.push(r_row(8, "gone", "1", true));
        exec(&p, server, &sql).await;

        for _ in 0..2 {
            let r = p.run(&["import"]);
            assert_eq!(r.code, 4, "{server:?}: {r:?}");
            assert!(r.stderr.contains("R__gone"), "{server:?}: {r:?}");
            assert!(p.states().iter().all(|(_, s)| s == "pending" || s == "new"));
        }
        exec(
            &p,
            server,
            &[format!("DELETE FROM {t} WHERE installed_rank = 8")],
        )
        .await;
        let r = p.run(&["import"]);
        assert_eq!(r.code, 0, "{server:?}: {r:?}");
        assert!(
            r.stderr
                .contains("(`sluice up` applies them again): R__changed"),
            "{server:?}: {r:?}"
        );
        let shown: Vec<(String, String)> = p.status_json()["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    format!(
                        "{}_{}",
                        m["version_text"].as_str().unwrap(),
                        m["name"].as_str().unwrap()
                    ),
                    m["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want = [
            ("1_create_users", "applied"),
            ("1.1_seed_users", "applied"),
            ("1.9_create_orders", "pending"),
            ("1.10_user_names_view", "pending"),
            ("R__changed", "changed"),
            ("R__failed_one", "new"),
            ("R__names_view", "applied"),
            ("R__new_one", "new"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(shown, want, "{server:?}");
        assert_eq!(p.run(&["drift"]).code, 0, "{server:?}");

        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "{server:?}: {r:?}");
        for name in ["changed", "failed_one", "new_one"] {
            assert!(
                r.stderr.contains(&format!("applying R__{name}")),
                "{server:?}: {r:?}"
            );
        }
        assert!(
            !r.stderr.contains("applying R__names_view"),
            "{server:?}: {r:?}"
        );
        assert!(r.stderr.find("applying 1.10_").unwrap() < r.stderr.find("applying R__").unwrap());
        assert!(p.states().iter().all(|(_, s)| s == "applied"), "{server:?}");
        let mut all = tables(&p, server).await;
        all.sort();
        assert_eq!(
            all,
            [
                "t_names",
                "t_orders",
                "t_rchanged",
                "t_rfailed",
                "t_rnames",
                "t_rnew",
                "t_users"
            ],
            "{server:?}"
        );
        let r = p.run(&["up"]);
        assert!(
            r.code == 0 && r.stderr.contains("nothing to apply"),
            "{server:?}: {r:?}"
        );
        assert_eq!(p.run(&["drift"]).code, 0, "{server:?}");
    }
}
