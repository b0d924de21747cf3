//! On MariaDB/MySQL with `lower_case_table_names=0` (the Linux default) a table created as
//! `CREATE TABLE Orders` is `Orders` and nothing else: `orders` is another (missing) table. For
//! each statement shape sluice plans on MariaDB, the table named unquoted as `Orders`: `sluice plan`
//! names the real table and its size, exactly as for the quoted `` `Orders` ``; `up` (and
//! `complete` for the two-phase shapes) succeeds and reruns; the end state equals a twin where
//! the statement ran as written. Before the fix sluice took unquoted names in lower case: the plan
//! lost the table's size (and named `orders`), the two-phase shapes refused with "does not exist".

mod common;

use common::mariadb_two_versions::{q, show_create};
use common::Project;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_testkit::Server;

/// Rows in `Orders`: above the as-written threshold the test sets, so its size decides the path.
const ROWS: u32 = 1000;
const BELOW_ROWS: &str = "100";

const SETUP: &str = "CREATE TABLE Customers (id int PRIMARY KEY); \
    INSERT INTO Customers VALUES (1), (2); \
    CREATE TABLE Orders (id int AUTO_INCREMENT PRIMARY KEY, Note varchar(20) NOT NULL DEFAULT 'x', \
    Qty int, CustomerId int, KEY ix_Note (Note))";

struct Shape {
    what: &'static str,
    /// The statements, `{t}` for the table's name.
    sql: &'static str,
    /// Runs in two phases: `complete` after `up`.
    two_phase: bool,
    /// How it is applied.
    up: &'static [&'static str],
}

const SHAPES: &[Shape] = &[
    Shape {
        what: "ADD COLUMN",
        sql: "ALTER TABLE {t} ADD COLUMN Extra int",
        two_phase: false,
        up: &["up"],
    },
    Shape {
        what: "MODIFY (online copy)",
        sql: "ALTER TABLE {t} MODIFY Note varchar(10) NOT NULL DEFAULT 'x'",
        two_phase: false,
        up: &["up"],
    },
    Shape {
        what: "MODIFY, the column named in another case",
        sql: "ALTER TABLE {t} MODIFY note varchar(10) NOT NULL DEFAULT 'x'",
        two_phase: false,
        up: &["up"],
    },
    Shape {
        what: "ADD INDEX",
        sql: "ALTER TABLE {t} ADD INDEX ix_Qty (Qty)",
        two_phase: false,
        up: &["up"],
    },
    Shape {
        what: "DROP COLUMN",
        sql: "ALTER TABLE {t} DROP COLUMN Qty",
        two_phase: true,
        up: &["up"],
    },
    Shape {
        what: "RENAME COLUMN",
        sql: "ALTER TABLE {t} RENAME COLUMN Note TO Remark",
        two_phase: true,
        up: &["up"],
    },
    Shape {
        what: "RENAME TABLE",
        sql: "RENAME TABLE {t} TO PurchaseOrders",
        two_phase: true,
        up: &["up"],
    },
    Shape {
        what: "DROP TABLE",
        sql: "DROP TABLE {t}",
        two_phase: true,
        up: &["up"],
    },
    Shape {
        what: "ADD FOREIGN KEY",
        sql: "ALTER TABLE {t} ADD CONSTRAINT fk_Customer FOREIGN KEY (CustomerId) REFERENCES Customers (id)",
        two_phase: false,
        // The online copy cannot keep a new key checked: `up` refuses it (exit 2) and names the
        // as-written run, which the test then makes.
        up: &["up", "--as-written"],
    },
];

async fn setup(c: &mut Conn) {
    c.query_drop(SETUP).await.unwrap();
    c.query_drop(format!(
        "INSERT INTO Orders (Note, Qty, CustomerId) SELECT 'n', seq, 1 + seq % 2 FROM seq_1_to_{ROWS}"
    ))
    .await
    .unwrap();
    // Statistics now, so both plans read the same estimate.
    c.query_drop("ANALYZE TABLE Orders").await.unwrap();
}

fn run(p: &Project, args: &[&str]) -> common::Run {
    p.command(args)
        .env("SLUICE_AS_WRITTEN_BELOW_ROWS", BELOW_ROWS)
        .output()
        .unwrap()
        .into()
}

