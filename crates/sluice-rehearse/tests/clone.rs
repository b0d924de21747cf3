//! Clone fidelity against the real servers: the clone's schema equals the source's by the schema
//! model, row counts match the request, and foreign keys hold.

use mysql_async::prelude::Queryable;
use sluice_core::dburl::DbUrl;
use sluice_rehearse::clone::{build, CloneReport, DataSpec};
use sluice_rehearse::db::{self, Scratch};
use sluice_testkit::TestDb;

const PG_SOURCE: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE parent (id serial PRIMARY KEY, name text NOT NULL, m mood, score int);
CREATE UNIQUE INDEX parent_name ON parent (name);
CREATE TABLE child (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id int REFERENCES parent (id),
    val int NOT NULL DEFAULT 0 CHECK (val >= 0),
    note varchar(20)
);
CREATE INDEX child_parent ON child (parent_id);
CREATE VIEW per_parent AS SELECT p.name, count(*) AS n FROM parent p JOIN child c ON c.parent_id = p.id GROUP BY p.name;
CREATE SEQUENCE tickets;
INSERT INTO parent (name, m, score)
    SELECT 'p' || g, (ARRAY['sad', 'ok', 'happy']::mood[])[1 + g % 3], CASE WHEN g % 2 = 0 THEN g % 10 END
    FROM generate_series(1, 2000) g;
INSERT INTO child (parent_id, val, note) SELECT 1 + g % 2000, g % 100, 'n' || (g % 7) FROM generate_series(1, 4000) g;
-- Two levels down, and text keys that need escaping inside an array literal.
CREATE TABLE tag (name text PRIMARY KEY);
INSERT INTO tag SELECT 'we"ird\' || g || ',{x}' FROM generate_series(1, 3000) g;
CREATE TABLE grandchild (id serial PRIMARY KEY, child_id bigint NOT NULL REFERENCES child (id), tag text REFERENCES tag (name));
INSERT INTO grandchild (child_id, tag) SELECT 1 + g % 4000, 'we"ird\' || (1 + g % 3000) || ',{x}' FROM generate_series(1, 6000) g;
ANALYZE;
"#;

/// Drops the scratch database even when an assertion fails first.
struct Dropped(Scratch);

impl std::ops::Deref for Dropped {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl Drop for Dropped {
    fn drop(&mut self) {
        let s = self.0.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(s.drop_now())
        })
        .join();
    }
}

async fn clone_of(db: &TestDb, spec: DataSpec) -> (Dropped, CloneReport) {
    let url = DbUrl::parse(&db.url).unwrap();
    let scratch = Dropped(Scratch::create(&url, "test").await.unwrap());
    let mut engine = db::engine(&url).await.unwrap();
    let report = build(&url, engine.as_mut(), &scratch.url, &spec, &|_| {})
        .await
        .unwrap();
    (scratch, report)
}

fn rows(report: &CloneReport, table: &str) -> (u64, u64, u64) {
    let t = report
        .tables
        .iter()
        .find(|t| t.table == table)
        .unwrap_or_else(|| panic!("no {table} in {report:#?}"));
    (t.requested_rows, t.orphans_dropped, t.rows)
}

