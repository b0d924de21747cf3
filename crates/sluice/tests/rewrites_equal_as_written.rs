//! Every statement sluice runs in a staged form must leave the database exactly as the statement
//! as written would: the same schema (by sluice's schema model: columns, nullability, defaults,
//! indexes, constraints and their names and validity) and the same rows. Each case runs on two
//! twin databases, once `--as-written` and once staged with writers inserting throughout, which
//! must see no error.

mod common;

use common::Project;
use sluice_core::engine::Engine;
use sluice_testkit::Server;

const SETUP: &str = "
    CREATE TABLE customers (id int PRIMARY KEY, email text);
    INSERT INTO customers SELECT g, 'c' || g || '@x' FROM generate_series(1, 200) g;
    CREATE TABLE orders (id bigint, customer_id int, amount int, note text);
    INSERT INTO orders SELECT g, 1 + g % 200, g % 1000, NULL FROM generate_series(1, 20000) g;
    CREATE INDEX orders_note_idx ON orders (note);
    CREATE SEQUENCE orders_next START 1000000;";

/// Each case: a name and the migration (on top of SETUP).
const CASES: &[(&str, &str)] = &[
    (
        "create index",
        "CREATE INDEX orders_amount_idx ON orders (amount);",
    ),
    (
        "create unique index",
        "CREATE UNIQUE INDEX orders_id_idx ON orders (id);",
    ),
    ("drop index", "DROP INDEX orders_note_idx;"),
    (
        "foreign key, unnamed",
        "ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers (id);",
    ),
    (
        "check, named",
        "ALTER TABLE orders ADD CONSTRAINT orders_amount_ok CHECK (amount >= 0);",
    ),
    (
        "check, unnamed",
        "ALTER TABLE orders ADD CHECK (amount >= 0);",
    ),
    (
        "check, unnamed, two columns",
        "ALTER TABLE orders ADD CHECK (amount >= 0 AND orders.customer_id > 0);",
    ),
    ("unique, unnamed", "ALTER TABLE orders ADD UNIQUE (id);"),
    (
        "unique, named",
        "ALTER TABLE orders ADD CONSTRAINT orders_uq UNIQUE (id);",
    ),
    (
        "primary key, unnamed",
        "ALTER TABLE orders ADD PRIMARY KEY (id);",
    ),
    (
        "primary key, named",
        "ALTER TABLE orders ADD CONSTRAINT orders_pk PRIMARY KEY (id);",
    ),
    (
        "set not null",
        "ALTER TABLE orders ALTER COLUMN amount SET NOT NULL;",
    ),
    (
        "add column, volatile default, not null",
        "ALTER TABLE orders ADD COLUMN token text NOT NULL DEFAULT md5(random()::text);",
    ),
    (
        "add column, volatile default, nullable",
        "ALTER TABLE orders ADD COLUMN seen timestamptz DEFAULT clock_timestamp();",
    ),
];

async fn schema(url: &str) -> sluice_core::schema::Schema {
    let url = sluice_core::dburl::DbUrl::parse(url).unwrap();
    let mut e = sluice_postgres::PgEngine::connect(&url).await.unwrap();
    e.introspect().await.unwrap()
}

/// Rows of `orders` that both runs must agree on (the volatile columns are checked for presence).
async fn rows(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "SELECT format('%s|%s|%s|%s', id, customer_id, amount, note) FROM orders WHERE id < 1000000 ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn staged_statements_leave_what_the_statement_as_written_leaves() {
    let mut failures = Vec::new();
    for (name, sql) in CASES {
        let written = Project::new(Server::Postgres).await;
        let staged = Project::new(Server::Postgres).await;
        for p in [&written, &staged] {
            p.db.pg().await.batch_execute(SETUP).await.unwrap();
            p.write("1_case.sql", &format!("{sql}\n"));
        }
        let r = written.run(&["up", "--as-written"]);
        assert_eq!(r.code, 0, "{name} as written: {r:?}");

        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for _ in 0..2 {
            let w = staged.db.pg().await;
            let stop = stop.clone();
            writers.push(tokio::spawn(async move {
                let (mut n, mut errors) = (0, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Err(e) = w
                        .execute(
                            "INSERT INTO orders (id, customer_id, amount) VALUES (nextval('orders_next'), 1, 1)",
                            &[],
                        )
                        .await
                    {
                        errors.push(e.to_string());
                    }
                    n += 1;
                }
                (n, errors)
            }));
        }
        let r = staged.run(&["up", "--pace", "speed"]);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(r.code, 0, "{name} staged: {r:?}");
        for w in writers {
            let (n, errors) = w.await.unwrap();
            assert!(n > 0);
            assert!(errors.is_empty(), "{name}: writers failed: {errors:?}");
        }
        let (a, b) = (schema(&written.db.url).await, schema(&staged.db.url).await);
        let differences = sluice_core::schema::diff(&a, &b);
        if !differences.is_empty() {
            failures.push(format!(
                "{name}: {}",
                differences
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        let (ca, cb) = (written.db.pg().await, staged.db.pg().await);
        assert_eq!(rows(&ca).await, rows(&cb).await, "{name}: the rows differ");
        if sql.contains("token") {
            let nulls: i64 = cb
                .query_one("SELECT count(*) FROM orders WHERE token IS NULL", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(nulls, 0, "{name}");
        }
        if sql.contains("clock_timestamp") {
            let nulls: i64 = cb
                .query_one("SELECT count(*) FROM orders WHERE seen IS NULL", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(nulls, 0, "{name}: every existing row gets its default");
        }
    }
    assert!(
        failures.is_empty(),
        "staged forms differ from as written:\n{}",
        failures.join("\n")
    );
}
