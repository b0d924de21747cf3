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
    // In the ORM model and in SQL naming the table; the rest are bare identifiers.
    assert_eq!(j["certain_references"], 5);
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
            let line = format!("    {p}:{l}:{col}: {}  [", texts[&(*p, *l)]);
            assert!(text.contains(&line), "{kind}: {line}\n{text}");
        }
    }
    assert!(
        text.contains(
            "  line 2: rename column users.user_name to display_name: 3 reference(s) (0 certain), breaks at contract\n"
        ),
        "{text}"
    );
    assert!(text.contains("4 migration(s), 5 change(s) code may notice: 11 reference(s) (5 certain), 8 to a dropped or renamed name\n"), "{text}");
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
        out.contains("3 reference(s) (2 certain), 0 to a dropped or renamed name"),
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
        out.contains("3 reference(s) (2 certain), 0 to a dropped or renamed name"),
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
        out.contains("    src/user.ts:2:3: userName: string;  [probable, code]\n"),
        "{out}"
    );
    assert!(
        out.contains("    src/user.ts:3:3: legacyCode: string;  [probable, code]\n"),
        "{out}"
    );
    // A DROP COLUMN beside another statement, and a CHANGE that also retypes, run in one step
    // there: they break at once.
    assert!(!out.contains("breaks at contract"), "{out}");
}

