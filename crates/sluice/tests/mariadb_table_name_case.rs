//! MariaDB table names and letter case, where the server's `lower_case_table_names` decides (0 on
//! the main test server: `Orders` and `orders` are two tables).
//!
//! - Offline `lint` cannot know the setting: a statement naming a table the history created in
//!   another letter case gets a `mysql-table-name-case` warning saying both outcomes; the claim
//!   for 0 is then checked on the server (the statement does not find the table).
//! - The DROP COLUMN lifecycle notes in `sluice_meta` which columns it gave a default, keyed by
//!   the table as the server tells tables apart (exactly at 0), and still reads the key an older
//!   build wrote (table in lower case), so a migration that build expanded rolls back and
//!   completes.

mod common;

use common::mariadb_two_versions::show_create;
use common::Project;
use mysql_async::prelude::Queryable;
use sluice_core::plan::expand::drop_column_mysql::{legacy_meta_key, meta_key};
use sluice_testkit::Server;

const RULE: &str = "mysql-table-name-case";

#[tokio::test]
async fn offline_lint_says_when_a_table_is_named_in_another_case_than_created() {
    // (the later statement, whether it names `orders` in another case)
    let shapes: &[(&str, bool)] = &[
        ("ALTER TABLE Orders ADD COLUMN note VARCHAR(20);", true),
        ("CREATE INDEX ix_id ON Orders (id);", true),
        ("RENAME TABLE Orders TO archived_orders;", true),
        ("DROP TABLE ORDERS;", true),
        ("ALTER TABLE orders ADD COLUMN note VARCHAR(20);", false),
        ("ALTER TABLE `orders` ADD COLUMN note VARCHAR(20);", false),
    ];
    for (sql, differs) in shapes {
        let p = Project::new(Server::MariaDb).await;
        p.write(
            "1_create.sql",
            "-- sluice:up\nCREATE TABLE orders (id BIGINT PRIMARY KEY);\n",
        );
        p.write(
            "2_later.sql",
            &format!("-- sluice:up\nSET lock_wait_timeout = 5;\n{sql}\n"),
        );
        let r = p.run(&["lint", "--target", "mariadb:10.11", "--format", "json"]);
        let j: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{sql}: {e}: {r:?}"));
        let hits: Vec<&serde_json::Value> = j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == RULE)
            .collect();
        assert_eq!(hits.len(), usize::from(*differs), "{sql}: {j}");
        if let Some(f) = hits.first() {
            assert_eq!(f["severity"], "warning", "{f}");
            assert!(f["path"].as_str().unwrap().ends_with("2_later.sql"), "{f}");
            let m = f["message"].as_str().unwrap();
            assert!(
                m.contains("differs only in letter case from `orders`")
                    && m.contains("lower_case_table_names=0")
                    && m.contains("with 1 or 2 the same one"),
                "{m}"
            );
            // The claim for lower_case_table_names=0, on the server: the statement does not
            // find the table the history created.
            let up = p.run(&["up"]);
            assert_ne!(up.code, 0, "{sql}: {up:?}");
            assert!(
                up.all().contains("Orders") || up.all().contains("ORDERS"),
                "{sql}: {up:?}"
            );
            // (refused before the run, or failed at it: never applied under the other name)
            let states = p.states();
            assert!(
                !states
                    .iter()
                    .any(|(v, s)| *v == 2 && (s == "applied" || s == "expanded")),
                "{sql}: {states:?}"
            );
        } else {
            let up = p.run(&["up"]);
            assert_eq!(up.code, 0, "{sql}: {up:?}");
        }
    }
}

async fn meta_keys(c: &mut mysql_async::Conn) -> Vec<String> {
    c.query("SELECT k FROM sluice_meta WHERE k LIKE 'drop %' ORDER BY k")
        .await
        .unwrap()
}

#[tokio::test]
async fn drop_column_notes_key_the_table_as_the_server_does_and_read_the_older_key() {
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    let lctn: i64 = c
        .query_first("SELECT @@lower_case_table_names")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lctn, 0, "the main test server is case-sensitive");
    // Two tables whose names differ only in case, each with a NOT NULL column without default.
    c.query_drop(
        "CREATE TABLE Orders (id int PRIMARY KEY, Qty int NOT NULL); \
         CREATE TABLE orders (id int PRIMARY KEY, Qty int NOT NULL); \
         INSERT INTO Orders VALUES (1, 5); INSERT INTO orders VALUES (1, 6)",
    )
    .await
    .unwrap();
    let before = show_create(&mut c, "Orders").await;
    let other = show_create(&mut c, "orders").await;
    p.write(
        "2_drop.sql",
        "-- sluice:up\nALTER TABLE Orders DROP COLUMN Qty;\n",
    );
    let new_key = meta_key(2, "Orders", "Qty", false);
    let old_key = legacy_meta_key(2, "Orders", "Qty");
    assert_ne!(new_key, old_key);

    // (the key the expand phase's note is left under: this build's, or an older build's, and
    // how the lifecycle ends)
    for (older_build, end) in [(false, "rollback"), (true, "rollback"), (true, "complete")] {
        let what = format!("older build {older_build}, {end}");
        let up = p.run(&["up"]);
        assert_eq!(up.code, 0, "{what}: {up:?}");
        assert_eq!(meta_keys(&mut c).await, vec![new_key.clone()], "{what}");
        assert!(
            show_create(&mut c, "Orders")
                .await
                .contains("`Qty` int(11) NOT NULL DEFAULT 0"),
            "{what}"
        );
        if older_build {
            c.exec_drop(
                "UPDATE sluice_meta SET k = ? WHERE k = ?",
                (&old_key, &new_key),
            )
            .await
            .unwrap();
        }
        // The new version inserts without the column meanwhile.
        c.query_drop("INSERT INTO Orders (id) VALUES (2)")
            .await
            .unwrap();
        let r = p.run(&[end]);
        assert_eq!(r.code, 0, "{what}: {r:?}");
        assert!(meta_keys(&mut c).await.is_empty(), "{what}");
        assert_eq!(show_create(&mut c, "orders").await, other, "{what}");
        if end == "rollback" {
            // The default sluice gave is recognised under either key and removed.
            assert_eq!(show_create(&mut c, "Orders").await, before, "{what}");
            c.query_drop("DELETE FROM Orders WHERE id = 2")
                .await
                .unwrap();
        } else {
            assert!(
                !show_create(&mut c, "Orders").await.contains("`Qty`"),
                "{what}"
            );
        }
    }
}