async fn pg_scalar(url: &DbUrl, sql: &str) -> i64 {
    let (c, conn) = tokio_postgres::connect(url.expose().as_str(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn postgres_sample_clone_is_faithful_and_consistent() {
    let db = TestDb::postgres().await;
    db.pg().await.batch_execute(PG_SOURCE).await.unwrap();
    let (scratch, report) = clone_of(&db, DataSpec::SampleRows(300)).await;
    assert!(
        report.schema_differences.is_empty(),
        "{:#?}",
        report.schema_differences
    );
    // Children: exactly the request. Parents: the request plus those the children reference.
    // Child rows are pulled in by the grandchildren in turn.
    let child = report
        .tables
        .iter()
        .find(|t| t.table == "public.child")
        .unwrap();
    assert_eq!((child.requested_rows, child.orphans_dropped), (300, 0));
    assert!(child.parents_pulled_in > 0, "{child:?}");
    let got = child.rows;
    let parent = report
        .tables
        .iter()
        .find(|t| t.table == "public.parent")
        .unwrap();
    assert_eq!(parent.requested_rows, 300);
    assert!(parent.parents_pulled_in > 0, "{parent:?}");
    assert_eq!(parent.rows, 300 + parent.parents_pulled_in);
    assert_eq!(rows(&report, "public.grandchild"), (300, 0, 300));
    let tag = report
        .tables
        .iter()
        .find(|t| t.table == "public.tag")
        .unwrap();
    assert!(tag.parents_pulled_in > 0, "{tag:?}");
    let u = &scratch.url;
    assert_eq!(pg_scalar(u, "SELECT count(*) FROM child").await, got as i64);
    assert_eq!(
        pg_scalar(
            u,
            "SELECT count(*) FROM child c WHERE c.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM parent p WHERE p.id = c.parent_id)"
        )
        .await,
        0
    );
    // The foreign keys exist and are validated on the clone.
    assert_eq!(
        pg_scalar(
            u,
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated"
        )
        .await,
        3
    );
    assert_eq!(
        pg_scalar(
            u,
            "SELECT count(*) FROM grandchild g JOIN tag t ON t.name = g.tag"
        )
        .await,
        300
    );
    // Sequences continue after the copied keys: new rows do not collide.
    assert!(
        pg_scalar(u, "WITH i AS (INSERT INTO parent (name) VALUES ('new') RETURNING id) SELECT count(*) FROM i")
            .await
            == 1
    );
}

#[tokio::test]
async fn postgres_synthetic_clone_follows_the_statistics() {
    let db = TestDb::postgres().await;
    db.pg().await.batch_execute(PG_SOURCE).await.unwrap();
    let (scratch, report) = clone_of(
        &db,
        DataSpec::Synthetic {
            rows: Some(3000),
            scale: 1.0,
        },
    )
    .await;
    assert!(
        report.schema_differences.is_empty(),
        "{:#?}",
        report.schema_differences
    );
    assert_eq!(rows(&report, "public.parent"), (3000, 0, 3000));
    // Foreign keys point into the parent's generated key range: nothing is orphaned.
    assert_eq!(rows(&report, "public.child"), (3000, 0, 3000));
    let u = &scratch.url;
    // score is NULL in half the source rows (pg_stats null_frac 0.5) and takes 5 values.
    let nulls = pg_scalar(u, "SELECT count(*) FROM parent WHERE score IS NULL").await;
    assert!((1200..=1800).contains(&nulls), "{nulls} NULLs of 3000");
    let distinct = pg_scalar(u, "SELECT count(DISTINCT score) FROM parent").await;
    assert!(distinct <= 5, "{distinct} distinct scores");
    // Unique names stay unique; the enum takes only its values.
    assert_eq!(
        pg_scalar(u, "SELECT count(DISTINCT name) FROM parent").await,
        3000
    );
    assert_eq!(
        pg_scalar(u, "SELECT count(DISTINCT m) FROM parent").await,
        3
    );
    // Text foreign keys take values from the parent's keys: no grandchild is orphaned.
    assert_eq!(rows(&report, "public.grandchild"), (3000, 0, 3000));
    assert!(pg_scalar(u, "SELECT count(DISTINCT tag) FROM grandchild").await > 1000);
}

const MY_SOURCE: &[&str] = &[
    "CREATE TABLE parent (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, name varchar(40) NOT NULL, m enum('Sad','Ok','Happy'), UNIQUE KEY parent_name (name))",
    "CREATE TABLE child (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, parent_id int, val int NOT NULL DEFAULT 0, note varchar(20), created datetime, KEY child_parent (parent_id), CONSTRAINT child_fk FOREIGN KEY (parent_id) REFERENCES parent (id))",
    "CREATE VIEW per_parent AS SELECT p.name, count(*) AS n FROM parent p JOIN child c ON c.parent_id = p.id GROUP BY p.name",
    "INSERT INTO parent (name, m) SELECT CONCAT('p', seq), ELT(1 + seq % 3, 'Sad', 'Ok', 'Happy') FROM seq_1_to_2000",
    "INSERT INTO child (parent_id, val, note, created) SELECT 1 + seq % 2000, seq % 100, CONCAT('n', seq % 7), NOW() FROM seq_1_to_4000",
];

async fn my_scalar(url: &DbUrl, sql: &str) -> i64 {
    let mut c = mysql_async::Conn::from_url(url.expose().as_str())
        .await
        .unwrap();
    let v: Option<i64> = c.query_first(sql).await.unwrap();
    c.disconnect().await.ok();
    v.unwrap()
}

#[tokio::test]
async fn mariadb_clones_sampled_and_synthetic() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    for s in MY_SOURCE {
        c.query_drop(*s).await.unwrap();
    }
    c.disconnect().await.ok();

    let (scratch, report) = clone_of(&db, DataSpec::SampleFraction(0.1)).await;
    assert!(
        report.schema_differences.is_empty(),
        "{:#?}",
        report.schema_differences
    );
    assert_eq!(rows(&report, "child"), (400, 0, 400));
    let parent = report.tables.iter().find(|t| t.table == "parent").unwrap();
    assert!(parent.parents_pulled_in > 0, "{parent:?}");
    assert_eq!(parent.rows, 200 + parent.parents_pulled_in);
    let u = &scratch.url;
    assert_eq!(
        my_scalar(u, "SELECT count(*) FROM child c LEFT JOIN parent p ON p.id = c.parent_id WHERE c.parent_id IS NOT NULL AND p.id IS NULL").await,
        0
    );
    assert_eq!(
        my_scalar(u, "SELECT count(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()").await,
        1
    );

    let (scratch, report) = clone_of(
        &db,
        DataSpec::Synthetic {
            rows: Some(1000),
            scale: 1.0,
        },
    )
    .await;
    assert!(
        report.schema_differences.is_empty(),
        "{:#?}",
        report.schema_differences
    );
    assert_eq!(rows(&report, "parent"), (1000, 0, 1000));
    assert_eq!(rows(&report, "child"), (1000, 0, 1000));
    let u = &scratch.url;
    assert_eq!(
        my_scalar(
            u,
            "SELECT count(*) FROM parent WHERE m NOT IN ('Sad', 'Ok', 'Happy') OR m IS NULL"
        )
        .await,
        0
    );
}