/// A lone `RENAME COLUMN` or `DROP COLUMN` runs in two phases on MariaDB and MySQL too (issue
/// 14): the old name works until `sluice complete`.
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
                "rename column users.user_name to display_name: 1 reference(s) (0 certain), breaks at contract"
            ),
            "{target}: {out}"
        );
        assert!(
            out.contains(
                "drop column users.legacy_code: 1 reference(s) (0 certain), breaks at contract"
            ),
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
    // The gate needs a code path to search.
    for _ in 0..2 {
        let (code, out, err) = plan(&["--fail-on", "unhandled-reference"]);
        assert_eq!(code, 2, "{err}\n{out}");
        assert!(
            err.contains("plan --fail-on unhandled-reference needs the code to search")
                && err.contains("code_path"),
            "{err}"
        );
    }

    write(dir.path(), "sluice.toml", b"code_path = \"src\"\n");
    for _ in 0..2 {
        // The rename alone: its reference breaks at contract, the gate says so (exit 10).
        let (code, out, err) = plan(&["--to", "1", "--fail-on", "unhandled-reference"]);
        assert_eq!(code, 10, "{err}\n{out}");
        // Up to the drops: `up` refuses 2_drop (a DROP COLUMN beside another statement), an
        // error finding, and exit 7 comes first (as 3_retype's lint error does).
        let (code, out, err) = plan(&["--to", "2", "--fail-on", "unhandled-reference"]);
        assert_eq!(code, 7, "{err}\n{out}");
        assert!(out.contains("two-phase-refused"), "{out}");
        let (code, out, err) = plan(&["--fail-on", "unhandled-reference"]);
        assert_eq!(code, 7, "{err}\n{out}");
        let (_, out, err) = plan(&[]);
        assert!(
            out.contains(
                "Code that names what these migrations change (code_path = src):\n\
                 migrations/1_rename.sql (rename)\n  \
                 line 2: rename column users.user_name to display_name: 1 reference(s) (0 certain), breaks at contract\n    \
                 src/models.rs:2:9: pub user_name: String,  [probable, code]\n"
            ),
            "{err}\n{out}"
        );
        assert!(
            out.contains("  line 2: drop column orders.legacy_code: 1 reference(s) (1 certain), breaks now\n    src/models.rs:5:13: \"SELECT legacy_code FROM orders\"  [certain, SQL string]\n"),
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
    // The drop still pending is still named (exit 7: `up` refuses 2_drop, which comes first).
    let (code, out, err) = plan(&["--to", "2", "--fail-on", "unhandled-reference"]);
    assert_eq!(code, 7, "{err}\n{out}");
    assert!(
        out.contains("drop column orders.legacy_code: 1 reference(s)"),
        "{out}"
    );
}

/// The ORM fixture: every kind of declaration and schema file sluice understands, with the
/// migrations that change what they name. Decoys: the same column name on another table's
/// declaration, a field mapped to another column, words that only contain a name.
const ORM_MIGRATIONS: &[(&str, &str)] = &[
    (
        "migrations/1_orders.sql",
        "-- sluice:up\nALTER TABLE orders DROP COLUMN legacy_code;\nALTER TABLE orders ALTER COLUMN total_cents TYPE bigint;\n",
    ),
    (
        "migrations/2_users.sql",
        "-- sluice:up\nALTER TABLE users RENAME COLUMN user_name TO display_name;\n",
    ),
    ("migrations/3_items.sql", "-- sluice:up\nDROP TABLE line_items;\n"),
    (
        "migrations/4_shop.sql",
        "-- sluice:up\nDROP TABLE shop_coupon;\nALTER TABLE shop_invoice DROP COLUMN due_on;\nALTER TABLE shop_receipt DROP COLUMN coupon_id;\n",
    ),
    (
        "migrations/5_receipts.sql",
        "-- sluice:up\nALTER TABLE receipts DROP COLUMN coupon_id;\nALTER TABLE receipts DROP COLUMN paid_by_id;\n",
    ),
];

const ORM_TREE: &[(&str, &str)] = &[
    (
        "src/schema.rs",
        r#"// @generated automatically by Diesel CLI.

diesel::table! {
    orders (id) {
        id -> Int4,
        legacy_code -> Nullable<Text>,
        total_cents -> Int4,
    }
}

diesel::table! {
    line_items (id) {
        id -> Int4,
        legacy_code -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> Int4,
        user_name -> Text,
    }
}

diesel::joinable!(line_items -> orders (order_id));
"#,
    ),
    (
        "src/models.rs",
        r#"#[derive(Queryable)]
#[diesel(table_name = orders)]
pub struct Order {
    pub id: i32,
    pub legacy_code: Option<String>,
    pub total_cents: i32,
}

#[derive(Queryable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i32,
    pub user_name: String,
}

pub async fn legacy(pool: &PgPool) -> Vec<Order> {
    sqlx::query_as!(
        Order,
        "SELECT id, legacy_code, total_cents FROM orders WHERE legacy_code IS NOT NULL"
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

pub fn label(o: &Order) -> String {
    o.legacy_code.clone().unwrap_or_default()
}
"#,
    ),
    (
        ".sqlx/query-3f2a.json",
        r#"{
  "db_name": "PostgreSQL",
  "query": "SELECT id, legacy_code, total_cents FROM orders WHERE legacy_code IS NOT NULL",
  "describe": {
    "columns": [
      { "ordinal": 0, "name": "id", "type_info": "Int4" },
      { "ordinal": 1, "name": "legacy_code", "type_info": "Text" }
    ]
  }
}
"#,
    ),
    (
        "app/db/tables.py",
        r#"from sqlalchemy import Column, Integer, String, ForeignKey, text
from sqlalchemy.orm import Mapped, mapped_column


class Order(Base):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
    legacy_code = Column(String(20))
    total_cents: Mapped[int] = mapped_column(Integer)


class LineItem(Base):
    __tablename__ = "line_items"
    id = Column(Integer, primary_key=True)
    order_id = Column(ForeignKey("orders.id"))
    legacy_code = Column(String)


class User(Base):
    __tablename__ = "users"
    name = Column("user_name", String)


def totals(session):
    return session.execute(
        text("SELECT sum(total_cents) FROM orders")
    )
"#,
    ),
    (
        "shop/models.py",
        r#"from django.db import models


class Coupon(models.Model):
    code = models.CharField(max_length=20)


class Invoice(models.Model):
    due_on = models.DateField()


class Receipt(models.Model):
    due_on = models.DateField()
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT)
"#,
    ),
    (
        "shop/migrations/0002_invoice_due_on.py",
        r#"from django.db import migrations, models


class Migration(migrations.Migration):
    operations = [
        migrations.CreateModel(
            name="Coupon",
            fields=[
                ("id", models.AutoField(primary_key=True)),
                ("code", models.CharField(max_length=20)),
            ],
        ),
        migrations.AddField(
            model_name="invoice",
            name="due_on",
            field=models.DateField(null=True),
        ),
    ]
"#,
    ),
    (
        "db/schema.rb",
        r#"ActiveRecord::Schema[7.1].define(version: 2026_01_01_000000) do
  create_table "line_items", force: :cascade do |t|
    t.bigint "order_id"
    t.string "legacy_code", limit: 8
  end

  create_table "orders", force: :cascade do |t|
    t.string "legacy_code"
    t.integer "total_cents"
  end

  add_foreign_key "line_items", "orders"
end
"#,
    ),
    (
        "app/models/line_item.rb",
        "class LineItem < ApplicationRecord\n  belongs_to :order\nend\n",
    ),
    (
        "app/models/receipt.rb",
        "class Receipt < ApplicationRecord\n  belongs_to :coupon\n  belongs_to :payer, foreign_key: :paid_by_id\nend\n",
    ),
    (
        "app/models/order.rb",
        r##"class Order < ApplicationRecord
  has_many :line_items
  validates :legacy_code, length: { maximum: 20 }

  def label = "#{legacy_code}-#{id}"
end
"##,
    ),
    (
        "db/migrate/20260101000000_drop_legacy.rb",
        r#"class DropLegacy < ActiveRecord::Migration[7.1]
  def change
    remove_column :orders, :legacy_code, :string
  end
end
"#,
    ),
    (
        "prisma/schema.prisma",
        r#"model Order {
  id         Int        @id
  legacyCode String?    @map("legacy_code")
  totalCents Int        @map("total_cents")
  items      LineItem[]

  @@map("orders")
}

model LineItem {
  id         Int    @id
  legacyCode String @map("old_code")
  orderId    Int

  @@map("line_items")
}

model User {
  id       Int    @id
  userName String @map("user_name")

  @@map("users")
}
"#,
    ),
    (
        "web/entities/order.ts",
        r#"import { Entity, Column, PrimaryGeneratedColumn, OneToMany } from "typeorm";

@Entity("orders")
export class Order {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ name: "legacy_code", nullable: true })
  legacyCode?: string;

  @Column({ name: "total_cents" })
  totalCents: number;

  @OneToMany(() => LineItem, (i) => i.order)
  items: LineItem[];
}
"#,
    ),
    (
        "web/models/user.js",
        r#"const { DataTypes } = require("sequelize");

module.exports = (sequelize) =>
  sequelize.define("User", {
    userName: { type: DataTypes.STRING, field: "user_name" },
    email: DataTypes.STRING,
  }, { tableName: "users" });
"#,
    ),
    (
        "go/models.go",
        "package models\n\nimport \"gorm.io/gorm\"\n\ntype Order struct {\n\tgorm.Model\n\tLegacyCode string `gorm:\"column:legacy_code\"`\n\tTotalCents int\n}\n\ntype LineItem struct {\n\tID         uint\n\tLegacyCode string `gorm:\"column:old_code\"`\n}\n\ntype Account struct {\n\tUserName string `gorm:\"column:user_name\"`\n}\n\nfunc (Account) TableName() string { return \"users\" }\n\nfunc Recent(db *gorm.DB) {\n\tdb.Raw(\"SELECT legacy_code FROM orders\").Scan(nil)\n}\n",
    ),
    (
        "java/com/acme/db/tables/Orders.java",
        r#"package com.acme.db.tables;

public class Orders extends TableImpl<OrdersRecord> {
    public static final Orders ORDERS = new Orders();
    public final TableField<OrdersRecord, String> LEGACY_CODE = createField(DSL.name("legacy_code"), SQLDataType.VARCHAR(20), this, "");
    public final TableField<OrdersRecord, Integer> TOTAL_CENTS = createField(DSL.name("total_cents"), SQLDataType.INTEGER, this, "");

    public Orders() {
        this(DSL.name("orders"), null);
    }
}
"#,
    ),
    (
        "java/com/acme/Reports.java",
        r#"class Reports {
    Result<?> legacy(DSLContext ctx) {
        return ctx.select(ORDERS.LEGACY_CODE).from(ORDERS).fetch();
    }
    Table<?> items() {
        return LINE_ITEMS;
    }
}
"#,
    ),
    (
        "analytics/models/orders_daily.sql",
        r#"select
    o.id,
    o.total_cents
from {{ ref('orders') }} as o
left join {{ source('shop', 'line_items') }} as li on li.order_id = o.id
"#,
    ),
    (
        "analytics/models/schema.yml",
        r#"version: 2

models:
  - name: orders
    columns:
      - name: legacy_code
        description: the old code
      - name: total_cents
  - name: line_items
    columns:
      - name: legacy_code
"#,
    ),
    (
        "reports/weekly.sql",
        r#"-- weekly totals
SELECT date_trunc('week', created_at) AS week,
       sum(total_cents) AS cents
FROM orders
GROUP BY 1;

SELECT count(*) FROM users WHERE user_name IS NULL;
"#,
    ),
    (
        "lib/util.py",
        "def shout(user_name):\n    return user_name.upper()\n\n# username, legacy_codes and line items are other words\n",
    ),
    (".gitignore", "build/\n"),
    (
        "build/schema.rs",
        "diesel::table! {\n    line_items (id) {\n        legacy_code -> Text,\n    }\n}\n",
    ),
    (".cache/orders.sql", "SELECT legacy_code FROM orders;\n"),
];