/// Runs `args` and again (the rerun ends the same way): both succeed.
fn twice(p: &Project, args: &[&str], what: &str) {
    let first = run(p, args);
    assert_eq!(first.code, 0, "{what}: {first:?}");
    let again = run(p, args);
    assert_eq!(again.code, 0, "{what}, rerun: {again:?}");
}

/// The plan of `sql` with its text's backquotes removed: the quoted and the unquoted spelling
/// of one statement then read alike.
fn plan(p: &Project, sql: &str, what: &str) -> String {
    p.write("1_change.sql", &format!("-- sluice:up\n{sql};\n"));
    let r = run(p, &["plan"]);
    // 7: an error-level finding (the foreign key's), the same for both spellings.
    assert!(r.code == 0 || r.code == 7, "{what}: plan: {r:?}");
    format!("exit {}\n{}", r.code, r.stdout.replace('`', ""))
}

/// Every table and view (without sluice's own and an online copy's leftovers) with its kind,
/// definition and row count.
async fn end_state(c: &mut Conn) -> Vec<(String, String, String, i64)> {
    let names: Vec<(String, String)> = c
        .query("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE 'sluice\\_%' AND TABLE_NAME NOT LIKE '\\_%' ORDER BY TABLE_NAME")
        .await
        .unwrap();
    let mut out = Vec::new();
    for (name, kind) in names {
        let def = if kind == "VIEW" {
            String::new()
        } else {
            show_create(c, &name).await
        };
        let n: i64 = c
            .query_first(format!("SELECT COUNT(*) FROM {}", q(&name)))
            .await
            .unwrap()
            .unwrap();
        out.push((name, kind, def, n));
    }
    out
}

#[tokio::test]
async fn unquoted_mixed_case_table_names_plan_and_run_as_the_quoted_name() {
    let mut lctn_checked = false;
    for shape in SHAPES {
        let what = shape.what;
        let p = Project::new(Server::MariaDb).await;
        let mut c = p.db.my().await;
        if !lctn_checked {
            let lctn: i64 = c
                .query_first("SELECT @@lower_case_table_names")
                .await
                .unwrap()
                .unwrap();
            if lctn != 0 {
                eprintln!(
                    "skipped: the test server folds table names (lower_case_table_names={lctn})"
                );
                return;
            }
            lctn_checked = true;
        }
        setup(&mut c).await;

        let unquoted = shape.sql.replace("{t}", "Orders");
        let quoted = shape.sql.replace("{t}", "`Orders`");
        let plan_quoted = plan(&p, &quoted, what);
        let plan_unquoted = plan(&p, &unquoted, what);
        // The real table and its size: the path (as written below the threshold, else online or
        // in two phases) is chosen from them.
        assert!(
            plan_unquoted.contains("table Orders: ~"),
            "{what}: plan without the table's size:\n{plan_unquoted}"
        );
        assert!(
            !plan_unquoted.contains("orders"),
            "{what}: plan names a lower-case table:\n{plan_unquoted}"
        );
        assert_eq!(
            plan_unquoted, plan_quoted,
            "{what}: unquoted vs quoted plan"
        );
        // The live column's type is known, in whatever case the statement names it.
        if shape.sql.contains("MODIFY") {
            assert!(
                plan_unquoted.contains("from varchar(20) to VARCHAR(10)"),
                "{what}: {plan_unquoted}"
            );
        }

        // The migration file now holds the unquoted statement.
        if shape.up != ["up"] {
            let r = run(&p, &["up"]);
            assert_eq!(r.code, 2, "{what}: up refuses: {r:?}");
            assert!(r.stderr.contains("`Orders`"), "{what}: {r:?}");
        }
        twice(&p, shape.up, &format!("{what}: up"));
        if shape.two_phase {
            twice(&p, &["complete"], &format!("{what}: complete"));
        }
        let states = p.states();
        assert_eq!(states, vec![(1, "applied".to_string())], "{what}");

        let twin = Project::new(Server::MariaDb).await;
        let mut t = twin.db.my().await;
        setup(&mut t).await;
        t.query_drop(&unquoted).await.unwrap();
        assert_eq!(
            end_state(&mut c).await,
            end_state(&mut t).await,
            "{what}: end state vs twin"
        );
    }
}
