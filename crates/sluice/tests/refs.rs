//! `sluice refs`: the code that names what a migration changes, found in a generated code tree of
//! Rust, Python, TypeScript and SQL files. Offline: no database.

use std::path::Path;
use std::process::Command;

fn sluice(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run sluice");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "migrations/1_rename.sql",
        "-- sluice:up\nALTER TABLE users RENAME COLUMN user_name TO display_name;\n",
    ),
    (
        "migrations/2_drop.sql",
        "-- sluice:up\nALTER TABLE orders DROP COLUMN legacy_code;\nDROP TABLE audit_trail;\n",
    ),
    (
        "migrations/3_retype.sql",
        "-- sluice:up\nALTER TABLE orders ALTER COLUMN total_cents TYPE bigint;\n",
    ),
    (
        "migrations/4_rename_table.sql",
        "-- sluice:up\nALTER TABLE line_items RENAME TO order_lines;\n",
    ),
];

const CODE: &[(&str, &str)] = &[
    (
        "src/models.rs",
        "pub struct User {\n    pub user_name: String,\n}\nfn q() -> &'static str {\n    \"SELECT legacy_code FROM orders\"\n}\n// username and user_names are other words\n",
    ),
    (
        "app/models.py",
        "class Order(Base):\n    __tablename__ = \"orders\"\n    LEGACY_CODE = Column(String)\n    total_cents = Column(Integer)\n    userName = None\n",
    ),
    (
        "web/order.ts",
        "export interface Order {\n  totalCents: number;\n  legacyCode?: string;\n}\nconst LineItems = db.table(\"line_items\");\nconst x = \"user_names\";\n",
    ),
    (
        "reports/daily.sql",
        "SELECT o.id, o.total_cents\nFROM orders o JOIN audit_trail a ON a.order_id = o.id;\n-- UserName is PascalCase\n",
    ),
    (".gitignore", "generated/\n"),
    // Ignored, so never reported though it names everything.
    (
        "generated/schema.rs",
        "user_name legacy_code audit_trail total_cents line_items\n",
    ),
];

/// A tree where every change has references; the binary file names them too.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in MIGRATIONS.iter().chain(CODE) {
        write(dir.path(), rel, text.as_bytes());
    }
    write(
        dir.path(),
        "assets/blob.bin",
        b"\0\x01\x02user_name legacy_code audit_trail\0",
    );
    dir
}

/// (kind, table, column, verdict, [(path, line, column, match)]), in migration and statement order.
type Expect = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Vec<(&'static str, u64, u64, &'static str)>,
);

fn expected() -> Vec<Expect> {
    vec![
        (
            "rename_column",
            "users",
            Some("user_name"),
            // PostgreSQL renames a column in two phases: the old name works until `complete`.
            "breaks at contract",
            vec![
                ("app/models.py", 5, 5, "userName"),
                ("reports/daily.sql", 3, 4, "UserName"),
                ("src/models.rs", 2, 9, "user_name"),
            ],
        ),
        (
            "drop_column",
            "orders",
            Some("legacy_code"),
            "breaks now",
            vec![
                ("app/models.py", 3, 5, "LEGACY_CODE"),
                ("src/models.rs", 5, 13, "legacy_code"),
                ("web/order.ts", 3, 3, "legacyCode"),
            ],
        ),
        (
            "drop_table",
            "audit_trail",
            None,
            "breaks now",
            vec![("reports/daily.sql", 2, 20, "audit_trail")],
        ),
        (
            "type_change",
            "orders",
            Some("total_cents"),
            "check",
            vec![
                ("app/models.py", 4, 5, "total_cents"),
                ("reports/daily.sql", 1, 16, "total_cents"),
                ("web/order.ts", 2, 3, "totalCents"),
            ],
        ),
        (
            "rename_table",
            "line_items",
            None,
            // So is a table (a view keeps the old name until `complete`).
            "breaks at contract",
            vec![("web/order.ts", 5, 7, "LineItems")],
        ),
    ]
}