/// Every reference in ORM_TREE: (path, a text unique to its line, change, certainty, kind).
const ORM_EXPECTED: &[(&str, &str, &str, &str, &str)] = &[
    // diesel
    (
        "src/schema.rs",
        "legacy_code -> Nullable<Text>",
        "orders.legacy_code",
        "certain",
        "diesel table!",
    ),
    (
        "src/schema.rs",
        "total_cents -> Int4",
        "orders.total_cents",
        "certain",
        "diesel table!",
    ),
    (
        "src/schema.rs",
        "line_items (id) {",
        "line_items",
        "certain",
        "diesel table!",
    ),
    (
        "src/schema.rs",
        "user_name -> Text",
        "users.user_name",
        "certain",
        "diesel table!",
    ),
    (
        "src/schema.rs",
        "joinable!",
        "line_items",
        "probable",
        "code",
    ),
    (
        "src/models.rs",
        "pub legacy_code",
        "orders.legacy_code",
        "certain",
        "diesel model",
    ),
    (
        "src/models.rs",
        "pub total_cents",
        "orders.total_cents",
        "certain",
        "diesel model",
    ),
    (
        "src/models.rs",
        "pub user_name",
        "users.user_name",
        "certain",
        "diesel model",
    ),
    // sqlx: the macro and its offline query
    (
        "src/models.rs",
        "\"SELECT id, legacy_code",
        "orders.legacy_code",
        "certain",
        "sqlx query!",
    ),
    (
        "src/models.rs",
        "\"SELECT id, legacy_code",
        "orders.total_cents",
        "certain",
        "sqlx query!",
    ),
    (
        "src/models.rs",
        "o.legacy_code.clone()",
        "orders.legacy_code",
        "probable",
        "code",
    ),
    (
        ".sqlx/query-3f2a.json",
        "\"query\"",
        "orders.legacy_code",
        "certain",
        "sqlx offline query",
    ),
    (
        ".sqlx/query-3f2a.json",
        "\"query\"",
        "orders.total_cents",
        "certain",
        "sqlx offline query",
    ),
    (
        ".sqlx/query-3f2a.json",
        "\"ordinal\": 1",
        "orders.legacy_code",
        "certain",
        "sqlx offline query",
    ),
    // SQLAlchemy
    (
        "app/db/tables.py",
        "legacy_code = Column(String(20))",
        "orders.legacy_code",
        "certain",
        "SQLAlchemy model",
    ),
    (
        "app/db/tables.py",
        "total_cents: Mapped",
        "orders.total_cents",
        "certain",
        "SQLAlchemy model",
    ),
    (
        "app/db/tables.py",
        "class LineItem(Base)",
        "line_items",
        "certain",
        "SQLAlchemy model",
    ),
    (
        "app/db/tables.py",
        "__tablename__ = \"line_items\"",
        "line_items",
        "certain",
        "SQLAlchemy model",
    ),
    (
        "app/db/tables.py",
        "Column(\"user_name\"",
        "users.user_name",
        "certain",
        "SQLAlchemy model",
    ),
    (
        "app/db/tables.py",
        "SELECT sum(total_cents)",
        "orders.total_cents",
        "certain",
        "SQL string",
    ),
    // Django models and migrations
    (
        "shop/models.py",
        "class Coupon(",
        "shop_coupon",
        "certain",
        "Django model",
    ),
    (
        "shop/models.py",
        "ForeignKey(Coupon",
        "shop_coupon",
        "certain",
        "Django model",
    ),
    (
        "shop/models.py",
        "due_on = models.DateField()\n\n\nclass Receipt",
        "shop_invoice.due_on",
        "certain",
        "Django model",
    ),
    // A ForeignKey field `coupon` is the column `coupon_id`.
    (
        "shop/models.py",
        "coupon = models.ForeignKey",
        "shop_receipt.coupon_id",
        "certain",
        "Django model",
    ),
    (
        "shop/migrations/0002_invoice_due_on.py",
        "name=\"Coupon\"",
        "shop_coupon",
        "certain",
        "Django migration",
    ),
    (
        "shop/migrations/0002_invoice_due_on.py",
        "name=\"due_on\"",
        "shop_invoice.due_on",
        "certain",
        "Django migration",
    ),
    // ActiveRecord
    (
        "db/schema.rb",
        "create_table \"line_items\"",
        "line_items",
        "certain",
        "ActiveRecord schema",
    ),
    (
        "db/schema.rb",
        "add_foreign_key",
        "line_items",
        "certain",
        "ActiveRecord schema",
    ),
    (
        "db/schema.rb",
        "t.string \"legacy_code\"\n",
        "orders.legacy_code",
        "certain",
        "ActiveRecord schema",
    ),
    (
        "db/schema.rb",
        "t.integer \"total_cents\"",
        "orders.total_cents",
        "certain",
        "ActiveRecord schema",
    ),
    (
        "app/models/line_item.rb",
        "class LineItem",
        "line_items",
        "certain",
        "ActiveRecord model",
    ),
    // `belongs_to :coupon` is the column coupon_id; `foreign_key:` names it.
    (
        "app/models/receipt.rb",
        "coupon\n",
        "receipts.coupon_id",
        "certain",
        "ActiveRecord model",
    ),
    (
        "app/models/receipt.rb",
        "paid_by_id",
        "receipts.paid_by_id",
        "certain",
        "ActiveRecord model",
    ),
    (
        "app/models/order.rb",
        "has_many :line_items",
        "line_items",
        "certain",
        "ActiveRecord model",
    ),
    (
        "app/models/order.rb",
        "validates :legacy_code",
        "orders.legacy_code",
        "certain",
        "ActiveRecord model",
    ),
    (
        "app/models/order.rb",
        "def label",
        "orders.legacy_code",
        "probable",
        "ActiveRecord model",
    ),
    (
        "db/migrate/20260101000000_drop_legacy.rb",
        "remove_column",
        "orders.legacy_code",
        "certain",
        "ActiveRecord migration",
    ),
    // Prisma
    (
        "prisma/schema.prisma",
        "@map(\"legacy_code\")",
        "orders.legacy_code",
        "certain",
        "Prisma schema",
    ),
    (
        "prisma/schema.prisma",
        "@map(\"total_cents\")",
        "orders.total_cents",
        "certain",
        "Prisma schema",
    ),
    (
        "prisma/schema.prisma",
        "items      LineItem[]",
        "line_items",
        "certain",
        "Prisma schema",
    ),
    (
        "prisma/schema.prisma",
        "model LineItem",
        "line_items",
        "certain",
        "Prisma schema",
    ),
    (
        "prisma/schema.prisma",
        "@@map(\"line_items\")",
        "line_items",
        "certain",
        "Prisma schema",
    ),
    (
        "prisma/schema.prisma",
        "@map(\"user_name\")",
        "users.user_name",
        "certain",
        "Prisma schema",
    ),
    // TypeORM and Sequelize
    (
        "web/entities/order.ts",
        "name: \"legacy_code\"",
        "orders.legacy_code",
        "certain",
        "TypeORM entity",
    ),
    (
        "web/entities/order.ts",
        "legacyCode?: string",
        "orders.legacy_code",
        "certain",
        "TypeORM entity",
    ),
    (
        "web/entities/order.ts",
        "name: \"total_cents\"",
        "orders.total_cents",
        "certain",
        "TypeORM entity",
    ),
    (
        "web/entities/order.ts",
        "totalCents: number",
        "orders.total_cents",
        "certain",
        "TypeORM entity",
    ),
    (
        "web/entities/order.ts",
        "@OneToMany",
        "line_items",
        "probable",
        "TypeORM entity",
    ),
    (
        "web/entities/order.ts",
        "items: LineItem[]",
        "line_items",
        "probable",
        "TypeORM entity",
    ),
    (
        "web/models/user.js",
        "field: \"user_name\"",
        "users.user_name",
        "certain",
        "Sequelize model",
    ),
    // GORM
    (
        "go/models.go",
        "column:legacy_code",
        "orders.legacy_code",
        "certain",
        "GORM model",
    ),
    (
        "go/models.go",
        "TotalCents int",
        "orders.total_cents",
        "certain",
        "GORM model",
    ),
    (
        "go/models.go",
        "type LineItem struct",
        "line_items",
        "certain",
        "GORM model",
    ),
    (
        "go/models.go",
        "column:user_name",
        "users.user_name",
        "certain",
        "GORM model",
    ),
    (
        "go/models.go",
        "db.Raw(",
        "orders.legacy_code",
        "certain",
        "SQL string",
    ),
    // jOOQ
    (
        "java/com/acme/db/tables/Orders.java",
        "LEGACY_CODE = createField",
        "orders.legacy_code",
        "certain",
        "jOOQ generated",
    ),
    (
        "java/com/acme/db/tables/Orders.java",
        "TOTAL_CENTS = createField",
        "orders.total_cents",
        "certain",
        "jOOQ generated",
    ),
    (
        "java/com/acme/Reports.java",
        "ORDERS.LEGACY_CODE",
        "orders.legacy_code",
        "certain",
        "qualified name",
    ),
    (
        "java/com/acme/Reports.java",
        "return LINE_ITEMS",
        "line_items",
        "probable",
        "code",
    ),
    // dbt and reporting SQL
    (
        "analytics/models/orders_daily.sql",
        "o.total_cents",
        "orders.total_cents",
        "certain",
        "dbt model",
    ),
    (
        "analytics/models/orders_daily.sql",
        "source('shop', 'line_items')",
        "line_items",
        "certain",
        "dbt model",
    ),
    (
        "analytics/models/schema.yml",
        "- name: legacy_code\n        description",
        "orders.legacy_code",
        "certain",
        "dbt schema.yml",
    ),
    (
        "analytics/models/schema.yml",
        "- name: total_cents",
        "orders.total_cents",
        "certain",
        "dbt schema.yml",
    ),
    (
        "analytics/models/schema.yml",
        "- name: line_items",
        "line_items",
        "certain",
        "dbt schema.yml",
    ),
    (
        "reports/weekly.sql",
        "sum(total_cents)",
        "orders.total_cents",
        "certain",
        "SQL file",
    ),
    (
        "reports/weekly.sql",
        "WHERE user_name IS NULL",
        "users.user_name",
        "certain",
        "SQL file",
    ),
    // Bare identifiers
    (
        "lib/util.py",
        "def shout(user_name)",
        "users.user_name",
        "probable",
        "code",
    ),
    (
        "lib/util.py",
        "return user_name.upper()",
        "users.user_name",
        "probable",
        "code",
    ),
];

