//! A server with `lower_case_table_names=1` (as on Windows and macOS servers and some managed
//! MySQL) stores and reports table names in lower case: information_schema says `orders` for the
//! table a migration names `Orders`. On a private MariaDB started so, with mixed-case names: a
//! table rename (expand → complete, expand → rollback), a DROP TABLE, a column rename and an
//! online copy each run and rerun to the same end; a table privilege granted by name still
//! refuses the table rename; `plan` shows the size of `Orders`, quoted or not (information_schema
//! names it `orders`), and `CREATE TABLE IF NOT EXISTS Orders` takes it for the live table. Before the fix the table rename and the DROP TABLE took the table
//! for missing (exit 2) and the grant went unseen.

mod common;

use common::Run;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_testkit::PrivateMariaDb;
use std::path::Path;

const TABLE: &str = "CREATE TABLE `Orders` (`id` int AUTO_INCREMENT PRIMARY KEY, `Note` varchar(20) NOT NULL DEFAULT 'x', `Qty` int, KEY `ix_Note` (`Note`)); INSERT INTO `Orders` (`Note`, `Qty`) VALUES ('a', 1), ('b', 2)";

/// A project of its own: database `db` on the private server with table `Orders`, and one
/// migration holding `sql`.
struct Scenario {
    dir: tempfile::TempDir,
    url: String,
    db: Conn,
}

impl Scenario {
    async fn new(server: &PrivateMariaDb, admin: &mut Conn, db: &str, sql: &str) -> Scenario {
        admin
            .query_drop(format!("CREATE DATABASE `{db}`"))
            .await
            .unwrap();
        let url = server.url(db);
        let mut c = Conn::from_url(url.clone()).await.unwrap();
        c.query_drop(TABLE).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        std::fs::write(
            dir.path().join("migrations/1_change.sql"),
            format!("-- sluice:up\n{sql}\n"),
        )
        .unwrap();
        Scenario { dir, url, db: c }
    }

    fn run(&self, args: &[&str]) -> Run {
        sluice(self.dir.path(), &self.url, args)
    }

    /// Runs `args` twice (the rerun must end the same way): both succeed.
    fn twice(&self, args: &[&str], what: &str) -> Run {
        let first = self.run(args);
        assert_eq!(first.code, 0, "{what}: {first:?}");
        let again = self.run(args);
        assert_eq!(again.code, 0, "{what}, rerun: {again:?}");
        first
    }

    /// The table type of each name in the database, as the server reports it (lower case).
    async fn tables(&mut self) -> Vec<(String, String)> {
        self.db
            .query("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE 'sluice\\_%' ORDER BY TABLE_NAME")
            .await
            .unwrap()
    }

    async fn state(&mut self) -> Option<String> {
        self.db
            .query_first("SELECT state FROM sluice_migrations WHERE version = 1")
            .await
            .unwrap()
    }

    async fn show_create(&mut self, table: &str) -> String {
        let (_, text): (String, String) = self
            .db
            .query_first(format!("SHOW CREATE TABLE `{table}`"))
            .await
            .unwrap()
            .unwrap();
        text
    }
}