fn changes(j: &serde_json::Value) -> Vec<serde_json::Value> {
    j["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["changes"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn json_lists_every_reference_exactly_and_gates_on_breaking_ones() {
    let dir = tree();
    let (code, out, err) = sluice(dir.path(), &["refs", "--target", "postgres:15", "--json"]);
    assert_eq!(code, 10, "{err}\n{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(j["target"], "postgres 15.0");
    let got = changes(&j);
    let want = expected();
    assert_eq!(got.len(), want.len(), "{out}");
    let texts: std::collections::HashMap<(&str, u64), &str> = CODE
        .iter()
        .flat_map(|(path, text)| {
            text.lines()
                .enumerate()
                .map(move |(i, l)| ((*path, i as u64 + 1), l.trim()))
        })
        .collect();
    for (c, (kind, table, column, verdict, hits)) in got.iter().zip(&want) {
        assert_eq!(c["kind"], *kind, "{c}");
        assert_eq!(c["table"], *table, "{c}");
        assert_eq!(c["column"].as_str(), *column, "{c}");
        assert_eq!(c["verdict"], *verdict, "{c}");
        let got_hits: Vec<(String, u64, u64, String, String)> = c["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["path"].as_str().unwrap().to_string(),
                    h["line"].as_u64().unwrap(),
                    h["column"].as_u64().unwrap(),
                    h["match"].as_str().unwrap().to_string(),
                    h["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want_hits: Vec<(String, u64, u64, String, String)> = hits
            .iter()
            .map(|(p, l, col, m)| {
                (
                    p.to_string(),
                    *l,
                    *col,
                    m.to_string(),
                    texts[&(*p, *l)].to_string(),
                )
            })
            .collect();
        assert_eq!(got_hits, want_hits, "{kind} {table}");
    }
    // Spellings: the database's name, then the ORM's camelCase and PascalCase.
    assert_eq!(
        got[0]["names"],
        serde_json::json!(["user_name", "userName", "UserName"])
    );
    assert_eq!(got[0]["to"], "display_name");
    assert_eq!(got[3]["new_type"], "BIGINT");
    let breaking: usize = want
        .iter()
        .filter(|w| w.3 != "check")
        .map(|w| w.4.len())
        .sum();
    assert_eq!(j["breaking_references"], breaking as u64);
    assert_eq!(
        j["references"],
        want.iter().map(|w| w.4.len()).sum::<usize>() as u64
    );

    // The same as text, and --warn-only turns the gate into a warning.
    let (code, text, _) = sluice(
        dir.path(),
        &["refs", "--target", "postgres:15", "--warn-only"],
    );
    assert_eq!(code, 0, "{text}");
    for (kind, _, _, _, hits) in &want {
        for (p, l, col, _) in hits {
            let line = format!("    {p}:{l}:{col}: {}\n", texts[&(*p, *l)]);
            assert!(text.contains(&line), "{kind}: {line}\n{text}");
        }
    }
    assert!(
        text.contains(
            "  line 2: rename column users.user_name to display_name: 3 reference(s), breaks at contract\n"
        ),
        "{text}"
    );
    assert!(text.contains("4 migration(s), 5 change(s) code may notice: 11 reference(s), 8 to a dropped or renamed name\n"), "{text}");
    // Neither the ignored file, the binary file nor the migrations themselves are reported.
    for never in [
        "generated/",
        "assets/",
        "migrations/1_rename.sql:",
        "migrations/2",
    ] {
        assert!(!text.contains(&format!("    {never}")), "{never}: {text}");
    }
}

#[test]
fn only_type_changes_or_fixed_code_exit_zero() {
    let dir = tree();
    // A type change asks for a check but does not gate.
    let (code, out, err) = sluice(
        dir.path(),
        &[
            "refs",
            "--target",
            "postgres:15",
            "--migration",
            "migrations/3_retype.sql",
        ],
    );
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains("3 reference(s), 0 to a dropped or renamed name"),
        "{out}"
    );

    // The code path as given: only the files under it.
    let (code, out, _) = sluice(
        dir.path(),
        &["refs", "--target", "postgres:15", "--json", "web"],
    );
    assert_eq!(code, 10);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let paths: Vec<&str> = changes(&j)
        .iter()
        .flat_map(|c| c["hits"].as_array().unwrap().clone())
        .map(|h| h["path"].as_str().unwrap().to_string().leak() as &str)
        .collect();
    assert_eq!(paths, ["web/order.ts"; 3]);

    // Fix the code the way the migrations ask, then the rerun passes.
    let fixed: Vec<(&str, String)> = CODE
        .iter()
        .map(|(p, t)| {
            let t = t
                .replace("user_name", "display_name")
                .replace("userName", "displayName")
                .replace("UserName", "DisplayName")
                .replace("LEGACY_CODE = Column(String)", "")
                .replace("legacyCode?: string;", "")
                .replace("SELECT legacy_code FROM orders", "SELECT id FROM orders")
                .replace(" JOIN audit_trail a ON a.order_id = o.id", "")
                .replace("LineItems", "OrderLines")
                .replace("line_items", "order_lines");
            (*p, t)
        })
        .collect();
    for (p, t) in &fixed {
        write(dir.path(), p, t.as_bytes());
    }
    let (code, out, err) = sluice(dir.path(), &["refs", "--target", "postgres:15"]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains("3 reference(s), 0 to a dropped or renamed name"),
        "{out}"
    );
}

/// Where the target comes from: --target, sluice.toml (with code_path), or the database URL's
/// scheme, never connected to; none of them is a usage error (exit 2).
#[test]
fn target_and_code_path_come_from_flags_config_or_url() {
    let dir = tree();
    let (code, _, err) = sluice(dir.path(), &["refs"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("refs needs to know which SQL dialect"),
        "{err}"
    );

    // A URL to nothing listening: only its scheme is read.
    let (code, out, err) = sluice(
        dir.path(),
        &[
            "refs",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            "--json",
        ],
    );
    assert_eq!(code, 10, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["target"], "postgres 15.0");

    write(
        dir.path(),
        "sluice.toml",
        b"target = \"postgres:15\"\ncode_path = \"reports\"\n",
    );
    let (code, out, err) = sluice(dir.path(), &["refs", "--json"]);
    assert_eq!(code, 10, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["references"], 3, "{out}");

    let (code, _, err) = sluice(dir.path(), &["refs", "no-such-dir"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the code path no-such-dir does not exist"),
        "{err}"
    );
}

/// MariaDB's CHANGE renames and retypes in one clause: two changes; DROP COLUMN as on PostgreSQL.
#[test]
fn mariadb_migrations_are_read_in_their_dialect() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "migrations/1_change.sql",
        b"-- sluice:up\nALTER TABLE users DROP COLUMN legacy_code;\nALTER TABLE users CHANGE user_name display_name VARCHAR(50);\n",
    );
    write(
        dir.path(),
        "src/user.ts",
        b"class User {\n  userName: string;\n  legacyCode: string;\n}\n",
    );
    let (code, out, err) = sluice(dir.path(), &["refs", "--target", "mariadb:10.11"]);
    assert_eq!(code, 10, "{err}\n{out}");
    assert!(
        out.contains("    src/user.ts:2:3: userName: string;\n"),
        "{out}"
    );
    assert!(
        out.contains("    src/user.ts:3:3: legacyCode: string;\n"),
        "{out}"
    );
    // A DROP COLUMN, and a CHANGE that also retypes, run in one step there: they break at once.
    assert!(!out.contains("breaks at contract"), "{out}");
}

/// A lone `RENAME COLUMN` runs in two phases on MariaDB and MySQL too (issue 14): the old name
/// works until `sluice complete`. A DROP COLUMN there still breaks at once.
#[test]
fn a_mariadb_rename_column_breaks_at_contract() {
    for target in ["mariadb:10.11", "mysql:8.0"] {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "migrations/1_rename.sql",
            b"-- sluice:up\nALTER TABLE users RENAME COLUMN user_name TO display_name;\n",
        );
        write(
            dir.path(),
            "migrations/2_drop.sql",
            b"-- sluice:up\nALTER TABLE users DROP COLUMN legacy_code;\n",
        );
        write(
            dir.path(),
            "src/user.ts",
            b"class User {\n  userName: string;\n  legacyCode: string;\n}\n",
        );
        let (code, out, err) = sluice(dir.path(), &["refs", "--target", target]);
        assert_eq!(code, 10, "{target}: {err}\n{out}");
        assert!(
            out.contains(
                "rename column users.user_name to display_name: 1 reference(s), breaks at contract"
            ),
            "{target}: {out}"
        );
        assert!(
            out.contains("drop column users.legacy_code: 1 reference(s), breaks now"),
            "{target}: {out}"
        );
    }
}

/// With `code_path` in sluice.toml, `sluice plan` shows the code that names what the pending
/// migrations change, as text and in its JSON (`code_references`); an applied migration's names
/// are no longer listed. Without it, no section.
#[tokio::test]
async fn plan_shows_the_code_that_names_what_pending_migrations_change() {
    let db = sluice_testkit::TestDb::postgres().await;
    db.pg()
        .await
        .batch_execute(
            "CREATE TABLE users (id int PRIMARY KEY, user_name text); \
             CREATE TABLE orders (id int PRIMARY KEY, legacy_code text, total_cents int); \
             CREATE TABLE audit_trail (id int); CREATE TABLE line_items (id int)",
        )
        .await
        .unwrap();
    let dir = tree();
    let plan = |args: &[&str]| {
        let mut all = vec!["plan", "--database-url", &db.url];
        all.extend_from_slice(args);
        sluice(dir.path(), &all)
    };
    let (_, out, err) = plan(&[]);
    assert!(out.contains("rename column"), "{err}\n{out}");
    assert!(!out.contains("Code that names"), "{out}");

    write(dir.path(), "sluice.toml", b"code_path = \"src\"\n");
    for _ in 0..2 {
        let (_, out, err) = plan(&[]);
        assert!(
            out.contains(
                "Code that names what these migrations change (code_path = src):\n\
                 migrations/1_rename.sql (rename)\n  \
                 line 2: rename column users.user_name to display_name: 1 reference(s), breaks at contract\n    \
                 src/models.rs:2:9: pub user_name: String,\n"
            ),
            "{err}\n{out}"
        );
        assert!(
            out.contains("  line 2: drop column orders.legacy_code: 1 reference(s), breaks now\n    src/models.rs:5:13: \"SELECT legacy_code FROM orders\"\n"),
            "{out}"
        );
        let (_, out, err) = plan(&["--json"]);
        let j: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}\n{out}"));
        let refs = &j["code_references"];
        assert_eq!(refs["references"], 2, "{out}");
        assert_eq!(refs["breaking_references"], 2, "{out}");
        assert_eq!(changes(refs)[0]["verdict"], "breaks at contract", "{out}");
    }

    // Once the rename is applied, only the pending migrations' names are listed.
    let (code, _, err) = sluice(
        dir.path(),
        &["up", "--database-url", &db.url, "--to", "1", "--complete"],
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, err) = plan(&["--json"]);
    let j: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}\n{out}"));
    let kinds: Vec<String> = changes(&j["code_references"])
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["drop_column", "drop_table", "type_change", "rename_table"],
        "{out}"
    );
    assert_eq!(j["code_references"]["references"], 1, "{out}");
}