/// The line (1-based) of `needle` in `text`: the line it starts on; exactly one occurrence.
fn line_of(path: &str, text: &str, needle: &str) -> u64 {
    let hits: Vec<usize> = text.match_indices(needle).map(|(i, _)| i).collect();
    assert_eq!(hits.len(), 1, "{path}: `{needle}` must occur once");
    text[..hits[0]].matches('\n').count() as u64 + 1
}

/// Per ORM and schema-file kind: 0 references missed, at most 5% false hits (counted), each
/// reference's certainty and kind as listed; the .gitignored and hidden files are never read,
/// sqlx's `.sqlx/` is.
#[test]
fn every_orm_and_schema_kind_is_found_with_its_certainty() {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in ORM_MIGRATIONS.iter().chain(ORM_TREE) {
        write(dir.path(), rel, text.as_bytes());
    }
    let (code, out, err) = sluice(dir.path(), &["refs", "--target", "postgres:15", "--json"]);
    assert_eq!(code, 10, "{err}\n{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    type Ref = (String, u64, String);
    let mut got: std::collections::BTreeMap<Ref, (String, String)> = Default::default();
    for c in changes(&j) {
        let key = match c["column"].as_str() {
            Some(col) => format!("{}.{col}", c["table"].as_str().unwrap()),
            None => c["table"].as_str().unwrap().to_string(),
        };
        for h in c["hits"].as_array().unwrap() {
            let r = (
                h["path"].as_str().unwrap().to_string(),
                h["line"].as_u64().unwrap(),
                key.clone(),
            );
            let v = (
                h["certainty"].as_str().unwrap().to_string(),
                h["kind"].as_str().unwrap().to_string(),
            );
            assert!(
                got.insert(r.clone(), v).is_none(),
                "one hit per line and change: {r:?}"
            );
        }
    }
    let texts: std::collections::HashMap<&str, &str> = ORM_TREE.iter().copied().collect();
    let want: std::collections::BTreeMap<Ref, (String, String)> = ORM_EXPECTED
        .iter()
        .map(|(p, needle, key, certainty, kind)| {
            (
                (p.to_string(), line_of(p, texts[p], needle), key.to_string()),
                (certainty.to_string(), kind.to_string()),
            )
        })
        .collect();
    assert_eq!(want.len(), ORM_EXPECTED.len(), "a reference listed twice");
    let missed: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let false_hits: Vec<_> = got.iter().filter(|(k, _)| !want.contains_key(*k)).collect();
    assert!(missed.is_empty(), "missed {missed:#?}");
    assert!(
        false_hits.len() * 100 <= got.len() * 5,
        "{} false hits of {}: {false_hits:#?}",
        false_hits.len(),
        got.len()
    );
    let wrong: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .map(|(k, v)| (k, v, &got[k]))
        .collect();
    assert!(wrong.is_empty(), "(reference, expected, got): {wrong:#?}");
    let certain = want.values().filter(|(c, _)| c == "certain").count();
    assert_eq!(j["references"], got.len() as u64);
    assert_eq!(
        j["certain_references"],
        certain as u64 + false_hits.iter().filter(|(_, v)| v.0 == "certain").count() as u64
    );
    for never in ["build/", ".cache/", "migrations/"] {
        assert!(
            !got.keys().any(|k| k.0.starts_with(never)),
            "{never}: {got:#?}"
        );
    }

    // The table's names as its models spell them; Django's model name only on declarations.
    let items = changes(&j)
        .into_iter()
        .find(|c| c["table"] == "line_items")
        .unwrap();
    assert_eq!(
        items["names"],
        serde_json::json!([
            "line_items",
            "lineItems",
            "LineItems",
            "line_item",
            "lineItem",
            "LineItem",
            "items"
        ])
    );
}

/// `--fail-on unhandled-reference` is the gate spelled out: exit 10 while a dropped or renamed
/// name is referenced, the same on a rerun, 0 once the code is fixed; it contradicts --warn-only.
#[test]
fn fail_on_unhandled_reference_gates_and_reruns_the_same() {
    let dir = tree();
    for _ in 0..2 {
        let (code, out, err) = sluice(
            dir.path(),
            &[
                "refs",
                "--target",
                "postgres:15",
                "--fail-on",
                "unhandled-reference",
            ],
        );
        assert_eq!(code, 10, "{err}\n{out}");
        assert!(out.contains("to a dropped or renamed name"), "{out}");
    }
    let (code, _, err) = sluice(
        dir.path(),
        &[
            "refs",
            "--target",
            "postgres:15",
            "--fail-on",
            "unhandled-reference",
            "--warn-only",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--warn-only"), "{err}");
    let (code, _, err) = sluice(
        dir.path(),
        &["refs", "--target", "postgres:15", "--fail-on", "everything"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unhandled-reference"), "{err}");
    // Only a type change left: nothing to fail on.
    let (code, out, err) = sluice(
        dir.path(),
        &[
            "refs",
            "--target",
            "postgres:15",
            "--fail-on",
            "unhandled-reference",
            "--migration",
            "migrations/3_retype.sql",
        ],
    );
    assert_eq!(code, 0, "{err}\n{out}");
}