fn sluice(dir: &Path, url: &str, args: &[&str]) -> Run {
    std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        // The test table is tiny: the MODIFY is to go through the online copy.
        .env("SLUICE_AS_WRITTEN_BELOW_ROWS", "0")
        .env_remove("SLUICE_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
        .into()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn mixed_case_names_run_and_rerun_where_the_server_folds_table_names() {
    let started = std::time::Instant::now();
    // Stopped and its directory removed on drop, also when an assertion panics.
    let Some(server) = PrivateMariaDb::start(&["--lower-case-table-names=1"]).await else {
        eprintln!("skipped: no mariadbd / mariadb-install-db installed");
        return;
    };
    let mut admin = Conn::from_url(server.url("mysql")).await.unwrap();
    let lctn: i64 = admin
        .query_first("SELECT @@lower_case_table_names")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lctn, 1);

    // Table rename, expand → complete; the old name works through the view meanwhile.
    let mut s = Scenario::new(
        &server,
        &mut admin,
        "rename_complete",
        "RENAME TABLE `Orders` TO `PurchaseOrders`;",
    )
    .await;
    s.twice(&["up"], "rename: up");
    assert_eq!(
        s.tables().await,
        pairs(&[("orders", "VIEW"), ("purchaseorders", "BASE TABLE")])
    );
    assert_eq!(s.state().await.as_deref(), Some("expanded"));
    s.db.query_drop("INSERT INTO `Orders` (`Qty`) VALUES (3)")
        .await
        .unwrap();
    s.twice(&["complete"], "rename: complete");
    assert_eq!(s.tables().await, pairs(&[("purchaseorders", "BASE TABLE")]));
    let n: i64 =
        s.db.query_first("SELECT COUNT(*) FROM `PurchaseOrders`")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(n, 3);
    assert_eq!(s.state().await.as_deref(), Some("applied"));

    // Table rename, expand → rollback: the table exactly as before.
    let mut s = Scenario::new(
        &server,
        &mut admin,
        "rename_rollback",
        "ALTER TABLE `Orders` RENAME TO `PurchaseOrders`;",
    )
    .await;
    let before = s.show_create("Orders").await;
    s.twice(&["up"], "rename: up");
    assert_eq!(s.state().await.as_deref(), Some("expanded"));
    s.twice(&["rollback"], "rename: rollback");
    assert_eq!(s.tables().await, pairs(&[("orders", "BASE TABLE")]));
    assert_eq!(s.show_create("Orders").await, before);
    assert_eq!(s.state().await, None);

    // DROP TABLE: hidden behind the view until complete drops both.
    let mut s = Scenario::new(&server, &mut admin, "drop_table", "DROP TABLE `Orders`;").await;
    s.twice(&["up"], "drop table: up");
    assert_eq!(
        s.tables().await,
        pairs(&[("orders", "VIEW"), ("orders_sluice_dropped", "BASE TABLE")])
    );
    s.twice(&["complete"], "drop table: complete");
    assert_eq!(s.tables().await, vec![]);
    assert_eq!(s.state().await.as_deref(), Some("applied"));

    // Column rename of the mixed-case table.
    let mut s = Scenario::new(
        &server,
        &mut admin,
        "rename_column",
        "ALTER TABLE `Orders` RENAME COLUMN `Note` TO `Remark`;",
    )
    .await;
    s.twice(&["up"], "column rename: up");
    s.db.query_drop("INSERT INTO `Orders` (`Note`) VALUES ('old')")
        .await
        .unwrap();
    let remark: Option<String> =
        s.db.query_first("SELECT `Remark` FROM `Orders` WHERE `Note` = 'old'")
            .await
            .unwrap();
    assert_eq!(remark.as_deref(), Some("old"));
    s.twice(&["complete"], "column rename: complete");
    let text = s.show_create("Orders").await;
    assert!(
        text.contains("`Remark` varchar(20) NOT NULL DEFAULT 'x'")
            && text.contains("KEY `ix_Note` (`Remark`)")
            && !text.contains("`Note`"),
        "{text}"
    );

    // An ALTER that copies the table, through the online copy.
    let mut s = Scenario::new(
        &server,
        &mut admin,
        "online_copy",
        "ALTER TABLE `Orders` MODIFY `Qty` varchar(30);",
    )
    .await;
    let r = s.twice(&["up"], "online copy: up");
    assert!(r.all().contains("swapped with its online copy"), "{r:?}");
    assert!(s
        .show_create("Orders")
        .await
        .contains("`Qty` varchar(30) DEFAULT NULL"));
    let n: i64 =
        s.db.query_first("SELECT COUNT(*) FROM `Orders`")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(n, 2);
    assert_eq!(s.state().await.as_deref(), Some("applied"));

    // Unquoted and quoted `Orders` alike: `plan` finds the table's size under the name
    // information_schema reports (`orders`), and an unquoted rename runs in two phases.
    for (db, sql) in [
        (
            "plan_unquoted",
            "ALTER TABLE Orders MODIFY Qty varchar(30);",
        ),
        (
            "plan_quoted",
            "ALTER TABLE `Orders` MODIFY `Qty` varchar(30);",
        ),
    ] {
        let s = Scenario::new(&server, &mut admin, db, sql).await;
        let r = s.run(&["plan"]);
        assert_eq!(r.code, 0, "{db}: {r:?}");
        assert!(r.stdout.contains("table Orders: ~"), "{db}: {r:?}");
    }
    // `IF NOT EXISTS` of the live table (reported as `orders`) makes nothing new: the ALTER of
    // the next migration still runs online, not as written as on a table the run created.
    for (db, create, alter) in [
        (
            "exists_unquoted",
            "CREATE TABLE IF NOT EXISTS Orders (id int PRIMARY KEY);",
            "ALTER TABLE Orders MODIFY Qty varchar(30);",
        ),
        (
            "exists_quoted",
            "CREATE TABLE IF NOT EXISTS `Orders` (id int PRIMARY KEY);",
            "ALTER TABLE `Orders` MODIFY `Qty` varchar(30);",
        ),
    ] {
        let s = Scenario::new(&server, &mut admin, db, create).await;
        std::fs::write(
            s.dir.path().join("migrations/2_alter.sql"),
            format!("-- sluice:up\n{alter}\n"),
        )
        .unwrap();
        let r = s.twice(&["up"], db);
        assert!(
            r.all().contains("swapped with its online copy"),
            "{db}: {r:?}"
        );
    }
    let mut s = Scenario::new(
        &server,
        &mut admin,
        "rename_unquoted",
        "RENAME TABLE Orders TO PurchaseOrders;",
    )
    .await;
    s.twice(&["up"], "unquoted rename: up");
    assert_eq!(
        s.tables().await,
        pairs(&[("orders", "VIEW"), ("purchaseorders", "BASE TABLE")])
    );
    s.twice(&["complete"], "unquoted rename: complete");
    assert_eq!(s.tables().await, pairs(&[("purchaseorders", "BASE TABLE")]));

    // A privilege granted on the table by name (stored as `orders`) still refuses the rename.
    let mut s = Scenario::new(
        &server,
        &mut admin,
        "granted",
        "RENAME TABLE `Orders` TO `PurchaseOrders`;",
    )
    .await;
    admin
        .query_drop("CREATE USER 'reader'@'%'; GRANT SELECT ON `granted`.`Orders` TO 'reader'@'%'")
        .await
        .unwrap();
    for _ in 0..2 {
        let r = s.run(&["up"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.all().contains(
                "privileges are granted on the table by name ('reader'@'%' Select on orders)"
            ),
            "{r:?}"
        );
    }
    assert_eq!(s.tables().await, pairs(&[("orders", "BASE TABLE")]));

    drop(admin);
    drop(server);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
}
